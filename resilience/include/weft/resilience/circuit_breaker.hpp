// weft::resilience::circuit_breaker: stops calling a dependency that keeps failing or answering
// slowly, and lets a few trial calls through after a while to see whether it recovered
// (docs/resilience-rules.md, "Circuit breaker"). The state machine lives in
// src/circuit_breaker.cpp.
//
// Thread safety: every member may be called concurrently from any worker (see the class): closed,
// metrics_only and disabled admit without a lock, everything else changes under a spin lock never
// held across a suspension, and events are emitted once it is released. With automatic_transition a
// detached timer task makes the timed transitions; it does nothing if the breaker is gone.
//
// Cancellation: the breaker never waits: it admits or refuses at once. A cancelled outcome is
// recorded as ignored whatever the classifier says (it enters no window, is never slow, and in
// half_open gives its trial slot back), and so is a permit dropped unrecorded (a cancelled or
// destroyed frame). Only the outcome is judged: a failure returned after a cancellation counts.
#pragma once

#include <chrono>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/classify.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

namespace detail {
class breaker_core;
}  // namespace detail

/// The calls a breaker judges its failure and slow-call rates over.
///
///     window::count(100)        // the last 100 recorded calls (the default)
///     window::time(60s, 10)     // the calls of the last 60 s, in ten 6 s buckets
///     window::consecutive(5)    // open after 5 failures (or 5 slow calls) in a row
///
/// Time windows are aligned to the breaker's creation time t0: a call recorded at t goes into
/// bucket ⌊(t − t0)/w⌋ (w = length/buckets) and the window holds the buckets whose index is
/// greater than current − buckets, so a bucket leaves at exactly t0 + (index + buckets)·w.
/// A consecutive window ignores minimum_calls and both rate thresholds: n failures in a row open
/// the breaker, as do n slow calls in a row; a success resets the failure run, a call that is not
/// slow the slow run.
struct window {
  enum class kind : std::uint8_t { count, time, consecutive };

  static constexpr window count(std::size_t n = 100) noexcept { return {kind::count, n, {}}; }
  static constexpr window time(clock::duration length, std::size_t buckets = 10) noexcept {
    return {kind::time, buckets, length};
  }
  static constexpr window consecutive(std::size_t n) noexcept { return {kind::consecutive, n, {}}; }

  kind type = kind::count;
  std::size_t size = 100;    // calls (count), buckets (time), or the run length (consecutive)
  clock::duration length{};  // time windows: the whole span, a multiple of `size` nanoseconds
};

/// How a half-open breaker decides.
///
/// `successes(n)` (the default, n = 3, as in Failsafe): close after n trial successes; the first
/// trial failure, or trial call slower than slow_call_duration, re-opens at once. `rate()`
/// (resilience4j): wait until all half_open_permits trial calls reported, then re-open if their
/// failure rate or slow-call rate reaches its threshold, else close.
struct half_open_policy {
  enum class kind : std::uint8_t { successes, rate };

  static constexpr half_open_policy successes(std::size_t n = 3) noexcept {
    return {kind::successes, n};
  }
  static constexpr half_open_policy rate() noexcept { return {kind::rate, 0}; }

  kind type = kind::successes;
  std::size_t required_successes = 3;  // successes() only
};

