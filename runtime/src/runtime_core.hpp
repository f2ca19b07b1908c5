// The runtime's private parts: workers with their queues, the injection queue, the idle set, the
// registry of live tasks and the blocking pool.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <weft/runtime.hpp>

#include "blocking_pool.hpp"
#include "idle.hpp"
#include "injection_queue.hpp"
#include "local_queue.hpp"
#include "parker.hpp"
#include "registry.hpp"

namespace weft::detail {

/// A counter written by one thread (its worker) and read by any: no read-modify-write needed.
class owned_counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class worker {
 public:
  worker(runtime_core& rt, std::size_t index) : rt_(rt), index_(index), rng_(index * 2 + 1) {}

  void run();

  /// Makes `h` the next task to run here; the previous LIFO occupant goes to the queue.
  void schedule_lifo(std::coroutine_handle<> h);
  /// Appends `h` to the local queue (overflowing to the injection queue) and wakes a worker if
  /// none is searching.
  void push_back(std::coroutine_handle<> h);

  runtime_core& rt() const noexcept { return rt_; }
  std::size_t index() const noexcept { return index_; }
  local_queue& queue() noexcept { return queue_; }
  registry_shard& registry() noexcept { return registry_; }
  const registry_shard& registry() const noexcept { return registry_; }
  parker& park_state() noexcept { return parker_; }
  worker_stats stats() const noexcept;
  /// Drops whatever is queued here (shutdown, after the thread stopped).
  void drop_queued() noexcept;

  std::thread thread;

 private:
  std::coroutine_handle<> next_task();
  std::coroutine_handle<> steal_work();
  std::coroutine_handle<> pull_injection();
  void run_task(std::coroutine_handle<> h);
  void park();
  std::uint32_t next_random() noexcept;

  runtime_core& rt_;
  const std::size_t index_;
  local_queue queue_;
  void* lifo_ = nullptr;  // touched only by this worker's thread
  bool searching_ = false;
  std::uint32_t tick_ = 0;
  std::uint32_t rng_;
  parker parker_;
  registry_shard registry_;

  owned_counter tasks_run_, steals_, tasks_stolen_, parks_, injection_pulls_, lifo_hits_,
      overflows_;
};

class runtime_core {
 public:
  explicit runtime_core(const runtime_options& options);
  runtime_core(const runtime_core&) = delete;
  runtime_core& operator=(const runtime_core&) = delete;
  ~runtime_core();

  void shutdown();
  runtime_stats stats() const;

  /// Queues `h` from a thread that is not one of our workers, waking a worker if needed.
  void schedule_remote(std::coroutine_handle<> h);
  /// Wakes one parked worker if nobody is searching.
  void notify_parked();
  /// True if any queue holds a task (checked by the last searcher before it parks).
  bool has_pending_work() const noexcept;

  /// Links a new root into the external registry unless the runtime is closed.
  bool register_external(frame_header* h);
  /// Unlinks a root from the registry shard its state names (before its frame is destroyed).
  void unregister(frame_header* h) noexcept;

  [[nodiscard]] bool is_stopping() const noexcept {
    return stopping_.load(std::memory_order_acquire);
  }
  [[nodiscard]] bool is_closed() const noexcept { return closed_.load(std::memory_order_acquire); }

  const runtime_options options;
  std::vector<std::unique_ptr<worker>> workers;
  injection_queue injection;
  idle idle_set;
  blocking_pool blocking;

 private:
  void abort_root(frame_header* h) noexcept;

  registry_shard external_registry_;
  std::mutex shutdown_mutex_;
  std::atomic<bool> closed_{false};    // no new spawns accepted
  std::atomic<bool> stopping_{false};  // workers leave their loops
  bool shut_down_ = false;             // guarded by shutdown_mutex_
};

/// The worker running on this thread, if any.
extern thread_local worker* current_worker;
inline worker* this_worker() noexcept {
  return current_worker;
}

}  // namespace weft::detail
