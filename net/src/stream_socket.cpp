// stream_socket: reads and writes through the worker's io_uring (send with MSG_NOSIGNAL, so a
// closed peer is EPIPE and never a signal).
#include <weft/net/stream_socket.hpp>

#include <cerrno>
#include <stdexcept>
#include <vector>

#include <liburing.h>
#include <netinet/in.h>
#include <unistd.h>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/multishot.hpp>
#include <weft/io/io_operation.hpp>

#include "net_error.hpp"

namespace weft::net {

stream_socket& stream_socket::operator=(stream_socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    receiver_ = std::exchange(other.receiver_, nullptr);
    peer_ = std::move(other.peer_);
    kind_ = other.kind_;
  }
  return *this;
}

stream_socket::~stream_socket() {
  close();
}

void stream_socket::close() noexcept {
  // The multishot first: it cancels the kernel's operation, which still names the fd.
  if (receiver_ != nullptr) std::exchange(receiver_, nullptr)->close();
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

void stream_socket::fail(const char* op, int error) const {
  detail::throw_net_error(error, std::string(kind_) + "::" + op, peer_);
}

void stream_socket::check_open(const char* op) const {
  if (fd_ < 0) {
    throw std::logic_error(std::string("weft::net::") + kind_ + "::" + op +
                           ": the socket is closed");
  }
}

task<std::size_t> stream_socket::read_some(std::span<std::byte> buf) {
  check_open("read_some");
  if (buf.empty()) co_return 0;
  if (receiver_ == nullptr)
    receiver_ = ::weft::detail::multishot::create(fd_, ::weft::detail::multishot::mode::recv);
  for (;;) {
    const auto r = co_await receiver_->read(buf);
    switch (r.kind) {
      case ::weft::detail::multishot_result::data:
        co_return static_cast<std::size_t>(r.value);
      case ::weft::detail::multishot_result::error:
        // Nothing was received: read again (the next read arms a new receive).
        if (r.value == EINTR || r.value == EAGAIN) continue;
        fail("read_some", r.value);
      case ::weft::detail::multishot_result::cancelled:
        throw operation_cancelled{};
      case ::weft::detail::multishot_result::busy:
        detail::throw_concurrent_read(std::string(kind_) + "::read_some", peer_);
      case ::weft::detail::multishot_result::wrong_runtime:
        detail::throw_wrong_runtime(
            std::string(kind_) + "::read_some", peer_,
            r.value == ::weft::detail::multishot_result::wrong_runtime_gone);
      case ::weft::detail::multishot_result::fd:
      case ::weft::detail::multishot_result::fallback:
        co_return co_await read_plain(buf);
    }
  }
}

task<std::size_t> stream_socket::read_plain(std::span<std::byte> buf) {
  const int fd = fd_;
  for (;;) {
    const auto r = co_await submit_io([fd, buf](io_uring_sqe* sqe) {
      io_uring_prep_recv(sqe, fd, buf.data(), buf.size(), 0);
      // Wait for readiness before trying: after we answered, the peer's next bytes are rarely
      // there yet, and a recv tried at submission would fail, arm the poll and run again.
      sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    });
    if (r.res >= 0) co_return static_cast<std::size_t>(r.res);
    if (r.res == -EINTR || r.res == -EAGAIN) continue;
    fail("read_some", -r.res);
  }
}

task<std::size_t> stream_socket::read_exact(std::span<std::byte> buf) {
  std::size_t got = 0;
  while (got < buf.size()) {
    const std::size_t n = co_await read_some(buf.subspan(got));
    if (n == 0) break;
    got += n;
  }
  co_return got;
}

task<void> stream_socket::write_all(std::span<const std::byte> bytes) {
  check_open("write_all");
  const int fd = fd_;
  while (!bytes.empty()) {
    const auto r = co_await submit_io([fd, bytes](io_uring_sqe* sqe) {
      io_uring_prep_send(sqe, fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    });
    if (r.res < 0) {
      if (r.res == -EINTR || r.res == -EAGAIN) continue;
      fail("write_all", -r.res);
    }
    bytes = bytes.subspan(static_cast<std::size_t>(r.res));
  }
}

task<void> stream_socket::write_all(std::span<const std::span<const std::byte>> buffers) {
  check_open("write_all");
  const int fd = fd_;
  std::vector<iovec> iov;
  iov.reserve(buffers.size());
  for (const auto& b : buffers) {
    if (!b.empty()) iov.push_back({const_cast<std::byte*>(b.data()), b.size()});
  }
  std::size_t first = 0;
  msghdr msg{};
  while (first < iov.size()) {
    msg.msg_iov = iov.data() + first;
    msg.msg_iovlen = iov.size() - first;
    const auto r = co_await submit_io(
        [fd, &msg](io_uring_sqe* sqe) { io_uring_prep_sendmsg(sqe, fd, &msg, MSG_NOSIGNAL); });
    if (r.res < 0) {
      if (r.res == -EINTR || r.res == -EAGAIN) continue;
      fail("write_all", -r.res);
    }
    // Skip what was sent: whole buffers, then the front of a partly sent one.
    auto sent = static_cast<std::size_t>(r.res);
    while (first < iov.size() && sent >= iov[first].iov_len) sent -= iov[first++].iov_len;
    if (sent > 0) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + sent;
      iov[first].iov_len -= sent;
    }
  }
}

void stream_socket::shutdown(int how) {
  check_open("shutdown");
  if (::shutdown(fd_, how) != 0) fail("shutdown", errno);
}

void stream_socket::set_option(int level, int name, int value, const char* what) {
  check_open(what);
  if (::setsockopt(fd_, level, name, &value, sizeof value) != 0) fail(what, errno);
}

int stream_socket::get_option(int level, int name, const char* what) const {
  check_open(what);
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd_, level, name, &value, &len) != 0) fail(what, errno);
  return value;
}

}  // namespace weft::net
