// weft::resilience::bulkhead: at most max_concurrent calls at once, an optional FIFO queue whose
// waiters get released permits handed straight to them (no barging), and a bounded queue wait.
//
// Thread safety: every member may be used from any worker at once (see the class): permits and the
// queue are a weft::semaphore's, the queue bound is under a spin lock never held across a
// suspension. The bulkhead must outlive its calls; moving it moves its state.
//
// Cancellation: a queued call whose caller is cancelled (the awaiting task's token or ctx.token)
// returns cancelled, leaves the queue and holds no permit: one handed to it at that moment goes on
// to the next waiter or back to the pool. An admitted call keeps its permit until the inner layers
// return, whatever they return; the permit comes back on every outcome and when the call's frame is
// destroyed, so none leaks.
#pragma once

#include <cassert>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <weft/cancel/cancel_scope.hpp>
#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/or_cancelled.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/detail/pinned.hpp>
#include <weft/resilience/detail/quiet_wait.hpp>
#include <weft/resilience/error.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/sync/spin_lock.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

/// How a bulkhead limits concurrency (docs/resilience-rules.md "Bulkhead", resilience4j's
/// defaults).
struct bulkhead_options {
  /// A max_queue_wait that never runs out: a queued call waits until it gets a permit or is
  /// cancelled.
  static constexpr clock::duration unbounded_wait = clock::duration::max();

  /// Calls inside at once (at least 1).
  std::size_t max_concurrent = 25;
  /// Calls that may wait for a permit, in FIFO order; more are rejected with bulkhead_full.
  std::size_t max_queue = 0;
  /// How long a queued call waits before it is rejected with bulkhead_full. 0 means a call that
  /// would have to queue is rejected at once, whatever max_queue says (resilience4j's
  /// maxWaitDuration = 0).
  clock::duration max_queue_wait{0};
  /// The layer's name in events and metrics.
  std::string name = "bulkhead";
};

/// A snapshot of a bulkhead's counts.
struct bulkhead_metrics {
  std::size_t max_concurrent = 0;
  std::size_t available = 0;  // permits free now
  std::size_t inflight = 0;   // permits held now (max_concurrent - available)
  std::size_t queued = 0;     // calls waiting for a permit
};

namespace detail {

inline void validate(const bulkhead_options& o) {
  if (o.max_concurrent == 0) {
    throw std::invalid_argument("weft::resilience::bulkhead: max_concurrent must be at least 1");
  }
  if (o.max_queue_wait < clock::duration::zero()) {
    throw std::invalid_argument(
        "weft::resilience::bulkhead: max_queue_wait must not be negative (0 rejects a call that "
        "would have to queue; bulkhead_options::unbounded_wait waits without a limit)");
  }
}

/// A bulkhead's state and logic; the bulkhead handle below owns it (see pinned), and its permits
/// and queued calls point here, so they survive the handle's moves. The permits are a
/// weft::semaphore's (FIFO: a released permit goes to the oldest waiter); the bulkhead adds the
/// queue bound, the queue deadline (a cancel_scope) and the events.
class bulkhead_impl {
 public:
  explicit bulkhead_impl(bulkhead_options options)
      : options_((detail::validate(options), std::move(options))),
        own_telemetry_(options_.name),
        telemetry_(&own_telemetry_),
        permits_(options_.max_concurrent) {}
  bulkhead_impl(bulkhead_options options, telemetry& shared)
      : options_((detail::validate(options), std::move(options))),
        telemetry_(&shared),
        permits_(options_.max_concurrent) {}
  bulkhead_impl(const bulkhead_impl&) = delete;
  bulkhead_impl& operator=(const bulkhead_impl&) = delete;
  ~bulkhead_impl() {
    assert(queued_ == 0 && "weft::resilience::bulkhead destroyed with queued calls");
  }

  /// One of the bulkhead's permits, released when destroyed (or by release()); empty when
  /// try_acquire found none.
  class permit {
   public:
    permit() noexcept = default;
    permit(permit&&) noexcept = default;
    permit& operator=(permit&&) noexcept = default;
    /// Gives the permit back now: to the oldest waiter if any, else to the pool.
    void release() noexcept { held_.release(); }
    explicit operator bool() const noexcept { return static_cast<bool>(held_); }

   private:
    friend class bulkhead_impl;
    explicit permit(semaphore::permit p) noexcept : held_(std::move(p)) {}
    semaphore::permit held_;
  };

  /// Takes a permit if one is free and nobody waits (never waits; an empty permit otherwise).
  [[nodiscard]] permit try_acquire() noexcept {
    auto p = permits_.try_acquire();
    return p ? permit{std::move(*p)} : permit{};
  }

  /// The whole call as a coroutine: the path of a call that found no permit free.
  template <class R, class Next>
  task<call_outcome<R>> run(resilience_context& ctx, Next next);

  /// The inflight gauge, after an admission or a release.
  void report_inflight(const resilience_context& ctx) const noexcept {
    if (telemetry_->sink() == nullptr) return;
    const std::size_t inflight = options_.max_concurrent - permits_.available();
    telemetry_->gauge_value(gauge::inflight, ctx.key, static_cast<double>(inflight));
  }

