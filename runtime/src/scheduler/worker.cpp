// The worker loop: where tasks are taken from, when workers steal, and how they park.
//
// A worker's turn (worker::run):
// 1. Every global_queue_interval ticks: take from the injection queue first, so it cannot starve,
//    and poll the ring, the mailbox and the timer wheel, so a busy worker still submits its SQEs,
//    resumes completed I/O and fires timers.
// 2. Otherwise run a task whose I/O completed here, then pop the local queue, then the injection
//    queue.
// 3. After running a task, run what it woke (the LIFO slot) up to max_lifo_polls times in a row;
//    then the LIFO task goes to the back of the queue, so two tasks waking each other cannot
//    monopolise the worker.
// 4. Nothing local: poll the ring if I/O is in flight; with paused time, jump the clock to the
//    next timer. Then become a searcher (if fewer than half the workers search) and steal half of
//    another worker's queue, starting at a random victim; then try the injection queue again.
// 5. Still nothing: park (idle.hpp's protocol) in the ring's wait, bounded by the next timer. The
//    last searcher to park re-checks every queue first, because a push that saw it searching did
//    not wake anyone. A worker woken by its own completion or timer (not by a notification)
//    takes itself off the sleepers list before it runs anything.
#include "scheduler/worker.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include "scheduler/runtime_core.hpp"

