// libFuzzer target: the chunked decoder. The body it decodes, the bytes it consumes and its
// verdict must not depend on how the input is split: whole, a byte at a time, and at a split
// point taken from the first input byte.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <weft/http/chunked_decoder.hpp>

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

struct run {
  weft::http::decode_status status = weft::http::decode_status::need_more;
  std::string body;
  std::size_t consumed = 0;
  std::uint16_t error = 0;
};

// Feeds `input` in pieces of at most `piece` bytes (0: all at once), as a reader would: what a
// call did not consume stays in front of the next piece.
run decode(std::string_view input, std::size_t piece, const weft::http::limits& l) {
  weft::http::chunked_decoder d{l};
  run r;
  std::string pending;
  std::size_t fed = 0;
  for (;;) {
    if (piece == 0) {
      pending.append(input.substr(fed));
      fed = input.size();
    } else if (fed < input.size() && pending.empty()) {
      const auto n = std::min(piece, input.size() - fed);
      pending.append(input.substr(fed, n));
      fed += n;
    }
    const auto res = d.decode(pending);
    require(res.consumed <= pending.size());
    r.consumed += res.consumed;
    if (res.status == weft::http::decode_status::data) {
      require(!res.data.empty());
      r.body.append(res.data);
    }
    pending.erase(0, res.consumed);
    if (res.status == weft::http::decode_status::done ||
        res.status == weft::http::decode_status::error) {
      r.status = res.status;
      r.error = d.error().status;
      return r;
    }
    if (res.status == weft::http::decode_status::need_more) {
      require(pending.empty());
      if (fed == input.size()) return r;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t split = data[0];
  const std::string_view input{reinterpret_cast<const char*>(data + 1), size - 1};
  weft::http::limits l;
  l.body = 8192;
  l.chunk_extension = 64;
  l.trailer_section = 256;
  l.header_fields = 8;
  const run whole = decode(input, 0, l);
  const run bytes = decode(input, 1, l);
  const run halves = decode(input, split + 1, l);
  for (const run* r : {&bytes, &halves}) {
    require(r->status == whole.status);
    require(r->body == whole.body);
    require(r->error == whole.error);
    if (whole.status == weft::http::decode_status::done) require(r->consumed == whole.consumed);
  }
  require(whole.body.size() <= l.body);
  return 0;
}
