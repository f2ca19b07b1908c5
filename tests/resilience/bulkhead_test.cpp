// weft::resilience::bulkhead and bulkhead_family under paused time: immediate rejection, FIFO
// hand-off without barging, queue timeouts at the exact instant, cancellation of queued calls,
// permits released on every outcome, events and the inflight gauge, per-key pools with idle and
// LRU eviction; and a two-worker stress test with random cancellations.
#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/bulkhead_family.hpp>

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

// A call that records when it started, holds its permit for `d` and returns an outcome, so that
// rejections come back as values.
weft::task<wr::call_outcome<int>> call(wr::bulkhead& b, weft::clock::duration d,
                                       std::vector<long>* starts, weft::clock::time_point t0) {
  auto op = [d, starts, t0]() -> weft::task<wr::call_outcome<int>> {
    if (starts != nullptr) starts->push_back(ms_since(t0));
    co_await weft::sleep_for(d);
    co_return wr::call_outcome<int>::success(1);
  };
  co_return co_await b.execute(op);
}

// "kind@ms+delay" for each event, times relative to `t0`.
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

struct gauge_sink final : wr::metrics_sink {
  std::vector<int> inflight;
  void count_event(const wr::layer_event&) noexcept override {}
  void record_attempt(std::string_view, const wr::resilience_context&, weft::clock::duration,
                      wr::verdict) noexcept override {}
  void record_pipeline(const wr::resilience_context&, weft::clock::duration,
                       wr::verdict) noexcept override {}
  void set_gauge(wr::gauge g, std::string_view, std::string_view, double v) noexcept override {
    if (g == wr::gauge::inflight) inflight.push_back(static_cast<int>(v));
  }
};

TEST(Bulkhead, DefaultsFollowResilience4j) {
  const wr::bulkhead_options o;
  EXPECT_EQ(o.max_concurrent, 25u);
  EXPECT_EQ(o.max_queue, 0u);
  EXPECT_EQ(o.max_queue_wait, weft::clock::duration::zero());
  wr::bulkhead b;
  const auto m = b.metrics();
  EXPECT_EQ(m.max_concurrent, 25u);
  EXPECT_EQ(m.available, 25u);
  EXPECT_EQ(m.inflight, 0u);
  EXPECT_EQ(m.queued, 0u);
  EXPECT_EQ(b.observers().name(), "bulkhead");
}

TEST(Bulkhead, RejectsAtOnceWhenFullWithoutAQueue) {
  weft::runtime rt{paused()};
  wr::bulkhead b{{.max_concurrent = 2}};
  event_log log;
  log.attach(b.observers());
  rt.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    log.t0 = t0;
    std::vector<long> starts;
    weft::task_group g;
    g.spawn(call(b, 100ms, &starts, t0));
    g.spawn(call(b, 100ms, &starts, t0));
    co_await weft::yield();
    EXPECT_EQ(b.metrics().inflight, 2u);
    const auto third = co_await call(b, 100ms, &starts, t0);
    EXPECT_EQ(third.error(), wr::errc::bulkhead_full);
    EXPECT_FALSE(third.retry_after().has_value());
    EXPECT_EQ(ms_since(t0), 0);  // at once, not after a wait
    co_await g.join();
    EXPECT_EQ(starts, (std::vector<long>{0, 0}));  // the third never ran
    EXPECT_EQ(ms_since(t0), 100);
  });
  EXPECT_EQ(log.lines, (std::vector<std::string>{"bulkhead_rejected@0+0"}));
  EXPECT_EQ(b.metrics().available, 2u);
}

TEST(Bulkhead, APlainResultGetsTheRejectionThrown) {
  weft::runtime rt{paused()};
  wr::bulkhead b{{.max_concurrent = 1}};
  rt.block_on([&]() -> weft::task<void> {
    auto held = b.try_acquire();
    EXPECT_TRUE(held);
    int ran = 0;
    try {
      (void)co_await b.execute([&]() -> weft::task<int> {
        ++ran;
        co_return 1;
      });
      ADD_FAILURE() << "no rejection";
    } catch (const wr::rejected& r) {
      EXPECT_EQ(r.code(), wr::errc::bulkhead_full);
      EXPECT_FALSE(r.retry_after().has_value());
    }
    EXPECT_EQ(ran, 0);
  });
}

