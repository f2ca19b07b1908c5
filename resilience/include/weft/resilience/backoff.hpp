// Retry delays: the backoff profile (fixed, linear or exponential growth, a jitter variant and a
// hard cap) and the exact formulas of docs/resilience-rules.md that turn "retry n" into a duration.
//
// Thread safety: backoff and jitter are values; next() is const, so one profile may serve any
// number of calls at once on any workers. A backoff_state belongs to one retrying call. next()
// draws from the rng it is given (rng.hpp); a retry_profile_selector is called from whichever
// worker runs the retry, concurrently when the retry is shared.
//
// Cancellation: nothing here suspends (the retry layer sleeps: retry.hpp).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

#include <weft/resilience/classify.hpp>
#include <weft/resilience/rng.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

/// How the nominal delay grows with the retry number n (n = 1 for the first retry).
enum class backoff_kind : std::uint8_t {
  fixed,        // initial
  linear,       // initial + increment·(n−1)
  exponential,  // initial · multiplier^(n−1)
};

/// Which randomisation is applied to the nominal delay (r = one draw of the rng in [0, 1)).
enum class jitter_kind : std::uint8_t {
  none,             // nominal
  full,             // r·nominal (AWS "full jitter")
  equal,            // nominal/2 + r·nominal/2
  proportional,     // nominal·(1 − f + 2f·r): ± f around the nominal delay
  decorrelated,     // min(max_delay, initial + r·(3·prev − initial)), prev₀ = initial (AWS)
  decorrelated_v2,  // Polly's DecorrelatedJitterBackoffV2 (see backoff::delay)
};

/// A jitter variant with its parameter (only `proportional` has one).
///
///     backoff b = backoff::exponential().with_jitter(jitter::proportional(0.2));
struct jitter {
  jitter_kind kind = jitter_kind::full;
  double factor = 0;  // proportional's f, in [0, 1]

  [[nodiscard]] static constexpr jitter none() noexcept { return {jitter_kind::none, 0}; }
  [[nodiscard]] static constexpr jitter full() noexcept { return {jitter_kind::full, 0}; }
  [[nodiscard]] static constexpr jitter equal() noexcept { return {jitter_kind::equal, 0}; }
  [[nodiscard]] static constexpr jitter proportional(double f) noexcept {
    return {jitter_kind::proportional, f};
  }
  [[nodiscard]] static constexpr jitter decorrelated() noexcept {
    return {jitter_kind::decorrelated, 0};
  }
  [[nodiscard]] static constexpr jitter decorrelated_v2() noexcept {
    return {jitter_kind::decorrelated_v2, 0};
  }
};

/// The state one retrying call carries between its retries: which retry comes next and the
/// previous delay the decorrelated variants feed on. A pushback (Retry-After) resets it.
struct backoff_state {
  int n = 0;         // retries computed since the start or the last pushback
  double prev = -1;  // decorrelated: the previous delay in ns; v2: the formula's last value
  void restart() noexcept { *this = backoff_state{}; }
};

/// A backoff profile: how long to wait before retry n. The default (docs/resilience-rules.md
/// "Backoff"): exponential from 100 ms, multiplier 2, capped at 10 s, with full jitter.
///
///     backoff b = backoff::exponential(200ms, 2.0, 5s);   // full jitter
///     backoff c = backoff::fixed(50ms);                   // no jitter
///     backoff_state s;
///     auto d = b.next(s, rng{});                          // the first retry's delay
///
/// Every delay is computed in double nanoseconds, clamped to `max_delay` last (a hard upper bound
/// for every variant) and truncated to the clock's 1 ns tick.
/// Errors: validate() (called by the layers that take a profile, at construction) throws
/// std::invalid_argument naming the field for a negative or zero duration, initial > max_delay,
/// a multiplier below 1, or a proportional factor outside [0, 1].
struct backoff {
  backoff_kind kind = backoff_kind::exponential;
  /// The first retry's nominal delay; also the decorrelated variants' base.
  clock::duration initial = std::chrono::milliseconds{100};
  /// exponential: the growth factor per retry.
  double multiplier = 2.0;
  /// linear: added per retry; zero means `initial` (100, 200, 300 ms …, as Polly's linear).
  clock::duration increment = clock::duration::zero();
  /// The hard cap, applied last.
  clock::duration max_delay = std::chrono::seconds{10};
  jitter jitter_variant = jitter::full();

  /// `delay` every time; no jitter unless given.
  [[nodiscard]] static backoff fixed(clock::duration delay, jitter j = jitter::none()) {
    backoff b;
    b.kind = backoff_kind::fixed;
    b.initial = delay;
    b.max_delay = std::max(delay, b.max_delay);
    b.jitter_variant = j;
    return b;
  }
  /// initial, initial + increment, initial + 2·increment … (increment zero: `initial`), capped.
  [[nodiscard]] static backoff linear(clock::duration initial,
                                      clock::duration increment = clock::duration::zero(),
                                      clock::duration max_delay = std::chrono::seconds{10},
                                      jitter j = jitter::none()) {
    backoff b;
    b.kind = backoff_kind::linear;
    b.initial = initial;
    b.increment = increment;
    b.max_delay = max_delay;
    b.jitter_variant = j;
    return b;
  }
  /// initial · multiplier^(n−1), capped; full jitter unless given (the default).
  [[nodiscard]] static backoff exponential(clock::duration initial = std::chrono::milliseconds{100},
                                           double multiplier = 2.0,
                                           clock::duration max_delay = std::chrono::seconds{10},
                                           jitter j = jitter::full()) {
    backoff b;
    b.kind = backoff_kind::exponential;
    b.initial = initial;
    b.multiplier = multiplier;
    b.max_delay = max_delay;
    b.jitter_variant = j;
    return b;
  }
  /// This profile with another jitter.
  [[nodiscard]] backoff with_jitter(jitter j) const {
    backoff b = *this;
    b.jitter_variant = j;
    return b;
  }

