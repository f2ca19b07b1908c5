// URL parsing for the client.
#include <weft/http/url.hpp>

#include <charconv>
#include <stdexcept>

namespace weft::http {

namespace {

[[noreturn]] void bad_url(std::string_view text, const char* why) {
  throw std::invalid_argument("weft::http::url: '" + std::string{text} + "': " + why);
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
    if (c != prefix[i]) return false;
  }
  return true;
}

}  // namespace

url url::parse(std::string_view text) {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      bad_url(text, "spaces and control characters are not allowed (percent-encode them)");
    }
  }
  if (iequals_prefix(text, "https://")) {
    bad_url(text, "https is not supported (weft::http speaks plain HTTP; terminate TLS in front)");
  }
  if (!iequals_prefix(text, "http://")) bad_url(text, "the scheme must be http://");
  std::string_view rest = text.substr(7);
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  const auto path_at = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_at);
  url u;
  if (path_at != std::string_view::npos) {
    u.target.assign(rest[path_at] == '?' ? "/" : "");  // "http://h?q" asks for "/?q"
    u.target.append(rest.substr(path_at));
  }
  if (authority.find('@') != std::string_view::npos) bad_url(text, "user-info is not supported");
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) bad_url(text, "an unclosed '[' in the host");
    u.host = std::string{authority.substr(1, close - 1)};
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad_url(text, "junk after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) bad_url(text, "an empty port");
    }
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string{authority.substr(0, colon)};
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) bad_url(text, "an empty port");
    }
  }
  if (u.host.empty()) bad_url(text, "no host");
  if (!port_text.empty()) {
    unsigned value = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || value == 0 ||
        value > 65535) {
      bad_url(text, "the port must be a number from 1 to 65535");
    }
    u.port = static_cast<std::uint16_t>(value);
  }
  return u;
}

// (Built by appending: g++ 12 warns falsely about `"[" + host` concatenations, GCC bug 105329.)
std::string url::origin() const {
  std::string o = host_header();
  if (port == 80) o.append(":80");
  return o;
}

std::string url::host_header() const {
  std::string h;
  if (host.find(':') != std::string::npos) {
    h.append("[").append(host).append("]");
  } else {
    h.append(host);
  }
  if (port != 80) h.append(":").append(std::to_string(port));
  return h;
}

}  // namespace weft::http
