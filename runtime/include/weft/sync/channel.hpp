// weft::channel<T>: a bounded multi-producer, multi-consumer channel with backpressure.
#pragma once

#include <atomic>
#include <cassert>
#include <coroutine>
#include <cstddef>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/await_check.hpp>
#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/scheduler.hpp>
#include <weft/detail/spin_lock.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/sync/channel_closed.hpp>
#include <weft/sync/detail/waiter_list.hpp>

namespace weft {

template <class T>
class channel;

/// A bounded channel: any number of tasks send, any number receive, each value is received once,
/// in the order sends completed. A full channel makes senders wait (backpressure); capacity 0 is
/// a rendezvous (a send completes when a receiver takes the value).
///
///     weft::channel<job> jobs{64};
///     co_await jobs.send(job{...});            // waits while 64 are queued
///     while (auto j = co_await jobs.recv()) run(*j);   // empty once closed and drained
///
/// Values are moved, never copied; move-only types work. Waiters are served first come, first
/// served. Thread safety: every member may be used concurrently from tasks on any worker (and
/// try_send/try_recv/close from plain threads); the channel must outlive its waiters.
/// Closing: close() wakes every waiting receiver (they drain what is buffered, then get an empty
/// optional) and every waiting sender (they throw channel_closed, which hands the value back);
/// a later send throws channel_closed the same way. Cancellation: a cancelled send throws
/// operation_cancelled and its value is destroyed unsent; a cancelled recv throws
/// operation_cancelled and takes nothing — unless the value was handed over first, which it then
/// returns.
template <class T>
class channel {
  // A value moves while a waiter is unlinked and about to be woken: a throwing move there would
  // leave that waiter asleep.
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "weft::channel needs a type whose move constructor does not throw");

 public:
  explicit channel(std::size_t capacity) : capacity_(capacity), buffer_(capacity) {}
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;
  ~channel() { assert(senders_.empty() && receivers_.empty() && "channel destroyed with waiters"); }

  class [[nodiscard("send does nothing until it is co_awaited")]] send_awaiter
      : detail::waiter,
        public detail::await_check {
   public:
    send_awaiter(channel & ch, T value)
        : await_check("weft::channel::send() was never co_awaited: nothing is sent"),
          ch_(ch),
          value_(std::move(value)) {}
    /// Movable until it is awaited (to hand it to a combinator).
    send_awaiter(send_awaiter&&) noexcept = default;
    send_awaiter(const send_awaiter&) = delete;
    send_awaiter& operator=(const send_awaiter&) = delete;
    ~send_awaiter() {
      ch_.withdraw(this, ch_.senders_);
    }

    void describe_await(await_description& d) const { d.what = "channel send"; }
    bool await_ready() const noexcept {
      mark_awaited();
      return false;
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      return ch_.suspend_send(*this, h, detail::token_of(h));
    }
    void await_resume() {
      hook.disarm();
      if (state == closed) throw channel_closed(std::move(value_));
      if (state == cancelled) throw operation_cancelled{};
    }

   private:
    friend class channel;
    static void on_cancel(void* self) noexcept {
      auto* a = static_cast<send_awaiter*>(self);
      a->ch_.cancel_waiter(a, a->ch_.senders_);
    }
    channel& ch_;
    T value_;
  };

  class [[nodiscard("recv does nothing until it is co_awaited")]] recv_awaiter
      : detail::waiter,
        public detail::await_check {
   public:
    explicit recv_awaiter(channel & ch) noexcept
        : await_check("weft::channel::recv() was never co_awaited: nothing is received"), ch_(ch) {}
    /// Movable until it is awaited (to hand it to a combinator: weft::timeout(1s, ch.recv())).
    recv_awaiter(recv_awaiter&&) noexcept = default;
    recv_awaiter(const recv_awaiter&) = delete;
    recv_awaiter& operator=(const recv_awaiter&) = delete;
    ~recv_awaiter() {
      ch_.withdraw(this, ch_.receivers_);
    }

    void describe_await(await_description& d) const { d.what = "channel recv"; }
    bool await_ready() const noexcept {
      mark_awaited();
      return false;
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      return ch_.suspend_recv(*this, h, detail::token_of(h));
    }
    std::optional<T> await_resume() {
      hook.disarm();
      if (state == cancelled) throw operation_cancelled{};
      return std::move(slot_);
    }

   private:
    friend class channel;
    static void on_cancel(void* self) noexcept {
      auto* a = static_cast<recv_awaiter*>(self);
      a->ch_.cancel_waiter(a, a->ch_.receivers_);
    }
    channel& ch_;
    std::optional<T> slot_;
  };

  /// Sends `value`, waiting while the channel is full. Throws channel_closed (with the value)
  /// if the channel is closed, operation_cancelled if the task is cancelled while it waits.
  [[nodiscard("send does nothing until it is co_awaited")]] send_awaiter send(T value) {
    return send_awaiter{*this, std::move(value)};
  }
  /// Receives the next value, waiting while the channel is empty; an empty optional once the
  /// channel is closed and drained.
  [[nodiscard("recv does nothing until it is co_awaited")]] recv_awaiter recv() noexcept {
    return recv_awaiter{*this};
  }

