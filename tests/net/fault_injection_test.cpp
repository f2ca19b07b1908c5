// The reactor's fault injection, and weft's sockets and serve() under it: every injected error is
// retried where the API promises it (EINTR, EAGAIN, short transfers) or surfaces as a
// std::system_error naming the errno and the address; the bytes a reader gets are exactly the
// bytes sent, in order, or the stream ends early; nothing hangs (each scenario is bounded) and
// descriptors and live tasks come back to where they started. Many seeds, one and two workers.
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "../support/fd_leak.hpp"
#include "../support/io_uring.hpp"

#include <weft/cancel/cancel_token.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/io/io_operation.hpp>
#include <weft/net/server.hpp>
#include <weft/net/socket_address.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/testing/fault_plan.hpp>
#include <weft/time/timeout.hpp>

namespace {

using namespace std::chrono_literals;
using weft::fault_plan;
using weft::testing::open_fd_count;
namespace net = weft::net;

// --- what every schedule injected, for the summary the suite prints ---------------------------

struct fault_totals {
  std::atomic<std::uint64_t> schedules{0}, errors{0}, shorts{0}, delays{0}, enters{0};
};
fault_totals totals;

struct injected {
  std::uint64_t errors = 0, shorts = 0, delays = 0, enters = 0;
};

injected injected_by(const weft::runtime& rt) {
  injected i;
  for (const auto& w : rt.stats().workers) {
    i.errors += w.injected_errors;
    i.shorts += w.injected_short_transfers;
    i.delays += w.injected_delays;
    i.enters += w.injected_enter_failures;
  }
  totals.schedules += 1;
  totals.errors += i.errors;
  totals.shorts += i.shorts;
  totals.delays += i.delays;
  totals.enters += i.enters;
  return i;
}

class print_totals : public ::testing::Environment {
 public:
  void TearDown() override {
    std::printf(
        "fault injection: %llu schedules; injected %llu errors, %llu short transfers, "
        "%llu delayed completions, %llu refused enters\n",
        static_cast<unsigned long long>(totals.schedules.load()),
        static_cast<unsigned long long>(totals.errors.load()),
        static_cast<unsigned long long>(totals.shorts.load()),
        static_cast<unsigned long long>(totals.delays.load()),
        static_cast<unsigned long long>(totals.enters.load()));
  }
};
const auto* const printer = ::testing::AddGlobalTestEnvironment(new print_totals);

// --- fault_plan's text form --------------------------------------------------------------------

TEST(FaultPlan, ParsesEveryKeyAndRoundTrips) {
  const auto plan = fault_plan::parse(
      "seed=42 error=ECONNRESET:0.25:recv,send;error=EMFILE:0.5:accept error=104:0.125 "
      "short=0.3:send delay=0.1:7 enter=0.02");
  EXPECT_EQ(plan.seed, 42u);
  ASSERT_EQ(plan.errors.size(), 3u);
  EXPECT_EQ(plan.errors[0].error, ECONNRESET);
  EXPECT_EQ(plan.errors[0].rate, 0.25);
  EXPECT_EQ(plan.errors[0].kinds, weft::io_kinds::recv | weft::io_kinds::send);
  EXPECT_EQ(plan.errors[1].error, EMFILE);
  EXPECT_EQ(plan.errors[1].kinds, weft::io_kinds::accept);
  EXPECT_EQ(plan.errors[2].error, 104);
  EXPECT_EQ(plan.errors[2].kinds, weft::io_kinds::all);
  EXPECT_EQ(plan.short_rate, 0.3);
  EXPECT_EQ(plan.short_kinds, weft::io_kinds::send);
  EXPECT_EQ(plan.delay_rate, 0.1);
  EXPECT_EQ(plan.max_delay, 7u);
  EXPECT_EQ(plan.enter_failure_rate, 0.02);
  EXPECT_FALSE(plan.empty());
  EXPECT_EQ(fault_plan::parse(plan.to_string()).to_string(), plan.to_string());
  EXPECT_TRUE(fault_plan{}.empty());
  EXPECT_TRUE(fault_plan::parse("seed=3").empty());
  EXPECT_EQ(weft::errno_name(EPIPE), "EPIPE");
}

TEST(FaultPlan, RejectsWhatItDoesNotUnderstandNamingTheWord) {
  for (const char* bad : {"error=ECONNRESET", "error=ENOPE:0.1", "error=EPIPE:1.5",
                          "error=EPIPE:0.1:sockets", "short=-0.1", "delay=0.5:0", "enter",
                          "speed=3", "seed=x", "error=EPIPE:0.1:recv:more", "enter=1"}) {
    try {
      (void)fault_plan::parse(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string{e.what()}.find("weft::fault_plan"), std::string::npos) << e.what();
    }
  }
}

TEST(FaultPlan, ARuntimeRefusesAPlanThatCannotWork) {
  weft::fault_plan no_delay;
  no_delay.delay_rate = 0.5;
  no_delay.max_delay = 0;
  weft::fault_plan no_errno;
  no_errno.errors.push_back({.error = 0, .rate = 0.5});
  weft::fault_plan never_submits;
  never_submits.enter_failure_rate = 1;
  for (const auto& plan : {no_delay, no_errno, never_submits}) {
    EXPECT_THROW(weft::runtime({.workers = 1, .faults = plan}), std::invalid_argument)
        << plan.to_string();
  }
}

// --- the injector on plain operations (a pipe: no network in the way) --------------------------

class FaultInjection : public weft::testing::needs_io_uring {};

struct pipe_fds {
  int r = -1, w = -1;
  pipe_fds() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
      throw std::system_error(errno, std::generic_category());
    r = fds[0];
    w = fds[1];
  }
  ~pipe_fds() {
    ::close(r);
    ::close(w);
  }
  pipe_fds(const pipe_fds&) = delete;
  pipe_fds& operator=(const pipe_fds&) = delete;
};

