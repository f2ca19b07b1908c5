// The two ready-made pipelines of docs/resilience-rules.md: standard (rate limiter, total timeout,
// retry with a budget, breaker, attempt timeout) and hedged (total timeout, hedge, bulkhead,
// breaker, attempt timeout), with Microsoft.Extensions.Http.Resilience's timeouts.
//
// Thread safety: each factory returns a pipeline that owns its layers and its retry budget; it
// serves calls from any worker at once, as any pipeline does (pipeline.hpp). Move it before its
// first call, not during one.
//
// Cancellation: as its layers: a cancelled caller stops the call wherever it waits (a retry's
// sleep; an attempt, which its time_limiter cancels and awaits; a hedge's attempts, all awaited;
// the bulkhead's queue, left without a permit), and the breaker records the cancelled attempt as
// ignored. The rate limiter waits only if rate_options.max_wait is set. Nothing is left running.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/hedge.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/rate_limiter.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/retry_budget.hpp>
#include <weft/resilience/time_limiter.hpp>

namespace weft::resilience {

/// A layer that owns the shared allowance (budget or throttle) its retry or hedge draws from, so a
/// ready-made pipeline is self-contained. Share the gate between pipelines by building the layers
/// yourself instead.
/// `Layer` is the layer itself or a shared_ptr to it.
template <class Layer>
class gated {
  using held = typename detail::slot_layer<Layer>::type;

 public:
  gated(std::shared_ptr<retry_gate> gate, Layer layer) noexcept
      : gate_(std::move(gate)), layer_(std::move(layer)) {}

  template <class R, class Next>
  auto run(resilience_context& ctx, Next next) {
    return get().template run<R>(ctx, std::move(next));
  }
  static constexpr bool requires_idempotent = detail::layer_requires_idempotent<held>;

  [[nodiscard]] held& layer() noexcept { return get(); }
  [[nodiscard]] retry_gate* gate() const noexcept { return gate_.get(); }

 private:
  held& get() noexcept {
    if constexpr (std::is_same_v<held, Layer>) {
      return layer_;
    } else {
      return *layer_;
    }
  }
  std::shared_ptr<retry_gate> gate_;
  Layer layer_;
};

/// pipeline<>::standard()'s settings; every default is in docs/resilience-rules.md.
struct standard_pipeline_options {
  /// The outermost layer: 1,000 calls a second, bursts of 1,000, no waiting for a token.
  rate_limit rate =
      token_bucket{.capacity = 1000, .tokens_per_period = 1000, .period = std::chrono::seconds{1}};
  rate_limiter_options rate_options = {};
  /// The whole call, retries and their sleeps included.
  clock::duration total_timeout = std::chrono::seconds{30};
  retry_options retry = {};
  /// The retry budget (Tower's defaults); nullopt retries without one.
  std::optional<retry_budget_options> budget = retry_budget_options{};
  circuit_breaker_options breaker = {};
  /// Each attempt.
  clock::duration attempt_timeout = std::chrono::seconds{10};
  /// The pipeline's name in events and metrics.
  std::string name = "standard";
};

/// pipeline<>::hedged()'s settings.
struct hedged_pipeline_options {
  clock::duration total_timeout = std::chrono::seconds{30};
  hedge_options hedge = {};
  /// The hedges' budget (Tower's defaults); nullopt hedges without one.
  std::optional<retry_budget_options> budget = retry_budget_options{};
  bulkhead_options bulkhead = {};
  circuit_breaker_options breaker = {};
  clock::duration attempt_timeout = std::chrono::seconds{10};
  std::string name = "hedged";
};

namespace detail {
inline time_limiter named_timeout(clock::duration d, const char* name) {
  timeout_options o;
  o.duration = d;
  o.name = name;
  return time_limiter{std::move(o)};
}
}  // namespace detail

/// rate_limiter | total timeout | retry (+ budget) | circuit_breaker | attempt timeout, l1
/// outermost.
///
///     auto pipe = weft::resilience::pipeline<>::standard();
///     auto reply = co_await pipe.execute([&] { return client.get(path); });
///
/// Reach a layer with pipe.layer<I>() (0: the rate limiter, 3: the breaker; the retry is
/// pipe.layer<2>().layer()).
inline auto make_standard_pipeline(standard_pipeline_options o) {
  std::shared_ptr<retry_gate> budget;
  if (o.budget) budget = std::make_shared<retry_budget>(*o.budget);
  o.retry.gate = budget.get();
  // Every layer is held by value (layers move, their state staying put): the pipeline owns them
  // and can be returned, kept as a member or erased into an any_pipeline.
  pipeline p{rate_limiter{o.rate, o.rate_options},
             detail::named_timeout(o.total_timeout, "total_timeout"),
             gated<retry>{budget, retry{std::move(o.retry)}}, circuit_breaker{std::move(o.breaker)},
             detail::named_timeout(o.attempt_timeout, "attempt_timeout")};
  p.observers().set_name(std::move(o.name));
  return p;
}

/// total timeout | hedge (+ budget) | bulkhead | circuit_breaker | attempt timeout. Operations
/// must be marked idempotent():
///
///     auto pipe = weft::resilience::pipeline<>::hedged();
///     auto row = co_await pipe.execute(weft::resilience::idempotent([&] { return db.get(id); }));
inline auto make_hedged_pipeline(hedged_pipeline_options o) {
  std::shared_ptr<retry_gate> budget;
  if (o.budget) budget = std::make_shared<retry_budget>(*o.budget);
  o.hedge.gate = budget.get();
  pipeline p{detail::named_timeout(o.total_timeout, "total_timeout"),
             gated<hedge>{budget, hedge{std::move(o.hedge)}}, bulkhead{std::move(o.bulkhead)},
             circuit_breaker{std::move(o.breaker)},
             detail::named_timeout(o.attempt_timeout, "attempt_timeout")};
  p.observers().set_name(std::move(o.name));
  return p;
}

}  // namespace weft::resilience
