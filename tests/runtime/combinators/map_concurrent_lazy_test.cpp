// map_concurrent is lazy: fn is called for an element only when a slot is free, the range is
// read one element at a time (single-pass input ranges work), and the live tasks stay within the
// limit however long the range. Paused time for the orderings; two workers for the races.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <ranges>
#include <stdexcept>
#include <vector>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/combinators/map_concurrent.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>
#include <weft/time/timed_out.hpp>
#include <weft/time/timeout.hpp>
#include <weft/yield.hpp>

#include "support/paused_time.hpp"

namespace {

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

using weft::testing::paused;

/// A single-pass range of 0, 1, …, n-1 that counts how far it was read (an input iterator
/// only: no second pass, no size).
class counting_input {
 public:
  struct state {
    int next = 0;
    int n = 0;
  };
  class iterator {
   public:
    using value_type = int;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(state* s) : s_(s) {}
    int operator*() const { return s_->next; }
    iterator& operator++() {
      ++s_->next;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) {
      return it.s_->next >= it.s_->n;
    }

   private:
    state* s_ = nullptr;
  };
  explicit counting_input(state* s) : s_(s) {}
  iterator begin() const { return iterator{s_}; }
  std::default_sentinel_t end() const { return {}; }

 private:
  state* s_;
};
static_assert(std::ranges::input_range<counting_input>);
static_assert(!std::ranges::forward_range<counting_input>);
static_assert(!std::ranges::sized_range<counting_input>);

TEST(MapConcurrentLazy, CallsFnOnlyWhenASlotIsFree) {
  weft::runtime rt{paused()};
  std::vector<int> inputs(10);
  for (int i = 0; i < 10; ++i) inputs[static_cast<std::size_t>(i)] = i;
  std::atomic<int> called{0};
  rt.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    auto h = weft::spawn(weft::map_concurrent(
        inputs,
        [&](int x) -> weft::task<int> {
          called.fetch_add(1);
          co_await weft::sleep_for(10ms);
          co_return x;
        },
        3));
    co_await weft::sleep_for(5ms);
    EXPECT_EQ(called.load(), 3) << "only the first three elements were asked for";
    co_await weft::sleep_for(10ms);  // 15 ms: the first three finished at 10 ms
    EXPECT_EQ(called.load(), 6);
    const auto out = co_await std::move(h);
    EXPECT_EQ(weft::clock::now() - t0, 40ms);  // four rounds of 10 ms
    EXPECT_EQ(out.size(), 10u);
    for (int i = 0; i < 10 && out.size() == 10u; ++i)
      EXPECT_EQ(out[static_cast<std::size_t>(i)], i);
  });
  EXPECT_EQ(called.load(), 10);
}

TEST(MapConcurrentLazy, ASinglePassInputRangeIsReadAsSlotsFree) {
  weft::runtime rt{paused()};
  counting_input::state st{.next = 0, .n = 7};
  rt.block_on([&]() -> weft::task<void> {
    auto h = weft::spawn(weft::map_concurrent(
        counting_input{&st},
        [](int x) -> weft::task<int> {
          co_await weft::sleep_for(ms{10});
          co_return x * 2;
        },
        2));
    co_await weft::sleep_for(1ms);
    EXPECT_EQ(st.next, 2) << "two elements read, two slots";
    const auto out = co_await std::move(h);
    EXPECT_EQ(out.size(), 7u);
    for (int i = 0; i < 7 && out.size() == 7u; ++i)
      EXPECT_EQ(out[static_cast<std::size_t>(i)], i * 2);
  });
  EXPECT_EQ(st.next, 7);
}

TEST(MapConcurrentLazy, AMillionElementsWithLimitEightKeepFewTasksAlive) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  constexpr int n = 1'000'000;
  std::atomic<int> alive{0};
  std::atomic<int> most{0};
  std::atomic<long> sum{0};
  rt.block_on([&]() -> weft::task<void> {
    co_await weft::map_concurrent(
        std::views::iota(0, n),
        [&](int x) -> weft::task<void> {
          const int now = alive.fetch_add(1) + 1;
          int m = most.load();
          while (now > m && !most.compare_exchange_weak(m, now)) {
          }
          sum.fetch_add(x);
          alive.fetch_sub(1);
          co_return;
        },
        8);
    // Counted from outside the map: its children and the frames fn made.
    EXPECT_LE(rt.stats().live_tasks, 16u);
  });
  EXPECT_EQ(sum.load(), static_cast<long>(n) * (n - 1) / 2);
  EXPECT_LE(most.load(), 8);
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

