// weft::cancel_scope: a cancellation that other tokens and a deadline feed into, and that an
// awaitable can run under without a task of its own. The seam that timeouts, bounded waits and
// resilience layers are built on.
//
// Thread safety: token(), request_cancellation() and is_cancellation_requested() from any thread;
// run(), cancel_at() and close() from the one task that owns the scope.
//
// Cancellation: what run() awaits observes the scope's token, which the linked token, the awaiting
// task's own and the deadline cancel; it ends with the awaitable's result or its
// operation_cancelled. close() is not a cancellation point: it completes in a cancelled task too. A
// scope is cancelled once, for good.
#pragma once

#include <cassert>
#include <coroutine>
#include <type_traits>
#include <utility>

#include <weft/cancel/cancel_token.hpp>
#include <weft/detail/await_trace.hpp>
#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/deadline_alarm.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>

namespace weft {

/// A cancellation source that is also cancelled when a linked token is, when the task awaiting
/// `run()` is, or when its deadline passes. Awaiting through run() hands the scope's token to the
/// awaited operation in place of the awaiting task's own, in the awaiting task's frame: no task,
/// no allocation.
///
///     weft::cancel_scope scope{request_token};        // the request's cancellation reaches it
///     scope.cancel_at(weft::clock::now() + 200ms);     // and so does the deadline
///     auto reply = co_await scope.run(backend.get(key));  // get() observes scope.token()
///     co_await scope.close();
///     if (scope.deadline_reached()) { /* the deadline, not the caller, stopped it */ }
///
/// Rules:
/// - run(a) accepts a weft::task or any weft awaitable (a sleep, a semaphore acquire, a channel
///   receive, a join): what the awaitable starts or waits for observes the scope's token. While
///   it is awaited, the awaiting task's own cancellation is linked into the scope, so cancelling
///   the task still reaches the operation. Its result, value or exception, is the awaitable's.
/// - The deadline follows the timeout rule "ties go to the result": the cancellation is requested
///   after everything the deadline's instant woke has run, so an operation that completes at
///   exactly the deadline completes. Paused time is exact.
/// - close() unlinks the scope and disarms the deadline, suspending if a firing on another worker
///   must be waited for; await it when the operation is done. A scope destroyed without it (an
///   exception left early) disarms in its destructor, blocking the worker's loop in the same way
///   if it must wait. Without a deadline close() completes at once and may be skipped.
/// - The awaiting task is linked only while it awaits through run(): the scope keeps no reference
///   to it afterwards (linked_cancellation_requested() remembers what it saw).
/// - A scope is cancelled once and for good: create a new one per operation.
///
/// Misuse: cancel_at() off a worker throws std::logic_error, and a second cancel_at() before
/// close() is a precondition violation; run() on a scope that is already being awaited through
/// another run() is one too. Thread safety: token(), request_cancellation() and
/// is_cancellation_requested() from any thread; the rest from the owning task.
class cancel_scope {
 public:
  cancel_scope() noexcept = default;
  /// A scope also cancelled when `linked` is (at once if it is already).
  explicit cancel_scope(const cancel_token& linked) { link(linked); }
  cancel_scope(const cancel_scope&) = delete;
  cancel_scope& operator=(const cancel_scope&) = delete;
  /// Unlinks, and disarms a deadline that close() did not (an exception left the scope early):
  /// a firing in progress, or an alarm armed on another worker, is waited for by running the
  /// worker's loop meanwhile, as a task_group's destructor does.
  ~cancel_scope() {
    unlink();
    alarm_.disarm_blocking();
  }

  /// The token that operations run under the scope observe.
  [[nodiscard]] cancel_token token() const noexcept { return detail::token_access::make(&state_); }
  /// Requests cancellation; true for the call that made the request.
  bool request_cancellation() noexcept { return state_.request_cancel(); }
  [[nodiscard]] bool is_cancellation_requested() const noexcept { return state_.is_cancelled(); }

  /// Requests the scope's cancellation when the runtime clock reaches `deadline` (see the rules
  /// above; a deadline that passed fires at the worker's next look at its timers).
  void cancel_at(clock::time_point deadline) { alarm_.arm(deadline, state_); }
  /// True when the deadline requested the cancellation before anyone else did.
  [[nodiscard]] bool deadline_reached() const noexcept { return alarm_.first(); }
  /// True when a linked token (the constructor's, or the awaiting task's during run()) has had
  /// its cancellation requested: the caller gave up, whatever the deadline did.
  [[nodiscard]] bool linked_cancellation_requested() const noexcept {
    return task_cancelled_ || (task_state_ != nullptr && task_state_->is_cancelled()) ||
           linked_.is_cancellation_requested();
  }

