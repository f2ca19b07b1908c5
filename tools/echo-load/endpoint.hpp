// Where echo-load connects (TCP host:port or an AF_UNIX path) and the socket calls both load
// modes share: non-blocking sockets with TCP_NODELAY, and a connect that waits with a limit.
#pragma once

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "options.hpp"

namespace echo_load {

/// A resolved server address and the name error messages use for it ("127.0.0.1:7000").
struct endpoint {
  sockaddr_storage address{};
  socklen_t length = 0;
  bool is_tcp = true;
  std::string name;
};

/// Resolves --host/--port or --unix into an address to connect to.
///
/// Errors: throws `std::runtime_error` with getaddrinfo's reason ("resolve nosuch:7000: Name or
/// service not known") and `std::invalid_argument` for a unix path too long for sockaddr_un.
inline endpoint resolve_endpoint(const options& o) {
  endpoint e;
  if (!o.unix_path.empty()) {
    sockaddr_un un{};
    if (o.unix_path.size() >= sizeof un.sun_path) {
      throw std::invalid_argument("--unix: path '" + o.unix_path + "' is longer than " +
                                  std::to_string(sizeof un.sun_path - 1) + " bytes");
    }
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, o.unix_path.c_str(), o.unix_path.size() + 1);
    std::memcpy(&e.address, &un, sizeof un);
    e.length = static_cast<socklen_t>(sizeof un);
    e.is_tcp = false;
    e.name = o.unix_path;
    return e;
  }
  const std::string port = std::to_string(o.port);
  e.name = (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) + ":" + port;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(o.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw std::runtime_error("resolve " + e.name + ": " + gai_strerror(rc));
  }
  // One address only: a load generator should hit one server, not fail over. IPv4 first, as
  // "localhost" often lists ::1 first while the peers' servers listen on 127.0.0.1.
  const addrinfo* chosen = found;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      chosen = a;
      break;
    }
  }
  std::memcpy(&e.address, chosen->ai_addr, chosen->ai_addrlen);
  e.length = chosen->ai_addrlen;
  freeaddrinfo(found);
  return e;
}

/// Owns one file descriptor.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~unique_fd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

/// Opens a non-blocking, close-on-exec stream socket for `e`, with TCP_NODELAY for TCP so each
/// message leaves at once rather than waiting on Nagle's algorithm for the previous echo.
///
/// Errors: throws `std::system_error` from socket() or setsockopt().
inline unique_fd open_socket(const endpoint& e) {
  unique_fd fd(::socket(e.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw std::system_error(errno, std::generic_category(), "socket");
  if (e.is_tcp) {
    const int one = 1;
    if (::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
      throw std::system_error(errno, std::generic_category(), "setsockopt TCP_NODELAY");
    }
  }
  return fd;
}

/// Starts a non-blocking connect; returns 0 (connected), EINPROGRESS (TCP: wait for writability),
/// EAGAIN (AF_UNIX: the listen queue is full, nothing started; try again later) or the errno it
/// failed with.
inline int start_connect(int fd, const endpoint& e) noexcept {
  while (true) {
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&e.address), e.length) == 0) return 0;
    if (errno != EINTR) return errno;
  }
}

/// Returns the error a non-blocking connect finished with (0 when it succeeded).
inline int connect_result(int fd) noexcept {
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return errno;
  return error;
}

/// Opens a socket and connects it to `e`, waiting at most `timeout_ms`; the socket stays
/// non-blocking.
///
/// Errors: throws `std::system_error` whose message reads "connect 127.0.0.1:7000" followed by
/// the reason (ETIMEDOUT when the limit passes).
inline unique_fd connect_with_timeout(const endpoint& e, int timeout_ms) {
  unique_fd fd = open_socket(e);
  int error = start_connect(fd.get(), e);
  // A full AF_UNIX listen queue: retry each millisecond while the server catches up on accepts.
  for (int waited = 0; error == EAGAIN && !e.is_tcp && waited < timeout_ms; ++waited) {
    ::poll(nullptr, 0, 1);
    error = start_connect(fd.get(), e);
  }
  if (error == EINPROGRESS) {
    pollfd p{.fd = fd.get(), .events = POLLOUT, .revents = 0};
    int ready = 0;
    do {
      ready = ::poll(&p, 1, timeout_ms);
    } while (ready < 0 && errno == EINTR);
    error = ready < 0 ? errno : ready == 0 ? ETIMEDOUT : connect_result(fd.get());
  }
  if (error != 0) throw std::system_error(error, std::generic_category(), "connect " + e.name);
  return fd;
}

}  // namespace echo_load
