// weft::resilience::adaptive_limit: a concurrency limit that adapts to the latency and drops it
// observes, with the AIMD, Vegas and Gradient2 algorithms of Netflix's concurrency-limits
// library (same formulas, same defaults); rejects with limit_exceeded at the limit, or queues the
// excess LIFO.
//
// Thread safety: one limiter serves calls from any worker at once; its state changes under a spin
// lock never held across a suspension (see the class). A custom rng or dropped_when predicate is
// called from whichever worker runs the call.
//
// Cancellation: a queued call whose caller is cancelled (the awaiting task's token or ctx.token)
// returns cancelled and takes no slot; a slot handed to it at that moment goes on to the next
// waiter. An admitted call keeps its slot until the inner layers return; a cancelled outcome gives
// no sample (the limit does not move), and the slot is released however the call ends, its frame's
// destruction included.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include <weft/cancel/cancel_scope.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/or_cancelled.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/classify.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/detail/pinned.hpp>
#include <weft/resilience/detail/quiet_wait.hpp>
#include <weft/resilience/error.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/rng.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/spin_lock.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

/// Loss-based limit (Netflix AIMDLimit): +1 while the calls in flight use at least half the
/// limit, ×backoff_ratio on a drop or an RTT above `timeout`, clamped to [min_limit, max_limit].
///
///     limit = drop || rtt > timeout ? ⌊limit · backoff_ratio⌋
///           : inflight · 2 >= limit ? limit + 1 : limit
struct aimd {
  int initial_limit = 20;  // AIMDLimit.Builder defaults
  int min_limit = 20;
  int max_limit = 200;
  double backoff_ratio = 0.9;  // in [0.5, 1)
  clock::duration timeout = std::chrono::seconds{5};
};

/// Delay-based limit after TCP Vegas (Netflix VegasLimit). With rtt_noload the smallest RTT seen
/// (re-probed every probe_jitter · probe_multiplier · limit samples, jitter in [0.5, 1) drawn from
/// the rng), queue = ⌈limit · (1 − rtt_noload / rtt)⌉ and, with log10 as Netflix's
/// Log10RootFunction (max(1, ⌊log10 n⌋) below 1000, ⌊√n⌋ from 1000):
///   drop → decrease; inflight · 2 < limit → unchanged; queue <= threshold → limit + beta;
///   queue < alpha → increase; queue > beta → decrease; otherwise unchanged;
/// then clamped to [1, max_concurrency] and smoothed: (1 − smoothing)·limit + smoothing·new.
/// A function left empty takes Netflix's default (in the comment beside it).
struct vegas {
  int initial_limit = 20;  // VegasLimit.Builder defaults
  int max_concurrency = 1000;
  double smoothing = 1.0;
  int probe_multiplier = 30;
  std::function<int(int)> alpha{};           // 3 · log10(limit)
  std::function<int(int)> beta{};            // 6 · log10(limit)
  std::function<int(int)> threshold{};       // log10(limit)
  std::function<double(double)> increase{};  // limit + log10(limit)
  std::function<double(double)> decrease{};  // limit − log10(limit)
};

/// Gradient of the RTT against its long-term average (Netflix Gradient2Limit). With long_rtt an
/// exponential average over long_window samples (the plain mean of the first 10), cut by 5 % when
/// it exceeds twice the sample:
///   inflight < limit / 2 → unchanged; otherwise
///   gradient = clamp(rtt_tolerance · long_rtt / rtt, 0.5, 1),
///   new = (1 − smoothing) · limit + smoothing · (gradient · limit + queue_size),
/// clamped to [min_limit, max_concurrency]. Drops are not used (as in Netflix's code).
struct gradient2 {
  int initial_limit = 20;  // Gradient2Limit.Builder defaults
  int min_limit = 20;
  int max_concurrency = 200;
  double smoothing = 0.2;
  std::function<int(int)> queue_size{};  // 4, whatever the limit
  int long_window = 600;
  double rtt_tolerance = 1.5;
};

/// A LIFO queue for calls that find the limit reached (Netflix LifoBlockingLimiter): the newest
/// waiter gets the next free slot, so the calls that still have time left are served first.
struct lifo_queue {
  std::size_t max_size = 100;                          // LifoBlockingLimiter's backlog size
  clock::duration max_wait = std::chrono::seconds{1};  // and its backlog timeout
};

