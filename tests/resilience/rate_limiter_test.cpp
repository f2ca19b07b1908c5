// weft::resilience::rate_limiter and rate_limiter_family under paused time: token bucket refill
// arithmetic at exact instants, reservations up to max_wait with exact wake times, immediate
// rejection with the exact retry_after, cancelled reservations given back, fixed and sliding
// windows at their boundaries, per-key limiters with eviction; and two-worker stress tests that
// check permits are never over-granted.
#include <weft/resilience/rate_limiter.hpp>
#include <weft/resilience/rate_limiter_family.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/sleep.hpp>
#include <weft/yield.hpp>

#include "support/paused_time.hpp"

namespace {

namespace wr = weft::resilience;
using weft::testing::ms_since;
using weft::testing::paused;
using namespace std::chrono_literals;

// A call through `l` that records when its operation ran (ms since t0) and returns an outcome,
// so that rejections come back as values.
template <class Layer>
weft::task<wr::call_outcome<int>> call(Layer& l, std::vector<long>* ran,
                                       weft::clock::time_point t0) {
  auto op = [ran, t0]() -> weft::task<wr::call_outcome<int>> {
    if (ran != nullptr) ran->push_back(ms_since(t0));
    co_return wr::call_outcome<int>::success(1);
  };
  co_return co_await l.execute(op);
}

struct event_log {
  std::vector<std::string> lines;
  weft::clock::time_point t0;
  void attach(wr::telemetry& t) {
    t.on_event([this](const wr::layer_event& e) noexcept {
      lines.push_back(std::string(wr::to_string(e.kind)) + "@" + std::to_string((e.at - t0) / 1ms) +
                      "+" + std::to_string(e.delay / 1ms) +
                      (e.key.empty() ? "" : ":" + std::string(e.key)));
    });
  }
};

// --- token bucket -------------------------------------------------------------------------------

TEST(TokenBucket, IsTheDefaultAndStartsFull) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::rate_limiter rl{3, 2, 100ms};
    EXPECT_EQ(rl.available(), 3);
    EXPECT_EQ(rl.options().max_wait, weft::clock::duration::zero());
    EXPECT_EQ(rl.observers().name(), "rate_limiter");
    co_return;
  });
}

TEST(TokenBucket, RefillsWholeTokensAtMultiplesOfThePeriod) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    wr::rate_limiter rl{wr::token_bucket{.capacity = 3, .tokens_per_period = 2, .period = 100ms}};
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(rl.try_acquire().granted);
    const auto no = rl.try_acquire();
    EXPECT_FALSE(no.granted);
    EXPECT_EQ(no.retry_after, 100ms);
    co_await weft::sleep_until(t0 + 100ms - 1ns);
    EXPECT_EQ(rl.available(), 0);  // reading applies the refill due: none yet
    co_await weft::sleep_until(t0 + 100ms);
    EXPECT_EQ(rl.available(), 2);  // two whole tokens, exactly at the period
    co_await weft::sleep_until(t0 + 150ms);
    EXPECT_TRUE(rl.try_acquire().granted);
    EXPECT_TRUE(rl.try_acquire().granted);
    // The next refill is at 200 (t0's grid), not 150 + 100.
    EXPECT_EQ(rl.try_acquire().retry_after, 50ms);
    co_await weft::sleep_until(t0 + 250ms);
    EXPECT_EQ(rl.available(), 2);
    co_await weft::sleep_until(t0 + 300ms);
    EXPECT_EQ(rl.available(), 3);  // 2 + 2, capped at capacity
    co_await weft::sleep_until(t0 + 1h);
    EXPECT_EQ(rl.available(), 3);
  });
}

TEST(TokenBucket, LastRefillStaysOnTheGridWhileTheBucketIsFull) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    wr::rate_limiter rl{1, 1, 100ms};
    co_await weft::sleep_until(t0 + 250ms);  // full all along
    EXPECT_TRUE(rl.try_acquire().granted);
    EXPECT_EQ(rl.try_acquire().retry_after, 50ms);  // the refill at 300, not at 350
    co_await weft::sleep_until(t0 + 300ms);
    EXPECT_TRUE(rl.try_acquire().granted);
  });
}

