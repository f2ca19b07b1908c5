// weft::shielded: the awaited task runs to its end whatever happens to the awaiting task's
// cancellation, under paused time (exact instants) and on two workers (many iterations, TSan).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <vector>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/shielded.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>
#include <weft/time/timeout.hpp>
#include <weft/yield.hpp>

#include "support/paused_time.hpp"

namespace {

using namespace std::chrono_literals;
using weft::testing::ms_since;
using weft::testing::paused;

weft::task<int> slow_value(std::chrono::milliseconds d, int v) {
  co_await weft::sleep_for(d);  // a cancellation point, were it reachable
  co_return v;
}

TEST(Shielded, CancellingTheCallerDoesNotReachTheTaskAndStaysRequestedAfterIt) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    long finished_at = -1;
    bool cancelled_after = false;
    auto caller = weft::spawn([](long& finished_at, bool& cancelled_after,
                                 weft::clock::time_point start) -> weft::task<int> {
      const int v = co_await weft::shielded(slow_value(100ms, 7));
      finished_at = ms_since(start);
      try {
        co_await weft::sleep_for(1ms);  // the next cancellation point
      } catch (const weft::operation_cancelled&) {
        cancelled_after = true;
        throw;
      }
      co_return v;
    }(finished_at, cancelled_after, start));
    co_await weft::sleep_for(10ms);
    caller.cancel();
    EXPECT_THROW(co_await caller, weft::operation_cancelled);
    EXPECT_EQ(finished_at, 100) << "the shielded task ran to its end";
    EXPECT_TRUE(cancelled_after) << "the cancellation took effect at the next point";
    EXPECT_EQ(ms_since(start), 100);
  });
}

TEST(Shielded, StartsEvenForAnAlreadyCancelledCaller) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    int ran = 0;
    auto caller = weft::spawn([](int& ran) -> weft::task<void> {
      co_await weft::sleep_for(5ms);
      // Cancelled by now: a plain co_await of a task would not start it.
      ran = co_await weft::shielded(slow_value(1ms, 3));
    }(ran));
    caller.cancel();
    co_await weft::yield();
    EXPECT_THROW(co_await caller, weft::operation_cancelled);
    EXPECT_EQ(ran, 0) << "cancelled before it reached the shielded await: the sleep threw";

    auto late = weft::spawn([](int& ran) -> weft::task<void> {
      try {
        co_await weft::sleep_for(5ms);
      } catch (const weft::operation_cancelled&) {
      }
      ran = co_await weft::shielded(slow_value(1ms, 3));
    }(ran));
    co_await weft::yield();  // started: asleep (a task cancelled before it starts never runs)
    late.cancel();
    co_await late;
    EXPECT_EQ(ran, 3);
  });
}

TEST(Shielded, ValuesExceptionsAndVoidComeThrough) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    EXPECT_EQ(co_await weft::shielded(slow_value(1ms, 9)), 9);
    auto failing = []() -> weft::task<int> {
      co_await weft::sleep_for(1ms);
      throw std::runtime_error("broken");
    };
    EXPECT_THROW(co_await weft::shielded(failing()), std::runtime_error);
    bool done = false;
    auto nothing = [](bool& done) -> weft::task<void> {
      co_await weft::sleep_for(1ms);
      done = true;
    };
    co_await weft::shielded(nothing(done));
    EXPECT_TRUE(done);
  });
}

TEST(Shielded, AnEmptyTaskThrowsLogicError) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::task<int> t = slow_value(1ms, 1);
    auto moved = std::move(t);
    bool threw = false;
    try {
      co_await weft::shielded(std::move(t));
    } catch (const std::logic_error&) {
      threw = true;
    }
    EXPECT_TRUE(threw);
    EXPECT_EQ(co_await std::move(moved), 1);
  });
}

TEST(Shielded, ATimeoutAroundItWaitsForItAndKeepsTheValue) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    // The timeout cancels its child at 10 ms; the shielded task does not hear it and finishes
    // at 100 ms, and a value that arrives anyway is kept (weft::timeout's rule).
    const int v = co_await weft::timeout(10ms, weft::shielded(slow_value(100ms, 5)));
    EXPECT_EQ(v, 5);
    EXPECT_EQ(ms_since(start), 100);
  });
}

TEST(Shielded, AGroupCancelledMeanwhileStillWaitsForIt) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    std::atomic<int> flushed{0};
    weft::task_group group;
    group.spawn([](std::atomic<int>& flushed) -> weft::task<void> {
      co_await weft::shielded(slow_value(50ms, 1));
      flushed.fetch_add(1);
    }(flushed));
    co_await weft::sleep_for(1ms);
    group.cancel();
    co_await group.join();
    EXPECT_EQ(flushed.load(), 1);
    EXPECT_EQ(ms_since(start), 50);
  });
}

// Two workers: callers cancelled from another worker while their shielded tasks run; every
// shielded task finishes exactly once.
TEST(Shielded, ManyCallersCancelledFromAnotherWorker) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  std::atomic<int> finished{0};
  std::atomic<int> started{0};
  rt.block_on([](std::atomic<int>& finished, std::atomic<int>& started) -> weft::task<void> {
    for (int round = 0; round < 20; ++round) {
      std::vector<weft::join_handle<void>> callers;
      for (int i = 0; i < 50; ++i) {
        callers.push_back(weft::spawn(
            [](std::atomic<int>& finished, std::atomic<int>& started) -> weft::task<void> {
              started.fetch_add(1, std::memory_order_relaxed);
              co_await weft::shielded([](std::atomic<int>& finished) -> weft::task<void> {
                co_await weft::yield();
                co_await weft::sleep_for(std::chrono::microseconds{200});
                finished.fetch_add(1, std::memory_order_relaxed);
              }(finished));
              co_await weft::sleep_for(1h);  // cancelled here
            }(finished, started)));
      }
      // Every caller started (one cancelled before it starts never runs, shielded or not).
      while (started.load(std::memory_order_relaxed) < (round + 1) * 50) co_await weft::yield();
      for (auto& c : callers) c.cancel();
      for (auto& c : callers) {
        try {
          co_await c;
        } catch (const weft::operation_cancelled&) {
        }
      }
    }
  }(finished, started));
  EXPECT_EQ(finished.load(), 20 * 50);
}

}  // namespace
