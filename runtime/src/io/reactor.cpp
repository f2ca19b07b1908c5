// The worker's io_uring.
//
// user_data of our CQEs: a pointer to an io_op_base (8-aligned), or one of the tags below in the
// low 3 bits. The worker's eventfd read is kept armed while it waits, so a write from any thread
// completes it and ends the wait; a worker waking another sends IORING_OP_MSG_RING instead, which
// posts a CQE straight into the target's ring (one syscall either way, but no eventfd re-arm).
#include "io/reactor.hpp"

#include <cerrno>
#include <cstring>
#include <new>
#include <system_error>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <weft/io/io_unavailable.hpp>
#include <weft/testing/fault_plan.hpp>

#include "scheduler/runtime_core.hpp"

namespace weft::detail {

namespace {

constexpr std::uint64_t tag_mask = 7;
constexpr std::uint64_t ignore_tag = 0;      // cancel requests, our own bookkeeping
constexpr std::uint64_t eventfd_tag = 1;     // the armed eventfd read completed
constexpr std::uint64_t msg_wake_tag = 2;    // another worker's MSG_RING arrived
constexpr std::uint64_t msg_failed_tag = 3;  // our MSG_RING failed; index of the target above
constexpr unsigned max_batch = 64;

}  // namespace

std::string describe_io_uring_error(int error) {
  std::string head =
      "weft: io_uring is unavailable, so this runtime runs tasks and timers but no I/O: ";
  if (error == ENOTSUP) {
    return head + "it was turned off with runtime_options::io_uring = false";
  }
  head += "io_uring_setup failed with " + errno_name(error) + " (" + std::strerror(error) + "): ";
  switch (error) {
    case ENOSYS:
      return head +
             "this kernel has no io_uring (older than 5.1, or built without CONFIG_IO_URING); "
             "run on a kernel that has it";
    case EPERM:
    case EACCES:
      return head +
             "io_uring is blocked, by a seccomp filter (Docker 25+ blocks it in its default "
             "profile: run the container with a profile that allows io_uring_setup, "
             "io_uring_enter and io_uring_register) or by sysctl kernel.io_uring_disabled (set it "
             "to 0, or to 1 and put this user in kernel.io_uring_group)";
    case ENOMEM:
      return head +
             "not enough locked memory for the ring (RLIMIT_MEMLOCK counts rings on kernels "
             "before 5.12): raise `ulimit -l`, or use smaller rings "
             "(runtime_options::io_ring_entries) or fewer workers";
    case EMFILE:
    case ENFILE:
      return head + "out of file descriptors: raise `ulimit -n`";
    default:
      return head + "see io_uring_setup(2)";
  }
}

reactor::reactor(worker& owner) : owner_(owner), external_(owner.rt().options.external_loop) {
  if (const fault_plan& plan = owner.rt().options.faults; !plan.empty()) {
    faults_ = std::make_unique<fault_injector>(plan, owner.index());
  }
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) {
    throw std::system_error(errno, std::generic_category(),
                            "weft::runtime: eventfd for worker wake-ups");
  }
}

reactor::~reactor() {
  if (available_) io_uring_queue_exit(&ring_);
  if (buffer_ring_ != nullptr) {
    ::munmap(buffer_ring_, buffer_count * sizeof(io_uring_buf));
    ::munmap(buffers_, buffer_count * buffer_size);
  }
  ::close(event_fd_);
}

