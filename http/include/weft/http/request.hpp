// weft::http::request: what a handler receives: the parsed head (views into the connection's
// buffer), path parameters from the router, and the body as a stream or whole.
//
// Thread safety: a request and its body_reader belong to the handler's task: used by one task at a
// time, and only until that task finishes (the views point into the connection's buffer).
// percent_decode is a pure function.
//
// Cancellation: body reads are cancellable (weft::operation_cancelled). After a cancelled read the
// body's position is unknown: later reads throw http::error 400 and the connection closes after the
// response. A read that waits past server_options::body_timeout is cancelled by the server, which
// then closes the connection without a response.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <weft/http/message_head.hpp>
#include <weft/task.hpp>

namespace weft::http {

namespace detail {
/// Where a body_reader's bytes come from: the server's connection.
class body_source {
 public:
  virtual task<std::size_t> read_body(std::span<std::byte> buf) = 0;

 protected:
  ~body_source() = default;
};
struct request_access;
}  // namespace detail

/// A request's body, read while the handler runs.
///
///     std::array<std::byte, 16384> buf;
///     while (std::size_t n = co_await req.body().read(buf)) sink(std::span{buf}.first(n));
///     // or, within limits::body:
///     std::string all = co_await req.body().text();
///
/// Reads return decoded bytes (a chunked body arrives without its framing) and 0 at the end. A
/// malformed chunked body throws http::error 400, one over limits::body 413, a client that closes
/// before the end 400; let it propagate and the server answers with that status and closes the
/// connection. Reading starts the body: to a request with `Expect: 100-continue` the server
/// sends `100 Continue` before the first read. What the handler leaves unread is read and
/// dropped after it returns when at most 64 KiB are left, so the next request on the connection
/// starts in the right place; more than that, or a body never asked for under 100-continue, is
/// not waited for: the connection closes after the response instead. A client that resets the
/// connection inside the body makes the read throw http::error 400. One task at a time.
class body_reader {
 public:
  body_reader() noexcept = default;
  body_reader(const body_reader&) = delete;
  body_reader& operator=(const body_reader&) = delete;

  /// Up to buf.size() bytes of the body; 0 at its end (at once for a request without a body).
  task<std::size_t> read(std::span<std::byte> buf);
  /// The rest of the body as one string.
  task<std::string> text();
  /// The length the client declared (Content-Length); nullopt for a chunked body.
  [[nodiscard]] std::optional<std::uint64_t> declared_length() const noexcept;
  /// True for a request that has no body at all.
  [[nodiscard]] bool empty() const noexcept { return framing_.kind == body_kind::none; }

 private:
  friend struct detail::request_access;
  detail::body_source* source_ = nullptr;
  body_framing framing_;
};

/// One request, valid while its handler runs: every view (method, target, headers, parameters)
/// points into the connection's buffer, so copy what must outlive the handler's task.
class request {
 public:
  request() noexcept = default;
  request(const request&) = delete;
  request& operator=(const request&) = delete;

  [[nodiscard]] std::string_view method() const noexcept { return head_.method; }
  /// The request target as sent ("/users/7?full=1").
  [[nodiscard]] std::string_view target() const noexcept { return head_.target; }
  /// The target up to '?' ("/users/7").
  [[nodiscard]] std::string_view path() const noexcept;
  /// The target after '?' ("full=1"), empty without one.
  [[nodiscard]] std::string_view query() const noexcept;
  /// 0 for HTTP/1.0, 1 for HTTP/1.1.
  [[nodiscard]] int version_minor() const noexcept { return head_.version_minor; }
  [[nodiscard]] const header_view& headers() const noexcept { return head_.headers; }
  /// The first header field named `name` (case-insensitive).
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept {
    return head_.headers.get(name);
  }
  /// A path parameter the router matched ("{id}" in "/users/{id}"), as sent (percent-encoded;
  /// see percent_decode); empty if the route has no such parameter.
  [[nodiscard]] std::string_view param(std::string_view name) const noexcept;
  [[nodiscard]] body_reader& body() noexcept { return body_; }
  /// The client's address as error messages name it ("127.0.0.1:51000").
  [[nodiscard]] const std::string& peer() const noexcept { return *peer_; }

 private:
  friend struct detail::request_access;
  request_head head_;
  std::vector<std::pair<std::string_view, std::string_view>> params_;
  body_reader body_;
  const std::string* peer_ = &no_peer;
  static const std::string no_peer;
};

/// Decodes %XX escapes ("a%20b" -> "a b"; '+' is kept: it means a space only in form bodies).
/// nullopt for a '%' not followed by two hex digits.
[[nodiscard]] std::optional<std::string> percent_decode(std::string_view s);

namespace detail {
/// For the server and the router: what a request is bound to.
struct request_access {
  static void bind(request& r, const request_head& head, body_source* source,
                   const std::string* peer) noexcept {
    r.head_ = head;
    r.params_.clear();
    r.body_.source_ = source;
    r.body_.framing_ = head.body;
    r.peer_ = peer;
  }
  static auto& params(request& r) noexcept { return r.params_; }
};
}  // namespace detail

}  // namespace weft::http
