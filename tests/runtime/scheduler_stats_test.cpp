// weft::runtime::stats(): the injection-pull and LIFO counters, and the LIFO cap they reveal.
#include <weft/runtime.hpp>

#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include <weft/spawn.hpp>
#include <weft/sync/event.hpp>
#include <weft/task.hpp>

namespace {

weft::task<int> value_of(int value) {
  co_return value;
}

// A chain: each link spawns the next into the LIFO slot and ends; the last sets `done`.
weft::task<void> link(int remaining, weft::event* done) {
  if (remaining == 0) {
    done->set();
  } else {
    weft::spawn(link(remaining - 1, done)).detach();
  }
  co_return;
}

weft::task<void> run_chain(int length, weft::event* done) {
  weft::spawn(link(length, done)).detach();
  co_await done->wait();
}

std::uint64_t lifo_hits_of_chain(std::uint32_t max_lifo_polls, int length) {
  weft::runtime rt{weft::runtime_options{.workers = 1, .max_lifo_polls = max_lifo_polls}};
  weft::event done;
  rt.block_on(run_chain(length, &done));
  return rt.stats().workers.at(0).lifo_hits;
}

TEST(SchedulerStats, TasksSpawnedFromOutsideAreCountedAsInjectionPulls) {
  constexpr int tasks = 50;
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  std::vector<weft::join_handle<int>> handles;
  for (int i = 0; i < tasks; ++i) handles.push_back(rt.spawn(value_of(i)));
  int sum = 0;
  for (auto& h : handles) {
    sum += rt.block_on([&h]() -> weft::task<int> { co_return co_await h; });
  }
  EXPECT_EQ(sum, tasks * (tasks - 1) / 2);
  // The spawned tasks and the block_on roots all came through the injection queue.
  EXPECT_GE(rt.stats().workers.at(0).injection_pulls, static_cast<std::uint64_t>(2 * tasks));
}

TEST(SchedulerStats, AChainOfSpawnsRunsFromTheLifoSlot) {
  // With the default cap of 32, 32 of every 33 links run straight from the LIFO slot.
  EXPECT_GE(lifo_hits_of_chain(32, 330), 300u);
}

TEST(SchedulerStats, TheLifoCapSendsEveryOtherLinkThroughTheQueueWhenItIsOne) {
  // Cap 1: a link run from the LIFO slot spawns the next, which must go to the queue instead.
  const auto hits = lifo_hits_of_chain(1, 330);
  EXPECT_GE(hits, 160u);
  EXPECT_LE(hits, 170u);
}

}  // namespace
