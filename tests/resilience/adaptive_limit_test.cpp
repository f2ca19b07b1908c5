// weft::resilience::adaptive_limit (AIMD, Vegas and Gradient2 as in Netflix's concurrency-limits)
// and client_throttle (Google SRE adaptive throttling), under paused time: limit trajectories for
// scripted samples against values worked out by hand from the formulas, the listener's
// success/dropped/ignore mapping, rejection at ⌊limit⌋, the LIFO queue, the throttle's
// probability at exact counts and its 120 s window; and both hammered from two workers (TSan).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/join_handle.hpp>
#include <weft/resilience/adaptive_limit.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/client_throttle.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/rng.hpp>
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
using result = wr::call_outcome<int>;

constexpr std::int64_t ms_ns = 1'000'000;

// An operation that sleeps `d` and then returns `o`.
weft::task<result> after(weft::clock::duration d, result o) {
  co_await weft::sleep_for(d);
  co_return o;
}
auto op_after(weft::clock::duration d, result o = result::success(1)) {
  return [d, o] { return after(d, o); };
}

wr::adaptive_limit aimd_limiter(int initial, int min, int max,
                                std::optional<wr::lifo_queue> queue = std::nullopt) {
  wr::adaptive_limit_options o;
  o.algorithm = wr::aimd{.initial_limit = initial, .min_limit = min, .max_limit = max};
  o.queue = queue;
  return wr::adaptive_limit{std::move(o)};
}

// Starts `n` calls at the same instant and waits for all of them: they are admitted with
// inflight 1, 2, …, n and, sleeping equally long, complete in that order.
weft::task<void> concurrent(wr::adaptive_limit& l, int n, weft::clock::duration d) {
  std::vector<weft::join_handle<result>> hs;
  for (int i = 0; i < n; ++i) hs.push_back(weft::spawn(l.execute(op_after(d))));
  for (auto& h : hs) co_await h;
}

// ---------------------------------------------------------------------------------------------
// The algorithms, sample by sample (Netflix's tests drive Limit.onSample the same way)

