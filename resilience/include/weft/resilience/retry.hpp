// weft::resilience::retry: runs the rest of the pipeline again after a retryable failure, with
// backoff and jitter, Retry-After pushback, deadline awareness, an optional shared retry budget
// or throttle, events before every sleep and resilience4j's four counters.
//
// Thread safety: one retry may run calls on every worker at once (see the class): its options are
// read only and its counters atomics; a custom rng, profile selector or predicate must allow
// concurrent calls. Move a retry only while no call runs through it.
//
// Cancellation: a cancellation of the caller (the awaiting task's token or ctx.token) during an
// attempt or a backoff sleep ends the call with cancelled and starts no further attempt; an attempt
// that fails after the cancellation is returned as cancelled too, one that returns a value keeps
// it. Cancelled calls are not counted in metrics(); the gate hears a cancelled attempt as neither
// success nor failure, and keeps an allowance taken for a retry whose sleep was cancelled.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <weft/cancel/cancel_scope.hpp>
#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/or_cancelled.hpp>
#include <weft/resilience/backoff.hpp>
#include <weft/resilience/budget.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/classify.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/detail/quiet_wait.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/rng.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/clock.hpp>
#include <weft/time/sleep.hpp>

namespace weft::resilience {

/// Why a retrying call stopped with a failure (reported as retry_gave_up's `reason`, except
/// budget, which is the retry_budget_exhausted event).
enum class give_up_reason : std::uint8_t {
  attempts,       // max_attempts were made
  not_retryable,  // the filter said no (a rejection, a logic_error, …)
  deadline,       // now + delay >= the context's deadline: no time for another attempt
  budget,         // the retry gate refused
};

[[nodiscard]] constexpr std::string_view to_string(give_up_reason r) noexcept {
  switch (r) {
    case give_up_reason::attempts:
      return "attempts";
    case give_up_reason::not_retryable:
      return "not_retryable";
    case give_up_reason::deadline:
      return "deadline";
    case give_up_reason::budget:
      return "budget";
  }
  return "unknown";
}

/// How a retry behaves. The defaults (docs/resilience-rules.md "Retry"): 3 attempts including the
/// first, exponential backoff from 100 ms (×2, capped at 10 s) with full jitter, Retry-After
/// honoured.
struct retry_options {
  /// Attempts in all, the first included; at least 1 (1 never retries).
  int max_attempts = 3;
  /// The delay before each retry, unless `profile_for` picks one per failure.
  weft::resilience::backoff backoff = {};
  /// Optional: the profile for a given failure (per-error backoff, as resilience4j's
  /// IntervalBiFunction). The retry number n and the decorrelated state carry across profiles.
  /// The profiles it returns are not validated per call: they must pass backoff::validate.
  retry_profile_selector profile_for = {};
  /// Which failures are retried (empty: default_retryable — every failure except library
  /// rejections, std::logic_error and std::bad_alloc; `timeout` is retried). Values and
  /// cancellation never are.
  predicate retry_when = {};
  /// Verdicts for the counters, the gate and the attempt-duration metric (not for retrying).
  classifier classify = {};
  /// A failure's retry_after (Retry-After, gRPC pushback) replaces the computed delay exactly.
  bool honor_retry_after = true;
  /// Optional, shared: a retry_budget or grpc_throttle per dependency. Must outlive the retry.
  retry_gate* gate = nullptr;
  /// The jitter's randomness (tests fix it with rng::sequence).
  rng random = {};
  /// The layer's name in events and metrics.
  std::string name = "retry";
};

/// resilience4j's four counters, as a snapshot. Every call that did not end cancelled is counted
/// once, when it ends: a success is an outcome `classify` judges success; everything else
/// (failures, rejections, ignored outcomes) is a failure; "with retry" means at least two
/// attempts ran.
struct retry_metrics {
  std::uint64_t successful_without_retry = 0;
  std::uint64_t successful_with_retry = 0;
  std::uint64_t failed_with_retry = 0;
  std::uint64_t failed_without_retry = 0;
};

/// Retries the layers inside it and the operation after retryable failures.
///
///     retry_budget budget;                                  // one per dependency
///     retry r{{.max_attempts = 4, .gate = &budget}};
///     int v = co_await r.execute([&] { return backend.get(key); });
///
/// For each attempt ctx.attempt is its number (1, 2, …; restored when the call ends, the last
/// one left in ctx.attempts_made). After a failed attempt it gives up, returning that attempt's
/// outcome, when the failure is not retryable (retry_gave_up, reason not_retryable), when
/// max_attempts have run (attempts), when `now + delay >= ctx.deadline` (deadline; it does not
/// sleep — the timeout layer outside owns the timeout error), or when the gate refuses
/// (retry_budget_exhausted). Otherwise it emits `retry` (attempt = the failed attempt's number,
/// delay), destroys the failed outcome and sleeps. The delay is the failure's retry_after if it has
/// one (exactly: not capped by max_delay; the backoff's n restarts at 1 after it), else the backoff
/// profile's next delay.
///
/// Thread safety: one retry may run calls on every worker at once; its counters are atomics and
/// its options are read only. A custom rng or selector must be thread-safe.
/// Cancellation: a cancellation of the caller (the awaiting task's token or ctx.token) during an
/// attempt or a sleep ends the call at once with `cancelled`; no further attempt starts.
/// Errors: std::invalid_argument at construction for max_attempts < 1 or an invalid backoff.
class retry {
 public:
  retry() : retry(retry_options{}) {}
  explicit retry(retry_options options)
      : opts_(std::move(options)), tel_(opts_.name), filter_{opts_.retry_when} {
    if (opts_.max_attempts < 1) {
      throw std::invalid_argument(
          "weft::resilience::retry: retry_options.max_attempts must be at "
          "least 1 (it is " +
          std::to_string(opts_.max_attempts) + ")");
    }
    opts_.backoff.validate("weft::resilience::retry");
  }
  /// Moves the options, observers and counter values; only while no call runs.
  retry(retry&& other) noexcept
      : opts_(std::move(other.opts_)),
        tel_(std::move(other.tel_)),
        filter_(std::move(other.filter_)),
        counters_(other.counters_) {}
  retry(const retry&) = delete;
  retry& operator=(const retry&) = delete;
  retry& operator=(retry&&) = delete;

