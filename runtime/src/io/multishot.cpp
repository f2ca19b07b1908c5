// multishot: one armed multishot accept or receive per socket, its CQEs queued on the owner
// worker and handed to one reading task.
//
// Everything but the reference count and the reader's cancellation state is touched only on the
// owner worker's thread (the worker whose ring the operation is armed on). A reader on another
// worker first moves itself there through the owner's mailbox; a cancellation from elsewhere goes
// through the same mailbox. Received data is copied into the reader's buffer and the provided
// buffer goes straight back to the ring, so buffers never leave the owner.
//
// A socket may outlive the runtime that read it. So the owner is known to other threads through
// its home: one per worker, reference counted by the multishots homed there, with a lock and an
// `alive` flag that runtime shutdown clears once the worker's thread has stopped. A thread that
// is not the owner reads the flag under that lock and posts to the owner's mailbox only while it
// holds it: the worker (and its runtime) cannot go meanwhile. Once the home is gone, no thread of
// that runtime touches the multishot again: close() finishes on the caller's thread, and a read
// is refused (the data the multishot had queued was in the dead ring's buffers).
#include <weft/detail/multishot.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include <liburing.h>
#include <unistd.h>

#include "scheduler/runtime_core.hpp"

namespace weft::detail {

/// Where the multishots of one worker live; outlives the worker while one of them does.
class multishot_home {
 public:
  multishot_home(worker& w, runtime_core& rt) noexcept : owner(&w), runtime(&rt) {}
  multishot_home(const multishot_home&) = delete;
  multishot_home& operator=(const multishot_home&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;  // NOLINT: see home_of
  }

  worker* const owner;          // dereferenced only while alive (under lock) or on its thread
  runtime_core* const runtime;  // compared, never dereferenced once gone
  std::mutex lock;
  bool alive = true;             // guarded by lock
  multishot* closing = nullptr;  // close mails posted, not yet run (guarded by lock)

 private:
  ~multishot_home() = default;
  std::atomic<int> refs_{1};  // the registry's (until the worker is gone) and one per multishot
};

namespace {

/// The home this thread made last, to find it again without the registry's lock. Only a hint:
/// an external loop's thread is its worker only inside run_ready, and may drive several runtimes
/// one after another (or at once), so "on the owner" is decided by this_worker(), never by this.
thread_local multishot_home* tls_home = nullptr;

/// The homes of live workers, for runtime shutdown to find.
struct home_registry {
  std::mutex lock;
  std::vector<multishot_home*> homes;
};
home_registry& registry() {
  // Never destroyed: a static runtime may shut down after any other static is gone.
  static home_registry* r = new home_registry;  // NOLINT: intentionally leaked
  return *r;
}

multishot_home& home_of(worker& w) {
  // tls_home is cleared when its worker goes (worker_gone, on this thread for an external loop;
  // a worker thread's own ends with it), so it never points at a freed home here.
  if (tls_home != nullptr && tls_home->owner == &w) return *tls_home;
  home_registry& r = registry();
  std::lock_guard guard{r.lock};
  // Another runtime's external loop on this thread may have made the last home: look for this
  // worker's before making one (one home per worker, which worker_gone finds).
  for (multishot_home* h : r.homes) {
    if (h->owner == &w) {
      tls_home = h;
      return *h;
    }
  }
  auto* h = new multishot_home(w, w.rt());  // NOLINT: reference counted, freed in release()
  try {
    r.homes.push_back(h);
  } catch (...) {
    h->release();
    throw;
  }
  tls_home = h;
  return *h;
}

}  // namespace

multishot* multishot::create(int fd, mode m) {
  // The one allocation per socket: the state must stay put while the kernel refers to it.
  return new multishot(fd, m);  // NOLINT: owned through refs_, freed in release()
}

multishot::~multishot() {
  if (home_ != nullptr) home_->release();
}

void multishot::release() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;  // NOLINT: see create
}

bool multishot::on_owner() const noexcept {
  // The worker that owns this multishot runs on this thread now. Its home is alive then: a
  // worker is gone only after it stopped (its thread joined, or its external loop shut down on
  // this thread), so the unlocked read is ordered after worker_gone's write, and a new worker
  // that got the old one's address is told apart by it.
  worker* w = this_worker();
  return w != nullptr && w == owner_ && home_->alive;
}

void multishot::adopt(worker& w) {
  multishot_home& h = home_of(w);
  h.add_ref();
  home_ = &h;
  owner_ = &w;
}

