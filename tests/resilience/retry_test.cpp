// weft::resilience retry, backoff and jitter, retry_budget, grpc_throttle and fallback, under
// paused time: exact delays, event sequences and timestamps, counters, cancellation; and the
// shared gates hammered from two workers (run under TSan).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/join_handle.hpp>
#include <weft/resilience/backoff.hpp>
#include <weft/resilience/fallback.hpp>
#include <weft/resilience/grpc_throttle.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/retry_budget.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>
#include <weft/yield.hpp>

#include "support/paused_time.hpp"

namespace {

namespace wr = weft::resilience;
using weft::testing::ms_since;
using weft::testing::paused;
using namespace std::chrono_literals;
using ns = std::chrono::nanoseconds;

std::error_code io_error() {
  return std::make_error_code(std::errc::io_error);
}
std::error_code refused() {
  return std::make_error_code(std::errc::connection_refused);
}

// ---------------------------------------------------------------------------------------------
// Backoff and jitter: the formulas, with a fixed rng.

std::vector<ns> delays(const wr::backoff& b, int count, const wr::rng& r) {
  wr::backoff_state s;
  std::vector<ns> out;
  for (int i = 0; i < count; ++i) out.push_back(b.next(s, r));
  return out;
}

TEST(Backoff, NoJitterGrowsFixedLinearAndExponential) {
  const wr::rng never([]() -> double { throw std::logic_error("no jitter draws nothing"); });
  EXPECT_EQ(delays(wr::backoff::fixed(70ms), 3, never), (std::vector<ns>{70ms, 70ms, 70ms}));
  EXPECT_EQ(delays(wr::backoff::linear(100ms), 3, never), (std::vector<ns>{100ms, 200ms, 300ms}));
  EXPECT_EQ(delays(wr::backoff::linear(100ms, 50ms), 3, never),
            (std::vector<ns>{100ms, 150ms, 200ms}));
  EXPECT_EQ(delays(wr::backoff::exponential(100ms, 2.0, 10s, wr::jitter::none()), 4, never),
            (std::vector<ns>{100ms, 200ms, 400ms, 800ms}));
  EXPECT_EQ(delays(wr::backoff::exponential(100ms, 3.0, 10s, wr::jitter::none()), 3, never),
            (std::vector<ns>{100ms, 300ms, 900ms}));
}

TEST(Backoff, DefaultIsExponentialFrom100msTimesTwoCappedAt10sWithFullJitter) {
  const wr::backoff b;
  EXPECT_EQ(b.kind, wr::backoff_kind::exponential);
  EXPECT_EQ(b.initial, 100ms);
  EXPECT_EQ(b.multiplier, 2.0);
  EXPECT_EQ(b.max_delay, 10s);
  EXPECT_EQ(b.jitter_variant.kind, wr::jitter_kind::full);
  // nominal(n) = min(max_delay, initial · 2^(n−1)): 100 ms … 6.4 s, then 10 s.
  EXPECT_EQ(b.nominal_ns(1), 1e8);
  EXPECT_EQ(b.nominal_ns(7), 6.4e9);
  EXPECT_EQ(b.nominal_ns(8), 1e10);
  EXPECT_EQ(b.nominal_ns(5000), 1e10);  // 2^4999 is inf: capped, not NaN
}

TEST(Backoff, FullJitterIsRTimesNominal) {
  EXPECT_EQ(delays(wr::backoff{}, 3, wr::rng::sequence({0.5, 0.25, 0.75})),
            (std::vector<ns>{50ms, 50ms, 300ms}));
}

TEST(Backoff, EqualJitterIsHalfPlusRTimesHalf) {
  EXPECT_EQ(delays(wr::backoff{}.with_jitter(wr::jitter::equal()), 3,
                   wr::rng::sequence({0.5, 0.0, 0.75})),
            (std::vector<ns>{75ms, 100ms, 350ms}));
}

TEST(Backoff, ProportionalJitterIsNominalTimesOneMinusFPlusTwoFR) {
  EXPECT_EQ(delays(wr::backoff{}.with_jitter(wr::jitter::proportional(0.5)), 3,
                   wr::rng::sequence({0.25, 0.75, 0.5})),
            (std::vector<ns>{75ms, 250ms, 400ms}));
}

TEST(Backoff, DecorrelatedJitterFeedsOnThePreviousDelayAndIsCapped) {
  // min(max_delay, initial + r·(3·prev − initial)), prev₀ = initial = 100 ms, r = 0.5:
  // 100 + 0.5·200 = 200; 100 + 0.5·500 = 350; 100 + 0.5·950 = 575 → capped at 400.
  const auto b = wr::backoff::exponential(100ms, 2.0, 400ms, wr::jitter::decorrelated());
  EXPECT_EQ(delays(b, 4, wr::rng::constant(0.5)), (std::vector<ns>{200ms, 350ms, 400ms, 400ms}));
  // r = 0: initial every time.
  EXPECT_EQ(delays(b, 2, wr::rng::constant(0.0)), (std::vector<ns>{100ms, 100ms}));
}

TEST(Backoff, DecorrelatedV2IsPollysFormula) {
  // t = (n−1) + r; next = 2^t·tanh(√(4t)); delay = (next − prev)·initial/1.4, prev₀ = 0.
  // Expected values computed independently (Python, the same libm): initial 1 s.
  const auto b = wr::backoff::exponential(1s, 2.0, 1000s, wr::jitter::decorrelated_v2());
  EXPECT_EQ(delays(b, 3, wr::rng::sequence({0.5, 0.25, 0.75})),
            (std::vector<ns>{ns{897404935}, ns{763088757}, ns{3131999369}}));
  // And max_delay caps it.
  const auto capped = wr::backoff::exponential(1s, 2.0, 2s, wr::jitter::decorrelated_v2());
  EXPECT_EQ(delays(capped, 3, wr::rng::sequence({0.5, 0.25, 0.75})),
            (std::vector<ns>{ns{897404935}, ns{763088757}, 2s}));
}

TEST(Backoff, MaxDelayIsAHardCapClampedLast) {
  const auto b = wr::backoff::exponential(1s, 10.0, 5s, wr::jitter::none());
  EXPECT_EQ(delays(b, 3, wr::rng{}), (std::vector<ns>{1s, 5s, 5s}));
  // Proportional jitter above a capped nominal is clamped again: 5 s · 1.25 → 5 s.
  const auto p = b.with_jitter(wr::jitter::proportional(0.5));
  EXPECT_EQ(delays(p, 3, wr::rng::constant(0.75)), (std::vector<ns>{1250ms, 5s, 5s}));
}

TEST(Backoff, DelaysAreComputedInDoubleNanosecondsAndTruncated) {
  const auto b = wr::backoff::fixed(ns{10}, wr::jitter::full());
  EXPECT_EQ(delays(b, 3, wr::rng::sequence({0.35, 0.99, 0.0})),
            (std::vector<ns>{ns{3}, ns{9}, ns{0}}));
}

TEST(Backoff, ValidateNamesTheBadField) {
  const auto message = [](const wr::backoff& b) {
    try {
      b.validate("api");
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no throw");
  };
  EXPECT_NE(message(wr::backoff::exponential(20s, 2.0, 10s)).find("max_delay"), std::string::npos);
  EXPECT_NE(message(wr::backoff::exponential(1s, 0.5)).find("multiplier"), std::string::npos);
  EXPECT_NE(message(wr::backoff{}.with_jitter(wr::jitter::proportional(1.5))).find("proportional"),
            std::string::npos);
  EXPECT_NE(message(wr::backoff::fixed(-1ms)).find("initial"), std::string::npos);
  EXPECT_EQ(message(wr::backoff{}), "no throw");
  EXPECT_THROW(wr::retry(wr::retry_options{.max_attempts = 0}), std::invalid_argument);
  EXPECT_THROW(wr::retry(wr::retry_options{.backoff = wr::backoff::exponential(20s, 2.0, 10s)}),
               std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// The retry layer, under paused time.

// What an operation does on each attempt: the scripted outcomes in turn, then 42.
struct script {
  std::vector<wr::call_outcome<int>> results;
  std::size_t next = 0;
  std::vector<long> starts;  // ms since t0, one per attempt
  std::vector<int> attempts;
  weft::clock::time_point t0;
  weft::clock::duration work{};  // each attempt takes this long
};

weft::task<wr::call_outcome<int>> play(script& s, wr::resilience_context& ctx) {
  s.starts.push_back(ms_since(s.t0));
  s.attempts.push_back(ctx.attempt);
  if (s.work > weft::clock::duration::zero()) co_await weft::sleep_for(s.work);
  if (s.next < s.results.size()) co_return s.results[s.next++];
  co_return wr::call_outcome<int>::success(42);
}

weft::task<void> cancel_after(weft::cancel_source& source, weft::clock::duration d) {
  co_await weft::sleep_for(d);
  source.request_cancellation();
}

auto op_for(script& s) {
  return [&s](wr::resilience_context& ctx) { return play(s, ctx); };
}

struct seen_event {
  wr::event_kind kind;
  long at_ms;
  int attempt;
  ns delay;
  std::string reason;
  bool operator==(const seen_event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const seen_event& e) {
  return os << wr::to_string(e.kind) << "@" << e.at_ms << " attempt " << e.attempt << " delay "
            << e.delay.count() << "ns " << e.reason;
}

struct recorder {
  std::vector<seen_event> events;
  weft::clock::time_point t0;
  void attach(wr::telemetry& t) {
    t.on_event([this](const wr::layer_event& e) noexcept {
      events.push_back(
          {e.kind,
           static_cast<long>(
               std::chrono::duration_cast<std::chrono::milliseconds>(e.at - t0).count()),
           e.attempt, e.delay, std::string(e.reason)});
    });
  }
};

wr::retry_options no_jitter(int attempts,
                            wr::backoff b = wr::backoff::exponential(100ms, 2.0, 10s,
                                                                     wr::jitter::none())) {
  wr::retry_options o;
  o.max_attempts = attempts;
  o.backoff = b;
  return o;
}

wr::retry_metrics counts(std::uint64_t ok_first, std::uint64_t ok_retried,
                         std::uint64_t failed_retried, std::uint64_t failed_first) {
  return {ok_first, ok_retried, failed_retried, failed_first};
}

void expect_metrics(const wr::retry_metrics& m, const wr::retry_metrics& want) {
  EXPECT_EQ(m.successful_without_retry, want.successful_without_retry);
  EXPECT_EQ(m.successful_with_retry, want.successful_with_retry);
  EXPECT_EQ(m.failed_with_retry, want.failed_with_retry);
  EXPECT_EQ(m.failed_without_retry, want.failed_without_retry);
}

class Retry : public ::testing::Test {
 protected:
  weft::runtime rt_{paused()};
};

TEST_F(Retry, DefaultsAreThreeAttemptsAndExponentialFullJitter) {
  const wr::retry r;
  EXPECT_EQ(r.options().max_attempts, 3);
  EXPECT_EQ(r.options().backoff.jitter_variant.kind, wr::jitter_kind::full);
  EXPECT_TRUE(r.options().honor_retry_after);
  EXPECT_EQ(r.options().gate, nullptr);
}

TEST_F(Retry, SuccessOnTheFirstAttemptEmitsNothing) {
  wr::retry r{no_jitter(3)};
  recorder rec;
  rec.attach(r.observers());
  script s;
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = rec.t0 = weft::clock::now();
    const auto o = co_await r.execute(op_for(s));
    EXPECT_EQ(o.value(), 42);
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0}));
  EXPECT_TRUE(rec.events.empty());
  expect_metrics(r.metrics(), counts(1, 0, 0, 0));
}

TEST_F(Retry, RetriesAfterExactDelaysWithEventsBeforeEachSleep) {
  wr::retry r{no_jitter(3)};
  recorder rec;
  rec.attach(r.observers());
  script s;
  s.results = {wr::call_outcome<int>::failure(io_error()),
               wr::call_outcome<int>::failure(refused())};
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = rec.t0 = weft::clock::now();
    const auto o = co_await r.execute(op_for(s));
    EXPECT_EQ(o.value(), 42);
    EXPECT_EQ(ms_since(s.t0), 300);
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0, 100, 300}));
  EXPECT_EQ(s.attempts, (std::vector<int>{1, 2, 3}));
  // Each retry event is stamped when the attempt failed, before its sleep.
  EXPECT_EQ(rec.events, (std::vector<seen_event>{{wr::event_kind::retry, 0, 1, 100ms, ""},
                                                 {wr::event_kind::retry, 100, 2, 200ms, ""}}));
  expect_metrics(r.metrics(), counts(0, 1, 0, 0));
}

