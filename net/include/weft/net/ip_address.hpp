// weft::net::ip_address: an IPv4 or IPv6 address, parsed from and formatted to text.
//
// Thread safety: a value type: distinct objects may be used from different threads, and const
// members of one object concurrently; a write needs the object to itself. parse and try_parse share
// no state.
//
// Cancellation: nothing here suspends.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weft::net {

/// An IPv4 or IPv6 address (with an IPv6 scope id). A value type: cheap to copy and compare.
///
///     auto a = weft::net::ip_address::parse("::1");
///     assert(a.is_v6() && a.is_loopback() && a.to_string() == "::1");
class ip_address {
 public:
  /// 0.0.0.0.
  ip_address() noexcept = default;

  static ip_address v4(std::array<std::uint8_t, 4> bytes) noexcept;
  static ip_address v6(std::array<std::uint8_t, 16> bytes, std::uint32_t scope_id = 0) noexcept;
  static ip_address v4_loopback() noexcept { return v4({127, 0, 0, 1}); }
  static ip_address v4_any() noexcept { return v4({0, 0, 0, 0}); }
  static ip_address v6_loopback() noexcept;
  static ip_address v6_any() noexcept { return v6({}); }

  /// Parses dotted IPv4 ("10.0.0.1") or IPv6 text ("fe80::1%2", "::ffff:1.2.3.4"). Throws
  /// std::invalid_argument that quotes the text when it is neither.
  static ip_address parse(std::string_view text);
  /// As parse, but nullopt instead of throwing.
  static std::optional<ip_address> try_parse(std::string_view text) noexcept;

  [[nodiscard]] bool is_v4() const noexcept { return !v6_; }
  [[nodiscard]] bool is_v6() const noexcept { return v6_; }
  [[nodiscard]] bool is_loopback() const noexcept;
  [[nodiscard]] bool is_unspecified() const noexcept;
  /// The 4 (IPv4) or 16 (IPv6) bytes, in network order, at the front of a 16-byte array.
  [[nodiscard]] const std::array<std::uint8_t, 16>& bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::uint32_t scope_id() const noexcept { return scope_id_; }

  /// "127.0.0.1", or RFC 5952 IPv6 text ("::1", "fe80::1%2").
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const ip_address&, const ip_address&) noexcept = default;
  friend std::strong_ordering operator<=>(const ip_address&, const ip_address&) noexcept = default;

 private:
  bool v6_ = false;
  std::array<std::uint8_t, 16> bytes_{};
  std::uint32_t scope_id_ = 0;
};

}  // namespace weft::net