TEST(MapConcurrentLazy, LiveTasksStayWithinTheLimitWhileItRuns) {
  weft::runtime rt{paused()};
  std::size_t most_live = 0;
  rt.block_on([&]() -> weft::task<void> {
    auto h = weft::spawn(weft::map_concurrent(
        std::views::iota(0, 10'000),
        [](int x) -> weft::task<void> {
          co_await weft::sleep_for(ms{1 + x % 3});
          co_return;
        },
        8));
    for (int i = 0; i < 50; ++i) {
      co_await weft::sleep_for(1ms);
      const std::size_t live = rt.stats().live_tasks;
      if (live > most_live) most_live = live;
    }
    co_await std::move(h);
  });
  // The map itself, its 8 children, and this task.
  EXPECT_LE(most_live, 10u);
  EXPECT_GE(most_live, 9u) << "the limit was used";
}

TEST(MapConcurrentLazy, FnThrowingMidwayCancelsTheRunningChildren) {
  weft::runtime rt{paused()};
  std::atomic<int> called{0}, stopped{0};
  rt.block_on([&]() -> weft::task<void> {
    bool threw = false;
    try {
      co_await weft::map_concurrent(
          std::views::iota(0, 100),
          [&](int x) -> weft::task<void> {
            called.fetch_add(1);
            if (x == 5) throw std::runtime_error("fn refused 5");
            return [](int x, std::atomic<int>* s) -> weft::task<void> {
              try {
                // Element 0 finishes at once and frees a slot: 4 and then 5 are asked for.
                co_await weft::sleep_for(x == 0 || x == 4 ? 1ms : 1h);
              } catch (const weft::operation_cancelled&) {
                s->fetch_add(1);
                throw;
              }
            }(x, &stopped);
          },
          4);
    } catch (const std::runtime_error& e) {
      threw = true;
      EXPECT_STREQ(e.what(), "fn refused 5");
    }
    EXPECT_TRUE(threw);
  });
  EXPECT_EQ(called.load(), 6);
  EXPECT_EQ(stopped.load(), 3) << "1, 2 and 3 were cancelled and awaited";
}

TEST(MapConcurrentLazy, CancellingTheCallerStopsStartingAndCancelsTheRunningOnes) {
  weft::runtime rt{paused()};
  std::atomic<int> called{0};
  rt.block_on([&]() -> weft::task<void> {
    bool cancelled = false;
    try {
      co_await weft::timeout(25ms, weft::map_concurrent(
                                       std::views::iota(0, 1000),
                                       [&](int) -> weft::task<void> {
                                         called.fetch_add(1);
                                         co_await weft::sleep_for(10ms);
                                       },
                                       2));
    } catch (const weft::timed_out&) {
      cancelled = true;
    }
    EXPECT_TRUE(cancelled);
  });
  // Rounds at 0, 10 and 20 ms; the third round is cancelled at 25 ms.
  EXPECT_EQ(called.load(), 6);
}

TEST(MapConcurrentLazy, ManyRoundsOnTwoWorkersWithCancellationRaces) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  for (int round = 0; round < 100; ++round) {
    std::atomic<int> done{0};
    rt.block_on([&]() -> weft::task<void> {
      auto h = weft::spawn(weft::map_concurrent(
          std::views::iota(0, 200),
          [&](int) -> weft::task<void> {
            co_await weft::yield();
            done.fetch_add(1);
          },
          3));
      if (round % 2 == 1) h.cancel();
      try {
        co_await std::move(h);
        EXPECT_EQ(done.load(), 200);
      } catch (const weft::operation_cancelled&) {
        EXPECT_LE(done.load(), 200);
      }
    });
  }
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

}  // namespace