TEST(TokenBucket, RejectsAtOnceWithTheTimeUntilTheNextToken) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    wr::rate_limiter rl{1, 1, 100ms};
    event_log log;
    log.t0 = t0;
    log.attach(rl.observers());
    std::vector<long> ran;
    EXPECT_TRUE((co_await call(rl, &ran, t0)).has_value());
    co_await weft::advance(30ms);
    const auto o = co_await call(rl, &ran, t0);
    EXPECT_EQ(o.error(), wr::errc::rate_limited);
    EXPECT_EQ(o.retry_after(), 70ms);
    EXPECT_EQ(ms_since(t0), 30);  // no waiting
    EXPECT_EQ(ran, (std::vector<long>{0}));
    // A plain result type gets it thrown, retry_after included.
    try {
      (void)co_await rl.execute([]() -> weft::task<int> { co_return 1; });
      ADD_FAILURE() << "no rejection";
    } catch (const wr::rejected& r) {
      EXPECT_EQ(r.code(), wr::errc::rate_limited);
      EXPECT_EQ(r.retry_after(), 70ms);
    }
    EXPECT_EQ(log.lines, (std::vector<std::string>{"rate_limited@30+70", "rate_limited@30+70"}));
  });
}

TEST(TokenBucket, ReservesUpToMaxWaitAndRunsExactlyWhenTheTokenArrives) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    wr::rate_limiter rl{1, 1, 100ms, {.max_wait = 200ms}};
    event_log log;
    log.t0 = t0;
    log.attach(rl.observers());
    std::vector<long> ran;
    std::vector<wr::call_outcome<int>> results;
    weft::task_group g;
    for (int i = 0; i < 4; ++i) {
      g.spawn(weft::co_invoke(
          [&]() -> weft::task<void> { results.push_back(co_await call(rl, &ran, t0)); }));
      co_await weft::yield();
    }
    EXPECT_EQ(rl.available(), -2);  // two reservations queued behind the empty bucket
    co_await g.join();
    // The third waits exactly max_wait (200 <= 200: reserved); the fourth would wait 300.
    EXPECT_EQ(ran, (std::vector<long>{0, 100, 200}));
    int rejected = 0;
    for (const auto& r : results) {
      if (r.has_value()) continue;
      ++rejected;
      EXPECT_EQ(r.error(), wr::errc::rate_limited);
      EXPECT_EQ(r.retry_after(), 300ms);
    }
    EXPECT_EQ(rejected, 1);
    EXPECT_EQ(log.lines,
              (std::vector<std::string>{"rate_limited@0+300", "rate_limit_waited@100+100",
                                        "rate_limit_waited@200+200"}));
    EXPECT_EQ(rl.available(), 0);
  });
}

TEST(TokenBucket, ReservationsQueueBehindEachOtherAcrossMultiTokenRefills) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    wr::rate_limiter rl{2, 2, 100ms, {.max_wait = 1s}};
    co_await weft::advance(10ms);
    std::vector<long> ran;
    weft::task_group g;
    for (int i = 0; i < 7; ++i) {
      g.spawn(call(rl, &ran, t0));
      co_await weft::yield();
    }
    co_await g.join();
    EXPECT_EQ(ran, (std::vector<long>{10, 10, 100, 100, 200, 200, 300}));
  });
}

TEST(TokenBucket, ACancelledReservationGivesItsTokenBack) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    wr::rate_limiter rl{1, 1, 100ms, {.max_wait = 1s}};
    std::vector<long> ran;
    EXPECT_TRUE((co_await call(rl, &ran, t0)).has_value());  // the bucket's token, at 0
    auto b = weft::spawn(call(rl, &ran, t0));                // reserved for 100
    co_await weft::yield();
    weft::task_group g;
    g.spawn(call(rl, &ran, t0));  // reserved for 200
    co_await weft::yield();
    EXPECT_EQ(rl.available(), -2);
    co_await weft::advance(50ms);
    b.cancel();
    const auto cancelled = co_await std::move(b);
    EXPECT_TRUE(cancelled.is_cancelled());
    EXPECT_EQ(ms_since(t0), 50);
    EXPECT_EQ(rl.available(), -1);  // its token is back
    g.spawn(call(rl, &ran, t0));    // so this one waits for 200, not 300
    co_await g.join();
    EXPECT_EQ(ran, (std::vector<long>{0, 200, 200}));
    EXPECT_EQ(ms_since(t0), 200);
    EXPECT_EQ(rl.available(), 0);
  });
}

