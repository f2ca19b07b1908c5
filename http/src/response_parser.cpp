// The response head parser: the request parser's scan and field rules, a status line, and the
// response's body framing rules.
#include <weft/http/response_parser.hpp>

#include "head_rules.hpp"

namespace weft::http {

void response_parser::reset() noexcept {
  head_ = {};
  error_ = {};
  fields_.clear();
  scanned_ = line_start_ = lines_ = 0;
  done_ = false;
}

parse_status response_parser::fail(std::string_view what) noexcept {
  error_ = {502, what};
  return parse_status::error;
}

parse_status response_parser::parse(std::string_view input, bool to_head) {
  if (error_) return parse_status::error;
  if (done_) return parse_status::complete;
  detail::scan_state s{scanned_, line_start_, 0, lines_};
  const detail::scan_limits lim{
      limits_.start_line, limits_.header_section, limits_.header_fields, 502, 502, 502, false};
  std::size_t head_end = 0;
  const auto r = detail::scan_head(input, s, lim, head_end, error_);
  scanned_ = s.scanned;
  line_start_ = s.line_start;
  lines_ = s.lines;
  if (r == detail::scan_result::error) return parse_status::error;
  if (r == detail::scan_result::need_more) return parse_status::need_more;
  const auto st = parse_head(input.substr(0, head_end), to_head);
  if (st == parse_status::complete) {
    head_.size = head_end;
    done_ = true;
  }
  return st;
}

parse_status response_parser::parse_head(std::string_view head, bool to_head) noexcept {
  std::string_view what;
  std::string_view line;
  try {
    line = detail::split_head(head, fields_, what);
  } catch (...) {
    return fail("no memory for the header fields");
  }
  // status-line = HTTP-version SP status-code SP [ reason-phrase ]
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || line[6] != '.' || line[8] != ' ') {
    return fail("a malformed status line");
  }
  if (line[5] != '1' || line[7] < '0' || line[7] > '9')
    return fail("an HTTP version other than 1.x");
  int status = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return fail("a status code that is not three digits");
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100 || status > 599) return fail("a status code outside 100-599");
  std::string_view reason;
  if (line.size() > 12) {
    if (line[12] != ' ') return fail("a status code that is not three digits");
    reason = line.substr(13);
    for (char c : reason) {
      if (!detail::is_field_char(static_cast<unsigned char>(c))) {
        return fail("a control character in the reason phrase");
      }
    }
  }
  if (!what.empty()) return fail(what);
  const int minor = line[7] == '0' ? 0 : 1;

  detail::framing_fields f;
  what = detail::read_framing(fields_, f);
  if (!what.empty()) return fail(what);
  if (f.has_content_length && f.has_transfer_encoding) {
    return fail("both Content-Length and Transfer-Encoding");
  }
  if (f.chunked_twice) return fail("chunked applied twice");
  // The client sends no TE header, so a server may apply no coding but chunked (RFC 9112 6.1).
  if (f.unknown_coding) return fail("a transfer coding other than chunked");

  head_.version_minor = minor;
  head_.status = static_cast<std::uint16_t>(status);
  head_.reason = reason;
  head_.headers = header_view{fields_};
  head_.keep_alive =
      minor == 1 ? !f.connection_close : (f.connection_keep_alive && !f.connection_close);
  if (to_head || status < 200 || status == 204 || status == 304) {
    head_.body = {body_kind::none, 0};
  } else if (f.has_transfer_encoding) {
    head_.body = {body_kind::chunked, 0};
  } else if (f.has_content_length) {
    if (f.content_length > limits_.body) return fail("a Content-Length over the body limit");
    head_.body = f.content_length > 0 ? body_framing{body_kind::length, f.content_length}
                                      : body_framing{body_kind::none, 0};
  } else {
    head_.body = {body_kind::until_close, 0};
  }
  if (head_.body.kind == body_kind::until_close) head_.keep_alive = false;
  // HTTP/1.0 has no Transfer-Encoding: its framing is faulty, so the connection ends after this
  // message (RFC 9112 6.1).
  if (minor == 0 && f.has_transfer_encoding) head_.keep_alive = false;
  return parse_status::complete;
}

}  // namespace weft::http
