// weft::resilience::rate_limiter: a token bucket (the default), a fixed window or a sliding
// window, refilled lazily from the runtime clock, with resilience4j's reservations: a call that
// would get a permit within max_wait reserves it and sleeps, any other is rejected at once.
//
// Thread safety: every member may be used from any worker at once (see the class): the bucket or
// the windows change under a spin lock never held across a suspension. The limiter must outlive its
// calls; moving it moves its state, reserved sleepers included.
//
// Cancellation: only a reserved call waits. Cancelled while it sleeps (the awaiting task's token or
// ctx.token), it returns cancelled and gives its reservation back for the next caller; later
// reservations keep their wake times. A permit granted at once stays spent whether or not the call
// is then cancelled.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <weft/cancel/cancel_scope.hpp>
#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/or_cancelled.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/detail/pinned.hpp>
#include <weft/resilience/detail/quiet_wait.hpp>
#include <weft/resilience/error.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/runtime.hpp>
#include <weft/sync/spin_lock.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/clock.hpp>
#include <weft/time/sleep.hpp>

namespace weft::resilience {

/// A bucket of `capacity` tokens, starting full, that gains `tokens_per_period` whole tokens at
/// every multiple of `period` after t0 (never more than capacity). A call takes one token.
struct token_bucket {
  std::int64_t capacity = 0;
  std::int64_t tokens_per_period = 0;
  clock::duration period{};
};

/// At most `limit` calls per window, the windows aligned to t0: [t0 + k·window, t0 + (k+1)·window).
struct fixed_window {
  std::int64_t limit = 0;
  clock::duration window{};
};

/// At most `limit` calls in any window of `window` length, counted in `segments` equal segments
/// aligned to t0: a call is counted in its segment and stops counting `window` after that
/// segment's start. `window` must be a whole number of nanoseconds per segment.
struct sliding_window {
  std::int64_t limit = 0;
  clock::duration window{};
  std::int64_t segments = 0;
};

/// Which algorithm a rate limiter runs.
using rate_limit = std::variant<token_bucket, fixed_window, sliding_window>;

/// How a rate limiter treats a call without a free permit.
struct rate_limiter_options {
  /// A call whose permit comes within this long reserves it and sleeps until then; any other is
  /// rejected at once with rate_limited. 0 (the default) never waits.
  clock::duration max_wait{0};
  /// The layer's name in events and metrics.
  std::string name = "rate_limiter";
};

/// The answer of rate_limiter::try_acquire.
struct rate_permission {
  bool granted = false;
  /// When refused: the time until a permit would be free (rate_limited's retry_after).
  clock::duration retry_after{};
};

namespace detail {

enum class rate_verdict : std::uint8_t { granted, reserved, rejected };

/// What one acquire decided: run now, sleep until `at` (a reservation; `wait` = at − now), or be
/// rejected (`wait` = the time until a permit). `left` is the gauge's value afterwards.
struct rate_decision {
  rate_verdict verdict = rate_verdict::granted;
  clock::time_point at{};
  clock::duration wait{};
  std::int64_t left = 0;
};

[[nodiscard]] inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) noexcept {
  return a <= 0 ? 0 : (a + b - 1) / b;
}

/// The token bucket of docs/resilience-rules.md "Rate limiter". `tokens` goes below zero by one per
/// queued reservation.
class bucket_state {
 public:
  explicit bucket_state(const token_bucket& b) : cfg_(b), tokens_(b.capacity) {}

  void start(clock::time_point t0) noexcept {
    last_refill_ = t0;
    tokens_ = cfg_.capacity;
  }

  /// Lazy refill: whole periods since last_refill add tokens_per_period each (capped), and
  /// last_refill moves by exactly those periods, so refills stay on t0's grid.
  void refill(clock::time_point now) noexcept {
    if (now - last_refill_ < cfg_.period) return;
    const std::int64_t periods = (now - last_refill_) / cfg_.period;
    const std::int64_t room = cfg_.capacity - tokens_;
    if (periods >= ceil_div(room, cfg_.tokens_per_period)) {
      tokens_ = cfg_.capacity;
    } else {
      tokens_ += periods * cfg_.tokens_per_period;
    }
    last_refill_ += periods * cfg_.period;
  }

