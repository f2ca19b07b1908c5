// The circuit breaker's state machine: windows, transitions, epochs, half-open trial slots and
// the optional timers of automatic_transition.
//
// Protocol of one call:
// 1. acquire: in closed, metrics_only and disabled a permit is issued from one atomic load of
//    (epoch, state), without the lock; other states take the lock, apply due timed transitions
//    (settle), then refuse or hand out a half-open trial slot.
// 2. record: the verdict is computed outside the lock (the classifier is user code), then under
//    the lock the totals are counted, due timed transitions applied, and — only when the permit's
//    epoch is the current one — the outcome enters the window or the trial counts and the checks
//    run. A permit from an older epoch stops there: that is what makes late results harmless.
// 3. Events are noted under the lock and emitted after it is released, so a listener may call
//    back into the breaker; the timers of automatic_transition are started after it too.
#include <weft/resilience/circuit_breaker.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/sync/spin_lock.hpp>
#include <weft/time/sleep.hpp>

namespace weft::resilience {
namespace detail {
namespace {

using weft::spin_lock;
using time_point = clock::time_point;
using duration = clock::duration;

std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}

time_point saturating_add(time_point t, duration d) noexcept {
  if (d > duration::zero() && t.time_since_epoch() > duration::max() - d) return time_point::max();
  return t + d;
}

[[noreturn]] void bad_option(const std::string& what) {
  throw std::invalid_argument("weft::resilience::circuit_breaker: " + what);
}

// Invariant: buffered == the number of calls the window holds; failures, slow <= buffered.
class breaker_window {
 public:
  void configure(const window& w, time_point t0) {
    kind_ = w.type;
    n_ = w.size;
    t0_ = t0;
    if (kind_ == window::kind::count) ring_.assign(n_, 0);
    if (kind_ == window::kind::time) {
      width_ = w.length.count() / static_cast<std::int64_t>(n_);
      buckets_.assign(n_, bucket{});
    }
    clear(t0);
  }

  void clear(time_point now) noexcept {
    buffered = failures = slow = 0;
    next_ = 0;
    if (kind_ == window::kind::count) std::fill(ring_.begin(), ring_.end(), std::uint8_t{0});
    if (kind_ == window::kind::time) {
      latest_ = index_of(now);
      for (std::int64_t j = latest_ - static_cast<std::int64_t>(n_) + 1; j <= latest_; ++j) {
        buckets_[slot_of(j)] = bucket{j, 0, 0, 0};
      }
    }
  }

  // Time windows: drops the buckets that left the window by `now`.
  void advance(time_point now) noexcept {
    if (kind_ != window::kind::time) return;
    const std::int64_t c = index_of(now);
    if (c <= latest_) return;
    const std::int64_t start = std::max(latest_ + 1, c - static_cast<std::int64_t>(n_) + 1);
    for (std::int64_t j = start; j <= c; ++j) {
      bucket& b = buckets_[slot_of(j)];
      buffered -= b.calls;
      failures -= b.failures;
      slow -= b.slow;
      b = bucket{j, 0, 0, 0};
    }
    latest_ = c;
  }

  void add(time_point t, bool failed, bool is_slow) noexcept {
    switch (kind_) {
      case window::kind::count: {
        const std::uint8_t bits = static_cast<std::uint8_t>((failed ? 1 : 0) | (is_slow ? 2 : 0));
        if (buffered == n_) {
          const std::uint8_t old = ring_[next_];
          failures -= old & 1;
          slow -= (old >> 1) & 1;
        } else {
          ++buffered;
        }
        ring_[next_] = bits;
        if (++next_ == n_) next_ = 0;
        failures += failed ? 1 : 0;
        slow += is_slow ? 1 : 0;
        return;
      }
      case window::kind::time: {
        const std::int64_t idx = index_of(t);
        advance(t);
        // A recorder that read the clock before another one took the lock can be a bucket
        // behind; a bucket that already left the window keeps nothing.
        if (idx <= latest_ - static_cast<std::int64_t>(n_)) return;
        bucket& b = buckets_[slot_of(idx)];
        ++b.calls;
        ++buffered;
        if (failed) {
          ++b.failures;
          ++failures;
        }
        if (is_slow) {
          ++b.slow;
          ++slow;
        }
        return;
      }
      case window::kind::consecutive:
        failures = failed ? failures + 1 : 0;  // the runs
        slow = is_slow ? slow + 1 : 0;
        buffered = std::min(buffered + 1, n_);
        return;
    }
  }

