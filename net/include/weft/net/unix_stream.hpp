// weft::net::unix_stream and unix_listener: stream sockets on filesystem paths (or the Linux
// abstract namespace, "@name"), with the same interface as TCP.
//
// Thread safety: a unix_stream as a stream_socket (one task at a time, one reader beside one
// writer), a unix_listener as a tcp_listener (one accepting task); close() and the destructors may
// run on any thread. pair() is a plain system call.
//
// Cancellation: connect() and accept() are cancellable as their TCP forms are (a cancelled connect
// closes its socket, a cancelled accept takes no connection); reads and writes as stream_socket.hpp
// says. bind() and pair() do not suspend.
#pragma once

#include <string>
#include <utility>

#include <weft/net/stream_socket.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/task.hpp>

namespace weft::net {

/// A connected AF_UNIX stream socket (see stream_socket for reads, writes and errors).
///
///     auto conn = co_await weft::net::unix_stream::connect("/run/app.sock");
class unix_stream : public stream_socket {
 public:
  unix_stream() noexcept = default;
  /// Connects to `path` ("@name" is the abstract namespace). Cancellable.
  static task<unix_stream> connect(std::string path);
  /// A connected pair (socketpair(2)).
  static std::pair<unix_stream, unix_stream> pair();

 private:
  friend class unix_listener;
  unix_stream(int fd, std::string peer) noexcept
      : stream_socket(fd, std::move(peer), "unix_stream") {}
};

/// A new Unix connection (the peer of an AF_UNIX connection usually has no name).
struct unix_accepted {
  unix_stream stream;
};

/// A listening AF_UNIX socket on `path`.
///
///     auto listener = weft::net::unix_listener::bind("/run/app.sock");
///     auto [conn] = co_await listener.accept();
///
/// bind fails with EADDRINUSE if the path exists (remove a stale socket file first); the
/// destructor does not remove the file unless `unlink_on_close` was set.
class unix_listener {
 public:
  unix_listener() noexcept = default;
  unix_listener(unix_listener&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)),
        acceptor_(std::exchange(other.acceptor_, nullptr)),
        path_(std::move(other.path_)),
        unlink_(std::exchange(other.unlink_, false)) {}
  unix_listener& operator=(unix_listener&& other) noexcept;
  ~unix_listener();

  static unix_listener bind(std::string path, int backlog = 1024, bool unlink_on_close = false);
  /// The next connection (multishot accept where the kernel has it, as for tcp_listener).
  task<unix_accepted> accept();

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] int native_handle() const noexcept { return fd_; }
  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  void close() noexcept;

 private:
  int fd_ = -1;
  ::weft::detail::multishot* acceptor_ = nullptr;  // created by the first accept
  std::string path_;
  bool unlink_ = false;
};

}  // namespace weft::net