  /// Sends without waiting: true if `value` was taken (moved from), false if the channel is full
  /// or closed (`value` untouched).
  bool try_send(T& value) {
    detail::waiter* wake = nullptr;
    {
      std::lock_guard lock{lock_};
      if (closed_) return false;
      if (auto* r = static_cast<recv_awaiter*>(receivers_.pop_front_to_wake())) {
        r->slot_.emplace(std::move(value));
        r->state = detail::waiter::done;
        wake = r;
      } else if (count_ < capacity_) {
        push_locked(std::move(value));
      } else {
        return false;
      }
    }
    if (wake != nullptr) wake->wake();
    return true;
  }
  bool try_send(T&& value) { return try_send(value); }

  /// Receives without waiting: a value if one is buffered (or a sender waits), else empty.
  std::optional<T> try_recv() {
    std::optional<T> out;
    detail::waiter* wake = nullptr;
    {
      std::lock_guard lock{lock_};
      wake = take_locked(out);
    }
    if (wake != nullptr) wake->wake();
    return out;
  }

  /// Closes the channel: no more sends; receivers drain what is buffered. Idempotent.
  void close() noexcept {
    detail::waiter* list = nullptr;
    detail::waiter* closed_senders = nullptr;
    {
      std::lock_guard lock{lock_};
      if (closed_) return;
      closed_ = true;
      // Waiting receivers find nothing more to come (a waiting receiver means an empty buffer).
      list = receivers_.take_all(detail::waiter::done);
      closed_senders = senders_.take_all(detail::waiter::closed);
    }
    detail::wake_chain(list);
    detail::wake_chain(closed_senders);
  }

  [[nodiscard]] bool is_closed() const noexcept {
    std::lock_guard lock{lock_};
    return closed_;
  }
  /// Values buffered now (a snapshot).
  [[nodiscard]] std::size_t size() const noexcept {
    std::lock_guard lock{lock_};
    return count_;
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

 private:
  void push_locked(T&& v) {
    buffer_[(head_ + count_) % capacity_].emplace(std::move(v));
    ++count_;
  }

  /// Takes the next value into `out`; returns a sender to wake, if one was served.
  detail::waiter* take_locked(std::optional<T>& out) {
    if (count_ > 0) {
      auto& front = buffer_[head_];
      out.emplace(std::move(*front));
      front.reset();
      head_ = (head_ + 1) % capacity_;
      --count_;
      // Room now: the longest-waiting sender's value goes in behind the others.
      if (auto* s = static_cast<send_awaiter*>(senders_.pop_front_to_wake())) {
        push_locked(std::move(s->value_));
        s->state = detail::waiter::done;
        return s;
      }
      return nullptr;
    }
    // Rendezvous (or a full channel of capacity 0): take straight from a waiting sender.
    if (auto* s = static_cast<send_awaiter*>(senders_.pop_front_to_wake())) {
      out.emplace(std::move(s->value_));
      s->state = detail::waiter::done;
      return s;
    }
    return nullptr;
  }

  bool suspend_send(send_awaiter& a, std::coroutine_handle<> h, detail::cancel_state* token) {
    if (!a.begin(h, token)) return false;
    detail::waiter* wake = nullptr;
    bool finished = true;  // decided under the lock: once linked, peers write a.state
    {
      std::lock_guard lock{lock_};
      if (closed_) {
        a.state = detail::waiter::closed;
        return false;
      }
      if (auto* r = static_cast<recv_awaiter*>(receivers_.pop_front_to_wake())) {
        r->slot_.emplace(std::move(a.value_));
        r->state = detail::waiter::done;
        a.state = detail::waiter::done;
        wake = r;
      } else if (count_ < capacity_) {
        push_locked(std::move(a.value_));
        a.state = detail::waiter::done;
      } else {
        a.rt = &detail::require_runtime("weft::channel::send");
        senders_.push_back(&a);
        finished = false;
      }
    }
    if (finished) {
      if (wake != nullptr) wake->wake();
      return false;
    }
    // Registered after linking, so a cancellation finds the waiter in the list.
    return a.park(token, &send_awaiter::on_cancel, &a);
  }

  bool suspend_recv(recv_awaiter& a, std::coroutine_handle<> h, detail::cancel_state* token) {
    if (!a.begin(h, token)) return false;
    detail::waiter* wake = nullptr;
    bool finished = true;  // decided under the lock: once linked, peers write a.state
    {
      std::lock_guard lock{lock_};
      wake = take_locked(a.slot_);
      if (a.slot_.has_value() || closed_) {
        a.state = detail::waiter::done;
      } else {
        a.rt = &detail::require_runtime("weft::channel::recv");
        receivers_.push_back(&a);
        finished = false;
      }
    }
    if (finished) {
      if (wake != nullptr) wake->wake();
      return false;
    }
    return a.park(token, &recv_awaiter::on_cancel, &a);
  }

  void cancel_waiter(detail::waiter* w, detail::waiter_list& list) noexcept {
    detail::cancel_waiter(lock_, list, w);
  }
  void withdraw(detail::waiter* w, detail::waiter_list& list) noexcept {
    detail::withdraw_waiter(lock_, list, w);
  }

  const std::size_t capacity_;
  mutable detail::spin_lock lock_;
  // A ring of capacity_ slots; capacity 0 keeps none (every send waits for a receiver).
  std::vector<std::optional<T>> buffer_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  bool closed_ = false;
  detail::waiter_list senders_;
  detail::waiter_list receivers_;
};

}  // namespace weft
