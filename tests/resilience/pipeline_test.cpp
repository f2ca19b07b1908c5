// The ready-made pipelines end to end under paused time: pipeline<>::standard() (rate limiter,
// total timeout, retry with budget, breaker, attempt timeout) and pipeline<>::hedged(), with
// exact times, call counts and the layers' order.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/or_cancelled.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/standard_pipeline.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>

#include "support/paused_time.hpp"

namespace {

namespace wr = weft::resilience;
using namespace std::chrono_literals;
using weft::testing::ms_since;
using weft::testing::paused;

wr::standard_pipeline_options fixed_jitter() {
  wr::standard_pipeline_options o;
  o.retry.random = wr::rng::constant(0.5);  // full jitter at half the nominal delay
  return o;
}

TEST(StandardPipeline, RetriesAFlakyCallWithItsBackoff) {
  weft::runtime rt{paused()};
  auto pipe = wr::pipeline<>::standard(fixed_jitter());
  int calls = 0;
  std::vector<long> at;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const int v = co_await pipe.execute([&]() -> weft::task<int> {
      at.push_back(ms_since(start));
      if (++calls < 3) throw std::runtime_error("flaky");
      co_return 7;
    });
    EXPECT_EQ(v, 7);
  });
  // Full jitter at r = 0.5: 50 ms, then 100 ms.
  EXPECT_EQ(at, (std::vector<long>{0, 50, 150}));
  EXPECT_EQ(pipe.layer<2>().layer().metrics().successful_with_retry, 1u);
  EXPECT_EQ(pipe.observers().name(), "standard");
}

TEST(StandardPipeline, AttemptTimeoutIsRetriedAndTheTotalTimeoutEndsTheCall) {
  weft::runtime rt{paused()};
  auto o = fixed_jitter();
  o.retry.max_attempts = 10;
  o.budget.reset();
  auto pipe = wr::pipeline<>::standard(o);
  int calls = 0;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const auto r = co_await pipe.execute([&]() -> weft::task<wr::call_outcome<int>> {
      ++calls;
      co_await weft::sleep_for(1h);  // hangs: every attempt times out at 10 s
      co_return wr::call_outcome<int>::success(1);
    });
    EXPECT_EQ(r.error(), wr::errc::timeout);
    // Attempts at 0, 10.05, 20.15 s; the last is cut by the 30 s total timeout.
    EXPECT_EQ(ms_since(start), 30'000);
  });
  EXPECT_EQ(calls, 3);
}

TEST(StandardPipeline, TheRateLimiterRejectsBeforeAnythingRuns) {
  weft::runtime rt{paused()};
  auto o = fixed_jitter();
  o.rate = wr::token_bucket{.capacity = 2, .tokens_per_period = 2, .period = 1s};
  auto pipe = wr::pipeline<>::standard(o);
  int calls = 0;
  rt.block_on([&]() -> weft::task<void> {
    auto op = [&]() -> weft::task<int> {
      ++calls;
      co_return 1;
    };
    EXPECT_EQ(co_await pipe.execute(op), 1);
    EXPECT_EQ(co_await pipe.execute(op), 1);
    try {
      (void)co_await pipe.execute(op);
      ADD_FAILURE() << "not rejected";
    } catch (const wr::rejected& r) {
      EXPECT_EQ(r.code(), wr::errc::rate_limited);
      EXPECT_EQ(r.retry_after().value_or(0s), 1s);
    }
  });
  EXPECT_EQ(calls, 2);
}

TEST(StandardPipeline, AnOpenBreakerIsNotRetried) {
  weft::runtime rt{paused()};
  auto o = fixed_jitter();
  o.breaker.window = wr::window::count(2);
  o.breaker.minimum_calls = 2;
  auto pipe = wr::pipeline<>::standard(o);
  int calls = 0;
  rt.block_on([&]() -> weft::task<void> {
    const auto r = co_await pipe.execute([&]() -> weft::task<wr::call_outcome<int>> {
      ++calls;
      co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error));
    });
    // Two failures open the breaker; the third attempt is refused and not retried.
    EXPECT_EQ(r.error(), wr::errc::circuit_open);
  });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(pipe.layer<3>().state(), wr::breaker_state::open);
}

TEST(HedgedPipeline, ASlowPrimaryIsHedgedAndTheFirstSuccessWins) {
  weft::runtime rt{paused()};
  wr::hedged_pipeline_options o;
  o.hedge.delay = 100ms;
  auto pipe = wr::pipeline<>::hedged(o);
  int calls = 0;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const int v = co_await pipe.execute(wr::idempotent([&]() -> weft::task<int> {
      const int n = ++calls;
      co_await weft::sleep_for(n == 1 ? 1s : 30ms);
      co_return n;
    }));
    EXPECT_EQ(v, 2);
    EXPECT_EQ(ms_since(start), 130);
  });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(pipe.observers().name(), "hedged");
}

}  // namespace

namespace {

weft::task<int> answer() {
  co_return 42;
}

// execute() is an awaiter in the caller's frame; the forms users write with tasks keep working.
TEST(Execute, IsAwaitedInPlaceSpawnedBlockedOnOrTurnedIntoATask) {
  weft::runtime rt{paused()};
  wr::retry retry{};
  wr::pipeline pipe{retry};
  EXPECT_EQ(rt.block_on(pipe.execute(answer)), 42);
  rt.block_on([&]() -> weft::task<void> {
    EXPECT_EQ(co_await pipe.execute(answer), 42);
    auto h = weft::spawn(pipe.execute(answer));
    EXPECT_EQ(co_await h, 42);
    weft::task<int> t = pipe.execute(answer);
    EXPECT_EQ(co_await std::move(t), 42);
    auto lone = wr::execute(retry, answer);  // one layer: the awaiter holds it
    EXPECT_EQ(co_await lone, 42);
  });
}

TEST(Execute, AwaitingTheSameCallTwiceIsRefused) {
  weft::runtime rt{paused()};
  wr::pipeline pipe{wr::retry{}};
  rt.block_on([&]() -> weft::task<void> {
    auto call = pipe.execute(answer);
    EXPECT_EQ(co_await call, 42);
    EXPECT_THROW(co_await call, std::logic_error);
  });
}

TEST(Execute, ACallerCancelledBeforeTheCallRunsNothing) {
  weft::runtime rt{paused()};
  wr::pipeline pipe{wr::retry{}};
  int ran = 0;
  rt.block_on([&]() -> weft::task<void> {
    bool threw = false;
    auto h =
        weft::spawn([](wr::pipeline<wr::retry>& pipe, int& ran, bool& threw) -> weft::task<void> {
          (void)co_await weft::or_cancelled(weft::sleep_for(1h));  // cancelled here, quietly
          try {
            (void)co_await pipe.execute([&ran]() -> weft::task<int> {
              ++ran;
              co_return 1;
            });
          } catch (const weft::operation_cancelled&) {
            threw = true;
          }
        }(pipe, ran, threw));
    co_await weft::sleep_for(10ms);
    h.cancel();
    co_await h;
    EXPECT_TRUE(threw) << "the caller's type reports the cancellation";
    EXPECT_EQ(ran, 0) << "no layer and no operation ran";
  });
}

}  // namespace
