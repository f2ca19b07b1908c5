// libFuzzer target: the request head parser. Besides not crashing (ASan, UBSan), its verdict on
// a message fed a byte at a time, from a buffer that moves between calls, must equal its verdict
// on the whole message, and a complete head's views must lie inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <weft/http/request_parser.hpp>

namespace {

weft::http::limits small_limits() {
  weft::http::limits l;
  l.start_line = 512;
  l.header_section = 2048;
  l.header_fields = 16;
  l.body = 4096;
  return l;
}

void require(bool ok) {
  if (!ok) std::abort();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input{reinterpret_cast<const char*>(data), size};
  using weft::http::parse_status;

  weft::http::request_parser whole{small_limits()};
  const parse_status verdict = whole.parse(input);

  weft::http::request_parser pieces{small_limits()};
  parse_status step = parse_status::need_more;
  std::string moving;
  for (std::size_t k = 1; k <= size && step == parse_status::need_more; ++k) {
    moving.assign(input.substr(0, k));  // a new buffer each call: only offsets may be kept
    moving.shrink_to_fit();
    step = pieces.parse(moving);
  }
  if (size == 0) step = pieces.parse({});
  require(step == verdict);
  if (verdict == parse_status::error) {
    require(pieces.error().status == whole.error().status);
    require(!whole.error().what.empty());
  }
  if (verdict == parse_status::complete) {
    const auto& h = whole.head();
    require(h.size <= size);
    require(pieces.head().size == h.size);
    require(pieces.head().method == h.method && pieces.head().target == h.target);
    require(!h.method.empty() && !h.target.empty());
    require(inside(h.method, input) && inside(h.target, input));
    for (const auto& f : h.headers) require(inside(f.name, input) && inside(f.value, input));
    require(pieces.head().headers.size() == h.headers.size());
  }
  return 0;
}
