// What the request and response parsers share: the incremental scan for the end of a head (line
// rules and limits), the header field grammar, and the framing headers' rules.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <weft/http/limits.hpp>
#include <weft/http/message_head.hpp>
#include <weft/http/parse_error.hpp>

namespace weft::http::detail {

/// tchar (RFC 9110 5.6.2): the characters of a token (method, field name, coding). A table,
/// inline: the parsers test every byte of every field name with it.
inline constexpr std::array<bool, 256> tchar_table = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (char c : std::string_view{"!#$%&'*+-.^_`|~"}) t[static_cast<unsigned char>(c)] = true;
  return t;
}();
inline bool is_tchar(unsigned char c) noexcept {
  return tchar_table[c];
}
/// A character a field value may hold: VCHAR, obs-text, SP and HTAB (no CTL, no DEL, no NUL).
inline bool is_field_char(unsigned char c) noexcept {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}
inline bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!is_tchar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

/// Where a scan for the end of a head stands, as offsets into the input.
struct scan_state {
  std::size_t scanned = 0;     // resume here
  std::size_t line_start = 0;  // the line being scanned starts here
  std::size_t head_start = 0;  // the start line starts here (after skipped empty lines)
  std::size_t lines = 0;       // lines completed, the start line included
};

struct scan_limits {
  std::size_t start_line;
  std::size_t header_section;
  std::size_t fields;
  std::uint16_t start_line_status;  // over start_line
  std::uint16_t section_status;     // over header_section or fields
  std::uint16_t malformed_status;   // a lone CR, a bare LF
  bool skip_leading_empty_lines;
};

enum class scan_result : unsigned char { need_more, complete, error };

/// Scans `in` from state.scanned for the empty line that ends the head. complete: `head_end` is
/// the offset just past it. Only CRLF ends a line; limits are checked as bytes are scanned.
scan_result scan_head(std::string_view in, scan_state& state, const scan_limits& lim,
                      std::size_t& head_end, parse_error& error) noexcept;

/// Parses one field line (no CRLF) into `out`: a token, a colon right after it, the value with
/// its surrounding whitespace removed. Returns a static description of the first rule broken,
/// or an empty view.
std::string_view parse_field_line(std::string_view line, header_field& out) noexcept;

/// Splits `head` (lines, each ending in CRLF, the last one empty) into its start line and field
/// lines, parsing the fields into `fields`. Returns the start line; sets `what` on a bad field.
std::string_view split_head(std::string_view head, std::vector<header_field>& fields,
                            std::string_view& what);

/// What the framing and connection fields of a head say.
struct framing_fields {
  bool has_content_length = false;
  std::uint64_t content_length = 0;
  bool has_transfer_encoding = false;
  bool chunked_last = false;  // the last transfer coding is chunked
  bool chunked_seen = false;
  bool chunked_twice = false;   // chunked appears more than once
  bool unknown_coding = false;  // a coding other than chunked
  bool connection_close = false;
  bool connection_keep_alive = false;
  std::size_t hosts = 0;
  bool expect_continue = false;
  bool expect_other = false;
};

/// Reads the framing fields; returns a static description of the first malformed one (a bad or
/// conflicting Content-Length, an empty coding), or an empty view.
std::string_view read_framing(std::span<const header_field> fields, framing_fields& out) noexcept;

}  // namespace weft::http::detail