TEST(TokenBucket, AContextTokenCancelsAReservedSleep) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    wr::rate_limiter rl{1, 1, 100ms, {.max_wait = 1s}};
    EXPECT_TRUE(rl.try_acquire().granted);
    weft::cancel_source stop;
    wr::resilience_context ctx;
    ctx.token = stop.token();
    int ran = 0;
    auto op = [&ran]() -> weft::task<wr::call_outcome<int>> {
      ++ran;
      co_return wr::call_outcome<int>::success(1);
    };
    auto waiting = weft::spawn(weft::co_invoke([&]() -> weft::task<wr::call_outcome<int>> {
      wr::pipeline p{rl};
      co_return co_await p.execute(ctx, op);
    }));
    co_await weft::advance(30ms);
    EXPECT_EQ(rl.available(), -1);
    stop.request_cancellation();
    const auto o = co_await std::move(waiting);
    EXPECT_TRUE(o.is_cancelled());
    EXPECT_EQ(ms_since(t0), 30);
    EXPECT_EQ(ran, 0);
    EXPECT_EQ(rl.available(), 0);
  });
}

TEST(TokenBucket, ReportsTheTokenGaugeAfterEachDecision) {
  struct sink final : wr::metrics_sink {
    std::vector<int> tokens;
    void count_event(const wr::layer_event&) noexcept override {}
    void record_attempt(std::string_view, const wr::resilience_context&, weft::clock::duration,
                        wr::verdict) noexcept override {}
    void record_pipeline(const wr::resilience_context&, weft::clock::duration,
                         wr::verdict) noexcept override {}
    void set_gauge(wr::gauge g, std::string_view, std::string_view, double v) noexcept override {
      if (g == wr::gauge::tokens) tokens.push_back(static_cast<int>(v));
    }
  } s;
  weft::runtime rt{paused()};
  rt.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    wr::rate_limiter rl{2, 1, 100ms, {.max_wait = 100ms}};
    rl.observers().set_sink(&s);
    for (int i = 0; i < 4; ++i) (void)co_await call(rl, nullptr, t0);
  });
  // 2 → 1, 1 → 0, then a reservation (−1, runs at 100), then at 100 another reservation (−1).
  EXPECT_EQ(s.tokens, (std::vector<int>{1, 0, -1, -1}));
}

// --- fixed window -------------------------------------------------------------------------------

TEST(FixedWindow, WindowsAreAlignedToTheLimitersCreation) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    wr::rate_limiter rl{wr::fixed_window{.limit = 2, .window = 100ms}};
    co_await weft::advance(30ms);
    EXPECT_TRUE(rl.try_acquire().granted);
    EXPECT_TRUE(rl.try_acquire().granted);
    EXPECT_EQ(rl.try_acquire().retry_after, 70ms);  // the window is [0, 100), not [30, 130)
    co_await weft::sleep_until(t0 + 100ms - 1ns);
    EXPECT_EQ(rl.available(), 0);
    EXPECT_EQ(rl.try_acquire().retry_after, 1ns);
    co_await weft::sleep_until(t0 + 100ms);
    EXPECT_EQ(rl.available(), 2);
    EXPECT_TRUE(rl.try_acquire().granted);
    EXPECT_EQ(rl.available(), 1);
    co_await weft::sleep_until(t0 + 450ms);  // several windows later: a fresh count
    EXPECT_EQ(rl.available(), 2);
  });
}

TEST(FixedWindow, ReservesAPlaceInALaterWindow) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    wr::rate_limiter rl{wr::fixed_window{.limit = 1, .window = 100ms}, {.max_wait = 100ms}};
    co_await weft::advance(30ms);
    std::vector<long> ran;
    weft::task_group g;
    for (int i = 0; i < 3; ++i) {
      g.spawn(call(rl, &ran, t0));
      co_await weft::yield();
    }
    co_await g.join();
    // 30: now; the next window starts at 100 (70 <= 100: reserved); the one after at 200
    // (170 > 100: rejected).
    EXPECT_EQ(ran, (std::vector<long>{30, 100}));
    EXPECT_EQ(rl.try_acquire().retry_after, 100ms);  // at 100, the window [100, 200) is used
  });
}

