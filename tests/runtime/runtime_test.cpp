// weft::runtime: block_on, spawn/join, options, stats, parking, shutdown, spawn_blocking, fairness.
#include <weft/runtime.hpp>

#include <algorithm>
#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sched.h>
#include <sys/types.h>

#include <gtest/gtest.h>

#include "../support/eventually.hpp"

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/join_handle.hpp>
#include <weft/spawn.hpp>
#include <weft/spawn_blocking.hpp>
#include <weft/sync/event.hpp>
#include <weft/task.hpp>
#include <weft/yield.hpp>

namespace {

using weft::testing::eventually;

weft::task<int> value_of(int value) {
  co_return value;
}

weft::task<int> throw_runtime_error() {
  throw std::runtime_error("task failed");
  co_return 0;
}

template <class T>
weft::task<T> join(weft::join_handle<T>& handle) {
  co_return co_await handle;
}

// What awaiting the handle threw as std::logic_error, or "" if it threw nothing.
template <class T>
weft::task<std::string> logic_error_joining(weft::join_handle<T>& handle) {
  std::string message;
  try {
    co_await handle;
  } catch (const std::logic_error& e) {
    message = e.what();
  }
  co_return message;
}

weft::task<void> wait_then_set(weft::event& go, weft::event& done) {
  co_await go.wait();
  done.set();
}

weft::task<void> wait_on(weft::event& e) {
  co_await e.wait();
}

weft::task<int> wait_then_return(weft::event& e, int value) {
  co_await e.wait();
  co_return value;
}

struct count_destruction {
  std::atomic<int>* destroyed;
  ~count_destruction() { destroyed->fetch_add(1); }
};

// Suspends for good: only runtime shutdown ends it, by destroying its frame.
weft::task<void> hold_forever(std::atomic<int>& started, std::atomic<int>& destroyed) {
  count_destruction guard{&destroyed};
  started.fetch_add(1);
  co_await std::suspend_always{};
}

weft::task<void> hold_until_set(weft::event& e, std::atomic<int>& started,
                                std::atomic<int>& destroyed) {
  count_destruction guard{&destroyed};
  started.fetch_add(1);
  co_await e.wait();
}

weft::task<void> join_forever(weft::join_handle<void> target, std::atomic<int>& started,
                              std::atomic<int>& destroyed) {
  count_destruction guard{&destroyed};
  started.fetch_add(1);
  co_await target;
}

weft::task<void> spawn_and_join_forever(std::atomic<int>& started, std::atomic<int>& destroyed) {
  count_destruction guard{&destroyed};
  auto target = weft::spawn(hold_forever(started, destroyed));
  started.fetch_add(1);
  co_await target;
}

std::vector<pid_t> thread_ids() {
  std::vector<pid_t> ids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    ids.push_back(static_cast<pid_t>(std::stol(entry.path().filename().string())));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

// The scheduler state letter of one of our threads ('R' running, 'S' sleeping, ...).
char thread_state(pid_t tid) {
  std::ifstream stat{"/proc/self/task/" + std::to_string(tid) + "/stat"};
  const std::string line{std::istreambuf_iterator<char>{stat}, std::istreambuf_iterator<char>{}};
  const auto name_end = line.rfind(')');  // the name may itself contain ')'
  return name_end == std::string::npos || name_end + 2 >= line.size() ? '?' : line[name_end + 2];
}

std::vector<std::uint64_t> parks_of(const weft::runtime_stats& stats) {
  std::vector<std::uint64_t> parks;
  for (const auto& w : stats.workers) parks.push_back(w.parks);
  return parks;
}

// Holds its worker until `count` of these have started, each on its own worker, or until
// `give_up` is set.
weft::task<void> rendezvous(std::atomic<int>& arrived, int count,
                            const std::atomic<bool>& give_up) {
  arrived.fetch_add(1);
  while (arrived.load() < count && !give_up.load()) std::this_thread::yield();
  co_return;
}

weft::task<void> burn_cpu(std::atomic<std::uint64_t>& sink) {
  std::uint64_t x = 1;
  for (int i = 0; i < 2'000; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  sink.fetch_add(x, std::memory_order_relaxed);
  co_return;
}

weft::task<void> spawn_cpu_bound(int count, std::atomic<std::uint64_t>& sink) {
  std::vector<weft::join_handle<void>> handles;
  handles.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) handles.push_back(weft::spawn(burn_cpu(sink)));
  for (auto& h : handles) co_await h;
}

std::uint64_t total_steals(const weft::runtime_stats& stats) {
  std::uint64_t steals = 0;
  for (const auto& w : stats.workers) steals += w.steals;
  return steals;
}

// ---------------------------------------------------------------------------------------------
// block_on

TEST(RuntimeBlockOn, ReturnsTheTaskValue) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  EXPECT_EQ(rt.block_on(value_of(42)), 42);
}

TEST(RuntimeBlockOn, RethrowsTheTaskException) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  EXPECT_THROW(rt.block_on(throw_runtime_error()), std::runtime_error);
}