  rate_decision acquire(clock::time_point now, clock::duration max_wait) noexcept {
    refill(now);
    if (tokens_ > 0) {
      --tokens_;
      return {rate_verdict::granted, now, {}, tokens_};
    }
    // 1 − tokens tokens must arrive before one is ours: the queued reservations' and this one.
    const std::int64_t periods = ceil_div(1 - tokens_, cfg_.tokens_per_period);
    const clock::time_point at = last_refill_ + periods * cfg_.period;
    const clock::duration wait = at - now;
    if (wait <= max_wait) {
      --tokens_;
      return {rate_verdict::reserved, at, wait, tokens_};
    }
    return {rate_verdict::rejected, at, wait, tokens_};
  }

  /// A cancelled reservation's token goes back into the bucket (capped at capacity).
  void give_back(clock::time_point now, clock::time_point /*at*/) noexcept {
    refill(now);
    tokens_ = std::min(cfg_.capacity, tokens_ + 1);
  }

  std::int64_t available(clock::time_point now) noexcept {
    refill(now);
    return tokens_;
  }
  [[nodiscard]] std::int64_t initial() const noexcept { return cfg_.capacity; }

 private:
  token_bucket cfg_;
  // Invariant: tokens_ <= capacity; last_refill_ = t0 + k·period for some k >= 0.
  std::int64_t tokens_;
  clock::time_point last_refill_{};
};

/// Fixed and sliding windows (a fixed window is a sliding window of one segment). Counts live
/// in a ring of segments covering the window and, for reservations, the segments up to max_wait
/// ahead.
class window_state {
 public:
  // A bound on the ring, so that a max_wait far longer than a segment is a configuration error
  // instead of a huge allocation.
  static constexpr std::int64_t max_ring = std::int64_t{1} << 20;

  window_state(const sliding_window& w, clock::duration max_wait, const char* api)
      : limit_(w.limit), segments_(w.segments), segment_(w.window / w.segments) {
    if (max_wait > clock::duration::zero()) {
      const std::int64_t whole = max_wait / segment_;  // no overflow for any max_wait
      horizon_ = whole >= max_ring ? max_ring : whole + (max_wait % segment_ != clock::duration{0});
    }
    if (segments_ + horizon_ + 1 > max_ring) {
      throw std::invalid_argument(
          std::string(api) + ": max_wait spans " + std::to_string(horizon_) +
          " segments of the window ahead; at most " + std::to_string(max_ring - segments_ - 1) +
          " (use a shorter max_wait or longer segments)");
    }
    ring_size_ = segments_ + horizon_ + 1;
    counts_.assign(static_cast<std::size_t>(ring_size_), 0);
    sums_.assign(static_cast<std::size_t>(horizon_ + segments_ + 1), 0);
  }

  void start(clock::time_point t0) noexcept { t0_ = t0; }

  rate_decision acquire(clock::time_point now, clock::duration max_wait) noexcept {
    advance(now);
    if (future_ == 0 && in_window_ < limit_) {
      ++slot(k_);
      ++in_window_;
      return {rate_verdict::granted, now, {}, limit_ - in_window_};
    }
    // Slow path: the first segment j = k + i (i >= 0) such that one more call there keeps every
    // window containing it within the limit, given the reservations already made ahead.
    const std::int64_t last = horizon_ + segments_;  // windows ending past it are empty
    sums_[0] = in_window_;
    for (std::int64_t i = 1; i <= last; ++i) {
      sums_[i] = sums_[i - 1] + count(k_ + i) - count(k_ + i - segments_);
    }
    std::int64_t next_full = last + segments_;  // past every window considered
    std::int64_t first = last;
    for (std::int64_t i = last; i >= 0; --i) {
      if (sums_[i] >= limit_) next_full = i;
      if (next_full >= i + segments_) first = i;
    }
    if (first == 0) {
      ++slot(k_);
      ++in_window_;
      return {rate_verdict::granted, now, {}, limit_ - in_window_};
    }
    const clock::time_point at = t0_ + (k_ + first) * segment_;
    const clock::duration wait = at - now;
    if (wait <= max_wait) {
      ++slot(k_ + first);
      ++future_;
      return {rate_verdict::reserved, at, wait, limit_ - in_window_};
    }
    return {rate_verdict::rejected, at, wait, limit_ - in_window_};
  }