TEST(Bulkhead, ZeroMaxQueueWaitRejectsAtOnceEvenWithRoomInTheQueue) {
  weft::runtime rt{paused()};
  wr::bulkhead b{{.max_concurrent = 1, .max_queue = 5, .max_queue_wait = 0ms}};
  rt.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    auto held = b.try_acquire();
    const auto o = co_await call(b, 1ms, nullptr, t0);
    EXPECT_EQ(o.error(), wr::errc::bulkhead_full);
    EXPECT_EQ(ms_since(t0), 0);
    EXPECT_EQ(b.metrics().queued, 0u);
  });
}

TEST(Bulkhead, AFullQueueRejectsAtOnce) {
  weft::runtime rt{paused()};
  wr::bulkhead b{{.max_concurrent = 1, .max_queue = 1, .max_queue_wait = 1s}};
  rt.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    std::vector<long> starts;
    weft::task_group g;
    g.spawn(call(b, 100ms, &starts, t0));  // runs
    g.spawn(call(b, 100ms, &starts, t0));  // queued
    co_await weft::yield();
    EXPECT_EQ(b.metrics().queued, 1u);
    const auto o = co_await call(b, 100ms, &starts, t0);
    EXPECT_EQ(o.error(), wr::errc::bulkhead_full);
    EXPECT_EQ(ms_since(t0), 0);
    co_await g.join();
    EXPECT_EQ(starts, (std::vector<long>{0, 100}));
  });
}

TEST(Bulkhead, HandsReleasedPermitsToWaitersInFifoOrder) {
  weft::runtime rt{paused()};
  wr::bulkhead b{{.max_concurrent = 1, .max_queue = 3, .max_queue_wait = 1s}};
  event_log log;
  log.attach(b.observers());
  rt.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    log.t0 = t0;
    std::vector<std::string> order;
    auto named = [&](std::string name, weft::clock::duration d) -> weft::task<void> {
      auto op = [&order, name, d]() -> weft::task<int> {
        order.push_back(name);
        co_await weft::sleep_for(d);
        co_return 0;
      };
      (void)co_await b.execute(op);
    };
    weft::task_group g;
    g.spawn(named("holder", 100ms));
    co_await weft::advance(1ms);
    g.spawn(named("a", 10ms));
    co_await weft::advance(1ms);
    g.spawn(named("b", 10ms));
    co_await weft::advance(1ms);
    g.spawn(named("c", 10ms));
    co_await g.join();
    EXPECT_EQ(order, (std::vector<std::string>{"holder", "a", "b", "c"}));
    EXPECT_EQ(ms_since(t0), 130);  // 100 + 3 × 10: every hand-off at the release instant
  });
  EXPECT_EQ(log.lines, (std::vector<std::string>{"bulkhead_queued@1+0", "bulkhead_queued@2+0",
                                                 "bulkhead_queued@3+0"}));
  EXPECT_EQ(b.metrics().available, 1u);
}

TEST(Bulkhead, WaitersStartExactlyWhenThePermitIsReleased) {
  weft::runtime rt{paused()};
  wr::bulkhead b{{.max_concurrent = 2, .max_queue = 4, .max_queue_wait = 1s}};
  rt.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    std::vector<long> starts;
    weft::task_group g;
    g.spawn(call(b, 30ms, &starts, t0));
    co_await weft::yield();
    g.spawn(call(b, 50ms, &starts, t0));
    co_await weft::yield();
    g.spawn(call(b, 40ms, &starts, t0));  // gets the permit freed at 30
    co_await weft::yield();
    g.spawn(call(b, 10ms, &starts, t0));  // gets the permit freed at 50
    co_await g.join();
    EXPECT_EQ(starts, (std::vector<long>{0, 0, 30, 50}));
    EXPECT_EQ(ms_since(t0), 70);
  });
}

