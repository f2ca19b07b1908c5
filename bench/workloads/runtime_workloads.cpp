// spawn_many, yield_many, chained_spawn, fork_join_fib, parallel_work and timers exactly as
// docs/workloads.md defines them; timer_lateness is weft's own.
#include "runtime_workloads.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include <sys/resource.h>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/join_handle.hpp>
#include <weft/spawn.hpp>
#include <weft/sync/channel.hpp>
#include <weft/sync/event.hpp>
#include <weft/time/clock.hpp>
#include <weft/time/sleep.hpp>
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

// timers: 1,000,000 sleepers of [0, 100] ms, the durations drawn by the root as it spawns. Each
// sleeper also records how late it woke, by the runtime's clock (so exactly 0 in paused time).
constexpr std::int64_t timer_tasks = 1'000'000;
constexpr std::uint64_t timer_max_us = 100'000;
constexpr std::uint64_t timer_seed = 42;

weft::task<void> sleep_then_count_down(std::chrono::microseconds d, latch_event* l) {
  co_await weft::sleep_for(d);
  l->count_down();
}

weft::task<void> sleep_measure_count_down(std::chrono::microseconds d, std::int64_t* lateness_ns,
                                          latch_event* l) {
  // The deadline sleep_for(d) would compute, made explicit to measure the wake-up against it.
  const auto deadline = weft::clock::now() + d;
  co_await weft::sleep_until(deadline);
  *lateness_ns = (weft::clock::now() - deadline).count();
  l->count_down();
}

/// A sleep never ends early (sleep.hpp's promise): a negative lateness is a wrong result.
bool none_early(const std::vector<std::int64_t>& lateness_ns) {
  return std::ranges::none_of(lateness_ns, [](std::int64_t ns) { return ns < 0; });
}

// 1 in 16 sleepers measures its lateness: 62,500 samples give a steady p99, and the other 15/16
// do exactly what the peers' sleepers do (measuring every one would add a million clock reads
// and scattered stores that the peers' runs do not pay).
constexpr std::int64_t timer_sample_every = 16;

workload_result run_timers(weft::runtime& rt) {
  auto r = run_sleepers(rt, timer_tasks, timer_sample_every);
  const bool valid = none_early(r.lateness_ns);
  return {timer_tasks, r.seconds, valid, lateness_summary(std::move(r.lateness_ns))};
}

// timer_lateness: wake-up lateness under light load. 1,000 tasks each sleep 20 times in a row,
// each sleep uniform on [1, 20] ms (in whole microseconds), so wake-ups are sparse.
constexpr std::int64_t lateness_tasks = 1'000;
constexpr std::int64_t lateness_sleeps = 20;
constexpr std::uint64_t lateness_seed = 7;
constexpr std::uint64_t lateness_min_us = 1'000;
constexpr std::uint64_t lateness_max_us = 20'000;

weft::task<void> sleep_in_turn(const std::int64_t* durations_us, std::int64_t* lateness_ns,
                               latch_event* l) {
  for (std::int64_t k = 0; k < lateness_sleeps; ++k) {
    // Each deadline counts from the previous wake-up, so lateness does not accumulate.
    const auto deadline = weft::clock::now() + std::chrono::microseconds{durations_us[k]};
    co_await weft::sleep_until(deadline);
    lateness_ns[k] = (weft::clock::now() - deadline).count();
  }
  l->count_down();
}

workload_result run_timer_lateness(weft::runtime& rt) {
  constexpr std::int64_t wakes = lateness_tasks * lateness_sleeps;
  // Drawn before the clock starts, task after task, so each task's sleeps are fixed whatever
  // order the tasks run in.
  std::vector<std::int64_t> durations_us(wakes);
  std::uint64_t state = lateness_seed;
  for (auto& d : durations_us) {
    const std::uint64_t us =
        lateness_min_us + splitmix64(state) % (lateness_max_us - lateness_min_us + 1);
    d = static_cast<std::int64_t>(us);
  }
  std::vector<std::int64_t> lateness_ns(wakes);  // one slot per wake-up: no lock, no allocation
  latch_event l{lateness_tasks};
  auto make = [durations = durations_us.data(), late = lateness_ns.data(), l = &l](std::int64_t i) {
    return sleep_in_turn(durations + i * lateness_sleeps, late + i * lateness_sleeps, l);
  };
  const double seconds = rt.block_on(time_fan_out(lateness_tasks, &l, make));
  const bool valid = none_early(lateness_ns);
  return {wakes, seconds, valid, lateness_summary(std::move(lateness_ns))};
}