  [[nodiscard]] std::size_t minimum(std::size_t minimum_calls) const noexcept {
    return kind_ == window::kind::count ? std::min(minimum_calls, n_) : minimum_calls;
  }

  // Which thresholds the window is at or over, with the rates.
  struct exceeded {
    bool failure = false, slow = false;
    double failure_rate = 0, slow_rate = 0;
    explicit operator bool() const noexcept { return failure || slow; }
  };
  [[nodiscard]] exceeded thresholds(const circuit_breaker_options& o) const noexcept {
    exceeded x;
    if (kind_ == window::kind::consecutive) {
      x.failure = failures >= n_;
      x.slow = slow >= n_;
      x.failure_rate = static_cast<double>(failures) / static_cast<double>(n_);
      x.slow_rate = static_cast<double>(slow) / static_cast<double>(n_);
      return x;
    }
    if (buffered == 0 || buffered < minimum(o.minimum_calls)) return x;
    const double n = static_cast<double>(buffered);
    x.failure_rate = static_cast<double>(failures) / n;
    x.slow_rate = static_cast<double>(slow) / n;
    x.failure = x.failure_rate >= o.failure_rate_threshold;
    x.slow = x.slow_rate >= o.slow_call_rate_threshold;
    return x;
  }
  [[nodiscard]] bool consecutive() const noexcept { return kind_ == window::kind::consecutive; }

  void report(const circuit_breaker_options& o, circuit_breaker_metrics& m) const noexcept {
    m.buffered_calls = buffered;
    m.failed_calls = failures;
    m.slow_calls = slow;
    if (kind_ == window::kind::consecutive) {
      m.failure_rate = static_cast<double>(failures) / static_cast<double>(n_);
      m.slow_call_rate = static_cast<double>(slow) / static_cast<double>(n_);
    } else if (buffered > 0 && buffered >= minimum(o.minimum_calls)) {
      m.failure_rate = static_cast<double>(failures) / static_cast<double>(buffered);
      m.slow_call_rate = static_cast<double>(slow) / static_cast<double>(buffered);
    }
  }

  std::size_t buffered = 0, failures = 0, slow = 0;

 private:
  struct bucket {
    std::int64_t index = 0;
    std::size_t calls = 0, failures = 0, slow = 0;
  };
  std::int64_t index_of(time_point t) const noexcept {
    return floor_div((t - t0_).count(), width_);
  }
  std::size_t slot_of(std::int64_t idx) const noexcept {
    std::int64_t m = idx % static_cast<std::int64_t>(n_);
    if (m < 0) m += static_cast<std::int64_t>(n_);
    return static_cast<std::size_t>(m);
  }

  window::kind kind_ = window::kind::count;
  std::size_t n_ = 1;
  time_point t0_{};
  // count: one byte per call (bit 0 failed, bit 1 slow), next_ is the oldest once full.
  std::vector<std::uint8_t> ring_;
  std::size_t next_ = 0;
  // time: slot i holds the live bucket whose index ≡ i (mod n).
  // Invariant: the slots hold exactly the indices (latest_ − n, latest_].
  std::int64_t width_ = 1;
  std::vector<bucket> buckets_;
  std::int64_t latest_ = 0;
};

// What happened under the lock, emitted once it is released. Trivial (raw counts instead of
// time_point, duration and error_code, whose constructors write), so that an array of them costs
// nothing on the success path, where no listener means no note is written.
struct note {
  event_kind kind;
  breaker_state from, to;
  outcome_kind outcome;
  std::int64_t at_ns;     // transitions: their exact instant; other events are stamped when sent
  std::int64_t delay_ns;  // the call's duration, or a rejection's retry_after
  int error_value;
  const std::error_category* error_category;  // null: no error
  const char* reason;                         // a transition's or a give-up's; null: none
  double value;                               // a rate that crossed its threshold
};
static_assert(std::is_trivially_default_constructible_v<note>);

note make_note(event_kind kind, breaker_state from, breaker_state to, time_point at,
               outcome_kind outcome, std::error_code error, duration delay) noexcept {
  return note{kind,
              from,
              to,
              outcome,
              at.time_since_epoch().count(),
              delay.count(),
              error.value(),
              error ? &error.category() : nullptr,
              nullptr,
              0.0};
}

struct notes {
  std::array<note, 8> items;  // left uninitialised
  std::uint8_t count = 0;
  bool arm = false;
  std::int64_t arm_at_ns = 0;
  std::uint64_t arm_epoch = 0;

