// weft::barrier: n tasks meet, phase after phase.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/await_check.hpp>
#include <weft/detail/spin_lock.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/sync/detail/waiter_list.hpp>

namespace weft {

/// A reusable barrier for n tasks: arrive_and_wait() suspends until n tasks arrived in this
/// phase; the n-th releases them all and the barrier starts the next phase. Returns the number
/// of the phase that completed (0, 1, …).
///
///     weft::barrier step{workers};
///     for (;;) { compute(part); co_await step.arrive_and_wait(); }
///
/// Cancellation: a cancelled waiter withdraws its arrival (the phase then needs another
/// arrival) and throws operation_cancelled. Thread safety: from tasks on any worker; the
/// barrier must outlive its waiters.
class barrier {
 public:
  explicit barrier(std::size_t n) : n_(n) {
    if (n == 0) throw std::invalid_argument("weft::barrier: 0 participants");
  }
  barrier(const barrier&) = delete;
  barrier& operator=(const barrier&) = delete;

  class [[nodiscard("arrive_and_wait does nothing until it is co_awaited")]] arrive_awaiter
      : detail::waiter,
        public detail::await_check {
   public:
    explicit arrive_awaiter(barrier & b) noexcept
        : await_check("weft::barrier::arrive_and_wait() was never co_awaited: nothing arrived"),
          b_(b) {}
    /// Movable until it is awaited (to hand it to a combinator).
    arrive_awaiter(arrive_awaiter&&) noexcept = default;
    arrive_awaiter(const arrive_awaiter&) = delete;
    arrive_awaiter& operator=(const arrive_awaiter&) = delete;
    ~arrive_awaiter() {
      hook.disarm();
      std::lock_guard lock{b_.lock_};
      if (linked) {
        b_.waiters_.erase(this);
        --b_.arrived_;
      }
    }
    void describe_await(await_description& d) const {
      std::lock_guard lock{b_.lock_};
      d.what = "barrier arrive_and_wait (" + std::to_string(b_.arrived_) + " of " +
               std::to_string(b_.n_) + " arrived)";
    }
    bool await_ready() const noexcept {
      mark_awaited();
      return false;
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      return b_.suspend(*this, h, detail::token_of(h));
    }
    std::uint64_t await_resume() {
      hook.disarm();
      if (state == cancelled) throw operation_cancelled{};
      return phase_;
    }

   private:
    friend class barrier;
    static void on_cancel(void* self) noexcept {
      auto* a = static_cast<arrive_awaiter*>(self);
      {
        std::lock_guard lock{a->b_.lock_};
        if (!a->linked) return;  // the phase completed first
        a->b_.waiters_.erase(a);
        --a->b_.arrived_;
        a->state = cancelled;
      }
      a->wake();
    }
    barrier& b_;
    std::uint64_t phase_ = 0;
  };

  [[nodiscard("arrive_and_wait does nothing until it is co_awaited")]] arrive_awaiter
  arrive_and_wait() noexcept {
    return arrive_awaiter{*this};
  }

 private:
  bool suspend(arrive_awaiter& a, std::coroutine_handle<> h, detail::cancel_state* token) {
    if (!a.begin(h, token)) return false;
    a.rt = &detail::require_runtime("weft::barrier::arrive_and_wait");
    detail::waiter* release = nullptr;
    bool completed = false;  // decided under the lock: once linked, the last arrival writes a.state
    {
      std::lock_guard lock{lock_};
      a.phase_ = phase_;
      if (++arrived_ < n_) {
        waiters_.push_back(&a);
      } else {
        completed = true;
        // The last arrival completes the phase and releases everyone in it.
        arrived_ = 0;
        ++phase_;
        a.state = detail::waiter::done;
        release = waiters_.take_all(detail::waiter::done);
      }
    }
    if (completed) {
      detail::wake_chain(release);
      return false;
    }
    return a.park(token, &arrive_awaiter::on_cancel, &a);
  }

  const std::size_t n_;
  detail::spin_lock lock_;
  std::size_t arrived_ = 0;  // guarded by lock_
  std::uint64_t phase_ = 0;  // guarded by lock_
  detail::waiter_list waiters_;
};

}  // namespace weft
