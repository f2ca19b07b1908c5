// echo-load (tools/echo-load): histogram percentiles, the byte pattern, /proc parsing, argument
// parsing, the JSON line, and whole runs against a small blocking echo server in this process.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "byte_pattern.hpp"
#include "churn_load.hpp"
#include "endpoint.hpp"
#include "histogram.hpp"
#include "options.hpp"
#include "rr_load.hpp"
#include "run_result.hpp"
#include "server_cpu.hpp"

namespace {

using echo_load::byte_pattern;
using echo_load::log_linear_histogram;
using echo_load::options;

// ---------------------------------------------------------------------------------------------
// Histogram

TEST(Histogram, ValuesBelowSixtyFourHaveOneBucketEach) {
  for (std::uint64_t v = 0; v < 64; ++v) {
    EXPECT_EQ(log_linear_histogram::bucket_bottom(log_linear_histogram::bucket_of(v)), v);
    EXPECT_EQ(log_linear_histogram::bucket_top(log_linear_histogram::bucket_of(v)), v);
  }
}

TEST(Histogram, BucketsTileTheWholeRangeWithoutGapsOrOverlaps) {
  using h = log_linear_histogram;
  EXPECT_EQ(h::bucket_bottom(0), 0u);
  for (std::size_t i = 0; i + 1 < h::bucket_count; ++i) {
    ASSERT_EQ(h::bucket_top(i) + 1, h::bucket_bottom(i + 1)) << "bucket " << i;
  }
  EXPECT_EQ(h::bucket_top(h::bucket_count - 1), UINT64_MAX);
  EXPECT_EQ(h::bucket_of(UINT64_MAX), h::bucket_count - 1);
}

TEST(Histogram, EveryBucketIsAtMostASixtyFourthOfItsValues) {
  using h = log_linear_histogram;
  for (std::uint64_t v = 1; v < (std::uint64_t{1} << 62); v = v * 3 + 1) {
    const std::size_t b = h::bucket_of(v);
    ASSERT_LE(h::bucket_bottom(b), v);
    ASSERT_GE(h::bucket_top(b), v);
    ASSERT_LE(h::bucket_top(b) - h::bucket_bottom(b), v / 64) << "value " << v;
  }
}

TEST(Histogram, EmptyHistogramReportsZero) {
  const log_linear_histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.value_at_percentile(50), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
}

TEST(Histogram, PercentilesOfAUniformRangeAreWithinOneBucketAboveTheTrueValue) {
  log_linear_histogram h;
  for (std::uint64_t v = 1; v <= 100'000; ++v) h.record(v);
  // The true p-th percentile of 1..100000 is p * 1000; the report may exceed it by 1/64.
  for (const double p : {1.0, 10.0, 50.0, 90.0, 99.0, 99.9}) {
    const auto truth = static_cast<std::uint64_t>(p * 1000);
    const std::uint64_t got = h.value_at_percentile(p);
    EXPECT_GE(got, truth) << "p" << p;
    EXPECT_LE(got, truth + truth / 64) << "p" << p;
  }
}

TEST(Histogram, TailPercentilesSeeARareSlowValue) {
  log_linear_histogram h;
  for (int i = 0; i < 9'990; ++i) h.record(20'000);  // 20 us
  for (int i = 0; i < 10; ++i) h.record(5'000'000);  // 5 ms, 0.1% of the values
  const auto bucket_top_of = [](std::uint64_t v) {
    return log_linear_histogram::bucket_top(log_linear_histogram::bucket_of(v));
  };
  EXPECT_EQ(h.value_at_percentile(50), bucket_top_of(20'000));
  EXPECT_EQ(h.value_at_percentile(99.9), bucket_top_of(20'000));  // rank 9,990 is still fast
  EXPECT_EQ(h.value_at_percentile(99.91), 5'000'000u);            // capped at the recorded maximum
}

TEST(Histogram, HundredthPercentileIsTheExactMaximum) {
  log_linear_histogram h;
  h.record(1'000'003);
  h.record(17);
  EXPECT_EQ(h.value_at_percentile(100), 1'000'003u);
  EXPECT_EQ(h.max(), 1'000'003u);
  EXPECT_EQ(h.min(), 17u);
  EXPECT_EQ(h.value_at_percentile(0), 17u);
  EXPECT_EQ(h.count(), 2u);
}

TEST(Histogram, DocumentedExampleHolds) {
  log_linear_histogram h;
  h.record(1'234);
  EXPECT_EQ(h.value_at_percentile(99.0), 1'234u);  // capped at the maximum recorded
  h.record(1'240);
  EXPECT_EQ(log_linear_histogram::bucket_bottom(log_linear_histogram::bucket_of(1'234)), 1'232u);
  EXPECT_EQ(log_linear_histogram::bucket_top(log_linear_histogram::bucket_of(1'234)), 1'247u);
}

// ---------------------------------------------------------------------------------------------
// Byte pattern

TEST(BytePattern, AnySpanReadsTheStreamContiguouslyAcrossThePeriod) {
  const byte_pattern p;
  const std::uint64_t phase = byte_pattern::phase_of(3);
  const std::uint64_t offset = byte_pattern::period - 100;  // the span wraps the period
  const unsigned char* span = p.at(phase, offset);
  for (std::size_t i = 0; i < byte_pattern::max_span; i += 997) {
    ASSERT_EQ(span[i], *p.at(phase, offset + i)) << "byte " << i;
  }
  EXPECT_EQ(span[byte_pattern::max_span - 1], *p.at(phase, offset + byte_pattern::max_span - 1));
}

TEST(BytePattern, FindsNoMismatchInTheStreamItself) {
  const byte_pattern p;
  const std::uint64_t phase = byte_pattern::phase_of(7);
  std::vector<unsigned char> data(3 * byte_pattern::max_span + 5);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = *p.at(phase, 1'000 + i);
  EXPECT_FALSE(p.first_mismatch(data.data(), data.size(), phase, 1'000).has_value());
}

TEST(BytePattern, FindsTheFirstCorruptedByteBeyondTheFirstSpan) {
  const byte_pattern p;
  const std::uint64_t phase = byte_pattern::phase_of(7);
  std::vector<unsigned char> data(2 * byte_pattern::max_span);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = *p.at(phase, i);
  const std::size_t bad = byte_pattern::max_span + 12'345;
  data[bad] ^= 0x40;
  data[bad + 1] ^= 0x01;
  EXPECT_EQ(p.first_mismatch(data.data(), data.size(), phase, 0), bad);
}

TEST(BytePattern, ARepeatedMessageIsCaught) {
  // A server that echoes message 0 twice instead of messages 0 and 1 must fail the check.
  const byte_pattern p;
  const std::uint64_t phase = byte_pattern::phase_of(0);
  for (const std::size_t size : {std::size_t{64}, std::size_t{4096}, std::size_t{65536}}) {
    EXPECT_TRUE(p.first_mismatch(p.at(phase, 0), size, phase, size).has_value()) << size;
  }
}

TEST(BytePattern, StreamsOfDifferentConnectionsDiffer) {
  const byte_pattern p;
  const std::uint64_t a = byte_pattern::phase_of(0);
  const std::uint64_t b = byte_pattern::phase_of(1);
  EXPECT_NE(a, b);
  EXPECT_TRUE(p.first_mismatch(p.at(a, 0), 64, b, 0).has_value());
}

// ---------------------------------------------------------------------------------------------
// /proc/PID/stat

TEST(ServerCpu, AddsUtimeAndStimeEvenWhenTheNameHasSpacesAndParentheses) {
  const std::string stat =
      "4242 (my (odd) server) S 1 4242 4242 0 -1 4194560 1200 0 3 0 "
      "1234 567 0 0 20 0 3 0 100 123456789 512 18446744073709551615";
  EXPECT_EQ(echo_load::parse_stat_cpu_ticks(stat), 1234u + 567u);
}

TEST(ServerCpu, RejectsTextThatIsNotAStatLine) {
  EXPECT_FALSE(echo_load::parse_stat_cpu_ticks("no parenthesis here").has_value());
  EXPECT_FALSE(echo_load::parse_stat_cpu_ticks("1 (x) S 1 2 3").has_value());  // truncated
  EXPECT_FALSE(echo_load::parse_stat_cpu_ticks("1 (x) S 1 2 3 4 5 6 7 8 9 x 5").has_value());
}

TEST(ServerCpu, ReadsThisProcess) {
  const std::vector<pid_t> me{getpid()};
  EXPECT_GE(echo_load::read_cpu_us(me), 0.0);
}

TEST(ServerCpu, AMissingProcessNamesItsStatFile) {
  const std::vector<pid_t> gone{INT32_MAX};  // above pid_max, so never a live process
  try {
    (void)echo_load::read_cpu_us(gone);
    FAIL() << "read_cpu_us did not throw";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/2147483647/stat"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Options

options parse(std::vector<std::string_view> args) {
  return echo_load::parse_options(args);
}

std::string parse_error(std::vector<std::string_view> args) {
  try {
    (void)echo_load::parse_options(args);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Options, DefaultsAreTheEchoRrWorkload) {
  const options o = parse({"--port", "7000"});
  EXPECT_EQ(o.mode, echo_load::load_mode::rr);
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 7000);
  EXPECT_EQ(o.connections, 64u);
  EXPECT_EQ(o.depth, 1u);
  EXPECT_EQ(o.size, 64u);
  EXPECT_EQ(o.warmup_s, 2.0);
  EXPECT_EQ(o.duration_s, 10.0);
  EXPECT_TRUE(o.server_pids.empty());
  EXPECT_FALSE(o.cpu.has_value());
}

TEST(Options, ParsesEveryRrOptionInBothSpellings) {
  const options o =
      parse({"--mode=rr", "--host", "::1", "--port=9", "--connections", "4", "--depth=16", "--size",
             "512", "--warmup", "0.5", "--duration=2.5", "--server-pid", "10,20", "--cpu", "1"});
  EXPECT_EQ(o.host, "::1");
  EXPECT_EQ(o.port, 9);
  EXPECT_EQ(o.connections, 4u);
  EXPECT_EQ(o.depth, 16u);
  EXPECT_EQ(o.size, 512u);
  EXPECT_EQ(o.warmup_s, 0.5);
  EXPECT_EQ(o.duration_s, 2.5);
  EXPECT_EQ(o.server_pids, (std::vector<pid_t>{10, 20}));
  EXPECT_EQ(o.cpu, 1);
}

TEST(Options, ParsesChurnOverAUnixSocket) {
  const options o = parse({"--mode", "churn", "--unix", "/tmp/echo.sock", "--concurrency", "32"});
  EXPECT_EQ(o.mode, echo_load::load_mode::churn);
  EXPECT_EQ(o.unix_path, "/tmp/echo.sock");
  EXPECT_EQ(o.concurrency, 32u);
}

TEST(Options, SizeTakesBinarySuffixesUpToSixteenMiB) {
  EXPECT_EQ(parse({"--port", "1", "--size", "16K"}).size, 16u * 1024);
  EXPECT_EQ(parse({"--port", "1", "--size", "16KiB"}).size, 16u * 1024);
  EXPECT_EQ(parse({"--port", "1", "--size", "16MiB"}).size, 16u << 20);
  EXPECT_EQ(parse({"--port", "1", "--size", "16777216"}).size, 16u << 20);
  EXPECT_NE(parse_error({"--port", "1", "--size", "16777217"}).find("--size"), std::string::npos);
  EXPECT_NE(parse_error({"--port", "1", "--size", "17M"}).find("'17M'"), std::string::npos);
  EXPECT_NE(parse_error({"--port", "1", "--size", "0"}).find("--size"), std::string::npos);
  EXPECT_NE(parse_error({"--port", "1", "--size", "4G"}).find("--size"), std::string::npos);
}

TEST(Options, ABadNumberNamesTheOptionTheRangeAndTheText) {
  EXPECT_EQ(parse_error({"--port", "1", "--depth", "0"}),
            "--depth: expected an integer from 1 to 65536, got '0'");
  EXPECT_EQ(parse_error({"--port", "70000"}),
            "--port: expected an integer from 1 to 65535, got '70000'");
  EXPECT_EQ(parse_error({"--port", "1", "--duration", "ten"}),
            "--duration: expected seconds from 0.001 to 86400, got 'ten'");
  EXPECT_EQ(parse_error({"--port", "1", "--connections", "-3"}),
            "--connections: expected an integer from 1 to 100000, got '-3'");
}

TEST(Options, AnEndpointIsRequired) {
  EXPECT_EQ(parse_error({}), "the server's --port (or --unix PATH) is required");
  EXPECT_EQ(parse_error({"--host", "localhost"}),
            "the server's --port (or --unix PATH) is required");
}

TEST(Options, UnixExcludesHostAndPort) {
  EXPECT_EQ(parse_error({"--unix", "/tmp/s", "--port", "1"}),
            "--unix cannot be combined with --host or --port");
}

TEST(Options, OptionsOfTheOtherModeAreRefused) {
  EXPECT_EQ(parse_error({"--port", "1", "--concurrency", "8"}),
            "--concurrency is for --mode churn; rr mode uses --connections");
  EXPECT_EQ(parse_error({"--depth", "2", "--port", "1", "--mode", "churn"}),
            "--connections and --depth are for --mode rr; churn mode uses --concurrency");
}

// CLI11's wording for these: the unknown option comes with its value, neither being expected.
TEST(Options, UnknownOptionsAndMissingValuesAreRefused) {
  EXPECT_EQ(parse_error({"--port", "1", "--conections", "8"}),
            "The following arguments were not expected: 8 --conections");
  EXPECT_EQ(parse_error({"--port"}), "--port: 1 required P missing");
  EXPECT_EQ(parse_error({"--port", "1", "--mode", "stream"}),
            "--mode: expected rr or churn, got 'stream'");
  EXPECT_EQ(parse_error({"--port", "1", "2"}), "The following argument was not expected: 2");
}

TEST(Options, OtherRangesAndEmptyTextsAreRefused) {
  EXPECT_EQ(parse_error({"--port", "1", "--cpu", "1024"}),
            "--cpu: expected an integer from 0 to 1023, got '1024'");
  EXPECT_EQ(parse_error({"--port", "1", "--warmup=3601"}),
            "--warmup: expected seconds from 0 to 3600, got '3601'");
  EXPECT_EQ(parse_error({"--port", "1", "--host", ""}),
            "--host: expected a host name or address, got ''");
  EXPECT_EQ(parse_error({"--unix", ""}), "--unix: expected a socket path, got ''");
  EXPECT_EQ(parse_error({"--port", "1", "--server-pid", "10,x"}),
            "--server-pid: expected an integer from 1 to 2147483647, got 'x'");
}

TEST(Options, NumbersAreWholeDecimals) {
  EXPECT_EQ(parse({"--port", "010"}).port, 10);  // not octal, as CLI11's own conversion reads it
  EXPECT_EQ(parse_error({"--port", "0x10"}),
            "--port: expected an integer from 1 to 65535, got '0x10'");
  EXPECT_EQ(parse_error({"--port", "+5"}), "--port: expected an integer from 1 to 65535, got '+5'");
}

TEST(Options, ARepeatedOptionTakesItsLastValue) {
  // Scripts put their defaults before "$@"; what the caller adds wins.
  const options o = parse({"--port", "1", "--size", "16K", "--port=2", "--mode", "churn", "--mode",
                           "rr", "--size", "32"});
  EXPECT_EQ(o.port, 2);
  EXPECT_EQ(o.mode, echo_load::load_mode::rr);
  EXPECT_EQ(o.size, 32u);
}

TEST(Options, ServerPidListsAddUp) {
  EXPECT_EQ(parse({"--port", "1", "--server-pid", "10", "--server-pid=20,30"}).server_pids,
            (std::vector<pid_t>{10, 20, 30}));
}

TEST(Options, HelpNeedsNothingElse) {
  EXPECT_TRUE(parse({"--help"}).show_help);
  EXPECT_TRUE(parse({"-h"}).show_help);
}

TEST(Options, HelpNamesEveryOption) {
  const std::string help = echo_load::usage_text();
  for (const char* flag :
       {"--mode", "--host", "--port", "--unix", "--connections", "--depth", "--size",
        "--concurrency", "--warmup", "--duration", "--server-pid", "--cpu", "--help"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
}

// ---------------------------------------------------------------------------------------------
// JSON line

TEST(JsonLine, RrCarriesTheWorkloadTheRatesAndTheLatencies) {
  options o = parse({"--port", "1", "--connections", "2", "--depth", "3", "--size", "1000"});
  echo_load::run_result r;
  r.seconds = 2.0;
  r.ops = 4'000;
  r.latency.record(10'000);
  EXPECT_EQ(echo_load::format_json(o, r),
            "{\"tool\":\"echo-load\",\"mode\":\"rr\",\"connections\":2,\"depth\":3,\"size\":1000,"
            "\"seconds\":2.000,\"messages\":4000,\"messages_per_sec\":2000.0,\"mb_per_sec\":2.000,"
            "\"p50_us\":10.000,\"p99_us\":10.000,\"p999_us\":10.000,\"max_us\":10.000,"
            "\"errors\":0}");
}

TEST(JsonLine, ChurnCountsCyclesAndAddsServerCpuPerOpWhenMeasured) {
  options o = parse({"--port", "1", "--mode", "churn", "--concurrency", "8"});
  echo_load::run_result r;
  r.seconds = 1.0;
  r.ops = 500;
  r.errors = 2;
  r.server_cpu_us = 10'000.0;
  EXPECT_EQ(echo_load::format_json(o, r),
            "{\"tool\":\"echo-load\",\"mode\":\"churn\",\"concurrency\":8,\"size\":64,"
            "\"seconds\":1.000,\"cycles\":500,\"cycles_per_sec\":500.0,"
            "\"p50_us\":0.000,\"p99_us\":0.000,\"p999_us\":0.000,\"max_us\":0.000,"
            "\"errors\":2,\"server_cpu_us_per_op\":20.0000}");
}

TEST(JsonLine, ServerCpuPerOpIsNullWhenNothingCompleted) {
  options o = parse({"--port", "1"});
  echo_load::run_result r;
  r.server_cpu_us = 5.0;
  EXPECT_NE(echo_load::format_json(o, r).find("\"server_cpu_us_per_op\":null}"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Whole runs against an in-process echo server

// What echo_server does wrong on purpose.
struct server_faults {
  std::optional<std::uint64_t> corrupt_byte{};  // flip this stream byte of every connection
  std::optional<std::uint64_t> close_after{};   // hang up after echoing this many bytes
};

// A blocking echo server, one thread per connection, on 127.0.0.1 (port chosen by the kernel)
// or an AF_UNIX path. It can misbehave on purpose: corrupt one byte or hang up early.
class echo_server {
 public:
  explicit echo_server(server_faults f = {}, std::string unix_path = {})
      : faults_(f), unix_path_(std::move(unix_path)) {
    if (unix_path_.empty()) {
      listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      check(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a), "bind");
      socklen_t length = sizeof a;
      check(::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &length), "getsockname");
      port_ = ntohs(a.sin_port);
    } else {
      ::unlink(unix_path_.c_str());
      listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      std::strncpy(a.sun_path, unix_path_.c_str(), sizeof a.sun_path - 1);
      check(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a), "bind");
    }
    check(::listen(listener_, SOMAXCONN), "listen");
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  echo_server(const echo_server&) = delete;
  echo_server& operator=(const echo_server&) = delete;

  // Stops accepting, then waits for every connection: echo-load has closed them all by the time
  // its run returns, so each connection thread sees end-of-stream and ends.
  ~echo_server() {
    ::shutdown(listener_, SHUT_RDWR);  // wakes accept() with an error
    acceptor_.join();
    ::close(listener_);
    for (auto& w : workers_) w.thread.join();
    if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
  }

  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  struct worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  static void check(int rc, const char* what) {
    if (rc != 0) throw std::system_error(errno, std::generic_category(), what);
  }

  void accept_loop() {
    while (true) {
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // the listener was shut down
      }
      // Join finished connections as we go: churn runs open thousands.
      std::erase_if(workers_, [](worker& w) {
        if (!w.done->load()) return false;
        w.thread.join();
        return true;
      });
      auto done = std::make_shared<std::atomic<bool>>(false);
      workers_.push_back({std::thread([this, fd, done] {
                            serve(fd);
                            done->store(true);
                          }),
                          done});
    }
  }

  void serve(int fd) const {
    std::vector<unsigned char> buffer(64 * 1024);
    std::uint64_t offset = 0;
    while (true) {
      ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
      if (n <= 0) break;
      auto count = static_cast<std::uint64_t>(n);
      if (faults_.corrupt_byte && *faults_.corrupt_byte >= offset &&
          *faults_.corrupt_byte < offset + count) {
        buffer[*faults_.corrupt_byte - offset] ^= 0xff;
      }
      bool hang_up = false;
      if (faults_.close_after && offset + count >= *faults_.close_after) {
        count = *faults_.close_after - offset;
        hang_up = true;
      }
      if (!send_all(fd, buffer.data(), count)) break;
      if (hang_up) {
        // Hang up with a FIN, not a reset: the client may already have sent its next message, and
        // closing with unread input would make the kernel answer it with RST, which the client
        // sees as "connection reset" instead of the end of the stream this test checks for.
        ::shutdown(fd, SHUT_WR);
        while (::recv(fd, buffer.data(), buffer.size(), 0) > 0) {
        }
        break;
      }
      offset += count;
    }
    ::close(fd);
  }

  static bool send_all(int fd, const unsigned char* data, std::uint64_t size) {
    while (size > 0) {
      const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data += n;
      size -= static_cast<std::uint64_t>(n);
    }
    return true;
  }

  server_faults faults_;
  std::string unix_path_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::thread acceptor_;
  std::vector<worker> workers_;  // touched by the acceptor only, and after it has been joined
};

// A loopback port that refuses connections: bound, never listening, so no one else can take it.
struct refusing_port {
  echo_load::unique_fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  std::string port;

  refusing_port() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof a;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &length) != 0) {
      throw std::system_error(errno, std::generic_category(), "refusing_port");
    }
    port = std::to_string(ntohs(a.sin_port));
  }
};

// A short run: correctness, not speed, is asserted, so the interval only has to see some load.
options short_run(std::vector<std::string_view> args) {
  options o = parse(std::move(args));
  o.warmup_s = 0.05;
  o.duration_s = 0.3;
  return o;
}

TEST(EchoLoadRun, RrChecksEveryMessageOfSeveralConnections) {
  echo_server server;
  const std::string port = std::to_string(server.port());
  const options o =
      short_run({"--port", port, "--connections", "8", "--depth", "4", "--size", "1000"});
  std::ostringstream log;
  const auto r = echo_load::run_rr(o, log);
  EXPECT_EQ(r.errors, 0u) << log.str();
  EXPECT_GT(r.ops, 0u);
  EXPECT_EQ(r.latency.count(), r.ops);
  EXPECT_GE(r.seconds, 0.3);
  EXPECT_FALSE(r.server_cpu_us.has_value());
  EXPECT_GT(r.latency.value_at_percentile(50), 0u);
}

TEST(EchoLoadRun, RrChecksMessagesLargerThanASendAndThePatternPeriod) {
  echo_server server;
  const std::string port = std::to_string(server.port());
  const options o =
      short_run({"--port", port, "--connections", "2", "--depth", "2", "--size", "1MiB"});
  std::ostringstream log;
  const auto r = echo_load::run_rr(o, log);
  EXPECT_EQ(r.errors, 0u) << log.str();
  EXPECT_GT(r.ops, 0u);
}

TEST(EchoLoadRun, RrReportsACorruptedEchoWithItsOffset) {
  echo_server server({.corrupt_byte = 100});
  const std::string port = std::to_string(server.port());
  const options o = short_run({"--port", port, "--connections", "1", "--size", "64"});
  std::ostringstream log;
  const auto r = echo_load::run_rr(o, log);
  EXPECT_EQ(r.errors, 1u);
  EXPECT_NE(log.str().find("connection 0: echoed byte 100 is"), std::string::npos) << log.str();
}

TEST(EchoLoadRun, RrReportsAServerThatHangsUp) {
  echo_server server({.close_after = 640});
  const std::string port = std::to_string(server.port());
  const options o = short_run({"--port", port, "--connections", "2", "--size", "64"});
  std::ostringstream log;
  const auto r = echo_load::run_rr(o, log);
  EXPECT_EQ(r.errors, 2u);
  EXPECT_NE(log.str().find("the server closed the connection after echoing 640 of"),
            std::string::npos)
      << log.str();
}

TEST(EchoLoadRun, RrRefusedConnectionThrowsWithTheEndpointAndReason) {
  const refusing_port refusing;
  const std::string& port = refusing.port;
  std::ostringstream log;
  try {
    (void)echo_load::run_rr(short_run({"--port", port}), log);
    ADD_FAILURE() << "run_rr did not throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNREFUSED);
    EXPECT_EQ(std::string(e.what()), "connect 127.0.0.1:" + port + ": Connection refused");
  }
}

TEST(EchoLoadRun, RrReportsServerCpuWhenGivenAPid) {
  echo_server server;  // in this process, so this process's CPU time is the server's
  const std::string port = std::to_string(server.port());
  const std::string pid = std::to_string(getpid());
  const options o = short_run({"--port", port, "--connections", "4", "--server-pid", pid});
  std::ostringstream log;
  const auto r = echo_load::run_rr(o, log);
  EXPECT_EQ(r.errors, 0u) << log.str();
  ASSERT_TRUE(r.server_cpu_us.has_value());
  EXPECT_GE(*r.server_cpu_us, 0.0);
}

TEST(EchoLoadRun, RrWorksOverAUnixSocket) {
  const std::string path = "/tmp/echo_load_test." + std::to_string(getpid()) + ".sock";
  echo_server server({}, path);
  const options o = short_run({"--unix", path, "--connections", "4", "--depth", "2"});
  std::ostringstream log;
  const auto r = echo_load::run_rr(o, log);
  EXPECT_EQ(r.errors, 0u) << log.str();
  EXPECT_GT(r.ops, 0u);
}

TEST(EchoLoadRun, ChurnCompletesCheckedCycles) {
  echo_server server;
  const std::string port = std::to_string(server.port());
  const options o = short_run({"--mode", "churn", "--port", port, "--concurrency", "4"});
  std::ostringstream log;
  const auto r = echo_load::run_churn(o, log);
  EXPECT_EQ(r.errors, 0u) << log.str();
  EXPECT_GT(r.ops, 0u);
  EXPECT_EQ(r.latency.count(), r.ops);
}

TEST(EchoLoadRun, ChurnReportsACorruptedEcho) {
  echo_server server({.corrupt_byte = 5});
  const std::string port = std::to_string(server.port());
  const options o = short_run({"--mode", "churn", "--port", port, "--concurrency", "2"});
  std::ostringstream log;
  const auto r = echo_load::run_churn(o, log);
  EXPECT_GT(r.errors, 0u);
  EXPECT_EQ(r.ops, 0u);
  EXPECT_NE(log.str().find("churn: echoed byte 5 is"), std::string::npos) << log.str();
}

TEST(EchoLoadRun, ChurnRefusedFirstConnectionThrows) {
  const refusing_port refusing;
  const std::string& port = refusing.port;
  std::ostringstream log;
  EXPECT_THROW((void)echo_load::run_churn(short_run({"--mode", "churn", "--port", port}), log),
               std::system_error);
}

}  // namespace
