// fault_injector: faults are decided at submission, where they can be made real. An injected
// error turns the SQE into a NOP (so no data moves and no fd is made: the error is the whole
// story), and a short transfer asks the kernel for fewer bytes (so the partial transfer really
// happened). Rewriting a completion after the kernel performed the operation would lose or
// duplicate data and test the injector instead of the program.
#include "io/fault_injector.hpp"

#include <cerrno>

#include <liburing.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

namespace weft::detail {

fault_injector::fault_injector(const fault_plan& plan, std::size_t worker_index) : plan_(plan) {
  for (std::uint64_t i = 0; i < 3; ++i) {
    state_[i] = plan.seed ^ (0xD1B54A32D192ED03ULL * (worker_index * 3 + i + 1));
  }
}

std::uint64_t fault_injector::next(stream s) noexcept {
  // splitmix64: tiny, fast, and every seed gives a good sequence.
  std::uint64_t z = (state_[s] += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

bool fault_injector::roll(stream s, double rate) noexcept {
  if (rate <= 0) return false;
  // 53 random bits as a double in [0, 1).
  return static_cast<double>(next(s) >> 11) * 0x1.0p-53 < rate;
}

unsigned fault_injector::kind_of(const io_uring_sqe* sqe) noexcept {
  switch (sqe->opcode) {
    case IORING_OP_READ:
    case IORING_OP_READV:
    case IORING_OP_READ_FIXED:
      return io_kinds::read;
    case IORING_OP_WRITE:
    case IORING_OP_WRITEV:
    case IORING_OP_WRITE_FIXED:
      return io_kinds::write;
    case IORING_OP_RECV:
    case IORING_OP_RECVMSG:
      return io_kinds::recv;
    case IORING_OP_SEND:
    case IORING_OP_SENDMSG:
    case IORING_OP_SEND_ZC:
    case IORING_OP_SENDMSG_ZC:
      return io_kinds::send;
    case IORING_OP_ACCEPT:
      return io_kinds::accept;
    case IORING_OP_CONNECT:
      return io_kinds::connect;
    default:
      return io_kinds::other;
  }
}

namespace {

// A length in [1, len): a real partial transfer.
unsigned shorter(unsigned len, std::uint64_t r) noexcept {
  return 1 + static_cast<unsigned>(r % (len - 1));
}

// The first buffer of a vectored transfer, cut short, as a plain transfer of `op`. False if it
// cannot be cut (one byte in all).
bool first_buffer_only(io_uring_sqe* sqe, const iovec* iov, std::size_t count, std::uint8_t op,
                       std::uint64_t r) noexcept {
  if (count == 0 || iov[0].iov_len == 0) return false;
  std::size_t len = iov[0].iov_len;
  if (len > 0xFFFFFFFFu) len = 0xFFFFFFFFu;
  unsigned cut = static_cast<unsigned>(len);
  if (count == 1) {
    if (len < 2) return false;
    cut = shorter(static_cast<unsigned>(len), r);
  } else if (len >= 2) {
    cut = shorter(static_cast<unsigned>(len), r);
  }
  sqe->opcode = op;
  sqe->addr = reinterpret_cast<std::uint64_t>(iov[0].iov_base);
  sqe->len = cut;
  return true;
}

// Whether a transfer on this SQE's fd may be partial: a stream socket, a file or a pipe may, a
// datagram may not (the kernel sends or receives a datagram whole; cutting it would corrupt it).
// A syscall or two per cut, paid only when a fault plan asks for short transfers.
bool may_cut(const io_uring_sqe* sqe) noexcept {
  if ((sqe->flags & IOSQE_FIXED_FILE) != 0) return false;  // an index into a table, not an fd
  struct stat st {};
  if (::fstat(sqe->fd, &st) != 0) return false;
  // Not an eventfd, timerfd or signalfd either: they read and write whole 8-byte counters.
  if (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode)) return true;
  if (!S_ISSOCK(st.st_mode)) return false;
  int type = 0;
  socklen_t len = sizeof type;
  return ::getsockopt(sqe->fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

}  // namespace

void fault_injector::on_submit(io_uring_sqe* sqe) noexcept {
  const unsigned kind = kind_of(sqe);
  const std::uint64_t user_data = sqe->user_data;
  for (const auto& e : plan_.errors) {
    if ((e.kinds & kind) == 0 || !roll(submissions, e.rate)) continue;
    try {
      injected_[user_data] = -e.error;
    } catch (...) {
      return;  // no memory to remember it: submit the operation as it is
    }
    // Links survive, so a linked timeout still applies (to the NOP).
    const auto links = static_cast<std::uint8_t>(sqe->flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK));
    io_uring_prep_nop(sqe);
    sqe->flags = links;
    sqe->user_data = user_data;
    errors.add();
    return;
  }
  if ((plan_.short_kinds & kind) == 0 || !roll(submissions, plan_.short_rate)) return;
  if (!may_cut(sqe)) return;
  bool cut = false;
  switch (sqe->opcode) {
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_READ_FIXED:
    case IORING_OP_WRITE_FIXED:
    case IORING_OP_RECV:
    case IORING_OP_SEND:
      // A multishot receive has no length (the kernel picks buffers): nothing to cut.
      if (sqe->len >= 2) {
        sqe->len = shorter(sqe->len, next(submissions));
        cut = true;
      }
      break;
    case IORING_OP_READV:
      cut = first_buffer_only(sqe, reinterpret_cast<const iovec*>(sqe->addr), sqe->len,
                              IORING_OP_READ, next(submissions));
      break;
    case IORING_OP_WRITEV:
      cut = first_buffer_only(sqe, reinterpret_cast<const iovec*>(sqe->addr), sqe->len,
                              IORING_OP_WRITE, next(submissions));
      break;
    case IORING_OP_SENDMSG: {
      // Only a plain stream send: an address or control data would be lost as a send.
      const auto* msg = reinterpret_cast<const msghdr*>(sqe->addr);
      if (msg->msg_name == nullptr && msg->msg_control == nullptr) {
        cut = first_buffer_only(sqe, msg->msg_iov, msg->msg_iovlen, IORING_OP_SEND,
                                next(submissions));
      }
      break;
    }
    default:
      break;
  }
  if (cut) short_transfers.add();
}

int fault_injector::on_complete(std::uint64_t user_data, int res) noexcept {
  if (injected_.empty()) return res;
  const auto it = injected_.find(user_data);
  if (it == injected_.end()) return res;
  const int injected = it->second;
  injected_.erase(it);
  return injected;
}

bool fault_injector::maybe_delay(std::uint64_t user_data, int res, unsigned flags) noexcept {
  if (!roll(completions, plan_.delay_rate)) return false;
  const auto polls = 1 + static_cast<unsigned>(next(completions) % plan_.max_delay);
  try {
    held_.push_back({user_data, res, flags, polls});
  } catch (...) {
    return false;
  }
  delays.add();
  return true;
}

void fault_injector::take_due(std::vector<held>& out, bool all) noexcept {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < held_.size(); ++i) {
    held h = held_[i];
    if (all || --h.polls_left == 0) {
      out.push_back(h);  // capacity reserved by the caller
    } else {
      held_[kept++] = h;
    }
  }
  held_.resize(kept);
}

bool fault_injector::fail_enter(int& error) noexcept {
  if (!roll(enters_stream, plan_.enter_failure_rate)) return false;
  error = (next(enters_stream) & 1) != 0 ? -EAGAIN : -EBUSY;
  enter_failures.add();
  return true;
}

}  // namespace weft::detail
