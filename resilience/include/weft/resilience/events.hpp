// Resilience events (typed, delivered synchronously to noexcept listeners in registration order)
// and the metrics sink interface with the OpenTelemetry-style names of docs/resilience-rules.md. A
// layer with no listener and no sink pays one predictable branch per event site.
//
// Thread safety: a telemetry is set up, then used: on_event, set_sink and set_name are not
// synchronised, so call them before calls run through the layer. Events and metrics are delivered
// synchronously on whichever worker runs the call, from several at once for a shared layer:
// listeners and sinks must allow concurrent calls (prometheus_sink does). A layer_event's views
// point into the layer and the call's context: copy them to keep them.
//
// Cancellation: nothing here suspends. Listeners and sink methods run synchronously inside the call
// that reports, and cannot suspend it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/classify.hpp>
#include <weft/resilience/context.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

/// Circuit breaker states (also the value of the breaker.state gauge).
enum class breaker_state : std::uint8_t {
  closed,
  open,
  half_open,
  isolated,      // forced open
  disabled,      // lets everything through, records nothing
  metrics_only,  // lets everything through, records and reports, never opens
};
[[nodiscard]] std::string_view to_string(breaker_state s) noexcept;

/// What happened. The name each one reports (to_string) is the `event` attribute of the
/// weft.resilience.events counter.
enum class event_kind : std::uint8_t {
  // retry
  retry,                   // before the sleep ahead of another attempt; `delay`, `attempt`
  retry_budget_exhausted,  // a retry the budget or throttle refused
  retry_gave_up,           // no attempts left, not retryable, or no time before the deadline
  // circuit breaker
  breaker_state_changed,  // `from` → `to`
  breaker_rejected,       // circuit_open / circuit_isolated
  breaker_success,
  breaker_failure,
  breaker_ignored,
  breaker_slow_call,
  breaker_failure_rate_exceeded,    // the window's failure rate reached its threshold; `value`
  breaker_slow_call_rate_exceeded,  // the same for slow calls (also in metrics_only mode)
  // bulkhead
  bulkhead_queued,
  bulkhead_rejected,
  // rate limiter, adaptive limiter, client throttle
  rate_limited,
  rate_limit_waited,  // a token was reserved and the call slept `delay` for it
  limit_exceeded,
  limit_changed,  // `value` is the new limit
  throttled,
  // timeout
  timeout,
  timeout_detached,
  // hedging, fallback
  hedge_launched,
  fallback_used,
  // single-flight, cache
  flight_joined,
  cache_hit,
  cache_miss,
  cache_stale_hit,
};
[[nodiscard]] std::string_view to_string(event_kind k) noexcept;

/// One event. String views point into the layer and the context: copy them to keep them.
struct layer_event {
  event_kind kind = event_kind::retry;
  std::string_view layer;     // the layer's name
  std::string_view pipeline;  // from the context
  std::string_view key;       // from the context
  clock::time_point at;       // runtime clock (virtual under paused time)
  outcome_kind outcome = outcome_kind::value;  // of the call the event is about, where one is
  std::error_code error;                       // its error code, where it has one
  int attempt = 0;
  clock::duration delay{};  // retry sleep, reservation wait, hedge delay, elapsed time
  breaker_state from = breaker_state::closed;
  breaker_state to = breaker_state::closed;
  double value = 0;  // a new limit, a throttle probability
  // Why a retry gave up (attempts, not_retryable, deadline, budget), or why a breaker changed
  // state: "failure rate exceeded", "slow call rate exceeded", "consecutive failures", "open time
  // elapsed", "trial call failed", "trial calls succeeded", "half-open episode expired",
  // "forced", "reset", …
  std::string_view reason;
};

/// Gauges a layer reports (names in docs/resilience-rules.md).
enum class gauge : std::uint8_t {
  breaker_state,
  inflight,
  limit,
  tokens,
  detached,  // operations a timeout layer left running (on_timeout::detach)
};
[[nodiscard]] std::string_view to_string(gauge g) noexcept;

