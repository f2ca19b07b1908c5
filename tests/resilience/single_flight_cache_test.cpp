// weft::resilience::single_flight and ttl_cache under paused time (shared flights, cancellation
// by the last waiter, the key unlinked before joiners resume; expiry at the exact instant,
// negative caching, LRU, stale-while-revalidate), and both hammered from two real-time workers.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/single_flight.hpp>
#include <weft/resilience/ttl_cache.hpp>
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

using flights_t = wr::single_flight<std::string, int>;
using cache_t = wr::ttl_cache<std::string, int>;

// The dependency behind the flights: counts calls and logs starts and cancellations.
struct backend {
  weft::clock::time_point t0;
  int calls = 0;
  std::vector<std::string> log;
  std::string at() const { return " @" + std::to_string(ms_since(t0)); }
};

enum class ends { value, fails };

// Sleeps `d`, then returns `value` (or, if it is negative, the call number) or throws.
weft::task<int> fetch(backend& b, std::string key, weft::clock::duration d, int value,
                      ends how = ends::value) {
  const int call = ++b.calls;
  b.log.push_back("start " + key + b.at());
  try {
    co_await weft::sleep_for(d);
  } catch (const weft::operation_cancelled&) {
    b.log.push_back("cancel " + key + b.at());
    throw;
  }
  if (how == ends::fails) throw std::runtime_error("fetch " + key + " failed");
  co_return value < 0 ? call : value;
}

auto op_for(backend& b, const std::string& key, weft::clock::duration d, int value,
            ends how = ends::value) {
  return [&b, key, d, value, how] { return fetch(b, key, d, value, how); };
}

// "<value> @<ms>", "cancelled @<ms>" or "<what> @<ms>"; with " linked" if the key was still in
// the air when the caller resumed.
weft::task<std::string> ask(flights_t& sf, backend& b, std::string key, weft::clock::duration d,
                            int value, ends how = ends::value) {
  std::string r;
  try {
    r = std::to_string(co_await sf.execute(key, op_for(b, key, d, value, how)));
  } catch (const weft::operation_cancelled&) {
    r = "cancelled";
  } catch (const std::exception& e) {
    r = e.what();
  }
  co_return r + b.at() + (sf.in_flight(key) ? " linked" : "");
}

void listen(wr::telemetry& t, std::vector<std::string>& out, const backend& b) {
  t.on_event([&out, &b](const wr::layer_event& e) noexcept {
    out.push_back(std::string(wr::to_string(e.kind)) + " " + std::string(e.key) + " @" +
                  std::to_string(ms_since(b.t0)));
  });
}

class SingleFlight : public ::testing::Test {
 protected:
  weft::runtime rt_{paused()};
  backend b_;
  flights_t sf_;
  std::vector<std::string> events_;
};

TEST_F(SingleFlight, JoinersShareOneCallAndItsValue) {
  listen(sf_.observers(), events_, b_);
  rt_.block_on([](flights_t& sf, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    auto first = weft::spawn(ask(sf, b, "k", 100ms, 1));
    co_await weft::sleep_for(10ms);
    auto second = weft::spawn(ask(sf, b, "k", 5ms, 2));  // joins: its own op never runs
    auto third = weft::spawn(ask(sf, b, "k", 5ms, 3));
    EXPECT_EQ(co_await first, "1 @100");
    EXPECT_EQ(co_await second, "1 @100");
    EXPECT_EQ(co_await third, "1 @100");
    EXPECT_EQ(b.calls, 1);
    // The flight is over: the next caller starts a fresh one.
    EXPECT_EQ(co_await ask(sf, b, "k", 5ms, 4), "4 @105");
    EXPECT_EQ(b.calls, 2);
  }(sf_, b_));
  EXPECT_EQ(events_, (std::vector<std::string>{"flight_joined k @10", "flight_joined k @10"}));
}

TEST_F(SingleFlight, DifferentKeysFlyIndependently) {
  rt_.block_on([](flights_t& sf, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    auto x = weft::spawn(ask(sf, b, "x", 100ms, 1));
    auto y = weft::spawn(ask(sf, b, "y", 50ms, 2));
    EXPECT_EQ(co_await x, "1 @100");
    EXPECT_EQ(co_await y, "2 @50");
    EXPECT_EQ(b.calls, 2);
  }(sf_, b_));
}

