// weft::resilience::hedge: runs more copies of a slow or failing idempotent call at the same time
// and takes the first success (Polly's hedging strategy, with Tower's latency-percentile delay).
//
// Thread safety: one hedge may be shared by calls on any worker (see the class); its options are
// read only and the latency histogram is under a spin lock. A call's attempts run as child tasks at
// once, possibly on other workers, each on a copy of the context (whose property bag is shared:
// context.hpp); the gate, classifiers and sink are called from the worker each attempt ends on.
// Move a hedge only while no call runs through it.
//
// Cancellation: cancelling the caller (the awaiting task's token or ctx.token) cancels every
// attempt and pending delay, launches no more, and waits for all of them; the call then returns
// cancelled, unless an attempt's outcome was judged a success (that outcome is returned). When an
// attempt wins, the others are cancelled and awaited before the call returns. A cancelled attempt
// is not reported to the gate, the attempt metric or the latency samples.
#pragma once

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/or_cancelled.hpp>
#include <weft/combinators/child_set.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/resilience/budget.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/classify.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/detail/quiet_wait.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/sync/spin_lock.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/clock.hpp>
#include <weft/time/sleep.hpp>

namespace weft::resilience {

/// What a percentile-driven hedge does while the last full period holds fewer than min_samples
/// latencies.
enum class cold_start : std::uint8_t {
  no_hedging,   // run the primary only (Tower)
  fixed_delay,  // hedge after hedge_options::delay, as a fixed-delay hedge would
};

/// Tower's adaptive delay: the `quantile` of the successful attempts' latencies over the last
/// full `period` (a rotating histogram, millisecond buckets rounded up, exact below 2048 ms and
/// within 0.1 % above, as HdrHistogram with 3 significant digits).
struct percentile_delay {
  double quantile = 0.95;
  clock::duration period = std::chrono::seconds{10};
  std::uint64_t min_samples = 100;
  cold_start until_min_samples = cold_start::no_hedging;
};

/// How a hedge behaves. Defaults: Polly's (one hedge after 2 s).
struct hedge_options {
  /// Hedged attempts besides the primary, 1 to 10 (Polly's range).
  int max_hedged = 1;
  /// How long an attempt runs before the next one is launched beside it. Zero launches every
  /// attempt at once; hedge_options::never launches hedges only on failures (Polly's
  /// InfiniteTimeSpan).
  clock::duration delay = std::chrono::seconds{2};
  /// When set, the delay is this percentile of recent latencies instead (Tower).
  std::optional<percentile_delay> percentile{};
  /// Which outcome wins: the first one classified success.
  classifier classify{};
  /// Which failures of the latest attempt launch the next hedge at once.
  retry_filter retryable{};
  /// Shared with retries (as gRPC does): each hedge takes try_acquire_retry(), each call is one
  /// record_request(), each finished attempt reports record_outcome() as the retry layer does
  /// (success; failure if retryable; otherwise ignore). Must outlive the hedge.
  retry_gate* gate = nullptr;
  /// The layer's name in events and metrics.
  std::string name = "hedge";

  static constexpr clock::duration never = clock::duration::max();
};

namespace detail {

/// Tower's RotatingHistogram, reduced to what the hedge reads: latencies of the current period
/// are counted in `write_`; at each period boundary the read side becomes the quantile and the
/// count of the period that just ended (the read side is never written between rotations, so its
/// quantile is computed once per rotation instead of once per call). Two periods without a
/// rotation clear both sides. Periods are aligned to the first use.
class rotating_latency {
 public:
  rotating_latency(double quantile, clock::duration period)
      : quantile_(quantile), period_(period), write_(bucket_count, 0) {}

  /// Counts one latency (milliseconds, rounded up; clamped to about 4.6 hours).
  void record(clock::duration d) noexcept {
    const auto ms = to_millis(d);
    const std::size_t i = index_of(ms);
    std::lock_guard lock{lock_};
    maybe_rotate(clock::now());
    ++write_[i];
    ++write_count_;
    if (i + 1 > used_) used_ = i + 1;
  }

