// weft::http::request_parser: well-formed requests (start line, fields and their lookup, leading
// empty lines, body framing, keep-alive, Expect: 100-continue, head size and pipelining, reset),
// every smuggling and strictness rule with its exact status, the limits (414, 431, 413) with
// small custom limits and their early detection, and the incremental contract: the verdict on a
// message fed a byte at a time, from the same or from a moving buffer, equals the verdict on the
// whole message.
#include <weft/http/limits.hpp>
#include <weft/http/message_head.hpp>
#include <weft/http/request_parser.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
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

// What a parse found, copied out of the input so it can be compared after the input is gone.
struct verdict {
  parse_status status = parse_status::need_more;
  std::uint16_t error_status = 0;
  bool has_what = false;
  std::string method;
  std::string target;
  int version_minor = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  body_kind body = body_kind::none;
  std::uint64_t length = 0;
  bool keep_alive = false;
  bool expect_continue = false;
  std::size_t size = 0;

  bool operator==(const verdict&) const = default;
};

std::ostream& operator<<(std::ostream& os, const verdict& v) {
  os << "{status=" << static_cast<int>(v.status) << " error=" << v.error_status;
  if (v.status == parse_status::complete) {
    os << " " << v.method << " " << v.target << " 1." << v.version_minor << " fields=[";
    for (const auto& [n, val] : v.headers) os << n << ":" << val << ";";
    os << "] body=" << static_cast<int>(v.body) << "/" << v.length << " keep_alive=" << v.keep_alive
       << " expect=" << v.expect_continue << " size=" << v.size;
  }
  return os << "}";
}

verdict verdict_of(const http::request_parser& p, parse_status st) {
  verdict v;
  v.status = st;
  if (st == parse_status::error) {
    v.error_status = p.error().status;
    v.has_what = !p.error().what.empty();
  } else if (st == parse_status::complete) {
    const auto& h = p.head();
    v.method = h.method;
    v.target = h.target;
    v.version_minor = h.version_minor;
    for (const auto& f : h.headers) v.headers.emplace_back(f.name, f.value);
    v.body = h.body.kind;
    v.length = h.body.length;
    v.keep_alive = h.keep_alive;
    v.expect_continue = h.expect_continue;
    v.size = h.size;
  }
  return v;
}

verdict parse_whole(std::string_view input, http::limits l = {}) {
  http::request_parser p{l};
  const auto st = p.parse(input);
  return verdict_of(p, st);
}

// Calls parse with input.substr(0, k) for k = 1..n, stopping at the first verdict other than
// need_more.
verdict parse_bytewise(std::string_view input, http::limits l = {}) {
  http::request_parser p{l};
  for (std::size_t k = 1; k <= input.size(); ++k) {
    const auto st = p.parse(input.substr(0, k));
    if (st != parse_status::need_more) return verdict_of(p, st);
  }
  return {};
}

// As parse_bytewise, but each call gets a copy of the bytes in a new buffer; the previous one is
// overwritten and freed after the next is allocated, so nothing the parser kept may point into it.
verdict parse_moving(std::string_view input, http::limits l = {}) {
  http::request_parser p{l};
  std::unique_ptr<std::string> previous;
  for (std::size_t k = 1; k <= input.size(); ++k) {
    auto buffer = std::make_unique<std::string>(input.substr(0, k));
    if (previous) std::fill(previous->begin(), previous->end(), '\x7f');
    previous.reset();
    const auto st = p.parse(*buffer);
    if (st != parse_status::need_more) return verdict_of(p, st);
    previous = std::move(buffer);
  }
  return {};
}

// The input is refused with `status`, whole, a byte at a time and from a moving buffer, and the
// error says why.
void expect_refused(std::string_view input, std::uint16_t status, http::limits l = {}) {
  const verdict whole = parse_whole(input, l);
  EXPECT_EQ(whole.status, parse_status::error) << whole;
  EXPECT_EQ(whole.error_status, status) << whole;
  EXPECT_TRUE(whole.has_what);
  EXPECT_EQ(parse_bytewise(input, l), whole);
  EXPECT_EQ(parse_moving(input, l), whole);
}

