// weft::resilience::ttl_cache: results kept for a time-to-live, bounded by LRU, with misses
// deduplicated through single_flight and optional stale-while-revalidate.
//
// Thread safety: every member may be called from tasks on any worker (see the class): entries are
// under one mutex, never held across a suspension, and misses go through a single_flight. Not
// movable: hold it by reference or through shared_ptr. Background refreshes and abandoned flights
// share the cache's state and may finish after the cache is gone.
//
// Cancellation: hits never wait. A cancelled caller of a miss leaves its flight as a single_flight
// waiter does (the operation stops only once every waiter left); a cancellation is never cached.
// get and friends refresh a stale entry in a task of their own, which the caller's cancellation
// does not reach; as a layer, the first stale caller refreshes in its own frame and, if cancelled,
// gets cancelled rather than the stale value.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/single_flight.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

/// How a ttl_cache keeps results.
template <class Key>
struct ttl_cache_options {
  /// How long a value stays valid after the operation that produced it completed. Required.
  clock::duration ttl{};
  /// Most entries kept; the least recently used goes first.
  std::size_t capacity = 1024;
  /// When set, failures (errors and exceptions, not cancellation and not the library's own
  /// rejections) are cached this long, so a failing key is not asked again at once.
  std::optional<clock::duration> negative_ttl{};
  /// When set, a value up to this long past its ttl is still served while one refresh runs.
  std::optional<clock::duration> stale_while_revalidate{};
  /// The key of a call when used as a layer; by default Key(ctx.key).
  std::function<Key(const resilience_context&)> key_of{};
  /// The layer's name in events.
  std::string name = "ttl_cache";
};

/// A cache of operation results by key. An entry is valid while `now < stored_at + ttl`, where
/// stored_at is when the operation completed (so `now == stored_at + ttl` is a miss). Failures are
/// not cached unless negative_ttl is set; cancellation never is. Misses go through a
/// single_flight, so concurrent misses for a key run the operation once; the entry is stored
/// before the flight's joiners resume. At most `capacity` entries are kept (LRU).
///
///     weft::resilience::ttl_cache<std::string, profile> profiles{{.ttl = 30s, .capacity =
///     10'000}}; profile p = co_await profiles.get(user_id, [&] { return backend.load(user_id); });
///
/// Stale-while-revalidate: an entry past its ttl but within the window is served at once and
/// refreshed once in the background (get and friends: the refresh runs as its own task, owning
/// `op`). As a layer the refresh cannot run in the background — the rest of the pipeline lives in
/// the caller's frame — so the first caller to find the entry stale refreshes it and waits
/// (getting the stale value back if the refresh fails), while the others are served stale
/// meanwhile (nginx's `proxy_cache_use_stale updating`). A failed refresh keeps the stale entry
/// and lets the next stale hit try again.
///
/// Events: cache_hit (fresh, or a cached failure), cache_stale_hit, cache_miss.
/// Thread safety: every member may be called from tasks on any worker; hits take one mutex.
/// Errors: bad options throw std::invalid_argument at construction.
template <class Key, class T, class Hash = std::hash<Key>, class Eq = std::equal_to<Key>>
class ttl_cache {
  static_assert(!std::is_void_v<T>,
                "weft::resilience::ttl_cache: there is nothing to cache in void");

 public:
  explicit ttl_cache(ttl_cache_options<Key> options)
      : st_(std::make_shared<state>(validate(std::move(options)))), tel_(st_->opts.name) {}
  ttl_cache(const ttl_cache&) = delete;
  ttl_cache& operator=(const ttl_cache&) = delete;

  /// The cached outcome for `key`, or the outcome of `op` (op() or op(resilience_context&)
  /// returning task<T> or task<call_outcome<T>>), shared with concurrent misses. Never throws for
  /// the operation's failures.
  template <class F>
  task<call_outcome<T>> get_outcome(Key key, F op) {
    auto shared = co_await get_or_load(std::move(key), std::move(op));
    co_return *shared;
  }