TEST(AimdLimit, GrowsByOneWhenHalfUsedAndBacksOffOnDropsAndSlowCalls) {
  wr::detail::aimd_state a{wr::aimd{.initial_limit = 10, .min_limit = 5, .max_limit = 12}};
  std::vector<double> trajectory;
  auto step = [&](std::int64_t rtt_ns, int inflight, bool dropped) {
    trajectory.push_back(a.update({rtt_ns, inflight, dropped}));
  };
  step(10 * ms_ns, 4, false);         // 4·2 < 10: app-limited, stays 10
  step(10 * ms_ns, 5, false);         // 5·2 >= 10: 11
  step(10 * ms_ns, 6, false);         // 12
  step(10 * ms_ns, 6, false);         // 13 clamped to max 12
  step(10 * ms_ns, 6, true);          // drop: ⌊12·0.9⌋ = 10
  step(5'000 * ms_ns, 6, false);      // rtt == timeout (5 s) is not slow: 11
  step(5'000 * ms_ns + 1, 1, false);  // rtt > timeout: ⌊11·0.9⌋ = 9
  step(10 * ms_ns, 1, true);          // ⌊8.1⌋ = 8
  step(10 * ms_ns, 1, true);          // ⌊7.2⌋ = 7
  step(10 * ms_ns, 1, true);          // ⌊6.3⌋ = 6
  step(10 * ms_ns, 1, true);          // ⌊5.4⌋ = 5
  step(10 * ms_ns, 1, true);          // ⌊4.5⌋ = 4, clamped to min 5
  EXPECT_EQ(trajectory, (std::vector<double>{10, 11, 12, 12, 10, 11, 9, 8, 7, 6, 5, 5}));
}

TEST(AimdLimit, DefaultsAreNetflixs) {
  const wr::aimd d;
  EXPECT_EQ(d.initial_limit, 20);
  EXPECT_EQ(d.min_limit, 20);
  EXPECT_EQ(d.max_limit, 200);
  EXPECT_EQ(d.backoff_ratio, 0.9);
  EXPECT_EQ(d.timeout, 5s);
}

TEST(VegasLimit, TrajectoryForScriptedRtts) {
  // Probing is pushed out of the way (30 · 1000 · 0.5 · limit samples); it has its own test.
  wr::detail::vegas_state v{wr::vegas{.initial_limit = 4, .probe_multiplier = 1000},
                            wr::rng::constant(0.0)};
  std::vector<double> trajectory;
  auto step = [&](std::int64_t rtt_ms, int inflight, bool dropped) {
    trajectory.push_back(v.update({rtt_ms * ms_ns, inflight, dropped}));
  };
  // log10_root(n) is 1 for every n below 100: alpha 3, beta 6, threshold 1.
  step(100, 1, false);  // first sample: rtt_noload = 100 ms, limit unchanged
  step(100, 2, false);  // queue ⌈4·(1 − 100/100)⌉ = 0 <= threshold: 4 + beta = 10
  step(200, 5, false);  // queue ⌈10·(1 − 0.5)⌉ = 5, in [alpha, beta]: unchanged
  step(400, 5, false);  // queue ⌈10·0.75⌉ = 8 > beta: decrease, 10 − 1 = 9
  step(125, 5, false);  // queue ⌈9·0.2⌉ = 2 < alpha: increase, 9 + 1 = 10
  step(400, 4, false);  // 4·2 < 10: app-limited, unchanged
  step(150, 1, true);   // a drop always decreases: 9
  step(50, 9, false);   // a new minimum: rtt_noload = 50 ms, unchanged
  EXPECT_EQ(trajectory, (std::vector<double>{4, 10, 10, 9, 10, 10, 9, 9}));
  EXPECT_EQ(v.rtt_noload_ns(), 50 * ms_ns);
}

TEST(VegasLimit, SmoothingAndTheMaximum) {
  wr::detail::vegas_state v{
      wr::vegas{
          .initial_limit = 8, .max_concurrency = 12, .smoothing = 0.5, .probe_multiplier = 1000},
      wr::rng::constant(0.0)};
  EXPECT_EQ(v.update({100 * ms_ns, 4, false}), 8);  // rtt_noload
  // queue 0: 8 + 6 = 14, clamped to 12, then 0.5·8 + 0.5·12 = 10.
  EXPECT_EQ(v.update({100 * ms_ns, 4, false}), 10);
  // queue 0, ⌊10⌋: 10 + 6 = 16 → 12 → 0.5·10 + 0.5·12 = 11.
  EXPECT_EQ(v.update({100 * ms_ns, 5, false}), 11);
}

TEST(VegasLimit, ProbesANewNoLoadRttAfterJitterTimesMultiplierTimesLimitSamples) {
  // Jitter 0.5 + 0.5·rng() = 0.5; multiplier 1; limit 4: a probe when 2 <= samples since the last.
  wr::detail::vegas_state v{wr::vegas{.initial_limit = 4, .probe_multiplier = 1},
                            wr::rng::constant(0.0)};
  v.update({100 * ms_ns, 1, false});
  EXPECT_EQ(v.rtt_noload_ns(), 100 * ms_ns);
  v.update({300 * ms_ns, 1, false});  // the second sample probes: rtt_noload = 300 ms
  EXPECT_EQ(v.rtt_noload_ns(), 300 * ms_ns);
  v.update({200 * ms_ns, 1, false});  // count restarted at 1: a new minimum again
  EXPECT_EQ(v.rtt_noload_ns(), 200 * ms_ns);
  v.update({250 * ms_ns, 1, false});  // second since the probe: probes 250 ms
  EXPECT_EQ(v.rtt_noload_ns(), 250 * ms_ns);
}

TEST(VegasLimit, Log10RootIsNetflixsLookup) {
  EXPECT_EQ(wr::detail::log10_root(0), 1);
  EXPECT_EQ(wr::detail::log10_root(9), 1);
  EXPECT_EQ(wr::detail::log10_root(99), 1);
  EXPECT_EQ(wr::detail::log10_root(100), 2);
  EXPECT_EQ(wr::detail::log10_root(999), 2);
  EXPECT_EQ(wr::detail::log10_root(1000), 31);  // ⌊√1000⌋: the function's other half
  const wr::vegas d;
  EXPECT_EQ(d.initial_limit, 20);
  EXPECT_EQ(d.max_concurrency, 1000);
  EXPECT_EQ(d.smoothing, 1.0);
  EXPECT_EQ(d.probe_multiplier, 30);
}

TEST(Gradient2Limit, TrajectoryForScriptedRtts) {
  wr::detail::gradient2_state g{wr::gradient2{.min_limit = 5}};
  auto step = [&](std::int64_t rtt_ms, int inflight) {
    return g.update({rtt_ms * ms_ns, inflight, false});
  };
  // long_rtt is the plain mean of the first 10 samples; queue_size 4; smoothing 0.2; tolerance 1.5.
  // 1: long 100, gradient min(1, 1.5) = 1: new 20 + 4 = 24, smoothed 0.8·20 + 0.2·24 = 20.8.
  EXPECT_NEAR(step(100, 20), 20.8, 1e-9);
  // 2: long 100, gradient 1: 0.8·20.8 + 0.2·(20.8 + 4) = 21.6.
  EXPECT_NEAR(step(100, 20), 21.6, 1e-9);
  // 3: long (100+100+300)/3 = 166.67, gradient 1.5·166.67/300 = 0.8333:
  //    new 21.6·0.8333 + 4 = 22, smoothed 0.8·21.6 + 0.2·22 = 21.68.
  EXPECT_NEAR(step(300, 20), 21.68, 1e-9);
  // 4: long 1500/4 = 375, gradient 1.5·375/1000 = 0.5625:
  //    new 21.68·0.5625 + 4 = 16.195, smoothed 0.8·21.68 + 0.2·16.195 = 20.583.
  EXPECT_NEAR(step(1000, 20), 20.583, 1e-9);
  // 5: app-limited (5 < 20.583/2): unchanged, but long_rtt takes the sample: 1600/5 = 320 ms,
  //    which is over twice the sample (100 ms): cut by 5 % to 304 ms.
  EXPECT_NEAR(step(100, 5), 20.583, 1e-9);
  EXPECT_NEAR(g.long_rtt_ns(), 304.0 * ms_ns, 1e-3);
  // 6: still warming up: the mean is recomputed from the sum, (1600 + 100)/6 = 283.33 (the cut
  //    is lost, as in ExpAvgMeasurement); gradient min(1, 1.5·283.33/100) = 1:
  //    new 20.583 + 4, smoothed 0.8·20.583 + 0.2·24.583 = 21.383.
  EXPECT_NEAR(step(100, 20), 21.383, 1e-9);
  EXPECT_NEAR(g.long_rtt_ns(), 1700.0 / 6 * ms_ns * 0.95, 1e-3);  // cut again: 283.33 > 2·100
}

TEST(Gradient2Limit, ExponentialAverageAfterWarmupAndTheBounds) {
  wr::detail::gradient2_state g{
      wr::gradient2{.initial_limit = 10, .min_limit = 9, .max_concurrency = 11, .long_window = 9}};
  for (int i = 0; i < 10; ++i) g.update({100 * ms_ns, 10, false});  // warm-up: mean 100 ms
  EXPECT_NEAR(g.long_rtt_ns(), 100.0 * ms_ns, 1e-3);
  EXPECT_EQ(g.estimate(), 11);  // grew by the queue allowance, capped at max_concurrency
  // After warm-up: factor 2/(9 + 1) = 0.2: 0.8·100 + 0.2·150 = 110 ms.
  g.update({150 * ms_ns, 10, false});
  EXPECT_NEAR(g.long_rtt_ns(), 110.0 * ms_ns, 1e-3);
  // A huge RTT: gradient 1.5·(0.8·110 + 0.2·10000)/10000 = 0.3132 → 0.5:
  //   11·0.5 + 4 = 9.5, smoothed 0.8·11 + 0.2·9.5 = 10.7.
  EXPECT_NEAR(g.update({10'000 * ms_ns, 10, false}), 10.7, 1e-9);
  const wr::gradient2 d;
  EXPECT_EQ(d.initial_limit, 20);
  EXPECT_EQ(d.min_limit, 20);
  EXPECT_EQ(d.max_concurrency, 200);
  EXPECT_EQ(d.smoothing, 0.2);
  EXPECT_EQ(d.long_window, 600);
  EXPECT_EQ(d.rtt_tolerance, 1.5);
}

TEST(AdaptiveLimit, BadOptionsAreRefused) {
  EXPECT_THROW(wr::adaptive_limit{wr::aimd{.min_limit = 0}}, std::invalid_argument);
  EXPECT_THROW((wr::adaptive_limit{wr::aimd{.min_limit = 30, .max_limit = 20}}),
               std::invalid_argument);
  EXPECT_THROW(wr::adaptive_limit{wr::aimd{.backoff_ratio = 1.0}}, std::invalid_argument);
  EXPECT_THROW(wr::adaptive_limit{wr::vegas{.smoothing = 0}}, std::invalid_argument);
  EXPECT_THROW(wr::adaptive_limit{wr::gradient2{.rtt_tolerance = 0.9}}, std::invalid_argument);
  EXPECT_EQ(wr::adaptive_limit{}.limit(), 20);  // Vegas, Netflix's default algorithm
}

// ---------------------------------------------------------------------------------------------
// The layer: admission, samples, events

TEST(AdaptiveLimit, RejectsWithLimitExceededWhenInflightReachesTheLimit) {
  weft::runtime rt{paused()};
  wr::adaptive_limit l = aimd_limiter(2, 1, 2);
  std::vector<std::string> events;
  l.observers().on_event([&](const wr::layer_event& e) noexcept {
    events.push_back(std::string(wr::to_string(e.kind)) + "@" + std::to_string(int(e.value)));
  });
  rt.block_on([&]() -> weft::task<void> {
    auto a = weft::spawn(l.execute(op_after(100ms)));
    auto b = weft::spawn(l.execute(op_after(100ms)));
    co_await weft::sleep_for(10ms);
    EXPECT_EQ(l.inflight(), 2);
    const result c = co_await l.execute(op_after(100ms));
    EXPECT_EQ(c.error(), wr::errc::limit_exceeded);
    co_await a;
    co_await b;
    EXPECT_EQ(l.inflight(), 0);
    const result d = co_await l.execute(op_after(1ms));
    EXPECT_TRUE(d.has_value());
  }());
  EXPECT_EQ(events, (std::vector<std::string>{"limit_exceeded@2"}));
}

TEST(AdaptiveLimit, SamplesCarryTheInflightAtAdmissionAndMoveTheLimit) {
  weft::runtime rt{paused()};
  wr::adaptive_limit l = aimd_limiter(10, 5, 12);
  std::vector<int> changes;
  l.observers().on_event([&](const wr::layer_event& e) noexcept {
    if (e.kind == wr::event_kind::limit_changed) changes.push_back(static_cast<int>(e.value));
  });
  rt.block_on([&]() -> weft::task<void> {
    co_await concurrent(l, 4, 10ms);  // inflight 1..4: 4·2 < 10, nothing moves
    EXPECT_EQ(l.limit(), 10);
    co_await concurrent(l, 5, 10ms);  // the fifth was admitted with 5 in flight: 11
    EXPECT_EQ(l.limit(), 11);
    co_await concurrent(l, 6, 10ms);  // the sixth: 6·2 >= 11: 12
    EXPECT_EQ(l.limit(), 12);
  }());
  EXPECT_EQ(changes, (std::vector<int>{11, 12}));
}

TEST(AdaptiveLimit, ListenerReportsSuccessDroppedOrIgnore) {
  weft::runtime rt{paused()};
  wr::adaptive_limit_options o;
  o.algorithm = wr::aimd{.initial_limit = 2, .min_limit = 1, .max_limit = 10};
  o.dropped_when = wr::on_error(std::errc::resource_unavailable_try_again);
  wr::adaptive_limit l{std::move(o)};
  std::vector<int> limits;
  auto call = [&](result r) -> weft::task<void> {
    co_await l.execute(op_after(1ms, r));
    limits.push_back(l.limit());
  };
  rt.block_on([&]() -> weft::task<void> {
    co_await call(result::success(1));                       // success, 1·2 >= 2: 3
    co_await call(result::failure(wr::errc::timeout));       // dropped: ⌊2.7⌋ = 2
    co_await call(result::success(1));                       // 3
    co_await call(result::failure(wr::errc::rate_limited));  // dropped: 2
    co_await call(result::cancelled());                      // ignore
    co_await call(result::failure(std::make_error_code(std::errc::io_error)));  // ignore
    co_await call(result::from_exception(std::make_exception_ptr(std::runtime_error("x"))));
    co_await call(result::failure(wr::errc::circuit_open));    // ignore: never reached it
    co_await call(result::failure(wr::errc::limit_exceeded));  // ignore
    co_await call(result::failure(std::make_error_code(std::errc::resource_unavailable_try_again)));
  }());
  EXPECT_EQ(limits, (std::vector<int>{3, 2, 3, 2, 2, 2, 2, 2, 2, 1}));
  EXPECT_EQ(l.inflight(), 0);
}

TEST(AdaptiveLimit, RttRunsFromAdmissionToTheOutcome) {
  weft::runtime rt{paused()};
  wr::adaptive_limit l{wr::aimd{.initial_limit = 2, .min_limit = 1, .max_limit = 10}};
  rt.block_on([&]() -> weft::task<void> {
    co_await l.execute(op_after(5s));  // rtt == the 5 s timeout: a success, 1·2 >= 2: 3
    EXPECT_EQ(l.limit(), 3);
    co_await l.execute(op_after(5s + 1ns));  // slower than the timeout: ⌊2.7⌋ = 2
    EXPECT_EQ(l.limit(), 2);
  }());
}

TEST(AdaptiveLimit, GaugesReportTheLimitAndInflight) {
  struct sink final : wr::metrics_sink {
    std::vector<std::string> lines;
    void count_event(const wr::layer_event&) noexcept override {}
    void record_attempt(std::string_view, const wr::resilience_context&, weft::clock::duration,
                        wr::verdict) noexcept override {}
    void record_pipeline(const wr::resilience_context&, weft::clock::duration,
                         wr::verdict) noexcept override {}
    void set_gauge(wr::gauge g, std::string_view, std::string_view, double v) noexcept override {
      lines.push_back(std::string(wr::to_string(g)) + "=" + std::to_string(static_cast<int>(v)));
    }
  } s;
  weft::runtime rt{paused()};
  wr::adaptive_limit l = aimd_limiter(2, 1, 10);
  l.observers().set_sink(&s);
  rt.block_on(l.execute(op_after(1ms)));
  EXPECT_EQ(s.lines, (std::vector<std::string>{"inflight=1", "inflight=0", "limit=3"}));
}

TEST(AdaptiveLimit, VegasThroughTheLayer) {
  weft::runtime rt{paused()};
  wr::adaptive_limit_options o;
  o.algorithm = wr::vegas{.initial_limit = 4, .probe_multiplier = 1000};
  o.random = wr::rng::constant(0.0);
  wr::adaptive_limit l{std::move(o)};
  rt.block_on([&]() -> weft::task<void> {
    co_await l.execute(op_after(100ms));  // rtt_noload 100 ms
    co_await concurrent(l, 2, 100ms);     // the second (inflight 2, queue 0): 4 + 6 = 10
    EXPECT_EQ(l.limit(), 10);
    EXPECT_EQ(l.estimated_limit(), 10.0);
  }());
}

// ---------------------------------------------------------------------------------------------
// The LIFO queue

TEST(AdaptiveLimitQueue, FreedSlotGoesToTheNewestWaiter) {
  weft::runtime rt{paused()};
  wr::adaptive_limit l = aimd_limiter(1, 1, 1, wr::lifo_queue{.max_size = 2, .max_wait = 1s});
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    std::vector<std::string> starts;
    auto record = [&](std::string name) {
      return [&starts, start, name]() -> weft::task<result> {
        starts.push_back(name + "@" + std::to_string(ms_since(start)));
        co_await weft::sleep_for(100ms);
        co_return result::success(1);
      };
    };
    auto a = weft::spawn(l.execute(record("a")));
    co_await weft::sleep_for(10ms);
    auto b = weft::spawn(l.execute(record("b")));
    co_await weft::sleep_for(10ms);
    auto c = weft::spawn(l.execute(record("c")));
    co_await weft::sleep_for(10ms);
    EXPECT_EQ(l.queued(), 2u);
    const result d = co_await l.execute(record("d"));  // the queue is full
    EXPECT_EQ(d.error(), wr::errc::limit_exceeded);
    EXPECT_TRUE((co_await a).has_value());
    EXPECT_TRUE((co_await c).has_value());
    EXPECT_TRUE((co_await b).has_value());
    EXPECT_EQ(starts, (std::vector<std::string>{"a@0", "c@100", "b@200"}));
    EXPECT_EQ(ms_since(start), 300);
    EXPECT_EQ(l.inflight(), 0);
    EXPECT_EQ(l.queued(), 0u);
  }());
}

TEST(AdaptiveLimitQueue, WaiterGivesUpWithLimitExceededAfterMaxWait) {
  weft::runtime rt{paused()};
  wr::adaptive_limit l = aimd_limiter(1, 1, 1, wr::lifo_queue{.max_size = 4, .max_wait = 50ms});
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    auto a = weft::spawn(l.execute(op_after(1s)));
    co_await weft::sleep_for(10ms);
    const result b = co_await l.execute(op_after(1ms));
    EXPECT_EQ(b.error(), wr::errc::limit_exceeded);
    EXPECT_EQ(ms_since(start), 60);
    EXPECT_EQ(l.queued(), 0u);
    co_await a;
    EXPECT_EQ(l.inflight(), 0);
  }());
}

TEST(AdaptiveLimitQueue, SlotFreedAtExactlyMaxWaitIsTaken) {
  weft::runtime rt{paused()};
  wr::adaptive_limit l = aimd_limiter(1, 1, 1, wr::lifo_queue{.max_size = 4, .max_wait = 90ms});
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    auto a = weft::spawn(l.execute(op_after(100ms)));
    co_await weft::sleep_for(10ms);
    const result b = co_await l.execute(op_after(5ms));  // waits 10 → 100, exactly max_wait
    EXPECT_TRUE(b.has_value());
    EXPECT_EQ(ms_since(start), 105);
    co_await a;
  }());
}

