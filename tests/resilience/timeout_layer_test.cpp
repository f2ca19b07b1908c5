// weft::resilience::time_limiter under paused time: the deadline at exactly the duration, ties to
// the result, deadline propagation through the context, nested timeouts, the caller's cancellation,
// late results, detach mode with its gauge and cap; and calls racing their deadlines on two
// workers (the alarm disarmed from another worker; run under TSan).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/shielded.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/join_handle.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/spawn_blocking.hpp>
#include <weft/sync/event.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>
#include <weft/yield.hpp>

#include "support/paused_time.hpp"

namespace {

namespace wr = weft::resilience;
using weft::testing::ms_since;
using weft::testing::paused;
using namespace std::chrono_literals;
using result = wr::call_outcome<int>;

// An operation that sleeps `d` and returns `v`; the sleep throws when it is cancelled.
weft::task<result> sleeper(weft::clock::duration d, int v, bool* saw_cancel = nullptr) {
  try {
    co_await weft::sleep_for(d);
  } catch (const weft::operation_cancelled&) {
    if (saw_cancel != nullptr) *saw_cancel = true;
    throw;
  }
  co_return result::success(v);
}

weft::task<result> plain_sleep(weft::clock::duration d, int v) {
  co_await weft::sleep_for(d);
  co_return result::success(v);
}

// Code that cannot be cancelled: its sleep runs with no cancellation token at all.
weft::task<result> stubborn(weft::clock::duration d, int v) {
  auto t = plain_sleep(d, v);
  co_return co_await weft::shielded(std::move(t));
}

auto sleep_op(weft::clock::duration d, int v = 7, bool* saw_cancel = nullptr) {
  return [d, v, saw_cancel] { return sleeper(d, v, saw_cancel); };
}
auto stubborn_op(weft::clock::duration d, int v = 7) {
  return [d, v] { return stubborn(d, v); };
}

// Records the kind of every outcome that passes through it (placed between two timeouts).
struct recorder {
  std::vector<wr::outcome_kind>* kinds;
  template <class R, class Next>
  weft::task<wr::call_outcome<R>> run(wr::resilience_context& ctx, Next next) {
    auto o = co_await next(ctx);
    kinds->push_back(o.kind());
    co_return o;
  }
};

struct event_log {
  std::vector<std::string> lines;
  void attach(wr::time_limiter& t) {
    t.observers().on_event([this](const wr::layer_event& e) noexcept {
      lines.push_back(
          std::string(e.layer) + ":" + std::string(wr::to_string(e.kind)) + "@" +
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(e.delay).count()));
    });
  }
};

struct gauge_sink final : wr::metrics_sink {
  std::vector<std::string> lines;
  void count_event(const wr::layer_event&) noexcept override {}
  void record_attempt(std::string_view, const wr::resilience_context&, weft::clock::duration,
                      wr::verdict) noexcept override {}
  void record_pipeline(const wr::resilience_context&, weft::clock::duration,
                       wr::verdict) noexcept override {}
  void set_gauge(wr::gauge g, std::string_view, std::string_view, double v) noexcept override {
    lines.push_back(std::string(wr::to_string(g)) + "=" + std::to_string(static_cast<int>(v)));
  }
};

wr::time_limiter detaching(weft::clock::duration d, std::optional<std::size_t> cap = std::nullopt) {
  return wr::time_limiter{
      wr::timeout_options{.duration = d, .mode = wr::on_timeout::detach, .max_detached = cap}};
}

// ---------------------------------------------------------------------------------------------
// Await mode

TEST(TimeoutLayer, ReturnsTimeoutExactlyAtTheDuration) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const result o = co_await layer.execute(sleep_op(30s));
    EXPECT_EQ(o.error(), wr::errc::timeout);
    EXPECT_EQ(ms_since(start), 1000);
  }());
}

TEST(TimeoutLayer, CancelsTheOperationAtTheDeadline) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  bool saw_cancel = false;
  const result o = rt.block_on(layer.execute(sleep_op(30s, 7, &saw_cancel)));
  EXPECT_EQ(o.error(), wr::errc::timeout);
  EXPECT_TRUE(saw_cancel);
}

