// udp_socket: datagrams through the worker's io_uring (sendmsg/recvmsg carry the addresses).
#include <weft/net/udp_socket.hpp>

#include <cerrno>
#include <stdexcept>

#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/io/io_operation.hpp>

#include "net_error.hpp"

namespace weft::net {

udp_socket& udp_socket::operator=(udp_socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    local_ = other.local_;
    peer_ = other.peer_;
  }
  return *this;
}

udp_socket::~udp_socket() {
  close();
}

void udp_socket::close() noexcept {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

void udp_socket::check_open(const char* op) const {
  if (fd_ < 0) {
    throw std::logic_error(std::string("weft::net::udp_socket::") + op + ": the socket is closed");
  }
}

udp_socket udp_socket::bind(socket_address address, bool reuse_address) {
  const std::string who = address.to_string();
  const int fd = ::socket(address.family(), SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) detail::throw_net_error(errno, "udp_socket::bind", who);
  udp_socket s;
  s.fd_ = fd;  // closed by s on the way out of an error
  if (reuse_address) {
    const int one = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
      detail::throw_net_error(errno, "udp_socket::bind (setsockopt)", who);
    }
  }
  sockaddr_storage native{};
  const socklen_t len = address.to_native(native);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&native), len) != 0) {
    detail::throw_net_error(errno, "udp_socket::bind", who);
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen) != 0) {
    detail::throw_net_error(errno, "udp_socket::bind", who);
  }
  s.local_ = socket_address::from_native(reinterpret_cast<sockaddr*>(&bound), blen);
  return s;
}

void udp_socket::connect(socket_address peer) {
  check_open("connect");
  sockaddr_storage native{};
  const socklen_t len = peer.to_native(native);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&native), len) != 0) {
    detail::throw_net_error(errno, "udp_socket::connect", peer.to_string());
  }
  peer_ = peer;
}

task<std::size_t> udp_socket::send_to(std::span<const std::byte> datagram, socket_address to) {
  check_open("send_to");
  sockaddr_storage native{};
  iovec iov{const_cast<std::byte*>(datagram.data()), datagram.size()};
  msghdr msg{};
  msg.msg_name = &native;
  msg.msg_namelen = to.to_native(native);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  const int fd = fd_;
  for (;;) {
    const auto r = co_await submit_io(
        [fd, &msg](io_uring_sqe* sqe) { io_uring_prep_sendmsg(sqe, fd, &msg, MSG_NOSIGNAL); });
    if (r.res >= 0) co_return static_cast<std::size_t>(r.res);
    if (r.res == -EINTR || r.res == -EAGAIN) continue;  // nothing was sent or received
    detail::throw_net_error(-r.res, "udp_socket::send_to", to.to_string());
  }
}

task<udp_received> udp_socket::recv_from(std::span<std::byte> buf) {
  check_open("recv_from");
  sockaddr_storage from{};
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  const int fd = fd_;
  for (;;) {
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_flags = 0;
    const auto r = co_await submit_io(
        [fd, &msg](io_uring_sqe* sqe) { io_uring_prep_recvmsg(sqe, fd, &msg, 0); });
    if (r.res >= 0) {
      udp_received got;
      got.size = static_cast<std::size_t>(r.res);
      got.from = socket_address::from_native(reinterpret_cast<sockaddr*>(&from), msg.msg_namelen);
      got.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
      co_return got;
    }
    if (r.res == -EINTR || r.res == -EAGAIN) continue;  // nothing was sent or received
    detail::throw_net_error(-r.res, "udp_socket::recv_from", local_.to_string());
  }
}

task<std::size_t> udp_socket::send(std::span<const std::byte> datagram) {
  check_open("send");
  const int fd = fd_;
  for (;;) {
    const auto r = co_await submit_io([fd, datagram](io_uring_sqe* sqe) {
      io_uring_prep_send(sqe, fd, datagram.data(), datagram.size(), MSG_NOSIGNAL);
    });
    if (r.res >= 0) co_return static_cast<std::size_t>(r.res);
    if (r.res == -EINTR || r.res == -EAGAIN) continue;  // nothing was sent or received
    detail::throw_net_error(-r.res, "udp_socket::send", peer_.to_string());
  }
}

task<std::size_t> udp_socket::recv(std::span<std::byte> buf) {
  check_open("recv");
  const int fd = fd_;
  for (;;) {
    const auto r = co_await submit_io(
        [fd, buf](io_uring_sqe* sqe) { io_uring_prep_recv(sqe, fd, buf.data(), buf.size(), 0); });
    if (r.res >= 0) co_return static_cast<std::size_t>(r.res);
    if (r.res == -EINTR || r.res == -EAGAIN) continue;  // nothing was sent or received
    detail::throw_net_error(-r.res, "udp_socket::recv", peer_.to_string());
  }
}

}  // namespace weft::net
