// Where a task goes when it is woken, yields, is joined or is queued from another thread: the
// scheduling entry points that tasks and the runtime call (the worker loop is in worker.cpp).
#include <weft/detail/scheduler.hpp>

#include <stdexcept>
#include <string>

#include "scheduler/runtime_core.hpp"

namespace weft::detail {


thread_local worker* current_worker = nullptr;
thread_local runtime_core* tls_runtime = nullptr;

#if !WEFT_SYMMETRIC_TRANSFER
thread_local void* sync_start_frame = nullptr;
#endif

void throw_outside_runtime(const char* api) {
  throw std::logic_error(std::string{api} +
                         ": called outside a weft runtime's worker thread; from a plain thread "
                         "use runtime::spawn or runtime::block_on");
}

namespace {
// Work-first joins nest the joined task's first step in the joiner's resumption (a plain call:
// g++ has no guaranteed tail call); bounded so that a long chain of joins cannot exhaust the
// stack: past it, a join waits for the task to run from the queue as before.
constexpr int max_inline_joins = 48;
thread_local int inline_joins = 0;
}  // namespace

// The root run_taken_inline is running on this thread, and whether complete_root saw it finish
// here (then its wake-up went to this worker's LIFO slot). Nothing else tells it apart safely:
// once the root suspended, it may finish on another worker and the joiner run (and end) there.
thread_local void* inline_join_target = nullptr;
thread_local bool inline_join_done = false;

bool take_back_joined(runtime_core* rt, std::coroutine_handle<> h) noexcept {
  worker* w = current_worker;
  if (w == nullptr || &w->rt() != rt || inline_joins >= max_inline_joins) return false;
  return w->take_back(tagged_first_run(h).address());
}

void requeue_first_run(runtime_core* rt, std::coroutine_handle<> h) noexcept {
  schedule_wake(rt, tagged_first_run(h));  // taken back on this worker: its LIFO slot
}

inline_join run_taken_inline(std::coroutine_handle<> h, std::coroutine_handle<> joiner) noexcept {
  worker* const w = current_worker;
  void* const outer_target = inline_join_target;
  const bool outer_done = inline_join_done;
  inline_join_target = h.address();
  inline_join_done = false;
  ++inline_joins;
  if (!skip_cancelled_start(h)) h.resume();
  --inline_joins;
  const bool finished_here = inline_join_done;
  inline_join_target = outer_target;
  inline_join_done = outer_done;
  // Finished right here: the completion put the joiner in this worker's LIFO slot (unless the
  // joiner was cancelled first and woken by that). Take it back and go on at once, rather than
  // through the loop, whose LIFO limit would send it behind everything queued.
  if (finished_here && w->take_back_woken(joiner.address())) return inline_join::resume_now;
  return inline_join::suspended;
}

void schedule_wake(runtime_core* rt, std::coroutine_handle<> h) noexcept {
  worker* w = current_worker;
  if (w != nullptr && &w->rt() == rt) {
    w->schedule_lifo(h);
  } else {
    rt->schedule_remote(h);
  }
}

void schedule_yield(std::coroutine_handle<> h) {
  if (current_worker == nullptr) throw_outside_runtime("weft::yield");
  current_worker->push_back(h);
}

bool help_while(bool (*pending)(void*), void* context) {
  worker* w = current_worker;
  if (w == nullptr) return false;
  ++w->helping_;
  while (pending(context) && !w->rt().is_stopping()) w->turn();
  --w->helping_;
  return true;
}

bool runtime_stopping(const runtime_core* rt) noexcept {
  return rt->is_stopping();
}

worker* current_worker_or_null() noexcept {
  return current_worker;
}

void unpark_current_helper(worker* w) noexcept {
  w->park_state().unpark();
}

void runtime_core::schedule_remote(std::coroutine_handle<> h) {
  foreign_call guard{*this};
  injection.push(h);
  notify_parked();
}

void runtime_core::notify_parked() {
  // seq_cst fence: orders the caller's push before its read of the idle state, against the
  // parking worker's read-modify-write of that state followed by its read of the queues
  // (store-buffering: without it both could miss the other and the task would wait).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (auto id = idle_set.worker_to_notify()) workers[*id]->park_state().unpark();
}

void runtime_core::blocking_finished() noexcept {
  foreign_call guard{*this};
  // acq_rel: the job's wake-up (queued before) is visible to a worker that reads zero.
  if (blocking_in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1 && clock.paused()) {
    // The paused clock waited for this job; let the worker re-evaluate.
    workers[0]->park_state().unpark();
  }
}

bool runtime_core::has_pending_work() const noexcept {
  if (!injection.empty()) return true;
  for (const auto& w : workers) {
    if (w->queue().has_stealable()) return true;
  }
  return false;
}

}  // namespace weft::detail