TEST_F(Retry, GivesUpAfterMaxAttemptsWithTheLastFailure) {
  wr::retry r{no_jitter(3)};
  recorder rec;
  rec.attach(r.observers());
  script s;
  s.results = {wr::call_outcome<int>::failure(io_error()),
               wr::call_outcome<int>::failure(io_error()),
               wr::call_outcome<int>::failure(refused())};
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = rec.t0 = weft::clock::now();
    const auto o = co_await r.execute(op_for(s));
    EXPECT_EQ(o.error(), std::errc::connection_refused);  // the last one
    EXPECT_EQ(ms_since(s.t0), 300);                       // no sleep after the last attempt
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0, 100, 300}));
  EXPECT_EQ(rec.events,
            (std::vector<seen_event>{{wr::event_kind::retry, 0, 1, 100ms, ""},
                                     {wr::event_kind::retry, 100, 2, 200ms, ""},
                                     {wr::event_kind::retry_gave_up, 300, 3, 0ns, "attempts"}}));
  expect_metrics(r.metrics(), counts(0, 0, 1, 0));
}

TEST_F(Retry, PlainResultTypesRetryExceptionsAndRethrowTheLast) {
  wr::retry r{no_jitter(2)};
  int calls = 0;
  rt_.block_on([&]() -> weft::task<void> {
    auto op = [&calls]() -> weft::task<int> {
      ++calls;
      throw std::runtime_error("flaky " + std::to_string(calls));
    };
    try {
      (void)co_await r.execute(op);
      ADD_FAILURE() << "no throw";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "flaky 2");
    }
  }());
  EXPECT_EQ(calls, 2);
}

TEST_F(Retry, LogicErrorsAreNotRetried) {
  wr::retry r{no_jitter(3)};
  recorder rec;
  rec.attach(r.observers());
  int calls = 0;
  rt_.block_on([&]() -> weft::task<void> {
    rec.t0 = weft::clock::now();
    auto op = [&calls]() -> weft::task<int> {
      ++calls;
      throw std::invalid_argument("bad request");
    };
    EXPECT_THROW((void)co_await r.execute(op), std::invalid_argument);
  }());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(rec.events,
            (std::vector<seen_event>{{wr::event_kind::retry_gave_up, 0, 1, 0ns, "not_retryable"}}));
  expect_metrics(r.metrics(), counts(0, 0, 0, 1));
}

TEST_F(Retry, BadAllocIsNotRetried) {
  wr::retry r{no_jitter(3)};
  int calls = 0;
  rt_.block_on([&]() -> weft::task<void> {
    auto op = [&calls]() -> weft::task<int> {
      ++calls;
      throw std::bad_alloc();
    };
    EXPECT_THROW((void)co_await r.execute(op), std::bad_alloc);
  }());
  EXPECT_EQ(calls, 1);
}

