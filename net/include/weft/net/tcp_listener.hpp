// weft::net::tcp_listener: a bound, listening TCP socket that accepts connections.
//
// Thread safety: one task accepts at a time (net::serve is that task while it runs; a second accept
// while one waits throws std::logic_error); accepts belong to the runtime whose task first accepted
// (another runtime's task gets std::logic_error). close() and the destructor may run on any thread,
// also after that runtime shut down.
//
// Cancellation: accept() is cancellable: it throws weft::operation_cancelled and takes no
// connection; one the kernel accepted meanwhile is either returned by this accept or left for the
// next, never lost or leaked. The listener stays usable; bind() and close() do not suspend.
#pragma once

#include <utility>

#include <weft/net/socket_address.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/task.hpp>

namespace weft::detail {
class multishot;
}

namespace weft::net {

/// How a listener is set up.
struct listen_options {
  int backlog = 1024;         // listen(2)'s queue of completed connections
  bool reuse_address = true;  // SO_REUSEADDR: rebind while old connections are in TIME_WAIT
  bool reuse_port = false;    // SO_REUSEPORT: several listeners share the port (kernel balances)
  bool v6_only = false;       // IPV6_V6ONLY for an IPv6 address
};

/// A new connection and who made it.
struct tcp_accepted {
  tcp_stream stream;
  socket_address peer;
};

/// A listening TCP socket. Move-only; the destructor closes it.
///
///     auto listener = weft::net::tcp_listener::bind(socket_address::parse("0.0.0.0:8080"));
///     for (;;) {
///       auto [conn, peer] = co_await listener.accept();
///       group.spawn(serve(std::move(conn)));
///     }
///
/// accept() is cancellable; a connection the kernel accepted for a cancelled accept is closed,
/// never leaked. Errors: bind/listen throw std::system_error naming the address (EADDRINUSE,
/// EACCES, …) at once; accept throws it for errors other than a connection aborted before it was
/// accepted (ECONNABORTED is skipped).
class tcp_listener {
 public:
  tcp_listener() noexcept = default;
  tcp_listener(tcp_listener&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)),
        acceptor_(std::exchange(other.acceptor_, nullptr)),
        local_(other.local_) {}
  tcp_listener& operator=(tcp_listener&& other) noexcept;
  ~tcp_listener();

  /// Binds and listens (port 0 picks a free port: read it from local_address()).
  static tcp_listener bind(socket_address address, listen_options options = {});

  /// Waits for the next connection. Where the kernel has it, one multishot accept stays armed on
  /// the worker that first accepted, and connections queue there between calls; otherwise each
  /// call is a plain accept.
  task<tcp_accepted> accept();

  /// The bound address (with the port the kernel chose for port 0).
  [[nodiscard]] socket_address local_address() const noexcept { return local_; }
  [[nodiscard]] int native_handle() const noexcept { return fd_; }
  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  /// Stops listening now (pending accepts fail or are cancelled). Idempotent. The socket is shut
  /// down, not only closed: a copy of the descriptor (dup, fork) stops listening too.
  void close() noexcept;

 private:
  task<int> accept_plain();

  int fd_ = -1;
  ::weft::detail::multishot* acceptor_ = nullptr;  // created by the first accept
  socket_address local_;
};

}  // namespace weft::net
