// weft::broadcast: every receiver sees every value, within a bounded window.
#pragma once

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/await_check.hpp>
#include <weft/detail/spin_lock.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/sync/detail/waiter_list.hpp>

namespace weft {

/// Thrown by broadcast_receiver::recv when the receiver fell more than the capacity behind:
/// missed() values are gone for it; its next recv() returns the oldest value still kept.
class broadcast_lagged : public std::runtime_error {
 public:
  explicit broadcast_lagged(std::uint64_t missed)
      : std::runtime_error("weft::broadcast: the receiver fell behind and missed " +
                           std::to_string(missed) + " values"),
        missed_(missed) {}
  [[nodiscard]] std::uint64_t missed() const noexcept { return missed_; }

 private:
  std::uint64_t missed_;
};

template <class T>
class broadcast;

/// One receiver: its own position in the stream of values.
template <class T>
class broadcast_receiver {
 public:
  class [[nodiscard("recv does nothing until it is co_awaited")]] awaiter
      : detail::waiter,
        public detail::await_check {
   public:
    explicit awaiter(broadcast_receiver & r) noexcept
        : await_check("weft::broadcast_receiver::recv() was never co_awaited: nothing is received"),
          r_(r) {}
    /// Movable until it is awaited (to hand it to a combinator).
    awaiter(awaiter&&) noexcept = default;
    awaiter(const awaiter&) = delete;
    awaiter& operator=(const awaiter&) = delete;
    ~awaiter() {
      r_.b_->withdraw(this);
    }
    void describe_await(await_description& d) const { d.what = "broadcast recv"; }
    bool await_ready() const noexcept {
      mark_awaited();
      return false;
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      return r_.b_->suspend(*this, h, detail::token_of(h));
    }
    std::optional<T> await_resume() {
      hook.disarm();
      if (state == cancelled) throw operation_cancelled{};
      return r_.b_->take(r_.next_);
    }

   private:
    friend class broadcast<T>;
    broadcast_receiver& r_;
  };

  /// The next value; throws broadcast_lagged if values were overwritten before this receiver
  /// read them; an empty optional once the broadcast closed and this receiver read everything.
  [[nodiscard("recv does nothing until it is co_awaited")]] awaiter recv() noexcept {
    return awaiter{*this};
  }

 private:
  friend class broadcast<T>;
  broadcast_receiver(broadcast<T>* b, std::uint64_t next) noexcept : b_(b), next_(next) {}
  broadcast<T>* b_;
  std::uint64_t next_;  // sequence number of the next value to read
};

/// A multi-consumer stream where every receiver (subscribed before a value was sent) sees every
/// value, in order. Senders never wait: the broadcast keeps the last `capacity` values, and a
/// receiver that falls further behind is told how many it missed (broadcast_lagged) and goes on
/// from the oldest value kept.
///
///     weft::broadcast<event> events{1024};
///     auto rx = events.subscribe();
///     events.send(ev);                        // from anywhere
///     while (auto e = co_await rx.recv()) handle(*e);
///
/// T must be copyable. Thread safety: any member from any thread (recv from tasks); the
/// broadcast must outlive its receivers. Cancellation: a cancelled recv throws
/// operation_cancelled and takes nothing.
template <class T>
class broadcast {
 public:
  explicit broadcast(std::size_t capacity) : ring_(capacity) {
    if (capacity == 0) throw std::invalid_argument("weft::broadcast: capacity 0");
  }
  broadcast(const broadcast&) = delete;
  broadcast& operator=(const broadcast&) = delete;
  ~broadcast() { assert(waiters_.empty() && "weft::broadcast destroyed while tasks wait on it"); }

  /// Appends a value for every receiver, overwriting the oldest beyond the capacity.
  /// Throws std::logic_error after close().
  void send(T v) {
    detail::waiter* list = nullptr;
    {
      std::lock_guard lock{lock_};
      if (closed_) throw std::logic_error("weft::broadcast::send: the broadcast is closed");
      ring_[tail_ % ring_.size()] = std::move(v);
      ++tail_;
      list = waiters_.take_all(detail::waiter::done);
    }
    detail::wake_chain(list);
  }
  /// No more values; receivers end after reading what is kept.
  void close() noexcept {
    detail::waiter* list = nullptr;
    {
      std::lock_guard lock{lock_};
      closed_ = true;
      list = waiters_.take_all(detail::waiter::done);
    }
    detail::wake_chain(list);
  }
  /// A receiver that sees the values sent from now on.
  [[nodiscard]] broadcast_receiver<T> subscribe() {
    std::lock_guard lock{lock_};
    return broadcast_receiver<T>{this, tail_};
  }

 private:
  friend class broadcast_receiver<T>;
  using awaiter = typename broadcast_receiver<T>::awaiter;

  bool suspend(awaiter& a, std::coroutine_handle<> h, detail::cancel_state* token) {
    if (!a.begin(h, token)) return false;
    {
      std::lock_guard lock{lock_};
      if (closed_ || a.r_.next_ < tail_) {
        a.state = detail::waiter::done;
        return false;
      }
      a.rt = &detail::require_runtime("weft::broadcast_receiver::recv");
      waiters_.push_back(&a);
    }
    return a.park(token, &on_cancel, &a);
  }
  static void on_cancel(void* self) noexcept {
    auto* a = static_cast<awaiter*>(self);
    detail::cancel_waiter(a->r_.b_->lock_, a->r_.b_->waiters_, a);
  }
  void withdraw(awaiter* a) noexcept { detail::withdraw_waiter(lock_, waiters_, a); }
  std::optional<T> take(std::uint64_t& next) {
    std::lock_guard lock{lock_};
    const std::uint64_t oldest = tail_ > ring_.size() ? tail_ - ring_.size() : 0;
    if (next < oldest) {
      const std::uint64_t missed = oldest - next;
      next = oldest;
      throw broadcast_lagged{missed};
    }
    if (next == tail_) return std::nullopt;           // closed and read to the end
    std::optional<T> v{*ring_[next % ring_.size()]};  // copied first: a throwing copy skips nothing
    ++next;
    return v;
  }

  detail::spin_lock lock_;
  std::vector<std::optional<T>> ring_;
  std::uint64_t tail_ = 0;  // sequence number of the next value sent
  bool closed_ = false;
  detail::waiter_list waiters_;
};

}  // namespace weft
