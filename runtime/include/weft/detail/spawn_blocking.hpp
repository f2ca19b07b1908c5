// The machinery behind <weft/spawn_blocking.hpp>: the types its API returns and uses.
// Include that header, not this one.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>
#include <variant>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/await_check.hpp>
#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/scheduler.hpp>
#include <weft/detail/task_frame.hpp>

namespace weft {

namespace detail {

/// A job on the blocking pool. The pool holds a shared_ptr to it, so a job whose awaiter was
/// cancelled while the function ran can finish and be dropped safely.
class blocking_job {
 public:
  virtual ~blocking_job() = default;
  /// Runs on a blocking thread, unless the job was cancelled before it started.
  void run() noexcept;
  /// Called by the pool instead of run() at shutdown, for a job that never started.
  void drop() noexcept;

 protected:
  virtual void invoke() noexcept = 0;

 public:
  enum : std::uint8_t { queued, running, done, abandoned };
  std::atomic<std::uint8_t> status{queued};
  runtime_core* rt = nullptr;
  std::coroutine_handle<> waiter;
  resume_gate gate;
};

/// Hands a job to `rt`'s blocking pool, starting a thread if none is idle and the limit allows.
void submit_blocking(runtime_core& rt, std::shared_ptr<blocking_job> job);

template <class F>
class blocking_job_of final : public blocking_job {
 public:
  using R = std::invoke_result_t<F&>;
  template <class G>
  explicit blocking_job_of(G&& f) : fn_(std::forward<G>(f)) {}

  R take() {
    if (result_.index() == 2) std::rethrow_exception(std::get<2>(std::move(result_)));
    if constexpr (!std::is_void_v<R>) return std::get<1>(std::move(result_));
  }

 private:
  void invoke() noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        fn_();
        result_.template emplace<1>();
      } else {
        result_.template emplace<1>(fn_());
      }
    } catch (...) {
      result_.template emplace<2>(std::current_exception());
    }
  }

  using value_t = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
  F fn_;
  std::variant<std::monostate, value_t, std::exception_ptr> result_;
};

template <class F>
class [[nodiscard("spawn_blocking does nothing until it is co_awaited")]] blocking_awaiter
    : public await_check {
 public:
  using R = std::invoke_result_t<F&>;
  template <class G>
  requires(!std::is_same_v<std::remove_cvref_t<G>, blocking_awaiter>)
  explicit blocking_awaiter(G&& f)
      : await_check("weft::spawn_blocking() was never co_awaited: the function does not run"),
        job_(std::make_shared<blocking_job_of<F>>(std::forward<G>(f))) {}
  /// Movable until it is awaited (to hand it to a combinator).
  blocking_awaiter(blocking_awaiter&& other) noexcept
      : await_check(std::move(other)), job_(std::move(other.job_)) {}
  blocking_awaiter(const blocking_awaiter&) = delete;
  blocking_awaiter& operator=(const blocking_awaiter&) = delete;

  void describe_await(await_description& d) const {
    d.what = job_->status.load(std::memory_order_relaxed) == blocking_job::queued
                 ? "spawn_blocking (waiting for a thread)"
                 : "spawn_blocking (running on a blocking thread)";
  }
  bool await_ready() const noexcept {
    mark_awaited();
    return false;
  }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> caller) {
    runtime_core& rt = require_runtime("weft::spawn_blocking");
    cancel_state* const token = token_of(caller);
    if (!hook_.arm(token, &on_cancel, job_.get())) {
      cancelled_ = true;
      return false;
    }
    job_->rt = &rt;
    job_->waiter = caller;
    submit_blocking(rt, job_);
    return job_->gate.suspend();
  }

  R await_resume() {
    hook_.disarm();
    if (job_->status.load(std::memory_order_acquire) != blocking_job::done || cancelled_) {
      throw operation_cancelled{};
    }
    return job_->take();
  }

 private:
  static void on_cancel(void* job) noexcept {
    auto* j = static_cast<blocking_job*>(job);
    // A job that has not started never will; a running one is abandoned: it finishes on its
    // thread and its result is dropped. Either way the awaiter resumes now.
    auto s = j->status.load(std::memory_order_acquire);
    while (s == blocking_job::queued || s == blocking_job::running) {
      if (j->status.compare_exchange_weak(s, blocking_job::abandoned, std::memory_order_acq_rel)) {
        if (j->gate.wake()) schedule_wake(j->rt, j->waiter);
        return;
      }
    }
  }

  std::shared_ptr<blocking_job_of<F>> job_;
  cancel_hook hook_;
  bool cancelled_ = false;
};

}  // namespace detail

}  // namespace weft
