// Misuse that cannot pass silently: every weft awaiter destroyed without being co_awaited stops
// the program (in builds without NDEBUG) with a message naming the call. Death tests, one per
// primitive; and the cases that are not misuse (moved on, dropped by an exception, handed to a
// combinator) are not reported.
#include <chrono>
#include <stdexcept>
#include <utility>

#include <gtest/gtest.h>
#include <liburing.h>

#include "../support/paused_time.hpp"

#include <weft/weft.hpp>

namespace {

using namespace std::chrono_literals;
using weft::testing::paused;

#if WEFT_CHECK_AWAITED

class Unawaited : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// Each statement makes an awaiter and drops it without co_await.
TEST_F(Unawaited, MutexLockNamesTheCallAndWhatDidNotHappen) {
  weft::mutex m;
  EXPECT_DEATH({ auto guard = m.lock(); },
               "weft::mutex::lock\\(\\) was never co_awaited: nothing is locked");
}

TEST_F(Unawaited, MutexLockInsideATaskOnARuntime) {
  // The first-hour bug: `auto guard = m.lock();` in a task, the critical section unprotected.
  EXPECT_DEATH(
      {
        weft::runtime rt{paused()};
        weft::mutex m;
        rt.block_on([](weft::mutex& mu) -> weft::task<void> {
          auto guard = mu.lock();
          co_await weft::sleep_for(1ms);
        }(m));
      },
      "weft::mutex::lock\\(\\) was never co_awaited");
}

TEST_F(Unawaited, SemaphoreAcquire) {
  weft::semaphore s{1};
  EXPECT_DEATH({ auto p = s.acquire(); }, "weft::semaphore::acquire\\(\\) was never co_awaited");
}

TEST_F(Unawaited, EventAndLatchWait) {
  weft::event e;
  weft::latch l{1};
  EXPECT_DEATH({ auto w = e.wait(); }, "weft::event::wait\\(\\) was never co_awaited");
  EXPECT_DEATH({ auto w = l.wait(); }, "weft::latch::wait\\(\\) was never co_awaited");
}

TEST_F(Unawaited, ChannelSendAndRecv) {
  weft::channel<int> ch{1};
  EXPECT_DEATH({ auto s = ch.send(1); },
               "weft::channel::send\\(\\) was never co_awaited: nothing is sent");
  EXPECT_DEATH({ auto r = ch.recv(); }, "weft::channel::recv\\(\\) was never co_awaited");
}

TEST_F(Unawaited, BarrierWatchAndBroadcast) {
  weft::barrier b{2};
  weft::watch<int> w{0};
  auto wrx = w.subscribe();
  weft::broadcast<int> bc{4};
  auto brx = bc.subscribe();
  EXPECT_DEATH({ auto a = b.arrive_and_wait(); },
               "weft::barrier::arrive_and_wait\\(\\) was never co_awaited");
  EXPECT_DEATH({ auto c = wrx.changed(); },
               "weft::watch_receiver::changed\\(\\) was never co_awaited");
  EXPECT_DEATH({ auto r = brx.recv(); },
               "weft::broadcast_receiver::recv\\(\\) was never co_awaited");
}

TEST_F(Unawaited, SleepsAndAdvance) {
  EXPECT_DEATH({ auto s = weft::sleep_for(1s); },
               "weft::sleep_for\\(\\)/sleep_until\\(\\) was never co_awaited");
  EXPECT_DEATH({ auto s = weft::sleep_until(weft::clock::time_point{}); },
               "weft::sleep_for\\(\\)/sleep_until\\(\\) was never co_awaited");
  EXPECT_DEATH(
      {
        weft::runtime rt{paused()};
        rt.block_on([]() -> weft::task<void> {
          auto a = weft::advance(1s);
          co_return;
        }());
      },
      "weft::advance\\(\\) was never co_awaited: the clock does not move");
}

TEST_F(Unawaited, YieldCancelTokenSpawnBlockingAndSubmitIo) {
  EXPECT_DEATH({ auto y = weft::yield(); }, "weft::yield\\(\\) was never co_awaited");
  EXPECT_DEATH({ auto t = weft::this_task::cancel_token(); },
               "weft::this_task::cancel_token\\(\\) was never co_awaited");
  EXPECT_DEATH({ auto j = weft::spawn_blocking([] { return 1; }); },
               "weft::spawn_blocking\\(\\) was never co_awaited: the function does not run");
  EXPECT_DEATH({ auto op = weft::submit_io([](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); }); },
               "weft::submit_io\\(\\) was never co_awaited");
}

TEST_F(Unawaited, TaskGroupJoinAndGeneratorNext) {
  weft::task_group g;
  EXPECT_DEATH({ auto j = g.join(); }, "weft::task_group::join\\(\\) was never co_awaited");
  auto gen = []() -> weft::async_generator<int> { co_yield 1; }();
  EXPECT_DEATH({ auto n = gen.next(); }, "weft::async_generator::next\\(\\) was never co_awaited");
}

#endif  // WEFT_CHECK_AWAITED

// What is not misuse is not reported (these would abort the test binary if it were).

TEST(AwaitedOrHandedOn, AMovedFromAwaiterIsNotReported) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::mutex m;
    auto first = m.lock();
    auto second = std::move(first);  // `first` is moved-from: only `second` must be awaited
    auto guard = co_await std::move(second);
    EXPECT_TRUE(m.is_locked());
    auto sleep = weft::sleep_for(1ms);
    auto moved_sleep = std::move(sleep);
    co_await std::move(moved_sleep);
  }());
}

TEST(AwaitedOrHandedOn, AnExceptionBeforeTheAwaitIsNotMisuse) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::latch l{1};
    try {
      auto w = l.wait();
      auto s = weft::sleep_for(1s);
      throw std::runtime_error("validation failed before the wait");
    } catch (const std::runtime_error&) {
    }
    co_return;
  }());
}

TEST(AwaitedOrHandedOn, ACombinatorThatDropsAnUnstartedChildIsNotMisuse) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::event e;
    weft::channel<int> ch{1};
    // Built and dropped without being awaited: the children never start.
    { auto racing = weft::when_any(e.wait(), ch.recv(), weft::sleep_for(1s)); }
    { auto timed = weft::timeout(1s, e.wait()); }
    co_return;
  }());
}

}  // namespace