  /// A cancelled reservation for the segment starting at `at` is removed, if that segment still
  /// counts.
  void give_back(clock::time_point now, clock::time_point at) noexcept {
    advance(now);
    const std::int64_t j = (at - t0_) / segment_;
    if (j <= k_ - segments_ || j > k_ + horizon_) return;
    auto& c = slot(j);
    if (c == 0) return;
    --c;
    if (j <= k_) {
      --in_window_;
    } else {
      --future_;
    }
  }

  std::int64_t available(clock::time_point now) noexcept {
    advance(now);
    return limit_ - in_window_;
  }
  [[nodiscard]] std::int64_t initial() const noexcept { return limit_; }

 private:
  std::int64_t& slot(std::int64_t j) noexcept {
    std::int64_t m = j % ring_size_;
    if (m < 0) m += ring_size_;
    return counts_[static_cast<std::size_t>(m)];
  }
  // Segments outside (k − segments, k + horizon] count nothing.
  std::int64_t count(std::int64_t j) noexcept {
    return (j <= k_ - segments_ || j > k_ + horizon_) ? 0 : slot(j);
  }

  /// Moves the current segment to now's, sliding each passed segment out of the window and the
  /// reservations of each entered one into it.
  void advance(clock::time_point now) noexcept {
    const std::int64_t target = (now - t0_) / segment_;
    if (target <= k_) return;
    if (target - k_ >= ring_size_) {
      // Everything counted is at least a window old by now (reservations reach k + horizon).
      std::fill(counts_.begin(), counts_.end(), 0);
      in_window_ = future_ = 0;
      k_ = target;
      return;
    }
    while (k_ < target) {
      ++k_;
      const std::int64_t entering = slot(k_);
      in_window_ += entering;
      future_ -= entering;
      auto& leaving = slot(k_ - segments_);
      in_window_ -= leaving;
      leaving = 0;
    }
  }

