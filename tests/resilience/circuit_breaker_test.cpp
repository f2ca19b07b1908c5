// weft::resilience::circuit_breaker and breaker_family: every rule of docs/resilience-rules.md's
// "Circuit breaker" section under paused time, with exact instants, counts and event sequences,
// plus two-worker stress tests of one breaker and one family (run under TSan).
#include <weft/resilience/breaker_family.hpp>
#include <weft/resilience/circuit_breaker.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/classify.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/error.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/sync/event.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>
#include <weft/yield.hpp>

#include "support/paused_time.hpp"

namespace {

namespace wr = weft::resilience;
using weft::testing::paused;
using namespace std::chrono_literals;
using state = wr::breaker_state;
using outcome = wr::call_outcome<int>;

// What a call's operation does: succeed, fail (io_error), or end in a way breakers ignore.
enum class res { ok, fail, ignore, timeout };

weft::task<outcome> respond(res r, weft::clock::duration d) {
  if (d > 0ns) co_await weft::sleep_for(d);
  switch (r) {
    case res::ok:
      co_return outcome::success(1);
    case res::fail:
      co_return outcome::failure(std::make_error_code(std::errc::io_error));
    case res::ignore:
      co_return outcome::failure(wr::errc::bulkhead_full);
    case res::timeout:
      co_return outcome::failure(wr::errc::timeout);
  }
  co_return outcome::success(0);
}

// One call through `layer` whose operation takes `d` and ends as `r`; counts invocations.
template <class L>
weft::task<outcome> call(L& layer, res r, weft::clock::duration d = 0ns, int* invoked = nullptr) {
  co_return co_await layer.execute([r, d, invoked] {
    if (invoked != nullptr) ++*invoked;
    return respond(r, d);
  });
}

std::string fmt(weft::clock::duration d) {
  if (d % 1ms == 0ns) return std::to_string(d / 1ms) + "ms";
  return std::to_string(d.count()) + "ns";
}

// Events as short strings, with times relative to `start`:
//   "closed>open@20ms", "success", "failure", "ignored", "slow", "rejected:open:7000ms".
struct event_log {
  weft::clock::time_point start;
  std::vector<std::string> lines;

  // The threshold events (which precede an opening) have tests of their own; the sequences here
  // are about calls and transitions.
  void attach(wr::telemetry& t) {
    t.on_event([this](const wr::layer_event& e) noexcept {
      if (e.kind == wr::event_kind::breaker_failure_rate_exceeded ||
          e.kind == wr::event_kind::breaker_slow_call_rate_exceeded) {
        return;
      }
      lines.push_back(describe(e));
    });
  }
  std::string describe(const wr::layer_event& e) const {
    switch (e.kind) {
      case wr::event_kind::breaker_state_changed:
        return std::string(wr::to_string(e.from)) + ">" + std::string(wr::to_string(e.to)) + "@" +
               fmt(e.at - start);
      case wr::event_kind::breaker_success:
        return "success";
      case wr::event_kind::breaker_failure:
        return "failure";
      case wr::event_kind::breaker_ignored:
        return "ignored";
      case wr::event_kind::breaker_slow_call:
        return "slow";
      case wr::event_kind::breaker_rejected:
        return e.error == wr::errc::circuit_isolated ? "rejected:isolated"
                                                     : "rejected:open:" + fmt(e.delay);
      default:
        return "other:" + std::string(wr::to_string(e.kind));
    }
  }
  std::vector<std::string> take() { return std::exchange(lines, {}); }
};

using lines = std::vector<std::string>;

// A small breaker: two calls fill the window; open for 10 s; three trial successes close it.
wr::circuit_breaker_options small() {
  wr::circuit_breaker_options o;
  o.window = wr::window::count(2);
  o.minimum_calls = 2;
  o.open_duration = 10s;
  return o;
}

// Opens `b` (built from small()) with two failures.
weft::task<void> open_it(wr::circuit_breaker& b) {
  co_await call(b, res::fail);
  co_await call(b, res::fail);
  EXPECT_EQ(b.state(), state::open);
}

// ---------------------------------------------------------------------------------------------
// Options

TEST(CircuitBreakerOptions, DefaultsFollowResilience4jWithFailsafeHalfOpen) {
  const wr::circuit_breaker_options o;
  EXPECT_EQ(o.window.type, wr::window::kind::count);
  EXPECT_EQ(o.window.size, 100u);
  EXPECT_EQ(o.minimum_calls, 100u);
  EXPECT_EQ(o.failure_rate_threshold, 0.5);
  EXPECT_EQ(o.slow_call_duration, 60s);
  EXPECT_EQ(o.slow_call_rate_threshold, 1.0);
  EXPECT_EQ(o.open_duration, 60s);
  EXPECT_FALSE(o.open_duration_fn);
  EXPECT_EQ(o.half_open_permits, 3u);
  EXPECT_EQ(o.half_open_policy.type, wr::half_open_policy::kind::successes);
  EXPECT_EQ(o.half_open_policy.required_successes, 3u);
  EXPECT_FALSE(o.half_open_max_duration);
  EXPECT_FALSE(o.automatic_transition);
  const auto t = wr::window::time(60s);
  EXPECT_EQ(t.size, 10u);
  EXPECT_EQ(t.length, 60s);
  const wr::breaker_family_options f;
  EXPECT_EQ(f.idle_ttl, 10min);
}

TEST(CircuitBreakerOptions, BadOptionsThrowNamingTheOption) {
  auto message_of = [](wr::circuit_breaker_options o) -> std::string {
    try {
      wr::circuit_breaker b{std::move(o)};
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no throw";
  };
  auto with = [](auto change) {
    wr::circuit_breaker_options o;
    change(o);
    return o;
  };
  EXPECT_NE(message_of(with([](auto& o) { o.window = wr::window::count(0); })).find("window"),
            std::string::npos);
  EXPECT_NE(message_of(with([](auto& o) { o.window = wr::window::time(0s); })).find("window::time"),
            std::string::npos);
  EXPECT_NE(message_of(with([](auto& o) {
              o.window = wr::window::time(100ms, 3);
            })).find("equal buckets"),
            std::string::npos);
  EXPECT_NE(message_of(with([](auto& o) { o.minimum_calls = 0; })).find("minimum_calls"),
            std::string::npos);
  EXPECT_NE(message_of(with([](auto& o) {
              o.failure_rate_threshold = 0;
            })).find("failure_rate_threshold"),
            std::string::npos);
  EXPECT_NE(message_of(with([](auto& o) {
              o.failure_rate_threshold = 1.5;
            })).find("failure_rate_threshold"),
            std::string::npos);
  EXPECT_NE(message_of(with([](auto& o) {
              o.slow_call_rate_threshold = 0;
            })).find("slow_call_rate_threshold"),
            std::string::npos);
  EXPECT_NE(
      message_of(with([](auto& o) { o.slow_call_duration = -1ns; })).find("slow_call_duration"),
      std::string::npos);
  EXPECT_NE(message_of(with([](auto& o) { o.open_duration = 0s; })).find("open_duration"),
            std::string::npos);
  EXPECT_NE(message_of(with([](auto& o) { o.half_open_permits = 0; })).find("half_open_permits"),
            std::string::npos);
  EXPECT_NE(message_of(with([](auto& o) {
              o.half_open_policy = wr::half_open_policy::successes(4);
            })).find("successes(4)"),
            std::string::npos);
  EXPECT_NE(message_of(with([](auto& o) {
              o.half_open_policy = wr::half_open_policy::successes(0);
            })).find("successes(0)"),
            std::string::npos);
  EXPECT_NE(message_of(with([](auto& o) {
              o.half_open_max_duration = 0s;
            })).find("half_open_max_duration"),
            std::string::npos);
  EXPECT_EQ(message_of(with([](auto& o) { o.window = wr::window::time(1s, 4); })), "no throw");

  EXPECT_THROW(wr::breaker_family<int>({}, {.idle_ttl = 0s}), std::invalid_argument);
  EXPECT_THROW(wr::breaker_family<int>({}, {.max_keys = 0}), std::invalid_argument);
  wr::circuit_breaker_options bad;
  bad.minimum_calls = 0;
  EXPECT_THROW(wr::breaker_family<int>{bad}, std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Closed: windows, minimum calls, thresholds, slow calls, classification

TEST(CircuitBreaker, StaysClosedWhileFewerThanMinimumCallsAreBuffered) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::count(10);
    o.minimum_calls = 5;
    wr::circuit_breaker b{o};
    event_log log{weft::clock::now(), {}};
    log.attach(b.observers());
    for (int i = 0; i < 4; ++i) co_await call(b, res::fail, 5ms);
    EXPECT_EQ(b.state(), state::closed);
    auto m = b.metrics();
    EXPECT_EQ(m.buffered_calls, 4u);
    EXPECT_EQ(m.failed_calls, 4u);
    EXPECT_FALSE(m.failure_rate);  // below the minimum: no rate yet (as resilience4j's -1)
    co_await call(b, res::fail, 5ms);
    EXPECT_EQ(b.state(), state::open);
    EXPECT_EQ(log.take(),
              (lines{"failure", "failure", "failure", "failure", "failure", "closed>open@25ms"}));
    m = b.metrics();
    EXPECT_EQ(m.failure_rate, 1.0);
    EXPECT_EQ(m.totals.failed, 5u);
  });
}

TEST(CircuitBreaker, CountWindowUsesTheSmallerOfMinimumCallsAndSize) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::count(3);  // minimum_calls stays 100: min(100, 3) = 3
    wr::circuit_breaker b{o};
    co_await call(b, res::fail);
    co_await call(b, res::fail);
    EXPECT_EQ(b.state(), state::closed);
    co_await call(b, res::fail);
    EXPECT_EQ(b.state(), state::open);
  });
}

