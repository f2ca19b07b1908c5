// weft::task_group: any number of tasks spawned into one scope, joined together.
//
// Thread safety: spawn() and join() from one task at a time (spawn on a worker only); cancel() and
// running() from any thread. The tasks run concurrently on any worker.
//
// Cancellation: join() is the group's one suspension point and is cancellable: a cancelled joiner
// cancels the tasks, waits for them and throws operation_cancelled. The tasks do not inherit the
// spawner's token: cancel() or a sibling's failure reaches them, and so does the destructor, which
// waits for them.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <source_location>
#include <vector>

#include <weft/detail/await_check.hpp>
#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/scheduler.hpp>
#include <weft/detail/spin_lock.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn_options.hpp>
#include <weft/task.hpp>

namespace weft {

/// A scope for tasks: spawn any number into it (each runs as its own task on the current
/// runtime), then `co_await group.join()` waits for all of them. The first failure cancels the
/// others and is rethrown by join() once all stopped; the tasks' values are discarded. Tasks
/// stopped by cancel() (or by a sibling's failure) are not failures.
///
///     weft::task_group group;
///     for (auto& conn : conns) group.spawn(serve(conn));
///     co_await group.join();
///
/// No task outlives its group: destroying a group whose tasks still run (an exception left the
/// scope before join) cancels them and waits until they stopped — on a worker thread by running
/// the worker's loop meanwhile, so it cannot deadlock on tasks queued there; off a worker by
/// blocking. join() is cancellable: a cancelled joiner cancels the tasks, waits for them, then
/// throws operation_cancelled. Thread safety: spawn, join and cancel are called from one task at
/// a time (cancel also from any thread); spawn throws std::logic_error off a worker. A joined
/// group is empty and can be used again.
class task_group {
 public:
  task_group() = default;
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;
  ~task_group();

  /// Starts `t` in the group. Throws std::logic_error off a worker or for an empty task.
  /// `options` names it for task dumps, as for weft::spawn.
  template <class T>
  void spawn(task<T> t, spawn_options options = {},
             std::source_location at = std::source_location::current()) {
    detail::require_runtime("weft::task_group::spawn");  // before the task is taken apart
    auto h = t.release();
    if (!h) detail::throw_empty_task("weft::task_group::spawn");
    add(h, h.promise(), &exception_of<T>, detail::spawn_site{at, options.name});
  }
  /// spawn(co_invoke(f)): the callable lives as long as its task.
  template <detail::task_factory F>
  void spawn(F f, spawn_options options = {},
             std::source_location at = std::source_location::current()) {
    spawn(co_invoke(std::move(f)), options, at);
  }

  /// Requests cancellation of every task still running in the group, and of every task spawned
  /// into it until the next join() returns.
  void cancel() noexcept;
  /// Tasks spawned and not yet finished.
  [[nodiscard]] std::size_t running() const noexcept {
    return running_.load(std::memory_order_acquire);
  }

  class [[nodiscard("join does nothing until it is co_awaited")]] join_awaiter
      : public detail::await_check {
   public:
    explicit join_awaiter(task_group & g) noexcept
        : await_check("weft::task_group::join() was never co_awaited: nothing is joined"), g_(g) {}
    /// Movable until it is awaited (to hand it to a combinator: weft::timeout(5s, g.join())).
    join_awaiter(join_awaiter&& other) noexcept : await_check(std::move(other)), g_(other.g_) {}
    join_awaiter(const join_awaiter&) = delete;
    join_awaiter& operator=(const join_awaiter&) = delete;
    void describe_await(await_description& d) const {
      d.what = "task_group join (" + std::to_string(g_.running()) + " running)";
    }
    bool await_ready() noexcept {
      mark_awaited();
      return g_.running() == 0;
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> caller) {
      return suspend(caller, detail::token_of(caller));
    }
    void await_resume();

   private:
    friend class task_group;
    bool suspend(std::coroutine_handle<> caller, detail::cancel_state * token);
    static void on_cancel(void* self) noexcept;
    task_group& g_;
    std::coroutine_handle<> caller_;
    detail::runtime_core* rt_ = nullptr;
    detail::cancel_state* token_ = nullptr;
    detail::cancel_hook hook_;
    detail::resume_gate gate_;
  };
  /// Waits until every task spawned so far (and any they spawn into the group meanwhile) has
  /// finished; rethrows the first failure. The group is empty afterwards and can be reused.
  [[nodiscard("join does nothing until it is co_awaited")]] join_awaiter join() noexcept {
    return join_awaiter{*this};
  }

 private:
  using error_fn = std::exception_ptr (*)(std::coroutine_handle<>) noexcept;
  struct child final : detail::join_waiter {
    child() noexcept : detail::join_waiter{&on_complete} {}
    task_group* group = nullptr;
    std::coroutine_handle<> handle;
    error_fn error = nullptr;
    bool done = false;  // guarded by the group's lock
  };

  template <class T>
  static std::exception_ptr exception_of(std::coroutine_handle<> h) noexcept {
    if (detail::cancelled_unstarted(h.address())) return detail::unstarted_cancellation();
    return std::coroutine_handle<detail::task_promise<T>>::from_address(h.address())
        .promise()
        .exception();
  }
  void add(std::coroutine_handle<> h, detail::promise_base& p, error_fn error,
           const detail::spawn_site& site);
  static void on_complete(detail::join_waiter* self) noexcept;
  void finished(child& c) noexcept;
  /// Releases finished children and returns the first failure (joiner only).
  std::exception_ptr collect() noexcept;
  void cancel_locked() noexcept;

  mutable detail::spin_lock lock_;
  // Slots of tasks spawned since the last join: stable addresses, reused once their task has
  // finished and been freed, so a group that is never joined (a server's connections) holds
  // memory for the tasks running at its peak, not for every task it ever ran.
  std::deque<child> children_;  // guarded by lock_
  std::vector<child*> free_;    // finished, released slots of children_; guarded by lock_
  std::atomic<std::size_t> running_{0};
  std::exception_ptr first_error_;    // guarded by lock_
  bool cancelled_ = false;            // cancel() until the next join; guarded by lock_
  join_awaiter* joiner_ = nullptr;    // guarded by lock_
  detail::worker* helper_ = nullptr;  // a worker waiting in the destructor; guarded by lock_
  detail::runtime_core* rt_ = nullptr;
};

}  // namespace weft
