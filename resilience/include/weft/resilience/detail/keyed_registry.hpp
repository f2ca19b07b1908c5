// The map under the keyed families (bulkhead_family, rate_limiter_family): one shared object per
// key, created on first use, evicted after idle_ttl without use or, past max_keys, least recently
// used first; and keyed_layer, which runs a call through the object its context's key selects.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/sync/spin_lock.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience::detail {

/// Idle TTL and key bound shared by the families' options (docs/resilience-rules.md "Keyed
/// families").
inline void validate_registry_options(const char* api, clock::duration idle_ttl,
                                      std::size_t max_keys) {
  if (idle_ttl <= clock::duration::zero()) {
    throw std::invalid_argument(std::string(api) +
                                ": idle_ttl must be positive (use clock::duration::max() to keep "
                                "idle keys forever)");
  }
  if (max_keys == 0) {
    throw std::invalid_argument(std::string(api) + ": max_keys must be at least 1");
  }
}

/// One `Value` per key, shared through shared_ptr so that a call holding one keeps it alive.
///
/// Eviction runs inside get(), without a timer: first every entry idle for at least `idle_ttl`
/// (measured from its last get()), oldest first; then, after a new key, the least recently used
/// entries while there are more than `max_keys`. An entry is *in use* while anyone besides the
/// registry holds its shared_ptr (a call in flight, a queued waiter, a reserved sleeper): it is
/// never evicted, so a key never has two live objects at once and no permit or reservation is
/// forgotten. An idle candidate found in use is moved to the recent end with its idle time
/// restarted, which keeps each sweep proportional to what it evicts. When every entry is in use
/// the registry holds more than max_keys until some finish.
///
/// Thread safety: every member may be called concurrently; the factory runs outside the lock.
template <class Key, class Value, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>>
class keyed_registry {
 public:
  using factory = std::function<std::shared_ptr<Value>()>;

  keyed_registry(clock::duration idle_ttl, std::size_t max_keys, factory make)
      : idle_ttl_(idle_ttl), max_keys_(max_keys), make_(std::move(make)) {}
  keyed_registry(const keyed_registry&) = delete;
  keyed_registry& operator=(const keyed_registry&) = delete;

  /// The object for `key`, created on first use; marks it as used now.
  std::shared_ptr<Value> get(const Key& key) {
    const auto now = clock::now();
    {
      std::lock_guard guard{lock_};
      const auto t = monotonic_locked(now);
      evict_idle_locked(t);
      if (auto it = map_.find(key); it != map_.end()) {
        touch_locked(it->second, t);
        return it->second.value;
      }
    }
    // Built outside the lock; if another caller inserted the key meanwhile, theirs wins and this
    // one is dropped after the lock is released.
    std::shared_ptr<Value> fresh = make_();
    std::lock_guard guard{lock_};
    const auto t = monotonic_locked(clock::now());
    auto [it, inserted] = map_.try_emplace(key);
    entry& e = it->second;
    if (inserted) {
      e.value = std::move(fresh);
      e.key = &it->first;
      e.last_used = t;
      link_newest_locked(e);
      std::shared_ptr<Value> result = e.value;  // held: the bound below cannot evict it
      enforce_bound_locked();
      return result;
    }
    touch_locked(e, t);
    return e.value;
  }

  /// The object for `key` if it exists (does not count as a use).
  [[nodiscard]] std::shared_ptr<Value> find(const Key& key) const {
    std::lock_guard guard{lock_};
    const auto it = map_.find(key);
    return it == map_.end() ? nullptr : it->second.value;
  }

  /// Keys held now.
  [[nodiscard]] std::size_t size() const {
    std::lock_guard guard{lock_};
    return map_.size();
  }

  /// Evicts the entries idle for at least idle_ttl now (get() does this too); returns how many.
  std::size_t evict_idle() {
    const auto now = clock::now();
    std::lock_guard guard{lock_};
    return evict_idle_locked(monotonic_locked(now));
  }