TEST(RuntimeBlockOn, RunsATaskReturningCallableAndKeepsItsCapturesAlive) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  auto value = std::make_shared<int>(9);
  const int result = rt.block_on([value]() -> weft::task<int> {
    co_await weft::yield();
    co_return *value;
  });
  EXPECT_EQ(result, 9);
}

TEST(RuntimeBlockOn, ThrowsLogicErrorForAnEmptyTask) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::task<int> empty;
  EXPECT_THROW(rt.block_on(std::move(empty)), std::logic_error);
}

TEST(RuntimeBlockOn, ThrowsLogicErrorOnAWorkerThread) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([&rt]() -> weft::task<void> {
    EXPECT_THROW(rt.block_on(value_of(1)), std::logic_error);
    co_return;
  });
}

TEST(RuntimeBlockOn, WeftBlockOnRunsOnTheDefaultRuntime) {
  EXPECT_EQ(weft::block_on(value_of(5)), 5);
  EXPECT_TRUE(weft::block_on(
      []() -> weft::task<bool> { co_return weft::default_runtime().on_worker_thread(); }));
}

TEST(RuntimeBlockOn, ThrowsOperationCancelledWhenTheRuntimeShutsDownFirst) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  std::atomic<int> started{0}, destroyed{0};
  std::exception_ptr error;
  std::thread blocked{[&] {
    try {
      rt.block_on(hold_forever(started, destroyed));
    } catch (...) {
      error = std::current_exception();
    }
  }};
  ASSERT_TRUE(eventually([&] { return started.load() == 1; }));
  rt.shutdown();
  blocked.join();
  ASSERT_TRUE(error);
  EXPECT_THROW(std::rethrow_exception(error), weft::operation_cancelled);
  EXPECT_EQ(destroyed.load(), 1);
}

// ---------------------------------------------------------------------------------------------
// Options and introspection

TEST(RuntimeOptions, ZeroWorkersMeansOnePerAvailableCpu) {
  cpu_set_t cpus;
  ASSERT_EQ(sched_getaffinity(0, sizeof cpus, &cpus), 0);
  weft::runtime rt{weft::runtime_options{.workers = 0}};
  EXPECT_GE(rt.worker_count(), 1u);
  EXPECT_EQ(rt.worker_count(), static_cast<std::size_t>(CPU_COUNT(&cpus)));
}

TEST(RuntimeOptions, WorkerCountIsTheNumberAskedFor) {
  weft::runtime rt{weft::runtime_options{.workers = 3}};
  EXPECT_EQ(rt.worker_count(), 3u);
  EXPECT_EQ(rt.stats().workers.size(), 3u);
}

TEST(RuntimeOptions, RejectsMoreWorkersThanSupported) {
  EXPECT_THROW(weft::runtime{weft::runtime_options{.workers = 70'000}}, std::invalid_argument);
}

TEST(RuntimeOptions, RejectsZeroMaxBlockingThreads) {
  EXPECT_THROW((weft::runtime{weft::runtime_options{.workers = 1, .max_blocking_threads = 0}}),
               std::invalid_argument);
}

TEST(RuntimeOptions, RejectsAZeroGlobalQueueInterval) {
  EXPECT_THROW((weft::runtime{weft::runtime_options{.workers = 1, .global_queue_interval = 0}}),
               std::invalid_argument);
}

TEST(RuntimeIntrospection, KnowsWhetherTheCallerIsOneOfItsWorkers) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::runtime other{weft::runtime_options{.workers = 1}};
  EXPECT_FALSE(rt.on_worker_thread());
  EXPECT_TRUE(rt.block_on([&rt]() -> weft::task<bool> { co_return rt.on_worker_thread(); }));
  EXPECT_FALSE(other.block_on([&rt]() -> weft::task<bool> { co_return rt.on_worker_thread(); }));
}

// ---------------------------------------------------------------------------------------------
// spawn and join_handle

TEST(RuntimeSpawn, SpawnFromOutsideReturnsAHandleThatJoinsTheValue) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  auto handle = rt.spawn(value_of(4));
  EXPECT_EQ(rt.block_on(join(handle)), 4);
}

TEST(RuntimeSpawn, SpawnFromInsideATaskRunsOnTheSameRuntime) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  rt.block_on([&rt]() -> weft::task<void> {
    auto handle = weft::spawn([&rt]() -> weft::task<bool> { co_return rt.on_worker_thread(); });
    EXPECT_TRUE(co_await handle);
  });
}