TEST(CircuitBreaker, OpensOnASuccessOnceTheWindowFills) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::count(4);
    o.minimum_calls = 4;
    wr::circuit_breaker b{o};
    event_log log{weft::clock::now(), {}};
    log.attach(b.observers());
    co_await call(b, res::fail, 1ms);
    co_await call(b, res::fail, 1ms);
    co_await call(b, res::ok, 1ms);
    EXPECT_EQ(b.state(), state::closed);  // 3 < 4 buffered
    co_await call(b, res::ok, 1ms);       // 2/4 = 0.5 >= 0.5, checked after this success
    EXPECT_EQ(b.state(), state::open);
    EXPECT_EQ(log.take(), (lines{"failure", "failure", "success", "success", "closed>open@4ms"}));
  });
}

TEST(CircuitBreaker, CountWindowSlidesOutTheOldestCall) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::count(4);
    o.minimum_calls = 4;
    wr::circuit_breaker b{o};
    co_await call(b, res::fail);
    for (int i = 0; i < 3; ++i) co_await call(b, res::ok);  // F S S S: 0.25
    EXPECT_EQ(b.metrics().failure_rate, 0.25);
    co_await call(b, res::fail);  // S S S F: the first F left
    EXPECT_EQ(b.metrics().failure_rate, 0.25);
    EXPECT_EQ(b.state(), state::closed);
    co_await call(b, res::fail);  // S S F F: 0.5
    EXPECT_EQ(b.state(), state::open);
  });
}

TEST(CircuitBreaker, FailureRateBelowTheThresholdKeepsItClosed) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::count(4);
    o.minimum_calls = 4;
    o.failure_rate_threshold = 0.75;
    wr::circuit_breaker b{o};
    const res calls[] = {res::fail, res::fail, res::ok, res::ok, res::fail};
    for (const res r : calls) co_await call(b, r);
    EXPECT_EQ(b.metrics().failure_rate, 0.5);  // F S S F
    EXPECT_EQ(b.state(), state::closed);
    co_await call(b, res::fail);  // S S F F: 0.5
    co_await call(b, res::fail);  // S F F F: 0.75 >= 0.75
    EXPECT_EQ(b.state(), state::open);
  });
}

TEST(CircuitBreaker, SlowCallsAreThoseLongerThanTheSlowDurationAndCanOpenIt) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::count(4);
    o.minimum_calls = 4;
    o.slow_call_duration = 100ms;
    o.slow_call_rate_threshold = 0.5;
    wr::circuit_breaker b{o};
    event_log log{weft::clock::now(), {}};
    log.attach(b.observers());
    co_await call(b, res::ok, 100ms);  // exactly the slow duration: not slow (> only)
    co_await call(b, res::ok, 101ms);  // slow
    co_await call(b, res::ok);
    EXPECT_EQ(b.metrics().slow_calls, 1u);
    co_await call(b, res::fail, 150ms);  // slow and failed: 2/4 slow → open
    EXPECT_EQ(b.state(), state::open);
    EXPECT_EQ(log.take(), (lines{"success", "success", "slow", "success", "failure", "slow",
                                 "closed>open@351ms"}));
    const auto m = b.metrics();
    EXPECT_EQ(m.slow_calls, 2u);
    EXPECT_EQ(m.slow_call_rate, 0.5);
    EXPECT_EQ(m.failure_rate, 0.25);
    EXPECT_EQ(m.totals.slow, 2u);
  });
}

// Transitions say why, and an opening is preceded by the threshold event with the rate
// (resilience4j's FAILURE_RATE_EXCEEDED and SLOW_CALL_RATE_EXCEEDED).
struct reason_log {
  std::vector<std::string> lines;
  void attach(wr::telemetry& t) {
    t.on_event([this](const wr::layer_event& e) noexcept {
      switch (e.kind) {
        case wr::event_kind::breaker_state_changed:
          lines.push_back(std::string(wr::to_string(e.from)) + ">" +
                          std::string(wr::to_string(e.to)) + ": " + std::string(e.reason));
          break;
        case wr::event_kind::breaker_failure_rate_exceeded:
        case wr::event_kind::breaker_slow_call_rate_exceeded:
          lines.push_back(std::string(wr::to_string(e.kind)) + " " +
                          std::to_string(static_cast<int>(e.value * 100)) + "%");
          break;
        default:
          break;
      }
    });
  }
};

TEST(CircuitBreaker, TransitionsSayWhyAndOpeningsReportTheRateThatCrossed) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::count(4);
    o.minimum_calls = 4;
    o.failure_rate_threshold = 0.5;
    o.slow_call_duration = 100ms;
    o.slow_call_rate_threshold = 0.75;
    o.open_duration = 1s;
    o.half_open_permits = 1;
    o.half_open_policy = wr::half_open_policy::successes(1);
    o.automatic_transition = true;
    wr::circuit_breaker b{o};
    reason_log log;
    log.attach(b.observers());
    co_await call(b, res::ok);
    co_await call(b, res::fail);
    co_await call(b, res::ok);
    co_await call(b, res::fail);   // 2 of 4 failed: 50 %
    co_await weft::sleep_for(1s);  // open time elapsed: half-open by the timer
    co_await call(b, res::fail);   // the trial fails
    co_await weft::sleep_for(1s);
    co_await call(b, res::ok);                                     // the trial succeeds
    for (int i = 0; i < 4; ++i) co_await call(b, res::ok, 150ms);  // every call slow: 100 %
    EXPECT_EQ(
        log.lines,
        (lines{"breaker_failure_rate_exceeded 50%", "closed>open: failure rate exceeded",
               "open>half_open: open time elapsed", "half_open>open: trial call failed",
               "open>half_open: open time elapsed", "half_open>closed: trial calls succeeded",
               "breaker_slow_call_rate_exceeded 100%", "closed>open: slow call rate exceeded"}));
    b.transition_to_forced_open();
    b.reset();
    EXPECT_EQ(log.lines.at(log.lines.size() - 2), "open>isolated: forced");
    EXPECT_EQ(log.lines.back(), "isolated>closed: reset");
  });
}

TEST(CircuitBreaker, MetricsOnlyReportsEachThresholdCrossingOnceAndNeverOpens) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::count(4);
    o.minimum_calls = 4;
    o.failure_rate_threshold = 0.5;
    wr::circuit_breaker b{o};
    b.transition_to_metrics_only();
    reason_log log;
    log.attach(b.observers());
    for (int i = 0; i < 6; ++i) co_await call(b, res::fail);  // crosses once, stays over
    for (int i = 0; i < 4; ++i) co_await call(b, res::ok);    // back below
    for (int i = 0; i < 2; ++i) co_await call(b, res::fail);  // 2 of 4: crosses again
    EXPECT_EQ(b.state(), state::metrics_only);
    EXPECT_EQ(log.lines,
              (lines{"breaker_failure_rate_exceeded 100%", "breaker_failure_rate_exceeded 50%"}));
  });
}

TEST(CircuitBreaker, DefaultSlowRateThresholdNeedsEveryBufferedCallSlow) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::count(2);
    o.minimum_calls = 2;
    o.slow_call_duration = 1s;
    wr::circuit_breaker b{o};
    co_await call(b, res::ok, 2s);
    co_await call(b, res::ok);
    co_await call(b, res::ok, 2s);  // [fast, slow]: 0.5 < 1.0
    EXPECT_EQ(b.state(), state::closed);
    co_await call(b, res::ok, 2s);  // [slow, slow]: 1.0, though every call succeeded
    EXPECT_EQ(b.state(), state::open);
  });
}

