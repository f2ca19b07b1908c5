// A worker's hierarchical timer wheel: O(1) insert and cancel, and expiry in deadline order of
// slots, with entries living in the awaiters (no allocation).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include <weft/detail/timer_entry.hpp>

namespace weft::detail {

/// Eleven levels of 64 slots over 64-bit ticks (the design of Tokio's and the Linux kernel's
/// wheels). A timer sits at the level of the highest 6-bit digit in which its tick differs from
/// the wheel's current tick, so a level-0 slot holds timers of exactly one tick and a level-k slot
/// timers of one 64^k-tick range; when time reaches a slot of a higher level, its timers move
/// down ("cascade"), each at most once per level.
///
/// Ticks are 2^tick_shift nanoseconds since `base_ns`. A deadline is rounded up to a tick, so a
/// timer never fires early; it fires at most one tick late (plus the worker's wake-up).
/// Not thread-safe: one worker owns it.
class timer_wheel {
 public:
  timer_wheel(unsigned tick_shift, std::int64_t base_ns) noexcept
      : tick_shift_(tick_shift), base_ns_(base_ns) {}
  timer_wheel(const timer_wheel&) = delete;
  timer_wheel& operator=(const timer_wheel&) = delete;

  /// Links `e` to fire at `deadline_ns`; an elapsed deadline goes to the due list, which the next
  /// advance() empties first. `order` breaks ties after `seq`-order among equal deadlines
  /// (weft::advance uses 1 so that it returns after the timers due at its own deadline).
  void insert(timer_entry* e, std::int64_t deadline_ns, std::uint8_t order = 0) noexcept;
  /// Unlinks `e` (which must be linked here).
  void remove(timer_entry* e) noexcept;

  /// The earliest tick at which some timer may be due: the current tick if the due list is not
  /// empty, else the start of the earliest occupied slot. None if the wheel is empty.
  [[nodiscard]] std::optional<std::uint64_t> next_expiration() const noexcept;

  /// Unlinks every timer due at or before `now_tick` and appends it to `out`, in slot order
  /// (FIFO within a slot); the wheel's current tick becomes `now_tick`.
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

  static constexpr unsigned levels = 11;
  static constexpr unsigned slots = 64;

 private:
  struct list {
    timer_entry* head = nullptr;
    timer_entry* tail = nullptr;
    void push_back(timer_entry* e) noexcept;
    void erase(timer_entry* e) noexcept;
  };
  struct expiration {
    unsigned level;
    unsigned slot;
    std::uint64_t start;
  };

  [[nodiscard]] std::optional<expiration> next_slot() const noexcept;
  void link(timer_entry* e) noexcept;

  const unsigned tick_shift_;
  const std::int64_t base_ns_;
  std::uint64_t elapsed_ = 0;
  std::size_t count_ = 0;
  std::uint32_t next_seq_ = 0;
  list due_;
  std::array<std::uint64_t, levels> occupied_{};
  std::array<std::array<list, slots>, levels> wheel_{};
};

}  // namespace weft::detail