TEST(Bulkhead, AReleasedPermitGoesToTheWaiterNotToANewcomer) {
  weft::runtime rt{paused()};
  wr::bulkhead b{{.max_concurrent = 1, .max_queue = 1, .max_queue_wait = 1s}};
  rt.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    auto held = b.try_acquire();
    std::vector<long> starts;
    weft::task_group g;
    g.spawn(call(b, 10ms, &starts, t0));
    co_await weft::yield();
    EXPECT_EQ(b.metrics().queued, 1u);
    held.release();
    // Handed over at once: nothing free for anyone else, the waiter holds it.
    const auto m = b.metrics();
    EXPECT_EQ(m.available, 0u);
    EXPECT_EQ(m.inflight, 1u);
    EXPECT_EQ(m.queued, 0u);
    EXPECT_FALSE(b.try_acquire());
    co_await g.join();
    EXPECT_EQ(starts, (std::vector<long>{0}));
    EXPECT_EQ(b.metrics().available, 1u);
  });
}

TEST(Bulkhead, AQueuedCallTimesOutAtTheExactInstantWithoutTakingAPermit) {
  weft::runtime rt{paused()};
  wr::bulkhead b{{.max_concurrent = 1, .max_queue = 2, .max_queue_wait = 50ms}};
  event_log log;
  log.attach(b.observers());
  rt.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    log.t0 = t0;
    std::vector<long> starts;
    weft::task_group g;
    g.spawn(call(b, 200ms, &starts, t0));
    co_await weft::advance(10ms);
    const auto o = co_await call(b, 1ms, &starts, t0);
    EXPECT_EQ(o.error(), wr::errc::bulkhead_full);
    EXPECT_EQ(ms_since(t0), 60);  // queued at 10, max_queue_wait 50
    auto m = b.metrics();
    EXPECT_EQ(m.queued, 0u);
    EXPECT_EQ(m.inflight, 1u);
    co_await g.join();
    EXPECT_EQ(ms_since(t0), 200);
    m = b.metrics();
    EXPECT_EQ(m.available, 1u);  // the holder's permit came back; none leaked
    EXPECT_EQ(m.inflight, 0u);
    EXPECT_EQ(starts, (std::vector<long>{0}));
  });
  EXPECT_EQ(log.lines,
            (std::vector<std::string>{"bulkhead_queued@10+0", "bulkhead_rejected@60+50"}));
}

TEST(Bulkhead, AWaiterStillGetsAPermitReleasedOneTickBeforeItsDeadline) {
  weft::runtime rt{paused()};
  wr::bulkhead b{{.max_concurrent = 1, .max_queue = 1, .max_queue_wait = 50ms}};
  rt.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    std::vector<long> starts;
    weft::task_group g;
    g.spawn(call(b, 50ms - 1ns, &starts, t0));
    co_await weft::yield();
    const auto o = co_await call(b, 10ms, &starts, t0);
    EXPECT_TRUE(o.has_value());
    EXPECT_EQ(weft::clock::now() - t0, 60ms - 1ns);
    co_await g.join();
    EXPECT_EQ(b.metrics().available, 1u);
  });
}

// At the instant a waiter's wait runs out, a permit released by a timer due at the same instant
// reaches it (the result wins a tie, as in the timeout layer), whichever timer was registered
// first; the permit then goes on to the next waiter and none is lost.
TEST(Bulkhead, APermitReleasedAtTheDeadlineInstantIsNeverLost) {
  for (const bool release_first : {true, false}) {
    SCOPED_TRACE(release_first ? "release registered first" : "deadline registered first");
    weft::runtime rt{paused()};
    wr::bulkhead b{{.max_concurrent = 1, .max_queue = 2, .max_queue_wait = 50ms}};
    rt.block_on([&]() -> weft::task<void> {
      const auto t0 = weft::clock::now();
      auto held = b.try_acquire();
      std::vector<long> starts;
      weft::task_group g;
      auto release_at_50 = [&]() -> weft::task<void> {
        co_await weft::sleep_until(t0 + 50ms);
        held.release();
      };
      if (release_first) {
        g.spawn(weft::co_invoke(release_at_50));
        co_await weft::yield();
      }
      auto first = weft::spawn(call(b, 5ms, &starts, t0));  // deadline 50
      co_await weft::yield();
      if (!release_first) {
        g.spawn(weft::co_invoke(release_at_50));
        co_await weft::yield();
      }
      co_await weft::advance(10ms);
      auto second = weft::spawn(call(b, 5ms, &starts, t0));  // deadline 60
      const auto a = co_await std::move(first);
      const auto c = co_await std::move(second);
      co_await g.join();
      EXPECT_TRUE(a.has_value());
      EXPECT_TRUE(c.has_value());
      EXPECT_EQ(starts, (std::vector<long>{50, 55}));
      const auto m = b.metrics();
      EXPECT_EQ(m.available, 1u);
      EXPECT_EQ(m.queued, 0u);
    });
  }
}