/// How a circuit_breaker judges calls and moves between states. The defaults follow
/// resilience4j, except half-open (Failsafe's successes(3)).
struct circuit_breaker_options {
  /// The calls the rates are computed over (see `window`).
  resilience::window window = resilience::window::count();
  /// No transition while fewer calls are buffered (count windows use min(minimum_calls, size)).
  std::size_t minimum_calls = 100;
  /// Open when failures/buffered >= this, in (0, 1].
  double failure_rate_threshold = 0.5;
  /// A recorded call is slow when its duration is > this (not >=). clock::duration::max()
  /// turns slow-call detection off, and with it the two clock reads that time each call.
  clock::duration slow_call_duration = std::chrono::seconds{60};
  /// Open when slow/buffered >= this, in (0, 1].
  double slow_call_rate_threshold = 1.0;
  /// How long the breaker stays open.
  clock::duration open_duration = std::chrono::seconds{60};
  /// When set, the open time of the k-th consecutive opening (k = 1, 2, …; back to 0 on close)
  /// instead of open_duration. Called under the breaker's lock: keep it short; it must not throw
  /// (the process terminates if it does). A result below one nanosecond counts as one.
  std::function<clock::duration(std::size_t k)> open_duration_fn;
  /// Trial calls per half-open episode, in flight and in total (ignored ones give theirs back).
  std::size_t half_open_permits = 3;
  /// When a half-open breaker closes or re-opens.
  resilience::half_open_policy half_open_policy = resilience::half_open_policy::successes();
  /// A half-open episode that has not decided by entered + this re-opens at exactly that instant;
  /// unset means the open duration of the episode before it.
  std::optional<clock::duration> half_open_max_duration;
  /// False: open → half_open happens on the first acquire at or after opened_at + open_duration,
  /// and a half-open episode's expiry is applied by the first acquire, record, state() or
  /// metrics() at or after it, stamped with the exact instant. True: a timer task makes both
  /// transitions at their instants, without calls (it is started where the breaker opens or
  /// enters half-open, when that happens on a runtime's worker; elsewhere the lazy rules apply,
  /// then with half-open entered at exactly opened_at + open_duration).
  bool automatic_transition = false;
  /// Outcomes counted as failures (see `classifier`); empty: default_classify.
  predicate failure_when;
  /// Outcomes neither counted nor held against the dependency, whatever failure_when says
  /// (resilience4j's ignoreExceptions): the call's permit is given back as for a cancellation.
  predicate ignore_when;
  /// The layer name events and metrics carry.
  std::string name = "circuit_breaker";
};

/// Every outcome a breaker was told of since its creation or reset(): late ones (from an older
/// epoch) included.
struct breaker_totals {
  std::uint64_t successful = 0;
  std::uint64_t failed = 0;
  std::uint64_t ignored = 0;
  std::uint64_t slow = 0;      // among successful and failed
  std::uint64_t rejected = 0;  // calls refused (circuit_open, circuit_isolated)
  std::uint64_t late = 0;      // outcomes from an older epoch (counted above too)
};

/// What a breaker has recorded, read in one go.
///
///     const auto m = breaker.metrics();
///     if (m.failure_rate) log("failure rate", *m.failure_rate, "over", m.buffered_calls);
struct circuit_breaker_metrics {
  breaker_state state = breaker_state::closed;
  std::uint64_t epoch = 0;
  /// The window's calls (closed, metrics_only; open and the forced states keep the window they
  /// had), or the trial calls that reported (half_open).
  std::size_t buffered_calls = 0;
  std::size_t failed_calls = 0;
  std::size_t slow_calls = 0;
  /// failed/buffered and slow/buffered; empty while fewer than the minimum calls are buffered
  /// (half_open: while no trial reported). A consecutive window reports run/n.
  std::optional<double> failure_rate;
  std::optional<double> slow_call_rate;
  /// half_open: trial permits taken and not given back (in flight or reported).
  std::size_t trial_permits_used = 0;
  /// Openings since the breaker last closed (the k of open_duration_fn).
  std::size_t consecutive_opens = 0;
  /// open: the time until a call may start a half-open episode.
  std::optional<clock::duration> retry_after;
  breaker_totals totals;
};

/// A circuit breaker: closed (calls pass and are recorded), open (calls are refused with
/// circuit_open and a retry_after), half_open (a few trial calls decide), plus the forced states
/// isolated (refused with circuit_isolated), disabled (everything passes, nothing is recorded)
/// and metrics_only (everything passes and is recorded, it never opens).
///
///     circuit_breaker breaker{{.window = window::count(20), .minimum_calls = 10}};
///     pipeline pipe{retry, breaker};
///     auto body = co_await pipe.execute([&] { return client.get(url); });
///
/// Every transition starts a new epoch; a permit belongs to the epoch that issued it, and an
/// outcome from an older epoch only updates the totals (and emits its outcome event): it never
/// enters the window and never causes a transition. Checks run after every outcome recorded in
/// closed, success or failure, so a window that fills with a success can open the breaker.
/// Thread safety: every member may be called concurrently; the breaker must outlive the calls
/// through it. Movable (see the move constructor). Errors: bad options throw
/// std::invalid_argument at construction.
class circuit_breaker {
 public:
  class permit;
  struct admission;

