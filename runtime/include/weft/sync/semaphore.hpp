// weft::semaphore: counted permits, acquired by tasks in the order they asked.
#pragma once

#include <coroutine>
#include <cstddef>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/await_check.hpp>
#include <weft/detail/spin_lock.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/sync/detail/waiter_list.hpp>

namespace weft {

/// A counting semaphore. `co_await s.acquire(n)` waits until n units are free and returns a
/// permit that gives them back when destroyed (or on release()). FIFO fair: a request waits
/// behind every earlier one, even if units are free for it now, so a large request cannot
/// starve.
///
///     weft::semaphore db_slots{8};
///     auto permit = co_await db_slots.acquire();   // at most 8 queries at once
///     co_await query(db);
///
/// Cancellation: a cancelled acquire throws operation_cancelled and holds nothing; the requests
/// behind it are served if its leaving frees the way. Shutdown: a request whose task the runtime
/// destroys leaves the queue the same way, and units granted to it before it could take them go
/// back: no unit is lost. Thread safety: any member from any thread (acquire from tasks); the
/// semaphore must outlive its waiters and permits. Errors:
/// std::invalid_argument for a request of 0 units; a request larger than the semaphore will ever
/// have waits forever (until cancelled).
class semaphore {
 public:
  explicit semaphore(std::size_t units) noexcept : available_(units) {}
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;
  ~semaphore();

  /// Units held until destroyed, moved or released.
  class permit {
   public:
    permit() noexcept = default;
    permit(permit&& o) noexcept
        : s_(std::exchange(o.s_, nullptr)), units_(std::exchange(o.units_, 0)) {}
    permit& operator=(permit&& o) noexcept {
      if (this != &o) {
        release();
        s_ = std::exchange(o.s_, nullptr);
        units_ = std::exchange(o.units_, 0);
      }
      return *this;
    }
    ~permit() { release(); }
    /// Gives the units back now.
    void release() noexcept {
      if (s_ != nullptr) std::exchange(s_, nullptr)->release(std::exchange(units_, 0));
    }
    [[nodiscard]] std::size_t units() const noexcept { return units_; }
    explicit operator bool() const noexcept { return s_ != nullptr; }

   private:
    friend class semaphore;
    permit(semaphore* s, std::size_t units) noexcept : s_(s), units_(units) {}
    semaphore* s_ = nullptr;
    std::size_t units_ = 0;
  };

  class [[nodiscard("lock() or acquire() does nothing until it is co_awaited")]] acquire_awaiter
      : detail::waiter,
        public detail::await_check {
   public:
    acquire_awaiter(semaphore & s, std::size_t units,
                    const char* what =
                        "weft::semaphore::acquire() was never co_awaited: "
                        "nothing is acquired",
                    bool is_mutex = false)
        : await_check(what), s_(s), units_(units), mutex_(is_mutex) {
      if (units == 0) {
        waive_await_check();
        throw std::invalid_argument("weft::semaphore::acquire: 0 units");
      }
    }
    /// Movable until it is awaited (to hand it to a combinator: weft::timeout(1s, s.acquire())).
    acquire_awaiter(acquire_awaiter&&) noexcept = default;
    acquire_awaiter(const acquire_awaiter&) = delete;
    acquire_awaiter& operator=(const acquire_awaiter&) = delete;
    ~acquire_awaiter() {
      s_.withdraw(this);
    }
    bool await_ready() const noexcept {
      mark_awaited();
      return false;
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      return s_.suspend(*this, h, detail::token_of(h));
    }
    /// "mutex lock (3 ahead)", "semaphore acquire 2 (0 ahead, 1 free)".
    void describe_await(await_description& d) const {
      d.what = s_.describe(*this);
    }
    permit await_resume() {
      hook.disarm();
      if (state == cancelled) throw operation_cancelled{};
      taken_ = true;
      return permit{&s_, units_};
    }
    /// weft::or_cancelled's protocol: the permit, or nothing when cancelled; never throws.
    std::optional<permit> await_resume_quietly() noexcept {
      hook.disarm();
      if (state == cancelled) return std::nullopt;
      taken_ = true;
      return permit{&s_, units_};
    }

   private:
    friend class semaphore;
    static void on_cancel(void* self) noexcept {
      auto* a = static_cast<acquire_awaiter*>(self);
      a->s_.cancel_waiter(a);
    }
    semaphore& s_;
    std::size_t units_;
    bool taken_ = false;  // the permit was handed out: the destructor gives nothing back
    bool mutex_ = false;  // a mutex's lock(), for dumps
  };

  /// Waits for `units` free units and takes them.
  [[nodiscard("acquire does nothing until it is co_awaited")]] acquire_awaiter acquire(
      std::size_t units = 1) {
    return acquire_awaiter{*this, units};
  }
  /// Takes `units` if they are free and nobody waits; an empty optional otherwise.
  std::optional<permit> try_acquire(std::size_t units = 1);
  /// Units free now (a snapshot).
  [[nodiscard]] std::size_t available() const noexcept;
  /// Requests waiting now, not yet granted (a snapshot, for metrics).
  [[nodiscard]] std::size_t waiting() const noexcept;
  struct counts_t {
    std::size_t available;
    std::size_t waiting;
  };
  /// available() and waiting() read together (one snapshot).
  [[nodiscard]] counts_t counts() const noexcept;

 private:
  void release(std::size_t units) noexcept;
  std::string describe(const acquire_awaiter& a) const;
  bool suspend(acquire_awaiter& a, std::coroutine_handle<> h, detail::cancel_state* token);
  void cancel_waiter(acquire_awaiter* a) noexcept;
  void withdraw(acquire_awaiter* a) noexcept;
  /// Serves waiters from the front while their requests fit; returns them chained by next.
  detail::waiter* grant_locked() noexcept;

  mutable detail::spin_lock lock_;
  std::size_t available_;
  std::size_t waiting_ = 0;  // the length of waiters_
  detail::waiter_list waiters_;
};

}  // namespace weft
