// weft::http::request_head and response_head: a parsed start line and header section, as views
// into the bytes they were parsed from, with what the head says about the body and the
// connection.
//
// Thread safety: plain value types whose views point into a parser's input: they may be read from
// any thread while nobody changes or moves those bytes. iequals is a pure function.
//
// Cancellation: nothing here suspends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace weft::http {

/// One header field; the value has its surrounding whitespace removed.
struct header_field {
  std::string_view name;
  std::string_view value;
};

/// One header field, owned (what responses and the client's requests hold).
struct field {
  std::string name;
  std::string value;
};

/// ASCII case-insensitive equality (field names, methods' coding tokens).
[[nodiscard]] inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    // Setting bit 5 lower-cases a letter; it must be set in both or neither, and the byte a
    // letter: then only the case may differ.
    const unsigned char x = static_cast<unsigned char>(a[i]);
    const unsigned char y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;
    if ((x | 0x20) != (y | 0x20)) return false;
    const unsigned char lower = x | 0x20;
    if (lower < 'a' || lower > 'z') return false;
  }
  return true;
}

/// The header fields of a message in the order they came.
class header_view {
 public:
  header_view() noexcept = default;
  explicit header_view(std::span<const header_field> fields) noexcept : fields_(fields) {}

  /// The first field named `name` (case-insensitive), or nullopt.
  [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const noexcept;
  /// True if some field is named `name`.
  [[nodiscard]] bool contains(std::string_view name) const noexcept {
    return get(name).has_value();
  }
  [[nodiscard]] std::size_t size() const noexcept { return fields_.size(); }
  [[nodiscard]] auto begin() const noexcept { return fields_.begin(); }
  [[nodiscard]] auto end() const noexcept { return fields_.end(); }

 private:
  std::span<const header_field> fields_;
};

/// How the body that follows a head is delimited.
enum class body_kind : std::uint8_t {
  none,         // no body (a request without one; HEAD, 1xx, 204 and 304 responses)
  length,       // exactly `length` bytes (Content-Length)
  chunked,      // Transfer-Encoding: chunked (decode with chunked_decoder)
  until_close,  // a response without either: everything until the server closes
};

struct body_framing {
  body_kind kind = body_kind::none;
  std::uint64_t length = 0;  // for body_kind::length
};

/// A request's start line and header section. The views point into the parser's input and stay
/// valid while those bytes stay where they are.
struct request_head {
  std::string_view method;
  std::string_view target;
  int version_minor = 1;  // HTTP/1.0 or HTTP/1.1
  header_view headers;
  body_framing body;
  /// Whether the connection may carry another request after this one (Connection and version).
  bool keep_alive = true;
  /// Expect: 100-continue: the client waits for "100 Continue" before it sends the body.
  bool expect_continue = false;
  /// Bytes of the head, its final empty line included: the body (or the next request) starts
  /// there.
  std::size_t size = 0;
};

/// A response's status line and header section (views as in request_head).
struct response_head {
  int version_minor = 1;
  std::uint16_t status = 0;
  std::string_view reason;
  header_view headers;
  body_framing body;
  bool keep_alive = true;
  std::size_t size = 0;
};

}  // namespace weft::http
