// `using namespace weft; using namespace weft::resilience;` compiles and every name means one
// thing: the runtime's combinator is weft::timeout and the resilience layer is time_limiter; the
// runtime's result is weft::outcome and a resilience call's is call_outcome; the sync event is
// weft::event and a layer's telemetry record is layer_event (docs/resilience.md, "Names").
#include <chrono>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "../support/paused_time.hpp"

#include <weft/resilience/adaptive_limit.hpp>
#include <weft/resilience/any_pipeline.hpp>
#include <weft/resilience/backoff.hpp>
#include <weft/resilience/breaker_family.hpp>
#include <weft/resilience/budget.hpp>
#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/bulkhead_family.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/classify.hpp>
#include <weft/resilience/client_throttle.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/error.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/fallback.hpp>
#include <weft/resilience/grpc_throttle.hpp>
#include <weft/resilience/hedge.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/rate_limiter.hpp>
#include <weft/resilience/rate_limiter_family.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/retry_budget.hpp>
#include <weft/resilience/rng.hpp>
#include <weft/resilience/single_flight.hpp>
#include <weft/resilience/standard_pipeline.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/resilience/ttl_cache.hpp>
#include <weft/weft.hpp>

using namespace weft;
using namespace weft::resilience;
using namespace std::chrono_literals;

namespace {

task<int> slow(int v, std::chrono::milliseconds d) {
  co_await sleep_for(d);
  co_return v;
}

TEST(Namespaces, BothUsingDirectivesLeaveEveryNameUnambiguous) {
  static_assert(!std::is_same_v<outcome<int>, call_outcome<int>>);
  static_assert(!std::is_same_v<event, layer_event>);
  runtime rt{weft::testing::paused()};
  rt.block_on([]() -> task<void> {
    // The combinator: weft::timeout.
    EXPECT_THROW(co_await timeout(10ms, slow(1, 1s)), timed_out);
    EXPECT_EQ(co_await timeout(1s, slow(2, 10ms)), 2);

    // The layer: time_limiter, in a pipeline with a retry, reporting layer_events.
    time_limiter limit{50ms};
    std::vector<event_kind> seen;
    limit.observers().on_event([&seen](const layer_event& e) noexcept { seen.push_back(e.kind); });
    pipeline pipe{retry{retry_options{.max_attempts = 2}}, limit};  // each attempt limited
    call_outcome<int> o = co_await pipe.execute([]() -> task<call_outcome<int>> {
      co_return call_outcome<int>::success(co_await slow(3, 1s));
    });
    EXPECT_EQ(o.kind(), outcome_kind::error);
    EXPECT_EQ(o.error(), make_error_code(errc::timeout));
    EXPECT_EQ(seen.size(), 2u);  // each attempt timed out

    // The runtime's outcome, from when_all_settled; the sync event.
    event ready;
    ready.set();
    auto [a, b] = co_await when_all_settled(slow(4, 1ms), ready.wait());
    EXPECT_EQ(a.value(), 4);
    EXPECT_TRUE(b.has_value());
  }());
}

}  // namespace
