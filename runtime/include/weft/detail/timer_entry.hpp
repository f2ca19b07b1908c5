// A timer in a worker's timer wheel: an intrusive node that lives in the awaiter that waits for it,
// so arming a timer allocates nothing.
#pragma once

#include <cstdint>

namespace weft::detail {

/// Owned by one worker's wheel while linked; every field is touched only on that worker's thread
/// (or after it stopped, at shutdown).
struct timer_entry {
  /// Called by the wheel's owner when the deadline passed, after the entry was unlinked.
  using fire_fn = void (*)(timer_entry* self) noexcept;

  static constexpr std::uint8_t unlinked = 0xFF;
  static constexpr std::uint8_t in_due_list = 0xFE;

  timer_entry* prev = nullptr;
  timer_entry* next = nullptr;
  std::int64_t deadline = 0;  // nanoseconds since the clock's epoch
  std::uint64_t when = 0;     // the wheel tick at or after the deadline
  fire_fn fire = nullptr;
  std::uint32_t seq = 0;  // insertion order, for FIFO among equal deadlines
  std::uint8_t level = unlinked;
  std::uint8_t slot = 0;
  std::uint8_t order = 0;  // ranks after seq among equal deadlines (weft::advance: 1)

  [[nodiscard]] bool linked() const noexcept { return level != unlinked; }
};

}  // namespace weft::detail