  void add(const note& n) noexcept {
    if (count < items.size()) items[count++] = n;
  }
  [[nodiscard]] bool full() const noexcept { return count == items.size(); }
};

// The clock, read at most once and only if asked.
class lazy_now {
 public:
  time_point get() noexcept {
    if (!known_) {
      t_ = clock::now();
      known_ = true;
    }
    return t_;
  }

 private:
  time_point t_{};
  bool known_ = false;
};

const resilience_context& no_context() noexcept {
  static const resilience_context empty{};
  return empty;
}

}  // namespace

class breaker_core : public std::enable_shared_from_this<breaker_core> {
 public:
  using permit = circuit_breaker::permit;

  breaker_core(circuit_breaker_options o, std::shared_ptr<telemetry> t)
      : opt(std::move(o)),
        classify{opt.failure_when, opt.ignore_when},
        tel(std::move(t)),
        timed_start_(opt.slow_call_duration != duration::max()),
        time_window_(opt.window.type == window::kind::time) {
    win_.configure(opt.window, clock::now());
    word_.store(pack(0, breaker_state::closed), std::memory_order_relaxed);
  }

  circuit_breaker::admission acquire(const resilience_context* ctx) {
    // acquire: pairs with the release store in enter(), so the permit's epoch is no older than
    // the state it was issued in.
    const std::uint64_t w = word_.load(std::memory_order_acquire);
    const auto s = static_cast<breaker_state>(w & state_mask);
    if (s == breaker_state::closed || s == breaker_state::metrics_only) {
      return grant(w >> state_bits, s, timed_start_ ? clock::now() : time_point{});
    }
    if (s == breaker_state::disabled) return grant(w >> state_bits, s, time_point{});
    return acquire_locked(ctx);
  }

  // Records one outcome of `p` (already consumed by the caller).
  void finish(const permit& p, verdict v, outcome_kind kind, std::error_code error,
              std::optional<duration> given, const resilience_context* ctx) {
    if (p.state_ == breaker_state::disabled) return;  // disabled records nothing
    // The clock is read only where something needs it (two reads cost more than the rest of
    // the success path): the duration of a timed call, a time window's bucket, a transition's
    // instant. A dropped permit (given = 0, ignored) needs none, so its release works off the
    // runtime's threads too (a frame destroyed at shutdown).
    lazy_now now;
    duration d = given.value_or(duration::zero());
    if (!given && timed_start_) d = now.get() - p.start_;
    if (time_window_ && v != verdict::ignore) (void)now.get();
    const bool slow = v != verdict::ignore && d > opt.slow_call_duration;
    const bool active = tel->active();
    notes ns;
    {
      std::lock_guard<spin_lock> g(lock_);
      switch (v) {
        case verdict::success:
          ++totals_.successful;
          break;
        case verdict::failure:
          ++totals_.failed;
          break;
        case verdict::ignore:
          ++totals_.ignored;
          break;
      }
      if (slow) ++totals_.slow;
      // Ignored outcomes decide nothing, so a due expiry can wait for the next access.
      if (v != verdict::ignore && timed_state()) settle(now.get(), ns);
      if (active) {
        const event_kind k = v == verdict::success   ? event_kind::breaker_success
                             : v == verdict::failure ? event_kind::breaker_failure
                                                     : event_kind::breaker_ignored;
        ns.add(make_note(k, state_, state_, time_point{}, kind, error, d));
        if (slow) {
          ns.add(make_note(event_kind::breaker_slow_call, state_, state_, time_point{}, kind, error,
                           d));
        }
      }
      if (p.epoch_ != epoch_) {
        ++totals_.late;
      } else {
        judge(v, slow, now, ns);
      }
    }
    flush(ns, ctx);
  }

