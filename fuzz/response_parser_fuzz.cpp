// libFuzzer target: the response head parser, with the same byte-at-a-time differential check as
// the request parser's; the first input byte says whether the request was HEAD.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <weft/http/response_parser.hpp>

namespace {
void require(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool to_head = (data[0] & 1) != 0;
  const std::string_view input{reinterpret_cast<const char*>(data + 1), size - 1};
  using weft::http::parse_status;
  weft::http::limits l;
  l.start_line = 512;
  l.header_section = 2048;
  l.header_fields = 16;

  weft::http::response_parser whole{l};
  const parse_status verdict = whole.parse(input, to_head);
  weft::http::response_parser pieces{l};
  parse_status step = parse_status::need_more;
  std::string moving;
  for (std::size_t k = 1; k <= input.size() && step == parse_status::need_more; ++k) {
    moving.assign(input.substr(0, k));
    moving.shrink_to_fit();
    step = pieces.parse(moving, to_head);
  }
  if (input.empty()) step = pieces.parse({}, to_head);
  require(step == verdict);
  if (verdict == parse_status::error) require(whole.error().status == 502);
  if (verdict == parse_status::complete) {
    const auto& h = whole.head();
    require(h.size <= input.size() && pieces.head().size == h.size);
    require(h.status >= 100 && h.status <= 999 && pieces.head().status == h.status);
    require(pieces.head().body.kind == h.body.kind && pieces.head().body.length == h.body.length);
    if (to_head) require(h.body.kind == weft::http::body_kind::none);
  }
  return 0;
}
