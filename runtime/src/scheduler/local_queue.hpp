// A worker's bounded run queue: the owner pushes and pops at the two ends without locks, other
// workers steal half of it. The design is Tokio's (multi_thread/queue.rs), rewritten in C++.
#pragma once

#include <array>
#include <atomic>
#include <coroutine>
#include <cstdint>
#include <vector>

namespace weft::detail {

class injection_queue;

/// Single producer (the owning worker), multiple consumers (the owner and stealers).
///
/// Protocol:
/// 1. `head_` packs two 32-bit indices: `steal` (where an in-progress steal started) and `real`
///    (the next slot to pop). They differ only while a stealer copies slots out; no other steal
///    can start then, and the owner may still pop (it moves `real` only).
/// 2. The owner writes a slot, then publishes it with a release store of `tail_`.
/// 3. A stealer claims `[real, real + n)` with one CAS on `real`, copies the slots, then a second
///    CAS sets `steal = real`, ending the steal and freeing those slots for the owner's pushes.
/// 4. A full queue moves half of its tasks to the injection queue in one batch (overflow), so the
///    owner never blocks and the tasks stay reachable by every worker.
/// 5. The owner may take back the entry at the back (take_back): it lowers `tail_`, then reads
///    `head_` (both seq_cst, against a stealer's read of `tail_`). A stealer takes at most
///    ceil(len / 2) from the front, so with two or more queued it never reaches the last entry;
///    with one left the owner restores `tail_` and races for it from the front, as pop() does.
class local_queue {
 public:
  static constexpr std::uint32_t capacity = 256;
  static_assert((capacity & (capacity - 1)) == 0, "index arithmetic masks with capacity - 1");

  /// Pushes at the back; on a full queue moves half of it plus `h` to `overflow`.
  /// Returns true if it overflowed.
  bool push_back(std::coroutine_handle<> h, injection_queue& overflow);

  /// Pops from the front (owner only).
  std::coroutine_handle<> pop();

  /// Removes the entry at the back if it is `expected` and no stealer took it (owner only). A
  /// joiner takes back the task it joins, queued last, to run it itself (work-first joins).
  bool take_back(void* expected);

  /// Moves half of this queue into `dst` (an empty-enough queue owned by the caller) and returns
  /// one of the stolen tasks to run at once; null if there was nothing to steal.
  std::coroutine_handle<> steal_into(local_queue& dst, std::uint32_t& stolen);

  /// Appends the queued tasks to `out`, oldest first. Exact only while the owner is paused and
  /// nobody steals (task dumps).
  void snapshot(std::vector<void*>& out) const {
    const std::uint32_t tail = tail_.load(std::memory_order_acquire);
    for (std::uint32_t i = real_part(head_.load(std::memory_order_acquire)); i != tail; ++i) {
      out.push_back(buffer_[i & (capacity - 1)].load(std::memory_order_relaxed));
    }
  }
  /// Tasks in the queue; exact for the owner, a snapshot for others.
  std::uint32_t size() const noexcept;
  bool has_stealable() const noexcept { return size() > 0; }

 private:
  static std::uint64_t pack(std::uint32_t steal, std::uint32_t real) noexcept {
    return (std::uint64_t{steal} << 32) | real;
  }
  static std::uint32_t steal_part(std::uint64_t v) noexcept { return std::uint32_t(v >> 32); }
  static std::uint32_t real_part(std::uint64_t v) noexcept { return std::uint32_t(v); }

  std::uint32_t steal_into2(local_queue& dst, std::uint32_t dst_tail);
  bool push_overflow(std::coroutine_handle<> h, std::uint32_t head, std::uint32_t tail,
                     injection_queue& overflow);

  alignas(64) std::atomic<std::uint64_t> head_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  // Slots are atomics so that a stealer reading a slot the owner is overwriting is not a data
  // race; the CAS on head_ decides whether what it read is used.
  alignas(64) std::array<std::atomic<void*>, capacity> buffer_{};
};

}  // namespace weft::detail
