// Puts one worker thread to sleep and wakes it, with no lost wake-ups (a futex via atomic wait).
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

/// Protocol: unpark() sets `notified` and wakes a sleeper; park() consumes a pending notification
/// without sleeping, so an unpark that happens before park() is never lost.
class parker {
 public:
  void park() noexcept {
    // acquire: pairs with the release in unpark(), so what the unparker wrote is visible.
    if (state_.exchange(empty, std::memory_order_acquire) == notified) return;
    std::uint32_t expected = empty;
    if (!state_.compare_exchange_strong(expected, parked, std::memory_order_acquire)) {
      state_.store(empty, std::memory_order_relaxed);  // was notified in between
      return;
    }
    for (;;) {
      state_.wait(parked, std::memory_order_acquire);
      expected = notified;
      if (state_.compare_exchange_strong(expected, empty, std::memory_order_acquire)) return;
    }
  }

  void unpark() noexcept {
    // release: pairs with the acquire in park().
    if (state_.exchange(notified, std::memory_order_release) == parked) state_.notify_one();
  }

 private:
  static constexpr std::uint32_t empty = 0, parked = 1, notified = 2;
  std::atomic<std::uint32_t> state_{empty};
};

}  // namespace weft::detail
