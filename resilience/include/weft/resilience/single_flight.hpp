// weft::resilience::single_flight: one in-flight operation per key; callers asking for a key that
// is already being fetched join that flight and all receive its outcome.
//
// Thread safety: every member may be called from tasks on any worker (see the class): the flights
// are under one mutex, never held across a suspension. An operation runs as a task of its own, on
// any worker: detached for join, execute and their _shared forms, awaited by the caller that
// started the flight for join_scoped_shared and the layer form. Not movable: hold it by reference
// or through shared_ptr.
//
// Cancellation: a cancelled waiter (the awaiting task's token; ctx.token too for join_scoped_shared
// and the layer form) leaves at once with cancelled and does not stop the operation while others
// wait. When the last waiter leaves, the operation is cancelled and the key unlinked at once, so a
// new caller starts afresh. A host (join_scoped_shared, the layer form) that was cancelled returns
// only once the run it hosts has finished; cancelled alone, it stops that run at once.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/shielded.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/spawn.hpp>
#include <weft/sync/event.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>

namespace weft::resilience {

/// How a single_flight names itself and, as a layer, finds the key of a call.
template <class Key>
struct single_flight_options {
  /// The layer's name in events.
  std::string name = "single_flight";
  /// The key of a call when used as a layer; by default Key(ctx.key).
  std::function<Key(const resilience_context&)> key_of{};
};

namespace detail {

/// One operation in the air and the callers waiting for it.
template <class Key, class T>
struct flight {
  explicit flight(const Key& k) : key(k) {}
  const Key key;
  // Guarded by the table's lock. Invariant: linked is true exactly while the table maps key to
  // this flight; completed becomes true once, together with result.
  std::size_t waiters = 0;
  bool linked = true;
  bool completed = false;
  // Written once under the lock before `done` is set; read-only once done is set.
  std::optional<call_outcome<T>> result;
  cancel_source stop;  // requested when every waiter left
  weft::event done;
};

/// The flights of one single_flight. Shared (shared_ptr) with the flights' own tasks, so a
/// flight every caller abandoned can finish after the single_flight itself is gone.
template <class Key, class T, class Hash, class Eq>
struct flight_table {
  using flight_type = flight<Key, T>;

  mutable std::mutex lock;
  std::unordered_map<Key, std::shared_ptr<flight_type>, Hash, Eq> flights;

  /// Joins the flight for `key`, or starts one (true: the caller leads it).
  std::pair<std::shared_ptr<flight_type>, bool> enter(Key&& key) {
    std::lock_guard guard{lock};
    if (auto it = flights.find(key); it != flights.end()) {
      ++it->second->waiters;
      return {it->second, false};
    }
    auto f = std::make_shared<flight_type>(key);
    f->waiters = 1;
    flights.emplace(std::move(key), f);
    return {std::move(f), true};
  }

  /// A waiter gave up. The last one unlinks the flight at once (new callers start afresh) and
  /// stops its operation. False if the flight had completed already.
  bool leave(flight_type& f) noexcept {
    bool stop = false;
    {
      std::lock_guard guard{lock};
      if (f.completed) return false;
      if (--f.waiters == 0) {
        unlink_locked(f);
        stop = true;
      }
    }
    if (stop) f.stop.request_cancellation();
    return true;
  }

  /// The operation finished: the key is unlinked before any waiter resumes.
  void finish(flight_type& f, call_outcome<T>&& o) noexcept {
    {
      std::lock_guard guard{lock};
      unlink_locked(f);
      f.result.emplace(std::move(o));
      f.completed = true;
    }
    f.done.set();
  }

