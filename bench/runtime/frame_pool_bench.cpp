// The frame pool's allocate+free beside malloc+free of the same size.
#include <cstdlib>

#include <benchmark/benchmark.h>

#include <weft/detail/frame_pool.hpp>

namespace {

void BM_baseline_malloc_free(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = std::malloc(size);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_baseline_malloc_free)->Arg(96)->Arg(512);

void BM_frame_pool_alloc_free(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = weft::detail::frame_allocate(size);
    benchmark::DoNotOptimize(p);
    weft::detail::frame_deallocate(p, size);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_frame_pool_alloc_free)->Arg(96)->Arg(512);

void BM_frame_pool_burst_1024(benchmark::State& state) {
  void* blocks[1024];
  for (auto _ : state) {
    for (auto& b : blocks) b = weft::detail::frame_allocate(128);
    benchmark::DoNotOptimize(blocks);
    for (auto* b : blocks) weft::detail::frame_deallocate(b, 128);
  }
  state.SetItemsProcessed(state.iterations() * 1024);
}
BENCHMARK(BM_frame_pool_burst_1024);

}  // namespace

BENCHMARK_MAIN();
