// weft::sleep_for, weft::sleep_until and weft::advance: waiting on the runtime's clock.
//
// Thread safety: awaited from a task on a worker (std::logic_error elsewhere); the timer lives in
// that worker's wheel, and a cancellation from any thread is posted to it.
//
// Cancellation: a cancelled sleep throws operation_cancelled and frees its timer at once; advance()
// likewise.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <utility>

#include <weft/detail/await_check.hpp>
#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/io_op.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/detail/timer_entry.hpp>
#include <weft/time/clock.hpp>
#include <weft/time/detail/sleep_awaiter.hpp>

namespace weft {

/// Suspends the task until the runtime's clock reaches `deadline`. A deadline that has passed
/// completes without suspending (with real time: if it passed before the worker last read the
/// clock for its timers; one that passed since fires at the worker's next look, within a tick).
///
///     co_await weft::sleep_until(start + 5s);
///
/// Precision: timers live in the worker's timer wheel with 131 µs ticks (1 ns with paused time);
/// a sleep never ends early, and ends at most one tick plus a wake-up late on an idle worker.
/// Cancellation: throws operation_cancelled if the task's cancellation is requested before or
/// while it sleeps; the timer is freed at once. Errors: std::logic_error outside a worker.
[[nodiscard("sleep_until does nothing until it is co_awaited")]] inline detail::sleep_awaiter
sleep_until(clock::time_point deadline) noexcept {
  return detail::sleep_awaiter{deadline, 0};
}

/// Suspends the task for `d` of the runtime's clock (see sleep_until); a zero or negative `d`
/// completes at once, like an elapsed deadline.
///
///     co_await weft::sleep_for(std::chrono::milliseconds{100});
template <class Rep, class Period>
[[nodiscard("sleep_for does nothing until it is co_awaited")]] detail::sleep_awaiter sleep_for(
    std::chrono::duration<Rep, Period> d) noexcept {
  if (d <= d.zero()) return detail::sleep_awaiter{clock::time_point::min(), 0};
  return detail::sleep_awaiter{detail::deadline_after(detail::to_clock_duration(d)), 0};
}

/// Paused time only: moves the clock forward by `d`, firing the timers due on the way in
/// deadline order (FIFO among equal deadlines) and running every task they wake before moving
/// further, then resumes the caller with the clock at exactly now + d (after the timers due at
/// that instant). A task woken at 100 ms that sleeps 50 ms thus runs at 150 ms, before a timer
/// due at 300 ms.
///
///     co_await weft::advance(std::chrono::seconds{30});   // a 30 s breaker window, in µs
///
/// Errors: std::logic_error on a runtime with real time or outside a worker;
/// std::invalid_argument for a negative `d`. Cancellation: as sleep_for.
[[nodiscard("advance does nothing until it is co_awaited")]] detail::sleep_awaiter advance(
    clock::duration d);

}  // namespace weft