TEST(TimeoutLayer, WaitsForTheOperationToStopBeforeReturning) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  // The operation needs 250 ms to stop after its cancellation (cleanup it cannot skip).
  auto slow_to_stop = [] {
    return [](int) -> weft::task<result> {
      try {
        co_await weft::sleep_for(30s);
      } catch (const weft::operation_cancelled&) {
      }
      auto cleanup = plain_sleep(250ms, 0);
      co_await weft::shielded(std::move(cleanup));
      throw weft::operation_cancelled{};
    }(0);
  };
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const result o = co_await layer.execute(slow_to_stop);
    EXPECT_EQ(o.error(), wr::errc::timeout);
    EXPECT_EQ(ms_since(start), 1250);
  }());
}

TEST(TimeoutLayer, OperationCompletingAtExactlyTheDeadlineSucceeds) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const result o = co_await layer.execute(sleep_op(1s, 42));
    EXPECT_TRUE(o.has_value() && o.value() == 42);
    EXPECT_EQ(ms_since(start), 1000);
  }());
}

TEST(TimeoutLayer, OperationFinishingAtTheDeadlineAfterMoreStepsSucceeds) {
  // Woken at the deadline, the operation still yields and passes a cancellation point before it
  // returns, all at the same instant: the deadline waits for everything that instant woke.
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const result o = co_await layer.execute([]() -> weft::task<result> {
      co_await weft::sleep_for(1s);
      co_await weft::yield();
      co_await weft::sleep_for(0ms);  // throws if cancellation was requested
      co_return result::success(42);
    });
    EXPECT_TRUE(o.has_value() && o.value() == 42);
    EXPECT_EQ(ms_since(start), 1000);
  }());
}

TEST(TimeoutLayer, OperationCompletingJustAfterTheDeadlineTimesOut) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  const result o = rt.block_on(layer.execute(sleep_op(1s + 1ns)));
  EXPECT_EQ(o.error(), wr::errc::timeout);
}

TEST(TimeoutLayer, FastOperationReturnsItsValueAndLeavesNoTimerBehind) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    for (int i = 0; i < 3; ++i) {
      const result o = co_await layer.execute(sleep_op(10ms, i));
      EXPECT_EQ(o.value(), i);
    }
    EXPECT_EQ(ms_since(start), 30);
    // A disarmed alarm left in the wheel would fire here and the clock would jump to it.
  }());
  EXPECT_EQ(rt.stats().workers.at(0).timers_fired, 3u);  // the three sleeps; no alarm fired
}

TEST(TimeoutLayer, PlainResultTypeThrowsRejectedWithTheTimeoutCode) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  try {
    rt.block_on(layer.execute([]() -> weft::task<int> {
      co_await weft::sleep_for(5s);
      co_return 1;
    }));
    FAIL() << "no timeout";
  } catch (const wr::rejected& r) {
    EXPECT_EQ(r.code(), wr::errc::timeout);
  }
}

TEST(TimeoutLayer, OperationSeesTheDeadlineAndTheLayerRestoresTheContext) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{300ms};
  wr::pipeline pipe{layer};
  rt.block_on([&]() -> weft::task<void> {
    wr::resilience_context ctx;
    weft::cancel_source caller;
    ctx.token = caller.token();
    std::optional<weft::clock::duration> seen;
    bool token_replaced = false;
    const result o =
        co_await pipe.execute(ctx, [&](wr::resilience_context& c) -> weft::task<result> {
          seen = c.remaining();
          token_replaced = !(c.token == caller.token());
          co_return result::success(1);
        });
    EXPECT_TRUE(o.has_value());
    EXPECT_EQ(seen, std::optional<weft::clock::duration>{300ms});
    EXPECT_TRUE(token_replaced);
    EXPECT_FALSE(ctx.deadline);  // restored: the caller had none
    EXPECT_TRUE(ctx.token == caller.token());
  }());
}

