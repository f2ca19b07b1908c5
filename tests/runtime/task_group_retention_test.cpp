// A task_group that is never joined (a server's connections) must hold memory for the tasks
// that run now, not for every task it ever ran: finished tasks are freed when they finish, and
// their failures are still reported by join.
#include <malloc.h>

#include <atomic>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "../support/paused_time.hpp"

#include <weft/weft.hpp>

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WEFT_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define WEFT_TEST_SANITIZED 1
#endif
#endif

#ifdef WEFT_TEST_SANITIZED
constexpr std::size_t task_count = 100'000;  // sanitizers make each task ~20x dearer
#else
constexpr std::size_t task_count = 1'000'000;
#endif

std::size_t heap_in_use() {
  return mallinfo2().uordblks;
}

weft::task<void> short_task(std::atomic<std::size_t>* done) {
  co_await weft::yield();
  done->fetch_add(1, std::memory_order_relaxed);
}

// Spawns `task_count` short tasks in waves of `wave`, never joining, and records the most live
// tasks and the most heap in use seen after each wave (past the first waves, which size the
// frame pool and the group's slots).
struct retention {
  std::size_t peak_live = 0;
  std::size_t heap_after_warmup = 0;
  std::size_t peak_heap = 0;
};

retention run_unjoined(weft::runtime& rt, std::size_t wave) {
  std::atomic<std::size_t> done{0};
  retention r;
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    for (std::size_t spawned = 0; spawned < task_count;) {
      for (std::size_t i = 0; i < wave; ++i, ++spawned) group.spawn(short_task(&done));
      while (group.running() > wave / 2) co_await weft::yield();  // let the wave mostly finish
      const std::size_t live = rt.stats().live_tasks;
      if (live > r.peak_live) r.peak_live = live;
      if (spawned == 10 * wave) r.heap_after_warmup = heap_in_use();
      if (spawned > 10 * wave && heap_in_use() > r.peak_heap) r.peak_heap = heap_in_use();
    }
    co_await group.join();
  });
  EXPECT_EQ(done.load(), task_count);
  return r;
}

TEST(TaskGroupRetention, AMillionTasksWithoutAJoinHoldOnlyTheRunningOnes) {
  for (std::size_t workers : {1u, 2u}) {
    weft::runtime rt{weft::runtime_options{.workers = workers}};
    constexpr std::size_t wave = 1000;
    const retention r = run_unjoined(rt, wave);
    // The root (block_on), at most a wave and a half of children, nothing of the finished ones.
    EXPECT_LE(r.peak_live, 1 + wave + wave / 2) << workers << " workers";
    EXPECT_EQ(rt.stats().live_tasks, 0u);
#ifndef WEFT_TEST_SANITIZED
    // Kept slots and frames would be ~100 bytes a task (100 MB for a million); allow 1 MiB of
    // noise from the allocator and the runtime's own buffers.
    EXPECT_LT(r.peak_heap, r.heap_after_warmup + (1u << 20))
        << workers << " workers: heap grew from " << r.heap_after_warmup << " to " << r.peak_heap;
#endif
  }
}

weft::task<void> fail_soon(std::string message) {
  co_await weft::yield();
  throw std::runtime_error(message);
}

TEST(TaskGroupRetention, AFailureIsReportedByJoinAfterItsTaskWasFreed) {
  weft::runtime rt{weft::testing::paused()};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    group.spawn(fail_soon("first"));
    while (group.running() > 0) co_await weft::yield();
    EXPECT_EQ(rt.stats().live_tasks, 1u);  // only this task: the failed one is gone
    group.spawn(fail_soon("second"));      // the group is failing: cancelled at once
    try {
      co_await group.join();
      ADD_FAILURE() << "join did not rethrow";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "first");
    }
  });
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

TEST(TaskGroupRetention, SlotsAreReusedAcrossManySpawnAndFinishCyclesWithCancels) {
  // A finished slot serves the next spawn; cancel() must reach exactly the running tasks.
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  std::atomic<std::size_t> done{0};
  rt.block_on([&]() -> weft::task<void> {
    for (int round = 0; round < 200; ++round) {
      weft::task_group group;
      for (int i = 0; i < 50; ++i) group.spawn(short_task(&done));
      co_await weft::yield();
      for (int i = 0; i < 50; ++i) group.spawn(short_task(&done));
      if (round % 3 == 0) group.cancel();
      co_await group.join();
      EXPECT_EQ(group.running(), 0u);
    }
  });
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

/// Counts its destruction: a task's by-value parameter.
struct destroyed_counter {
  std::atomic<int>* count;
  explicit destroyed_counter(std::atomic<int>* c) : count(c) {}
  destroyed_counter(destroyed_counter&& o) noexcept : count(std::exchange(o.count, nullptr)) {}
  destroyed_counter(const destroyed_counter&) = delete;
  destroyed_counter& operator=(const destroyed_counter&) = delete;
  destroyed_counter& operator=(destroyed_counter&&) = delete;
  ~destroyed_counter() {
    if (count != nullptr) count->fetch_add(1);
  }
};

weft::task<void> with_parameter(destroyed_counter c) {
  co_await weft::yield();
  (void)c;
}

TEST(TaskGroupRetention, ATasksParametersAreGoneWhenJoinReturns) {
  // Freed as they finish, on whichever worker: still before join() sees them finished, so what a
  // parameter's destructor does (serve's connection count) is done when the joiner goes on.
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  rt.block_on([&]() -> weft::task<void> {
    for (int round = 0; round < 500; ++round) {
      std::atomic<int> destroyed{0};
      {
        weft::task_group group;
        for (int i = 0; i < 8; ++i) group.spawn(with_parameter(destroyed_counter{&destroyed}));
        co_await group.join();
        EXPECT_EQ(destroyed.load(), 8) << "round " << round;
      }
    }
  });
}

}  // namespace
