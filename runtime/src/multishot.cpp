// multishot: one armed multishot accept or receive per socket, its CQEs queued on the owner
// worker and handed to one reading task.
//
// Everything but the reference count and the reader's cancellation state is touched only on the
// owner worker's thread (the worker whose ring the operation is armed on). A reader on another
// worker first moves itself there through the owner's mailbox; a cancellation from elsewhere goes
// through the same mailbox. Received data is copied into the reader's buffer and the provided
// buffer goes straight back to the ring, so buffers never leave the owner.
#include <weft/detail/multishot.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include <liburing.h>
#include <unistd.h>

#include "runtime_core.hpp"

namespace weft::detail {

multishot* multishot::create(int fd, mode m) {
  // The one allocation per socket: the state must stay put while the kernel refers to it.
  return new multishot(fd, m);  // NOLINT: owned through refs_, freed in release()
}

multishot::~multishot() = default;

void multishot::release() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;  // NOLINT: see create
}

void multishot::close() noexcept {
  if (owner_ == nullptr) {
    // Never read from: nothing armed, nothing queued.
    release();
    return;
  }
  // On the owner, or at shutdown once the owner drained (its thread no longer touches us).
  if (this_worker() == owner_ || owner_->io().draining()) {
    close_on_owner();
    return;
  }
  close_mail_.run = &on_close_mail;
  close_mail_.self = this;
  owner_->io().post(&close_mail_);
}

void multishot::on_close_mail(mailbox_node* node) noexcept {
  static_cast<mail*>(node)->self->close_on_owner();
}

void multishot::close_on_owner() noexcept {
  closed_ = true;
  if (armed_) send_cancel();
  while (count_ > 0) {
    chunk& c = queue_[head_];
    if (c.has_buffer) recycle(c);
    if (mode_ == mode::accept && c.res >= 0) ::close(c.res);  // accepted, never handed out
    head_ = (head_ + 1) % queue_.size();
    --count_;
  }
  release();
}

void multishot::recycle(const chunk& c) noexcept {
  owner_->io().recycle_buffer(c.bid);
}

void multishot::send_cancel() noexcept {
  if (cancel_sent_) return;
  reactor& r = owner_->io();
  if (r.draining()) return;  // the drain cancels every armed multishot itself
  cancel_sent_ = true;
  try {
    io_uring_sqe* sqe = r.get_sqe();
    io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(this) | reactor::multishot_tag, 0);
    sqe->user_data = 0;
  } catch (...) {
    // The ring refuses submissions for good; the drain at shutdown ends the operation.
  }
}

void multishot::cancel_for_shutdown() noexcept {
  reactor& r = owner_->io();
  try {
    io_uring_sqe* sqe = r.get_sqe();
    io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(this) | reactor::multishot_tag, 0);
    sqe->user_data = 0;
  } catch (...) {
  }
}

void multishot::arm() noexcept {
  reactor& r = owner_->io();
  io_uring_sqe* sqe = nullptr;
  try {
    sqe = r.get_sqe();
  } catch (...) {
    return;  // armed_ stays false: the reader falls back to a plain operation
  }
  if (mode_ == mode::accept) {
    io_uring_prep_multishot_accept(sqe, fd_, nullptr, nullptr, SOCK_CLOEXEC);
  } else {
    io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = reactor::buffer_group;
  }
  sqe->user_data = reinterpret_cast<std::uint64_t>(this) | reactor::multishot_tag;
  if (WEFT_UNLIKELY(r.faults() != nullptr)) r.faults()->on_submit(sqe);
  armed_ = true;
  cancel_sent_ = false;
  refs_.fetch_add(1, std::memory_order_relaxed);  // the kernel's reference, until the last CQE
  r.track(this);
}

void multishot::on_cqe(int res, unsigned flags) noexcept {
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  const bool has_buffer = (flags & IORING_CQE_F_BUFFER) != 0;
  const auto bid = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
  bool keep = !closed_;
  if (!more) {
    armed_ = false;
    owner_->io().untrack(this);
    // The end of the operation: cancelled by us, out of provided buffers (the next read arms it
    // again, or falls back), or a real end (EOF, an error) that the reader must see.
    if (res == -ECANCELED || res == -ENOBUFS) keep = false;
    if (res == -EINVAL && !delivered_any_) {
      unsupported_ = true;  // an older kernel: this opcode or flag is unknown to it
      keep = false;
    }
  }
  if (res >= 0) delivered_any_ = true;
  if (keep) {
    if (count_ == queue_.size()) {
      // Grow the circular queue, keeping order (rare: a reader far behind).
      std::vector<chunk> bigger(std::max<std::size_t>(8, queue_.size() * 2));
      for (std::size_t i = 0; i < count_; ++i) bigger[i] = queue_[(head_ + i) % queue_.size()];
      queue_ = std::move(bigger);
      head_ = 0;
    }
    queue_[(head_ + count_) % queue_.size()] = chunk{res, bid, has_buffer, 0};
    ++count_;
  } else {
    if (has_buffer) owner_->io().recycle_buffer(bid);
    if (mode_ == mode::accept && res >= 0 && closed_) ::close(res);
  }
  // At shutdown the waiting task is destroyed, not resumed (its awaiter unlinks itself).
  if (read_awaiter* r = waiter_; r != nullptr && !owner_->io().draining()) {
    if (count_ > 0 || !armed_) {
      auto expected = read_awaiter::waiting;
      if (r->state_.compare_exchange_strong(expected, read_awaiter::done,
                                            std::memory_order_acq_rel)) {
        waiter_ = nullptr;
        if (count_ > 0) {
          take_front(*r);
        } else if (closed_) {
          r->result_ = {multishot_result::error, EBADF};  // closed under the reader
        } else {
          r->result_ = {multishot_result::fallback, 0};  // ended without data: read again
        }
        owner_->resume_here(r->caller_);
      }
      // cancel_queued: the mailbox resumes it; the data stays queued for the next read.
    }
  }
  if (!more) release();  // the kernel's reference (may free this)
}

