// The chunked transfer coding, decoded byte by byte where it is framing and by the run where it
// is data.
#include <weft/http/chunked_decoder.hpp>

#include <algorithm>

#include "head_rules.hpp"

namespace weft::http {

namespace {
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

void chunked_decoder::reset() noexcept {
  error_ = {};
  phase_ = phase::size;
  chunk_left_ = body_size_ = 0;
  size_digits_ = size_chars_ = extension_len_ = trailer_len_ = trailer_fields_ = line_len_ = 0;
}

chunked_decoder::result chunked_decoder::fail(std::size_t consumed, std::uint16_t code,
                                              std::string_view what) noexcept {
  phase_ = phase::failed;
  error_ = {code, what};
  return {decode_status::error, consumed, {}};
}

chunked_decoder::result chunked_decoder::decode(std::string_view in) noexcept {
  std::size_t i = 0;
  const std::size_t n = in.size();
  while (i < n) {
    const char c = in[i];
    switch (phase_) {
      case phase::size: {
        const int h = hex_value(c);
        if (h >= 0) {
          // 15 significant hex digits hold sizes to 2^60, far over any body limit; leading
          // zeros are not significant, but bounded too.
          if (size_digits_ > 0 || h != 0) ++size_digits_;
          if (size_digits_ > 15) return fail(i, 400, "a chunk size that overflows");
          if (++size_chars_ > max_size_chars)
            return fail(i, 400, "a chunk size over 64 characters");
          chunk_left_ = chunk_left_ * 16 + static_cast<std::uint64_t>(h);
          ++i;
          break;
        }
        if (size_chars_ == 0) return fail(i, 400, "a chunk size that is not hex digits");
        if (c == ';') {
          phase_ = phase::extension;
        } else if (c == ' ' || c == '\t') {
          phase_ = phase::size_ws;  // BWS, then ";" or the end of the line
        } else if (c == '\r') {
          phase_ = phase::size_lf;
          ++i;
        } else {
          return fail(i, 400, "junk after a chunk size");
        }
        break;
      }
      case phase::size_ws: {
        if (c == ' ' || c == '\t') {
          if (++extension_len_ > limits_.chunk_extension) {
            return fail(i, 400, "a chunk extension over its limit");
          }
          ++i;
        } else if (c == ';') {
          phase_ = phase::extension;
        } else if (c == '\r') {
          phase_ = phase::size_lf;
          ++i;
        } else {
          return fail(i, 400, "junk after a chunk size");
        }
        break;
      }
      case phase::extension: {
        // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ): bounded, no control
        // characters; the extension itself means nothing to weft and is dropped.
        if (c == '\r') {
          phase_ = phase::size_lf;
          ++i;
          break;
        }
        if (c == '\n') return fail(i, 400, "a bare LF in a chunk line");
        if (!detail::is_field_char(static_cast<unsigned char>(c))) {
          return fail(i, 400, "a control character in a chunk extension");
        }
        if (++extension_len_ > limits_.chunk_extension) {
          return fail(i, 400, "a chunk extension over its limit");
        }
        ++i;
        break;
      }
      case phase::size_lf: {
        if (c != '\n') return fail(i, 400, "a CR not followed by LF in a chunk line");
        ++i;
        extension_len_ = size_digits_ = size_chars_ = 0;
        if (chunk_left_ == 0) {
          phase_ = phase::trailer_line;
          line_len_ = 0;
          line_colon_ = false;
        } else {
          if (chunk_left_ > limits_.body - std::min(limits_.body, body_size_)) {
            return fail(i, 413, "a chunked body over the body limit");
          }
          phase_ = phase::data;
        }
        break;
      }
      case phase::data: {
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_left_, n - i));
        chunk_left_ -= take;
        body_size_ += take;
        if (chunk_left_ == 0) phase_ = phase::data_cr;
        return {decode_status::data, i + take, in.substr(i, take)};
      }
      case phase::data_cr:
        if (c != '\r') return fail(i, 400, "chunk data not followed by CRLF");
        phase_ = phase::data_lf;
        ++i;
        break;
      case phase::data_lf:
        if (c != '\n') return fail(i, 400, "chunk data not followed by CRLF");
        phase_ = phase::size;
        ++i;
        break;
      case phase::trailer_line: {
        if (c == '\r') {
          phase_ = phase::trailer_lf;
          ++i;
          break;
        }
        if (c == '\n') return fail(i, 400, "a bare LF in the trailer section");
        const auto u = static_cast<unsigned char>(c);
        if (!line_colon_) {
          if (c == ':') {
            if (line_len_ == 0) return fail(i, 400, "an empty trailer field name");
            line_colon_ = true;
          } else if (!detail::is_tchar(u)) {
            if (line_len_ == 0 && (c == ' ' || c == '\t')) {
              return fail(i, 400, "obs-fold in the trailer section");
            }
            return fail(i, 400, "a trailer field name with a character outside token");
          }
        } else if (!detail::is_field_char(u)) {
          return fail(i, 400, "a control character in a trailer field");
        }
        ++line_len_;
        if (++trailer_len_ > limits_.trailer_section) {
          return fail(i, 431, "a trailer section over its limit");
        }
        ++i;
        break;
      }
      case phase::trailer_lf: {
        if (c != '\n') return fail(i, 400, "a CR not followed by LF in the trailer section");
        ++i;
        if (line_len_ == 0) {
          phase_ = phase::done;
          return {decode_status::done, i, {}};
        }
        trailer_len_ += 2;  // a field line's CRLF counts, as the header section's do
        if (trailer_len_ > limits_.trailer_section) {
          return fail(i, 431, "a trailer section over its limit");
        }
        if (!line_colon_) return fail(i, 400, "a trailer field line without a colon");
        if (++trailer_fields_ > limits_.header_fields) {
          return fail(i, 431, "more trailer fields than the limit");
        }
        line_len_ = 0;
        line_colon_ = false;
        phase_ = phase::trailer_line;
        break;
      }
      case phase::done:
        return {decode_status::done, i, {}};
      case phase::failed:
        return {decode_status::error, i, {}};
    }
  }
  if (phase_ == phase::done) return {decode_status::done, i, {}};
  if (phase_ == phase::failed) return {decode_status::error, i, {}};
  return {decode_status::need_more, i, {}};
}

}  // namespace weft::http
