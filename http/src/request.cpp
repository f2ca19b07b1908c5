// Requests: the target's parts, path parameters, percent-decoding and the body reader.
#include <weft/http/request.hpp>

#include <algorithm>
#include <string>

namespace weft::http {

const std::string request::no_peer;

std::string_view request::path() const noexcept {
  const auto t = head_.target;
  return t.substr(0, t.find('?'));
}

std::string_view request::query() const noexcept {
  const auto t = head_.target;
  const auto q = t.find('?');
  return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}

std::string_view request::param(std::string_view name) const noexcept {
  for (const auto& [k, v] : params_) {
    if (k == name) return v;
  }
  return {};
}

std::optional<std::string> percent_decode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex(s[i + 1]);
    const int lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

task<std::size_t> body_reader::read(std::span<std::byte> buf) {
  if (source_ == nullptr || framing_.kind == body_kind::none) co_return 0;
  co_return co_await source_->read_body(buf);
}

task<std::string> body_reader::text() {
  std::string all;
  if (source_ == nullptr || framing_.kind == body_kind::none) co_return all;
  // Grown as the bytes arrive, not reserved for the declared length: a client that declares
  // a megabyte and sends nothing must not make the server hold one.
  const bool sized = framing_.kind == body_kind::length;
  for (;;) {
    if (sized && all.size() == framing_.length) break;
    const std::size_t step = sized ? static_cast<std::size_t>(std::min<std::uint64_t>(
                                         framing_.length - all.size(), 64 * 1024))
                                   : 16 * 1024;
    const std::size_t old = all.size();
    all.resize(old + step);
    const std::size_t n =
        co_await source_->read_body(std::as_writable_bytes(std::span{all.data() + old, step}));
    all.resize(old + n);
    if (n == 0) break;
  }
  co_return all;
}

std::optional<std::uint64_t> body_reader::declared_length() const noexcept {
  if (framing_.kind == body_kind::length) return framing_.length;
  if (framing_.kind == body_kind::none) return 0;
  return std::nullopt;
}

}  // namespace weft::http
