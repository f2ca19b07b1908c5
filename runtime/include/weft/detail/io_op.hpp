// The state of one io_uring operation, kept in the awaiter in the coroutine frame: the reactor's
// CQE handler finds it through user_data.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <string>

#include <weft/detail/cancel_hook.hpp>

struct io_uring_sqe;

namespace weft {

/// A CQE's outcome: `res` is the operation's result (negative errno on failure), `flags` the
/// CQE's flags (IORING_CQE_F_*).
struct io_result {
  int res = 0;
  unsigned flags = 0;
};

namespace detail {

class worker;
class reactor;

/// A request posted to a worker from another thread (cancellation of one of its timers or
/// operations); the worker runs it on its own thread.
struct mailbox_node {
  mailbox_node* next = nullptr;
  /// Finds its owner from the node (owners are standard-layout: offsetof).
  void (*run)(mailbox_node* self) noexcept = nullptr;
};

/// One submitted SQE and the coroutine waiting for its CQE.
///
/// State machine (state_), so that exactly one party resumes the coroutine and the awaiter stays
/// alive while a worker's mailbox refers to it:
///   idle -> in_flight (submitted) -> done                        CQE, resumed by the owner
///   in_flight -> cancel_sent -> done                             cancelled on the owner's thread
///   in_flight -> cancel_queued -> cancel_sent -> done            cancelled from another thread
///   cancel_queued -> done_while_queued -> done                   the CQE came first
/// Only the owner worker's thread moves out of cancel_queued/done_while_queued/cancel_sent; other
/// threads only move in_flight -> cancel_queued.
class io_op_base {
 public:
  io_op_base(const io_op_base&) = delete;
  io_op_base& operator=(const io_op_base&) = delete;

 protected:
  using prep_fn = void (*)(void* context, io_uring_sqe* sqe);

  io_op_base() noexcept = default;
  /// Closes an fd that an fd-returning operation produced but nobody received (shutdown).
  ~io_op_base();

  /// Submits (queues) the SQE that prep fills. False: resume at once (cancelled before it was
  /// submitted, or no io_uring); await_resume then throws.
  bool suspend(std::coroutine_handle<> caller, cancel_state* token, prep_fn prep, void* context);
  void set_returns_fd(bool fd) noexcept { returns_fd_ = fd; }
  [[nodiscard]] bool returns_fd() const noexcept { return returns_fd_; }
  /// The CQE's result; throws operation_cancelled if the operation was cancelled (before it was
  /// submitted, or the kernel reports ECANCELED/EINTR after a cancellation), io_unavailable
  /// without io_uring.
  io_result resume();

 public:
  /// "read fd 12": the operation as a task dump shows it.
  [[nodiscard]] std::string describe() const;

 private:
  friend class reactor;
  static constexpr std::uint8_t idle = 0, in_flight = 1, cancel_queued = 2, done_while_queued = 3,
                                cancel_sent = 4, done = 5;

  static void on_cancel(void* self) noexcept;
  static void on_mail(mailbox_node* node) noexcept;
  void send_cancel() noexcept;
  /// The owner's CQE handler.
  void complete(int res, unsigned flags) noexcept;
  void finish() noexcept;

  mailbox_node mail_;
  io_op_base* prev_ = nullptr;  // the owner reactor's list of operations in flight
  io_op_base* next_ = nullptr;
  worker* owner_ = nullptr;
  std::coroutine_handle<> caller_;
  cancel_state* token_ = nullptr;
  cancel_hook hook_;
  int res_ = 0;
  unsigned flags_ = 0;
  std::atomic<std::uint8_t> state_{idle};
  bool cancel_requested_ = false;  // owner thread only
  bool unavailable_ = false;
  bool delivered_ = false;
  bool returns_fd_ = false;
  std::uint8_t opcode_ = 0xFF;  // the submitted SQE's, for describe()
  int fd_ = -1;
};

}  // namespace detail
}  // namespace weft
