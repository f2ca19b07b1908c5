// weft::spin_lock: a test-and-test-and-set spin lock for critical sections of a few instructions.
//
// Thread safety: any thread. lock() spins, then yields the thread: it blocks, never suspends a
// task.
//
// Cancellation: nothing here suspends, and nothing may: never hold the lock across a co_await.
#pragma once

#include <atomic>
#include <thread>

#include <weft/detail/config.hpp>

namespace weft {

/// Guards short critical sections (a list splice, a few counters) where a mutex's syscall path
/// would cost more than the work. Yields the thread after a bounded spin, so a preempted holder is
/// not starved. A BasicLockable for std::lock_guard and std::unique_lock.
///
///     weft::spin_lock lock;
///     { std::lock_guard guard{lock}; ++hits; }
///
/// Never hold it across a co_await (another task on the same worker would spin on it) or around
/// anything that blocks. Not recursive; unlock() only by the holder. Thread safety: any thread.
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
          detail::cpu_relax();
        }
      }
    }
  }
  bool try_lock() noexcept { return !locked_.exchange(true, std::memory_order_acquire); }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace weft
