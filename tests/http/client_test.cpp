// weft::http::client against weft's own server and against raw servers that misbehave on
// purpose: requests and responses (bodies, chunked, HEAD, 204), pool reuse, streams that give
// their connection back only at the end, a server that closes pooled connections (noticed, or
// an idempotent request sent again), the per-origin cap, cancellation that closes the
// connection, the connect timeout under paused time, refusals of bad input, malformed responses,
// the URL parser, and the resilience helpers (503 + Retry-After through a retry layer).
#include <weft/http/client.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include "../support/paused_time.hpp"
#include "http_client_support.hpp"

#include <weft/combinators/when_all.hpp>
#include <weft/http/retryable.hpp>
#include <weft/net/server.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/sync/latch.hpp>
#include <weft/time/sleep.hpp>
#include <weft/time/timed_out.hpp>
#include <weft/time/timeout.hpp>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"  // GCC bug 105329, as in server_test.cpp
#endif

namespace {

namespace http = weft::http;
using namespace std::chrono_literals;
using weft::task;
using weft::net::socket_address;
using weft::net::tcp_stream;
using weft::testing::bytes_of;

class HttpClient : public weft::testing::http_server_test {};

std::string base(socket_address at) {
  return "http://" + at.to_string();
}

// Requests and options are built outside coroutine bodies: g++ 12 miscompiles braced
// initializers there (see docs/runtime.md).
http::client_request make(std::string method, std::string url,
                          std::vector<http::field> headers = {}, std::string body = {}) {
  http::client_request r;
  r.method = std::move(method);
  r.url = std::move(url);
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

http::field header(std::string name, std::string value) {
  http::field f;
  f.name = std::move(name);
  f.value = std::move(value);
  return f;
}

http::client_options capped(std::size_t n) {
  http::client_options o;
  o.max_connections_per_origin = n;
  return o;
}

http::client_options connect_within(weft::clock::duration d) {
  http::client_options o;
  o.connect_timeout = d;
  return o;
}

http::handler echo_all() {
  return [](http::request& req) -> task<http::response> {
    std::string out = std::string{req.method()} + " " + std::string{req.target()} + " " +
                      std::string{req.header("X-Tag").value_or("-")} + " " +
                      std::string{req.header("User-Agent").value_or("-")} + " [" +
                      co_await req.body().text() + "]";
    co_return http::response::text(out).set_header("X-Served", "yes");
  };
}

TEST_F(HttpClient, SendsRequestsAndReadsStatusHeadersAndBodiesOnOnePooledConnection) {
  run(echo_all(), {}, [](socket_address at, http::server& srv) -> task<void> {
    http::client c;
    auto r = co_await c.get(base(at) + "/a?b=1");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.reason, "OK");
    EXPECT_EQ(r.body, "GET /a?b=1 - weft []");
    EXPECT_EQ(r.header("x-served").value_or(""), "yes");
    for (int i = 0; i < 9; ++i) {
      std::vector<http::field> tag;
      tag.push_back(header("X-Tag", std::to_string(i)));
      auto p = co_await c.request(
          make("POST", base(at) + "/p", std::move(tag), "body" + std::to_string(i)));
      EXPECT_EQ(p.body, "POST /p " + std::to_string(i) + " weft [body" + std::to_string(i) + "]");
    }
    EXPECT_EQ(c.stats().connects.load(), 1u);
    EXPECT_EQ(c.stats().reused.load(), 9u);
    EXPECT_EQ(srv.stats().connections.accepted.load(), 1u);
  });
}

weft::async_generator<std::string> pieces() {
  for (int i = 0; i < 100; ++i) co_yield "piece" + std::to_string(i) + ",";
}

TEST_F(HttpClient, ChunkedHeadAndNoContentResponsesKeepTheConnectionUsable) {
  http::handler h = [](http::request& req) -> task<http::response> {
    if (req.path() == "/chunked") co_return http::response::stream(pieces());
    if (req.path() == "/empty") co_return http::response{204};
    co_return http::response::text("twelve bytes");
  };
  run(std::move(h), {}, [](socket_address at, http::server&) -> task<void> {
    http::client c;
    std::string want;
    for (int i = 0; i < 100; ++i) want += "piece" + std::to_string(i) + ",";
    auto chunked = co_await c.get(base(at) + "/chunked");
    EXPECT_EQ(chunked.body, want);
    auto head = co_await c.request(make("HEAD", base(at) + "/x"));
    EXPECT_EQ(head.header("content-length").value_or(""), "12");
    EXPECT_EQ(head.body, "");
    auto empty = co_await c.get(base(at) + "/empty");
    EXPECT_EQ(empty.status, 204);
    auto last = co_await c.get(base(at) + "/x");
    EXPECT_EQ(last.body, "twelve bytes");
    EXPECT_EQ(c.stats().connects.load(), 1u);
  });
}

TEST_F(HttpClient, AStreamGivesItsConnectionBackOnlyWhenTheBodyWasReadToTheEnd) {
  http::handler h = [](http::request&) -> task<http::response> {
    co_return http::response::stream(pieces());
  };
  run(std::move(h), {}, [](socket_address at, http::server&) -> task<void> {
    http::client c;
    {
      auto s = co_await c.stream(make("GET", base(at) + "/"));
      EXPECT_EQ(s.status(), 200);
      std::string got;
      std::array<std::byte, 5> small{};  // smaller than a chunk
      while (const std::size_t n = co_await s.read(small)) {
        got.append(reinterpret_cast<const char*>(small.data()), n);
      }
      EXPECT_TRUE(got.starts_with("piece0,piece1,"));
      EXPECT_TRUE(got.ends_with("piece99,"));
      EXPECT_EQ(co_await s.read(small), 0u) << "after the end, still the end";
      EXPECT_EQ(co_await s.text(), "");
    }
    (void)co_await c.get(base(at) + "/");
    EXPECT_EQ(c.stats().connects.load(), 1u) << "read to the end: reused";
    {
      auto s = co_await c.stream(make("GET", base(at) + "/"));
      std::array<std::byte, 5> small{};
      EXPECT_EQ(co_await s.read(small), 5u);
    }  // dropped part way
    (void)co_await c.get(base(at) + "/");
    EXPECT_EQ(c.stats().connects.load(), 2u) << "dropped part way: closed, not reused";
    EXPECT_EQ(c.stats().discarded.load(), 1u);
  });
}

/// A raw server: answers each connection's requests with `answer(request_number)`, or closes
/// the connection when the answer is empty.
template <class Answer>
task<void> raw_connection(tcp_stream s, Answer answer) {
  weft::testing::http_reader unused{s};
  std::string buf;
  int n = 0;
  std::array<std::byte, 4096> chunk{};
  for (;;) {
    while (buf.find("\r\n\r\n") == std::string::npos) {
      const std::size_t got = co_await s.read_some(chunk);
      if (got == 0) co_return;
      buf.append(reinterpret_cast<const char*>(chunk.data()), got);
    }
    buf.erase(0, buf.find("\r\n\r\n") + 4);
    const std::string reply = answer(n++);
    if (reply.empty()) co_return;  // closes without answering
    co_await s.write_all(bytes_of(reply));
  }
}

template <class Answer, class Client>
void with_raw_server(weft::runtime& rt, Answer answer, Client client) {
  rt.block_on([&]() -> task<void> {
    auto listener = weft::net::tcp_listener::bind(socket_address::parse("127.0.0.1:0"));
    weft::cancel_source stop;
    auto running = weft::spawn(weft::net::serve(
        listener,
        [&answer](weft::net::tcp_accepted a) {
          return raw_connection(std::move(a.stream), answer);
        },
        stop.token()));
    co_await client(listener.local_address());
    stop.request_cancellation();
    co_await std::move(running);
  });
}

const std::string ok_response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

TEST_F(HttpClient, APooledConnectionTheServerClosedIsNotReused) {
  // Answers one request per connection, keep-alive in name only, then closes.
  with_raw_server(
      rt_, [](int n) { return n == 0 ? ok_response : std::string{}; },
      [](socket_address at) -> task<void> {
        http::client c;
        for (int i = 0; i < 3; ++i) {
          auto r = co_await c.get(base(at) + "/");
          EXPECT_EQ(r.body, "ok");
          co_await weft::sleep_for(20ms);  // the server's close arrives
        }
        EXPECT_EQ(c.stats().connects.load(), 3u);
      });
}

TEST_F(HttpClient, AnIdempotentRequestIsSentAgainWhenAPooledConnectionClosesUnderIt) {
  std::atomic<int> connection_count{0};
  // Every connection: answers its first request, then takes the second and closes without an
  // answer (a server that timed the connection out as the request arrived).
  with_raw_server(
      rt_,
      [&connection_count](int n) {
        if (n == 0) connection_count.fetch_add(1);
        return n == 0 ? ok_response : std::string{};
      },
      [](socket_address at) -> task<void> {
        http::client c;
        (void)co_await c.get(base(at) + "/");
        auto again = co_await c.get(base(at) + "/");  // sent on the pooled one, then resent
        EXPECT_EQ(again.body, "ok");
        EXPECT_EQ(c.stats().retried.load(), 1u);
        bool failed = false;
        try {
          (void)co_await c.request(make("POST", base(at) + "/", {}, "x"));
        } catch (const std::system_error&) {
          failed = true;  // not idempotent: not sent twice
        }
        EXPECT_TRUE(failed);
      });
  EXPECT_EQ(connection_count.load(), 2);
}

TEST_F(HttpClient, MalformedResponsesFailTheRequest) {
  for (const std::string& bad :
       {std::string{"HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\nok"},
        std::string{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"},
        std::string{"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n"},
        std::string{"garbage\r\n\r\n"}}) {
    with_raw_server(
        rt_, [&bad](int) { return bad; },
        [](socket_address at) -> task<void> {
          http::client c;
          bool failed = false;
          try {
            (void)co_await c.get(base(at) + "/");
          } catch (const std::runtime_error&) {
            failed = true;
          }
          EXPECT_TRUE(failed);
        });
  }
}

TEST_F(HttpClient, ThePerOriginCapBoundsOpenConnections) {
  std::atomic<int> live{0};
  std::atomic<int> most{0};
  http::handler h = [&](http::request&) -> task<http::response> {
    const int now = live.fetch_add(1) + 1;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    co_await weft::sleep_for(5ms);
    live.fetch_sub(1);
    co_return http::response::text("x");
  };
  run(std::move(h), {}, [&](socket_address at, http::server& srv) -> task<void> {
    http::client c{capped(2)};
    std::vector<task<http::client_response>> calls;
    for (int i = 0; i < 10; ++i) calls.push_back(c.get(base(at) + "/"));
    auto all = co_await weft::when_all(std::move(calls));
    EXPECT_EQ(all.size(), 10u);
    EXPECT_LE(c.stats().connects.load(), 2u);
    EXPECT_LE(srv.stats().connections.accepted.load(), 2u);
  });
  EXPECT_LE(most.load(), 2);
}

TEST_F(HttpClient, ACancelledRequestClosesItsConnectionInsteadOfPoolingIt) {
  http::handler h = [](http::request& req) -> task<http::response> {
    if (req.path() == "/slow") co_await weft::sleep_for(10s);
    co_return http::response::text("x");
  };
  http::server_options o;
  o.grace = 10ms;
  run(std::move(h), std::move(o), [](socket_address at, http::server&) -> task<void> {
    http::client c;
    (void)co_await c.get(base(at) + "/");
    bool timed_out = false;
    try {
      (void)co_await weft::timeout(50ms, c.get(base(at) + "/slow"));
    } catch (const weft::timed_out&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    auto r = co_await c.get(base(at) + "/");
    EXPECT_EQ(r.body, "x");
    EXPECT_EQ(c.stats().connects.load(), 2u);
  });
}

std::vector<http::client_request> bad_requests() {
  std::vector<http::client_request> v;
  v.push_back(make("GET", "https://127.0.0.1/"));
  v.push_back(make("GET", "127.0.0.1/"));
  v.push_back(make("G T", "http://127.0.0.1:1/"));
  v.push_back(make("GET", "http://127.0.0.1:1/", {header("X", "a\r\nB: c")}));
  v.push_back(make("GET", "http://127.0.0.1:1/", {header("Content-Length", "1")}));
  return v;
}

TEST_F(HttpClient, BadInputIsRefusedBeforeAnythingIsSent) {
  rt_.block_on([]() -> task<void> {
    http::client c;
    auto refused = [&](http::client_request req) -> task<bool> {
      try {
        (void)co_await c.request(std::move(req));
      } catch (const std::invalid_argument&) {
        co_return true;
      }
      co_return false;
    };
    for (auto& req : bad_requests()) EXPECT_TRUE(co_await refused(std::move(req)));
    EXPECT_EQ(c.stats().connects.load(), 0u);
  });
}

/// A loopback port that refuses connections: bound, never listening (so no one else takes it).
struct refusing_port {
  tcp_stream holder = tcp_stream::adopt(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  std::uint16_t port = 0;
  refusing_port() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(holder.native_handle(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(holder.native_handle(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
};

TEST_F(HttpClient, ARefusedConnectIsASystemErrorNamingTheOrigin) {
  rt_.block_on([]() -> task<void> {
    const refusing_port refusing;
    http::client c;
    bool refused = false;
    try {
      (void)co_await c.get("http://127.0.0.1:" + std::to_string(refusing.port) + "/");
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNREFUSED) << e.what();
      refused = true;
    }
    EXPECT_TRUE(refused);
  });
}

weft::net::listen_options no_backlog() {
  weft::net::listen_options o;
  o.backlog = 0;
  return o;
}

class HttpClientPaused : public weft::testing::http_server_test {
 protected:
  HttpClientPaused() : http_server_test(weft::testing::paused()) {}
};

TEST_F(HttpClientPaused, AConnectThatHangsFailsAtTheConnectTimeoutWithEtimedout) {
  rt_.block_on([]() -> task<void> {
    // A listener with a backlog of 0 that never accepts: once its queue holds a connection, the
    // next handshake gets no answer and the connect hangs.
    auto listener =
        weft::net::tcp_listener::bind(socket_address::parse("127.0.0.1:0"), no_backlog());
    // (A queue of 0 holds one: the kernel drops SYNs once it holds more than the backlog.)
    auto filler = co_await tcp_stream::connect(listener.local_address());
    http::client c{connect_within(3s)};
    const auto start = weft::clock::now();
    try {
      (void)co_await c.get(base(listener.local_address()) + "/");
      ADD_FAILURE() << "the connect did not hang";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ETIMEDOUT) << e.what();
      EXPECT_EQ(weft::testing::ms_since(start), 3000);
    }
  });
}

TEST_F(HttpClientPaused, A503WithRetryAfterIsRetriedAfterExactlyThatDelay) {
  std::atomic<int> calls{0};
  http::handler h = [&calls](http::request&) -> task<http::response> {
    if (calls.fetch_add(1) == 0) {
      co_return http::response::text("busy", 503).set_header("Retry-After", "2");
    }
    co_return http::response::text("fine");
  };
  run(std::move(h), {}, [](socket_address at, http::server&) -> task<void> {
    http::client c;
    weft::resilience::pipeline pipe{weft::resilience::retry{}};
    const auto start = weft::clock::now();
    auto o = co_await pipe.execute(http::call(c, make("GET", base(at) + "/")));
    EXPECT_EQ(o.kind(), weft::resilience::outcome_kind::value);
    if (o.kind() == weft::resilience::outcome_kind::value) {
      EXPECT_EQ(o.value().body, "fine");
    }
    EXPECT_EQ(weft::testing::ms_since(start), 2000) << "Retry-After replaces the backoff";
  });
  EXPECT_EQ(calls.load(), 2);
}

http::client_options idle_rules() {
  http::client_options o;
  o.idle_timeout = 30s;
  o.max_idle_per_origin = 1;
  return o;
}

TEST_F(HttpClientPaused, IdleConnectionsExpireAreCappedAndCanBeClosed) {
  http::handler h = [](http::request&) -> task<http::response> {
    co_await weft::sleep_for(10ms);
    co_return http::response::text("x");
  };
  run(std::move(h), {}, [](socket_address at, http::server& srv) -> task<void> {
    http::client c{idle_rules()};
    (void)co_await c.get(base(at) + "/");
    co_await weft::sleep_for(29s);
    (void)co_await c.get(base(at) + "/");  // within the idle timeout: reused
    EXPECT_EQ(c.stats().connects.load(), 1u);
    co_await weft::sleep_for(31s);
    (void)co_await c.get(base(at) + "/");  // past it: a new connection
    EXPECT_EQ(c.stats().connects.load(), 2u);
    // Two at once need two connections; one idle place keeps only one of them.
    std::vector<task<http::client_response>> two;
    two.push_back(c.get(base(at) + "/"));
    two.push_back(c.get(base(at) + "/"));
    (void)co_await weft::when_all(std::move(two));
    const auto discarded = c.stats().discarded.load();
    EXPECT_GE(discarded, 2u) << "the expired one and the one over max_idle_per_origin";
    c.close_idle();
    // The server sees its connections end: nothing idle is left open.
    for (int i = 0; i < 100 && srv.stats().connections.active.load() > 0; ++i) {
      co_await weft::sleep_for(10ms);
    }
    EXPECT_EQ(srv.stats().connections.active.load(), 0u);
  });
}

TEST_F(HttpClientPaused, CloseExpiredClosesOnlyConnectionsIdleForTheTimeout) {
  http::handler h = [](http::request&) -> task<http::response> {
    co_return http::response::text("x");
  };
  run(std::move(h), {}, [](socket_address at, http::server& srv) -> task<void> {
    http::client_options o;
    o.idle_timeout = 30s;
    http::client c{o};
    std::vector<task<http::client_response>> two;
    two.push_back(c.get(base(at) + "/"));
    two.push_back(c.get(base(at) + "/"));
    (void)co_await weft::when_all(std::move(two));  // two connections, idle from now
    co_await weft::sleep_for(10s);
    (void)co_await c.get(base(at) + "/");  // one of them is used again: idle from 10 s
    co_await weft::sleep_for(30s - 1ns - 10s);
    EXPECT_EQ(c.close_expired(), 0u) << "1 ns before the first expires";
    co_await weft::sleep_for(1ns);
    EXPECT_EQ(c.close_expired(), 1u) << "the one idle since 0 s";
    EXPECT_EQ(c.close_expired(), 0u);
    co_await weft::sleep_for(10s);
    EXPECT_EQ(c.close_expired(), 1u) << "the one idle since 10 s";
    EXPECT_EQ(c.stats().discarded.load(), 2u);
    for (int i = 0; i < 100 && srv.stats().connections.active.load() > 0; ++i) {
      co_await weft::sleep_for(10ms);
    }
    EXPECT_EQ(srv.stats().connections.active.load(), 0u) << "the server saw both close";
  });
}

TEST(HttpRetryable, StatusesRetryAfterAndIdempotence) {
  EXPECT_TRUE(http::is_retryable_status(502));
  EXPECT_TRUE(http::is_retryable_status(503));
  EXPECT_TRUE(http::is_retryable_status(504));
  EXPECT_FALSE(http::is_retryable_status(500));
  EXPECT_FALSE(http::is_retryable_status(429));
  EXPECT_EQ(http::make_status_error(503).message(), "503 Service Unavailable");
  EXPECT_EQ(http::parse_retry_after("120", 0), std::chrono::seconds{120});
  // Sun, 06 Nov 1994 08:49:37 GMT is 784111777.
  EXPECT_EQ(http::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 30),
            std::chrono::seconds{30});
  EXPECT_EQ(http::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 30),
            std::chrono::seconds{0});
  EXPECT_FALSE(http::parse_retry_after("soon", 0).has_value());
  EXPECT_FALSE(http::parse_retry_after("-5", 0).has_value());
  EXPECT_FALSE(http::parse_retry_after("99999999999", 0).has_value());
  EXPECT_TRUE(http::is_idempotent("GET"));
  EXPECT_TRUE(http::is_idempotent("DELETE"));
  EXPECT_FALSE(http::is_idempotent("POST"));
  EXPECT_FALSE(http::is_idempotent("PATCH"));
  http::client c;
  EXPECT_THROW((void)http::idempotent_call(c, make("POST", "http://x/")), std::invalid_argument);
  EXPECT_NO_THROW((void)http::idempotent_call(c, make("GET", "http://x/")));
}

TEST(HttpUrl, ParsesWhatAClientNeedsAndRefusesTheRest) {
  auto u = http::url::parse("http://127.0.0.1:8080/users/7?full=1#frag");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.target, "/users/7?full=1");
  EXPECT_EQ(u.origin(), "127.0.0.1:8080");
  EXPECT_EQ(u.host_header(), "127.0.0.1:8080");
  auto d = http::url::parse("HTTP://example.com");
  EXPECT_EQ(d.port, 80);
  EXPECT_EQ(d.target, "/");
  EXPECT_EQ(d.host_header(), "example.com");
  EXPECT_EQ(d.origin(), "example.com:80");
  auto q = http::url::parse("http://h?x=1");
  EXPECT_EQ(q.target, "/?x=1");
  auto v6 = http::url::parse("http://[::1]:9000/a");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.origin(), "[::1]:9000");
  for (const char* bad :
       {"https://h/", "ftp://h/", "http://", "http:///x", "http://h:0/", "http://h:65536/",
        "http://h:x/", "http://u@h/", "http://h /", "http://[::1/", "http://h:/"}) {
    EXPECT_THROW((void)http::url::parse(bad), std::invalid_argument) << bad;
  }
}

}  // namespace
