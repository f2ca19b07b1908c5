// weft::resilience::client_throttle: Google SRE's adaptive client-side throttling. The client
// counts its requests and the backend's accepts over a sliding window and rejects locally with
// probability max(0, (requests − K·accepts) / (requests + 1)).
//
// Thread safety: one throttle serves calls from any worker at once; its counts are under a spin
// lock never held across a suspension (see the class). A custom rng or `accepts` classifier is
// called from whichever worker runs the call.
//
// Cancellation: the throttle never waits: it rejects or lets the call through at once. Every call
// counts as a request before it runs, and the default `accepts` does not judge a cancelled outcome
// a success, so a cancelled call is a request without an accept (it raises p as a failure does).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/classify.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/detail/pinned.hpp>
#include <weft/resilience/error.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/rng.hpp>
#include <weft/sync/spin_lock.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

struct client_throttle_options {
  /// The SRE book's K: how many requests per accept the backend may see before the client starts
  /// rejecting (2 is the book's choice; lower is more aggressive).
  double k = 2.0;
  /// The window the counts cover, and its buckets (the window is a whole number of buckets).
  clock::duration window = std::chrono::seconds{120};
  clock::duration bucket = std::chrono::seconds{1};
  /// What counts as an accept: an outcome it classifies as success.
  classifier accepts{};
  /// Drawn once per request while p > 0.
  rng random{};
  std::string name = "client_throttle";
};

namespace detail {

/// A client throttle's state and logic; the client_throttle handle below owns it (see pinned).
class client_throttle_impl {
 public:
  explicit client_throttle_impl(client_throttle_options options)
      : options_(std::move(options)), tel_(options_.name) {
    if (options_.bucket <= clock::duration::zero() || options_.window < options_.bucket ||
        options_.window % options_.bucket != clock::duration::zero()) {
      throw std::invalid_argument(
          "weft::resilience::client_throttle: window must be a positive whole number of buckets "
          "and bucket must be positive");
    }
    if (!(options_.k > 0)) {
      throw std::invalid_argument("weft::resilience::client_throttle: k must be positive, got " +
                                  std::to_string(options_.k));
    }
    buckets_.resize(static_cast<std::size_t>(options_.window / options_.bucket));
  }
  client_throttle_impl(const client_throttle_impl&) = delete;
  client_throttle_impl& operator=(const client_throttle_impl&) = delete;

  template <class R, class Next>
  task<call_outcome<R>> run(resilience_context& ctx, Next next) {
    const double p = admit();
    if (p > 0 && options_.random() < p) {
      if (tel_.active()) {
        auto e = tel_.make(event_kind::throttled, ctx);
        e.outcome = outcome_kind::error;
        e.error = errc::rate_limited;
        e.attempt = ctx.attempt;
        e.value = p;
        tel_.emit(e);
      }
      co_return call_outcome<R>::failure(errc::rate_limited).from_layer(tel_.shared_name());
    }
    call_outcome<R> o = co_await next(ctx);
    if (options_.accepts(view_of(o)) == verdict::success) record_accept();
    co_return o;
  }

  [[nodiscard]] double probability() const {
    lock_.lock();
    roll(clock::now());
    const double p = probability_locked();
    lock_.unlock();
    return p;
  }
  [[nodiscard]] std::int64_t requests() const {
    lock_.lock();
    roll(clock::now());
    const auto n = requests_;
    lock_.unlock();
    return n;
  }
  [[nodiscard]] std::int64_t accepts() const {
    lock_.lock();
    roll(clock::now());
    const auto n = accepts_;
    lock_.unlock();
    return n;
  }
  [[nodiscard]] telemetry& observers() noexcept { return tel_; }

 private:
  struct bucket {
    std::int64_t index = -1;  // which bucket of time it holds; -1: none yet
    std::int64_t requests = 0;
    std::int64_t accepts = 0;
  };

