// weft::runtime and the life of a spawned task: spawn, completion, join, shutdown.
//
// A root's life (bits in frame_header::state):
// 1. spawn_root sets spawned|handle, links the frame into the registry and schedules it.
// 2. The task runs; at final_suspend complete_root sets complete. If the handle was already
//    dropped it unlinks and destroys the frame; if a joiner is registered (join_waiting) it
//    wakes it.
// 3. release_handle (a join consumed the result, or the handle was dropped) clears handle; if the
//    task had completed it unlinks and destroys the frame. Exactly one of 2 and 3 destroys it:
//    the one whose read-modify-write saw the other's bit.
// 4. Shutdown, after the workers stopped, pops every root from the registry and marks it
//    unlinked, so a handle released later does not touch the (possibly destroyed) runtime. A
//    finished root is left to its handle. An unfinished one gets aborted and is destroyed now,
//    running its destructors; if a handle still refers to it, the memory stays until that handle
//    is released (frame_gone tells the two apart), and a joiner is woken to see aborted.
#include <weft/runtime.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#include <sched.h>

#include <weft/detail/await_check.hpp>
#include <weft/detail/frame_pool.hpp>
#include <weft/detail/scheduler.hpp>
#include <weft/sync/detail/waiter_list.hpp>

#include "scheduler/runtime_core.hpp"