  /// Throws std::invalid_argument, naming `api` and the field, if the profile cannot be used.
  void validate(const char* api) const {
    const auto fail = [api](const std::string& what) {
      throw std::invalid_argument(std::string(api) + ": " + what);
    };
    if (initial.count() < 0) fail("backoff.initial must not be negative");
    if (max_delay.count() <= 0) fail("backoff.max_delay must be positive");
    if (initial > max_delay) {
      fail("backoff.initial (" + std::to_string(initial.count()) +
           " ns) exceeds backoff.max_delay (" + std::to_string(max_delay.count()) +
           " ns); raise max_delay");
    }
    if (increment.count() < 0) fail("backoff.increment must not be negative");
    if (!(multiplier >= 1.0) || !std::isfinite(multiplier)) {
      fail("backoff.multiplier must be a finite number >= 1 (it is " + std::to_string(multiplier) +
           ")");
    }
    if (jitter_variant.kind == jitter_kind::proportional &&
        !(jitter_variant.factor >= 0.0 && jitter_variant.factor <= 1.0)) {
      fail("jitter::proportional's factor must be in [0, 1] (it is " +
           std::to_string(jitter_variant.factor) + ")");
    }
  }

  /// The nominal delay of retry n (n >= 1) in double nanoseconds, before jitter and the cap on
  /// the jittered value: min(max_delay, growth(n)).
  [[nodiscard]] double nominal_ns(int n) const noexcept {
    const double base = static_cast<double>(initial.count());
    double d = base;
    switch (kind) {
      case backoff_kind::fixed:
        break;
      case backoff_kind::linear: {
        const double step = increment.count() == 0 ? base : static_cast<double>(increment.count());
        d = base + step * static_cast<double>(n - 1);
        break;
      }
      case backoff_kind::exponential:
        d = base * std::pow(multiplier, static_cast<double>(n - 1));  // inf is capped below
        break;
    }
    return std::min(static_cast<double>(max_delay.count()), d);
  }

  /// The next retry's delay: advances `s` (n, prev) and draws from `random` at most once (never
  /// for jitter none). See jitter_kind for the formulas. decorrelated_v2 is Polly's, with
  /// t = (n−1) + r, next = 2^t · tanh(√(4t)), delay = (next − prev)·initial/1.4, prev₀ = 0.
  [[nodiscard]] clock::duration next(backoff_state& s, const rng& random) const {
    const int n = ++s.n;
    const double cap = static_cast<double>(max_delay.count());
    const double base = static_cast<double>(initial.count());
    double d = 0;
    switch (jitter_variant.kind) {
      case jitter_kind::none:
        d = nominal_ns(n);
        break;
      case jitter_kind::full:
        d = random() * nominal_ns(n);
        break;
      case jitter_kind::equal: {
        const double nominal = nominal_ns(n);
        d = nominal / 2 + random() * nominal / 2;
        break;
      }
      case jitter_kind::proportional: {
        const double f = jitter_variant.factor;
        d = nominal_ns(n) * (1 - f + 2 * f * random());
        break;
      }
      case jitter_kind::decorrelated: {
        const double prev = s.prev < 0 ? base : s.prev;
        d = std::min(cap, base + random() * (3 * prev - base));
        s.prev = d;
        break;
      }
      case jitter_kind::decorrelated_v2: {
        // Polly's constants: pFactor 4 smooths the first delay; 1/1.4 puts the medians near
        // initial·2^(n−1). Exponential factor 2, as in Polly (the multiplier is not used).
        constexpr double p_factor = 4.0;
        constexpr double rp_scaling = 1 / 1.4;
        const double prev = s.prev < 0 ? 0.0 : s.prev;
        const double t = static_cast<double>(n - 1) + random();
        const double next_value = std::pow(2.0, t) * std::tanh(std::sqrt(p_factor * t));
        s.prev = next_value;
        d = std::isinf(next_value) ? cap : (next_value - prev) * rp_scaling * base;
        break;
      }
    }
    d = std::min(cap, std::max(0.0, d));  // the hard cap, clamped last
    return clock::duration{static_cast<clock::rep>(d)};
  }
};

/// Chooses the backoff profile for a failure (e.g. a longer base for throttling than for
/// transient errors, as AWS does). Called once per retry with the failed attempt's outcome.
///
///     o.profile_for = [](const outcome_view& v) {
///       return v.error == std::errc::resource_unavailable_try_again ? backoff::exponential(500ms)
///                                                                    :
///                                                                    backoff::exponential(100ms);
///     };
using retry_profile_selector = std::function<backoff(const outcome_view&)>;

}  // namespace weft::resilience