  [[nodiscard]] telemetry& observers() noexcept { return *telemetry_; }
  [[nodiscard]] const bulkhead_options& options() const noexcept { return options_; }

  [[nodiscard]] bulkhead_metrics metrics() const noexcept {
    const auto c = permits_.counts();
    return {options_.max_concurrent, c.available, options_.max_concurrent - c.available, c.waiting};
  }

 private:
  enum class wait_end : std::uint8_t { granted, timed_out, cancelled, rejected };
  struct wait_result {
    permit held;
    wait_end end = wait_end::rejected;
  };

  // A place in the queue, counted against max_queue from admission until the wait ends
  // (however it ends, the frame's destruction at runtime shutdown included). A waiter handed a
  // permit keeps its place until it resumes: a newcomer in that instant may be refused a place it
  // would have had a moment later, never given one beyond max_queue. (metrics().queued counts the
  // semaphore's queue itself: the calls still waiting.)
  struct queue_place {
    bulkhead_impl* b;
    explicit queue_place(bulkhead_impl* owner) noexcept : b(owner) {}
    queue_place(const queue_place&) = delete;
    queue_place& operator=(const queue_place&) = delete;
    ~queue_place() {
      std::lock_guard guard{b->lock_};
      --b->queued_;
    }
  };

  /// The slow path: queue (or be rejected) and wait for a permit.
  task<wait_result> wait_for_permit(resilience_context& ctx);

  void emit(event_kind kind, const resilience_context& ctx, clock::duration waited) const {
    if (!telemetry_->active()) return;
    auto e = telemetry_->make(kind, ctx);
    e.delay = waited;
    if (kind == event_kind::bulkhead_rejected) {
      e.outcome = outcome_kind::error;
      e.error = errc::bulkhead_full;
    }
    telemetry_->emit(e);
  }

  const bulkhead_options options_;
  telemetry own_telemetry_;
  telemetry* telemetry_;
  semaphore permits_;
  mutable weft::spin_lock lock_;
  std::size_t queued_ = 0;  // calls admitted to the queue and still waiting; guarded by lock_
};

inline task<bulkhead_impl::wait_result> bulkhead_impl::wait_for_permit(resilience_context& ctx) {
  if (auto p = permits_.try_acquire())
    co_return wait_result{permit{std::move(*p)}, wait_end::granted};
  bool admitted = false;
  if (options_.max_queue_wait != clock::duration::zero()) {
    std::lock_guard guard{lock_};
    if (queued_ < options_.max_queue) {
      ++queued_;
      admitted = true;
    }
  }
  if (!admitted) {
    emit(event_kind::bulkhead_rejected, ctx, clock::duration::zero());
    co_return wait_result{permit{}, wait_end::rejected};
  }
  const auto queued_at = clock::now();
  std::optional<semaphore::permit> got;
  bool deadline_came = false;
  bool caller_cancelled = false;
  {
    queue_place place{this};
    emit(event_kind::bulkhead_queued, ctx, clock::duration::zero());
    // The awaiting task's cancellation, the context's and the queue deadline all end the wait.
    cancel_scope scope(ctx.token);
    if (options_.max_queue_wait != bulkhead_options::unbounded_wait) {
      scope.cancel_at(detail::saturating_add(queued_at, options_.max_queue_wait));
    }
    got = co_await scope.run(or_cancelled(permits_.acquire()));
    co_await scope.close();
    deadline_came = scope.deadline_reached();
    caller_cancelled = scope.linked_cancellation_requested();
  }
  // A permit handed over before the deadline or the caller's cancellation is used; one that
  // reached a wait already ended that way goes on to the next waiter (or back to the pool).
  if (got && !deadline_came && !caller_cancelled) {
    co_return wait_result{permit{std::move(*got)}, wait_end::granted};
  }
  got.reset();
  if (caller_cancelled || !deadline_came) co_return wait_result{permit{}, wait_end::cancelled};
  emit(event_kind::bulkhead_rejected, ctx, clock::now() - queued_at);
  co_return wait_result{permit{}, wait_end::timed_out};
}

template <class R, class Next>
task<call_outcome<R>> bulkhead_impl::run(resilience_context& ctx, Next next) {
  permit held = try_acquire();
  if (!held) {
    wait_result waited = co_await wait_for_permit(ctx);
    if (waited.end == wait_end::cancelled) co_return call_outcome<R>::cancelled();
    if (waited.end != wait_end::granted) {
      co_return call_outcome<R>::failure(errc::bulkhead_full).from_layer(telemetry_->shared_name());
    }
    held = std::move(waited.held);
  }
  report_inflight(ctx);
  call_outcome<R> o = co_await next(ctx);
  held.release();
  report_inflight(ctx);
  co_return o;
}

/// One call through a bulkhead, as an awaiter: a permit free at once (the common case) runs the
/// inner call in place, in the awaiting frame, and releases the permit when it returns; a call
/// that must queue (or be refused) runs the bulkhead's coroutine instead. The permit lives in the
/// awaiter, so it is released however the awaiting coroutine ends.
template <class R, class Next>
class bulkhead_call {
 public:
  bulkhead_call(bulkhead_impl* b, resilience_context& ctx, Next next)
      : b_(b), ctx_(&ctx), next_(next) {}

