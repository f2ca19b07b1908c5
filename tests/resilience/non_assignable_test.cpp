// Results that can be moved but not assigned (a const member, a reference member) go through every
// layer: outcomes are constructed in place, never assigned.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <type_traits>

#include <weft/resilience/adaptive_limit.hpp>
#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/fallback.hpp>
#include <weft/resilience/hedge.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/rate_limiter.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/single_flight.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/resilience/ttl_cache.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>

#include "support/paused_time.hpp"

namespace {

using namespace std::chrono_literals;
namespace wr = weft::resilience;
using weft::testing::paused;

// Move-constructible, copy-constructible, not assignable.
struct pinned {
  const int value;
  const std::string label;
};
static_assert(std::is_move_constructible_v<pinned>);
static_assert(!std::is_move_assignable_v<pinned>);
static_assert(!std::is_copy_assignable_v<pinned>);

weft::task<pinned> make(int v) {
  co_await weft::sleep_for(1ms);
  co_return pinned{v, "p"};
}

TEST(NonAssignableResults, PassThroughEveryLayerAlone) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::time_limiter timeout{1s};
    EXPECT_EQ((co_await timeout.execute([] { return make(1); })).value, 1);
    wr::retry retry;
    EXPECT_EQ((co_await retry.execute([] { return make(2); })).value, 2);
    wr::circuit_breaker breaker;
    EXPECT_EQ((co_await breaker.execute([] { return make(3); })).value, 3);
    wr::bulkhead bulkhead;
    EXPECT_EQ((co_await bulkhead.execute([] { return make(4); })).value, 4);
    wr::rate_limiter limiter{10, 10, 1s};
    EXPECT_EQ((co_await limiter.execute([] { return make(5); })).value, 5);
    wr::fallback fallback{[](const wr::call_outcome<pinned>&) { return pinned{-1, "fallback"}; }};
    EXPECT_EQ((co_await fallback.execute([] { return make(6); })).value, 6);
    EXPECT_EQ((co_await fallback.execute([]() -> weft::task<pinned> {
                throw std::runtime_error("down");
              })).label,
              "fallback");
    wr::hedge hedge{wr::hedge_options{.delay = 100ms}};
    EXPECT_EQ((co_await hedge.execute(wr::idempotent([] { return make(7); }))).value, 7);
    wr::adaptive_limit adaptive;
    EXPECT_EQ((co_await adaptive.execute([] { return make(8); })).value, 8);
  });
}

TEST(NonAssignableResults, PassThroughAPipelineSingleFlightAndTheCache) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::pipeline pipe{wr::time_limiter{1s}, wr::retry{}, wr::circuit_breaker{}, wr::bulkhead{}};
    EXPECT_EQ((co_await pipe.execute([] { return make(9); })).value, 9);
    wr::single_flight<int, pinned> flights;
    EXPECT_EQ((co_await flights.execute(1, [] { return make(10); })).value, 10);
    wr::ttl_cache<int, pinned> cache{wr::ttl_cache_options<int>{.ttl = 1s}};
    EXPECT_EQ((co_await cache.get(1, [] { return make(11); })).value, 11);
    EXPECT_EQ((co_await cache.get(1, [] { return make(12); })).value, 11);  // cached
  });
}

}  // namespace