TEST(FixedWindow, ACancelledReservationFreesItsWindow) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    wr::rate_limiter rl{wr::fixed_window{.limit = 1, .window = 100ms}, {.max_wait = 200ms}};
    std::vector<long> ran;
    EXPECT_TRUE((co_await call(rl, &ran, t0)).has_value());
    auto b = weft::spawn(call(rl, &ran, t0));  // window [100, 200)
    co_await weft::yield();
    weft::task_group g;
    g.spawn(call(rl, &ran, t0));  // window [200, 300)
    co_await weft::yield();
    co_await weft::advance(50ms);
    b.cancel();
    EXPECT_TRUE((co_await std::move(b)).is_cancelled());
    g.spawn(call(rl, &ran, t0));  // gets [100, 200) back
    co_await g.join();
    EXPECT_EQ(ran, (std::vector<long>{0, 100, 200}));
  });
}

// --- sliding window -----------------------------------------------------------------------------

TEST(SlidingWindow, CountsCallsUntilAWindowAfterTheirSegment) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    wr::rate_limiter rl{wr::sliding_window{.limit = 2, .window = 100ms, .segments = 2}};
    EXPECT_TRUE(rl.try_acquire().granted);  // segment [0, 50): counts until 100
    co_await weft::sleep_until(t0 + 60ms);
    EXPECT_TRUE(rl.try_acquire().granted);  // segment [50, 100): counts until 150
    co_await weft::sleep_until(t0 + 70ms);
    EXPECT_EQ(rl.try_acquire().retry_after, 30ms);
    co_await weft::sleep_until(t0 + 100ms - 1ns);
    EXPECT_EQ(rl.try_acquire().retry_after, 1ns);
    co_await weft::sleep_until(t0 + 100ms);
    EXPECT_EQ(rl.available(), 1);
    EXPECT_TRUE(rl.try_acquire().granted);
    EXPECT_EQ(rl.try_acquire().retry_after, 50ms);  // the call at 60 leaves at 150
    co_await weft::sleep_until(t0 + 150ms);
    EXPECT_EQ(rl.available(), 1);
  });
}

TEST(SlidingWindow, AReservationWaitsForTheSegmentThatKeepsEveryWindowWithinTheLimit) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    wr::rate_limiter rl{wr::sliding_window{.limit = 1, .window = 100ms, .segments = 4},
                        {.max_wait = 100ms}};
    std::vector<long> ran;
    EXPECT_TRUE((co_await call(rl, &ran, t0)).has_value());
    co_await weft::advance(10ms);
    weft::task_group g;
    g.spawn(call(rl, &ran, t0));  // the call at 0 counts until 100: reserved for 100
    co_await weft::yield();
    const auto third = co_await call(rl, &ran, t0);  // 100's counts until 200: 190 > 100
    EXPECT_EQ(third.error(), wr::errc::rate_limited);
    EXPECT_EQ(third.retry_after(), 190ms);
    co_await g.join();
    EXPECT_EQ(ran, (std::vector<long>{0, 100}));
  });
}

TEST(RateLimiter, TheFirstCallIsT0WhenCreatedOffAWorker) {
  wr::rate_limiter rl{wr::fixed_window{.limit = 1, .window = 100ms}};
  EXPECT_EQ(rl.available(), 1);  // off a worker, before any call
  weft::runtime rt{paused()};
  rt.block_on([&]() -> weft::task<void> {
    co_await weft::advance(30ms);
    const auto first = weft::clock::now();
    EXPECT_TRUE(rl.try_acquire().granted);
    EXPECT_EQ(rl.try_acquire().retry_after, 100ms);  // the window is [first, first + 100)
    co_await weft::sleep_until(first + 100ms);
    EXPECT_TRUE(rl.try_acquire().granted);
  });
}

