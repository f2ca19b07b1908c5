// The wait queue under channel, mutex, semaphore and barrier: intrusive FIFO lists of waiting
// tasks, each woken exactly once by whoever unlinks it under the primitive's lock.
#pragma once

#include <coroutine>
#include <cstdint>
#include <mutex>

#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/scheduler.hpp>

namespace weft {

namespace detail {

/// A task waiting on a primitive: linked into one of its FIFO lists. Whoever unlinks it under the
/// primitive's lock (a peer serving it, a close, or its own cancellation) decides its outcome and
/// wakes it; the resume_gate keeps it from being resumed inside its own await_suspend.
struct waiter {
  static constexpr std::uint8_t waiting = 0, done = 1, closed = 2, cancelled = 3;

  waiter* prev = nullptr;
  waiter* next = nullptr;
  std::coroutine_handle<> caller;
  runtime_core* rt = nullptr;
  cancel_hook hook;
  resume_gate gate;
  std::uint8_t state = waiting;  // written under the primitive's lock before the wake
  bool linked = false;           // guarded by the primitive's lock

  /// The start of every await_suspend: records the caller; false (and the cancelled outcome)
  /// if its task is cancelled already, so it does not wait at all.
  bool begin(std::coroutine_handle<> h, const cancel_state* token) noexcept {
    caller = h;
    if (token != nullptr && token->is_cancelled()) {
      state = cancelled;
      return false;
    }
    return true;
  }

  /// The end of an await_suspend that linked the waiter (under the primitive's lock, now
  /// released): registers `on_cancel` — after linking, so a cancellation finds it — or runs it
  /// at once if the task was cancelled meanwhile; then suspends unless a waker came first.
  /// `context` is what on_cancel receives: the awaiter that derives from this waiter.
  bool park(cancel_state* token, cancel_node::callback_fn on_cancel, void* context) noexcept {
    if (!hook.arm(token, on_cancel, context)) on_cancel(context);
    return gate.suspend();
  }

  void wake() noexcept {
    if (gate.wake()) schedule_wake(rt, caller);
  }
};

/// A FIFO of waiters (intrusive, doubly linked for O(1) removal on cancellation).
struct waiter_list {
  waiter* head = nullptr;
  waiter* tail = nullptr;

  [[nodiscard]] bool empty() const noexcept { return head == nullptr; }
  void push_back(waiter* w) noexcept {
    w->prev = tail;
    w->next = nullptr;
    if (tail != nullptr) {
      tail->next = w;
    } else {
      head = w;
    }
    tail = w;
    w->linked = true;
  }
  void erase(waiter* w) noexcept {
    if (w->prev != nullptr) {
      w->prev->next = w->next;
    } else {
      head = w->next;
    }
    if (w->next != nullptr) {
      w->next->prev = w->prev;
    } else {
      tail = w->prev;
    }
    w->prev = w->next = nullptr;
    w->linked = false;
  }
  waiter* pop_front() noexcept {
    waiter* w = head;
    if (w != nullptr) erase(w);
    return w;
  }

  /// Unlinks every waiter with `outcome`; returns them chained through `next`, to wake after the
  /// lock is released (wake_chain).
  waiter* take_all(std::uint8_t outcome) noexcept {
    waiter* chain = nullptr;
    waiter** tail_next = &chain;
    while (waiter* w = pop_front()) {
      w->state = outcome;
      *tail_next = w;
      tail_next = &w->next;
    }
    return chain;
  }
};

/// Wakes a chain from take_all (in order); reads each link before the wake, since a woken waiter
/// may resume and vanish at once.
inline void wake_chain(waiter* chain) noexcept {
  while (chain != nullptr) {
    waiter* next = chain->next;
    chain->wake();
    chain = next;
  }
}

/// A waiter's cancellation callback: unlinks it as cancelled, unless whoever served it (or a
/// close) unlinked it first, whose outcome then stands; wakes it if it was the canceller's.
template <class Lock>
void cancel_waiter(Lock& lock, waiter_list& list, waiter* w) noexcept {
  {
    std::lock_guard guard{lock};
    if (!w->linked) return;
    list.erase(w);
    w->state = waiter::cancelled;
  }
  w->wake();
}

/// A waiter destroyed while still linked (runtime shutdown destroying its task) leaves its list.
template <class Lock>
void withdraw_waiter(Lock& lock, waiter_list& list, waiter* w) noexcept {
  w->hook.disarm();
  std::lock_guard guard{lock};
  if (w->linked) list.erase(w);
}

}  // namespace detail

}  // namespace weft