  struct reading {
    std::uint64_t samples = 0;
    clock::duration value{};
  };
  /// The previous full period: its sample count and the quantile of its latencies.
  reading read() noexcept {
    std::lock_guard lock{lock_};
    maybe_rotate(clock::now());
    return {read_count_, read_value_};
  }

 private:
  // Buckets as HdrHistogram with 3 significant digits: 2048 one-millisecond buckets, then 1024
  // per doubling, up to 2^24 ms.
  static constexpr std::uint64_t sub_buckets = 2048;
  static constexpr std::uint64_t half = sub_buckets / 2;
  static constexpr std::uint64_t max_ms = (std::uint64_t{1} << 24) - 1;
  static constexpr std::size_t bucket_count =
      sub_buckets + (std::bit_width(max_ms) - std::bit_width(sub_buckets - 1)) * half;

  static std::uint64_t to_millis(clock::duration d) noexcept {
    if (d.count() <= 0) return 0;
    const auto ns = static_cast<std::uint64_t>(d.count());
    const std::uint64_t ms = (ns + 999'999) / 1'000'000;  // rounded up, as Tower records
    return ms > max_ms ? max_ms : ms;
  }
  static std::size_t index_of(std::uint64_t ms) noexcept {
    if (ms < sub_buckets) return static_cast<std::size_t>(ms);
    const auto shift = static_cast<unsigned>(std::bit_width(ms) - std::bit_width(sub_buckets - 1));
    return static_cast<std::size_t>(sub_buckets + (shift - 1) * half + ((ms >> shift) - half));
  }
  // The highest value that shares bucket i (HdrHistogram's highest_equivalent_value).
  static std::uint64_t highest_of(std::size_t i) noexcept {
    if (i < sub_buckets) return i;
    const std::uint64_t shift = (i - sub_buckets) / half + 1;
    const std::uint64_t sub = (i - sub_buckets) % half + half;
    return ((sub + 1) << shift) - 1;
  }

  void maybe_rotate(clock::time_point now) noexcept {
    if (!last_rotation_) {
      last_rotation_ = now;
      return;
    }
    const auto rotations = (now - *last_rotation_) / period_;
    if (rotations <= 0) return;
    if (rotations == 1) {
      read_count_ = write_count_;
      read_value_ = quantile_of_write();
    } else {
      read_count_ = 0;
      read_value_ = {};
    }
    std::fill(write_.begin(), write_.begin() + static_cast<std::ptrdiff_t>(used_), 0u);
    write_count_ = 0;
    used_ = 0;
    *last_rotation_ += period_ * rotations;
  }
  // HdrHistogram's value_at_quantile: the first bucket where the running count reaches
  // ceil(quantile * total).
  clock::duration quantile_of_write() const noexcept {
    if (write_count_ == 0) return {};
    auto wanted =
        static_cast<std::uint64_t>(std::ceil(quantile_ * static_cast<double>(write_count_)));
    if (wanted == 0) wanted = 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < used_; ++i) {
      seen += write_[i];
      if (seen >= wanted) return std::chrono::milliseconds{highest_of(i)};
    }
    return std::chrono::milliseconds{highest_of(used_ - 1)};
  }

