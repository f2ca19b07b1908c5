// The machinery under every combinator: children spawned as roots of the caller's runtime, whose
// completions are recorded in the order they happen, so the combinator can react to the first,
// the k-th or every one of them.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <string>

#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/scheduler.hpp>
#include <weft/detail/spin_lock.hpp>
#include <weft/detail/task_frame.hpp>

namespace weft::detail {

/// One child: a join_waiter registered on the child root's state (the protocol block_on uses),
/// so the child's completion calls on_complete on whatever worker it finishes.
struct child_slot final : join_waiter {
  child_slot() noexcept : join_waiter{nullptr} {}
  class child_watch* watch = nullptr;
  std::size_t index = 0;
  frame_header* header = nullptr;  // set while the child is registered and not yet taken
};

/// The children of one combinator call. It lives in the combinator's frame; `slots` and `order`
/// (n each) are storage the combinator provides: an array for a fixed number of children, one
/// vector for a range, so nothing is allocated per child beyond its own frame.
///
/// Protocol: a completion appends its index to `order` under the lock and, if the combinator
/// waits in next(), hands it the wake-up (resume_gate: never resumed inside await_suspend).
/// Children stay linked until the combinator took their results and released them; cancel_all()
/// may therefore run on any thread at any time, and only touches children not yet finished.
/// "when_all: " for a frame in when_all's function, and so on; empty when none matches.
std::string combinator_name(const char* function);

class child_watch {
 public:
  child_watch(child_slot* slots, std::size_t* order, std::size_t n) noexcept
      : slots_(slots), order_(order), n_(n) {}
  child_watch(const child_watch&) = delete;
  child_watch& operator=(const child_watch&) = delete;
  /// Withdraws from children still registered: only a combinator destroyed by runtime shutdown
  /// gets here with any.
  ~child_watch();

  /// "2 of 3 children pending (tasks 12, 13)", for the combinator's await in a task dump.
  [[nodiscard]] std::string describe() const;
  /// Spawns `h` (a prepared root) as child `i` on the current runtime and registers for its
  /// completion. Throws std::logic_error off a worker.
  void start(std::size_t i, std::coroutine_handle<> h, promise_base& p);
  /// Started children that have not finished (a task dump's count; racy while they run).
  [[nodiscard]] std::size_t running() const noexcept;
  /// Requests cancellation of every started child that has not finished. Any thread.
  void cancel_all() noexcept;
  /// The child has finished and is about to be released: stop tracking it. Only after the
  /// combinator's cancellation callback is gone (cancel_all may read the header meanwhile).
  void forget(std::size_t i) noexcept {
    std::atomic_ref{slots_[i].header}.store(nullptr, std::memory_order_relaxed);
  }

  class next_awaiter {
   public:
    explicit next_awaiter(child_watch& w) noexcept : w_(w) {}
    /// "when_all: 2 of 3 pending (tasks 12, 13)".
    void describe_await(await_description& d) const {
      d.what = combinator_name(d.where.function_name()) + w_.describe();
    }
    bool await_ready() noexcept;
    bool await_suspend(std::coroutine_handle<> caller);
    std::size_t await_resume() noexcept;

   private:
    friend class child_watch;
    child_watch& w_;
    std::coroutine_handle<> caller_;
    runtime_core* rt_ = nullptr;
    resume_gate gate_;
  };
  /// Suspends until a child finishes that next() has not reported yet; returns its index.
  /// Children report in the order they finished. Not cancellable itself: a cancelled combinator
  /// cancels its children, whose completions end the wait.
  [[nodiscard]] next_awaiter next() noexcept { return next_awaiter{*this}; }

 private:
  static void on_complete(join_waiter* self) noexcept;
  void record(std::size_t index) noexcept;

  child_slot* slots_;
  std::size_t* order_;
  const std::size_t n_;
  mutable spin_lock lock_;
  std::size_t produced_ = 0;         // guarded by lock_
  std::size_t consumed_ = 0;         // the combinator's thread only (under lock_ with produced_)
  next_awaiter* waiting_ = nullptr;  // guarded by lock_
};

}  // namespace weft::detail