weft::task<int> write_pipe(int fd, std::span<const char> data) {
  const auto r = co_await weft::submit_io([fd, data](io_uring_sqe* sqe) {
    io_uring_prep_write(sqe, fd, data.data(), static_cast<unsigned>(data.size()), 0);
  });
  co_return r.res;
}

TEST_F(FaultInjection, AnInjectedErrorIsNeverPerformed) {
  weft::runtime rt{{.workers = 1, .faults = fault_plan::parse("error=EPIPE:1:write")}};
  pipe_fds p;
  const std::string data(100, 'x');
  EXPECT_EQ(rt.block_on(write_pipe(p.w, data)), -EPIPE);
  char buf[128];
  EXPECT_EQ(::read(p.r, buf, sizeof buf), -1);  // nothing was written
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(injected_by(rt).errors, 1u);
}

TEST_F(FaultInjection, AShortTransferMovesExactlyWhatItReports) {
  weft::runtime rt{{.workers = 1, .faults = fault_plan::parse("seed=9 short=1")}};
  pipe_fds p;
  std::string data(1000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  for (int round = 0; round < 50; ++round) {
    const int n = rt.block_on(write_pipe(p.w, data));
    ASSERT_GE(n, 1);
    ASSERT_LT(n, 1000);
    char buf[1000];
    ASSERT_EQ(::read(p.r, buf, sizeof buf), n);
    EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)),
              data.substr(0, static_cast<std::size_t>(n)));
  }
  EXPECT_EQ(injected_by(rt).shorts, 50u);
}

TEST_F(FaultInjection, DelayedCompletionsAndRefusedEntersStillComplete) {
  weft::runtime rt{{.workers = 1, .faults = fault_plan::parse("seed=5 delay=0.5:6 enter=0.5")}};
  pipe_fds p;
  const std::string data = "ping";
  const int total = rt.block_on([&]() -> weft::task<int> {
    int sum = 0;
    std::vector<weft::task<int>> writes;
    for (int i = 0; i < 200; ++i) writes.push_back(write_pipe(p.w, data));
    for (int n : co_await weft::when_all(std::move(writes))) sum += n;
    co_return sum;
  });
  EXPECT_EQ(total, 800);
  const auto i = injected_by(rt);
  EXPECT_GT(i.delays, 0u);
  EXPECT_GT(i.enters, 0u);
}

TEST_F(FaultInjection, EightByteCountersAreNeverCutShort) {
  // An eventfd (a signal_set's, a wake-up's) reads and writes whole counters: a short read of
  // one fails with EINVAL instead of being a partial transfer, so it must never be cut.
  weft::runtime rt{{.workers = 1, .faults = fault_plan::parse("short=1")}};
  const int fd = ::eventfd(5, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(fd, 0);
  std::uint64_t value = 0;
  const int n = rt.block_on(weft::co_invoke([&]() -> weft::task<int> {
    const auto r = co_await weft::submit_io(
        [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, &value, sizeof value, 0); });
    co_return r.res;
  }));
  ::close(fd);
  EXPECT_EQ(n, 8);
  EXPECT_EQ(value, 5u);
  EXPECT_EQ(injected_by(rt).shorts, 0u);
}

// Under paused time (one worker) the same seed gives the same faults: a failing run replays.
std::vector<int> trace_of(const std::string& spec) {
  weft::runtime rt{{.time = weft::time_mode::paused, .faults = fault_plan::parse(spec)}};
  pipe_fds p;
  std::vector<int> trace;
  const std::string data(64, 'y');
  for (int i = 0; i < 300; ++i) {
    const int n = rt.block_on(write_pipe(p.w, data));
    trace.push_back(n);
    char buf[64];
    if (n > 0) {
      EXPECT_EQ(::read(p.r, buf, sizeof buf), n);
    }
  }
  return trace;
}