  /// As get_outcome, in the operation's own type (as pipeline::execute returns it).
  template <class F>
  task<typename detail::op_traits<F>::caller_type> get(Key key, F op) {
    auto o = co_await get_outcome(std::move(key), std::move(op));
    if constexpr (detail::op_traits<F>::returns_outcome) {
      co_return o;
    } else {
      co_return std::move(o).get();
    }
  }

  /// The cached value itself, shared rather than copied. Failures are thrown (or injected, for an
  /// expected-like T) as by get.
  template <class F>
  task<std::shared_ptr<const T>> get_shared(Key key, F op) {
    auto shared = co_await get_or_load(std::move(key), std::move(op));
    if (shared->holds_result()) co_return std::shared_ptr<const T>(shared, &shared->value());
    auto copy = *shared;
    co_return std::make_shared<const T>(std::move(copy).get());
  }

  /// The layer protocol: the key is key_of(ctx), or Key(ctx.key).
  template <class R, class Next>
  task<call_outcome<R>> run(resilience_context& ctx, Next next) {
    static_assert(std::is_same_v<R, T>,
                  "weft::resilience::ttl_cache<Key, T>: the operation must produce T");
    std::optional<Key> key;
    try {
      key = key_for(ctx);
    } catch (...) {
      co_return call_outcome<R>::from_exception(std::current_exception());
    }
    auto look = st_->lookup(*key, clock::now());
    if (look.kind == found_kind::fresh || look.kind == found_kind::stale) {
      note(look.kind == found_kind::fresh ? event_kind::cache_hit : event_kind::cache_stale_hit,
           ctx);
      co_return *look.value;
    }
    note(event_kind::cache_miss, ctx);
    loader<continuation<Next>> load{st_, *key, continuation<Next>{next}};
    auto flown = co_await st_->flights.join_scoped_shared(std::move(*key), std::move(load), ctx);
    const auto shared = unwrap(*flown);
    if (look.kind == found_kind::stale_refresh && !shared->has_value() && !shared->is_cancelled()) {
      co_return *look.value;  // within the window the stale value beats the refresh's failure
    }
    co_return *shared;
  }

  /// Runs `op` through this layer alone (its key from key_of or the context's key).
  template <class F>
  auto execute(F op) {
    return weft::resilience::execute(*this, std::move(op));
  }

  /// Forgets `key`'s entry (a flight in the air still stores its result when it completes).
  void invalidate(const Key& key) {
    std::shared_ptr<const call_outcome<T>> dropped;
    std::lock_guard guard{st_->lock};
    st_->erase_locked(key, dropped);
  }
  /// Forgets every entry.
  void clear() {
    std::list<entry> dropped;
    std::lock_guard guard{st_->lock};
    st_->index.clear();
    dropped.swap(st_->lru);
  }
  /// Entries held (fresh, stale or expired and not yet looked up).
  [[nodiscard]] std::size_t size() const {
    std::lock_guard guard{st_->lock};
    return st_->lru.size();
  }
  /// True if `key` has an entry that is fresh now.
  [[nodiscard]] bool contains(const Key& key) const {
    const auto now = clock::now();
    std::lock_guard guard{st_->lock};
    const auto it = st_->index.find(key);
    return it != st_->index.end() && now < it->second->expires_at;
  }

  /// The single_flight that misses go through (its flight_joined events). Its flights carry the
  /// very outcome they store, so hits and misses hand out the same object.
  using flights_type = single_flight<Key, std::shared_ptr<const call_outcome<T>>, Hash, Eq>;
  [[nodiscard]] flights_type& flights() noexcept { return st_->flights; }
  [[nodiscard]] telemetry& observers() noexcept { return tel_; }
  [[nodiscard]] const ttl_cache_options<Key>& options() const noexcept { return st_->opts; }

 private:
  struct entry {
    Key key;
    std::shared_ptr<const call_outcome<T>> value;
    clock::time_point expires_at;
    bool negative = false;    // a cached failure
    bool refreshing = false;  // a stale-while-revalidate refresh is running
  };
  using lru_list = std::list<entry>;

