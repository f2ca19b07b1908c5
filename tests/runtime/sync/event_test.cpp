// weft::event: set/reset/wait, many waiters, waiters on several workers, cancellation, races.
#include <weft/sync/event.hpp>

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "../../support/eventually.hpp"

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/config.hpp>
#include <weft/join_handle.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/yield.hpp>

namespace {

using weft::testing::eventually;

constexpr int race_iterations = 10'000;

weft::task<void> wait_on(weft::event& e) {
  co_await e.wait();
}

weft::task<void> wait_and_count(weft::event& e, std::atomic<int>& woken) {
  co_await e.wait();
  woken.fetch_add(1);
}

weft::task<std::thread::id> wait_where(weft::event& e, std::atomic<int>& arrived,
                                       std::atomic<int>& waiting,
                                       const std::atomic<bool>& give_up) {
  // Hold this worker until the other task holds the other one, so the two wait on different
  // workers (unless the test gives up on that).
  arrived.fetch_add(1);
  while (arrived.load() < 2 && !give_up.load()) std::this_thread::yield();
  const auto id = std::this_thread::get_id();
  waiting.fetch_add(1);
  co_await e.wait();
  co_return id;
}

weft::task<void> set_event(weft::event& e) {
  e.set();
  co_return;
}

TEST(Event, StartsUnsetUnlessAskedOtherwise) {
  const weft::event unset;
  const weft::event set{true};
  EXPECT_FALSE(unset.is_set());
  EXPECT_TRUE(set.is_set());
}

TEST(Event, SetAndResetChangeIsSet) {
  weft::event e;
  e.set();
  EXPECT_TRUE(e.is_set());
  e.set();
  EXPECT_TRUE(e.is_set());
  e.reset();
  EXPECT_FALSE(e.is_set());
}

TEST(Event, WaitCompletesAtOnceWhenSet) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::event e{true};
  rt.block_on(wait_on(e));  // with one worker and no other task, nothing else could set it
  EXPECT_TRUE(e.is_set());
}

TEST(Event, WaitSuspendsUntilSetAfterAReset) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::event e{true};
  e.reset();
  rt.block_on([&e]() -> weft::task<void> {
    auto waiter = weft::spawn(wait_on(e));
    co_await weft::yield();
    EXPECT_FALSE(waiter.is_finished());
    e.set();
    co_await waiter;
  });
}

TEST(Event, OneSetReleasesEveryWaiter) {
  constexpr int waiters = 100;
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  weft::event e;
  std::atomic<int> woken{0};
  std::vector<weft::join_handle<void>> handles;
  for (int i = 0; i < waiters; ++i) handles.push_back(rt.spawn(wait_and_count(e, woken)));
  EXPECT_EQ(woken.load(), 0);
  e.set();
  rt.block_on([&handles]() -> weft::task<void> {
    for (auto& h : handles) co_await h;
  });
  EXPECT_EQ(woken.load(), waiters);
}

TEST(Event, WaitersOnDifferentWorkersAreAllReleased) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  weft::event e;
  std::atomic<int> arrived{0}, waiting{0};
  std::atomic<bool> give_up{false};
  auto first = rt.spawn(wait_where(e, arrived, waiting, give_up));
  auto second = rt.spawn(wait_where(e, arrived, waiting, give_up));
  const bool both_wait = eventually([&] { return waiting.load() == 2; });
  give_up.store(true);
  EXPECT_TRUE(both_wait) << "the second task never ran: the idle worker was not woken for it";
  e.set();  // from a thread outside the runtime
  const auto [a, b] = rt.block_on([&]() -> weft::task<std::pair<std::thread::id, std::thread::id>> {
    const auto first_id = co_await first;
    const auto second_id = co_await second;
    co_return std::pair{first_id, second_id};
  });
  EXPECT_NE(a, b);
}

TEST(Event, ACancelledWaitThrowsAndLeavesTheEventUsable) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::event e;
  rt.block_on([&e]() -> weft::task<void> {
    auto cancelled = weft::spawn(wait_on(e));
    auto other = weft::spawn(wait_on(e));
    co_await weft::yield();  // both wait now
    cancelled.cancel();
    EXPECT_THROW(co_await cancelled, weft::operation_cancelled);
    EXPECT_FALSE(e.is_set());
    EXPECT_FALSE(other.is_finished());
    e.set();
    co_await other;
    co_await wait_on(e);
  });
  EXPECT_TRUE(e.is_set());
}

weft::task<bool> wait_after_catching_cancellation(weft::event& e) {
  try {
    co_await weft::yield();  // cancelled during this
  } catch (const weft::operation_cancelled&) {
  }
  try {
    co_await e.wait();
  } catch (const weft::operation_cancelled&) {
    co_return true;
  }
  co_return false;
}

TEST(Event, AWaitInAnAlreadyCancelledTaskThrowsWithoutWaiting) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::event never;
  rt.block_on([&never]() -> weft::task<void> {
    auto handle = weft::spawn(wait_after_catching_cancellation(never));
    co_await weft::yield();  // it now yields too
    handle.cancel();
    EXPECT_TRUE(co_await handle);
  });
  EXPECT_FALSE(never.is_set());
}

// Each iteration races a waiter against a setter on two workers, with a fresh event.
TEST(EventStress, SetRacingWaitAlwaysReleasesTheWaiter) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  const int released = rt.block_on([]() -> weft::task<int> {
    int count = 0;
    for (int i = 0; i < race_iterations; ++i) {
      weft::event e;
      auto waiter = weft::spawn(wait_on(e));
      auto setter = weft::spawn(set_event(e));
      co_await setter;
      co_await waiter;
      ++count;
    }
    co_return count;
  });
  EXPECT_EQ(released, race_iterations);
}

TEST(EventStress, SetFromAPlainThreadRacingWaitAlwaysReleasesTheWaiter) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  constexpr int iterations = WEFT_TSAN ? race_iterations / 5 : race_iterations;
  std::atomic<int> woken{0};
  for (int i = 0; i < iterations; ++i) {
    weft::event e;
    auto waiter = rt.spawn(wait_and_count(e, woken));
    e.set();
    rt.block_on([&waiter]() -> weft::task<void> { co_await waiter; });
  }
  EXPECT_EQ(woken.load(), iterations);
}

TEST(EventStress, ResetRacingSetNeverLosesASetThatCameAfterIt) {
  // A waiter that sees "unset" after reset() must be released by the following set().
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  const int rounds = rt.block_on([]() -> weft::task<int> {
    weft::event e;
    int count = 0;
    for (int i = 0; i < race_iterations; ++i) {
      e.reset();
      auto waiter = weft::spawn(wait_on(e));
      auto setter = weft::spawn(set_event(e));
      co_await waiter;
      co_await setter;
      ++count;
    }
    co_return count;
  });
  EXPECT_EQ(rounds, race_iterations);
}

}  // namespace