TEST(CircuitBreaker, WithoutSlowCallDetectionTransitionsAreStillStampedExactly) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.slow_call_duration = weft::clock::duration::max();  // calls are not timed
    wr::circuit_breaker b{opt};
    event_log log{weft::clock::now(), {}};
    log.attach(b.observers());
    co_await call(b, res::fail, 1h);  // would be slow under any finite slow_call_duration
    co_await weft::advance(250ms);
    co_await call(b, res::fail);
    EXPECT_EQ(b.metrics().totals.slow, 0u);
    co_await weft::advance(4s);
    EXPECT_EQ(*b.metrics().retry_after, 6s);  // opened at 1 h 250 ms, read when it opened
    EXPECT_EQ(log.take(), (lines{"failure", "failure", "closed>open@3600250ms"}));
  });
}

TEST(CircuitBreaker, IgnoredOutcomesAreNeitherBufferedNorChecked) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker b{small()};
    event_log log{weft::clock::now(), {}};
    log.attach(b.observers());
    co_await call(b, res::fail);
    co_await call(b, res::ignore);  // inner bulkhead_full: local overload, not the dependency
    auto m = b.metrics();
    EXPECT_EQ(m.buffered_calls, 1u);
    EXPECT_EQ(m.totals.ignored, 1u);
    EXPECT_EQ(b.state(), state::closed);
    co_await call(b, res::timeout);  // timeout is a failure
    EXPECT_EQ(b.state(), state::open);
    EXPECT_EQ(log.take(), (lines{"failure", "ignored", "failure", "closed>open@0ms"}));
  });
}

TEST(CircuitBreaker, DefaultClassificationIgnoresLocalOverloadRejections) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker b{small()};
    const wr::errc local[] = {wr::errc::bulkhead_full, wr::errc::rate_limited,
                              wr::errc::limit_exceeded};
    for (const wr::errc code : local) {
      co_await b.execute([code]() -> weft::task<outcome> { co_return outcome::failure(code); });
    }
    co_await b.execute([]() -> weft::task<outcome> { co_return outcome::cancelled(); });
    const auto m = b.metrics();
    EXPECT_EQ(m.totals.ignored, 4u);
    EXPECT_EQ(m.buffered_calls, 0u);
    // An exception is a failure.
    EXPECT_THROW(co_await b.execute([]() -> weft::task<int> { throw std::runtime_error("x"); }),
                 std::runtime_error);
    EXPECT_EQ(b.metrics().totals.failed, 1u);
  });
}

TEST(CircuitBreaker, FailureWhenPredicateReplacesTheDefaultClassification) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto o = small();
    o.failure_rate_threshold = 1.0;
    o.failure_when = wr::on_result([](const int& v) { return v < 0; });
    wr::circuit_breaker b{o};
    co_await b.execute([]() -> weft::task<int> { co_return -1; });
    co_await b.execute([]() -> weft::task<outcome> {  // not matched: a success, as in Polly
      co_return outcome::failure(std::make_error_code(std::errc::io_error));
    });
    auto m = b.metrics();
    EXPECT_EQ(m.totals.failed, 1u);
    EXPECT_EQ(m.totals.successful, 1u);
    EXPECT_EQ(b.state(), state::closed);
    co_await b.execute([]() -> weft::task<int> { co_return -2; });  // [S, F]: 0.5 < 1.0
    co_await b.execute([]() -> weft::task<int> { co_return -3; });
    EXPECT_EQ(b.state(), state::open);
  });
}

TEST(CircuitBreaker, IgnoreWhenOutcomesAreNeitherCountedNorHeldAgainstTheDependency) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto o = small();
    o.failure_rate_threshold = 0.5;
    o.ignore_when = wr::on_exception<std::invalid_argument>();
    o.failure_when = wr::on_exception<std::exception>();  // would match: ignore_when wins
    wr::circuit_breaker b{o};
    for (int i = 0; i < 10; ++i) {
      EXPECT_THROW(co_await b.execute([]() -> weft::task<int> {
        throw std::invalid_argument("the caller's mistake");
      }),
                   std::invalid_argument);
    }
    auto m = b.metrics();
    EXPECT_EQ(m.totals.ignored, 10u);
    EXPECT_EQ(m.totals.failed, 0u);
    EXPECT_EQ(m.buffered_calls, 0u) << "ignored calls stay out of the window";
    EXPECT_EQ(b.state(), state::closed);
    EXPECT_THROW(co_await b.execute([]() -> weft::task<int> { throw std::runtime_error("down"); }),
                 std::runtime_error);
    EXPECT_EQ(b.metrics().totals.failed, 1u) << "other exceptions still count";
  });
}

TEST(Classifier, IgnoreWhenTakesPrecedenceAndEmptyKeepsTheDefault) {
  wr::classifier c;
  wr::outcome_view error;
  error.kind = wr::outcome_kind::error;
  error.error = std::make_error_code(std::errc::io_error);
  EXPECT_EQ(c(error), wr::verdict::failure);
  c.ignore_when = wr::on_error(std::errc::io_error);
  EXPECT_EQ(c(error), wr::verdict::ignore);
  c.failure_when = wr::on_error(std::errc::io_error);
  EXPECT_EQ(c(error), wr::verdict::ignore) << "ignore_when is checked first";
  wr::outcome_view value;
  EXPECT_EQ(c(value), wr::verdict::success);
}

// ---------------------------------------------------------------------------------------------
// Time and consecutive windows

TEST(CircuitBreaker, TimeWindowBucketLeavesAtItsExactInstant) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::time(1s, 4);  // 250 ms buckets
    o.minimum_calls = 10;
    wr::circuit_breaker b{o};
    co_await call(b, res::fail);  // t = 0: bucket 0
    co_await weft::advance(300ms);
    co_await call(b, res::ok);            // t = 300: bucket 1
    co_await weft::advance(700ms - 1ns);  // t = 1000 − 1 ns: current bucket 3
    EXPECT_EQ(b.metrics().buffered_calls, 2u);
    co_await weft::advance(1ns);  // t = 1000: bucket 4, bucket 0 leaves
    auto m = b.metrics();
    EXPECT_EQ(m.buffered_calls, 1u);
    EXPECT_EQ(m.failed_calls, 0u);
    co_await weft::advance(250ms - 1ns);  // t = 1250 − 1 ns
    EXPECT_EQ(b.metrics().buffered_calls, 1u);
    co_await weft::advance(1ns);  // t = 1250: bucket 1 leaves
    EXPECT_EQ(b.metrics().buffered_calls, 0u);
  });
}

TEST(CircuitBreaker, TimeWindowCountsAnOutcomeJustBeforeItsOldestBucketLeaves) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto make = [] {
      wr::circuit_breaker_options o;
      o.window = wr::window::time(1s, 4);
      o.minimum_calls = 2;
      return o;
    };
    wr::circuit_breaker early{make()};
    wr::circuit_breaker late{make()};
    co_await call(early, res::fail);
    co_await call(late, res::fail);
    co_await weft::advance(1s - 1ns);
    co_await call(early, res::ok);  // [F, S]: 0.5 → open
    EXPECT_EQ(early.state(), state::open);
    co_await weft::advance(1ns);
    co_await call(late, res::ok);  // t = 1 s: the F left; [S] is below the minimum
    EXPECT_EQ(late.state(), state::closed);
    EXPECT_EQ(late.metrics().buffered_calls, 1u);
  });
}

TEST(CircuitBreaker, TimeWindowIsAlignedToTheBreakersCreation) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    co_await weft::advance(100ms);
    wr::circuit_breaker_options o;
    o.window = wr::window::time(1s, 4);
    wr::circuit_breaker b{o};  // t0 = 100 ms: buckets [100, 350), [350, 600), …
    co_await weft::advance(240ms);
    co_await call(b, res::fail);  // t = 340: bucket 0
    co_await weft::advance(1099ms - 340ms);
    EXPECT_EQ(weft::testing::ms_since(start), 1099);
    EXPECT_EQ(b.metrics().buffered_calls, 1u);
    co_await weft::advance(1ms);  // t = 1100 = t0 + 4·250: bucket 0 leaves
    EXPECT_EQ(b.metrics().buffered_calls, 0u);
  });
}

TEST(CircuitBreaker, TimeWindowUsesMinimumCallsAsGiven) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::time(1s, 2);
    o.minimum_calls = 3;  // not clamped to the 2 buckets
    wr::circuit_breaker b{o};
    co_await call(b, res::fail);
    co_await call(b, res::fail);
    EXPECT_EQ(b.state(), state::closed);
    co_await call(b, res::fail);
    EXPECT_EQ(b.state(), state::open);
  });
}

TEST(CircuitBreaker, TimeWindowDropsEveryBucketAfterALongSilence) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::time(1s, 4);
    o.minimum_calls = 2;
    o.failure_rate_threshold = 1.0;
    wr::circuit_breaker b{o};
    co_await call(b, res::fail);
    co_await weft::advance(250ms);
    co_await call(b, res::ok);
    co_await weft::advance(1h);
    EXPECT_EQ(b.metrics().buffered_calls, 0u);
    co_await call(b, res::fail);  // [F]: the old calls are gone, below the minimum
    EXPECT_EQ(b.state(), state::closed);
    co_await call(b, res::fail);
    EXPECT_EQ(b.state(), state::open);
  });
}

