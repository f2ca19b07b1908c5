// Deadlines and waits shared by the layers: saturating deadline arithmetic, the test for an
// outcome that reports a cancellation, and when a wait must watch the context's token besides
// the task's own (then it runs under a weft::cancel_scope linked to it).
#pragma once

#include <chrono>
#include <system_error>
#include <utility>

#include <weft/cancel/cancel_token.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/context.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience::detail {

/// `now + d`, saturating at time_point::max() instead of overflowing (a huge duration means no
/// deadline in practice).
[[nodiscard]] inline clock::time_point saturating_deadline(clock::time_point now,
                                                           clock::duration d) noexcept {
  if (d > clock::duration::zero() && now.time_since_epoch() > clock::duration::max() - d) {
    return clock::time_point::max();
  }
  return now + d;
}

/// `a + d`, saturating at time_point::max() instead of overflowing (for "no limit" durations).
[[nodiscard]] inline clock::time_point saturating_add(clock::time_point a,
                                                      clock::duration d) noexcept {
  if (d > clock::time_point::max() - a) return clock::time_point::max();
  return a + d;
}

/// `d` in the clock's nanoseconds, saturating (hours::max() does not fit in int64 nanoseconds).
template <class Rep, class Period>
constexpr clock::duration to_clock_duration(std::chrono::duration<Rep, Period> d) noexcept {
  using source = std::chrono::duration<Rep, Period>;
  if (d >= std::chrono::duration_cast<source>(clock::duration::max())) {
    return clock::duration::max();
  }
  if (d <= std::chrono::duration_cast<source>(clock::duration::min())) {
    return clock::duration::min();
  }
  return std::chrono::duration_cast<clock::duration>(d);
}

/// True for an outcome that reports a cancellation: weft's cancellation exception, or the
/// std::errc::operation_canceled error code (a result type that reports it as a value).
template <class R>
bool is_cancellation(const call_outcome<R>& o) {
  return o.is_cancelled() ||
         (o.kind() == outcome_kind::error && o.error() == std::errc::operation_canceled);
}

/// True when `ctx.token` can be cancelled and is not the awaiting task's own token (`own`), so a
/// wait must watch it separately. Inside `execute()` without a caller's context the two are the
/// same and nothing extra is needed.
[[nodiscard]] inline bool needs_context_link(const resilience_context& ctx,
                                             const cancel_token& own) noexcept {
  return ctx.token.can_be_cancelled() && !(ctx.token == own);
}

}  // namespace weft::resilience::detail