TEST(RuntimeSpawn, JoinRethrowsTheSpawnedTasksException) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  rt.block_on([]() -> weft::task<void> {
    auto handle = weft::spawn(throw_runtime_error());
    EXPECT_THROW(co_await handle, std::runtime_error);
  });
}

TEST(RuntimeSpawn, AwaitingAHandleTwiceThrowsLogicErrorNamingJoinHandle) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([]() -> weft::task<void> {
    auto handle = weft::spawn(value_of(1));
    EXPECT_EQ(co_await handle, 1);
    EXPECT_FALSE(handle.valid());
    const std::string message = co_await logic_error_joining(handle);
    EXPECT_NE(message.find("weft::join_handle"), std::string::npos) << message;
  });
}

TEST(RuntimeSpawn, AwaitingAnEmptyHandleThrowsLogicErrorNamingJoinHandle) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([]() -> weft::task<void> {
    weft::join_handle<int> empty;
    const std::string message = co_await logic_error_joining(empty);
    EXPECT_NE(message.find("weft::join_handle"), std::string::npos) << message;
  });
}

TEST(RuntimeSpawn, DroppingTheHandleLetsTheTaskRunToCompletion) {
  weft::event go, done;
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  { auto dropped = rt.spawn(wait_then_set(go, done)); }
  go.set();
  rt.block_on(wait_on(done));
  EXPECT_TRUE(done.is_set());
}

TEST(RuntimeSpawn, DetachLeavesTheHandleEmptyAndTheTaskRunning) {
  weft::event go, done;
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  auto handle = rt.spawn(wait_then_set(go, done));
  handle.detach();
  EXPECT_FALSE(handle.valid());
  go.set();
  rt.block_on(wait_on(done));
  EXPECT_TRUE(done.is_set());
}

TEST(RuntimeSpawn, IsFinishedTurnsTrueWhenTheTaskCompletes) {
  weft::event go;
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  auto handle = rt.spawn(wait_on(go));
  EXPECT_FALSE(handle.is_finished());
  go.set();
  EXPECT_TRUE(eventually([&] { return handle.is_finished(); }));
  rt.block_on(join(handle));
}

TEST(RuntimeSpawn, AHandleCanBeJoinedFromATaskOfAnotherRuntime) {
  weft::event go;
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::runtime other{weft::runtime_options{.workers = 1}};
  auto handle = rt.spawn(wait_then_return(go, 6));
  auto joiner = other.spawn(join(handle));
  go.set();
  EXPECT_EQ(other.block_on(join(joiner)), 6);
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

TEST(RuntimeSpawn, WeftSpawnOutsideARuntimeThrowsLogicError) {
  EXPECT_THROW((void)weft::spawn(value_of(1)), std::logic_error);
}

TEST(RuntimeSpawn, SpawningAnEmptyTaskThrowsLogicError) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::task<int> empty;
  EXPECT_THROW((void)rt.spawn(std::move(empty)), std::logic_error);
}

// ---------------------------------------------------------------------------------------------
// stats

TEST(RuntimeStats, TasksRunCountsEverySpawnedTask) {
  constexpr int spawned = 1'000;
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  std::vector<weft::join_handle<int>> handles;
  for (int i = 0; i < spawned; ++i) handles.push_back(rt.spawn(value_of(i)));
  const long long sum = rt.block_on([&handles]() -> weft::task<long long> {
    long long total = 0;
    for (auto& h : handles) total += co_await h;
    co_return total;
  });
  EXPECT_EQ(sum, static_cast<long long>(spawned) * (spawned - 1) / 2);
  std::uint64_t run = 0;
  for (const auto& w : rt.stats().workers) run += w.tasks_run;
  EXPECT_GE(run, static_cast<std::uint64_t>(spawned));
}