TEST_F(Retry, LibraryRejectionsAreNotRetried) {
  for (auto code : {wr::errc::circuit_open, wr::errc::circuit_isolated, wr::errc::bulkhead_full,
                    wr::errc::rate_limited, wr::errc::limit_exceeded, wr::errc::budget_exhausted}) {
    wr::retry r{no_jitter(3)};
    script s;
    s.results = {wr::call_outcome<int>::failure(code, 5ms)};
    rt_.block_on([&]() -> weft::task<void> {
      s.t0 = weft::clock::now();
      const auto o = co_await r.execute(op_for(s));
      EXPECT_EQ(o.error(), code);
    }());
    EXPECT_EQ(s.starts.size(), 1u) << wr::make_error_code(code).message();
  }
}

TEST_F(Retry, TimeoutIsRetried) {
  wr::retry r{no_jitter(3)};
  script s;
  s.results = {wr::call_outcome<int>::failure(wr::errc::timeout)};
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = weft::clock::now();
    EXPECT_EQ((co_await r.execute(op_for(s))).value(), 42);
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0, 100}));
}

TEST_F(Retry, RetryWhenDecidesWhichFailuresAreRetried) {
  auto o = no_jitter(3);
  o.retry_when = wr::on_error(std::errc::connection_refused);
  wr::retry r{o};
  script s;
  s.results = {wr::call_outcome<int>::failure(refused()),
               wr::call_outcome<int>::failure(io_error())};
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = weft::clock::now();
    EXPECT_EQ((co_await r.execute(op_for(s))).error(), std::errc::io_error);
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0, 100}));
}

TEST_F(Retry, RejectionsAreRetriedWhenRetryWhenSaysSo) {
  auto o = no_jitter(2);
  o.retry_when = wr::on_error(wr::errc::circuit_open);
  wr::retry r{o};
  script s;
  s.results = {wr::call_outcome<int>::failure(wr::errc::circuit_open, 250ms)};
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = weft::clock::now();
    EXPECT_EQ((co_await r.execute(op_for(s))).value(), 42);
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0, 250}));  // the breaker's retry_after
}

TEST_F(Retry, JitteredDelaysComeFromTheInjectedRng) {
  auto o = no_jitter(4, wr::backoff{});
  o.random = wr::rng::sequence({0.5, 0.25, 0.75});
  wr::retry r{o};
  recorder rec;
  rec.attach(r.observers());
  script s;
  s.results.assign(3, wr::call_outcome<int>::failure(io_error()));
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = rec.t0 = weft::clock::now();
    EXPECT_EQ((co_await r.execute(op_for(s))).value(), 42);
  }());
  // full jitter: 0.5·100, 0.25·200, 0.75·400.
  EXPECT_EQ(s.starts, (std::vector<long>{0, 50, 100, 400}));
  ASSERT_EQ(rec.events.size(), 3u);
  EXPECT_EQ(rec.events[2], (seen_event{wr::event_kind::retry, 100, 3, 300ms, ""}));
}

TEST_F(Retry, PushbackReplacesTheDelayExactlyUncappedAndRestartsN) {
  auto o = no_jitter(5, wr::backoff::exponential(100ms, 2.0, 1s, wr::jitter::none()));
  wr::retry r{o};
  recorder rec;
  rec.attach(r.observers());
  script s;
  s.results = {wr::call_outcome<int>::failure(io_error()),      // backoff n=1: 100 ms
               wr::call_outcome<int>::failure(io_error(), 5s),  // pushback 5 s (> max_delay 1 s)
               wr::call_outcome<int>::failure(io_error()),      // n restarts: 100 ms, not 400 ms
               wr::call_outcome<int>::failure(io_error())};     // n=2: 200 ms
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = rec.t0 = weft::clock::now();
    EXPECT_EQ((co_await r.execute(op_for(s))).value(), 42);
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0, 100, 5100, 5200, 5400}));
  ASSERT_EQ(rec.events.size(), 4u);
  EXPECT_EQ(rec.events[1].delay, 5s);
}

TEST_F(Retry, PushbackIsIgnoredWhenHonorRetryAfterIsOff) {
  auto o = no_jitter(2);
  o.honor_retry_after = false;
  wr::retry r{o};
  script s;
  s.results = {wr::call_outcome<int>::failure(io_error(), 5s)};
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = weft::clock::now();
    EXPECT_EQ((co_await r.execute(op_for(s))).value(), 42);
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0, 100}));
}

TEST_F(Retry, GivesUpAtOnceWhenTheDelayWouldReachTheDeadline) {
  wr::retry r{no_jitter(5)};
  recorder rec;
  rec.attach(r.observers());
  script s;
  s.results.assign(4, wr::call_outcome<int>::failure(io_error()));
  wr::pipeline pipe{r};
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = rec.t0 = weft::clock::now();
    wr::resilience_context ctx;
    ctx.deadline = s.t0 + 300ms;  // attempt 2 fails at 100; 100 + 200 >= 300: no time left
    const auto o = co_await pipe.execute(ctx, op_for(s));
    EXPECT_EQ(o.error(), std::errc::io_error);
    EXPECT_EQ(ms_since(s.t0), 100);  // returned without sleeping
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0, 100}));
  EXPECT_EQ(rec.events,
            (std::vector<seen_event>{{wr::event_kind::retry, 0, 1, 100ms, ""},
                                     {wr::event_kind::retry_gave_up, 100, 2, 200ms, "deadline"}}));
  expect_metrics(r.metrics(), counts(0, 0, 1, 0));
}

TEST_F(Retry, SleepsWhenTheDelayEndsJustBeforeTheDeadline) {
  wr::retry r{no_jitter(2)};
  script s;
  s.results = {wr::call_outcome<int>::failure(io_error())};
  wr::pipeline pipe{r};
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = weft::clock::now();
    wr::resilience_context ctx;
    ctx.deadline = s.t0 + 100ms + 1ns;
    EXPECT_EQ((co_await pipe.execute(ctx, op_for(s))).value(), 42);
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0, 100}));
}

TEST_F(Retry, PushbackIsBoundedByTheDeadline) {
  wr::retry r{no_jitter(3)};
  recorder rec;
  rec.attach(r.observers());
  script s;
  s.results = {wr::call_outcome<int>::failure(io_error(), 2s)};
  wr::pipeline pipe{r};
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = rec.t0 = weft::clock::now();
    wr::resilience_context ctx;
    ctx.deadline = s.t0 + 1s;
    EXPECT_EQ((co_await pipe.execute(ctx, op_for(s))).error(), std::errc::io_error);
    EXPECT_EQ(ms_since(s.t0), 0);
  }());
  EXPECT_EQ(rec.events,
            (std::vector<seen_event>{{wr::event_kind::retry_gave_up, 0, 1, 2s, "deadline"}}));
}

TEST_F(Retry, AHugePushbackNeitherOverflowsNorEndsEarly) {
  wr::retry r{no_jitter(2)};
  script s;
  s.results = {wr::call_outcome<int>::failure(io_error(), weft::clock::duration::max())};
  wr::pipeline pipe{r};
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = weft::clock::now();
    wr::resilience_context ctx;
    ctx.deadline = s.t0 + 1s;
    EXPECT_EQ((co_await pipe.execute(ctx, op_for(s))).error(), std::errc::io_error);
    // Without a deadline it sleeps until cancelled.
    weft::cancel_source source;
    auto canceller = weft::spawn(cancel_after(source, 24h));
    s.next = 0;
    EXPECT_TRUE(
        (co_await weft::with_cancellation(source.token(), r.execute(op_for(s)))).is_cancelled());
    EXPECT_EQ(ms_since(s.t0), 24 * 3600 * 1000L);
    co_await canceller;
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0, 0}));
}

