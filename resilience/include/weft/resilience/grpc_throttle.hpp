// weft::resilience::grpc_throttle: gRPC's retry throttling (proposal A6) — a token count that
// failures drain and successes refill, with retries and hedges allowed only while it is above
// half. A retry_gate shared by every retry and hedge calling one server.
//
// Thread safety: lock-free (one atomic count): every member may be called from any worker at once,
// by every retry and hedge that shares the throttle (see the class).
//
// Cancellation: nothing here suspends. A cancelled attempt moves no token: a retry reports it as
// neither success nor failure, and a hedge does not report it at all.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <weft/resilience/budget.hpp>
#include <weft/resilience/classify.hpp>

namespace weft::resilience {

/// gRPC retry throttling, exactly as gRPC core implements proposal A6, in integer milli-tokens:
///
/// - the count starts full, at max_tokens·1000, and stays within [0, max_tokens·1000];
/// - a failed attempt takes 1000 (one token); a successful one adds token_ratio·1000 (the ratio
///   is used to three decimal places, as gRPC parses it);
/// - a retry or hedge is allowed while the count is *above* the threshold
///   ⌊max_tokens·1000 / 2⌋; at or below it, none is sent until successes lift it again.
///
/// The retry layer reports an attempt as a failure only when it would retry it (A6: "only RPCs
/// that fail with a retryable status code count as failures"), as a success when it is classified
/// success, and neither otherwise. Unlike a ratio budget, an allowed retry costs nothing at
/// try_acquire_retry: the failure that led to it was already charged.
///
///     grpc_throttle per_server{10, 0.1};   // gRPC's example: throttles past ~10 % failures
///     retry r{{.max_attempts = 4, .gate = &per_server}};
///
/// Sharing: one throttle per server name (A6 throttles per server, across methods); hand the same
/// instance to every retry and hedge layer that calls that server.
/// Thread safety: lock-free; every member may be called from any worker.
/// Errors: std::invalid_argument at construction for max_tokens of 0 or above 1'000'000, or a
/// token_ratio that is not positive (or rounds to 0 milli-tokens).
class grpc_throttle final : public retry_gate {
 public:
  grpc_throttle(std::uint32_t max_tokens, double token_ratio) {
    if (max_tokens == 0 || max_tokens > 1'000'000) {
      throw std::invalid_argument(
          "weft::resilience::grpc_throttle: max_tokens must be between 1 and 1000000 (it is " +
          std::to_string(max_tokens) + ")");
    }
    if (!(token_ratio > 0) || !std::isfinite(token_ratio) ||
        std::llround(token_ratio * 1000) <= 0) {
      throw std::invalid_argument(
          "weft::resilience::grpc_throttle: token_ratio must be at least 0.001 (it is " +
          std::to_string(token_ratio) + ")");
    }
    max_milli_ = static_cast<std::int64_t>(max_tokens) * 1000;
    ratio_milli_ = std::llround(token_ratio * 1000);
    milli_tokens_.store(max_milli_, std::memory_order_relaxed);
  }
  grpc_throttle(const grpc_throttle&) = delete;
  grpc_throttle& operator=(const grpc_throttle&) = delete;

  /// Requests cost nothing here: only outcomes move the count.
  void record_request() noexcept override {}

  /// True while the count is above ⌊max·1000 / 2⌋.
  bool try_acquire_retry() noexcept override {
    // relaxed: the count is a statistic; no other memory is published through it (as in gRPC).
    return milli_tokens_.load(std::memory_order_relaxed) > threshold();
  }

  /// failure: −1000; success: +token_ratio·1000; ignore: nothing. Clamped to [0, max].
  void record_outcome(verdict v) noexcept override {
    if (v == verdict::failure) {
      add(-1000);
    } else if (v == verdict::success) {
      add(ratio_milli_);
    }
  }

  /// The current count in milli-tokens.
  [[nodiscard]] std::int64_t milli_tokens() const noexcept {
    return milli_tokens_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::int64_t max_milli_tokens() const noexcept { return max_milli_; }
  [[nodiscard]] std::int64_t milli_token_ratio() const noexcept { return ratio_milli_; }
  /// ⌊max·1000 / 2⌋: retries are allowed while milli_tokens() is above it.
  [[nodiscard]] std::int64_t threshold() const noexcept { return max_milli_ / 2; }

 private:
  void add(std::int64_t delta) noexcept {
    std::int64_t old = milli_tokens_.load(std::memory_order_relaxed);
    std::int64_t next = 0;
    do {
      next = old + delta;
      if (next < 0) next = 0;
      if (next > max_milli_) next = max_milli_;
    } while (!milli_tokens_.compare_exchange_weak(old, next, std::memory_order_relaxed));
  }

  std::int64_t max_milli_ = 0;
  std::int64_t ratio_milli_ = 0;
  // Invariant: 0 <= milli_tokens_ <= max_milli_.
  std::atomic<std::int64_t> milli_tokens_{0};
};

}  // namespace weft::resilience
