// The cost of each resilience layer on the success path, per call, over calling the operation
// directly (one worker, real time, a task that completes at once), the five-layer standard
// pipeline, and an open breaker's rejection returned as a value. Every benchmark also reports
// heap allocations per call (operator new is counted in this binary): the target is 0 once warm.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <new>

#include <benchmark/benchmark.h>

#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/fallback.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/standard_pipeline.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

#include "resilience_bench_layers.hpp"

namespace {
std::atomic<std::size_t> allocations{0};
}  // namespace

// g++ 12 sees the replaced operator delete's free() inlined where a `new` was and reports a
// mismatch that is none: both halves are replaced together here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// Counting every allocation of the process: a benchmark's delta over its loop is what the layers
// (and the runtime under them) allocate per call.
void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace wr = weft::resilience;

namespace {

weft::task<int> op() {
  co_return 1;
}
weft::task<wr::call_outcome<int>> op_outcome() {
  co_return wr::call_outcome<int>::success(1);
}

/// Runs `body` (a coroutine that loops over `state`) on a one-worker runtime and reports
/// allocations per iteration.
template <class Body>
void run(benchmark::State& state, Body body) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  std::size_t before = 0;
  rt.block_on([&]() -> weft::task<void> {
    // Warm the frame pool and the layers before counting.
    co_await body(state, 1000);
    before = allocations.load(std::memory_order_relaxed);
    co_await body(state, 0);
  });
  const auto after = allocations.load(std::memory_order_relaxed);
  state.counters["allocs_per_call"] =
      benchmark::Counter(static_cast<double>(after - before) /
                         static_cast<double>(std::max<std::int64_t>(1, state.iterations())));
  state.SetItemsProcessed(state.iterations());
}

void BM_direct(benchmark::State& state) {
  run(state, [](benchmark::State& s, int warm) -> weft::task<void> {
    if (warm > 0) {
      for (int i = 0; i < warm; ++i) benchmark::DoNotOptimize(co_await op());
      co_return;
    }
    for (auto _ : s) benchmark::DoNotOptimize(co_await op());
  });
}
BENCHMARK(BM_direct)->UseRealTime();

template <class Pipe>
weft::task<void> loop(benchmark::State& s, int warm, Pipe& pipe) {
  if (warm > 0) {
    for (int i = 0; i < warm; ++i) benchmark::DoNotOptimize(co_await pipe.execute(&op));
    co_return;
  }
  for (auto _ : s) benchmark::DoNotOptimize(co_await pipe.execute(&op));
}

void BM_empty_pipeline(benchmark::State& state) {
  wr::pipeline pipe{};
  run(state, [&](benchmark::State& s, int warm) { return loop(s, warm, pipe); });
}
BENCHMARK(BM_empty_pipeline)->UseRealTime();

#define WEFT_LAYER_BENCH(NAME, MAKE)                                                \
  void BM_layer_##NAME(benchmark::State& state) {                                   \
    auto layer = MAKE;                                                              \
    wr::pipeline pipe{*layer};                                                      \
    run(state, [&](benchmark::State& s, int warm) { return loop(s, warm, pipe); }); \
  }                                                                                 \
  BENCHMARK(BM_layer_##NAME)->UseRealTime();

WEFT_LAYER_BENCH(retry, weft::bench::make_retry())
WEFT_LAYER_BENCH(circuit_breaker, weft::bench::make_breaker())
WEFT_LAYER_BENCH(circuit_breaker_untimed, weft::bench::make_breaker_untimed())
WEFT_LAYER_BENCH(fallback, weft::bench::make_fallback())
WEFT_RESILIENCE_MORE_LAYER_BENCHES

// the standard pipeline of docs/resilience-rules.md: five layers, the retry with its budget.
void BM_standard_pipeline(benchmark::State& state) {
  wr::standard_pipeline_options o;
  // The default 1,000 calls a second would refuse most of a benchmark's calls.
  o.rate = wr::token_bucket{.capacity = 1'000'000,
                            .tokens_per_period = 1'000'000,
                            .period = std::chrono::microseconds{1}};
  auto pipe = wr::pipeline<>::standard(o);
  run(state, [&](benchmark::State& s, int warm) { return loop(s, warm, pipe); });
}
BENCHMARK(BM_standard_pipeline)->UseRealTime();

void BM_open_breaker_rejection(benchmark::State& state) {
  auto breaker = weft::bench::make_breaker();
  breaker->transition_to_forced_open();
  wr::pipeline pipe{*breaker};
  run(state, [&](benchmark::State& s, int warm) -> weft::task<void> {
    if (warm > 0) {
      for (int i = 0; i < warm; ++i)
        benchmark::DoNotOptimize((co_await pipe.execute(&op_outcome)).kind());
      co_return;
    }
    for (auto _ : s) benchmark::DoNotOptimize((co_await pipe.execute(&op_outcome)).kind());
  });
}
BENCHMARK(BM_open_breaker_rejection)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