bool reactor::provided_buffers_ready() noexcept {
  if (buffer_state_ != 0) return buffer_state_ > 0;
  buffer_state_ = -1;
  if (!available_) return false;
  // liburing 2.3 has no io_uring_setup_buf_ring: map the ring ourselves and register it.
  const std::size_t ring_bytes = buffer_count * sizeof(io_uring_buf);
  void* ring =
      ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ring == MAP_FAILED) return false;
  void* data = ::mmap(nullptr, buffer_count * buffer_size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) {
    ::munmap(ring, ring_bytes);
    return false;
  }
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(ring);
  reg.ring_entries = buffer_count;
  reg.bgid = buffer_group;
  if (io_uring_register_buf_ring(&ring_, &reg, 0) != 0) {
    ::munmap(ring, ring_bytes);
    ::munmap(data, buffer_count * buffer_size);
    return false;
  }
  buffer_ring_ = static_cast<io_uring_buf_ring*>(ring);
  buffers_ = static_cast<std::byte*>(data);
  io_uring_buf_ring_init(buffer_ring_);
  const int mask = io_uring_buf_ring_mask(buffer_count);
  for (unsigned i = 0; i < buffer_count; ++i) {
    io_uring_buf_ring_add(buffer_ring_, provided_buffer(static_cast<std::uint16_t>(i)), buffer_size,
                          static_cast<unsigned short>(i), mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(buffer_ring_, static_cast<int>(buffer_count));
  buffer_state_ = 1;
  return true;
}

void reactor::recycle_buffer(std::uint16_t bid) noexcept {
  io_uring_buf_ring_add(buffer_ring_, provided_buffer(bid), buffer_size, bid,
                        io_uring_buf_ring_mask(buffer_count), 0);
  io_uring_buf_ring_advance(buffer_ring_, 1);
}

void reactor::track(multishot* m) noexcept {
  m->prev_ = nullptr;
  m->next_ = multishot_head_;
  if (multishot_head_ != nullptr) multishot_head_->prev_ = m;
  multishot_head_ = m;
  ++in_flight_;
}

void reactor::untrack(multishot* m) noexcept {
  if (m->prev_ != nullptr) {
    m->prev_->next_ = m->next_;
  } else {
    multishot_head_ = m->next_;
  }
  if (m->next_ != nullptr) m->next_->prev_ = m->prev_;
  m->prev_ = m->next_ = nullptr;
  --in_flight_;
}

void reactor::open(const runtime_options& options) noexcept {
  if (!options.io_uring) {
    setup_error_ = ENOTSUP;
    return;
  }
  // Best first: one issuer with deferred task work (6.1), cooperative task work (5.19), plain.
  // A CQ several times the SQ absorbs bursts of completions without overflowing.
  const unsigned candidates[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
      IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
      IORING_SETUP_SUBMIT_ALL,
      0,
  };
  int error = 0;
  for (unsigned flags : candidates) {
    // An external loop's thread sleeps outside the ring (in the host's epoll_wait): cooperative
    // task work would post its completions only when that thread next enters the kernel for
    // itself, so they would never signal the eventfd. Deferred task work signals it when the
    // work is queued (the worker then runs it in its next enter); plain task work interrupts the
    // host's wait to post them.
    if (external_ && (flags & IORING_SETUP_COOP_TASKRUN) != 0) continue;
    io_uring_params p{};
    p.flags = flags | IORING_SETUP_CQSIZE;
    p.cq_entries = options.io_ring_entries * 4;
    error = -io_uring_queue_init_params(options.io_ring_entries, &ring_, &p);
    if (error == 0) {
      caps_.setup_flags = flags;
      caps_.features = p.features;
      break;
    }
    if (error != EINVAL) break;  // the kernel refuses io_uring, not the flags
  }
  if (error != 0) {
    setup_error_ = error;
    return;
  }
  if (external_) {
    // Every completion signals the eventfd that the host's loop waits on.
    if (const int r = io_uring_register_eventfd(&ring_, event_fd_); r < 0) {
      io_uring_queue_exit(&ring_);
      setup_error_ = -r;
      return;
    }
  }
  caps_.ext_arg = (caps_.features & IORING_FEAT_EXT_ARG) != 0;
  if (io_uring_probe* probe = io_uring_get_probe_ring(&ring_)) {
    caps_.msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING) != 0;
    io_uring_free_probe(probe);
  }
  available_ = true;
}

void reactor::throw_unavailable() const {
  throw io_unavailable(setup_error_, describe_io_uring_error(setup_error_));
}

io_uring_sqe* reactor::get_sqe() {
  for (;;) {
    if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) {
      sqe->user_data = ignore_tag;
      return sqe;
    }
    sq_full.add();
    submit_queued();
  }
}