namespace weft::detail {

namespace {
/// Starts loading a queued coroutine's frame (its header and first lines) before it runs: a task
/// queued long ago (a fan-out of a million) is cold, and the queue knows what runs next.
inline void prefetch_frame(void* frame) noexcept {
  __builtin_prefetch(static_cast<char*>(frame) - 32);
  __builtin_prefetch(static_cast<char*>(frame) + 32);
}

// 2^17 ns = 131 us: a timer is at most that late on an idle worker, and a 100 ms spread of
// sleeps spans about 760 level-0 slots. Paused time needs exact deadlines: 1 ns.
constexpr unsigned real_tick_shift = 17;
}  // namespace

worker::worker(runtime_core& rt, std::size_t index)
    : timing_(rt.options.timing_metrics),
      seeded_mode_(rt.options.schedule_seed != 0),
      rt_(rt),
      index_(index),
      rng_(static_cast<std::uint32_t>(index * 2 + 1)),
      reactor_(*this),
      parker_(reactor_),
      timers_(rt.clock.paused() ? 0 : real_tick_shift, rt.clock.start_ns()),
      seed_state_(rt.options.schedule_seed) {}

void worker::schedule_lifo(std::coroutine_handle<> h) {
  if (WEFT_UNLIKELY(seeded_mode_)) return seed_ready(h);
  void* previous = lifo_;
  lifo_ = h.address();
  if (WEFT_UNLIKELY(timing_)) lifo_stamp_ = steady_now_ns();
  if (previous != nullptr) push_back(std::coroutine_handle<>::from_address(previous));
}

bool worker::take_back_woken(void* frame) noexcept {
  if (lifo_ != frame) return false;
  lifo_ = nullptr;
  return true;
}

bool worker::take_back(void* queued) {
  if (WEFT_UNLIKELY(seeded_mode_)) return false;  // seeded schedules pick every task themselves
  if (lifo_ == queued) {
    lifo_ = nullptr;
    return true;
  }
  return queue_.take_back(queued);
}

void worker::push_back(std::coroutine_handle<> h) {
  if (WEFT_UNLIKELY(seeded_mode_)) return seed_ready(h);
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
  reactor_.open(rt_.options);
  rt_.worker_started();
  busy_since_ns_ = steady_now_ns();
  while (!rt_.is_stopping()) turn();
  reactor_.drain_for_shutdown();
  current_worker = nullptr;
  tls_runtime = nullptr;
}

void worker::attach_external() {
  reactor_.open(rt_.options);
  rt_.worker_started();
  busy_since_ns_ = steady_now_ns();
  wait_for_host();  // nothing is queued yet: the first spawn from anywhere signals the eventfd
}

void worker::detach_external() noexcept {
  current_worker = this;
  tls_runtime = &rt_;
  reactor_.drain_for_shutdown();
  current_worker = nullptr;
  tls_runtime = nullptr;
}

run_ready_result worker::run_ready(std::size_t max_resumptions) {
  // The host's thread is this worker only inside the call: outside, it is a plain thread, whose
  // spawns are queued and signalled like any other thread's.
  struct on_thread {
    explicit on_thread(worker* w) noexcept {
      current_worker = w;
      tls_runtime = &w->rt_;
    }
    ~on_thread() {
      current_worker = nullptr;
      tls_runtime = nullptr;
    }
  } scope{this};
  reactor_.drain_eventfd();
  reactor_.set_completion_signals(false);  // this call takes its completions itself
  parker_.leave_host();
  if (parked_in_host_) {
    parked_in_host_ = false;
    // Not on the list any more: a notifier took it off and counted this worker as searching.
    if (!rt_.idle_set.remove_sleeper(index_)) searching_ = true;
    busy_since_ns_ = steady_now_ns();
  }
  const std::uint64_t first = tasks_run_.get();
  // If the ring fails (io_uring_enter refused for good), the exception goes to the host with
  // the worker able to be woken again: signals on, counted parked unless work waits.
  struct restore_on_throw {
    worker& w;
    int exceptions = std::uncaught_exceptions();
    ~restore_on_throw() {
      if (std::uncaught_exceptions() == exceptions) return;
      w.reactor_.set_completion_signals(true);
      w.wait_for_host();
      w.reactor_.write_eventfd();  // let the host call again and see what is left
    }
  } restore{*this};
  poll_events();  // what completed while the host's loop waited, and the timers now due
  while (tasks_run_.get() - first < max_resumptions && !rt_.is_stopping()) {
    if (WEFT_UNLIKELY(rt_.pause_requested())) {
      rt_.pause_here();  // a dump from another thread reads the frames meanwhile
      continue;
    }
    ++tick_;
    if (tick_ % rt_.options.global_queue_interval == 0) poll_events();
    if (auto h = next_task()) {
      run_task(h);
      continue;
    }
    if (reactor_.busy() || reactor_.has_mail()) {
      poll_events();
      if (has_local_work()) continue;
    }
    if (!timers_.empty()) {
      fire_due_timers();
      if (has_local_work()) continue;
    }
    break;
  }
  run_ready_result r;
  r.resumed = static_cast<std::size_t>(tasks_run_.get() - first);
  // Signals back on, then take what completed while they were off: it signalled nothing (and
  // with deferred task work, work queued behind it would signal nothing either).
  reactor_.set_completion_signals(true);
  // Until a poll takes nothing: a kernel may run only part of the deferred work per enter
  // (6.13+ caps it and keeps the rest aside, without signalling), and completions that make no
  // task ready (a multishot's data with no reader waiting) would otherwise stay there.
  bool drained = false;
  for (int polls = 0; polls < 8 && !drained; ++polls) {
    drained = !reactor_.busy() || reactor_.poll() == 0;
    reactor_.run_mail();
  }
  if (!timers_.empty()) fire_due_timers();
  const std::int64_t wait = park_timeout();
  // Completions the fault injector holds back are released by polls, not by the kernel: keep
  // the host calling while it holds any.
  r.more = has_local_work() || !rt_.injection.empty() || wait == 0 || rt_.pause_requested() ||
           !drained || reactor_.holding();
  if (!r.more && !wait_for_host()) r.more = true;
  if (const auto next = timers_.next_expiration()) {
    r.next_timer = clock::time_point{clock::duration{timers_.tick_time(*next)}};
  }
  if (r.more) {
    r.timeout_ms = 0;
  } else if (wait > 0) {
    const std::int64_t ms = (wait + 999'999) / 1'000'000;
    r.timeout_ms = ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms);
  }
  return r;
}

bool worker::wait_for_host() {
  if (!parker_.park_in_host()) return false;
  const bool was_searching = searching_;
  searching_ = false;
  rt_.idle_set.transition_to_parked(index_, was_searching);
  parked_in_host_ = true;
  // As in park(): a push that read the idle state before the transition woke nobody.
  if (rt_.has_pending_work() || has_local_work() || reactor_.has_mail()) {
    parked_in_host_ = false;
    if (!rt_.idle_set.remove_sleeper(index_)) searching_ = true;
    parker_.leave_host();
    return false;
  }
  parks_.add();
  const std::int64_t now = steady_now_ns();
  busy_ns_.add(static_cast<std::uint64_t>(std::max<std::int64_t>(now - busy_since_ns_, 0)));
  return true;
}

void worker::turn() {
  // A dump pauses every worker here, between two tasks, while it reads the frames; the turn
  // ends there, so a shutdown that came meanwhile is seen before anything else runs.
  if (WEFT_UNLIKELY(rt_.pause_requested())) {
    rt_.pause_here();
    return;
  }
  ++tick_;
  if (tick_ % rt_.options.global_queue_interval == 0) poll_events();
  if (auto h = next_task()) {
    run_task(h);
    return;
  }
  if (reactor_.busy() || reactor_.has_mail()) {
    poll_events();
    if (has_local_work()) return;
  }
  if (rt_.clock.paused()) {
    if (paused_step()) return;
  } else if (!timers_.empty()) {
    fire_due_timers();
    if (has_local_work()) return;
  }
  if (auto stolen = steal_work()) {
    run_task(stolen);
  } else if (!busy_poll()) {
    park();
  }
}

bool worker::busy_poll() {
  const std::int64_t budget =
      std::chrono::duration_cast<std::chrono::nanoseconds>(rt_.options.busy_poll).count();
  // Only a ring with operations in flight can produce work by itself; paused time never waits.
  if (budget == 0 || !reactor_.busy() || rt_.clock.paused()) return false;
  const std::int64_t until = steady_now_ns() + budget;
  do {
    poll_events();
    // Only work this worker takes on its next turn ends the poll: its own queue, or the injection
    // queue, which any worker pulls from. Work in another worker's queue may not be stealable by
    // this one (the searcher limit): ending on it could loop here without ever parking.
    if (has_local_work() || !rt_.injection.empty()) {
      busy_poll_hits_.add();
      return true;
    }
    if (rt_.is_stopping() || rt_.pause_requested()) return true;  // the next turn handles both
  } while (steady_now_ns() < until);
  return false;
}

void worker::poll_events() {
  reactor_.poll();
  reactor_.run_mail();
  if (!rt_.clock.paused() && !timers_.empty()) fire_due_timers();
}

bool worker::has_local_work() const noexcept {
  return io_ready_next_ < io_ready_.size() || lifo_ != nullptr || queue_.size() > 0 ||
         !seeded_.empty();
}

void worker::add_timer(timer_entry* e, std::int64_t deadline_ns, std::uint8_t order) {
  timers_.insert(e, deadline_ns, order);
}

void worker::fire_due_timers() {
  const auto next = timers_.next_expiration();
  if (!next) return;
  const std::uint64_t now_tick = timers_.tick_floor(rt_.clock.now_ns());
  if (*next > now_tick) return;
  timers_.advance(now_tick, fired_);
  fire(fired_, false);
}

void worker::fire(std::vector<timer_entry*>& batch, bool ordered) noexcept {
  if (ordered) {
    // Deadline order, then weft::advance after the timers of its own instant, then FIFO.
    std::sort(batch.begin(), batch.end(), [](const timer_entry* a, const timer_entry* b) {
      if (a->deadline != b->deadline) return a->deadline < b->deadline;
      if (a->order != b->order) return a->order < b->order;
      return static_cast<std::int32_t>(a->seq - b->seq) < 0;
    });
  }
  timers_fired_.add(batch.size());
  const std::size_t n = batch.size();
  for (std::size_t i = 0; i < n; ++i) {
    // The awaiters are in cold coroutine frames: fetch a few ahead.
    if (i + 8 < n) __builtin_prefetch(batch[i + 8]);
    batch[i]->fire(batch[i]);
  }
  batch.clear();
}

bool worker::paused_step() {
  if (reactor_.busy()) {
    // In-flight I/O does not hold the clock, but what already completed runs first.
    reactor_.poll();
    if (has_local_work()) return true;
  }
  if (reactor_.run_mail() > 0 && has_local_work()) return true;
  // A spawn_blocking job may finish with what a sleeping timeout waits for: wait for it.
  if (rt_.blocking_in_flight() > 0) return false;
  const auto next = timers_.next_expiration();
  if (!next) return false;
  // The earliest occupied slot; a slot of a higher level only cascades its timers down, and the
  // next step finds the earliest of them (with 1 ns ticks a level-0 slot is one exact instant).
  timers_.advance(*next, fired_);
  if (!fired_.empty()) {
    std::int64_t earliest = fired_.front()->deadline;
    for (const timer_entry* e : fired_) earliest = std::min(earliest, e->deadline);
    rt_.clock.jump_to(std::max(earliest, timers_.tick_time(*next)));
    fire(fired_, true);
  }
  return true;
}

std::int64_t worker::park_timeout() const noexcept {
  if (rt_.clock.paused()) return -1;  // paused time moves only in paused_step
  const auto next = timers_.next_expiration();
  if (!next) return -1;
  const std::int64_t wait = timers_.tick_time(*next) - rt_.clock.now_ns();
  return wait > 0 ? wait : 0;
}

std::coroutine_handle<> worker::next_task() {
  if (WEFT_UNLIKELY(seeded_mode_)) return next_seeded();
  if (io_ready_next_ < io_ready_.size()) {
    if (WEFT_UNLIKELY(timing_)) count_delay(io_ready_stamps_[io_ready_next_]);
    void* h = io_ready_[io_ready_next_++];
    if (io_ready_next_ + 2 < io_ready_.size()) prefetch_frame(io_ready_[io_ready_next_ + 2]);
    if (io_ready_next_ == io_ready_.size()) {
      io_ready_.clear();
      io_ready_stamps_.clear();
      io_ready_next_ = 0;
    }
    return std::coroutine_handle<>::from_address(h);
  }
  // A task woken outside any task (by a timer callback or a mailbox request) waits in the LIFO
  // slot with no task to run it after: take it here, or it would wait behind the whole queue
  // (and, in paused time, the clock would jump past it).
  if (lifo_ != nullptr) {
    if (WEFT_UNLIKELY(timing_)) count_delay(lifo_stamp_);
    return std::coroutine_handle<>::from_address(std::exchange(lifo_, nullptr));
  }
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
  resume(h);
  // Seeded schedules choose among all ready tasks, the LIFO slot included.
  if (WEFT_UNLIKELY(seeded_mode_)) return;
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
    if (WEFT_UNLIKELY(timing_)) count_delay(lifo_stamp_);
    resume(next);
  }
}

