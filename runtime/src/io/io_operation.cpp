// io_op_base: submitting an SQE for a task, dispatching its CQE, and cancelling it from any thread
// (state machine in detail/io_op.hpp).
#include <weft/detail/io_op.hpp>

#include <cerrno>
#include <cstddef>
#include <string>
#include <type_traits>

#include <liburing.h>
#include <unistd.h>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/scheduler.hpp>

#include "scheduler/runtime_core.hpp"

namespace weft::detail {

io_op_base::~io_op_base() {
  hook_.disarm();
  // An fd that completed for a task destroyed before it resumed (runtime shutdown): nobody owns
  // it but us. (Operations still in flight at shutdown were drained by the worker.)
  if (returns_fd_ && !delivered_ && state_.load(std::memory_order_relaxed) == done && res_ >= 0) {
    ::close(res_);
  }
}

bool io_op_base::suspend(std::coroutine_handle<> caller, cancel_state* token, prep_fn prep,
                         void* context) {
  caller_ = caller;
  token_ = token;
  if (token != nullptr && token->is_cancelled()) return false;
  worker* w = this_worker();
  if (w == nullptr) throw_outside_runtime("weft::submit_io");
  reactor& r = w->io();
  if (!r.available()) {
    unavailable_ = true;
    return false;
  }
  io_uring_sqe* sqe = r.get_sqe();
  try {
    prep(context, sqe);
  } catch (...) {
    io_uring_prep_nop(sqe);  // the SQE is taken: make it harmless
    sqe->user_data = 0;
    throw;
  }
  sqe->user_data = reinterpret_cast<std::uint64_t>(this);
  sqe->flags &= static_cast<std::uint8_t>(~IOSQE_CQE_SKIP_SUCCESS);  // we need the CQE
  // For task dumps: "read fd 12".
  opcode_ = sqe->opcode;
  fd_ = sqe->fd;
  if (WEFT_UNLIKELY(r.faults() != nullptr)) r.faults()->on_submit(sqe);
  owner_ = w;
  r.track(this);
  state_.store(in_flight, std::memory_order_relaxed);
  // Registered after the state is in_flight, so a cancellation from now on finds something to
  // cancel; if it came already, on_cancel runs here, on the owner, and queues the cancel SQE.
  if (!hook_.arm(token, &on_cancel, this)) on_cancel(this);
  return true;
}

std::string io_op_base::describe() const {
  const char* what = "io_uring operation";
  switch (opcode_) {
    case IORING_OP_READ:
    case IORING_OP_READV:
    case IORING_OP_READ_FIXED:
      what = "read";
      break;
    case IORING_OP_WRITE:
    case IORING_OP_WRITEV:
    case IORING_OP_WRITE_FIXED:
      what = "write";
      break;
    case IORING_OP_RECV:
    case IORING_OP_RECVMSG:
      what = "recv";
      break;
    case IORING_OP_SEND:
    case IORING_OP_SENDMSG:
    case IORING_OP_SEND_ZC:
      what = "send";
      break;
    case IORING_OP_ACCEPT:
      what = "accept";
      break;
    case IORING_OP_CONNECT:
      what = "connect";
      break;
    case IORING_OP_POLL_ADD:
      what = "poll";
      break;
    case IORING_OP_OPENAT:
      what = "open";
      break;
    case IORING_OP_CLOSE:
      what = "close";
      break;
    case IORING_OP_FSYNC:
      what = "fsync";
      break;
    case IORING_OP_STATX:
      what = "statx";
      break;
    case IORING_OP_TIMEOUT:
      what = "io_uring timeout";
      break;
    case IORING_OP_SHUTDOWN:
      what = "shutdown";
      break;
    case IORING_OP_SOCKET:
      what = "socket";
      break;
    default:
      break;
  }
  std::string s = what;
  if (state_.load(std::memory_order_relaxed) == idle) return s + " (not submitted)";
  if (fd_ >= 0) s += " fd " + std::to_string(fd_);
  return s;
}

void io_op_base::on_cancel(void* self) noexcept {
  auto* op = static_cast<io_op_base*>(self);
  auto expected = in_flight;
  if (this_worker() == op->owner_) {
    if (!op->state_.compare_exchange_strong(expected, cancel_sent, std::memory_order_acq_rel)) {
      return;  // completed already
    }
    op->send_cancel();
    return;
  }
  if (op->state_.compare_exchange_strong(expected, cancel_queued, std::memory_order_acq_rel)) {
    op->mail_.run = &on_mail;
    op->owner_->io().post(&op->mail_);
  }
}

void io_op_base::send_cancel() noexcept {
  cancel_requested_ = true;
  reactor& r = owner_->io();
  if (r.draining()) return;  // the drain cancels everything in flight itself
  try {
    io_uring_sqe* sqe = r.get_sqe();
    io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(this), 0);
    sqe->user_data = 0;  // the cancel's own CQE says nothing we need
  } catch (...) {
    // The ring refuses submissions for good; the operation then completes on its own.
  }
}

static_assert(std::is_standard_layout_v<io_op_base>, "on_mail finds the operation by offsetof");

void io_op_base::on_mail(mailbox_node* node) noexcept {
  auto* op =
      reinterpret_cast<io_op_base*>(reinterpret_cast<char*>(node) - offsetof(io_op_base, mail_));
  // acquire: pairs with the CAS of the cancelling thread.
  const auto s = op->state_.load(std::memory_order_acquire);
  if (s == cancel_queued) {
    op->state_.store(cancel_sent, std::memory_order_relaxed);
    op->send_cancel();
  } else if (s == done_while_queued) {
    op->state_.store(done, std::memory_order_relaxed);
    op->cancel_requested_ = true;
    op->finish();
  }
}

void io_op_base::complete(int res, unsigned flags) noexcept {
  res_ = res;
  flags_ = flags;
  owner_->io().untrack(this);
  auto s = state_.load(std::memory_order_acquire);
  for (;;) {
    if (s == in_flight) {
      if (state_.compare_exchange_weak(s, done, std::memory_order_acq_rel)) break;
      continue;
    }
    if (s == cancel_queued) {
      // A cancellation from another thread waits in our mailbox and refers to this awaiter:
      // the mailbox resumes the task, so the awaiter lives until then.
      state_.store(done_while_queued, std::memory_order_relaxed);
      return;
    }
    state_.store(done, std::memory_order_relaxed);  // cancel_sent
    break;
  }
  finish();
}

void io_op_base::finish() noexcept {
  if (owner_->io().draining()) {
    // Shutdown: the task will be destroyed, not resumed; an fd nobody will receive is closed.
    if (returns_fd_ && res_ >= 0) ::close(res_);
    res_ = -ECANCELED;
    return;
  }
  owner_->resume_here(caller_);
}

io_result io_op_base::resume() {
  hook_.disarm();
  if (unavailable_) this_worker()->io().throw_unavailable();
  if (state_.load(std::memory_order_relaxed) == idle) throw operation_cancelled{};
  delivered_ = true;
  if (cancel_requested_ && (res_ == -ECANCELED || res_ == -EINTR)) throw operation_cancelled{};
  return io_result{res_, flags_};
}

}  // namespace weft::detail