  const std::int64_t limit_;
  const std::int64_t segments_;
  const clock::duration segment_;
  std::int64_t horizon_ = 0;    // segments ahead a reservation can reach
  std::int64_t ring_size_ = 0;  // segments + horizon + 1
  clock::time_point t0_{};
  // Invariant: counts_ holds segment j at j mod ring_size_ for j in (k − segments, k + horizon];
  // every other slot is 0. in_window_ = Σ counts over (k − segments, k]; future_ = Σ over
  // (k, k + horizon].
  std::vector<std::int64_t> counts_;
  std::vector<std::int64_t> sums_;  // scratch for the slow path, allocated once
  std::int64_t k_ = 0;
  std::int64_t in_window_ = 0;
  std::int64_t future_ = 0;
};

inline void validate(const rate_limit& limit, const rate_limiter_options& o) {
  constexpr const char* api = "weft::resilience::rate_limiter";
  const auto fail = [&](const std::string& what) {
    throw std::invalid_argument(std::string(api) + ": " + what);
  };
  if (o.max_wait < clock::duration::zero()) fail("max_wait must not be negative");
  if (const auto* b = std::get_if<token_bucket>(&limit)) {
    if (b->capacity <= 0) fail("token_bucket capacity must be at least 1");
    if (b->tokens_per_period <= 0) fail("token_bucket tokens_per_period must be at least 1");
    if (b->period <= clock::duration::zero()) fail("token_bucket period must be positive");
  } else if (const auto* f = std::get_if<fixed_window>(&limit)) {
    if (f->limit <= 0) fail("fixed_window limit must be at least 1");
    if (f->window <= clock::duration::zero()) fail("fixed_window window must be positive");
  } else if (const auto* s = std::get_if<sliding_window>(&limit)) {
    if (s->limit <= 0) fail("sliding_window limit must be at least 1");
    if (s->window <= clock::duration::zero()) fail("sliding_window window must be positive");
    if (s->segments <= 0) fail("sliding_window segments must be at least 1");
    if (s->window.count() % s->segments != 0) {
      fail("sliding_window window (" + std::to_string(s->window.count()) +
           " ns) must divide into " + std::to_string(s->segments) + " whole-nanosecond segments");
    }
  }
}

inline std::variant<bucket_state, window_state> make_state(const rate_limit& limit,
                                                           clock::duration max_wait) {
  if (const auto* b = std::get_if<token_bucket>(&limit)) {
    return std::variant<bucket_state, window_state>{std::in_place_type<bucket_state>, *b};
  }
  const sliding_window w = std::holds_alternative<fixed_window>(limit)
                               ? sliding_window{std::get<fixed_window>(limit).limit,
                                                std::get<fixed_window>(limit).window, 1}
                               : std::get<sliding_window>(limit);
  return std::variant<bucket_state, window_state>{std::in_place_type<window_state>, w, max_wait,
                                                  "weft::resilience::rate_limiter"};
}

/// A rate limiter's state and logic; the rate_limiter handle below owns it (see pinned).
class rate_limiter_impl {
 public:
  rate_limiter_impl(rate_limit limit, rate_limiter_options options)
      : options_(std::move(options)),
        state_(checked_state(limit, options_)),
        own_telemetry_(options_.name),
        telemetry_(&own_telemetry_) {
    start_if_on_worker();
  }
  rate_limiter_impl(rate_limit limit, rate_limiter_options options, telemetry& shared)
      : options_(std::move(options)), state_(checked_state(limit, options_)), telemetry_(&shared) {
    start_if_on_worker();
  }
  rate_limiter_impl(const rate_limiter_impl&) = delete;
  rate_limiter_impl& operator=(const rate_limiter_impl&) = delete;

  /// The rest of a call whose permit was reserved for later: sleep until then, then run.
  template <class R, class Next>
  task<call_outcome<R>> run_reserved(resilience_context& ctx, Next next, detail::rate_decision d);

  template <class R, class Next>
  friend class rate_limiter_call;

  [[nodiscard]] rate_permission try_acquire() {
    const auto d = decide(clock::duration::zero());
    return {d.verdict == detail::rate_verdict::granted, d.wait};
  }

  [[nodiscard]] std::int64_t available() {
    const auto read = clock::now();
    std::lock_guard guard{lock_};
    if (!started_ && !weft::this_thread_is_worker()) {
      return std::visit([](const auto& s) { return s.initial(); }, state_);
    }
    const auto now = now_locked(read);
    return std::visit([&](auto& s) { return s.available(now); }, state_);
  }

  [[nodiscard]] telemetry& observers() noexcept { return *telemetry_; }
  [[nodiscard]] const rate_limiter_options& options() const noexcept { return options_; }

 private:
  static std::variant<detail::bucket_state, detail::window_state> checked_state(
      const rate_limit& limit, const rate_limiter_options& o) {
    detail::validate(limit, o);
    return detail::make_state(limit, o.max_wait);
  }

  void start_if_on_worker() {
    if (!weft::this_thread_is_worker()) return;
    const auto read = clock::now();
    std::lock_guard guard{lock_};
    (void)now_locked(read);
  }

  // Under the lock: `now` (read before taking it, to keep the lock short), never earlier than a
  // time already used (reads from several workers can arrive out of order), starting t0 on first
  // use.
  clock::time_point now_locked(clock::time_point now) {
    if (!started_) {
      started_ = true;
      std::visit([&](auto& s) { s.start(now); }, state_);
    } else if (now < latest_) {
      now = latest_;
    }
    latest_ = now;
    return now;
  }

  detail::rate_decision decide(clock::duration max_wait) {
    const auto read = clock::now();
    std::lock_guard guard{lock_};
    const auto now = now_locked(read);
    return std::visit([&](auto& s) { return s.acquire(now, max_wait); }, state_);
  }

