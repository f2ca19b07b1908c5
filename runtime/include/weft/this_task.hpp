// weft::this_task: what a task can ask about itself.
//
// Thread safety: the token it returns may be copied and read on any thread.
//
// Cancellation: cancel_token() never suspends and is not a cancellation point; a long loop without
// a co_await polls the token it returns.
#pragma once

#include <coroutine>

#include <weft/cancel/cancel_token.hpp>
#include <weft/detail/await_check.hpp>
#include <weft/detail/task_frame.hpp>

namespace weft::this_task {

namespace detail {
class [[nodiscard("cancel_token() does nothing until it is co_awaited")]] cancel_token_awaiter
    : public weft::detail::await_check {
 public:
  cancel_token_awaiter() noexcept
      : await_check(
            "weft::this_task::cancel_token() was never co_awaited: write "
            "`co_await weft::this_task::cancel_token()`") {}
  cancel_token_awaiter(cancel_token_awaiter&&) noexcept = default;
  /// A combinator refuses it (children.hpp): in a child it would give the child's token.
  using not_a_combinator_child = void;

  bool await_ready() const noexcept {
    mark_awaited();
    return false;
  }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> caller) noexcept {
    state_ = weft::detail::token_of(caller);
    return false;  // never actually suspends: this only reads the caller's promise
  }
  weft::cancel_token await_resume() const noexcept {
    return weft::detail::token_access::make(state_);
  }

 private:
  weft::detail::cancel_state* state_ = nullptr;
};
}  // namespace detail

/// The cancellation token of the calling task (inherited from whoever awaited it; for a spawned
/// task, the one its join_handle::cancel() requests on). Never suspends.
///
///     auto token = co_await weft::this_task::cancel_token();
///     while (!token.is_cancellation_requested()) crunch_some();
[[nodiscard(
    "cancel_token() does nothing until it is co_awaited")]] inline detail::cancel_token_awaiter
cancel_token() noexcept {
  return {};
}

}  // namespace weft::this_task
