// spawn_many, yield_many, chained_spawn, fork_join_fib and parallel_work, exactly as
// ../shared/WORKLOADS.md and ../shared/peers/README.md define them.
#include "runtime_workloads.hpp"

#include <atomic>
#include <chrono>

#include <weft/spawn.hpp>
#include <weft/sync/event.hpp>
#include <weft/yield.hpp>

namespace weft::bench {

namespace {

using steady = std::chrono::steady_clock;

double since(steady::time_point t0) {
  return std::chrono::duration<double>(steady::now() - t0).count();
}

/// The peers' "latch": the task that takes the count to zero signals the event.
struct latch_event {
  explicit latch_event(std::int64_t n) : remaining(n) {}
  void count_down() {
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) done.set();
  }
  std::atomic<std::int64_t> remaining;
  weft::event done;
};

/// The shape of spawn_many, yield_many and parallel_work: the root spawns `count` detached tasks
/// made by `make(i)`, each counting `l` down at its end, and times until the last one did.
/// `make` is taken by value, so it lives in this frame.
template <class Make>
weft::task<double> time_fan_out(std::int64_t count, latch_event* l, Make make) {
  const auto t0 = steady::now();
  for (std::int64_t i = 0; i < count; ++i) weft::spawn(make(i)).detach();
  co_await l->done.wait();
  co_return since(t0);
}

// spawn_many: one task spawns 1,000,000 tasks that only count the latch down.
constexpr std::int64_t spawn_many_tasks = 1'000'000;

weft::task<void> count_down_once(latch_event* l) {
  l->count_down();
  co_return;
}

workload_result run_spawn_many(weft::runtime& rt) {
  latch_event l{spawn_many_tasks};
  auto make = [l = &l](std::int64_t) { return count_down_once(l); };
  return {spawn_many_tasks, rt.block_on(time_fan_out(spawn_many_tasks, &l, make))};
}

// yield_many: 200 tasks each yield 1,000 times.
constexpr std::int64_t yield_tasks = 200;
constexpr std::int64_t yields_per_task = 1'000;

weft::task<void> yield_then_count_down(latch_event* l) {
  for (std::int64_t i = 0; i < yields_per_task; ++i) co_await weft::yield();
  l->count_down();
}

workload_result run_yield_many(weft::runtime& rt) {
  latch_event l{yield_tasks};
  auto make = [l = &l](std::int64_t) { return yield_then_count_down(l); };
  return {yield_tasks * yields_per_task, rt.block_on(time_fan_out(yield_tasks, &l, make))};
}

// chained_spawn: 1,000 chains of 1,000 tasks, each spawning the next; the last signals.
constexpr int chain_length = 1'000;
constexpr int chains = 1'000;

weft::task<void> link(int k, weft::event* done) {
  if (k == 0) {
    done->set();
  } else {
    weft::spawn(link(k - 1, done)).detach();
  }
  co_return;
}

weft::task<double> chained_spawn_root(weft::event* done) {
  const auto t0 = steady::now();
  for (int c = 0; c < chains; ++c) {
    done->reset();
    weft::spawn(link(chain_length - 1, done)).detach();
    co_await done->wait();
  }
  co_return since(t0);
}

workload_result run_chained_spawn(weft::runtime& rt) {
  weft::event done;
  return {std::uint64_t{chains} * chain_length, rt.block_on(chained_spawn_root(&done))};
}

// fork_join_fib: fib(27), spawning fib(n-1) and awaiting fib(n-2) inline at every n >= 2.
constexpr int fib_n = 27;
constexpr std::uint64_t fib_27 = 196'418;
constexpr std::uint64_t fib_spawned = 317'810;  // fib(28) - 1

struct fib_timing {
  std::uint64_t value;
  double seconds;
};

weft::task<fib_timing> fib_root() {
  const auto t0 = steady::now();
  const auto value = co_await spawning_fib(fib_n);
  co_return fib_timing{value, since(t0)};
}

workload_result run_fork_join_fib(weft::runtime& rt) {
  const auto r = rt.block_on(fib_root());
  return {fib_spawned, r.seconds, r.value == fib_27};
}

// parallel_work: 100,000 tasks of 10,000 splitmix64 rounds each.
constexpr std::int64_t parallel_tasks = 100'000;
constexpr int parallel_rounds = 10'000;

weft::task<void> crunch(std::uint64_t index, std::atomic<std::uint64_t>* sink, latch_event* l) {
  std::uint64_t state = index;
  std::uint64_t acc = 0;
  for (int i = 0; i < parallel_rounds; ++i) acc ^= splitmix64(state);
  sink->fetch_xor(acc, std::memory_order_relaxed);  // keeps the work from being optimised away
  l->count_down();
  co_return;
}

workload_result run_parallel_work(weft::runtime& rt) {
  std::atomic<std::uint64_t> sink{0};
  latch_event l{parallel_tasks};
  auto make = [sink = &sink, l = &l](std::int64_t i) {
    return crunch(static_cast<std::uint64_t>(i), sink, l);
  };
  return {parallel_tasks, rt.block_on(time_fan_out(parallel_tasks, &l, make))};
}

}  // namespace

weft::task<std::uint64_t> spawning_fib(int n) {
  if (n < 2) co_return static_cast<std::uint64_t>(n);
  auto left = weft::spawn(spawning_fib(n - 1));
  const auto right = co_await spawning_fib(n - 2);
  co_return co_await left + right;
}

const std::vector<workload>& runtime_workloads() {
  static const std::vector<workload> all{
      {"spawn_many", "tasks", &run_spawn_many},
      {"yield_many", "yields", &run_yield_many},
      {"chained_spawn", "spawns", &run_chained_spawn},
      {"fork_join_fib", "tasks", &run_fork_join_fib},
      {"parallel_work", "tasks", &run_parallel_work},
  };
  return all;
}

const workload* find_workload(std::string_view name) {
  for (const auto& w : runtime_workloads()) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

}  // namespace weft::bench
