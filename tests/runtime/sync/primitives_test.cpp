// weft::mutex, weft::semaphore, weft::latch and weft::barrier: exclusion and limits across
// workers, FIFO hand-over, multi-unit requests, cancellation, misuse, and reuse across phases.
#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "../../support/paused_time.hpp"

#include <weft/detail/config.hpp>
#include <weft/weft.hpp>

namespace {

using weft::testing::ms_since;
using weft::testing::paused;

using namespace std::chrono_literals;

#if WEFT_TSAN || WEFT_ASAN
constexpr int rounds = 200;
#else
constexpr int rounds = 2'000;
#endif

TEST(Mutex, ExcludesAcrossSuspensionsOnTwoWorkers) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  weft::mutex m;
  std::atomic<int> inside{0}, worst{0};
  long counter = 0;  // guarded by m only
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    for (int t = 0; t < 8; ++t) {
      group.spawn(weft::co_invoke([&]() -> weft::task<void> {
        for (int i = 0; i < rounds; ++i) {
          auto guard = co_await m.lock();
          const int n = inside.fetch_add(1) + 1;
          int w = worst.load();
          while (n > w && !worst.compare_exchange_weak(w, n)) {
          }
          const long seen = counter;
          co_await weft::yield();  // held across a suspension
          counter = seen + 1;
          inside.fetch_sub(1);
        }
      }));
    }
    co_await group.join();
  });
  EXPECT_EQ(worst.load(), 1);
  EXPECT_EQ(counter, 8L * rounds);
  EXPECT_FALSE(m.is_locked());
}

TEST(Mutex, IsHandedOverInTheOrderTasksAsked) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::mutex m;
    std::vector<int> order;
    auto held = co_await m.lock();
    EXPECT_TRUE(m.is_locked());
    EXPECT_FALSE(m.try_lock().has_value());
    weft::task_group group;
    for (int i = 0; i < 5; ++i) {
      group.spawn(weft::co_invoke([&m, &order, i]() -> weft::task<void> {
        auto g = co_await m.lock();
        order.push_back(i);
        co_await weft::sleep_for(1ms);
      }));
      co_await weft::yield();  // task i waits before task i + 1
    }
    held.release();
    co_await group.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
    auto again = m.try_lock();
    EXPECT_TRUE(again.has_value());
  });
}

TEST(Mutex, ACancelledLockHoldsNothing) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::mutex m;
    auto held = co_await m.lock();
    auto h =
        weft::spawn(weft::co_invoke([&m]() -> weft::task<void> { auto g = co_await m.lock(); }));
    co_await weft::yield();
    h.cancel();
    EXPECT_THROW(co_await std::move(h), weft::operation_cancelled);
    held.release();
    EXPECT_FALSE(m.is_locked());
  });
}

TEST(Semaphore, LimitsHowManyHoldItAtOnce) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  weft::semaphore slots{3};
  std::atomic<int> inside{0}, worst{0};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    for (int t = 0; t < 10; ++t) {
      group.spawn(weft::co_invoke([&]() -> weft::task<void> {
        for (int i = 0; i < rounds / 10; ++i) {
          auto permit = co_await slots.acquire();
          const int n = inside.fetch_add(1) + 1;
          int w = worst.load();
          while (n > w && !worst.compare_exchange_weak(w, n)) {
          }
          co_await weft::yield();
          inside.fetch_sub(1);
        }
      }));
    }
    co_await group.join();
  });
  EXPECT_LE(worst.load(), 3);
  EXPECT_EQ(slots.available(), 3u);
}

TEST(Semaphore, ALargeRequestIsNotStarvedBySmallOnes) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::semaphore s{4};
    std::vector<int> order;
    auto first = co_await s.acquire(3);
    weft::task_group group;
    group.spawn(weft::co_invoke([&]() -> weft::task<void> {
      auto p = co_await s.acquire(4);  // needs everything: waits for `first`
      EXPECT_EQ(p.units(), 4u);
      order.push_back(4);
    }));
    co_await weft::yield();
    group.spawn(weft::co_invoke([&]() -> weft::task<void> {
      auto p = co_await s.acquire(1);  // 1 unit is free, but the big request asked first
      order.push_back(1);
    }));
    co_await weft::yield();
    EXPECT_FALSE(s.try_acquire(1).has_value());  // FIFO: no barging either
    first.release();
    co_await group.join();
    EXPECT_EQ(order, (std::vector<int>{4, 1}));
    EXPECT_EQ(s.available(), 4u);
  });
}

