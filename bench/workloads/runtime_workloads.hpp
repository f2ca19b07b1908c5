// The runtime workloads of docs/workloads.md, written once on weft's public API, shared by
// tools/weft-bench and the tests that check they compute the right answers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <weft/runtime.hpp>

namespace weft::bench {

/// How late sleeps woke, in microseconds: nearest-rank percentiles over every wake-up.
struct lateness_percentiles {
  double p50_us = 0;
  double p99_us = 0;
  double max_us = 0;
};

/// One timed run of a workload.
struct workload_result {
  std::uint64_t ops = 0;  // what docs/workloads.md counts (tasks, yields, spawns)
  double seconds = 0;     // from the root's first spawn to its seeing completion
  bool valid = true;      // false if the workload computed a wrong answer (fib's result)
  std::optional<lateness_percentiles> lateness = {};  // the timer workloads only
  std::optional<lateness_percentiles> latency = {};   // flow_events: added latency, same units
  std::optional<double> idle_cpu_seconds = {};        // idle_timers: process CPU while idle
};

struct workload {
  std::string_view name;
  std::string_view unit;  // what ops counts, for the table
  workload_result (*run)(weft::runtime& rt);
};

/// spawn_many, yield_many, chained_spawn, fork_join_fib, parallel_work, timers, timer_lateness,
/// idle_timers, ping_pong, suspended_tasks, dump_tasks, dump_pause, and the flow workloads.
const std::vector<workload>& runtime_workloads();
/// flow_pipeline, flow_pipeline_unordered, flow_events (flow_workloads.cpp); runtime_workloads() lists them
/// too.
const std::vector<workload>& flow_workloads();

/// The workload called `name`, or null.
const workload* find_workload(std::string_view name);

/// fork_join_fib's recursion, exposed for tests: fib(n) spawning fib(n-1) at every level.
weft::task<std::uint64_t> spawning_fib(int n);

/// p50, p99 and max of `samples_ns` (wake-up lateness in nanoseconds; negative would mean a
/// sleep ended early) in microseconds. Nearest rank: the p-th percentile is the smallest sample
/// that at least p % of the samples do not exceed. Throws std::invalid_argument if empty.
lateness_percentiles lateness_summary(std::vector<std::int64_t> samples_ns);

/// What a fan-out of sleepers measured: the seconds until the last woke, and the lateness of the
/// sampled ones.
struct sleepers_run {
  double seconds = 0;
  /// Sleeper i * sample_every's clock::now() - deadline on waking, at index i.
  std::vector<std::int64_t> lateness_ns;
};

/// The timers workload with `count` sleepers instead of 1,000,000 (same seed, same durations as
/// its first `count` draws), exposed so tests can run it scaled down, e.g. in paused time.
/// Every `sample_every`-th sleeper measures its lateness (a clock read and a store, which the
/// peers' sleepers do not do); the others only sleep_for and count down, like the peers'.
sleepers_run run_sleepers(weft::runtime& rt, std::int64_t count, std::int64_t sample_every = 1);

/// splitmix64, the generator every peer uses for parallel_work and timers.
inline std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace weft::bench