struct adaptive_limit_options {
  /// Netflix's limiters default to Vegas.
  std::variant<aimd, vegas, gradient2> algorithm = vegas{};
  /// Without a queue a call at the limit is rejected at once (Netflix SimpleLimiter).
  std::optional<lifo_queue> queue{};
  /// Outcomes reported as drops besides errc::timeout and an inner errc::rate_limited.
  predicate dropped_when{};
  /// Vegas's probe jitter.
  rng random{};
  std::string name = "adaptive_limit";
};

namespace detail {

/// Netflix's Log10RootFunction: max(1, ⌊log10 n⌋) below 1000, ⌊√n⌋ from there on.
inline int log10_root(int n) noexcept {
  if (n < 1000) return n < 10 ? 1 : std::max(1, static_cast<int>(std::log10(n)));
  return static_cast<int>(std::sqrt(static_cast<double>(n)));
}

/// Netflix's ExpAvgMeasurement: the mean of the first `warmup` samples, then an exponential
/// average with factor 2 / (window + 1).
class exp_avg {
 public:
  exp_avg(int window, int warmup) noexcept : window_(window), warmup_(warmup) {}
  double add(double sample) noexcept {
    if (count_ < warmup_) {
      ++count_;
      sum_ += sample;
      value_ = sum_ / count_;
    } else {
      const double factor = 2.0 / (window_ + 1);
      value_ = value_ * (1 - factor) + sample * factor;
    }
    return value_;
  }
  void scale(double f) noexcept { value_ *= f; }  // Measurement.update; the warm-up sum is kept
  [[nodiscard]] double get() const noexcept { return value_; }

 private:
  int window_;
  int warmup_;
  int count_ = 0;
  double sum_ = 0;
  double value_ = 0;
};

/// One sample for an algorithm: the RTT in nanoseconds (Netflix measures in nanoseconds too),
/// the calls in flight when the sampled call was admitted (itself included), and whether it was
/// dropped.
struct limit_sample {
  std::int64_t rtt_ns;
  int inflight;
  bool dropped;
};

class aimd_state {
 public:
  explicit aimd_state(const aimd& o) : o_(o), limit_(o.initial_limit) {}
  double update(const limit_sample& s) {
    int limit = limit_;
    if (s.dropped || s.rtt_ns > o_.timeout.count()) {
      limit = static_cast<int>(limit * o_.backoff_ratio);
    } else if (s.inflight * 2 >= limit) {
      limit = limit + 1;
    }
    limit_ = std::min(o_.max_limit, std::max(o_.min_limit, limit));
    return limit_;
  }
  [[nodiscard]] double estimate() const noexcept { return limit_; }

 private:
  aimd o_;
  int limit_;
};

class vegas_state {
 public:
  vegas_state(const vegas& o, const rng& random)
      : o_(o), random_(random), estimate_(o.initial_limit) {
    reset_probe_jitter();
  }
  double update(const limit_sample& s) {
    // VegasLimit refuses an RTT of zero (an IllegalArgumentException); here such a sample,
    // which carries no latency, is skipped.
    if (s.rtt_ns <= 0) return estimate_;
    ++probe_count_;
    if (probe_jitter_ * o_.probe_multiplier * estimate_ <= probe_count_) {
      reset_probe_jitter();
      probe_count_ = 0;
      rtt_noload_ = s.rtt_ns;
      return estimate_;
    }
    if (rtt_noload_ == 0 || s.rtt_ns < rtt_noload_) {
      rtt_noload_ = s.rtt_ns;
      return estimate_;
    }
    const int queue = static_cast<int>(std::ceil(
        estimate_ * (1 - static_cast<double>(rtt_noload_) / static_cast<double>(s.rtt_ns))));
    double next;
    if (s.dropped) {
      next = decrease(estimate_);
    } else if (s.inflight * 2 < estimate_) {
      return estimate_;  // app-limited: no upward drift
    } else {
      const int current = static_cast<int>(estimate_);
      const int alpha = o_.alpha ? o_.alpha(current) : 3 * log10_root(current);
      const int beta = o_.beta ? o_.beta(current) : 6 * log10_root(current);
      const int threshold = o_.threshold ? o_.threshold(current) : log10_root(current);
      if (queue <= threshold) {
        next = estimate_ + beta;
      } else if (queue < alpha) {
        next = increase(estimate_);
      } else if (queue > beta) {
        next = decrease(estimate_);
      } else {
        return estimate_;
      }
    }
    next = std::max(1.0, std::min(static_cast<double>(o_.max_concurrency), next));
    estimate_ = (1 - o_.smoothing) * estimate_ + o_.smoothing * next;
    return estimate_;
  }
  [[nodiscard]] double estimate() const noexcept { return estimate_; }
  [[nodiscard]] std::int64_t rtt_noload_ns() const noexcept { return rtt_noload_; }