namespace weft {

namespace detail {

namespace {

std::size_t default_worker_count() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<std::size_t>(n);
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

runtime_options validated(runtime_options o) {
  if (o.faults.empty()) {
    if (const char* env = std::getenv("WEFT_FAULTS"); env != nullptr && *env != '\0') {
      try {
        o.faults = fault_plan::parse(env);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string{"weft::runtime: WEFT_FAULTS: "} + e.what());
      }
    }
  }
  o.faults.validate();
  if (o.workers > 0xFFFF) {
    throw std::invalid_argument("weft::runtime: workers = " + std::to_string(o.workers) +
                                " is more than the 65535 a runtime supports");
  }
  if (o.max_blocking_threads == 0) {
    throw std::invalid_argument(
        "weft::runtime: max_blocking_threads must be at least 1 (spawn_blocking needs a thread)");
  }
  if (o.global_queue_interval == 0) {
    throw std::invalid_argument("weft::runtime: global_queue_interval must be at least 1");
  }
  if (o.time == time_mode::paused) {
    if (o.workers == 0) o.workers = 1;
    if (o.workers != 1) {
      throw std::invalid_argument(
          "weft::runtime: paused time runs on exactly one worker (asked for " +
          std::to_string(o.workers) +
          "); with one worker the order of wake-ups is the same on every run");
    }
  }
  if (o.schedule_seed == 0 && o.time == time_mode::paused) {
    if (const char* env = std::getenv("WEFT_SCHEDULE_SEED"); env != nullptr && *env != '\0') {
      char* end = nullptr;
      const unsigned long long seed = std::strtoull(env, &end, 10);
      if (end == env || *end != '\0') {
        throw std::invalid_argument(std::string{"weft::runtime: WEFT_SCHEDULE_SEED = '"} + env +
                                    "' is not a decimal number");
      }
      o.schedule_seed = seed;
    }
  }
  if (o.schedule_seed != 0 && o.time != time_mode::paused) {
    throw std::invalid_argument(
        "weft::runtime: schedule_seed needs paused time (time_mode::paused, one worker): with "
        "real time and several workers the schedule depends on the machine, not on a seed");
  }
  if (o.busy_poll.count() < 0 || o.busy_poll > std::chrono::seconds{1}) {
    throw std::invalid_argument("weft::runtime: busy_poll = " +
                                std::to_string(o.busy_poll.count()) + " us must be from 0 to 1 s");
  }
  if (o.external_loop) {
    if (o.workers == 0) o.workers = 1;
    if (o.workers != 1) {
      throw std::invalid_argument(
          "weft::runtime: external_loop runs on exactly one worker, the thread that drives it "
          "(asked for " +
          std::to_string(o.workers) + ")");
    }
    if (o.time == time_mode::paused) {
      throw std::invalid_argument(
          "weft::runtime: external_loop needs real time: with paused time the clock jumps when "
          "the worker has nothing to run, and an external loop's worker waits in the host's loop");
    }
    if (o.busy_poll.count() != 0) {
      throw std::invalid_argument(
          "weft::runtime: busy_poll has no effect with external_loop (the host's loop waits, not "
          "a worker); leave it 0");
    }
  }
  if (o.stall_threshold.count() < 0) {
    throw std::invalid_argument("weft::runtime: stall_threshold must not be negative");
  }
  if (o.workers == 0) o.workers = default_worker_count();
  if (o.io_ring_entries == 0 || o.io_ring_entries > 32768 ||
      (o.io_ring_entries & (o.io_ring_entries - 1)) != 0) {
    throw std::invalid_argument(
        "weft::runtime: io_ring_entries = " + std::to_string(o.io_ring_entries) +
        " must be a power of two from 1 to 32768");
  }
  return o;
}

/// A thread in block_on waits for its root here.
/// The notification happens under the mutex: the waiting thread cannot see `done`, return and
/// destroy the waiter (it lives on block_on's stack) before the waker is finished with it.
struct block_waiter final : join_waiter {
  block_waiter() noexcept : join_waiter{&on_wake} {}
  static void on_wake(join_waiter* self) noexcept {
    auto* w = static_cast<block_waiter*>(self);
    std::lock_guard lock{w->mutex};
    w->done = true;  // the mutex publishes the task's result too
    w->cv.notify_one();
  }
  void wait() {
    std::unique_lock lock{mutex};
    cv.wait(lock, [this] { return done; });
  }
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
};

}  // namespace

[[noreturn]] void throw_empty_task(const char* api) {
  throw std::logic_error(std::string{api} +
                         ": the task is empty (moved from, already awaited or spawned, or "
                         "default-constructed); a task is awaited once");
}

[[noreturn]] void throw_empty_join_handle() {
  throw std::logic_error(
      "weft::join_handle: awaited an empty handle (moved from, detached or already awaited); a "
      "handle is awaited once");
}

[[noreturn]] void throw_aborted_join() {
  throw operation_cancelled(
      "weft::join_handle: the runtime shut down before the task finished; the task was "
      "destroyed");
}

[[noreturn]] void throw_unstarted_join() {
  throw operation_cancelled("weft: the task was cancelled before it started");
}

void* allocate_task_frame(std::size_t size) {
  void* block = frame_allocate(size + sizeof(frame_header));
  return new (block) frame_header{} + 1;
}

void free_task_frame(void* frame, std::size_t size) noexcept {
  frame_header* header = header_of(frame);
  const std::size_t total = size + sizeof(frame_header);
  // relaxed: aborted_bit was set by shutdown on this thread, before it destroyed the frame.
  const auto state = header->state.load(std::memory_order_relaxed);
  if (WEFT_UNLIKELY(state & id_bit)) forget_task_id(header);
  if (WEFT_UNLIKELY(state & aborted_bit)) {
    // The frame is dead: its first bytes now tell a handle released later how much to free.
    *static_cast<std::uint32_t*>(frame) = static_cast<std::uint32_t>(total);
    const auto old = header->state.fetch_or(frame_gone_bit, std::memory_order_acq_rel);
    if (old & handle_bit) return;  // the handle frees the memory when it is released
  }
  frame_deallocate(header, total);
}

void spawn_root(runtime_core* rt, std::coroutine_handle<> h, promise_base& p,
                const spawn_site& site) {
  frame_header* header = header_of(h.address());
  p.token_ = site.body_reads_cancel ? nullptr : &header->cancel;
  set_joiner(p, nullptr);
  worker* w = this_worker();
  const bool local = w != nullptr && &w->rt() == rt;
  std::uint32_t flags = spawned_bit | handle_bit;
#if WEFT_INTROSPECTION
  header->site = spawn_site_index(site.at);
  // Named before the task can run, finish and be freed.
  if (WEFT_UNLIKELY(!site.name.empty()) && rt->set_name(header, site.name)) flags |= named_bit;
#else
  (void)site;
#endif
  if (local) {
    header->state.store(flags | (static_cast<std::uint32_t>(w->index()) << shard_shift),
                        std::memory_order_relaxed);
    w->registry().insert(header);
    w->schedule_lifo(tagged_first_run(h));
    return;
  }
  header->state.store(flags | (external_shard << shard_shift), std::memory_order_relaxed);
  if (!rt->register_external(header)) {
    rt->unregister_name(header);
    header->state.store(0, std::memory_order_relaxed);
    h.destroy();
    throw std::logic_error(
        "weft::runtime::spawn: the runtime has shut down; the task was destroyed");
  }
  rt->schedule_remote(tagged_first_run(h));
}

const std::exception_ptr& unstarted_cancellation() noexcept {
  // Built once, without a throw; shared read-only by every root cancelled before it started.
  static const std::exception_ptr e = std::make_exception_ptr(
      operation_cancelled{"weft: the task was cancelled before it started"});
  return e;
}

bool skip_cancelled_start(std::coroutine_handle<> h) noexcept {
  // A root's token is its own header's cancel state (spawn_root), linked to whatever cancels it.
  promise_base& p = std::coroutine_handle<promise_base>::from_address(h.address()).promise();
  if (p.token_ == nullptr || !p.token_->is_cancelled()) return false;
  // Published by complete_root's release: whoever sees complete_bit sees this bit too.
  header_of(h.address())->state.fetch_or(cancelled_unstarted_bit, std::memory_order_relaxed);
  complete_root(h, p);  // as its final_suspend would: wakes the joiner, or frees a detached root
  return true;
}

void complete_root(std::coroutine_handle<> h, promise_base& p) noexcept {
  frame_header* header = header_of(h.address());
  // acq_rel: release publishes the result to the joiner; acquire sees its registration.
  const auto old = header->state.fetch_or(complete_bit, std::memory_order_acq_rel);
  // A work-first join's task, finishing during its inline step and waking its joiner: the
  // wake-up goes to this worker's LIFO slot (run_taken_inline).
  if (h.address() == inline_join_target && (old & join_waiting_bit)) inline_join_done = true;
  if (!(old & handle_bit)) {
    // Detached: nobody will take the result. Roots run only on their own runtime's workers.
    tls_runtime->unregister(header);
    h.destroy();
    return;
  }
  if (old & join_waiting_bit) {
    join_waiter* waiter = joiner_of(p);
    waiter->wake(waiter);
  }
}

void release_handle(runtime_core* rt, std::coroutine_handle<> h) noexcept {
  frame_header* header = header_of(h.address());
  const auto old = header->state.fetch_and(~handle_bit, std::memory_order_acq_rel);
  if (old & aborted_bit) {
    if (old & frame_gone_bit) {
      frame_deallocate(header, *static_cast<std::uint32_t*>(h.address()));
    }
    return;
  }
  if (old & complete_bit) {
    // After shutdown the runtime may be gone; it already unlinked the root.
    if (!(old & unlinked_bit)) rt->unregister(header);
    h.destroy();
  }
}

void block_on_root(runtime_core* rt, std::coroutine_handle<> h, promise_base& p,
                   const spawn_site& site) {
  if (this_worker() != nullptr) {
    h.destroy();
    throw std::logic_error(
        "weft::runtime::block_on: called on a worker thread, which it would block (and with one "
        "worker, deadlock); inside a task, co_await the task instead");
  }
  if (rt->options.external_loop && std::this_thread::get_id() == rt->loop_thread()) {
    h.destroy();
    throw std::logic_error(
        "weft::runtime::block_on: called on the thread that drives this external-loop runtime, "
        "which would wait for work only it can run; start the task with spawn(task, on_done) "
        "and go on with the loop");
  }
  block_waiter waiter;
  spawn_root(rt, h, p, site);
  // After spawn_root the task may already be running; register as its joiner.
  set_joiner(p, &waiter);
  const auto old =
      header_of(h.address())->state.fetch_or(join_waiting_bit, std::memory_order_acq_rel);
  if (old & (complete_bit | aborted_bit)) return;
  waiter.wait();
}

runtime_core::runtime_core(const runtime_options& o)
    : options(validated(o)),
      clock(options.time),
      idle_set(options.workers),
      blocking(options.max_blocking_threads, options.blocking_keep_alive) {
  workers.reserve(options.workers);
  for (std::size_t i = 0; i < options.workers; ++i) {
    workers.push_back(std::make_unique<worker>(*this, i));
  }
  if (options.external_loop) {
    // No thread: this one is the worker, inside run_ready. Its ring is set up here, on the
    // thread that will submit to it.
    loop_thread_ = std::this_thread::get_id();
    workers[0]->attach_external();
  } else {
    for (auto& w : workers) {
      w->thread = std::thread([wp = w.get()] { wp->run(); });
    }
  }
  // Wait until every worker has set its ring up: the runtime then answers io_available() and
  // the first wake-ups find each worker in its final state.
  for (;;) {
    const auto n = workers_started_.load(std::memory_order_acquire);
    if (n == workers.size()) break;
    workers_started_.wait(n, std::memory_order_acquire);
  }
  try {
    start_threads();
  } catch (...) {
    shutdown();  // the workers run already: stop them before the members go
    throw;
  }
}

void runtime_core::worker_started() noexcept {
  workers_started_.fetch_add(1, std::memory_order_release);
  workers_started_.notify_all();
}

runtime_core::~runtime_core() {
  shutdown();
  wait_for_foreign_calls();
}

void runtime_core::wait_for_foreign_calls() noexcept {
  // A thread that queued work for us may still be inside its wake-up call (foreign_call).
  while (foreign_calls_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

void submit_blocking(runtime_core& rt, std::shared_ptr<blocking_job> job) {
  rt.blocking_started();
  try {
    rt.blocking.submit(std::move(job));
  } catch (...) {
    rt.blocking_finished();
    throw;
  }
}

void runtime_core::unregister(frame_header* h) noexcept {
  const auto state = h->state.load(std::memory_order_relaxed);
  if (WEFT_UNLIKELY(state & named_bit)) unregister_name(h);
  const auto shard = state >> shard_shift;
  if (shard == external_shard) {
    external_registry_.remove(h);
  } else {
    workers[shard]->registry().remove(h);
  }
}

bool runtime_core::register_external(frame_header* h) {
  std::lock_guard guard{external_registry_.lock};
  if (closed_.load(std::memory_order_relaxed)) return false;
  external_registry_.insert_locked(h);
  return true;
}

void runtime_core::abort_root(frame_header* header) noexcept {
  auto h = std::coroutine_handle<>::from_address(header + 1);
  const auto old = header->state.fetch_or(unlinked_bit, std::memory_order_acq_rel);
  if (old & complete_bit) return;  // finished; its handle takes the result and frees it
  header->state.fetch_or(aborted_bit, std::memory_order_acq_rel);
  join_waiter* waiter = nullptr;
  if (old & join_waiting_bit) {
    waiter = joiner_of(std::coroutine_handle<promise_base>::from_address(h.address()).promise());
  }
  {
    shutdown_destroy_scope quiet;  // an awaiter it had made and not awaited is not misuse now
    h.destroy();
  }
  if (waiter != nullptr) waiter->wake(waiter);
}

void runtime_core::shutdown() {
  std::lock_guard guard{shutdown_mutex_};
  if (shut_down_) return;
  if (worker* w = this_worker(); w != nullptr && &w->rt() == this) {
    throw std::logic_error(
        "weft::runtime::shutdown: called on one of the runtime's own workers, which it would have "
        "to join; shut the runtime down from the thread that owns it");
  }
  if (options.external_loop && std::this_thread::get_id() != loop_thread_) {
    throw std::logic_error(
        "weft::runtime::shutdown: an external-loop runtime shuts down on the thread that drives "
        "it (its io_uring belongs to that thread)");
  }
  {
    std::lock_guard registry_guard{external_registry_.lock};
    closed_.store(true, std::memory_order_release);
  }
  stopping_.store(true, std::memory_order_release);
  {
    std::lock_guard pause_guard{pause_mutex_};  // a worker paused for a dump leaves its pause
  }
  pause_cv_.notify_all();
  stop_threads();
  for (auto& w : workers) w->park_state().unpark();
  for (auto& w : workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  // An external loop's worker drains its ring here, on its own thread (checked above).
  if (options.external_loop) workers[0]->detach_external();
  // Sockets may outlive us: their multishots learn that their workers are gone (and the closes
  // posted to a worker that stopped first are finished) before any task is destroyed.
  for (auto& w : workers) multishot::worker_gone(*w);
  blocking.shutdown();
  wait_for_foreign_calls();
  std::lock_guard dump_guard{dump_mutex_};  // a dump from another thread reads frames until done
  // Destroy what never finished. Destructors may release handles of other roots, which unlink
  // those from their shard, so pop one at a time.
  for (auto& w : workers) {
    while (frame_header* h = w->registry().pop()) abort_root(h);
  }
  while (frame_header* h = external_registry_.pop()) abort_root(h);
  for (auto& w : workers) w->drop_queued();
  void* drained[256];
  while (injection.pop_batch(drained, 256) > 0) {
  }
  {
    std::lock_guard names_guard{names_lock_};
    names_.clear();
  }
  shut_down_ = true;
}

// For waiter_list.hpp's wake protocol: the waker marked the waiter `waking`, so the waiter's
// frame (and with it, at shutdown, the runtime) cannot go until `waking` is cleared. A worker of
// `rt` clears it and queues at once (shutdown destroys frames only after the workers stopped); any
// other thread first pins `rt` as a foreign call, which the runtime's destruction waits for.
void schedule_marked_wake(runtime_core* rt, std::coroutine_handle<> h,
                          std::atomic<bool>& waking) noexcept {
  worker* w = this_worker();
  if (w != nullptr && &w->rt() == rt) {
    waking.store(false, std::memory_order_release);
    w->schedule_lifo(h);
    return;
  }
  runtime_core::foreign_call pin{*rt};
  waking.store(false, std::memory_order_release);
  // The frame may be destroyed from here on, but only by shutdown, which never runs it again.
  rt->schedule_remote(h);
}

run_ready_result runtime_core::run_ready(std::size_t max_resumptions) {
  if (!options.external_loop) {
    throw std::logic_error(
        "weft::runtime::run_ready: this runtime runs its own worker threads; run_ready drives a "
        "runtime built with runtime_options::external_loop");
  }
  if (this_worker() != nullptr) {
    throw std::logic_error(
        "weft::runtime::run_ready: called from inside a task; only the host's loop drives the "
        "runtime");
  }
  if (std::this_thread::get_id() != loop_thread_) {
    throw std::logic_error(
        "weft::runtime::run_ready: called on a thread other than the one that constructed the "
        "runtime, which owns its io_uring; from other threads, spawn or cancel instead");
  }
  if (max_resumptions == 0) {
    throw std::invalid_argument("weft::runtime::run_ready: max_resumptions must be at least 1");
  }
  if (is_stopping()) return {};
  return workers[0]->run_ready(max_resumptions);
}

runtime_stats runtime_core::stats() const {
  runtime_stats s;
  s.workers.reserve(workers.size());
  for (const auto& w : workers) {
    s.workers.push_back(w->stats());
    s.live_tasks += w->registry().size();
  }
  s.live_tasks += external_registry_.size();
  s.blocking_threads = blocking.threads();
  s.blocking_queue = blocking.queued();
  s.blocking_in_flight = blocking_in_flight();
  s.injection_queue = injection.size();
  s.ready_tasks = s.injection_queue;
  for (const auto& w : s.workers) {
    s.ready_tasks += w.local_queue;
    s.running_tasks += w.in_task ? 1 : 0;
  }
  s.ready_tasks = std::min(s.ready_tasks, s.live_tasks);
  s.running_tasks = std::min(s.running_tasks, s.live_tasks - s.ready_tasks);
  s.suspended_tasks = s.live_tasks - s.ready_tasks - s.running_tasks;
  s.dumps = dumps_.load(std::memory_order_relaxed);
  s.last_dump_pause_ns = last_dump_pause_ns_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace detail

runtime::runtime(runtime_options options)
    : core_(std::make_unique<detail::runtime_core>(options)) {}

runtime::~runtime() {
  if (core_) core_->shutdown();
}

void runtime::shutdown() {
  core_->shutdown();
}

runtime_stats runtime::stats() const {
  return core_->stats();
}

std::size_t runtime::worker_count() const noexcept {
  return core_->workers.size();
}

bool this_thread_is_worker() noexcept {
  return detail::current_runtime() != nullptr;
}

bool runtime::on_worker_thread() const noexcept {
  auto* w = detail::this_worker();
  return w != nullptr && &w->rt() == core_.get();
}

clock::time_point runtime::now() const noexcept {
  return clock::time_point{clock::duration{core_->clock.now_ns()}};
}

int runtime::event_fd() const noexcept {
  return core_->options.external_loop ? core_->workers[0]->io().event_fd() : -1;
}

run_ready_result runtime::run_ready(std::size_t max_resumptions) {
  return core_->run_ready(max_resumptions);
}

bool runtime::io_available() const {
  // Every worker sets its ring up the same way; worker 0 speaks for all once it has started.
  return core_->workers[0]->io().available();
}

std::string runtime::io_error() const {
  return core_->workers[0]->io().error_message();
}

std::vector<task_record> runtime::dump_tasks() const {
  return core_->dump_tasks();
}

runtime& default_runtime() {
  static runtime rt{};
  return rt;
}

}  // namespace weft