 private:
  void unlink_locked(flight_type& f) noexcept {
    if (!f.linked) return;
    f.linked = false;
    flights.erase(f.key);
  }
};

/// The key as text for events, where it has one.
template <class Key>
std::string_view key_text(const Key& key) noexcept {
  if constexpr (std::is_convertible_v<const Key&, std::string_view>) {
    return key;
  } else {
    return {};
  }
}

}  // namespace detail

/// Deduplicates concurrent calls by key: the first caller for a key starts the operation, every
/// caller arriving while it runs joins it, and all of them receive the same outcome — a copy of
/// the value (or a `shared_ptr<const T>` to the one value, with execute_shared), the same error,
/// the same exception_ptr. The key is unlinked when the flight completes, before any joiner
/// resumes, so a caller arriving later starts a fresh flight.
///
///     weft::resilience::single_flight<std::string, profile> flights;
///     profile p = co_await flights.execute(user_id, [&] { return backend.load(user_id); });
///
/// Cancellation: a cancelled caller leaves at once with `cancelled`; the operation is stopped
/// only when every waiter has left, and then the flight is unlinked at once, so new callers start
/// afresh while the old operation winds down. The operation runs as its own task (it outlives
/// the caller that started it when others still wait), owning `op`; it must not refer to the
/// starting caller's frame — except through join_scoped_shared (and the layer form), where the
/// caller that starts a flight hosts it and returns only once the operation finished.
/// Events: flight_joined for each caller that joins a flight in the air.
/// Thread safety: every member may be called from tasks on any worker. T must be copyable for
/// join/execute (each joiner gets a copy).
template <class Key, class T, class Hash = std::hash<Key>, class Eq = std::equal_to<Key>>
class single_flight {
  using table = detail::flight_table<Key, T, Hash, Eq>;
  using flight_type = detail::flight<Key, T>;

 public:
  explicit single_flight(single_flight_options<Key> options = {})
      : table_(std::make_shared<table>()), opts_(std::move(options)), tel_(opts_.name) {}
  single_flight(const single_flight&) = delete;
  single_flight& operator=(const single_flight&) = delete;

  /// The shared outcome of the flight for `key`, started with `op` (op() or
  /// op(resilience_context&) returning task<T> or task<call_outcome<T>>) if none is in the air.
  /// Never null; never throws for the operation's failures.
  template <class F>
  task<std::shared_ptr<const call_outcome<T>>> join_shared(Key key, F op) {
    check_op<F>();
    auto entered = table_->enter(std::move(key));
    std::shared_ptr<flight_type> f = std::move(entered.first);
    if (entered.second) {
      start_detached(f, std::move(op));
    } else {
      joined(nullptr, f->key);
    }
    auto done = co_await wait_for(std::move(f), cancel_token{});
    co_return done;
  }

  /// join_shared, but the caller that starts a flight hosts it: it returns only once the
  /// operation finished — even when cancelled while others still wait — so `op` may refer to the
  /// caller's frame (a layer's continuation). The operation gets a copy of `ctx` with its own
  /// cancellation; `ctx.token` is observed besides the awaiting task's own.
  template <class F>
  task<std::shared_ptr<const call_outcome<T>>> join_scoped_shared(Key key, F op,
                                                                  const resilience_context& ctx) {
    check_op<F>();
    auto entered = table_->enter(std::move(key));
    std::shared_ptr<flight_type> f = std::move(entered.first);
    if (!entered.second) {
      joined(&ctx, f->key);
      auto done = co_await wait_for(std::move(f), ctx.token);
      co_return done;
    }
    auto flight = fly(table_, f, std::move(op), ctx);
    const auto own = co_await this_task::cancel_token();
    std::atomic<bool> asked{false};  // one leave per caller, though two tokens may fire
    std::atomic<bool> left{false};
    {
      const auto leave = [&]() noexcept {
        if (!asked.exchange(true)) left.store(table_->leave(*f));
      };
      cancel_callback on_ctx{ctx.token, leave};
      cancel_callback on_own{own, leave};
      // Not cancellable: the operation may use this frame. Its own cancellation is the
      // flight's (fly links it), requested once every waiter left.
      co_await weft::shielded(std::move(flight));
    }  // the callbacks' destructors wait for a running callback: `left` is final here
    if (left.load()) co_return cancelled_outcome();
    co_return std::shared_ptr<const call_outcome<T>>(f, &*f->result);
  }

