// Cancellation at every suspension point of socket code (see tests/support/cancel_sweep.hpp): a
// TCP echo exchange over loopback (accept, connect, write_all, read_exact, half-close, close) and
// net::serve with three clients, cancelled from the root, and serve stopped gracefully at each
// point. Whatever point is hit, no descriptor stays open and no task is left. I/O completions
// come at the kernel's pace, so these sweeps do not require the same order on every run: the
// invariants are checked at whichever point the cancellation lands.
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/socket.h>

#include <gtest/gtest.h>

#include "support/cancel_sweep.hpp"
#include "support/io_uring.hpp"

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/net/server.hpp>
#include <weft/net/socket_address.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/task.hpp>
#include <weft/yield.hpp>

namespace {

using namespace std::chrono_literals;
using weft::net::server_stats;
using weft::net::socket_address;
using weft::net::tcp_accepted;
using weft::net::tcp_listener;
using weft::net::tcp_stream;
using weft::testing::cancel_sweep;
using weft::testing::cancel_via;
using weft::testing::sweep_ending;
using weft::testing::sweep_options;

class NetCancelSweep : public weft::testing::needs_io_uring {};

std::vector<std::byte> pattern(std::size_t n, std::uint32_t seed) {
  std::vector<std::byte> v(n);
  std::uint32_t x = seed * 2654435761u + 12345u;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<std::byte>(x >> 24);
  }
  return v;
}

sweep_options socket_sweep(cancel_via via) {
  sweep_options o;
  o.io_uring = true;
  o.deterministic = false;
  o.via = via;
  return o;
}

/// What the clients of one run saw.
struct client_log {
  int round_trips = 0;
  int dropped = 0;         // connections the server closed or refused before the exchange ended
  bool corrupted = false;  // an echo that differed from what was sent
};

/// Echoes until the peer half-closes, then closes.
weft::task<std::size_t> echo(tcp_stream s) {
  std::array<std::byte, 256> buf{};
  std::size_t total = 0;
  for (;;) {
    const std::size_t n = co_await s.read_some(buf);
    if (n == 0) break;
    co_await s.write_all(std::span<const std::byte>(buf.data(), n));
    total += n;
  }
  s.close();
  co_return total;
}

/// Connects, sends `rounds` messages of 48 bytes and reads each echo back exactly, half-closes
/// and reads the server's end of stream. A reset, a refused connection or an early end of stream
/// (a server stopped meanwhile) counts as dropped; cancellation goes on.
weft::task<std::size_t> client(client_log& log, socket_address server, int id, int rounds) {
  try {
    auto conn = co_await tcp_stream::connect(server);
    std::size_t sent = 0;
    for (int r = 0; r < rounds; ++r) {
      const auto msg = pattern(48, static_cast<std::uint32_t>(id * 100 + r));
      co_await conn.write_all(msg);
      std::vector<std::byte> back(msg.size());
      const std::size_t got = co_await conn.read_exact(back);
      if (got != back.size()) {
        ++log.dropped;
        co_return sent;
      }
      if (back != msg) log.corrupted = true;
      ++log.round_trips;
      sent += got;
    }
    conn.shutdown(SHUT_WR);
    std::array<std::byte, 16> rest{};
    if (co_await conn.read_some(rest) != 0) log.corrupted = true;
    conn.close();
    co_return sent;
  } catch (const std::system_error& e) {
    const int code = e.code().value();
    if (code != ECONNRESET && code != EPIPE && code != ECONNREFUSED) throw;
    ++log.dropped;
    co_return 0;
  }
}

// --- a plain echo exchange --------------------------------------------------------------------

struct echo_state {
  tcp_listener listener = tcp_listener::bind(socket_address::parse("127.0.0.1:0"));
  client_log log;
};

