// The wait queue under channel, mutex, semaphore and barrier: intrusive FIFO lists of waiting
// tasks, each woken exactly once by whoever unlinks it under the primitive's lock.
//
// The waker unlinks under the lock and wakes after releasing it, so the waiter must outlive that
// gap: a task that runtime shutdown destroys while a plain thread (a from_callback producer, a
// close) is between the two would otherwise be freed under the waker, and its runtime with it.
// So whoever unlinks a waiter to wake it marks it (`waking`) under the lock, and the waiter's
// destructor waits until wake() is done with it; wake() pins the runtime before it lets go.
#pragma once

#include <atomic>
#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/scheduler.hpp>

namespace weft {

namespace detail {

/// Schedules `h` on `rt` for a waker that marked its waiter (`waking`), and clears the mark once
/// nothing more needs the waiter: on one of rt's workers at once; from any other thread after it
/// pinned `rt` (as runtime shutdown waits for), so the runtime cannot go while it queues `h`.
void schedule_marked_wake(runtime_core* rt, std::coroutine_handle<> h,
                          std::atomic<bool>& waking) noexcept;

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
  // Set under the primitive's lock by whoever unlinked the waiter and will wake it; cleared by
  // wake() when it is done with the waiter. (A cancellation's wake needs no mark: removing the
  // cancellation hook already waits for a callback that runs elsewhere.)
  std::atomic<bool> waking{false};

  waiter() noexcept = default;
  /// Moves an awaiter that was never awaited (handed to a combinator first): the new waiter
  /// starts fresh. Moving one that is linked is a bug in weft.
  waiter(waiter&& other) noexcept {
    assert(!other.linked && !other.caller && "weft: a waiter moved while it waits");
    (void)other;
  }
  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;
  /// Waits for a waker that unlinked this waiter and has not finished waking it (only a task
  /// destroyed by runtime shutdown can be here with one; everyone else was resumed by it).
  ~waiter() {
    while (waking.load(std::memory_order_acquire)) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
  }

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

  /// Under the primitive's lock, by whoever unlinked the waiter and will call wake().
  void mark_waking() noexcept {
    waking.store(true, std::memory_order_relaxed);
  }

  void wake() noexcept {
    // Read first: unmarked, the waiter may be gone as soon as the gate let it go.
    if (!waking.load(std::memory_order_relaxed)) {
      if (gate.wake()) schedule_wake(rt, caller);
      return;
    }
    // Marked, it stays until the mark is cleared; and rt and caller are read only once the gate
    // says the task suspended: a waiter linked before its await_suspend ran (the bulkhead's)
    // may still be writing them until then.
    if (gate.wake()) {
      schedule_marked_wake(rt, caller, waking);
    } else {
      // await_suspend has not returned yet and resumes the task itself.
      waking.store(false, std::memory_order_release);
    }
  }
};

/// A FIFO of waiters (intrusive, doubly linked for O(1) removal on cancellation).
/// How many waiters are ahead of `w` in its list (0 if it is not linked). Under the list's lock,
/// or while nothing can change it (a task dump).
inline std::size_t waiters_ahead(const waiter& w) noexcept {
  std::size_t n = 0;
  for (const waiter* p = w.linked ? w.prev : nullptr; p != nullptr; p = p->prev) ++n;
  return n;
}

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
  /// pop_front for a caller that wakes the waiter it gets (after releasing the lock).
  waiter* pop_front_to_wake() noexcept {
    waiter* w = pop_front();
    if (w != nullptr) w->mark_waking();
    return w;
  }

  /// Unlinks every waiter with `outcome`; returns them chained through `next`, to wake after the
  /// lock is released (wake_chain).
  waiter* take_all(std::uint8_t outcome) noexcept {
    waiter* chain = nullptr;
    waiter** tail_next = &chain;
    while (waiter* w = pop_front_to_wake()) {
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
/// (One unlinked by a waker that is still waking it is waited for by ~waiter.)
template <class Lock>
void withdraw_waiter(Lock& lock, waiter_list& list, waiter* w) noexcept {
  w->hook.disarm();
  std::lock_guard guard{lock};
  if (w->linked) list.erase(w);
}

}  // namespace detail

}  // namespace weft
