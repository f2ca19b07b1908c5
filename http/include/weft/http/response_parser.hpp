// weft::http::response_parser: an incremental, zero-copy, strict parser of HTTP/1.1 response
// heads, for the client.
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
#include <weft/http/request_parser.hpp>

namespace weft::http {

/// Parses the head of one response (RFC 9112), as request_parser does a request's: the same
/// incremental scan, line rules and field rules. The body framing follows RFC 9112 section 6.3:
/// none for a response to HEAD and for 1xx, 204 and 304; chunked for Transfer-Encoding: chunked;
/// Content-Length; until the close when neither header is there. Both headers, differing
/// Content-Lengths, "chunked" applied twice and any other transfer coding (the client sends no
/// TE header, so a server may apply none) are refused, as is a status outside 100-599. A 1xx
/// response (100 Continue) is complete with no body: parse the next head after it (reset(), then
/// parse from head().size on).
///
/// A refusal's status is 502 (what a gateway answers for a malformed upstream response); `what`
/// says why.
class response_parser {
 public:
  explicit response_parser(limits l = {}) : limits_(l) {}

  /// Parses `input`, which starts at the response's first byte; `to_head` says the request was
  /// HEAD (the response then has no body whatever its headers say).
  parse_status parse(std::string_view input, bool to_head = false);
  [[nodiscard]] const response_head& head() const noexcept { return head_; }
  [[nodiscard]] parse_error error() const noexcept { return error_; }
  void reset() noexcept;

 private:
  parse_status fail(std::string_view what) noexcept;
  parse_status parse_head(std::string_view head, bool to_head) noexcept;

  http::limits limits_;
  response_head head_;
  parse_error error_;
  std::vector<header_field> fields_;
  std::size_t scanned_ = 0;
  std::size_t line_start_ = 0;
  std::size_t lines_ = 0;
  bool done_ = false;
};

}  // namespace weft::http
