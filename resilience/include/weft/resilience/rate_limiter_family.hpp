// weft::resilience::rate_limiter_family: a separate rate limiter per key (per client, tenant or
// endpoint) from one algorithm and options, created on first use and evicted when idle or past
// max_keys.
//
// Thread safety: every member may be called concurrently (see the class): the key map is under a
// spin lock held only for a lookup, and each key's limiter is a rate_limiter (rate_limiter.hpp).
// The family must outlive its layers and their calls; register listeners on observers() before the
// first call.
//
// Cancellation: lookups never suspend. A call through layer() is cancelled as in its key's limiter:
// a reserved sleeper cancelled returns cancelled and gives its reservation back. A call keeps its
// key's limiter from eviction only until it ends, cancelled or not.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <utility>

#include <weft/resilience/context.hpp>
#include <weft/resilience/detail/keyed_registry.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/rate_limiter.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

/// Options of a rate_limiter_family: every key's limiter gets `limiter`.
struct rate_limiter_family_options {
  rate_limiter_options limiter;
  /// A key unused this long is forgotten (its limiter, with its counts, destroyed) once nothing
  /// holds it; a key seen again starts afresh (a full bucket, empty windows).
  clock::duration idle_ttl = std::chrono::minutes{10};
  /// At most this many keys; past it the least recently used key not in use is forgotten.
  std::size_t max_keys = 10'000;
};

/// Independent rate limiters per key, all running the same algorithm and options and reporting
/// to the family's observers (events carry the context's key).
///
///     rate_limiter_family<std::string> per_client{token_bucket{100, 10, 1s}};
///     pipeline pipe{per_client.layer([](const resilience_context& c) {
///       return std::string(c.key);
///     })};
///
/// Each key's t0 is its limiter's creation, at its first call. Keys are evicted after idle_ttl
/// without calls, or least recently used first past max_keys, never while a call holds the
/// limiter (a reserved sleeper included; see detail::keyed_registry). Choose an idle_ttl at
/// least as long as a full refill if a forgotten key must not get a fresh bucket early. Thread
/// safety: every member may be called concurrently; the family must outlive its layers and calls.
/// Errors: std::invalid_argument for what rate_limiter rejects, a non-positive idle_ttl or
/// max_keys 0.
template <class Key, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>>
class rate_limiter_family {
 public:
  explicit rate_limiter_family(rate_limit limit, rate_limiter_family_options options = {})
      : limit_(limit),
        options_(validated(limit, std::move(options))),
        telemetry_(options_.limiter.name),
        registry_(options_.idle_ttl, options_.max_keys, [this] {
          return std::make_shared<rate_limiter>(limit_, options_.limiter, telemetry_);
        }) {}
  rate_limiter_family(const rate_limiter_family&) = delete;
  rate_limiter_family& operator=(const rate_limiter_family&) = delete;

  /// The limiter for `key`, created on first use. Holding the pointer keeps it from eviction.
  [[nodiscard]] std::shared_ptr<rate_limiter> get(const Key& key) { return registry_.get(key); }
  /// The limiter for `key` if the family has one (not counted as a use).
  [[nodiscard]] std::shared_ptr<rate_limiter> find(const Key& key) const {
    return registry_.find(key);
  }
  /// Keys with a limiter now.
  [[nodiscard]] std::size_t size() const { return registry_.size(); }
  /// Evicts the keys idle for idle_ttl now (lookups do this too); returns how many.
  std::size_t evict_idle() { return registry_.evict_idle(); }

  /// A layer that runs each call through the limiter of `key_of(ctx)` (a callable taking
  /// `const resilience_context&` and returning a Key). The family must outlive the layer.
  template <class Extract>
  requires std::is_invocable_r_v<Key, Extract&, const resilience_context&>
  [[nodiscard]] detail::keyed_layer<rate_limiter_family, Extract> layer(Extract key_of) {
    return {*this, std::move(key_of)};
  }

  /// Events and metrics of every key's limiter; register listeners before the first call.
  [[nodiscard]] telemetry& observers() noexcept { return telemetry_; }
  [[nodiscard]] const rate_limiter_family_options& options() const noexcept { return options_; }

 private:
  static rate_limiter_family_options validated(const rate_limit& limit,
                                               rate_limiter_family_options o) {
    detail::validate(limit, o.limiter);
    // A window's ring is sized from max_wait: build one once so its bound is checked here.
    (void)detail::make_state(limit, o.limiter.max_wait);
    detail::validate_registry_options("weft::resilience::rate_limiter_family", o.idle_ttl,
                                      o.max_keys);
    return o;
  }

  const rate_limit limit_;
  const rate_limiter_family_options options_;
  telemetry telemetry_;
  detail::keyed_registry<Key, rate_limiter, Hash, KeyEqual> registry_;
};

}  // namespace weft::resilience
