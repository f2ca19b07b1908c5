// weft::net::serve's failures: a handler's exception reaches server_options::on_handler_error
// with its connection (by default a rate-limited line on stderr, so a client cannot flood the
// log), and an accept that fails for its connection only (ECONNABORTED, EPROTO, EPERM, the
// network errors of accept(2)) is skipped without ending the server, while a listener's own error
// still ends it. Every test over sockets checks that it leaves no descriptor open.
#include <weft/net/server.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "../support/fd_leak.hpp"
#include "../support/io_uring.hpp"
#include "../support/paused_time.hpp"

#include <weft/cancel/cancel_token.hpp>
#include <weft/join_handle.hpp>
#include <weft/net/socket_address.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>
#include <weft/time/timeout.hpp>
#include <weft/yield.hpp>

namespace {

using namespace std::chrono_literals;
using weft::net::connection_info;
using weft::net::handler_error_function;
using weft::net::handler_error_log;
using weft::net::server_options;
using weft::net::server_stats;
using weft::net::socket_address;
using weft::net::tcp_accepted;
using weft::net::tcp_listener;
using weft::net::tcp_stream;

socket_address loopback_v4() {
  return socket_address::parse("127.0.0.1:0");
}

std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  }
}

/// Waits (yielding) until `done` holds; false if it never did within a bounded number of turns.
/// (Pass a named lambda: g++ 12 destroys a lambda temporary of a co_await expression twice.)
template <class F>
weft::task<bool> until(F done) {
  for (long i = 0; i < 5'000'000; ++i) {
    if (done()) co_return true;
    co_await weft::yield();
  }
  co_return done();
}

/// A handler that fails at once.
weft::task<void> fail_at_once(tcp_accepted c) {
  c.stream.close();
  throw std::runtime_error("boom");
  co_return;
}

/// Reads one byte and answers "ok".
weft::task<void> answer(tcp_accepted c) {
  std::array<std::byte, 1> b{};
  const std::size_t n = co_await c.stream.read_some(b);
  if (n == 1) {
    const std::string_view ok = "ok";
    co_await c.stream.write_all(std::as_bytes(std::span{ok.data(), ok.size()}));
  }
}

/// A listener whose accept() first fails with each of `errors` in turn, then accepts for real.
struct flaky_listener {
  tcp_listener* real;
  std::vector<int> errors;
  std::size_t next = 0;

  weft::task<tcp_accepted> accept() {
    if (next < errors.size()) {
      throw std::system_error(errors[next++], std::system_category(),
                              "weft::net::tcp_listener::accept (injected)");
    }
    co_return co_await real->accept();
  }
};

class ServeErrors : public weft::testing::needs_io_uring_no_fd_leaks {
 protected:
  weft::runtime rt_{weft::runtime_options{.workers = 2}};
};

// --- handler failures -------------------------------------------------------------------------

TEST_F(ServeErrors, AFailingHandlerIsReportedWithItsConnection) {
  struct report {
    std::string what;
    connection_info connection;
  };
  std::vector<report> reports;  // written by the hook, read after serve() returned
  std::atomic<int> calls{0};
  server_stats stats;
  std::string client_address;
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    weft::cancel_source stop;
    handler_error_function hook{[&](const std::exception_ptr& e, const connection_info& c) {
      reports.push_back({message_of(e), c});
      calls.fetch_add(1);
    }};
    server_options options;
    options.on_handler_error = &hook;
    auto server = weft::spawn(
        weft::net::serve(listener, &fail_at_once, stop.token(), std::move(options), &stats));
    auto client = co_await tcp_stream::connect(listener.local_address());
    client_address = client.local_address().to_string();
    auto reported = [&] { return calls.load() == 1; };
    const bool done = co_await until(reported);
    EXPECT_TRUE(done);
    stop.request_cancellation();
    co_await std::move(server);
  });
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].what, "boom");
  EXPECT_EQ(reports[0].connection.number, 1u);
  EXPECT_EQ(reports[0].connection.peer, client_address);
  EXPECT_EQ(stats.failed.load(), 1u);
}