TEST(TimeoutLayer, ElapsedContextDeadlineTimesOutAnOperationThatWaits) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  wr::pipeline pipe{layer};
  rt.block_on([&]() -> weft::task<void> {
    wr::resilience_context ctx;
    ctx.deadline = weft::clock::now();
    const auto start = weft::clock::now();
    const result o = co_await pipe.execute(ctx, sleep_op(1ms));
    EXPECT_EQ(o.error(), wr::errc::timeout);
    EXPECT_EQ(ms_since(start), 0);
    // …but an operation that finishes without waiting completes at t == deadline: it succeeds.
    const result quick =
        co_await pipe.execute(ctx, []() -> weft::task<result> { co_return result::success(5); });
    EXPECT_EQ(quick.value(), 5);
  }());
}

TEST(TimeoutLayer, EmitsTimeoutWithTheElapsedTime) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{wr::timeout_options{.duration = 400ms, .name = "attempt"}};
  event_log log;
  log.attach(layer);
  rt.block_on(layer.execute(sleep_op(30s)));
  rt.block_on(layer.execute(sleep_op(1ms)));  // in time: no event
  EXPECT_EQ(log.lines, (std::vector<std::string>{"attempt:timeout@400"}));
}

// ---------------------------------------------------------------------------------------------
// Nested timeouts

TEST(TimeoutLayer, InnerLayerSeesTheSoonerOfTheTwoDeadlines) {
  weft::runtime rt{paused()};
  wr::time_limiter total{100ms};
  wr::time_limiter attempt{200ms};
  wr::time_limiter short_attempt{40ms};
  wr::pipeline pipe{total, attempt};
  wr::pipeline short_pipe{total, short_attempt};
  std::vector<weft::clock::duration> seen;
  auto op = [&](wr::resilience_context& ctx) -> weft::task<result> {
    seen.push_back(*ctx.remaining());
    co_return result::success(1);
  };
  rt.block_on(pipe.execute(op));
  rt.block_on(short_pipe.execute(op));
  EXPECT_EQ(seen, (std::vector<weft::clock::duration>{100ms, 40ms}));
}

TEST(TimeoutLayer, InheritedDeadlineReportsCancelledAndTheOuterLayerTimesOut) {
  weft::runtime rt{paused()};
  wr::time_limiter total{wr::timeout_options{.duration = 100ms, .name = "total"}};
  wr::time_limiter attempt{wr::timeout_options{.duration = 200ms, .name = "attempt"}};
  std::vector<wr::outcome_kind> inner;
  event_log log;
  log.attach(total);
  log.attach(attempt);
  wr::pipeline pipe{total, recorder{&inner}, attempt};
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const result o = co_await pipe.execute(sleep_op(30s));
    EXPECT_EQ(o.error(), wr::errc::timeout);
    EXPECT_EQ(ms_since(start), 100);
  }());
  EXPECT_EQ(inner, (std::vector<wr::outcome_kind>{wr::outcome_kind::cancelled}));
  EXPECT_EQ(log.lines, (std::vector<std::string>{"total:timeout@100"}));
}

TEST(TimeoutLayer, EqualDeadlinesAreInheritedToo) {
  weft::runtime rt{paused()};
  wr::time_limiter total{wr::timeout_options{.duration = 100ms, .name = "total"}};
  wr::time_limiter attempt{wr::timeout_options{.duration = 100ms, .name = "attempt"}};
  std::vector<wr::outcome_kind> inner;
  event_log log;
  log.attach(total);
  log.attach(attempt);
  wr::pipeline pipe{total, recorder{&inner}, attempt};
  const result o = rt.block_on(pipe.execute(sleep_op(30s)));
  EXPECT_EQ(o.error(), wr::errc::timeout);
  EXPECT_EQ(inner, (std::vector<wr::outcome_kind>{wr::outcome_kind::cancelled}));
  EXPECT_EQ(log.lines, (std::vector<std::string>{"total:timeout@100"}));
}

