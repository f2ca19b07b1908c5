// weft::http::url: an absolute http:// URL split into what a client needs to send a request.
//
// Thread safety: a value type: distinct objects may be used from different threads, one object is
// not synchronised. parse() shares no state.
//
// Cancellation: nothing here suspends.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace weft::http {

/// `http://host[:port][/path][?query]`, parsed strictly.
///
///     auto u = weft::http::url::parse("http://127.0.0.1:8080/users/7?full=1");
///     // u.host "127.0.0.1", u.port 8080, u.target "/users/7?full=1", u.origin() "127.0.0.1:8080"
///
/// The scheme must be http (weft has no TLS: https:// is std::invalid_argument, saying so); the
/// host is a name, an IPv4 address or a bracketed IPv6 address ("[::1]"); the port defaults to
/// 80. No user-info, no fragment (a '#' ends the target and is dropped, as browsers do before
/// sending). Anything else malformed (no host, a port outside 1-65535, spaces or control
/// characters) is std::invalid_argument naming the URL.
struct url {
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 80;
  std::string target = "/";  // path and query, as sent on the request line

  static url parse(std::string_view text);
  /// "host:port" ("[::1]:8080" for IPv6): the pool key, and what error messages name.
  [[nodiscard]] std::string origin() const;
  /// The Host header's value: the host, with the port unless it is 80.
  [[nodiscard]] std::string host_header() const;
};

}  // namespace weft::http
