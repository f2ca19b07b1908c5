// weft::http::response: what a handler returns: a status, header fields and a body from a string,
// a file or a stream of chunks.
//
// Thread safety: a response is a value built and returned by one task, not synchronised;
// reason_phrase is a pure function. A stream body's generator runs in the connection's task while
// the body is sent.
//
// Cancellation: response::file(path) opens the file through io_uring and is cancellable
// (weft::operation_cancelled). Bodies are sent after the handler returned: when the server cancels
// the connection meanwhile (a write timeout, the end of the grace period), a stream body's
// generator sees it at its awaits and the connection closes. Nothing else suspends.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <weft/http/message_head.hpp>
#include <weft/io/file.hpp>
#include <weft/stream/async_generator.hpp>
#include <weft/task.hpp>

namespace weft::http {

namespace detail {
struct response_access;
}

/// The reason phrase of `status` ("OK", "Not Found"), or "Unknown" for a status without one.
[[nodiscard]] std::string_view reason_phrase(std::uint16_t status) noexcept;

/// A response under construction. The server writes the status line, `Server`, `Date`,
/// `Content-Type`, the body's framing (`Content-Length`, or `Transfer-Encoding: chunked` for a
/// stream) and `Connection` itself; the handler sets the rest.
///
///     co_return weft::http::response::text("Hello, World!");
///     co_return weft::http::response::json(R"({"id":7})", 201).set_header("Location", "/users/7");
///     co_return co_await weft::http::response::file("static/index.html", "text/html");
///
/// Bodies: a string (sent with Content-Length), a file range (Content-Length, read through the
/// worker's io_uring as it is sent) or an async_generator<std::string> (chunked; each non-empty
/// string is one chunk; to an HTTP/1.0 client the body ends with the connection instead). The
/// body of a response to HEAD, and of a 1xx, 204 or 304, is not sent (a stream is not run).
///
/// The setters chain, on a response in a variable or on a temporary (`co_return
/// response::text("x").set_header(...)` moves it out).
///
/// Misuse is refused when it happens: a header name that is not a token, or a value with CR, LF
/// or NUL (response splitting) throws std::invalid_argument, as does setting Content-Length,
/// Transfer-Encoding or Connection (the server owns the framing; see close_connection()). A
/// status outside 100-599 is std::invalid_argument too.
class response {
 public:
  using field = http::field;
  /// A range of an open file, sent as it is read.
  struct file_body {
    weft::file file;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
  };
  using chunk_stream = async_generator<std::string>;

  /// 200 with an empty body.
  response() = default;
  explicit response(std::uint16_t status) { set_status(status); }

  /// A text/plain; charset=utf-8 body.
  static response text(std::string body, std::uint16_t status = 200);
  static response html(std::string body, std::uint16_t status = 200);
  static response json(std::string body, std::uint16_t status = 200);
  /// The file at `path`, whole; a missing file is http::error 404, one that cannot be read 403.
  static task<response> file(std::string path,
                             std::string content_type = "application/octet-stream");
  /// `length` bytes of `f` from `offset` (the file must hold them: a shorter file fails the
  /// response part way, and the connection is closed).
  static response file(weft::file f, std::uint64_t offset, std::uint64_t length,
                       std::string content_type = "application/octet-stream");
  /// A body produced as it is sent, chunk by chunk.
  static response stream(chunk_stream chunks, std::string content_type = "text/plain");

  [[nodiscard]] std::uint16_t status() const noexcept { return status_; }
  response& set_status(std::uint16_t status) &;
  response&& set_status(std::uint16_t status) && { return std::move(set_status(status)); }

  /// Replaces every field named `name` (case-insensitive) with one.
  response& set_header(std::string_view name, std::string value) &;
  response&& set_header(std::string_view name, std::string value) && {
    return std::move(set_header(name, std::move(value)));
  }
  /// Adds a field, keeping those of the same name (Set-Cookie, Vary, …).
  response& add_header(std::string_view name, std::string value) &;
  response&& add_header(std::string_view name, std::string value) && {
    return std::move(add_header(name, std::move(value)));
  }
  /// The first field named `name`.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept;
  [[nodiscard]] const std::vector<field>& headers() const noexcept { return headers_; }

  response& set_content_type(std::string type) &;
  response&& set_content_type(std::string type) && {
    return std::move(set_content_type(std::move(type)));
  }
  [[nodiscard]] std::string_view content_type() const noexcept {
    return known_type_ != nullptr ? std::string_view{known_type_} : std::string_view{content_type_};
  }

  response& set_body(std::string body) &;
  response&& set_body(std::string body) && { return std::move(set_body(std::move(body))); }
  /// The string body (empty for a file or stream body).
  [[nodiscard]] std::string_view body() const noexcept;
  [[nodiscard]] bool has_file_body() const noexcept {
    return std::holds_alternative<file_body>(body_);
  }
  [[nodiscard]] bool has_stream_body() const noexcept {
    return std::holds_alternative<chunk_stream>(body_);
  }

  /// Closes the connection after this response (it says `Connection: close`).
  response& close_connection() & noexcept {
    close_ = true;
    return *this;
  }
  response&& close_connection() && noexcept { return std::move(close_connection()); }
  [[nodiscard]] bool closes_connection() const noexcept { return close_; }

 private:
  friend struct detail::response_access;
  static void check_field(std::string_view name, std::string_view value);

  std::uint16_t status_ = 200;
  bool close_ = false;
  // text(), html() and json() name a static type instead of copying it: no allocation.
  const char* known_type_ = nullptr;
  std::string content_type_;
  std::vector<field> headers_;
  std::variant<std::string, file_body, chunk_stream> body_;
};

namespace detail {
/// For the server's connection code: the body, taken as it is sent.
struct response_access {
  static auto& body(response& r) noexcept { return r.body_; }
};
}  // namespace detail

}  // namespace weft::http
