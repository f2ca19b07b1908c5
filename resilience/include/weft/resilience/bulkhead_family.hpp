// weft::resilience::bulkhead_family: a separate bulkhead per key (one pool per dependency or
// tenant) from shared options, created on first use and evicted when idle or past max_keys.
//
// Thread safety: every member may be called concurrently (see the class): the key map is under a
// spin lock held only for a lookup, and each key's pool is a bulkhead (bulkhead.hpp). The family
// must outlive its layers and their calls; register listeners on observers() before the first call.
//
// Cancellation: lookups never suspend. A call through layer() waits and is cancelled as in its
// key's bulkhead: a cancelled queued call returns cancelled holding no permit. A call keeps its
// key's bulkhead from eviction only until it ends, cancelled or not.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>

#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/detail/keyed_registry.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

/// Options of a bulkhead_family: every key's bulkhead gets `pool`.
struct bulkhead_family_options {
  bulkhead_options pool;
  /// A key unused this long is forgotten (its bulkhead destroyed) once nothing holds it.
  clock::duration idle_ttl = std::chrono::minutes{10};
  /// At most this many keys; past it the least recently used key not in use is forgotten.
  std::size_t max_keys = 10'000;
};

/// Independent bulkheads per key ("named pools": separate limits for separate dependencies),
/// all built from the same options and reporting to the family's observers (events carry the
/// context's key).
///
///     bulkhead_family<std::string> pools{{.pool = {.max_concurrent = 4}}};
///     pipeline pipe{pools.layer([](const resilience_context& c) { return std::string(c.key); })};
///     resilience_context ctx;
///     ctx.key = "billing";
///     co_await pipe.execute(ctx, call_billing);  // at most 4 billing calls at once
///
/// A key's bulkhead is created on its first call and evicted after idle_ttl without calls, or
/// least recently used first when there are more than max_keys, but never while a call holds or
/// waits for one of its permits (see detail::keyed_registry). Eviction happens during lookups;
/// there is no timer. Thread safety: every member may be called concurrently; the family must
/// outlive its layers and calls. Errors: std::invalid_argument for bad pool options, a
/// non-positive idle_ttl or max_keys 0.
template <class Key, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>>
class bulkhead_family {
 public:
  explicit bulkhead_family(bulkhead_family_options options = {})
      : options_(validated(std::move(options))),
        telemetry_(options_.pool.name),
        registry_(options_.idle_ttl, options_.max_keys,
                  [this] { return std::make_shared<bulkhead>(options_.pool, telemetry_); }) {}
  bulkhead_family(const bulkhead_family&) = delete;
  bulkhead_family& operator=(const bulkhead_family&) = delete;

  /// The bulkhead for `key`, created on first use. Holding the pointer keeps it from eviction.
  [[nodiscard]] std::shared_ptr<bulkhead> get(const Key& key) { return registry_.get(key); }
  /// The bulkhead for `key` if the family has one (not counted as a use).
  [[nodiscard]] std::shared_ptr<bulkhead> find(const Key& key) const { return registry_.find(key); }
  /// Keys with a bulkhead now.
  [[nodiscard]] std::size_t size() const { return registry_.size(); }
  /// Evicts the keys idle for idle_ttl now (lookups do this too); returns how many.
  std::size_t evict_idle() { return registry_.evict_idle(); }

  /// A layer that runs each call through the bulkhead of `key_of(ctx)` (a callable taking
  /// `const resilience_context&` and returning a Key). The family must outlive the layer.
  template <class Extract>
  requires std::is_invocable_r_v<Key, Extract&, const resilience_context&>
  [[nodiscard]] detail::keyed_layer<bulkhead_family, Extract> layer(Extract key_of) {
    return {*this, std::move(key_of)};
  }

  /// Events and metrics of every key's bulkhead; register listeners before the first call.
  [[nodiscard]] telemetry& observers() noexcept { return telemetry_; }
  [[nodiscard]] const bulkhead_family_options& options() const noexcept { return options_; }

 private:
  static bulkhead_family_options validated(bulkhead_family_options o) {
    detail::validate(o.pool);
    detail::validate_registry_options("weft::resilience::bulkhead_family", o.idle_ttl, o.max_keys);
    return o;
  }

  const bulkhead_family_options options_;
  telemetry telemetry_;
  detail::keyed_registry<Key, bulkhead, Hash, KeyEqual> registry_;
};

}  // namespace weft::resilience
