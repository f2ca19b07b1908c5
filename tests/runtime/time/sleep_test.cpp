// Sleeps and the runtime clock: paused-time determinism and ordering, weft::advance, cancellation
// of sleeps (from the same worker and from other threads), and real-time sleeps never ending early.
#include <weft/time/sleep.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "../../support/eventually.hpp"
#include "../../support/paused_time.hpp"

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/join_handle.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/spawn_blocking.hpp>
#include <weft/sync/event.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>
#include <weft/yield.hpp>

namespace {

using weft::testing::ms_since;
using weft::testing::paused;

using namespace std::chrono_literals;
using weft::testing::eventually;

weft::task<void> join(weft::join_handle<void> h) {
  co_await std::move(h);
}

struct wake_log {
  std::vector<std::pair<std::string, long>> events;  // one worker: no lock needed
  weft::clock::time_point start;
};

weft::task<void> sleeper(wake_log& log, std::string name, std::chrono::milliseconds d) {
  co_await weft::sleep_for(d);
  log.events.emplace_back(std::move(name), ms_since(log.start));
}

weft::task<void> sleep_then_sleep(wake_log& log) {
  co_await weft::sleep_for(100ms);
  log.events.emplace_back("first", ms_since(log.start));
  co_await weft::sleep_for(50ms);
  log.events.emplace_back("second", ms_since(log.start));
}

TEST(PausedTime, ThirtySecondsPassWithoutWaiting) {
  weft::runtime rt{paused()};
  const auto wall_start = std::chrono::steady_clock::now();
  const long slept = rt.block_on([]() -> weft::task<long> {
    const auto start = weft::clock::now();
    co_await weft::sleep_for(30s);
    co_return ms_since(start);
  });
  EXPECT_EQ(slept, 30'000);
  // The run took no real 30 s; 20 s of slack is no timing assumption about a shared machine.
  EXPECT_LT(std::chrono::steady_clock::now() - wall_start, 20s);
}

TEST(PausedTime, ClockStandsStillWhileTasksRun) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    for (int i = 0; i < 1000; ++i) co_await weft::yield();
    std::this_thread::sleep_for(2ms);  // real time passes; the runtime's does not
    EXPECT_EQ(weft::clock::now(), start);
  });
}

TEST(PausedTime, SleepersWakeInDeadlineOrderAtTheirExactDeadline) {
  weft::runtime rt{paused()};
  wake_log log;
  rt.block_on([&]() -> weft::task<void> {
    log.start = weft::clock::now();
    auto a = weft::spawn(sleeper(log, "300", 300ms));
    auto b = weft::spawn(sleep_then_sleep(log));
    auto c = weft::spawn(sleeper(log, "120", 120ms));
    auto d = weft::spawn(sleeper(log, "1", 1ms));
    co_await std::move(a);
    co_await std::move(b);
    co_await std::move(c);
    co_await std::move(d);
  });
  const std::vector<std::pair<std::string, long>> expected{
      {"1", 1}, {"first", 100}, {"120", 120}, {"second", 150}, {"300", 300}};
  EXPECT_EQ(log.events, expected);
}

TEST(PausedTime, EqualDeadlinesWakeInTheOrderTheyWereSet) {
  weft::runtime rt{paused()};
  wake_log log;
  rt.block_on([&]() -> weft::task<void> {
    log.start = weft::clock::now();
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 50; ++i) {
      hs.push_back(weft::spawn(sleeper(log, std::to_string(i), 10ms)));
      co_await weft::yield();  // sleeper i sets its timer before sleeper i + 1 exists
    }
    for (auto& h : hs) co_await std::move(h);
  });
  ASSERT_EQ(log.events.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(log.events[static_cast<std::size_t>(i)].first, std::to_string(i));
    EXPECT_EQ(log.events[static_cast<std::size_t>(i)].second, 10);
  }
}

std::vector<std::pair<std::string, long>> run_mixed_schedule() {
  weft::runtime rt{paused()};
  wake_log log;
  rt.block_on([&]() -> weft::task<void> {
    log.start = weft::clock::now();
    std::vector<weft::join_handle<void>> hs;
    std::uint64_t state = 1;
    for (int i = 0; i < 200; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      const auto d = std::chrono::milliseconds{(state >> 33) % 5000};
      hs.push_back(weft::spawn(sleeper(log, std::to_string(i), d)));
    }
    for (auto& h : hs) co_await std::move(h);
  });
  return log.events;
}

TEST(PausedTime, TheSameScheduleGivesTheSameWakeUpsOnEveryRun) {
  const auto first = run_mixed_schedule();
  ASSERT_EQ(first.size(), 200u);
  for (std::size_t i = 1; i < first.size(); ++i) EXPECT_LE(first[i - 1].second, first[i].second);
  for (int run = 0; run < 5; ++run) EXPECT_EQ(run_mixed_schedule(), first);
}

