// weft::resilience::hedge under paused time: launches on the delay and on retryable failures,
// the first success wins, the primary's failure when all fail, losers cancelled and awaited,
// the shared retry gate, the percentile delay, and the compile-time idempotence requirement.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/resilience/budget.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/hedge.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/retry_budget.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>

#include "support/paused_time.hpp"

namespace {

namespace wr = weft::resilience;
using weft::testing::ms_since;
using weft::testing::paused;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// The idempotence requirement is checked at compile time.

struct plain_op {
  weft::task<int> operator()() const { co_return 0; }
};
using marked_op = wr::idempotent_t<plain_op>;

template <class L, class F>
concept executes = requires(L& layer, F op) {
  layer.execute(std::move(op));
};
template <class L, class F>
concept executes_alone = requires(L& layer, F op) {
  wr::execute(layer, std::move(op));
};

static_assert(!executes<wr::hedge, plain_op>, "a hedge must refuse an operation not marked");
static_assert(executes<wr::hedge, marked_op>);
static_assert(!executes_alone<wr::hedge, plain_op>);
static_assert(executes_alone<wr::hedge, marked_op>);
static_assert(!executes<wr::pipeline<wr::hedge&>, plain_op>);
static_assert(executes<wr::pipeline<wr::hedge&>, marked_op>);
static_assert(!executes<wr::pipeline<wr::hedge>, plain_op>);
// A pipeline nested in another carries the requirement outwards.
static_assert(!executes<wr::pipeline<wr::pipeline<wr::hedge>&>, plain_op>);
static_assert(executes<wr::pipeline<wr::pipeline<wr::hedge>&>, marked_op>);
// Pipelines without a hedge take both.
static_assert(executes<wr::pipeline<>, plain_op>);
static_assert(executes<wr::pipeline<>, marked_op>);
static_assert(wr::idempotent_operation<decltype(wr::idempotent(wr::idempotent(plain_op{})))>);
static_assert(std::is_same_v<decltype(wr::idempotent(wr::idempotent(plain_op{}))), marked_op>);

// ---------------------------------------------------------------------------------------------
// Scripted attempts: attempt n (ctx.attempt) sleeps `after`, then returns or throws.

enum class ends { value, retryable, fatal };
struct step {
  weft::clock::duration after;
  ends how = ends::value;
  int value = 0;
};

struct probe {
  weft::clock::time_point t0;
  std::vector<std::string> log;  // "start 2 @100", "cancel 1 @150", …
  int cleaned = 0;               // attempts whose frames' locals were destroyed
};

struct guard {
  int* n;
  ~guard() { ++*n; }
};

weft::task<int> scripted(probe& p, step s, int attempt) {
  p.log.push_back("start " + std::to_string(attempt) + " @" + std::to_string(ms_since(p.t0)));
  guard g{&p.cleaned};
  try {
    co_await weft::sleep_for(s.after);
  } catch (const weft::operation_cancelled&) {
    p.log.push_back("cancel " + std::to_string(attempt) + " @" + std::to_string(ms_since(p.t0)));
    throw;
  }
  switch (s.how) {
    case ends::value:
      co_return s.value;
    case ends::retryable:
      throw std::runtime_error("attempt " + std::to_string(attempt));
    case ends::fatal:
      throw std::invalid_argument("attempt " + std::to_string(attempt));
  }
  co_return -1;
}

auto script(probe& p, std::vector<step> steps) {
  return wr::idempotent([&p, steps = std::move(steps)](wr::resilience_context& ctx) {
    return scripted(p, steps.at(static_cast<std::size_t>(ctx.attempt - 1)), ctx.attempt);
  });
}

// Collects "<event> <attempt> @<ms>" lines.
struct event_log {
  std::vector<std::string> lines;
  weft::clock::time_point* t0;
  void attach(wr::telemetry& t) {
    t.on_event([this](const wr::layer_event& e) noexcept {
      lines.push_back(
          std::string(wr::to_string(e.kind)) + " " + std::to_string(e.attempt) + " @" +
          std::to_string(
              std::chrono::duration_cast<std::chrono::milliseconds>(e.at - *t0).count()));
    });
  }
};

class Hedge : public ::testing::Test {
 protected:
  weft::runtime rt_{paused()};
  probe p_;
  event_log events_{{}, &p_.t0};