  breaker_state state() {
    notes ns;
    breaker_state s;
    {
      const time_point now = clock::now();
      std::lock_guard<spin_lock> g(lock_);
      settle(now, ns);
      s = state_;
    }
    flush(ns, nullptr);
    return s;
  }

  std::uint64_t epoch() {
    std::lock_guard<spin_lock> g(lock_);
    return epoch_;
  }

  circuit_breaker_metrics metrics() {
    notes ns;
    circuit_breaker_metrics m;
    {
      const time_point now = clock::now();
      std::lock_guard<spin_lock> g(lock_);
      settle(now, ns);
      m.state = state_;
      m.epoch = epoch_;
      m.consecutive_opens = consecutive_opens_;
      m.totals = totals_;
      switch (state_) {
        case breaker_state::closed:
        case breaker_state::metrics_only:
          win_.advance(now);
          win_.report(opt, m);
          break;
        case breaker_state::half_open: {
          const std::size_t reported = trial_successes_ + trial_failures_;
          m.buffered_calls = reported;
          m.failed_calls = trial_failures_;
          m.slow_calls = trial_slow_;
          m.trial_permits_used = trials_;
          if (reported > 0) {
            m.failure_rate = static_cast<double>(trial_failures_) / static_cast<double>(reported);
            m.slow_call_rate = static_cast<double>(trial_slow_) / static_cast<double>(reported);
          }
          break;
        }
        case breaker_state::open:
          m.retry_after = std::max(open_until_ - now, duration::zero());
          win_.report(opt, m);
          break;
        case breaker_state::isolated:
        case breaker_state::disabled:
          win_.report(opt, m);
          break;
      }
    }
    flush(ns, nullptr);
    return m;
  }

  // A forced transition (reset: to closed whatever the state, with zeroed totals).
  void force(breaker_state to, bool full_reset) {
    notes ns;
    {
      const time_point now = clock::now();
      std::lock_guard<spin_lock> g(lock_);
      if (full_reset) {
        totals_ = {};
        enter(breaker_state::closed, now, ns, "reset");
      } else if (state_ != to) {
        enter(to, now, ns, "forced");
      }
    }
    flush(ns, nullptr);
  }

  // automatic_transition: the timer armed for `epoch` is due.
  void on_timer(std::uint64_t epoch) {
    notes ns;
    {
      const time_point now = clock::now();
      std::lock_guard<spin_lock> g(lock_);
      if (epoch != epoch_) return;  // something else moved the breaker meanwhile
      settle(now, ns);
    }
    flush(ns, nullptr);
  }

  const circuit_breaker_options opt;
  const classifier classify;
  const std::shared_ptr<telemetry> tel;

 private:
  static constexpr unsigned state_bits = 3;
  static constexpr std::uint64_t state_mask = (1u << state_bits) - 1;
  static_assert(static_cast<unsigned>(breaker_state::metrics_only) <= state_mask,
                "every breaker_state must fit in the state bits of word_");
  static std::uint64_t pack(std::uint64_t epoch, breaker_state s) noexcept {
    return epoch << state_bits | static_cast<std::uint64_t>(s);
  }

  permit grant_permit(std::uint64_t epoch, breaker_state s, time_point start) noexcept {
    return permit{this, epoch, s, start};
  }
  circuit_breaker::admission grant(std::uint64_t epoch, breaker_state s, time_point start) {
    circuit_breaker::admission a;
    a.granted.emplace(grant_permit(epoch, s, start));
    return a;
  }

  circuit_breaker::admission acquire_locked(const resilience_context* ctx) {
    const time_point now = clock::now();
    notes ns;
    circuit_breaker::admission a;
    {
      std::lock_guard<spin_lock> g(lock_);
      settle(now, ns);
      if (state_ == breaker_state::open && now >= open_until_) {
        enter(breaker_state::half_open, now, ns, "open time elapsed");
      }
      switch (state_) {
        case breaker_state::closed:
        case breaker_state::metrics_only:
          a.granted.emplace(grant_permit(epoch_, state_, timed_start_ ? now : time_point{}));
          break;
        case breaker_state::disabled:
          a.granted.emplace(grant_permit(epoch_, state_, time_point{}));
          break;
        case breaker_state::half_open:
          if (trials_ < opt.half_open_permits) {
            ++trials_;
            a.granted.emplace(grant_permit(epoch_, state_, now));
          } else {
            a.error = errc::circuit_open;
            a.retry_after = duration::zero();
          }
          break;
        case breaker_state::open:
          a.error = errc::circuit_open;
          a.retry_after = open_until_ - now;
          break;
        case breaker_state::isolated:
          a.error = errc::circuit_isolated;
          break;
      }
      if (!a) {
        ++totals_.rejected;
        ns.add(make_note(event_kind::breaker_rejected, state_, state_, now, outcome_kind::error,
                         a.error, a.retry_after.value_or(duration::zero())));
      }
    }
    flush(ns, ctx);
    return a;
  }

