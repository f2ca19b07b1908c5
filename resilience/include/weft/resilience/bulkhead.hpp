// weft::resilience::bulkhead: at most max_concurrent calls at once, an optional FIFO queue whose
// waiters get released permits handed straight to them (no barging), and a bounded queue wait.
#pragma once

#include <cassert>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include <weft/cancel_token.hpp>
#include <weft/clock.hpp>
#include <weft/detail/spin_lock.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/operation_cancelled.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/detail/pinned.hpp>
#include <weft/resilience/detail/quiet_wait.hpp>
#include <weft/resilience/error.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/sync/detail/waiter_list.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/timeout.hpp>

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
/// A queued call, linked in the bulkhead's FIFO while it waits. Untimed waits park on it like a
/// semaphore's waiter; a timed wait sleeps instead, and a permit handed to it cancels the sleep
/// through `grant`.
struct bulkhead_waiter : weft::detail::waiter {
  cancel_source* grant = nullptr;
};

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
/// and queued calls point here, so they survive the handle's moves.
class bulkhead_impl {
 public:
  explicit bulkhead_impl(bulkhead_options options)
      : options_((detail::validate(options), std::move(options))),
        own_telemetry_(options_.name),
        telemetry_(&own_telemetry_),
        available_(options_.max_concurrent) {}
  bulkhead_impl(bulkhead_options options, telemetry& shared)
      : options_((detail::validate(options), std::move(options))),
        telemetry_(&shared),
        available_(options_.max_concurrent) {}
  bulkhead_impl(const bulkhead_impl&) = delete;
  bulkhead_impl& operator=(const bulkhead_impl&) = delete;
  ~bulkhead_impl() {
    assert(waiters_.empty() && "weft::resilience::bulkhead destroyed with queued calls");
  }

  /// One of the bulkhead's permits, released when destroyed (or by release()); empty when
  /// try_acquire found none.
  class permit {
   public:
    permit() noexcept = default;
    permit(permit&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
    permit& operator=(permit&& o) noexcept {
      if (this != &o) {
        release();
        b_ = std::exchange(o.b_, nullptr);
      }
      return *this;
    }
    permit(const permit&) = delete;
    permit& operator=(const permit&) = delete;
    ~permit() { release(); }
    /// Gives the permit back now: to the oldest waiter if any, else to the pool.
    void release() noexcept {
      if (b_ != nullptr) std::exchange(b_, nullptr)->release_one();
    }
    explicit operator bool() const noexcept { return b_ != nullptr; }

   private:
    friend class bulkhead_impl;
    explicit permit(bulkhead_impl* b) noexcept : b_(b) {}
    bulkhead_impl* b_ = nullptr;
  };

  /// Takes a permit if one is free and nobody waits (never waits; an empty permit otherwise).
  [[nodiscard]] permit try_acquire() noexcept {
    std::lock_guard guard{lock_};
    if (!waiters_.empty() || available_ == 0) return permit{};
    --available_;
    return permit{this};
  }

  template <class R, class Next>
  task<call_outcome<R>> run(resilience_context& ctx, Next next);

  [[nodiscard]] telemetry& observers() noexcept { return *telemetry_; }
  [[nodiscard]] const bulkhead_options& options() const noexcept { return options_; }

  [[nodiscard]] bulkhead_metrics metrics() const noexcept {
    std::lock_guard guard{lock_};
    return {options_.max_concurrent, available_, options_.max_concurrent - available_, queued_};
  }

 private:
  enum class admission : std::uint8_t { granted, queued, rejected };
  enum class wait_end : std::uint8_t { granted, timed_out, cancelled, rejected };
  struct wait_result {
    permit held;
    wait_end end = wait_end::rejected;
  };

