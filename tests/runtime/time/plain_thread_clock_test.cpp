// weft::clock::now() off the workers: a plain thread reads the real steady clock whatever runtime
// is paused (it cannot know which runtime is meant), and reads one runtime's clock, paused time
// included, exactly while a clock_scope binds it to that runtime.
#include <weft/time/clock.hpp>

#include <chrono>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "../../support/paused_time.hpp"

#include <weft/runtime.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>

namespace {

using weft::testing::ms_since;
using weft::testing::paused;

using namespace std::chrono_literals;

weft::clock::time_point steady_now() {
  return weft::clock::time_point{std::chrono::duration_cast<weft::clock::duration>(
      std::chrono::steady_clock::now().time_since_epoch())};
}

/// Moves `rt`'s paused clock on by `d` (every task waits, so it jumps).
void advance_paused(weft::runtime& rt, weft::clock::duration d) {
  rt.block_on([d]() -> weft::task<void> { co_await weft::sleep_for(d); });
}

TEST(PlainThreadClock, ReadsTheRealSteadyClockWhateverRuntimeIsPaused) {
  weft::runtime rt{paused()};
  advance_paused(rt, std::chrono::hours{1});
  const auto before = steady_now();
  const auto now = weft::clock::now();
  const auto after = steady_now();
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
  // The runtime's own time is an hour ahead; runtime::now() reads it from here.
  EXPECT_GE(rt.now() - now, std::chrono::minutes{59});
}

TEST(PlainThreadClock, AClockScopeBindsThisThreadToTheRuntimesPausedClock) {
  weft::runtime rt{paused()};
  {
    weft::clock_scope scope{rt};
    EXPECT_EQ(weft::clock::now(), rt.now());
    const auto start = weft::clock::now();
    advance_paused(rt, std::chrono::hours{1});
    EXPECT_EQ(weft::clock::now(), rt.now());
    EXPECT_EQ(weft::clock::now() - start, std::chrono::hours{1});
  }
  // The scope is over: the real clock again.
  const auto before = steady_now();
  const auto now = weft::clock::now();
  EXPECT_LE(before, now);
  EXPECT_LE(now, steady_now());
}

TEST(PlainThreadClock, ADeadlineComputedOnABoundThreadIsExactInsideTheRuntime) {
  weft::runtime rt{paused()};
  advance_paused(rt, std::chrono::minutes{10});
  weft::clock_scope scope{rt};
  const auto deadline = weft::clock::now() + 5s;  // rt's time, not the real clock's
  const long slept = rt.block_on([deadline]() -> weft::task<long> {
    const auto start = weft::clock::now();
    co_await weft::sleep_until(deadline);
    co_return ms_since(start);
  });
  EXPECT_EQ(slept, 5000);
}

TEST(PlainThreadClock, ScopesNestAndOnlyBindTheirOwnThread) {
  weft::runtime a{paused()};
  weft::runtime b{paused()};
  advance_paused(b, std::chrono::hours{2});
  weft::clock_scope outer{a};
  EXPECT_EQ(weft::clock::now(), a.now());
  {
    weft::clock_scope inner{b};
    EXPECT_EQ(weft::clock::now(), b.now());
    // Another plain thread is not bound by this one's scope.
    weft::clock::time_point seen{};
    weft::clock::time_point before{};
    weft::clock::time_point after{};
    std::thread other([&] {
      before = steady_now();
      seen = weft::clock::now();
      after = steady_now();
    });
    other.join();
    EXPECT_LE(before, seen);
    EXPECT_LE(seen, after);
  }
  EXPECT_EQ(weft::clock::now(), a.now());
}

TEST(PlainThreadClock, AScopeOnAWorkerThreadIsALogicErrorAndWorkersReadTheirOwnRuntime) {
  weft::runtime rt{paused()};
  weft::runtime other{paused()};
  advance_paused(other, std::chrono::hours{3});
  rt.block_on([&]() -> weft::task<void> {
    EXPECT_THROW((void)weft::clock_scope{other}, std::logic_error);
    EXPECT_EQ(weft::clock::now(), rt.now());
    co_return;
  });
}

}  // namespace
