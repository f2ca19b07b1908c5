// A worker: one thread with its run queue, LIFO slot, io_uring reactor, timer wheel and registry
// shard, and the loop that runs tasks, polls, steals and parks (worker.cpp).
#pragma once

#include <array>
#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <utility>
#include <vector>

#include <weft/runtime.hpp>

#include "io/reactor.hpp"
#include "scheduler/local_queue.hpp"
#include "scheduler/owned_counter.hpp"
#include "scheduler/parker.hpp"
#include "scheduler/registry.hpp"
#include "time/time_source.hpp"
#include "time/timer_wheel.hpp"

namespace weft::detail {

class runtime_core;

class worker {
 public:
  worker(runtime_core& rt, std::size_t index);

  void run();

  // External loop (runtime_options::external_loop): the host's thread drives this worker.
  /// Sets the ring up on the calling thread and leaves the worker waiting for the host.
  void attach_external();
  /// runtime::run_ready, on the host's thread.
  run_ready_result run_ready(std::size_t max_resumptions);
  /// At shutdown, on the host's thread: cancels the ring's operations and waits for them.
  void detach_external() noexcept;
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
  /// Before run_ready returns to the host: counts the worker parked, so that work queued from
  /// another thread writes the eventfd. False (and still unparked) if work is already waiting.
  bool wait_for_host();
  /// The worker is on the sleepers list while the host's loop waits (wait_for_host).
  bool parked_in_host_ = false;
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
