// The runtime's shared FIFO of runnable tasks: spawns and wake-ups from outside the workers, and
// the overflow of full local queues.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <mutex>
#include <vector>

namespace weft::detail {

/// A mutex-guarded ring buffer that grows by doubling. Its length is also kept in an atomic so
/// workers can skip the lock when it is empty (the common case).
class injection_queue {
 public:
  injection_queue() : ring_(1024) {}

  void push(std::coroutine_handle<> h) {
    std::lock_guard lock{mutex_};
    push_locked(h.address());
  }

  /// Pushes n tasks under one lock (a local queue's overflow).
  void push_batch(void* const* items, std::size_t n) {
    std::lock_guard lock{mutex_};
    for (std::size_t i = 0; i < n; ++i) push_locked(items[i]);
  }

  /// Pops up to `max` tasks into `out`; returns how many.
  std::size_t pop_batch(void** out, std::size_t max) {
    if (len_.load(std::memory_order_acquire) == 0) return 0;
    std::lock_guard lock{mutex_};
    std::size_t n = count_ < max ? count_ : max;
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = ring_[head_];
      head_ = (head_ + 1) & (ring_.size() - 1);
    }
    count_ -= n;
    len_.store(count_, std::memory_order_release);
    return n;
  }

  /// Appends what is queued to `out`, oldest first (task dumps).
  void snapshot(std::vector<void*>& out) {
    std::lock_guard lock{mutex_};
    for (std::size_t i = 0; i < count_; ++i) out.push_back(ring_[(head_ + i) & (ring_.size() - 1)]);
  }
  [[nodiscard]] std::size_t size() const noexcept {
    // acquire: pairs with the release stores under the lock, so a non-zero size means the
    // pushed tasks are visible to whoever takes the lock next.
    return len_.load(std::memory_order_acquire);
  }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }

 private:
  void push_locked(void* p) {
    if (count_ == ring_.size()) grow();
    ring_[(head_ + count_) & (ring_.size() - 1)] = p;
    ++count_;
    len_.store(count_, std::memory_order_release);
  }
  void grow() {
    std::vector<void*> bigger(ring_.size() * 2);
    for (std::size_t i = 0; i < count_; ++i) bigger[i] = ring_[(head_ + i) & (ring_.size() - 1)];
    ring_.swap(bigger);
    head_ = 0;
  }

  std::mutex mutex_;
  // Invariant: ring_.size() is a power of two; [head_, head_ + count_) holds the tasks in order.
  std::vector<void*> ring_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::atomic<std::size_t> len_{0};
};

}  // namespace weft::detail
