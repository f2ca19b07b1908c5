// The timer wheel's slot arithmetic and cascading (see timer_wheel.hpp for the layout).
#include "time/timer_wheel.hpp"

#include <bit>
#include <cassert>

namespace weft::detail {

namespace {

constexpr unsigned bits = timer_wheel::digit_bits;
constexpr std::uint64_t digit_mask = timer_wheel::slots - 1;
// How far ahead an expiring slot's walk prefetches (entries are in cold coroutine frames).
constexpr std::size_t prefetch_distance = 8;
// A slot array that grew past this many entries is freed after it expires, so a burst of timers
// does not pin its memory; smaller ones keep their capacity for the next round of the wheel.
constexpr std::size_t kept_capacity = 4096;

/// The level at which a timer due at `when` sits while the wheel is at `elapsed` (< when): the
/// highest digit in which the two differ.
unsigned level_for(std::uint64_t elapsed, std::uint64_t when) noexcept {
  const std::uint64_t masked = (elapsed ^ when) | digit_mask;
  const unsigned significant = 63u - static_cast<unsigned>(std::countl_zero(masked));
  return significant / bits;
}

}  // namespace

std::uint64_t timer_wheel::tick_floor(std::int64_t ns) const noexcept {
  if (ns <= base_ns_) return 0;
  return static_cast<std::uint64_t>(ns - base_ns_) >> tick_shift_;
}

std::uint64_t timer_wheel::tick_ceil(std::int64_t ns) const noexcept {
  if (ns <= base_ns_) return 0;
  const auto d = static_cast<std::uint64_t>(ns - base_ns_);
  const std::uint64_t unit = std::uint64_t{1} << tick_shift_;
  return (d >> tick_shift_) + ((d & (unit - 1)) != 0 ? 1 : 0);
}

std::int64_t timer_wheel::tick_time(std::uint64_t tick) const noexcept {
  return base_ns_ + static_cast<std::int64_t>(tick << tick_shift_);
}

timer_wheel::slot_array& timer_wheel::slot_of(unsigned level, unsigned slot) {
  auto& arrays = slots_[level];
  if (!arrays) arrays = std::make_unique<slot_array[]>(slots);
  return arrays[slot];
}

void timer_wheel::append(slot_array& a, timer_entry* e) {
  e->index = static_cast<std::uint32_t>(a.size());
  a.push_back(e);
}

void timer_wheel::insert(timer_entry* e, std::int64_t deadline_ns, std::uint8_t order) {
  e->deadline = deadline_ns;
  e->seq = next_seq_++;
  e->order = order;
  link(e, tick_ceil(deadline_ns));
  ++count_;
}

void timer_wheel::link(timer_entry* e, std::uint64_t when) {
  if (when <= elapsed_) {
    append(due_, e);
    e->level = timer_entry::in_due_list;
    return;
  }
  const unsigned level = level_for(elapsed_, when);
  const auto slot = static_cast<unsigned>((when >> (level * bits)) & digit_mask);
  append(slot_of(level, slot), e);
  e->level = static_cast<std::uint8_t>(level);
  e->slot = static_cast<std::uint16_t>(slot);
  set_occupied(level, slot);
}

void timer_wheel::remove(timer_entry* e) noexcept {
  assert(e->linked());
  const bool due = e->level == timer_entry::in_due_list;
  slot_array& a = due ? due_ : slots_[e->level][e->slot];
  assert(e->index < a.size() && a[e->index] == e);
  timer_entry* last = a.back();
  a[e->index] = last;
  last->index = e->index;
  a.pop_back();
  if (a.empty() && !due) clear_occupied(e->level, e->slot);
  e->level = timer_entry::unlinked;
  --count_;
}

std::optional<timer_wheel::expiration> timer_wheel::next_slot() const noexcept {
  for (unsigned level = 0; level < levels; ++level) {
    const unsigned shift = level * bits;
    const auto now_digit = static_cast<unsigned>((elapsed_ >> shift) & digit_mask);
    // Every occupied slot lies at or after the current digit (a slot the wheel's time reached
    // was emptied by advance()), so no wrap-around is needed.
    for (unsigned w = now_digit / 64; w < words; ++w) {
      std::uint64_t occ = occupied_[level][w];
      if (w == now_digit / 64) occ &= ~std::uint64_t{0} << (now_digit % 64);
      if (occ == 0) continue;
      const unsigned slot = w * 64 + static_cast<unsigned>(std::countr_zero(occ));
      const unsigned range_shift = shift + bits;
      const std::uint64_t level_start =
          range_shift >= 64 ? 0 : elapsed_ & ~((std::uint64_t{1} << range_shift) - 1);
      return expiration{level, slot, level_start + (std::uint64_t{slot} << shift)};
    }
  }
  return std::nullopt;
}

std::optional<std::uint64_t> timer_wheel::next_expiration() const noexcept {
  if (!due_.empty()) return elapsed_;
  if (auto e = next_slot()) return e->start;
  return std::nullopt;
}

void timer_wheel::advance(std::uint64_t now_tick, std::vector<timer_entry*>& out) {
  for (timer_entry* e : due_) e->level = timer_entry::unlinked;
  count_ -= due_.size();
  out.insert(out.end(), due_.begin(), due_.end());
  due_.clear();
  for (;;) {
    auto exp = next_slot();
    if (!exp || exp->start > now_tick) break;
    scratch_.swap(slots_[exp->level][exp->slot]);
    clear_occupied(exp->level, exp->slot);
    elapsed_ = exp->start;
    const std::size_t n = scratch_.size();
    for (std::size_t i = 0; i < n; ++i) {
      if (i + prefetch_distance < n) __builtin_prefetch(scratch_[i + prefetch_distance]);
      timer_entry* e = scratch_[i];
      // A level-0 slot is one tick, due now; a higher one moves its timers down.
      const std::uint64_t when = exp->level == 0 ? elapsed_ : tick_ceil(e->deadline);
      if (when <= elapsed_) {
        e->level = timer_entry::unlinked;
        --count_;
        out.push_back(e);
      } else {
        link(e, when);
      }
    }
    scratch_.clear();
    if (scratch_.capacity() > kept_capacity) slot_array{}.swap(scratch_);
  }
  if (now_tick > elapsed_) elapsed_ = now_tick;
}

}  // namespace weft::detail
