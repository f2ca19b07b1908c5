// weft::detail::deadline_alarm: a timer that requests cancellation on a cancel_state at a
// deadline, once the work that the deadline's instant woke has run. It lets a timeout bound an
// operation that the caller awaits directly, with no second task racing it.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>

#include <weft/detail/await_trace.hpp>
#include <weft/detail/cancel_state.hpp>
#include <weft/detail/io_op.hpp>
#include <weft/detail/timer_entry.hpp>
#include <weft/time/clock.hpp>

namespace weft::detail {

class worker;

/// Requests cancellation on a target cancel_state when the runtime clock reaches a deadline.
///
/// The request comes *after* the tasks woken at the deadline's instant have run (the alarm fires
/// once to move itself to the wheel's due list, and acts when the worker next looks at its timers,
/// which it does only when it has nothing else to run, or on its periodic event poll): an
/// operation that finishes at exactly the deadline is not cancelled. That is the "ties go to the
/// result" rule of a timeout layer. The request itself runs in a short task queued on the worker,
/// so the tasks it cancels are woken as from any other task.
///
///     cancel_state linked;               // the operation runs under it
///     deadline_alarm alarm;
///     alarm.arm(deadline, linked);       // on a worker
///     … co_await the operation …
///     co_await alarm.disarm();           // before `linked` or the alarm go away
///     if (alarm.first()) { /* the deadline, not the caller, cancelled it */ }
///
/// The alarm lives in the owner's frame (no allocation unless the deadline fires); its timer is
/// linked into the wheel of the worker that armed it and only that worker's thread touches the
/// wheel. disarm() completes without suspending on that worker; elsewhere (the task moved to
/// another worker) it posts the removal to the owner's mailbox and suspends until the owner did
/// it, and while the alarm is firing it waits for the firing to finish, so the alarm is never
/// freed while a wheel, a mailbox or a queued firing still points at it.
///
/// Thread safety: arm() and disarm() are called by the owning task; the firing runs on the owner
/// worker. Errors: arm() throws std::logic_error off a worker. Must be disarmed (and the disarm
/// awaited) before it is destroyed, except at runtime shutdown.
class deadline_alarm {
 public:
  deadline_alarm() noexcept = default;
  deadline_alarm(const deadline_alarm&) = delete;
  deadline_alarm& operator=(const deadline_alarm&) = delete;
  /// Unlinks the timer if the owner's frame is destroyed while armed (runtime shutdown).
  ~deadline_alarm();

  /// Links the timer into the calling worker's wheel. An elapsed deadline fires at the worker's
  /// next look at its timers. Precondition: not armed since the last completed disarm().
  void arm(clock::time_point deadline, cancel_state& target);

  /// True once the alarm requested cancellation on its target.
  [[nodiscard]] bool fired() const noexcept {
    // acquire: pairs with the release exchange in on_fire(), which publishes first_.
    return state_.load(std::memory_order_acquire) == fired_state;
  }
  /// True if the alarm's request was the one that cancelled the target (the target had not been
  /// cancelled before by anyone else).
  [[nodiscard]] bool first() const noexcept { return fired() && first_; }

  class disarm_awaiter {
   public:
    explicit disarm_awaiter(deadline_alarm& a) noexcept : alarm_(&a) {}
    void describe_await(await_description& d) const { d.what = "timeout disarm"; }
    bool await_ready() noexcept { return alarm_->disarm_here(); }
    bool await_suspend(std::coroutine_handle<> caller) noexcept {
      return alarm_->disarm_elsewhere(caller);
    }
    void await_resume() const noexcept {}

   private:
    deadline_alarm* alarm_;
  };
  /// disarm() for a destructor, which cannot suspend: on the owner's thread it unlinks at once;
  /// otherwise (armed on another worker, or firing) it waits by running this worker's loop (off a
  /// worker: by yielding) until the owner is done. Returns at once during runtime shutdown, where
  /// the destructor unlinks what is left.
  void disarm_blocking() noexcept;

  /// Cancels the timer, or waits until a firing in progress has finished. After it completes the
  /// alarm touches nothing any more and may be destroyed or armed again.
  [[nodiscard("disarm() does nothing until it is co_awaited")]] disarm_awaiter disarm() noexcept {
    return disarm_awaiter{*this};
  }

 private:
  // idle -> armed -> firing -> fired                   the deadline came (see deadline_alarm.cpp)
  // firing -> firing_waited -> fired                   a disarm waits for the firing task
  // armed -> disarmed                                  disarmed on the owner's thread
  // armed -> disarm_queued -> disarmed                 disarmed elsewhere, through the mailbox
  static constexpr std::uint8_t idle_state = 0, armed_state = 1, disarm_queued_state = 2,
                                firing_state = 3, firing_waited_state = 4, fired_state = 5,
                                disarmed_state = 6;

  static void on_fire(timer_entry* entry) noexcept;
  static void on_mail(mailbox_node* node) noexcept;
  void fire_now() noexcept;
  bool disarm_here() noexcept;
  bool disarm_elsewhere(std::coroutine_handle<> caller) noexcept;

  timer_entry entry_;  // first: on_fire finds the alarm from it
  mailbox_node mail_;
  std::atomic<std::uint8_t> state_{idle_state};
  bool settling_ = false;  // owner thread only: the second firing, from the due list
  bool first_ = false;     // written before the release that publishes fired_state
  worker* owner_ = nullptr;
  cancel_state* target_ = nullptr;
  std::coroutine_handle<> waiter_;  // a disarm() suspended until the owner is done
  // The queued firing task while firing: shutdown drops queued handles without running them, so
  // an alarm destroyed then frees the firing's frame itself.
  std::coroutine_handle<> firing_;
};

}  // namespace weft::detail