  const double quantile_;
  const clock::duration period_;
  weft::spin_lock lock_;
  // Guarded by lock_. Invariant: write_[i] == 0 for every i >= used_.
  std::optional<clock::time_point> last_rotation_;
  std::vector<std::uint32_t> write_;
  std::size_t used_ = 0;
  std::uint64_t write_count_ = 0;
  std::uint64_t read_count_ = 0;
  clock::duration read_value_{};
};

/// What one child of a hedged call reports: an attempt's outcome and verdict, or whether a
/// delay timer fired.
template <class R>
struct hedge_report {
  std::optional<call_outcome<R>> result;  // empty for a timer
  verdict judged = verdict::ignore;
  bool retryable = false;
  bool fired = false;  // a timer that ran out (not cancelled)
};

}  // namespace detail

/// Runs a call, and if it has not succeeded after `delay` — or as soon as the latest attempt
/// fails retryably — runs another copy beside it, up to `max_hedged` extra copies; the first
/// outcome classified success wins, every other attempt is cancelled and awaited before the
/// call returns. If every attempt fails, the primary's failure is returned.
///
///     weft::resilience::hedge h{{.max_hedged = 2, .delay = 50ms}};
///     auto row = co_await h.execute(idempotent([&] { return replica.get(id); }));
///
/// The operation must be marked idempotent() at the call site: execute() and any pipeline holding
/// a hedge reject other operations at compile time. Attempts run concurrently, each as its own
/// task on a copy of the context with `attempt` = 1 (primary), 2, … and its own cancellation
/// (the caller's cancellation reaches all of them); the caller's context gets only
/// `attempts_made`, the number of attempts launched, once the call ends. With a percentile delay
/// the layer learns the latency of successful attempts (Tower); until the last full period holds
/// min_samples of them it does not hedge (or uses the fixed delay, see cold_start).
///
/// Events: hedge_launched (attempt = the new attempt's number, delay = time since the previous
/// launch, outcome/error = the failure that triggered it, if one did), retry_budget_exhausted
/// when the gate refuses a hedge (no further hedges are tried for that call).
/// Thread safety: one hedge may be shared by calls on any worker.
/// Cancellation: cancelling the caller cancels every attempt; the call returns cancelled once all
/// stopped, unless one had already succeeded. Errors: bad options throw std::invalid_argument.
class hedge {
 public:
  /// Hedging starts copies of the call: only operations marked idempotent() are accepted.
  static constexpr bool requires_idempotent = true;

  explicit hedge(hedge_options options = {}) : opts_(std::move(options)), tel_(opts_.name) {
    if (opts_.max_hedged < 1 || opts_.max_hedged > 10) {
      throw std::invalid_argument(
          "weft::resilience::hedge: max_hedged = " + std::to_string(opts_.max_hedged) +
          "; it must be between 1 and 10");
    }
    if (opts_.delay.count() < 0) {
      throw std::invalid_argument(
          "weft::resilience::hedge: delay is negative; use zero (all at once) or "
          "hedge_options::never (hedge on failures only)");
    }
    if (opts_.percentile) {
      const auto& p = *opts_.percentile;
      if (!(p.quantile > 0.0 && p.quantile <= 1.0)) {
        throw std::invalid_argument("weft::resilience::hedge: percentile.quantile = " +
                                    std::to_string(p.quantile) + "; it must be in (0, 1]");
      }
      if (p.period.count() <= 0) {
        throw std::invalid_argument("weft::resilience::hedge: percentile.period must be positive");
      }
      if (p.min_samples == 0) {
        throw std::invalid_argument("weft::resilience::hedge: percentile.min_samples must be >= 1");
      }
      latency_ = std::make_unique<detail::rotating_latency>(p.quantile, p.period);
    }
  }

  /// The layer protocol. Accepts only continuations that end in an idempotent() operation.
  template <class R, idempotent_continuation Next>
  task<call_outcome<R>> run(resilience_context& ctx, Next next) {
    const std::optional<clock::duration> delay = current_delay();
    if (opts_.gate != nullptr) opts_.gate->record_request();
    if (!delay) {
      // Not hedging yet (too few latency samples): the primary alone, still measured.
      resilience_context primary = ctx;
      primary.attempt = 1;
      const auto started = clock::now();
      auto o = co_await next(primary);
      (void)judge(primary, o, clock::now() - started);
      ctx.attempts_made = 1;
      co_return o;
    }
    co_return co_await race<R>(ctx, next, *delay);
  }

  /// Runs `op` through this layer alone; `op` must be wrapped with idempotent().
  template <idempotent_operation F>
  auto execute(F op) {
    return weft::resilience::execute(*this, std::move(op));
  }