TEST(Bulkhead, ACancelledQueuedCallIsCancelledAndTakesNoPermit) {
  for (const bool timed : {true, false}) {
    SCOPED_TRACE(timed ? "timed wait" : "unbounded wait");
    weft::runtime rt{paused()};
    wr::bulkhead b{{.max_concurrent = 1,
                    .max_queue = 2,
                    .max_queue_wait = timed ? 1s : wr::bulkhead_options::unbounded_wait}};
    rt.block_on([&]() -> weft::task<void> {
      const auto t0 = weft::clock::now();
      std::vector<long> starts;
      weft::task_group g;
      g.spawn(call(b, 100ms, &starts, t0));
      co_await weft::yield();
      auto victim = weft::spawn(call(b, 10ms, &starts, t0));
      co_await weft::yield();
      g.spawn(call(b, 10ms, &starts, t0));  // queued behind the victim
      co_await weft::advance(30ms);
      EXPECT_EQ(b.metrics().queued, 2u);
      victim.cancel();
      const auto v = co_await std::move(victim);
      EXPECT_TRUE(v.is_cancelled());  // as an outcome: the operation returns outcomes
      EXPECT_EQ(ms_since(t0), 30);
      EXPECT_EQ(b.metrics().queued, 1u);
      co_await g.join();
      // The permit freed at 100 went to the call behind the victim.
      EXPECT_EQ(starts, (std::vector<long>{0, 100}));
      EXPECT_EQ(b.metrics().available, 1u);
    });
  }
}

TEST(Bulkhead, ACancelledCallReportsCancelledAsAnOutcome) {
  weft::runtime rt{paused()};
  wr::bulkhead b{{.max_concurrent = 1, .max_queue = 1, .max_queue_wait = 1s}};
  rt.block_on([&]() -> weft::task<void> {
    auto held = b.try_acquire();
    const auto t0 = weft::clock::now();
    weft::cancel_source stop;
    wr::resilience_context ctx;
    ctx.token = stop.token();  // not the task's own token: the layer watches it too
    auto op = []() -> weft::task<wr::call_outcome<int>> {
      co_return wr::call_outcome<int>::success(1);
    };
    auto waiting = weft::spawn(weft::co_invoke([&]() -> weft::task<wr::call_outcome<int>> {
      wr::pipeline p{b};
      co_return co_await p.execute(ctx, op);
    }));
    co_await weft::advance(20ms);
    stop.request_cancellation();
    const auto o = co_await std::move(waiting);
    EXPECT_TRUE(o.is_cancelled());
    EXPECT_EQ(ms_since(t0), 20);
    EXPECT_EQ(b.metrics().queued, 0u);
    held.release();
    EXPECT_EQ(b.metrics().available, 1u);
  });
}

TEST(Bulkhead, AContextTokenCancelsAnUnboundedWaitToo) {
  weft::runtime rt{paused()};
  wr::bulkhead b{{.max_concurrent = 1,
                  .max_queue = 1,
                  .max_queue_wait = wr::bulkhead_options::unbounded_wait}};
  rt.block_on([&]() -> weft::task<void> {
    auto held = b.try_acquire();
    const auto t0 = weft::clock::now();
    weft::cancel_source stop;
    wr::resilience_context ctx;
    ctx.token = stop.token();
    auto op = []() -> weft::task<wr::call_outcome<int>> {
      co_return wr::call_outcome<int>::success(1);
    };
    auto waiting = weft::spawn(weft::co_invoke([&]() -> weft::task<wr::call_outcome<int>> {
      wr::pipeline p{b};
      co_return co_await p.execute(ctx, op);
    }));
    co_await weft::advance(2h);  // an unbounded wait does not time out
    EXPECT_EQ(b.metrics().queued, 1u);
    stop.request_cancellation();
    const auto o = co_await std::move(waiting);
    EXPECT_TRUE(o.is_cancelled());
    EXPECT_EQ(weft::clock::now() - t0, 2h);
    EXPECT_EQ(b.metrics().queued, 0u);
  });
}

