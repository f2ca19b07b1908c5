// weft::net::tcp_stream: a TCP connection — connect, read, write, options, addresses.
//
// Thread safety: as for stream_socket: one task at a time, one reader beside one writer. connect()
// and adopt() make a new socket; the options and addresses are plain system calls, which need no
// runtime.
//
// Cancellation: connect() is cancellable: a cancelled connect throws weft::operation_cancelled and
// closes its half-made socket (bound it with weft::timeout). Reads and writes as stream_socket.hpp
// says; nothing else suspends.
#pragma once

#include <weft/net/socket_address.hpp>
#include <weft/net/stream_socket.hpp>
#include <weft/task.hpp>

namespace weft::net {

/// A connected TCP socket (see stream_socket for reads, writes, errors and cancellation).
///
///     auto conn = co_await weft::net::tcp_stream::connect(socket_address::parse("127.0.0.1:7"));
///     co_await conn.write_all(std::as_bytes(std::span{"ping", 4}));
///     std::array<std::byte, 4> reply;
///     co_await conn.read_exact(reply);
///
/// Bound the connect with weft::timeout: `co_await weft::timeout(2s, tcp_stream::connect(a))`.
class tcp_stream : public stream_socket {
 public:
  tcp_stream() noexcept = default;

  /// Connects to `peer` (cancellable). Errors name the address: ECONNREFUSED, ENETUNREACH, …
  static task<tcp_stream> connect(socket_address peer);
  /// Takes ownership of a connected TCP socket descriptor.
  static tcp_stream adopt(int fd);

  /// TCP_NODELAY: send small writes at once instead of coalescing them (Nagle).
  void set_nodelay(bool on);
  [[nodiscard]] bool nodelay() const;
  /// SO_KEEPALIVE, with the idle time, probe interval and probe count when given (seconds).
  void set_keepalive(bool on, int idle_s = 0, int interval_s = 0, int probes = 0);
  [[nodiscard]] bool keepalive() const;

  [[nodiscard]] socket_address local_address() const;
  [[nodiscard]] socket_address peer_address() const;

 private:
  friend class tcp_listener;
  tcp_stream(int fd, std::string peer) noexcept
      : stream_socket(fd, std::move(peer), "tcp_stream") {}
};

}  // namespace weft::net