  // A current-epoch outcome that counts (success or failure), or an ignored one.
  void judge(verdict v, bool slow, lazy_now& now, notes& ns) {
    switch (state_) {
      case breaker_state::closed: {
        if (v == verdict::ignore) return;
        win_.add(time_window_ ? now.get() : time_point{}, v == verdict::failure, slow);
        const auto x = win_.thresholds(opt);
        if (x) {
          note_exceeded(x, now.get(), ns);
          enter(breaker_state::open, now.get(), ns, opening_reason(x));
        }
        return;
      }
      case breaker_state::metrics_only: {
        if (v == verdict::ignore) return;
        win_.add(time_window_ ? now.get() : time_point{}, v == verdict::failure, slow);
        // Reported when a rate crosses its threshold, not on every call above it: a breaker
        // that would have opened says so once, and again only after it fell back below.
        const auto x = win_.thresholds(opt);
        if (x && !over_threshold_) note_exceeded(x, now.get(), ns);
        over_threshold_ = static_cast<bool>(x);
        return;
      }
      case breaker_state::half_open:
        judge_trial(v, slow, now, ns);
        return;
      case breaker_state::open:
      case breaker_state::isolated:
      case breaker_state::disabled:
        return;  // these states issue no permits
    }
  }

  void judge_trial(verdict v, bool slow, lazy_now& now, notes& ns) {
    if (v == verdict::ignore) {
      --trials_;  // the slot goes back
      return;
    }
    if (v == verdict::success) {
      ++trial_successes_;
    } else {
      ++trial_failures_;
    }
    if (slow) ++trial_slow_;
    if (opt.half_open_policy.type == half_open_policy::kind::successes) {
      if (v == verdict::failure || slow) {
        enter(breaker_state::open, now.get(), ns,
              v == verdict::failure ? "trial call failed" : "trial call slow");
      } else if (trial_successes_ >= opt.half_open_policy.required_successes) {
        enter(breaker_state::closed, now.get(), ns, "trial calls succeeded");
      }
      return;
    }
    const std::size_t reported = trial_successes_ + trial_failures_;
    if (reported < opt.half_open_permits) return;
    const double n = static_cast<double>(reported);
    const bool failing = static_cast<double>(trial_failures_) / n >= opt.failure_rate_threshold;
    const bool slowing = static_cast<double>(trial_slow_) / n >= opt.slow_call_rate_threshold;
    if (failing || slowing) {
      enter(breaker_state::open, now.get(), ns,
            failing ? "trial failure rate exceeded" : "trial slow call rate exceeded");
    } else {
      enter(breaker_state::closed, now.get(), ns, "trial calls succeeded");
    }
  }

  // States with a deadline that settle() may have to apply.
  [[nodiscard]] bool timed_state() const noexcept {
    return state_ == breaker_state::half_open ||
           (state_ == breaker_state::open && opt.automatic_transition);
  }

  // Applies the timed transitions due at `now`, each at its exact instant: a half-open episode's
  // expiry, and with automatic_transition the end of the open time. Bounded by the notes'
  // capacity so a breaker left alone for long with tiny durations cannot spin here; the rest is
  // applied at the next access.
  void settle(time_point now, notes& ns) {
    while (!ns.full()) {
      if (state_ == breaker_state::half_open && now >= half_open_until_) {
        enter(breaker_state::open, half_open_until_, ns, "half-open episode expired");
      } else if (state_ == breaker_state::open && opt.automatic_transition && now >= open_until_) {
        enter(breaker_state::half_open, open_until_, ns, "open time elapsed");
      } else {
        return;
      }
    }
  }

