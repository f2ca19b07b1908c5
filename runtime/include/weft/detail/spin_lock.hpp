// A test-and-test-and-set spin lock for critical sections of a few instructions.
#pragma once

#include <atomic>
#include <thread>

#include <weft/detail/config.hpp>

namespace weft::detail {

/// Guards short critical sections (list splices) where a mutex's syscall path would cost more
/// than the work. Yields the thread after a bounded spin, so a preempted holder is not starved.
class spin_lock {
 public:
  void lock() noexcept {
    for (int spins = 0;; ++spins) {
      // acquire: pairs with the release in unlock().
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins > 64) {
          std::this_thread::yield();
        } else {
          cpu_relax();
        }
      }
    }
  }
  bool try_lock() noexcept { return !locked_.exchange(true, std::memory_order_acquire); }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace weft::detail
