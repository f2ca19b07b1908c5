// weft::or_cancelled: awaits something and reports its cancellation as a value instead of an
// exception, for code where a cancelled wait is a normal ending (a timer that lost a race, a
// queued caller that gave up) and an exception per wait would cost microseconds.
//
// Thread safety: as for co_await of what it wraps: one awaiting task.
//
// Cancellation: the wrapped operation is cancelled as usual; or_cancelled reports that as false (or
// an empty optional) instead of throwing. The task's cancellation stays requested, so its next
// plain suspension point throws operation_cancelled.
#pragma once

#include <coroutine>
#include <optional>
#include <type_traits>
#include <utility>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/await_trace.hpp>
#include <weft/task.hpp>

namespace weft {

namespace detail {

template <class A>
using resume_t = decltype(std::declval<A&>().await_resume());

/// What or_cancelled gives for an awaiter of type A: bool for a void result (true: completed),
/// std::optional<T> otherwise (empty: cancelled).
template <class A>
using or_cancelled_t = std::conditional_t<std::is_void_v<resume_t<A>>, bool,
                                          std::optional<std::remove_cvref_t<resume_t<A>>>>;

template <class A>
class or_cancelled_awaiter {
 public:
  explicit or_cancelled_awaiter(A&& inner) : inner_(std::move(inner)) {}
  or_cancelled_awaiter(const or_cancelled_awaiter&) = delete;
  or_cancelled_awaiter& operator=(const or_cancelled_awaiter&) = delete;
  or_cancelled_awaiter(or_cancelled_awaiter&&) = default;

  void describe_await(await_description& d) const { describe_inner(inner_, d); }
  bool await_ready() { return inner_.await_ready(); }
  template <class Promise>
  decltype(auto) await_suspend(std::coroutine_handle<Promise> caller) {
    return inner_.await_suspend(caller);
  }
  or_cancelled_t<A> await_resume() {
    if constexpr (requires { inner_.await_resume_quietly(); }) {
      // weft's own waits know whether they were cancelled without throwing.
      return inner_.await_resume_quietly();
    } else {
      try {
        if constexpr (std::is_void_v<resume_t<A>>) {
          inner_.await_resume();
          return true;
        } else {
          return or_cancelled_t<A>{inner_.await_resume()};
        }
      } catch (const operation_cancelled&) {
        return or_cancelled_t<A>{};
      }
    }
  }

 private:
  A inner_;
};

}  // namespace detail

/// Awaits `a` (a task or an awaitable, taken by value) and turns its cancellation into a value:
/// for a void result, `true` if it completed and `false` if it was cancelled; otherwise a
/// std::optional that is empty when it was cancelled. Other exceptions propagate.
///
///     if (!co_await weft::or_cancelled(weft::sleep_until(next_tick))) co_return;  // stopped
///     auto permit = co_await weft::or_cancelled(slots.acquire());  // empty when cancelled
///
/// Cost: sleeps and semaphore acquires report it without throwing; for a task (or another
/// awaitable) the operation_cancelled it ends with is caught here. Cancellation itself is
/// unchanged: it stays requested, and the task's next plain suspension point throws as usual.
template <class A>
[[nodiscard("or_cancelled does nothing until it is co_awaited")]] auto or_cancelled(A a) {
  if constexpr (requires { std::move(a).operator co_await(); }) {
    auto inner = std::move(a).operator co_await();
    return detail::or_cancelled_awaiter<decltype(inner)>{std::move(inner)};
  } else {
    return detail::or_cancelled_awaiter<A>{std::move(a)};
  }
}

}  // namespace weft