// The input is a complete head, the same however it is fed; returns the verdict.
verdict expect_complete(std::string_view input, http::limits l = {}) {
  const verdict whole = parse_whole(input, l);
  EXPECT_EQ(whole.status, parse_status::complete) << whole;
  EXPECT_EQ(parse_bytewise(input, l), whole);
  EXPECT_EQ(parse_moving(input, l), whole);
  return whole;
}

bool inside(std::string_view view, std::string_view input) {
  return view.data() >= input.data() && view.data() + view.size() <= input.data() + input.size();
}

// --- Well-formed requests ------------------------------------------------------------------------

TEST(RequestParser, GetWithHost) {
  const std::string input = "GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n";
  http::request_parser p;
  ASSERT_EQ(p.parse(input), parse_status::complete);
  const auto& h = p.head();
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/index.html");
  EXPECT_EQ(h.version_minor, 1);
  ASSERT_EQ(h.headers.size(), 1u);
  EXPECT_EQ(h.headers.get("host"), "example.com");
  EXPECT_EQ(h.body.kind, body_kind::none);
  EXPECT_EQ(h.body.length, 0u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.expect_continue);
  EXPECT_EQ(h.size, input.size());
  EXPECT_FALSE(p.error());
  // Zero-copy: every view lies in the input.
  EXPECT_TRUE(inside(h.method, input));
  EXPECT_TRUE(inside(h.target, input));
  for (const auto& f : h.headers) {
    EXPECT_TRUE(inside(f.name, input));
    EXPECT_TRUE(inside(f.value, input));
  }
  expect_complete(input);
}

