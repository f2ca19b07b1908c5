// The shared rules of the HTTP/1.1 parsers: line scanning, field grammar, framing fields.
#include "head_rules.hpp"

#include <algorithm>
#include <array>

namespace weft::http::detail {

namespace {

bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

/// Calls f(element) for each element of a comma-separated list (RFC 9110 5.6.1), trimmed; empty
/// elements are skipped, as recipients must.
template <class F>
void for_each_element(std::string_view list, F&& f) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    const auto element = trim_ows(list.substr(0, comma));
    if (!element.empty()) f(element);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace

scan_result scan_head(std::string_view in, scan_state& s, const scan_limits& lim,
                      std::size_t& head_end, parse_error& error) noexcept {
  const char* const p = in.data();
  const std::size_t n = in.size();
  std::size_t i = s.scanned;
  while (i < n) {
    // Fast path: a run of bytes that are neither CR nor LF, as far as the limits allow (the
    // scan may reach `bound`; one byte past it is over a limit).
    std::size_t bound = s.head_start + lim.header_section;
    if (s.lines == 0) bound = std::min(bound, s.line_start + lim.start_line);
    const std::size_t stop = bound >= n ? n : bound + 1;
    while (i < stop) {
      const auto b = static_cast<unsigned char>(p[i]);
      if (b <= '\r' && (b == '\r' || b == '\n')) break;
      ++i;
    }
    if (i > bound) {
      if (s.lines == 0 && i - s.line_start > lim.start_line) {
        error = {lim.start_line_status, "the start line is over its limit"};
      } else {
        error = {lim.section_status, "the header section is over its limit"};
      }
      return scan_result::error;
    }
    if (i == n) break;
    const char c = p[i];  // CR or LF
    if (c == '\n') {
      error = {lim.malformed_status, "a bare LF (a line must end in CRLF)"};
      return scan_result::error;
    }
    if (i + 1 >= n) break;  // a CR at the end: wait for what follows it
    if (p[i + 1] != '\n') {
      error = {lim.malformed_status, "a CR not followed by LF"};
      return scan_result::error;
    }
    const std::size_t len = i - s.line_start;
    if (len == 0) {
      if (s.lines == 0) {
        // An empty line before the start line (RFC 9112 2.2: a server ignores at least one).
        if (!lim.skip_leading_empty_lines) {
          error = {lim.malformed_status, "an empty line before the start line"};
          return scan_result::error;
        }
        if (i + 2 > lim.header_section) {
          error = {lim.section_status, "empty lines before the start line over the limit"};
          return scan_result::error;
        }
        i += 2;
        s.line_start = s.head_start = i;
        continue;
      }
      head_end = i + 2;
      if (head_end - s.head_start > lim.header_section) {
        error = {lim.section_status, "the header section is over its limit"};
        return scan_result::error;
      }
      s.scanned = head_end;
      return scan_result::complete;
    }
    ++s.lines;
    if (s.lines - 1 > lim.fields) {
      error = {lim.section_status, "more header fields than the limit"};
      return scan_result::error;
    }
    i += 2;
    s.line_start = i;
    if (i - s.head_start > lim.header_section) {
      error = {lim.section_status, "the header section is over its limit"};
      return scan_result::error;
    }
  }
  s.scanned = i;
  return scan_result::need_more;
}

std::string_view parse_field_line(std::string_view line, header_field& out) noexcept {
  if (line.empty()) return "an empty field line";
  if (is_ows(line.front())) return "obs-fold (a field line starting with whitespace)";
  std::size_t colon = 0;
  while (colon < line.size() && is_tchar(static_cast<unsigned char>(line[colon]))) ++colon;
  if (colon == line.size()) return "a field line without a colon";
  if (line[colon] != ':') {
    if (is_ows(line[colon])) return "whitespace between a field name and its colon";
    return "a field name with a character outside token";
  }
  if (colon == 0) return "an empty field name";
  const std::string_view value = line.substr(colon + 1);
  for (char c : value) {
    if (!is_field_char(static_cast<unsigned char>(c))) {
      return c == '\0' ? "NUL in a field value" : "a control character in a field value";
    }
  }
  out.name = line.substr(0, colon);
  out.value = trim_ows(value);
  return {};
}

std::string_view split_head(std::string_view head, std::vector<header_field>& fields,
                            std::string_view& what) {
  fields.clear();
  auto eol = head.find("\r\n");
  const std::string_view start = head.substr(0, eol);
  head.remove_prefix(eol + 2);
  while (!head.empty()) {
    eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    if (line.empty()) break;  // the final empty line
    header_field f;
    what = parse_field_line(line, f);
    if (!what.empty()) return start;
    fields.push_back(f);
  }
  return start;
}

std::string_view read_framing(std::span<const header_field> fields, framing_fields& out) noexcept {
  std::string_view what;
  for (const auto& f : fields) {
    if (iequals(f.name, "content-length")) {
      bool any = false;
      for_each_element(f.value, [&](std::string_view v) {
        if (!what.empty()) return;
        std::uint64_t n = 0;
        if (v.size() > 19) {  // 10^19 > 2^63: no digit string this long fits
          what = "a Content-Length too large";
          return;
        }
        for (char c : v) {
          if (c < '0' || c > '9') {
            what = "a Content-Length that is not a decimal number";
            return;
          }
          n = n * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (out.has_content_length && n != out.content_length) {
          what = "Content-Lengths that differ";
          return;
        }
        out.has_content_length = true;
        out.content_length = n;
        any = true;
      });
      if (!what.empty()) return what;
      if (!any) return "an empty Content-Length";
    } else if (iequals(f.name, "transfer-encoding")) {
      bool any = false;
      for_each_element(f.value, [&](std::string_view v) {
        // A coding's parameters follow a ';': only its name matters here.
        const auto name = trim_ows(v.substr(0, v.find(';')));
        if (!is_token(name)) {
          what = "a transfer coding that is not a token";
          return;
        }
        out.chunked_last = iequals(name, "chunked");
        if (out.chunked_last) {
          // chunked may be applied once only (RFC 9112 6.1), wherever the second one is.
          if (out.chunked_seen) out.chunked_twice = true;
          out.chunked_seen = true;
        } else {
          out.unknown_coding = true;
        }
        any = true;
      });
      if (!what.empty()) return what;
      if (!any) return "an empty Transfer-Encoding";
      out.has_transfer_encoding = true;
    } else if (iequals(f.name, "connection")) {
      for_each_element(f.value, [&](std::string_view v) {
        if (iequals(v, "close")) out.connection_close = true;
        if (iequals(v, "keep-alive")) out.connection_keep_alive = true;
      });
    } else if (iequals(f.name, "host")) {
      // Host = uri-host [ ":" port ]: no whitespace or control characters inside.
      for (char c : f.value) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return "an invalid Host";
      }
      ++out.hosts;
    } else if (iequals(f.name, "expect")) {
      if (iequals(f.value, "100-continue")) {
        out.expect_continue = true;
      } else {
        out.expect_other = true;
      }
    }
  }
  return {};
}

}  // namespace weft::http::detail