TEST_F(Retry, PerErrorProfilesPickTheBackoff) {
  auto o = no_jitter(4);
  o.profile_for = [](const wr::outcome_view& v) {
    // Throttling waits longer than a transient error (as AWS does).
    return v.error == std::errc::resource_unavailable_try_again
               ? wr::backoff::exponential(500ms, 2.0, 10s, wr::jitter::none())
               : wr::backoff::exponential(100ms, 2.0, 10s, wr::jitter::none());
  };
  wr::retry r{o};
  script s;
  s.results = {wr::call_outcome<int>::failure(io_error()),  // n=1, transient: 100
               wr::call_outcome<int>::failure(std::make_error_code(
                   std::errc::resource_unavailable_try_again)),  // n=2, throttled: 1000
               wr::call_outcome<int>::failure(io_error())};      // n=3, transient: 400
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = weft::clock::now();
    EXPECT_EQ((co_await r.execute(op_for(s))).value(), 42);
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0, 100, 1100, 1500}));
}

TEST_F(Retry, AttemptsAreNumberedInTheContextAndRestoredAfter) {
  wr::retry r{no_jitter(3)};
  script s;
  s.results = {wr::call_outcome<int>::failure(io_error()),
               wr::call_outcome<int>::failure(io_error())};
  wr::pipeline pipe{r};
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = weft::clock::now();
    wr::resilience_context ctx;
    ctx.attempt = 7;
    (void)co_await pipe.execute(ctx, op_for(s));
    EXPECT_EQ(ctx.attempt, 7);
  }());
  EXPECT_EQ(s.attempts, (std::vector<int>{1, 2, 3}));
}

TEST_F(Retry, CountersAddUpOverCalls) {
  wr::retry r{no_jitter(2)};
  rt_.block_on([&]() -> weft::task<void> {
    for (int i = 0; i < 3; ++i) {
      script ok;  // success at once
      ok.t0 = weft::clock::now();
      (void)co_await r.execute(op_for(ok));
    }
    script retried_ok;
    retried_ok.results = {wr::call_outcome<int>::failure(io_error())};
    (void)co_await r.execute(op_for(retried_ok));
    for (int i = 0; i < 2; ++i) {
      script retried_failed;
      retried_failed.results.assign(2, wr::call_outcome<int>::failure(io_error()));
      (void)co_await r.execute(op_for(retried_failed));
    }
    script not_retryable;
    not_retryable.results = {wr::call_outcome<int>::failure(wr::errc::circuit_open)};
    (void)co_await r.execute(op_for(not_retryable));
  }());
  expect_metrics(r.metrics(), counts(3, 1, 2, 1));
}

TEST_F(Retry, CancellationDuringTheSleepEndsAtOnce) {
  wr::retry r{no_jitter(5, wr::backoff::fixed(1s))};
  recorder rec;
  rec.attach(r.observers());
  script s;
  s.results.assign(5, wr::call_outcome<int>::failure(io_error()));
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = rec.t0 = weft::clock::now();
    weft::cancel_source source;
    auto canceller = weft::spawn(cancel_after(source, 1500ms));
    const auto o = co_await weft::with_cancellation(source.token(), r.execute(op_for(s)));
    EXPECT_TRUE(o.is_cancelled());
    EXPECT_EQ(ms_since(s.t0), 1500);  // in the middle of the second sleep
    co_await canceller;
    co_await weft::sleep_for(10s);  // nothing else runs
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0, 1000}));
  EXPECT_EQ(rec.events, (std::vector<seen_event>{{wr::event_kind::retry, 0, 1, 1s, ""},
                                                 {wr::event_kind::retry, 1000, 2, 1s, ""}}));
  expect_metrics(r.metrics(), counts(0, 0, 0, 0));  // a cancelled call is not counted
}

TEST_F(Retry, CancellationDuringAnAttemptEndsAtOnce) {
  wr::retry r{no_jitter(5)};
  script s;
  s.work = 10s;
  s.results.assign(5, wr::call_outcome<int>::failure(io_error()));
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = weft::clock::now();
    weft::cancel_source source;
    auto canceller = weft::spawn(cancel_after(source, 2s));
    const auto o = co_await weft::with_cancellation(source.token(), r.execute(op_for(s)));
    EXPECT_TRUE(o.is_cancelled());
    EXPECT_EQ(ms_since(s.t0), 2000);
    co_await canceller;
    co_await weft::sleep_for(30s);
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0}));
}

// An operation that ignores cancellation and fails anyway: no further attempt once the caller
// is cancelled.
weft::task<wr::call_outcome<int>> stubborn(int& calls, weft::cancel_source& source) {
  ++calls;
  source.request_cancellation();
  co_return wr::call_outcome<int>::failure(io_error());
}

TEST_F(Retry, AFailureAfterCancellationIsReturnedAsCancelledWithoutRetrying) {
  wr::retry r{no_jitter(5)};
  int calls = 0;
  rt_.block_on([&]() -> weft::task<void> {
    weft::cancel_source source;
    const auto o = co_await weft::with_cancellation(
        source.token(), r.execute([&] { return stubborn(calls, source); }));
    EXPECT_TRUE(o.is_cancelled());
  }());
  EXPECT_EQ(calls, 1);
}

TEST_F(Retry, TheContextsOwnTokenAlsoCancelsTheSleep) {
  wr::retry r{no_jitter(5, wr::backoff::fixed(1s))};
  script s;
  s.results.assign(5, wr::call_outcome<int>::failure(io_error()));
  wr::pipeline pipe{r};
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = weft::clock::now();
    weft::cancel_source source;
    wr::resilience_context ctx;
    ctx.token = source.token();  // not the task's token
    auto canceller = weft::spawn(cancel_after(source, 500ms));
    const auto o = co_await pipe.execute(ctx, op_for(s));
    EXPECT_TRUE(o.is_cancelled());
    EXPECT_EQ(ms_since(s.t0), 500);
    co_await canceller;
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0}));
}

// An expected-like result that logs when the value it owns is destroyed.
struct tracked {
  std::vector<std::string>* log = nullptr;
  weft::clock::time_point t0;
  explicit tracked(std::vector<std::string>* l, weft::clock::time_point t) : log(l), t0(t) {}
  tracked(tracked&& o) noexcept : log(std::exchange(o.log, nullptr)), t0(o.t0) {}
  tracked& operator=(tracked&& o) noexcept {
    std::swap(log, o.log);
    t0 = o.t0;
    return *this;
  }
  tracked(const tracked&) = delete;
  ~tracked() {
    if (log != nullptr) log->push_back("destroyed@" + std::to_string(ms_since(t0)));
  }
  bool has_value() const { return false; }
  int value() const { return 0; }
  std::error_code error() const { return std::make_error_code(std::errc::io_error); }
};

weft::task<tracked> tracked_failure(std::vector<std::string>& log, weft::clock::time_point t0) {
  log.push_back("attempt@" + std::to_string(ms_since(t0)));
  co_return tracked{&log, t0};
}

TEST_F(Retry, TheFailedOutcomeIsDestroyedAfterTheEventAndBeforeTheSleep) {
  wr::retry r{no_jitter(2)};
  std::vector<std::string> log;
  weft::clock::time_point t0;
  r.observers().on_event([&](const wr::layer_event& e) noexcept {
    log.push_back(std::string(wr::to_string(e.kind)) + "@" + std::to_string(ms_since(t0)));
  });
  rt_.block_on([&]() -> weft::task<void> {
    t0 = weft::clock::now();
    {
      const tracked last = co_await r.execute([&] { return tracked_failure(log, t0); });
      EXPECT_EQ(last.error(), std::errc::io_error);
    }
  }());
  EXPECT_EQ(log, (std::vector<std::string>{"attempt@0", "retry@0", "destroyed@0", "attempt@100",
                                           "retry_gave_up@100", "destroyed@100"}));
}