TEST(PausedTime, AdvanceRunsWhatEachTimerWakesBeforeMovingOn) {
  weft::runtime rt{paused()};
  wake_log log;
  rt.block_on([&]() -> weft::task<void> {
    log.start = weft::clock::now();
    auto late = weft::spawn(sleeper(log, "300", 300ms));
    auto chain = weft::spawn(sleep_then_sleep(log));
    co_await weft::yield();  // let both start sleeping
    co_await weft::advance(200ms);
    log.events.emplace_back("advanced", ms_since(log.start));
    co_await weft::advance(100ms);
    log.events.emplace_back("advanced again", ms_since(log.start));
    co_await std::move(late);
    co_await std::move(chain);
  });
  // The timer due at exactly the advance's target fires before advance returns.
  const std::vector<std::pair<std::string, long>> expected{
      {"first", 100}, {"second", 150}, {"advanced", 200}, {"300", 300}, {"advanced again", 300}};
  EXPECT_EQ(log.events, expected);
}

TEST(PausedTime, AdvanceByZeroFiresWhatIsDueNow) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    co_await weft::advance(0ms);
    EXPECT_EQ(weft::clock::now(), start);
  });
}

TEST(PausedTime, AdvanceIsRefusedWithRealTimeAndForNegativeDurations) {
  weft::runtime real{weft::runtime_options{.workers = 1}};
  EXPECT_THROW(real.block_on([]() -> weft::task<void> { co_await weft::advance(1ms); }),
               std::logic_error);
  weft::runtime rt{paused()};
  EXPECT_THROW(rt.block_on([]() -> weft::task<void> { co_await weft::advance(-1ms); }),
               std::invalid_argument);
}

TEST(PausedTime, MoreThanOneWorkerIsRefusedWithAClearMessage) {
  try {
    weft::runtime rt{weft::runtime_options{.workers = 2, .time = weft::time_mode::paused}};
    FAIL() << "a paused runtime with two workers was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string{e.what()}.find("paused time runs on exactly one worker"),
              std::string::npos)
        << e.what();
  }
  weft::runtime rt{paused()};
  EXPECT_EQ(rt.worker_count(), 1u);
}

TEST(PausedTime, RuntimeNowReadsThePausedClockFromAnyThread) {
  weft::runtime rt{paused()};
  const auto before = rt.now();
  rt.block_on([]() -> weft::task<void> { co_await weft::sleep_for(5s); });
  EXPECT_EQ(rt.now() - before, 5s);
}

TEST(PausedTime, ABlockingJobHoldsTheClock) {
  weft::runtime rt{paused()};
  std::atomic<bool> release{false};
  std::thread releaser{[&] {
    std::this_thread::sleep_for(20ms);  // real time passes while the job runs
    release.store(true);
  }};
  const long woke_at = rt.block_on([&]() -> weft::task<long> {
    const auto start = weft::clock::now();
    auto sleeping = weft::spawn(weft::co_invoke([&]() -> weft::task<long> {
      co_await weft::sleep_for(1s);
      co_return ms_since(start);
    }));
    // While the job runs, no timer may fire: the job's answer may be what the sleep races.
    co_await weft::spawn_blocking([&] {
      while (!release.load()) std::this_thread::yield();
    });
    EXPECT_EQ(weft::clock::now(), start);
    co_return co_await std::move(sleeping);
  });
  releaser.join();
  EXPECT_EQ(woke_at, 1000);
}

TEST(Sleep, AnElapsedDeadlineCompletesAtOnce) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    co_await weft::sleep_for(0ms);
    co_await weft::sleep_for(-5ms);
    co_await weft::sleep_until(start - 1s);
    EXPECT_EQ(weft::clock::now(), start);
  });
  EXPECT_EQ(rt.stats().workers[0].timers_fired, 0u);
}

TEST(Sleep, AwaitedOutsideARuntimeThrowsLogicError) {
  // Suspending by hand on a plain thread: the sleep finds no worker to own its timer.
  auto sleep = weft::sleep_for(1ms);
  EXPECT_THROW(sleep.await_suspend(std::noop_coroutine()), std::logic_error);
  auto adv = weft::sleep_until(weft::clock::now() + 1s);
  EXPECT_THROW(adv.await_suspend(std::noop_coroutine()), std::logic_error);
}

TEST(Sleep, CancelledBeforeItStartsThrowsWithoutArmingATimer) {
  weft::runtime rt{paused()};
  weft::cancel_source src;
  src.request_cancellation();
  EXPECT_THROW(rt.block_on(weft::with_cancellation(
                   src.token(), []() -> weft::task<void> { co_await weft::sleep_for(1h); }())),
               weft::operation_cancelled);
}