TEST_F(ServeErrors, ByDefaultAFailingHandlerLeavesALineOnStderr) {
  server_stats stats;
  std::string client_address;
  ::testing::internal::CaptureStderr();
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    weft::cancel_source stop;
    auto server = weft::spawn(
        weft::net::serve(listener, &fail_at_once, stop.token(), server_options{}, &stats));
    auto client = co_await tcp_stream::connect(listener.local_address());
    client_address = client.local_address().to_string();
    auto reported = [&] { return stats.failed.load() == 1; };
    const bool done = co_await until(reported);
    EXPECT_TRUE(done);
    stop.request_cancellation();
    co_await std::move(server);
  });
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("weft::net::serve"), std::string::npos) << err;
  EXPECT_NE(err.find("boom"), std::string::npos) << err;
  EXPECT_NE(err.find("connection 1 (" + client_address + ")"), std::string::npos) << err;
}

TEST_F(ServeErrors, AFloodOfFailingConnectionsWritesAtMostALinePerInterval) {
  constexpr int n = 30;
  server_stats stats;
  ::testing::internal::CaptureStderr();
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    weft::cancel_source stop;
    handler_error_log log{stderr, 1h};  // the whole test in one interval
    server_options options;
    options.on_handler_error = &log;
    auto server = weft::spawn(
        weft::net::serve(listener, &fail_at_once, stop.token(), std::move(options), &stats));
    for (int i = 0; i < n; ++i) (void)co_await tcp_stream::connect(listener.local_address());
    auto reported = [&] { return stats.failed.load() == n; };
    const bool done = co_await until(reported);
    EXPECT_TRUE(done);
    stop.request_cancellation();
    co_await std::move(server);
  });
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

TEST_F(ServeErrors, AHookThatThrowsIsDroppedAndTheServerGoesOn) {
  server_stats stats;
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    weft::cancel_source stop;
    handler_error_function hook{[](const std::exception_ptr&, const connection_info&) {
      throw std::logic_error("the hook failed too");
    }};
    server_options options;
    options.on_handler_error = &hook;
    auto server = weft::spawn(
        weft::net::serve(listener, &fail_at_once, stop.token(), std::move(options), &stats));
    (void)co_await tcp_stream::connect(listener.local_address());
    (void)co_await tcp_stream::connect(listener.local_address());
    auto reported = [&] { return stats.failed.load() == 2; };
    const bool done = co_await until(reported);
    EXPECT_TRUE(done);
    stop.request_cancellation();
    co_await std::move(server);
  });
  EXPECT_EQ(stats.accepted.load(), 2u);
}

