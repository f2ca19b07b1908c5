// weft::to_future: a task's result as a std::future, for code that waits the standard way.
//
// Thread safety: callable from any thread; the future is the standard one (never wait on it on a
// worker).
//
// Cancellation: the task runs detached: nothing cancels it but the runtime's shutdown, which makes
// the future throw operation_cancelled.
#pragma once

#include <exception>
#include <future>
#include <source_location>
#include <type_traits>
#include <utility>

#include <weft/outcome.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

namespace weft {

/// Starts `t` on `rt` and returns a std::future of its result: the value, the exception it threw,
/// or operation_cancelled if the runtime shut down before it finished. Callable from any thread
/// (inside a task, co_await instead: waiting on the future would block the worker). The task runs
/// detached; nothing cancels it but the runtime's shutdown.
///
///     std::future<int> f = weft::to_future(rt, compute());
///     int v = f.get();  // a plain thread may block
template <class T>
requires(!std::is_reference_v<T>) [[nodiscard]] std::future<T> to_future(
    runtime& rt, task<T> t, std::source_location at = std::source_location::current()) {
  std::promise<T> promise;
  std::future<T> future = promise.get_future();
  rt.spawn(
        std::move(t),
        [promise = std::move(promise)](outcome<T> o) mutable {
          if (o.has_error()) {
            promise.set_exception(o.error());
          } else if constexpr (std::is_void_v<T>) {
            promise.set_value();
          } else {
            promise.set_value(std::move(o).value());
          }
        },
        {}, at)
      .detach();
  return future;
}

}  // namespace weft
