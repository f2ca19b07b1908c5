// weft::testing::explore: run a scenario under many seeded schedules and report the seed of the
// first one that fails, with a line that reproduces it.
//
// Thread safety: explore() blocks: call it from a plain thread. Each run gets a fresh runtime with
// one worker, on which the scenario runs.
//
// Cancellation: a run that does not finish within time_limit of paused time is cancelled (a
// weft::timeout) and counts as failed.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include <weft/runtime.hpp>
#include <weft/task.hpp>
#include <weft/time/timed_out.hpp>
#include <weft/time/timeout.hpp>

namespace weft::testing {

struct explore_options {
  /// Seeds first_seed, first_seed + 1, ... (a seed of 0 means "no seed", so they start at 1).
  std::uint64_t first_seed = 1;
  std::size_t seeds = 100;
  /// Paused time a run may take before it counts as stuck (a deadlock: every task waits and no
  /// timer is left but this one, so the paused clock jumps to it at once).
  std::chrono::nanoseconds time_limit = std::chrono::hours{1};
};

struct explore_result {
  bool passed = true;
  std::size_t runs = 0;            // scenarios run
  std::uint64_t failing_seed = 0;  // when !passed
  std::string failure;             // what the failing run threw
  /// One line that runs the failing schedule again: the environment variable that makes every
  /// explore in the program run that seed alone, before the program's own command line.
  std::string reproduction;
  explicit operator bool() const noexcept { return passed; }
};

namespace detail {
/// WEFT_EXPLORE_SEED from the environment, or 0.
std::uint64_t explore_seed_override();
/// "WEFT_EXPLORE_SEED=17 ./tests/runtime --gtest_filter=..." from /proc/self/cmdline.
std::string reproduction_line(std::uint64_t seed);
std::string describe_exception(std::exception_ptr e);

template <class F>
task<void> bounded_run(F& scenario, std::chrono::nanoseconds limit) {
  co_await weft::timeout(limit, scenario());
}
}  // namespace detail

/// Runs `scenario` (a callable returning task<void>) once per seed, each time on a fresh runtime
/// with paused time, one worker and that seed as runtime_options::schedule_seed, so every run
/// tries another order of the ready tasks. A run fails when the scenario throws (check
/// invariants with exceptions) or does not finish within `time_limit` of paused time. Stops at
/// the first failure. With WEFT_EXPLORE_SEED=<n> in the environment only seed n runs, which is
/// how the `reproduction` line replays a failure.
///
///     auto result = weft::testing::explore(100, []() -> weft::task<void> {
///       int balance = 100;
///       co_await weft::when_all(withdraw(balance, 100), withdraw(balance, 100));
///       if (balance < 0) throw std::logic_error("overdrawn");
///     });
///     EXPECT_TRUE(result) << result.failure << "\n" << result.reproduction;
template <class F>
explore_result explore(explore_options options, F scenario) {
  explore_result result;
  std::uint64_t first = options.first_seed == 0 ? 1 : options.first_seed;
  std::size_t count = options.seeds;
  if (const std::uint64_t only = detail::explore_seed_override(); only != 0) {
    first = only;
    count = 1;
  }
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t seed = first + i;
    runtime_options o;
    o.workers = 1;
    o.time = time_mode::paused;
    o.schedule_seed = seed;
    o.stall_threshold = std::chrono::milliseconds{0};
    std::exception_ptr failure;
    {
      runtime rt{o};
      try {
        rt.block_on(detail::bounded_run(scenario, options.time_limit));
      } catch (...) {
        failure = std::current_exception();
      }
    }
    ++result.runs;
    if (failure) {
      result.passed = false;
      result.failing_seed = seed;
      result.failure = detail::describe_exception(failure);
      result.reproduction = detail::reproduction_line(seed);
      return result;
    }
  }
  return result;
}

/// explore with the default options and `seeds` seeds.
template <class F>
explore_result explore(std::size_t seeds, F scenario) {
  explore_options o;
  o.seeds = seeds;
  return explore(o, std::move(scenario));
}

}  // namespace weft::testing