TEST(Bulkhead, AWaiterCancelledAfterBeingHandedAPermitPassesItOn) {
  // Timed first: were the permit kept, `second` would time out there instead of waiting forever.
  for (const auto wait : {weft::clock::duration{1s}, wr::bulkhead_options::unbounded_wait}) {
    SCOPED_TRACE(wait == 1s ? "timed wait" : "unbounded wait");
    weft::runtime rt{paused()};
    wr::bulkhead b{{.max_concurrent = 1, .max_queue = 2, .max_queue_wait = wait}};
    rt.block_on([&]() -> weft::task<void> {
      const auto t0 = weft::clock::now();
      auto held = b.try_acquire();
      std::vector<long> starts;
      auto first = weft::spawn(call(b, 10ms, &starts, t0));
      co_await weft::yield();
      auto second = weft::spawn(call(b, 10ms, &starts, t0));
      co_await weft::advance(5ms);
      // The permit reaches `first` and, before it runs, its caller cancels: it must not keep the
      // permit (it ends cancelled) and must pass it to `second`.
      held.release();
      first.cancel();
      const auto f = co_await std::move(first);
      EXPECT_TRUE(f.is_cancelled());
      const auto o = co_await std::move(second);
      EXPECT_TRUE(o.has_value());
      EXPECT_EQ(starts, (std::vector<long>{5}));
      EXPECT_EQ(ms_since(t0), 15);
      EXPECT_EQ(b.metrics().available, 1u);
    });
  }
}

TEST(Bulkhead, PermitsComeBackAfterErrorsExceptionsAndCancellation) {
  weft::runtime rt{paused()};
  wr::bulkhead b{{.max_concurrent = 2}};
  rt.block_on([&]() -> weft::task<void> {
    EXPECT_THROW((void)co_await b.execute([]() -> weft::task<int> {
      co_await weft::sleep_for(1ms);
      throw std::runtime_error("boom");
    }),
                 std::runtime_error);
    EXPECT_EQ(b.metrics().available, 2u);
    const auto err = co_await b.execute([]() -> weft::task<wr::call_outcome<int>> {
      co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error));
    });
    EXPECT_EQ(err.error(), std::errc::io_error);
    EXPECT_EQ(b.metrics().available, 2u);
    // A call cancelled while it holds the permit.
    auto running = weft::spawn(weft::co_invoke([&]() -> weft::task<int> {
      co_return co_await b.execute([]() -> weft::task<int> {
        co_await weft::sleep_for(1h);
        co_return 1;
      });
    }));
    co_await weft::advance(1ms);
    EXPECT_EQ(b.metrics().inflight, 1u);
    running.cancel();
    EXPECT_THROW((void)co_await std::move(running), weft::operation_cancelled);
    EXPECT_EQ(b.metrics().available, 2u);
  });
}

TEST(Bulkhead, PermitsAndQueuedCallsAreReleasedWhenTheRuntimeDestroysTheirTasks) {
  wr::bulkhead b{{.max_concurrent = 1, .max_queue = 2, .max_queue_wait = 1h}};
  {
    weft::runtime rt{paused()};
    rt.block_on([&]() -> weft::task<void> {
      auto hold = [&]() -> weft::task<void> {
        (void)co_await b.execute([]() -> weft::task<int> {
          co_await weft::sleep_for(24h);
          co_return 1;
        });
      };
      weft::spawn(weft::co_invoke(hold)).detach();
      weft::spawn(weft::co_invoke(hold)).detach();  // queued
      co_await weft::yield();
      co_await weft::yield();
      const auto m = b.metrics();
      EXPECT_EQ(m.inflight, 1u);
      EXPECT_EQ(m.queued, 1u);
    });
  }  // the runtime destroys both frames
  const auto m = b.metrics();
  EXPECT_EQ(m.available, 1u);
  EXPECT_EQ(m.queued, 0u);
}