TEST(AdaptiveLimitQueue, CancelledWaiterReturnsCancelledAndTakesNoSlot) {
  weft::runtime rt{paused()};
  wr::adaptive_limit l = aimd_limiter(1, 1, 1, wr::lifo_queue{.max_size = 4, .max_wait = 1s});
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    auto a = weft::spawn(l.execute(op_after(100ms)));
    co_await weft::sleep_for(10ms);
    weft::cancel_source caller;
    int ran = 0;
    auto b = weft::spawn(
        weft::with_cancellation(caller.token(), l.execute([&ran]() -> weft::task<result> {
          ++ran;
          co_return result::success(1);
        })));
    co_await weft::sleep_for(20ms);
    EXPECT_EQ(l.queued(), 1u);
    caller.request_cancellation();
    const result o = co_await b;
    EXPECT_TRUE(o.is_cancelled());
    EXPECT_EQ(ms_since(start), 30);
    EXPECT_EQ(l.queued(), 0u);
    co_await a;
    EXPECT_EQ(ran, 0);
    EXPECT_EQ(l.inflight(), 0);
  }());
}

TEST(AdaptiveLimitQueue, ZeroMaxWaitRejectsAtOnce) {
  weft::runtime rt{paused()};
  wr::adaptive_limit l = aimd_limiter(1, 1, 1, wr::lifo_queue{.max_size = 4, .max_wait = 0ms});
  rt.block_on([&]() -> weft::task<void> {
    auto a = weft::spawn(l.execute(op_after(100ms)));
    co_await weft::sleep_for(10ms);
    const auto start = weft::clock::now();
    const result b = co_await l.execute(op_after(1ms));
    EXPECT_EQ(b.error(), wr::errc::limit_exceeded);
    EXPECT_EQ(ms_since(start), 0);
    co_await a;
  }());
}

