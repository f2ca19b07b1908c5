// The worker loop: where tasks are taken from, when workers steal, and how they park.
//
// A worker's turn (worker::run):
// 1. Every global_queue_interval ticks take from the injection queue first, so it cannot starve.
// 2. Otherwise pop the local queue, then the injection queue.
// 3. After running a task, run what it woke (the LIFO slot) up to max_lifo_polls times in a row;
//    then the LIFO task goes to the back of the queue, so two tasks waking each other cannot
//    monopolise the worker.
// 4. Nothing local: become a searcher (if fewer than half the workers search) and steal half of
//    another worker's queue, starting at a random victim; then try the injection queue again.
// 5. Still nothing: park (idle.hpp's protocol). The last searcher to park re-checks every queue
//    first, because a push that saw it searching did not wake anyone.
#include <weft/detail/scheduler.hpp>

#include <stdexcept>
#include <string>

#include "runtime_core.hpp"

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

void worker::schedule_lifo(std::coroutine_handle<> h) {
  void* previous = lifo_;
  lifo_ = h.address();
  if (previous != nullptr) push_back(std::coroutine_handle<>::from_address(previous));
}

void worker::push_back(std::coroutine_handle<> h) {
  if (queue_.push_back(h, rt_.injection)) overflows_.add();
  // With one worker there is nobody to hand this to: this worker runs it itself.
  if (rt_.workers.size() > 1) rt_.notify_parked();
}

std::uint32_t worker::next_random() noexcept {
  // xorshift32: victim choice only needs to differ between workers and calls.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 17;
  rng_ ^= rng_ << 5;
  return rng_;
}

void worker::run() {
  current_worker = this;
  tls_runtime = &rt_;
  while (!rt_.is_stopping()) {
    ++tick_;
    if (auto h = next_task()) {
      run_task(h);
    } else if (auto stolen = steal_work()) {
      run_task(stolen);
    } else {
      park();
    }
  }
  current_worker = nullptr;
  tls_runtime = nullptr;
}

std::coroutine_handle<> worker::next_task() {
  if (tick_ % rt_.options.global_queue_interval == 0) {
    if (auto h = pull_injection()) return h;
  }
  if (auto h = queue_.pop()) return h;
  return pull_injection();
}

std::coroutine_handle<> worker::pull_injection() {
  if (rt_.injection.empty()) return {};
  // Take a fair share in one lock: enough to amortise it, never more than half our queue's room.
  const std::size_t share = rt_.injection.size() / rt_.workers.size() + 1;
  const std::size_t room = local_queue::capacity - queue_.size();
  std::size_t want = share < room ? share : room;
  if (want > local_queue::capacity / 2) want = local_queue::capacity / 2;
  if (want == 0) want = 1;
  void* batch[local_queue::capacity / 2];
  const auto n = rt_.injection.pop_batch(batch, want);
  if (n == 0) return {};
  injection_pulls_.add(n);
  for (std::size_t i = 1; i < n; ++i) {
    queue_.push_back(std::coroutine_handle<>::from_address(batch[i]), rt_.injection);
  }
  if (n > 1) rt_.notify_parked();
  return std::coroutine_handle<>::from_address(batch[0]);
}

std::coroutine_handle<> worker::steal_work() {
  if (!searching_) {
    if (!rt_.idle_set.transition_to_searching()) return {};
    searching_ = true;
  }
  const std::size_t n = rt_.workers.size();
  const std::size_t start = next_random() % n;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t victim = (start + i) % n;
    if (victim == index_) continue;
    std::uint32_t stolen = 0;
    if (auto h = rt_.workers[victim]->queue().steal_into(queue_, stolen)) {
      steals_.add();
      tasks_stolen_.add(stolen);
      return h;
    }
  }
  return pull_injection();
}

void worker::run_task(std::coroutine_handle<> h) {
  if (searching_) {
    searching_ = false;
    // The last searcher found work: there may be more, so let another worker look.
    if (rt_.idle_set.transition_from_searching()) rt_.notify_parked();
  }
  tasks_run_.add();
  h.resume();
  const std::uint32_t max_lifo = rt_.options.max_lifo_polls;
  for (std::uint32_t polls = 0; lifo_ != nullptr && !rt_.is_stopping();) {
    auto next = std::coroutine_handle<>::from_address(lifo_);
    lifo_ = nullptr;
    if (++polls > max_lifo) {
      // To the back of our own queue, without waking anyone: this worker takes it up as soon as
      // the tasks ahead of it ran, and waking a parked worker (25-35 us here) to steal a chain of
      // tasks that wake each other only moves the chain back and forth (chained_spawn).
      if (queue_.push_back(next, rt_.injection)) overflows_.add();
      break;
    }
    lifo_hits_.add();
    tasks_run_.add();
    next.resume();
  }
}

void worker::park() {
  const bool was_searching = searching_;
  searching_ = false;
  rt_.idle_set.transition_to_parked(index_, was_searching);
  // Re-check every queue after counting ourselves parked (a seq_cst read-modify-write): a push
  // that read the idle state before that saw us awake and woke nobody. This is needed for every
  // parking worker, not only the last searcher as in Tokio: a worker that could not become a
  // searcher may park just after the searcher's wake-up went elsewhere, while a task waits in
  // the queue of a worker that is busy with a long task (test
  // ATaskSpawnedFromOutsideAlwaysWakesAnIdleWorker).
  if (rt_.has_pending_work()) rt_.notify_parked();
  parks_.add();
  for (;;) {
    parker_.park();
    if (rt_.is_stopping()) return;
    if (!rt_.idle_set.is_parked(index_)) {
      searching_ = true;  // notify_parked counted us as searching
      return;
    }
  }
}

worker_stats worker::stats() const noexcept {
  worker_stats s;
  s.tasks_run = tasks_run_.get();
  s.steals = steals_.get();
  s.tasks_stolen = tasks_stolen_.get();
  s.parks = parks_.get();
  s.injection_pulls = injection_pulls_.get();
  s.lifo_hits = lifo_hits_.get();
  s.overflows = overflows_.get();
  return s;
}

void worker::drop_queued() noexcept {
  lifo_ = nullptr;
  while (queue_.pop()) {
  }
}

void runtime_core::schedule_remote(std::coroutine_handle<> h) {
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

bool runtime_core::has_pending_work() const noexcept {
  if (!injection.empty()) return true;
  for (const auto& w : workers) {
    if (w->queue().has_stealable()) return true;
  }
  return false;
}

}  // namespace weft::detail
