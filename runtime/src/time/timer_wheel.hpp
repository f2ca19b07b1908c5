// A worker's hierarchical timer wheel: O(1) insert and cancel, and expiry in deadline order of
// slots, with entries living in the awaiters (no allocation).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <weft/detail/timer_entry.hpp>

namespace weft::detail {

/// Seven levels of 1024 slots over 64-bit ticks (the layout of Tokio's and the Linux kernel's
/// wheels, with wider digits). A timer sits at the level of the highest 10-bit digit in which its
/// tick differs from the wheel's current tick, so a level-0 slot holds timers of exactly one tick
/// and a level-k slot timers of one 1024^k-tick range; when time reaches a slot of a higher level,
/// its timers move down ("cascade"), each at most once per level.
///
/// A slot is an array of pointers, not an intrusive list: the timers live in coroutine frames all
/// over memory, so walking a list is a chain of cache misses, while an array can be walked with
/// the entries ahead prefetched. Removal swaps the last entry into the hole (each entry knows its
/// index), so it stays O(1).
///
/// Why 10-bit digits: a cascade touches every timer it moves. With 131 us ticks level 0 spans
/// 134 ms, so most timeouts and sleeps of a service never cascade, or once. A level's 1024 slot
/// arrays are allocated when the level is first used (24 KiB).
///
/// Ticks are 2^tick_shift nanoseconds since `base_ns`. A deadline is rounded up to a tick, so a
/// timer never fires early; it fires at most one tick late (plus the worker's wake-up).
/// Within a slot timers are in no particular order; paused time sorts what fires together.
/// Not thread-safe: one worker owns it.
class timer_wheel {
 public:
  timer_wheel(unsigned tick_shift, std::int64_t base_ns) noexcept
      : tick_shift_(tick_shift), base_ns_(base_ns) {}
  timer_wheel(const timer_wheel&) = delete;
  timer_wheel& operator=(const timer_wheel&) = delete;

  /// Links `e` to fire at `deadline_ns`; a deadline at or before the current tick goes to the due
  /// list, which the next advance() empties first. `order` ranks among equal deadlines before
  /// the insertion order (weft::advance uses 1 so it returns after its instant's timers).
  /// Throws std::bad_alloc only when a slot array must grow and memory is exhausted.
  void insert(timer_entry* e, std::int64_t deadline_ns, std::uint8_t order = 0);
  /// Unlinks `e` (which must be linked here).
  void remove(timer_entry* e) noexcept;

  /// The earliest tick at which some timer may be due: the current tick if the due list is not
  /// empty, else the start of the earliest occupied slot. None if the wheel is empty.
  [[nodiscard]] std::optional<std::uint64_t> next_expiration() const noexcept;

  /// Unlinks every timer due at or before `now_tick` and appends it to `out`; the wheel's current
  /// tick becomes `now_tick`. The fired entries are not touched again.
  void advance(std::uint64_t now_tick, std::vector<timer_entry*>& out);

  /// Ticks since base, rounded down (the tick that `ns` lies in) or up (the first tick at or
  /// after `ns`).
  [[nodiscard]] std::uint64_t tick_floor(std::int64_t ns) const noexcept;
  [[nodiscard]] std::uint64_t tick_ceil(std::int64_t ns) const noexcept;
  /// The time at which `tick` starts.
  [[nodiscard]] std::int64_t tick_time(std::uint64_t tick) const noexcept;

  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] std::uint64_t elapsed() const noexcept { return elapsed_; }

  static constexpr unsigned digit_bits = 10;
  static constexpr unsigned slots = 1u << digit_bits;
  static constexpr unsigned levels = (64 + digit_bits - 1) / digit_bits;

 private:
  static constexpr unsigned words = slots / 64;  // occupancy bitmap words per level
  using slot_array = std::vector<timer_entry*>;
  struct expiration {
    unsigned level;
    unsigned slot;
    std::uint64_t start;
  };

  [[nodiscard]] std::optional<expiration> next_slot() const noexcept;
  void link(timer_entry* e, std::uint64_t when);
  static void append(slot_array& a, timer_entry* e);
  slot_array& slot_of(unsigned level, unsigned slot);
  void set_occupied(unsigned level, unsigned slot) noexcept {
    occupied_[level][slot / 64] |= std::uint64_t{1} << (slot % 64);
  }
  void clear_occupied(unsigned level, unsigned slot) noexcept {
    occupied_[level][slot / 64] &= ~(std::uint64_t{1} << (slot % 64));
  }

  const unsigned tick_shift_;
  const std::int64_t base_ns_;
  std::uint64_t elapsed_ = 0;
  std::size_t count_ = 0;
  std::uint32_t next_seq_ = 0;
  slot_array due_;
  slot_array scratch_;  // the slot being expired, swapped out so cascades may append anywhere
  std::array<std::array<std::uint64_t, words>, levels> occupied_{};
  std::array<std::unique_ptr<slot_array[]>, levels> slots_;
};

}  // namespace weft::detail