TEST_F(SingleFlight, TheKeyIsRemovedBeforeJoinersResume) {
  rt_.block_on([](flights_t& sf, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    auto first = weft::spawn(ask(sf, b, "k", 100ms, 1));
    auto second = weft::spawn(ask(sf, b, "k", 100ms, 1));
    co_await weft::sleep_for(50ms);
    EXPECT_TRUE(sf.in_flight("k"));
    EXPECT_EQ(sf.size(), 1u);
    // Neither the leader nor the joiner finds the key still linked when it resumes.
    EXPECT_EQ(co_await first, "1 @100");
    EXPECT_EQ(co_await second, "1 @100");
    EXPECT_EQ(sf.size(), 0u);
  }(sf_, b_));
}

TEST_F(SingleFlight, EveryJoinerGetsTheSameExceptionPointer) {
  rt_.block_on([](flights_t& sf, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    auto one = [](flights_t& sf, backend& b) -> weft::task<wr::call_outcome<int>> {
      co_return co_await sf.join("k", op_for(b, "k", 10ms, 0, ends::fails));
    };
    auto first = weft::spawn(one(sf, b));
    auto second = weft::spawn(one(sf, b));
    const auto a = co_await first;
    const auto c = co_await second;
    EXPECT_EQ(a.kind(), wr::outcome_kind::exception);
    EXPECT_EQ(a.exception(), c.exception());  // one exception object, not two copies
    EXPECT_EQ(b.calls, 1);
  }(sf_, b_));
}

TEST_F(SingleFlight, EveryJoinerGetsTheSameErrorCode) {
  rt_.block_on([](flights_t& sf, backend& b) -> weft::task<void> {
    auto one = [](flights_t& sf, backend& b) -> weft::task<wr::call_outcome<int>> {
      co_return co_await sf.join("k", [&b]() -> weft::task<wr::call_outcome<int>> {
        ++b.calls;
        co_await weft::sleep_for(10ms);
        co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::connection_reset));
      });
    };
    auto first = weft::spawn(one(sf, b));
    auto second = weft::spawn(one(sf, b));
    EXPECT_EQ((co_await first).error(), std::errc::connection_reset);
    EXPECT_EQ((co_await second).error(), std::errc::connection_reset);
    EXPECT_EQ(b.calls, 1);
  }(sf_, b_));
}

TEST_F(SingleFlight, SharedModeHandsEveryJoinerTheOneValue) {
  wr::single_flight<std::string, std::string> sf;
  rt_.block_on([](wr::single_flight<std::string, std::string>& sf) -> weft::task<void> {
    auto one = [](wr::single_flight<std::string, std::string>& sf)
        -> weft::task<std::shared_ptr<const std::string>> {
      co_return co_await sf.execute_shared("k", []() -> weft::task<std::string> {
        co_await weft::sleep_for(10ms);
        co_return std::string(1000, 'x');
      });
    };
    auto first = weft::spawn(one(sf));
    auto second = weft::spawn(one(sf));
    const auto a = co_await first;
    const auto c = co_await second;
    EXPECT_EQ(a.get(), c.get());  // the same object, not copies
    EXPECT_EQ(a->size(), 1000u);
  }(sf));
}

TEST_F(SingleFlight, OnlyTheLastWaiterCancellingStopsTheOperationAndUnlinksItAtOnce) {
  rt_.block_on([](flights_t& sf, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    weft::cancel_source stop_first, stop_second;
    auto first = weft::spawn(weft::with_cancellation(stop_first.token(), ask(sf, b, "k", 1s, 1)));
    auto second = weft::spawn(weft::with_cancellation(stop_second.token(), ask(sf, b, "k", 1s, 1)));
    co_await weft::sleep_for(100ms);
    stop_first.request_cancellation();
    EXPECT_TRUE(sf.in_flight("k"));  // one waiter is left
    co_await weft::sleep_for(100ms);
    stop_second.request_cancellation();
    EXPECT_FALSE(sf.in_flight("k"));  // the last waiter left: unlinked as it cancelled
    EXPECT_EQ(co_await first, "cancelled @100 linked");
    EXPECT_EQ(co_await second, "cancelled @200");
    co_await weft::sleep_for(1ms);  // the operation has seen its cancellation
    EXPECT_EQ(b.log, (std::vector<std::string>{"start k @0", "cancel k @200"}));
    EXPECT_EQ(b.calls, 1);
  }(sf_, b_));
}