struct attempt_sink final : wr::metrics_sink {
  std::vector<std::pair<long, wr::verdict>> attempts;  // duration in ms, verdict
  std::vector<std::string> events;
  void count_event(const wr::layer_event& e) noexcept override {
    events.emplace_back(wr::to_string(e.kind));
  }
  void record_attempt(std::string_view layer, const wr::resilience_context&,
                      weft::clock::duration d, wr::verdict v) noexcept override {
    EXPECT_EQ(layer, "retry");
    attempts.emplace_back(
        static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()), v);
  }
  void record_pipeline(const wr::resilience_context&, weft::clock::duration,
                       wr::verdict) noexcept override {}
  void set_gauge(wr::gauge, std::string_view, std::string_view, double) noexcept override {}
};

TEST_F(Retry, AttemptDurationsGoToTheMetricsSink) {
  wr::retry r{no_jitter(3)};
  attempt_sink sink;
  r.observers().set_sink(&sink);
  script s;
  s.work = 30ms;
  s.results = {wr::call_outcome<int>::failure(io_error()),
               wr::call_outcome<int>::failure(io_error())};
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = weft::clock::now();
    EXPECT_EQ((co_await r.execute(op_for(s))).value(), 42);
    EXPECT_EQ(ms_since(s.t0), 30 + 100 + 30 + 200 + 30);
  }());
  EXPECT_EQ(sink.attempts, (std::vector<std::pair<long, wr::verdict>>{{30, wr::verdict::failure},
                                                                      {30, wr::verdict::failure},
                                                                      {30, wr::verdict::success}}));
  EXPECT_EQ(sink.events, (std::vector<std::string>{"retry", "retry"}));
}

// ---------------------------------------------------------------------------------------------
// retry_budget (Tower) and grpc_throttle (gRPC A6).

// The race of a cancellation that comes at the instant the retry's sleep ends: the sleep has
// already woken it, so the cancellation is seen only as the next attempt would start. The caller
// gets a cancelled outcome, not an exception, and no attempt starts.
TEST_F(Retry, ACancellationAtTheInstantTheSleepEndsIsACancelledOutcome) {
  rt_.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    int attempts = 0;
    wr::retry_options o;
    o.backoff = wr::backoff::fixed(10ms);
    wr::retry r{o};
    auto op = [&attempts]() -> weft::task<wr::call_outcome<int>> {
      ++attempts;
      co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error));
    };
    auto call = [&r, &op]() -> weft::task<wr::call_outcome<int>> {
      co_return co_await r.execute(op);
    };
    // The canceller's timer is registered first, for the same instant as the retry's sleep: both
    // fire in one batch, the retry's wake-up is already delivered when the canceller runs.
    weft::join_handle<wr::call_outcome<int>>* target = nullptr;
    auto canceller = weft::spawn([](weft::clock::time_point at,
                                    weft::join_handle<wr::call_outcome<int>>** target)
                                     -> weft::task<void> {
      co_await weft::sleep_until(at);
      (*target)->cancel();
    }(start + 10ms, &target));
    co_await weft::yield();  // the canceller sleeps first
    auto caller = weft::spawn(call);
    target = &caller;
    wr::call_outcome<int> out = wr::call_outcome<int>::cancelled();
    bool threw = false;
    try {
      out = co_await caller;
    } catch (const weft::operation_cancelled&) {
      threw = true;
    }
    co_await canceller;
    EXPECT_FALSE(threw) << "the cancellation escaped as an exception";
    EXPECT_TRUE(out.is_cancelled());
    EXPECT_EQ(attempts, 1) << "no attempt starts once the caller is cancelled";
    EXPECT_EQ(ms_since(start), 10);
  });
}

// The same with a context that carries a token of its own (execute(ctx, op)): the sleep then
// listens to both tokens, and the caller's cancellation, during the sleep or at its end, is a
// cancelled outcome too.
TEST_F(Retry, CancellingTheCallerWhileAContextWithItsOwnTokenSleepsIsACancelledOutcome) {
  rt_.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    for (auto at : {5ms, 10ms}) {
      int attempts = 0;
      wr::retry_options o;
      o.backoff = wr::backoff::fixed(10ms);
      wr::retry r{o};
      wr::pipeline pipe{r};
      weft::cancel_source context_source;  // never cancelled
      auto op = [&attempts]() -> weft::task<wr::call_outcome<int>> {
        ++attempts;
        co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error));
      };
      auto call = [&pipe, &op, &context_source]() -> weft::task<wr::call_outcome<int>> {
        wr::resilience_context ctx;
        ctx.token = context_source.token();
        co_return co_await pipe.execute(ctx, op);
      };
      const auto round = weft::clock::now();
      weft::join_handle<wr::call_outcome<int>>* target = nullptr;
      auto canceller = weft::spawn([](weft::clock::time_point at,
                                      weft::join_handle<wr::call_outcome<int>>** target)
                                       -> weft::task<void> {
        co_await weft::sleep_until(at);
        (*target)->cancel();
      }(round + at, &target));
      co_await weft::yield();
      auto caller = weft::spawn(call);
      target = &caller;
      wr::call_outcome<int> out = wr::call_outcome<int>::failure(wr::errc::timeout);
      bool threw = false;
      try {
        out = co_await caller;
      } catch (const weft::operation_cancelled&) {
        threw = true;
      }
      co_await canceller;
      EXPECT_FALSE(threw) << "cancelled at +" << at.count() << " ms escaped as an exception";
      EXPECT_TRUE(threw || out.is_cancelled()) << at.count();
      EXPECT_EQ(attempts, 1) << at.count();
    }
    (void)start;
  });
}

// A layer that cancels the caller as the second attempt is about to start: the cancellation
// then lands exactly between the retry's sleep and its next attempt, where the runtime refuses to
// start a task for a cancelled caller.
struct cancel_before_second_attempt {
  weft::join_handle<wr::call_outcome<int>>** target;
  int* entered;
  template <class R, class Next>
  weft::task<wr::call_outcome<R>> run(wr::resilience_context& ctx, Next next) {
    if (++*entered == 2) (*target)->cancel();
    return pass<R>(ctx, next);
  }
  template <class R, class Next>
  static weft::task<wr::call_outcome<R>> pass(wr::resilience_context& ctx, Next next) {
    co_return co_await next(ctx);
  }
};

TEST_F(Retry, ACallerCancelledBetweenTheSleepAndTheNextAttemptGetsACancelledOutcome) {
  rt_.block_on([]() -> weft::task<void> {
    int attempts = 0;
    int entered = 0;
    weft::join_handle<wr::call_outcome<int>>* target = nullptr;
    wr::retry_options o;
    o.backoff = wr::backoff::fixed(10ms);
    wr::pipeline pipe{wr::retry{o}, cancel_before_second_attempt{&target, &entered}};
    auto op = [&attempts]() -> weft::task<wr::call_outcome<int>> {
      ++attempts;
      co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error));
    };
    auto call = [&pipe, &op]() -> weft::task<wr::call_outcome<int>> {
      co_return co_await pipe.execute(op);
    };
    auto caller = weft::spawn(call);
    target = &caller;
    bool threw = false;
    wr::call_outcome<int> out = wr::call_outcome<int>::failure(wr::errc::timeout);
    try {
      out = co_await caller;
    } catch (const weft::operation_cancelled&) {
      threw = true;
    }
    EXPECT_FALSE(threw) << "the cancellation escaped the retry as an exception";
    EXPECT_TRUE(out.is_cancelled());
    EXPECT_EQ(entered, 2);
    EXPECT_EQ(attempts, 1) << "the second attempt never started";
  });
}

