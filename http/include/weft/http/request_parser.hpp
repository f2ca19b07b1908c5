// weft::http::request_parser: an incremental, zero-copy, strict parser of HTTP/1.1 request heads.
//
// Thread safety: a parser is a plain object for one thread at a time; distinct parsers share no
// state, so each connection may have its own on any worker.
//
// Cancellation: nothing here suspends.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include <weft/http/limits.hpp>
#include <weft/http/message_head.hpp>
#include <weft/http/parse_error.hpp>

namespace weft::http {

/// What a parse call found.
enum class parse_status : unsigned char {
  need_more,  // the head is not complete yet: call again with these bytes and more
  complete,   // head() is ready; the body (or the next message) starts at head().size
  error,      // error() says why; a server answers error().status and closes
};

/// Parses the head of one request (RFC 9112) from the bytes received so far.
///
///     weft::http::request_parser p;
///     // bytes = everything received since the request started (a view into the read buffer)
///     switch (p.parse(bytes)) {
///       case parse_status::need_more: /* read more, call again */ break;
///       case parse_status::complete: route(p.head()); break;
///       case parse_status::error: reply(p.error().status); close(); break;
///     }
///
/// Incremental: each call resumes scanning where the last stopped, so a head arriving a byte at a
/// time costs O(its length) in all; the bytes may move between calls (a buffer that compacts),
/// since only offsets are kept until the head is complete. Zero-copy: head() holds views into the
/// last input, valid while those bytes stay in place. No allocation once the field table has
/// grown to the largest head seen.
///
/// Strict where request smuggling lives: only CRLF ends a line (a lone CR or a bare LF is 400),
/// obs-fold, whitespace before a field's colon, control characters and NUL in fields, both
/// Content-Length and Transfer-Encoding, differing Content-Lengths, a Transfer-Encoding whose last
/// coding is not chunked, and a missing or repeated Host in HTTP/1.1 are all refused (400). Over a
/// limit: 414 (request line), 431 (header section or field count), 413 (a Content-Length over the
/// body limit). An unknown transfer coding is 501, a version other than HTTP/1.x 505, an Expect
/// other than 100-continue 417. Leading empty lines before the request line are skipped.
class request_parser {
 public:
  explicit request_parser(limits l = {}) : limits_(l) {}

  /// Parses `input`, which starts at the request's first byte. After need_more, call again with
  /// the same bytes (possibly moved) followed by more.
  parse_status parse(std::string_view input);
  /// The parsed head (after complete).
  [[nodiscard]] const request_head& head() const noexcept { return head_; }
  /// Why the request was refused (after error).
  [[nodiscard]] parse_error error() const noexcept { return error_; }
  /// Forgets the message, for the next one on the connection (limits are kept).
  void reset() noexcept;

 private:
  parse_status fail(std::uint16_t status, std::string_view what) noexcept;
  parse_status parse_head(std::string_view head) noexcept;

  http::limits limits_;
  request_head head_;
  parse_error error_;
  std::vector<header_field> fields_;
  // Scan state, as offsets into the input.
  std::size_t scanned_ = 0;     // resume here
  std::size_t line_start_ = 0;  // start of the line being scanned
  std::size_t start_line_ = 0;  // start of the request line (after skipped empty lines)
  std::size_t lines_ = 0;       // lines completed since the request line began
  bool done_ = false;
};

}  // namespace weft::http
