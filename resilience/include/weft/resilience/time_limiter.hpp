// weft::resilience::time_limiter: bounds the layers inside it and the operation by a deadline
// (docs/resilience-rules.md "Timeout and deadlines"): it propagates the deadline through the
// context, cancels the operation at the deadline and waits for it to stop, or, in
// on_timeout::detach mode, returns at the deadline and leaves the operation running on its own.
//
// Thread safety: one layer may serve any number of calls from any worker (see the class); the count
// of detached operations is atomic. In on_timeout::detach mode the operation runs as a task of its
// own, possibly on another worker, on a copy of the context.
//
// Cancellation: the caller's cancellation (the awaiting task's token or ctx.token) is passed on to
// the operation. In await mode the layer waits until the operation stopped, then returns cancelled
// (a value or error the operation returns anyway is kept). In detach mode it returns cancelled at
// once and the operation, asked to stop, runs on detached (awaited instead while max_detached are
// running). Only a stop caused by the deadline becomes errc::timeout (inherited deadlines: below).
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <weft/cancel/cancel_scope.hpp>
#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/shielded.hpp>
#include <weft/join_handle.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/detail/pinned.hpp>
#include <weft/resilience/detail/quiet_wait.hpp>
#include <weft/resilience/error.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/spawn.hpp>
#include <weft/sync/spin_lock.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/clock.hpp>
#include <weft/time/sleep.hpp>

namespace weft::resilience {

/// What a timeout layer does with an operation that is still running at the deadline.
enum class on_timeout : std::uint8_t {
  /// Request its cancellation and wait until it stopped, then return (structured concurrency,
  /// as in folly and Polly's optimistic timeout). The default.
  await,
  /// Request its cancellation, return at the deadline and let it finish on its own (Polly's
  /// pessimistic timeout, for code that ignores cancellation).
  detach,
};

/// A timeout layer's settings. There is no default duration (docs/resilience-rules.md); the
/// standard pipeline uses 30 s in total and 10 s per attempt.
struct timeout_options {
  /// How long the layers inside and the operation may take; must be positive.
  clock::duration duration{};
  on_timeout mode = on_timeout::await;
  /// on_timeout::detach only: at most this many operations detached at once. An operation
  /// that times out while the cap is reached is awaited instead, as in on_timeout::await.
  std::optional<std::size_t> max_detached{};
  /// The layer's name in events and metrics.
  std::string name = "timeout";
};

namespace detail {

/// How detach mode copies the operation out of the caller's frame: `next` ends in op_tail, which
/// points at the callable in execute()'s frame, gone once the caller returned. The detached task
/// owns a copy and rebinds the chain to it; the layers' tuple is the pipeline's and stays put.
template <class Next>
struct detach_traits {
  static constexpr bool supported = false;
};
template <class R, class F>
struct detach_traits<op_tail<R, F>> {
  static constexpr bool supported = std::is_copy_constructible_v<F>;
  using storage = F;
  static const F& op_of(const op_tail<R, F>& t) noexcept { return *t.op; }
  static op_tail<R, F> rebind(const op_tail<R, F>&, F& copy) noexcept { return {&copy}; }
};
template <class R, std::size_t I, class Layers, class Tail>
struct detach_traits<next_fn<R, I, Layers, Tail>> {
  using inner = detach_traits<Tail>;
  static constexpr bool supported = inner::supported;
  template <class N>
  static const auto& op_of(const N& n) noexcept {
    return inner::op_of(n.tail);
  }
  template <class N, class S>
  static N rebind(const N& n, S& copy) noexcept {
    return N{n.layers, inner::rebind(n.tail, copy)};
  }
};

/// What the layer and its detached operations share: the count of operations running detached,
/// and the telemetry to report it to while the layer exists (a detached frame destroyed at
/// runtime shutdown may outlive the layer).
struct detach_registry {
  std::atomic<std::size_t> count{0};
  weft::spin_lock lock;
  const telemetry* tel = nullptr;  // guarded by lock; null once the layer is gone

  void report(std::size_t n) noexcept {
    lock.lock();
    if (tel != nullptr) tel->gauge_value(gauge::detached, {}, static_cast<double>(n));
    lock.unlock();
  }
};

/// Lives in a detached operation's frame (as a parameter, so it is destroyed even if the task
/// never ran its body): when the frame goes, an operation the layer detached leaves the count.
struct detach_guard {
  static constexpr std::uint8_t detached_bit = 1, finished_bit = 2;
  struct flags {
    std::atomic<std::uint8_t> bits{0};
  };
  std::shared_ptr<detach_registry> registry;
  std::shared_ptr<flags> state;