TEST(RateLimiter, RejectsBadOptionsNamingThem) {
  auto message = [](auto make) -> std::string {
    try {
      make();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no exception";
  };
  EXPECT_NE(message([] { wr::rate_limiter{0, 1, 1s}; }).find("capacity"), std::string::npos);
  EXPECT_NE(message([] {
              wr::rate_limiter{1, 0, 1s};
            }).find("tokens_per_period"),
            std::string::npos);
  EXPECT_NE(message([] { wr::rate_limiter{1, 1, 0s}; }).find("period"), std::string::npos);
  EXPECT_NE(message([] { wr::rate_limiter(1, 1, 1s, {.max_wait = -1ms}); }).find("max_wait"),
            std::string::npos);
  EXPECT_NE(message([] {
              wr::rate_limiter{wr::fixed_window{0, 1s}};
            }).find("limit"),
            std::string::npos);
  EXPECT_NE(message([] {
              wr::rate_limiter{wr::fixed_window{1, 0s}};
            }).find("window"),
            std::string::npos);
  EXPECT_NE(message([] {
              wr::rate_limiter{wr::sliding_window{1, 1s, 0}};
            }).find("segments"),
            std::string::npos);
  EXPECT_NE(message([] {
              wr::rate_limiter{wr::sliding_window{1, 100ns, 3}};
            }).find("divide"),
            std::string::npos);
  EXPECT_NE(message([] {
              wr::rate_limiter(wr::fixed_window{1, 1ms}, {.max_wait = 1h});
            }).find("max_wait"),
            std::string::npos);
  EXPECT_THROW(wr::rate_limiter_family<std::string>(wr::token_bucket{1, 1, 1s},
                                                    {.limiter = {}, .idle_ttl = 0s}),
               std::invalid_argument);
  EXPECT_THROW(wr::rate_limiter_family<std::string>(wr::token_bucket{1, 1, 1s},
                                                    {.limiter = {}, .idle_ttl = 1s, .max_keys = 0}),
               std::invalid_argument);
  EXPECT_THROW(wr::rate_limiter_family<std::string>(wr::token_bucket{0, 1, 1s}),
               std::invalid_argument);
}

// --- families -----------------------------------------------------------------------------------

std::string key_of(const wr::resilience_context& c) {
  return std::string(c.key);
}

template <class Pipeline>
weft::task<wr::call_outcome<int>> keyed_call(Pipeline& p, std::string key, std::vector<long>* ran,
                                             weft::clock::time_point t0) {
  wr::resilience_context ctx;
  ctx.key = key;
  ctx.token = co_await weft::this_task::cancel_token();
  auto op = [ran, t0]() -> weft::task<wr::call_outcome<int>> {
    if (ran != nullptr) ran->push_back(ms_since(t0));
    co_return wr::call_outcome<int>::success(1);
  };
  co_return co_await p.execute(ctx, op);
}

TEST(RateLimiterFamily, KeepsAnIndependentLimiterPerKey) {
  weft::runtime rt{paused()};
  wr::rate_limiter_family<std::string> per_client{wr::token_bucket{1, 1, 100ms}};
  event_log log;
  log.attach(per_client.observers());
  wr::pipeline p{per_client.layer(&key_of)};
  rt.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    log.t0 = t0;
    EXPECT_TRUE((co_await keyed_call(p, "alice", nullptr, t0)).has_value());
    const auto again = co_await keyed_call(p, "alice", nullptr, t0);
    EXPECT_EQ(again.error(), wr::errc::rate_limited);
    EXPECT_TRUE((co_await keyed_call(p, "bob", nullptr, t0)).has_value());
    EXPECT_EQ(per_client.size(), 2u);
    EXPECT_EQ(per_client.get("alice")->available(), 0);
  });
  EXPECT_EQ(log.lines, (std::vector<std::string>{"rate_limited@0+100:alice"}));
}

TEST(RateLimiterFamily, AKeyIdleForTheTtlStartsAfresh) {
  weft::runtime rt{paused()};
  wr::rate_limiter_family<std::string> per_client{wr::token_bucket{2, 1, 1h},
                                                  {.limiter = {}, .idle_ttl = 1min}};
  rt.block_on([&]() -> weft::task<void> {
    auto a = per_client.get("a");
    EXPECT_TRUE(a->try_acquire().granted);
    EXPECT_TRUE(a->try_acquire().granted);
    a.reset();
    co_await weft::advance(1min - 1ns);
    EXPECT_EQ(per_client.evict_idle(), 0u);
    EXPECT_EQ(per_client.get("a")->available(), 0);  // a use: its idle time restarts
    co_await weft::advance(1min);
    EXPECT_EQ(per_client.evict_idle(), 1u);
    EXPECT_EQ(per_client.get("a")->available(), 2);  // a new, full bucket
  });
}