// ping_pong: 100 pairs; each pair has two channels of capacity 1. The pinger sends i on ping and
// receives it back on pong, 10,000 times; the ponger echoes. Done when all 200 tasks finished.
constexpr std::int64_t ping_pong_pairs = 100;
constexpr std::int64_t ping_pong_rounds = 10'000;

struct ping_pong_pair {
  weft::channel<std::uint32_t> ping{1};
  weft::channel<std::uint32_t> pong{1};
  bool mismatch = false;
};

weft::task<void> pinger(ping_pong_pair* p, latch_event* l) {
  for (std::uint32_t i = 0; i < ping_pong_rounds; ++i) {
    co_await p->ping.send(i);
    const auto back = co_await p->pong.recv();
    if (!back || *back != i) p->mismatch = true;
  }
  l->count_down();
}

weft::task<void> ponger(ping_pong_pair* p, latch_event* l) {
  for (std::int64_t i = 0; i < ping_pong_rounds; ++i) {
    const auto v = co_await p->ping.recv();
    if (!v) break;
    co_await p->pong.send(*v);
  }
  l->count_down();
}

workload_result run_ping_pong(weft::runtime& rt) {
  std::vector<std::unique_ptr<ping_pong_pair>> pairs;
  for (std::int64_t i = 0; i < ping_pong_pairs; ++i)
    pairs.push_back(std::make_unique<ping_pong_pair>());
  latch_event l{2 * ping_pong_pairs};
  auto make = [&pairs, l = &l](std::int64_t i) {
    auto* p = pairs[static_cast<std::size_t>(i / 2)].get();
    return i % 2 == 0 ? pinger(p, l) : ponger(p, l);
  };
  const double seconds = rt.block_on(time_fan_out(2 * ping_pong_pairs, &l, make));
  bool valid = true;
  for (const auto& p : pairs) valid = valid && !p->mismatch;
  return {ping_pong_pairs * ping_pong_rounds, seconds, valid};
}

// idle_timers: 1,000 tasks sleep an hour while the runtime has nothing else to do for a second of
// real time; what counts is the process's CPU time meanwhile (the target: none measurable).
constexpr std::int64_t idle_sleepers = 1'000;
constexpr auto idle_window = std::chrono::seconds{1};

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(u.ru_utime) + tv(u.ru_stime);
}

weft::task<void> sleep_an_hour() {
  co_await weft::sleep_for(std::chrono::hours{1});
}

weft::task<workload_result> idle_with_sleepers() {
  std::vector<weft::join_handle<void>> sleepers;
  sleepers.reserve(idle_sleepers);
  for (std::int64_t i = 0; i < idle_sleepers; ++i) sleepers.push_back(weft::spawn(sleep_an_hour()));
  co_await weft::sleep_for(std::chrono::milliseconds{20});  // every sleeper has armed its timer
  const double cpu0 = process_cpu_seconds();
  const auto t0 = steady::now();
  co_await weft::sleep_for(idle_window);
  const double cpu = process_cpu_seconds() - cpu0;
  const double seconds = since(t0);
  for (auto& h : sleepers) h.cancel();
  for (auto& h : sleepers) {
    try {
      co_await std::move(h);
    } catch (const weft::operation_cancelled&) {
    }
  }
  workload_result r{idle_sleepers, seconds};
  r.idle_cpu_seconds = cpu;
  co_return r;
}

workload_result run_idle_timers(weft::runtime& rt) {
  return rt.block_on(idle_with_sleepers());
}

// suspended_tasks: 1,000,000 tasks suspended at once (on one event), then released: its peak
// RSS over a million is the memory a suspended task costs. dump_tasks and dump_pause: 100,000
// suspended tasks and one runtime::dump_tasks() over them, its time and how long it held the
// workers.
constexpr std::int64_t suspended_count = 1'000'000;
constexpr std::int64_t dumped_count = 100'000;

weft::task<void> wait_then_count_down(std::atomic<std::int64_t>* arrived, weft::event* go,
                                      latch_event* l) {
  arrived->fetch_add(1, std::memory_order_relaxed);
  co_await go->wait();
  l->count_down();
}

