// The shared state behind cancel_source/cancel_token: one word, no allocation.
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

class cancel_state;

/// A callback registration linked into a cancel_state; lives wherever its owner does (an awaiter in
/// a coroutine frame, a cancel_callback object), so registering allocates nothing.
class cancel_node {
 public:
  using callback_fn = void (*)(void* context) noexcept;

  cancel_node() noexcept = default;
  cancel_node(const cancel_node&) = delete;
  cancel_node& operator=(const cancel_node&) = delete;

 private:
  friend class cancel_state;
  callback_fn fn_ = nullptr;
  void* context_ = nullptr;
  cancel_node* prev_ = nullptr;
  cancel_node* next_ = nullptr;
  // release: pairs with the acquire in cancel_state::remove(), which waits for it.
  std::atomic<bool> done_{false};
  // Invariant: in_list_ is true exactly while the node is linked, and only changes under the lock.
  bool in_list_ = false;
};

/// One word: bit 0 = cancellation requested, bit 1 = lock, the rest = head of the callback list.
/// Callbacks run once, on the thread that requests cancellation, outside the lock.
class cancel_state {
 public:
  cancel_state() noexcept = default;
  cancel_state(const cancel_state&) = delete;
  cancel_state& operator=(const cancel_state&) = delete;

  [[nodiscard]] bool is_cancelled() const noexcept {
    // acquire: pairs with the release in unlock() after the cancelled bit was set.
    return (word_.load(std::memory_order_acquire) & cancelled_bit) != 0;
  }

  /// Links `node` so that fn(context) runs on cancellation. Returns false, without linking or
  /// running anything, if cancellation was already requested.
  bool try_add(cancel_node& node, cancel_node::callback_fn fn, void* context) noexcept;

  /// Unlinks `node`. If its callback is running on another thread, waits until it returned; if it
  /// is running on this thread (a callback removing itself), returns at once.
  void remove(cancel_node& node) noexcept;

  /// Requests cancellation and runs every linked callback. True for the call that made the
  /// request, false if it had been made before.
  bool request_cancel() noexcept;

 private:
  static constexpr std::uintptr_t cancelled_bit = 1;
  static constexpr std::uintptr_t locked_bit = 2;
  static constexpr std::uintptr_t pointer_mask = ~std::uintptr_t{3};
  static_assert(alignof(cancel_node) >= 4, "the low two bits of a node pointer hold the flags");

  std::uintptr_t lock() noexcept;
  void unlock(std::uintptr_t word) noexcept;

  std::atomic<std::uintptr_t> word_{0};
};

}  // namespace weft::detail