void multishot::take_front(read_awaiter& r) noexcept {
  chunk& c = queue_[head_];
  auto pop = [&] {
    head_ = (head_ + 1) % queue_.size();
    --count_;
  };
  if (c.res < 0) {
    r.result_ = {multishot_result::error, -c.res};
    pop();
    return;
  }
  if (mode_ == mode::accept) {
    r.result_ = {multishot_result::fd, c.res};
    pop();
    return;
  }
  if (c.res == 0) {
    eof_ = true;
    r.result_ = {multishot_result::data, 0};
    pop();
    return;
  }
  // Copy as much as fits; what does not stays at the front for the next read.
  std::size_t copied = 0;
  while (count_ > 0 && copied < r.buf_.size()) {
    chunk& f = queue_[head_];
    if (f.res <= 0 || !f.has_buffer) break;  // an end or error after data: the next read
    const std::size_t left = static_cast<std::size_t>(f.res) - f.offset;
    const std::size_t n = std::min(left, r.buf_.size() - copied);
    std::memcpy(r.buf_.data() + copied, owner_->io().provided_buffer(f.bid) + f.offset, n);
    copied += n;
    if (n == left) {
      recycle(f);
      pop();
    } else {
      f.offset += static_cast<std::uint32_t>(n);
    }
  }
  r.result_ = {multishot_result::data, static_cast<int>(copied)};
}

bool multishot::take_or_wait(read_awaiter& r) noexcept {
  if (count_ > 0) {
    take_front(r);
    return true;
  }
  if (eof_) {
    r.result_ = {multishot_result::data, 0};
    return true;
  }
  if (closed_) {
    r.result_ = {multishot_result::error, EBADF};
    return true;
  }
  if (!armed_) {
    if (unsupported_ || (mode_ == mode::recv && !owner_->io().provided_buffers_ready())) {
      r.result_ = {multishot_result::fallback, 0};
      return true;
    }
    arm();
    if (!armed_) {
      r.result_ = {multishot_result::fallback, 0};
      return true;
    }
  }
  // Registered before the hook, so a cancellation finds a waiter to unlink. One requested
  // already ends the read here: nothing was consumed.
  r.state_.store(read_awaiter::waiting, std::memory_order_release);
  waiter_ = &r;
  if (!r.hook_.arm(r.token_, &read_awaiter::on_cancel, &r)) {
    waiter_ = nullptr;
    r.state_.store(read_awaiter::done, std::memory_order_relaxed);
    r.result_ = {multishot_result::cancelled, 0};
    return true;
  }
  return false;
}

multishot::read_awaiter::~read_awaiter() {
  hook_.disarm();
  // Destroyed while still waiting: only at shutdown, after the owner stopped.
  if (m_.waiter_ == this) m_.waiter_ = nullptr;
  m_.release();
}

bool multishot::read_awaiter::suspend(std::coroutine_handle<> caller, cancel_state* token) {
  caller_ = caller;
  token_ = token;
  if (token != nullptr && token->is_cancelled()) {
    result_ = {multishot_result::cancelled, 0};
    return false;
  }
  worker* w = this_worker();
  if (w == nullptr) throw_outside_runtime("weft::net (multishot read)");
  if (!w->io().available()) {
    result_ = {multishot_result::fallback, 0};  // the plain path reports io_unavailable
    return false;
  }
  if (m_.owner_ == nullptr) m_.owner_ = w;
  if (m_.owner_ != w) {
    // The operation lives on another worker's ring: continue there.
    migrating_ = true;
    mail_.run = &on_mail;
    mail_.self = this;
    m_.owner_->io().post(&mail_);
    return true;
  }
  return !m_.take_or_wait(*this);
}

void multishot::read_awaiter::on_cancel(void* self) noexcept {
  auto* r = static_cast<read_awaiter*>(self);
  multishot& m = r->m_;
  if (this_worker() == m.owner_) {
    auto expected = waiting;
    if (!r->state_.compare_exchange_strong(expected, done, std::memory_order_acq_rel)) return;
    m.waiter_ = nullptr;
    r->result_ = {multishot_result::cancelled, 0};
    m.owner_->resume_here(r->caller_);  // the task is suspended: take_or_wait handled "already"
    return;
  }
  auto expected = waiting;
  if (r->state_.compare_exchange_strong(expected, cancel_queued, std::memory_order_acq_rel)) {
    r->migrating_ = false;
    r->mail_.run = &on_mail;
    r->mail_.self = r;
    m.owner_->io().post(&r->mail_);
  }
}

void multishot::read_awaiter::on_mail(mailbox_node* node) noexcept {
  auto* r = static_cast<mail*>(node)->self;
  multishot& m = r->m_;
  if (r->migrating_) {
    r->migrating_ = false;
    if (r->token_ != nullptr && r->token_->is_cancelled()) {
      r->result_ = {multishot_result::cancelled, 0};
      m.owner_->resume_here(r->caller_);
      return;
    }
    if (m.take_or_wait(*r)) m.owner_->resume_here(r->caller_);
    return;
  }
  // A cancellation from another thread.
  if (r->state_.load(std::memory_order_acquire) == cancel_queued) {
    r->state_.store(done, std::memory_order_relaxed);
    if (m.waiter_ == r) m.waiter_ = nullptr;
    r->result_ = {multishot_result::cancelled, 0};
    m.owner_->resume_here(r->caller_);
  }
}

}  // namespace weft::detail
