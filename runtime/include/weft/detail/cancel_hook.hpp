// Helpers every cancellable awaiter uses: a cancellation registration that lives in the awaiter,
// and a gate that decides who resumes a coroutine when a waker fires during await_suspend.
#pragma once

#include <atomic>
#include <cstdint>

#include <weft/detail/cancel_state.hpp>

namespace weft::detail {

/// A registration on the awaiting task's cancellation state, removed by the destructor (which
/// waits for a callback running on another thread to return).
class cancel_hook {
 public:
  cancel_hook() noexcept = default;
  cancel_hook(const cancel_hook&) = delete;
  cancel_hook& operator=(const cancel_hook&) = delete;
  ~cancel_hook() { disarm(); }

  /// Registers fn(context). Returns false, registering nothing, if cancellation was already
  /// requested; returns true and registers nothing for a null state (a task that cannot be
  /// cancelled).
  bool arm(cancel_state* state, cancel_node::callback_fn fn, void* context) noexcept {
    if (state == nullptr) return true;
    if (!state->try_add(node_, fn, context)) return false;
    state_ = state;
    return true;
  }

  /// The state armed on, or null (not armed, or disarmed).
  [[nodiscard]] cancel_state* state() const noexcept { return state_; }

  void disarm() noexcept {
    if (state_ != nullptr) {
      state_->remove(node_);
      state_ = nullptr;
    }
  }

 private:
  cancel_node node_;
  cancel_state* state_ = nullptr;
};

/// Decides who resumes a coroutine whose wakers may fire before its await_suspend returned:
/// the awaiter calls suspend() last thing in await_suspend, exactly one waker calls wake().
/// Whoever comes second resumes it, so it is never resumed while await_suspend still runs.
class resume_gate {
 public:
  /// True: stay suspended (a waker will schedule the coroutine). False: a waker already fired;
  /// resume at once.
  bool suspend() noexcept {
    // acq_rel: pairs with wake(), publishing the awaiter's state to the waker and back.
    return state_.exchange(suspended, std::memory_order_acq_rel) != woken;
  }

  /// True: the caller must schedule the coroutine. False: await_suspend has not returned yet and
  /// will resume it itself.
  bool wake() noexcept {
    // Usually the awaiter suspended long before: then suspended is final (only this one waker
    // changes the state after it), and a load saves a read-modify-write per wake-up.
    // acquire: pairs with the release of suspend(), as the exchange would.
    if (state_.load(std::memory_order_acquire) == suspended) return true;
    return state_.exchange(woken, std::memory_order_acq_rel) == suspended;
  }

 private:
  static constexpr std::uint8_t idle = 0, suspended = 1, woken = 2;
  std::atomic<std::uint8_t> state_{idle};
};

}  // namespace weft::detail