TEST_F(FaultInjection, TheSameSeedGivesTheSameFaults) {
  const std::string spec = "error=EINTR:0.1 error=ENOSPC:0.1:write short=0.3 delay=0.2 enter=0.1";
  const auto a = trace_of("seed=11 " + spec);
  EXPECT_EQ(trace_of("seed=11 " + spec), a);
  EXPECT_NE(trace_of("seed=12 " + spec), a);
  std::set<int> seen(a.begin(), a.end());
  EXPECT_TRUE(seen.count(-EINTR) && seen.count(-ENOSPC) && seen.count(64));
}

TEST_F(FaultInjection, TheEnvironmentVariablePutsEveryRuntimeUnderFaults) {
  ASSERT_EQ(::setenv("WEFT_FAULTS", "error=EPIPE:1:write", 1), 0);
  {
    weft::runtime rt{{.workers = 1}};
    pipe_fds p;
    EXPECT_EQ(rt.block_on(write_pipe(p.w, "z")), -EPIPE);
  }
  ASSERT_EQ(::setenv("WEFT_FAULTS", "error=EPIPE:2", 1), 0);
  try {
    weft::runtime rt{{.workers = 1}};
    ADD_FAILURE() << "a bad WEFT_FAULTS was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string{e.what()}.find("WEFT_FAULTS"), std::string::npos) << e.what();
  }
  ::unsetenv("WEFT_FAULTS");
}

// --- echo over loopback under faults ----------------------------------------------------------

std::byte pattern(std::size_t client, std::size_t i) {
  return static_cast<std::byte>((client * 131 + i * 7 + (i >> 9)) & 0xFF);
}

weft::task<void> echo(net::tcp_accepted c) {
  std::array<std::byte, 8192> buf;
  for (;;) {
    const std::size_t n = co_await c.stream.read_some(buf);
    if (n == 0) co_return;
    co_await c.stream.write_all(std::span<const std::byte>(buf.data(), n));
  }
}

struct client_outcome {
  bool completed = false;  // every byte echoed back, in order
  bool corrupt = false;    // a byte came back that was not sent there
  bool ended_early = false;
  int error = 0;  // the errno of the system_error that ended it
  std::string what;
};

// Sends `total` bytes in chunks of varying size (every other one gathered from three buffers)
// and reads each chunk's echo back before the next.
weft::task<client_outcome> echo_client(net::socket_address server, std::size_t id,
                                       std::size_t total) {
  client_outcome out;
  try {
    auto s = co_await net::tcp_stream::connect(server);
    std::vector<std::byte> sent(total), got(total);
    for (std::size_t i = 0; i < total; ++i) sent[i] = pattern(id, i);
    std::size_t at = 0;
    for (std::size_t round = 0; at < total; ++round) {
      const std::size_t chunk = std::min(total - at, 1 + (id * 7919 + round * 104729) % 20000);
      const std::span<const std::byte> piece(sent.data() + at, chunk);
      if (round % 2 == 1 && chunk >= 3) {
        const std::array<std::span<const std::byte>, 3> parts{piece.subspan(0, chunk / 3),
                                                              piece.subspan(chunk / 3, chunk / 3),
                                                              piece.subspan(2 * (chunk / 3))};
        co_await s.write_all(std::span<const std::span<const std::byte>>(parts));
      } else {
        co_await s.write_all(piece);
      }
      const std::size_t n = co_await s.read_exact(std::span<std::byte>(got.data() + at, chunk));
      for (std::size_t i = at; i < at + n; ++i) {
        if (got[i] != sent[i]) out.corrupt = true;
      }
      if (n < chunk) {
        out.ended_early = true;
        co_return out;
      }
      at += chunk;
    }
    out.completed = true;
  } catch (const std::system_error& e) {
    out.error = e.code().value();
    out.what = e.what();
  }
  co_return out;
}

struct echo_run {
  std::vector<client_outcome> clients;
  injected faults;
  std::uint64_t handler_failures = 0;
};

echo_run run_echo(const fault_plan& plan, std::size_t workers, std::size_t clients,
                  std::size_t bytes) {
  echo_run run;
  weft::runtime rt{{.workers = workers, .faults = plan}};
  rt.block_on([&]() -> weft::task<void> {
    auto listener = net::tcp_listener::bind(net::socket_address::parse("127.0.0.1:0"));
    weft::cancel_source stop;
    net::server_stats stats;
    auto server = weft::spawn(
        net::serve(listener, &echo, stop.token(), net::server_options{.grace = 2s}, &stats));
    std::vector<weft::task<client_outcome>> tasks;
    for (std::size_t c = 0; c < clients; ++c) {
      tasks.push_back(echo_client(listener.local_address(), c, bytes));
    }
    // Bounded: a hang fails the test (timed_out) instead of stalling the suite.
    auto all = weft::when_all(std::move(tasks));
    run.clients = co_await weft::timeout(60s, std::move(all));
    stop.request_cancellation();
    co_await server;
    run.handler_failures = stats.failed.load();
  });
  EXPECT_EQ(rt.stats().live_tasks, 0u);
  run.faults = injected_by(rt);
  return run;
}

