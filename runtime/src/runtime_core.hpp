// The runtime's private parts: workers with their queues, rings and timer wheels, the injection
// queue, the idle set, the registry of live tasks, the clock and the blocking pool.
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

#include "blocking_pool.hpp"
#include "idle.hpp"
#include "injection_queue.hpp"
#include "local_queue.hpp"
#include "owned_counter.hpp"
#include "parker.hpp"
#include "reactor.hpp"
#include "registry.hpp"
#include "time_source.hpp"
#include "timer_wheel.hpp"

namespace weft::detail {

class worker {
 public:
  worker(runtime_core& rt, std::size_t index);

  void run();
  /// One turn of the loop: run a task, or poll, or steal, or park until something happens.
  /// Also used to help while a task waits synchronously (task_group's destructor).
  void turn();

  /// Makes `h` the next task to run here; the previous LIFO occupant goes to the queue.
  void schedule_lifo(std::coroutine_handle<> h);
  /// Removes `queued` (a tagged first-run entry) if it is in this worker's LIFO slot or at the
  /// back of its queue and nobody took it: the caller runs it instead (work-first joins).
  bool take_back(void* queued);
  /// Removes `frame` from the LIFO slot if a wake-up just put it there.
  bool take_back_woken(void* frame) noexcept;
  /// Appends `h` to the local queue (overflowing to the injection queue) and wakes a worker if
  /// none is searching.
  void push_back(std::coroutine_handle<> h);

  runtime_core& rt() const noexcept { return rt_; }
  std::size_t index() const noexcept { return index_; }
  local_queue& queue() noexcept { return queue_; }
  registry_shard& registry() noexcept { return registry_; }
  const registry_shard& registry() const noexcept { return registry_; }
  parker& park_state() noexcept { return parker_; }
  reactor& io() noexcept { return reactor_; }
  timer_wheel& timers() noexcept { return timers_; }
  /// Queues a coroutine whose I/O completed or whose mailbox request finished: it resumes on
  /// this worker (such tasks are not stealable), before the local queue's next task.
  void resume_here(std::coroutine_handle<> h) {
    if (WEFT_UNLIKELY(seeded_mode_)) return seed_ready(h);
    io_ready_.push_back(h.address());
    if (WEFT_UNLIKELY(timing_)) io_ready_stamps_.push_back(steady_now_ns());
  }
  /// Links a timer into this worker's wheel; on its thread.
  void add_timer(timer_entry* e, std::int64_t deadline_ns, std::uint8_t order);
  worker_stats stats() const noexcept;
  /// Drops whatever is queued here (shutdown, after the thread stopped).
  void drop_queued() noexcept;
  /// Appends every coroutine queued here (LIFO slot, I/O completions, local queue) with this
  /// worker's index to `out`. Only while the worker is paused.
  void collect_queued(std::vector<std::pair<void*, int>>& out) const;

  /// Odd while a resumption runs here: bumped before and after each one (the stall detector and
  /// stats read it from other threads).
  [[nodiscard]] std::uint64_t resume_seq() const noexcept {
    return resume_seq_.load(std::memory_order_acquire);
  }
  /// The coroutine the current resumption started at (only an address to compare: it may be
  /// gone by the time another thread reads it).
  [[nodiscard]] void* running_frame() const noexcept {
    return running_.load(std::memory_order_relaxed);
  }
  /// The stall detector reported the running resumption `r`, which it saw start at `since_ns`
  /// (steady_now_ns): the worker reports its end, with the same task.
  /// `seq` is the odd resume_seq() of that resumption: if it ended meanwhile, nothing is
  /// reported at its end (the worker compares).
  void mark_stalled(const stall_report& r, std::int64_t since_ns, std::uint64_t seq) {
    stall_ = r;
    stall_since_ns_ = since_ns;
    stalled_seq_.store(seq, std::memory_order_release);
    stalls_.add();
  }

  std::thread thread;
  /// runtime_options::timing_metrics, copied here for the hot paths.
  const bool timing_;
  /// runtime_options::schedule_seed is set: ready tasks go to seeded_ (next_seeded picks).
  const bool seeded_mode_;
  /// Nesting depth of help_while on this worker: park() then returns after any wake-up, so the
  /// helper re-checks what it waits for.
  int helping_ = 0;

