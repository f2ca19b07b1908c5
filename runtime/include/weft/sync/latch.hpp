// weft::latch: a single-use countdown that tasks can wait on.
#pragma once

#include <atomic>
#include <cstddef>
#include <stdexcept>

#include <weft/sync/event.hpp>

namespace weft {

/// Starts at n; count_down() lowers it; wait() returns once it reached zero (at once if it has).
///
///     weft::latch ready{workers};
///     // each worker task: ... ready.count_down();
///     co_await ready.wait();
///
/// Thread safety: any member from any thread (wait from tasks). Counting down below zero is a
/// std::logic_error. Cancellation: a cancelled wait throws operation_cancelled.
class latch {
 public:
  explicit latch(std::ptrdiff_t n) : remaining_(n), done_(n == 0) {
    if (n < 0) throw std::invalid_argument("weft::latch: a negative count");
  }

  /// Lowers the count by n; the last one releases every waiter.
  void count_down(std::ptrdiff_t n = 1) {
    if (n < 0) throw std::invalid_argument("weft::latch::count_down: a negative n");
    const auto before = remaining_.fetch_sub(n, std::memory_order_acq_rel);
    if (before < n) {
      remaining_.fetch_add(n, std::memory_order_relaxed);
      throw std::logic_error("weft::latch::count_down: counted below zero");
    }
    if (before == n) done_.set();
  }
  /// True once the count reached zero.
  [[nodiscard]] bool try_wait() const noexcept { return done_.is_set(); }
  /// Suspends until the count reached zero.
  [[nodiscard("wait does nothing until it is co_awaited")]] detail::event_awaiter wait() noexcept {
    return detail::event_awaiter{done_,
                                 "weft::latch::wait() was never co_awaited: nothing is waited for"};
  }

 private:
  std::atomic<std::ptrdiff_t> remaining_;
  event done_;
};

}  // namespace weft
