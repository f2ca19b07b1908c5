// Parsing and formatting of IP addresses and socket addresses (inet_pton/inet_ntop do the text;
// the scope id and the brackets are ours).
#include <weft/net/ip_address.hpp>
#include <weft/net/socket_address.hpp>

#include <charconv>
#include <cstring>
#include <stdexcept>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

namespace weft::net {

ip_address ip_address::v4(std::array<std::uint8_t, 4> b) noexcept {
  ip_address a;
  std::memcpy(a.bytes_.data(), b.data(), 4);
  return a;
}

ip_address ip_address::v6(std::array<std::uint8_t, 16> b, std::uint32_t scope_id) noexcept {
  ip_address a;
  a.v6_ = true;
  a.bytes_ = b;
  a.scope_id_ = scope_id;
  return a;
}

ip_address ip_address::v6_loopback() noexcept {
  std::array<std::uint8_t, 16> b{};
  b[15] = 1;
  return v6(b);
}

bool ip_address::is_loopback() const noexcept {
  if (!v6_) return bytes_[0] == 127;
  return *this == v6_loopback();
}

bool ip_address::is_unspecified() const noexcept {
  for (std::size_t i = 0; i < (v6_ ? 16u : 4u); ++i) {
    if (bytes_[i] != 0) return false;
  }
  return true;
}

std::optional<ip_address> ip_address::try_parse(std::string_view text) noexcept {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN + IF_NAMESIZE) return std::nullopt;
  // inet_pton stops at a NUL: "127.0.0.1\0junk" must not parse as 127.0.0.1.
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  if (text.find(':') == std::string_view::npos) {
    std::array<std::uint8_t, 4> b{};
    if (inet_pton(AF_INET, buf, b.data()) != 1) return std::nullopt;
    return v4(b);
  }
  std::uint32_t scope = 0;
  if (char* pct = std::strchr(buf, '%'); pct != nullptr) {
    *pct = '\0';
    const char* zone = pct + 1;
    if (*zone == '\0') return std::nullopt;
    const auto [end, ec] = std::from_chars(zone, zone + std::strlen(zone), scope);
    if (ec != std::errc{} || *end != '\0') {
      scope = if_nametoindex(zone);  // "fe80::1%eth0"
      if (scope == 0) return std::nullopt;
    }
  }
  std::array<std::uint8_t, 16> b{};
  if (inet_pton(AF_INET6, buf, b.data()) != 1) return std::nullopt;
  return v6(b, scope);
}

ip_address ip_address::parse(std::string_view text) {
  if (auto a = try_parse(text)) return *a;
  throw std::invalid_argument("weft::net::ip_address: not an IPv4 or IPv6 address: \"" +
                              std::string(text) + "\"");
}

std::string ip_address::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(v6_ ? AF_INET6 : AF_INET, bytes_.data(), buf, sizeof buf);
  std::string s = buf;
  if (v6_ && scope_id_ != 0) {
    s.push_back('%');
    s.append(std::to_string(scope_id_));
  }
  return s;
}

std::optional<socket_address> socket_address::try_parse(std::string_view text) noexcept {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  }
  std::uint16_t p = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size()) return std::nullopt;
  auto ip = ip_address::try_parse(host);
  if (!ip) return std::nullopt;
  if ((text.front() == '[') != ip->is_v6()) return std::nullopt;  // brackets for IPv6 only
  return socket_address{*ip, p};
}

socket_address socket_address::parse(std::string_view text) {
  if (auto a = try_parse(text)) return *a;
  throw std::invalid_argument(
      "weft::net::socket_address: expected \"ipv4:port\" or \"[ipv6]:port\", got \"" +
      std::string(text) + "\"");
}

socket_address socket_address::from_native(const sockaddr* addr, socklen_t len) {
  if (addr->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in in;
    std::memcpy(&in, addr, sizeof in);
    std::array<std::uint8_t, 4> b;
    std::memcpy(b.data(), &in.sin_addr, 4);
    return {ip_address::v4(b), ntohs(in.sin_port)};
  }
  if (addr->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 in;
    std::memcpy(&in, addr, sizeof in);
    std::array<std::uint8_t, 16> b;
    std::memcpy(b.data(), &in.sin6_addr, 16);
    return {ip_address::v6(b, in.sin6_scope_id), ntohs(in.sin6_port)};
  }
  throw std::invalid_argument("weft::net::socket_address: not an AF_INET or AF_INET6 address");
}

socklen_t socket_address::to_native(sockaddr_storage& out) const noexcept {
  std::memset(&out, 0, sizeof out);
  if (ip_.is_v4()) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port_);
    std::memcpy(&in.sin_addr, ip_.bytes().data(), 4);
    std::memcpy(&out, &in, sizeof in);
    return sizeof in;
  }
  sockaddr_in6 in{};
  in.sin6_family = AF_INET6;
  in.sin6_port = htons(port_);
  in.sin6_scope_id = ip_.scope_id();
  std::memcpy(&in.sin6_addr, ip_.bytes().data(), 16);
  std::memcpy(&out, &in, sizeof in);
  return sizeof in;
}

std::string socket_address::to_string() const {
  // Appended piecewise: g++ 12 warns (-Wrestrict, a false positive) on "[" + std::string.
  std::string s;
  if (ip_.is_v6()) s.push_back('[');
  s.append(ip_.to_string());
  if (ip_.is_v6()) s.push_back(']');
  s.push_back(':');
  s.append(std::to_string(port_));
  return s;
}

}  // namespace weft::net
