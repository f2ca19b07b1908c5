// Work-first joins: joining a spawned task that has not started and is still queued last on the
// joiner's worker runs it right there, so fork-join code runs depth-first (live tasks bounded by
// the recursion depth, not by the width of the tree). The run queue's take_back, which makes
// that possible while other workers steal, is tested here too (white-box, many iterations).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <thread>
#include <vector>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/join_handle.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>

#include "scheduler/injection_queue.hpp"
#include "scheduler/local_queue.hpp"
#include "support/paused_time.hpp"

namespace {

using namespace std::chrono_literals;

/// Counts bodies that started and have not finished, and the most at once.
struct live_counter {
  std::atomic<long> now{0};
  std::atomic<long> most{0};
};
struct probe {
  live_counter* c;
  explicit probe(live_counter* counter) : c(counter) {
    const long v = c->now.fetch_add(1) + 1;
    long m = c->most.load();
    while (v > m && !c->most.compare_exchange_weak(m, v)) {
    }
  }
  probe(const probe&) = delete;
  probe& operator=(const probe&) = delete;
  ~probe() { c->now.fetch_sub(1); }
};

weft::task<std::uint64_t> fib(int n, live_counter* c) {
  probe p{c};
  if (n < 2) co_return static_cast<std::uint64_t>(n);
  auto left = weft::spawn(fib(n - 1, c));
  const auto right = co_await fib(n - 2, c);
  co_return co_await left + right;
}

TEST(WorkFirst, ForkJoinRunsDepthFirstOnOneWorker) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  live_counter c;
  EXPECT_EQ(rt.block_on(fib(22, &c)), 17'711u);
  // Breadth-first (every join waiting for the queue) had thousands of bodies started at once:
  // each joined task now runs as soon as its joiner waits for it.
  EXPECT_LE(c.most.load(), 2 * 22);
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

TEST(WorkFirst, ForkJoinOnTwoWorkersManyTimes) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  for (int round = 0; round < 100; ++round) {
    live_counter c;
    EXPECT_EQ(rt.block_on(fib(16, &c)), 987u) << "round " << round;
    EXPECT_EQ(c.now.load(), 0);
  }
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

weft::task<int> chain(int k) {
  if (k == 0) co_return 0;
  auto h = weft::spawn(chain(k - 1));
  co_return co_await h + 1;
}

TEST(WorkFirst, ALongChainOfJoinsDoesNotExhaustTheStack) {
  // Each link joins the one it spawned: 20,000 nested joins. Inline runs nest only to a bound;
  // deeper joins wait for the queue as before.
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  EXPECT_EQ(rt.block_on(chain(20'000)), 20'000);
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

weft::task<int> sleeper(std::chrono::milliseconds d, int v) {
  co_await weft::sleep_for(d);
  co_return v;
}

TEST(WorkFirst, AJoinedTaskThatSuspendsStillWakesItsJoiner) {
  weft::runtime rt{weft::testing::paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    auto h = weft::spawn(sleeper(10ms, 5));  // runs inline at the join, then sleeps
    EXPECT_EQ(co_await h, 5);
    EXPECT_EQ(weft::testing::ms_since(t0), 10);
  });
}

TEST(WorkFirst, JoinedTasksStillRunInSpawnOrderWhenNotJoined) {
  // Only a joined task is taken back; the others keep their places.
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([]() -> weft::task<void> {
    std::vector<int> order;
    auto record = [](std::vector<int>* o, int v) -> weft::task<void> {
      o->push_back(v);
      co_return;
    };
    auto a = weft::spawn(record(&order, 1));
    auto b = weft::spawn(record(&order, 2));
    auto c = weft::spawn(record(&order, 3));
    co_await a;  // a is first in the queue, not last: it is not taken back
    co_await b;
    co_await c;
    EXPECT_EQ(order.size(), 3u);
    EXPECT_EQ(order.front(), 3) << "the last spawned waits in the LIFO slot and runs first";
  });
}

TEST(WorkFirst, ACancelledJoinerOfAnInlineTaskThrowsAndTheTaskRunsOn) {
  weft::runtime rt{weft::testing::paused()};
  rt.block_on([]() -> weft::task<void> {
    std::atomic<bool> finished{false};
    auto body = [](std::atomic<bool>* f) -> weft::task<void> {
      co_await weft::sleep_for(20ms);
      f->store(true);
    };
    auto joiner = weft::spawn([](weft::task<void> t) -> weft::task<void> {
      auto h = weft::spawn(std::move(t));
      co_await h;  // runs the body inline until its sleep, then waits
    }(body(&finished)));
    co_await weft::sleep_for(5ms);
    joiner.cancel();
    bool threw = false;
    try {
      co_await joiner;
    } catch (const weft::operation_cancelled&) {
      threw = true;
    }
    EXPECT_TRUE(threw);
    co_await weft::sleep_for(30ms);
    EXPECT_TRUE(finished.load()) << "a cancelled join leaves the task running";
  });
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

// take_back against stealers: every entry is taken exactly once, by the owner's pop, its
// take_back, or a stealer.
TEST(LocalQueue, TakeBackRacesStealersAndLosesNothing) {
  using weft::detail::injection_queue;
  using weft::detail::local_queue;
  constexpr std::uintptr_t entries = 400'000;
  local_queue owner_q;
  injection_queue overflow;
  std::vector<std::atomic<std::uint8_t>> seen(entries + 1);
  std::atomic<bool> done{false};
  auto take = [&](void* p) {
    const auto i = reinterpret_cast<std::uintptr_t>(p) >> 4;
    ASSERT_LE(i, entries);
    EXPECT_EQ(seen[i].fetch_add(1), 0) << "entry " << i << " taken twice";
  };
  auto stealer = [&] {
    local_queue mine;
    while (!done.load(std::memory_order_acquire) || owner_q.size() > 0) {
      std::uint32_t n = 0;
      if (auto h = owner_q.steal_into(mine, n)) {
        take(h.address());
        while (auto more = mine.pop()) take(more.address());
      } else {
        std::this_thread::yield();
      }
    }
  };
  std::thread s1(stealer), s2(stealer);
  std::uint64_t x = 7;
  for (std::uintptr_t i = 1; i <= entries; ++i) {
    void* p = reinterpret_cast<void*>(i << 4);
    owner_q.push_back(std::coroutine_handle<>::from_address(p), overflow);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    if (x % 3 == 0) {
      if (owner_q.take_back(p)) take(p);
    } else if (x % 7 == 0) {
      if (auto h = owner_q.pop()) take(h.address());
    }
  }
  done.store(true, std::memory_order_release);
  s1.join();
  s2.join();
  while (auto h = owner_q.pop()) take(h.address());
  void* batch[64];
  while (std::size_t n = overflow.pop_batch(batch, 64)) {
    for (std::size_t k = 0; k < n; ++k) take(batch[k]);
  }
  for (std::uintptr_t i = 1; i <= entries; ++i) {
    ASSERT_EQ(seen[i].load(), 1) << "entry " << i << " lost";
  }
}

TEST(LocalQueue, TakeBackOnlyTakesTheLastEntry) {
  using weft::detail::injection_queue;
  using weft::detail::local_queue;
  local_queue q;
  injection_queue overflow;
  void* a = reinterpret_cast<void*>(std::uintptr_t{16});
  void* b = reinterpret_cast<void*>(std::uintptr_t{32});
  EXPECT_FALSE(q.take_back(a)) << "empty";
  q.push_back(std::coroutine_handle<>::from_address(a), overflow);
  q.push_back(std::coroutine_handle<>::from_address(b), overflow);
  EXPECT_FALSE(q.take_back(a)) << "a is not last";
  EXPECT_TRUE(q.take_back(b));
  EXPECT_FALSE(q.take_back(b)) << "taken once";
  EXPECT_TRUE(q.take_back(a)) << "the only one left";
  EXPECT_EQ(q.size(), 0u);
  EXPECT_FALSE(q.pop());
}

}  // namespace
