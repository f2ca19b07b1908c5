// How resilience_bench builds each layer (defaults, except where a default would fail the
// success path): kept apart so the benchmark loop stays the same for every layer.
#pragma once

#include <memory>

#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/fallback.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/task.hpp>

namespace weft::bench {

inline auto make_retry() { return std::make_unique<resilience::retry>(); }
inline auto make_breaker() { return std::make_unique<resilience::circuit_breaker>(); }
/// Slow-call detection off: no clock reads.
inline auto make_breaker_untimed() {
  resilience::circuit_breaker_options o;
  o.slow_call_duration = clock::duration::max();
  return std::make_unique<resilience::circuit_breaker>(o);
}
inline auto make_fallback() {
  auto f = [](const resilience::outcome<int>&) -> task<int> { co_return 0; };
  return std::make_unique<resilience::fallback<decltype(f)>>(f);
}

}  // namespace weft::bench

#define WEFT_RESILIENCE_MORE_LAYER_BENCHES
