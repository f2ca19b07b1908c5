// weft::resilience::breaker_family<Key>: an independent circuit breaker per key (per host, per
// tenant, per endpoint), created on first use from shared options, forgotten after idle_ttl
// without use, and bounded in number with LRU eviction.
//
// Thread safety: every member may be called concurrently (see the class): one std::mutex guards the
// map, held only for a lookup, never across a suspension. The family must outlive its layers and
// their calls; register listeners on observers() before the first call.
//
// Cancellation: nothing here suspends. A call through layer() is cancelled as through a
// circuit_breaker (circuit_breaker.hpp): a cancelled outcome is recorded as ignored, on the breaker
// the call started with, even if its key was evicted meanwhile.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

/// How many keys a breaker_family keeps, and for how long.
struct breaker_family_options {
  /// A key not used (by get() or a call through the layer) for this long is forgotten: its entry
  /// is valid while now < last_use + idle_ttl.
  clock::duration idle_ttl = std::chrono::minutes{10};
  /// At most this many keys; creating one more evicts the least recently used.
  std::size_t max_keys = 10'000;
};

template <class Family, class KeyOf>
class keyed_breaker;

/// A circuit breaker per key, each with its own state, window and epochs, all built from the
/// same options and reporting through the family's shared telemetry.
///
///     breaker_family<std::string> per_host{{.window = window::count(20), .minimum_calls = 10}};
///     auto by_host = per_host.layer([](const resilience_context& ctx) {
///       return std::string(ctx.key);
///     });
///     pipeline pipe{retry, by_host};
///     ctx.key = host;
///     co_await pipe.execute(ctx, [&] { return client.get(host, path); });
///
/// Forgetting a key forgets its state: a key evicted while open comes back closed. A breaker
/// handed out by get() stays valid after eviction (it is shared), but no longer belongs to the
/// family. Thread safety: every member may be called concurrently (one mutex around the map).
/// Errors: bad options throw std::invalid_argument at construction.
template <class Key, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>>
class breaker_family {
 public:
  using key_type = Key;

  explicit breaker_family(circuit_breaker_options breaker = {}, breaker_family_options family = {})
      : options_(std::move(breaker)),
        family_(family),
        telemetry_(std::make_shared<telemetry>(options_.name)) {
    detail::validate(options_);
    if (family_.idle_ttl <= clock::duration::zero()) {
      throw std::invalid_argument(
          "weft::resilience::breaker_family: idle_ttl must be positive (got " +
          std::to_string(family_.idle_ttl.count()) + " ns)");
    }
    if (family_.max_keys == 0) {
      throw std::invalid_argument(
          "weft::resilience::breaker_family: max_keys is 0; it must be at least 1");
    }
  }
  breaker_family(const breaker_family&) = delete;
  breaker_family& operator=(const breaker_family&) = delete;

  /// The breaker for `key`, created (closed, with a fresh window aligned to now) if the key is
  /// new or was forgotten; marks the key used now.
  std::shared_ptr<circuit_breaker> get(const Key& key) {
    std::lock_guard<std::mutex> g(mutex_);
    const auto now = clock::now();
    evict_idle(now);
    if (auto it = index_.find(key); it != index_.end()) {
      it->second->last_use = now;
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->breaker;
    }
    if (index_.size() >= family_.max_keys) {
      index_.erase(lru_.back().key);
      lru_.pop_back();
    }
    lru_.push_front(entry{key, std::make_shared<circuit_breaker>(options_, telemetry_), now});
    index_.emplace(key, lru_.begin());
    return lru_.front().breaker;
  }

  /// True if `key` has a breaker now (forgets idle keys first; does not mark `key` used).
  [[nodiscard]] bool contains(const Key& key) {
    std::lock_guard<std::mutex> g(mutex_);
    evict_idle(clock::now());
    return index_.find(key) != index_.end();
  }

  /// The number of keys with a breaker now (forgets idle keys first).
  [[nodiscard]] std::size_t size() {
    std::lock_guard<std::mutex> g(mutex_);
    evict_idle(clock::now());
    return index_.size();
  }

  /// A layer that runs each call through the breaker of `key_of(ctx)` (a callable taking
  /// `const resilience_context&` and returning something a Key can be built from). The family
  /// must outlive the layer.
  template <class KeyOf>
  keyed_breaker<breaker_family, KeyOf> layer(KeyOf key_of) {
    static_assert(std::is_invocable_v<const KeyOf&, const resilience_context&>,
                  "weft::resilience::breaker_family::layer: the key extractor must be callable "
                  "as key_of(const resilience_context&)");
    return keyed_breaker<breaker_family, KeyOf>(*this, std::move(key_of));
  }

  /// The listeners and sink every breaker of the family reports through.
  [[nodiscard]] telemetry& observers() noexcept { return *telemetry_; }
  [[nodiscard]] const circuit_breaker_options& options() const noexcept { return options_; }
  [[nodiscard]] const breaker_family_options& family_options() const noexcept { return family_; }

 private:
  struct entry {
    Key key;
    std::shared_ptr<circuit_breaker> breaker;
    clock::time_point last_use;
  };

  // The list is in order of last use (read under the mutex, so it only grows front to back):
  // the idle entries are a suffix.
  void evict_idle(clock::time_point now) {
    while (!lru_.empty() && now - lru_.back().last_use >= family_.idle_ttl) {
      index_.erase(lru_.back().key);
      lru_.pop_back();
    }
  }

  const circuit_breaker_options options_;
  const breaker_family_options family_;
  const std::shared_ptr<telemetry> telemetry_;
  std::mutex mutex_;
  // Invariant: index_ maps exactly the keys of lru_ to their nodes; front = most recently used.
  std::list<entry> lru_;
  std::unordered_map<Key, typename std::list<entry>::iterator, Hash, KeyEqual> index_;
};

/// The layer of breaker_family::layer(): picks the key's breaker per call.
template <class Family, class KeyOf>
class keyed_breaker {
 public:
  keyed_breaker(Family& family, KeyOf key_of) : family_(&family), key_of_(std::move(key_of)) {}

  /// The layer protocol: the call goes through the breaker of key_of(ctx), resolved when the
  /// call is awaited and held until it ends (evicted meanwhile, it still records this outcome).
  template <class R, class Next>
  auto run(resilience_context& ctx, Next next) {
    return detail::breaker_call<R, Next, source>(source{this, nullptr}, ctx, next);
  }

  template <class F>
  auto execute(F op) {
    return weft::resilience::execute(*this, std::move(op));
  }

  [[nodiscard]] Family& family() const noexcept { return *family_; }

 private:
  struct source {
    keyed_breaker* layer;
    std::shared_ptr<circuit_breaker> held;
    circuit_breaker& get(const resilience_context& ctx) {
      held = layer->family_->get(typename Family::key_type(layer->key_of_(ctx)));
      return *held;
    }
  };

  Family* family_;
  KeyOf key_of_;
};

}  // namespace weft::resilience