 private:
  double increase(double limit) const {
    return o_.increase ? o_.increase(limit) : limit + log10_root(static_cast<int>(limit));
  }
  double decrease(double limit) const {
    return o_.decrease ? o_.decrease(limit) : limit - log10_root(static_cast<int>(limit));
  }
  void reset_probe_jitter() { probe_jitter_ = 0.5 + 0.5 * random_(); }  // nextDouble(0.5, 1)

  vegas o_;
  rng random_;
  double estimate_;
  std::int64_t rtt_noload_ = 0;
  int probe_count_ = 0;
  double probe_jitter_ = 0.5;
};

class gradient2_state {
 public:
  explicit gradient2_state(const gradient2& o)
      : o_(o), estimate_(o.initial_limit), long_rtt_(o.long_window, 10) {}
  double update(const limit_sample& s) {
    // An RTT of zero would make the gradient 0/0: such a sample carries no latency; skipped.
    if (s.rtt_ns <= 0) return estimate_;
    const double queue = o_.queue_size ? o_.queue_size(static_cast<int>(estimate_)) : 4;
    const double short_rtt = static_cast<double>(s.rtt_ns);
    const double long_rtt = long_rtt_.add(short_rtt);
    // After a long overload the long-term RTT can be far above the current one: pull it down
    // faster than the average would.
    if (long_rtt / short_rtt > 2) long_rtt_.scale(0.95);
    if (s.inflight < estimate_ / 2) return estimate_;  // app-limited
    const double gradient = std::max(0.5, std::min(1.0, o_.rtt_tolerance * long_rtt / short_rtt));
    double next = estimate_ * gradient + queue;
    next = estimate_ * (1 - o_.smoothing) + next * o_.smoothing;
    next = std::max(static_cast<double>(o_.min_limit),
                    std::min(static_cast<double>(o_.max_concurrency), next));
    estimate_ = next;
    return estimate_;
  }
  [[nodiscard]] double estimate() const noexcept { return estimate_; }
  [[nodiscard]] double long_rtt_ns() const noexcept { return long_rtt_.get(); }

 private:
  gradient2 o_;
  double estimate_;
  exp_avg long_rtt_;
};

inline void check_limits(const char* algo, int initial, int min, int max) {
  using namespace std::string_literals;
  if (min < 1 || max < min || initial < 1) {
    throw std::invalid_argument("weft::resilience::adaptive_limit: "s + algo +
                                " limits must satisfy 1 <= min_limit <= max_limit and "
                                "initial_limit >= 1; got initial_limit " +
                                std::to_string(initial) + ", min_limit " + std::to_string(min) +
                                ", max_limit " + std::to_string(max));
  }
}

/// An adaptive limit's state and logic; the adaptive_limit handle below owns it (see pinned).
class adaptive_limit_impl {
 public:
  explicit adaptive_limit_impl(adaptive_limit_options options)
      : options_(std::move(options)), tel_(options_.name), algo_(make_state()) {
    if (options_.queue && options_.queue->max_wait < clock::duration::zero()) {
      throw std::invalid_argument(
          "weft::resilience::adaptive_limit: queue max_wait must not be negative");
    }
    publish(std::visit([](const auto& a) { return a.estimate(); }, algo_));
  }
  adaptive_limit_impl(const adaptive_limit_impl&) = delete;
  adaptive_limit_impl& operator=(const adaptive_limit_impl&) = delete;

  template <class R, class Next>
  task<call_outcome<R>> run(resilience_context& ctx, Next next) {
    int admitted_with = 0;
    if (!try_admit(admitted_with, ctx)) {
      if (!options_.queue) co_return reject<R>(ctx);
      queue_wait wait;
      const admission a = co_await queued(wait, ctx);
      if (a == admission::rejected) co_return reject<R>(ctx);
      if (a == admission::cancelled) co_return call_outcome<R>::cancelled();
      admitted_with = wait.inflight;
    }
    permit held{this, &ctx, admitted_with, clock::now()};
    call_outcome<R> o = co_await next(ctx);
    held.report(judge(view_of(o)));
    co_return o;
  }

