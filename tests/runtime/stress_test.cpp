// Concurrency stress for TSan: spawn/join wake-ups, fork-join, external spawns, cancellation races.
#include <weft/runtime.hpp>

#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../support/eventually.hpp"

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/config.hpp>
#include <weft/join_handle.hpp>
#include <weft/spawn.hpp>
#include <weft/sync/event.hpp>
#include <weft/task.hpp>
#include <weft/yield.hpp>

namespace {

// Sanitized builds run 5-15x slower; their counts keep each test within ~10 s on two cores while
// still racing thousands of times.
constexpr bool sanitized = WEFT_TSAN || WEFT_ASAN;
constexpr int spawn_join_pairs_per_driver = sanitized ? 100'000 : 500'000;
constexpr int fib_repetitions = sanitized ? 10 : 50;
constexpr int external_threads = 8;
constexpr int spawns_per_external_thread = sanitized ? 5'000 : 20'000;
constexpr int cancel_races = sanitized ? 50'000 : 100'000;
constexpr int cancel_batch = 100;
constexpr int join_cancel_races = sanitized ? 20'000 : 100'000;
constexpr int wake_rounds = sanitized ? 500 : 2'000;
weft::task<int> yield_then_return(int value) {
  co_await weft::yield();  // back to the queue, where the other worker may steal it
  co_return value;
}

weft::task<long long> spawn_and_join(int pairs) {
  long long sum = 0;
  for (int i = 0; i < pairs; ++i) {
    auto child = weft::spawn(yield_then_return(i));
    sum += co_await child;
  }
  co_return sum;
}

weft::task<int> fib(int n) {
  if (n < 2) co_return n;
  auto left = weft::spawn(fib(n - 1));
  const int right = co_await fib(n - 2);
  co_return co_await left + right;
}

weft::task<int> value_of(int value) {
  co_return value;
}

// Holds its worker until `count` of these have started, each on its own worker, or until
// `give_up` is set.
weft::task<void> rendezvous(std::atomic<int>& arrived, int count,
                            const std::atomic<bool>& give_up) {
  arrived.fetch_add(1);
  while (arrived.load() < count && !give_up.load()) std::this_thread::yield();
  co_return;
}

using weft::testing::eventually;

weft::task<int> wait_then_return(weft::event& e, int value) {
  co_await e.wait();
  co_return value;
}

template <class T>
weft::task<T> join(weft::join_handle<T>& handle) {
  co_return co_await handle;
}

struct join_outcomes {
  long long values = 0;
  long long cancelled = 0;
};

weft::task<join_outcomes> join_all(std::vector<weft::join_handle<int>>& handles) {
  join_outcomes outcomes;
  for (auto& h : handles) {
    if (!h.valid()) continue;
    try {
      co_await h;
      ++outcomes.values;
    } catch (const weft::operation_cancelled&) {
      ++outcomes.cancelled;
    }
  }
  co_return outcomes;
}

// Varies how far the other side has got when this thread acts, to reach more interleavings.
void spin(int iterations) {
  for (int i = 0; i < iterations; ++i) weft::detail::cpu_relax();
}

constexpr long long sum_below(long long n) {
  return n * (n - 1) / 2;
}

TEST(Stress, SpawnJoinPairsWakeJoinersAcrossTwoWorkers) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  auto a = rt.spawn(spawn_and_join(spawn_join_pairs_per_driver));
  auto b = rt.spawn(spawn_and_join(spawn_join_pairs_per_driver));
  const long long total = rt.block_on([&]() -> weft::task<long long> {
    const long long first = co_await a;
    co_return first + co_await b;
  });
  EXPECT_EQ(total, 2 * sum_below(spawn_join_pairs_per_driver));
}

TEST(Stress, ATaskSpawnedFromOutsideAlwaysWakesAnIdleWorker) {
  // The first task keeps its worker until the second one runs, which only the other worker can
  // do: if spawning the second lost the wake-up, it stays queued while that worker sleeps.
  int stalled = 0;
  for (int round = 0; round < wake_rounds; ++round) {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    std::atomic<int> arrived{0};
    std::atomic<bool> give_up{false};
    auto first = rt.spawn(rendezvous(arrived, 2, give_up));
    auto second = rt.spawn(rendezvous(arrived, 2, give_up));
    if (!eventually([&] { return arrived.load() == 2; })) {
      ++stalled;
      give_up.store(true);  // lets the first task end, so its worker takes the second
    }
    rt.block_on([&]() -> weft::task<void> {
      co_await first;
      co_await second;
    });
  }
  EXPECT_EQ(stalled, 0);
}