TEST(Semaphore, CancellingTheFrontRequestLetsTheOthersThrough) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::semaphore s{2};
    auto one = co_await s.acquire(1);
    auto big = weft::spawn(
        weft::co_invoke([&s]() -> weft::task<void> { auto p = co_await s.acquire(2); }));
    co_await weft::yield();
    auto small = weft::spawn(weft::co_invoke([&s]() -> weft::task<std::size_t> {
      auto p = co_await s.acquire(1);
      co_return p.units();
    }));
    co_await weft::yield();
    big.cancel();
    EXPECT_THROW(co_await std::move(big), weft::operation_cancelled);
    EXPECT_EQ(co_await std::move(small), 1u);
  });
}

TEST(Semaphore, PermitsMoveAndReleaseOnce) {
  weft::semaphore s{2};
  auto p = s.try_acquire(2);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(s.available(), 0u);
  weft::semaphore::permit moved = std::move(*p);
  EXPECT_FALSE(static_cast<bool>(*p));
  moved.release();
  moved.release();
  EXPECT_EQ(s.available(), 2u);
  EXPECT_THROW(s.try_acquire(0), std::invalid_argument);
  EXPECT_THROW((void)s.acquire(0), std::invalid_argument);
}

TEST(Latch, ReleasesWaitersWhenTheCountReachesZero) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  weft::latch done{3};
  EXPECT_FALSE(done.try_wait());
  std::atomic<int> released{0};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    for (int i = 0; i < 4; ++i) {
      group.spawn(weft::co_invoke([&]() -> weft::task<void> {
        co_await done.wait();
        released.fetch_add(1);
      }));
    }
    for (int i = 0; i < 3; ++i) {
      group.spawn(weft::co_invoke([&]() -> weft::task<void> {
        done.count_down();
        co_return;
      }));
    }
    co_await group.join();
  });
  EXPECT_EQ(released.load(), 4);
  EXPECT_TRUE(done.try_wait());
  EXPECT_THROW(done.count_down(), std::logic_error);
  EXPECT_THROW(weft::latch{-1}, std::invalid_argument);
  EXPECT_TRUE(weft::latch{0}.try_wait());
}

TEST(Barrier, IsReusedPhaseAfterPhase) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  constexpr int tasks = 4, phases = 50;
  weft::barrier step{tasks};
  std::atomic<int> in_phase[phases] = {};
  std::atomic<bool> ok{true};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    for (int t = 0; t < tasks; ++t) {
      group.spawn(weft::co_invoke([&]() -> weft::task<void> {
        for (int p = 0; p < phases; ++p) {
          in_phase[p].fetch_add(1);
          const auto completed = co_await step.arrive_and_wait();
          // Nobody leaves a phase before everyone entered it.
          if (in_phase[p].load() != tasks || completed != static_cast<std::uint64_t>(p)) {
            ok.store(false);
          }
        }
      }));
    }
    co_await group.join();
  });
  EXPECT_TRUE(ok.load());
  EXPECT_THROW(weft::barrier{0}, std::invalid_argument);
}

TEST(Barrier, ACancelledWaiterWithdrawsItsArrival) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::barrier b{2};
    auto quitter =
        weft::spawn(weft::co_invoke([&b]() -> weft::task<void> { co_await b.arrive_and_wait(); }));
    co_await weft::yield();
    quitter.cancel();
    EXPECT_THROW(co_await std::move(quitter), weft::operation_cancelled);
    // The phase still needs two arrivals.
    auto second = weft::spawn(weft::co_invoke(
        [&b]() -> weft::task<std::uint64_t> { co_return co_await b.arrive_and_wait(); }));
    co_await weft::yield();
    EXPECT_FALSE(second.is_finished());
    EXPECT_EQ(co_await b.arrive_and_wait(), 0u);
    EXPECT_EQ(co_await std::move(second), 0u);
  });
}

}  // namespace
