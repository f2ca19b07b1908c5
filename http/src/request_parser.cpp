// The request head parser: scan for the end of the head, then parse it in one pass.
#include <weft/http/request_parser.hpp>

#include "head_rules.hpp"

namespace weft::http {

namespace {

/// "HTTP/1.1" → 1; -1: not HTTP-version's form; -2: a well-formed version other than 1.x.
int parse_version(std::string_view v) noexcept {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.') return -1;
  const char major = v[5];
  const char minor = v[7];
  if (major < '0' || major > '9' || minor < '0' || minor > '9') return -1;
  if (major != '1') return -2;
  // HTTP/1.2 and later 1.x are handled as 1.1 (RFC 9110 2.5), which they are compatible with.
  return minor == '0' ? 0 : 1;
}

}  // namespace

void request_parser::reset() noexcept {
  head_ = {};
  error_ = {};
  fields_.clear();
  scanned_ = line_start_ = start_line_ = lines_ = 0;
  done_ = false;
}

parse_status request_parser::fail(std::uint16_t status, std::string_view what) noexcept {
  error_ = {status, what};
  return parse_status::error;
}

parse_status request_parser::parse(std::string_view input) {
  if (error_) return parse_status::error;
  if (done_) return parse_status::complete;
  detail::scan_state s{scanned_, line_start_, start_line_, lines_};
  const detail::scan_limits lim{
      limits_.start_line, limits_.header_section, limits_.header_fields, 414, 431, 400, true};
  std::size_t head_end = 0;
  const auto r = detail::scan_head(input, s, lim, head_end, error_);
  scanned_ = s.scanned;
  line_start_ = s.line_start;
  start_line_ = s.head_start;
  lines_ = s.lines;
  if (r == detail::scan_result::error) return parse_status::error;
  if (r == detail::scan_result::need_more) return parse_status::need_more;
  const auto st = parse_head(input.substr(start_line_, head_end - start_line_));
  if (st == parse_status::complete) {
    head_.size = head_end;
    done_ = true;
  }
  return st;
}

parse_status request_parser::parse_head(std::string_view head) noexcept {
  std::string_view what;
  std::string_view line;
  try {
    line = detail::split_head(head, fields_, what);
  } catch (...) {  // the field table could not grow
    return fail(431, "no memory for the header fields");
  }
  // request-line = method SP request-target SP HTTP-version
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return fail(400, "a malformed request line");
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) {
    return fail(400, "a malformed request line");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!detail::is_token(method)) return fail(400, "a method that is not a token");
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return fail(400, "a request target with a character outside URI");
  }
  const int minor = parse_version(version);
  if (minor == -1) return fail(400, "a malformed HTTP version");
  if (minor == -2) return fail(505, "an HTTP version other than 1.x");
  if (!what.empty()) return fail(400, what);

  detail::framing_fields f;
  what = detail::read_framing(fields_, f);
  if (!what.empty()) return fail(400, what);
  if (f.has_content_length && f.has_transfer_encoding) {
    return fail(400, "both Content-Length and Transfer-Encoding");
  }
  if (f.has_transfer_encoding) {
    if (minor == 0) return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (!f.chunked_last) return fail(400, "a Transfer-Encoding whose last coding is not chunked");
    if (f.chunked_twice) return fail(400, "chunked applied twice");
    if (f.unknown_coding) return fail(501, "a transfer coding other than chunked");
  }
  if (minor == 1 && f.hosts == 0) return fail(400, "an HTTP/1.1 request without Host");
  if (f.hosts > 1) return fail(400, "more than one Host");
  if (f.has_content_length && f.content_length > limits_.body) {
    return fail(413, "a Content-Length over the body limit");
  }
  if (f.expect_other) return fail(417, "an expectation other than 100-continue");

  head_.method = method;
  head_.target = target;
  head_.version_minor = minor;
  head_.headers = header_view{fields_};
  if (f.has_transfer_encoding) {
    head_.body = {body_kind::chunked, 0};
  } else if (f.has_content_length && f.content_length > 0) {
    head_.body = {body_kind::length, f.content_length};
  } else {
    head_.body = {body_kind::none, 0};
  }
  head_.keep_alive =
      minor == 1 ? !f.connection_close : (f.connection_keep_alive && !f.connection_close);
  // An HTTP/1.0 client does not know 100 Continue (RFC 9110 10.1.1): it sends the body anyway.
  head_.expect_continue = f.expect_continue && minor == 1;
  return parse_status::complete;
}

}  // namespace weft::http