TEST(Stress, ForkJoinFibonacciOnTwoWorkersIsExact) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  for (int i = 0; i < fib_repetitions; ++i) EXPECT_EQ(rt.block_on(fib(20)), 6765);
}

TEST(Stress, ManyPlainThreadsSpawnConcurrently) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  std::atomic<long long> total{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < external_threads; ++t) {
    threads.emplace_back([&rt, &total] {
      std::vector<weft::join_handle<int>> handles;
      handles.reserve(spawns_per_external_thread);
      for (int i = 0; i < spawns_per_external_thread; ++i) handles.push_back(rt.spawn(value_of(i)));
      total.fetch_add(rt.block_on([&handles]() -> weft::task<long long> {
        long long sum = 0;
        for (auto& h : handles) sum += co_await h;
        co_return sum;
      }));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(total.load(), external_threads * sum_below(spawns_per_external_thread));
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

TEST(Stress, CancelRacingCompletionEndsInAValueOrOperationCancelled) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  join_outcomes total;
  for (int done = 0; done < cancel_races; done += cancel_batch) {
    std::vector<weft::join_handle<int>> handles;
    handles.reserve(cancel_batch);
    // The first tasks have finished by the time they are cancelled, the middle ones are
    // running, the last ones have not started.
    for (int i = 0; i < cancel_batch; ++i) handles.push_back(rt.spawn(yield_then_return(1)));
    for (auto& h : handles) h.cancel();
    const join_outcomes outcomes = rt.block_on(join_all(handles));
    total.values += outcomes.values;
    total.cancelled += outcomes.cancelled;
  }
  EXPECT_EQ(total.values + total.cancelled, cancel_races);
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

// Spawns `count` tasks waiting on `release` and, for each, a task joining it; then cancels the
// joiners, early ones already waiting, later ones starting to wait or not started.
void spawn_and_cancel_joiners(weft::runtime& rt, weft::event& release, int count,
                              std::vector<weft::join_handle<int>>& targets,
                              std::vector<weft::join_handle<int>>& joiners) {
  targets.reserve(static_cast<std::size_t>(count));  // joiners refer to these handles
  joiners.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    targets.push_back(rt.spawn(wait_then_return(release, 1)));
    joiners.push_back(rt.spawn(join(targets.back())));
  }
  for (int i = 0; i < count; ++i) {
    spin(i % 16);
    joiners[static_cast<std::size_t>(i)].cancel();
  }
}

// Waits until every task finished; false if one is still running after a bounded wait.
bool all_finish(const std::vector<weft::join_handle<int>>& handles) {
  long polls = 0;
  for (const auto& h : handles) {
    while (!h.is_finished()) {
      if (++polls > weft::testing::poll_limit) return false;
      std::this_thread::yield();
    }
  }
  return true;
}

TEST(Stress, ACancelledJoinerAlwaysStopsWaiting) {
  // The joined tasks cannot finish until `release` is set, which waits for the joiners: a
  // joiner whose cancellation got lost would wait for good.
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  for (int done = 0; done < join_cancel_races; done += cancel_batch) {
    weft::event release;
    std::vector<weft::join_handle<int>> targets, joiners;
    spawn_and_cancel_joiners(rt, release, cancel_batch, targets, joiners);
    const bool stopped = all_finish(joiners);
    release.set();
    const join_outcomes outcomes = rt.block_on(join_all(joiners));
    rt.block_on(join_all(targets));
    ASSERT_TRUE(stopped) << "a cancelled joiner kept waiting";
    ASSERT_EQ(outcomes.cancelled, cancel_batch);
  }
}

TEST(Stress, ACancelledJoinerThrowsEvenWhenTheJoinedTaskFinishesMeanwhile) {
  // Every joiner is cancelled before `release` lets the joined tasks finish, so cancellation
  // comes first and each join must end in operation_cancelled, never in the joined value.
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  long long values = 0;
  for (int done = 0; done < join_cancel_races; done += cancel_batch) {
    weft::event release;
    std::vector<weft::join_handle<int>> targets, joiners;
    spawn_and_cancel_joiners(rt, release, cancel_batch, targets, joiners);
    release.set();  // races the joiners still entering their join
    const join_outcomes outcomes = rt.block_on(join_all(joiners));
    values += outcomes.values;
    EXPECT_EQ(outcomes.values + outcomes.cancelled, cancel_batch);
    rt.block_on(join_all(targets));  // the joined tasks ran on, unaffected
  }
  EXPECT_EQ(values, 0);
}

}  // namespace