void reactor::submit_queued() {
  for (;;) {
    const unsigned queued = io_uring_sq_ready(&ring_);
    if (queued == 0) return;
    const int r = submit_or_fault();
    if (r >= 0) {
      sqes_submitted.add(static_cast<unsigned>(r));
      if (static_cast<unsigned>(r) >= queued) return;
      continue;  // a partial submission: go on with the rest
    }
    if (r == -EINTR) continue;
    if (r == -EAGAIN || r == -EBUSY) {
      // The kernel is out of request memory or its CQ overflowed: make room by taking the
      // completions, then try again.
      io_uring_get_events(&ring_);
      reap();
      continue;
    }
    throw std::system_error(-r, std::generic_category(), "weft: io_uring_enter (submit)");
  }
}

int reactor::submit_or_fault() {
  int r = 0;
  if (WEFT_UNLIKELY(faults_ != nullptr) && faults_->fail_enter(r)) return r;
  r = io_uring_submit(&ring_);
  enters.add();
  return r;
}

void reactor::track(io_op_base* op) noexcept {
  op->prev_ = nullptr;
  op->next_ = in_flight_head_;
  if (in_flight_head_ != nullptr) in_flight_head_->prev_ = op;
  in_flight_head_ = op;
  ++in_flight_;
}

void reactor::untrack(io_op_base* op) noexcept {
  if (op->prev_ != nullptr) {
    op->prev_->next_ = op->next_;
  } else {
    in_flight_head_ = op->next_;
  }
  if (op->next_ != nullptr) op->next_->prev_ = op->prev_;
  op->prev_ = op->next_ = nullptr;
  --in_flight_;
}

bool reactor::busy() const noexcept {
  return available_ && (in_flight_ > 0 || io_uring_sq_ready(&ring_) > 0);
}

std::size_t reactor::poll() {
  if (!available_) return 0;
  if (busy()) {
    for (;;) {
      const unsigned queued = io_uring_sq_ready(&ring_);
      int r = 0;
      if (WEFT_UNLIKELY(faults_ != nullptr) && faults_->fail_enter(r)) {
        // refused before reaching the kernel: handled below like the kernel's own EAGAIN
      } else {
        r = io_uring_submit_and_get_events(&ring_);
        enters.add();
      }
      if (r >= 0) {
        sqes_submitted.add(static_cast<unsigned>(r));
        if (static_cast<unsigned>(r) >= queued) break;
        continue;
      }
      if (r == -EINTR) continue;
      if (r == -EAGAIN || r == -EBUSY) {
        reap();
        continue;
      }
      throw std::system_error(-r, std::generic_category(), "weft: io_uring_enter (poll)");
    }
  }
  return reap();
}

void reactor::arm_wake_read() noexcept {
  if (wake_armed_) return;
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, event_fd_, &wake_buffer_, sizeof wake_buffer_, 0);
  sqe->user_data = eventfd_tag;
  wake_armed_ = true;
}

std::size_t reactor::wait(std::int64_t timeout_ns) {
  if (external_) return wait_external(timeout_ns);
  arm_wake_read();
  __kernel_timespec ts{};
  __kernel_timespec* tsp = nullptr;
  // Held-back completions are due at the next polls: do not sleep on the kernel meanwhile.
  if (WEFT_UNLIKELY(faults_ != nullptr) && faults_->holding()) timeout_ns = 0;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1'000'000'000;
    ts.tv_nsec = timeout_ns % 1'000'000'000;
    tsp = &ts;
  }
  const unsigned queued = io_uring_sq_ready(&ring_);
  io_uring_cqe* cqe = nullptr;
  int r = 0;
  if (WEFT_UNLIKELY(faults_ != nullptr) && faults_->fail_enter(r)) {
    // refused before reaching the kernel: nothing was submitted
  } else {
    r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, tsp, nullptr);
    enters.add();
  }
  if (r >= 0) {
    sqes_submitted.add(queued);
  } else if (r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
    throw std::system_error(-r, std::generic_category(), "weft: io_uring_enter (wait)");
  }
  // -ETIME: the timer's deadline; -EINTR: a signal; -EAGAIN/-EBUSY: CQ overflow, taken below.
  return reap();
}