  enum class found_kind : std::uint8_t {
    fresh,
    stale,          // served stale; a refresh is already running
    stale_refresh,  // served stale; this caller starts the refresh
    miss,
  };
  struct found {
    found_kind kind = found_kind::miss;
    std::shared_ptr<const call_outcome<T>> value;
  };

  // Shared (shared_ptr) with flights and background refreshes, which store results after the
  // caller that started them may have gone, and possibly after the cache itself has.
  struct state {
    explicit state(ttl_cache_options<Key> o) : opts(std::move(o)) {}

    const ttl_cache_options<Key> opts;
    flights_type flights;
    mutable std::mutex lock;
    // Guarded by lock. Invariant: index maps each key in lru to its node; front = most recent.
    lru_list lru;
    std::unordered_map<Key, typename lru_list::iterator, Hash, Eq> index;

    found lookup(const Key& key, clock::time_point now) {
      std::shared_ptr<const call_outcome<T>> dropped;  // destroyed after the lock is released
      std::lock_guard guard{lock};
      const auto it = index.find(key);
      if (it == index.end()) return {};
      const auto e = it->second;
      if (now < e->expires_at) {
        lru.splice(lru.begin(), lru, e);
        return {found_kind::fresh, e->value};
      }
      if (opts.stale_while_revalidate && !e->negative &&
          now < e->expires_at + *opts.stale_while_revalidate) {
        lru.splice(lru.begin(), lru, e);
        const bool start = !e->refreshing;
        e->refreshing = true;
        return {start ? found_kind::stale_refresh : found_kind::stale, e->value};
      }
      erase_locked(key, dropped);
      return {};
    }

    // A fresh entry for key, if one was stored since the caller's miss.
    std::shared_ptr<const call_outcome<T>> peek(const Key& key, clock::time_point now) const {
      std::lock_guard guard{lock};
      const auto it = index.find(key);
      if (it == index.end() || !(now < it->second->expires_at)) return nullptr;
      return it->second->value;
    }

    void store(const Key& key, std::shared_ptr<const call_outcome<T>> value,
               clock::time_point now) {
      std::optional<clock::duration> life;
      bool negative = false;
      if (value->has_value()) {
        life = opts.ttl;
      } else if (opts.negative_ttl && !value->is_cancelled() && !value->is_rejection()) {
        life = *opts.negative_ttl;
        negative = true;
      }
      std::shared_ptr<const call_outcome<T>> dropped;
      std::lock_guard guard{lock};
      const auto it = index.find(key);
      if (!life) {
        // Not cached: a stale entry stays, and the next stale hit may try the refresh again.
        if (it != index.end()) it->second->refreshing = false;
        return;
      }
      if (it != index.end()) {
        const auto e = it->second;
        dropped = std::exchange(e->value, std::move(value));
        e->expires_at = now + *life;
        e->negative = negative;
        e->refreshing = false;
        lru.splice(lru.begin(), lru, e);
        return;
      }
      lru.push_front(entry{key, std::move(value), now + *life, negative, false});
      index.emplace(key, lru.begin());
      if (lru.size() > opts.capacity) erase_locked(Key(lru.back().key), dropped);
    }

    void erase_locked(const Key& key, std::shared_ptr<const call_outcome<T>>& dropped) {
      const auto it = index.find(key);
      if (it == index.end()) return;
      dropped = std::move(it->second->value);
      lru.erase(it->second);
      index.erase(it);
    }

    // Runs the operation for a miss inside its flight and stores the outcome, once per flight,
    // at its completion time and before the flight's joiners resume.
    template <class F>
    task<std::shared_ptr<const call_outcome<T>>> load(const Key& key, F& op,
                                                      resilience_context& ctx) {
      // Another flight may have stored the key between the caller's miss and this flight.
      if (auto hit = peek(key, clock::now())) co_return hit;
      auto o = std::make_shared<const call_outcome<T>>(
          co_await detail::op_awaiter<T, typename detail::op_traits<F>::value>(op, ctx));
      store(key, o, clock::now());
      co_return o;
    }
  };