TEST_F(SingleFlight, APartialCancelLeavesTheOperationRunningForTheOthers) {
  rt_.block_on([](flights_t& sf, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    weft::cancel_source stop_first;
    auto first = weft::spawn(weft::with_cancellation(stop_first.token(), ask(sf, b, "k", 1s, 7)));
    auto second = weft::spawn(ask(sf, b, "k", 1s, 7));
    co_await weft::sleep_for(100ms);
    stop_first.request_cancellation();
    EXPECT_EQ(co_await first, "cancelled @100 linked");
    EXPECT_EQ(co_await second, "7 @1000");
    EXPECT_EQ(b.log, (std::vector<std::string>{"start k @0"}));
  }(sf_, b_));
}

TEST_F(SingleFlight, ACallerAfterTheLastCancelStartsAFreshFlight) {
  rt_.block_on([](flights_t& sf, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    weft::cancel_source stop;
    auto first = weft::spawn(weft::with_cancellation(stop.token(), ask(sf, b, "k", 1s, 1)));
    co_await weft::sleep_for(100ms);
    stop.request_cancellation();
    // At once, before the old operation has even seen its cancellation.
    auto second = weft::spawn(ask(sf, b, "k", 50ms, 2));
    EXPECT_FALSE(sf.in_flight("k") && b.calls == 1);
    EXPECT_EQ((co_await first).substr(0, 14), "cancelled @100");
    EXPECT_EQ(co_await second, "2 @150");
    EXPECT_EQ(b.calls, 2);
    EXPECT_EQ(b.log.size(), 3u);
    EXPECT_NE(std::find(b.log.begin(), b.log.end(), "cancel k @100"), b.log.end());
  }(sf_, b_));
}

// As a layer: a pipeline call with a context key.
template <class P>
weft::task<std::string> ask_layer(P& pipe, backend& b, std::string key, weft::clock::duration d,
                                  int value) {
  wr::resilience_context ctx;
  ctx.key = key;
  ctx.token = co_await weft::this_task::cancel_token();
  std::string r;
  try {
    r = std::to_string(co_await pipe.execute(ctx, op_for(b, key, d, value)));
  } catch (const weft::operation_cancelled&) {
    r = "cancelled";
  }
  co_return r + b.at();
}

TEST_F(SingleFlight, AsALayerCallsWithTheSameContextKeyShareOneRun) {
  listen(sf_.observers(), events_, b_);
  wr::pipeline pipe{sf_};
  rt_.block_on([](auto& pipe, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    auto first = weft::spawn(ask_layer(pipe, b, "user:1", 100ms, 1));
    auto second = weft::spawn(ask_layer(pipe, b, "user:1", 100ms, 2));
    auto other = weft::spawn(ask_layer(pipe, b, "user:2", 30ms, 3));
    EXPECT_EQ(co_await first, "1 @100");
    EXPECT_EQ(co_await second, "1 @100");
    EXPECT_EQ(co_await other, "3 @30");
    EXPECT_EQ(b.calls, 2);
  }(pipe, b_));
  EXPECT_EQ(events_, (std::vector<std::string>{"flight_joined user:1 @0"}));
}

TEST_F(SingleFlight, AsALayerACancelledLeaderWaitsForTheRunItHostsWhenOthersStillWait) {
  wr::pipeline pipe{sf_};
  rt_.block_on([](auto& pipe, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    weft::cancel_source stop_leader;
    auto leader =
        weft::spawn(weft::with_cancellation(stop_leader.token(), ask_layer(pipe, b, "k", 1s, 1)));
    co_await weft::yield();  // the leader starts the flight
    auto joiner = weft::spawn(ask_layer(pipe, b, "k", 1s, 2));
    co_await weft::sleep_for(100ms);
    stop_leader.request_cancellation();
    // The inner layers live in the leader's frame: it returns only once the run has finished.
    EXPECT_EQ(co_await leader, "cancelled @1000");
    EXPECT_EQ(co_await joiner, "1 @1000");
    EXPECT_EQ(b.log, (std::vector<std::string>{"start k @0"}));
  }(pipe, b_));
}