void worker::resume(std::coroutine_handle<> h) {
  if (is_first_run(h.address())) {
    h = std::coroutine_handle<>::from_address(queued_frame(h.address()));
    if (skip_cancelled_start(h)) return;
  }
  tasks_run_.add();
  if (WEFT_UNLIKELY(static_cast<bool>(rt_.options.before_resume))) rt_.options.before_resume();
  // Odd while the outermost resumption runs; plain stores (only this thread writes), read by
  // the stall detector and stats. A resumption nested in it (help_while, in a task_group's
  // destructor) is part of it for the detector: the worker is inside the outer one throughout.
  const bool outermost = resume_depth_++ == 0;
  const std::uint64_t seq = resume_seq_.load(std::memory_order_relaxed);
  if (outermost) {
    running_.store(h.address(), std::memory_order_relaxed);
    resume_seq_.store(seq + 1, std::memory_order_release);
  }
  if (WEFT_UNLIKELY(timing_)) {
    const std::int64_t start = steady_now_ns();
    h.resume();
    const auto took = static_cast<std::uint64_t>(steady_now_ns() - start);
    resume_hist_[duration_histogram::bucket_of(took)].add();
    resume_sum_ns_.add(took);
  } else {
    h.resume();
  }
  --resume_depth_;
  if (outermost) {
    resume_seq_.store(seq + 2, std::memory_order_release);
    if (WEFT_UNLIKELY(stalled_seq_.load(std::memory_order_acquire) == seq + 1)) end_stall();
  }
}