  detach_guard(std::shared_ptr<detach_registry> r, std::shared_ptr<flags> f) noexcept
      : registry(std::move(r)), state(std::move(f)) {}
  detach_guard(detach_guard&&) noexcept = default;
  detach_guard(const detach_guard&) = delete;
  detach_guard& operator=(const detach_guard&) = delete;
  detach_guard& operator=(detach_guard&&) = delete;
  ~detach_guard() {
    if (!state) return;  // moved from
    if (state->bits.fetch_or(finished_bit, std::memory_order_acq_rel) & detached_bit) {
      registry->report(registry->count.fetch_sub(1, std::memory_order_acq_rel) - 1);
    }
  }
};

template <class R>
task<call_outcome<R>> join_or_stop(join_handle<call_outcome<R>>& h, bool& joined) {
  try {
    call_outcome<R> o = co_await h;
    joined = true;
    co_return o;
  } catch (const operation_cancelled&) {
    co_return call_outcome<R>::cancelled();  // the wait was cancelled: by the deadline or the
                                             // caller
  }
}

template <class R>
task<call_outcome<R>> join_quietly(join_handle<call_outcome<R>>& h) {
  try {
    co_return co_await h;
  } catch (...) {
    co_return call_outcome<R>::from_exception(std::current_exception());
  }
}

template <class R, class Next, class Op>
task<call_outcome<R>> run_detachable(Next next, Op op, resilience_context ctx, std::string key,
                                     std::string pipeline, detach_guard guard) {
  (void)guard;  // kept in the frame: its destructor reports the end of a detached operation
  ctx.key = key;
  ctx.pipeline = pipeline;
  ctx.token = co_await this_task::cancel_token();
  const Next bound = detach_traits<Next>::rebind(next, op);
  co_return co_await bound(ctx);
}

/// A timeout layer's state and logic; the time_limiter handle below owns it (see pinned).
class timeout_impl {
 public:
  explicit timeout_impl(timeout_options options)
      : options_(std::move(options)),
        tel_(options_.name),
        registry_(std::make_shared<detail::detach_registry>()) {
    if (options_.duration <= clock::duration::zero()) {
      throw std::invalid_argument(
          "weft::resilience::time_limiter: duration must be positive, got " +
          std::to_string(options_.duration.count()) + " ns; there is no default duration");
    }
    registry_->tel = &tel_;
  }
  timeout_impl(const timeout_impl&) = delete;
  timeout_impl& operator=(const timeout_impl&) = delete;
  ~timeout_impl() {
    registry_->lock.lock();
    registry_->tel = nullptr;
    registry_->lock.unlock();
  }

  template <class R, class Next>
  task<call_outcome<R>> run(resilience_context& ctx, Next next) {
    if (options_.mode == on_timeout::detach) return run_detached<R>(ctx, next);
    return run_awaited<R>(ctx, next);
  }

  [[nodiscard]] const timeout_options& options() const noexcept { return options_; }
  [[nodiscard]] std::size_t detached() const noexcept {
    return registry_->count.load(std::memory_order_acquire);
  }
  [[nodiscard]] telemetry& observers() noexcept { return tel_; }

 private:
  struct window {
    clock::time_point started;
    clock::time_point deadline;
    bool inherited;
  };
  window open(const resilience_context& ctx) const noexcept {
    // One clock read per call: it is a fifth of the layer's cost (vDSO clock_gettime).
    const auto now = clock::now();
    const auto own = detail::saturating_deadline(now, options_.duration);
    const bool inherited = ctx.deadline && *ctx.deadline <= own;
    return {now, inherited ? *ctx.deadline : own, inherited};
  }

  /// The deadline, not the caller, ended the call (who owns the timeout: docs/resilience-rules.md
  /// "Timeout and deadlines").
  static bool by_deadline(const cancel_scope& scope, const window& w) noexcept {
    return scope.deadline_reached() && !(w.inherited && scope.linked_cancellation_requested());
  }

  template <class R>
  call_outcome<R> timed_out(const resilience_context& ctx, const window& w, event_kind kind) const {
    if (tel_.active()) {
      auto e = tel_.make(kind, ctx);
      e.outcome = outcome_kind::error;
      e.error = errc::timeout;
      e.attempt = ctx.attempt;
      e.delay = clock::now() - w.started;
      tel_.emit(e);
    }
    return call_outcome<R>::failure(errc::timeout);
  }

