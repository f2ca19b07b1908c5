// The deadline alarm: a timer in the arming worker's wheel that cancels a target once the work of
// its deadline's instant has run.
//
// Firing:
// 1. The wheel fires the entry at the deadline, in a batch with the instant's other timers. The
//    tasks those timers wake have not run yet, so cancelling now would cancel an operation that
//    finishes at exactly the deadline (its sleep fired, but its await_resume sees the token).
//    Instead the alarm re-links itself with the same deadline: it lands in the due list.
// 2. The worker looks at its timers again only when it has nothing to run (paused time: before
//    moving the clock; real time: when idle, or on its periodic event poll). The alarm moves
//    armed -> firing and queues a small coroutine on the worker.
// 3. That coroutine runs as a task: it requests cancellation on the target, records whether its
//    request was the first, and moves the alarm to fired. Why a task and not the timer callback
//    itself: cancellation callbacks wake their tasks with schedule_wake, which puts a task woken
//    on a worker into that worker's LIFO slot, and the worker runs its LIFO slot only after the
//    task that filled it. Woken from a timer callback, a cancelled waiter (a join, an event) would
//    sit there until some unrelated task ran; in paused time the clock would move on first.
//    A disarm() that came while the alarm was firing waits in firing_waited and is woken here.
// Disarming: on the owner's thread nothing can fire concurrently, so an armed timer is unlinked at
// once. Elsewhere only the owner may touch its wheel: the disarmer moves armed -> disarm_queued,
// posts the removal to the owner's mailbox and suspends; the owner unlinks the entry (if the wheel
// still holds it) and resumes the disarmer. A firing that finds disarm_queued does nothing.
#include <weft/detail/deadline_alarm.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <new>
#include <thread>
#include <type_traits>

#include <weft/detail/scheduler.hpp>

#include "scheduler/runtime_core.hpp"

