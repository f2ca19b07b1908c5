// A timer in a worker's timer wheel, kept in the awaiter that waits for it; the wheel's slots are
// arrays of pointers to these, so arming a timer allocates nothing per timer.
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

/// Owned by one worker's wheel while linked; every field is touched only on that worker's thread
/// (or after it stopped, at shutdown). 32 bytes: a million sleeping tasks hold a million of them.
struct timer_entry {
  /// Called by the wheel's owner when the deadline passed, after the entry was unlinked.
  using fire_fn = void (*)(timer_entry* self) noexcept;

  static constexpr std::uint8_t unlinked = 0xFF;
  static constexpr std::uint8_t in_due_list = 0xFE;

  std::int64_t deadline = 0;  // nanoseconds since the clock's epoch
  fire_fn fire = nullptr;
  std::uint32_t seq = 0;          // insertion order, for FIFO among equal deadlines
  std::uint32_t index = 0;        // position in its slot's array
  std::uint16_t slot = 0;         // within the level
  std::uint8_t level = unlinked;  // or in_due_list
  std::uint8_t order = 0;         // ranks after deadline, before seq (weft::advance: 1)
  /// Free for the entry's owner (the sleep awaiter keeps its fired/cancelled state here, where
  /// the padding would be anyway).
  std::atomic<std::uint8_t> owner_state{0};

  [[nodiscard]] bool linked() const noexcept { return level != unlinked; }
};

}  // namespace weft::detail