// ---------------------------------------------------------------------------------------------
// Two workers: admissions, releases, queue hand-offs and limit changes from both at once.

TEST(AdaptiveLimitStress, TwoWorkersNeverExceedTheLimitAndLeakNoSlot) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  wr::adaptive_limit_options o;
  o.algorithm = wr::aimd{.initial_limit = 4, .min_limit = 2, .max_limit = 8};
  o.queue = wr::lifo_queue{.max_size = 16, .max_wait = 2ms};
  wr::adaptive_limit l{std::move(o)};
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  std::atomic<int> ok{0};
  std::atomic<int> rejected{0};
  std::atomic<int> other{0};
  constexpr int tasks = 32;
  constexpr int calls = 60;
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    for (int t = 0; t < tasks; ++t) {
      group.spawn([&, t]() -> weft::task<void> {
        for (int i = 0; i < calls; ++i) {
          const int kind = (t + i) % 5;
          const result o = co_await l.execute([&, kind]() -> weft::task<result> {
            const int now = running.fetch_add(1) + 1;
            int seen = peak.load();
            while (now > seen && !peak.compare_exchange_weak(seen, now)) {
            }
            co_await weft::sleep_for(std::chrono::microseconds{50 * kind});
            running.fetch_sub(1);
            if (kind == 4) co_return result::failure(wr::errc::timeout);  // a drop
            co_return result::success(1);
          });
          if (o.has_value() || o.error() == wr::errc::timeout) {
            ok.fetch_add(1);
          } else if (o.error() == wr::errc::limit_exceeded) {
            rejected.fetch_add(1);
          } else {
            other.fetch_add(1);
          }
        }
      });
    }
    co_await group.join();
  }());
  EXPECT_EQ(ok.load() + rejected.load(), tasks * calls);
  EXPECT_EQ(other.load(), 0);
  EXPECT_LE(peak.load(), 8);  // never more than max_limit in flight
  EXPECT_EQ(l.inflight(), 0);
  EXPECT_EQ(l.queued(), 0u);
  EXPECT_GE(l.limit(), 2);
  EXPECT_LE(l.limit(), 8);
}