  struct context_restore {
    resilience_context& ctx;
    std::optional<clock::time_point> deadline;
    cancel_token token;
    context_restore(resilience_context& c, std::optional<clock::time_point> d, cancel_token t)
        : ctx(c), deadline(d), token(std::move(t)) {}
    context_restore(const context_restore&) = delete;
    context_restore& operator=(const context_restore&) = delete;
    ~context_restore() {
      ctx.deadline = deadline;
      ctx.token = token;
    }
  };

  template <class R, class Next>
  task<call_outcome<R>> run_awaited(resilience_context& ctx, Next next) {
    const window w = open(ctx);
    const auto outer_deadline = ctx.deadline;
    const cancel_token outer_token = ctx.token;
    cancel_scope scope(outer_token);
    // The caller's deadline and token come back however this ends (an inner layer that throws
    // while starting included), before the scope they would otherwise point at is gone.
    context_restore restore(ctx, outer_deadline, outer_token);
    scope.cancel_at(w.deadline);
    ctx.deadline = w.deadline;
    ctx.token = scope.token();
    // next(ctx) is an inner layer's task, or the operation's awaiter: either runs under the
    // scope's token without a task of its own.
    call_outcome<R> o = co_await detail::as_outcome<R>(scope.run(next(ctx)));
    co_await scope.close();
    ctx.deadline = outer_deadline;
    ctx.token = outer_token;
    if (detail::is_cancellation(o) && by_deadline(scope, w)) {
      co_return timed_out<R>(ctx, w, event_kind::timeout);
    }
    co_return o;
  }

  template <class R, class Next>
  task<call_outcome<R>> run_detached(resilience_context& ctx, Next next) {
    using traits = detail::detach_traits<Next>;
    if constexpr (!traits::supported) {
      co_return call_outcome<R>::from_exception(std::make_exception_ptr(std::logic_error(
          "weft::resilience::time_limiter: on_timeout::detach needs a copyable operation run "
          "through "
          "a pipeline or execute(), so that the detached task can own a copy; make the callable "
          "copyable or use on_timeout::await")));
    } else {
      const window w = open(ctx);
      auto flags = std::make_shared<detail::detach_guard::flags>();
      resilience_context copy = ctx;
      copy.deadline = w.deadline;
      auto body = detail::run_detachable<R, Next>(next, traits::op_of(next), std::move(copy),
                                                  std::string(ctx.key), std::string(ctx.pipeline),
                                                  detail::detach_guard{registry_, flags});
      auto handle = weft::spawn(std::move(body));

      cancel_scope scope(ctx.token);
      scope.cancel_at(w.deadline);
      bool joined = false;
      call_outcome<R> o =
          co_await detail::as_outcome<R>(scope.run(detail::join_or_stop<R>(handle, joined)));
      co_await scope.close();
      if (joined) co_return o;  // finished in time (or at exactly the deadline)

      handle.cancel();  // cancellable code stops early; the rest runs on, detached or awaited
      if (!reserve_detach()) {
        auto rest = detail::join_quietly<R>(handle);
        call_outcome<R> late = co_await weft::shielded(std::move(rest));
        if (!detail::is_cancellation(late)) co_return late;  // finished anyway: as in await mode
      } else {
        const auto before =
            flags->bits.fetch_or(detail::detach_guard::detached_bit, std::memory_order_acq_rel);
        if ((before & detail::detach_guard::finished_bit) != 0) {
          registry_->count.fetch_sub(1, std::memory_order_acq_rel);  // it just ended
        } else {
          registry_->report(detached());
          if (tel_.active()) {
            auto e = tel_.make(event_kind::timeout_detached, ctx);
            e.attempt = ctx.attempt;
            e.delay = clock::now() - w.started;
            tel_.emit(e);
          }
        }
        handle.detach();
      }
      if (by_deadline(scope, w)) co_return timed_out<R>(ctx, w, event_kind::timeout);
      co_return call_outcome<R>::cancelled();
    }
  }

  /// Counts one more detached operation unless max_detached are running.
  bool reserve_detach() noexcept {
    auto n = registry_->count.load(std::memory_order_relaxed);
    do {
      if (options_.max_detached && n >= *options_.max_detached) return false;
    } while (!registry_->count.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel));
    return true;
  }