TEST(RateLimiterFamily, AReservedSleeperKeepsItsLimiterFromEviction) {
  weft::runtime rt{paused()};
  wr::rate_limiter_family<std::string> per_client{
      wr::token_bucket{1, 1, 100ms},
      {.limiter = {.max_wait = 1s}, .idle_ttl = 50ms, .max_keys = 1}};
  wr::pipeline p{per_client.layer(&key_of)};
  rt.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    std::vector<long> ran;
    EXPECT_TRUE((co_await keyed_call(p, "a", &ran, t0)).has_value());
    auto sleeper = weft::spawn(keyed_call(p, "a", &ran, t0));  // reserved for 100
    co_await weft::advance(60ms);
    EXPECT_EQ(per_client.evict_idle(), 0u);
    (void)per_client.get("b");  // over max_keys, but "a" is in use
    EXPECT_NE(per_client.find("a"), nullptr);
    EXPECT_TRUE((co_await std::move(sleeper)).has_value());
    EXPECT_EQ(ran, (std::vector<long>{0, 100}));
    (void)per_client.get("c");  // now "a" (least recently used, idle) goes
    EXPECT_EQ(per_client.find("a"), nullptr);
  });
}

// --- concurrency --------------------------------------------------------------------------------

// With no refill during the test, exactly `capacity` calls get through, however the two workers
// interleave.
TEST(RateLimiterStress, NeverGrantsMoreTokensThanTheBucketHolds) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  wr::rate_limiter rl{1000, 1, 1h};
  std::atomic<int> ran{0}, limited{0};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    for (int t = 0; t < 20; ++t) {
      group.spawn(weft::co_invoke([&]() -> weft::task<void> {
        for (int i = 0; i < 200; ++i) {
          auto op = [&ran]() -> weft::task<wr::call_outcome<int>> {
            ran.fetch_add(1);
            co_return wr::call_outcome<int>::success(1);
          };
          const auto o = co_await rl.execute(op);
          if (!o.has_value()) limited.fetch_add(1);
          if ((i & 7) == 0) co_await weft::yield();
        }
      }));
    }
    co_await group.join();
  });
  EXPECT_EQ(ran.load(), 1000);
  EXPECT_EQ(limited.load(), 3000);
}

// Reservations and random cancellations on two workers in real time: the calls that ran never
// exceed what the algorithm could have granted by the end.
TEST(RateLimiterStress, ReservationsWithCancellationsNeverOverGrant) {
  for (const int algorithm : {0, 1, 2}) {
    SCOPED_TRACE(algorithm);
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    std::atomic<long> ran{0};
    long bound = 0;
    rt.block_on([&]() -> weft::task<void> {
      const auto created = weft::clock::now();  // <= the limiter's t0
      std::unique_ptr<wr::rate_limiter> rl;
      if (algorithm == 0) {
        rl = std::make_unique<wr::rate_limiter>(10, 5, 1ms,
                                                wr::rate_limiter_options{.max_wait = 2ms});
      } else if (algorithm == 1) {
        rl = std::make_unique<wr::rate_limiter>(wr::fixed_window{20, 2ms},
                                                wr::rate_limiter_options{.max_wait = 3ms});
      } else {
        rl = std::make_unique<wr::rate_limiter>(wr::sliding_window{20, 4ms, 4},
                                                wr::rate_limiter_options{.max_wait = 3ms});
      }
      weft::task_group group;
      for (int t = 0; t < 40; ++t) {
        group.spawn(weft::co_invoke([&, t]() -> weft::task<void> {
          std::minstd_rand random(static_cast<unsigned>(t) + 7);
          for (int i = 0; i < 100; ++i) {
            auto one = [&]() -> weft::task<wr::call_outcome<int>> {
              auto op = [&ran]() -> weft::task<wr::call_outcome<int>> {
                ran.fetch_add(1);
                co_return wr::call_outcome<int>::success(1);
              };
              co_return co_await rl->execute(op);
            };
            auto h = weft::spawn(weft::co_invoke(one));
            if (random() % 4 == 0) {
              co_await weft::yield();
              h.cancel();
            }
            try {
              (void)co_await std::move(h);
            } catch (const weft::operation_cancelled&) {
            }
          }
        }));
      }
      co_await group.join();
      const auto elapsed = weft::clock::now() - created;
      if (algorithm == 0) {
        bound = 10 + 5 * (elapsed / 1ms);
      } else if (algorithm == 1) {
        bound = 20 * (elapsed / 2ms + 1);
      } else {
        bound = 20 * (elapsed / 4ms + 1);
      }
    });
    EXPECT_GT(ran.load(), 0);
    EXPECT_LE(ran.load(), bound);
  }
}

}  // namespace
