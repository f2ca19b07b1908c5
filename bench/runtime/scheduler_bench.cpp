// Spawn+join and yield on one worker, beside a std::function call through a queue as the floor.
#include <deque>
#include <functional>

#include <benchmark/benchmark.h>

#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/yield.hpp>

namespace {

void BM_baseline_deque_of_functions(benchmark::State& state) {
  std::deque<std::function<void()>> q;
  int x = 0;
  for (auto _ : state) {
    q.emplace_back([&x] { ++x; });
    q.front()();
    q.pop_front();
  }
  benchmark::DoNotOptimize(x);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_baseline_deque_of_functions);

weft::task<int> child(int x) {
  co_return x + 1;
}

void BM_spawn_join(benchmark::State& state) {
  weft::runtime rt{weft::runtime_options{.workers = static_cast<std::size_t>(state.range(0))}};
  rt.block_on([&]() -> weft::task<void> {
    int x = 0;
    for (auto _ : state) {
      x = co_await weft::spawn(child(x));
      benchmark::DoNotOptimize(x);
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_spawn_join)->Arg(1)->Arg(2)->UseRealTime();

void BM_spawn_detached(benchmark::State& state) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([&]() -> weft::task<void> {
    for (auto _ : state) {
      weft::spawn(child(1)).detach();
      co_await weft::yield();  // let the spawned task run before the next spawn
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_spawn_detached)->UseRealTime();

void BM_yield(benchmark::State& state) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([&]() -> weft::task<void> {
    for (auto _ : state) co_await weft::yield();
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_yield)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
