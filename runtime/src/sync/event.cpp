// weft::event: waiters in an intrusive list under a spin lock; set() detaches the whole list and
// wakes each waiter through the scheduler, racing only with the waiters' own cancellation.
#include <weft/sync/event.hpp>

#include <cassert>
#include <mutex>

namespace weft {

namespace detail {

// Never ready: the event is read in suspend(), after the awaiter's cancellation was checked, so a
// cancelled task's wait always throws.
bool event_awaiter::await_ready() const noexcept {
  mark_awaited();
  return false;
}

bool event_awaiter::suspend(std::coroutine_handle<> caller, cancel_state* token) {
  caller_ = caller;
  token_ = token;
  if (token != nullptr && token->is_cancelled()) {
    cancelled_ = true;
    return false;
  }
  if (event_->is_set()) return false;
  rt_ = &require_runtime("weft::event::wait");
  {
    std::lock_guard lock{event_->lock_};
    if (event_->set_.load(std::memory_order_relaxed)) return false;
    prev_ = event_->tail_;
    next_ = nullptr;
    if (event_->tail_ != nullptr) {
      event_->tail_->next_ = this;
    } else {
      event_->head_ = this;
    }
    event_->tail_ = this;
    linked_.store(true, std::memory_order_relaxed);
  }
  // Registered after linking: a cancellation arriving now finds the awaiter in the list.
  if (!hook_.arm(token, &on_cancel, this)) on_cancel(this);
  return gate_.suspend();
}

bool event_awaiter::unlink_locked() noexcept {
  if (!linked_.load(std::memory_order_relaxed)) return false;
  if (prev_ != nullptr) {
    prev_->next_ = next_;
  } else {
    event_->head_ = next_;
  }
  if (next_ != nullptr) {
    next_->prev_ = prev_;
  } else {
    event_->tail_ = prev_;
  }
  linked_.store(false, std::memory_order_relaxed);
  return true;
}

event_awaiter::~event_awaiter() {
  hook_.disarm();
  // acquire: set() clears linked_ only after its wake of this awaiter (release), so false means
  // it is done with us. True: still waiting (a task destroyed by shutdown), or set() is waking
  // us right now, from another thread while shutdown destroys our task: the lock waits for it.
  if (!linked_.load(std::memory_order_acquire)) return;
  std::lock_guard lock{event_->lock_};
  unlink_locked();
}

void event_awaiter::on_cancel(void* self) noexcept {
  auto* a = static_cast<event_awaiter*>(self);
  {
    std::lock_guard lock{a->event_->lock_};
    if (!a->unlink_locked()) return;  // set() took it and will wake it
    a->cancelled_ = true;
  }
  a->wake();
}

void event_awaiter::wake() noexcept {
  if (gate_.wake()) schedule_wake(rt_, caller_);
}

void event_awaiter::await_resume() {
  hook_.disarm();
  // Checked again: a cancellation between the check in suspend() and set() must win too.
  if (cancelled_ || (token_ != nullptr && token_->is_cancelled())) throw operation_cancelled{};
}

}  // namespace detail

event::~event() {
  assert(head_ == nullptr && "weft::event destroyed while tasks wait on it");
}

void event::set() noexcept {
  // Wakes under the lock: a waiter destroyed meanwhile (runtime shutdown, while a plain thread
  // sets the event) sees itself linked until its wake is over and waits for the lock in its
  // destructor, so neither it nor its runtime goes while set() still refers to them. Waking only
  // queues.
  std::lock_guard lock{lock_};
  set_.store(true, std::memory_order_release);
  detail::event_awaiter* list = head_;
  head_ = tail_ = nullptr;
  while (list != nullptr) {
    auto* next = list->next_;  // read before waking: the awaiter may resume on another worker
    list->wake();
    // After the wake: a resumed awaiter's destructor that still sees it linked takes the lock,
    // which we hold, and then finds nothing to unlink.
    list->linked_.store(false, std::memory_order_release);
    list = next;
  }
}

void event::reset() noexcept {
  std::lock_guard lock{lock_};
  set_.store(false, std::memory_order_release);
}

}  // namespace weft
