// Creating and awaiting a task that completes synchronously, beside a plain function call.
#include <benchmark/benchmark.h>

#include <weft/runtime.hpp>
#include <weft/task.hpp>

namespace {

[[gnu::noinline]] int plain_call(int x) {
  return x + 1;
}

void BM_baseline_function_call(benchmark::State& state) {
  int x = 0;
  for (auto _ : state) {
    x = plain_call(x);
    benchmark::DoNotOptimize(x);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_baseline_function_call);

weft::task<int> increment(int x) {
  co_return x + 1;
}

void BM_task_create_await(benchmark::State& state) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([&]() -> weft::task<void> {  // safe: block_on keeps the lambda alive
    int x = 0;
    for (auto _ : state) {
      x = co_await increment(x);
      benchmark::DoNotOptimize(x);
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_task_create_await)->UseRealTime();

weft::task<int> nested(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await nested(depth - 1);
}

void BM_task_nested_depth(benchmark::State& state) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  const int depth = static_cast<int>(state.range(0));
  rt.block_on([&]() -> weft::task<void> {
    for (auto _ : state) benchmark::DoNotOptimize(co_await nested(depth));
  });
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_task_nested_depth)->Arg(16)->Arg(256)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