TEST(CircuitBreaker, ConsecutiveWindowOpensAfterNFailuresInARow) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::consecutive(3);  // minimum_calls (100) does not apply
    wr::circuit_breaker b{o};
    const res calls[] = {res::fail, res::fail, res::ok, res::fail, res::fail, res::ignore};
    for (const res r : calls) co_await call(b, r);
    EXPECT_EQ(b.state(), state::closed);
    auto m = b.metrics();
    EXPECT_EQ(m.failed_calls, 2u);  // the run
    EXPECT_NEAR(*m.failure_rate, 2.0 / 3.0, 1e-12);
    co_await call(b, res::fail);
    EXPECT_EQ(b.state(), state::open);
  });
}

TEST(CircuitBreaker, ConsecutiveWindowOpensAfterNSlowCallsInARow) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::consecutive(2);
    o.slow_call_duration = 10ms;
    wr::circuit_breaker b{o};
    co_await call(b, res::ok, 20ms);
    co_await call(b, res::ok, 5ms);  // breaks the slow run
    co_await call(b, res::ok, 20ms);
    EXPECT_EQ(b.state(), state::closed);
    co_await call(b, res::ok, 20ms);
    EXPECT_EQ(b.state(), state::open);
  });
}

// ---------------------------------------------------------------------------------------------
// Open and the way to half-open

TEST(CircuitBreaker, OpenRejectsWithTheRemainingOpenTimeWithoutCallingTheOperation) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker b{small()};
    event_log log{weft::clock::now(), {}};
    co_await open_it(b);
    log.attach(b.observers());
    co_await weft::advance(3s);
    int invoked = 0;
    const auto o = co_await call(b, res::ok, 0ns, &invoked);
    EXPECT_EQ(invoked, 0);
    EXPECT_EQ(o.error(), wr::errc::circuit_open);
    EXPECT_EQ(o.retry_after(), std::optional<weft::clock::duration>(7s));  // opened_at + 10 s − now
    // A caller of plain T gets `rejected` with the same retry_after.
    co_await weft::advance(2500ms);
    try {
      (void)co_await b.execute([]() -> weft::task<int> { co_return 1; });
      ADD_FAILURE() << "no rejection";
    } catch (const wr::rejected& r) {
      EXPECT_EQ(r.code(), wr::errc::circuit_open);
      EXPECT_EQ(*r.retry_after(), 4500ms);
    }
    EXPECT_EQ(log.take(), (lines{"rejected:open:7000ms", "rejected:open:4500ms"}));
    const auto m = b.metrics();
    EXPECT_EQ(m.totals.rejected, 2u);
    EXPECT_EQ(*m.retry_after, 4500ms);
  });
}

TEST(CircuitBreaker, OpenMovesToHalfOpenLazilyAtTheInclusiveInstant) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker b{small()};
    event_log log{weft::clock::now(), {}};
    log.attach(b.observers());
    co_await open_it(b);
    co_await weft::advance(10s - 1ns);
    int invoked = 0;
    auto o = co_await call(b, res::ok, 0ns, &invoked);
    EXPECT_EQ(*o.retry_after(), 1ns);
    co_await weft::advance(1ns);
    EXPECT_EQ(b.state(), state::open);  // no acquire yet: still open (lazy)
    co_await weft::advance(5s);         // nothing moves it while nobody calls
    EXPECT_EQ(b.state(), state::open);
    o = co_await call(b, res::ok, 0ns, &invoked);
    EXPECT_TRUE(o.has_value());
    EXPECT_EQ(invoked, 1);
    EXPECT_EQ(b.state(), state::half_open);
    EXPECT_EQ(log.take(), (lines{"failure", "failure", "closed>open@0ms", "rejected:open:1ns",
                                 "open>half_open@15000ms", "success"}));
  });
}

TEST(CircuitBreaker, AutomaticTransitionMovesAtTheInstantsWithoutCalls) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.automatic_transition = true;
    opt.half_open_max_duration = 4s;
    wr::circuit_breaker b{opt};
    event_log log{weft::clock::now(), {}};
    log.attach(b.observers());
    co_await open_it(b);
    co_await weft::advance(10s - 1ns);
    EXPECT_EQ(b.state(), state::open);
    co_await weft::advance(1ns);
    EXPECT_EQ(log.take(),
              (lines{"failure", "failure", "closed>open@0ms", "open>half_open@10000ms"}));
    EXPECT_EQ(b.state(), state::half_open);
    co_await weft::advance(4s);  // no trial decided by entered + 4 s: open at that instant
    EXPECT_EQ(log.take(), (lines{"half_open>open@14000ms"}));
    co_await weft::advance(10s);
    EXPECT_EQ(log.take(), (lines{"open>half_open@24000ms"}));
  });
}

TEST(CircuitBreaker, AutomaticTimerOfAnOlderEpochDoesNothing) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.automatic_transition = true;
    wr::circuit_breaker b{opt};
    co_await open_it(b);
    b.transition_to_closed();  // the timer armed for 10 s belongs to the open epoch
    event_log log{weft::clock::now(), {}};
    log.attach(b.observers());
    co_await weft::advance(20s);
    EXPECT_EQ(b.state(), state::closed);
    EXPECT_TRUE(log.take().empty());
  });
}

TEST(CircuitBreaker, AutomaticTimerOutlivingItsBreakerDoesNothing) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto shared = std::make_shared<wr::telemetry>("circuit_breaker");  // outlives the breaker
    event_log log{weft::clock::now(), {}};
    log.attach(*shared);
    {
      auto opt = small();
      opt.automatic_transition = true;
      wr::circuit_breaker b{opt, shared};
      co_await open_it(b);
    }  // destroyed with its timer pending; the timer holds only a weak reference
    co_await weft::advance(20s);  // (ASan would also report a timer touching the dead breaker)
    EXPECT_EQ(log.take(), (lines{"failure", "failure", "closed>open@0ms"}));
  });
}

// ---------------------------------------------------------------------------------------------
// Half-open

TEST(CircuitBreaker, HalfOpenLimitsConcurrentTrials) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker b{small()};
    co_await open_it(b);
    co_await weft::advance(10s);
    std::vector<weft::join_handle<outcome>> trials;
    for (int i = 0; i < 3; ++i) trials.push_back(weft::spawn(call(b, res::ok, 1s)));
    co_await weft::advance(0ns);  // the three take their slots
    EXPECT_EQ(b.metrics().trial_permits_used, 3u);
    int invoked = 0;
    const auto o = co_await call(b, res::ok, 0ns, &invoked);
    EXPECT_EQ(invoked, 0);
    EXPECT_EQ(o.error(), wr::errc::circuit_open);
    EXPECT_EQ(*o.retry_after(), 0ns);  // half-open with no free slot
    for (auto& t : trials) EXPECT_TRUE((co_await t).has_value());
    EXPECT_EQ(b.state(), state::closed);  // three trial successes
  });
}

TEST(CircuitBreaker, HalfOpenLimitsTotalTrialsPerEpisode) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker b{small()};
    co_await open_it(b);
    co_await weft::advance(10s);
    co_await call(b, res::ok);
    co_await call(b, res::ok);
    auto third = weft::spawn(call(b, res::ok, 1s));
    co_await weft::advance(0ns);
    // One call in flight, but 3 of 3 trials taken in this episode.
    const auto o = co_await call(b, res::ok);
    EXPECT_EQ(o.error(), wr::errc::circuit_open);
    const auto m = b.metrics();
    EXPECT_EQ(m.trial_permits_used, 3u);
    EXPECT_EQ(m.buffered_calls, 2u);
    EXPECT_TRUE((co_await third).has_value());
    EXPECT_EQ(b.state(), state::closed);
  });
}

TEST(CircuitBreaker, SuccessesPolicyClosesAfterNTrialSuccessesWithAnEmptyWindow) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.half_open_policy = wr::half_open_policy::successes(2);
    wr::circuit_breaker b{opt};
    event_log log{weft::clock::now(), {}};
    co_await open_it(b);
    log.attach(b.observers());
    co_await weft::advance(10s);
    co_await call(b, res::ok, 1ms);
    EXPECT_EQ(b.state(), state::half_open);
    co_await call(b, res::ok, 1ms);
    EXPECT_EQ(b.state(), state::closed);
    EXPECT_EQ(log.take(),
              (lines{"open>half_open@10000ms", "success", "success", "half_open>closed@10002ms"}));
    const auto m = b.metrics();
    EXPECT_EQ(m.buffered_calls, 0u);  // closing starts an empty window
    EXPECT_EQ(m.consecutive_opens, 0u);
    co_await call(b, res::fail);  // one failure alone is below the minimum again
    EXPECT_EQ(b.state(), state::closed);
  });
}