TEST_F(SingleFlight, AsALayerALeaderCancelledAloneStopsTheRunAtOnce) {
  wr::pipeline pipe{sf_};
  rt_.block_on([](auto& pipe, flights_t& sf, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    weft::cancel_source stop;
    auto leader =
        weft::spawn(weft::with_cancellation(stop.token(), ask_layer(pipe, b, "k", 1s, 1)));
    co_await weft::sleep_for(100ms);
    stop.request_cancellation();
    EXPECT_FALSE(sf.in_flight("k"));
    EXPECT_EQ(co_await leader, "cancelled @100");
    EXPECT_EQ(b.log, (std::vector<std::string>{"start k @0", "cancel k @100"}));
  }(pipe, sf_, b_));
}

// ---------------------------------------------------------------------------------------------
// ttl_cache

weft::task<std::string> get(cache_t& c, backend& b, std::string key, weft::clock::duration d,
                            int value = -1, ends how = ends::value) {
  std::string r;
  try {
    r = std::to_string(co_await c.get(key, op_for(b, key, d, value, how)));
  } catch (const weft::operation_cancelled&) {
    r = "cancelled";
  } catch (const std::exception& e) {
    r = e.what();
  }
  co_return r + b.at();
}

class TtlCache : public ::testing::Test {
 protected:
  weft::runtime rt_{paused()};
  backend b_;
  std::vector<std::string> events_;
};

TEST_F(TtlCache, AnEntryExpiresExactlyAtStoredAtPlusTtl) {
  cache_t cache{{.ttl = 100ms}};
  listen(cache.observers(), events_, b_);
  rt_.block_on([](cache_t& c, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    EXPECT_EQ(co_await get(c, b, "k", 10ms), "1 @10");  // stored at 10: valid until 110
    co_await weft::sleep_until(b.t0 + 109ms);
    EXPECT_TRUE(c.contains("k"));
    EXPECT_EQ(co_await get(c, b, "k", 10ms), "1 @109");
    co_await weft::sleep_until(b.t0 + 110ms);
    EXPECT_FALSE(c.contains("k"));  // now == stored_at + ttl: expired
    EXPECT_EQ(co_await get(c, b, "k", 10ms), "2 @120");
    EXPECT_EQ(b.calls, 2);
  }(cache, b_));
  EXPECT_EQ(events_,
            (std::vector<std::string>{"cache_miss k @0", "cache_hit k @109", "cache_miss k @110"}));
}

TEST_F(TtlCache, ErrorsAreNotCached) {
  cache_t cache{{.ttl = 100ms}};
  rt_.block_on([](cache_t& c, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    EXPECT_EQ(co_await get(c, b, "k", 10ms, 0, ends::fails), "fetch k failed @10");
    EXPECT_EQ(c.size(), 0u);
    EXPECT_EQ(co_await get(c, b, "k", 10ms, 5), "5 @20");
    EXPECT_EQ(b.calls, 2);
  }(cache, b_));
}

TEST_F(TtlCache, NegativeTtlCachesAFailureForItsOwnTime) {
  cache_t cache{{.ttl = 100ms, .negative_ttl = 50ms}};
  rt_.block_on([](cache_t& c, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    auto first = co_await c.get_outcome("k", op_for(b, "k", 10ms, 0, ends::fails));
    co_await weft::sleep_until(b.t0 + 59ms);
    auto again = co_await c.get_outcome("k", op_for(b, "k", 10ms, 0, ends::fails));
    EXPECT_EQ(again.exception(), first.exception());  // the cached failure itself
    EXPECT_EQ(b.calls, 1);
    co_await weft::sleep_until(b.t0 + 60ms);  // stored at 10 + 50
    EXPECT_EQ(co_await get(c, b, "k", 10ms, 9), "9 @70");
    EXPECT_EQ(b.calls, 2);
  }(cache, b_));
}