  /// A copy of the flight's outcome (see join_shared).
  template <class F>
  task<call_outcome<T>> join(Key key, F op) {
    auto shared = co_await join_shared(std::move(key), std::move(op));
    co_return *shared;
  }

  /// The flight's result in the operation's own type, as pipeline::execute returns it: T (a
  /// failure rethrown, cancellation thrown as operation_cancelled), an expected-like E, or the
  /// outcome itself for operations returning task<call_outcome<T>>.
  template <class F>
  task<typename detail::op_traits<F>::caller_type> execute(Key key, F op) {
    auto o = co_await join(std::move(key), std::move(op));
    if constexpr (detail::op_traits<F>::returns_outcome) {
      co_return o;
    } else {
      co_return std::move(o).get();
    }
  }

  /// The one value every joiner shares, without copying it. Failures are thrown (or, for an
  /// expected-like T, injected) as by execute.
  template <class F>
  task<std::shared_ptr<const T>> execute_shared(Key key, F op) {
    static_assert(!std::is_void_v<T>,
                  "weft::resilience::single_flight: execute_shared needs a value");
    auto shared = co_await join_shared(std::move(key), std::move(op));
    if (shared->holds_result()) co_return std::shared_ptr<const T>(shared, &shared->value());
    auto copy = *shared;
    co_return std::make_shared<const T>(std::move(copy).get());  // throws unless expected-like
  }

  /// The layer protocol: calls with the same key (key_of(ctx), or Key(ctx.key)) share one run
  /// of the inner layers; the caller that starts it hosts it (see join_scoped_shared).
  template <class R, class Next>
  task<call_outcome<R>> run(resilience_context& ctx, Next next) {
    static_assert(std::is_same_v<R, T>,
                  "weft::resilience::single_flight<Key, T>: the operation must produce T");
    std::optional<Key> key;
    try {
      key = key_for(ctx);
    } catch (...) {
      co_return call_outcome<R>::from_exception(std::current_exception());
    }
    auto shared = co_await join_scoped_shared(std::move(*key), continuation<R, Next>{next}, ctx);
    co_return *shared;
  }

  /// Runs `op` through this layer alone (its key from key_of or the context's key).
  template <class F>
  auto execute(F op) {
    return weft::resilience::execute(*this, std::move(op));
  }

  /// True while a flight for `key` is in the air (and not abandoned).
  [[nodiscard]] bool in_flight(const Key& key) const {
    std::lock_guard guard{table_->lock};
    return table_->flights.contains(key);
  }
  /// Flights in the air.
  [[nodiscard]] std::size_t size() const {
    std::lock_guard guard{table_->lock};
    return table_->flights.size();
  }

  [[nodiscard]] telemetry& observers() noexcept { return tel_; }

 private:
  // A layer's continuation as an operation: a fresh run of the inner layers per call.
  template <class R, class Next>
  struct continuation {
    Next next;
    task<call_outcome<R>> operator()(resilience_context& ctx) const {
      return as_task<R>(next, ctx);
    }
  };

  template <class F>
  static void check_op() {
    static_assert(std::is_same_v<typename detail::op_traits<F>::result, T>,
                  "weft::resilience::single_flight<Key, T>: the operation must return task<T> or "
                  "task<call_outcome<T>>");
  }

  Key key_for(const resilience_context& ctx) const {
    if (opts_.key_of) return opts_.key_of(ctx);
    if constexpr (std::is_constructible_v<Key, std::string_view>) {
      return Key(ctx.key);
    } else {
      throw std::logic_error(
          "weft::resilience::single_flight: Key cannot be made from ctx.key; set "
          "single_flight_options::key_of to use it as a layer");
    }
  }

