// weft::submit_io: the one awaitable for "submit this SQE, resume with its CQE" that file and
// network operations build on.
//
// Thread safety: awaited from a task on a worker (std::logic_error elsewhere); `prep` runs there,
// on the thread that owns the ring, and the task resumes there. A cancellation may come from any
// thread: it is posted to that worker.
//
// Cancellation: nothing is submitted for a task cancelled first; cancelled in flight, the task
// waits for the kernel's completion, then throws operation_cancelled, or returns the result if the
// operation completed first (see submit_io).
#pragma once

#include <coroutine>
#include <type_traits>
#include <utility>

#include <weft/detail/await_check.hpp>
#include <weft/detail/io_op.hpp>
#include <weft/detail/task_frame.hpp>

namespace weft {

namespace detail {
template <class Prep>
class [[nodiscard("submit_io does nothing until it is co_awaited")]] io_awaiter final
    : io_op_base,
      public await_check {
 public:
  io_awaiter(Prep prep, bool returns_fd) noexcept(std::is_nothrow_move_constructible_v<Prep>)
      : await_check("weft::submit_io() was never co_awaited: nothing is submitted"),
        prep_(std::move(prep)) {
    set_returns_fd(returns_fd);
  }
  /// Movable until it is awaited (to hand it to a combinator).
  io_awaiter(io_awaiter&& other) noexcept(std::is_nothrow_move_constructible_v<Prep>)
      : await_check(std::move(other)), prep_(std::move(other.prep_)) {
    set_returns_fd(other.returns_fd());
  }

  bool await_ready() const noexcept {
    mark_awaited();
    return false;
  }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> caller) {
    return suspend(caller, token_of(caller), &call_prep, this);
  }
  io_result await_resume() {
    return resume();
  }
  void describe_await(await_description& d) const { d.what = describe(); }

 private:
  static void call_prep(void* self, io_uring_sqe* sqe) {
    static_cast<io_awaiter*>(self)->prep_(sqe);
  }
  Prep prep_;
};
}  // namespace detail

/// What an operation's result is, so that a cancelled or abandoned operation releases it.
enum class io_returns {
  value,  // a count or nothing
  fd,     // a new file descriptor (openat, accept, socket): closed if nobody receives it
};

/// Submits one SQE on the current worker's io_uring and suspends until its completion; returns
/// the CQE's result and flags (a negative res is the errno; nothing is thrown for it).
///
///     #include <liburing.h>
///     auto r = co_await weft::submit_io([&](io_uring_sqe* sqe) {
///       io_uring_prep_read(sqe, fd, buf.data(), buf.size(), offset);
///     });
///     if (r.res < 0) throw std::system_error(-r.res, std::generic_category(), "read");
///
/// `prep` fills the SQE (it must not set user_data) and runs on the awaiting task's worker,
/// which owns the ring; the SQE is submitted with the worker's next batch (before it waits, or
/// after a burst of tasks), and the task resumes on that worker. Everything the SQE points to
/// must stay alive until the co_await returns; it does when it lives in the coroutine frame.
///
/// Cancellation: a task cancelled before submission throws operation_cancelled without
/// submitting. Cancelled while in flight, the operation gets IORING_OP_ASYNC_CANCEL and the task
/// stays suspended until the kernel's completion for it arrives (so its buffers are never
/// written after the co_await returns); it then throws operation_cancelled if the kernel
/// cancelled it, or returns the result if the operation completed first. An fd produced after
/// the task was abandoned (runtime shutdown) is closed when `returns` is io_returns::fd.
/// Errors: io_unavailable when the runtime has no io_uring; std::logic_error outside a worker.
template <class Prep>
requires std::is_invocable_v<Prep&, io_uring_sqe*>
[[nodiscard("submit_io does nothing until it is co_awaited")]] detail::io_awaiter<Prep> submit_io(
    Prep prep, io_returns returns = io_returns::value) {
  return detail::io_awaiter<Prep>{std::move(prep), returns == io_returns::fd};
}

}  // namespace weft