 private:
  std::coroutine_handle<> next_task();
  /// Seeded schedules: gathers every ready coroutine into seeded_ and takes a random one.
  std::coroutine_handle<> next_seeded();
  /// Nesting of resume() (help_while runs tasks inside a task's resumption).
  int resume_depth_ = 0;
  /// Seeded schedules: `h` became ready (instead of the LIFO slot, queue or completion list).
  void seed_ready(std::coroutine_handle<> h);
  void resume(std::coroutine_handle<> h);
  void end_stall() noexcept;
  void count_delay(std::int64_t queued_ns) noexcept;
  std::coroutine_handle<> steal_work();
  std::coroutine_handle<> pull_injection();
  void run_task(std::coroutine_handle<> h);
  void park();
  /// runtime_options::busy_poll: polls the ring until work shows up (true) or the budget is spent.
  bool busy_poll();
  /// Runs the mailbox, fires due timers and dispatches ready completions (without waiting).
  void poll_events();
  /// Real time: fires the timers whose deadline passed. Paused time does it in paused_step().
  void fire_due_timers();
  void fire(std::vector<timer_entry*>& batch, bool ordered) noexcept;
  /// Paused time, nothing runnable: dispatch completions or jump the clock to the next timer.
  /// False if nothing can move (park for real until a wake-up).
  bool paused_step();
  /// How long park may wait: until the next timer's tick (-1: no timer; 0: one is due).
  std::int64_t park_timeout() const noexcept;
  [[nodiscard]] bool has_local_work() const noexcept;
  std::uint32_t next_random() noexcept;

  runtime_core& rt_;
  const std::size_t index_;
  local_queue queue_;
  void* lifo_ = nullptr;  // touched only by this worker's thread
  bool searching_ = false;
  std::uint32_t tick_ = 0;
  std::uint32_t rng_;
  registry_shard registry_;
  reactor reactor_;
  parker parker_;
  timer_wheel timers_;
  // Coroutines to resume here (I/O completions, mailbox requests): touched by this thread only.
  std::vector<void*> io_ready_;
  std::size_t io_ready_next_ = 0;
  std::vector<timer_entry*> fired_;

  owned_counter tasks_run_, steals_, tasks_stolen_, parks_, busy_poll_hits_, injection_pulls_,
      lifo_hits_, overflows_, timers_fired_, stalls_, busy_ns_;
  friend class runtime_core;

  // Introspection: resumption sequence and frame (stall detector), task ids.
  alignas(64) std::atomic<std::uint64_t> resume_seq_{0};
  std::atomic<void*> running_{nullptr};
  std::atomic<std::uint64_t> stalled_seq_{0};
  // Written by the watchdog before it sets stalled_seq_ (release), read by this worker after.
  stall_report stall_;
  std::int64_t stall_since_ns_ = 0;
  std::int64_t busy_since_ns_ = 0;

  // Timing metrics (runtime_options::timing_metrics): histograms and the wake-up stamps of the
  // LIFO slot and the I/O completion list.
  std::array<owned_counter, duration_histogram::buckets> resume_hist_, delay_hist_;
  owned_counter resume_sum_ns_, delay_sum_ns_;
  std::int64_t lifo_stamp_ = 0;
  std::vector<std::int64_t> io_ready_stamps_;

  // Seeded schedules: what is ready, tagged with the batch it became ready in.
  struct seeded_entry {
    void* frame;
    std::uint32_t batch;
  };
  std::vector<seeded_entry> seeded_;
  std::vector<std::size_t> seeded_front_index_;
  std::uint32_t seeded_batch_ = 0;
  std::uint64_t seed_state_ = 0;
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

  /// Counts spawn_blocking jobs submitted and not yet finished: paused time does not jump while
  /// one runs (its result may be what a sleeping task's timeout waits for).
  void blocking_started() noexcept { blocking_in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void blocking_finished() noexcept;
  /// A worker has set up its ring (the constructor waits for all of them).
  void worker_started() noexcept;

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

  registry_shard external_registry_;
  std::atomic<std::size_t> blocking_in_flight_{0};
  std::atomic<std::size_t> workers_started_{0};
  std::atomic<std::size_t> foreign_calls_{0};
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

/// See run_taken_inline (scheduler.cpp): complete_root sets inline_join_done when the root it
/// completes is inline_join_target.
extern thread_local void* inline_join_target;
extern thread_local bool inline_join_done;

/// A root's first step, taken from a queue: if it was cancelled before it started, completes it
/// in place without running it (cancelled_unstarted_bit) and returns true.
bool skip_cancelled_start(std::coroutine_handle<> h) noexcept;

}  // namespace weft::detail
