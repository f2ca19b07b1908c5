// The runtime clock and the sleep awaiter: a timer in the awaiting task's worker's wheel,
// cancelled on that worker's thread (directly, or through its mailbox from another thread).
#include <weft/time/clock.hpp>
#include <weft/time/sleep.hpp>

#include <cstddef>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/scheduler.hpp>
#include <weft/runtime.hpp>

#include "scheduler/runtime_core.hpp"

namespace weft {

namespace {
/// The runtime a clock_scope bound this plain thread's clock to, if any.
thread_local const runtime* tls_clock_scope = nullptr;
}  // namespace

clock::time_point clock::now() noexcept {
  if (detail::runtime_core* rt = detail::tls_runtime) {
    return time_point{duration{rt->clock.now_ns()}};
  }
  if (const runtime* bound = tls_clock_scope) return bound->now();
  return time_point{duration{detail::steady_now_ns()}};
}

clock_scope::clock_scope(const runtime& rt) : previous_(tls_clock_scope) {
  if (detail::tls_runtime != nullptr) {
    throw std::logic_error(
        "weft::clock_scope: on a worker thread, whose clock::now() always reads its own "
        "runtime's clock; bind plain threads only");
  }
  tls_clock_scope = &rt;
}

clock_scope::~clock_scope() {
  tls_clock_scope = previous_;
}

namespace detail {

clock::time_point deadline_after(clock::duration d) noexcept {
  const auto now = clock::now();
  const auto since_epoch = now.time_since_epoch();
  const auto zero = clock::duration::zero();
  // Each bound is computed only where it cannot overflow itself.
  if (d > zero && since_epoch > zero && d > clock::duration::max() - since_epoch) {
    return clock::time_point::max();
  }
  if (d < zero && since_epoch < zero && d < clock::duration::min() - since_epoch) {
    return clock::time_point::min();
  }
  return now + d;
}

void sleep_awaiter::release() noexcept {
  hook_.disarm();
  // Only a task destroyed while it sleeps (runtime shutdown, after the worker stopped) is still
  // linked.
  if (entry_.linked()) owner_->timers().remove(&entry_);
}

bool sleep_awaiter::suspend(std::coroutine_handle<> caller, cancel_state* token) {
  caller_ = caller;
  if (token != nullptr && token->is_cancelled()) {
    state().store(cancelled, std::memory_order_relaxed);
    return false;
  }
  worker* w = this_worker();
  if (w == nullptr) {
    throw_outside_runtime(entry_.order == 0 ? "weft::sleep_for" : "weft::advance");
  }
  const std::int64_t deadline = entry_.deadline;
  // An elapsed deadline completes at once (advance(0) still lets the timers due now run first).
  // Real time compares with the wheel's last look at the clock instead of reading it again: a
  // deadline that passed since then goes to the due list and fires at the worker's next look.
  if (entry_.order == 0) {
    const std::int64_t known = w->rt().clock.paused()
                                   ? w->rt().clock.now_ns()
                                   : w->timers().tick_time(w->timers().elapsed());
    if (deadline <= known) return false;
  }
  owner_ = w;
  entry_.fire = &on_fire;
  w->add_timer(&entry_, deadline, entry_.order);
  if (!hook_.arm(token, &on_cancel, this)) {
    // Cancelled since the check above; we are still in await_suspend, so just do not suspend.
    w->timers().remove(&entry_);
    state().store(cancelled, std::memory_order_relaxed);
    return false;
  }
  return true;
}

// on_fire finds the awaiter from its first member.
static_assert(std::is_standard_layout_v<sleep_awaiter>);

void sleep_awaiter::on_fire(timer_entry* entry) noexcept {
  auto* a = reinterpret_cast<sleep_awaiter*>(entry);
  auto expected = armed;
  if (a->state().compare_exchange_strong(expected, fired, std::memory_order_acq_rel)) {
    // The task runs soon after this batch and first removes its cancellation registration: a
    // write to the hook and to the cancel word of its frame (a spawned task's lives in the frame
    // header, just before the frame). Fetch both for writing now.
    __builtin_prefetch(&a->hook_, 1);
    if (const cancel_state* token = a->hook_.state()) __builtin_prefetch(token, 1);
    a->owner_->resume_here(a->caller_);
  }
  // Otherwise a cancellation waits in the mailbox; it resumes the task.
}

void sleep_awaiter::on_cancel(void* self) noexcept {
  auto* a = static_cast<sleep_awaiter*>(self);
  auto expected = armed;
  if (this_worker() == a->owner_) {
    if (a->state().compare_exchange_strong(expected, cancelled, std::memory_order_acq_rel)) {
      a->cancel_on_owner();
    }
    return;
  }
  if (a->state().compare_exchange_strong(expected, cancel_queued, std::memory_order_acq_rel)) {
    a->mail_.run = &on_mail;
    a->owner_->io().post(&a->mail_);
  }
}

void sleep_awaiter::on_mail(mailbox_node* node) noexcept {
  auto* a = reinterpret_cast<sleep_awaiter*>(reinterpret_cast<char*>(node) -
                                             offsetof(sleep_awaiter, mail_));
  a->state().store(cancelled, std::memory_order_relaxed);
  a->cancel_on_owner();
}

void sleep_awaiter::cancel_on_owner() noexcept {
  if (entry_.linked()) owner_->timers().remove(&entry_);  // freed at once
  owner_->push_back(caller_);
}

void sleep_awaiter::await_resume() {
  const cancel_state* token = hook_.state();
  hook_.disarm();
  if (state().load(std::memory_order_relaxed) == cancelled ||
      (token != nullptr && token->is_cancelled())) {
    throw operation_cancelled{};
  }
}

}  // namespace detail

detail::sleep_awaiter advance(clock::duration d) {
  detail::runtime_core* rt = detail::tls_runtime;
  if (rt == nullptr) detail::throw_outside_runtime("weft::advance");
  if (!rt->clock.paused()) {
    throw std::logic_error(
        "weft::advance: the runtime's time is real; advance needs a runtime built with "
        "runtime_options::time = weft::time_mode::paused");
  }
  if (d < clock::duration::zero()) {
    throw std::invalid_argument("weft::advance: the duration is negative; time only moves forward");
  }
  return detail::sleep_awaiter{detail::deadline_after(d), 1};
}

}  // namespace weft
