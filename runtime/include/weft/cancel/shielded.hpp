// weft::shielded: awaits a task that the awaiting task's cancellation does not reach, for work
// that must finish once started (a flush, a release, a compensating write).
//
// Thread safety: as for co_await of a task: one awaiter.
//
// Cancellation: the shielded task cannot be cancelled and starts even for a caller cancelled
// already; the caller's cancellation stays requested and its next suspension point after the task
// throws operation_cancelled. Runtime shutdown still destroys it.
#pragma once

#include <utility>

#include <weft/task.hpp>

namespace weft {

/// Awaits `t` with no cancellation: cancelling the awaiting task (its join handle, a combinator
/// that lost interest, a deadline, shutdown) does not reach `t`, which runs to its end; the
/// awaiting task then resumes with `t`'s value or exception. A cancellation requested meanwhile
/// stays requested: the awaiting task's next cancellation point sees it.
///
///     co_await weft::shielded(journal.flush());   // finishes even when the request is cancelled
///     if (cancelled) co_return;                    // and then the cancellation takes effect
///
/// `t` starts even when the awaiting task was cancelled already (an awaited task normally never
/// starts for a cancelled caller). It must end by itself: nothing cancels it, so keep it short or
/// give it its own deadline (weft::timeout inside it), and pass it a cancel_token explicitly if
/// part of it should stay cancellable. Runtime shutdown does not wait for it: a root task still
/// suspended when the runtime goes is destroyed, its shielded task with it, unfinished.
///
/// Misuse: an empty or moved-from task throws std::logic_error when awaited, as for co_await.
/// Thread safety: as for co_await on a task (one awaiter).
template <class T>
[[nodiscard("weft::shielded(t) does nothing until it is co_awaited")]] detail::task_awaiter<T, true>
shielded(task<T> t) noexcept {
  return detail::task_awaiter<T, true>{t.release()};
}

}  // namespace weft
