// The cancellation scope a timeout-like wait runs under: a cancel state linked to the awaiting
// task's token and to the context's token, and cancelled by a deadline alarm. Used by the timeout
// layer and the adaptive limiter's queue.
#pragma once

#include <coroutine>
#include <exception>
#include <system_error>
#include <type_traits>
#include <utility>

#include <weft/cancel_token.hpp>
#include <weft/clock.hpp>
#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/config.hpp>
#include <weft/detail/deadline_alarm.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/task.hpp>

namespace weft::resilience::detail {

/// `now + d`, saturating at time_point::max() instead of overflowing (a huge duration means no
/// deadline in practice).
[[nodiscard]] inline clock::time_point saturating_deadline(clock::time_point now,
                                                           clock::duration d) noexcept {
  if (d > clock::duration::zero() && now.time_since_epoch() > clock::duration::max() - d) {
    return clock::time_point::max();
  }
  return now + d;
}

/// True for an outcome that reports a cancellation: weft's cancellation exception, or the
/// std::errc::operation_canceled error code (a result type that reports it as a value).
template <class R>
bool is_cancellation(const call_outcome<R>& o) {
  return o.is_cancelled() ||
         (o.kind() == outcome_kind::error && o.error() == std::errc::operation_canceled);
}

/// The cancellation a timeout's inner operation runs under: linked to the awaiting task's token
/// and to the context's token, and cancelled by a deadline alarm. Lives in the layer's frame.
class deadline_scope {
 public:
  deadline_scope() noexcept = default;
  deadline_scope(const deadline_scope&) = delete;
  deadline_scope& operator=(const deadline_scope&) = delete;
  ~deadline_scope() { unlink(); }

  /// The token the inner operation observes (also what the layer puts in the context).
  [[nodiscard]] cancel_token token() const noexcept {
    return weft::detail::token_access::make(&linked_);
  }

  /// Awaits `inner` (an awaiter: a task's, or the pipeline's operation awaiter) under the scope's
  /// token, with the alarm armed for `deadline`. `extra` is the context's token (linked too,
  /// unless it is the awaiting task's own). How the operation gets the scope's token without a
  /// task of its own: an awaiter hands the token of the coroutine that awaits it to what it
  /// starts, so the awaiting coroutine's token is swapped for the scope's before `inner` starts,
  /// and put back when the coroutine resumes. Nothing reads a suspended coroutine's token.
  template <class A>
  class run_awaiter {
   public:
    run_awaiter(deadline_scope& s, clock::time_point deadline, cancel_token extra, A&& inner)
        : scope_(&s), deadline_(deadline), extra_(std::move(extra)), inner_(std::move(inner)) {}
    run_awaiter(const run_awaiter&) = delete;
    run_awaiter& operator=(const run_awaiter&) = delete;
    ~run_awaiter() { restore(); }  // await_suspend threw, or the frame is being destroyed

    void describe_await(weft::await_description& d) const {
      weft::detail::describe_inner(inner_, d);
    }
    bool await_ready() { return inner_.await_ready(); }
    template <class Promise>
    decltype(auto) await_suspend(std::coroutine_handle<Promise> caller) {
      static_assert(std::is_base_of_v<weft::detail::promise_base, Promise>,
                    "weft::resilience: a deadline scope is awaited from a weft::task");
      weft::detail::promise_base& p = caller.promise();
      scope_->link(p.token_, extra_);
      scope_->alarm_.arm(deadline_, scope_->linked_);
      caller_ = &p;
      saved_ = p.token_;
      p.token_ = &scope_->linked_;
      return inner_.await_suspend(caller);
    }
    decltype(auto) await_resume() {
      restore();
      using T = decltype(inner_.await_resume());
      if constexpr (is_outcome<std::remove_cvref_t<T>>::value) {
        // Layers and the operation awaiter never throw an operation's failure; only a task
        // cancelled before its first step throws (the runtime's rule), and that is an outcome too.
        try {
          return inner_.await_resume();
        } catch (...) {
          return std::remove_cvref_t<T>::from_exception(std::current_exception());
        }
      } else {
        return inner_.await_resume();
      }
    }

   private:
    void restore() noexcept {
      if (caller_ != nullptr) caller_->token_ = saved_;
      caller_ = nullptr;
    }

    deadline_scope* scope_;
    clock::time_point deadline_;
    cancel_token extra_;
    A inner_;
    weft::detail::promise_base* caller_ = nullptr;
    weft::detail::cancel_state* saved_ = nullptr;
  };

  /// See run_awaiter; `inner` is a task or an awaiter.
  template <class A>
  auto run(clock::time_point deadline, cancel_token extra, A inner) {
    if constexpr (task_type<A>) {
      auto a = std::move(inner).operator co_await();
      return run_awaiter<decltype(a)>{*this, deadline, std::move(extra), std::move(a)};
    } else {
      return run_awaiter<A>{*this, deadline, std::move(extra), std::move(inner)};
    }
  }

  /// Unlinks from the caller's tokens and disarms the alarm; co_await it before reading first().
  [[nodiscard]] weft::detail::deadline_alarm::disarm_awaiter close() noexcept {
    unlink();
    return alarm_.disarm();
  }

  /// True if the deadline cancelled the operation before anyone else did.
  [[nodiscard]] bool deadline_first() const noexcept { return alarm_.first(); }
  /// True if the caller's cancellation (the awaiting task's or the context's) was requested.
  [[nodiscard]] bool caller_cancelled() const noexcept {
    return (parent_ != nullptr && parent_->is_cancelled()) ||
           extra_token_.is_cancellation_requested();
  }

 private:
  struct stop_forward {
    weft::detail::cancel_state* state;
    void operator()() const noexcept { state->request_cancel(); }
  };
  static void cancel_linked(void* state) noexcept {
    static_cast<weft::detail::cancel_state*>(state)->request_cancel();
  }

  void link(weft::detail::cancel_state* parent, const cancel_token& extra) {
    parent_ = parent;
    extra_token_ = extra;
    if (!parent_link_.arm(parent, &cancel_linked, &linked_)) linked_.request_cancel();
    if (auto* s = weft::detail::token_access::state(extra); s != nullptr) {
      if (s != parent && !token_link_.arm(s, &cancel_linked, &linked_)) linked_.request_cancel();
    } else if (weft::detail::token_access::stop(extra).stop_possible()) {
      stop_link_.emplace(weft::detail::token_access::stop(extra), stop_forward{&linked_});
    }
  }
  void unlink() noexcept {
    stop_link_.reset();
    token_link_.disarm();
    parent_link_.disarm();
  }

  // Invariant: linked_ outlives everything that can cancel it (declared first, destroyed last).
  mutable weft::detail::cancel_state linked_;
  weft::detail::cancel_hook parent_link_;
  weft::detail::cancel_hook token_link_;
  weft::detail::optional_stop_callback<stop_forward> stop_link_;
  weft::detail::deadline_alarm alarm_;
  weft::detail::cancel_state* parent_ = nullptr;
  cancel_token extra_token_;
};

}  // namespace weft::resilience::detail