TEST(Bulkhead, ReportsInflightAfterEachAdmissionAndRelease) {
  weft::runtime rt{paused()};
  wr::bulkhead b{{.max_concurrent = 2}};
  gauge_sink sink;
  b.observers().set_sink(&sink);
  rt.block_on([&]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    weft::task_group g;
    g.spawn(call(b, 10ms, nullptr, t0));
    g.spawn(call(b, 20ms, nullptr, t0));
    co_await g.join();
  });
  EXPECT_EQ(sink.inflight, (std::vector<int>{1, 2, 1, 0}));
}

TEST(Bulkhead, RejectsBadOptions) {
  EXPECT_THROW(wr::bulkhead({.max_concurrent = 0}), std::invalid_argument);
  EXPECT_THROW(wr::bulkhead({.max_concurrent = 1, .max_queue = 1, .max_queue_wait = -1ms}),
               std::invalid_argument);
  try {
    wr::bulkhead b{{.max_concurrent = 0}};
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("max_concurrent"), std::string::npos) << e.what();
  }
  EXPECT_THROW(wr::bulkhead_family<std::string>({.pool = {}, .idle_ttl = 0s}),
               std::invalid_argument);
  EXPECT_THROW(wr::bulkhead_family<std::string>({.pool = {}, .idle_ttl = 1s, .max_keys = 0}),
               std::invalid_argument);
  EXPECT_THROW(wr::bulkhead_family<std::string>({.pool = {.max_concurrent = 0}}),
               std::invalid_argument);
}

// --- bulkhead_family --------------------------------------------------------------------------

weft::task<wr::call_outcome<int>> keyed_call(
    wr::pipeline<wr::detail::keyed_layer<wr::bulkhead_family<std::string>,
                                         std::string (*)(const wr::resilience_context&)>>& p,
    std::string key, weft::clock::duration d) {
  wr::resilience_context ctx;
  ctx.key = key;
  ctx.token = co_await weft::this_task::cancel_token();
  auto op = [d]() -> weft::task<wr::call_outcome<int>> {
    co_await weft::sleep_for(d);
    co_return wr::call_outcome<int>::success(1);
  };
  co_return co_await p.execute(ctx, op);
}

std::string key_of(const wr::resilience_context& c) {
  return std::string(c.key);
}

TEST(BulkheadFamily, KeepsASeparatePoolPerKey) {
  weft::runtime rt{paused()};
  wr::bulkhead_family<std::string> pools{{.pool = {.max_concurrent = 1}}};
  event_log log;
  log.attach(pools.observers());
  wr::pipeline p{pools.layer(&key_of)};
  rt.block_on([&]() -> weft::task<void> {
    log.t0 = weft::clock::now();
    weft::task_group g;
    g.spawn(keyed_call(p, "billing", 100ms));
    co_await weft::yield();
    const auto same = co_await keyed_call(p, "billing", 1ms);
    EXPECT_EQ(same.error(), wr::errc::bulkhead_full);
    const auto other = co_await keyed_call(p, "search", 1ms);
    EXPECT_TRUE(other.has_value());
    EXPECT_EQ(pools.size(), 2u);
    EXPECT_EQ(pools.get("billing")->metrics().inflight, 1u);
    EXPECT_EQ(pools.get("search")->metrics().inflight, 0u);
    co_await g.join();
  });
  EXPECT_EQ(log.lines, (std::vector<std::string>{"bulkhead_rejected@0+0:billing"}));
}

TEST(BulkheadFamily, EvictsAKeyIdleForExactlyTheTtl) {
  weft::runtime rt{paused()};
  wr::bulkhead_family<std::string> pools{{.pool = {.max_concurrent = 1}, .idle_ttl = 10min}};
  rt.block_on([&]() -> weft::task<void> {
    const std::weak_ptr<wr::bulkhead> first = pools.get("a");
    co_await weft::advance(10min - 1ns);
    (void)pools.get("b");  // a lookup sweeps: "a" is not idle long enough yet
    EXPECT_NE(pools.find("a"), nullptr);
    co_await weft::advance(1ns);
    EXPECT_EQ(pools.evict_idle(), 1u);
    EXPECT_EQ(pools.find("a"), nullptr);
    EXPECT_TRUE(first.expired());
    EXPECT_EQ(pools.size(), 1u);
    EXPECT_NE(pools.get("a").get(), nullptr);  // a fresh bulkhead
  });
}