  void describe_await(weft::await_description& d) const { call_.describe_await(d); }
  bool await_ready() {
    held_ = b_->try_acquire();
    if (!held_) return call_.start_slow([this] { return b_->template run<R>(*ctx_, next_); });
    b_->report_inflight(*ctx_);
    return call_.start_inner([this] { return next_(*ctx_); });
  }
  template <class Promise>
  auto await_suspend(std::coroutine_handle<Promise> caller) {
    return call_.await_suspend(caller);
  }
  call_outcome<R> await_resume() {
    if (call_.slow()) return call_.await_resume();
    call_outcome<R> o = call_.await_resume();
    held_.release();
    b_->report_inflight(*ctx_);
    return o;
  }

 private:
  bulkhead_impl* b_;
  resilience_context* ctx_;
  Next next_;
  bulkhead_impl::permit held_;  // declared before the inner call: released after it is gone
  inner_or_slow<R, Next> call_;
};

}  // namespace detail

/// Limits how many calls run at once (max_concurrent), with an optional FIFO queue of callers
/// waiting for a permit (max_queue, max_queue_wait). A permit released while calls wait is handed
/// directly to the oldest waiter, so a newcomer never overtakes the queue. Rejections are
/// `bulkhead_full` (no retry_after: the bulkhead cannot know when a call ends).
///
///     weft::resilience::bulkhead pool{{.max_concurrent = 8, .max_queue = 100,
///                                      .max_queue_wait = 50ms}};
///     int v = co_await pool.execute([&] { return backend.get(key); });
///
/// Exact rules: a permit is taken at once only if one is free and nobody waits; otherwise the call
/// queues if max_queue_wait > 0 and fewer than max_queue wait, else it is rejected at once. A
/// queued call ends in one of three ways: it is handed a permit (and runs), its wait reaches
/// queued_at + max_queue_wait (bulkhead_full), or it is cancelled (outcome cancelled); the last two
/// never hold a permit afterwards. At equal instants the result wins, as for the timeout layer:
/// the deadline acts after everything its instant woke has run, so a permit handed over at the
/// deadline instant is used; a waiter whose caller was cancelled, or whose deadline acted, before
/// it resumed with a permit handed to it fails all the same and passes the permit on to the next
/// waiter (or back to the pool). Held permits are released on
/// every outcome, an exception or the frame's destruction included.
///
/// Events: bulkhead_queued (a call starts waiting), bulkhead_rejected (rejected at once, `delay`
/// 0, or after waiting, `delay` = how long it waited). Gauge: inflight, after each admission and
/// release. Thread safety: every member may be used from any worker; the bulkhead must outlive
/// its calls. Moving a bulkhead moves its state with it: permits held and calls queued are not
/// affected. Cancellation: the awaiting task's token and the context's token (when it is another
/// one) both cancel a queued wait. Errors: std::invalid_argument for max_concurrent 0 or a
/// negative max_queue_wait.
class bulkhead {
 public:
  /// One of the bulkhead's permits, released when destroyed (or by release()); empty when
  /// try_acquire found none.
  using permit = detail::bulkhead_impl::permit;

  explicit bulkhead(bulkhead_options options = {}) : impl_(std::in_place, std::move(options)) {}
  /// A bulkhead whose events go to `shared` (a family's observers), which must outlive it.
  bulkhead(bulkhead_options options, telemetry& shared)
      : impl_(std::in_place, std::move(options), shared) {}
  /// The moved-from bulkhead may only be destroyed or assigned to.
  bulkhead(bulkhead&&) noexcept = default;
  bulkhead& operator=(bulkhead&&) noexcept = default;

  /// Takes a permit if one is free and nobody waits (never waits; an empty permit otherwise).
  [[nodiscard]] permit try_acquire() noexcept { return impl_->try_acquire(); }

  /// The layer protocol: runs `next` holding a permit, or returns bulkhead_full / cancelled.
  template <class R, class Next>
  auto run(resilience_context& ctx, Next next) {
    return detail::bulkhead_call<R, Next>{impl_.operator->(), ctx, next};
  }

  /// Runs `op` through this bulkhead alone.
  template <class F>
  auto execute(F op) {
    return weft::resilience::execute(*this, std::move(op));
  }

  /// Listeners and metrics sink (named after options.name).
  [[nodiscard]] telemetry& observers() noexcept { return impl_->observers(); }
  [[nodiscard]] const bulkhead_options& options() const noexcept { return impl_->options(); }

  /// Permits free, held and calls queued, read together.
  [[nodiscard]] bulkhead_metrics metrics() const noexcept { return impl_->metrics(); }

 private:
  detail::pinned<detail::bulkhead_impl> impl_;
};

}  // namespace weft::resilience