  duration open_time(std::size_t k) const noexcept {
    if (!opt.open_duration_fn) return opt.open_duration;
    return std::max(opt.open_duration_fn(k), duration{1});
  }

  // Why a closed breaker opens, from what its window exceeded.
  const char* opening_reason(const breaker_window::exceeded& x) const noexcept {
    if (win_.consecutive()) return x.failure ? "consecutive failures" : "consecutive slow calls";
    if (x.failure && x.slow) return "failure and slow call rates exceeded";
    return x.failure ? "failure rate exceeded" : "slow call rate exceeded";
  }

  // breaker_failure_rate_exceeded and/or breaker_slow_call_rate_exceeded, with the rate.
  void note_exceeded(const breaker_window::exceeded& x, time_point at, notes& ns) noexcept {
    if (x.failure) {
      note n = make_note(event_kind::breaker_failure_rate_exceeded, state_, state_, at,
                         outcome_kind::value, {}, duration::zero());
      n.value = x.failure_rate;
      ns.add(n);
    }
    if (x.slow) {
      note n = make_note(event_kind::breaker_slow_call_rate_exceeded, state_, state_, at,
                         outcome_kind::value, {}, duration::zero());
      n.value = x.slow_rate;
      ns.add(n);
    }
  }

  // Every transition, forced or not: a new epoch, the new state's bookkeeping, a note with the
  // reason.
  void enter(breaker_state to, time_point at, notes& ns, const char* reason) {
    const breaker_state from = state_;
    state_ = to;
    ++epoch_;
    over_threshold_ = false;  // every state starts below the thresholds (a cleared window)
    switch (to) {
      case breaker_state::closed:
        consecutive_opens_ = 0;
        win_.clear(at);
        break;
      case breaker_state::metrics_only:
        win_.clear(at);
        break;
      case breaker_state::open:
        ++consecutive_opens_;
        open_for_ = open_time(consecutive_opens_);
        open_until_ = saturating_add(at, open_for_);
        if (opt.automatic_transition) arm(open_until_, ns);
        break;
      case breaker_state::half_open:
        trials_ = trial_successes_ = trial_failures_ = trial_slow_ = 0;
        half_open_until_ = saturating_add(at, opt.half_open_max_duration.value_or(open_for_));
        if (opt.automatic_transition) arm(half_open_until_, ns);
        break;
      case breaker_state::isolated:
      case breaker_state::disabled:
        break;
    }
    // release: pairs with the acquire load in acquire().
    word_.store(pack(epoch_, to), std::memory_order_release);
    if (from != to) {
      note n = make_note(event_kind::breaker_state_changed, from, to, at, outcome_kind::value, {},
                         duration::zero());
      n.reason = reason;
      ns.add(n);
    }
  }

  void arm(time_point at, notes& ns) noexcept {
    ns.arm = true;
    ns.arm_at_ns = at.time_since_epoch().count();
    ns.arm_epoch = epoch_;
  }

  static task<void> timer(std::weak_ptr<breaker_core> weak, time_point at, std::uint64_t epoch) {
    co_await weft::sleep_until(at);
    if (auto core = weak.lock()) core->on_timer(epoch);
  }

  // Emits the notes and starts an armed timer; called without the lock.
  void flush(const notes& ns, const resilience_context* ctx) {
    if (ns.count > 0 && tel->active()) {
      const resilience_context& c = ctx != nullptr ? *ctx : no_context();
      for (std::size_t i = 0; i < ns.count; ++i) {
        const note& n = ns.items[i];
        layer_event e = tel->make(n.kind, c);
        e.from = n.from;
        e.to = n.to;
        e.outcome = n.outcome;
        if (n.error_category != nullptr)
          e.error = std::error_code(n.error_value, *n.error_category);
        e.delay = duration{n.delay_ns};
        if (n.reason != nullptr) e.reason = n.reason;
        e.value = n.value;
        const bool transition = n.kind == event_kind::breaker_state_changed;
        if (transition) e.at = time_point{duration{n.at_ns}};
        tel->emit(e);
        if (transition) tel->gauge_value(gauge::breaker_state, c.key, static_cast<double>(n.to));
      }
    }
    // Off a worker (a breaker driven from plain threads) there is no timer to start: the lazy
    // checks in acquire, record, state() and metrics() still apply the transition exactly.
    if (ns.arm && weft::this_thread_is_worker()) {
      // Detached: the timer holds only a weak reference, so the breaker may go first.
      weft::spawn(timer(weak_from_this(), time_point{duration{ns.arm_at_ns}}, ns.arm_epoch))
          .detach();
    }
  }

