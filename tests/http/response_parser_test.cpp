// weft::http::response_parser: the status line (reason with spaces, empty and missing reason),
// the body framing of RFC 9112 6.3 (HEAD, 1xx, 204, 304, chunked, Content-Length, until the
// close), keep-alive for 1.1 and 1.0, every refusal with status 502, a 100 Continue head followed
// by the final head in one buffer, the limits, and the incremental contract: the verdict on a
// response fed a byte at a time, from the same or from a moving buffer, equals the verdict on the
// whole response.
#include <weft/http/limits.hpp>
#include <weft/http/message_head.hpp>
#include <weft/http/response_parser.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace {

namespace http = weft::http;
using http::body_kind;
using http::parse_status;
using namespace std::string_literals;

// What a parse found, copied out of the input.
struct verdict {
  parse_status status = parse_status::need_more;
  std::uint16_t error_status = 0;
  bool has_what = false;
  int version_minor = 0;
  std::uint16_t code = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  body_kind body = body_kind::none;
  std::uint64_t length = 0;
  bool keep_alive = false;
  std::size_t size = 0;

  bool operator==(const verdict&) const = default;
};

std::ostream& operator<<(std::ostream& os, const verdict& v) {
  os << "{status=" << static_cast<int>(v.status) << " error=" << v.error_status;
  if (v.status == parse_status::complete) {
    os << " 1." << v.version_minor << " " << v.code << " '" << v.reason << "' fields=[";
    for (const auto& [n, val] : v.headers) os << n << ":" << val << ";";
    os << "] body=" << static_cast<int>(v.body) << "/" << v.length << " keep_alive=" << v.keep_alive
       << " size=" << v.size;
  }
  return os << "}";
}

verdict verdict_of(const http::response_parser& p, parse_status st) {
  verdict v;
  v.status = st;
  if (st == parse_status::error) {
    v.error_status = p.error().status;
    v.has_what = !p.error().what.empty();
  } else if (st == parse_status::complete) {
    const auto& h = p.head();
    v.version_minor = h.version_minor;
    v.code = h.status;
    v.reason = h.reason;
    for (const auto& f : h.headers) v.headers.emplace_back(f.name, f.value);
    v.body = h.body.kind;
    v.length = h.body.length;
    v.keep_alive = h.keep_alive;
    v.size = h.size;
  }
  return v;
}

verdict parse_whole(std::string_view input, bool to_head = false, http::limits l = {}) {
  http::response_parser p{l};
  const auto st = p.parse(input, to_head);
  return verdict_of(p, st);
}

// parse(input.substr(0, k)) for k = 1..n, up to the first verdict other than need_more.
verdict parse_bytewise(std::string_view input, bool to_head = false, http::limits l = {}) {
  http::response_parser p{l};
  for (std::size_t k = 1; k <= input.size(); ++k) {
    const auto st = p.parse(input.substr(0, k), to_head);
    if (st != parse_status::need_more) return verdict_of(p, st);
  }
  return {};
}

// As parse_bytewise, from a new buffer each call; the previous one is scribbled over and freed.
verdict parse_moving(std::string_view input, bool to_head = false, http::limits l = {}) {
  http::response_parser p{l};
  std::unique_ptr<std::string> previous;
  for (std::size_t k = 1; k <= input.size(); ++k) {
    auto buffer = std::make_unique<std::string>(input.substr(0, k));
    if (previous) std::fill(previous->begin(), previous->end(), '\x7f');
    previous.reset();
    const auto st = p.parse(*buffer, to_head);
    if (st != parse_status::need_more) return verdict_of(p, st);
    previous = std::move(buffer);
  }
  return {};
}

void expect_refused(std::string_view input, bool to_head = false, http::limits l = {}) {
  const verdict whole = parse_whole(input, to_head, l);
  EXPECT_EQ(whole.status, parse_status::error) << whole;
  EXPECT_EQ(whole.error_status, 502) << whole;
  EXPECT_TRUE(whole.has_what);
  EXPECT_EQ(parse_bytewise(input, to_head, l), whole);
  EXPECT_EQ(parse_moving(input, to_head, l), whole);
}

verdict expect_complete(std::string_view input, bool to_head = false, http::limits l = {}) {
  const verdict whole = parse_whole(input, to_head, l);
  EXPECT_EQ(whole.status, parse_status::complete) << whole;
  EXPECT_EQ(parse_bytewise(input, to_head, l), whole);
  EXPECT_EQ(parse_moving(input, to_head, l), whole);
  return whole;
}

