// tcp_stream and tcp_listener: socket set-up is plain syscalls (they do not block); connect and
// accept go through the worker's io_uring.
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>

#include <cerrno>

#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/multishot.hpp>
#include <weft/io/io_operation.hpp>

#include "net_error.hpp"

namespace weft::net {

namespace {
socket_address address_of(int fd, bool peer, const char* op, const std::string& who) {
  sockaddr_storage s{};
  socklen_t len = sizeof s;
  const int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&s), &len)
                     : ::getsockname(fd, reinterpret_cast<sockaddr*>(&s), &len);
  if (r != 0) detail::throw_net_error(errno, op, who);
  return socket_address::from_native(reinterpret_cast<sockaddr*>(&s), len);
}

}  // namespace

task<tcp_stream> tcp_stream::connect(socket_address peer) {
  const std::string who = peer.to_string();
  detail::fd_guard fd{::socket(peer.family(), SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP)};
  if (fd.fd < 0) detail::throw_net_error(errno, "tcp_stream::connect", who);
  sockaddr_storage native{};
  const socklen_t len = peer.to_native(native);
  for (;;) {
    const auto r = co_await submit_io([&fd, &native, len](io_uring_sqe* sqe) {
      io_uring_prep_connect(sqe, fd.fd, reinterpret_cast<sockaddr*>(&native), len);
    });
    if (r.res == 0) break;
    if (r.res == -EINTR) continue;
    detail::throw_net_error(-r.res, "tcp_stream::connect", who);
  }
  co_return tcp_stream{fd.release(), who};
}

tcp_stream tcp_stream::adopt(int fd) {
  std::string who;
  try {
    who = address_of(fd, true, "tcp_stream::adopt", "").to_string();
  } catch (const std::system_error&) {
    who = "fd " + std::to_string(fd);  // not connected (yet): still adoptable
  }
  return tcp_stream{fd, std::move(who)};
}

void tcp_stream::set_nodelay(bool on) {
  set_option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "set_nodelay");
}
bool tcp_stream::nodelay() const {
  return get_option(IPPROTO_TCP, TCP_NODELAY, "nodelay") != 0;
}

void tcp_stream::set_keepalive(bool on, int idle_s, int interval_s, int probes) {
  set_option(SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0, "set_keepalive");
  if (!on) return;
  if (idle_s > 0) set_option(IPPROTO_TCP, TCP_KEEPIDLE, idle_s, "set_keepalive");
  if (interval_s > 0) set_option(IPPROTO_TCP, TCP_KEEPINTVL, interval_s, "set_keepalive");
  if (probes > 0) set_option(IPPROTO_TCP, TCP_KEEPCNT, probes, "set_keepalive");
}
bool tcp_stream::keepalive() const {
  return get_option(SOL_SOCKET, SO_KEEPALIVE, "keepalive") != 0;
}

socket_address tcp_stream::local_address() const {
  check_open("local_address");
  return address_of(native_handle(), false, "tcp_stream::local_address", peer_name());
}
socket_address tcp_stream::peer_address() const {
  check_open("peer_address");
  return address_of(native_handle(), true, "tcp_stream::peer_address", peer_name());
}

tcp_listener& tcp_listener::operator=(tcp_listener&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    acceptor_ = std::exchange(other.acceptor_, nullptr);
    local_ = other.local_;
  }
  return *this;
}

tcp_listener::~tcp_listener() {
  close();
}

void tcp_listener::close() noexcept {
  // The multishot first: it cancels the kernel's accept and closes connections nobody took.
  if (acceptor_ != nullptr) std::exchange(acceptor_, nullptr)->close();
  if (fd_ >= 0) {
    // An accept in flight holds the socket inside io_uring, so close() alone would leave it
    // listening (the kernel completing new connections) until that request ended; shutdown
    // stops listening now, resets what waits in the backlog and fails a pending accept.
    ::shutdown(fd_, SHUT_RDWR);
    ::close(std::exchange(fd_, -1));
  }
}

tcp_listener tcp_listener::bind(socket_address address, listen_options options) {
  const std::string who = address.to_string();
  detail::fd_guard fd{::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP)};
  if (fd.fd < 0) detail::throw_net_error(errno, "tcp_listener::bind", who);
  auto opt = [&](int level, int name, int value) {
    if (::setsockopt(fd.fd, level, name, &value, sizeof value) != 0) {
      detail::throw_net_error(errno, "tcp_listener::bind (setsockopt)", who);
    }
  };
  if (options.reuse_address) opt(SOL_SOCKET, SO_REUSEADDR, 1);
  if (options.reuse_port) opt(SOL_SOCKET, SO_REUSEPORT, 1);
  if (address.ip().is_v6()) opt(IPPROTO_IPV6, IPV6_V6ONLY, options.v6_only ? 1 : 0);
  sockaddr_storage native{};
  const socklen_t len = address.to_native(native);
  if (::bind(fd.fd, reinterpret_cast<sockaddr*>(&native), len) != 0) {
    detail::throw_net_error(errno, "tcp_listener::bind", who);
  }
  if (::listen(fd.fd, options.backlog) != 0) {
    detail::throw_net_error(errno, "tcp_listener::listen", who);
  }
  tcp_listener l;
  l.local_ = address_of(fd.fd, false, "tcp_listener::bind", who);
  l.fd_ = fd.release();
  return l;
}

task<tcp_accepted> tcp_listener::accept() {
  if (fd_ < 0) throw std::logic_error("weft::net::tcp_listener::accept: the listener is closed");
  if (acceptor_ == nullptr) {
    acceptor_ = ::weft::detail::multishot::create(fd_, ::weft::detail::multishot::mode::accept);
  }
  for (;;) {
    int fd = -1;
    const auto r = co_await acceptor_->read({});
    switch (r.kind) {
      case ::weft::detail::multishot_result::fd:
        fd = r.value;
        break;
      case ::weft::detail::multishot_result::error:
        // A connection reset before we took it, or a signal: wait for the next one.
        if (r.value == ECONNABORTED || r.value == EINTR || r.value == EAGAIN) continue;
        detail::throw_net_error(r.value, "tcp_listener::accept", local_.to_string());
      case ::weft::detail::multishot_result::cancelled:
        throw operation_cancelled{};
      case ::weft::detail::multishot_result::busy:
        detail::throw_concurrent_read("tcp_listener::accept", local_.to_string());
      case ::weft::detail::multishot_result::wrong_runtime:
        detail::throw_wrong_runtime(
            "tcp_listener::accept", local_.to_string(),
            r.value == ::weft::detail::multishot_result::wrong_runtime_gone);
      case ::weft::detail::multishot_result::data:
      case ::weft::detail::multishot_result::fallback:
        fd = co_await accept_plain();
        break;
    }
    detail::fd_guard conn{fd};
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    // The multishot accept has no room for addresses: ask the socket (a peer that already reset
    // has none; take the next connection then).
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    const auto addr = socket_address::from_native(reinterpret_cast<sockaddr*>(&peer), len);
    co_return tcp_accepted{tcp_stream{conn.release(), addr.to_string()}, addr};
  }
}

task<int> tcp_listener::accept_plain() {
  const int fd = fd_;
  for (;;) {
    const auto r = co_await submit_io(
        [fd](io_uring_sqe* sqe) { io_uring_prep_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC); },
        io_returns::fd);
    if (r.res >= 0) co_return r.res;
    if (r.res == -ECONNABORTED || r.res == -EINTR || r.res == -EAGAIN) continue;
    detail::throw_net_error(-r.res, "tcp_listener::accept", local_.to_string());
  }
}

}  // namespace weft::net