TEST(TimeoutLayer, SoonerInnerDeadlineOwnsTheTimeoutAndTheOuterPassesItOn) {
  weft::runtime rt{paused()};
  wr::time_limiter total{wr::timeout_options{.duration = 200ms, .name = "total"}};
  wr::time_limiter attempt{wr::timeout_options{.duration = 50ms, .name = "attempt"}};
  std::vector<wr::outcome_kind> inner;
  event_log log;
  log.attach(total);
  log.attach(attempt);
  wr::pipeline pipe{total, recorder{&inner}, attempt};
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const result o = co_await pipe.execute(sleep_op(30s));
    EXPECT_EQ(o.error(), wr::errc::timeout);
    EXPECT_EQ(ms_since(start), 50);
  }());
  EXPECT_EQ(inner, (std::vector<wr::outcome_kind>{wr::outcome_kind::error}));
  EXPECT_EQ(log.lines, (std::vector<std::string>{"attempt:timeout@50"}));
}

TEST(TimeoutLayer, InheritedDeadlineDefersToTheOwnersCancellationArrivingWhileTheOperationStops) {
  // The outer owner's cancellation can reach the operation just after this layer's own alarm (on
  // another worker, a tick later): the layer whose deadline was inherited still reports
  // cancelled. Here the "owner" is the context's token, cancelled from inside the operation's
  // cleanup, at the same instant.
  weft::runtime rt{paused()};
  wr::time_limiter attempt{200ms};
  wr::pipeline pipe{attempt};
  rt.block_on([&]() -> weft::task<void> {
    weft::cancel_source owner;
    wr::resilience_context ctx;
    ctx.token = owner.token();
    ctx.deadline = weft::clock::now() + 100ms;  // sooner than 200 ms: inherited
    const result o = co_await pipe.execute(ctx, [&owner]() -> weft::task<result> {
      try {
        co_await weft::sleep_for(30s);
      } catch (const weft::operation_cancelled&) {
        owner.request_cancellation();
        throw;
      }
      co_return result::success(1);
    });
    EXPECT_TRUE(o.is_cancelled());
  }());
}

TEST(TimeoutLayer, InheritedDeadlineWithNoOwnerCancellationIsATimeout) {
  weft::runtime rt{paused()};
  wr::time_limiter attempt{200ms};
  wr::pipeline pipe{attempt};
  rt.block_on([&]() -> weft::task<void> {
    wr::resilience_context ctx;
    ctx.deadline = weft::clock::now() + 100ms;  // the caller's own deadline, no layer owns it
    const auto start = weft::clock::now();
    const result o = co_await pipe.execute(ctx, sleep_op(30s));
    EXPECT_EQ(o.error(), wr::errc::timeout);
    EXPECT_EQ(ms_since(start), 100);
  }());
}

// ---------------------------------------------------------------------------------------------
// The caller's cancellation

TEST(TimeoutLayer, CallerCancellationBeforeTheDeadlineReturnsCancelled) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  event_log log;
  log.attach(layer);
  rt.block_on([&]() -> weft::task<void> {
    weft::cancel_source caller;
    const auto start = weft::clock::now();
    auto h = weft::spawn(weft::with_cancellation(caller.token(), layer.execute(sleep_op(30s))));
    co_await weft::sleep_for(300ms);
    caller.request_cancellation();
    const result o = co_await h;
    EXPECT_TRUE(o.is_cancelled());
    EXPECT_EQ(ms_since(start), 300);
  }());
  EXPECT_TRUE(log.lines.empty());
}

TEST(TimeoutLayer, CallerCancellationAtTheDeadlineInstantButFirstReturnsCancelled) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  event_log log;
  log.attach(layer);
  rt.block_on([&]() -> weft::task<void> {
    weft::cancel_source caller;
    // The caller's timer is armed before the layer's alarm, for the same instant: it fires first.
    auto canceller = weft::spawn([&]() -> weft::task<void> {
      co_await weft::sleep_for(1s);
      caller.request_cancellation();
    });
    auto h = weft::spawn(weft::with_cancellation(caller.token(), layer.execute(sleep_op(30s))));
    const result o = co_await h;
    co_await canceller;
    EXPECT_TRUE(o.is_cancelled());
  }());
  EXPECT_TRUE(log.lines.empty());
}