  mutable spin_lock lock_;
  // (epoch << 3 | state), for the lock-free acquire in the pass-through states.
  std::atomic<std::uint64_t> word_{0};
  const bool timed_start_;  // false when slow_call_duration is max: calls are not timed
  const bool time_window_;  // a time window needs the clock for every recorded call

  // Guarded by lock_:
  breaker_state state_ = breaker_state::closed;
  std::uint64_t epoch_ = 0;
  breaker_window win_;
  bool over_threshold_ = false;  // metrics_only: a rate was at or over its threshold
  std::size_t consecutive_opens_ = 0;
  duration open_for_{};
  time_point open_until_{};       // open: opened_at + open_for_
  time_point half_open_until_{};  // half_open: entered + half_open_max_duration
  // Invariant (half_open): trial_successes_ + trial_failures_ <= trials_ <= half_open_permits.
  std::size_t trials_ = 0;
  std::size_t trial_successes_ = 0, trial_failures_ = 0, trial_slow_ = 0;
  breaker_totals totals_;
};

void validate(const circuit_breaker_options& o) {
  const auto& w = o.window;
  if (w.size == 0) bad_option("window size is 0; a window needs at least 1 call or bucket");
  if (w.type == window::kind::time) {
    if (w.length <= duration::zero()) {
      bad_option("window::time length is " + std::to_string(w.length.count()) +
                 " ns; it must be positive");
    }
    if (w.length.count() % static_cast<std::int64_t>(w.size) != 0) {
      bad_option("window::time length " + std::to_string(w.length.count()) +
                 " ns does not split into " + std::to_string(w.size) +
                 " equal buckets; choose a length that is a multiple of the bucket count");
    }
  }
  if (o.minimum_calls == 0) bad_option("minimum_calls is 0; it must be at least 1");
  if (!(o.failure_rate_threshold > 0.0 && o.failure_rate_threshold <= 1.0)) {
    bad_option("failure_rate_threshold is " + std::to_string(o.failure_rate_threshold) +
               "; it must be in (0, 1]");
  }
  if (!(o.slow_call_rate_threshold > 0.0 && o.slow_call_rate_threshold <= 1.0)) {
    bad_option("slow_call_rate_threshold is " + std::to_string(o.slow_call_rate_threshold) +
               "; it must be in (0, 1]");
  }
  if (o.slow_call_duration < duration::zero()) {
    bad_option("slow_call_duration is negative; use 0 or more");
  }
  if (o.open_duration <= duration::zero()) {
    bad_option("open_duration is " + std::to_string(o.open_duration.count()) +
               " ns; it must be positive");
  }
  if (o.half_open_permits == 0) bad_option("half_open_permits is 0; it must be at least 1");
  if (o.half_open_policy.type == half_open_policy::kind::successes &&
      (o.half_open_policy.required_successes == 0 ||
       o.half_open_policy.required_successes > o.half_open_permits)) {
    bad_option(
        "half_open_policy successes(" + std::to_string(o.half_open_policy.required_successes) +
        ") must be between 1 and half_open_permits (" + std::to_string(o.half_open_permits) + ")");
  }
  if (o.half_open_max_duration && *o.half_open_max_duration <= duration::zero()) {
    bad_option("half_open_max_duration is " + std::to_string(o.half_open_max_duration->count()) +
               " ns; it must be positive (or unset for the open duration)");
  }
}

}  // namespace detail

circuit_breaker::circuit_breaker(circuit_breaker_options options)
    : circuit_breaker(std::move(options), nullptr) {}

circuit_breaker::circuit_breaker(circuit_breaker_options options,
                                 std::shared_ptr<telemetry> shared) {
  detail::validate(options);
  if (!shared) shared = std::make_shared<telemetry>(options.name);
  core_ = std::make_shared<detail::breaker_core>(std::move(options), std::move(shared));
}

