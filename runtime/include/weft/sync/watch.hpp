// weft::watch: the latest value of something, and a way to wait for it to change.
#pragma once

#include <cassert>
#include <coroutine>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/await_check.hpp>
#include <weft/detail/spin_lock.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/sync/detail/waiter_list.hpp>

namespace weft {

template <class T>
class watch;

/// One subscriber of a watch: remembers which version it saw.
template <class T>
class watch_receiver {
 public:
  class [[nodiscard("changed does nothing until it is co_awaited")]] awaiter
      : detail::waiter,
        public detail::await_check {
   public:
    explicit awaiter(watch_receiver & r) noexcept
        : await_check(
              "weft::watch_receiver::changed() was never co_awaited: nothing is waited for"),
          r_(r) {}
    /// Movable until it is awaited (to hand it to a combinator).
    awaiter(awaiter&&) noexcept = default;
    awaiter(const awaiter&) = delete;
    awaiter& operator=(const awaiter&) = delete;
    ~awaiter() {
      r_.w_->withdraw(this);
    }
    void describe_await(await_description& d) const { d.what = "watch changed"; }
    bool await_ready() const noexcept {
      mark_awaited();
      return false;
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      return r_.w_->suspend(*this, h, detail::token_of(h));
    }
    std::optional<T> await_resume() {
      hook.disarm();
      if (state == cancelled) throw operation_cancelled{};
      return r_.w_->read(r_.seen_);
    }

   private:
    friend class watch<T>;
    watch_receiver& r_;
  };

  /// Waits until the value changed since this receiver last looked (at once if it has), and
  /// returns the newest value — intermediate values are skipped; empty once the watch closed.
  [[nodiscard("changed does nothing until it is co_awaited")]] awaiter changed() noexcept {
    return awaiter{*this};
  }
  /// The newest value (also after close), marking it seen.
  T get() { return w_->latest(seen_); }

 private:
  friend class watch<T>;
  watch_receiver(watch<T>* w, std::uint64_t seen) noexcept : w_(w), seen_(seen) {}
  watch<T>* w_;
  std::uint64_t seen_;
};

/// Holds the latest value; every send() replaces it and wakes the receivers waiting for a change
/// (what people use a BehaviorSubject for: configuration, health, the current leader).
///
///     weft::watch<config> current{load()};
///     auto rx = current.subscribe();
///     while (auto cfg = co_await rx.changed()) apply(*cfg);
///
/// T must be copyable (each receiver gets its own copy). Thread safety: any member from any
/// thread (changed() from tasks); the watch must outlive its receivers. close() ends every
/// receiver's changed() with an empty optional. Cancellation: a cancelled changed() throws
/// operation_cancelled.
template <class T>
class watch {
 public:
  explicit watch(T initial) : value_(std::move(initial)) {}
  watch(const watch&) = delete;
  watch& operator=(const watch&) = delete;
  ~watch() { assert(waiters_.empty() && "weft::watch destroyed while tasks wait on it"); }

  /// Replaces the value and wakes every waiting receiver. Throws std::logic_error after close().
  void send(T v) {
    detail::waiter* list = nullptr;
    {
      std::lock_guard lock{lock_};
      if (closed_) throw std::logic_error("weft::watch::send: the watch is closed");
      value_ = std::move(v);
      ++version_;
      list = waiters_.take_all(detail::waiter::done);
    }
    detail::wake_chain(list);
  }
  /// Ends the watch: waiting and later changed() return an empty optional.
  void close() noexcept {
    detail::waiter* list = nullptr;
    {
      std::lock_guard lock{lock_};
      closed_ = true;
      list = waiters_.take_all(detail::waiter::done);
    }
    detail::wake_chain(list);
  }
  /// A receiver that has seen the current value.
  [[nodiscard]] watch_receiver<T> subscribe() {
    std::lock_guard lock{lock_};
    return watch_receiver<T>{this, version_};
  }
  /// A copy of the current value.
  [[nodiscard]] T get() const {
    std::lock_guard lock{lock_};
    return value_;
  }

 private:
  friend class watch_receiver<T>;
  using awaiter = typename watch_receiver<T>::awaiter;

  bool suspend(awaiter& a, std::coroutine_handle<> h, detail::cancel_state* token) {
    if (!a.begin(h, token)) return false;
    {
      std::lock_guard lock{lock_};
      if (closed_ || version_ != a.r_.seen_) {
        a.state = detail::waiter::done;
        return false;
      }
      a.rt = &detail::require_runtime("weft::watch_receiver::changed");
      waiters_.push_back(&a);
    }
    return a.park(token, &on_cancel, &a);
  }
  static void on_cancel(void* self) noexcept {
    auto* a = static_cast<awaiter*>(self);
    detail::cancel_waiter(a->r_.w_->lock_, a->r_.w_->waiters_, a);
  }
  void withdraw(awaiter* a) noexcept { detail::withdraw_waiter(lock_, waiters_, a); }
  std::optional<T> read(std::uint64_t& seen) {
    std::lock_guard lock{lock_};
    if (closed_) return std::nullopt;  // closed: changed() ends, whatever was not seen yet
    seen = version_;
    return value_;
  }
  T latest(std::uint64_t& seen) {
    std::lock_guard lock{lock_};
    seen = version_;
    return value_;
  }

  mutable detail::spin_lock lock_;
  T value_;
  std::uint64_t version_ = 0;
  bool closed_ = false;
  detail::waiter_list waiters_;
};

}  // namespace weft