TEST(CircuitBreaker, SuccessesPolicyReopensOnTheFirstTrialFailure) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker b{small()};
    event_log log{weft::clock::now(), {}};
    co_await open_it(b);
    log.attach(b.observers());
    co_await weft::advance(10s);
    co_await call(b, res::ok, 1ms);
    co_await call(b, res::fail, 1ms);
    EXPECT_EQ(b.state(), state::open);
    EXPECT_EQ(log.take(),
              (lines{"open>half_open@10000ms", "success", "failure", "half_open>open@10002ms"}));
    const auto o = co_await call(b, res::ok);
    EXPECT_EQ(*o.retry_after(), 10s);
    EXPECT_EQ(b.metrics().consecutive_opens, 2u);
  });
}

TEST(CircuitBreaker, SuccessesPolicyReopensOnASlowTrial) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.slow_call_duration = 100ms;
    wr::circuit_breaker b{opt};
    co_await open_it(b);
    co_await weft::advance(10s);
    co_await call(b, res::ok, 100ms);  // not slow
    EXPECT_EQ(b.state(), state::half_open);
    co_await call(b, res::ok, 101ms);
    EXPECT_EQ(b.state(), state::open);
  });
}

TEST(CircuitBreaker, RatePolicyDecidesOnlyAfterEveryPermitReported) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.half_open_permits = 4;
    opt.half_open_policy = wr::half_open_policy::rate();
    wr::circuit_breaker b{opt};
    co_await open_it(b);
    co_await weft::advance(10s);
    const res calls[] = {res::fail, res::ok, res::ok};
    for (const res r : calls) co_await call(b, r);
    EXPECT_EQ(b.state(), state::half_open);  // a trial failure alone does not decide
    EXPECT_EQ(b.metrics().failure_rate, 1.0 / 3.0);
    co_await call(b, res::ok);  // 1/4 < 0.5
    EXPECT_EQ(b.state(), state::closed);
  });
}

TEST(CircuitBreaker, RatePolicyReopensAtTheThreshold) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.half_open_permits = 4;
    opt.half_open_policy = wr::half_open_policy::rate();
    wr::circuit_breaker b{opt};
    event_log log{weft::clock::now(), {}};
    co_await open_it(b);
    log.attach(b.observers());
    co_await weft::advance(10s);
    const res calls[] = {res::ok, res::fail, res::ignore, res::ok, res::fail};
    for (const res r : calls) co_await call(b, r);
    EXPECT_EQ(b.state(), state::open);  // 2/4 >= 0.5; the ignored one gave its slot back
    EXPECT_EQ(log.take(), (lines{"open>half_open@10000ms", "success", "failure", "ignored",
                                 "success", "failure", "half_open>open@10000ms"}));
  });
}

TEST(CircuitBreaker, RatePolicyReopensOnTheSlowCallRate) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.half_open_permits = 2;
    opt.half_open_policy = wr::half_open_policy::rate();
    opt.slow_call_duration = 1s;
    opt.slow_call_rate_threshold = 0.5;
    wr::circuit_breaker b{opt};
    co_await open_it(b);
    co_await weft::advance(10s);
    co_await call(b, res::ok, 2s);
    co_await call(b, res::ok);
    EXPECT_EQ(b.state(), state::open);
  });
}

TEST(CircuitBreaker, IgnoredAndCancelledTrialsGiveTheirSlotBack) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.half_open_permits = 1;
    opt.half_open_policy = wr::half_open_policy::successes(1);
    wr::circuit_breaker b{opt};
    co_await open_it(b);
    co_await weft::advance(10s);
    co_await call(b, res::ignore);
    EXPECT_EQ(b.metrics().trial_permits_used, 0u);
    // A cancelled trial: the caller is cancelled while the operation runs.
    auto trial = weft::spawn(call(b, res::ok, 1h));
    co_await weft::advance(1s);
    EXPECT_EQ(b.metrics().trial_permits_used, 1u);
    trial.cancel();
    try {
      (void)co_await trial;
    } catch (const weft::operation_cancelled&) {
    }
    const auto m = b.metrics();
    EXPECT_EQ(m.trial_permits_used, 0u);
    EXPECT_EQ(m.totals.ignored, 2u);
    EXPECT_EQ(b.state(), state::half_open);
    co_await call(b, res::ok);  // the slot is free again
    EXPECT_EQ(b.state(), state::closed);
  });
}

TEST(CircuitBreaker, HalfOpenMaxDurationReopensAtExactlyTheInstant) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.half_open_max_duration = 5s;
    wr::circuit_breaker b{opt};
    event_log log{weft::clock::now(), {}};
    co_await open_it(b);
    log.attach(b.observers());
    co_await weft::advance(12s);  // the first acquire at 12 s enters half-open
    auto slow_trial = weft::spawn(call(b, res::ok, 30s));
    co_await weft::advance(5s - 1ns);
    EXPECT_EQ(b.state(), state::half_open);
    co_await weft::advance(1ns);  // 17 s = entered + 5 s
    EXPECT_EQ(b.state(), state::open);
    const auto o = co_await call(b, res::ok);
    EXPECT_EQ(*o.retry_after(), 10s);                // opened at exactly 17 s
    EXPECT_TRUE((co_await slow_trial).has_value());  // at 42 s, from the older epoch
    EXPECT_EQ(b.state(), state::open);               // the late success moved nothing
    EXPECT_EQ(b.metrics().totals.late, 1u);
    EXPECT_EQ(log.take(), (lines{"open>half_open@12000ms", "half_open>open@17000ms",
                                 "rejected:open:10000ms", "success"}));
  });
}

TEST(CircuitBreaker, HalfOpenExpiryAppliedLazilyIsStampedWithTheExactInstant) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.half_open_max_duration = 5s;
    wr::circuit_breaker b{opt};
    event_log log{weft::clock::now(), {}};
    co_await open_it(b);
    log.attach(b.observers());
    co_await weft::advance(10s);
    co_await call(b, res::ok);   // enters half-open at 10 s, one success of three
    co_await weft::advance(7s);  // nothing looks until 17 s
    const auto m = b.metrics();
    EXPECT_EQ(m.state, state::open);
    EXPECT_EQ(*m.retry_after, 8s);  // opened at 15 s, the instant, not at 17 s
    EXPECT_EQ(m.consecutive_opens, 2u);
    EXPECT_EQ(log.take(), (lines{"open>half_open@10000ms", "success", "half_open>open@15000ms"}));
  });
}

TEST(CircuitBreaker, HalfOpenMaxDurationDefaultsToTheEpisodesOpenDuration) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.open_duration_fn = [](std::size_t k) { return k * 10s; };
    wr::circuit_breaker b{opt};
    event_log log{weft::clock::now(), {}};
    co_await open_it(b);  // k = 1: 10 s
    log.attach(b.observers());
    co_await weft::advance(10s);
    co_await call(b, res::ok);  // half-open at 10 s, max 10 s
    co_await weft::advance(10s);
    EXPECT_EQ(b.state(), state::open);  // at 20 s; k = 2: open for 20 s
    co_await weft::advance(20s);
    co_await call(b, res::ok);  // half-open at 40 s, max 20 s
    co_await weft::advance(20s - 1ns);
    EXPECT_EQ(b.state(), state::half_open);
    co_await weft::advance(1ns);
    EXPECT_EQ(b.state(), state::open);
    EXPECT_EQ(log.take(), (lines{"open>half_open@10000ms", "success", "half_open>open@20000ms",
                                 "open>half_open@40000ms", "success", "half_open>open@60000ms"}));
  });
}

// ---------------------------------------------------------------------------------------------
// Epochs

TEST(CircuitBreaker, LateResultsFromAnOlderEpochNeverMoveTheState) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.half_open_policy = wr::half_open_policy::successes(2);
    wr::circuit_breaker b{opt};
    event_log log{weft::clock::now(), {}};
    log.attach(b.observers());
    // An overhanging call from closed, failing during the half-open episode.
    auto overhang = weft::spawn(call(b, res::fail, 11s));
    co_await weft::advance(0ns);
    co_await open_it(b);
    co_await weft::advance(10s);
    co_await call(b, res::ok);   // half-open at 10 s
    co_await weft::advance(1s);  // 11 s: the overhanging failure arrives
    (void)co_await overhang;
    EXPECT_EQ(b.state(), state::half_open);  // not re-opened by it
    co_await call(b, res::ok);
    EXPECT_EQ(b.state(), state::closed);
    const auto m = b.metrics();
    EXPECT_EQ(m.totals.late, 1u);
    EXPECT_EQ(m.totals.failed, 3u);  // the late failure is still exported
    EXPECT_EQ(log.take(), (lines{"failure", "failure", "closed>open@0ms", "open>half_open@10000ms",
                                 "success", "failure", "success", "half_open>closed@11000ms"}));
  });
}

