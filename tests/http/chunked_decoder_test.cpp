// weft::http::chunked_decoder: decoding a chunked body whole and a byte at a time (the data
// views, the `consumed` arithmetic of a caller that drops what each call consumed), chunk
// extensions, trailers (dropped; the bytes after the body untouched), hex case and leading zeros,
// every refusal with its exact status (junk, no digits, a sign, overflow, lone CR and bare LF,
// data without CRLF, extensions, the body limit across chunks, the trailer limits and rules), and
// reuse after reset().
#include <weft/http/chunked_decoder.hpp>
#include <weft/http/limits.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace {

namespace http = weft::http;
using http::decode_status;
using namespace std::string_literals;

constexpr std::size_t whole_input = std::numeric_limits<std::size_t>::max();

// What decoding a whole input found.
struct outcome {
  decode_status status = decode_status::need_more;
  std::string body;
  std::size_t consumed = 0;  // input bytes consumed in all
  std::string rest;          // the input bytes not consumed (after done)
  std::uint16_t error_status = 0;
  bool has_what = false;
  std::uint64_t body_size = 0;

  bool operator==(const outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const outcome& o) {
  return os << "{status=" << static_cast<int>(o.status) << " body='" << o.body
            << "' consumed=" << o.consumed << " rest='" << o.rest << "' error=" << o.error_status
            << " body_size=" << o.body_size << "}";
}

// Feeds `input` to `d` as a reader would: `piece` bytes at a time (whole_input: all at once) are
// appended to a buffer, decode() is called on the buffer, and what it consumed is dropped from
// its front. Checks the contract of each call as it goes.
outcome feed(http::chunked_decoder& d, std::string_view input, std::size_t piece = whole_input) {
  outcome o;
  std::string buffer;
  std::size_t fed = 0;
  for (;;) {
    if (buffer.empty() || piece == whole_input) {
      const std::size_t n = std::min(piece, input.size() - fed);
      buffer.append(input.substr(fed, n));
      fed += n;
    }
    const auto r = d.decode(buffer);
    EXPECT_LE(r.consumed, buffer.size());
    if (r.status == decode_status::data) {
      EXPECT_FALSE(r.data.empty());
      // The data is a view into the buffer and ends where the consumed bytes end.
      EXPECT_GE(r.data.data(), buffer.data());
      EXPECT_EQ(r.data.data() + r.data.size(), buffer.data() + r.consumed);
      o.body.append(r.data);
    } else {
      EXPECT_TRUE(r.data.empty());
    }
    o.consumed += r.consumed;
    buffer.erase(0, r.consumed);
    if (r.status == decode_status::done || r.status == decode_status::error) {
      o.status = r.status;
      o.rest = buffer + std::string{input.substr(fed)};
      o.error_status = d.error().status;
      o.has_what = !d.error().what.empty();
      o.body_size = d.body_size();
      return o;
    }
    if (r.status == decode_status::need_more) {
      EXPECT_TRUE(buffer.empty()) << "need_more must consume every byte";
      if (fed == input.size() || !buffer.empty()) {
        o.status = decode_status::need_more;
        o.body_size = d.body_size();
        return o;
      }
    }
  }
}

outcome decode(std::string_view input, http::limits l = {}, std::size_t piece = whole_input) {
  http::chunked_decoder d{l};
  return feed(d, input, piece);
}

// Decodes whole, a byte at a time and in pieces of 2, 3 and 7 bytes: the outcomes must agree
// (the bytes consumed before an error may differ with the split, so they are only compared when
// the body is done). Returns the whole outcome.
outcome decode_every_way(std::string_view input, http::limits l = {}) {
  const outcome whole = decode(input, l);
  for (std::size_t piece : {1, 2, 3, 7}) {
    SCOPED_TRACE("pieces of " + std::to_string(piece));
    outcome split = decode(input, l, piece);
    EXPECT_EQ(split.status, whole.status);
    EXPECT_EQ(split.body, whole.body);
    EXPECT_EQ(split.error_status, whole.error_status);
    if (whole.status != decode_status::error) {
      EXPECT_EQ(split, whole);
    }
  }
  return whole;
}

void expect_refused(std::string_view input, std::uint16_t status, http::limits l = {}) {
  const outcome o = decode_every_way(input, l);
  EXPECT_EQ(static_cast<int>(o.status), static_cast<int>(decode_status::error)) << o;
  EXPECT_EQ(o.error_status, status) << o;
  EXPECT_TRUE(o.has_what);
}

outcome expect_done(std::string_view input, http::limits l = {}) {
  const outcome o = decode_every_way(input, l);
  EXPECT_EQ(static_cast<int>(o.status), static_cast<int>(decode_status::done)) << o;
  EXPECT_EQ(o.error_status, 0) << o;
  EXPECT_EQ(o.body_size, o.body.size());
  return o;
}

// --- Decoding ------------------------------------------------------------------------------------

TEST(ChunkedDecoder, OneBufferCallByCall) {
  const std::string input = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT";
  http::chunked_decoder d;
  std::string_view in = input;

  auto r = d.decode(in);
  EXPECT_EQ(r.status, decode_status::data);
  EXPECT_EQ(r.data, "hello");
  EXPECT_EQ(r.consumed, 8u);  // "5\r\n" and the data
  EXPECT_EQ(r.data.data(), input.data() + 3);
  EXPECT_EQ(d.body_size(), 5u);
  in.remove_prefix(r.consumed);

  r = d.decode(in);
  EXPECT_EQ(r.status, decode_status::data);
  EXPECT_EQ(r.data, " world");
  EXPECT_EQ(r.consumed, 11u);  // "\r\n6\r\n" and the data
  EXPECT_EQ(d.body_size(), 11u);
  in.remove_prefix(r.consumed);

  r = d.decode(in);
  EXPECT_EQ(r.status, decode_status::done);
  EXPECT_EQ(r.consumed, 7u);  // "\r\n0\r\n\r\n"
  EXPECT_TRUE(r.data.empty());
  in.remove_prefix(r.consumed);
  EXPECT_EQ(in, "NEXT");

  // Done stays done and consumes nothing more.
  r = d.decode(in);
  EXPECT_EQ(r.status, decode_status::done);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_FALSE(d.error());
}

TEST(ChunkedDecoder, WholeAndByteByByte) {
  const auto o = expect_done("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT");
  EXPECT_EQ(o.body, "hello world");
  EXPECT_EQ(o.consumed, 26u);
  EXPECT_EQ(o.rest, "NEXT");
  EXPECT_EQ(o.body_size, 11u);
}

TEST(ChunkedDecoder, PartialDataComesOutAsItArrives) {
  http::chunked_decoder d;
  auto r = d.decode("a\r\n0123");
  EXPECT_EQ(r.status, decode_status::data);
  EXPECT_EQ(r.data, "0123");
  EXPECT_EQ(r.consumed, 7u);
  r = d.decode("");
  EXPECT_EQ(r.status, decode_status::need_more);
  EXPECT_EQ(r.consumed, 0u);
  r = d.decode("456789\r");
  EXPECT_EQ(r.status, decode_status::data);
  EXPECT_EQ(r.data, "456789");
  EXPECT_EQ(r.consumed, 6u);
  r = d.decode("\r");
  EXPECT_EQ(r.status, decode_status::need_more);
  EXPECT_EQ(r.consumed, 1u);
  r = d.decode("\n0\r\n\r\nX");
  EXPECT_EQ(r.status, decode_status::done);
  EXPECT_EQ(r.consumed, 6u);
  EXPECT_EQ(d.body_size(), 10u);
}

TEST(ChunkedDecoder, EmptyBody) {
  const auto o = expect_done("0\r\n\r\n");
  EXPECT_EQ(o.body, "");
  EXPECT_EQ(o.consumed, 5u);
  EXPECT_EQ(o.rest, "");
}

TEST(ChunkedDecoder, IncompleteNeedsMore) {
  for (std::string_view input : {"", "5", "5\r", "5\r\n", "5\r\nhel", "5\r\nhello", "5\r\nhello\r",
                                 "5\r\nhello\r\n", "5;x=y", "0\r\n", "0\r\n\r", "0\r\nA: b\r\n"}) {
    SCOPED_TRACE(input);
    const auto o = decode_every_way(input);
    EXPECT_EQ(o.status, decode_status::need_more);
    EXPECT_EQ(o.consumed, input.size());
  }
}

TEST(ChunkedDecoder, Extensions) {
  auto o = expect_done("5;name=value\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(o.body, "hello");
  o = expect_done("5 ;x\r\nhello\r\n0;last\r\n\r\n");
  EXPECT_EQ(o.body, "hello");
  o = expect_done("5\t;x\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(o.body, "hello");
  o = expect_done("5;a;b=\"q s\";c = d\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(o.body, "hello");
  o = expect_done("5;ext=\x80\xff\r\nhello\r\n0\r\n\r\n");  // obs-text is no control character
  EXPECT_EQ(o.body, "hello");
}

TEST(ChunkedDecoder, TrailersAreDroppedAndTheNextMessageUntouched) {
  const std::string next = "GET / HTTP/1.1\r\n";
  const std::string body = "3\r\nabc\r\n0\r\nX-Checksum: 123\r\nY:\r\nZ: a\tb\r\n\r\n";
  const auto o = expect_done(body + next);
  EXPECT_EQ(o.body, "abc");
  EXPECT_EQ(o.consumed, body.size());  // right after the final CRLF
  EXPECT_EQ(o.rest, next);
}

TEST(ChunkedDecoder, HexCaseAndLeadingZeros) {
  const std::string ten = "0123456789";
  auto o = expect_done("A\r\n" + ten + "\r\na\r\n" + ten + "\r\n0\r\n\r\n");
  EXPECT_EQ(o.body, ten + ten);
  o = expect_done("000a\r\n" + ten + "\r\n000\r\n\r\n");
  EXPECT_EQ(o.body, ten);
  o = expect_done("1F\r\n" + std::string(31, 'x') + "\r\n0\r\n\r\n");
  EXPECT_EQ(o.body.size(), 31u);
  o = expect_done("1f\r\n" + std::string(31, 'x') + "\r\n0\r\n\r\n");
  EXPECT_EQ(o.body.size(), 31u);
  // Leading zeros do not count toward the 15 significant digits.
  o = expect_done("00000000000000000000001\r\nz\r\n0\r\n\r\n");
  EXPECT_EQ(o.body, "z");
}

TEST(ChunkedDecoder, BodyBytesThatLookLikeFraming) {
  const std::string data = "0\r\n\r\n\n\r\x00\x7f"s;
  const auto o = expect_done("9\r\n" + data + "\r\n0\r\n\r\n");
  EXPECT_EQ(o.body, data);
}

TEST(ChunkedDecoder, FifteenHexDigitsAreASize) {
  http::limits l;
  l.body = std::numeric_limits<std::size_t>::max();
  http::chunked_decoder d{l};
  const auto r = d.decode("fffffffffffffff\r\nabc");
  EXPECT_EQ(r.status, decode_status::data);
  EXPECT_EQ(r.data, "abc");
  EXPECT_FALSE(d.error());
}

TEST(ChunkedDecoder, ResetReuses) {
  http::chunked_decoder d;
  auto o = feed(d, "3\r\nabc\r\n0\r\nT: 1\r\n\r\n");
  EXPECT_EQ(o.status, decode_status::done);
  EXPECT_EQ(o.body, "abc");
  d.reset();
  EXPECT_EQ(d.body_size(), 0u);
  o = feed(d, "2\r\nde\r\n0\r\n\r\n");
  EXPECT_EQ(o.status, decode_status::done);
  EXPECT_EQ(o.body, "de");
  EXPECT_EQ(d.body_size(), 2u);

  // After an error, decode keeps saying error, consuming nothing, until reset().
  d.reset();
  o = feed(d, "5x\r\n");
  EXPECT_EQ(o.status, decode_status::error);
  EXPECT_EQ(d.error().status, 400);
  auto r = d.decode("5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(r.status, decode_status::error);
  EXPECT_EQ(r.consumed, 0u);
  d.reset();
  EXPECT_FALSE(d.error());
  o = feed(d, "5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(o.status, decode_status::done);
  EXPECT_EQ(o.body, "hello");

  // reset() in the middle of a chunk, of a size, of a trailer.
  for (std::string_view partial : {"5\r\nhe", "1", "5;ext", "0\r\nTrailer: val"}) {
    d.reset();
    (void)feed(d, partial);
    d.reset();
    o = feed(d, "1\r\nq\r\n0\r\n\r\n");
    EXPECT_EQ(o.status, decode_status::done) << partial;
    EXPECT_EQ(o.body, "q");
  }

  // The body limit counts from the reset.
  http::limits l;
  l.body = 5;
  http::chunked_decoder small{l};
  EXPECT_EQ(feed(small, "5\r\nhello\r\n0\r\n\r\n").status, decode_status::done);
  small.reset();
  EXPECT_EQ(feed(small, "5\r\nhello\r\n0\r\n\r\n").status, decode_status::done);
}

// --- Refusals ------------------------------------------------------------------------------------

TEST(ChunkedDecoderErrors, JunkInSize) {
  expect_refused("5x\r\nhello\r\n0\r\n\r\n", 400);
}

TEST(ChunkedDecoderErrors, JunkInSizeOtherForms) {
  expect_refused("0x5\r\nhello\r\n0\r\n\r\n", 400);
  expect_refused("g\r\n", 400);
  expect_refused("5,\r\n", 400);
}

TEST(ChunkedDecoderErrors, NoDigits) {
  expect_refused(";ext\r\nhello\r\n0\r\n\r\n", 400);
}

TEST(ChunkedDecoderErrors, EmptySizeLine) {
  expect_refused("\r\nhello\r\n0\r\n\r\n", 400);
}

TEST(ChunkedDecoderErrors, Sign) {
  expect_refused("+5\r\nhello\r\n0\r\n\r\n", 400);
  expect_refused("-5\r\nhello\r\n0\r\n\r\n", 400);
}

TEST(ChunkedDecoderErrors, WhitespaceBeforeSize) {
  expect_refused(" 5\r\nhello\r\n0\r\n\r\n", 400);
  expect_refused("\t5\r\nhello\r\n0\r\n\r\n", 400);
}

TEST(ChunkedDecoderErrors, SizeOverflows) {
  http::limits l;
  l.body = std::numeric_limits<std::size_t>::max();
  expect_refused("10000000000000000\r\n", 400, l);  // 17 digits
  expect_refused("10000000000000000\r\n", 400);
  expect_refused("fffffffffffffffff\r\n", 400, l);
  // docs/http.md: over 15 significant digits is refused, even where 16 would fit in 64 bits.
  expect_refused("1000000000000000\r\n", 400, l);
  expect_refused("ffffffffffffffff\r\n", 400, l);
}

// After a chunk size only BWS and then ";" or the CRLF may follow: chunk-ext is *( BWS ";" ... )
// (RFC 9112 7.1.1), so "5 x" and "5 5" are junk, not extensions.
TEST(ChunkedDecoderErrors, JunkAfterWhitespaceAfterSize) {
  expect_refused("5 x\r\nhello\r\n0\r\n\r\n", 400);
  expect_refused("5 5\r\nhello\r\n0\r\n\r\n", 400);
}

TEST(ChunkedDecoderErrors, LoneCrInSizeLine) {
  expect_refused("5\rhello\r\n0\r\n\r\n", 400);
  expect_refused("5;ext\rhello\r\n0\r\n\r\n", 400);
  expect_refused("5\r\r\nhello\r\n0\r\n\r\n", 400);
}

TEST(ChunkedDecoderErrors, BareLfInSizeLine) {
  expect_refused("5\nhello\r\n0\r\n\r\n", 400);
  expect_refused("5;ext\nhello\r\n0\r\n\r\n", 400);
  expect_refused("5\r\nhello\r\n0\n\r\n", 400);
}

TEST(ChunkedDecoderErrors, DataNotFollowedByCrlf) {
  expect_refused("5\r\nhelloX\r\n0\r\n\r\n", 400);
  expect_refused("5\r\nhello\rX0\r\n\r\n", 400);
  expect_refused("5\r\nhello\n0\r\n\r\n", 400);
  expect_refused("5\r\nhello0\r\n\r\n", 400);
  expect_refused("3\r\nhello\r\n0\r\n\r\n", 400);  // a size shorter than the data
}

TEST(ChunkedDecoderErrors, ControlCharInExtension) {
  expect_refused("5;a\x01\r\nhello\r\n0\r\n\r\n", 400);
  expect_refused("5;a=\x7f\r\nhello\r\n0\r\n\r\n", 400);
  expect_refused("5;a"s + '\0' + "\r\nhello\r\n0\r\n\r\n", 400);
}

TEST(ChunkedDecoderErrors, ExtensionOverLimit) {
  http::limits l;
  l.chunk_extension = 8;
  // Everything between the size and its CRLF counts: ";" and 7 more is exactly the limit.
  auto o = expect_done("5;abcdefg\r\nhello\r\n0\r\n\r\n", l);
  EXPECT_EQ(o.body, "hello");
  expect_refused("5;abcdefgh\r\nhello\r\n0\r\n\r\n", 400, l);
  // The limit is per chunk.
  o = expect_done("1;abcdefg\r\na\r\n1;abcdefg\r\nb\r\n0;abcdefg\r\n\r\n", l);
  EXPECT_EQ(o.body, "ab");
  // Detected before the line ends.
  expect_refused("5;" + std::string(100, 'x'), 400, l);
}

// limits::chunk_extension bounds the extensions only, not the size's own digits: with 0 (no
// extensions wanted) chunks still decode.
TEST(ChunkedDecoderErrors, SizeDigitsDoNotCountAsExtension) {
  http::limits l;
  l.chunk_extension = 0;
  auto o = expect_done("5\r\nhello\r\n0\r\n\r\n", l);
  EXPECT_EQ(o.body, "hello");
  expect_refused("5;\r\nhello\r\n0\r\n\r\n", 400, l);
  l.chunk_extension = 2;
  o = expect_done(
      "10\r\n" + std::string(16, 'x') + "\r\n100\r\n" + std::string(256, 'y') + "\r\n0\r\n\r\n", l);
  EXPECT_EQ(o.body.size(), 272u);
}

TEST(ChunkedDecoderErrors, DefaultExtensionLimit) {
  expect_done("1;" + std::string(1023, 'x') + "\r\na\r\n0\r\n\r\n");
  expect_refused("1;" + std::string(1024, 'x') + "\r\na\r\n0\r\n\r\n", 400);
}

TEST(ChunkedDecoderErrors, BodyOverLimit) {
  http::limits l;
  l.body = 10;
  expect_done("a\r\n0123456789\r\n0\r\n\r\n", l);
  expect_refused("b\r\n0123456789a\r\n0\r\n\r\n", 413, l);
  // A size over the limit is refused before its data arrives.
  expect_refused("ffffff\r\n", 413, l);
}

TEST(ChunkedDecoderErrors, BodyOverLimitAcrossChunks) {
  http::limits l;
  l.body = 10;
  auto o = expect_done("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", l);
  EXPECT_EQ(o.body, "helloworld");
  expect_refused("5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", 413, l);
  // The first chunk came out before the second was refused.
  o = decode("5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", l);
  EXPECT_EQ(o.status, decode_status::error);
  EXPECT_EQ(o.body, "hello");
  EXPECT_EQ(o.body_size, 5u);
  expect_refused("3\r\nabc\r\n3\r\ndef\r\n3\r\nghi\r\n2\r\njk\r\n0\r\n\r\n", 413, l);
  expect_done("3\r\nabc\r\n3\r\ndef\r\n3\r\nghi\r\n1\r\nj\r\n0\r\n\r\n", l);
}

TEST(ChunkedDecoderErrors, DefaultBodyLimit) {
  expect_refused("100001\r\n", 413);  // 1 MiB + 1 in one chunk
  http::chunked_decoder d;
  const auto r = d.decode("100000\r\n");
  EXPECT_EQ(r.status, decode_status::need_more);
  EXPECT_FALSE(d.error());
}

TEST(ChunkedDecoderErrors, TrailerSectionOverLimit) {
  http::limits l;
  l.trailer_section = 16;
  // A field line's CRLF counts (the final empty line does not): 14 + 2 bytes fit, 15 + 2 not.
  expect_done("0\r\nX-T: 012345678\r\n\r\n", l);
  expect_refused("0\r\nX-T: 0123456789\r\n\r\n", 431, l);
  expect_refused("0\r\nX-Long: 0123456789abcdef\r\n\r\n", 431, l);
  expect_refused("0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431, l);
  expect_refused("0\r\nX: " + std::string(100, 'v'), 431, l);  // before the line ends
}

TEST(ChunkedDecoderErrors, TooManyTrailerFields) {
  http::limits l;
  l.header_fields = 2;
  expect_done("0\r\nA: 1\r\nB: 2\r\n\r\n", l);
  expect_refused("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431, l);
}

TEST(ChunkedDecoderErrors, ObsFoldInTrailer) {
  expect_refused("0\r\nA: 1\r\n  b\r\n\r\n", 400);
  expect_refused("0\r\nA: 1\r\n\tb\r\n\r\n", 400);
  expect_refused("0\r\n A: 1\r\n\r\n", 400);
}

TEST(ChunkedDecoderErrors, TrailerLineWithoutColon) {
  expect_refused("0\r\nNoColon\r\n\r\n", 400);
}

TEST(ChunkedDecoderErrors, OtherTrailerRules) {
  expect_refused("0\r\nA : 1\r\n\r\n", 400);  // whitespace before the colon
  expect_refused("0\r\n: 1\r\n\r\n", 400);    // an empty name
  expect_refused("0\r\nA(b): 1\r\n\r\n", 400);
  expect_refused("0\r\nA: 1\x01\r\n\r\n", 400);
  expect_refused("0\r\nA: 1"s + '\0' + "\r\n\r\n", 400);
  expect_refused("0\r\nA: 1\nB: 2\r\n\r\n", 400);  // bare LF
  expect_refused("0\r\nA: 1\r\n\n", 400);
  expect_refused("0\r\nA: 1\rB: 2\r\n\r\n", 400);  // lone CR
  expect_refused("0\r\n\rX", 400);
}

}  // namespace
