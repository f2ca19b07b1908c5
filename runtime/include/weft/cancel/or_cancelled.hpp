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
#include <weft/cancel/detail/or_cancelled.hpp>

namespace weft {

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