TEST(RequestParser, Http10WithoutHost) {
  const auto v = expect_complete("GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(v.method, "GET");
  EXPECT_EQ(v.target, "/");
  EXPECT_EQ(v.version_minor, 0);
  EXPECT_TRUE(v.headers.empty());
  EXPECT_EQ(v.body, body_kind::none);
  EXPECT_FALSE(v.keep_alive);
}

TEST(RequestParser, MethodsAndTargets) {
  auto v = expect_complete("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(v.method, "OPTIONS");
  EXPECT_EQ(v.target, "*");
  v = expect_complete("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  EXPECT_EQ(v.method, "CONNECT");
  EXPECT_EQ(v.target, "example.com:443");
  v = expect_complete("M-SEARCH http://a/b?c=d&e=%20#f HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(v.method, "M-SEARCH");
  EXPECT_EQ(v.target, "http://a/b?c=d&e=%20#f");
}

TEST(RequestParser, HeadersCaseInsensitiveOrderedTrimmed) {
  const std::string input =
      "POST /submit?q=1 HTTP/1.1\r\n"
      "Host: h\r\n"
      "Content-Type: \t text/plain \t\r\n"
      "X-Empty:\r\n"
      "X-Spaces:   \r\n"
      "X-A: 1\r\n"
      "x-a: 2\r\n"
      "X-Inner: a  b\tc\r\n"
      "X-Obs-Text: caf\xc3\xa9\r\n"
      "Content-Length: 3\r\n"
      "\r\n"
      "abc";
  http::request_parser p;
  ASSERT_EQ(p.parse(input), parse_status::complete);
  const auto& h = p.head();
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.target, "/submit?q=1");
  EXPECT_EQ(h.headers.get("content-type"), "text/plain");
  EXPECT_EQ(h.headers.get("CONTENT-TYPE"), "text/plain");
  EXPECT_EQ(h.headers.get("Content-Type"), "text/plain");
  EXPECT_EQ(h.headers.get("x-empty"), "");
  EXPECT_EQ(h.headers.get("x-spaces"), "");
  EXPECT_EQ(h.headers.get("x-a"), "1");  // the first of two
  EXPECT_EQ(h.headers.get("x-inner"), "a  b\tc");
  EXPECT_EQ(h.headers.get("x-obs-text"), "caf\xc3\xa9");
  EXPECT_EQ(h.headers.get("content-typ"), std::nullopt);
  EXPECT_EQ(h.headers.get("missing"), std::nullopt);
  EXPECT_TRUE(h.headers.contains("HOST"));
  EXPECT_FALSE(h.headers.contains("Hostx"));
  const std::vector<std::string_view> names{"Host",     "Content-Type", "X-Empty",
                                            "X-Spaces", "X-A",          "x-a",
                                            "X-Inner",  "X-Obs-Text",   "Content-Length"};
  std::vector<std::string_view> got;
  for (const auto& f : h.headers) got.push_back(f.name);
  EXPECT_EQ(got, names);
  EXPECT_EQ(h.body.kind, body_kind::length);
  EXPECT_EQ(h.body.length, 3u);
  EXPECT_EQ(h.size, input.size() - 3);
  EXPECT_EQ(std::string_view{input}.substr(h.size), "abc");
  expect_complete(input);
}

TEST(RequestParser, IequalsIsAsciiCaseInsensitive) {
  EXPECT_TRUE(http::iequals("Content-Length", "content-LENGTH"));
  EXPECT_FALSE(http::iequals("Content-Length", "Content-Lengt"));
  EXPECT_FALSE(http::iequals("a", "b"));
  EXPECT_TRUE(http::iequals("", ""));
  EXPECT_FALSE(http::iequals("[", "{"));  // 0x5b and 0x7b differ by 0x20 but are not letters
}

TEST(RequestParser, LeadingEmptyLinesSkipped) {
  const std::string input = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
  const auto v = expect_complete(input);
  EXPECT_EQ(v.method, "GET");
  EXPECT_EQ(v.target, "/");
  EXPECT_EQ(v.size, input.size());  // the skipped lines count in the head's size
}

TEST(RequestParser, ContentLengthFraming) {
  auto v = expect_complete("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(v.body, body_kind::length);
  EXPECT_EQ(v.length, 5u);
  v = expect_complete("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(v.body, body_kind::none);
  EXPECT_EQ(v.length, 0u);
  v = expect_complete("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n");
  EXPECT_EQ(v.body, body_kind::length);
  EXPECT_EQ(v.length, 7u);
  v = expect_complete("POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_EQ(v.body, body_kind::length);
  EXPECT_EQ(v.length, 2u);
  v = expect_complete("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(v.body, body_kind::none);
}

TEST(RequestParser, ChunkedFraming) {
  auto v = expect_complete("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(v.body, body_kind::chunked);
  EXPECT_EQ(v.length, 0u);
  v = expect_complete("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: CHUNKED\r\n\r\n");
  EXPECT_EQ(v.body, body_kind::chunked);
}

TEST(RequestParser, KeepAliveRules) {
  struct row {
    std::string input;
    bool keep_alive;
  };
  const std::vector<row> rows{
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo,close , bar\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", true},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: foo, keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", false},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.input);
    const auto v = expect_complete(r.input);
    EXPECT_EQ(v.keep_alive, r.keep_alive);
  }
}

TEST(RequestParser, ExpectContinue) {
  auto v = expect_complete(
      "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  EXPECT_TRUE(v.expect_continue);
  EXPECT_EQ(v.body, body_kind::length);
  v = expect_complete("PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n");
  EXPECT_TRUE(v.expect_continue);
  // HTTP/1.0 clients do not know 100 Continue: the expectation is ignored.
  v = expect_complete("PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  EXPECT_FALSE(v.expect_continue);
  v = expect_complete("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n");
  EXPECT_FALSE(v.expect_continue);
}

TEST(RequestParser, Http12IsHandledAs11) {
  const auto v = expect_complete("GET / HTTP/1.2\r\nHost: a\r\n\r\n");
  EXPECT_EQ(v.version_minor, 1);
  EXPECT_TRUE(v.keep_alive);
  expect_refused("GET / HTTP/1.9\r\n\r\n", 400);  // handled as 1.1: Host is required
}

TEST(RequestParser, SizeLeavesPipelinedRequestUntouched) {
  const std::string first = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string second = "POST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\nxy";
  const std::string input = first + second;
  const std::string copy = input;
  http::request_parser p;
  ASSERT_EQ(p.parse(input), parse_status::complete);
  EXPECT_EQ(p.head().size, first.size());
  EXPECT_EQ(p.head().target, "/1");
  EXPECT_EQ(input, copy);
  EXPECT_EQ(std::string_view{input}.substr(p.head().size), second);
  // A second call without reset() keeps the verdict.
  EXPECT_EQ(p.parse(input), parse_status::complete);
  EXPECT_EQ(p.head().target, "/1");

  p.reset();
  const std::string_view rest = std::string_view{input}.substr(first.size());
  ASSERT_EQ(p.parse(rest), parse_status::complete);
  EXPECT_EQ(p.head().method, "POST");
  EXPECT_EQ(p.head().target, "/2");
  EXPECT_EQ(p.head().headers.get("host"), "b");
  EXPECT_EQ(p.head().headers.size(), 2u);
  EXPECT_EQ(p.head().body.kind, body_kind::length);
  EXPECT_EQ(p.head().body.length, 2u);
  EXPECT_EQ(p.head().size, second.size() - 2);
  EXPECT_EQ(rest.substr(p.head().size), "xy");
  EXPECT_TRUE(inside(p.head().target, rest));

  // Whole-message verdict on the pipelined input equals the byte-by-byte verdict.
  expect_complete(input);
}

TEST(RequestParser, ResetForgetsEverything) {
  http::request_parser p;
  ASSERT_EQ(p.parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nExpect: 100-continue\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"),
            parse_status::complete);
  EXPECT_FALSE(p.head().keep_alive);
  EXPECT_TRUE(p.head().expect_continue);
  p.reset();
  EXPECT_EQ(p.head().headers.size(), 0u);
  EXPECT_EQ(p.head().size, 0u);
  const std::string next = "GET /n HTTP/1.1\r\nHost: z\r\n\r\n";
  ASSERT_EQ(p.parse(next), parse_status::complete);
  EXPECT_EQ(p.head().target, "/n");
  EXPECT_TRUE(p.head().keep_alive);
  EXPECT_FALSE(p.head().expect_continue);
  EXPECT_EQ(p.head().body.kind, body_kind::none);
  EXPECT_EQ(p.head().headers.size(), 1u);

  // After an error, parse keeps saying error until reset().
  p.reset();
  EXPECT_EQ(p.parse("GET / HTTP/1.1\nHost: a\r\n\r\n"), parse_status::error);
  EXPECT_EQ(p.error().status, 400);
  EXPECT_EQ(p.parse(next), parse_status::error);
  p.reset();
  EXPECT_FALSE(p.error());
  EXPECT_EQ(p.error().status, 0);
  ASSERT_EQ(p.parse(next), parse_status::complete);
  EXPECT_EQ(p.head().target, "/n");

  // reset() in the middle of a head starts the scan over.
  p.reset();
  EXPECT_EQ(p.parse("GET /partial HTTP/1.1\r\nHo"), parse_status::need_more);
  p.reset();
  ASSERT_EQ(p.parse(next), parse_status::complete);
  EXPECT_EQ(p.head().target, "/n");
}

TEST(RequestParser, ResetKeepsLimits) {
  http::limits l;
  l.start_line = 16;
  http::request_parser p{l};
  EXPECT_EQ(p.parse("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"), parse_status::complete);
  p.reset();
  EXPECT_EQ(p.parse("GET /abcdefghij HTTP/1.1\r\nHost: a\r\n\r\n"), parse_status::error);
  EXPECT_EQ(p.error().status, 414);
}

TEST(RequestParser, IncompleteHeadNeedsMore) {
  for (std::string_view input :
       {"", "G", "GET / HTTP/1.1", "GET / HTTP/1.1\r", "GET / HTTP/1.1\r\n",
        "GET / HTTP/1.1\r\nHost", "GET / HTTP/1.1\r\nHost: a\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\r", "\r\n", "\r\n\r"}) {
    http::request_parser p;
    EXPECT_EQ(p.parse(input), parse_status::need_more) << input;
    EXPECT_FALSE(p.error());
  }
}

// --- Smuggling and strictness: each refusal with its exact status --------------------------------

TEST(RequestParserStrict, LoneCrInRequestLine) {
  expect_refused("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, LoneCrEndingRequestLine) {
  expect_refused("GET / HTTP/1.1\rHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, LoneCrInField) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400);
}

TEST(RequestParserStrict, LoneCrEndingField) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400);
}

TEST(RequestParserStrict, CrCrLf) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", 400);
}

TEST(RequestParserStrict, LoneCrBeforeFinalLine) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", 400);
}

TEST(RequestParserStrict, BareLfInRequestLine) {
  expect_refused("GET / HTTP/1.1\nHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, BareLfInsideRequestLine) {
  expect_refused("GET /\n HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, BareLfInField) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400);
}

TEST(RequestParserStrict, BareLfTerminatesHead) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\n\n", 400);
}

TEST(RequestParserStrict, BareLfBeforeRequestLine) {
  expect_refused("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, ObsFoldSpace) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400);
}

TEST(RequestParserStrict, ObsFoldTab) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", 400);
}

TEST(RequestParserStrict, ObsFoldFirstField) {
  expect_refused("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, SpaceBeforeColon) {
  expect_refused("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);
}

TEST(RequestParserStrict, TabBeforeColon) {
  expect_refused("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, SpaceBeforeColonOfContentLength) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello", 400);
}

TEST(RequestParserStrict, FieldWithoutColon) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400);
}

TEST(RequestParserStrict, EmptyFieldName) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\n: value\r\n\r\n", 400);
}

TEST(RequestParserStrict, NonTokenFieldName) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n", 400);
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX\x80: 1\r\n\r\n", 400);
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX"s + '\0' + ": 1\r\n\r\n", 400);
}

TEST(RequestParserStrict, ContentLengthAndTransferEncoding) {
  expect_refused(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
}

TEST(RequestParserStrict, TransferEncodingAndContentLength) {
  expect_refused(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", 400);
}

TEST(RequestParserStrict, DifferingContentLengthFields) {
  expect_refused(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400);
}

TEST(RequestParserStrict, DifferingContentLengthList) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!", 400);
}

TEST(RequestParserStrict, IdenticalContentLengthListAccepted) {
  const auto v = expect_complete("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello");
  EXPECT_EQ(v.body, body_kind::length);
  EXPECT_EQ(v.length, 5u);
}

TEST(RequestParserStrict, IdenticalContentLengthFieldsAccepted) {
  const auto v = expect_complete(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello");
  EXPECT_EQ(v.body, body_kind::length);
  EXPECT_EQ(v.length, 5u);
}

TEST(RequestParserStrict, ContentLengthWithPlusSign) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400);
}

TEST(RequestParserStrict, ContentLengthWithMinusSign) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", 400);
}

TEST(RequestParserStrict, ContentLengthWithJunk) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\nhello", 400);
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", 400);
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\nhello", 400);
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\nhello", 400);
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \"5\"\r\n\r\nhello", 400);
}

TEST(RequestParserStrict, ContentLengthEmpty) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400);
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  \r\n\r\n", 400);
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ,\r\n\r\n", 400);
}

