// Uncontended costs of the synchronisation primitives on one worker: mutex lock/unlock,
// semaphore acquire/release, channel send + recv, and the baseline of awaiting a ready task.
#include <benchmark/benchmark.h>

#include <weft/runtime.hpp>
#include <weft/sync/channel.hpp>
#include <weft/sync/mutex.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/task.hpp>

namespace {

void BM_mutex_lock_unlock(benchmark::State& state) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::mutex m;
  rt.block_on([&]() -> weft::task<void> {
    for (auto _ : state) {
      auto guard = co_await m.lock();
      benchmark::DoNotOptimize(guard);
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_mutex_lock_unlock)->UseRealTime();

void BM_semaphore_acquire_release(benchmark::State& state) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::semaphore s{4};
  rt.block_on([&]() -> weft::task<void> {
    for (auto _ : state) {
      auto permit = co_await s.acquire();
      benchmark::DoNotOptimize(permit);
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_semaphore_acquire_release)->UseRealTime();

void BM_channel_send_recv(benchmark::State& state) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::channel<int> ch{1};
  rt.block_on([&]() -> weft::task<void> {
    int i = 0;
    for (auto _ : state) {
      co_await ch.send(i++);
      benchmark::DoNotOptimize(co_await ch.recv());
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_channel_send_recv)->UseRealTime();

void BM_channel_try_send_try_recv(benchmark::State& state) {
  weft::channel<int> ch{1};
  int i = 0;
  for (auto _ : state) {
    ch.try_send(i++);
    benchmark::DoNotOptimize(ch.try_recv());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_channel_try_send_try_recv);

}  // namespace

BENCHMARK_MAIN();