  void give_back(clock::time_point at) {
    const auto read = clock::now();
    std::lock_guard guard{lock_};
    const auto now = now_locked(read);
    std::visit([&](auto& s) { s.give_back(now, at); }, state_);
  }

  void report_tokens(const resilience_context& ctx, std::int64_t left) const noexcept {
    telemetry_->gauge_value(gauge::tokens, ctx.key, static_cast<double>(left));
  }

  void emit(event_kind kind, const resilience_context& ctx, clock::duration delay) const {
    if (!telemetry_->active()) return;
    auto e = telemetry_->make(kind, ctx);
    e.delay = delay;
    if (kind == event_kind::rate_limited) {
      e.outcome = outcome_kind::error;
      e.error = errc::rate_limited;
    }
    telemetry_->emit(e);
  }

  /// Sleeps until a reservation's time; false if cancelled first.
  task<bool> sleep_until_reserved(resilience_context& ctx, clock::time_point at);

  const rate_limiter_options options_;
  mutable weft::spin_lock lock_;
  std::variant<detail::bucket_state, detail::window_state> state_;
  bool started_ = false;
  clock::time_point latest_{};
  telemetry own_telemetry_;
  telemetry* telemetry_;
};

inline task<bool> rate_limiter_impl::sleep_until_reserved(resilience_context& ctx,
                                                          clock::time_point at) {
  const cancel_token own = co_await this_task::cancel_token();
  bool slept = false;
  if (detail::needs_context_link(ctx, own)) {
    cancel_scope scope(ctx.token);  // the sleep ends on either token, as a value
    slept = co_await scope.run(or_cancelled(sleep_until(at)));
  } else {
    slept = co_await or_cancelled(sleep_until(at));
  }
  co_return slept;
}

template <class R, class Next>
task<call_outcome<R>> rate_limiter_impl::run_reserved(resilience_context& ctx, Next next,
                                                      detail::rate_decision d) {
  const bool slept = co_await sleep_until_reserved(ctx, d.at);
  if (!slept) {
    give_back(d.at);
    co_return call_outcome<R>::cancelled();
  }
  emit(event_kind::rate_limit_waited, ctx, d.wait);
  co_return co_await next(ctx);
}

/// One call through a rate limiter, as an awaiter: a permit granted now runs the inner call in
/// place, in the awaiting frame; a refusal completes at once with the rejection as a value; a
/// permit reserved for later runs a coroutine that sleeps until then.
template <class R, class Next>
class rate_limiter_call {
 public:
  rate_limiter_call(rate_limiter_impl* l, resilience_context& ctx, Next next)
      : l_(l), ctx_(&ctx), next_(next) {}

  void describe_await(weft::await_description& d) const { call_.describe_await(d); }
  bool await_ready() {
    const rate_decision d = l_->decide(l_->options_.max_wait);
    l_->report_tokens(*ctx_, d.left);
    if (d.verdict == rate_verdict::rejected) {
      l_->emit(event_kind::rate_limited, *ctx_, d.wait);
      refused_ = d.wait;
      return true;
    }
    if (d.verdict == rate_verdict::reserved) {
      return call_.start_slow([&, this] { return l_->template run_reserved<R>(*ctx_, next_, d); });
    }
    return call_.start_inner([this] { return next_(*ctx_); });
  }
  template <class Promise>
  auto await_suspend(std::coroutine_handle<Promise> caller) {
    return call_.await_suspend(caller);
  }
  call_outcome<R> await_resume() {
    if (refused_) {
      return call_outcome<R>::failure(errc::rate_limited, *refused_)
          .from_layer(l_->telemetry_->shared_name());
    }
    return call_.await_resume();
  }

 private:
  rate_limiter_impl* l_;
  resilience_context* ctx_;
  Next next_;
  std::optional<clock::duration> refused_;  // the refusal's retry_after
  inner_or_slow<R, Next> call_;
};

}  // namespace detail