TEST(TimeoutLayer, ContextTokenCancellationReturnsCancelled) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  wr::pipeline pipe{layer};
  rt.block_on([&]() -> weft::task<void> {
    weft::cancel_source caller;
    wr::resilience_context ctx;
    ctx.token = caller.token();  // not the awaiting task's token: linked by the layer
    auto h = weft::spawn(pipe.execute(ctx, sleep_op(30s)));
    co_await weft::sleep_for(200ms);
    caller.request_cancellation();
    const result o = co_await h;
    EXPECT_TRUE(o.is_cancelled());
  }());
}

TEST(TimeoutLayer, StdStopTokenInTheContextIsLinkedToo) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  wr::pipeline pipe{layer};
  rt.block_on([&]() -> weft::task<void> {
    std::stop_source stop;
    wr::resilience_context ctx;
    ctx.token = stop.get_token();
    auto h = weft::spawn(pipe.execute(ctx, sleep_op(30s)));
    co_await weft::sleep_for(200ms);
    stop.request_stop();
    const result o = co_await h;
    EXPECT_TRUE(o.is_cancelled());
  }());
}

// ---------------------------------------------------------------------------------------------
// An operation that ignores the cancellation

TEST(TimeoutLayer, LateValueOfAnOperationIgnoringCancellationIsKept) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  event_log log;
  log.attach(layer);
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const result o = co_await layer.execute(stubborn_op(1500ms, 9));
    EXPECT_TRUE(o.has_value() && o.value() == 9);
    EXPECT_EQ(ms_since(start), 1500);  // awaited: the layer waits for it
  }());
  EXPECT_TRUE(log.lines.empty());
}

TEST(TimeoutLayer, LateErrorOfAnOperationIsReturnedAsItIs) {
  weft::runtime rt{paused()};
  wr::time_limiter layer{1s};
  const result o = rt.block_on(layer.execute([]() -> weft::task<result> {
    auto t = plain_sleep(2s, 0);
    co_await weft::shielded(std::move(t));
    co_return result::failure(std::make_error_code(std::errc::io_error));
  }));
  EXPECT_EQ(o.error(), std::errc::io_error);
}

TEST(TimeoutLayer, RejectsANonPositiveDuration) {
  EXPECT_THROW(wr::time_limiter{0s}, std::invalid_argument);
  EXPECT_THROW(wr::time_limiter{-5ms}, std::invalid_argument);
  try {
    wr::time_limiter t{wr::timeout_options{}};
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("duration"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Detach mode

TEST(TimeoutDetach, ReturnsAtTheDeadlineAndCountsTheOperationUntilItEnds) {
  weft::runtime rt{paused()};
  wr::time_limiter layer = detaching(1s);
  event_log log;
  log.attach(layer);
  gauge_sink sink;
  layer.observers().set_sink(&sink);
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const result o = co_await layer.execute(stubborn_op(3s));
    EXPECT_EQ(o.error(), wr::errc::timeout);
    EXPECT_EQ(ms_since(start), 1000);
    EXPECT_EQ(layer.detached(), 1u);
    co_await weft::sleep_for(1999ms);
    EXPECT_EQ(layer.detached(), 1u);
    co_await weft::sleep_for(1ms);  // the operation's sleep was armed first: it ended before us
    EXPECT_EQ(layer.detached(), 0u);
  }());
  EXPECT_EQ(log.lines,
            (std::vector<std::string>{"timeout:timeout_detached@1000", "timeout:timeout@1000"}));
  EXPECT_EQ(sink.lines, (std::vector<std::string>{"detached=1", "detached=0"}));
}

TEST(TimeoutDetach, RequestsCancellationOfTheDetachedOperation) {
  weft::runtime rt{paused()};
  wr::time_limiter layer = detaching(1s);
  bool saw_cancel = false;
  rt.block_on([&]() -> weft::task<void> {
    const result o = co_await layer.execute(sleep_op(30s, 7, &saw_cancel));
    EXPECT_EQ(o.error(), wr::errc::timeout);
    EXPECT_EQ(layer.detached(), 1u);  // returned at the deadline; the stop is on its way
    co_await weft::advance(0ms);      // lets the detached operation run its cancellation
    EXPECT_TRUE(saw_cancel);
    EXPECT_EQ(layer.detached(), 0u);  // it stopped at once
  }());
}

TEST(TimeoutDetach, OperationInTimeReturnsItsValueWithoutDetaching) {
  weft::runtime rt{paused()};
  wr::time_limiter layer = detaching(1s);
  event_log log;
  log.attach(layer);
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const result fast = co_await layer.execute(sleep_op(200ms, 3));
    EXPECT_EQ(fast.value(), 3);
    const result tie = co_await layer.execute(stubborn_op(1s, 4));
    EXPECT_EQ(tie.value(), 4);
    EXPECT_EQ(ms_since(start), 1200);
  }());
  EXPECT_EQ(layer.detached(), 0u);
  EXPECT_TRUE(log.lines.empty());
}