namespace weft::detail {

// on_fire finds the alarm from its first member, on_mail from mail_.
static_assert(std::is_standard_layout_v<deadline_alarm>);

deadline_alarm::~deadline_alarm() {
  // Only a frame destroyed at shutdown (after its worker stopped) is still linked, or still
  // firing: its firing task sits in a worker queue that shutdown drops without running.
  if (entry_.linked()) owner_->timers().remove(&entry_);
  const auto s = state_.load(std::memory_order_acquire);
  if ((s == firing_state || s == firing_waited_state) && firing_) firing_.destroy();
}

void deadline_alarm::arm(clock::time_point deadline, cancel_state& target) {
  worker* w = this_worker();
  if (w == nullptr) throw_outside_runtime("weft::detail::deadline_alarm");
  owner_ = w;
  target_ = &target;
  settling_ = false;
  first_ = false;
  entry_.fire = &on_fire;
  state_.store(armed_state, std::memory_order_relaxed);
  w->add_timer(&entry_, deadline.time_since_epoch().count(), 0);
}

namespace {
/// The coroutine that performs a firing as a task (step 3). Its frame comes from the heap: it
/// exists only while a deadline fires, and it frees itself when it finishes.
struct firing_task {
  struct promise_type {
    firing_task get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};
}  // namespace

void deadline_alarm::on_fire(timer_entry* entry) noexcept {
  auto* a = reinterpret_cast<deadline_alarm*>(entry);
  if (!a->settling_) {
    // acquire: pairs with the acq_rel CAS of a disarm queued from another thread.
    if (a->state_.load(std::memory_order_acquire) != armed_state) return;  // its mail unlinks
    a->settling_ = true;
    // The deadline has passed, so this goes to the due list.
    a->owner_->add_timer(&a->entry_, a->entry_.deadline, 0);
    return;
  }
  auto expected = armed_state;
  if (!a->state_.compare_exchange_strong(expected, firing_state, std::memory_order_acq_rel)) {
    return;  // a disarm from another thread is queued in the mailbox
  }
  auto fire = [](deadline_alarm* alarm) -> firing_task {
    alarm->fire_now();
    co_return;
  }(a);
  a->firing_ = fire.handle;
  a->owner_->push_back(fire.handle);
}

void deadline_alarm::fire_now() noexcept {
  first_ = target_->request_cancel();
  // release: publishes first_. After this exchange a disarmer that did not wait may free *this.
  const auto previous = state_.exchange(fired_state, std::memory_order_acq_rel);
  if (previous == firing_waited_state) {
    // The disarmer is suspended until we resume it, so *this is alive. acquire (of the
    // exchange): pairs with its CAS to firing_waited, which published waiter_.
    schedule_wake(current_runtime(), waiter_);
  }
}

void deadline_alarm::on_mail(mailbox_node* node) noexcept {
  auto* a = reinterpret_cast<deadline_alarm*>(reinterpret_cast<char*>(node) -
                                              offsetof(deadline_alarm, mail_));
  if (a->entry_.linked()) a->owner_->timers().remove(&a->entry_);
  worker* owner = a->owner_;
  std::coroutine_handle<> waiter = a->waiter_;
  a->state_.store(disarmed_state, std::memory_order_release);
  owner->push_back(waiter);
}

bool deadline_alarm::disarm_here() noexcept {
  // acquire: pairs with the release exchange to fired_state.
  const auto s = state_.load(std::memory_order_acquire);
  if (s == idle_state || s == fired_state || s == disarmed_state) return true;
  if (s == armed_state && this_worker() == owner_) {
    // The owner's thread: the wheel cannot fire it concurrently, and nobody else disarms.
    if (entry_.linked()) owner_->timers().remove(&entry_);
    state_.store(disarmed_state, std::memory_order_relaxed);
    return true;
  }
  return false;  // armed on another worker, or firing: disarm_elsewhere decides
}

void deadline_alarm::disarm_blocking() noexcept {
  if (disarm_here()) return;
  runtime_core* rt = &owner_->rt();
  if (runtime_stopping(rt)) return;
  struct wait_state {
    std::atomic<bool> done{false};
    worker* helper = nullptr;
  };
  wait_state ws;
  ws.helper = current_worker_or_null();
  // disarm_elsewhere resumes a coroutine when the owner is done; this one only says so.
  auto waker = [](wait_state* s) -> firing_task {
    worker* helper = s->helper;  // read first: once `done` is set, *s may be gone
    s->done.store(true, std::memory_order_release);
    if (helper != nullptr) unpark_current_helper(helper);
    co_return;
  }(&ws);
  if (!disarm_elsewhere(waker.handle)) {
    waker.handle.destroy();  // done without waiting (fired meanwhile, or on the owner after all)
    return;
  }
  auto pending = [](void* s) {
    return !static_cast<wait_state*>(s)->done.load(std::memory_order_acquire);
  };
  if (help_while(pending, &ws)) return;
  while (pending(&ws) && !runtime_stopping(rt)) std::this_thread::yield();
}

bool deadline_alarm::disarm_elsewhere(std::coroutine_handle<> caller) noexcept {
  waiter_ = caller;
  auto s = state_.load(std::memory_order_acquire);
  for (;;) {
    if (s == armed_state) {
      if (this_worker() == owner_) {
        if (entry_.linked()) owner_->timers().remove(&entry_);
        state_.store(disarmed_state, std::memory_order_relaxed);
        return false;
      }
      // acq_rel: publishes waiter_ to the owner's on_mail.
      if (state_.compare_exchange_weak(s, disarm_queued_state, std::memory_order_acq_rel)) {
        mail_.run = &on_mail;
        owner_->io().post(&mail_);
        return true;
      }
    } else if (s == firing_state) {
      // acq_rel: publishes waiter_ to fire_now().
      if (state_.compare_exchange_weak(s, firing_waited_state, std::memory_order_acq_rel)) {
        return true;
      }
    } else {
      return false;  // fired (or never armed): nothing refers to the alarm any more
    }
  }
}

}  // namespace weft::detail
