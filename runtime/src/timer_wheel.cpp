// The timer wheel's slot arithmetic and cascading (see timer_wheel.hpp for the layout).
#include "timer_wheel.hpp"

#include <bit>
#include <cassert>

namespace weft::detail {

namespace {

constexpr unsigned digit_bits = 6;
constexpr std::uint64_t digit_mask = 63;

/// The level at which a timer due at `when` sits while the wheel is at `elapsed` (< when): the
/// highest 6-bit digit in which the two differ.
unsigned level_for(std::uint64_t elapsed, std::uint64_t when) noexcept {
  const std::uint64_t masked = (elapsed ^ when) | digit_mask;
  const unsigned significant = 63u - static_cast<unsigned>(std::countl_zero(masked));
  return significant / digit_bits;
}

}  // namespace

void timer_wheel::list::push_back(timer_entry* e) noexcept {
  e->next = nullptr;
  e->prev = tail;
  if (tail != nullptr) {
    tail->next = e;
  } else {
    head = e;
  }
  tail = e;
}

void timer_wheel::list::erase(timer_entry* e) noexcept {
  if (e->prev != nullptr) {
    e->prev->next = e->next;
  } else {
    head = e->next;
  }
  if (e->next != nullptr) {
    e->next->prev = e->prev;
  } else {
    tail = e->prev;
  }
  e->prev = e->next = nullptr;
}

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

void timer_wheel::insert(timer_entry* e, std::int64_t deadline_ns, std::uint8_t order) noexcept {
  e->deadline = deadline_ns;
  e->when = tick_ceil(deadline_ns);
  e->seq = next_seq_++;
  e->order = order;
  ++count_;
  link(e);
}

void timer_wheel::link(timer_entry* e) noexcept {
  if (e->when <= elapsed_) {
    e->level = timer_entry::in_due_list;
    due_.push_back(e);
    return;
  }
  const unsigned level = level_for(elapsed_, e->when);
  const auto slot = static_cast<unsigned>((e->when >> (level * digit_bits)) & digit_mask);
  e->level = static_cast<std::uint8_t>(level);
  e->slot = static_cast<std::uint8_t>(slot);
  wheel_[level][slot].push_back(e);
  occupied_[level] |= std::uint64_t{1} << slot;
}

void timer_wheel::remove(timer_entry* e) noexcept {
  assert(e->linked());
  if (e->level == timer_entry::in_due_list) {
    due_.erase(e);
  } else {
    auto& l = wheel_[e->level][e->slot];
    l.erase(e);
    if (l.head == nullptr) occupied_[e->level] &= ~(std::uint64_t{1} << e->slot);
  }
  e->level = timer_entry::unlinked;
  --count_;
}

std::optional<timer_wheel::expiration> timer_wheel::next_slot() const noexcept {
  for (unsigned level = 0; level < levels; ++level) {
    const std::uint64_t occ = occupied_[level];
    if (occ == 0) continue;
    const unsigned shift = level * digit_bits;
    const auto now_digit = static_cast<unsigned>((elapsed_ >> shift) & digit_mask);
    // Every occupied slot lies at or after the current digit (a slot the wheel's time reached
    // was emptied by advance()), so no wrap-around is needed.
    const std::uint64_t ahead = occ & (~std::uint64_t{0} << now_digit);
    assert(ahead != 0);
    const auto slot = static_cast<unsigned>(std::countr_zero(ahead));
    const unsigned range_shift = shift + digit_bits;
    const std::uint64_t level_start =
        range_shift >= 64 ? 0 : elapsed_ & ~((std::uint64_t{1} << range_shift) - 1);
    return expiration{level, slot, level_start + (std::uint64_t{slot} << shift)};
  }
  return std::nullopt;
}

std::optional<std::uint64_t> timer_wheel::next_expiration() const noexcept {
  if (due_.head != nullptr) return elapsed_;
  if (auto e = next_slot()) return e->start;
  return std::nullopt;
}

void timer_wheel::advance(std::uint64_t now_tick, std::vector<timer_entry*>& out) {
  for (timer_entry* e = due_.head; e != nullptr;) {
    timer_entry* next = e->next;
    e->level = timer_entry::unlinked;
    e->prev = e->next = nullptr;
    --count_;
    out.push_back(e);
    e = next;
  }
  due_ = {};
  for (;;) {
    auto exp = next_slot();
    if (!exp || exp->start > now_tick) break;
    list& l = wheel_[exp->level][exp->slot];
    timer_entry* e = l.head;
    l = {};
    occupied_[exp->level] &= ~(std::uint64_t{1} << exp->slot);
    elapsed_ = exp->start;
    while (e != nullptr) {
      timer_entry* next = e->next;
      if (e->when <= elapsed_) {
        e->level = timer_entry::unlinked;
        e->prev = e->next = nullptr;
        --count_;
        out.push_back(e);
      } else {
        link(e);  // cascades to a lower level
      }
      e = next;
    }
  }
  if (now_tick > elapsed_) elapsed_ = now_tick;
}

}  // namespace weft::detail