TEST(BulkheadFamily, TheDefaultIdleTtlIsTenMinutes) {
  const wr::bulkhead_family_options o;
  EXPECT_EQ(o.idle_ttl, std::chrono::minutes{10});
}

TEST(BulkheadFamily, NeverEvictsAPoolWhileACallHoldsIt) {
  weft::runtime rt{paused()};
  wr::bulkhead_family<std::string> pools{{.pool = {.max_concurrent = 1}, .idle_ttl = 1min}};
  wr::pipeline p{pools.layer(&key_of)};
  rt.block_on([&]() -> weft::task<void> {
    auto long_call = weft::spawn(keyed_call(p, "slow", 5min));
    co_await weft::yield();
    const std::weak_ptr<wr::bulkhead> held = pools.find("slow");
    co_await weft::advance(2min);
    EXPECT_EQ(pools.evict_idle(), 0u);  // idle by its last lookup, but in use
    EXPECT_EQ(pools.find("slow"), held.lock());
    const auto again = co_await keyed_call(p, "slow", 1ms);
    EXPECT_EQ(again.error(), wr::errc::bulkhead_full);  // the same pool: still full
    (void)co_await std::move(long_call);
    co_await weft::advance(1min);
    EXPECT_EQ(pools.evict_idle(), 1u);
  });
}

TEST(BulkheadFamily, BoundsTheKeysLeastRecentlyUsedFirst) {
  weft::runtime rt{paused()};
  wr::bulkhead_family<std::string> pools{{.pool = {.max_concurrent = 1}, .max_keys = 2}};
  rt.block_on([&]() -> weft::task<void> {
    (void)pools.get("a");
    co_await weft::advance(1ms);
    (void)pools.get("b");
    co_await weft::advance(1ms);
    (void)pools.get("a");  // "b" is now the least recently used
    co_await weft::advance(1ms);
    (void)pools.get("c");
    EXPECT_EQ(pools.size(), 2u);
    EXPECT_NE(pools.find("a"), nullptr);
    EXPECT_EQ(pools.find("b"), nullptr);
    EXPECT_NE(pools.find("c"), nullptr);
    // One in use is skipped: "a" is held, so "c" goes for "d".
    auto a = pools.get("a");
    (void)pools.get("d");
    EXPECT_NE(pools.find("a"), nullptr);
    EXPECT_EQ(pools.find("c"), nullptr);
    EXPECT_NE(pools.find("d"), nullptr);
  });
}

TEST(BulkheadFamily, RunsAsALayerWithAKeyFromTheContext) {
  weft::runtime rt{paused()};
  wr::bulkhead_family<int> pools{{.pool = {.max_concurrent = 2}}};
  auto layer =
      pools.layer([](const wr::resilience_context& c) { return static_cast<int>(c.key.size()); });
  rt.block_on([&]() -> weft::task<void> {
    const int v = co_await layer.execute([]() -> weft::task<int> { co_return 7; });
    EXPECT_EQ(v, 7);
    EXPECT_EQ(pools.size(), 1u);
    EXPECT_NE(pools.find(0), nullptr);  // execute() without a context: the empty key
  });
}

// --- concurrency --------------------------------------------------------------------------------