  timeout_options options_;
  telemetry tel_;
  std::shared_ptr<detail::detach_registry> registry_;
};

}  // namespace detail

/// Bounds the layers inside it and the operation by a deadline.
///
///     weft::resilience::time_limiter attempt{std::chrono::seconds{10}};
///     weft::resilience::pipeline pipe{weft::resilience::time_limiter{std::chrono::seconds{30}},
///                                      retry, attempt};
///     auto reply = co_await pipe.execute([&](resilience_context& ctx) {
///       return backend.call(request, ctx.remaining());  // sees min(30 s total, 10 s attempt)
///     });
///
/// The rules (docs/resilience-rules.md "Timeout and deadlines"):
/// - The inner layers and the operation see `ctx.deadline = min(outer deadline, now + duration)`
///   and `ctx.token`, a token cancelled by the caller or by the deadline; both are restored
///   afterwards.
/// - At the deadline the layer requests the operation's cancellation and waits until it stopped
///   (on_timeout::await). It then returns errc::timeout, unless the caller's cancellation was
///   requested first: then the operation's cancellation is returned (outcome kind cancelled).
/// - Ties go to the result: the cancellation comes after everything the deadline's instant woke
///   has run, so an operation completing at exactly the deadline succeeds.
/// - A layer whose deadline was inherited (the outer one was not later than now + duration)
///   leaves the timeout to the outer layer that owns it: when both expire together it returns
///   cancelled, and the outer one returns timeout.
/// - An operation that ignores the cancellation and finishes anyway keeps its result (a value
///   or its own error is returned as it is, as weft::timeout and Polly do): only a stop by the
///   deadline becomes errc::timeout.
/// - on_timeout::detach returns at the deadline (with errc::timeout, or cancelled if the caller
///   cancelled) and leaves the operation running; detached() and the `detached` gauge count
///   those still running. When max_detached are running, a timed-out operation is awaited
///   instead, exactly as on_timeout::await does.
///
/// Cost: on_timeout::await runs the operation as the caller's own child (no task is spawned):
/// a timer in the worker's wheel and a linked cancellation per call. on_timeout::detach spawns
/// the operation as a task on every call, so that it can outlive the caller.
///
/// Lifetimes in detach mode: the detached task owns a copy of the operation callable (it must be
/// copyable; a move-only one is refused with a std::logic_error outcome), of the context and of
/// its key and pipeline name; it refers to the layers inside the timeout, so the pipeline must
/// outlive the detached operations (wait until detached() is 0), as it must outlive its calls.
/// The operation's arguments captured by reference are the caller's responsibility, as for
/// spawn. Only pipelines and execute() can run detach mode (it needs to reach the callable).
///
/// Events: `timeout` when the deadline ended the call, `timeout_detached` when an operation was
/// left running. Thread safety: one layer may serve any number of calls from any worker.
/// Errors: a duration that is not positive throws std::invalid_argument at construction.
class time_limiter {
 public:
  template <class Rep, class Period>
  explicit time_limiter(std::chrono::duration<Rep, Period> d)
      : time_limiter(timeout_options{.duration = detail::to_clock_duration(d)}) {}
  explicit time_limiter(timeout_options options) : impl_(std::in_place, std::move(options)) {}
  /// Moves the layer; calls already running through it are not affected (see "Moving layers" in
  /// docs/resilience.md). The moved-from time_limiter may only be destroyed or assigned to.
  time_limiter(time_limiter&&) noexcept = default;
  time_limiter& operator=(time_limiter&&) noexcept = default;

  /// The layer protocol (see pipeline.hpp).
  template <class R, class Next>
  task<call_outcome<R>> run(resilience_context& ctx, Next next) {
    return impl_->template run<R>(ctx, next);
  }

  /// Runs `op` through this layer alone.
  template <class F>
  auto execute(F op) {
    return weft::resilience::execute(*this, std::move(op));
  }

  [[nodiscard]] clock::duration duration() const noexcept { return impl_->options().duration; }
  [[nodiscard]] on_timeout mode() const noexcept { return impl_->options().mode; }
  /// Operations detached by this layer that are still running.
  [[nodiscard]] std::size_t detached() const noexcept { return impl_->detached(); }
  [[nodiscard]] telemetry& observers() noexcept { return impl_->observers(); }

 private:
  detail::pinned<detail::timeout_impl> impl_;
};

}  // namespace weft::resilience
