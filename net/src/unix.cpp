// unix_stream and unix_listener: AF_UNIX stream sockets (paths, or "@name" in the abstract
// namespace).
#include <weft/net/unix_stream.hpp>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <stdexcept>

#include <liburing.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/multishot.hpp>
#include <weft/io/io_operation.hpp>

#include "net_error.hpp"

namespace weft::net {

namespace {
socklen_t unix_native(const std::string& path, sockaddr_un& out, const char* op) {
  std::memset(&out, 0, sizeof out);
  out.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof out.sun_path) {
    throw std::invalid_argument(
        std::string("weft::net::") + op + ": a Unix socket path needs 1 to " +
        std::to_string(sizeof out.sun_path - 1) + " bytes, got \"" + path + "\"");
  }
  std::memcpy(out.sun_path, path.data(), path.size());
  if (path[0] == '@') out.sun_path[0] = '\0';  // abstract: no file, no trailing NUL
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                (path[0] == '@' ? 0 : 1));
}

}  // namespace

task<unix_stream> unix_stream::connect(std::string path) {
  sockaddr_un native{};
  const socklen_t len = unix_native(path, native, "unix_stream::connect");
  const std::string who = "unix:" + path;
  detail::fd_guard fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (fd.fd < 0) detail::throw_net_error(errno, "unix_stream::connect", who);
  for (;;) {
    const auto r = co_await submit_io([&fd, &native, len](io_uring_sqe* sqe) {
      io_uring_prep_connect(sqe, fd.fd, reinterpret_cast<sockaddr*>(&native), len);
    });
    if (r.res == 0) break;
    if (r.res == -EINTR) continue;
    detail::throw_net_error(-r.res, "unix_stream::connect", who);
  }
  co_return unix_stream{fd.release(), who};
}

std::pair<unix_stream, unix_stream> unix_stream::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    detail::throw_net_error(errno, "unix_stream::pair", "");
  }
  return {unix_stream{fds[0], "socketpair"}, unix_stream{fds[1], "socketpair"}};
}

unix_listener& unix_listener::operator=(unix_listener&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    acceptor_ = std::exchange(other.acceptor_, nullptr);
    path_ = std::move(other.path_);
    unlink_ = std::exchange(other.unlink_, false);
  }
  return *this;
}

unix_listener::~unix_listener() {
  close();
}

void unix_listener::close() noexcept {
  if (acceptor_ != nullptr) std::exchange(acceptor_, nullptr)->close();
  if (fd_ < 0) return;
  // As for tcp_listener: an accept in flight keeps the socket alive inside io_uring, so close()
  // alone would leave it taking connections; shutdown refuses them now.
  ::shutdown(fd_, SHUT_RDWR);
  ::close(std::exchange(fd_, -1));
  if (unlink_ && !path_.empty() && path_[0] != '@') ::unlink(path_.c_str());
  unlink_ = false;
}

unix_listener unix_listener::bind(std::string path, int backlog, bool unlink_on_close) {
  sockaddr_un native{};
  const socklen_t len = unix_native(path, native, "unix_listener::bind");
  const std::string who = "unix:" + path;
  detail::fd_guard fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (fd.fd < 0) detail::throw_net_error(errno, "unix_listener::bind", who);
  if (::bind(fd.fd, reinterpret_cast<sockaddr*>(&native), len) != 0) {
    detail::throw_net_error(errno, "unix_listener::bind", who);
  }
  if (::listen(fd.fd, backlog) != 0) detail::throw_net_error(errno, "unix_listener::listen", who);
  unix_listener l;
  l.fd_ = fd.release();
  l.path_ = std::move(path);
  l.unlink_ = unlink_on_close;
  return l;
}

task<unix_accepted> unix_listener::accept() {
  if (fd_ < 0) throw std::logic_error("weft::net::unix_listener::accept: the listener is closed");
  if (acceptor_ == nullptr) {
    acceptor_ = ::weft::detail::multishot::create(fd_, ::weft::detail::multishot::mode::accept);
  }
  const int fd = fd_;
  for (;;) {
    const auto m = co_await acceptor_->read({});
    switch (m.kind) {
      case ::weft::detail::multishot_result::fd:
        co_return unix_accepted{unix_stream{m.value, "unix:" + path_}};
      case ::weft::detail::multishot_result::error:
        if (m.value == ECONNABORTED || m.value == EINTR || m.value == EAGAIN) continue;
        detail::throw_net_error(m.value, "unix_listener::accept", "unix:" + path_);
      case ::weft::detail::multishot_result::cancelled:
        throw operation_cancelled{};
      case ::weft::detail::multishot_result::busy:
        detail::throw_concurrent_read("unix_listener::accept", "unix:" + path_);
      case ::weft::detail::multishot_result::wrong_runtime:
        detail::throw_wrong_runtime(
            "unix_listener::accept", "unix:" + path_,
            m.value == ::weft::detail::multishot_result::wrong_runtime_gone);
      case ::weft::detail::multishot_result::data:
      case ::weft::detail::multishot_result::fallback:
        break;
    }
    const auto r = co_await submit_io(
        [fd](io_uring_sqe* sqe) { io_uring_prep_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC); },
        io_returns::fd);
    if (r.res >= 0) co_return unix_accepted{unix_stream{r.res, "unix:" + path_}};
    if (r.res == -ECONNABORTED || r.res == -EINTR || r.res == -EAGAIN) continue;
    detail::throw_net_error(-r.res, "unix_listener::accept", "unix:" + path_);
  }
}

}  // namespace weft::net