TEST(TimeoutDetach, OverTheCapAnOperationIsAwaitedInstead) {
  weft::runtime rt{paused()};
  wr::time_limiter layer = detaching(1s, 1);
  event_log log;
  log.attach(layer);
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    auto first = weft::spawn(layer.execute(stubborn_op(5s)));
    co_await weft::sleep_for(100ms);
    auto second = weft::spawn(layer.execute(stubborn_op(3s)));
    const result a = co_await first;
    EXPECT_EQ(a.error(), wr::errc::timeout);
    EXPECT_EQ(ms_since(start), 1000);  // detached
    EXPECT_EQ(layer.detached(), 1u);
    const result b = co_await second;
    EXPECT_EQ(ms_since(start), 3100);  // over the cap at 1100: awaited until it finished
    // It finished with a value after the deadline: kept, as in await mode.
    EXPECT_TRUE(b.has_value() && b.value() == 7);
    EXPECT_EQ(layer.detached(), 1u);
    co_await weft::sleep_for(1900ms);
    EXPECT_EQ(layer.detached(), 0u);  // the first one ended at 5000
  }());
  EXPECT_EQ(log.lines,
            (std::vector<std::string>{"timeout:timeout_detached@1000", "timeout:timeout@1000"}));
}

TEST(TimeoutDetach, ZeroCapAwaitsEveryOperation) {
  weft::runtime rt{paused()};
  wr::time_limiter layer = detaching(1s, 0);
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const result o = co_await layer.execute(sleep_op(30s));
    EXPECT_EQ(o.error(), wr::errc::timeout);  // cancelled at the deadline and awaited
    EXPECT_EQ(ms_since(start), 1000);
    EXPECT_EQ(layer.detached(), 0u);
  }());
}

TEST(TimeoutDetach, CallerCancellationReturnsCancelledAndDetaches) {
  weft::runtime rt{paused()};
  wr::time_limiter layer = detaching(1s);
  rt.block_on([&]() -> weft::task<void> {
    weft::cancel_source caller;
    const auto start = weft::clock::now();
    auto h = weft::spawn(weft::with_cancellation(caller.token(), layer.execute(stubborn_op(3s))));
    co_await weft::sleep_for(250ms);
    caller.request_cancellation();
    const result o = co_await h;
    EXPECT_TRUE(o.is_cancelled());
    EXPECT_EQ(ms_since(start), 250);
    EXPECT_EQ(layer.detached(), 1u);
    co_await weft::sleep_for(3s);
    EXPECT_EQ(layer.detached(), 0u);
  }());
}

