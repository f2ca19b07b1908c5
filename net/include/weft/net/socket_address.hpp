// weft::net::socket_address: an IP address and a port, as "127.0.0.1:8080" or "[::1]:8080".
//
// Thread safety: a value type: distinct objects may be used from different threads, and const
// members of one object concurrently; a write needs the object to itself.
//
// Cancellation: nothing here suspends.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <sys/socket.h>

#include <weft/net/ip_address.hpp>

namespace weft::net {

/// An IPv4 or IPv6 endpoint. A value type.
///
///     auto a = weft::net::socket_address::parse("[::1]:8080");
///     assert(a.port() == 8080 && a.to_string() == "[::1]:8080");
class socket_address {
 public:
  socket_address() noexcept = default;
  socket_address(ip_address ip, std::uint16_t port) noexcept : ip_(ip), port_(port) {}

  /// Parses "host:port" where host is IPv4 text, or IPv6 text in brackets ("[fe80::1%2]:80").
  /// Names are not resolved (use resolve()). Throws std::invalid_argument quoting the text.
  static socket_address parse(std::string_view text);
  static std::optional<socket_address> try_parse(std::string_view text) noexcept;

  /// From a kernel sockaddr (AF_INET or AF_INET6); throws std::invalid_argument otherwise.
  static socket_address from_native(const sockaddr* addr, socklen_t len);
  /// Fills `out` for bind/connect/sendto; returns the length used.
  socklen_t to_native(sockaddr_storage& out) const noexcept;

  [[nodiscard]] const ip_address& ip() const noexcept { return ip_; }
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] int family() const noexcept { return ip_.is_v6() ? AF_INET6 : AF_INET; }

  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const socket_address&, const socket_address&) noexcept = default;
  friend std::strong_ordering operator<=>(const socket_address&,
                                          const socket_address&) noexcept = default;

 private:
  ip_address ip_;
  std::uint16_t port_ = 0;
};

}  // namespace weft::net