  /// Awaits `a` with the scope's token in place of the awaiting task's (see the rules above).
  template <class A>
  class run_awaiter {
   public:
    run_awaiter(cancel_scope& s, A&& inner) : scope_(&s), inner_(std::move(inner)) {}
    /// Movable until it is awaited (to wrap it in another awaiter).
    run_awaiter(run_awaiter&& o) noexcept(std::is_nothrow_move_constructible_v<A>)
        : scope_(o.scope_), inner_(std::move(o.inner_)) {}
    run_awaiter& operator=(const run_awaiter&) = delete;
    ~run_awaiter() { restore(); }  // await_suspend threw, or the frame is being destroyed

    /// A dump follows the operation.
    void describe_await(await_description& d) const { detail::describe_inner(inner_, d); }
    bool await_ready() { return inner_.await_ready(); }
    template <class Promise>
    decltype(auto) await_suspend(std::coroutine_handle<Promise> caller) {
      static_assert(std::is_base_of_v<detail::promise_base, Promise>,
                    "weft::cancel_scope::run is awaited from a weft::task");
      // An awaitable reads its awaiting coroutine's token only while it suspends (every weft
      // awaitable does; the runtime's tests hold it to that), so the scope's state stands in for
      // the task's from here until the task resumes. Nothing reads a suspended task's token.
      detail::promise_base& p = caller.promise();
      scope_->link_task(p.token_);
      caller_ = &p;
      saved_ = p.token_;
      p.token_ = &scope_->state_;
      try {
        return inner_.await_suspend(caller);
      } catch (...) {
        restore();  // the task goes on (with the exception) under its own token
        throw;
      }
    }
    decltype(auto) await_resume() {
      restore();
      return inner_.await_resume();
    }

   private:
    // The awaiting task's token comes back and its link into the scope goes: the scope refers
    // to the task only while the task awaits through it.
    void restore() noexcept {
      if (caller_ == nullptr) return;
      caller_->token_ = saved_;
      caller_ = nullptr;
      scope_->unlink_task();
    }

    cancel_scope* scope_;
    A inner_;
    detail::promise_base* caller_ = nullptr;
    detail::cancel_state* saved_ = nullptr;
  };

  /// See run_awaiter: `a` is a task or an awaitable, taken by value.
  template <class A>
  [[nodiscard("cancel_scope::run does nothing until it is co_awaited")]] auto run(A a) {
    if constexpr (requires { std::move(a).operator co_await(); }) {
      auto inner = std::move(a).operator co_await();
      return run_awaiter<decltype(inner)>{*this, std::move(inner)};
    } else {
      return run_awaiter<A>{*this, std::move(a)};
    }
  }

  /// Unlinks the scope from every token and disarms its deadline (waiting for a firing in
  /// progress); afterwards the scope touches nothing outside itself.
  [[nodiscard("close() does nothing until it is co_awaited")]] auto close() noexcept {
    unlink();
    return alarm_.disarm();
  }

 private:
  struct stop_forward {
    detail::cancel_state* state;
    void operator()() const noexcept { state->request_cancel(); }
  };
  static void cancel_state_of(void* state) noexcept {
    static_cast<detail::cancel_state*>(state)->request_cancel();
  }

  void link(const cancel_token& t) {
    linked_ = t;
    if (auto* s = detail::token_access::state(t); s != nullptr) {
      if (!linked_hook_.arm(s, &cancel_state_of, &state_)) state_.request_cancel();
    } else if (detail::token_access::stop(t).stop_possible()) {
      stop_link_.emplace(detail::token_access::stop(t), stop_forward{&state_});
    }
  }
  void link_task(detail::cancel_state* task_state) {
    assert(task_state_ == nullptr && "weft::cancel_scope: run() awaited twice at once");
    task_state_ = task_state;
    // The task's token is linked already when it is the constructor's.
    if (task_state == nullptr || task_state == detail::token_access::state(linked_)) return;
    if (!task_hook_.arm(task_state, &cancel_state_of, &state_)) state_.request_cancel();
  }
  void unlink_task() noexcept {
    task_hook_.disarm();
    if (task_state_ != nullptr && task_state_->is_cancelled()) task_cancelled_ = true;
    task_state_ = nullptr;
  }
  void unlink() noexcept {
    stop_link_.reset();
    linked_hook_.disarm();
    unlink_task();
  }

  // Invariant: state_ outlives everything that can cancel it (declared first, destroyed last).
  mutable detail::cancel_state state_;
  detail::cancel_hook linked_hook_;
  detail::cancel_hook task_hook_;
  detail::optional_stop_callback<stop_forward> stop_link_;
  detail::deadline_alarm alarm_;
  detail::cancel_state* task_state_ = nullptr;
  cancel_token linked_;
  bool task_cancelled_ = false;  // the awaiting task's cancellation was seen by an ended run()
};

}  // namespace weft
