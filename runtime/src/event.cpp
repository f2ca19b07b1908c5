// weft::event: waiters in an intrusive list under a spin lock; set() detaches the whole list and
// wakes each waiter through the scheduler, racing only with the waiters' own cancellation.
#include <weft/sync/event.hpp>

#include <cassert>
#include <mutex>

namespace weft {

namespace detail {

bool event_awaiter::await_ready() const noexcept { return event_->is_set(); }

bool event_awaiter::suspend(std::coroutine_handle<> caller, cancel_state* token) {
  caller_ = caller;
  rt_ = &require_runtime("weft::event::wait");
  if (token != nullptr && token->is_cancelled()) {
    cancelled_ = true;
    return false;
  }
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
    linked_ = true;
  }
  // Registered after linking: a cancellation arriving now finds the awaiter in the list.
  if (!hook_.arm(token, &on_cancel, this)) on_cancel(this);
  return gate_.suspend();
}

void event_awaiter::on_cancel(void* self) noexcept {
  auto* a = static_cast<event_awaiter*>(self);
  {
    std::lock_guard lock{a->event_->lock_};
    if (!a->linked_) return;  // set() took it and will wake it
    if (a->prev_ != nullptr) {
      a->prev_->next_ = a->next_;
    } else {
      a->event_->head_ = a->next_;
    }
    if (a->next_ != nullptr) {
      a->next_->prev_ = a->prev_;
    } else {
      a->event_->tail_ = a->prev_;
    }
    a->linked_ = false;
    a->cancelled_ = true;
  }
  a->wake();
}

void event_awaiter::wake() noexcept {
  if (gate_.wake()) schedule_wake(rt_, caller_);
}

void event_awaiter::await_resume() {
  hook_.disarm();
  if (cancelled_) throw operation_cancelled{};
}

}  // namespace detail

event::~event() { assert(head_ == nullptr && "weft::event destroyed while tasks wait on it"); }

void event::set() noexcept {
  detail::event_awaiter* list;
  {
    std::lock_guard lock{lock_};
    set_.store(true, std::memory_order_release);
    list = head_;
    head_ = tail_ = nullptr;
    for (auto* a = list; a != nullptr; a = a->next_) a->linked_ = false;
  }
  while (list != nullptr) {
    auto* next = list->next_;  // read before waking: the awaiter may be gone right after
    list->wake();
    list = next;
  }
}

void event::reset() noexcept {
  std::lock_guard lock{lock_};
  set_.store(false, std::memory_order_release);
}

}  // namespace weft
