// weft::net::udp_socket: datagrams over IPv4/IPv6 — bind, send_to, recv_from, and connected use.
//
// Thread safety: one task uses a socket at a time, except that one task may receive while another
// sends (each operation is one system call on the descriptor). A UDP socket holds no runtime state:
// it works from any runtime's worker and may be destroyed on any thread.
//
// Cancellation: send_to, recv_from, send and recv are cancellable: a cancelled receive throws
// weft::operation_cancelled, takes no datagram and leaves the socket usable; a send either sent its
// whole datagram (and returns) or nothing. bind, connect and close do not suspend.
#pragma once

#include <cstddef>
#include <span>
#include <utility>

#include <weft/net/socket_address.hpp>
#include <weft/task.hpp>

namespace weft::net {

/// A datagram and where it came from.
struct udp_received {
  std::size_t size = 0;  // bytes stored (a datagram larger than the buffer is truncated)
  socket_address from;
  bool truncated = false;  // the datagram was larger than the buffer
};

/// A UDP socket. Move-only; the destructor closes it. Operations run on the awaiting worker's
/// io_uring and are cancellable; errors are std::system_error naming the operation and address.
///
///     auto sock = weft::net::udp_socket::bind(socket_address::parse("127.0.0.1:0"));
///     co_await sock.send_to(bytes, peer);
///     std::array<std::byte, 1500> buf;
///     auto [n, from, truncated] = co_await sock.recv_from(buf);
class udp_socket {
 public:
  udp_socket() noexcept = default;
  udp_socket(udp_socket&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), local_(other.local_), peer_(other.peer_) {}
  udp_socket& operator=(udp_socket&& other) noexcept;
  ~udp_socket();

  /// A socket bound to `address` (port 0: the kernel picks; see local_address()).
  static udp_socket bind(socket_address address, bool reuse_address = false);

  /// Sends one datagram to `to`; returns the bytes sent (all of them, or an error).
  task<std::size_t> send_to(std::span<const std::byte> datagram, socket_address to);
  /// Receives one datagram.
  task<udp_received> recv_from(std::span<std::byte> buf);

  /// Fixes the peer: send()/recv() then talk to it only (datagrams from others are dropped by
  /// the kernel, and ICMP errors such as ECONNREFUSED are reported).
  void connect(socket_address peer);
  task<std::size_t> send(std::span<const std::byte> datagram);
  task<std::size_t> recv(std::span<std::byte> buf);

  [[nodiscard]] socket_address local_address() const noexcept { return local_; }
  [[nodiscard]] int native_handle() const noexcept { return fd_; }
  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  void close() noexcept;

 private:
  void check_open(const char* op) const;
  int fd_ = -1;
  socket_address local_;
  socket_address peer_;
};

}  // namespace weft::net