  static std::shared_ptr<const call_outcome<T>> cancelled_outcome() {
    return std::make_shared<const call_outcome<T>>(call_outcome<T>::cancelled());
  }

  void joined(const resilience_context* ctx, const Key& key) const {
    if (!tel_.active()) return;
    resilience_context local;
    if (ctx == nullptr) local.key = detail::key_text(key);
    tel_.emit(tel_.make(event_kind::flight_joined, ctx != nullptr ? *ctx : local));
  }

  // The operation, as its own task: under the flight's own stop (not the starting caller's),
  // its outcome published to every waiter.
  template <class F>
  static task<void> fly(std::shared_ptr<table> t, std::shared_ptr<flight_type> f, F op,
                        resilience_context ctx) {
    ctx.token = f->stop.token();
    std::optional<task<call_outcome<T>>> flight;
    try {
      flight.emplace(flight_outcome(op, ctx));
    } catch (...) {
      // Not even a frame for it: every waiter gets the reason rather than waiting forever.
      t->finish(*f, call_outcome<T>::from_exception(std::current_exception()));
      co_return;
    }
    call_outcome<T> o = co_await std::move(*flight);
    t->finish(*f, std::move(o));
  }

  // The operation's outcome, its exception included. Each path returns its own outcome: R may be
  // move-constructible only, so one is never assigned over another.
  template <class F>
  static task<call_outcome<T>> flight_outcome(F& op, resilience_context& ctx) {
    using X = typename detail::op_traits<F>::value;
    std::exception_ptr thrown;
    try {
      auto work = detail::invoke_op(op, ctx);
      if constexpr (std::is_same_v<X, call_outcome<T>>) {
        co_return co_await with_cancellation(ctx.token, std::move(work));
      } else if constexpr (std::is_void_v<X>) {
        co_await with_cancellation(ctx.token, std::move(work));
        co_return call_outcome<T>::success();
      } else {
        co_return call_outcome<T>::success(co_await with_cancellation(ctx.token, std::move(work)));
      }
    } catch (...) {
      thrown = std::current_exception();
    }
    co_return call_outcome<T>::from_exception(std::move(thrown));
  }

  template <class F>
  void start_detached(const std::shared_ptr<flight_type>& f, F op) {
    try {
      weft::spawn(fly(table_, f, std::move(op), resilience_context{})).detach();
    } catch (...) {
      // Could not start it: every waiter gets the reason rather than waiting forever.
      table_->finish(*f, call_outcome<T>::from_exception(std::current_exception()));
    }
  }

  static task<void> wait_done(flight_type* f) { co_await f->done.wait(); }

  // Waits for the flight. A cancelled waiter leaves it from the cancellation callback itself, so
  // when the last one leaves the flight is unlinked (and stopped) as the cancellation is
  // requested, not when the waiter next runs.
  task<std::shared_ptr<const call_outcome<T>>> wait_for(std::shared_ptr<flight_type> f,
                                                        cancel_token extra) {
    const auto own = co_await this_task::cancel_token();
    std::atomic<bool> asked{false};  // one leave per waiter, though two tokens may fire
    const auto leave = [&]() noexcept {
      if (!asked.exchange(true)) (void)table_->leave(*f);
    };
    bool cancelled = false;
    {
      cancel_callback on_own{own, leave};
      cancel_callback on_extra{extra, leave};
      try {
        if (extra.can_be_cancelled() && !(extra == own)) {
          co_await with_cancellation(extra, wait_done(f.get()));
        } else {
          co_await f->done.wait();
        }
      } catch (const operation_cancelled&) {
        cancelled = true;
      }
    }
    if (cancelled) {
      leave();  // already done by a callback, unless the wait was cancelled some other way
      co_return cancelled_outcome();
    }
    co_return std::shared_ptr<const call_outcome<T>>(f, &*f->result);
  }

  std::shared_ptr<table> table_;
  single_flight_options<Key> opts_;
  telemetry tel_;
};

}  // namespace weft::resilience