TEST(CircuitBreaker, LateResultsNeverEnterTheNextClosedWindow) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker b{small()};
    auto first = weft::spawn(call(b, res::fail, 5s));
    auto second = weft::spawn(call(b, res::fail, 5s));
    co_await weft::advance(0ns);
    b.transition_to_closed();  // no-op: already closed, same epoch
    b.reset();                 // a new epoch: the two calls in flight are now late
    co_await weft::advance(5s);
    (void)co_await first;
    (void)co_await second;
    const auto m = b.metrics();
    EXPECT_EQ(m.state, state::closed);  // two failures fill the window, but they are late
    EXPECT_EQ(m.buffered_calls, 0u);
    EXPECT_EQ(m.totals.late, 2u);
    EXPECT_EQ(m.totals.failed, 2u);
  });
}

TEST(CircuitBreaker, ThePermitsEpochIsTaggedInTheContext) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker b{small()};
    wr::resilience_context ctx;
    wr::pipeline pipe{b};
    std::optional<std::uint64_t> seen;
    co_await pipe.execute(ctx, [&](wr::resilience_context& c) -> weft::task<int> {
      seen = c.epoch_of(&b);
      co_return 1;
    });
    EXPECT_EQ(seen, std::optional<std::uint64_t>(0));
    co_await open_it(b);
    co_await weft::advance(10s);
    co_await pipe.execute(ctx, [&](wr::resilience_context& c) -> weft::task<int> {
      seen = c.epoch_of(&b);
      co_return 1;
    });
    EXPECT_EQ(seen, std::optional<std::uint64_t>(2));  // closed 0 → open 1 → half_open 2
    EXPECT_EQ(b.epoch(), 2u);
  });
}

// ---------------------------------------------------------------------------------------------
// RAII permits

TEST(CircuitBreaker, PermitDroppedByAnExceptionIsReleasedAsIgnored) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.half_open_permits = 1;
    opt.half_open_policy = wr::half_open_policy::successes(1);
    wr::circuit_breaker b{opt};
    co_await open_it(b);
    co_await weft::advance(10s);
    try {
      auto p = b.try_acquire();
      EXPECT_TRUE(p);
      EXPECT_EQ(b.metrics().trial_permits_used, 1u);
      EXPECT_FALSE(b.try_acquire());  // the only slot is taken
      throw std::runtime_error("between acquire and record");
    } catch (const std::runtime_error&) {
    }
    const auto m = b.metrics();
    EXPECT_EQ(m.trial_permits_used, 0u);
    EXPECT_EQ(m.totals.ignored, 1u);
    EXPECT_TRUE(b.try_acquire());
  });
}

TEST(CircuitBreaker, AnOperationThatThrowsIsRecordedAsAFailure) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.half_open_permits = 1;
    opt.half_open_policy = wr::half_open_policy::successes(1);
    wr::circuit_breaker b{opt};
    co_await open_it(b);
    co_await weft::advance(10s);
    EXPECT_THROW(co_await b.execute([]() -> weft::task<int> {
      co_await weft::sleep_for(1ms);
      throw std::runtime_error("down");
    }),
                 std::runtime_error);
    EXPECT_EQ(b.state(), state::open);
    EXPECT_EQ(b.metrics().trial_permits_used, 0u);
  });
}

weft::task<outcome> wait_for(weft::event& e) {
  co_await e.wait();
  co_return outcome::success(1);
}

TEST(CircuitBreaker, PermitIsReleasedWhenTheCallsFrameIsDestroyed) {
  weft::event never;  // no timer: the paused clock cannot jump ahead and end the call
  std::optional<wr::circuit_breaker> b;
  {
    weft::runtime rt{paused()};
    rt.block_on([&]() -> weft::task<void> {
      auto opt = small();
      opt.half_open_max_duration = 24h;  // read off the runtime below: keep the episode alive
      b.emplace(opt);
      co_await open_it(*b);
      co_await weft::advance(10s);
      weft::spawn(b->execute([&never] { return wait_for(never); })).detach();
      co_await weft::advance(1s);
      EXPECT_EQ(b->metrics().trial_permits_used, 1u);
    });
  }  // the runtime destroys the suspended call, and the permit in its frame
  const auto m = b->metrics();
  EXPECT_EQ(m.state, state::half_open);
  EXPECT_EQ(m.trial_permits_used, 0u);
  EXPECT_EQ(m.totals.ignored, 1u);
}

TEST(CircuitBreaker, ManualPermitsRecordWithAGivenDurationOnce) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.slow_call_duration = 1s;
    wr::circuit_breaker b{opt};
    auto p = b.try_acquire();
    if (!p) {
      ADD_FAILURE() << "a closed breaker refused a permit";
      co_return;
    }
    EXPECT_EQ(p->issued_in(), state::closed);
    EXPECT_EQ(p->epoch(), 0u);
    const auto ok = outcome::success(1);
    p->record(wr::view_of(ok), 2s);  // slow by the given duration, though no time passed
    EXPECT_FALSE(p->held());
    EXPECT_THROW(p->record(wr::view_of(ok)), std::logic_error);
    auto q = b.try_acquire();
    auto moved = std::move(*q);
    EXPECT_FALSE(q->held());
    EXPECT_THROW(q->record(wr::view_of(ok)), std::logic_error);
    co_await weft::advance(3s);
    moved.record(wr::view_of(ok));  // duration since acquisition: 3 s, slow
    const auto m = b.metrics();
    EXPECT_EQ(m.slow_calls, 2u);
    EXPECT_EQ(b.state(), state::open);  // 2/2 slow >= 1.0
    EXPECT_FALSE(b.try_acquire());
    co_return;
  });
}

// ---------------------------------------------------------------------------------------------
// Forced states and reset

TEST(CircuitBreaker, ForcedOpenRejectsWithCircuitIsolatedUntilClosed) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker b{small()};
    event_log log{weft::clock::now(), {}};
    log.attach(b.observers());
    b.transition_to_forced_open();
    b.transition_to_forced_open();  // no-op
    int invoked = 0;
    auto o = co_await call(b, res::ok, 0ns, &invoked);
    EXPECT_EQ(o.error(), wr::errc::circuit_isolated);
    EXPECT_FALSE(o.retry_after());
    co_await weft::advance(1h);  // no half-open from isolated
    o = co_await call(b, res::ok, 0ns, &invoked);
    EXPECT_EQ(o.error(), wr::errc::circuit_isolated);
    EXPECT_EQ(invoked, 0);
    EXPECT_EQ(b.state(), state::isolated);
    b.transition_to_closed();
    co_await call(b, res::ok, 0ns, &invoked);
    EXPECT_EQ(invoked, 1);
    EXPECT_EQ(log.take(), (lines{"closed>isolated@0ms", "rejected:isolated", "rejected:isolated",
                                 "isolated>closed@3600000ms", "success"}));
  });
}

TEST(CircuitBreaker, DisabledLetsEverythingThroughAndRecordsNothing) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker b{small()};
    event_log log{weft::clock::now(), {}};
    log.attach(b.observers());
    b.transition_to_disabled();
    int invoked = 0;
    for (int i = 0; i < 5; ++i) co_await call(b, res::fail, 0ns, &invoked);
    EXPECT_EQ(invoked, 5);
    EXPECT_EQ(b.state(), state::disabled);
    const auto m = b.metrics();
    EXPECT_EQ(m.totals.failed, 0u);
    EXPECT_EQ(m.buffered_calls, 0u);
    EXPECT_EQ(log.take(), (lines{"closed>disabled@0ms"}));
  });
}

TEST(CircuitBreaker, MetricsOnlyRecordsAndReportsButNeverOpens) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker b{small()};
    co_await call(b, res::fail);  // in the closed window; metrics_only starts a fresh one
    event_log log{weft::clock::now(), {}};
    log.attach(b.observers());
    b.transition_to_metrics_only();
    for (int i = 0; i < 4; ++i) co_await call(b, res::fail);
    EXPECT_EQ(b.state(), state::metrics_only);
    const auto m = b.metrics();
    EXPECT_EQ(m.buffered_calls, 2u);
    EXPECT_EQ(m.failure_rate, 1.0);
    EXPECT_EQ(m.totals.failed, 5u);
    EXPECT_EQ(log.take(),
              (lines{"closed>metrics_only@0ms", "failure", "failure", "failure", "failure"}));
  });
}

