// The machinery behind <weft/cancel/with_cancellation.hpp>: the types its API returns and uses.
// Include that header, not this one.
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

}  // namespace weft
