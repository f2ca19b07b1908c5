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

namespace weft {

namespace detail {

/// Awaits a task whose token is a source linked to both the awaiter's token and the given one.
template <class T>
class with_cancellation_awaiter {
 public:
  with_cancellation_awaiter(cancel_token token, task<T>&& t)
      : token_(std::move(token)), h_(t.release()) {}
  with_cancellation_awaiter(const with_cancellation_awaiter&) = delete;
  with_cancellation_awaiter& operator=(const with_cancellation_awaiter&) = delete;
  ~with_cancellation_awaiter() {
    // Callbacks first: they point at linked_.
    stop_link_.reset();
    parent_link_.disarm();
    token_link_.disarm();
    if (h_) h_.destroy();
  }

  /// A dump follows the awaited task's frame.
  void describe_await(await_description& d) const noexcept { d.child_frame = h_.address(); }
  bool await_ready() const {
    if (!h_) throw_empty_task("weft::with_cancellation");
    return false;
  }

  template <class Promise>
#if WEFT_SYMMETRIC_TRANSFER
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> caller) {
    link(caller);
    return h_;
  }
#else
  bool await_suspend(std::coroutine_handle<Promise> caller) {
    link(caller);
    return start_inline(h_);
  }
#endif

  T await_resume() {
    task_awaiter<T> finish{std::exchange(h_, {})};
    return finish.await_resume();
  }

 private:
  template <class Promise>
  void link(std::coroutine_handle<Promise> caller) {
    if (!parent_link_.arm(token_of(caller), &cancel_linked, &linked_)) linked_.request_cancel();
    if (auto* s = token_access::state(token_); s != nullptr) {
      if (!token_link_.arm(s, &cancel_linked, &linked_)) linked_.request_cancel();
    } else if (token_access::stop(token_).stop_possible()) {
      stop_link_.emplace(token_access::stop(token_), stop_forward{&linked_});
    }
    h_.promise().link_ = caller.address();
    h_.promise().token_ = &linked_;
  }

  static void cancel_linked(void* state) noexcept {
    static_cast<cancel_state*>(state)->request_cancel();
  }
  struct stop_forward {
    cancel_state* state;
    void operator()() const noexcept { state->request_cancel(); }
  };

  cancel_token token_;
  std::coroutine_handle<task_promise<T>> h_;
  cancel_state linked_;
  cancel_hook parent_link_;
  cancel_hook token_link_;
  optional_stop_callback<stop_forward> stop_link_;
};

}  // namespace detail

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