TEST_F(TtlCache, RejectionsAndCancellationAreNeverCached) {
  cache_t cache{{.ttl = 100ms, .negative_ttl = 50ms}};
  rt_.block_on([](cache_t& c, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    auto rejecting = [&b]() -> weft::task<wr::call_outcome<int>> {
      ++b.calls;
      co_return wr::call_outcome<int>::failure(wr::errc::bulkhead_full);
    };
    EXPECT_EQ((co_await c.get("k", rejecting)).error(), wr::errc::bulkhead_full);
    EXPECT_EQ(c.size(), 0u);

    weft::cancel_source stop;
    auto cancelled = weft::spawn(weft::with_cancellation(stop.token(), get(c, b, "k", 1s)));
    co_await weft::sleep_for(10ms);
    stop.request_cancellation();
    EXPECT_EQ(co_await cancelled, "cancelled @10");
    co_await weft::sleep_for(1ms);  // the abandoned flight has finished
    EXPECT_EQ(c.size(), 0u);
    EXPECT_EQ(b.calls, 2);
  }(cache, b_));
}

TEST_F(TtlCache, TheLeastRecentlyUsedEntryIsEvictedAtCapacity) {
  cache_t cache{{.ttl = 1h, .capacity = 2}};
  rt_.block_on([](cache_t& c, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    EXPECT_EQ(co_await get(c, b, "a", 1ms), "1 @1");
    EXPECT_EQ(co_await get(c, b, "b", 1ms), "2 @2");
    EXPECT_EQ(co_await get(c, b, "a", 1ms), "1 @2");  // a hit: a is now the most recent
    EXPECT_EQ(co_await get(c, b, "c", 1ms), "3 @3");  // evicts b
    EXPECT_EQ(c.size(), 2u);
    EXPECT_TRUE(c.contains("a"));
    EXPECT_FALSE(c.contains("b"));
    EXPECT_TRUE(c.contains("c"));
    EXPECT_EQ(co_await get(c, b, "b", 1ms), "4 @4");  // evicts a (c was used after a)
    EXPECT_FALSE(c.contains("a"));
    EXPECT_EQ(b.calls, 4);
  }(cache, b_));
}

TEST_F(TtlCache, ConcurrentMissesGoThroughOneFlight) {
  cache_t cache{{.ttl = 1s}};
  std::vector<std::string> joined;
  listen(cache.observers(), events_, b_);
  listen(cache.flights().observers(), joined, b_);
  rt_.block_on([](cache_t& c, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    auto first = weft::spawn(get(c, b, "k", 100ms));
    auto second = weft::spawn(get(c, b, "k", 100ms));
    auto third = weft::spawn(get(c, b, "k", 100ms));
    EXPECT_EQ(co_await first, "1 @100");
    EXPECT_EQ(co_await second, "1 @100");
    EXPECT_EQ(co_await third, "1 @100");
    EXPECT_EQ(b.calls, 1);
    EXPECT_EQ(co_await get(c, b, "k", 100ms), "1 @100");  // stored before the joiners resumed
  }(cache, b_));
  EXPECT_EQ(events_, (std::vector<std::string>{"cache_miss k @0", "cache_miss k @0",
                                               "cache_miss k @0", "cache_hit k @100"}));
  EXPECT_EQ(joined, (std::vector<std::string>{"flight_joined k @0", "flight_joined k @0"}));
}

TEST_F(TtlCache, GetSharedHandsOutTheCachedValueItself) {
  wr::ttl_cache<int, std::string> cache{{.ttl = 1s}};
  rt_.block_on([](wr::ttl_cache<int, std::string>& c) -> weft::task<void> {
    auto load = []() -> weft::task<std::string> { co_return std::string(100, 'v'); };
    const auto a = co_await c.get_shared(7, load);
    const auto b = co_await c.get_shared(7, load);
    EXPECT_EQ(a.get(), b.get());
    EXPECT_EQ(*a, std::string(100, 'v'));
  }(cache));
}

