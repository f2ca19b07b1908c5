// weft::oneshot: one value (or one exception) from one producer to one consumer.
#pragma once

#include <coroutine>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/spin_lock.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/sync/detail/waiter_list.hpp>

namespace weft {

/// What a oneshot receiver gets when its sender was destroyed without sending.
class broken_oneshot : public std::runtime_error {
 public:
  broken_oneshot()
      : std::runtime_error("weft::oneshot: the sender was destroyed without sending a value") {}
};

template <class T>
class oneshot_sender;
template <class T>
class oneshot_receiver;

namespace detail {
template <class T>
struct oneshot_state {
  spin_lock lock;
  std::optional<T> value;      // guarded by lock
  std::exception_ptr error;    // guarded by lock
  bool settled = false;        // a value, an error, or the sender gone; guarded by lock
  waiter* receiver = nullptr;  // guarded by lock
};
}  // namespace detail

/// Makes a connected pair: the sender sends once, the receiver awaits once.
///
///     auto [tx, rx] = weft::make_oneshot<int>();
///     weft::spawn(compute_into(std::move(tx)));
///     int v = co_await std::move(rx);    // or the exception compute_into sent
template <class T>
std::pair<oneshot_sender<T>, oneshot_receiver<T>> make_oneshot() {
  auto state = std::make_shared<detail::oneshot_state<T>>();
  return {oneshot_sender<T>{state}, oneshot_receiver<T>{std::move(state)}};
}

/// The producing end. send() or fail() once; destroying it unsent wakes the receiver with
/// broken_oneshot. Thread safety: one sender used by one thread at a time; any thread.
template <class T>
class oneshot_sender {
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "weft::oneshot needs a type whose move constructor does not throw");

 public:
  oneshot_sender() noexcept = default;
  oneshot_sender(oneshot_sender&&) noexcept = default;
  oneshot_sender& operator=(oneshot_sender&& o) noexcept {
    if (this != &o) {
      settle({}, std::make_exception_ptr(broken_oneshot{}));
      state_ = std::move(o.state_);
    }
    return *this;
  }
  ~oneshot_sender() {
    if (state_) settle({}, std::make_exception_ptr(broken_oneshot{}));
  }

  /// Sends the value. Throws std::logic_error if this sender already sent (or is empty).
  void send(T value) { settle_or_throw(std::optional<T>{std::move(value)}, nullptr); }
  /// Sends an exception for the receiver to rethrow.
  void fail(std::exception_ptr e) {
    if (!e) throw std::invalid_argument("weft::oneshot_sender::fail: a null exception_ptr");
    settle_or_throw(std::nullopt, std::move(e));
  }

 private:
  friend std::pair<oneshot_sender<T>, oneshot_receiver<T>> make_oneshot<T>();
  explicit oneshot_sender(std::shared_ptr<detail::oneshot_state<T>> s) noexcept
      : state_(std::move(s)) {}

  void settle_or_throw(std::optional<T> v, std::exception_ptr e) {
    if (!state_) throw std::logic_error("weft::oneshot_sender: already sent (or empty)");
    settle(std::move(v), std::move(e));
  }
  void settle(std::optional<T> v, std::exception_ptr e) noexcept {
    auto state = std::move(state_);
    if (!state) return;
    detail::waiter* wake = nullptr;
    {
      std::lock_guard lock{state->lock};
      state->value = std::move(v);
      state->error = std::move(e);
      state->settled = true;
      wake = std::exchange(state->receiver, nullptr);
      if (wake != nullptr) {
        wake->state = detail::waiter::done;
        wake->mark_waking();  // its frame waits for this wake if shutdown destroys it meanwhile
      }
    }
    if (wake != nullptr) wake->wake();
  }

  std::shared_ptr<detail::oneshot_state<T>> state_;
};

/// The consuming end: `co_await std::move(rx)` returns the value, rethrows the sent exception,
/// or throws broken_oneshot. Awaited once (a second await throws std::logic_error).
/// Cancellation: a cancelled wait throws operation_cancelled; the value, if it comes later, is
/// dropped with the state.
template <class T>
class oneshot_receiver {
 public:
  oneshot_receiver() noexcept = default;
  oneshot_receiver(oneshot_receiver&&) noexcept = default;
  oneshot_receiver& operator=(oneshot_receiver&&) noexcept = default;

  /// True once the sender sent, failed or was destroyed.
  [[nodiscard]] bool is_ready() const noexcept {
    if (!state_) return false;
    std::lock_guard lock{state_->lock};
    return state_->settled;
  }

  class awaiter : detail::waiter {
   public:
    explicit awaiter(std::shared_ptr<detail::oneshot_state<T>> s) : s_(std::move(s)) {
      if (!s_) throw std::logic_error("weft::oneshot_receiver: awaited twice (or empty)");
    }
    awaiter(const awaiter&) = delete;
    awaiter& operator=(const awaiter&) = delete;
    ~awaiter() {
      hook.disarm();
      std::lock_guard lock{s_->lock};
      if (s_->receiver == this) s_->receiver = nullptr;
    }
    void describe_await(await_description& d) const { d.what = "oneshot recv"; }
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
      detail::cancel_state* token = detail::token_of(h);
      if (!begin(h, token)) return false;
      {
        std::lock_guard lock{s_->lock};
        if (s_->settled) {
          state = done;
          return false;
        }
        rt = &detail::require_runtime("weft::oneshot_receiver");
        s_->receiver = this;
      }
      return park(token, &on_cancel, this);
    }
    T await_resume() {
      hook.disarm();
      if (state == cancelled) throw operation_cancelled{};
      std::lock_guard lock{s_->lock};
      if (s_->error) std::rethrow_exception(s_->error);
      return std::move(*s_->value);
    }

   private:
    static void on_cancel(void* self) noexcept {
      auto* a = static_cast<awaiter*>(self);
      {
        std::lock_guard lock{a->s_->lock};
        if (a->s_->receiver != a) return;  // settled first
        a->s_->receiver = nullptr;
        a->state = cancelled;
      }
      a->wake();
    }
    std::shared_ptr<detail::oneshot_state<T>> s_;
  };

  awaiter operator co_await() && { return awaiter{std::move(state_)}; }

 private:
  friend std::pair<oneshot_sender<T>, oneshot_receiver<T>> make_oneshot<T>();
  explicit oneshot_receiver(std::shared_ptr<detail::oneshot_state<T>> s) noexcept
      : state_(std::move(s)) {}
  std::shared_ptr<detail::oneshot_state<T>> state_;
};

}  // namespace weft
