// The task behind runtime::spawn(task, on_done): runs the task, then calls on_done with its
// outcome, exactly once, whatever happens to the task (it finishes, throws, is cancelled before
// it starts, or the runtime shuts down first).
#pragma once

#include <concepts>
#include <exception>
#include <type_traits>
#include <utility>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/outcome.hpp>
#include <weft/task.hpp>

namespace weft::detail {

/// Holds on_done and calls it once. A parameter of the wrapper coroutine, not a local: a runtime
/// that shuts down destroys unfinished frames, and a spawn that fails destroys the frame it could
/// not queue; both destroy the parameters, and the destructor then reports the cancellation.
template <class T, class F>
class completion_call {
  // A throwing move would leave the moved-from holder armed with a moved-from callable.
  static_assert(std::is_nothrow_move_constructible_v<F>,
                "weft::runtime::spawn(task, on_done): on_done must be nothrow move-constructible");

 public:
  explicit completion_call(F f) noexcept(std::is_nothrow_move_constructible_v<F>)
      : f_(std::move(f)) {}
  completion_call(completion_call&& other) noexcept(std::is_nothrow_move_constructible_v<F>)
      : f_(std::move(other.f_)), armed_(std::exchange(other.armed_, false)) {}
  completion_call(const completion_call&) = delete;
  completion_call& operator=(const completion_call&) = delete;
  completion_call& operator=(completion_call&&) = delete;
  ~completion_call() {
    if (armed_) {
      armed_ = false;
      // A destructor cannot report an exception from on_done: spawn's contract says it must
      // not throw, and here it would end the process (noexcept).
      f_(outcome<T>{std::make_exception_ptr(
          operation_cancelled{"weft: the task was cancelled before it finished (its runtime shut "
                              "down, or it was cancelled before it started)"})});
    }
  }

  void operator()(outcome<T> o) {
    armed_ = false;
    f_(std::move(o));
  }

 private:
  F f_;
  bool armed_ = true;
};

/// The cancel state of the root awaiting it (its join_handle's), as a token. Never suspends.
struct own_root_cancel {
  cancel_state* state = nullptr;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> self) noexcept {
    state = &header_of(self.address())->cancel;
    return false;
  }
  cancel_token await_resume() const noexcept { return token_access::make(state); }
};

// Spawned with spawn_site::body_reads_cancel: its promise has no token, so it always runs, even
// when cancelled before its first step, and the handle's cancellation reaches `t` through the
// token read here.
template <class T, class F>
task<void> run_then_call(task<T> t, completion_call<T, F> on_done) {
  const cancel_token token = co_await own_root_cancel{};
  if (token.is_cancellation_requested()) {
    on_done(outcome<T>(unstarted_cancellation()));  // on a worker, at once
    co_return;
  }
  // No std::optional<outcome<T>> across the co_await: g++ 12 then warns (maybe-uninitialized)
  // in every caller's inlined on_done.
  std::exception_ptr error;
  bool delivering = false;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await with_cancellation_awaiter<void>(token, std::move(t));
      delivering = true;
      on_done(outcome<void>());
    } else {
      outcome<T> result(co_await with_cancellation_awaiter<T>(token, std::move(t)));
      delivering = true;
      on_done(std::move(result));
    }
    co_return;
  } catch (...) {
    if (delivering) throw;  // from on_done itself: the wrapper task's own failure
    error = std::current_exception();
  }
  on_done(outcome<T>(error));
}

}  // namespace weft::detail