TEST_F(TtlCache, StaleWhileRevalidateServesStaleAndRefreshesOnceInTheBackground) {
  cache_t cache{{.ttl = 100ms, .stale_while_revalidate = 50ms}};
  listen(cache.observers(), events_, b_);
  rt_.block_on([](cache_t& c, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    EXPECT_EQ(co_await get(c, b, "k", 10ms), "1 @10");  // fresh until 110, stale until 160
    co_await weft::sleep_until(b.t0 + 110ms);
    EXPECT_EQ(co_await get(c, b, "k", 10ms), "1 @110");  // stale, at once; refresh started
    EXPECT_EQ(co_await get(c, b, "k", 10ms), "1 @110");  // stale; no second refresh
    co_await weft::sleep_until(b.t0 + 121ms);            // the refresh stored 2 at 120
    EXPECT_EQ(co_await get(c, b, "k", 10ms), "2 @121");
    EXPECT_EQ(b.calls, 2);
    co_await weft::sleep_until(b.t0 + 270ms);  // 120 + 100 + 50: past the window
    EXPECT_EQ(co_await get(c, b, "k", 10ms), "3 @280");
  }(cache, b_));
  EXPECT_EQ(events_, (std::vector<std::string>{"cache_miss k @0", "cache_stale_hit k @110",
                                               "cache_stale_hit k @110", "cache_hit k @121",
                                               "cache_miss k @270"}));
}

TEST_F(TtlCache, AFailedRefreshKeepsTheStaleEntryAndTheNextStaleHitTriesAgain) {
  cache_t cache{{.ttl = 100ms, .stale_while_revalidate = 100ms}};
  rt_.block_on([](cache_t& c, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    EXPECT_EQ(co_await get(c, b, "k", 10ms, 1), "1 @10");
    co_await weft::sleep_until(b.t0 + 110ms);
    EXPECT_EQ(co_await get(c, b, "k", 10ms, 0, ends::fails), "1 @110");
    co_await weft::sleep_until(b.t0 + 130ms);  // the refresh failed at 120
    EXPECT_EQ(co_await get(c, b, "k", 10ms, 2), "1 @130");
    co_await weft::sleep_until(b.t0 + 141ms);  // the second refresh stored 2 at 140
    EXPECT_EQ(co_await get(c, b, "k", 10ms, 3), "2 @141");
    EXPECT_EQ(b.calls, 3);
  }(cache, b_));
}

TEST_F(TtlCache, AsALayerTheFirstStaleCallerRefreshesWhileOthersAreServedStale) {
  cache_t cache{{.ttl = 100ms, .stale_while_revalidate = 50ms}};
  wr::pipeline pipe{cache};
  rt_.block_on([](auto& pipe, backend& b) -> weft::task<void> {
    b.t0 = weft::clock::now();
    EXPECT_EQ(co_await ask_layer(pipe, b, "k", 10ms, 1), "1 @10");
    co_await weft::sleep_until(b.t0 + 110ms);
    auto refresher = weft::spawn(ask_layer(pipe, b, "k", 10ms, 2));
    co_await weft::yield();  // the refresher finds the entry stale first
    EXPECT_EQ(co_await ask_layer(pipe, b, "k", 10ms, 3), "1 @110");  // served stale meanwhile
    EXPECT_EQ(co_await refresher, "2 @120");
    EXPECT_EQ(co_await ask_layer(pipe, b, "k", 10ms, 4), "2 @120");
    EXPECT_EQ(b.calls, 2);
  }(pipe, b_));
}

TEST_F(TtlCache, AsALayerTheKeyComesFromKeyOf) {
  cache_t cache{{.ttl = 1s, .key_of = [](const wr::resilience_context& ctx) {
                   return "tenant:" + std::to_string(ctx.attempt);
                 }}};
  wr::pipeline pipe{cache};
  rt_.block_on([](auto& pipe, cache_t& c, backend& b) -> weft::task<void> {
    EXPECT_EQ(co_await pipe.execute(op_for(b, "x", 1ms, 5)), 5);
    EXPECT_EQ(co_await pipe.execute(op_for(b, "y", 1ms, 6)), 5);  // same key: attempt 1
    EXPECT_TRUE(c.contains("tenant:1"));
    EXPECT_EQ(b.calls, 1);
  }(pipe, cache, b_));
}

