// weft::flow::pipeline under paused time: concurrency limits, order, backpressure, failure
// policies, cancellation and the counter identity.
#include <weft/flow/pipeline.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <ranges>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/resilience/error.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/sync/event.hpp>
#include <weft/time/sleep.hpp>
#include <weft/time/timeout.hpp>

#include "support/collect.hpp"
#include "support/paused_time.hpp"

namespace {

using namespace std::chrono_literals;
namespace flow = weft::flow;

std::vector<int> numbers(int n) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back(i);
  return v;
}

using weft::testing::collect;

TEST(FlowPipeline, ThreeStagesKeepTheInputOrderAndTheirConcurrencyLimits) {
  weft::runtime rt{weft::testing::paused()};
  auto p = flow::from_range(numbers(200))
               .stage({.name = "validate", .concurrency = 5},
                      [](int x) -> weft::task<int> {
                        // Later items finish first: the order must come from the reorder buffer.
                        co_await weft::sleep_for(std::chrono::milliseconds{1 + (7 * x) % 13});
                        co_return x;
                      })
               .stage({.name = "transform", .concurrency = 3},
                      [](int x) -> weft::task<std::string> {
                        co_await weft::sleep_for(std::chrono::milliseconds{1 + (5 * x) % 7});
                        co_return std::to_string(x * 2);
                      })
               .stage({.name = "persist", .concurrency = 2},
                      [](std::string s) -> weft::task<std::size_t> {
                        co_await weft::sleep_for(2ms);
                        co_return s.size();
                      });
  const auto stats = p.stats();
  auto out = rt.block_on(collect(std::move(p).run()));
  ASSERT_EQ(out.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(out[i], std::to_string(i * 2).size()) << i;
  const auto s = stats.snapshot();
  ASSERT_EQ(s.stages.size(), 3u);
  EXPECT_EQ(s.stages[0].max_in_flight, 5u);
  EXPECT_EQ(s.stages[1].max_in_flight, 3u);
  EXPECT_EQ(s.stages[2].max_in_flight, 2u);
  for (const auto& st : s.stages) {
    EXPECT_EQ(st.in, 200u) << st.name;
    EXPECT_EQ(st.out, 200u) << st.name;
    EXPECT_EQ(st.in_flight, 0u);
    EXPECT_EQ(st.latency.count(), 200u);
  }
  EXPECT_EQ(s.admitted, 200u);
  EXPECT_EQ(s.emitted, 200u);
  EXPECT_TRUE(s.finished);
  EXPECT_TRUE(s.consistent());
}

TEST(FlowPipeline, CompletionOrderYieldsItemsAsTheyFinish) {
  weft::runtime rt{weft::testing::paused()};
  auto out = rt.block_on(collect(flow::from_range(numbers(3))
                                     .stage({.concurrency = 3},
                                            [](int x) -> weft::task<int> {
                                              co_await weft::sleep_for(
                                                  std::chrono::milliseconds{30 - 10 * x});
                                              co_return x;
                                            })
                                     .ordered(flow::ordering::completion)
                                     .run()));
  EXPECT_EQ(out, (std::vector<int>{2, 1, 0}));
}

TEST(FlowPipeline, AStalledStageHoldsThePipelineWithinItsWindow) {
  weft::runtime rt{weft::testing::paused()};
  weft::event release;
  std::atomic<int> read{0};
  auto counting = [&]() -> weft::async_generator<int> {
    for (int i = 0; i < 1'000'000; ++i) {
      ++read;
      co_yield i;
    }
  };
  auto p = flow::from_generator(counting(), 4)
               .stage({.concurrency = 2, .buffer = 8},
                      [](int x) -> weft::task<int> { co_return x; })
               .stage({.concurrency = 3, .buffer = 5}, [&](int x) -> weft::task<int> {
                 co_await release.wait();  // stalled until released
                 co_return x;
               });
  const std::size_t window = p.window();
  EXPECT_EQ(window, 4u + 2 + 8 + 3 + 5);
  const auto stats = p.stats();
  rt.block_on([&, p = std::move(p)]() mutable -> weft::task<void> {
    auto out = std::move(p).run();
    // Pull once in the background; everything else piles up against the stalled stage.
    auto first = weft::spawn([](weft::async_generator<int>& g) -> weft::task<std::optional<int>> {
      co_return co_await g.next();
    }(out));
    co_await weft::sleep_for(1s);  // paused time: everything that can move has moved
    const auto s = stats.snapshot();
    EXPECT_LE(s.admitted, window);
    // The source's pump and reader each hold one item beyond the window.
    EXPECT_LE(static_cast<std::size_t>(read.load()), window + 2);
    EXPECT_EQ(s.stages[1].in_flight, 3u);
    EXPECT_EQ(s.stages[1].queued, 8u);  // stage 1's output queue is full
    EXPECT_EQ(s.stages[0].queued, 4u);  // and so is the source's
    EXPECT_TRUE(s.consistent());
    release.set();
    EXPECT_EQ(co_await first, std::optional<int>{0});
    // Dropping the generator now cancels the rest; what was inside is counted as abandoned.
  });
  const auto s = stats.snapshot();
  EXPECT_TRUE(s.finished);
  EXPECT_TRUE(s.consistent());
  EXPECT_GT(s.abandoned, 0u);
}

TEST(FlowPipeline, FailurePoliciesDropDeadLetterOrFail) {
  weft::runtime rt{weft::testing::paused()};
  auto odd_fails = [](int x) -> weft::task<int> {
    co_await weft::sleep_for(1ms);
    if (x % 2 == 1) throw std::runtime_error("odd " + std::to_string(x));
    co_return x;
  };
  {  // drop
    auto p = flow::from_range(numbers(10)).stage(
        {.name = "even", .concurrency = 3, .on_failure = flow::failure_policy::drop}, odd_fails);
    const auto stats = p.stats();
    auto out = rt.block_on(collect(std::move(p).run()));
    EXPECT_EQ(out, (std::vector<int>{0, 2, 4, 6, 8}));
    const auto s = stats.snapshot();
    EXPECT_EQ(s.stages[0].dropped, 5u);
    EXPECT_EQ(s.stages[0].failed, 5u);
    EXPECT_TRUE(s.consistent());
  }
  {  // dead letter, with the item and the reason
    std::vector<flow::dead_letter> letters;
    auto p = flow::from_range(numbers(10))
                 .stage({.name = "even", .concurrency = 3,
                         .on_failure = flow::failure_policy::dead_letter},
                        odd_fails)
                 .dead_letters([&](flow::dead_letter d) { letters.push_back(std::move(d)); });
    const auto stats = p.stats();
    auto out = rt.block_on(collect(std::move(p).run()));
    EXPECT_EQ(out.size(), 5u);
    ASSERT_EQ(letters.size(), 5u);
    for (const auto& d : letters) {
      EXPECT_EQ(d.stage, "even");
      EXPECT_EQ(std::any_cast<int>(d.item) % 2, 1);
      EXPECT_EQ(static_cast<int>(d.sequence), std::any_cast<int>(d.item));
      EXPECT_THROW(std::rethrow_exception(d.error), std::runtime_error);
    }
    EXPECT_EQ(stats.snapshot().dead_lettered(), 5u);
    EXPECT_TRUE(stats.snapshot().consistent());
  }
  {  // fail: the output rethrows once every stage stopped
    auto p = flow::from_range(numbers(100)).stage({.name = "even", .concurrency = 3}, odd_fails);
    const auto stats = p.stats();
    EXPECT_THROW(rt.block_on(collect(std::move(p).run())), std::runtime_error);
    const auto s = stats.snapshot();
    EXPECT_TRUE(s.finished);
    EXPECT_EQ(s.stages[0].in_flight, 0u);
    EXPECT_GE(s.stages[0].failed, 1u);
    EXPECT_TRUE(s.consistent());
    EXPECT_GT(s.abandoned, 0u);
  }
}

TEST(FlowPipeline, CancellingTheConsumerStopsEveryStageAndCountsWhatWasInside) {
  weft::runtime rt{weft::testing::paused()};
  std::atomic<int> running{0};
  auto p = flow::from_range(numbers(1000))
               .stage({.concurrency = 4}, [&](int x) -> weft::task<int> {
                 ++running;
                 struct leave {
                   std::atomic<int>& n;
                   ~leave() { --n; }
                 } guard{running};
                 co_await weft::sleep_for(10ms);
                 co_return x;
               });
  const auto stats = p.stats();
  EXPECT_THROW(rt.block_on(weft::timeout(25ms, collect(std::move(p).run()))), weft::timed_out);
  EXPECT_EQ(running.load(), 0);  // every stage's callable ended before the timeout returned
  const auto s = stats.snapshot();
  EXPECT_TRUE(s.finished);
  EXPECT_TRUE(s.consistent());
  EXPECT_GT(s.emitted, 0u);
  EXPECT_GT(s.abandoned, 0u);
}

TEST(FlowPipeline, AChannelSourceAndAVoidLastStage) {
  weft::runtime rt{weft::testing::paused()};
  weft::channel<int> in{4};
  std::atomic<int> sum{0};
  auto n = rt.block_on([&]() -> weft::task<std::size_t> {
    auto producer = weft::spawn([](weft::channel<int>& ch) -> weft::task<void> {
      for (int i = 1; i <= 100; ++i) co_await ch.send(int{i});
      ch.close();
    }(in));
    auto out = flow::from_channel(in)
                   .stage({.concurrency = 4}, [&](int x) -> weft::task<void> {
                     sum += x;
                     co_return;
                   })
                   .run();
    std::size_t count = 0;
    while (auto v = co_await out.next()) ++count;
    co_await producer;
    co_return count;
  });
  EXPECT_EQ(n, 100u);
  EXPECT_EQ(sum.load(), 5050);
}

TEST(FlowPipeline, FastStagesOnTwoWorkersKeepEveryItemAndTheOrder) {
  // Trivial stages: the source moves items in batches (docs/flow.md); the output must still be
  // every item, once, in order. Many iterations on two real workers, for the races.
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  for (int round = 0; round < 20; ++round) {
    constexpr int n = 50'000;
    auto p = flow::from_range(std::views::iota(0, n), 64)
                 .stage({.name = "a", .concurrency = 2, .buffer = 64},
                        [](int x) -> weft::task<int> { co_return x + 1; })
                 .stage({.name = "b", .concurrency = 2, .buffer = 64},
                        [](int x) -> weft::task<long> { co_return 2L * x; });
    const auto stats = p.stats();
    const auto out = rt.block_on(collect(std::move(p).run()));
    ASSERT_EQ(out.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) ASSERT_EQ(out[i], 2L * (i + 1)) << i;
    const auto s = stats.snapshot();
    EXPECT_TRUE(s.finished);
    EXPECT_EQ(s.admitted, static_cast<std::uint64_t>(n));
    EXPECT_EQ(s.emitted, static_cast<std::uint64_t>(n));
    EXPECT_EQ(s.abandoned, 0u);
    EXPECT_TRUE(s.consistent());
    EXPECT_LE(s.stages[0].max_in_flight, 2u);
    EXPECT_EQ(s.stages[0].queued, 0u);
  }
}

TEST(FlowPipeline, TheDeadLetterSinkIsCalledOneAtATimeFromManyWorkers) {
  // The sink pushes into a plain vector: a concurrent call would be a data race (TSan).
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  std::vector<flow::dead_letter> letters;
  constexpr int n = 20'000;
  auto p = flow::from_range(std::views::iota(0, n))
               .stage({.name = "third", .concurrency = 4,
                       .on_failure = flow::failure_policy::dead_letter},
                      [](int x) -> weft::task<int> {
                        if (x % 3 == 0) throw std::runtime_error("multiple of 3");
                        co_return x;
                      })
               .dead_letters([&](flow::dead_letter d) { letters.push_back(std::move(d)); });
  const auto stats = p.stats();
  const auto out = rt.block_on(collect(std::move(p).run()));
  EXPECT_EQ(out.size(), static_cast<std::size_t>(n - (n + 2) / 3));
  EXPECT_EQ(letters.size(), static_cast<std::size_t>((n + 2) / 3));
  EXPECT_EQ(stats.snapshot().dead_lettered(), letters.size());
  EXPECT_TRUE(stats.snapshot().consistent());
}

TEST(FlowPipeline, AGeneratorThatFailsAtOnceFailsThePipelineWithoutHanging) {
  // Its failure cancels tasks that have not started yet: their queues must still be closed.
  weft::runtime rt{weft::testing::paused()};
  auto failing = []() -> weft::async_generator<int> {
    throw std::runtime_error("no input");
    co_yield 0;
  };
  auto p = flow::from_generator(failing())
               .stage({.concurrency = 2}, [](int x) -> weft::task<int> { co_return x; });
  const auto stats = p.stats();
  EXPECT_THROW(rt.block_on(collect(std::move(p).run())), std::runtime_error);
  EXPECT_TRUE(stats.snapshot().finished);
  EXPECT_EQ(stats.snapshot().admitted, 0u);
}

TEST(FlowPipeline, AStageRetryCallsAgainWithACopyOfTheItem) {
  weft::runtime rt{weft::testing::paused()};
  std::mutex m;
  std::map<int, int> calls;
  auto p = flow::from_range(numbers(50)).stage(
      {.name = "flaky",
       .concurrency = 4,
       .retry = weft::resilience::retry_options{
           .max_attempts = 3, .backoff = weft::resilience::backoff::fixed(5ms)}},
      [&](int x) -> weft::task<int> {
        int n = 0;
        {
          std::lock_guard lock{m};
          n = ++calls[x];
        }
        co_await weft::sleep_for(1ms);
        if (n < 3) throw std::runtime_error("try again");  // two failures per item
        co_return x * 10;
      });
  const auto stats = p.stats();
  const auto start = rt.now();
  const auto out = rt.block_on(collect(std::move(p).run()));
  ASSERT_EQ(out.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(out[static_cast<std::size_t>(i)], i * 10);
    EXPECT_EQ(calls[i], 3);
  }
  // 50 items over 4 workers, each item 3 attempts of 1 ms with two 5 ms pauses: 13 ms apiece.
  EXPECT_EQ(rt.now() - start, 13 * 13ms);
  const auto s = stats.snapshot();
  EXPECT_EQ(s.stages[0].in, 50u);
  EXPECT_EQ(s.stages[0].failed, 0u);
  EXPECT_TRUE(s.consistent());
}

TEST(FlowPipeline, AStageTimeoutFailsSlowItemsWhichThePolicyDrops) {
  weft::runtime rt{weft::testing::paused()};
  auto p = flow::from_range(numbers(20)).stage(
      {.name = "bounded", .concurrency = 2, .on_failure = flow::failure_policy::drop,
       .timeout = 10ms},
      [](int x) -> weft::task<int> {
        co_await weft::sleep_for(x % 2 == 1 ? 50ms : 2ms);
        co_return x;
      });
  const auto stats = p.stats();
  const auto out = rt.block_on(collect(std::move(p).run()));
  EXPECT_EQ(out, (std::vector<int>{0, 2, 4, 6, 8, 10, 12, 14, 16, 18}));
  const auto s = stats.snapshot();
  EXPECT_EQ(s.stages[0].dropped, 10u);
  EXPECT_EQ(s.stages[0].failed, 10u);
  EXPECT_TRUE(s.consistent());
}

TEST(FlowPipeline, AStageBreakerRefusesItemsOnceOpenAndTheyAreDeadLettered) {
  weft::runtime rt{weft::testing::paused()};
  std::atomic<int> calls{0};
  std::vector<flow::dead_letter> dead;
  weft::resilience::circuit_breaker_options breaker;
  breaker.window = weft::resilience::window::consecutive(3);
  breaker.minimum_calls = 3;
  breaker.open_duration = 1h;
  auto p = flow::from_range(numbers(10))
               .stage({.name = "down",
                       .concurrency = 1,
                       .on_failure = flow::failure_policy::dead_letter,
                       .breaker = breaker},
                      [&](int) -> weft::task<int> {
                        ++calls;
                        throw std::runtime_error("503");
                        co_return 0;
                      })
               .dead_letters([&](flow::dead_letter d) { dead.push_back(std::move(d)); });
  const auto out = rt.block_on(collect(std::move(p).run()));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(calls.load(), 3);  // then the breaker is open: the function is not called
  ASSERT_EQ(dead.size(), 10u);
  for (std::size_t i = 0; i < dead.size(); ++i) {
    EXPECT_EQ(dead[i].sequence, i);
    if (i < 3) {
      EXPECT_THROW(std::rethrow_exception(dead[i].error), std::runtime_error);
    } else {
      try {
        std::rethrow_exception(dead[i].error);
      } catch (const weft::resilience::rejected& r) {
        EXPECT_EQ(r.code(), weft::resilience::errc::circuit_open);
      } catch (...) {
        ADD_FAILURE() << "item " << i << " was not refused by the breaker";
      }
    }
  }
}

weft::async_generator<std::unique_ptr<int>> boxed(int v) {
  co_yield std::make_unique<int>(v);
}

TEST(FlowPipeline, StageLayersRefuseWhatTheyCannotDo) {
  // A retry needs to call again with the same item: a move-only item cannot be given twice.
  EXPECT_THROW((void)flow::from_generator(boxed(1))
                   .stage({.retry = weft::resilience::retry_options{.max_attempts = 2}},
                          [](std::unique_ptr<int> v) -> weft::task<int> { co_return *v; }),
               std::invalid_argument);
  EXPECT_THROW((void)flow::from_range(numbers(1)).stage(
                   {.timeout = 0ms}, [](int x) -> weft::task<int> { co_return x; }),
               std::invalid_argument);
  EXPECT_THROW((void)flow::from_range(numbers(1)).stage(
                   {.retry = weft::resilience::retry_options{.max_attempts = 0}},
                   [](int x) -> weft::task<int> { co_return x; }),
               std::invalid_argument);
  // One attempt needs no copy: a move-only item may go through a breaker and a timeout.
  weft::runtime rt{weft::testing::paused()};
  auto out = rt.block_on(collect(
      flow::from_generator(boxed(7))
          .stage({.breaker = weft::resilience::circuit_breaker_options{}, .timeout = 1s},
                 [](std::unique_ptr<int> v) -> weft::task<int> { co_return *v; })
          .run()));
  EXPECT_EQ(out, std::vector<int>{7});
}

TEST(FlowPipeline, MisuseIsRefused) {
  EXPECT_THROW((void)flow::from_range(numbers(1)).stage({.concurrency = 0},
                                                        [](int x) -> weft::task<int> {
                                                          co_return x;
                                                        }),
               std::invalid_argument);
  auto p = flow::from_range(numbers(1));
  auto q = std::move(p).stage({.concurrency = 1}, [](int x) -> weft::task<int> { co_return x; });
  EXPECT_THROW((void)p.stats(), std::logic_error);  // NOLINT: used after move, on purpose
  EXPECT_THROW((void)std::move(p).run(), std::logic_error);
  static_assert(!std::is_copy_constructible_v<flow::pipeline<int>>);
  // A source with no buffer and no stages still runs (its window is at least one item).
  weft::runtime rt{weft::testing::paused()};
  EXPECT_EQ(rt.block_on(collect(flow::from_range(numbers(3), 0).run())),
            (std::vector<int>{0, 1, 2}));
}

}  // namespace