  /// The delay a call starting now would use before its first hedge, or nullopt when it would
  /// not hedge (a percentile delay still short of min_samples, with cold_start::no_hedging).
  [[nodiscard]] std::optional<clock::duration> current_delay() const {
    if (!latency_) return opts_.delay;
    const auto r = latency_->read();
    if (r.samples >= opts_.percentile->min_samples) return r.value;
    if (opts_.percentile->until_min_samples == cold_start::fixed_delay) return opts_.delay;
    return std::nullopt;
  }

  [[nodiscard]] telemetry& observers() noexcept { return tel_; }
  [[nodiscard]] const hedge_options& options() const noexcept { return opts_; }

 private:
  // Judges one finished attempt (on the worker it finished on): verdict, retryability, and the
  // bookkeeping every finished attempt gets — the gate, the attempt histogram, the latency
  // samples (successes only, as Tower records).
  template <class R>
  detail::hedge_report<R> judge(const resilience_context& ctx, const call_outcome<R>& o,
                                clock::duration elapsed) const {
    detail::hedge_report<R> r;
    const auto view = view_of(o);
    r.judged = opts_.classify(view);
    r.retryable = r.judged != verdict::success && opts_.retryable(view);
    if (o.is_cancelled()) return r;  // a loser we stopped, or the caller's cancellation
    if (opts_.gate != nullptr) opts_.gate->record_outcome(gate_verdict(r));
    if (auto* sink = tel_.sink()) sink->record_attempt(tel_.name(), ctx, elapsed, r.judged);
    if (latency_ && r.judged == verdict::success) latency_->record(elapsed);
    return r;
  }

  // What the gate hears, as the retry layer reports it (gRPC's throttle counts only retryable
  // failures against the dependency): success, failure if retryable, otherwise ignore.
  template <class R>
  static verdict gate_verdict(const detail::hedge_report<R>& r) noexcept {
    if (r.judged == verdict::success) return verdict::success;
    return r.retryable ? verdict::failure : verdict::ignore;
  }

  // One attempt, as a child task: its own cancellation becomes the context's token, so the
  // inner layers see the hedge stopping it.
  template <class R, class Next>
  static task<detail::hedge_report<R>> attempt(const hedge* self, Next next,
                                               resilience_context ctx) {
    ctx.token = co_await this_task::cancel_token();
    const auto started = clock::now();
    auto o = co_await next(ctx);
    auto r = self->judge(ctx, o, clock::now() - started);
    r.result.emplace(std::move(o));
    co_return r;
  }

  // The delay before the next hedge, as a child task; reports whether it ran out. `due` is set
  // by the hedge before the child starts.
  template <class R>
  static task<detail::hedge_report<R>> delay_timer(const clock::time_point* due) {
    detail::hedge_report<R> r;
    r.fired = co_await or_cancelled(sleep_until(*due));
    co_return r;
  }

