// Waits that report cancellation as `false` instead of throwing, for layers whose waits end in
// cancellation as a matter of course (a queued bulkhead call handed a permit, a rate limiter's
// reserved sleeper), and which must also honour a context token other than the task's own.
#pragma once

#include <utility>

#include <weft/cancel_token.hpp>
#include <weft/clock.hpp>
#include <weft/operation_cancelled.hpp>
#include <weft/resilience/context.hpp>
#include <weft/task.hpp>
#include <weft/timeout.hpp>
#include <weft/with_cancellation.hpp>

namespace weft::resilience::detail {

/// True when `ctx.token` can be cancelled and is not the awaiting task's own token (`own`), so a
/// wait must watch it separately. Inside `execute()` without a caller's context the two are the
/// same and nothing extra is needed.
[[nodiscard]] inline bool needs_context_link(const resilience_context& ctx,
                                             const cancel_token& own) noexcept {
  return ctx.token.can_be_cancelled() && !(ctx.token == own);
}

/// Awaits `t` (a task that reports its own cancellation as `false`) so that `extra` cancels it
/// too. A cancellation that comes before `t` has started (when weft never runs its body) also
/// reads as `false`, never as an exception.
inline task<bool> quietly(task<bool> t, cancel_token extra) {
  try {
    co_return co_await with_cancellation(std::move(extra), std::move(t));
  } catch (const operation_cancelled&) {
    co_return false;
  }
}

/// Sleeps until `deadline` on the runtime clock, cancellable by the task's own token and by
/// `extra`: true if the deadline came, false if cancelled first.
inline task<bool> sleep_until_quietly(clock::time_point deadline, cancel_token extra) {
  co_return co_await quietly(weft::detail::deadline_task(deadline), std::move(extra));
}

/// `a + d`, saturating at time_point::max() instead of overflowing (for "no limit" durations).
[[nodiscard]] inline clock::time_point saturating_add(clock::time_point a,
                                                      clock::duration d) noexcept {
  if (d > clock::time_point::max() - a) return clock::time_point::max();
  return a + d;
}

}  // namespace weft::resilience::detail
