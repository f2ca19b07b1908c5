// weft::http::limits: how much of a message the parsers accept before they refuse it.
//
// Thread safety: a plain aggregate, a value like any other.
//
// Cancellation: nothing here suspends.
#pragma once

#include <cstddef>

namespace weft::http {

/// Bounds on what a peer may send. Every bound is checked as bytes arrive, so a peer that sends
/// more is refused before the excess is buffered. The defaults are the ones a public-facing
/// server should have; a service-to-service client may raise them.
struct limits {
  /// The request line (or a response's status line), CRLF excluded. Over it: 414 (a response:
  /// a parse error).
  std::size_t start_line = 8 * 1024;
  /// The whole header section: start line, fields and the empty line. Over it: 431.
  std::size_t header_section = 16 * 1024;
  /// Header fields in the header section (and, separately, trailer fields). Over it: 431.
  std::size_t header_fields = 100;
  /// The decoded body. Over it: 413.
  std::size_t body = 1024 * 1024;
  /// One chunk's extensions (everything between the chunk size and its CRLF). Over it: 400.
  std::size_t chunk_extension = 1024;
  /// The trailer section after the last chunk. Over it: 431.
  std::size_t trailer_section = 8 * 1024;
};

}  // namespace weft::http