weft::task<std::size_t> serve_three(echo_state& s) {
  auto a = co_await s.listener.accept();
  auto b = co_await s.listener.accept();
  auto c = co_await s.listener.accept();
  auto [x, y, z] = co_await weft::when_all(echo(std::move(a.stream)), echo(std::move(b.stream)),
                                           echo(std::move(c.stream)));
  co_return x + y + z;
}

TEST_F(NetCancelSweep, TcpEcho) {
  auto scenario = [](echo_state& s) -> weft::task<std::size_t> {
    const auto addr = s.listener.local_address();
    auto [served, first, second, third] =
        co_await weft::when_all(serve_three(s), client(s.log, addr, 1, 6),
                                client(s.log, addr, 2, 5), client(s.log, addr, 3, 4));
    co_return served == first + second + third ? served : 0;
  };
  auto checker = [](echo_state& s, const sweep_ending<std::size_t>& e) {
    EXPECT_FALSE(s.log.corrupted);
    if (e.error) {
      EXPECT_TRUE(e.cancel_requested) << "a reset without a cancellation";
    }
    if (e.has_value()) {
      EXPECT_EQ(*e.value, 15u * 48u);
      EXPECT_EQ(s.log.round_trips, 15);
      EXPECT_EQ(s.log.dropped, 0);
    }
  };
  for (auto via : {cancel_via::join_handle, cancel_via::source}) {
    auto o = socket_sweep(via);
    // A cancelled client closes with an echo unread, which resets the connection: its server side
    // may see the reset before its own cancellation, and when_all then rethrows that failure.
    o.accept_error = [](const std::exception_ptr& error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::system_error& e) {
        return e.code().value() == ECONNRESET || e.code().value() == EPIPE;
      } catch (...) {
        return false;
      }
    };
    cancel_sweep<echo_state>(via == cancel_via::source ? "tcp_echo/source" : "tcp_echo/handle",
                             scenario, checker, o);
  }
}

// --- net::serve -------------------------------------------------------------------------------

struct serve_state {
  tcp_listener listener = tcp_listener::bind(socket_address::parse("127.0.0.1:0"));
  weft::cancel_source stop;
  server_stats stats;
  client_log log;
};

weft::task<void> run_server(serve_state& s) {
  auto handler = [](tcp_accepted c) -> weft::task<void> {
    (void)co_await echo(std::move(c.stream));
  };
  // Named: g++ 12 and a lambda beside co_await (README Hazards).
  auto served = weft::net::serve(s.listener, handler, s.stop.token(), {.grace = 20ms}, &s.stats);
  co_await std::move(served);
  // Connections that reached the backlog after the stop are closed with the listener, so their
  // clients see the end instead of waiting for an accept that will not come.
  s.listener.close();
}

weft::task<void> clients_then_stop(serve_state& s) {
  const auto addr = s.listener.local_address();
  (void)co_await weft::when_all(client(s.log, addr, 1, 5), client(s.log, addr, 2, 4),
                                client(s.log, addr, 3, 3));
  s.stop.request_cancellation();
}

auto serve_scenario = [](serve_state& s) -> weft::task<int> {
  co_await weft::when_all(run_server(s), clients_then_stop(s));
  co_return s.log.round_trips;
};

/// `root_cancelled`: the sweep cancelled serve's caller, and with it the clients, whose sockets
/// may then close under a handler's read or write: a handler failing with a reset is counted
/// in stats.failed, as documented, so only the other runs must have none.
void check_serve(serve_state& s, bool stopped_early, bool root_cancelled,
                 const sweep_ending<int>& e, bool check_active = true) {
  EXPECT_FALSE(s.log.corrupted);
  if (check_active) {
    EXPECT_EQ(s.stats.active.load(), 0u) << "a connection handler was still counted active";
  }
  if (!root_cancelled) {
    EXPECT_EQ(s.stats.failed.load(), 0u);
  }
  EXPECT_LE(s.stats.accepted.load(), 3u);
  if (e.has_value() && !stopped_early) {
    EXPECT_EQ(*e.value, 12);
    EXPECT_EQ(s.stats.accepted.load(), 3u);
    EXPECT_EQ(s.log.dropped, 0);
  }
}