TEST(RequestParserStrict, ContentLengthOver19Digits) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12345678901234567890\r\n\r\n", 400);
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                 400);
  // 19 digits are a number (that fits 64 bits); it is over the body limit.
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n", 413);
}

TEST(RequestParserStrict, TransferEncodingLastCodingNotChunked) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400);
}

TEST(RequestParserStrict, TransferEncodingOnlyGzip) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
}

TEST(RequestParserStrict, TransferEncodingUnknownCodingBeforeChunked) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
}

TEST(RequestParserStrict, TransferEncodingUnknownCodingInEarlierField) {
  expect_refused(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
      501);
}

TEST(RequestParserStrict, TransferEncodingChunkedTwice) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400);
}

TEST(RequestParserStrict, TransferEncodingChunkedTwiceInTwoFields) {
  expect_refused(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
      "\r\n",
      400);
}

// chunked applied twice is refused wherever the second one is, not only right after the first.
TEST(RequestParserStrict, TransferEncodingChunkedTwiceAroundAnotherCoding) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip, chunked\r\n\r\n",
                 400);
}

TEST(RequestParserStrict, TransferEncodingEmpty) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400);
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n", 400);
}

TEST(RequestParserStrict, TransferEncodingNotAToken) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400);
}

TEST(RequestParserStrict, TransferEncodingInHttp10) {
  expect_refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
}