/// Where metrics go. Implement it to bridge to OpenTelemetry or Prometheus; every method is
/// noexcept and called synchronously on the calling worker, so keep it cheap.
class metrics_sink {
 public:
  static constexpr std::string_view events_counter = "weft.resilience.events";
  static constexpr std::string_view attempt_duration = "weft.resilience.attempt.duration";
  static constexpr std::string_view pipeline_duration = "weft.resilience.pipeline.duration";

  virtual ~metrics_sink() = default;
  /// weft.resilience.events{event,layer,pipeline,key} += 1.
  virtual void count_event(const layer_event& e) noexcept = 0;
  /// weft.resilience.attempt.duration (one attempt inside a retry or hedge).
  virtual void record_attempt(std::string_view layer, const resilience_context& ctx,
                              clock::duration d, verdict v) noexcept = 0;
  /// weft.resilience.pipeline.duration (a whole pipeline call).
  virtual void record_pipeline(const resilience_context& ctx, clock::duration d,
                               verdict v) noexcept = 0;
  /// A gauge's current value (breaker.state, inflight, limit, tokens).
  virtual void set_gauge(gauge g, std::string_view layer, std::string_view key,
                         double value) noexcept = 0;
};

/// A layer's observers: listeners (called in registration order) and an optional metrics sink.
/// Listeners must be noexcept callables taking `const layer_event&`; anything else does not
/// compile.
///
///     breaker.observers().on_event([&log](const layer_event& e) noexcept { log.push_back(e.kind);
///     });
class telemetry {
 public:
  explicit telemetry(std::string name = {})
      : name_(std::make_shared<const std::string>(std::move(name))) {}

  template <class F>
  void on_event(F listener) {
    static_assert(std::is_nothrow_invocable_v<F&, const layer_event&>,
                  "weft::resilience: event listeners must be noexcept (a throwing listener would "
                  "lose the layer's state); mark the lambda noexcept");
    listeners_.push_back(std::move(listener));
    active_ = true;
  }
  /// The sink must outlive the layer; nullptr removes it.
  void set_sink(metrics_sink* sink) noexcept {
    sink_ = sink;
    active_ = sink_ != nullptr || !listeners_.empty();
  }
  [[nodiscard]] metrics_sink* sink() const noexcept { return sink_; }
  [[nodiscard]] const std::string& name() const noexcept {
    static const std::string none;
    return name_ ? *name_ : none;  // a moved-from telemetry has none
  }
  void set_name(std::string name) { name_ = std::make_shared<const std::string>(std::move(name)); }
  /// The name, shared: what a rejection carries, so that it outlives the layer (an outcome may).
  [[nodiscard]] const std::shared_ptr<const std::string>& shared_name() const noexcept {
    return name_;
  }

  /// True when anyone listens; event sites test it before building an event.
  [[nodiscard]] bool active() const noexcept { return active_; }

  /// An event of this layer about `ctx`, stamped now.
  [[nodiscard]] layer_event make(event_kind kind, const resilience_context& ctx) const {
    layer_event e{};
    e.kind = kind;
    e.layer = name();
    e.pipeline = ctx.pipeline;
    e.key = ctx.key;
    e.at = clock::now();
    return e;
  }
  void emit(const layer_event& e) const noexcept {
    for (const auto& l : listeners_) l(e);
    if (sink_ != nullptr) sink_->count_event(e);
  }
  void gauge_value(gauge g, std::string_view key, double value) const noexcept {
    if (sink_ != nullptr) sink_->set_gauge(g, name(), key, value);
  }

 private:
  std::shared_ptr<const std::string> name_;
  // Not std::function<void(const layer_event&) noexcept> (C++20 has no such thing): on_event checks
  // noexcept at compile time, and a call through a noexcept path terminates if one throws anyway.
  std::vector<std::function<void(const layer_event&)>> listeners_;
  metrics_sink* sink_ = nullptr;
  bool active_ = false;
};

}  // namespace weft::resilience
