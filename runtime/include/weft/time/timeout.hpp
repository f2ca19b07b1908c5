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

namespace weft {

namespace detail {
/// True if the deadline came, false if cancelled first (without an exception).
task<bool> deadline_task(clock::time_point deadline);

template <class T>
task<T> race_deadline(clock::time_point deadline, task<T> work) {
  using pack = child_pack<T, bool>;
  pack set{std::move(work), deadline_task(deadline)};
  set.start_all();
  const auto token = co_await this_task::cancel_token();
  std::optional<outcome<T>> result;
  bool expired = false;
  std::exception_ptr take_failure;  // taking a result threw: rethrown once both stopped
  {
    cancel_callback stop{token, cancel_children_on<pack>{&set}};
    for (std::size_t done = 0; done < 2; ++done) {
      const std::size_t i = co_await set.next();
      if (take_failure) continue;
      take_guarded(set, take_failure, [&] {
        if (i == 0) {
          result.emplace(set.template take<0>());
          if (!expired) set.cancel_all();  // frees the timer at once
        } else if (auto fired = set.template take<1>();
                   fired.has_value() && fired.value() && !result) {
          expired = true;
          set.cancel_all();
        }
      });
    }
  }
  if (take_failure) std::rethrow_exception(take_failure);
  // A task that finished anyway (it ignored the cancellation, or won the race by a hair) keeps
  // its value: nothing it did is thrown away. One stopped by the deadline becomes timed_out.
  if (expired && result->has_error() && is_cancellation(result->error()) &&
      !token.is_cancellation_requested()) {
    throw timed_out{};
  }
  if constexpr (std::is_void_v<T>) {
    result->value();
  } else {
    co_return std::move(*result).value();
  }
}

template <class T>
task<T> race_timeout(clock::duration d, task<T> work) {
  // Read the clock when the caller awaits, not when it builds the task.
  co_return co_await race_deadline(deadline_after(d), std::move(work));
}
}  // namespace detail

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