std::size_t reactor::wait_external(std::int64_t timeout_ns) {
  // Inside run_ready (a task_group's destructor helping): the same eventfd the host waits on
  // ends the sleep, so no read is armed on it (that would swallow the host's readiness).
  std::size_t n = poll();
  if (n > 0) return n;
  if (WEFT_UNLIKELY(faults_ != nullptr) && faults_->holding()) timeout_ns = 0;
  set_completion_signals(true);
  n = poll();  // what completed before the signals came back on signalled nothing
  if (n == 0 && timeout_ns != 0) {
    pollfd p{event_fd_, POLLIN, 0};
    timespec ts{};
    if (timeout_ns > 0) {
      ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
    }
    ::ppoll(&p, 1, timeout_ns < 0 ? nullptr : &ts, nullptr);  // EINTR: the caller loops
    drain_eventfd();
    n = poll();
  }
  set_completion_signals(false);
  return n;
}

void reactor::set_completion_signals(bool on) noexcept {
  // -EOPNOTSUPP on a kernel without the CQ flags: the signals then stay on (spurious wake-ups
  // of the host's loop, nothing lost).
  if (available_ && external_) io_uring_cq_eventfd_toggle(&ring_, on);
}

void reactor::drain_eventfd() noexcept {
  std::uint64_t count = 0;
  // Non-blocking: EAGAIN when nothing was signalled. One read takes the whole count.
  while (::read(event_fd_, &count, sizeof count) < 0 && errno == EINTR) {
  }
}

std::size_t reactor::dispatch_held() noexcept {
  due_.clear();
  try {
    due_.reserve(faults_->held_count());
  } catch (...) {
    return 0;  // try again at the next poll
  }
  faults_->take_due(due_, draining_);
  for (const auto& h : due_) {
    completions.add();
    reinterpret_cast<io_op_base*>(h.user_data)->complete(h.res, h.flags);
  }
  return due_.size();
}

std::size_t reactor::reap() noexcept {
  std::size_t ops = 0;
  if (WEFT_UNLIKELY(faults_ != nullptr) && faults_->holding()) ops += dispatch_held();
  if (io_uring_cq_has_overflow(&ring_)) {
    // The CQ was full and the kernel kept the surplus aside (IORING_FEAT_NODROP): flush it in.
    cq_overflows.add();
    io_uring_get_events(&ring_);
  }
  for (;;) {
    io_uring_cqe* batch[max_batch];
    const unsigned n = io_uring_peek_batch_cqe(&ring_, batch, max_batch);
    if (n == 0) break;
    // Copied out and consumed first: handlers may queue SQEs and flush, which may reap again.
    struct entry {
      std::uint64_t user_data;
      int res;
      unsigned flags;
    } copied[max_batch];
    for (unsigned i = 0; i < n; ++i) {
      copied[i] = {batch[i]->user_data, batch[i]->res, batch[i]->flags};
    }
    io_uring_cq_advance(&ring_, n);
    for (unsigned i = 0; i < n; ++i) {
      const std::uint64_t data = copied[i].user_data;
      if (data == LIBURING_UDATA_TIMEOUT) continue;
      if (WEFT_UNLIKELY(faults_ != nullptr) && data != 0 &&
          ((data & tag_mask) == ignore_tag || (data & tag_mask) == multishot_tag)) {
        copied[i].res = faults_->on_complete(data, copied[i].res);
        // Only single-shot operations are held back: a multishot's CQEs must stay in order.
        if ((data & tag_mask) == ignore_tag && !draining_ &&
            faults_->maybe_delay(data, copied[i].res, copied[i].flags)) {
          continue;
        }
      }
      switch (data & tag_mask) {
        case ignore_tag:
          if (data != 0) {
            ++ops;
            completions.add();
            reinterpret_cast<io_op_base*>(data)->complete(copied[i].res, copied[i].flags);
          }
          break;
        case eventfd_tag:
          wake_armed_ = false;
          break;
        case multishot_tag:
          ++ops;
          completions.add();
          reinterpret_cast<multishot*>(data & ~tag_mask)->on_cqe(copied[i].res, copied[i].flags);
          break;
        case msg_wake_tag:
          break;
        case msg_failed_tag: {
          // The target's CQ could not take the message (it overflowed): use its eventfd.
          const auto target = static_cast<std::size_t>(data >> 3);
          owner_.rt().workers[target]->io().write_eventfd();
          break;
        }
        default:
          break;
      }
    }
    if (n < max_batch) break;
  }
  return ops;
}

