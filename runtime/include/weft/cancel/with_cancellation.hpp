// weft::with_cancellation: run a task under an extra cancellation token.
//
// Thread safety: the token may be cancelled from any thread (a cancel_source, a std::stop_source);
// the returned task is awaited or spawned like any task.
//
// Cancellation: the work is cancelled when either the given token or the awaiting task's own is
// cancelled, and sees it as operation_cancelled at its suspension points; the result is whatever
// the work ended with.
#pragma once

#include <coroutine>
#include <stop_token>
#include <type_traits>
#include <utility>

#include <weft/cancel/cancel_token.hpp>
#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/children.hpp>
#include <weft/detail/config.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/task.hpp>
#include <weft/cancel/detail/with_cancellation.hpp>

namespace weft {

/// Runs `t` so that it is cancelled when either `token` or the awaiting task's own token is
/// cancelled. `token` may be a weft::cancel_token or a std::stop_token. The result is a task:
/// await it, or spawn it.
///
///     std::stop_source stop;
///     co_await weft::with_cancellation(stop.get_token(), serve(listener));
///
/// Errors: an empty task throws std::logic_error when awaited.
template <class T>
task<T> with_cancellation(cancel_token token, task<T> t) {
  co_return co_await detail::with_cancellation_awaiter<T>{std::move(token), std::move(t)};
}

/// with_cancellation for any awaitable (it runs as a task).
///
///     co_await weft::with_cancellation(stop.get_token(), weft::sleep_for(1h));
template <class A>
requires(!detail::is_task<std::remove_cvref_t<A>>::value)
    task<detail::child_value_t<A>> with_cancellation(cancel_token token, A&& work) {
  return with_cancellation(std::move(token), detail::as_task(std::forward<A>(work)));
}

}  // namespace weft