bool inside(std::string_view view, std::string_view input) {
  return view.data() >= input.data() && view.data() + view.size() <= input.data() + input.size();
}

// --- Status line ---------------------------------------------------------------------------------

TEST(ResponseParser, StatusLineWithReason) {
  const std::string input = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: x\r\n\r\nhi";
  http::response_parser p;
  ASSERT_EQ(p.parse(input), parse_status::complete);
  const auto& h = p.head();
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.reason, "OK");
  EXPECT_EQ(h.headers.size(), 2u);
  EXPECT_EQ(h.headers.get("server"), "x");
  EXPECT_EQ(h.body.kind, body_kind::length);
  EXPECT_EQ(h.body.length, 2u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_EQ(h.size, input.size() - 2);
  EXPECT_TRUE(inside(h.reason, input));
  EXPECT_FALSE(p.error());
  expect_complete(input);
}

TEST(ResponseParser, ReasonWithSpaces) {
  const auto v = expect_complete("HTTP/1.1 404 Not Found Here\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(v.code, 404);
  EXPECT_EQ(v.reason, "Not Found Here");
  EXPECT_EQ(v.body, body_kind::none);
}

TEST(ResponseParser, ReasonWithTabAndObsText) {
  const auto v = expect_complete("HTTP/1.1 200 \tD\xc3\xa9j\xc3\xa0 \r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(v.reason, "\tD\xc3\xa9j\xc3\xa0 ");  // kept as sent
}

TEST(ResponseParser, EmptyReason) {
  const auto v = expect_complete("HTTP/1.1 204 \r\n\r\n");
  EXPECT_EQ(v.code, 204);
  EXPECT_EQ(v.reason, "");
  EXPECT_EQ(v.body, body_kind::none);
  EXPECT_TRUE(v.keep_alive);
}

TEST(ResponseParser, MissingReason) {
  const auto v = expect_complete("HTTP/1.1 200\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(v.code, 200);
  EXPECT_EQ(v.reason, "");
  EXPECT_EQ(v.body, body_kind::length);
  EXPECT_EQ(v.length, 3u);
}

TEST(ResponseParser, StatusCodesAcrossTheRange) {
  for (int code : {100, 101, 199, 200, 201, 299, 301, 404, 500, 599}) {
    const std::string input =
        "HTTP/1.1 " + std::to_string(code) + " X\r\nContent-Length: 0\r\n\r\n";
    SCOPED_TRACE(input);
    const auto v = expect_complete(input);
    EXPECT_EQ(v.code, code);
  }
}

TEST(ResponseParser, Http12IsHandledAs11) {
  const auto v = expect_complete("HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(v.version_minor, 1);
}

// --- Framing -------------------------------------------------------------------------------------

TEST(ResponseParserFraming, ResponseToHeadHasNoBody) {
  auto v = expect_complete("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true);
  EXPECT_EQ(v.body, body_kind::none);
  EXPECT_EQ(v.length, 0u);
  EXPECT_TRUE(v.keep_alive);
  v = expect_complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true);
  EXPECT_EQ(v.body, body_kind::none);
  EXPECT_TRUE(v.keep_alive);
  v = expect_complete("HTTP/1.1 200 OK\r\n\r\n", true);  // not until the close either
  EXPECT_EQ(v.body, body_kind::none);
  EXPECT_TRUE(v.keep_alive);
  // Over the body limit does not matter: no body follows.
  http::limits l;
  l.body = 10;
  v = expect_complete("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true, l);
  EXPECT_EQ(v.body, body_kind::none);
  // The same heads to a GET.
  v = expect_complete("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
  EXPECT_EQ(v.body, body_kind::length);
  EXPECT_EQ(v.length, 100u);
}

TEST(ResponseParserFraming, InformationalNoContentNotModifiedHaveNoBody) {
  for (std::string_view input :
       {"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 304 Not Modified\r\n\r\n"}) {
    SCOPED_TRACE(input);
    const auto v = expect_complete(input);
    EXPECT_EQ(v.body, body_kind::none);
    EXPECT_EQ(v.length, 0u);
    EXPECT_TRUE(v.keep_alive);
  }
}

TEST(ResponseParserFraming, Chunked) {
  auto v = expect_complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello");
  EXPECT_EQ(v.body, body_kind::chunked);
  EXPECT_TRUE(v.keep_alive);
  v = expect_complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n");
  EXPECT_EQ(v.body, body_kind::chunked);
}

TEST(ResponseParserFraming, ContentLength) {
  auto v = expect_complete("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n");
  EXPECT_EQ(v.body, body_kind::length);
  EXPECT_EQ(v.length, 12u);
  v = expect_complete("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(v.body, body_kind::none);
  EXPECT_TRUE(v.keep_alive);
  v = expect_complete("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n");
  EXPECT_EQ(v.body, body_kind::length);
  EXPECT_EQ(v.length, 7u);
  v = expect_complete("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n");
  EXPECT_EQ(v.length, 7u);
}

TEST(ResponseParserFraming, NeitherIsUntilClose) {
  auto v = expect_complete("HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_EQ(v.body, body_kind::until_close);
  EXPECT_FALSE(v.keep_alive);
  v = expect_complete("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(v.body, body_kind::until_close);
  EXPECT_FALSE(v.keep_alive);
  v = expect_complete("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(v.body, body_kind::until_close);
  EXPECT_FALSE(v.keep_alive);
}

TEST(ResponseParserFraming, KeepAliveRules) {
  struct row {
    std::string input;
    int minor;
    bool keep_alive;
  };
  const std::vector<row> rows{
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1, true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 1, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: foo, close\r\n\r\n", 1, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", 1, true},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0, false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", 0, true},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\n\r\n", 0, true},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive, close\r\n\r\n", 0, false},
      {"HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n", 0, true},
      {"HTTP/1.0 204 No Content\r\n\r\n", 0, false},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.input);
    const auto v = expect_complete(r.input);
    EXPECT_EQ(v.version_minor, r.minor);
    EXPECT_EQ(v.keep_alive, r.keep_alive);
  }
}

TEST(ResponseParserFraming, ContinueThenFinalHeadInOneBuffer) {
  const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
  const std::string final_head =
      "HTTP/1.1 201 Created\r\nContent-Length: 4\r\nLocation: /x\r\n\r\n";
  const std::string input = cont + final_head + "body";
  http::response_parser p;
  ASSERT_EQ(p.parse(input), parse_status::complete);
  EXPECT_EQ(p.head().status, 100);
  EXPECT_EQ(p.head().reason, "Continue");
  EXPECT_EQ(p.head().body.kind, body_kind::none);
  EXPECT_EQ(p.head().size, cont.size());
  const std::size_t first = p.head().size;
  p.reset();
  const std::string_view rest = std::string_view{input}.substr(first);
  ASSERT_EQ(p.parse(rest), parse_status::complete);
  EXPECT_EQ(p.head().status, 201);
  EXPECT_EQ(p.head().reason, "Created");
  EXPECT_EQ(p.head().headers.size(), 2u);
  EXPECT_EQ(p.head().headers.get("location"), "/x");
  EXPECT_EQ(p.head().body.kind, body_kind::length);
  EXPECT_EQ(p.head().body.length, 4u);
  EXPECT_EQ(p.head().size, final_head.size());
  EXPECT_EQ(rest.substr(p.head().size), "body");
  EXPECT_TRUE(inside(p.head().reason, rest));
  // The first head's verdict does not depend on the feeding either.
  const auto v = expect_complete(input);
  EXPECT_EQ(v.code, 100);
  EXPECT_EQ(v.size, cont.size());
}

TEST(ResponseParser, ResetForgetsEverything) {
  http::response_parser p;
  EXPECT_EQ(p.parse("HTTP/1.1 200\n\r\n"), parse_status::error);
  EXPECT_EQ(p.error().status, 502);
  EXPECT_EQ(p.parse("HTTP/1.1 200 OK\r\n\r\n"), parse_status::error);  // sticky
  p.reset();
  EXPECT_FALSE(p.error());
  ASSERT_EQ(p.parse("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"), parse_status::complete);
  EXPECT_FALSE(p.head().keep_alive);
  EXPECT_EQ(p.parse("garbage"), parse_status::complete);  // sticky until reset
  p.reset();
  EXPECT_EQ(p.head().status, 0);
  EXPECT_EQ(p.head().headers.size(), 0u);
  EXPECT_EQ(p.parse("HTTP/1.1 30"), parse_status::need_more);
  p.reset();
  ASSERT_EQ(p.parse("HTTP/1.0 304 Not Modified\r\n\r\n"), parse_status::complete);
  EXPECT_EQ(p.head().status, 304);
  EXPECT_EQ(p.head().version_minor, 0);
  EXPECT_EQ(p.head().body.kind, body_kind::none);
}

TEST(ResponseParser, IncompleteHeadNeedsMore) {
  for (std::string_view input : {"", "H", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK\r",
                                 "HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\nA: b\r\n\r"}) {
    http::response_parser p;
    EXPECT_EQ(p.parse(input), parse_status::need_more) << input;
  }
}

// --- Refusals: all 502 ---------------------------------------------------------------------------

TEST(ResponseParserErrors, BadStatusLine) {
  expect_refused("HTTP/1.1 OK\r\n\r\n");
  expect_refused("HTTP/1.1\r\n\r\n");
  expect_refused("HTTP/1.1  200 OK\r\n\r\n");
  expect_refused("http/1.1 200 OK\r\n\r\n");
  expect_refused("HTTP/1.10 200 OK\r\n\r\n");
  expect_refused("HTTP/1 200 OK\r\n\r\n");
  expect_refused("XTTP/1.1 200 OK\r\n\r\n");
  expect_refused("HTTP/1.1 200OK\r\n\r\n");
  expect_refused("HTTP/1.1 2000 OK\r\n\r\n");
  expect_refused("HTTP/1.1 20a OK\r\n\r\n");
  expect_refused("HTTP/1.1 -20 OK\r\n\r\n");
}

TEST(ResponseParserErrors, TwoDigitStatusCode) {
  expect_refused("HTTP/1.1 20 OK\r\n\r\n");
}

TEST(ResponseParserErrors, StatusBelow100) {
  expect_refused("HTTP/1.1 099 Low\r\n\r\n");
  expect_refused("HTTP/1.1 000 Zero\r\n\r\n");
}

TEST(ResponseParserErrors, OtherVersions) {
  expect_refused("HTTP/2.0 200 OK\r\n\r\n");
  expect_refused("HTTP/0.9 200 OK\r\n\r\n");
  expect_refused("HTTP/1.x 200 OK\r\n\r\n");
}

TEST(ResponseParserErrors, ControlCharInReason) {
  expect_refused("HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n");
  expect_refused("HTTP/1.1 200 O\x7fK\r\nContent-Length: 0\r\n\r\n");
}

TEST(ResponseParserErrors, ContentLengthAndTransferEncoding) {
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
  // Even where no body follows.
  expect_refused("HTTP/1.1 304 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                 true);
}

TEST(ResponseParserErrors, UnknownCodingBeforeChunked) {
  expect_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
}

// The class comment says a Transfer-Encoding that ends in another coding means "until the
// close"; the code (and docs/http.md) refuse any coding but chunked, which is what is pinned.
TEST(ResponseParserErrors, UnknownCodingLast) {
  expect_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
  expect_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
}

TEST(ResponseParserErrors, ChunkedTwice) {
  expect_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n");
  expect_refused(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n");
}

TEST(ResponseParserErrors, DifferingContentLengths) {
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n");
}

TEST(ResponseParserErrors, MalformedContentLength) {
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n");
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n");
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n");
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 12345678901234567890\r\n\r\n");
}

TEST(ResponseParserErrors, ContentLengthOverBodyLimit) {
  http::limits l;
  l.body = 10;
  expect_complete("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", false, l);
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", false, l);
}

TEST(ResponseParserErrors, BareLf) {
  expect_refused("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n");
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n");
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n");
}

TEST(ResponseParserErrors, LoneCr) {
  expect_refused("HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n");
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 0\rX: y\r\n\r\n");
}

TEST(ResponseParserErrors, EmptyLineBeforeStatusLine) {
  expect_refused("\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

TEST(ResponseParserErrors, FieldRules) {
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: a\r\n b\r\n\r\n");  // obs-fold
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n");
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: a"s + '\0' + "\r\n\r\n");
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: a\x01\r\n\r\n");
  expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nNoColon\r\n\r\n");
}

// --- Limits --------------------------------------------------------------------------------------

TEST(ResponseParserLimits, StatusLineOverLimit) {
  http::limits l;
  l.start_line = 20;
  const std::string ok = "HTTP/1.1 200 " + std::string(7, 'x');
  ASSERT_EQ(ok.size(), 20u);
  expect_complete(ok + "\r\nContent-Length: 0\r\n\r\n", false, l);
  const std::string over = "HTTP/1.1 200 " + std::string(50, 'x');
  http::response_parser p{l};
  EXPECT_EQ(p.parse(std::string_view{over}.substr(0, 20)), parse_status::need_more);
  EXPECT_EQ(p.parse(std::string_view{over}.substr(0, 21)), parse_status::error);
  EXPECT_EQ(p.error().status, 502);
  expect_refused(std::string_view{over}.substr(0, 21), false, l);
}

TEST(ResponseParserLimits, HeaderSectionOverLimit) {
  http::limits l;
  l.header_section = 48;
  const std::string base = "HTTP/1.1 200 OK\r\n";
  const std::string x = "X: " + std::string(48 - base.size() - 2 - 5, 'v') + "\r\n";
  ASSERT_EQ((base + x + "\r\n").size(), 48u);
  expect_complete(base + x + "\r\n", false, l);
  const std::string x2 = "X: " + std::string(48 - base.size() - 2 - 5 + 1, 'v') + "\r\n";
  expect_refused(base + x2 + "\r\n", false, l);
  expect_refused(base + "X: " + std::string(100, 'v'), false, l);  // before the line ends
}

TEST(ResponseParserLimits, FieldCount) {
  http::limits l;
  l.header_fields = 2;
  expect_complete("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n", false, l);
  expect_refused("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", false, l);
}

// --- Incremental ---------------------------------------------------------------------------------

TEST(ResponseParserIncremental, ByteByByteEqualsWhole) {
  http::limits small;
  small.start_line = 30;
  small.header_section = 100;
  small.header_fields = 3;
  small.body = 50;
  struct row {
    std::string input;
    bool to_head;
    http::limits l;
    parse_status expected;
  };
  const std::vector<row> rows{
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, {}, parse_status::complete},
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", true, {}, parse_status::complete},
      {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", false, {}, parse_status::complete},
      {"HTTP/1.1 204 \r\n\r\n", false, {}, parse_status::complete},
      {"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       false,
       {},
       parse_status::complete},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nX:  y  \r\n\r\n",
       false,
       {},
       parse_status::complete},
      {"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", false, small, parse_status::complete},
      {"HTTP/1.1 200 OK\r\n\r", false, {}, parse_status::need_more},
      {"HTTP/1.1 20 OK\r\n\r\n", false, {}, parse_status::error},
      {"HTTP/1.1 099 OK\r\n\r\n", false, {}, parse_status::error},
      {"HTTP/1.1 200 OK\nA: b\r\n\r\n", false, {}, parse_status::error},
      {"HTTP/1.1 200 OK\r\nA: b\r\r\n\r\n", false, {}, parse_status::error},
      {"\r\nHTTP/1.1 200 OK\r\n\r\n", false, {}, parse_status::error},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
       false,
       {},
       parse_status::error},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
       false,
       {},
       parse_status::error},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", false, {}, parse_status::error},
      {"HTTP/1.1 200 " + std::string(40, 'r') + "\r\n\r\n", false, small, parse_status::error},
      {"HTTP/1.1 200 OK\r\nX: " + std::string(120, 'v') + "\r\n\r\n", false, small,
       parse_status::error},
      {"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", false, small,
       parse_status::error},
      {"HTTP/1.1 200 OK\r\nContent-Length: 51\r\n\r\n", false, small, parse_status::error},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.input);
    const verdict whole = parse_whole(r.input, r.to_head, r.l);
    EXPECT_EQ(whole.status, r.expected) << whole;
    if (whole.status == parse_status::error) {
      EXPECT_EQ(whole.error_status, 502);
    }
    EXPECT_EQ(parse_bytewise(r.input, r.to_head, r.l), whole);
    EXPECT_EQ(parse_moving(r.input, r.to_head, r.l), whole);
  }
}

}  // namespace

namespace {

TEST(ResponseParserStrict, StatusCodesOutside100To599) {
  expect_refused("HTTP/1.1 600 Odd\r\n\r\n");
  expect_refused("HTTP/1.1 999 X\r\n\r\n");
}

}  // namespace