TEST(CircuitBreaker, TransitionToClosedStartsAnEmptyWindowAndResetsTheOpenCount) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.open_duration_fn = [](std::size_t k) { return k * 1s; };
    wr::circuit_breaker b{opt};
    co_await open_it(b);
    co_await weft::advance(1s);
    co_await call(b, res::fail);  // half-open, fails: k = 2
    EXPECT_EQ(b.metrics().consecutive_opens, 2u);
    b.transition_to_closed();
    auto m = b.metrics();
    EXPECT_EQ(m.state, state::closed);
    EXPECT_EQ(m.consecutive_opens, 0u);
    EXPECT_EQ(m.buffered_calls, 0u);
    EXPECT_EQ(m.totals.failed, 3u);  // totals survive a transition, not a reset
    co_await open_it(b);
    EXPECT_EQ(*b.metrics().retry_after, 1s);  // k = 1 again
  });
}

TEST(CircuitBreaker, ResetClosesWithZeroedTotalsAndANewEpoch) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker b{small()};
    event_log log{weft::clock::now(), {}};
    log.attach(b.observers());
    co_await open_it(b);
    (void)co_await call(b, res::ok);
    const auto before = b.epoch();
    b.reset();
    const auto m = b.metrics();
    EXPECT_EQ(m.state, state::closed);
    EXPECT_EQ(m.epoch, before + 1);
    EXPECT_EQ(m.totals.failed, 0u);
    EXPECT_EQ(m.totals.rejected, 0u);
    EXPECT_EQ(m.consecutive_opens, 0u);
    b.reset();  // from closed: a new epoch, no state change event
    EXPECT_EQ(b.epoch(), before + 2);
    EXPECT_EQ(log.take(), (lines{"failure", "failure", "closed>open@0ms", "rejected:open:10000ms",
                                 "open>closed@0ms"}));
  });
}

// ---------------------------------------------------------------------------------------------
// open_duration_fn, gauges, result types

TEST(CircuitBreaker, OpenDurationFnGrowsWithConsecutiveOpensAndRestartsAfterClosing) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    std::vector<std::size_t> asked;
    opt.open_duration_fn = [&asked](std::size_t k) {
      asked.push_back(k);
      return std::chrono::seconds{1 << (k - 1)};  // 1 s, 2 s, 4 s, …
    };
    wr::circuit_breaker b{opt};
    co_await open_it(b);
    EXPECT_EQ(*b.metrics().retry_after, 1s);
    co_await weft::advance(1s);
    co_await call(b, res::fail);
    EXPECT_EQ(*b.metrics().retry_after, 2s);
    co_await weft::advance(2s);
    co_await call(b, res::fail);
    EXPECT_EQ(*b.metrics().retry_after, 4s);
    co_await weft::advance(4s);
    for (int i = 0; i < 3; ++i) co_await call(b, res::ok);
    EXPECT_EQ(b.state(), state::closed);
    co_await open_it(b);
    EXPECT_EQ(*b.metrics().retry_after, 1s);
    EXPECT_EQ(asked, (std::vector<std::size_t>{1, 2, 3, 1}));
  });
}

struct gauge_sink final : wr::metrics_sink {
  std::vector<std::string> seen;
  void count_event(const wr::layer_event& e) noexcept override {
    seen.push_back(std::string(wr::to_string(e.kind)) + "{" + std::string(e.layer) + "," +
                   std::string(e.key) + "}");
  }
  void record_attempt(std::string_view, const wr::resilience_context&, weft::clock::duration,
                      wr::verdict) noexcept override {}
  void record_pipeline(const wr::resilience_context&, weft::clock::duration,
                       wr::verdict) noexcept override {}
  void set_gauge(wr::gauge g, std::string_view layer, std::string_view key,
                 double v) noexcept override {
    seen.push_back(std::string(wr::to_string(g)) + "{" + std::string(layer) + "," +
                   std::string(key) + "}=" + std::to_string(static_cast<int>(v)));
  }
};

TEST(CircuitBreaker, EventsAndTheStateGaugeCarryTheLayerNameAndKey) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto opt = small();
    opt.name = "payments";
    wr::circuit_breaker b{opt};
    gauge_sink sink;
    b.observers().set_sink(&sink);
    wr::pipeline pipe{b};
    wr::resilience_context ctx;
    ctx.key = "card";
    for (int i = 0; i < 2; ++i) {
      co_await pipe.execute(ctx, []() -> weft::task<outcome> {
        co_return outcome::failure(std::make_error_code(std::errc::io_error));
      });
    }
    EXPECT_EQ(sink.seen,
              (lines{"breaker_failure{payments,card}", "breaker_failure{payments,card}",
                     "breaker_failure_rate_exceeded{payments,card}",
                     "breaker_state_changed{payments,card}", "breaker.state{payments,card}=1"}));
    b.observers().set_sink(nullptr);
  });
}

// An expected-like result: rejections are injected, not thrown.
struct reply {
  std::optional<int> v;
  std::error_code e;
  reply(int x) : v(x) {}  // NOLINT: implicit, like std::expected
  explicit reply(std::error_code code) : e(code) {}
  bool has_value() const { return v.has_value(); }
  int value() const { return *v; }
  std::error_code error() const { return e; }
};

TEST(CircuitBreaker, ExpectedLikeCallersGetTheRejectionAsTheirOwnType) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker b{small()};
    for (int i = 0; i < 2; ++i) {
      const reply r = co_await b.execute([]() -> weft::task<reply> {
        co_return reply{std::make_error_code(std::errc::io_error)};
      });
      EXPECT_FALSE(r.has_value());
    }
    EXPECT_EQ(b.state(), state::open);  // expected-like errors are failures
    const reply r = co_await b.execute([]() -> weft::task<reply> { co_return reply{1}; });
    EXPECT_EQ(r.error(), wr::errc::circuit_open);
  });
}

// ---------------------------------------------------------------------------------------------
// breaker_family

TEST(BreakerFamily, KeepsAnIndependentBreakerPerKey) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::breaker_family<std::string> family{small()};
    auto by_key = family.layer([](const wr::resilience_context& c) { return std::string(c.key); });
    wr::pipeline pipe{by_key};
    auto fail = []() -> weft::task<outcome> {
      co_return outcome::failure(std::make_error_code(std::errc::io_error));
    };
    auto ok = []() -> weft::task<outcome> { co_return outcome::success(1); };
    wr::resilience_context a;
    a.key = "a";
    wr::resilience_context bee;
    bee.key = "b";
    co_await pipe.execute(a, fail);
    co_await pipe.execute(a, fail);
    EXPECT_EQ(family.get("a")->state(), state::open);
    EXPECT_EQ(family.get("b")->state(), state::closed);
    EXPECT_TRUE((co_await pipe.execute(bee, ok)).has_value());
    EXPECT_EQ((co_await pipe.execute(a, ok)).error(), wr::errc::circuit_open);
    EXPECT_EQ(family.get("a"), family.get("a"));  // the same breaker per key
    EXPECT_EQ(family.size(), 2u);
    // get() and the layer tag the context with the key's breaker.
    EXPECT_TRUE(bee.epoch_of(family.get("b").get()));
  });
}

TEST(BreakerFamily, ForgetsAKeyIdleForIdleTtl) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::breaker_family<int> family{small()};  // idle_ttl 10 min
    auto first = family.get(1);
    co_await open_it(*first);
    co_await weft::advance(3min);
    (void)family.get(2);
    co_await weft::advance(7min - 1ns);
    EXPECT_TRUE(family.contains(1));  // contains() does not count as use
    EXPECT_EQ(family.size(), 2u);
    co_await weft::advance(1ns);  // 10 min after key 1's last use
    EXPECT_FALSE(family.contains(1));
    EXPECT_TRUE(family.contains(2));
    auto again = family.get(1);
    EXPECT_NE(again, first);
    EXPECT_EQ(again->state(), state::closed);  // a fresh breaker: the open state is forgotten
    co_await weft::advance(3min);
    EXPECT_FALSE(family.contains(2));  // used at 3 min, gone at 13 min
    EXPECT_EQ(family.size(), 1u);
  });
}

TEST(BreakerFamily, CallsThroughTheLayerCountAsUse) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::breaker_family<std::string> family{small(), {.idle_ttl = 1min}};
    auto by_key = family.layer([](const wr::resilience_context& c) { return std::string(c.key); });
    wr::pipeline pipe{by_key};
    wr::resilience_context ctx;
    ctx.key = "k";
    auto ok = []() -> weft::task<int> { co_return 1; };
    for (int i = 0; i < 3; ++i) {
      co_await pipe.execute(ctx, ok);
      co_await weft::advance(59s);
    }
    EXPECT_TRUE(family.contains("k"));
    co_await weft::advance(1s);
    EXPECT_FALSE(family.contains("k"));
  });
}

