// The timer wheel alone: slot arithmetic, cascading through levels, removal, the due list, and a
// randomized comparison against a sorted reference.
#include "time/timer_wheel.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

namespace {

using weft::detail::timer_entry;
using weft::detail::timer_wheel;

void no_op(timer_entry*) noexcept {}

std::vector<timer_entry*> advance(timer_wheel& w, std::uint64_t tick) {
  std::vector<timer_entry*> out;
  w.advance(tick, out);
  return out;
}

TEST(TimerWheel, TicksRoundDeadlinesUpSoNothingFiresEarly) {
  const timer_wheel w{10, 1'000'000};  // 1024 ns ticks from t = 1 ms
  EXPECT_EQ(w.tick_ceil(1'000'000), 0u);
  EXPECT_EQ(w.tick_ceil(1'000'001), 1u);
  EXPECT_EQ(w.tick_ceil(1'001'024), 1u);
  EXPECT_EQ(w.tick_ceil(1'001'025), 2u);
  EXPECT_EQ(w.tick_floor(1'001'025), 1u);
  EXPECT_EQ(w.tick_ceil(5), 0u);  // before the base: due at once
  EXPECT_EQ(w.tick_time(3), 1'000'000 + 3 * 1024);
}

TEST(TimerWheel, FiresEachTimerAtItsTickAcrossLevels) {
  timer_wheel w{0, 0};
  const std::vector<std::uint64_t> deadlines{
      1, 63, 64, 65, 4095, 4096, 4097, 262'143, 262'144, 1u << 30, 1ull << 40, 1ull << 62};
  std::vector<timer_entry> entries(deadlines.size());
  for (std::size_t i = 0; i < deadlines.size(); ++i) {
    entries[i].fire = &no_op;
    w.insert(&entries[i], static_cast<std::int64_t>(deadlines[i]));
  }
  EXPECT_EQ(w.size(), deadlines.size());
  for (std::size_t i = 0; i < deadlines.size(); ++i) {
    // Nothing fires one tick before its deadline; exactly it fires at the deadline.
    EXPECT_EQ(w.next_expiration().value_or(0) <= deadlines[i], true);
    EXPECT_TRUE(advance(w, deadlines[i] - 1).empty()) << deadlines[i];
    const auto fired = advance(w, deadlines[i]);
    ASSERT_EQ(fired.size(), 1u) << deadlines[i];
    EXPECT_EQ(fired[0], &entries[i]);
    EXPECT_FALSE(entries[i].linked());
  }
  EXPECT_TRUE(w.empty());
  EXPECT_FALSE(w.next_expiration().has_value());
}

TEST(TimerWheel, RemovedTimersNeverFire) {
  timer_wheel w{0, 0};
  std::vector<timer_entry> entries(1000);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    entries[i].fire = &no_op;
    w.insert(&entries[i], static_cast<std::int64_t>(1 + i * 37));
  }
  for (std::size_t i = 0; i < entries.size(); i += 2) w.remove(&entries[i]);
  EXPECT_EQ(w.size(), 500u);
  const auto fired = advance(w, 1'000'000);
  ASSERT_EQ(fired.size(), 500u);
  for (const timer_entry* e : fired) EXPECT_EQ((e - entries.data()) % 2, 1);
  EXPECT_TRUE(w.empty());
}

TEST(TimerWheel, ElapsedDeadlinesGoToTheDueListAndCanBeRemovedThere) {
  timer_wheel w{0, 0};
  timer_entry a, b;
  a.fire = b.fire = &no_op;
  (void)advance(w, 100);
  w.insert(&a, 50);
  w.insert(&b, 100);
  EXPECT_EQ(a.level, timer_entry::in_due_list);
  EXPECT_EQ(w.next_expiration(), 100u);
  w.remove(&a);
  const auto fired = advance(w, 100);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0], &b);
}

TEST(TimerWheel, TimersOfOneInstantFireTogetherWithGrowingSequenceNumbers) {
  timer_wheel w{0, 0};
  std::vector<timer_entry> entries(10);
  for (auto& e : entries) {
    e.fire = &no_op;
    w.insert(&e, 5'000'000);  // cascades from level 2 through level 1 to level 0
  }
  auto fired = advance(w, 5'000'000);
  ASSERT_EQ(fired.size(), 10u);
  // The wheel does not order a slot; the sequence numbers let paused time restore FIFO.
  std::sort(fired.begin(), fired.end(),
            [](const timer_entry* a, const timer_entry* b) { return a->seq < b->seq; });
  for (std::size_t i = 0; i < fired.size(); ++i) {
    EXPECT_EQ(fired[i], &entries[i]);
    EXPECT_EQ(fired[i]->seq, i);
  }
}

TEST(TimerWheel, MatchesASortedReferenceOnRandomSchedules) {
  for (unsigned shift : {0u, 17u}) {
    timer_wheel w{shift, 0};
    std::vector<std::unique_ptr<timer_entry>> live;
    std::uint64_t state = 12345 + shift;
    auto next = [&] {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      return state;
    };
    std::int64_t now = 0;
    std::size_t fired_total = 0, inserted = 0;
    for (int round = 0; round < 2000; ++round) {
      // Insert a few timers at assorted distances, remove some, then move time forward.
      for (int k = 0; k < 5; ++k) {
        auto e = std::make_unique<timer_entry>();
        e->fire = &no_op;
        const std::uint64_t span = std::uint64_t{1} << (next() % 40);
        w.insert(e.get(), now + static_cast<std::int64_t>(next() % span));
        live.push_back(std::move(e));
        ++inserted;
      }
      if (!live.empty() && next() % 3 == 0) {
        const std::size_t victim = next() % live.size();
        if (live[victim]->linked()) w.remove(live[victim].get());
      }
      now += static_cast<std::int64_t>(next() % (std::uint64_t{1} << (next() % 30)));
      std::vector<timer_entry*> out;
      w.advance(w.tick_floor(now), out);
      for (const timer_entry* e : out) {
        // Fired: due, never early (deadline at or before now).
        EXPECT_LE(e->deadline, now);
        EXPECT_FALSE(e->linked());
      }
      fired_total += out.size();
      // Nothing still linked is due.
      for (const auto& e : live) {
        if (e->linked()) {
          EXPECT_GT(w.tick_ceil(e->deadline), w.tick_floor(now))
              << "a due timer was left in the wheel";
        }
      }
      std::erase_if(live, [](const auto& e) { return !e->linked(); });
    }
    EXPECT_LE(fired_total, inserted);
    EXPECT_EQ(w.size(), live.size());
  }
}

}  // namespace
