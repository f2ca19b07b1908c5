// weft::timeout and weft::with_deadline: a task's value, or timed_out once the deadline passed.
//
// Thread safety: awaited from a task on a worker (std::logic_error elsewhere); the work runs as a
// task of its own on the current runtime, possibly on another worker.
//
// Cancellation: at the deadline the work is cancelled and awaited, then timed_out is thrown (work
// that finished anyway keeps its value); cancelling the caller cancels the work and throws
// operation_cancelled.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>

#include <weft/cancel/cancel_token.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/detail/children.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/clock.hpp>
#include <weft/time/sleep.hpp>
#include <weft/time/timed_out.hpp>
#include <weft/time/detail/timeout.hpp>

namespace weft {

/// Runs `work` (a task or any awaitable) and returns its value, or, if it has not finished by
/// `deadline` on the runtime clock, cancels it, waits until it stopped and throws timed_out.
///
///     auto reply = co_await weft::with_deadline(request_deadline, call(backend));
///
/// `work` runs as its own task on the current runtime. A task that ignores cancellation delays
/// the return until it finishes (and then its value is returned). Cancelling the caller cancels
/// `work` and throws operation_cancelled. Under paused time the deadline fires as soon as every
/// task waits (exactly at the deadline).
template <class A>
task<detail::child_value_t<A>> with_deadline(clock::time_point deadline, A&& work) {
  return detail::race_deadline(deadline, detail::as_task(std::forward<A>(work)));
}

/// with_deadline(now + d, work), the deadline counted from when the returned task is awaited.
///
///     auto v = co_await weft::timeout(std::chrono::milliseconds{200}, fetch(key));
///     co_await weft::timeout(std::chrono::seconds{2}, ready.wait());   // a latch, event, lock…
template <class Rep, class Period, class A>
task<detail::child_value_t<A>> timeout(std::chrono::duration<Rep, Period> d, A&& work) {
  return detail::race_timeout(detail::to_clock_duration(d), detail::as_task(std::forward<A>(work)));
}

}  // namespace weft
