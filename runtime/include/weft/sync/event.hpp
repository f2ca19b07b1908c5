// weft::event: a manual-reset signal that tasks can await.
#pragma once

#include <atomic>
#include <coroutine>
#include <utility>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/await_check.hpp>
#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/scheduler.hpp>
#include <weft/detail/spin_lock.hpp>
#include <weft/detail/task_frame.hpp>

namespace weft {

class event;

namespace detail {
class [[nodiscard("wait does nothing until it is co_awaited")]] event_awaiter : public await_check {
 public:
  explicit event_awaiter(event & e, const char* what =
                                        "weft::event::wait() was never co_awaited: "
                                        "nothing is waited for") noexcept
      : await_check(what), event_(&e) {}
  /// Movable until it is awaited (to hand it to a combinator: weft::timeout(1s, e.wait())).
  event_awaiter(event_awaiter&& other) noexcept
      : await_check(std::move(other)), event_(other.event_) {}
  event_awaiter(const event_awaiter&) = delete;
  event_awaiter& operator=(const event_awaiter&) = delete;
  /// Unlinks the waiter if its task is destroyed while waiting (runtime shutdown).
  ~event_awaiter();

  void describe_await(await_description& d) const { d.what = "event wait"; }
  bool await_ready() const noexcept;
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> caller) {
    return suspend(caller, token_of(caller));
  }
  void await_resume();

 private:
  friend class weft::event;
  bool suspend(std::coroutine_handle<> caller, cancel_state * token);
  static void on_cancel(void* self) noexcept;
  void wake() noexcept;
  bool unlink_locked() noexcept;  // false if set() already took it

  event* event_;
  std::coroutine_handle<> caller_;
  runtime_core* rt_ = nullptr;
  cancel_state* token_ = nullptr;
  event_awaiter* prev_ = nullptr;
  event_awaiter* next_ = nullptr;
  cancel_hook hook_;
  resume_gate gate_;
  // Invariant: linked_ is true exactly while this awaiter is in event_'s list; written under the
  // event's lock, read without it only by the destructor, once set() or a cancellation unlinked.
  std::atomic<bool> linked_{false};
  bool cancelled_ = false;
};
}  // namespace detail

/// A manual-reset event: `set()` releases every waiter and every later `wait()` until `reset()`.
///
///     weft::event ready;
///     weft::spawn(load_config_then_set(ready));
///     co_await ready.wait();
///
/// Thread safety: every member may be called concurrently, from tasks on any worker or from plain
/// threads; waiters resume on their own runtime. The event must outlive its waiters.
/// Cancellation: a cancelled wait() throws operation_cancelled, even if the event is set, and
/// leaves the event unchanged.
class event {
 public:
  explicit event(bool initially_set = false) noexcept : set_(initially_set) {}
  event(const event&) = delete;
  event& operator=(const event&) = delete;
  ~event();

  /// Sets the event and resumes every waiter.
  void set() noexcept;
  /// Clears the event; later waits suspend until the next set().
  void reset() noexcept;
  /// True while the event is set.
  [[nodiscard]] bool is_set() const noexcept { return set_.load(std::memory_order_acquire); }
  /// Suspends until the event is set; completes at once if it is.
  [[nodiscard("wait() does nothing until it is co_awaited")]] detail::event_awaiter
  wait() noexcept {
    return detail::event_awaiter{*this};
  }

 private:
  friend class detail::event_awaiter;
  std::atomic<bool> set_;
  detail::spin_lock lock_;
  // Invariant: the waiter list is non-empty only while set_ is false. Guarded by lock_.
  detail::event_awaiter* head_ = nullptr;
  detail::event_awaiter* tail_ = nullptr;
};

}  // namespace weft