TEST(Sleep, CancelledFromTheSameWorkerFreesItsTimerAtOnce) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    auto h = weft::spawn([]() -> weft::task<void> { co_await weft::sleep_for(1h); }());
    co_await weft::yield();  // the sleeper arms its timer
    h.cancel();
    EXPECT_THROW(co_await std::move(h), weft::operation_cancelled);
    // No timer is left: the clock never jumped to the hour.
    EXPECT_EQ(weft::clock::now(), start);
  });
}

TEST(Sleep, CancelledFromAnotherThreadWakesAtOnce) {
  // Real time and two workers: the cancellation comes from a plain thread, so it goes through
  // the owning worker's mailbox.
  for (int i = 0; i < 200; ++i) {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    std::atomic<bool> sleeping{false};
    auto h = rt.spawn(weft::co_invoke([&]() -> weft::task<void> {
      sleeping.store(true);
      co_await weft::sleep_for(1h);
    }));
    ASSERT_TRUE(eventually([&] { return sleeping.load(); }));
    if (i % 2 == 0) std::this_thread::yield();
    h.cancel();
    EXPECT_THROW(rt.block_on(join(std::move(h))), weft::operation_cancelled);
  }
}

TEST(Sleep, CancellationRacingTheTimerResumesTheTaskExactlyOnce) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  int slept = 0, cancelled_asleep = 0, cancelled_before = 0;
  for (int i = 0; i < 2000; ++i) {
    std::atomic<int> outcome{0};  // 1 slept, 2 cancelled while asleep
    std::atomic<bool> started{false};
    auto h = rt.spawn(weft::co_invoke([&]() -> weft::task<void> {
      started.store(true);
      try {
        co_await weft::sleep_for(std::chrono::microseconds{i % 300});
        outcome.store(1);
      } catch (const weft::operation_cancelled&) {
        outcome.store(2);
        throw;
      }
    }));
    if (i % 2 == 0) eventually([&] { return started.load(); });
    h.cancel();
    try {
      rt.block_on(join(std::move(h)));
      EXPECT_EQ(outcome.load(), 1);
      ++slept;
    } catch (const weft::operation_cancelled&) {
      // Cancelled before the body ran (outcome 0) or while it slept (2); never both resumed.
      outcome.load() == 2 ? ++cancelled_asleep : ++cancelled_before;
    }
  }
  EXPECT_EQ(slept + cancelled_asleep + cancelled_before, 2000);
  EXPECT_GT(cancelled_asleep, 0);
}

TEST(Sleep, RealTimeSleepsNeverEndEarly) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  rt.block_on([]() -> weft::task<void> {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 200; ++i) {
      hs.push_back(weft::spawn(weft::co_invoke([i]() -> weft::task<void> {
        const auto deadline = weft::clock::now() + std::chrono::microseconds{(i * 37) % 3000};
        co_await weft::sleep_until(deadline);
        EXPECT_GE(weft::clock::now(), deadline);
        EXPECT_GE(std::chrono::steady_clock::now().time_since_epoch(), deadline.time_since_epoch());
      })));
    }
    for (auto& h : hs) co_await std::move(h);
  });
}

TEST(Sleep, HugeDurationsSaturateInsteadOfOverflowing) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto h = weft::spawn(
        []() -> weft::task<void> { co_await weft::sleep_for(std::chrono::hours::max()); }());
    co_await weft::yield();
    h.cancel();
    EXPECT_THROW(co_await std::move(h), weft::operation_cancelled);
  });
}

TEST(Sleep, ShutdownDestroysSleepingTasks) {
  std::atomic<int> destroyed{0};
  struct on_destroy {
    std::atomic<int>* n;
    ~on_destroy() { n->fetch_add(1); }
  };
  {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    for (int i = 0; i < 100; ++i) {
      rt.spawn(weft::co_invoke([&destroyed, i]() -> weft::task<void> {
          on_destroy guard{&destroyed};
          co_await weft::sleep_for(std::chrono::hours{1 + i});
        }))
          .detach();
    }
    ASSERT_TRUE(eventually([&] {
      std::uint64_t armed = 0;
      for (const auto& w : rt.stats().workers) armed += w.tasks_run;
      return armed >= 100;
    }));
  }
  EXPECT_EQ(destroyed.load(), 100);
}

TEST(Clock, OffAWorkerReadsTheSteadyClock) {
  const auto a = std::chrono::steady_clock::now().time_since_epoch();
  const auto b = weft::clock::now().time_since_epoch();
  const auto c = std::chrono::steady_clock::now().time_since_epoch();
  EXPECT_LE(a, b);
  EXPECT_LE(b, c);
}

}  // namespace