TEST(RetryBudget, DefaultsAreTowers) {
  const wr::retry_budget b;
  EXPECT_EQ(b.options().ratio, 0.2);
  EXPECT_EQ(b.options().ttl, 10s);
  EXPECT_EQ(b.options().min_retries_per_sec, 10);
  EXPECT_EQ(b.reserve(), 100u);
}

TEST(RetryBudget, AllowsExactlyRatioOfRequestsPlusTheReserve) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::retry_budget b;                               // 0.2 · requests + 100
    for (int i = 0; i < 14; ++i) b.record_request();  // ⌊0.2 · 14⌋ = 2
    int granted = 0;
    while (b.try_acquire_retry()) ++granted;
    EXPECT_EQ(granted, 102);
    EXPECT_EQ(b.retries_in_window(), 102u);
    EXPECT_EQ(b.remaining(), 0u);
    b.record_request();  // 15: ⌊3⌋ = 3, one more
    EXPECT_TRUE(b.try_acquire_retry());
    EXPECT_FALSE(b.try_acquire_retry());
    co_return;
  }());
}

TEST(RetryBudget, TheFloorIsExactForDecimalRatios) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::retry_budget b{{.ratio = 0.29, .min_retries_per_sec = 0}};  // 0.29·100 is 28.999… in double
    EXPECT_EQ(b.reserve(), 0u);
    EXPECT_FALSE(b.try_acquire_retry());  // no requests, no reserve
    for (int i = 0; i < 100; ++i) b.record_request();
    int granted = 0;
    while (b.try_acquire_retry()) ++granted;
    EXPECT_EQ(granted, 29);
    co_return;
  }());
}

TEST(RetryBudget, EventsLeaveTheWindowWithTheirBucketAfterTtl) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    // ttl 10 s in ten 1 s buckets, aligned to the first event; one retry per request.
    wr::retry_budget b{{.ratio = 1.0, .ttl = 10s, .min_retries_per_sec = 0}};
    b.record_request();  // t = 0, bucket 0
    b.record_request();
    co_await weft::advance(1500ms);
    b.record_request();                  // t = 1.5 s, bucket 1
    EXPECT_TRUE(b.try_acquire_retry());  // bucket 1
    EXPECT_EQ(b.remaining(), 2u);
    co_await weft::advance(10s - 1500ms - 1ns);  // just before 10 s: everything still counts
    EXPECT_EQ(b.requests_in_window(), 3u);
    co_await weft::advance(1ns);  // 10 s: bucket 0 leaves
    EXPECT_EQ(b.requests_in_window(), 1u);
    EXPECT_EQ(b.retries_in_window(), 1u);
    EXPECT_EQ(b.remaining(), 0u);
    EXPECT_FALSE(b.try_acquire_retry());
    co_await weft::advance(1s);  // 11 s: bucket 1 leaves (its start + ttl), retry included
    EXPECT_EQ(b.requests_in_window(), 0u);
    EXPECT_EQ(b.retries_in_window(), 0u);
    co_await weft::advance(1h);  // a long idle gap empties the ring in one step
    b.record_request();
    EXPECT_EQ(b.requests_in_window(), 1u);
    EXPECT_TRUE(b.try_acquire_retry());
    EXPECT_FALSE(b.try_acquire_retry());
  }());
}