  [[nodiscard]] int limit() const noexcept { return limit_.load(std::memory_order_relaxed); }
  [[nodiscard]] double estimated_limit() const noexcept {
    lock_.lock();
    const double e = std::visit([](const auto& a) { return a.estimate(); }, algo_);
    lock_.unlock();
    return e;
  }
  [[nodiscard]] int inflight() const noexcept { return inflight_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::size_t queued() const noexcept {
    return queued_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] telemetry& observers() noexcept { return tel_; }

 private:
  using state = std::variant<detail::aimd_state, detail::vegas_state, detail::gradient2_state>;
  enum class sample_kind : std::uint8_t { success, dropped, ignore };
  enum class admission : std::uint8_t { admitted, rejected, cancelled };

  state make_state() const {
    const auto& alg = options_.algorithm;
    if (const auto* a = std::get_if<aimd>(&alg)) {
      detail::check_limits("aimd", a->initial_limit, a->min_limit, a->max_limit);
      if (!(a->backoff_ratio >= 0.5 && a->backoff_ratio < 1.0)) {
        throw std::invalid_argument(
            "weft::resilience::adaptive_limit: aimd backoff_ratio must be in [0.5, 1), got " +
            std::to_string(a->backoff_ratio));
      }
      if (a->timeout <= clock::duration::zero()) {
        throw std::invalid_argument(
            "weft::resilience::adaptive_limit: aimd timeout must be positive");
      }
      return detail::aimd_state{*a};
    }
    if (const auto* v = std::get_if<vegas>(&alg)) {
      detail::check_limits("vegas", v->initial_limit, 1, v->max_concurrency);
      if (!(v->smoothing > 0.0 && v->smoothing <= 1.0) || v->probe_multiplier < 1) {
        throw std::invalid_argument(
            "weft::resilience::adaptive_limit: vegas smoothing must be in (0, 1] and "
            "probe_multiplier at least 1");
      }
      return detail::vegas_state{*v, options_.random};
    }
    const auto& g = std::get<gradient2>(alg);
    detail::check_limits("gradient2", g.initial_limit, g.min_limit, g.max_concurrency);
    if (!(g.smoothing > 0.0 && g.smoothing <= 1.0) || g.long_window < 1 || g.rtt_tolerance < 1.0) {
      throw std::invalid_argument(
          "weft::resilience::adaptive_limit: gradient2 needs smoothing in (0, 1], long_window >= 1 "
          "and rtt_tolerance >= 1");
    }
    return detail::gradient2_state{g};
  }

  /// A queued call, in its own frame: linked newest-first while it waits.
  struct queue_wait {
    queue_wait* newer = nullptr;
    queue_wait* older = nullptr;
    weft::event granted_signal;
    bool linked = false;   // guarded by lock_
    bool granted = false;  // guarded by lock_: a releasing call handed it a slot
    int inflight = 0;      // guarded by lock_: the calls in flight once it was admitted
  };

  /// The slot an admitted call holds; released with its sample, or (frame destroyed, e.g. at
  /// runtime shutdown) without one.
  struct permit {
    adaptive_limit_impl* self;
    const resilience_context* ctx;
    int admitted_with;
    clock::time_point started;
    bool done = false;

    void report(sample_kind kind) {
      done = true;
      self->release(kind, clock::now() - started, admitted_with, *ctx);
    }
    ~permit() {
      if (!done) self->release(sample_kind::ignore, {}, admitted_with, *ctx);
    }
  };

  sample_kind judge(const outcome_view& v) const {
    if (v.kind == outcome_kind::value) return sample_kind::success;
    if (v.kind == outcome_kind::cancelled) return sample_kind::ignore;
    if (v.kind == outcome_kind::error &&
        (v.error == errc::timeout || v.error == errc::rate_limited)) {
      return sample_kind::dropped;
    }
    if (!options_.dropped_when.empty() && options_.dropped_when(v)) return sample_kind::dropped;
    return sample_kind::ignore;
  }

  bool try_admit(int& admitted_with, const resilience_context& ctx) {
    lock_.lock();
    const int n = inflight_.load(std::memory_order_relaxed);
    if (n >= limit_.load(std::memory_order_relaxed)) {
      lock_.unlock();
      return false;
    }
    inflight_.store(n + 1, std::memory_order_relaxed);
    lock_.unlock();
    admitted_with = n + 1;
    tel_.gauge_value(gauge::inflight, ctx.key, n + 1);
    return true;
  }

  template <class R>
  call_outcome<R> reject(const resilience_context& ctx) const {
    if (tel_.active()) {
      auto e = tel_.make(event_kind::limit_exceeded, ctx);
      e.outcome = outcome_kind::error;
      e.error = errc::limit_exceeded;
      e.attempt = ctx.attempt;
      e.value = limit();
      tel_.emit(e);
    }
    return call_outcome<R>::failure(errc::limit_exceeded).from_layer(tel_.shared_name());
  }

  /// Waits in the queue for a slot handed over by a releasing call.
  task<admission> queued(queue_wait& w, resilience_context& ctx) {
    lock_.lock();
    // A slot may have freed up since try_admit.
    const int n = inflight_.load(std::memory_order_relaxed);
    if (n < limit_.load(std::memory_order_relaxed) && newest_ == nullptr) {
      inflight_.store(n + 1, std::memory_order_relaxed);
      w.inflight = n + 1;
      lock_.unlock();
      co_return admission::admitted;
    }
    if (queued_.load(std::memory_order_relaxed) >= options_.queue->max_size ||
        options_.queue->max_wait == clock::duration::zero()) {
      lock_.unlock();
      co_return admission::rejected;
    }
    link(w);
    lock_.unlock();

    struct unlink_on_exit {  // frame destroyed while queued (runtime shutdown)
      adaptive_limit_impl* self;
      queue_wait* w;
      ~unlink_on_exit() { self->abandon(w); }
    } guard{this, &w};

    const auto deadline = detail::saturating_deadline(clock::now(), options_.queue->max_wait);
    cancel_scope scope(ctx.token);
    scope.cancel_at(deadline);
    (void)co_await scope.run(or_cancelled(w.granted_signal.wait()));
    co_await scope.close();

    lock_.lock();
    const bool granted = w.granted;
    if (!granted) unlink(w);
    lock_.unlock();
    guard.w = nullptr;
    if (granted) {
      // Handed a slot, even if the wait ended at the same moment for another reason: a caller
      // that cancelled gives it back, anyone else uses it.
      if (!scope.linked_cancellation_requested()) co_return admission::admitted;
      release(sample_kind::ignore, {}, w.inflight, ctx);
      co_return admission::cancelled;
    }
    co_return scope.linked_cancellation_requested() && !scope.deadline_reached()
        ? admission::cancelled
        : admission::rejected;
  }

  void link(queue_wait& w) noexcept {
    w.older = newest_;
    w.newer = nullptr;
    if (newest_ != nullptr) newest_->newer = &w;
    newest_ = &w;
    if (oldest_ == nullptr) oldest_ = &w;
    w.linked = true;
    queued_.store(queued_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void unlink(queue_wait& w) noexcept {
    if (!w.linked) return;
    if (w.newer != nullptr)
      w.newer->older = w.older;
    else
      newest_ = w.older;
    if (w.older != nullptr)
      w.older->newer = w.newer;
    else
      oldest_ = w.newer;
    w.newer = w.older = nullptr;
    w.linked = false;
    queued_.store(queued_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  void abandon(queue_wait* w) noexcept {
    if (w == nullptr) return;
    lock_.lock();
    const bool granted = w->granted;
    unlink(*w);
    lock_.unlock();
    if (granted) release(sample_kind::ignore, {}, w->inflight, resilience_context{});
  }

  void release(sample_kind kind, clock::duration rtt, int admitted_with,
               const resilience_context& ctx) {
    lock_.lock();
    int n = inflight_.load(std::memory_order_relaxed) - 1;
    const int before = limit_.load(std::memory_order_relaxed);
    int after = before;
    if (kind != sample_kind::ignore) {
      const detail::limit_sample s{rtt.count(), admitted_with, kind == sample_kind::dropped};
      const double e = std::visit([&](auto& a) { return a.update(s); }, algo_);
      after = static_cast<int>(std::floor(e));
      limit_.store(after, std::memory_order_relaxed);
    }
    // Hand free slots to the newest waiters. Their events are set under the lock: a waiter reads
    // `granted` under it too, so it cannot leave (and destroy its event) while set() runs.
    while (newest_ != nullptr && n < after) {
      queue_wait* w = newest_;
      unlink(*w);
      ++n;
      w->granted = true;
      w->inflight = n;
      w->granted_signal.set();
    }
    inflight_.store(n, std::memory_order_relaxed);
    lock_.unlock();
    tel_.gauge_value(gauge::inflight, ctx.key, n);
    if (after != before) {
      tel_.gauge_value(gauge::limit, ctx.key, after);
      if (tel_.active()) {
        auto e = tel_.make(event_kind::limit_changed, ctx);
        e.value = after;
        e.attempt = ctx.attempt;
        tel_.emit(e);
      }
    }
  }

  void publish(double estimate) noexcept {
    limit_.store(static_cast<int>(std::floor(estimate)), std::memory_order_relaxed);
  }

  adaptive_limit_options options_;
  telemetry tel_;
  mutable weft::spin_lock lock_;
  // Invariant (under lock_): inflight_ counts admitted calls not yet released, including those
  // handed a slot from the queue; limit_ is ⌊the algorithm's estimate⌋. Both are atomics only so
  // that the accessors may read them without the lock.
  std::atomic<int> inflight_{0};
  std::atomic<int> limit_{0};
  std::atomic<std::size_t> queued_{0};
  state algo_;
  queue_wait* newest_ = nullptr;  // guarded by lock_
  queue_wait* oldest_ = nullptr;  // guarded by lock_
};

}  // namespace detail

/// A concurrency limit that adapts to latency and drops (docs/resilience-rules.md "Adaptive
/// limiter"): rejects with errc::limit_exceeded when inflight >= ⌊limit⌋, or queues the call LIFO
/// if a queue is configured.
///
///     weft::resilience::adaptive_limit limiter{weft::resilience::gradient2{}};
///     weft::resilience::pipeline pipe{limiter, weft::resilience::time_limiter{1s}};
///     auto reply = co_await pipe.execute([&] { return backend.get(key); });
///
/// Each admitted call reports one sample when it ends, as Netflix's limiter listener does:
/// - success(rtt) for a value (the RTT runs from admission to the outcome);
/// - dropped(rtt) for errc::timeout, an inner errc::rate_limited, or what `dropped_when` matches;
/// - ignore (no sample) for cancellation and every other outcome (other errors, exceptions,
///   other layers' rejections), as Netflix's gRPC interceptors ignore non-drop failures.
/// The sample carries the calls in flight when the call was admitted (itself included).
///
/// The queue: a call that finds the limit reached waits, newest first, until a slot frees up
/// (the releasing call hands its slot over directly), up to `max_wait` (then limit_exceeded) or
/// until its caller cancels (then cancelled). A full queue rejects at once.
///
/// Events: `limit_exceeded` for each rejection, `limit_changed` (value = the new ⌊limit⌋) when the
/// integer limit moves. Gauges: `limit` when it moves, `inflight` on every admission and release.
/// Thread safety: one limiter serves calls from any worker; state changes under a spin lock that
/// is never held across a suspension. Moving a limiter moves its state: calls admitted or queued
/// are not affected. Errors: bad options throw std::invalid_argument.
class adaptive_limit {
 public:
  explicit adaptive_limit(adaptive_limit_options options = {})
      : impl_(std::in_place, std::move(options)) {}
  explicit adaptive_limit(aimd a) : adaptive_limit(with_algorithm(std::move(a))) {}
  explicit adaptive_limit(vegas v) : adaptive_limit(with_algorithm(std::move(v))) {}
  explicit adaptive_limit(gradient2 g) : adaptive_limit(with_algorithm(std::move(g))) {}
  /// The moved-from limiter may only be destroyed or assigned to.
  adaptive_limit(adaptive_limit&&) noexcept = default;
  adaptive_limit& operator=(adaptive_limit&&) noexcept = default;

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

  /// ⌊limit⌋: calls admitted at once.
  [[nodiscard]] int limit() const noexcept { return impl_->limit(); }
  /// The algorithm's estimate before the floor (Vegas and Gradient2 keep a fractional limit).
  [[nodiscard]] double estimated_limit() const noexcept { return impl_->estimated_limit(); }
  /// Calls admitted and not finished.
  [[nodiscard]] int inflight() const noexcept { return impl_->inflight(); }
  /// Calls waiting in the queue.
  [[nodiscard]] std::size_t queued() const noexcept { return impl_->queued(); }
  [[nodiscard]] telemetry& observers() noexcept { return impl_->observers(); }

 private:
  template <class A>
  static adaptive_limit_options with_algorithm(A a) {
    adaptive_limit_options o;
    o.algorithm = std::move(a);
    return o;
  }

  detail::pinned<detail::adaptive_limit_impl> impl_;
};

}  // namespace weft::resilience
