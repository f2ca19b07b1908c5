// What a load run shares between its two modes: the clock, the warm-up/measure/done phases with
// the server-CPU readings at their edges, the error log, the result and its JSON line.
#pragma once

#include <time.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>

#include "histogram.hpp"
#include "options.hpp"
#include "server_cpu.hpp"

namespace echo_load {

/// CLOCK_MONOTONIC in nanoseconds: a vDSO call, cheap enough to read around every send and recv.
inline std::uint64_t now_ns() noexcept {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::uint64_t>(t.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(t.tv_nsec);
}

/// Milliseconds from `now` to `deadline`, rounded up so that a wait does not end just short of it.
inline int ms_until(std::uint64_t deadline, std::uint64_t now) noexcept {
  return now >= deadline ? 0 : static_cast<int>((deadline - now + 999'999) / 1'000'000);
}

/// How long a run waits, after the measured interval, for the echoes still in flight. Closing a
/// socket with echoes unread makes the kernel answer the server's next write with a reset, and a
/// server that does not ignore SIGPIPE (peers/c/echo_server.c) dies of it.
inline constexpr std::uint64_t drain_timeout_ns = 2'000'000'000;

/// Counts errors and prints the first few to a log: one broken connection is worth a line, a
/// refusing server during churn should not bury the terminal.
class error_log {
 public:
  static constexpr std::uint64_t max_printed = 10;

  explicit error_log(std::ostream& out) : out_(out) {}

  /// Counts one error and prints "echo-load: <message>" while fewer than max_printed were.
  void report(const std::string& message) {
    if (count_ < max_printed) {
      out_ << "echo-load: " << message << '\n';
    } else if (count_ == max_printed) {
      out_ << "echo-load: more errors follow; only the count is reported from here on\n";
    }
    ++count_;
  }

  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] std::ostream& stream() const noexcept { return out_; }

 private:
  std::ostream& out_;
  std::uint64_t count_ = 0;
};

/// The result of one run: what was measured and how many errors the whole run (warm-up too) saw.
struct run_result {
  double seconds = 0;     // the measured interval, as the clock saw it
  std::uint64_t ops = 0;  // rr: messages echoed; churn: cycles completed (in the interval)
  std::uint64_t errors = 0;
  log_linear_histogram latency;         // per op, ns, measured interval only
  std::optional<double> server_cpu_us;  // over the measured interval, when --server-pid was given
};

/// Splits a run into warm-up, measured interval and done, by the clock.
///
/// The loop calls advance() before each wait. The edges are the moments advance() sees them, and
/// the server's CPU time is read right there, so ops, seconds and CPU cover the same interval.
class run_phases {
 public:
  enum class phase { warming_up, measuring, done };

  run_phases(const options& o, std::uint64_t start_ns)
      : warmup_ns_(static_cast<std::uint64_t>(o.warmup_s * 1e9)),
        duration_ns_(static_cast<std::uint64_t>(o.duration_s * 1e9)),
        server_pids_(o.server_pids),
        start_ns_(start_ns) {}

  /// Moves to the next phase(s) whose time has come.
  ///
  /// Errors: throws from read_cpu_us when a server process has gone.
  void advance(std::uint64_t now) {
    if (phase_ == phase::warming_up && now >= start_ns_ + warmup_ns_) {
      phase_ = phase::measuring;
      measure_start_ns_ = now;
      if (!server_pids_.empty()) cpu_start_us_ = read_cpu_us(server_pids_);
    }
    if (phase_ == phase::measuring && now >= measure_start_ns_ + duration_ns_) end_measuring(now);
  }

  /// Ends the run early (every connection has failed); the interval ends now.
  void stop(std::uint64_t now) {
    if (phase_ == phase::warming_up) {
      measure_start_ns_ = measure_end_ns_ = now;
      phase_ = phase::done;
    } else if (phase_ == phase::measuring) {
      end_measuring(now);
    }
  }

  [[nodiscard]] bool is_measuring() const noexcept { return phase_ == phase::measuring; }
  [[nodiscard]] bool is_done() const noexcept { return phase_ == phase::done; }

  /// Milliseconds to wait before the next edge.
  [[nodiscard]] int wait_ms(std::uint64_t now) const noexcept {
    return ms_until(
        phase_ == phase::warming_up ? start_ns_ + warmup_ns_ : measure_start_ns_ + duration_ns_,
        now);
  }

  /// Writes the interval's length and server CPU time into `r`.
  void fill(run_result& r) const {
    r.seconds = static_cast<double>(measure_end_ns_ - measure_start_ns_) / 1e9;
    if (has_cpu_) r.server_cpu_us = cpu_end_us_ - cpu_start_us_;
  }

 private:
  void end_measuring(std::uint64_t now) {
    phase_ = phase::done;
    measure_end_ns_ = now;
    if (!server_pids_.empty()) {
      cpu_end_us_ = read_cpu_us(server_pids_);
      has_cpu_ = true;
    }
  }

  std::uint64_t warmup_ns_;
  std::uint64_t duration_ns_;
  std::span<const pid_t> server_pids_;
  std::uint64_t start_ns_;
  phase phase_ = phase::warming_up;
  std::uint64_t measure_start_ns_ = 0;
  std::uint64_t measure_end_ns_ = 0;
  // Plain doubles and a flag: g++ 12 sees std::optional<double> here as maybe-uninitialized.
  double cpu_start_us_ = 0;
  double cpu_end_us_ = 0;
  bool has_cpu_ = false;  // both readings were taken
};

/// Formats the one JSON line echo-load prints (no newline).
///
/// rr:    {"tool":"echo-load","mode":"rr","connections":..,"depth":..,"size":..,"seconds":..,
///         "messages":..,"messages_per_sec":..,"mb_per_sec":..,<latency>,"errors":..[,cpu]}
/// churn: {"tool":"echo-load","mode":"churn","concurrency":..,"size":..,"seconds":..,
///         "cycles":..,"cycles_per_sec":..,<latency>,"errors":..[,cpu]}
/// <latency> is "p50_us", "p99_us", "p999_us", "max_us" per op; mb_per_sec counts echoed payload
/// bytes in one direction, in 10^6 bytes. [cpu] is "server_cpu_us_per_op", only with
/// --server-pid, null when no op completed.
inline std::string format_json(const options& o, const run_result& r) {
  std::string out;
  char buf[256];
  auto add = [&](const char* format, auto... values) {
    std::snprintf(buf, sizeof buf, format, values...);
    out += buf;
  };
  const double rate = r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0.0;
  const auto us = [&](double percentile) {
    return static_cast<double>(r.latency.value_at_percentile(percentile)) / 1e3;
  };
  const auto ops = static_cast<unsigned long long>(r.ops);
  if (o.mode == load_mode::rr) {
    add("{\"tool\":\"echo-load\",\"mode\":\"rr\",\"connections\":%zu,\"depth\":%zu,\"size\":%zu,",
        o.connections, o.depth, o.size);
    add("\"seconds\":%.3f,\"messages\":%llu,\"messages_per_sec\":%.1f,\"mb_per_sec\":%.3f,",
        r.seconds, ops, rate, rate * static_cast<double>(o.size) / 1e6);
  } else {
    add("{\"tool\":\"echo-load\",\"mode\":\"churn\",\"concurrency\":%zu,\"size\":%zu,",
        o.concurrency, o.size);
    add("\"seconds\":%.3f,\"cycles\":%llu,\"cycles_per_sec\":%.1f,", r.seconds, ops, rate);
  }
  add("\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,\"max_us\":%.3f,\"errors\":%llu", us(50),
      us(99), us(99.9), static_cast<double>(r.latency.max()) / 1e3,
      static_cast<unsigned long long>(r.errors));
  if (r.server_cpu_us) {
    if (r.ops > 0) {
      add(",\"server_cpu_us_per_op\":%.4f", *r.server_cpu_us / static_cast<double>(r.ops));
    } else {
      out += ",\"server_cpu_us_per_op\":null";
    }
  }
  out += '}';
  return out;
}

}  // namespace echo_load
