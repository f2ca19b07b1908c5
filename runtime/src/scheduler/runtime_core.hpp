// The runtime's private parts: its workers (worker.hpp), the injection queue, the idle set, the
// registry of live tasks, the clock, the blocking pool, introspection and shutdown.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <weft/runtime.hpp>

#include "io/reactor.hpp"
#include "scheduler/blocking_pool.hpp"
#include "scheduler/idle.hpp"
#include "scheduler/injection_queue.hpp"
#include "scheduler/local_queue.hpp"
#include "scheduler/owned_counter.hpp"
#include "scheduler/parker.hpp"
#include "scheduler/registry.hpp"
#include "scheduler/worker.hpp"
#include "time/time_source.hpp"
#include "time/timer_wheel.hpp"

namespace weft::detail {

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

  /// Counts spawn_blocking jobs submitted and not yet finished: paused time does not jump while
  /// one runs (its result may be what a sleeping task's timeout waits for).
  void blocking_started() noexcept { blocking_in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void blocking_finished() noexcept;
  /// A worker has set up its ring (the constructor waits for all of them).
  void worker_started() noexcept;
  /// runtime_options::external_loop: the thread that constructed the runtime and drives it.
  [[nodiscard]] std::thread::id loop_thread() const noexcept { return loop_thread_; }
  /// runtime::run_ready, with its checks.
  run_ready_result run_ready(std::size_t max_resumptions);

  /// Held by a thread that is not one of our workers while it queues work for us and wakes a
  /// worker: the task it queued may run, finish and let the runtime be destroyed before the
  /// wake-up call returns, so shutdown waits for every guard to be released.
  class foreign_call {
   public:
    explicit foreign_call(runtime_core& rt) noexcept : rt_(rt) {
      // seq_cst: ordered before the queue push that lets the runtime finish.
      rt_.foreign_calls_.fetch_add(1, std::memory_order_seq_cst);
    }
    foreign_call(const foreign_call&) = delete;
    foreign_call& operator=(const foreign_call&) = delete;
    ~foreign_call() { rt_.foreign_calls_.fetch_sub(1, std::memory_order_release); }

   private:
    runtime_core& rt_;
  };
  [[nodiscard]] std::size_t blocking_in_flight() const noexcept {
    return blocking_in_flight_.load(std::memory_order_acquire);
  }

  // --- Introspection (introspection.cpp) ---
  /// Records `name` for `h`; false if it could not (out of memory).
  bool set_name(const frame_header* h, std::string_view name) noexcept;
  void unregister_name(const frame_header* h) noexcept;
  /// The name of a root with named_bit; empty if none.
  std::string name_of(const frame_header* h) const;
  /// True while a dump wants the workers paused (read at the top of every turn).
  [[nodiscard]] bool pause_requested() const noexcept {
    return pause_requested_.load(std::memory_order_relaxed);
  }
  /// Called by a worker that saw pause_requested(): waits until the dump is done.
  void pause_here();
  std::vector<task_record> dump_tasks();
  /// The stall detector's view of a root whose frame a worker resumed; false if none matches.
  bool describe_running(void* frame, stall_report& out) const;
  void report_stall(const stall_report& r) const;

  const runtime_options options;
  time_source clock;
  std::vector<std::unique_ptr<worker>> workers;
  injection_queue injection;
  idle idle_set;
  blocking_pool blocking;

 private:
  void abort_root(frame_header* h) noexcept;
  void wait_for_foreign_calls() noexcept;
  void start_threads();
  void stop_threads() noexcept;
  void watchdog_loop();
  void signal_loop();
  bool pause_workers();
  void resume_workers() noexcept;

  mutable spin_lock names_lock_;
  std::unordered_map<const frame_header*, std::string> names_;  // guarded by names_lock_

  std::atomic<bool> pause_requested_{false};
  std::mutex pause_mutex_;
  std::condition_variable pause_cv_;
  std::size_t paused_workers_ = 0;  // guarded by pause_mutex_
  std::mutex dump_mutex_;           // one dump at a time; shutdown takes it before freeing
  std::atomic<std::uint64_t> dumps_{0};
  std::atomic<std::uint64_t> last_dump_pause_ns_{0};

  // The stall watchdog and the SIGUSR1 dump thread.
  std::mutex threads_mutex_;
  std::condition_variable threads_cv_;
  bool threads_stop_ = false;  // guarded by threads_mutex_
  struct watch_state {
    std::uint64_t seq = 0;
    std::int64_t since = 0;
    bool reported = false;
  };
  std::vector<watch_state> watch_;  // the watchdog's, one per worker
  std::thread watchdog_;
  std::thread signal_thread_;
  int signal_pipe_[2] = {-1, -1};

  std::thread::id loop_thread_{};  // external_loop only
  registry_shard external_registry_;
  std::atomic<std::size_t> blocking_in_flight_{0};
  std::atomic<std::size_t> workers_started_{0};
  std::atomic<std::size_t> foreign_calls_{0};
  std::mutex shutdown_mutex_;
  std::atomic<bool> closed_{false};    // no new spawns accepted
  std::atomic<bool> stopping_{false};  // workers leave their loops
  bool shut_down_ = false;             // guarded by shutdown_mutex_
};

}  // namespace weft::detail
