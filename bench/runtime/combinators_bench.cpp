// The cost of the combinators around children that are ready at once: when_all of 2 and of
// 1,000, when_any of 1,000, and timeout around a ready task (one worker, real time).
#include <chrono>
#include <cstddef>
#include <vector>

#include <benchmark/benchmark.h>

#include <weft/combinators/when_all.hpp>
#include <weft/combinators/when_any.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>
#include <weft/time/timeout.hpp>

namespace {

weft::task<int> ready(int x) {
  co_return x;
}

std::vector<weft::task<int>> ready_tasks(std::size_t n) {
  std::vector<weft::task<int>> ts;
  ts.reserve(n);
  for (std::size_t i = 0; i < n; ++i) ts.push_back(ready(static_cast<int>(i)));
  return ts;
}

void BM_when_all_2(benchmark::State& state) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([&]() -> weft::task<void> {
    for (auto _ : state) {
      auto t = weft::when_all(ready(1), ready(2));
      auto [a, b] = co_await std::move(t);
      benchmark::DoNotOptimize(a + b);
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_when_all_2)->UseRealTime();

void BM_when_all_1000(benchmark::State& state) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([&]() -> weft::task<void> {
    for (auto _ : state) {
      auto t = weft::when_all(ready_tasks(1000));
      auto v = co_await std::move(t);
      benchmark::DoNotOptimize(v.data());
    }
  });
  state.SetItemsProcessed(state.iterations() * 1000);  // per child
}
BENCHMARK(BM_when_all_1000)->UseRealTime();

void BM_when_any_1000(benchmark::State& state) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([&]() -> weft::task<void> {
    for (auto _ : state) {
      auto t = weft::when_any(ready_tasks(1000));
      auto r = co_await std::move(t);
      benchmark::DoNotOptimize(r.index);
    }
  });
  state.SetItemsProcessed(state.iterations() * 1000);  // per child
}
BENCHMARK(BM_when_any_1000)->UseRealTime();

void BM_timeout_ready_task(benchmark::State& state) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([&]() -> weft::task<void> {
    for (auto _ : state) {
      auto t = weft::timeout(std::chrono::seconds{1}, ready(3));
      benchmark::DoNotOptimize(co_await std::move(t));
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_timeout_ready_task)->UseRealTime();

void BM_baseline_await_ready_task(benchmark::State& state) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([&]() -> weft::task<void> {
    for (auto _ : state) benchmark::DoNotOptimize(co_await ready(3));
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_baseline_await_ready_task)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