TEST(RetryBudget, BadOptionsThrowNamingTheOption) {
  const auto message = [](wr::retry_budget_options o) {
    try {
      wr::retry_budget b{o};
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no throw");
  };
  EXPECT_NE(message({.ratio = -0.1}).find("ratio"), std::string::npos);
  EXPECT_NE(message({.ratio = 2000}).find("ratio"), std::string::npos);
  EXPECT_NE(message({.min_retries_per_sec = -1}).find("min_retries_per_sec"), std::string::npos);
  EXPECT_NE(message({.buckets = 0}).find("buckets"), std::string::npos);
  EXPECT_NE(message({.ttl = 5ns}).find("ttl"), std::string::npos);
}

TEST_F(Retry, AnExhaustedBudgetReturnsTheLastFailureWithAnEvent) {
  // No ratio, a reserve of exactly one retry (0.1/s · 10 s).
  wr::retry_budget budget{{.ratio = 0, .ttl = 10s, .min_retries_per_sec = 0.1}};
  auto o = no_jitter(3);
  o.gate = &budget;
  wr::retry r{o};
  recorder rec;
  rec.attach(r.observers());
  script first, second;
  first.results.assign(3, wr::call_outcome<int>::failure(io_error()));
  second.results.assign(3, wr::call_outcome<int>::failure(refused()));
  rt_.block_on([&]() -> weft::task<void> {
    first.t0 = second.t0 = rec.t0 = weft::clock::now();
    EXPECT_EQ((co_await r.execute(op_for(first))).error(), std::errc::io_error);
    EXPECT_EQ(ms_since(first.t0), 100);
    EXPECT_EQ((co_await r.execute(op_for(second))).error(), std::errc::connection_refused);
    EXPECT_EQ(ms_since(first.t0), 100);
  }());
  EXPECT_EQ(first.starts, (std::vector<long>{0, 100}));  // the one retry, then denied
  EXPECT_EQ(second.starts, (std::vector<long>{100}));    // denied at once
  EXPECT_EQ(budget.requests_in_window(), 2u);
  EXPECT_EQ(budget.retries_in_window(), 1u);
  EXPECT_EQ(rec.events, (std::vector<seen_event>{
                            {wr::event_kind::retry, 0, 1, 100ms, ""},
                            {wr::event_kind::retry_budget_exhausted, 100, 2, 200ms, "budget"},
                            {wr::event_kind::retry_budget_exhausted, 100, 1, 100ms, "budget"}}));
  expect_metrics(r.metrics(), counts(0, 0, 1, 1));
}

TEST(GrpcThrottle, TokenArithmeticInMilliTokens) {
  wr::grpc_throttle t{10, 0.1};
  EXPECT_EQ(t.max_milli_tokens(), 10000);
  EXPECT_EQ(t.milli_token_ratio(), 100);
  EXPECT_EQ(t.threshold(), 5000);
  EXPECT_EQ(t.milli_tokens(), 10000);  // starts full
  t.record_outcome(wr::verdict::success);
  EXPECT_EQ(t.milli_tokens(), 10000);  // clamped at max
  for (int i = 0; i < 4; ++i) t.record_outcome(wr::verdict::failure);
  EXPECT_EQ(t.milli_tokens(), 6000);
  EXPECT_TRUE(t.try_acquire_retry());
  EXPECT_TRUE(t.try_acquire_retry());  // asking takes nothing
  EXPECT_EQ(t.milli_tokens(), 6000);
  t.record_outcome(wr::verdict::failure);
  EXPECT_EQ(t.milli_tokens(), 5000);
  EXPECT_FALSE(t.try_acquire_retry());  // at the threshold: not above it
  t.record_outcome(wr::verdict::success);
  EXPECT_EQ(t.milli_tokens(), 5100);
  EXPECT_TRUE(t.try_acquire_retry());
  t.record_outcome(wr::verdict::ignore);
  t.record_request();
  EXPECT_EQ(t.milli_tokens(), 5100);  // neither counts
  for (int i = 0; i < 20; ++i) t.record_outcome(wr::verdict::failure);
  EXPECT_EQ(t.milli_tokens(), 0);  // clamped at zero
  for (int i = 0; i < 51; ++i) t.record_outcome(wr::verdict::success);
  EXPECT_EQ(t.milli_tokens(), 5100);
}

TEST(GrpcThrottle, OddMaximumsAndRatiosToThreeDecimals) {
  wr::grpc_throttle t{3, 0.0125};  // 12.5 milli-tokens round to 13
  EXPECT_EQ(t.threshold(), 1500);
  EXPECT_EQ(t.milli_token_ratio(), 13);
  t.record_outcome(wr::verdict::failure);
  EXPECT_TRUE(t.try_acquire_retry());  // 2000
  t.record_outcome(wr::verdict::failure);
  EXPECT_FALSE(t.try_acquire_retry());  // 1000
  EXPECT_THROW(wr::grpc_throttle(0, 0.1), std::invalid_argument);
  EXPECT_THROW(wr::grpc_throttle(10, 0), std::invalid_argument);
  EXPECT_THROW(wr::grpc_throttle(10, 0.0004), std::invalid_argument);
}

TEST_F(Retry, GrpcThrottleHearsRetryableFailuresAndSuccessesOnly) {
  wr::grpc_throttle throttle{3, 0.5};  // 3000, threshold 1500
  auto o = no_jitter(3);
  o.gate = &throttle;
  wr::retry r{o};
  recorder rec;
  rec.attach(r.observers());
  rt_.block_on([&]() -> weft::task<void> {
    rec.t0 = weft::clock::now();
    script s;  // fail (2000, allowed), fail (1000, refused)
    s.t0 = rec.t0;
    s.results.assign(3, wr::call_outcome<int>::failure(io_error()));
    EXPECT_EQ((co_await r.execute(op_for(s))).error(), std::errc::io_error);
    EXPECT_EQ(s.starts.size(), 2u);
    EXPECT_EQ(throttle.milli_tokens(), 1000);
    script fatal;  // a non-retryable failure does not count
    fatal.results = {wr::call_outcome<int>::failure(wr::errc::circuit_open)};
    (void)co_await r.execute(op_for(fatal));
    EXPECT_EQ(throttle.milli_tokens(), 1000);
    script ok;  // a success adds 500
    (void)co_await r.execute(op_for(ok));
    EXPECT_EQ(throttle.milli_tokens(), 1500);
    script still_throttled;  // fail → 500: refused at once
    still_throttled.results = {wr::call_outcome<int>::failure(io_error())};
    (void)co_await r.execute(op_for(still_throttled));
    EXPECT_EQ(still_throttled.starts.size(), 1u);
    EXPECT_EQ(throttle.milli_tokens(), 500);
  }());
  ASSERT_EQ(rec.events.size(), 4u);
  EXPECT_EQ(rec.events[1].kind, wr::event_kind::retry_budget_exhausted);
  EXPECT_EQ(rec.events[2].kind, wr::event_kind::retry_gave_up);  // the rejection
  EXPECT_EQ(rec.events[3].kind, wr::event_kind::retry_budget_exhausted);
}

// ---------------------------------------------------------------------------------------------
// fallback.

// A layer that refuses every call as a value.
struct refuser {
  wr::errc code;
  template <class R, class Next>
  weft::task<wr::call_outcome<R>> run(wr::resilience_context&, Next) {
    co_return wr::call_outcome<R>::failure(code, 1s);
  }
};

class Fallback : public ::testing::Test {
 protected:
  weft::runtime rt_{paused()};
};

TEST_F(Fallback, ReplacesAFailureAndSeesIt) {
  std::string seen;
  wr::fallback fb{[&seen](const wr::call_outcome<int>& failed) -> weft::task<int> {
    try {
      std::rethrow_exception(failed.exception());
    } catch (const std::runtime_error& e) {
      seen = e.what();
    }
    co_return 7;
  }};
  std::vector<wr::event_kind> events;
  fb.observers().on_event([&](const wr::layer_event& e) noexcept { events.push_back(e.kind); });
  const int v = rt_.block_on(
      fb.execute([]() -> weft::task<int> { throw std::runtime_error("backend down"); }));
  EXPECT_EQ(v, 7);
  EXPECT_EQ(seen, "backend down");
  EXPECT_EQ(events, (std::vector<wr::event_kind>{wr::event_kind::fallback_used}));
}

TEST_F(Fallback, TakesEveryLibraryRejectionEvenThoseBreakersIgnore) {
  for (auto code : {wr::errc::circuit_open, wr::errc::bulkhead_full, wr::errc::rate_limited,
                    wr::errc::limit_exceeded, wr::errc::budget_exhausted}) {
    int used = 0;
    wr::fallback fb{[&used]() -> int {
      ++used;
      return -1;
    }};
    wr::pipeline pipe{fb, refuser{code}};
    EXPECT_EQ(rt_.block_on(pipe.execute([]() -> weft::task<int> { co_return 1; })), -1);
    EXPECT_EQ(used, 1) << wr::make_error_code(code).message();
  }
}

TEST_F(Fallback, NotTakenOnSuccess) {
  int used = 0;
  wr::fallback fb{[&used]() -> int {
    ++used;
    return -1;
  }};
  EXPECT_EQ(rt_.block_on(fb.execute([]() -> weft::task<int> { co_return 5; })), 5);
  EXPECT_EQ(used, 0);
}

TEST_F(Fallback, NotTakenWhenTheCallIsCancelled) {
  int used = 0;
  wr::fallback fb{[&used]() -> int {
    ++used;
    return -1;
  }};
  rt_.block_on([&]() -> weft::task<void> {
    weft::cancel_source source;
    auto canceller = weft::spawn(cancel_after(source, 1s));
    const auto o = co_await weft::with_cancellation(
        source.token(), fb.execute([]() -> weft::task<wr::call_outcome<int>> {
          co_await weft::sleep_for(10s);
          co_return wr::call_outcome<int>::success(1);
        }));
    EXPECT_TRUE(o.is_cancelled());
    co_await canceller;
  }());
  EXPECT_EQ(used, 0);
}

TEST_F(Fallback, NotTakenForAFailureArrivingAfterTheCallerWasCancelled) {
  int used = 0;
  wr::fallback fb{[&used]() -> int {
    ++used;
    return -1;
  }};
  rt_.block_on([&]() -> weft::task<void> {
    weft::cancel_source source;
    int calls = 0;
    const auto o = co_await weft::with_cancellation(
        source.token(), fb.execute([&] { return stubborn(calls, source); }));
    EXPECT_EQ(o.error(), std::errc::io_error);  // returned as it came
  }());
  EXPECT_EQ(used, 0);
}

TEST_F(Fallback, NotTakenWhenTheCallerWasCancelledBeforeTheStart) {
  int used = 0;
  wr::fallback fb{[&used]() -> int {
    ++used;
    return -1;
  }};
  weft::cancel_source source;
  source.request_cancellation();
  EXPECT_THROW(rt_.block_on(weft::with_cancellation(
                   source.token(), fb.execute([]() -> weft::task<int> { co_return 1; }))),
               weft::operation_cancelled);
  EXPECT_EQ(used, 0);
}

TEST_F(Fallback, TheSubstitutesOwnExceptionBecomesTheOutcome) {
  wr::fallback throws_in_task{[](const wr::call_outcome<int>& failed) -> weft::task<int> {
    if (!failed.has_value()) throw std::out_of_range("no cache");
    co_return 0;
  }};
  wr::fallback throws_before_task{[](const wr::call_outcome<int>&) -> weft::task<int> {
    throw std::domain_error("not even a task");  // not a coroutine: throws when called
  }};
  auto failing = []() -> weft::task<wr::call_outcome<int>> {
    co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error));
  };
  const auto a = rt_.block_on(throws_in_task.execute(failing));
  EXPECT_THROW(std::rethrow_exception(a.exception()), std::out_of_range);
  const auto b = rt_.block_on(throws_before_task.execute(failing));
  EXPECT_THROW(std::rethrow_exception(b.exception()), std::domain_error);
}