TEST(TimeoutDetach, DetachedOperationOwnsACopyOfTheCallableAndTheContext) {
  weft::runtime rt{paused()};
  wr::time_limiter layer = detaching(1s);
  wr::pipeline pipe{layer};
  auto finished = std::make_shared<std::string>();
  rt.block_on([&]() -> weft::task<void> {
    {
      std::string key = "tenant-42";
      wr::resilience_context ctx;
      ctx.key = key;
      // Captures by value: the detached task keeps its own copy after this scope is gone.
      auto op = [payload = std::string(64, 'x'),
                 finished](wr::resilience_context& c) -> weft::task<result> {
        auto t = plain_sleep(2s, 0);
        co_await weft::shielded(std::move(t));
        *finished = std::string(c.key) + "/" + std::to_string(payload.size());
        co_return result::success(1);
      };
      const result o = co_await pipe.execute(ctx, op);
      EXPECT_EQ(o.error(), wr::errc::timeout);
      key.assign("overwritten");
    }
    co_await weft::sleep_for(5s);
  }());
  EXPECT_EQ(*finished, "tenant-42/64");
}

TEST(TimeoutDetach, MoveOnlyOperationIsRefusedWithALogicError) {
  weft::runtime rt{paused()};
  wr::time_limiter layer = detaching(1s);
  auto o = rt.block_on(layer.execute(
      [p = std::make_unique<int>(1)]() -> weft::task<result> { co_return result::success(*p); }));
  ASSERT_EQ(o.kind(), wr::outcome_kind::exception);
  EXPECT_THROW(std::rethrow_exception(o.exception()), std::logic_error);
}

weft::task<result> wait_for(weft::event& e) {
  co_await e.wait();
  co_return result::success(1);
}

TEST(TimeoutDetach, RuntimeShutdownDestroysADetachedOperationAndUncountsIt) {
  wr::time_limiter layer = detaching(1s);
  weft::event never;  // outlives the runtime: the waiter unlinks itself at shutdown
  {
    weft::runtime rt{paused()};
    rt.block_on([&]() -> weft::task<void> {
      const result o = co_await layer.execute([&]() -> weft::task<result> {
        auto t = wait_for(never);
        co_return co_await weft::shielded(std::move(t));
      });
      EXPECT_EQ(o.error(), wr::errc::timeout);
      EXPECT_EQ(layer.detached(), 1u);
    }());
  }  // the detached frame, still waiting, is destroyed with the runtime
  EXPECT_EQ(layer.detached(), 0u);
}

// ---------------------------------------------------------------------------------------------
// Two workers, real time: alarms armed on one worker and disarmed from another, firing while the
// operation completes. Checks only that every call ends with its value or a timeout.

TEST(TimeoutLayerStress, CallsRacingTheirDeadlinesOnTwoWorkers) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  wr::time_limiter layer{300us};
  std::atomic<int> values{0};
  std::atomic<int> timeouts{0};
  std::atomic<int> other{0};
  constexpr int tasks = 64;
  constexpr int calls = 40;
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    for (int t = 0; t < tasks; ++t) {
      group.spawn([&, t]() -> weft::task<void> {
        for (int i = 0; i < calls; ++i) {
          const auto d = std::chrono::microseconds{((t * 7 + i * 13) % 6) * 100};
          // Every other call ends on a blocking thread: its completion resumes the layer on
          // either worker, which then disarms an alarm that may live in the other one's wheel.
          result o = result::cancelled();
          if (i % 2 == 0) {
            o = co_await layer.execute(sleep_op(d, i));
          } else {
            o = co_await layer.execute([d, i]() -> weft::task<result> {
              co_await weft::sleep_for(d);
              co_return co_await weft::spawn_blocking([i] { return result::success(i); });
            });
          }
          if (o.has_value()) {
            values.fetch_add(1);
          } else if (o.error() == wr::errc::timeout) {
            timeouts.fetch_add(1);
          } else {
            other.fetch_add(1);
          }
        }
      });
    }
    co_await group.join();
  }());
  EXPECT_EQ(values.load() + timeouts.load(), tasks * calls);
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(values.load(), 0);
}

}  // namespace