void multishot::close() noexcept {
  if (home_ == nullptr) {
    // Never read from: nothing armed, nothing queued.
    release();
    return;
  }
  if (on_owner()) {
    close_on_owner();
    return;
  }
  {
    std::lock_guard guard{home_->lock};
    if (home_->alive) {
      // Listed until the owner runs the mail: if its runtime stops first, shutdown finishes it.
      close_next_ = home_->closing;
      home_->closing = this;
      close_mail_.run = &on_close_mail;
      close_mail_.self = this;
      owner_->io().post(&close_mail_);
      return;
    }
  }
  close_orphaned();
}

void multishot::on_close_mail(mailbox_node* node) noexcept {
  multishot* m = static_cast<mail*>(node)->self;
  {
    std::lock_guard guard{m->home_->lock};
    multishot** link = &m->home_->closing;
    while (*link != m) link = &(*link)->close_next_;
    *link = m->close_next_;
  }
  m->close_on_owner();
}

void multishot::close_orphaned() noexcept {
  closed_ = true;
  // Still armed only if the drain at shutdown failed (the ring refused submissions): the kernel's
  // reference then never comes back, and the state is left to it rather than freed under it.
  while (count_ > 0) {
    const chunk& c = queue_[head_];
    if (mode_ == mode::accept && c.res >= 0) ::close(c.res);  // accepted, never handed out
    head_ = (head_ + 1) % queue_.size();
    --count_;
  }
  release();
}

void multishot::worker_gone(worker& w) noexcept {
  multishot_home* home = nullptr;
  {
    home_registry& r = registry();
    std::lock_guard guard{r.lock};
    auto it = std::find_if(r.homes.begin(), r.homes.end(),
                           [&](const multishot_home* h) { return h->owner == &w; });
    if (it == r.homes.end()) return;  // it never read a socket
    home = *it;
    r.homes.erase(it);
  }
  if (tls_home == home) tls_home = nullptr;  // an external loop shuts down on its own thread
  multishot* pending = nullptr;
  {
    std::lock_guard guard{home->lock};
    home->alive = false;
    pending = std::exchange(home->closing, nullptr);
  }
  // Closes that were posted and never ran: their sockets are closed, so nothing else refers to
  // these but readers of this runtime, whose tasks shutdown destroys on this thread.
  while (pending != nullptr) {
    multishot* next = pending->close_next_;
    pending->close_orphaned();
    pending = next;
  }
  home->release();  // the registry's
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
  if (owner_->io().draining()) {
    // Shutdown (a reader's mail run by the drain): its task is destroyed, never resumed, and
    // nothing may be armed after the drain cancelled what was.
    r.result_ = {multishot_result::cancelled, 0};
    return true;
  }
  if (waiter_ != nullptr && waiter_ != &r) {
    // A second reader would take the first one's place, and the first would never resume.
    r.result_ = {multishot_result::busy, 0};
    return true;
  }
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
  if (m_.home_ == nullptr) {
    if (!w->io().available()) {
      result_ = {multishot_result::fallback, 0};  // the plain path reports io_unavailable
      return false;
    }
    m_.adopt(*w);
  }
  if (m_.on_owner()) return !m_.take_or_wait(*this);
  std::lock_guard guard{m_.home_->lock};
  if (!m_.home_->alive || m_.home_->runtime != &w->rt()) {
    result_ = {multishot_result::wrong_runtime, m_.home_->alive
                                                    ? multishot_result::wrong_runtime_other
                                                    : multishot_result::wrong_runtime_gone};
    return false;
  }
  // The operation lives on another worker's ring: continue there.
  migrating_ = true;
  mail_.run = &on_mail;
  mail_.self = this;
  m_.owner_->io().post(&mail_);
  return true;
}

void multishot::read_awaiter::on_cancel(void* self) noexcept {
  auto* r = static_cast<read_awaiter*>(self);
  multishot& m = r->m_;
  if (m.on_owner()) {
    auto expected = waiting;
    if (!r->state_.compare_exchange_strong(expected, done, std::memory_order_acq_rel)) return;
    m.waiter_ = nullptr;
    r->result_ = {multishot_result::cancelled, 0};
    m.owner_->resume_here(r->caller_);  // the task is suspended: take_or_wait handled "already"
    return;
  }
  std::lock_guard guard{m.home_->lock};
  // Gone: the reader's task goes with its runtime (it waits only on its own runtime's owner).
  if (!m.home_->alive) return;
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