  /// The layer protocol (see pipeline.hpp).
  template <class R, class Next>
  task<call_outcome<R>> run(resilience_context& ctx, Next next);

  /// Runs `op` through this retry alone.
  template <class F>
  auto execute(F op) {
    return weft::resilience::execute(*this, std::move(op));
  }

  /// Events (retry, retry_gave_up, retry_budget_exhausted) and the metrics sink.
  [[nodiscard]] telemetry& observers() noexcept { return tel_; }
  /// The four counters, read now.
  [[nodiscard]] retry_metrics metrics() const noexcept { return counters_.snapshot(); }
  [[nodiscard]] const retry_options& options() const noexcept { return opts_; }

 private:
  struct counters {
    std::atomic<std::uint64_t> ok_first{0}, ok_retried{0}, failed_retried{0}, failed_first{0};
    counters() = default;
    counters(const counters& o) noexcept
        : ok_first(o.ok_first.load(std::memory_order_relaxed)),
          ok_retried(o.ok_retried.load(std::memory_order_relaxed)),
          failed_retried(o.failed_retried.load(std::memory_order_relaxed)),
          failed_first(o.failed_first.load(std::memory_order_relaxed)) {}
    // relaxed: independent statistics; a snapshot need not be consistent across counters.
    void count(verdict v, int attempts) noexcept {
      const bool retried = attempts > 1;
      auto& c = v == verdict::success ? (retried ? ok_retried : ok_first)
                                      : (retried ? failed_retried : failed_first);
      c.fetch_add(1, std::memory_order_relaxed);
    }
    retry_metrics snapshot() const noexcept {
      return {ok_first.load(std::memory_order_relaxed), ok_retried.load(std::memory_order_relaxed),
              failed_retried.load(std::memory_order_relaxed),
              failed_first.load(std::memory_order_relaxed)};
    }
  };

  // Puts ctx.attempt back when the call ends, however it ends, leaving the count in
  // ctx.attempts_made for the layers outside (a fallback reports it).
  struct attempt_restorer {
    resilience_context& ctx;
    int saved;
    ~attempt_restorer() {
      ctx.attempts_made = ctx.attempt;
      ctx.attempt = saved;
    }
  };

  // What the gate hears about an attempt (gRPC A6): a success is a success; only failures that
  // would be retried count as failures ("retryable status codes"); the rest is neither.
  static verdict gate_verdict(verdict v, bool retryable) noexcept {
    if (v == verdict::success) return verdict::success;
    return retryable ? verdict::failure : verdict::ignore;
  }

  void emit(event_kind kind, const resilience_context& ctx, const outcome_view& view, int attempt,
            clock::duration delay, std::string_view reason) const noexcept {
    if (!tel_.active()) return;
    layer_event e = tel_.make(kind, ctx);
    e.outcome = view.kind;
    e.error = view.error;
    e.attempt = attempt;
    e.delay = delay;
    e.reason = reason;
    tel_.emit(e);
  }