void worker::count_delay(std::int64_t queued_ns) noexcept {
  const auto waited =
      static_cast<std::uint64_t>(std::max<std::int64_t>(steady_now_ns() - queued_ns, 0));
  delay_hist_[duration_histogram::bucket_of(waited)].add();
  delay_sum_ns_.add(waited);
}

void worker::seed_ready(std::coroutine_handle<> h) {
  seeded_.push_back({h.address(), seeded_batch_});
}

std::coroutine_handle<> worker::next_seeded() {
  // Everything made ready between two picks (by one resumption: its wake-ups, spawns and yields;
  // or by one poll or batch of timers) is one batch, kept in the order it became ready. A pick
  // takes the front of a batch chosen by the seeded generator. So what one step makes ready keeps
  // its order (timers of one instant run in deadline order, waiters woken together run in their
  // list's order, tasks spawned together start in spawn order, a task that spawns and then
  // yields lets the spawned one run first), and the seed decides how the batches interleave:
  // which task runs next among those that became ready independently.
  void* from_outside[64];
  while (std::size_t n = rt_.injection.pop_batch(from_outside, 64)) {
    for (std::size_t i = 0; i < n; ++i) seeded_.push_back({from_outside[i], seeded_batch_});
  }
  ++seeded_batch_;  // what the next resumption makes ready is a batch of its own
  if (seeded_.empty()) return {};
  // The front of each batch is its first entry: a batch's entries are contiguous, in order.
  seeded_front_index_.clear();
  for (std::size_t i = 0; i < seeded_.size(); ++i) {
    if (i == 0 || seeded_[i].batch != seeded_[i - 1].batch) seeded_front_index_.push_back(i);
  }
  // splitmix64: a full-period generator whose output depends on the seed alone.
  seed_state_ += 0x9E3779B97F4A7C15ULL;
  std::uint64_t z = seed_state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  const std::size_t pick =
      seeded_front_index_[static_cast<std::size_t>(z % seeded_front_index_.size())];
  void* h = seeded_[pick].frame;
  seeded_.erase(seeded_.begin() + static_cast<std::ptrdiff_t>(pick));
  return std::coroutine_handle<>::from_address(h);
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
  const std::int64_t parked_at = steady_now_ns();
  busy_ns_.add(static_cast<std::uint64_t>(std::max<std::int64_t>(parked_at - busy_since_ns_, 0)));
  struct busy_again {
    std::int64_t& since;
    ~busy_again() { since = steady_now_ns(); }
  } busy_guard{busy_since_ns_};
  for (;;) {
    const std::int64_t timeout = park_timeout();
    if (timeout != 0) parker_.park(timeout);  // the ring's wait also dispatches completions
    if (rt_.is_stopping()) return;
    reactor_.run_mail();
    if (!rt_.clock.paused() && !timers_.empty()) fire_due_timers();
    if (!rt_.idle_set.is_parked(index_)) {
      searching_ = true;  // notify_parked counted us as searching
      return;
    }
    if (has_local_work() || rt_.clock.paused() || helping_ > 0 || rt_.pause_requested()) {
      // Woken by our own completion or timer (or, paused, by anything: paused_step decides):
      // leave the sleepers list, unless a notifier took us off it meanwhile.
      if (!rt_.idle_set.remove_sleeper(index_)) searching_ = true;
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
  s.busy_poll_hits = busy_poll_hits_.get();
  s.injection_pulls = injection_pulls_.get();
  s.lifo_hits = lifo_hits_.get();
  s.overflows = overflows_.get();
  s.timers_fired = timers_fired_.get();
  s.stalls = stalls_.get();
  s.busy_ns = busy_ns_.get();
  s.local_queue = queue_.size();
  s.in_task = (resume_seq_.load(std::memory_order_acquire) & 1) != 0;
  for (std::size_t i = 0; i < duration_histogram::buckets; ++i) {
    s.resume_duration.counts[i] = resume_hist_[i].get();
    s.schedule_delay.counts[i] = delay_hist_[i].get();
  }
  s.resume_duration.sum_ns = resume_sum_ns_.get();
  s.schedule_delay.sum_ns = delay_sum_ns_.get();
  s.io_submitted = reactor_.sqes_submitted.get();
  s.io_completed = reactor_.completions.get();
  s.io_in_flight = s.io_submitted > s.io_completed ? s.io_submitted - s.io_completed : 0;
  s.io_enters = reactor_.enters.get();
  s.cq_overflows = reactor_.cq_overflows.get();
  s.sq_full = reactor_.sq_full.get();
  if (const fault_injector* f = reactor_.faults()) {
    s.injected_errors = f->errors.get();
    s.injected_short_transfers = f->short_transfers.get();
    s.injected_delays = f->delays.get();
    s.injected_enter_failures = f->enter_failures.get();
  }
  return s;
}

void worker::drop_queued() noexcept {
  lifo_ = nullptr;
  io_ready_.clear();
  io_ready_stamps_.clear();
  io_ready_next_ = 0;
  seeded_.clear();
  while (queue_.pop()) {
  }
}

void worker::collect_queued(std::vector<std::pair<void*, int>>& out) const {
  const int me = static_cast<int>(index_);
  if (lifo_ != nullptr) out.emplace_back(queued_frame(lifo_), me);
  for (std::size_t i = io_ready_next_; i < io_ready_.size(); ++i)
    out.emplace_back(io_ready_[i], me);
  for (const auto& e : seeded_) out.emplace_back(queued_frame(e.frame), me);
  std::vector<void*> queued;
  queue_.snapshot(queued);
  for (void* h : queued) out.emplace_back(queued_frame(h), me);
}

void worker::end_stall() noexcept {
  stall_report r = std::move(stall_);
  r.ended = true;
  r.elapsed =
      std::chrono::nanoseconds{std::max<std::int64_t>(steady_now_ns() - stall_since_ns_, 0)};
  rt_.report_stall(r);
}

}  // namespace weft::detail
