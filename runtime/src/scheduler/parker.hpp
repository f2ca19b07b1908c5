// Puts one worker thread to sleep and wakes it, with no lost wake-ups: the sleep is a wait in the
// worker's io_uring (which its own completions and timers also end) or, without io_uring, a futex.
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

class reactor;

/// Protocol: unpark() sets `notified` and, if the worker sleeps, wakes it; park() consumes a
/// pending notification without sleeping, so an unpark that happens before park() is never lost.
/// A wake-up sent to a worker that already woke for another reason is harmless: its CQE (or
/// futex word) is consumed by a later wait.
class parker {
 public:
  explicit parker(reactor& r) noexcept : reactor_(r) {}

  /// Sleeps until unpark(), a completion on the worker's ring or `timeout_ns` (< 0: no limit),
  /// and dispatches the completions. Returns at once if unpark() came first.
  void park(std::int64_t timeout_ns);
  /// Ends park() or makes the next one return at once. Any thread.
  void unpark() noexcept;

  /// External loop: the worker returns to the host's loop, parked in all but the sleep, so that
  /// unpark() wakes the loop (the reactor's eventfd). False if an unpark came first (consumed).
  bool park_in_host() noexcept {
    std::uint32_t expected = empty;
    if (state_.compare_exchange_strong(expected, parked, std::memory_order_acq_rel)) return true;
    state_.store(empty, std::memory_order_relaxed);
    return false;
  }
  /// External loop: the host called back in; the worker is not parked any more.
  void leave_host() noexcept { state_.exchange(empty, std::memory_order_acquire); }

 private:
  static constexpr std::uint32_t empty = 0, parked = 1, notified = 2;
  reactor& reactor_;
  std::atomic<std::uint32_t> state_{empty};
};

}  // namespace weft::detail
