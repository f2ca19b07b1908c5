// weft::awaiting_token: the cancellation token of the weft task that awaits an awaiter, for
// code that writes its own awaiters and hands the caller's cancellation on (as co_await of a task
// does).
//
// Thread safety: call it in await_suspend, on the thread that suspends the awaiting task; the token
// it returns may then be copied and read on any thread.
//
// Cancellation: nothing here suspends; it reads the awaiting task's token, which a
// cancel_scope::run may swap for the scope's while the task waits: read it while suspending.
#pragma once

#include <coroutine>

#include <weft/cancel/cancel_token.hpp>
#include <weft/detail/task_frame.hpp>

namespace weft {

/// In an awaiter's await_suspend: the token of the awaiting coroutine when it is a weft task, a
/// default (never cancelled) token for any other coroutine. Read it while suspending: once the
/// task runs on, its token may differ (a cancel_scope::run swaps it for the scope's).
///
///     template <class P>
///     bool await_suspend(std::coroutine_handle<P> caller) {
///       token_ = weft::awaiting_token(caller);   // the operation observes the caller's cancellation
///       …
///     }
template <class Promise>
[[nodiscard]] cancel_token awaiting_token(std::coroutine_handle<Promise> h) noexcept {
  return detail::token_access::make(detail::token_of(h));
}

}  // namespace weft
