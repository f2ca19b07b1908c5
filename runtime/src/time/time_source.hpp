// A runtime's clock: the steady clock, or paused time that only the runtime moves.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include <weft/time/clock.hpp>

namespace weft::detail {

inline std::int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class time_source {
 public:
  explicit time_source(time_mode mode) noexcept
      : mode_(mode), start_ns_(steady_now_ns()), paused_ns_(start_ns_) {}

  [[nodiscard]] bool paused() const noexcept { return mode_ == time_mode::paused; }
  /// Nanoseconds since steady_clock's epoch.
  [[nodiscard]] std::int64_t now_ns() const noexcept {
    // relaxed: paused time is written by the runtime's one worker; other threads read a value
    // that is at worst one jump old.
    return paused() ? paused_ns_.load(std::memory_order_relaxed) : steady_now_ns();
  }
  /// When the runtime started: tick 0 of every timer wheel.
  [[nodiscard]] std::int64_t start_ns() const noexcept { return start_ns_; }
  /// Paused time: moves the clock to `ns` (never backwards). The worker's thread only.
  void jump_to(std::int64_t ns) noexcept {
    if (ns > paused_ns_.load(std::memory_order_relaxed)) {
      paused_ns_.store(ns, std::memory_order_relaxed);
    }
  }

 private:
  const time_mode mode_;
  const std::int64_t start_ns_;
  std::atomic<std::int64_t> paused_ns_;
};

}  // namespace weft::detail
