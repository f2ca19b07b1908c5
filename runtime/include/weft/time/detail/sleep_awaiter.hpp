// The machinery behind <weft/time/sleep.hpp>: the types its API returns and uses.
// Include that header, not this one.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <utility>
#include <weft/detail/await_check.hpp>
#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/io_op.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/detail/timer_entry.hpp>
#include <weft/time/clock.hpp>

namespace weft {

namespace detail {
class worker;

/// A timer in the awaiting task's worker's wheel. Fired or cancelled only on that worker's thread
/// (a cancellation from elsewhere is posted to its mailbox), so the awaiter is resumed exactly
/// once and never while a mailbox still refers to it.
class [[nodiscard("a sleep does nothing until it is co_awaited")]] sleep_awaiter {
 public:
  sleep_awaiter(clock::time_point deadline, std::uint8_t order) noexcept {
    entry_.deadline = deadline.time_since_epoch().count();
    entry_.order = order;
  }
  /// Movable until it is awaited (to hand it to a combinator: weft::timeout(1s, sleep_for(5s))).
  sleep_awaiter(sleep_awaiter&& other) noexcept {
    entry_.deadline = other.entry_.deadline;
    entry_.order = other.entry_.order;
    caller_ = std::exchange(other.caller_, std::noop_coroutine());  // the check moves with it
  }
  sleep_awaiter(const sleep_awaiter&) = delete;
  sleep_awaiter& operator=(const sleep_awaiter&) = delete;
  ~sleep_awaiter() {
#if WEFT_CHECK_AWAITED
    // Every co_await reaches suspend(), which records the caller first: no caller, no co_await.
    // (The awaiter has no room for await_check: a million sleepers hold a million of these.)
    if (!caller_) {
      report_unawaited(entry_.order == 0
                           ? "weft::sleep_for()/sleep_until() was never co_awaited: the task "
                             "does not wait"
                           : "weft::advance() was never co_awaited: the clock does not move");
    }
#endif
    release();
  }
  /// For a combinator that takes the sleep over and may drop it unawaited.
  void waive_await_check() noexcept {
    caller_ = std::noop_coroutine();
  }

  void describe_await(await_description& d) const {
    d.what = describe_deadline(entry_.order == 0 ? "sleep until" : "advance to", entry_.deadline,
                               d.now_ns);
  }
  bool await_ready() const noexcept {
    return false;
  }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> caller) {
    return suspend(caller, token_of(caller));
  }
  void await_resume();
  /// weft::or_cancelled's protocol: true if the deadline came, false if cancelled; never throws.
  bool await_resume_quietly() noexcept {
    const cancel_state* token = hook_.state();
    hook_.disarm();
    return state().load(std::memory_order_relaxed) != cancelled &&
           (token == nullptr || !token->is_cancelled());
  }

 protected:
  static constexpr std::uint8_t armed = 0, cancel_queued = 1, fired = 2, cancelled = 3;

  bool suspend(std::coroutine_handle<> caller, cancel_state * token);
  /// Unlinks the timer if the task is destroyed while it sleeps (runtime shutdown).
  void release() noexcept;
  static void on_fire(timer_entry * entry) noexcept;
  static void on_cancel(void* self) noexcept;
  static void on_mail(mailbox_node * node) noexcept;
  void cancel_on_owner() noexcept;
  std::atomic<std::uint8_t>& state() noexcept {
    return entry_.owner_state;
  }

  // Small on purpose (112 bytes): a million sleeping tasks hold a million of these, and memory
  // is what the timers workload costs. The fields the firing worker reads come first, together.
  timer_entry entry_;  // first: on_fire finds the awaiter from it (deadline, order inside)
  std::coroutine_handle<> caller_;
  worker* owner_ = nullptr;
  cancel_hook hook_;  // its state is the task's token, when it has one
  mailbox_node mail_;
};

/// A sleep that reports a cancellation instead of throwing it: true if the deadline came, false
/// if it was cancelled (the timeout combinator's timer, where a cancelled timer is the normal
/// case and an exception per call would cost microseconds).
class quiet_sleep_awaiter : public sleep_awaiter {
 public:
  using sleep_awaiter::sleep_awaiter;
  bool await_resume() noexcept { return await_resume_quietly(); }
};

/// sleep_for's deadline: now + d, saturating instead of overflowing for huge durations.
clock::time_point deadline_after(clock::duration d) noexcept;

/// `d` in the clock's nanoseconds, saturating (hours::max() does not fit in int64 nanoseconds).
template <class Rep, class Period>
constexpr clock::duration to_clock_duration(std::chrono::duration<Rep, Period> d) noexcept {
  using source = std::chrono::duration<Rep, Period>;
  constexpr auto max = clock::duration::max();
  constexpr auto min = clock::duration::min();
  if (d >= std::chrono::duration_cast<source>(max)) return max;
  if (d <= std::chrono::duration_cast<source>(min)) return min;
  return std::chrono::duration_cast<clock::duration>(d);
}
}  // namespace detail

}  // namespace weft
