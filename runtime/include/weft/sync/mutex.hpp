// weft::mutex: mutual exclusion for tasks, held across co_await, handed over in FIFO order.
//
// Thread safety: lock() from tasks on any worker; try_lock() and is_locked() from any thread. A
// guard may be destroyed on another worker or thread than the one that locked.
//
// Cancellation: a cancelled lock() throws operation_cancelled and holds nothing; the waiters behind
// it are served.
#pragma once

#include <optional>

#include <weft/sync/semaphore.hpp>

namespace weft {

/// A task mutex: `co_await m.lock()` suspends (never blocks the thread) until the mutex is free
/// and returns a guard that unlocks when destroyed. FIFO fair: the mutex is handed to waiters in
/// the order they asked. Unlike std::mutex it may be held across co_await and released on
/// another worker.
///
///     weft::mutex m;
///     {
///       auto guard = co_await m.lock();
///       co_await write_record(file, rec);   // no other task writes meanwhile
///     }
///
/// Cancellation: a cancelled lock() throws operation_cancelled and holds nothing. The mutex must
/// outlive its guards and waiters; not recursive (a task locking it twice waits forever).
class mutex {
 public:
  using guard = semaphore::permit;

  mutex() noexcept : s_(1) {}
  [[nodiscard("lock does nothing until it is co_awaited")]] semaphore::acquire_awaiter lock() {
    return semaphore::acquire_awaiter{
        s_, 1, "weft::mutex::lock() was never co_awaited: nothing is locked", true};
  }
  /// The guard if the mutex is free and nobody waits; empty otherwise.
  std::optional<guard> try_lock() { return s_.try_acquire(1); }
  /// True while some task holds the mutex (a snapshot).
  [[nodiscard]] bool is_locked() const noexcept { return s_.available() == 0; }

 private:
  semaphore s_;
};

}  // namespace weft
