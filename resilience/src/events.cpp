// Names of events, states and gauges, as they appear in metrics.
#include <weft/resilience/events.hpp>

namespace weft::resilience {

std::string_view to_string(breaker_state s) noexcept {
  switch (s) {
    case breaker_state::closed: return "closed";
    case breaker_state::open: return "open";
    case breaker_state::half_open: return "half_open";
    case breaker_state::isolated: return "isolated";
    case breaker_state::disabled: return "disabled";
    case breaker_state::metrics_only: return "metrics_only";
  }
  return "unknown";
}

std::string_view to_string(event_kind k) noexcept {
  switch (k) {
    case event_kind::retry: return "retry";
    case event_kind::retry_budget_exhausted: return "retry_budget_exhausted";
    case event_kind::retry_gave_up: return "retry_gave_up";
    case event_kind::breaker_state_changed: return "breaker_state_changed";
    case event_kind::breaker_rejected: return "breaker_rejected";
    case event_kind::breaker_success: return "breaker_success";
    case event_kind::breaker_failure: return "breaker_failure";
    case event_kind::breaker_ignored: return "breaker_ignored";
    case event_kind::breaker_slow_call: return "breaker_slow_call";
    case event_kind::breaker_failure_rate_exceeded:
      return "breaker_failure_rate_exceeded";
    case event_kind::breaker_slow_call_rate_exceeded:
      return "breaker_slow_call_rate_exceeded";
    case event_kind::bulkhead_queued: return "bulkhead_queued";
    case event_kind::bulkhead_rejected: return "bulkhead_rejected";
    case event_kind::rate_limited: return "rate_limited";
    case event_kind::rate_limit_waited: return "rate_limit_waited";
    case event_kind::limit_exceeded: return "limit_exceeded";
    case event_kind::limit_changed: return "limit_changed";
    case event_kind::throttled: return "throttled";
    case event_kind::timeout: return "timeout";
    case event_kind::timeout_detached: return "timeout_detached";
    case event_kind::hedge_launched: return "hedge_launched";
    case event_kind::fallback_used: return "fallback_used";
    case event_kind::flight_joined: return "flight_joined";
    case event_kind::cache_hit: return "cache_hit";
    case event_kind::cache_miss: return "cache_miss";
    case event_kind::cache_stale_hit: return "cache_stale_hit";
  }
  return "unknown";
}

std::string_view to_string(gauge g) noexcept {
  switch (g) {
    case gauge::breaker_state: return "breaker.state";
    case gauge::inflight: return "inflight";
    case gauge::limit: return "limit";
    case gauge::tokens: return "tokens";
    case gauge::detached: return "detached";
  }
  return "unknown";
}

}  // namespace weft::resilience