circuit_breaker::circuit_breaker(circuit_breaker&&) noexcept = default;
circuit_breaker& circuit_breaker::operator=(circuit_breaker&&) noexcept = default;
circuit_breaker::~circuit_breaker() = default;

namespace {
// A moved-from breaker owns no state: using it is a bug (only destruction and assignment are
// allowed), caught here in debug builds rather than as a null dereference.
detail::breaker_core* live(const std::shared_ptr<detail::breaker_core>& core) noexcept {
  assert(core != nullptr && "weft::resilience::circuit_breaker used after it was moved from");
  return core.get();
}
}  // namespace

std::optional<circuit_breaker::permit> circuit_breaker::try_acquire() {
  admission a = live(core_)->acquire(nullptr);
  return std::move(a.granted);
}

circuit_breaker::admission circuit_breaker::acquire(resilience_context& ctx) {
  admission a = live(core_)->acquire(&ctx);
  if (a) ctx.tag_epoch(this, a.granted->epoch());
  return a;
}

breaker_state circuit_breaker::state() const {
  return live(core_)->state();
}
std::uint64_t circuit_breaker::epoch() const {
  return live(core_)->epoch();
}
circuit_breaker_metrics circuit_breaker::metrics() const {
  return live(core_)->metrics();
}

void circuit_breaker::transition_to_forced_open() {
  live(core_)->force(breaker_state::isolated, false);
}
void circuit_breaker::transition_to_disabled() {
  live(core_)->force(breaker_state::disabled, false);
}
void circuit_breaker::transition_to_metrics_only() {
  live(core_)->force(breaker_state::metrics_only, false);
}
void circuit_breaker::transition_to_closed() {
  live(core_)->force(breaker_state::closed, false);
}
void circuit_breaker::reset() {
  live(core_)->force(breaker_state::closed, true);
}

telemetry& circuit_breaker::observers() noexcept {
  return *live(core_)->tel;
}
const circuit_breaker_options& circuit_breaker::options() const noexcept {
  return live(core_)->opt;
}

circuit_breaker::permit::permit(permit&& other) noexcept
    : core_(std::exchange(other.core_, nullptr)),
      epoch_(other.epoch_),
      start_(other.start_),
      state_(other.state_) {}

circuit_breaker::permit& circuit_breaker::permit::operator=(permit&& other) noexcept {
  if (this != &other) {
    if (core_ != nullptr) {
      detail::breaker_core* c = std::exchange(core_, nullptr);
      c->finish(*this, verdict::ignore, outcome_kind::cancelled, {}, clock::duration::zero(),
                nullptr);
    }
    core_ = std::exchange(other.core_, nullptr);
    epoch_ = other.epoch_;
    start_ = other.start_;
    state_ = other.state_;
  }
  return *this;
}

circuit_breaker::permit::~permit() {
  if (core_ == nullptr) return;
  // Dropped unrecorded (an exception, a cancelled or destroyed coroutine): an ignored call.
  detail::breaker_core* c = std::exchange(core_, nullptr);
  c->finish(*this, verdict::ignore, outcome_kind::cancelled, {}, clock::duration::zero(), nullptr);
}

void circuit_breaker::permit::finish(const outcome_view& o, std::optional<clock::duration> d,
                                     const resilience_context* ctx) {
  if (core_ == nullptr) {
    throw std::logic_error(
        "weft::resilience::circuit_breaker::permit::record: the permit was already recorded or "
        "moved from; record each permit once");
  }
  // Classify first: the classifier is user code and may throw, leaving the permit held (its
  // destructor then releases it as ignored).
  const verdict v = core_->classify(o);
  detail::breaker_core* c = std::exchange(core_, nullptr);
  c->finish(*this, v, o.kind, o.error, d, ctx);
}

void circuit_breaker::permit::record(const outcome_view& o) {
  finish(o, std::nullopt, nullptr);
}
void circuit_breaker::permit::record(const outcome_view& o, clock::duration duration) {
  finish(o, duration, nullptr);
}
void circuit_breaker::permit::record(const outcome_view& o, const resilience_context& ctx) {
  finish(o, std::nullopt, &ctx);
}

}  // namespace weft::resilience