TEST_F(Fallback, RunsUnderTheCallersCancellation) {
  bool substitute_cancelled = false;
  wr::fallback fb{[&substitute_cancelled]() -> weft::task<int> {
    try {
      co_await weft::sleep_for(10s);
    } catch (const weft::operation_cancelled&) {
      substitute_cancelled = true;
      throw;
    }
    co_return 3;
  }};
  rt_.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    weft::cancel_source source;
    auto canceller = weft::spawn(cancel_after(source, 1s));
    const auto o = co_await weft::with_cancellation(
        source.token(), fb.execute([]() -> weft::task<wr::call_outcome<int>> {
          co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error));
        }));
    EXPECT_TRUE(o.is_cancelled());
    EXPECT_EQ(ms_since(t0), 1000);
    co_await canceller;
  }());
  EXPECT_TRUE(substitute_cancelled);
}

TEST_F(Fallback, TheContextsOwnTokenAlsoCancelsTheSubstitute) {
  wr::fallback fb{[]() -> weft::task<int> {
    co_await weft::sleep_for(10s);
    co_return 3;
  }};
  wr::pipeline pipe{fb};
  rt_.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    weft::cancel_source source;
    wr::resilience_context ctx;
    ctx.token = source.token();  // not the task's token
    auto canceller = weft::spawn(cancel_after(source, 1s));
    const auto o = co_await pipe.execute(ctx, []() -> weft::task<wr::call_outcome<int>> {
      co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error));
    });
    EXPECT_TRUE(o.is_cancelled());
    EXPECT_EQ(ms_since(t0), 1000);
    co_await canceller;
  }());
}

TEST_F(Fallback, ACustomClassifierDecidesWhatFails) {
  wr::fallback fb{
      []() -> weft::task<wr::call_outcome<int>> { co_return wr::call_outcome<int>::success(0); },
      wr::fallback_options{.classify = {wr::on_result([](const int& v) { return v < 0; })}}};
  EXPECT_EQ(rt_.block_on(fb.execute([]() -> weft::task<int> { co_return -5; })), 0);
  EXPECT_EQ(rt_.block_on(fb.execute([]() -> weft::task<int> { co_return 5; })), 5);
}

TEST_F(Fallback, RetryInsideFallbackFallsBackOnlyAfterTheLastAttempt) {
  int used = 0;
  wr::fallback fb{[&used](const wr::call_outcome<int>& failed) -> int {
    ++used;
    return failed.error() == std::errc::connection_refused ? 99 : -1;
  }};
  wr::retry r{no_jitter(3)};
  wr::pipeline pipe{fb, r};
  script s;
  s.results = {wr::call_outcome<int>::failure(io_error()),
               wr::call_outcome<int>::failure(io_error()),
               wr::call_outcome<int>::failure(refused())};
  rt_.block_on([&]() -> weft::task<void> {
    s.t0 = weft::clock::now();
    EXPECT_EQ((co_await pipe.execute(op_for(s))).value(), 99);
  }());
  EXPECT_EQ(s.starts, (std::vector<long>{0, 100, 300}));
  EXPECT_EQ(used, 1);
}

TEST_F(Fallback, VoidResults) {
  int used = 0;
  wr::fallback fb{[&used]() -> weft::task<void> {
    ++used;
    co_return;
  }};
  rt_.block_on(fb.execute([]() -> weft::task<void> { throw std::runtime_error("x"); }));
  EXPECT_EQ(used, 1);
}

// ---------------------------------------------------------------------------------------------
// Shared gates from two workers (TSan).

weft::task<void> record_requests(wr::retry_gate& g, int n) {
  for (int i = 0; i < n; ++i) {
    g.record_request();
    if (i % 50 == 0) co_await weft::yield();
  }
}

weft::task<void> acquire_retries(wr::retry_gate& g, int n, std::atomic<int>& granted) {
  for (int i = 0; i < n; ++i) {
    if (g.try_acquire_retry()) granted.fetch_add(1, std::memory_order_relaxed);
    if (i % 50 == 0) co_await weft::yield();
  }
}

weft::task<void> record_outcomes(wr::retry_gate& g, int n, wr::verdict v) {
  for (int i = 0; i < n; ++i) {
    g.record_outcome(v);
    if (i % 50 == 0) co_await weft::yield();
  }
}

constexpr int tasks = 8;

TEST(SharedGates, RetryBudgetFromTwoWorkersGrantsExactlyItsAllowance) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  wr::retry_budget budget{{.ratio = 0.2, .ttl = 1h, .min_retries_per_sec = 0.1}};  // reserve 360
  std::atomic<int> granted{0};
  rt.block_on([&]() -> weft::task<void> {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < tasks; ++i) hs.push_back(weft::spawn(record_requests(budget, 500)));
    for (auto& h : hs) co_await h;
    hs.clear();
    for (int i = 0; i < tasks; ++i)
      hs.push_back(weft::spawn(acquire_retries(budget, 300, granted)));
    for (auto& h : hs) co_await h;
  }());
  EXPECT_EQ(granted.load(), 4000 / 5 + 360);
  EXPECT_EQ(budget.requests_in_window(), 4000u);
}

TEST(SharedGates, GrpcThrottleFromTwoWorkersKeepsExactCounts) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  wr::grpc_throttle throttle{100'000, 0.5};
  std::atomic<int> granted{0};
  rt.block_on([&]() -> weft::task<void> {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < tasks; ++i) {
      hs.push_back(weft::spawn(record_outcomes(throttle, 1000, wr::verdict::failure)));
      hs.push_back(weft::spawn(acquire_retries(throttle, 1000, granted)));
    }
    for (auto& h : hs) co_await h;
    hs.clear();
    EXPECT_EQ(throttle.milli_tokens(), 100'000'000 - 8000 * 1000);  // no clamping: exact
    for (int i = 0; i < tasks; ++i) {
      hs.push_back(weft::spawn(record_outcomes(throttle, 1000, wr::verdict::success)));
    }
    for (auto& h : hs) co_await h;
  }());
  EXPECT_EQ(throttle.milli_tokens(), 100'000'000 - 8000 * 1000 + 8000 * 500);
  EXPECT_EQ(granted.load(), 8000);  // always above half
}

weft::task<void> hammer_retry(wr::retry& r, int calls, std::atomic<int>& invocations) {
  for (int i = 0; i < calls; ++i) {
    auto op = [&invocations]() -> weft::task<wr::call_outcome<int>> {
      invocations.fetch_add(1, std::memory_order_relaxed);
      co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error));
    };
    (void)co_await r.execute(op);
  }
}

TEST(SharedGates, OneRetryAndBudgetSharedByManyTasksAddUp) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  wr::retry_budget budget{{.ratio = 0.5, .ttl = 1h, .min_retries_per_sec = 0}};
  wr::retry_options o;
  o.max_attempts = 3;
  o.backoff = wr::backoff::fixed(0ns);
  o.gate = &budget;
  wr::retry r{o};
  std::atomic<int> invocations{0};
  rt.block_on([&]() -> weft::task<void> {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < tasks; ++i) hs.push_back(weft::spawn(hammer_retry(r, 200, invocations)));
    for (auto& h : hs) co_await h;
  }());
  const auto m = r.metrics();
  EXPECT_EQ(m.failed_with_retry + m.failed_without_retry, 1600u);
  EXPECT_EQ(m.successful_with_retry + m.successful_without_retry, 0u);
  EXPECT_EQ(budget.requests_in_window(), 1600u);
  // Every invocation is an original request or a retry the budget granted, and the budget never
  // granted more than half the requests.
  EXPECT_EQ(static_cast<std::uint64_t>(invocations.load()), 1600u + budget.retries_in_window());
  EXPECT_LE(budget.retries_in_window(), 800u);
  EXPECT_GE(m.failed_with_retry, 1u);
}

}  // namespace