  /// Throws std::invalid_argument naming the option that is out of range.
  explicit circuit_breaker(circuit_breaker_options options = {});
  /// Reports through `shared` instead of a telemetry of its own (a breaker_family's breakers
  /// share one).
  circuit_breaker(circuit_breaker_options options, std::shared_ptr<telemetry> shared);
  circuit_breaker(const circuit_breaker&) = delete;
  circuit_breaker& operator=(const circuit_breaker&) = delete;
  /// Moves the breaker's state (it lives behind a pointer): permits already issued and calls
  /// running through it are not affected. The moved-from breaker may only be destroyed or
  /// assigned to. Epoch tags (resilience_context::epoch_of) are keyed by the breaker's address:
  /// look up a moved breaker's tags under its new address for calls started after the move.
  circuit_breaker(circuit_breaker&&) noexcept;
  circuit_breaker& operator=(circuit_breaker&&) noexcept;
  ~circuit_breaker();

  /// The layer protocol: refuses with circuit_open / circuit_isolated (as a value), or runs the
  /// rest of the pipeline under a permit tagged in `ctx` with its epoch and records the outcome.
  /// Returns an awaiter rather than a task, so the breaker adds no coroutine frame per call; the
  /// permit is taken when it is awaited.
  template <class R, class Next>
  auto run(resilience_context& ctx, Next next);

  /// Runs `op` through this breaker alone: `co_await breaker.execute([&] { return call(); })`.
  template <class F>
  auto execute(F op) {
    return weft::resilience::execute(*this, std::move(op));
  }

  /// For calls that are not coroutines: a permit, or nothing when the breaker refuses. Record
  /// the call's outcome on the permit; a permit dropped unrecorded counts as ignored.
  ///
  ///     if (auto p = breaker.try_acquire()) {
  ///       auto o = call_blocking();
  ///       p->record(view_of(o));   // or p->record(view_of(o), measured_duration)
  ///     }
  [[nodiscard]] std::optional<permit> try_acquire();
  /// As try_acquire, with the refusal's code and retry_after, events about `ctx`, and the
  /// permit's epoch tagged in `ctx` under this breaker's address.
  [[nodiscard]] admission acquire(resilience_context& ctx);

  /// The state now (applies a due half-open expiry first).
  [[nodiscard]] breaker_state state() const;
  /// The current epoch: it grows by one at every transition.
  [[nodiscard]] std::uint64_t epoch() const;
  /// A consistent snapshot of the window, the half-open episode and the totals.
  [[nodiscard]] circuit_breaker_metrics metrics() const;

  /// The forced transitions below start a new epoch and emit breaker_state_changed; each is a
  /// no-op when the breaker is already in that state (reset() excepted).

  /// Forces the isolated state: every call is refused with circuit_isolated until another
  /// transition_to_* or reset().
  void transition_to_forced_open();
  /// Lets every call through and records nothing.
  void transition_to_disabled();
  /// Lets every call through, records and reports, never opens.
  void transition_to_metrics_only();
  /// Closes with an empty window (the consecutive-open count goes back to 0).
  void transition_to_closed();
  /// Closes with an empty window and zeroed totals, whatever the state.
  void reset();

  /// The breaker's listeners and metrics sink (a family's breakers share the family's).
  [[nodiscard]] telemetry& observers() noexcept;
  [[nodiscard]] const circuit_breaker_options& options() const noexcept;

 private:
  std::shared_ptr<detail::breaker_core> core_;
};

/// The right to make one call, issued by a breaker in one epoch. Record the call's outcome once;
/// dropping the permit unrecorded (an exception, a cancelled or destroyed coroutine) counts as an
/// ignored call: in half_open it gives its trial slot back. Move-only.
class circuit_breaker::permit {
 public:
  permit(permit&& other) noexcept;
  permit& operator=(permit&& other) noexcept;
  ~permit();