// ---------------------------------------------------------------------------------------------
// Client throttle (SRE)

wr::client_throttle throttle_with(double draw) {
  wr::client_throttle_options o;
  o.random = wr::rng::constant(draw);
  return wr::client_throttle{std::move(o)};
}

TEST(ClientThrottle, ProbabilityAtExactCounts) {
  weft::runtime rt{paused()};
  wr::client_throttle t = throttle_with(0.5);
  std::vector<double> throttled_at;
  t.observers().on_event(
      [&](const wr::layer_event& e) noexcept { throttled_at.push_back(e.value); });
  rt.block_on([&]() -> weft::task<void> {
    EXPECT_EQ(t.probability(), 0.0);                                 // 0 requests: (0 − 0)/1
    for (int i = 0; i < 10; ++i) co_await t.execute(op_after(1ms));  // accepted
    EXPECT_EQ(t.requests(), 10);
    EXPECT_EQ(t.accepts(), 10);
    EXPECT_EQ(t.probability(), 0.0);  // (10 − 20)/11 < 0
    const auto failing = op_after(1ms, result::failure(std::make_error_code(std::errc::io_error)));
    for (int i = 0; i < 30; ++i) co_await t.execute(failing);
    // p = (40 − 2·10)/(40 + 1) = 20/41 < 0.5: still admitted.
    EXPECT_DOUBLE_EQ(t.probability(), 20.0 / 41);
    EXPECT_EQ(t.requests(), 40);
    result o = co_await t.execute(failing);
    EXPECT_EQ(o.error(), std::errc::io_error);  // ran
    // p = 21/42 = 0.5, and 0.5 < 0.5 is false: admitted.
    EXPECT_DOUBLE_EQ(t.probability(), 0.5);
    o = co_await t.execute(failing);
    EXPECT_EQ(o.error(), std::errc::io_error);
    // p = 22/43 > 0.5: rejected locally, and the rejected request still counts.
    EXPECT_DOUBLE_EQ(t.probability(), 22.0 / 43);
    o = co_await t.execute(failing);
    EXPECT_EQ(o.error(), wr::errc::rate_limited);
    EXPECT_EQ(t.requests(), 43);
    EXPECT_EQ(t.accepts(), 10);
    EXPECT_DOUBLE_EQ(t.probability(), 23.0 / 44);
  }());
  EXPECT_EQ(throttled_at, (std::vector<double>{22.0 / 43}));
}

