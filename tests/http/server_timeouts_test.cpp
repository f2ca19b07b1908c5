// weft::http::server's timeouts under paused time: a head that never completes (silent or
// trickled a byte a second: slow-loris), an idle kept-alive connection, a body that stops
// arriving, a client that does not read its response; and what must not time out: a slow
// handler, a body that keeps arriving within the body timeout.
#include <weft/http/server.hpp>

#include <chrono>
#include <cstddef>
#include <string>

#include <gtest/gtest.h>

#include "../support/paused_time.hpp"
#include "http_client_support.hpp"

#include <weft/spawn.hpp>
#include <weft/stream/async_generator.hpp>
#include <weft/time/clock.hpp>
#include <weft/time/sleep.hpp>

namespace {

namespace http = weft::http;
using namespace std::chrono_literals;
using weft::task;
using weft::net::socket_address;
using weft::net::tcp_stream;
using weft::testing::bytes_of;
using weft::testing::http_reader;
using weft::testing::ms_since;

class HttpTimeouts : public weft::testing::http_server_test {
 protected:
  HttpTimeouts() : http_server_test(weft::testing::paused()) {}
};

http::handler echo_body() {
  return [](http::request& req) -> task<http::response> {
    co_return http::response::text(co_await req.body().text());
  };
}

TEST_F(HttpTimeouts, AHeadThatNeverCompletesIsCutOffAtTheHeaderTimeout) {
  run(echo_body(), {}, [](socket_address at, http::server& srv) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    const auto start = weft::clock::now();
    co_await c.write_all(bytes_of("GET / HTTP/1.1\r\nHost: x\r\n"));
    http_reader in{c};
    EXPECT_TRUE(co_await in.at_end()) << "closed without an answer";
    EXPECT_EQ(ms_since(start), 10'000);
    EXPECT_EQ(srv.stats().timeouts.load(), 1u);
  });
}

TEST_F(HttpTimeouts, AConnectionThatSendsNothingIsClosedAtTheHeaderTimeout) {
  http::server_options o;
  o.header_timeout = 3s;
  run(echo_body(), std::move(o), [](socket_address at, http::server&) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    const auto start = weft::clock::now();
    http_reader in{c};
    EXPECT_TRUE(co_await in.at_end());
    EXPECT_EQ(ms_since(start), 3'000);
  });
}

weft::task<void> trickle(tcp_stream& c, std::string text, weft::clock::duration every) {
  try {
    for (char ch : text) {
      co_await c.write_all(bytes_of(std::string_view{&ch, 1}));
      co_await weft::sleep_for(every);
    }
  } catch (const std::system_error&) {
    // The server closed the connection: the trickle ends.
  }
}

TEST_F(HttpTimeouts, ASlowLorisHeadTrickledAByteASecondIsCutOffAtTheHeaderTimeout) {
  run(echo_body(), {}, [](socket_address at, http::server& srv) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    c.set_nodelay(true);
    const auto start = weft::clock::now();
    // 60 bytes at one a second: the head would be complete after a minute.
    auto sender = weft::spawn(trickle(
        c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(20, 'a') + "\r\n\r\n", 1s));
    http_reader in{c};
    EXPECT_TRUE(co_await in.at_end());
    const long ms = ms_since(start);
    EXPECT_GE(ms, 10'000);
    EXPECT_LT(ms, 11'000);  // the timer started at the first byte, not the last
    co_await std::move(sender);
    EXPECT_EQ(srv.stats().requests.load(), 0u);
  });
}

TEST_F(HttpTimeouts, AnIdleKeptAliveConnectionIsClosedAtTheKeepAliveTimeout) {
  run(echo_body(), {}, [](socket_address at, http::server& srv) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    co_await c.write_all(bytes_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    http_reader in{c};
    EXPECT_TRUE((co_await in.next()).has_value());
    const auto start = weft::clock::now();
    EXPECT_TRUE(co_await in.at_end());
    EXPECT_EQ(ms_since(start), 60'000);
    EXPECT_EQ(srv.stats().timeouts.load(), 1u);
  });
}

TEST_F(HttpTimeouts, ABodyThatStopsArrivingIsCutOffAtTheBodyTimeout) {
  run(echo_body(), {}, [](socket_address at, http::server& srv) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    co_await c.write_all(bytes_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));
    const auto start = weft::clock::now();
    http_reader in{c};
    EXPECT_TRUE(co_await in.at_end()) << "no answer to a request whose body never came";
    EXPECT_EQ(ms_since(start), 30'000);
    EXPECT_EQ(srv.stats().timeouts.load(), 1u);
  });
}

TEST_F(HttpTimeouts, ABodyThatKeepsArrivingWithinTheBodyTimeoutIsNotCutOff) {
  run(echo_body(), {}, [](socket_address at, http::server& srv) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    c.set_nodelay(true);
    co_await c.write_all(bytes_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"));
    // A byte every 20 s: two minutes for the body, never 30 s without a byte.
    auto sender = weft::spawn(trickle(c, "hello", 20s));
    http_reader in{c};
    auto r = co_await in.next();
    EXPECT_TRUE(r.has_value());
    if (r) {
      EXPECT_EQ(r->body, "hello");
    }
    co_await std::move(sender);
    EXPECT_EQ(srv.stats().timeouts.load(), 0u);
  });
}

TEST_F(HttpTimeouts, ASlowHandlerIsNotTimedOut) {
  http::handler h = [](http::request&) -> task<http::response> {
    co_await weft::sleep_for(5min);
    co_return http::response::text("done");
  };
  run(std::move(h), {}, [](socket_address at, http::server&) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    co_await c.write_all(bytes_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    http_reader in{c};
    auto r = co_await in.next();
    EXPECT_TRUE(r.has_value());
    if (r) {
      EXPECT_EQ(r->body, "done");
    }
  });
}

weft::async_generator<std::string> endless() {
  const std::string block(64 * 1024, 'x');
  for (;;) co_yield block;
}

TEST_F(HttpTimeouts, AClientThatDoesNotReadItsResponseIsCutOffAtTheWriteTimeout) {
  http::handler h = [](http::request&) -> task<http::response> {
    co_return http::response::stream(endless());
  };
  run(std::move(h), {}, [](socket_address at, http::server& srv) -> task<void> {
    auto c = co_await tcp_stream::connect(at);
    co_await c.write_all(bytes_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    const auto start = weft::clock::now();
    // Not reading: the socket buffers fill and the server's write waits. Paused time jumps to
    // the write deadline once nothing else can run.
    while (srv.stats().timeouts.load() == 0) co_await weft::sleep_for(1s);
    EXPECT_GE(ms_since(start), 30'000);
    EXPECT_LE(ms_since(start), 31'000);
    http_reader in{c};
    (void)co_await in.at_end();  // what was sent, then the end
  });
}

}  // namespace