// Where a failure may come from, and what the message must name.
void expect_clean_failure(const client_outcome& c, const std::set<int>& allowed,
                          const std::string& plan) {
  EXPECT_FALSE(c.corrupt) << plan;
  if (c.error != 0) {
    EXPECT_TRUE(allowed.count(c.error)) << plan << ": unexpected " << c.what;
    EXPECT_NE(c.what.find("weft::net::tcp_stream::"), std::string::npos) << c.what;
    EXPECT_NE(c.what.find("127.0.0.1:"), std::string::npos) << "no address in: " << c.what;
  }
}

TEST_F(FaultInjection, RetriedFaultsLeaveEveryEchoExact) {
  // EINTR and EAGAIN are retried by the sockets, short transfers are continued, delays and
  // refused enters only slow things down: every client must complete, byte for byte.
  const int fds = open_fd_count();
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    for (std::size_t workers : {1u, 2u}) {
      const auto plan = fault_plan::parse(
          "seed=" + std::to_string(seed) +
          " error=EINTR:0.05:recv,send,accept error=EAGAIN:0.05:recv,send,accept short=0.4 "
          "delay=0.2:5 enter=0.05");
      const auto run = run_echo(plan, workers, 4, 40'000);
      for (const auto& c : run.clients) {
        EXPECT_TRUE(c.completed) << plan.to_string() << " workers=" << workers << ": " << c.what;
        EXPECT_FALSE(c.corrupt) << plan.to_string();
      }
      EXPECT_EQ(run.handler_failures, 0u) << plan.to_string();
      EXPECT_GT(run.faults.errors + run.faults.shorts, 0u);
    }
  }
  EXPECT_EQ(open_fd_count(), fds);
}

TEST_F(FaultInjection, FatalErrorsEndStreamsCleanlyWithTheErrnoAndTheAddress) {
  const int fds = open_fd_count();
  const std::set<int> allowed{ECONNRESET, EPIPE, ENOMEM, ENOBUFS, ECANCELED};
  std::size_t failed = 0, completed = 0;
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    for (std::size_t workers : {1u, 2u}) {
      const auto plan = fault_plan::parse(
          "seed=" + std::to_string(seed) +
          " error=ECONNRESET:0.01:recv,send error=EPIPE:0.01:send error=ENOMEM:0.005:recv,send "
          "error=ENOBUFS:0.005:recv,send error=ECANCELED:0.005:recv,send short=0.3 delay=0.1");
      const auto run = run_echo(plan, workers, 4, 40'000);
      for (const auto& c : run.clients) {
        expect_clean_failure(c, allowed, plan.to_string());
        if (c.completed) ++completed;
        if (c.error != 0 || c.ended_early) ++failed;
      }
    }
  }
  // Both ends of the spectrum happened: the schedules were neither all-clean nor all-broken.
  EXPECT_GT(failed, 0u);
  EXPECT_GT(completed, 0u);
  EXPECT_EQ(open_fd_count(), fds);
}

TEST_F(FaultInjection, ServeKeepsAcceptingThroughEmfileAndAbortedConnections) {
  // A multishot accept meets a fault only when it is armed (again after each failure ends it),
  // so the errors are counted over all seeds.
  const int fds = open_fd_count();
  std::uint64_t errors = 0;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    const auto plan = fault_plan::parse("seed=" + std::to_string(seed) +
                                        " error=EMFILE:0.4:accept error=ECONNABORTED:0.2:accept "
                                        "error=ENFILE:0.1:accept");
    const auto run = run_echo(plan, 2, 8, 2'000);
    for (const auto& c : run.clients) {
      EXPECT_TRUE(c.completed) << plan.to_string() << ": " << c.what;
    }
    errors += run.faults.errors;
  }
  EXPECT_GE(errors, 5u);
  EXPECT_EQ(open_fd_count(), fds);
}

TEST_F(FaultInjection, AFailedConnectNamesTheAddress) {
  const int fds = open_fd_count();
  const auto plan = fault_plan::parse("error=ECONNREFUSED:1:connect");
  const auto run = run_echo(plan, 1, 3, 100);
  for (const auto& c : run.clients) {
    EXPECT_EQ(c.error, ECONNREFUSED) << c.what;
    EXPECT_NE(c.what.find("tcp_stream::connect 127.0.0.1:"), std::string::npos) << c.what;
  }
  EXPECT_EQ(open_fd_count(), fds);
}

}  // namespace
