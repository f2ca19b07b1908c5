// async_generator and the map/filter/take/interval operators: values in order, inner awaits
// (timers under paused time, events from other threads), exceptions, RAII cleanup on drop,
// cancellation flowing into the generator, and interval's non-drifting schedule.
#include <weft/stream/async_generator.hpp>
#include <weft/stream/operators.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "../../support/collect.hpp"
#include "../../support/eventually.hpp"
#include "../../support/paused_time.hpp"

#include <weft/weft.hpp>

namespace {

using weft::testing::ms_since;
using weft::testing::collect;
using weft::testing::paused;

using namespace std::chrono_literals;
using weft::testing::eventually;

weft::async_generator<int> count_to(int n) {
  for (int i = 1; i <= n; ++i) co_yield i;
}

weft::async_generator<int> every_10ms(int n) {
  for (int i = 0; i < n; ++i) {
    co_await weft::sleep_for(10ms);
    co_yield i;
  }
}

struct cleanup_flag {
  std::atomic<bool>* done;
  ~cleanup_flag() { done->store(true); }
};

weft::async_generator<int> endless(std::atomic<bool>* cleaned) {
  cleanup_flag guard{cleaned};
  for (int i = 0;; ++i) co_yield i;
}

TEST(AsyncGenerator, YieldsItsValuesInOrderThenEnds) {
  weft::runtime rt{paused()};
  EXPECT_EQ(rt.block_on(collect(count_to(5))), (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(rt.block_on(collect(count_to(0))).empty());
}

TEST(AsyncGenerator, MayAwaitBetweenValues) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    auto g = every_10ms(3);
    std::vector<long> at;
    while (auto v = co_await g.next()) at.push_back(ms_since(start));
    EXPECT_EQ(at, (std::vector<long>{10, 20, 30}));
    EXPECT_FALSE((co_await g.next()).has_value());  // stays ended
  });
}

TEST(AsyncGenerator, IsResumedByWhateverItAwaitsOnAnyThread) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  for (int round = 0; round < 200; ++round) {
    weft::event go;
    std::atomic<bool> waiting{false};
    auto gen = [](weft::event* e, std::atomic<bool>* w) -> weft::async_generator<int> {
      co_yield 1;
      w->store(true);
      co_await e->wait();  // set from a plain thread
      co_yield 2;
    }(&go, &waiting);
    std::thread setter{[&] {
      eventually([&] { return waiting.load(); });
      go.set();
    }};
    EXPECT_EQ(rt.block_on(collect(std::move(gen))), (std::vector<int>{1, 2}));
    setter.join();
  }
}

TEST(AsyncGenerator, AnExceptionIsRethrownByNext) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto g = []() -> weft::async_generator<int> {
      co_yield 1;
      throw std::runtime_error("broken stream");
    }();
    EXPECT_EQ(*co_await g.next(), 1);
    EXPECT_THROW(co_await g.next(), std::runtime_error);
    EXPECT_FALSE((co_await g.next()).has_value());
  });
}

TEST(AsyncGenerator, DroppingItRunsItsCleanup) {
  weft::runtime rt{paused()};
  std::atomic<bool> cleaned{false};
  rt.block_on([&]() -> weft::task<void> {
    auto g = endless(&cleaned);
    EXPECT_EQ(*co_await g.next(), 0);
    EXPECT_EQ(*co_await g.next(), 1);
    EXPECT_FALSE(cleaned.load());
  });
  EXPECT_TRUE(cleaned.load());
}

TEST(AsyncGenerator, TheConsumersCancellationReachesTheGenerator) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto h = weft::spawn([]() -> weft::task<void> {
      auto g = every_10ms(1000);
      while (auto v = co_await g.next()) {
      }
    }());
    co_await weft::sleep_for(25ms);
    h.cancel();
    EXPECT_THROW(co_await std::move(h), weft::operation_cancelled);
  });
}

TEST(AsyncGenerator, NextOnAnEmptyGeneratorIsALogicError) {
  weft::runtime rt{paused()};
  EXPECT_THROW(rt.block_on([]() -> weft::task<void> {
    weft::async_generator<int> empty;
    co_await empty.next();
  }),
               std::logic_error);
}

TEST(Operators, MapFilterAndTakeCompose) {
  weft::runtime rt{paused()};
  std::atomic<bool> cleaned{false};
  const auto out = rt.block_on(collect(
      weft::take(weft::map(weft::filter(endless(&cleaned), [](int x) { return x % 2 == 0; }),
                           [](int x) { return x * 10; }),
                 4)));
  EXPECT_EQ(out, (std::vector<int>{0, 20, 40, 60}));
  EXPECT_TRUE(cleaned.load());  // take let go of the endless source
}

TEST(Operators, ForEachHandlesEveryValueInOrderAwaitingEachHandler) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    std::vector<int> seen;
    co_await weft::for_each(count_to(4), [&](int v) { seen.push_back(v); });
    EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4}));
    const auto start = weft::clock::now();
    std::vector<long> at;
    co_await weft::for_each(count_to(3), [&](int) -> weft::task<void> {
      co_await weft::sleep_for(5ms);  // the next value waits for this handler
      at.push_back(ms_since(start));
    });
    EXPECT_EQ(at, (std::vector<long>{5, 10, 15}));
  });
}

TEST(Operators, IntervalTicksOnASchedule) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    auto ticks = weft::interval(100ms);
    std::vector<std::pair<std::uint64_t, long>> seen;
    for (int i = 0; i < 3; ++i) {
      auto k = co_await ticks.next();
      seen.emplace_back(*k, ms_since(start));
    }
    EXPECT_EQ(seen, (std::vector<std::pair<std::uint64_t, long>>{{0, 100}, {1, 200}, {2, 300}}));
    // A consumer that falls behind gets the missed ticks at once, without drift.
    co_await weft::sleep_for(250ms);  // now 550 ms: ticks due at 400 and 500 were missed
    EXPECT_EQ(*co_await ticks.next(), 3u);
    EXPECT_EQ(*co_await ticks.next(), 4u);
    EXPECT_EQ(ms_since(start), 550);
    EXPECT_EQ(*co_await ticks.next(), 5u);
    EXPECT_EQ(ms_since(start), 600);
  });
  EXPECT_THROW((void)weft::interval(0ms), std::invalid_argument);
}

}  // namespace
