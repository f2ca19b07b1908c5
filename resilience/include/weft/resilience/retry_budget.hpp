// weft::resilience::retry_budget: Tower's retry budget — retries may add at most `ratio` of the
// recent requests, plus a small reserve, so that retries cannot multiply load on a failing
// dependency. A retry_gate shared by every retry (and hedge) calling one dependency.
//
// Thread safety: every member may be called from any worker at once (see the class): a spin lock
// guards the window. Share one budget between the retries and hedges that call one dependency.
//
// Cancellation: nothing here suspends. An allowance try_acquire_retry() granted stays counted when
// the retry it was for is cancelled before it runs (in its backoff sleep); outcomes, cancelled or
// not, do not change a ratio budget.
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/resilience/budget.hpp>
#include <weft/resilience/classify.hpp>
#include <weft/sync/spin_lock.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

/// A retry budget's parameters; the defaults are Tower's.
struct retry_budget_options {
  /// Retries allowed per original request in the window (0.2: one retry per five requests).
  /// Used with six decimal places (parts per million), so the floor below is exact.
  double ratio = 0.2;
  /// How long a request or a retry counts.
  clock::duration ttl = std::chrono::seconds{10};
  /// Retries allowed regardless of traffic, per second of ttl (the reserve is
  /// ⌊min_retries_per_sec · ttl_s⌋, 100 by default), so that a quiet client can still retry.
  double min_retries_per_sec = 10;
  /// The window's time buckets: an event leaves when its bucket (ttl / buckets wide) does.
  std::size_t buckets = 10;
};

/// Tower's retry budget. A retry is allowed while
///
///     retries_in_window + 1 <= ⌊ratio · requests_in_window⌋ + ⌊min_retries_per_sec · ttl_s⌋
///
/// where the window holds the last `ttl`: time is cut into buckets ttl / buckets wide, aligned
/// to the first event the budget sees, and an event counts until its bucket is `buckets` behind
/// the current one — at bucket start + ttl, so never longer than ttl. Every original request is
/// recorded when issued (record_request); every allowed retry is recorded by
/// try_acquire_retry; outcomes do not matter.
///
///     retry_budget payments_budget;                       // one per dependency, shared
///     retry to_payments{{.gate = &payments_budget}};
///     retry to_payments_batch{{.max_attempts = 5, .gate = &payments_budget}};
///
/// Sharing: the budget is keyed by the instance — give every retry and hedge that calls one
/// dependency the same budget, and each dependency its own (a map from dependency to budget
/// held by the application, or a static per client).
/// Thread safety: every member may be called from any worker; a spin lock guards a few
/// additions. Errors: std::invalid_argument at construction for a ratio outside [0, 1000], a
/// negative or non-finite min_retries_per_sec, zero buckets, or a ttl shorter than `buckets`
/// nanoseconds.
class retry_budget final : public retry_gate {
 public:
  retry_budget() : retry_budget(retry_budget_options{}) {}
  explicit retry_budget(retry_budget_options options) : opts_(options) {
    const auto fail = [](const std::string& what) {
      throw std::invalid_argument("weft::resilience::retry_budget: " + what);
    };
    if (!(opts_.ratio >= 0 && opts_.ratio <= 1000)) {  // Tower's bound, and no overflow below
      fail("ratio must be between 0 and 1000 (it is " + std::to_string(opts_.ratio) + ")");
    }
    if (!(opts_.min_retries_per_sec >= 0) || !std::isfinite(opts_.min_retries_per_sec)) {
      fail("min_retries_per_sec must be a finite number >= 0 (it is " +
           std::to_string(opts_.min_retries_per_sec) + ")");
    }
    if (opts_.buckets == 0) fail("buckets must be at least 1");
    if (opts_.ttl.count() < static_cast<clock::rep>(opts_.buckets)) {
      fail("ttl (" + std::to_string(opts_.ttl.count()) +
           " ns) must be at least one nanosecond "
           "per bucket (" +
           std::to_string(opts_.buckets) + " buckets)");
    }
    ratio_ppm_ = static_cast<std::uint64_t>(std::llround(opts_.ratio * 1e6));
    const double ttl_s = std::chrono::duration<double>(opts_.ttl).count();
    reserve_ = static_cast<std::uint64_t>(std::floor(opts_.min_retries_per_sec * ttl_s));
    width_ = opts_.ttl.count() / static_cast<clock::rep>(opts_.buckets);
    ring_.resize(opts_.buckets);
  }
  retry_budget(const retry_budget&) = delete;
  retry_budget& operator=(const retry_budget&) = delete;