TEST(ClientThrottle, ProbabilityComesFromTheCountsBeforeTheRequest) {
  weft::runtime rt{paused()};
  // rng just under 1/2: the first request (p = 0/1) and the second (p = (1 − 0)/2 = 0.5 > 0.4999)
  wr::client_throttle t = throttle_with(0.4999);
  rt.block_on([&]() -> weft::task<void> {
    const auto failing = op_after(1ms, result::failure(std::make_error_code(std::errc::io_error)));
    result o = co_await t.execute(failing);
    EXPECT_EQ(o.error(), std::errc::io_error);  // p = 0: never rejected, rng not even drawn
    o = co_await t.execute(failing);
    EXPECT_EQ(o.error(), wr::errc::rate_limited);  // p = 1/2 from one earlier request
  }());
}

TEST(ClientThrottle, CountsLeaveTheWindowAfter120Seconds) {
  weft::runtime rt{paused()};
  wr::client_throttle t = throttle_with(0.99);
  rt.block_on([&]() -> weft::task<void> {
    const auto failing = op_after(0ms, result::failure(std::make_error_code(std::errc::io_error)));
    const auto start = weft::clock::now();
    co_await t.execute(failing);  // bucket 0 (t0 = this request)
    co_await t.execute(failing);
    co_await weft::sleep_for(1500ms);
    co_await t.execute(op_after(0ms));  // bucket 1: a request and an accept
    EXPECT_EQ(t.requests(), 3);
    EXPECT_EQ(t.accepts(), 1);
    co_await weft::sleep_until(start + 120s - 1ns);
    EXPECT_EQ(t.requests(), 3);  // bucket 0 is still in the window
    co_await weft::sleep_until(start + 120s);
    EXPECT_EQ(t.requests(), 1);  // bucket 0 left at exactly 120 s
    EXPECT_EQ(t.accepts(), 1);
    co_await weft::sleep_until(start + 121s);
    EXPECT_EQ(t.requests(), 0);
    EXPECT_EQ(t.accepts(), 0);
    EXPECT_EQ(t.probability(), 0.0);
  }());
}

