// Sockets on an external-loop runtime (runtime_options::external_loop): cancellations and closes
// from the loop thread between run_ready calls, and sockets that outlive their runtime while the
// same thread drives the next one.
#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <poll.h>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

#include "support/external_loop.hpp"
#include "support/io_uring.hpp"

namespace {

using weft::net::socket_address;
using weft::net::tcp_listener;
using weft::net::tcp_stream;

using weft::testing::drive_until;
using weft::testing::readable;

weft::runtime_options external() {
  return weft::testing::external_loop();
}

std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span{s});
}

struct pair {
  tcp_stream client;
  tcp_stream server;
};

weft::task<pair> connect_pair(tcp_listener& l) {
  auto client = co_await tcp_stream::connect(l.local_address());
  auto accepted = co_await l.accept();
  co_return pair{std::move(client), std::move(accepted.stream)};
}

class ExternalLoopSockets : public weft::testing::needs_io_uring_no_fd_leaks {};

TEST_F(ExternalLoopSockets, AReadCancelledFromTheLoopThreadBetweenCallsWakesTheLoop) {
  weft::runtime rt{external()};
  auto listener = tcp_listener::bind(socket_address::parse("127.0.0.1:0"));
  std::optional<pair> conn;
  rt.spawn(connect_pair(listener),
           [&](weft::outcome<pair> r) { conn.emplace(std::move(r).value()); })
      .detach();
  drive_until(rt, [&] { return conn.has_value(); });
  bool cancelled = false;
  auto reader = rt.spawn(
      [](tcp_stream& s) -> weft::task<void> {
        std::array<std::byte, 16> buf{};
        (void)co_await s.read_some(buf);  // nothing comes: waits in the multishot receive
      }(conn->server),
      [&](weft::outcome<void> r) {
        try {
          r.value();
        } catch (const weft::operation_cancelled&) {
          cancelled = true;
        }
      });
  rt.run_ready();  // the read is armed and waits
  reader.cancel();  // on the loop thread, outside run_ready: a foreign cancellation
  // A host waits before it calls run_ready again: the cancellation alone must wake it.
  EXPECT_TRUE(readable(rt, 10'000));
  drive_until(rt, [&] { return cancelled; });
  // The socket is still usable: what arrives now is read.
  std::string got;
  rt.spawn(
        [](pair& p) -> weft::task<std::string> {
          co_await p.client.write_all(bytes_of("late"));
          std::array<std::byte, 4> buf{};
          const std::size_t n = co_await p.server.read_exact(buf);
          co_return std::string(reinterpret_cast<const char*>(buf.data()), n);
        }(*conn),
        [&](weft::outcome<std::string> r) { got = r.value(); })
      .detach();
  drive_until(rt, [&] { return !got.empty(); });
  EXPECT_EQ(got, "late");
  // Closed from the loop thread between calls: the close is posted and the peer sees the end.
  conn->server.close();
  EXPECT_TRUE(readable(rt, 10'000));  // the close is posted to the worker, which must run it
  std::optional<std::size_t> end;
  rt.spawn(
        [](tcp_stream& c) -> weft::task<std::size_t> {
          std::array<std::byte, 4> buf{};
          co_return co_await c.read_some(buf);
        }(conn->client),
        [&](weft::outcome<std::size_t> r) { end = r.value(); })
      .detach();
  drive_until(rt, [&] { return end.has_value(); });
  EXPECT_EQ(*end, 0u);
}

TEST_F(ExternalLoopSockets, SocketsOutliveTheirRuntimeWhileTheThreadDrivesTheNext) {
  auto listener = tcp_listener::bind(socket_address::parse("127.0.0.1:0"));
  std::optional<pair> old_conn;
  {
    weft::runtime first{external()};
    std::string got;
    first
        .spawn(
            [](tcp_listener& l, std::optional<pair>& out) -> weft::task<std::string> {
              out.emplace(co_await connect_pair(l));
              co_await out->client.write_all(bytes_of("one"));
              std::array<std::byte, 3> buf{};
              (void)co_await out->server.read_exact(buf);
              co_await out->client.write_all(bytes_of("unread"));  // left in the multishot
              co_return std::string(reinterpret_cast<const char*>(buf.data()), buf.size());
            }(listener, old_conn),
            [&](weft::outcome<std::string> r) { got = r.value(); })
        .detach();
    drive_until(first, [&] { return !got.empty(); });
    EXPECT_EQ(got, "one");
  }
  // A second runtime on the same thread: new sockets work, and the old ones close cleanly (their
  // multishot's worker is gone; nothing may touch it).
  weft::runtime second{external()};
  auto listener2 = tcp_listener::bind(socket_address::parse("127.0.0.1:0"));
  std::string got;
  second
      .spawn(
          [](tcp_listener& l) -> weft::task<std::string> {
            auto p = co_await connect_pair(l);
            co_await p.client.write_all(bytes_of("two"));
            std::array<std::byte, 3> buf{};
            (void)co_await p.server.read_exact(buf);
            co_return std::string(reinterpret_cast<const char*>(buf.data()), buf.size());
          }(listener2),
          [&](weft::outcome<std::string> r) { got = r.value(); })
      .detach();
  drive_until(second, [&] { return !got.empty(); });
  EXPECT_EQ(got, "two");
  old_conn->server.close();
  old_conn->client.close();
  listener.close();
}

TEST_F(ExternalLoopSockets, TwoExternalRuntimesOnOneThreadEachServeTheirOwnSockets) {
  weft::runtime a{external()};
  weft::runtime b{external()};
  auto la = tcp_listener::bind(socket_address::parse("127.0.0.1:0"));
  auto lb = tcp_listener::bind(socket_address::parse("127.0.0.1:0"));
  auto echo_once = [](tcp_listener& l, std::string text) -> weft::task<std::string> {
    auto p = co_await connect_pair(l);
    co_await p.client.write_all(bytes_of(text));
    std::string back(text.size(), '\0');
    (void)co_await p.server.read_exact(std::as_writable_bytes(std::span{back}));
    co_return back;
  };
  std::string ga, gb;
  a.spawn(weft::co_invoke(echo_once, std::ref(la), std::string{"alpha"}),
          [&](weft::outcome<std::string> r) { ga = r.value(); })
      .detach();
  b.spawn(weft::co_invoke(echo_once, std::ref(lb), std::string{"beta"}),
          [&](weft::outcome<std::string> r) { gb = r.value(); })
      .detach();
  for (int i = 0; i < 100'000 && (ga.empty() || gb.empty()); ++i) {
    a.run_ready();
    b.run_ready();
    pollfd p[2] = {{a.event_fd(), POLLIN, 0}, {b.event_fd(), POLLIN, 0}};
    ::poll(p, 2, 10);
  }
  EXPECT_EQ(ga, "alpha");
  EXPECT_EQ(gb, "beta");
}

}  // namespace