  // The operation a flight runs for a miss: load through the cache's state.
  template <class F>
  struct loader {
    std::shared_ptr<state> st;
    Key key;
    F op;
    task<std::shared_ptr<const call_outcome<T>>> operator()(resilience_context& ctx) {
      return st->load(key, op, ctx);
    }
  };

  // A layer's continuation as an operation.
  template <class Next>
  struct continuation {
    Next next;
    task<call_outcome<T>> operator()(resilience_context& ctx) const {
      return as_task<T>(next, ctx);
    }
  };

  static ttl_cache_options<Key> validate(ttl_cache_options<Key> o) {
    if (o.ttl.count() <= 0) {
      throw std::invalid_argument("weft::resilience::ttl_cache: ttl must be positive");
    }
    if (o.capacity == 0) {
      throw std::invalid_argument("weft::resilience::ttl_cache: capacity must be at least 1");
    }
    if (o.negative_ttl && o.negative_ttl->count() <= 0) {
      throw std::invalid_argument(
          "weft::resilience::ttl_cache: negative_ttl must be positive when set");
    }
    if (o.stale_while_revalidate && o.stale_while_revalidate->count() <= 0) {
      throw std::invalid_argument(
          "weft::resilience::ttl_cache: stale_while_revalidate must be positive when set");
    }
    return o;
  }

  Key key_for(const resilience_context& ctx) const {
    if (st_->opts.key_of) return st_->opts.key_of(ctx);
    if constexpr (std::is_constructible_v<Key, std::string_view>) {
      return Key(ctx.key);
    } else {
      throw std::logic_error(
          "weft::resilience::ttl_cache: Key cannot be made from ctx.key; set "
          "ttl_cache_options::key_of to use it as a layer");
    }
  }

  void note(event_kind kind, const resilience_context& ctx) const {
    if (tel_.active()) tel_.emit(tel_.make(kind, ctx));
  }
  void note(event_kind kind, const Key& key) const {
    if (!tel_.active()) return;
    resilience_context ctx;
    ctx.key = detail::key_text(key);
    tel_.emit(tel_.make(kind, ctx));
  }

  template <class F>
  static task<void> refresh(std::shared_ptr<state> st, Key key, F op) {
    loader<F> load{st, key, std::move(op)};
    (void)co_await st->flights.join_shared(std::move(key), std::move(load));
  }

  template <class F>
  task<std::shared_ptr<const call_outcome<T>>> get_or_load(Key key, F op) {
    auto look = st_->lookup(key, clock::now());
    switch (look.kind) {
      case found_kind::fresh:
        note(event_kind::cache_hit, key);
        co_return look.value;
      case found_kind::stale:
        note(event_kind::cache_stale_hit, key);
        co_return look.value;
      case found_kind::stale_refresh:
        note(event_kind::cache_stale_hit, key);
        try {
          weft::spawn(refresh(st_, key, std::move(op))).detach();
        } catch (...) {
          // Not started: let a later stale hit try again.
          st_->store(key, std::make_shared<const call_outcome<T>>(call_outcome<T>::cancelled()),
                     clock::now());
        }
        co_return look.value;
      case found_kind::miss:
        break;
    }
    note(event_kind::cache_miss, key);
    loader<F> load{st_, key, std::move(op)};
    auto flown = co_await st_->flights.join_shared(std::move(key), std::move(load));
    co_return unwrap(*flown);
  }

  // A flight's outcome as the outcome it carries: the stored one, or the flight's own
  // cancellation (or failure to start).
  static std::shared_ptr<const call_outcome<T>> unwrap(
      const call_outcome<std::shared_ptr<const call_outcome<T>>>& flown) {
    if (flown.has_value()) return flown.value();
    if (flown.is_cancelled())
      return std::make_shared<const call_outcome<T>>(call_outcome<T>::cancelled());
    if (auto e = flown.exception()) {
      return std::make_shared<const call_outcome<T>>(call_outcome<T>::from_exception(std::move(e)));
    }
    return std::make_shared<const call_outcome<T>>(call_outcome<T>::failure(flown.error()));
  }

  std::shared_ptr<state> st_;
  telemetry tel_;
};

}  // namespace weft::resilience