  /// Judges `o` with the breaker's classifier and records it; the duration is the time since the
  /// permit was issued. Throws std::logic_error for a permit already recorded or moved from.
  void record(const outcome_view& o);
  /// As record(o), with a duration measured by the caller.
  void record(const outcome_view& o, clock::duration duration);
  /// As record(o), with events about `ctx`.
  void record(const outcome_view& o, const resilience_context& ctx);

  /// The epoch that issued this permit.
  [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_; }
  /// The state that issued it (closed, half_open, metrics_only or disabled).
  [[nodiscard]] breaker_state issued_in() const noexcept { return state_; }
  /// False once recorded or moved from.
  [[nodiscard]] bool held() const noexcept { return core_ != nullptr; }

 private:
  friend class detail::breaker_core;
  permit(detail::breaker_core* core, std::uint64_t epoch, breaker_state state,
         clock::time_point start) noexcept
      : core_(core), epoch_(epoch), start_(start), state_(state) {}
  void finish(const outcome_view& o, std::optional<clock::duration> d,
              const resilience_context* ctx);

  detail::breaker_core* core_ = nullptr;
  std::uint64_t epoch_ = 0;
  clock::time_point start_{};
  breaker_state state_ = breaker_state::closed;
};

/// What acquire() answered: a permit, or the refusal's code and retry_after.
struct circuit_breaker::admission {
  std::optional<circuit_breaker::permit> granted;
  std::error_code error;  // circuit_open or circuit_isolated when refused
  /// circuit_open: opened_at + open_duration − now, or 0 in half_open with every trial slot
  /// taken; circuit_isolated: none.
  std::optional<clock::duration> retry_after;

  explicit operator bool() const noexcept { return granted.has_value(); }
};

namespace detail {
/// Throws std::invalid_argument for options a breaker cannot run with.
void validate(const circuit_breaker_options& o);

/// Where a breaker call gets its breaker: one breaker (circuit_breaker::run).
struct one_breaker {
  circuit_breaker* breaker;
  circuit_breaker& get(const resilience_context&) const noexcept { return *breaker; }
};

/// One call through a breaker, as an awaiter: when awaited it asks the breaker for a permit;
/// refused, it completes at once with the rejection; admitted, it awaits next(ctx) in place and
/// records the outcome on the permit. The permit lives in the awaiter, so it is released however
/// the awaiting coroutine ends, its frame's destruction included.
template <class R, class Next, class Source>
class breaker_call {
  using awaitable = std::invoke_result_t<Next&, resilience_context&>;
  using awaiter = typename inner_call<awaitable>::awaiter;

 public:
  breaker_call(Source source, resilience_context& ctx, Next next)
      : source_(std::move(source)), ctx_(&ctx), next_(next) {}

  /// A dump follows the inner call.
  void describe_await(weft::await_description& d) const { inner_.describe_await(d); }
  bool await_ready() {
    circuit_breaker& breaker = source_.get(*ctx_);  // once: a family's lookup is not free
    admission_ = breaker.acquire(*ctx_);
    if (!admission_) {
      refused_by_ = &breaker.observers().shared_name();
      return true;
    }
    inner_.start([this] { return next_(*ctx_); });
    return inner_.get().await_ready();
  }
  template <class Promise>
  decltype(auto) await_suspend(std::coroutine_handle<Promise> caller) {
    return inner_.get().await_suspend(caller);
  }
  call_outcome<R> await_resume() {
    if (!admission_) {
      return call_outcome<R>::failure(admission_.error, admission_.retry_after)
          .from_layer(*refused_by_);
    }
    call_outcome<R> o = inner_.get().await_resume();
    admission_.granted->record(view_of(o), *ctx_);
    return o;
  }

 private:

  // Declared first, destroyed last: a family's breaker outlives the permit taken from it.
  Source source_;
  resilience_context* ctx_;
  Next next_;
  circuit_breaker::admission admission_;
  const std::shared_ptr<const std::string>* refused_by_ = nullptr;  // the refusing breaker's name
  inner_call<awaitable> inner_;
};
}  // namespace detail

template <class R, class Next>
auto circuit_breaker::run(resilience_context& ctx, Next next) {
  return detail::breaker_call<R, Next, detail::one_breaker>(detail::one_breaker{this}, ctx, next);
}

}  // namespace weft::resilience