/// Spawns `n` tasks that wait on `go`, and returns once every one of them is suspended.
weft::task<void> park_tasks(std::int64_t n, std::atomic<std::int64_t>* arrived, weft::event* go,
                            latch_event* l) {
  for (std::int64_t i = 0; i < n; ++i) weft::spawn(wait_then_count_down(arrived, go, l)).detach();
  while (arrived->load(std::memory_order_relaxed) < n) co_await weft::yield();
}

weft::task<void> release_and_wait(weft::event* go, latch_event* l) {
  go->set();
  co_await l->done.wait();
}

workload_result run_suspended_tasks(weft::runtime& rt) {
  std::atomic<std::int64_t> arrived{0};
  weft::event go;
  latch_event l{suspended_count};
  const auto t0 = steady::now();
  rt.block_on(park_tasks(suspended_count, &arrived, &go, &l));
  rt.block_on(release_and_wait(&go, &l));
  return {suspended_count, since(t0)};
}

workload_result run_dump(weft::runtime& rt, bool pause_only) {
  std::atomic<std::int64_t> arrived{0};
  weft::event go;
  latch_event l{dumped_count};
  rt.block_on(park_tasks(dumped_count, &arrived, &go, &l));
  const auto t0 = steady::now();
  const auto tasks = rt.dump_tasks();
  const double took = since(t0);
  rt.block_on(release_and_wait(&go, &l));
  const double paused = static_cast<double>(rt.stats().last_dump_pause_ns) / 1e9;
  workload_result r{tasks.size(), pause_only ? paused : took};
  // Every parked task is listed (with introspection compiled out the dump has no ids, but the
  // tasks are still there).
  r.valid = tasks.size() == static_cast<std::size_t>(dumped_count);
  return r;
}

workload_result run_dump_tasks(weft::runtime& rt) {
  return run_dump(rt, false);
}

workload_result run_dump_pause(weft::runtime& rt) {
  return run_dump(rt, true);
}

}  // namespace

sleepers_run run_sleepers(weft::runtime& rt, std::int64_t count, std::int64_t sample_every) {
  if (sample_every < 1) throw std::invalid_argument("run_sleepers: sample_every must be >= 1");
  latch_event l{count};
  sleepers_run r;
  // Allocated and zeroed before the clock starts: each sampled sleeper stores into its own slot.
  r.lateness_ns.resize(static_cast<std::size_t>((count + sample_every - 1) / sample_every));
  auto make = [state = timer_seed, late = r.lateness_ns.data(), l = &l,
               sample_every](std::int64_t i) mutable {
    const auto d = std::chrono::microseconds{
        static_cast<std::int64_t>(splitmix64(state) % (timer_max_us + 1))};
    return i % sample_every == 0 ? sleep_measure_count_down(d, late + i / sample_every, l)
                                 : sleep_then_count_down(d, l);
  };
  r.seconds = rt.block_on(time_fan_out(count, &l, make));
  return r;
}

lateness_percentiles lateness_summary(std::vector<std::int64_t> samples_ns) {
  if (samples_ns.empty()) throw std::invalid_argument("weft::bench::lateness_summary: no samples");
  std::sort(samples_ns.begin(), samples_ns.end());
  const std::size_t n = samples_ns.size();
  // The ceil(percent / 100 * n)-th smallest sample (1-based); at least the first.
  auto at = [&](std::size_t percent) {
    const std::size_t rank = (percent * n + 99) / 100;
    return static_cast<double>(samples_ns[rank - 1]) / 1e3;
  };
  return {at(50), at(99), static_cast<double>(samples_ns.back()) / 1e3};
}

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
      {"timers", "timers", &run_timers},
      {"timer_lateness", "sleeps", &run_timer_lateness},
      {"idle_timers", "sleepers", &run_idle_timers},
      {"ping_pong", "round trips", &run_ping_pong},
      {"suspended_tasks", "tasks", &run_suspended_tasks},
      {"dump_tasks", "tasks dumped", &run_dump_tasks},
      {"dump_pause", "tasks dumped", &run_dump_pause},
  };
  static const std::vector<workload> with_flow = [] {
    std::vector<workload> v = all;
    for (const auto& w : flow_workloads()) v.push_back(w);
    return v;
  }();
  return with_flow;
}

const workload* find_workload(std::string_view name) {
  for (const auto& w : runtime_workloads()) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

}  // namespace weft::bench