TEST(RequestParserStrict, NulInFieldValue) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX: a"s + '\0' + "b\r\n\r\n", 400);
}

TEST(RequestParserStrict, ControlCharInFieldValue) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n", 400);
}

TEST(RequestParserStrict, DelInFieldValue) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fz\r\n\r\n", 400);
}

TEST(RequestParserStrict, EscapeInFieldValue) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\x1b\r\n\r\n", 400);
}

TEST(RequestParserStrict, TabAndObsTextInFieldValueAccepted) {
  const auto v = expect_complete("GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\x80\xff\r\n\r\n");
  ASSERT_EQ(v.headers.size(), 2u);
  EXPECT_EQ(v.headers[1].second, "a\tb\x80\xff");
}

TEST(RequestParserStrict, NonTokenMethod) {
  expect_refused("G(ET / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  expect_refused("GE@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  expect_refused("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  expect_refused("G\x80T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, EmptyMethod) {
  expect_refused(" / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, MalformedRequestLine) {
  expect_refused("GET\r\nHost: a\r\n\r\n", 400);
  expect_refused("GET /\r\nHost: a\r\n\r\n", 400);
  expect_refused("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  expect_refused("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400);
  expect_refused("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, SpaceInTarget) {
  expect_refused("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, ControlCharInTarget) {
  expect_refused("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  expect_refused("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  expect_refused("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  expect_refused("GET /a"s + '\0' + " HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, HighByteInTarget) {
  expect_refused("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, MissingHostInHttp11) {
  expect_refused("GET / HTTP/1.1\r\n\r\n", 400);
}

TEST(RequestParserStrict, TwoHosts) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400);
  expect_refused("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

TEST(RequestParserStrict, EmptyHostAccepted) {
  const auto v = expect_complete("GET / HTTP/1.1\r\nHost:\r\n\r\n");
  ASSERT_EQ(v.headers.size(), 1u);
  EXPECT_EQ(v.headers[0].second, "");
}

TEST(RequestParserStrict, Http20Is505) {
  expect_refused("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
}

TEST(RequestParserStrict, OtherMajorVersionsAre505) {
  expect_refused("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505);
  expect_refused("GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505);
}

TEST(RequestParserStrict, VersionWithTrailingJunk) {
  expect_refused("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, LowercaseVersion) {
  expect_refused("GET / http/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, VersionWithoutMinor) {
  expect_refused("GET / HTTP/1\r\nHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, OtherMalformedVersions) {
  expect_refused("GET / HTTP/1.a\r\nHost: a\r\n\r\n", 400);
  expect_refused("GET / HTTP/11.1\r\nHost: a\r\n\r\n", 400);
  expect_refused("GET / HTTP/1,1\r\nHost: a\r\n\r\n", 400);
  expect_refused("GET / HTTPS/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(RequestParserStrict, UnknownExpectation) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", 417);
}

TEST(RequestParserStrict, UnknownExpectationNextToContinue) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nExpect: x\r\n\r\n", 417);
}

TEST(RequestParserStrict, EmptyLineBeforeRequestLineOverSectionLimit) {
  http::limits l;
  l.header_section = 8;
  // Empty lines count towards the header section: past its limit they are refused as it is.
  expect_refused("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.0\r\n\r\n", 431, l);
}

// --- Limits
// ---------------------------------------------------------------------------------------

TEST(RequestParserLimits, RequestLineAtLimitAccepted) {
  http::limits l;
  l.start_line = 32;
  const std::string line = "GET /" + std::string(32 - 14, 'a') + " HTTP/1.1";
  ASSERT_EQ(line.size(), 32u);
  expect_complete(line + "\r\nHost: a\r\n\r\n", l);
}

TEST(RequestParserLimits, RequestLineOverLimitIs414) {
  http::limits l;
  l.start_line = 32;
  const std::string line = "GET /" + std::string(33 - 14, 'a') + " HTTP/1.1";
  ASSERT_EQ(line.size(), 33u);
  expect_refused(line + "\r\nHost: a\r\n\r\n", 414, l);
}

TEST(RequestParserLimits, RequestLineOverLimitDetectedBeforeItEnds) {
  http::limits l;
  l.start_line = 32;
  const std::string line = "GET /" + std::string(100, 'a') + " HTTP/1.1";
  {
    http::request_parser p{l};
    EXPECT_EQ(p.parse(std::string_view{line}.substr(0, 32)), parse_status::need_more);
    EXPECT_EQ(p.parse(std::string_view{line}.substr(0, 33)), parse_status::error);
    EXPECT_EQ(p.error().status, 414);
    EXPECT_FALSE(p.error().what.empty());
  }
  {
    http::request_parser p{l};
    EXPECT_EQ(p.parse(std::string_view{line}.substr(0, 33)), parse_status::error);
    EXPECT_EQ(p.error().status, 414);
  }
  expect_refused(std::string_view{line}.substr(0, 33), 414, l);
}

TEST(RequestParserLimits, RequestLineLimitCountsAfterSkippedEmptyLines) {
  http::limits l;
  l.start_line = 32;
  const std::string line = "GET /" + std::string(32 - 14, 'a') + " HTTP/1.1";
  expect_complete("\r\n\r\n" + line + "\r\nHost: a\r\n\r\n", l);
}

TEST(RequestParserLimits, DefaultRequestLineLimit) {
  const std::string ok = "GET /" + std::string(8 * 1024 - 14, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  expect_complete(ok);
  const std::string over =
      "GET /" + std::string(8 * 1024 - 13, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  expect_refused(over, 414);
}

TEST(RequestParserLimits, HeaderSectionAtLimitAccepted) {
  http::limits l;
  l.header_section = 64;
  // start line 16 + 2, "Host: a" 7 + 2, final 2 = 29; an X field fills the rest.
  const std::string base = "GET / HTTP/1.1\r\nHost: a\r\n";
  const std::string x = "X: " + std::string(64 - base.size() - 2 - 2 - 3, 'v') + "\r\n";
  const std::string input = base + x + "\r\n";
  ASSERT_EQ(input.size(), 64u);
  expect_complete(input, l);
}

TEST(RequestParserLimits, HeaderSectionOverLimitIs431) {
  http::limits l;
  l.header_section = 64;
  const std::string base = "GET / HTTP/1.1\r\nHost: a\r\n";
  const std::string x = "X: " + std::string(64 - base.size() - 2 - 2 - 3 + 1, 'v') + "\r\n";
  const std::string input = base + x + "\r\n";
  ASSERT_EQ(input.size(), 65u);
  expect_refused(input, 431, l);
}

TEST(RequestParserLimits, HeaderSectionOverLimitDetectedBeforeTheLineEnds) {
  http::limits l;
  l.header_section = 64;
  const std::string input = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(200, 'v');
  {
    http::request_parser p{l};
    EXPECT_EQ(p.parse(std::string_view{input}.substr(0, 64)), parse_status::need_more);
    EXPECT_EQ(p.parse(std::string_view{input}.substr(0, 65)), parse_status::error);
    EXPECT_EQ(p.error().status, 431);
    EXPECT_FALSE(p.error().what.empty());
  }
  expect_refused(std::string_view{input}.substr(0, 65), 431, l);
}

TEST(RequestParserLimits, HeaderSectionOverLimitWithManyShortLines) {
  http::limits l;
  l.header_section = 64;
  std::string input = "GET / HTTP/1.1\r\nHost: a\r\n";
  while (input.size() < 100) input += "A: b\r\n";
  expect_refused(input, 431, l);  // refused before the head ends
}

TEST(RequestParserLimits, FieldCountAtLimitAccepted) {
  http::limits l;
  l.header_fields = 4;
  const auto v = expect_complete("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", l);
  EXPECT_EQ(v.headers.size(), 4u);
}

TEST(RequestParserLimits, FieldCountOverLimitIs431) {
  http::limits l;
  l.header_fields = 4;
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431, l);
  // Detected when the extra field's line ends, before the head does.
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n", 431, l);
}

TEST(RequestParserLimits, DefaultFieldCount) {
  std::string ok = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 1; i < 100; ++i) ok += "X-" + std::to_string(i) + ": v\r\n";
  const auto v = expect_complete(ok + "\r\n");
  EXPECT_EQ(v.headers.size(), 100u);
  expect_refused(ok + "X-100: v\r\n\r\n", 431);
}

TEST(RequestParserLimits, ContentLengthAtBodyLimitAccepted) {
  http::limits l;
  l.body = 10;
  const auto v = expect_complete("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", l);
  EXPECT_EQ(v.length, 10u);
}

TEST(RequestParserLimits, ContentLengthOverBodyLimitIs413) {
  http::limits l;
  l.body = 10;
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", 413, l);
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n", 413);
}

TEST(RequestParserLimits, ChunkedIsNotRefusedByTheHeadParser) {
  http::limits l;
  l.body = 0;
  const auto v =
      expect_complete("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", l);
  EXPECT_EQ(v.body, body_kind::chunked);
}

// --- Incremental
// ----------------------------------------------------------------------------------

TEST(RequestParserIncremental, ByteByByteEqualsWhole) {
  http::limits small;
  small.start_line = 40;
  small.header_section = 120;
  small.header_fields = 4;
  small.body = 100;
  struct row {
    std::string input;
    http::limits l;
    parse_status expected;
  };
  const std::vector<row> rows{
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", {}, parse_status::complete},
      {"\r\n\r\nGET /x?y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", {}, parse_status::complete},
      {"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n",
       {},
       parse_status::complete},
      {"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n"
       "X: \t v \t\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
       {},
       parse_status::complete},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n", {}, parse_status::complete},
      {"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", small, parse_status::complete},
      {"GET / HTTP/1.1\r", {}, parse_status::need_more},
      {"GET / HTTP/1.1\r\nHost: a\r\n\r", {}, parse_status::need_more},
      {"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", {}, parse_status::error},
      {"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", {}, parse_status::error},
      {"GET / HTTP/1.1\nHost: a\r\n\r\n", {}, parse_status::error},
      {"GET / HTTP/1.1\r\nHost: a\r\n\n", {}, parse_status::error},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", {}, parse_status::error},
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", {}, parse_status::error},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
       {},
       parse_status::error},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", {}, parse_status::error},
      {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
       {},
       parse_status::error},
      {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", {}, parse_status::error},
      {"GET / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n", {}, parse_status::error},
      {"GET / HTTP/1.1\r\n\r\n", {}, parse_status::error},
      {"GET /" + std::string(60, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", small, parse_status::error},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(200, 'v') + "\r\n\r\n", small,
       parse_status::error},
      {"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", small,
       parse_status::error},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", small, parse_status::error},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.input);
    const verdict whole = parse_whole(r.input, r.l);
    EXPECT_EQ(whole.status, r.expected) << whole;
    EXPECT_EQ(parse_bytewise(r.input, r.l), whole);
    EXPECT_EQ(parse_moving(r.input, r.l), whole);
  }
}

TEST(RequestParserIncremental, ViewsPointIntoTheLastInput) {
  const std::string input = "GET /path HTTP/1.1\r\nHost: example\r\nX: y\r\n\r\n";
  http::request_parser p;
  std::unique_ptr<std::string> buffer;
  parse_status st = parse_status::need_more;
  for (std::size_t k = 1; k <= input.size() && st == parse_status::need_more; ++k) {
    buffer = std::make_unique<std::string>(input.substr(0, k));
    st = p.parse(*buffer);
  }
  ASSERT_EQ(st, parse_status::complete);
  EXPECT_TRUE(inside(p.head().method, *buffer));
  EXPECT_TRUE(inside(p.head().target, *buffer));
  for (const auto& f : p.head().headers) {
    EXPECT_TRUE(inside(f.name, *buffer));
    EXPECT_TRUE(inside(f.value, *buffer));
  }
  EXPECT_EQ(p.head().target, "/path");
  EXPECT_EQ(p.head().headers.get("x"), "y");
}

TEST(RequestParserIncremental, ChunksOfEverySize) {
  const std::string input =
      "\r\nPUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
  const verdict whole = parse_whole(input);
  ASSERT_EQ(whole.status, parse_status::complete);
  for (std::size_t step = 1; step <= input.size(); ++step) {
    http::request_parser p;
    parse_status st = parse_status::need_more;
    std::size_t k = 0;
    while (st == parse_status::need_more && k < input.size()) {
      k = std::min(input.size(), k + step);
      st = p.parse(std::string_view{input}.substr(0, k));
    }
    EXPECT_EQ(verdict_of(p, st), whole) << "step " << step;
  }
}

}  // namespace

namespace {

TEST(RequestParserStrict, HostWithWhitespaceOrControlCharacters) {
  expect_refused("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
  expect_refused("GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", 400);
  expect_refused("GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n", 400);
}

}  // namespace