  // Parks an untimed queued call (its waiter is linked already) until a permit or its task's
  // cancellation unlinks it; settle() reads the verdict. Never throws.
  class park_awaiter {
   public:
    park_awaiter(bulkhead_impl& b, detail::bulkhead_waiter& w) noexcept : b_(b), w_(w) {}
    /// "bulkhead queue (2 ahead)".
    void describe_await(weft::await_description& d) const {
      std::size_t ahead = 0;
      {
        std::lock_guard guard{b_.lock_};
        ahead = weft::detail::waiters_ahead(w_);
      }
      d.what = "bulkhead queue (" + std::to_string(ahead) + " ahead)";
    }
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      w_.caller = h;
      weft::detail::cancel_state* token = weft::detail::token_of(h);
      // Not waiter::begin(): the waiter is linked already, so its state belongs to whoever
      // unlinks it under the lock; a cancelled task just does not wait and settle() unlinks it.
      if (token != nullptr && token->is_cancelled()) return false;
      w_.rt = &weft::detail::require_runtime("weft::resilience::bulkhead");
      return w_.park(token, &on_cancel, this);
    }
    void await_resume() noexcept { w_.hook.disarm(); }

   private:
    static void on_cancel(void* self) noexcept {
      auto* a = static_cast<park_awaiter*>(self);
      a->b_.cancel_waiter(a->w_);
    }
    bulkhead_impl& b_;
    detail::bulkhead_waiter& w_;
  };

  /// Under the lock: a free permit (nobody waiting), a place in the queue, or a rejection.
  admission admit_locked(detail::bulkhead_waiter& w) noexcept {
    if (waiters_.empty() && available_ > 0) {
      --available_;
      return admission::granted;
    }
    if (options_.max_queue_wait == clock::duration::zero() || queued_ >= options_.max_queue) {
      return admission::rejected;
    }
    waiters_.push_back(&w);
    ++queued_;
    return admission::queued;
  }

  /// Hands the permit to the oldest waiter, or returns it to the pool.
  void release_one() noexcept {
    detail::bulkhead_waiter* wake = nullptr;
    {
      std::lock_guard guard{lock_};
      auto* w = static_cast<detail::bulkhead_waiter*>(waiters_.pop_front());
      if (w == nullptr) {
        ++available_;
        return;
      }
      --queued_;
      w->state = weft::detail::waiter::done;  // it owns the permit from now on
      if (w->grant != nullptr) {
        // A timed waiter sleeps in a child task: cancelling the sleep wakes it. Done under the
        // lock because `grant` lives in the waiter's frame: the waiter settles under this lock
        // before that frame can go away, so the source is alive for the whole call.
        w->grant->request_cancellation();
      } else {
        // Marked under the lock: a release from a plain thread must not race a shutdown that
        // destroys the waiter's task between this unlink and the wake (waiter_list.hpp).
        w->mark_waking();
        wake = w;
      }
    }
    if (wake != nullptr) wake->wake();
  }

  /// A parked waiter's cancellation: unlinks it unless a permit reached it first.
  void cancel_waiter(detail::bulkhead_waiter& w) noexcept {
    {
      std::lock_guard guard{lock_};
      if (!w.linked) return;  // handed a permit first: settle() passes it on
      waiters_.erase(&w);
      --queued_;
      w.state = weft::detail::waiter::cancelled;
    }
    w.wake();
  }

  /// After a queued wait, whatever ended it: the verdict, decided under the lock. A waiter still
  /// linked leaves the queue (timed out if its deadline came, else cancelled); one handed a
  /// permit keeps it unless its deadline came or its caller was cancelled meanwhile, in which
  /// case the permit goes on to the next waiter.
  wait_end settle(detail::bulkhead_waiter& w, bool deadline_came, bool caller_cancelled) noexcept {
    const wait_end failed =
        caller_cancelled || !deadline_came ? wait_end::cancelled : wait_end::timed_out;
    {
      std::lock_guard guard{lock_};
      if (w.linked) {
        waiters_.erase(&w);
        --queued_;
        return failed;
      }
      if (w.state != weft::detail::waiter::done) return wait_end::cancelled;
      if (!deadline_came && !caller_cancelled) return wait_end::granted;
    }
    release_one();
    return failed;
  }

  /// A queued call whose frame is destroyed before it settled (runtime shutdown destroying its
  /// task) leaves the queue, or passes on a permit handed to it meanwhile.
  void abandon(detail::bulkhead_waiter& w) noexcept {
    {
      std::lock_guard guard{lock_};
      if (w.linked) {
        waiters_.erase(&w);
        --queued_;
        return;
      }
      if (w.state != weft::detail::waiter::done) return;
    }
    release_one();
  }