void reactor::write_eventfd() noexcept {
  const std::uint64_t one = 1;
  for (;;) {
    const ssize_t r = ::write(event_fd_, &one, sizeof one);
    // EAGAIN: the counter is saturated, so a wake-up is pending anyway.
    if (r >= 0 || errno != EINTR) return;
  }
}

void reactor::send_wake_from(reactor& sender) noexcept {
  io_uring_sqe* sqe = nullptr;
  try {
    sqe = sender.get_sqe();
  } catch (...) {
    write_eventfd();
    return;
  }
  io_uring_prep_msg_ring(sqe, ring_.ring_fd, 0, msg_wake_tag, 0);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  sqe->user_data = (static_cast<std::uint64_t>(owner_.index()) << 3) | msg_failed_tag;
  try {
    sender.submit_queued();
  } catch (...) {
    write_eventfd();
  }
}

void reactor::wake() noexcept {
  worker* sender = this_worker();
  if (available_ && !external_ && sender != nullptr && sender != &owner_ &&
      &sender->rt() == &owner_.rt() && sender->io().available_ && sender->io().caps_.msg_ring &&
      (sender->io().caps_.features & IORING_FEAT_CQE_SKIP) != 0 && !sender->io().draining_) {
    send_wake_from(sender->io());
  } else {
    write_eventfd();
  }
}

void reactor::post(mailbox_node* node) noexcept {
  runtime_core::foreign_call guard{owner_.rt()};
  mailbox_node* head = mailbox_.load(std::memory_order_relaxed);
  do {
    node->next = head;
    // release: publishes the node and the awaiter's state to run_mail's acquire.
  } while (!mailbox_.compare_exchange_weak(head, node, std::memory_order_release,
                                           std::memory_order_relaxed));
  owner_.park_state().unpark();
}

std::size_t reactor::run_mail() noexcept {
  if (mailbox_.load(std::memory_order_relaxed) == nullptr) return 0;
  mailbox_node* list = mailbox_.exchange(nullptr, std::memory_order_acquire);
  // The stack is newest-first; reverse it so requests run in the order they were posted.
  mailbox_node* ordered = nullptr;
  while (list != nullptr) {
    mailbox_node* next = list->next;
    list->next = ordered;
    ordered = list;
    list = next;
  }
  std::size_t n = 0;
  while (ordered != nullptr) {
    mailbox_node* next = ordered->next;  // read first: run() may let the owner be destroyed
    ordered->run(ordered);
    ordered = next;
    ++n;
  }
  return n;
}

void reactor::drain_for_shutdown() noexcept {
  draining_ = true;
  if (!available_) return;
  try {
    run_mail();
    reap();  // completions the fault injector held back: none will come from the kernel
    for (io_op_base* op = in_flight_head_; op != nullptr; op = op->next_) {
      io_uring_sqe* sqe = get_sqe();
      io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(op), 0);
      sqe->user_data = ignore_tag;
    }
    for (multishot* m = multishot_head_; m != nullptr; m = m->next_) m->cancel_for_shutdown();
    if (wake_armed_) {
      io_uring_sqe* sqe = get_sqe();
      io_uring_prep_cancel64(sqe, eventfd_tag, 0);
      sqe->user_data = ignore_tag;
    }
    while (in_flight_ > 0 || wake_armed_) {
      const int r = io_uring_submit_and_wait(&ring_, 1);
      if (r < 0 && r != -EINTR && r != -ETIME && r != -EAGAIN && r != -EBUSY) break;
      reap();
      run_mail();
    }
  } catch (...) {
    // The ring refuses submissions; closing it (in the destructor) cancels what is left.
  }
}

}  // namespace weft::detail