// 10,000 calls from many tasks on two workers through two bulkheads (a timed and an unbounded
// queue), a third of them cancelled at a random point: never more than max_concurrent inside, and
// afterwards every permit is back and the queues are empty.
TEST(BulkheadStress, NeverMoreThanMaxConcurrentInsideAndNoPermitLeaks) {
  constexpr std::size_t limit = 4;
  constexpr int tasks = 100, calls_per_task = 100;
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  wr::bulkhead timed{{.max_concurrent = limit, .max_queue = 64, .max_queue_wait = 200us}};
  wr::bulkhead unbounded{{.max_concurrent = limit,
                          .max_queue = 1000,
                          .max_queue_wait = wr::bulkhead_options::unbounded_wait}};
  std::atomic<int> inside_timed{0}, inside_unbounded{0}, worst{0};
  std::atomic<int> ran{0}, full{0}, cancelled{0};
  auto note_worst = [&](int n) {
    int w = worst.load();
    while (n > w && !worst.compare_exchange_weak(w, n)) {
    }
  };
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    for (int t = 0; t < tasks; ++t) {
      group.spawn(weft::co_invoke([&, t]() -> weft::task<void> {
        std::minstd_rand random(static_cast<unsigned>(t) + 1);
        for (int i = 0; i < calls_per_task; ++i) {
          const bool use_timed = (random() & 1) != 0;
          wr::bulkhead& b = use_timed ? timed : unbounded;
          std::atomic<int>& inside = use_timed ? inside_timed : inside_unbounded;
          const int yields = static_cast<int>(random() % 4);
          auto one = [&b, &inside, &note_worst, yields]() -> weft::task<wr::call_outcome<int>> {
            auto op = [&inside, &note_worst, yields]() -> weft::task<wr::call_outcome<int>> {
              note_worst(inside.fetch_add(1) + 1);
              struct leave {
                std::atomic<int>& n;
                ~leave() { n.fetch_sub(1); }  // also when a cancelled yield throws
              } guard{inside};
              for (int y = 0; y < yields; ++y) co_await weft::yield();
              co_return wr::call_outcome<int>::success(1);
            };
            co_return co_await b.execute(op);
          };
          auto h = weft::spawn(weft::co_invoke(one));
          if (random() % 3 == 0) {
            for (unsigned y = random() % 3; y > 0; --y) co_await weft::yield();
            h.cancel();
          }
          try {
            const auto o = co_await std::move(h);
            if (o.has_value()) {
              ran.fetch_add(1);
            } else if (o.is_cancelled()) {
              cancelled.fetch_add(1);
            } else {
              EXPECT_EQ(o.error(), wr::errc::bulkhead_full);
              full.fetch_add(1);
            }
          } catch (const weft::operation_cancelled&) {
            cancelled.fetch_add(1);
          }
        }
      }));
    }
    co_await group.join();
  });
  EXPECT_LE(worst.load(), static_cast<int>(limit));
  EXPECT_EQ(ran.load() + full.load() + cancelled.load(), tasks * calls_per_task);
  EXPECT_GT(ran.load(), 0);
  for (const wr::bulkhead* b : {&timed, &unbounded}) {
    const auto m = b->metrics();
    EXPECT_EQ(m.available, limit);
    EXPECT_EQ(m.inflight, 0u);
    EXPECT_EQ(m.queued, 0u);
  }
}

// Many tasks on two workers share a family with few keys and a tiny max_keys, so lookups, inserts
// and LRU evictions race with calls: pools are never evicted while in use and every call through
// a pool stays within its limit.
TEST(BulkheadStress, AFamilyUnderConcurrentLookupsAndEvictions) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  wr::bulkhead_family<int> pools{{.pool = {.max_concurrent = 2,
                                           .max_queue = 100,
                                           .max_queue_wait = wr::bulkhead_options::unbounded_wait},
                                  .max_keys = 2}};
  std::atomic<int> inside[5] = {};
  std::atomic<bool> over{false};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    for (int t = 0; t < 40; ++t) {
      group.spawn(weft::co_invoke([&, t]() -> weft::task<void> {
        for (int i = 0; i < 100; ++i) {
          const int key = (t + i) % 5;
          auto pool = pools.get(key);
          auto op = [&inside, &over, key]() -> weft::task<int> {
            if (inside[key].fetch_add(1) + 1 > 2) over.store(true);
            co_await weft::yield();
            inside[key].fetch_sub(1);  // nothing here is cancelled
            co_return 1;
          };
          (void)co_await pool->execute(op);
        }
      }));
    }
    co_await group.join();
    (void)pools.get(99);  // nothing is in use now: the bound applies in full
  });
  EXPECT_FALSE(over.load());
  EXPECT_LE(pools.size(), 2u);
}

}  // namespace