TEST(HandlerErrorLog, WritesOneLinePerIntervalAndCountsTheRest) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  weft::runtime rt{weft::testing::paused()};
  rt.block_on([&]() -> weft::task<void> {
    handler_error_log log{out, 1s};
    const auto boom = std::make_exception_ptr(std::runtime_error("boom"));
    for (std::uint64_t i = 1; i <= 100; ++i) log.report(boom, {i, "10.0.0.1:5"});  // t = 0: 1 line
    co_await weft::sleep_for(500ms);
    for (std::uint64_t i = 101; i <= 150; ++i) log.report(boom, {i, "10.0.0.1:5"});  // none
    co_await weft::sleep_for(500ms);
    log.report(boom, {151, "10.0.0.2:6"});  // t = 1 s: a line, with the 149 left out
    log.report(boom, {152, "10.0.0.2:6"});
    log.report(std::make_exception_ptr(42), {153, "10.0.0.3:7"});
    co_await weft::sleep_for(1s);
    log.report(std::make_exception_ptr(42), {154, "10.0.0.3:7"});  // t = 2 s
  });
  std::rewind(out);
  std::vector<std::string> lines;
  std::array<char, 512> buf{};
  while (std::fgets(buf.data(), static_cast<int>(buf.size()), out) != nullptr)
    lines.emplace_back(buf.data());
  std::fclose(out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find("connection 1 (10.0.0.1:5) failed: boom"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("more handler failure"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("connection 151 (10.0.0.2:6) failed: boom"), std::string::npos)
      << lines[1];
  EXPECT_NE(lines[1].find("[149 more handler failures"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("connection 154 (10.0.0.3:7) failed: an exception not derived"),
            std::string::npos)
      << lines[2];
  EXPECT_NE(lines[2].find("[2 more handler failures"), std::string::npos) << lines[2];
}

TEST(HandlerErrorLog, IsTheDefaultHook) {
  EXPECT_EQ(server_options{}.on_handler_error, &handler_error_log::standard());
}

// --- accept errors ----------------------------------------------------------------------------

TEST_F(ServeErrors, AnAcceptErrorAboutOneConnectionDoesNotEndTheServer) {
  const std::vector<int> per_connection = {ECONNABORTED, ECONNRESET,  EPERM,      ENETDOWN,
                                           EPROTO,       ENOPROTOOPT, EHOSTDOWN,  ENONET,
                                           EHOSTUNREACH, EOPNOTSUPP,  ENETUNREACH};
  server_stats stats;
  std::string reply;
  rt_.block_on([&]() -> weft::task<void> {
    auto real = tcp_listener::bind(loopback_v4());
    flaky_listener listener{&real, per_connection};
    weft::cancel_source stop;
    auto server =
        weft::spawn(weft::net::serve(listener, &answer, stop.token(), server_options{}, &stats));
    auto client = co_await tcp_stream::connect(real.local_address());
    const std::string_view q = "?";
    co_await client.write_all(std::as_bytes(std::span{q.data(), q.size()}));
    std::array<std::byte, 2> b{};
    const std::size_t n = co_await weft::timeout(10s, client.read_exact(b));
    reply.assign(reinterpret_cast<const char*>(b.data()), n);
    stop.request_cancellation();
    co_await std::move(server);  // returns normally: no accept error was the listener's
  });
  EXPECT_EQ(reply, "ok");
  EXPECT_EQ(stats.accept_errors.load(), per_connection.size());
  EXPECT_EQ(stats.accepted.load(), 1u);
}

TEST_F(ServeErrors, AnErrorOfTheListenerItselfStillEndsTheServer) {
  server_stats stats;
  rt_.block_on([&]() -> weft::task<void> {
    auto real = tcp_listener::bind(loopback_v4());
    flaky_listener listener{&real, {EBADF}};
    weft::cancel_source stop;
    try {
      auto t = weft::net::serve(listener, &answer, stop.token(), server_options{}, &stats);
      co_await std::move(t);
      ADD_FAILURE() << "serve() returned";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
    }
  });
  EXPECT_EQ(stats.accept_errors.load(), 0u);
}

/// Fails every accept with EPROTO; after `limit` of them, with EBADF, which ends the server (so
/// a server that spins on it cannot hang the test).
struct always_failing_listener {
  long attempts = 0;
  long limit;
  weft::task<tcp_accepted> accept() {
    ++attempts;
    throw std::system_error(attempts > limit ? EBADF : EPROTO, std::system_category(),
                            "weft::net::tcp_listener::accept (injected)");
    co_return tcp_accepted{};
  }
};

TEST(ServeAcceptErrors, AListenerThatKeepsFailingForEachConnectionPausesInsteadOfSpinning) {
  // Paused time: a server that never suspends would never let the clock reach the stop.
  weft::runtime rt{weft::testing::paused()};
  always_failing_listener listener{.limit = 1'000'000};
  server_stats stats;
  rt.block_on([&]() -> weft::task<void> {
    weft::cancel_source stop;
    auto stopper = weft::spawn([&]() -> weft::task<void> {
      co_await weft::sleep_for(1s);
      stop.request_cancellation();
    });
    auto t = weft::net::serve(listener, &answer, stop.token(),
                              server_options{.overload_pause = 10ms}, &stats);
    co_await std::move(t);
    co_await std::move(stopper);
  });
  // 64 failures, then a 10 ms pause: about 100 rounds in the second before the stop.
  EXPECT_LE(listener.attempts, 64 * 102);
  EXPECT_GE(listener.attempts, 64 * 99);
  EXPECT_EQ(stats.accept_errors.load(), static_cast<std::uint64_t>(listener.attempts));
}

}  // namespace