  /// Counts the request and returns p from the counts before it.
  double admit() {
    lock_.lock();
    bucket& b = roll(clock::now());
    const double p = probability_locked();
    ++b.requests;
    ++requests_;
    lock_.unlock();
    return p;
  }
  void record_accept() {
    lock_.lock();
    bucket& b = roll(clock::now());
    ++b.accepts;
    ++accepts_;
    lock_.unlock();
  }
  double probability_locked() const noexcept {
    const double r = static_cast<double>(requests_);
    return std::max(0.0, (r - options_.k * static_cast<double>(accepts_)) / (r + 1));
  }

  /// Drops the buckets that left the window and returns the current one (lock held).
  bucket& roll(clock::time_point now) const {
    if (!started_) {
      started_ = true;
      t0_ = now;
    }
    const auto n = static_cast<std::int64_t>(buckets_.size());
    const std::int64_t current = (now - t0_) / options_.bucket;
    bucket& b = buckets_[static_cast<std::size_t>(current % n)];
    if (b.index != current) {
      // Every slot whose index is at or below current − n is stale; walking all n slots at most
      // once per new bucket keeps this O(n) per bucket of time, and O(1) per call otherwise.
      for (auto& old : buckets_) {
        if (old.index >= 0 && old.index <= current - n) {
          requests_ -= old.requests;
          accepts_ -= old.accepts;
          old = bucket{};
        }
      }
      b.index = current;
    }
    return b;
  }

  client_throttle_options options_;
  telemetry tel_;
  mutable weft::spin_lock lock_;
  // Invariant (under lock_): requests_ and accepts_ are the sums over buckets_ of the buckets in
  // the window as of the last roll().
  mutable std::vector<bucket> buckets_;
  mutable std::int64_t requests_ = 0;
  mutable std::int64_t accepts_ = 0;
  mutable bool started_ = false;
  mutable clock::time_point t0_{};
};

}  // namespace detail

/// Google SRE "Handling Overload", adaptive throttling (docs/resilience-rules.md "Client
/// throttle"):
///
///     p = max(0, (requests − K · accepts) / (requests + 1))
///
/// over the last `window` (120 buckets of 1 s by default). Every call counts as a request
/// *before* it runs, locally rejected ones included; p is computed from the counts before this
/// request is added. A call is rejected when rng() < p; otherwise it runs, and an outcome
/// classified success counts as an accept (when it completes).
///
///     weft::resilience::client_throttle throttle;
///     weft::resilience::pipeline pipe{throttle, weft::resilience::time_limiter{2s}};
///
/// A local rejection is errc::rate_limited: the client answers as if the backend had said "out of
/// quota" (the rejections the SRE book's throttle reacts to), so callers and outer layers treat
/// both alike. Like the other local-overload rejections it is ignored by breakers and not
/// retried.
///
/// Buckets are aligned to the throttle's first request t0: a request at t falls into bucket
/// ⌊(t − t0) / bucket⌋, and the window holds the buckets whose index is greater than
/// current − window/bucket, so a count leaves the window exactly `window` after its bucket began.
/// Event: `throttled` (value = p) for each local rejection. Thread safety: any worker, under a
/// spin lock. Moving a throttle moves its counts; calls running through it are not affected.
/// Errors: bad options throw std::invalid_argument.
class client_throttle {
 public:
  explicit client_throttle(client_throttle_options options = {})
      : impl_(std::in_place, std::move(options)) {}
  /// The moved-from throttle may only be destroyed or assigned to.
  client_throttle(client_throttle&&) noexcept = default;
  client_throttle& operator=(client_throttle&&) noexcept = default;

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

  /// The rejection probability a request arriving now would see.
  [[nodiscard]] double probability() const { return impl_->probability(); }
  /// Requests and accepts in the window now.
  [[nodiscard]] std::int64_t requests() const { return impl_->requests(); }
  [[nodiscard]] std::int64_t accepts() const { return impl_->accepts(); }
  [[nodiscard]] telemetry& observers() noexcept { return impl_->observers(); }

 private:
  detail::pinned<detail::client_throttle_impl> impl_;
};

}  // namespace weft::resilience