TEST(RuntimeStats, LiveTasksCountsSpawnedTasksUntilTheyAreDestroyed) {
  weft::event go;
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  std::vector<weft::join_handle<void>> handles;
  for (int i = 0; i < 10; ++i) handles.push_back(rt.spawn(wait_on(go)));
  EXPECT_EQ(rt.stats().live_tasks, 10u);
  go.set();
  rt.block_on([&handles]() -> weft::task<void> {
    for (auto& h : handles) co_await h;
  });
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

TEST(RuntimeStats, AnIdleWorkerStealsFromABusyOne) {
  // Stealing needs the idle worker to look while the spawner's queue holds tasks: likely on every
  // attempt, certain on none, so a bounded number of attempts.
  constexpr int attempts = 50;
  std::uint64_t steals = 0;
  std::atomic<std::uint64_t> sink{0};
  for (int attempt = 0; attempt < attempts && steals == 0; ++attempt) {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    rt.block_on(spawn_cpu_bound(10'000, sink));
    steals = total_steals(rt.stats());
  }
  EXPECT_GT(steals, 0u);
}

// ---------------------------------------------------------------------------------------------
// Parking

TEST(RuntimeParking, IdleWorkersParkAndSleepInTheKernel) {
  const auto before = thread_ids();
  // Without the stall watchdog, the new threads are the workers.
  weft::runtime rt{weft::runtime_options{.workers = 2, .stall_threshold = std::chrono::milliseconds{0}}};
  const auto after = thread_ids();
  std::vector<pid_t> workers;
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(),
                      std::back_inserter(workers));
  ASSERT_EQ(workers.size(), 2u);

  // Both workers wake up for this (each holds one task until the other arrives) ...
  const auto parks_before = parks_of(rt.stats());
  std::atomic<int> arrived{0};
  std::atomic<bool> give_up{false};
  auto first = rt.spawn(rendezvous(arrived, 2, give_up));
  auto second = rt.spawn(rendezvous(arrived, 2, give_up));
  const bool both_ran = eventually([&] { return arrived.load() == 2; });
  give_up.store(true);
  EXPECT_TRUE(both_ran) << "the second task never ran: the idle worker was not woken for it";
  rt.block_on([&]() -> weft::task<void> {
    co_await first;
    co_await second;
  });

  // ... and once it is done, each parks again and sleeps, using no CPU.
  EXPECT_TRUE(eventually([&] {
    const auto parks = parks_of(rt.stats());
    for (std::size_t i = 0; i < parks.size(); ++i) {
      if (parks[i] <= parks_before[i]) return false;
    }
    return true;
  }));
  for (const pid_t tid : workers) {
    EXPECT_TRUE(eventually([&] { return thread_state(tid) == 'S'; }))
        << "worker thread " << tid << " is in state " << thread_state(tid);
  }
}

// ---------------------------------------------------------------------------------------------
// spawn_blocking

TEST(SpawnBlocking, ReturnsTheFunctionsValue) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([]() -> weft::task<void> {
    EXPECT_EQ(co_await weft::spawn_blocking([] { return 6 * 7; }), 42);
  });
}

TEST(SpawnBlocking, RethrowsTheFunctionsException) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([]() -> weft::task<void> {
    auto fails = [] {
      throw std::runtime_error("blocking call failed");
      return 0;
    };
    EXPECT_THROW(co_await weft::spawn_blocking(fails), std::runtime_error);
  });
}

TEST(SpawnBlocking, RunsOnAThreadThatIsNotAWorker) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([&rt]() -> weft::task<void> {
    const auto worker = std::this_thread::get_id();
    auto where = [&rt] {
      return std::make_pair(std::this_thread::get_id(), rt.on_worker_thread());
    };
    const auto [blocking_thread, on_worker] = co_await weft::spawn_blocking(where);
    EXPECT_NE(blocking_thread, worker);
    EXPECT_FALSE(on_worker);
  });
}