  // Runs `op` through `h` and returns "<value> @<ms>" or "<exception what> @<ms>".
  template <class F>
  std::string call(wr::hedge& h, F op) {
    return rt_.block_on([](wr::hedge& h, F op, probe& p) -> weft::task<std::string> {
      p.t0 = weft::clock::now();
      std::string r;
      try {
        const int v = co_await h.execute(std::move(op));
        r = std::to_string(v);
      } catch (const weft::operation_cancelled&) {
        r = "cancelled";
      } catch (const std::exception& e) {
        r = e.what();
      }
      co_return r + " @" + std::to_string(ms_since(p.t0));
    }(h, std::move(op), p_));
  }
};

TEST_F(Hedge, LaunchesAHedgeWhenTheDelayExpires) {
  wr::hedge h{{.delay = 100ms}};
  events_.attach(h.observers());
  EXPECT_EQ(call(h, script(p_, {{300ms, ends::value, 1}, {50ms, ends::value, 2}})), "2 @150");
  EXPECT_EQ(p_.log, (std::vector<std::string>{"start 1 @0", "start 2 @100", "cancel 1 @150"}));
  EXPECT_EQ(events_.lines, (std::vector<std::string>{"hedge_launched 2 @100"}));
}

TEST_F(Hedge, DoesNotHedgeAPrimaryThatSucceedsBeforeTheDelay) {
  wr::hedge h{{.delay = 100ms}};
  events_.attach(h.observers());
  EXPECT_EQ(call(h, script(p_, {{99ms, ends::value, 1}, {1ms, ends::value, 2}})), "1 @99");
  EXPECT_EQ(p_.log, (std::vector<std::string>{"start 1 @0"}));
  EXPECT_TRUE(events_.lines.empty());
}

TEST_F(Hedge, DefaultsAreOneHedgeAfterTwoSeconds) {
  wr::hedge h;
  EXPECT_EQ(h.options().max_hedged, 1);
  EXPECT_EQ(h.options().delay, 2s);
  EXPECT_EQ(call(h, script(p_, {{5s, ends::value, 1}, {1s, ends::value, 2}})), "2 @3000");
  EXPECT_EQ(p_.log, (std::vector<std::string>{"start 1 @0", "start 2 @2000", "cancel 1 @3000"}));
}

TEST_F(Hedge, LaunchesAtOnceWhenTheLatestAttemptFailsRetryably) {
  wr::hedge h{{.delay = 100ms}};
  events_.attach(h.observers());
  EXPECT_EQ(call(h, script(p_, {{30ms, ends::retryable}, {20ms, ends::value, 2}})), "2 @50");
  EXPECT_EQ(p_.log, (std::vector<std::string>{"start 1 @0", "start 2 @30"}));
  EXPECT_EQ(events_.lines, (std::vector<std::string>{"hedge_launched 2 @30"}));
}

TEST_F(Hedge, TheFailureThatLaunchedAHedgeIsInTheEvent) {
  wr::hedge h{{.delay = 100ms}};
  std::vector<wr::outcome_kind> kinds;
  h.observers().on_event([&](const wr::layer_event& e) noexcept { kinds.push_back(e.outcome); });
  EXPECT_EQ(call(h, script(p_, {{30ms, ends::retryable}, {20ms, ends::value, 2}})), "2 @50");
  EXPECT_EQ(kinds, (std::vector<wr::outcome_kind>{wr::outcome_kind::exception}));
}

TEST_F(Hedge, ANonRetryableFailureLaunchesNothingAndIsReturned) {
  wr::hedge h{{.delay = 100ms}};
  EXPECT_EQ(call(h, script(p_, {{30ms, ends::fatal}, {20ms, ends::value, 2}})), "attempt 1 @30");
  EXPECT_EQ(p_.log, (std::vector<std::string>{"start 1 @0"}));
}

TEST_F(Hedge, OnlyTheLatestAttemptsFailureLaunchesTheNext) {
  // Primary at 0 (fails at 150), hedge 2 at 100 (fails at 400): the primary's failure is not
  // the latest attempt's, so it launches nothing; hedge 3 comes from hedge 2's timer at 200.
  wr::hedge h{{.max_hedged = 2, .delay = 100ms}};
  EXPECT_EQ(call(h, script(p_, {{150ms, ends::retryable},
                                {300ms, ends::retryable},
                                {100ms, ends::value, 3}})),
            "3 @300");
  EXPECT_EQ(p_.log, (std::vector<std::string>{"start 1 @0", "start 2 @100", "start 3 @200",
                                              "cancel 2 @300"}));
}

TEST_F(Hedge, TheFirstSuccessWinsAndEveryOtherAttemptIsCancelled) {
  wr::hedge h{{.max_hedged = 2, .delay = 100ms}};
  events_.attach(h.observers());
  EXPECT_EQ(
      call(h, script(p_,
                     {{1000ms, ends::value, 1}, {500ms, ends::value, 2}, {100ms, ends::value, 3}})),
      "3 @300");
  EXPECT_EQ(p_.log, (std::vector<std::string>{"start 1 @0", "start 2 @100", "start 3 @200",
                                              "cancel 1 @300", "cancel 2 @300"}));
  EXPECT_EQ(events_.lines,
            (std::vector<std::string>{"hedge_launched 2 @100", "hedge_launched 3 @200"}));
}

TEST_F(Hedge, AFailureDoesNotWinWhileAnotherAttemptMaySucceed) {
  // Hedge 2 fails first (non-retryably): the primary still runs and succeeds.
  wr::hedge h{{.delay = 100ms}};
  EXPECT_EQ(call(h, script(p_, {{400ms, ends::value, 1}, {50ms, ends::fatal}})), "1 @400");
  EXPECT_EQ(p_.log, (std::vector<std::string>{"start 1 @0", "start 2 @100"}));
}

TEST_F(Hedge, ReturnsThePrimarysFailureWhenEveryAttemptFails) {
  wr::hedge h{{.delay = 100ms}};
  // The hedge fails first (at 120), the primary last (at 300): the primary's failure is returned.
  EXPECT_EQ(call(h, script(p_, {{300ms, ends::retryable}, {20ms, ends::retryable}})),
            "attempt 1 @300");
  p_.log.clear();
  // The primary fails first (at 150, a hedge already runs), the hedge last (at 200).
  EXPECT_EQ(call(h, script(p_, {{150ms, ends::retryable}, {100ms, ends::fatal}})),
            "attempt 1 @200");
  EXPECT_EQ(p_.log, (std::vector<std::string>{"start 1 @0", "start 2 @100"}));
}

TEST_F(Hedge, LosersAreCancelledAndAwaitedBeforeTheCallerResumes) {
  wr::hedge h{{.max_hedged = 2, .delay = 10ms}};
  const auto r = rt_.block_on([](wr::hedge& h, probe& p) -> weft::task<std::string> {
    p.t0 = weft::clock::now();
    auto op = script(p, {{1s, ends::value, 1}, {1s, ends::value, 2}, {5ms, ends::value, 3}});
    const int v = co_await h.execute(std::move(op));
    // Both losers ran their RAII cleanup (and the winner its own) before this line.
    co_return std::to_string(v) + " cleaned " + std::to_string(p.cleaned) + " @" +
        std::to_string(ms_since(p.t0));
  }(h, p_));
  EXPECT_EQ(r, "3 cleaned 3 @25");
}

TEST_F(Hedge, AttemptsSeeTheirNumberAndACopyOfTheContext) {
  wr::hedge h{{.max_hedged = 2, .delay = 0ms}};
  std::vector<std::string> seen;
  auto op = wr::idempotent([&seen](wr::resilience_context& ctx) -> weft::task<int> {
    seen.push_back(std::string(ctx.key) + "#" + std::to_string(ctx.attempt));
    return [](int a) -> weft::task<int> {
      co_await weft::sleep_for(std::chrono::milliseconds{10 * (4 - a)});
      co_return a;
    }(ctx.attempt);
  });
  wr::pipeline pipe{h};
  const int v = rt_.block_on([](auto& pipe, auto op) -> weft::task<int> {
    wr::resilience_context ctx;
    ctx.key = "user:7";
    ctx.token = co_await weft::this_task::cancel_token();
    const auto t0 = weft::clock::now();
    const int r = co_await pipe.execute(ctx, std::move(op));
    EXPECT_EQ(ms_since(t0), 10);  // zero delay: all three start at once, the third wins at 10
    EXPECT_EQ(ctx.attempt, 1);    // the caller's context is untouched
    co_return r;
  }(pipe, std::move(op)));
  EXPECT_EQ(v, 3);
  std::sort(seen.begin(), seen.end());  // all start at once: their order is the scheduler's
  EXPECT_EQ(seen, (std::vector<std::string>{"user:7#1", "user:7#2", "user:7#3"}));
}

TEST_F(Hedge, NeverDelayHedgesOnlyOnFailures) {
  wr::hedge h{{.delay = wr::hedge_options::never}};
  EXPECT_EQ(call(h, script(p_, {{10s, ends::value, 1}, {1ms, ends::value, 2}})), "1 @10000");
  p_.log.clear();
  EXPECT_EQ(call(h, script(p_, {{10ms, ends::retryable}, {1ms, ends::value, 2}})), "2 @11");
}

TEST_F(Hedge, CancellingTheCallerCancelsEveryAttempt) {
  wr::hedge h{{.delay = 100ms}};
  const auto r = rt_.block_on([](wr::hedge& h, probe& p) -> weft::task<std::string> {
    p.t0 = weft::clock::now();
    weft::cancel_source source;
    auto op = script(p, {{1s, ends::value, 1}, {1s, ends::value, 2}});
    auto call = weft::spawn(weft::with_cancellation(source.token(), h.execute(std::move(op))));
    co_await weft::sleep_for(150ms);
    source.request_cancellation();
    std::string out;
    try {
      (void)co_await call;
      out = "value";
    } catch (const weft::operation_cancelled&) {
      out = "cancelled";
    }
    co_return out + " cleaned " + std::to_string(p.cleaned) + " @" + std::to_string(ms_since(p.t0));
  }(h, p_));
  EXPECT_EQ(r, "cancelled cleaned 2 @150");
  EXPECT_EQ(p_.log, (std::vector<std::string>{"start 1 @0", "start 2 @100", "cancel 1 @150",
                                              "cancel 2 @150"}));
}

// A gate that allows a fixed number of hedges and counts what it is told.
struct counting_gate final : wr::retry_gate {
  int allow = 0;
  int requests = 0, acquired = 0, refused = 0;
  std::vector<wr::verdict> outcomes;
  void record_request() noexcept override { ++requests; }
  bool try_acquire_retry() noexcept override {
    if (allow > 0) {
      --allow;
      ++acquired;
      return true;
    }
    ++refused;
    return false;
  }
  void record_outcome(wr::verdict v) noexcept override { outcomes.push_back(v); }
};

TEST_F(Hedge, AHedgeDrawsFromTheSharedGate) {
  counting_gate gate;
  gate.allow = 1;
  wr::hedge h{{.delay = 100ms, .gate = &gate}};
  EXPECT_EQ(call(h, script(p_, {{300ms, ends::retryable}, {50ms, ends::value, 2}})), "2 @150");
  EXPECT_EQ(gate.requests, 1);
  EXPECT_EQ(gate.acquired, 1);
  EXPECT_EQ(gate.refused, 0);
  // The hedge's success is reported; the cancelled primary is not.
  EXPECT_EQ(gate.outcomes, (std::vector<wr::verdict>{wr::verdict::success}));
}

TEST_F(Hedge, ARefusedHedgeIsNotLaunchedAndThePrimaryFinishes) {
  counting_gate gate;
  wr::hedge h{{.max_hedged = 2, .delay = 100ms, .gate = &gate}};
  events_.attach(h.observers());
  EXPECT_EQ(call(h, script(p_, {{300ms, ends::value, 1}, {1ms, ends::value, 2}})), "1 @300");
  EXPECT_EQ(p_.log, (std::vector<std::string>{"start 1 @0"}));
  EXPECT_EQ(gate.requests, 1);
  EXPECT_EQ(gate.refused, 1);  // refused once; no further hedge is tried for this call
  EXPECT_EQ(gate.outcomes, (std::vector<wr::verdict>{wr::verdict::success}));
  EXPECT_EQ(events_.lines, (std::vector<std::string>{"retry_budget_exhausted 2 @100"}));
}

TEST_F(Hedge, ARefusedHedgeAfterAFailureReturnsThatFailure) {
  counting_gate gate;
  wr::hedge h{{.delay = 100ms, .gate = &gate}};
  EXPECT_EQ(call(h, script(p_, {{30ms, ends::retryable}, {1ms, ends::value, 2}})), "attempt 1 @30");
  EXPECT_EQ(gate.refused, 1);
  EXPECT_EQ(gate.outcomes, (std::vector<wr::verdict>{wr::verdict::failure}));
}

weft::task<int> fails_first(int& calls) {
  if (++calls == 1) throw std::runtime_error("first");
  co_return calls;
}

TEST_F(Hedge, HedgesAndRetriesDrawFromOneRetryBudget) {
  // One retry or hedge per second in all: ratio 0, a reserve of 1/s over a 1 s window.
  wr::retry_budget budget{{.ratio = 0, .ttl = 1s, .min_retries_per_sec = 1}};
  wr::retry retry{{.max_attempts = 2, .gate = &budget}};
  wr::hedge h{{.delay = 100ms, .gate = &budget}};
  int calls = 0;
  EXPECT_EQ(rt_.block_on(retry.execute([&calls] { return fails_first(calls); })), 2);
  // The retry spent the allowance: the hedge is refused and the primary runs alone.
  EXPECT_EQ(call(h, script(p_, {{300ms, ends::value, 1}, {10ms, ends::value, 2}})), "1 @300");
  EXPECT_EQ(p_.log, (std::vector<std::string>{"start 1 @0"}));
}

// Runs `n` calls through `h`, call i taking latency(i).
weft::task<void> warm_up(wr::hedge& h, probe& p, int n, weft::clock::duration (*latency)(int)) {
  for (int i = 1; i <= n; ++i) {
    auto op = script(p, {{latency(i), ends::value, i}, {latency(i), ends::value, i}});
    (void)co_await h.execute(std::move(op));
  }
}

TEST_F(Hedge, PercentileDelayHedgesOnlyOnceTheLastPeriodHasMinSamples) {
  wr::hedge h{{.percentile = wr::percentile_delay{}}};  // p95 over 10 s, 100 samples
  rt_.block_on([](wr::hedge& h, probe& p) -> weft::task<void> {
    const auto t0 = weft::clock::now();
    EXPECT_FALSE(h.current_delay());
    // 100 calls of 1..100 ms (5.05 s in all), none hedged: too few samples so far.
    co_await warm_up(h, p, 100,
                     [](int i) -> weft::clock::duration { return std::chrono::milliseconds{i}; });
    EXPECT_EQ(ms_since(t0), 5050);
    EXPECT_EQ(p.log.size(), 100u);
    EXPECT_FALSE(h.current_delay());  // the samples are in the current period, not a full one
    co_await weft::sleep_until(t0 + 10s - 1ns);
    EXPECT_FALSE(h.current_delay());
    co_await weft::sleep_until(t0 + 10s);  // the period ends: p95 of 1..100 ms is 95 ms
    EXPECT_TRUE(h.current_delay());
    if (!h.current_delay()) co_return;
    EXPECT_EQ(*h.current_delay(), 95ms);

    p.log.clear();
    p.t0 = weft::clock::now();
    auto op = script(p, {{500ms, ends::value, 1}, {10ms, ends::value, 2}});
    EXPECT_EQ(co_await h.execute(std::move(op)), 2);
    EXPECT_EQ(p.log, (std::vector<std::string>{"start 1 @0", "start 2 @95", "cancel 1 @105"}));

    // Another full period with fewer than 100 samples (only that one call): no hedging again.
    co_await weft::sleep_until(t0 + 20s);
    EXPECT_FALSE(h.current_delay());
  }(h, p_));
}

TEST_F(Hedge, PercentileDelayForgetsAfterTwoIdlePeriods) {
  wr::hedge h{
      {.percentile = wr::percentile_delay{.quantile = 0.5, .period = 1s, .min_samples = 4}}};
  rt_.block_on([](wr::hedge& h, probe& p) -> weft::task<void> {
    const auto t0 = weft::clock::now();
    (void)h.current_delay();  // the first use aligns the periods
    co_await warm_up(
        h, p, 4, [](int i) -> weft::clock::duration { return std::chrono::milliseconds{10 * i}; });
    co_await weft::sleep_until(t0 + 1s);
    EXPECT_TRUE(h.current_delay());
    if (!h.current_delay()) co_return;
    EXPECT_EQ(*h.current_delay(), 20ms);  // the median of 10, 20, 30, 40: ceil(0.5 * 4) = 2nd
    co_await weft::sleep_until(t0 + 3s);  // two periods without a rotation clear both sides
    EXPECT_FALSE(h.current_delay());
  }(h, p_));
}

TEST_F(Hedge, PercentileColdStartCanUseTheFixedDelay) {
  wr::hedge h{
      {.delay = 40ms,
       .percentile = wr::percentile_delay{.until_min_samples = wr::cold_start::fixed_delay}}};
  ASSERT_TRUE(rt_.block_on([](wr::hedge& h) -> weft::task<bool> {
    co_return h.current_delay() == std::optional<weft::clock::duration>{40ms};
  }(h)));
  EXPECT_EQ(call(h, script(p_, {{100ms, ends::value, 1}, {10ms, ends::value, 2}})), "2 @50");
}

TEST_F(Hedge, PercentileDelayRoundsLatenciesUpToMilliseconds) {
  wr::hedge h{
      {.percentile = wr::percentile_delay{.quantile = 1.0, .period = 1s, .min_samples = 1}}};
  rt_.block_on([](wr::hedge& h, probe& p) -> weft::task<void> {
    const auto t0 = weft::clock::now();
    (void)h.current_delay();
    co_await warm_up(h, p, 1, [](int) -> weft::clock::duration { return 2500us; });
    co_await weft::sleep_until(t0 + 1s);
    EXPECT_EQ(h.current_delay(), std::optional<weft::clock::duration>{3ms});
  }(h, p_));
}

TEST_F(Hedge, PercentileBucketsAbove2048MsAreAsHdrHistogramsWithThreeDigits) {
  wr::hedge h{
      {.percentile = wr::percentile_delay{.quantile = 1.0, .period = 10s, .min_samples = 1}}};
  rt_.block_on([](wr::hedge& h, probe& p) -> weft::task<void> {
    const auto t0 = weft::clock::now();
    (void)h.current_delay();
    co_await warm_up(h, p, 1, [](int) -> weft::clock::duration { return 3000ms; });
    co_await weft::sleep_until(t0 + 10s);
    // 3000 ms shares a 2 ms bucket with 3001 ms; the quantile reads the bucket's highest value.
    EXPECT_EQ(h.current_delay(), std::optional<weft::clock::duration>{3001ms});
  }(h, p_));
}

TEST_F(Hedge, FailuresAreNotLatencySamples) {
  wr::hedge h{
      {.percentile = wr::percentile_delay{.quantile = 1.0, .period = 1s, .min_samples = 1}}};
  rt_.block_on([](wr::hedge& h, probe& p) -> weft::task<void> {
    const auto t0 = weft::clock::now();
    (void)h.current_delay();
    auto op = script(p, {{5ms, ends::retryable}});
    EXPECT_THROW((void)co_await h.execute(std::move(op)), std::runtime_error);
    co_await weft::sleep_until(t0 + 1s);
    EXPECT_FALSE(h.current_delay());
  }(h, p_));
}

TEST(HedgeOptions, BadOptionsThrowNamingTheOption) {
  auto message = [](wr::hedge_options o) -> std::string {
    try {
      wr::hedge h{std::move(o)};
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no throw";
  };
  EXPECT_NE(message({.max_hedged = 0}).find("max_hedged"), std::string::npos);
  EXPECT_NE(message({.max_hedged = 11}).find("max_hedged"), std::string::npos);
  EXPECT_NE(message({.delay = -1ms}).find("delay"), std::string::npos);
  EXPECT_NE(message({.percentile = wr::percentile_delay{.quantile = 0}}).find("quantile"),
            std::string::npos);
  EXPECT_NE(message({.percentile = wr::percentile_delay{.quantile = 1.5}}).find("quantile"),
            std::string::npos);
  EXPECT_NE(message({.percentile = wr::percentile_delay{.period = 0s}}).find("period"),
            std::string::npos);
  EXPECT_NE(message({.percentile = wr::percentile_delay{.min_samples = 0}}).find("min_samples"),
            std::string::npos);
  EXPECT_EQ(message({.max_hedged = 10, .delay = 0s}), "no throw");
}

TEST_F(Hedge, WorksWithOutcomeAndExpectedLikeResults) {
  wr::hedge h{{.delay = 100ms}};
  auto o = rt_.block_on(h.execute(
      wr::idempotent([](wr::resilience_context& ctx) -> weft::task<wr::call_outcome<int>> {
        if (ctx.attempt == 1) {
          co_await weft::sleep_for(30ms);
          co_return wr::call_outcome<int>::failure(
              std::make_error_code(std::errc::connection_reset));
        }
        co_return wr::call_outcome<int>::success(ctx.attempt);
      })));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o.value(), 2);
}

}  // namespace