TEST_F(NetCancelSweep, ServeCancelled) {
  // Cancelling the task that awaits serve cancels every connection at once. server_stats::active
  // is left out here: ServeCancelledKeepsTheActiveCount below sweeps it (it found a connection
  // cancelled before its task first ran staying counted as active).
  auto checker = [](serve_state& s, const sweep_ending<int>& e) {
    check_serve(s, e.cancel_requested, e.cancel_requested, e, /*check_active=*/false);
  };
  for (auto via : {cancel_via::join_handle, cancel_via::source}) {
    cancel_sweep<serve_state>(via == cancel_via::source ? "serve/source" : "serve/handle",
                              serve_scenario, checker, socket_sweep(via));
  }
}

TEST_F(NetCancelSweep, ServeCancelledKeepsTheActiveCount) {
  auto checker = [](serve_state& s, const sweep_ending<int>& e) {
    check_serve(s, e.cancel_requested, e.cancel_requested, e);
  };
  for (auto via : {cancel_via::join_handle, cancel_via::source}) {
    cancel_sweep<serve_state>(
        via == cancel_via::source ? "serve_active/source" : "serve_active/handle", serve_scenario,
        checker, socket_sweep(via));
  }
}

/// A listener whose first accept hands over a connection and, in the same step, has serve's
/// caller cancelled: the window a cancellation from another worker can hit between an accept
/// and the connection task's first run, made deterministic. Later accepts wait (and so throw).
struct fake_accepted {
  struct {
    [[nodiscard]] std::string peer_name() const { return "fake"; }
  } stream;  // what serve reads of a connection, as of tcp_accepted
};

struct cancelling_listener {
  weft::cancel_source* caller = nullptr;
  int accepts = 0;
  weft::task<fake_accepted> accept() {
    if (accepts++ == 0) {
      caller->request_cancellation();
      co_return fake_accepted{};
    }
    co_await weft::yield();
    co_return fake_accepted{};
  }
};

TEST(NetServeStats, ActiveCountSurvivesACancelBeforeTheConnectionRuns) {
  weft::runtime rt{weft::testing::paused()};
  weft::cancel_source caller;
  weft::cancel_source stop;
  cancelling_listener listener{&caller};
  server_stats stats;
  int handled = 0;
  auto handler = [&handled](fake_accepted) -> weft::task<void> {
    ++handled;
    co_return;
  };
  EXPECT_THROW(rt.block_on(weft::with_cancellation(
                   caller.token(), weft::net::serve(listener, handler, stop.token(), {}, &stats))),
               weft::operation_cancelled);
  EXPECT_EQ(stats.accepted.load(), 1u);
  EXPECT_EQ(handled, 0) << "the connection task was expected to be cancelled before it ran";
  EXPECT_EQ(stats.active.load(), 0u) << "a connection that never ran is still counted active";
  EXPECT_EQ(stats.cancelled.load(), 1u) << "a connection that never ran counts as cancelled";
}

TEST_F(NetCancelSweep, ServeStoppedGracefully) {
  // The stop token instead of the root: serve stops accepting, lets live connections finish
  // within the grace, cancels the rest. The run itself must then end normally.
  auto checker = [](serve_state& s, const sweep_ending<int>& e) {
    EXPECT_TRUE(e.has_value()) << "a graceful stop ended the run "
                               << (e.cancelled ? "cancelled" : "with an error");
    check_serve(s, e.cancel_requested, /*root_cancelled=*/false, e);
  };
  cancel_sweep<serve_state>("serve_graceful", serve_scenario, checker,
                            socket_sweep(cancel_via::join_handle),
                            [](serve_state& s) { s.stop.request_cancellation(); });
}

}  // namespace