TEST(SpawnBlocking, ManyConcurrentCallsAllComplete) {
  constexpr int calls = 200;
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  const long long sum = rt.block_on([]() -> weft::task<long long> {
    std::vector<weft::join_handle<int>> handles;
    for (int i = 0; i < calls; ++i) {
      handles.push_back(weft::spawn([i]() -> weft::task<int> {
        co_return co_await weft::spawn_blocking([i] { return i; });
      }));
    }
    long long total = 0;
    for (auto& h : handles) total += co_await h;
    co_return total;
  });
  EXPECT_EQ(sum, static_cast<long long>(calls) * (calls - 1) / 2);
}

TEST(SpawnBlocking, NeverUsesMoreThreadsThanMaxBlockingThreads) {
  constexpr int calls = 64;
  weft::runtime rt{weft::runtime_options{.workers = 2, .max_blocking_threads = 2}};
  std::mutex mutex;
  std::set<std::thread::id> threads;
  rt.block_on([&]() -> weft::task<void> {
    std::vector<weft::join_handle<void>> handles;
    for (int i = 0; i < calls; ++i) {
      handles.push_back(weft::spawn([&]() -> weft::task<void> {
        co_await weft::spawn_blocking([&] {
          const std::lock_guard lock{mutex};
          threads.insert(std::this_thread::get_id());
        });
      }));
    }
    for (auto& h : handles) co_await h;
  });
  EXPECT_GE(threads.size(), 1u);
  EXPECT_LE(threads.size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Fairness. Each of these hangs (until meson's timeout) if the scheduler starves a task.

weft::task<void> yield_until(const std::atomic<bool>& flag, std::atomic<int>& yields) {
  while (!flag.load()) {
    yields.fetch_add(1);
    co_await weft::yield();
  }
}

weft::task<void> raise(std::atomic<bool>& flag) {
  flag.store(true);
  co_return;
}

TEST(RuntimeFairness, ATaskYieldingInALoopLetsATaskSpawnedAfterItRun) {
  std::atomic<bool> flag{false};
  std::atomic<int> yields{0};
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  auto spinner = rt.spawn(yield_until(flag, yields));
  ASSERT_TRUE(eventually([&] { return yields.load() > 0; }));  // it is yielding already
  auto raiser = rt.spawn(raise(flag));
  rt.block_on([&]() -> weft::task<void> {
    co_await raiser;
    co_await spinner;
  });
  EXPECT_TRUE(flag.load());
}

weft::task<void> append(std::vector<int>& order, int id) {
  order.push_back(id);
  co_return;
}

TEST(RuntimeFairness, YieldResumesOnlyAfterEveryTaskThatWasReadyBefore) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  std::vector<int> order;
  rt.block_on([&order]() -> weft::task<void> {
    std::vector<weft::join_handle<void>> ready;
    for (int id = 1; id <= 3; ++id) ready.push_back(weft::spawn(append(order, id)));
    co_await weft::yield();
    order.push_back(0);
    for (auto& h : ready) co_await h;
  });
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(order.back(), 0);
}

// Passes one token back and forth with `partner`: each hand-off wakes the other task into the
// LIFO slot, so without the LIFO cap these two would keep the worker forever.
weft::task<void> ping_pong(const std::atomic<bool>& stop, weft::event& mine, weft::event& theirs,
                           bool serve) {
  if (serve) theirs.set();
  for (;;) {
    co_await mine.wait();
    mine.reset();
    theirs.set();
    if (stop.load()) co_return;
  }
}

TEST(RuntimeFairness, TwoTasksWakingEachOtherDoNotStarveAQueuedTask) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([]() -> weft::task<void> {
    std::atomic<bool> stop{false};
    weft::event ping, pong;
    auto a = weft::spawn(ping_pong(stop, ping, pong, true));
    auto b = weft::spawn(ping_pong(stop, pong, ping, false));
    co_await weft::yield();  // queued behind a and b, which start waking each other
    stop.store(true);
    co_await a;
    co_await b;
  });
}

weft::task<void> respawn_until(const std::atomic<bool>& stop, std::atomic<long>& runs) {
  runs.fetch_add(1);
  if (!stop.load()) weft::spawn(respawn_until(stop, runs)).detach();
  co_return;
}

TEST(RuntimeFairness, ATaskRespawningItselfDoesNotStarveTheInjectionQueue) {
  std::atomic<bool> stop{false};
  std::atomic<long> runs{0};
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.spawn(respawn_until(stop, runs)).detach();
  ASSERT_TRUE(eventually([&] { return runs.load() > 1'000; }));  // the local chain is running
  rt.block_on(raise(stop));  // arrives through the injection queue
  EXPECT_TRUE(stop.load());
}

// ---------------------------------------------------------------------------------------------
// Shutdown

TEST(RuntimeShutdown, DestroysUnfinishedTasksRunningTheirDestructors) {
  constexpr int tasks = 100;
  std::atomic<int> started{0}, destroyed{0};
  {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    for (int i = 0; i < tasks; ++i) rt.spawn(hold_forever(started, destroyed)).detach();
    ASSERT_TRUE(eventually([&] { return started.load() == tasks; }));
    EXPECT_EQ(destroyed.load(), 0);
  }
  EXPECT_EQ(destroyed.load(), tasks);
}

TEST(RuntimeShutdown, DestroysAJoinerAndTheTaskItJoinsWhenTheJoinerHoldsTheHandle) {
  std::atomic<int> started{0}, destroyed{0};
  {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    rt.spawn(spawn_and_join_forever(started, destroyed)).detach();
    ASSERT_TRUE(eventually([&] { return started.load() == 2; }));
  }
  EXPECT_EQ(destroyed.load(), 2);
}

TEST(RuntimeShutdown, DestroysAJoinerAndTheTaskItJoinsWhenBothCameFromOutside) {
  std::atomic<int> started{0}, destroyed{0};
  {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    auto target = rt.spawn(hold_forever(started, destroyed));
    rt.spawn(join_forever(std::move(target), started, destroyed)).detach();
    ASSERT_TRUE(eventually([&] { return started.load() == 2; }));
  }
  EXPECT_EQ(destroyed.load(), 2);
}

TEST(RuntimeShutdown, AHandleCanBeDestroyedAfterTheRuntimeIsGone) {
  std::atomic<int> started{0}, destroyed{0};
  weft::join_handle<void> unfinished;
  weft::join_handle<int> finished;
  {
    weft::runtime rt{weft::runtime_options{.workers = 1}};
    unfinished = rt.spawn(hold_forever(started, destroyed));
    finished = rt.spawn(value_of(3));
    ASSERT_TRUE(eventually([&] { return started.load() == 1 && finished.is_finished(); }));
  }
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_FALSE(unfinished.is_finished());
  unfinished = {};  // frees what the runtime left for the handle (ASan watches)
  finished = {};
  EXPECT_FALSE(unfinished.valid());
}

TEST(RuntimeShutdown, JoiningATaskItDestroyedThrowsOperationCancelled) {
  std::atomic<int> started{0}, destroyed{0};
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  auto handle = rt.spawn(hold_forever(started, destroyed));
  ASSERT_TRUE(eventually([&] { return started.load() == 1; }));
  rt.shutdown();
  weft::runtime other{weft::runtime_options{.workers = 1}};
  EXPECT_THROW(other.block_on(join(handle)), weft::operation_cancelled);
}

TEST(RuntimeShutdown, ShuttingDownTwiceIsHarmless) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  EXPECT_EQ(rt.block_on(value_of(1)), 1);
  rt.shutdown();
  rt.shutdown();
}

TEST(RuntimeShutdown, ShutdownOnOneOfItsWorkersThrowsLogicError) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([&rt]() -> weft::task<void> {
    EXPECT_THROW(rt.shutdown(), std::logic_error);
    co_return;
  });
}

TEST(RuntimeShutdown, SpawnAfterShutdownThrowsLogicError) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.shutdown();
  EXPECT_THROW((void)rt.spawn(value_of(1)), std::logic_error);
}

TEST(RuntimeShutdown, BlockOnAfterShutdownThrowsLogicError) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.shutdown();
  EXPECT_THROW(rt.block_on(value_of(1)), std::logic_error);
}

TEST(RuntimeShutdown, DestroysTasksWaitingOnAnEventAndLeavesTheEventWithoutWaiters) {
  constexpr int tasks = 100;
  weft::event never;  // outlives the runtime: its destructor must find no waiter left behind
  std::atomic<int> started{0}, destroyed{0};
  {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    for (int i = 0; i < tasks; ++i) rt.spawn(hold_until_set(never, started, destroyed)).detach();
    ASSERT_TRUE(eventually([&] { return started.load() == tasks; }));
  }
  EXPECT_EQ(destroyed.load(), tasks);
}

}  // namespace