/// Limits the rate of calls (docs/resilience-rules.md "Rate limiter"): a token bucket by default,
/// or fixed or sliding windows. Nothing runs in the background: each call reads the runtime clock
/// and applies the refill due since the last one.
///
///     weft::resilience::rate_limiter limiter{token_bucket{.capacity = 10, .tokens_per_period = 5,
///                                                         .period = 1s},
///                                            {.max_wait = 200ms}};
///     auto page = co_await limiter.execute([&] { return crawler.fetch(url); });
///
/// Exact rules. Token bucket: starts full at t0; at every t0 + k·period it has gained
/// tokens_per_period whole tokens (never above capacity), applied when next read; a call takes
/// one. Windows: see fixed_window and sliding_window. When no permit is free now, the time until
/// one is computed (for the token bucket: until enough refills cover this call and every queued
/// reservation); if it is <= max_wait the permit is *reserved* — the token count goes below zero,
/// or the future segment is counted — and the call sleeps until exactly then and runs; otherwise
/// it is rejected at once with rate_limited{retry_after = that time}.
///
/// t0 is the limiter's creation when it is created on a runtime's worker, else the time of its
/// first call (a paused runtime's clock differs from the steady clock outside it).
///
/// Cancellation: a reserved call cancelled while it sleeps returns cancelled and gives its
/// reservation back: the token returns to the bucket (capped at capacity), or the reserved
/// segment's count drops, so the next caller can have it; later reservations keep their wake
/// times. The awaiting task's token and the context's token (when it is another one) both count.
///
/// Events: rate_limited (`delay` = retry_after), rate_limit_waited (after a reserved call's
/// sleep, `delay` = how long it slept). Gauge: tokens (the bucket's tokens, negative while
/// reservations queue; a window's permits left), after each decision. Thread safety: every
/// member may be used from any worker; moving a limiter moves its state (reserved calls are not
/// affected). Errors: std::invalid_argument for non-positive sizes or
/// periods, a negative max_wait, a window that does not divide into its segments, or a max_wait
/// that reaches more than about a million segments ahead.
class rate_limiter {
 public:
  explicit rate_limiter(rate_limit limit, rate_limiter_options options = {})
      : impl_(std::in_place, std::move(limit), std::move(options)) {}
  /// The default algorithm: rate_limiter{token_bucket{capacity, tokens_per_period, period}}.
  rate_limiter(std::int64_t capacity, std::int64_t tokens_per_period, clock::duration period,
               rate_limiter_options options = {})
      : rate_limiter(token_bucket{capacity, tokens_per_period, period}, std::move(options)) {}
  /// A limiter whose events go to `shared` (a family's observers), which must outlive it.
  rate_limiter(rate_limit limit, rate_limiter_options options, telemetry& shared)
      : impl_(std::in_place, std::move(limit), std::move(options), shared) {}
  /// The moved-from limiter may only be destroyed or assigned to.
  rate_limiter(rate_limiter&&) noexcept = default;
  rate_limiter& operator=(rate_limiter&&) noexcept = default;

  /// The layer protocol: runs `next` now, after a reserved wait, or returns rate_limited /
  /// cancelled.
  template <class R, class Next>
  auto run(resilience_context& ctx, Next next) {
    return detail::rate_limiter_call<R, Next>{impl_.operator->(), ctx, next};
  }

  /// Runs `op` through this limiter alone.
  template <class F>
  auto execute(F op) {
    return weft::resilience::execute(*this, std::move(op));
  }

  /// Takes a permit if one is free now; never reserves or waits.
  [[nodiscard]] rate_permission try_acquire() { return impl_->try_acquire(); }

  /// Permits free now, after applying the refill due (the token bucket's count is negative while
  /// reservations are queued). Off a worker before the first call: the initial count.
  [[nodiscard]] std::int64_t available() { return impl_->available(); }

  /// Listeners and metrics sink (named after options.name).
  [[nodiscard]] telemetry& observers() noexcept { return impl_->observers(); }
  [[nodiscard]] const rate_limiter_options& options() const noexcept { return impl_->options(); }

 private:
  detail::pinned<detail::rate_limiter_impl> impl_;
};

}  // namespace weft::resilience