TEST(TtlCacheOptions, BadOptionsThrowNamingTheOption) {
  auto message = [](wr::ttl_cache_options<std::string> o) -> std::string {
    try {
      cache_t c{std::move(o)};
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no throw";
  };
  EXPECT_NE(message({}).find("ttl"), std::string::npos);
  EXPECT_NE(message({.ttl = 1s, .capacity = 0}).find("capacity"), std::string::npos);
  EXPECT_NE(message({.ttl = 1s, .negative_ttl = 0s}).find("negative_ttl"), std::string::npos);
  EXPECT_NE(message({.ttl = 1s, .stale_while_revalidate = -1s}).find("stale_while_revalidate"),
            std::string::npos);
  EXPECT_EQ(message({.ttl = 1s}), "no throw");
}

// ---------------------------------------------------------------------------------------------
// Two real-time workers: many callers on few keys, some cancelled.

weft::task<int> slow_square(std::atomic<int>& calls, int k) {
  calls.fetch_add(1, std::memory_order_relaxed);
  co_await weft::yield();
  co_await weft::sleep_for(std::chrono::microseconds{50 + 10 * k});
  co_return k* k;
}

weft::task<void> hammer_flights(wr::single_flight<int, int>& sf, std::atomic<int>& calls,
                                std::atomic<int>& ok, std::atomic<int>& cancelled, int i) {
  const int k = i % 8;
  auto op = [&calls, k] { return slow_square(calls, k); };
  if (i % 5 == 0) {
    // Cancel this caller soon: it must leave cleanly whether or not others wait.
    weft::cancel_source stop;
    auto t = weft::spawn(weft::with_cancellation(stop.token(), sf.join(k, op)));
    co_await weft::yield();
    stop.request_cancellation();
    try {
      auto o = co_await t;
      if (o.is_cancelled()) {
        cancelled.fetch_add(1, std::memory_order_relaxed);
      } else if (o.has_value() && o.value() == k * k) {
        ok.fetch_add(1, std::memory_order_relaxed);
      }
    } catch (const weft::operation_cancelled&) {  // cancelled before the join even started
      cancelled.fetch_add(1, std::memory_order_relaxed);
    }
    co_return;
  }
  const int v = co_await sf.execute(k, op);
  if (v == k * k) ok.fetch_add(1, std::memory_order_relaxed);
}

TEST(SingleFlightConcurrency, TwoWorkersManyCallersCountsAddUp) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  wr::single_flight<int, int> sf;
  std::atomic<int> calls{0}, ok{0}, cancelled{0};
  constexpr int n = 4000;
  rt.block_on([](wr::single_flight<int, int>& sf, std::atomic<int>& calls, std::atomic<int>& ok,
                 std::atomic<int>& cancelled) -> weft::task<void> {
    std::vector<weft::join_handle<void>> all;
    all.reserve(n);
    for (int i = 0; i < n; ++i)
      all.push_back(weft::spawn(hammer_flights(sf, calls, ok, cancelled, i)));
    for (auto& h : all) co_await h;
  }(sf, calls, ok, cancelled));
  EXPECT_EQ(ok.load() + cancelled.load(), n);
  EXPECT_GE(ok.load(), n - n / 5);  // only the callers asked to cancel may have been
  EXPECT_LE(calls.load(), n);
  EXPECT_GE(calls.load(), 8);
  EXPECT_EQ(sf.size(), 0u);  // nothing left linked
}

weft::task<void> hammer_cache(cache_t& c, std::atomic<int>& calls, std::atomic<int>& ok, int i) {
  const int k = i % 16;
  const int v = co_await c.get(std::to_string(k), [&calls, k] { return slow_square(calls, k); });
  if (v == k * k) ok.fetch_add(1, std::memory_order_relaxed);
}

TEST(TtlCacheConcurrency, TwoWorkersRunOneCallPerKey) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  cache_t cache{{.ttl = 1h, .capacity = 64}};
  std::atomic<int> calls{0}, ok{0};
  constexpr int n = 4000;
  rt.block_on([](cache_t& c, std::atomic<int>& calls, std::atomic<int>& ok) -> weft::task<void> {
    std::vector<weft::join_handle<void>> all;
    all.reserve(n);
    for (int i = 0; i < n; ++i) all.push_back(weft::spawn(hammer_cache(c, calls, ok, i)));
    for (auto& h : all) co_await h;
  }(cache, calls, ok));
  EXPECT_EQ(ok.load(), n);
  EXPECT_EQ(calls.load(), 16);  // single-flight plus the re-check inside the flight
  EXPECT_EQ(cache.size(), 16u);
  EXPECT_EQ(cache.flights().size(), 0u);
}

}  // namespace
