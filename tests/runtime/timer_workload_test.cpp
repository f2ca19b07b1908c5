// The timer workloads' measuring parts: the lateness percentiles, and a scaled-down timers fan-out
// in paused time, where every sleeper must wake exactly at its deadline.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <weft/runtime.hpp>

// The workload library is compiled into this test (see tests/meson.build), not a dependency.
#include "runtime_workloads.hpp"

namespace {

using weft::bench::lateness_summary;

std::vector<std::int64_t> one_to_hundred_us() {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 100; i >= 1; --i) v.push_back(i * 1'000);  // reversed: the helper sorts
  return v;
}

TEST(LatenessSummary, NearestRankPercentilesInMicroseconds) {
  const auto s = lateness_summary(one_to_hundred_us());
  EXPECT_DOUBLE_EQ(s.p50_us, 50.0);
  EXPECT_DOUBLE_EQ(s.p99_us, 99.0);
  EXPECT_DOUBLE_EQ(s.max_us, 100.0);
}

TEST(LatenessSummary, RanksRoundUp) {
  // n = 3: p50 is the 2nd smallest (ceil 1.5), p99 the 3rd (ceil 2.97).
  const auto s = lateness_summary({3'000, 1'000, 2'000});
  EXPECT_DOUBLE_EQ(s.p50_us, 2.0);
  EXPECT_DOUBLE_EQ(s.p99_us, 3.0);
  EXPECT_DOUBLE_EQ(s.max_us, 3.0);
}

TEST(LatenessSummary, OneSampleIsEveryPercentile) {
  const auto s = lateness_summary({1'500});
  EXPECT_DOUBLE_EQ(s.p50_us, 1.5);
  EXPECT_DOUBLE_EQ(s.p99_us, 1.5);
  EXPECT_DOUBLE_EQ(s.max_us, 1.5);
}

TEST(LatenessSummary, KeepsNegativeSamplesSoEarlyWakeUpsShow) {
  const auto s = lateness_summary({-2'000, -1'000, -3'000});
  EXPECT_DOUBLE_EQ(s.p50_us, -2.0);
  EXPECT_DOUBLE_EQ(s.max_us, -1.0);
}

TEST(LatenessSummary, RefusesNoSamples) {
  EXPECT_THROW(lateness_summary({}), std::invalid_argument);
}

TEST(LatenessSummary, TheP99OfAMillionIgnoresTheWorstOnePercent) {
  std::vector<std::int64_t> v(1'000'000, 10'000);
  std::fill(v.end() - 10'000, v.end(), 5'000'000);  // exactly 1 %: still outside p99
  const auto s = lateness_summary(v);
  EXPECT_DOUBLE_EQ(s.p99_us, 10.0);
  EXPECT_DOUBLE_EQ(s.max_us, 5'000.0);
}

// The first `n` durations of the timers workload, as its root draws them.
std::vector<std::int64_t> timer_durations_us(std::int64_t n) {
  std::uint64_t state = 42;
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < n; ++i) {
    out.push_back(static_cast<std::int64_t>(weft::bench::splitmix64(state) % 100'001));
  }
  return out;
}

TEST(TimersWorkload, PausedTimeWakesEverySleeperExactlyAtItsDeadline) {
  constexpr std::int64_t sleepers = 1'000;
  weft::runtime rt{weft::runtime_options{.time = weft::time_mode::paused}};
  ASSERT_EQ(rt.worker_count(), 1u);  // paused time: 0 workers becomes 1
  const auto start = rt.now();

  const auto r = weft::bench::run_sleepers(rt, sleepers, 1);

  ASSERT_EQ(r.lateness_ns.size(), static_cast<std::size_t>(sleepers));
  for (std::size_t i = 0; i < r.lateness_ns.size(); ++i) {
    EXPECT_EQ(r.lateness_ns[i], 0) << "sleeper " << i;
  }
  const auto s = lateness_summary(r.lateness_ns);
  EXPECT_EQ(s.p50_us, 0.0);
  EXPECT_EQ(s.max_us, 0.0);

  // Every sleeper computed its deadline at the same paused instant, so the clock ends at the
  // longest sleep; a zero sleep completes without a timer, every other one fires one.
  const auto durations = timer_durations_us(sleepers);
  const auto longest = *std::max_element(durations.begin(), durations.end());
  EXPECT_EQ(rt.now() - start, std::chrono::microseconds{longest});
  const auto timers =
      std::count_if(durations.begin(), durations.end(), [](std::int64_t us) { return us > 0; });
  EXPECT_EQ(rt.stats().workers[0].timers_fired, static_cast<std::uint64_t>(timers));
}

TEST(TimersWorkload, SamplingMeasuresEveryNthSleeper) {
  weft::runtime rt{weft::runtime_options{.time = weft::time_mode::paused}};
  const auto r = weft::bench::run_sleepers(rt, 1'000, 16);
  EXPECT_EQ(r.lateness_ns.size(), 63u);  // sleepers 0, 16, ..., 992
  EXPECT_THROW(weft::bench::run_sleepers(rt, 10, 0), std::invalid_argument);
}

TEST(TimersWorkload, RealTimeSleepersNeverWakeEarly) {
  // A short real-time run: the durations reach 100 ms, so this takes about 0.1 s.
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  constexpr std::int64_t sleepers = 1'000;
  const auto r = weft::bench::run_sleepers(rt, sleepers, 1);
  for (std::size_t i = 0; i < r.lateness_ns.size(); ++i) {
    EXPECT_GE(r.lateness_ns[i], 0) << "sleeper " << i;
  }
  // The root's clock starts before any sleeper computes its deadline.
  const auto durations = timer_durations_us(sleepers);
  const auto longest = *std::max_element(durations.begin(), durations.end());
  EXPECT_GE(r.seconds, static_cast<double>(longest) / 1e6);
}

}  // namespace