  retry_options opts_;
  telemetry tel_;
  retry_filter filter_;  // built once: copying a predicate per call would allocate
  counters counters_;
};

template <class R, class Next>
task<call_outcome<R>> retry::run(resilience_context& ctx, Next next) {
  const cancel_token own = co_await this_task::cancel_token();
  attempt_restorer restore{ctx, ctx.attempt};
  retry_gate* const gate = opts_.gate;
  if (gate != nullptr) gate->record_request();
  backoff_state state;

  for (int attempt = 1;; ++attempt) {
    clock::duration delay{};
    {
      // The failed outcome lives only in this block: it is destroyed before the sleep below.
      ctx.attempt = attempt;
      metrics_sink* const sink = tel_.sink();
      const clock::time_point started = sink != nullptr ? clock::now() : clock::time_point{};
      std::optional<call_outcome<R>> attempted;
      try {
        attempted.emplace(co_await next(ctx));
      } catch (const operation_cancelled&) {
        // Layers return their failures; what throws here is the runtime refusing to start the
        // attempt's task for a caller cancelled since the sleep ended (on another thread, or by
        // code that ran in between): the call ends cancelled, as it would have in the sleep.
      }
      if (!attempted) co_return call_outcome<R>::cancelled();
      call_outcome<R>& o = *attempted;

      if (o.kind() == outcome_kind::value && opts_.classify.failure_when.empty() &&
          opts_.classify.ignore_when.empty()) {
        // The success path: nothing to judge.
        if (gate != nullptr) gate->record_outcome(verdict::success);
        if (sink != nullptr) {
          sink->record_attempt(tel_.name(), ctx, clock::now() - started, verdict::success);
        }
        counters_.count(verdict::success, attempt);
        co_return std::move(o);
      }

      const outcome_view view = view_of(o);
      const verdict v = opts_.classify(view);
      const bool cancelled = o.is_cancelled() || view.error == std::errc::operation_canceled ||
                             ctx.token.is_cancellation_requested() ||
                             own.is_cancellation_requested();
      const bool retryable = !cancelled && filter_(view);
      if (gate != nullptr) gate->record_outcome(gate_verdict(v, retryable));
      if (sink != nullptr) sink->record_attempt(tel_.name(), ctx, clock::now() - started, v);

      if (cancelled && o.kind() != outcome_kind::value) {
        if (o.is_cancelled()) co_return std::move(o);
        co_return call_outcome<R>::cancelled();
      }
      if (!retryable) {
        counters_.count(v, attempt);
        if (v == verdict::failure) {  // an ignored outcome is not one the retry gave up on
          emit(event_kind::retry_gave_up, ctx, view, attempt, {},
               to_string(give_up_reason::not_retryable));
        }
        co_return std::move(o);
      }
      if (attempt >= opts_.max_attempts) {
        counters_.count(v, attempt);
        emit(event_kind::retry_gave_up, ctx, view, attempt, {},
             to_string(give_up_reason::attempts));
        co_return std::move(o);
      }

      const std::optional<clock::duration> pushback =
          opts_.honor_retry_after ? o.retry_after() : std::nullopt;
      if (pushback) {
        // gRPC: the server's delay is used as is, and the backoff starts over after it.
        delay = std::max(*pushback, clock::duration::zero());
        state.restart();
      } else if (opts_.profile_for) {
        const weft::resilience::backoff profile = opts_.profile_for(view);
        delay = profile.next(state, opts_.random);
      } else {
        delay = opts_.backoff.next(state, opts_.random);
      }

      // now + delay >= deadline, written so that a huge pushback cannot overflow.
      if (ctx.deadline && *ctx.deadline - clock::now() <= delay) {
        counters_.count(v, attempt);
        emit(event_kind::retry_gave_up, ctx, view, attempt, delay,
             to_string(give_up_reason::deadline));
        co_return std::move(o);
      }
      if (gate != nullptr && !gate->try_acquire_retry()) {
        counters_.count(v, attempt);
        emit(event_kind::retry_budget_exhausted, ctx, view, attempt, delay,
             to_string(give_up_reason::budget));
        co_return std::move(o);
      }
      emit(event_kind::retry, ctx, view, attempt, delay, {});
    }

    if (delay > clock::duration::zero()) {
      const clock::time_point until = detail::saturating_deadline(clock::now(), delay);
      bool woke = false;
      if (!detail::needs_context_link(ctx, own)) {
        woke = co_await or_cancelled(sleep_until(until));
      } else {
        // The context carries a token of its own: the sleep ends on either, as a value.
        cancel_scope scope(ctx.token);
        woke = co_await scope.run(or_cancelled(sleep_until(until)));
      }
      if (!woke) co_return call_outcome<R>::cancelled();
    } else if (ctx.token.is_cancellation_requested() || own.is_cancellation_requested()) {
      co_return call_outcome<R>::cancelled();
    }
  }
}

}  // namespace weft::resilience