 private:
  // Invariant: every entry of map_ is on the recency list exactly once, oldest_ first; entries
  // are nodes of an unordered_map, whose addresses survive rehashing.
  struct entry {
    std::shared_ptr<Value> value;
    const Key* key = nullptr;
    clock::time_point last_used{};
    entry* older = nullptr;
    entry* newer = nullptr;
  };

  // Clock reads from several workers can arrive out of order; last_used must not go backwards.
  clock::time_point monotonic_locked(clock::time_point now) noexcept {
    if (now > latest_) latest_ = now;
    return latest_;
  }

  static bool in_use(const entry& e) noexcept {
    // Under the lock: only get() makes new references, and it holds the lock to do so, so a
    // count of 1 cannot grow behind our back. A stale count above 1 only delays an eviction.
    return e.value.use_count() > 1;
  }

  void unlink_locked(entry& e) noexcept {
    if (e.older != nullptr) {
      e.older->newer = e.newer;
    } else {
      oldest_ = e.newer;
    }
    if (e.newer != nullptr) {
      e.newer->older = e.older;
    } else {
      newest_ = e.older;
    }
    e.older = e.newer = nullptr;
  }

  void link_newest_locked(entry& e) noexcept {
    e.older = newest_;
    e.newer = nullptr;
    if (newest_ != nullptr) {
      newest_->newer = &e;
    } else {
      oldest_ = &e;
    }
    newest_ = &e;
  }

  void touch_locked(entry& e, clock::time_point now) noexcept {
    e.last_used = now;
    if (newest_ != &e) {
      unlink_locked(e);
      link_newest_locked(e);
    }
  }

  void erase_locked(entry& e) {
    unlink_locked(e);
    map_.erase(map_.find(*e.key));  // by iterator: the key lives in the node being erased
  }

  bool idle_locked(const entry& e, clock::time_point now) const noexcept {
    return now - e.last_used >= idle_ttl_;
  }

  std::size_t evict_idle_locked(clock::time_point now) {
    std::size_t evicted = 0;
    // Each pass evicts the oldest entry or restarts its idle time (moving it newest), so the loop
    // ends: a restarted entry is not idle again at this `now` (idle_ttl is positive).
    while (oldest_ != nullptr && idle_locked(*oldest_, now)) {
      if (in_use(*oldest_)) {
        touch_locked(*oldest_, now);
      } else {
        erase_locked(*oldest_);
        ++evicted;
      }
    }
    return evicted;
  }

  void enforce_bound_locked() {
    for (entry* e = oldest_; map_.size() > max_keys_ && e != nullptr;) {
      entry* next = e->newer;
      if (!in_use(*e)) erase_locked(*e);
      e = next;
    }
  }

  const clock::duration idle_ttl_;
  const std::size_t max_keys_;
  const factory make_;
  mutable weft::spin_lock lock_;
  std::unordered_map<Key, entry, Hash, KeyEqual> map_;
  entry* oldest_ = nullptr;
  entry* newest_ = nullptr;
  clock::time_point latest_{};
};

/// A family used as a layer: each call runs through the member that `key_of(ctx)` selects, which
/// stays alive (and is not evicted) until the call completes. Made by the families' layer().
template <class Family, class Extract>
class keyed_layer {
 public:
  keyed_layer(Family& family, Extract key_of) : family_(&family), key_of_(std::move(key_of)) {}

  template <class R, class Next>
  task<call_outcome<R>> run(resilience_context& ctx, Next next) {
    const auto member = family_->get(key_of_(std::as_const(ctx)));
    co_return co_await member->template run<R>(ctx, next);
  }

  template <class F>
  auto execute(F op) {
    return weft::resilience::execute(*this, std::move(op));
  }

 private:
  Family* family_;
  Extract key_of_;
};

}  // namespace weft::resilience::detail