TEST(ClientThrottle, AcceptIsAnOutcomeClassifiedSuccess) {
  weft::runtime rt{paused()};
  wr::client_throttle_options o;
  // A backend "answered" 404s count as accepts here: they are not failures to this caller.
  o.accepts = wr::classifier{wr::on_error(std::errc::io_error)};
  wr::client_throttle t{std::move(o)};
  rt.block_on([&]() -> weft::task<void> {
    co_await t.execute(op_after(0ms));  // success
    co_await t.execute(
        op_after(0ms, result::failure(std::make_error_code(
                          std::errc::no_such_file_or_directory))));  // success by the classifier
    co_await t.execute(op_after(0ms, result::failure(std::make_error_code(std::errc::io_error))));
    co_await t.execute(op_after(0ms, result::cancelled()));  // ignore: not an accept
    EXPECT_EQ(t.requests(), 4);
    EXPECT_EQ(t.accepts(), 2);
  }());
}

TEST(ClientThrottle, BadOptionsAreRefused) {
  wr::client_throttle_options o;
  o.k = 0;
  EXPECT_THROW(wr::client_throttle{o}, std::invalid_argument);
  o = {};
  o.window = 1500ms;  // not a whole number of 1 s buckets
  EXPECT_THROW(wr::client_throttle{o}, std::invalid_argument);
  o = {};
  o.bucket = 0s;
  EXPECT_THROW(wr::client_throttle{o}, std::invalid_argument);
}

TEST(ClientThrottleStress, TwoWorkersCountEveryRequest) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  wr::client_throttle t;
  std::atomic<int> accepted{0};
  std::atomic<int> throttled{0};
  constexpr int tasks = 16;
  constexpr int calls = 100;
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    for (int k = 0; k < tasks; ++k) {
      group.spawn([&, k]() -> weft::task<void> {
        for (int i = 0; i < calls; ++i) {
          const bool fail = (k + i) % 3 != 0;
          const result o = co_await t.execute([fail]() -> weft::task<result> {
            if (fail) co_return result::failure(std::make_error_code(std::errc::io_error));
            co_return result::success(1);
          });
          if (o.has_value()) accepted.fetch_add(1);
          if (!o.has_value() && o.error() == wr::errc::rate_limited) throttled.fetch_add(1);
        }
      });
    }
    co_await group.join();
  }());
  EXPECT_EQ(t.requests(), tasks * calls);  // all within the 120 s window
  EXPECT_EQ(t.accepts(), accepted.load());
  EXPECT_GT(throttled.load(), 0);
}

}  // namespace
