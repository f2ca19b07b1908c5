// weft::http::server over real loopback sockets: responses and their headers, keep-alive and
// pipelining in order, every refusal with its exact status and nothing read past it, request
// bodies (whole, streamed, chunked, drained when unread, 100-continue), HEAD, 204, streamed,
// file and HTTP/1.0 responses, handler failures (500 and the hook, http::error), graceful
// drain, max connections and 1,000 concurrent connections. Every test checks that no
// descriptor is left open. Timeouts are in server_timeouts_test.cpp, under paused time.
#include <weft/http/server.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "http_client_support.hpp"

#include <weft/combinators/when_all.hpp>
#include <weft/http/error.hpp>
#include <weft/http/response.hpp>
#include <weft/io/file.hpp>
#include <weft/net/unix_stream.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/latch.hpp>
#include <weft/time/sleep.hpp>
#include <weft/time/timeout.hpp>
#include <weft/yield.hpp>

// g++ 12 warns about `"literal" + std::string` concatenations it inlines (GCC bug 105329, a
// false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

namespace {

namespace http = weft::http;
using namespace std::chrono_literals;
using weft::task;
using weft::net::socket_address;
using weft::net::tcp_stream;
using weft::testing::bytes_of;
using weft::testing::http_reader;
using weft::testing::http_reply;
using weft::testing::replies;
using weft::testing::round_trip;

class HttpServer : public weft::testing::http_server_test {};

http::handler hello() {
  return [](http::request&) -> task<http::response> {
    co_return http::response::text("Hello, World!");
  };
}

/// Answers with the method and target, so that order and routing are visible.
http::handler echo_target() {
  return [](http::request& req) -> task<http::response> {
    co_return http::response::text(std::string{req.method()} + " " + std::string{req.target()});
  };
}

/// Answers with the whole body.
http::handler echo_body() {
  return [](http::request& req) -> task<http::response> {
    co_return http::response::text(co_await req.body().text());
  };
}

/// Sends `raw`, then reads one response and checks the connection ends right after it.
task<http_reply> refused(socket_address at, std::string raw) {
  auto c = co_await tcp_stream::connect(at);
  co_await c.write_all(bytes_of(raw));
  http_reader in{c};
  auto r = co_await in.next();
  EXPECT_TRUE(r.has_value());
  EXPECT_TRUE(co_await in.at_end())
      << "the server answered more than the refusal: " << in.buffered();
  co_return r.value_or(http_reply{});
}

// --- responses --------------------------------------------------------------------------------

TEST_F(HttpServer, AnswersWithStatusFramingDateAndServer) {
  run(hello(), {}, [](socket_address at, http::server&) -> task<void> {
    auto r = co_await round_trip(at, "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(r.has_value());
    if (!r) co_return;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "Hello, World!");
    EXPECT_EQ(r->get("content-length"), "13");
    EXPECT_EQ(r->get("content-type"), "text/plain; charset=utf-8");
    EXPECT_EQ(r->get("server"), "weft");
    EXPECT_EQ(r->get("date").size(), 29u) << r->get("date");
    EXPECT_TRUE(r->get("date").ends_with(" GMT"));
    EXPECT_FALSE(r->has("connection"));
  });
}

TEST_F(HttpServer, ServerHeaderIsConfigurableAndHandlerHeadersAreSent) {
  http::server_options o;
  o.server_name = "";
  run(
      [](http::request&) -> task<http::response> {
        auto r = http::response::json(R"({"id":7})", 201);
        r.set_header("Location", "/users/7").add_header("Set-Cookie", "a=1");
        co_return r;
      },
      std::move(o),
      [](socket_address at, http::server&) -> task<void> {
        auto r = co_await round_trip(at, "POST /users HTTP/1.1\r\nHost: x\r\n\r\n");
        EXPECT_TRUE(r.has_value());
        if (!r) co_return;
        EXPECT_EQ(r->status, 201);
        EXPECT_FALSE(r->has("server"));
        EXPECT_EQ(r->get("location"), "/users/7");
        EXPECT_EQ(r->get("set-cookie"), "a=1");
        EXPECT_EQ(r->get("content-type"), "application/json");
        EXPECT_EQ(r->body, R"({"id":7})");
      });
}

TEST_F(HttpServer, KeepAliveServesManyRequestsOnOneConnection) {
  run(echo_target(), {}, [](socket_address at, http::server& srv) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    http_reader in{c};
    for (int i = 0; i < 50; ++i) {
      const std::string target = "/r" + std::to_string(i);
      co_await c.write_all(bytes_of("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
      auto r = co_await in.next();
      EXPECT_TRUE(r.has_value());
      if (!r) co_return;
      EXPECT_EQ(r->body, "GET " + target);
      EXPECT_TRUE(r->keep_alive);
    }
    EXPECT_EQ(srv.stats().connections.accepted.load(), 1u);
    EXPECT_EQ(srv.stats().requests.load(), 50u);
  });
}

TEST_F(HttpServer, PipelinedRequestsAreAnsweredInOrderEvenWhenEarlierOnesTakeLonger) {
  // The first request's handler is the slowest: responses must still come in request order.
  http::handler h = [](http::request& req) -> task<http::response> {
    const std::string t{req.target()};
    const int n = std::stoi(t.substr(1));
    co_await weft::sleep_for(std::chrono::milliseconds{(16 - n) / 4});
    co_return http::response::text(t);
  };
  run(std::move(h), {}, [](socket_address at, http::server&) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    std::string batch;
    for (int i = 0; i < 16; ++i)
      batch += "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
    co_await c.write_all(bytes_of(batch));
    http_reader in{c};
    for (int i = 0; i < 16; ++i) {
      auto r = co_await in.next();
      EXPECT_TRUE(r.has_value());
      if (!r) co_return;
      EXPECT_EQ(r->body, "/" + std::to_string(i));
    }
  });
}

TEST_F(HttpServer, RequestsSplitAcrossWritesAtEveryByteAreParsed) {
  run(echo_body(), {}, [](socket_address at, http::server&) -> task<void> {
    const std::string req =
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    auto c = co_await tcp_stream::connect(at);
    c.set_nodelay(true);
    for (char ch : req) {
      co_await c.write_all(bytes_of(std::string_view{&ch, 1}));
      co_await weft::sleep_for(100us);
    }
    http_reader in{c};
    auto a = co_await in.next();
    auto b = co_await in.next();
    EXPECT_TRUE(a && b);
    if (!a || !b) co_return;
    EXPECT_EQ(a->body, "hello");
    EXPECT_EQ(b->body, "abc");
  });
}

TEST_F(HttpServer, HeadGetsTheHeadersOfGetWithoutTheBody) {
  run(hello(), {}, [](socket_address at, http::server&) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    co_await c.write_all(
        bytes_of("HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    http_reader in{c};
    auto head = co_await in.next(/*to_head=*/true);
    auto get = co_await in.next();
    EXPECT_TRUE(head && get);
    if (!head || !get) co_return;
    EXPECT_EQ(head->get("content-length"), "13");
    EXPECT_EQ(head->body, "");
    EXPECT_EQ(get->body, "Hello, World!");  // the HEAD sent no body that would be taken for this
  });
}

TEST_F(HttpServer, NoContentHasNoBodyAndNoLength) {
  run(
      [](http::request&) -> task<http::response> {
        co_return http::response{204}.set_body("ignored");
      },
      {},
      [](socket_address at, http::server&) -> task<void> {
        auto r = co_await replies(
            at, "DELETE /x HTTP/1.1\r\nHost: x\r\n\r\nDELETE /y HTTP/1.1\r\nHost: x\r\n\r\n", 2);
        if (r.size() != 2) co_return;
        EXPECT_EQ(r[0].status, 204);
        EXPECT_FALSE(r[0].has("content-length"));
        EXPECT_EQ(r[1].status, 204);
      });
}

weft::async_generator<std::string> count_to(int n) {
  for (int i = 1; i <= n; ++i) {
    co_await weft::yield();
    co_yield std::to_string(i) + ";";
    co_yield std::string{};  // empty pieces are skipped, not taken as the end
  }
}

TEST_F(HttpServer, StreamBodiesAreChunkedForHttp11AndCloseDelimitedForHttp10) {
  run([](http::request&) -> task<http::response> { co_return http::response::stream(count_to(5)); },
      {},
      [](socket_address at, http::server&) -> task<void> {
        auto c = co_await tcp_stream::connect(at);
        co_await c.write_all(
            bytes_of("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        http_reader in{c};
        auto a = co_await in.next();
        auto b = co_await in.next();
        EXPECT_TRUE(a && b);
        if (!a || !b) co_return;
        EXPECT_EQ(a->get("transfer-encoding"), "chunked");
        EXPECT_EQ(a->body, "1;2;3;4;5;");
        EXPECT_EQ(b->body, "1;2;3;4;5;");

        auto old = co_await tcp_stream::connect(at);
        co_await old.write_all(bytes_of("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        http_reader in10{old};
        auto r = co_await in10.next();
        EXPECT_TRUE(r.has_value());
        if (!r) co_return;
        EXPECT_FALSE(r->has("transfer-encoding"));
        EXPECT_EQ(r->get("connection"), "close");
        EXPECT_EQ(r->body, "1;2;3;4;5;");
      });
}

TEST_F(HttpServer, FileBodiesAreSentWithTheirLengthAndAMissingFileIs404) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("weft_http_file_" + std::to_string(::getpid()) + ".txt");
  std::string content;
  for (int i = 0; i < 20000; ++i) content += std::to_string(i) + "\n";  // > one read chunk
  std::ofstream(path) << content;
  http::handler h = [&path](http::request& req) -> task<http::response> {
    if (req.path() == "/missing") co_return co_await http::response::file("/nonexistent/x");
    co_return co_await http::response::file(path.string(), "text/plain");
  };
  run(std::move(h), {}, [&content](socket_address at, http::server&) -> task<void> {
    auto r = co_await replies(
        at, "GET /f HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\n", 2);
    if (r.size() != 2) co_return;
    EXPECT_EQ(r[0].get("content-length"), std::to_string(content.size()));
    EXPECT_TRUE(r[0].body == content);
    EXPECT_EQ(r[1].status, 404);
  });
  std::filesystem::remove(path);
}

TEST_F(HttpServer, Http10ClosesUnlessKeepAliveIsAsked) {
  run(hello(), {}, [](socket_address at, http::server&) -> task<void> {
    {
      auto c = co_await tcp_stream::connect(at);
      co_await c.write_all(bytes_of("GET / HTTP/1.0\r\n\r\n"));
      http_reader in{c};
      auto r = co_await in.next();
      EXPECT_TRUE(r.has_value());
      if (r) {
        EXPECT_EQ(r->get("connection"), "close");
      }
      EXPECT_TRUE(co_await in.at_end());
    }
    auto c = co_await tcp_stream::connect(at);
    http_reader in{c};
    for (int i = 0; i < 2; ++i) {
      co_await c.write_all(bytes_of("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
      auto r = co_await in.next();
      EXPECT_TRUE(r.has_value());
      if (r) {
        EXPECT_EQ(r->get("connection"), "keep-alive");
      }
    }
  });
}

TEST_F(HttpServer, ConnectionCloseFromTheClientOrTheHandlerClosesAfterTheResponse) {
  http::handler h = [](http::request& req) -> task<http::response> {
    auto r = http::response::text("bye");
    if (req.path() == "/close") r.close_connection();
    co_return r;
  };
  run(std::move(h), {}, [](socket_address at, http::server&) -> task<void> {
    for (std::string raw : {"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                            "GET /never HTTP/1.1\r\nHost: x\r\n\r\n",
                            "GET /close HTTP/1.1\r\nHost: x\r\n\r\n"}) {
      auto c = co_await tcp_stream::connect(at);
      co_await c.write_all(bytes_of(raw));
      http_reader in{c};
      auto r = co_await in.next();
      EXPECT_TRUE(r.has_value());
      if (r) {
        EXPECT_EQ(r->get("connection"), "close");
      }
      EXPECT_TRUE(co_await in.at_end()) << in.buffered();
    }
  });
}

// --- refusals ---------------------------------------------------------------------------------

struct refusal {
  const char* name;
  std::string raw;
  int status;
};

TEST_F(HttpServer, EveryMalformedOrOversizedRequestGetsItsStatusAndNothingAfterIt) {
  // Each is followed by a well-formed request that must not be answered.
  const std::string next = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<refusal> cases = {
      {"request line over 8 KiB", "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n",
       414},
      {"header section over 16 KiB",
       "GET / HTTP/1.1\r\nHost: x\r\nA: " + std::string(17000, 'a') + "\r\n\r\n", 431},
      {"over 100 fields",
       [] {
         std::string s = "GET / HTTP/1.1\r\nHost: x\r\n";
         for (int i = 0; i < 101; ++i) s += "F" + std::to_string(i) + ": v\r\n";
         return s + "\r\n";
       }(),
       431},
      {"body over 1 MiB", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n", 413},
      {"unknown transfer coding",
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
      {"bare LF", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400},
      {"lone CR", "GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", 400},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
      {"CL and TE",
       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       400},
      {"differing CLs",
       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
      {"TE not ending in chunked",
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400},
      {"NUL in a field", std::string("GET / HTTP/1.1\r\nHost: x\r\nA: b\0c\r\n\r\n", 36), 400},
      {"control character in a field",
       "GET / HTTP/1.1\r\nHost: x\r\nA: b\x01"
       "c\r\n\r\n",
       400},
      {"missing Host", "GET / HTTP/1.1\r\n\r\n", 400},
      {"Expect other than 100-continue", "GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n",
       417},
      {"junk chunk size",
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3x\r\nabc\r\n0\r\n\r\n",
       400},
      {"overflowing chunk size",
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
       400},
      {"long chunk extension",
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;" +
           std::string(2000, 'e') + "\r\nabc\r\n0\r\n\r\n",
       400},
      {"chunked body over 1 MiB",
       [] {
         std::string s = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
         for (int i = 0; i < 17; ++i) s += "10000\r\n" + std::string(65536, 'x') + "\r\n";
         return s + "0\r\n\r\n";
       }(),
       413},
  };
  run(echo_body(), {}, [&](socket_address at, http::server& srv) -> task<void> {
    for (const auto& c : cases) {
      SCOPED_TRACE(c.name);
      auto r = co_await refused(at, c.raw + next);
      EXPECT_EQ(r.status, c.status) << r.body;
      EXPECT_EQ(r.get("connection"), "close");
    }
    // Parse errors are counted as refusals; body errors reach the handler as http::error.
    EXPECT_GE(srv.stats().refused.load(), 17u);
  });
}

TEST_F(HttpServer, CustomLimitsAreEnforced) {
  http::server_options o;
  o.limits.body = 10;
  o.limits.header_fields = 3;
  run(echo_body(), std::move(o), [](socket_address at, http::server&) -> task<void> {
    auto big = co_await refused(at, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n");
    EXPECT_EQ(big.status, 413);
    auto fields = co_await refused(at, "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
    EXPECT_EQ(fields.status, 431);
    auto ok = co_await round_trip(
        at, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789");
    EXPECT_TRUE(ok && ok->body == "0123456789");
  });
}

// --- request bodies ---------------------------------------------------------------------------

TEST_F(HttpServer, ChunkedBodiesAreDecodedAndBodiesCanBeStreamedInSmallReads) {
  http::handler h = [](http::request& req) -> task<http::response> {
    std::string got;
    std::array<std::byte, 7> buf{};  // smaller than any chunk
    while (const std::size_t n = co_await req.body().read(buf)) {
      got.append(reinterpret_cast<const char*>(buf.data()), n);
      got += '|';
    }
    co_return http::response::text(got);
  };
  run(std::move(h), {}, [](socket_address at, http::server&) -> task<void> {
    auto r = co_await round_trip(at,
                                 "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "a;ext=1\r\n0123456789\r\n3\r\nabc\r\n0\r\nTrailer: t\r\n\r\n");
    EXPECT_TRUE(r.has_value());
    if (r) {
      EXPECT_EQ(r->body, "0123456|789|abc|");
    }
  });
}

TEST_F(HttpServer, LargeBodiesArriveWhole) {
  std::string body(300000, 'x');
  for (std::size_t i = 0; i < body.size(); i += 7) body[i] = static_cast<char>('a' + i % 26);
  run(echo_body(), {}, [&body](socket_address at, http::server&) -> task<void> {
    auto r = co_await round_trip(at, "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                         std::to_string(body.size()) + "\r\n\r\n" + body);
    EXPECT_TRUE(r.has_value());
    if (r) {
      EXPECT_TRUE(r->body == body) << r->body.size();
    }
  });
}

TEST_F(HttpServer, AnUnreadBodyIsDrainedSoTheNextPipelinedRequestIsParsedWhereItStarts) {
  run(echo_target(), {}, [](socket_address at, http::server&) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    // Bodies that are requests: a server that did not skip them would answer them.
    const std::string evil = "GET /evil HTTP/1.1\r\nHost: x\r\n\r\n";
    char hex[16];
    std::snprintf(hex, sizeof hex, "%zx", evil.size());
    co_await c.write_all(bytes_of(
        "POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(evil.size()) +
        "\r\n\r\n" + evil + "POST /2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
        hex + "\r\n" + evil + "\r\n0\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n"));
    http_reader in{c};
    for (const char* want : {"POST /1", "POST /2", "GET /3"}) {
      auto r = co_await in.next();
      EXPECT_TRUE(r.has_value());
      if (r) {
        EXPECT_EQ(r->body, want);
      }
    }
  });
}

TEST_F(HttpServer, ExpectContinueGetsA100BeforeTheBodyIsRead) {
  run(echo_body(), {}, [](socket_address at, http::server&) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    co_await c.write_all(bytes_of(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
    http_reader in{c};
    auto cont = co_await in.next();
    EXPECT_TRUE(cont.has_value());
    if (!cont) co_return;
    EXPECT_EQ(cont->status, 100);
    co_await c.write_all(bytes_of("ping"));
    auto r = co_await in.next();
    EXPECT_TRUE(r.has_value());
    if (!r) co_return;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "ping");
    EXPECT_TRUE(r->keep_alive);
  });
}

TEST_F(HttpServer, ExpectContinueWithoutABodyReadIsAnsweredAndClosedWithoutWaiting) {
  http::handler h = [](http::request&) -> task<http::response> {
    co_return http::response::text("no thanks", 401);
  };
  run(std::move(h), {}, [](socket_address at, http::server&) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    co_await c.write_all(bytes_of(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n"));
    http_reader in{c};
    auto r = co_await in.next();
    EXPECT_TRUE(r.has_value());
    if (!r) co_return;
    EXPECT_EQ(r->status, 401);  // no 100 first
    EXPECT_EQ(r->get("connection"), "close");
    EXPECT_TRUE(co_await in.at_end());
  });
}

TEST_F(HttpServer, AClientThatClosesInsideABodyFailsTheReadWith400) {
  std::atomic<int> status{0};
  http::handler h = [&status](http::request& req) -> task<http::response> {
    try {
      (void)co_await req.body().text();
    } catch (const http::error& e) {
      status = e.status();
    }
    co_return http::response{};
  };
  run(std::move(h), {}, [&status](socket_address at, http::server&) -> task<void> {
    {
      auto c = co_await tcp_stream::connect(at);
      co_await c.write_all(bytes_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));
      c.shutdown(SHUT_WR);
      http_reader in{c};
      (void)co_await in.at_end();
    }
    for (int i = 0; i < 10000 && status.load() == 0; ++i) co_await weft::sleep_for(1ms);
    EXPECT_EQ(status.load(), 400);
  });
}

// --- handler failures -------------------------------------------------------------------------

TEST_F(HttpServer, AHandlerThatThrowsGets500AndIsReportedAndTheConnectionGoesOn) {
  std::atomic<int> reported{0};
  std::string what;
  weft::net::handler_error_function hook{
      [&](const std::exception_ptr& e, const weft::net::connection_info& c) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          what = std::string{x.what()} + " from " + c.peer;
        }
        reported.fetch_add(1);
      }};
  http::server_options o;
  o.on_error = &hook;
  http::handler h = [](http::request& req) -> task<http::response> {
    if (req.path() == "/boom") throw std::runtime_error("boom");
    if (req.path() == "/missing") throw http::error{404, "no such thing"};
    co_return http::response::text("fine");
  };
  run(std::move(h), std::move(o), [](socket_address at, http::server& srv) -> task<void> {
    auto r = co_await replies(at,
                              "GET /boom HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n",
                              3);
    if (r.size() != 3) co_return;
    EXPECT_EQ(r[0].status, 500);
    EXPECT_EQ(r[0].body.find("boom"), std::string::npos) << "details must not leak to the client";
    EXPECT_EQ(r[1].status, 404);
    EXPECT_EQ(r[1].body, "no such thing\n");
    EXPECT_EQ(r[2].body, "fine");
    EXPECT_EQ(srv.stats().handler_errors.load(), 1u);
  });
  EXPECT_EQ(reported.load(), 1);
  EXPECT_TRUE(what.starts_with("boom from 127.0.0.1:")) << what;
}

weft::async_generator<std::string> fails_after_one() {
  co_yield std::string{"first,"};
  throw std::runtime_error("the source broke");
}

TEST_F(HttpServer, AStreamThatFailsPartWayIsReportedAndTheConnectionReset) {
  std::atomic<int> reported{0};
  weft::net::handler_error_function hook{
      [&](const std::exception_ptr&, const weft::net::connection_info&) { reported.fetch_add(1); }};
  http::server_options o;
  o.on_error = &hook;
  http::handler h = [](http::request&) -> task<http::response> {
    co_return http::response::stream(fails_after_one());
  };
  run(std::move(h), std::move(o), [](socket_address at, http::server& srv) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    co_await c.write_all(bytes_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string got;
    std::array<std::byte, 4096> buf{};
    bool reset = false;
    for (;;) {
      std::size_t n = 0;
      try {
        n = co_await c.read_some(buf);
      } catch (const std::system_error& e) {
        reset = e.code().value() == ECONNRESET;
        break;
      }
      if (n == 0) break;
      got.append(reinterpret_cast<const char*>(buf.data()), n);
    }
    EXPECT_TRUE(reset) << "a cut body must not end like a whole one: " << got;
    EXPECT_EQ(got.find("0\r\n\r\n"), std::string::npos) << got;
    EXPECT_EQ(srv.stats().handler_errors.load(), 1u);
  });
  EXPECT_EQ(reported.load(), 1);
}

TEST_F(HttpServer, ALargeUnreadBodyIsNotWaitedForTheResponseClosesInstead) {
  http::handler h = [](http::request&) -> task<http::response> {
    co_return http::response::text("no", 401);
  };
  run(std::move(h), {}, [](socket_address at, http::server&) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    // A megabyte declared, ten bytes sent: the answer comes now, not after the upload.
    co_await c.write_all(
        bytes_of("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n0123456789"));
    http_reader in{c};
    auto r = co_await weft::timeout(10s, in.next());
    EXPECT_TRUE(r.has_value());
    if (!r) co_return;
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(r->get("connection"), "close");
  });
}

TEST_F(HttpServer, RequestsShowTheirPartsAndResponsesTheirTypesAndRanges) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("weft_http_range_" + std::to_string(::getpid()) + ".txt");
  std::ofstream(path) << "0123456789abcdef";
  http::handler h = [&path](http::request& req) -> task<http::response> {
    if (req.path() == "/range") {
      auto f = co_await weft::file::open(path.string());
      co_return http::response::file(std::move(f), 4, 6, "text/plain");
    }
    if (req.path() == "/html") co_return http::response::html("<p>hi</p>");
    if (req.path() == "/odd") throw http::error{299, "not an error status"};
    const auto declared = req.body().declared_length();
    co_return http::response::text(std::string{req.path()} + "|" + std::string{req.query()} +
                                   "|1." + std::to_string(req.version_minor()) + "|" +
                                   (req.peer().starts_with("127.0.0.1:") ? "peer" : "?") + "|" +
                                   (declared ? std::to_string(*declared) : "chunked") + "|" +
                                   (req.body().empty() ? "empty" : "body"));
  };
  run(std::move(h), {}, [](socket_address at, http::server&) -> task<void> {
    auto got = co_await replies(
        at,
        ("GET /range HTTP/1.1\r\nHost: x\r\n\r\n"
         "GET /html HTTP/1.1\r\nHost: x\r\n\r\n"
         "GET /odd HTTP/1.1\r\nHost: x\r\n\r\n"
         "GET /q?a=1&b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
         "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
         "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        6);
    if (got.size() != 6) co_return;
    EXPECT_EQ(got[0].body, "456789");
    EXPECT_EQ(got[0].get("content-length"), "6");
    EXPECT_EQ(got[1].get("content-type"), "text/html; charset=utf-8");
    EXPECT_EQ(got[2].status, 500) << "an http::error outside 400-599 is a 500";
    EXPECT_EQ(got[3].body, "/q|a=1&b|1.0|peer|0|empty");
    EXPECT_EQ(got[4].body, "/p||1.1|peer|2|body");
    EXPECT_EQ(got[5].body, "/c||1.1|peer|chunked|body");
  });
  std::filesystem::remove(path);
}

TEST(HttpServerOptions, AServerNameThatWouldSplitResponsesIsRefused) {
  http::server_options o;
  o.server_name = "weft\r\nX-Injected: 1";
  EXPECT_THROW(http::server(hello(), std::move(o)), std::invalid_argument);
  EXPECT_EQ(http::error(299, "x").status(), 500);
  EXPECT_EQ(http::error(404, "x").status(), 404);
}

TEST(HttpResponse, MisuseIsRefusedWhenItHappens) {
  http::response r;
  EXPECT_THROW(r.set_header("X-A", "a\r\nInjected: yes"), std::invalid_argument);
  EXPECT_THROW(r.set_header("X-A", std::string("a\0b", 3)), std::invalid_argument);
  EXPECT_THROW(r.set_header("Bad Name", "v"), std::invalid_argument);
  EXPECT_THROW(r.set_header("Content-Length", "5"), std::invalid_argument);
  EXPECT_THROW(r.add_header("transfer-encoding", "chunked"), std::invalid_argument);
  EXPECT_THROW(r.set_header("Connection", "close"), std::invalid_argument);
  EXPECT_THROW(r.set_status(99), std::invalid_argument);
  EXPECT_THROW(r.set_status(100), std::invalid_argument);
  EXPECT_THROW(r.set_status(600), std::invalid_argument);
  EXPECT_TRUE(r.headers().empty());
  r.set_header("X-A", "1").set_header("x-a", "2").add_header("X-A", "3");
  ASSERT_EQ(r.headers().size(), 2u);
  EXPECT_EQ(*r.header("X-A"), "2");
  r.set_header("Content-Type", "text/csv");
  EXPECT_EQ(r.content_type(), "text/csv");
  EXPECT_EQ(http::reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(http::reason_phrase(299), "Unknown");
}

TEST(HttpRequest, PercentDecoding) {
  EXPECT_EQ(http::percent_decode("a%20b%2Fc+d"), "a b/c+d");
  EXPECT_EQ(http::percent_decode(""), "");
  EXPECT_FALSE(http::percent_decode("a%2").has_value());
  EXPECT_FALSE(http::percent_decode("a%zz").has_value());
}

// --- stop, limits on connections, many connections ----------------------------------------------

TEST_F(HttpServer, StopFinishesInFlightRequestsClosesIdleConnectionsAndAnswersWhatWasReceived) {
  weft::event release;
  weft::latch arrived{1};
  http::handler h = [&](http::request& req) -> task<http::response> {
    if (req.path() == "/slow") {
      arrived.count_down();
      co_await release.wait();
    }
    co_return http::response::text(std::string{req.path()});
  };
  rt_.block_on([&]() -> task<void> {
    auto listener = weft::net::tcp_listener::bind(socket_address::parse("127.0.0.1:0"));
    http::server srv{std::move(h)};
    weft::cancel_source stop;
    auto running = weft::spawn(srv.serve(listener, stop.token()));
    const auto at = listener.local_address();
    auto idle = co_await tcp_stream::connect(at);
    {  // one served request makes it a kept-alive idle connection
      co_await idle.write_all(bytes_of("GET /warm HTTP/1.1\r\nHost: x\r\n\r\n"));
      http_reader in{idle};
      EXPECT_TRUE((co_await in.next()).has_value());
    }
    auto busy = co_await tcp_stream::connect(at);
    co_await busy.write_all(
        bytes_of("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /after HTTP/1.1\r\nHost: x\r\n\r\n"));
    co_await arrived.wait();
    stop.request_cancellation();
    http_reader idle_in{idle};
    EXPECT_TRUE(co_await idle_in.at_end()) << "an idle connection closes at the stop";
    release.set();
    http_reader in{busy};
    auto slow = co_await in.next();
    auto after = co_await in.next();
    EXPECT_TRUE(slow && after);
    if (slow && after) {
      EXPECT_EQ(slow->body, "/slow");
      EXPECT_NE(slow->get("connection"), "close");
      EXPECT_EQ(after->body, "/after");
      EXPECT_EQ(after->get("connection"), "close");
    }
    EXPECT_TRUE(co_await in.at_end());
    co_await std::move(running);
  });
}

TEST_F(HttpServer, HandlersStillRunningAfterTheGraceAreCancelledAndTheirConnectionsClosed) {
  http::server_options o;
  o.grace = 50ms;
  std::atomic<bool> cancelled{false};
  weft::latch arrived{1};
  http::handler h = [&](http::request&) -> task<http::response> {
    arrived.count_down();
    try {
      co_await weft::sleep_for(1h);
    } catch (const weft::operation_cancelled&) {
      cancelled = true;
      throw;
    }
    co_return http::response{};
  };
  rt_.block_on([&]() -> task<void> {
    auto listener = weft::net::tcp_listener::bind(socket_address::parse("127.0.0.1:0"));
    http::server srv{std::move(h), std::move(o)};
    weft::cancel_source stop;
    auto running = weft::spawn(srv.serve(listener, stop.token()));
    auto c = co_await tcp_stream::connect(listener.local_address());
    co_await c.write_all(bytes_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    co_await arrived.wait();
    stop.request_cancellation();
    co_await std::move(running);
    http_reader in{c};
    EXPECT_TRUE(co_await in.at_end()) << "no response after a cancelled handler";
  });
  EXPECT_TRUE(cancelled.load());
}

TEST_F(HttpServer, MaxConnectionsPausesAcceptingUntilOneEnds) {
  http::server_options o;
  o.max_connections = 2;
  run(echo_target(), std::move(o), [](socket_address at, http::server& srv) -> task<void> {
    auto a = co_await tcp_stream::connect(at);
    auto b = co_await tcp_stream::connect(at);
    http_reader ina{a};
    http_reader inb{b};
    co_await a.write_all(bytes_of("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
    co_await b.write_all(bytes_of("GET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_TRUE((co_await ina.next()).has_value());
    EXPECT_TRUE((co_await inb.next()).has_value());
    // The third connects (the kernel's backlog) but is not accepted, so it is not answered.
    auto c = co_await tcp_stream::connect(at);
    co_await c.write_all(bytes_of("GET /c HTTP/1.1\r\nHost: x\r\n\r\n"));
    http_reader inc{c};
    bool answered_early = true;
    try {
      (void)co_await weft::timeout(100ms, inc.next());
    } catch (const weft::timed_out&) {
      answered_early = false;
    }
    EXPECT_FALSE(answered_early);
    EXPECT_EQ(srv.stats().connections.accepted.load(), 2u);
    a.close();  // frees a place
    auto r = co_await inc.next();
    EXPECT_TRUE(r.has_value());
    if (r) {
      EXPECT_EQ(r->body, "GET /c");
    }
    EXPECT_EQ(srv.stats().connections.accepted.load(), 3u);
  });
}

TEST_F(HttpServer, AThousandConcurrentConnectionsAreAllServedAndAllClosed) {
  constexpr int n = 1000;
  // Both ends live in this process: 2,000 sockets. A process may always raise its soft limit up
  // to the hard one (Debian's default hard limit is far above this), so a machine where this
  // still falls short is misconfigured for the suite, and the test says so instead of skipping.
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < 2 * n + 100) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, 2 * n + 100);
    ::setrlimit(RLIMIT_NOFILE, &files);
    ::getrlimit(RLIMIT_NOFILE, &files);
  }
  ASSERT_GE(files.rlim_cur, static_cast<rlim_t>(2 * n + 100))
      << "the hard descriptor limit (ulimit -Hn) is below the 2,100 this test needs";
  std::atomic<int> ok{0};
  run(echo_target(), {}, [&ok](socket_address at, http::server& srv) -> task<void> {
    std::vector<tcp_stream> conns;
    conns.reserve(n);
    for (int i = 0; i < n; ++i) conns.push_back(co_await tcp_stream::connect(at));
    std::vector<task<void>> clients;
    for (int i = 0; i < n; ++i) {
      clients.push_back([](tcp_stream& c, int i, std::atomic<int>& ok) -> task<void> {
        const std::string target = "/" + std::to_string(i);
        co_await c.write_all(bytes_of("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
        http_reader in{c};
        auto r = co_await in.next();
        if (r && r->body == "GET " + target) ok.fetch_add(1);
      }(conns[i], i, ok));
    }
    co_await weft::when_all(std::move(clients));
    EXPECT_EQ(srv.stats().connections.active.load(), static_cast<std::uint64_t>(n));
  });
  EXPECT_EQ(ok.load(), n);
}

TEST_F(HttpServer, ServesAUnixListener) {
  const std::string path = "/tmp/weft_http_" + std::to_string(::getpid()) + ".sock";
  rt_.block_on([&]() -> task<void> {
    auto listener = weft::net::unix_listener::bind(path);
    http::server srv{hello()};
    weft::cancel_source stop;
    auto running = weft::spawn(srv.serve(listener, stop.token()));
    auto c = co_await weft::net::unix_stream::connect(path);
    co_await c.write_all(bytes_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    http_reader in{c};
    auto r = co_await in.next();
    EXPECT_TRUE(r && r->body == "Hello, World!");
    stop.request_cancellation();
    co_await std::move(running);
  });
  std::filesystem::remove(path);
}

}  // namespace