  // Calls abandon() unless the wait settled normally.
  struct queue_exit {
    bulkhead_impl* b;
    detail::bulkhead_waiter* w;
    bool settled = false;
    queue_exit(bulkhead_impl* owner, detail::bulkhead_waiter* waiter) noexcept
        : b(owner), w(waiter) {}
    queue_exit(const queue_exit&) = delete;
    queue_exit& operator=(const queue_exit&) = delete;
    ~queue_exit() {
      if (!settled) b->abandon(*w);
    }
  };

  /// The slow path: queue (or be rejected) and wait for a permit.
  task<wait_result> wait_for_permit(resilience_context& ctx);

  void report_inflight(const resilience_context& ctx) const noexcept {
    if (telemetry_->sink() == nullptr) return;
    telemetry_->gauge_value(gauge::inflight, ctx.key, static_cast<double>(metrics().inflight));
  }

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
  mutable weft::detail::spin_lock lock_;
  // Invariant: available_ > 0 only while waiters_ is empty (a released permit goes to the oldest
  // waiter first); queued_ == the length of waiters_.
  std::size_t available_;
  std::size_t queued_ = 0;
  weft::detail::waiter_list waiters_;
};

inline task<bulkhead_impl::wait_result> bulkhead_impl::wait_for_permit(resilience_context& ctx) {
  detail::bulkhead_waiter w;
  cancel_source grant;
  const bool timed = options_.max_queue_wait != bulkhead_options::unbounded_wait;
  if (timed) w.grant = &grant;
  const auto queued_at = clock::now();
  admission a;
  {
    std::lock_guard guard{lock_};
    a = admit_locked(w);
  }
  if (a == admission::granted) co_return wait_result{permit{this}, wait_end::granted};
  if (a == admission::rejected) {
    emit(event_kind::bulkhead_rejected, ctx, clock::duration::zero());
    co_return wait_result{permit{}, wait_end::rejected};
  }
  queue_exit exit{this, &w};
  emit(event_kind::bulkhead_queued, ctx, clock::duration::zero());

  const cancel_token own = co_await this_task::cancel_token();
  const bool link_context = detail::needs_context_link(ctx, own);
  bool deadline_came = false;
  std::exception_ptr failure;
  try {
    if (timed) {
      auto sleep = detail::quietly(
          weft::detail::deadline_task(detail::saturating_add(queued_at, options_.max_queue_wait)),
          grant.token());
      if (link_context) {
        deadline_came = co_await detail::quietly(std::move(sleep), ctx.token);
      } else {
        deadline_came = co_await std::move(sleep);
      }
    } else if (link_context) {
      auto park = [](bulkhead_impl& b, detail::bulkhead_waiter& waiter) -> task<bool> {
        co_await park_awaiter{b, waiter};
        co_return false;
      };
      auto parked = park(*this, w);
      (void)co_await detail::quietly(std::move(parked), ctx.token);
    } else {
      co_await park_awaiter{*this, w};
    }
  } catch (const operation_cancelled&) {
    // A wait cancelled before it started: settle() finds the waiter still linked.
  } catch (...) {
    failure = std::current_exception();
  }
  const bool caller_cancelled =
      own.is_cancellation_requested() || ctx.token.is_cancellation_requested();
  // A failed wait settles as a cancelled one: it leaves the queue or passes on a permit handed
  // to it meanwhile, so the exception leaks nothing.
  const wait_end end = settle(w, deadline_came, failure != nullptr || caller_cancelled);
  exit.settled = true;
  if (failure != nullptr) std::rethrow_exception(failure);  // only an allocation failure
  if (end == wait_end::granted) co_return wait_result{permit{this}, wait_end::granted};
  if (end == wait_end::timed_out) {
    emit(event_kind::bulkhead_rejected, ctx, clock::now() - queued_at);
  }
  co_return wait_result{permit{}, end};
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
/// never hold a permit afterwards. At equal instants the first event wins: a permit handed over
/// before the wait's timer fired is used, even at the deadline instant; a waiter whose timer fired
/// or whose caller was cancelled before it resumed with a permit handed to it fails all the same
/// and passes the permit on to the next waiter (or back to the pool). Held permits are released on
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
  task<call_outcome<R>> run(resilience_context& ctx, Next next) {
    return impl_->template run<R>(ctx, next);
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