  // The hedged call. Children: index 2k is attempt k (0 = primary), 2k+1 the timer started with
  // it for attempt k+1. Only the timer of the latest attempt may launch the next one; older
  // timers are left to run out or be cancelled at the end (a spurious wake, never a launch).
  template <class R, class Next>
  task<call_outcome<R>> race(resilience_context& ctx, Next next, clock::duration delay) {
    using report = detail::hedge_report<R>;
    const std::size_t attempts = static_cast<std::size_t>(opts_.max_hedged) + 1;
    std::vector<clock::time_point> due(attempts);
    std::vector<task<report>> children;
    children.reserve(2 * attempts - 1);
    for (std::size_t k = 0; k < attempts; ++k) {
      resilience_context copy = ctx;
      copy.attempt = static_cast<int>(k) + 1;
      children.push_back(attempt<R>(this, next, std::move(copy)));
      if (k + 1 < attempts) children.push_back(delay_timer<R>(&due[k]));
    }

    std::optional<call_outcome<R>> winner;
    std::optional<call_outcome<R>> primary;
    std::size_t made = 0;  // attempts launched, for ctx.attempts_made
    const auto own_token = co_await this_task::cancel_token();
    {
      child_set<report> set{std::move(children)};
      std::size_t launched = 0;          // attempts started
      std::size_t attempts_running = 0;  // started and not reported
      std::size_t running = 0;           // children started and not reported
      bool finished = false;             // a winner, or nothing left to wait for
      bool may_launch = true;            // false once the gate refused
      clock::time_point last_launch = clock::now();
      const auto caller_cancelled = [&] {
        return ctx.token.is_cancellation_requested() || own_token.is_cancellation_requested();
      };
      // Starts attempt `launched` (and its timer); false if the gate refused a hedge.
      const auto launch = [&](const call_outcome<R>* trigger) {
        const std::size_t k = launched;
        const auto now = clock::now();
        if (k > 0) {
          if (opts_.gate != nullptr && !opts_.gate->try_acquire_retry()) {
            may_launch = false;
            if (tel_.active()) {
              auto e = tel_.make(event_kind::retry_budget_exhausted, ctx);
              e.attempt = static_cast<int>(k) + 1;
              tel_.emit(e);
            }
            return false;
          }
          if (tel_.active()) {
            auto e = tel_.make(event_kind::hedge_launched, ctx);
            e.attempt = static_cast<int>(k) + 1;
            e.delay = now - last_launch;
            if (trigger != nullptr) {
              e.outcome = trigger->kind();
              e.error = trigger->error();
            }
            tel_.emit(e);
          }
        }
        last_launch = now;
        set.start(2 * k);
        ++launched;
        ++attempts_running;
        ++running;
        if (k + 1 < attempts && delay != hedge_options::never) {
          due[k] = delay == clock::duration::zero() ? now : detail::saturating_deadline(now, delay);
          set.start(2 * k + 1);
          ++running;
        }
        // A cancellation that came before this start found nothing to cancel.
        if (caller_cancelled()) set.cancel_all();
        return true;
      };
      const auto can_launch = [&](std::size_t after) {
        return !finished && may_launch && after + 1 == launched && launched < attempts &&
               !caller_cancelled();
      };

      launch(nullptr);
      const auto stop_children = [&set]() noexcept { set.cancel_all(); };
      cancel_callback stop_caller{ctx.token, stop_children};
      cancel_callback stop_task{own_token, stop_children};
      while (running > 0) {
        const std::size_t i = co_await set.next();
        --running;
        auto taken = set.take(i);
        const std::size_t k = i / 2;
        if (i % 2 == 1) {  // a timer
          if (taken.has_value() && taken.value().fired && can_launch(k)) launch(nullptr);
          continue;
        }
        --attempts_running;
        // A child cancelled before it started has no report: it never ran.
        call_outcome<R> o = taken.has_value() && taken.value().result
                                ? std::move(*taken.value().result)
                                : call_outcome<R>::cancelled();
        const verdict v = taken.has_value() ? taken.value().judged : verdict::ignore;
        const bool retryable = taken.has_value() && taken.value().retryable;
        if (finished) continue;  // a loser stopping
        if (v == verdict::success) {
          winner.emplace(std::move(o));
          finished = true;
          set.cancel_all();
          continue;
        }
        if (retryable && can_launch(k)) launch(&o);
        if (k == 0) primary.emplace(std::move(o));
        if (attempts_running == 0) {
          // Every attempt failed and none is coming on a failure: stop the pending timer.
          finished = true;
          set.cancel_all();
        }
      }
      made = launched;
    }  // every child reported; their frames are released here, before the caller resumes
    ctx.attempts_made = static_cast<int>(made);
    if (winner) co_return std::move(*winner);
    if (ctx.token.is_cancellation_requested() || own_token.is_cancellation_requested()) {
      co_return call_outcome<R>::cancelled();
    }
    if (primary) co_return std::move(*primary);
    co_return call_outcome<R>::cancelled();  // unreachable: the primary always reports
  }

  hedge_options opts_;
  telemetry tel_;
  std::unique_ptr<detail::rotating_latency> latency_;
};

}  // namespace weft::resilience
