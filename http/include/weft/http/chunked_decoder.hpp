// weft::http::chunked_decoder: removes the chunked transfer coding from a body, incrementally and
// without copying.
//
// Thread safety: a decoder is a plain object for one thread at a time; distinct decoders share no
// state.
//
// Cancellation: nothing here suspends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <weft/http/limits.hpp>
#include <weft/http/parse_error.hpp>

namespace weft::http {

/// What one chunked_decoder::decode call produced.
enum class decode_status : unsigned char {
  data,       // `data` holds body bytes
  need_more,  // every input byte was consumed; call again with more
  done,       // the body ended; `consumed` stops right after it
  error,      // error() says why
};

/// Decodes a chunked body (RFC 9112 section 7.1) from the bytes that follow the head.
///
///     weft::http::chunked_decoder d;
///     for (;;) {
///       auto r = d.decode(buffered);        // the bytes received and not yet consumed
///       if (r.status == decode_status::data) append(r.data);  // before the bytes are dropped
///       consume(r.consumed);                // drop what the call used from the buffer
///       else if (r.status == decode_status::done) break;  // next message follows
///       else if (r.status == decode_status::error) return refuse(d.error().status);
///       else read_more();                   // need_more
///     }
///
/// Each call returns at most one run of body bytes, as a view into `input` (valid until the
/// caller consumes it). Strict: chunk sizes are hex digits only (overflow, junk, a sign or
/// whitespace before them are 400), only CRLF ends a line, extensions are bounded
/// (limits::chunk_extension) and may hold no control characters, the data must be followed by
/// CRLF. Trailer fields are checked as header fields are (limits::trailer_section,
/// limits::header_fields: 431) and dropped. A body over limits::body is 413.
class chunked_decoder {
 public:
  struct result {
    decode_status status;
    std::size_t consumed;   // bytes of `input` used by this call (data and framing)
    std::string_view data;  // for status::data
  };

  explicit chunked_decoder(limits l = {}) : limits_(l) {}

  /// Decodes from `input`, the bytes after those consumed so far.
  result decode(std::string_view input) noexcept;
  [[nodiscard]] parse_error error() const noexcept { return error_; }
  /// Body bytes decoded so far.
  [[nodiscard]] std::uint64_t body_size() const noexcept { return body_size_; }
  /// Starts over, for the next body.
  void reset() noexcept;

 private:
  enum class phase : unsigned char {
    size,
    size_ws,
    extension,
    size_lf,
    data,
    data_cr,
    data_lf,
    trailer_line,
    trailer_lf,
    done,
    failed
  };
  result fail(std::size_t consumed, std::uint16_t code, std::string_view what) noexcept;

  static constexpr std::size_t max_size_chars = 64;

  limits limits_;
  parse_error error_;
  phase phase_ = phase::size;
  std::uint64_t chunk_left_ = 0;
  std::uint64_t body_size_ = 0;
  std::size_t size_digits_ = 0;  // significant hex digits of the chunk size
  std::size_t size_chars_ = 0;   // every character of it, leading zeros included
  std::size_t extension_len_ = 0;
  std::size_t trailer_len_ = 0;
  std::size_t trailer_fields_ = 0;
  // The trailer line being scanned, checked as it arrives (it may come in pieces): its length so
  // far and whether its colon was seen.
  std::size_t line_len_ = 0;
  bool line_colon_ = false;
};

}  // namespace weft::http
