// weft::yield(): give the worker to the other ready tasks.
//
// Thread safety: awaited from a task on a worker (std::logic_error elsewhere); another worker may
// steal the task meanwhile, so it may resume on a different thread.
//
// Cancellation: throws operation_cancelled if the task's cancellation was requested before or while
// it waited.
#pragma once

#include <coroutine>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/await_check.hpp>
#include <weft/detail/scheduler.hpp>
#include <weft/detail/task_frame.hpp>

namespace weft {

namespace detail {
class [[nodiscard("yield() does nothing until it is co_awaited")]] yield_awaiter
    : public await_check {
 public:
  yield_awaiter() noexcept
      : await_check("weft::yield() was never co_awaited: the task does not yield") {}
  yield_awaiter(yield_awaiter&&) noexcept = default;

  void describe_await(await_description& d) const { d.what = "yield"; }
  bool await_ready() const noexcept {
    mark_awaited();
    return false;
  }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> caller) {
    token_ = token_of(caller);
    if (token_ != nullptr && token_->is_cancelled()) return false;
    schedule_yield(caller);
    return true;
  }

  void await_resume() const {
    if (token_ != nullptr && token_->is_cancelled()) throw operation_cancelled{};
  }

 private:
  cancel_state* token_ = nullptr;
};
}  // namespace detail

/// Suspends the task and puts it at the back of its worker's run queue, behind every task that
/// was ready before, so a task that yields in a loop cannot starve the others.
///
///     for (auto& chunk : chunks) { crunch(chunk); co_await weft::yield(); }
///
/// Cancellation: throws operation_cancelled if the task's cancellation was requested before or
/// while it waited. Errors: throws std::logic_error when awaited outside a runtime's worker.
[[nodiscard("yield() does nothing until it is co_awaited")]] inline detail::yield_awaiter
yield() noexcept {
  return {};
}

}  // namespace weft