  void record_request() noexcept override {
    const clock::time_point now = clock::now();
    std::lock_guard guard(lock_);
    advance(now);
    ++ring_[slot()].requests;
    ++requests_;
  }

  bool try_acquire_retry() noexcept override {
    const clock::time_point now = clock::now();
    std::lock_guard guard(lock_);
    advance(now);
    if (retries_ + 1 > allowance()) return false;
    ++ring_[slot()].retries;
    ++retries_;
    return true;
  }

  /// Outcomes do not change a ratio budget.
  void record_outcome(verdict) noexcept override {}

  /// Original requests in the window now.
  [[nodiscard]] std::uint64_t requests_in_window() const noexcept {
    const clock::time_point now = clock::now();
    std::lock_guard guard(lock_);
    advance(now);
    return requests_;
  }
  /// Retries allowed and taken in the window now.
  [[nodiscard]] std::uint64_t retries_in_window() const noexcept {
    const clock::time_point now = clock::now();
    std::lock_guard guard(lock_);
    advance(now);
    return retries_;
  }
  /// How many more retries would be allowed now.
  [[nodiscard]] std::uint64_t remaining() const noexcept {
    const clock::time_point now = clock::now();
    std::lock_guard guard(lock_);
    advance(now);
    const std::uint64_t allowed = allowance();
    return allowed > retries_ ? allowed - retries_ : 0;
  }
  /// ⌊min_retries_per_sec · ttl_s⌋.
  [[nodiscard]] std::uint64_t reserve() const noexcept { return reserve_; }
  [[nodiscard]] const retry_budget_options& options() const noexcept { return opts_; }

 private:
  struct bucket {
    std::uint64_t requests = 0;
    std::uint64_t retries = 0;
  };

  std::uint64_t allowance() const noexcept {
    // Integer parts per million: ⌊ratio · requests⌋ without a double's rounding (0.29 · 100 is
    // 28.999… in binary).
    return ratio_ppm_ * requests_ / 1'000'000 + reserve_;
  }
  std::size_t slot() const noexcept {
    return static_cast<std::size_t>(current_ % static_cast<std::int64_t>(ring_.size()));
  }

  // Moves the window to `now`, emptying the buckets that left it. Under lock_.
  void advance(clock::time_point now) const noexcept {
    if (!started_) {
      started_ = true;
      t0_ = now;
      return;
    }
    const clock::rep since = (now - t0_).count();
    if (since < 0) return;  // another worker read the clock a little later and got here first
    const std::int64_t index = since / width_;
    if (index <= current_) return;
    const std::int64_t n = static_cast<std::int64_t>(ring_.size());
    const std::int64_t first = index - current_ > n ? index - n + 1 : current_ + 1;
    for (std::int64_t i = first; i <= index; ++i) {
      bucket& b = ring_[static_cast<std::size_t>(i % n)];
      requests_ -= b.requests;
      retries_ -= b.retries;
      b = {};
    }
    current_ = index;
  }

  retry_budget_options opts_;
  std::uint64_t ratio_ppm_ = 0;
  std::uint64_t reserve_ = 0;
  clock::rep width_ = 1;
  // Invariant: requests_ and retries_ are the sums over ring_, whose slot i % n holds bucket i
  // for the `n` buckets current_ − n < i <= current_; all are guarded by lock_.
  mutable weft::spin_lock lock_;
  mutable std::vector<bucket> ring_;
  mutable std::uint64_t requests_ = 0;
  mutable std::uint64_t retries_ = 0;
  mutable std::int64_t current_ = 0;
  mutable clock::time_point t0_{};
  mutable bool started_ = false;
};

}  // namespace weft::resilience