TEST(BreakerFamily, BoundsTheKeyCountWithLruEviction) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::breaker_family<int> family{small(), {.max_keys = 2}};
    auto one = family.get(1);
    (void)family.get(2);
    EXPECT_EQ(family.get(1), one);  // 1 is now the most recently used
    (void)family.get(3);            // evicts 2, the least recently used
    EXPECT_EQ(family.size(), 2u);
    EXPECT_TRUE(family.contains(1));
    EXPECT_FALSE(family.contains(2));
    EXPECT_TRUE(family.contains(3));
    (void)family.get(2);  // evicts 1
    EXPECT_FALSE(family.contains(1));
    // A breaker handed out before its eviction keeps working on its own.
    co_await open_it(*one);
    EXPECT_EQ(family.get(1)->state(), state::closed);
  });
}

TEST(BreakerFamily, EveryBreakerReportsThroughTheFamilysTelemetry) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::breaker_family<int> family{small()};
    event_log log{weft::clock::now(), {}};
    log.attach(family.observers());
    const auto one = family.get(1);
    const auto two = family.get(2);
    co_await open_it(*one);
    co_await call(*two, res::ok);
    EXPECT_EQ(log.take(), (lines{"failure", "failure", "closed>open@0ms", "success"}));
  });
}

// ---------------------------------------------------------------------------------------------
// Two workers

constexpr int stress_tasks = 16;
constexpr int stress_calls = 2000;

res stress_result(int task, int i) {
  const unsigned h = static_cast<unsigned>(task * 7919 + i * 104729) % 10;
  if (h < 4) return res::fail;
  if (h == 9) return res::ignore;
  return res::ok;
}

struct stress_counts {
  std::atomic<long> invoked{0}, rejected{0}, succeeded{0}, failed{0}, ignored{0};
  std::atomic<long> ev_success{0}, ev_failure{0}, ev_ignored{0}, ev_rejected{0};
};

weft::task<outcome> stress_op(res r, int i, stress_counts* c) {
  c->invoked.fetch_add(1, std::memory_order_relaxed);
  if (i % 3 == 0) co_await weft::yield();
  co_return co_await respond(r, 0ns);
}

template <class L>
weft::task<void> stress_worker(L& layer, int task, stress_counts& c) {
  for (int i = 0; i < stress_calls; ++i) {
    const res r = stress_result(task, i);
    const outcome o = co_await layer.execute([r, i, &c] { return stress_op(r, i, &c); });
    if (o.error() == wr::errc::circuit_open || o.error() == wr::errc::circuit_isolated) {
      c.rejected.fetch_add(1, std::memory_order_relaxed);
    } else if (r == res::ok) {
      c.succeeded.fetch_add(1, std::memory_order_relaxed);
    } else if (r == res::fail) {
      c.failed.fetch_add(1, std::memory_order_relaxed);
    } else {
      c.ignored.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void count_events(wr::telemetry& t, stress_counts& c) {
  t.on_event([&c](const wr::layer_event& e) noexcept {
    switch (e.kind) {
      case wr::event_kind::breaker_success:
        c.ev_success.fetch_add(1);
        break;
      case wr::event_kind::breaker_failure:
        c.ev_failure.fetch_add(1);
        break;
      case wr::event_kind::breaker_ignored:
        c.ev_ignored.fetch_add(1);
        break;
      case wr::event_kind::breaker_rejected:
        c.ev_rejected.fetch_add(1);
        break;
      default:
        break;
    }
  });
}

TEST(CircuitBreakerStress, TwoWorkersCountsAddUpAndNothingIsLeftHalfOpen) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  auto opt = small();
  opt.window = wr::window::count(8);
  opt.minimum_calls = 4;
  opt.open_duration = 1us;  // cycles through open and half-open all the time
  // Not the default (= open_duration): a 1 µs episode would expire before a trial, slowed by a
  // sanitizer, could report, and the final loop below could never close the breaker.
  opt.half_open_max_duration = 10s;
  opt.half_open_permits = 2;
  opt.half_open_policy = wr::half_open_policy::successes(2);
  wr::circuit_breaker b{opt};
  stress_counts c;
  count_events(b.observers(), c);
  std::atomic<long> transitions{0};
  b.observers().on_event([&transitions](const wr::layer_event& e) noexcept {
    if (e.kind == wr::event_kind::breaker_state_changed) transitions.fetch_add(1);
  });
  std::vector<weft::join_handle<void>> tasks;
  for (int t = 0; t < stress_tasks; ++t) tasks.push_back(rt.spawn(stress_worker(b, t, c)));
  for (auto& h : tasks) {
    rt.block_on([&h]() -> weft::task<void> { co_await h; });
  }
  const auto m =
      rt.block_on([&b]() -> weft::task<wr::circuit_breaker_metrics> { co_return b.metrics(); });
  const long calls = static_cast<long>(stress_tasks) * stress_calls;
  EXPECT_EQ(c.invoked + c.rejected, calls);
  EXPECT_EQ(c.succeeded + c.failed + c.ignored, c.invoked.load());
  EXPECT_EQ(static_cast<long>(m.totals.successful), c.succeeded.load());
  EXPECT_EQ(static_cast<long>(m.totals.failed), c.failed.load());
  EXPECT_EQ(static_cast<long>(m.totals.ignored), c.ignored.load());
  EXPECT_EQ(static_cast<long>(m.totals.rejected), c.rejected.load());
  EXPECT_EQ(c.ev_success.load(), c.succeeded.load());
  EXPECT_EQ(c.ev_failure.load(), c.failed.load());
  EXPECT_EQ(c.ev_rejected.load(), c.rejected.load());
  EXPECT_GT(transitions.load(), 0);
  EXPECT_GT(c.rejected.load(), 0);
  // Every trial slot of the current episode belongs to a call that reported.
  if (m.state == state::half_open) {
    EXPECT_EQ(m.trial_permits_used, m.buffered_calls);
  }
  // Not stuck: successes alone bring it back to closed.
  const bool closed = rt.block_on([&b]() -> weft::task<bool> {
    for (int i = 0; i < 1000 && b.state() != state::closed; ++i) {
      const auto o = co_await call(b, res::ok);
      if (o.error() == wr::errc::circuit_open) co_await weft::sleep_for(*o.retry_after());
    }
    co_return b.state() == state::closed;
  });
  EXPECT_TRUE(closed);
}

// A layer for the family stress test: each call goes through the family's layer with the next of
// 8 keys (so a 4-key family keeps evicting), and the family's size is sampled after it.
struct rotating_keys {
  wr::breaker_family<int>* family;
  std::atomic<std::size_t>* max_size;
  int next = 0;

  template <class F>
  weft::task<outcome> execute(F op) {
    return run_one(this, std::move(op));
  }
  template <class F>
  static weft::task<outcome> run_one(rotating_keys* self, F op) {
    wr::resilience_context ctx;
    const std::string key = std::to_string(self->next++ % 8);
    ctx.key = key;
    auto layer = self->family->layer(
        [](const wr::resilience_context& x) { return std::stoi(std::string(x.key)); });
    wr::pipeline pipe{layer};
    outcome o = co_await pipe.execute(ctx, std::move(op));
    const std::size_t n = self->family->size();
    std::size_t seen = self->max_size->load();
    while (n > seen && !self->max_size->compare_exchange_weak(seen, n)) {
    }
    co_return o;
  }
};

TEST(BreakerFamilyStress, TwoWorkersWithLruChurnCountsAddUp) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  auto opt = small();
  opt.window = wr::window::count(8);
  opt.minimum_calls = 4;
  opt.open_duration = 1us;
  opt.half_open_max_duration = 10s;
  opt.half_open_permits = 2;
  opt.half_open_policy = wr::half_open_policy::rate();
  wr::breaker_family<int> family{opt, {.max_keys = 4}};
  stress_counts c;
  count_events(family.observers(), c);
  std::atomic<std::size_t> max_size{0};
  std::vector<rotating_keys> layers(stress_tasks, rotating_keys{&family, &max_size});
  std::vector<weft::join_handle<void>> tasks;
  for (int t = 0; t < stress_tasks; ++t) {
    tasks.push_back(rt.spawn(stress_worker(layers[static_cast<std::size_t>(t)], t, c)));
  }
  for (auto& h : tasks) {
    rt.block_on([&h]() -> weft::task<void> { co_await h; });
  }
  const long calls = static_cast<long>(stress_tasks) * stress_calls;
  EXPECT_EQ(c.invoked + c.rejected, calls);
  EXPECT_EQ(c.succeeded + c.failed + c.ignored, c.invoked.load());
  EXPECT_EQ(c.ev_success.load(), c.succeeded.load());
  EXPECT_EQ(c.ev_failure.load(), c.failed.load());
  EXPECT_EQ(c.ev_ignored.load(), c.ignored.load());
  EXPECT_EQ(c.ev_rejected.load(), c.rejected.load());
  EXPECT_LE(max_size.load(), 4u);
  EXPECT_GT(max_size.load(), 0u);
}

}  // namespace
