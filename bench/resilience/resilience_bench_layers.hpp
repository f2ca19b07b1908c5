// How resilience_bench builds each layer (defaults, except where a default would fail the
// success path): kept apart so the benchmark loop stays the same for every layer.
#pragma once

#include <memory>

#include <weft/resilience/adaptive_limit.hpp>
#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/fallback.hpp>
#include <weft/resilience/rate_limiter.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/task.hpp>

namespace weft::bench {

inline auto make_retry() {
  return std::make_unique<resilience::retry>();
}
inline auto make_breaker() {
  return std::make_unique<resilience::circuit_breaker>();
}
/// Slow-call detection off: no clock reads.
inline auto make_breaker_untimed() {
  resilience::circuit_breaker_options o;
  o.slow_call_duration = clock::duration::max();
  return std::make_unique<resilience::circuit_breaker>(o);
}
inline auto make_fallback() {
  auto f = [](const resilience::call_outcome<int>&) -> task<int> { co_return 0; };
  return std::make_unique<resilience::fallback<decltype(f)>>(f);
}

inline auto make_bulkhead() {
  return std::make_unique<resilience::bulkhead>();
}
/// A bucket that never runs dry during a benchmark (a refill every microsecond).
inline auto make_rate_limiter() {
  return std::make_unique<resilience::rate_limiter>(
      resilience::token_bucket{.capacity = 1'000'000,
                               .tokens_per_period = 1'000'000,
                               .period = std::chrono::microseconds{1}});
}
inline auto make_timeout() {
  return std::make_unique<resilience::time_limiter>(std::chrono::seconds{10});
}
inline auto make_adaptive_limit() {
  return std::make_unique<resilience::adaptive_limit>();
}

}  // namespace weft::bench

#define WEFT_RESILIENCE_MORE_LAYER_BENCHES                         \
  WEFT_LAYER_BENCH(bulkhead, weft::bench::make_bulkhead())         \
  WEFT_LAYER_BENCH(rate_limiter, weft::bench::make_rate_limiter()) \
  WEFT_LAYER_BENCH(timeout, weft::bench::make_timeout())           \
  WEFT_LAYER_BENCH(adaptive_limit, weft::bench::make_adaptive_limit())
