// weft::task<T>: the lazy, move-only coroutine type that weft's APIs take and return.
//
// Thread safety: a task object is owned by one thread at a time (move-only, not synchronised). Its
// body runs on the runtime's workers and may continue on another worker after any suspension: hold
// no std::mutex and rely on no thread_local across a co_await.
//
// Cancellation: a task has no token of its own: it observes its awaiter's (a spawned one, its
// join_handle's). Its start is a cancellation point: awaited by a cancelled caller it throws
// operation_cancelled without running its body. A task destroyed unawaited never runs.
#pragma once

#include <concepts>
#include <coroutine>
#include <exception>
#include <functional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/config.hpp>
#include <weft/detail/task_frame.hpp>

namespace weft {

template <class T = void>
class task;

namespace detail {
template <class T>
class task_promise;
template <class T, bool Shielded = false>
class task_awaiter;
template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<task<T>> : std::true_type {};
}  // namespace detail

/// A lazily started, move-only coroutine producing a T (a value, a reference, or nothing).
///
///     weft::task<int> answer() { co_return 42; }
///     weft::task<void> caller() { int v = co_await answer(); }
///
/// A task does nothing until it is awaited or spawned, and is awaited once: awaiting moves it
/// into the awaiter, so a second `co_await` (or one after std::move) throws std::logic_error.
/// Exceptions thrown in the body propagate to the awaiter. The awaiter's cancellation token is
/// inherited: cancelling the awaiting task cancels the awaited one.
///
/// Lifetimes: arguments are copied into the frame only if taken by value. A coroutine lambda's
/// captures live in the lambda object, not the frame; start such lambdas with weft::co_invoke.
template <class T>
class [[nodiscard("a task does nothing until it is co_awaited or spawned")]] task {
 public:
  using promise_type = detail::task_promise<T>;
  using value_type = T;

  /// An empty task; awaiting it throws std::logic_error.
  task() noexcept = default;
  task(task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  task& operator=(task&& other) noexcept {
    if (this != &other) {
      if (h_) h_.destroy();
      h_ = std::exchange(other.h_, {});
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() {
    if (h_) h_.destroy();
  }

  /// False for a moved-from, awaited or default-constructed task.
  [[nodiscard]] bool valid() const noexcept {
    return static_cast<bool>(h_);
  }
  explicit operator bool() const noexcept {
    return valid();
  }

  detail::task_awaiter<T> operator co_await()&& noexcept {
    return detail::task_awaiter<T>{std::exchange(h_, {})};
  }
  detail::task_awaiter<T> operator co_await()& noexcept {
    return detail::task_awaiter<T>{std::exchange(h_, {})};
  }

  /// Gives up ownership of the coroutine (for spawn); the task becomes empty.
  std::coroutine_handle<promise_type> release() noexcept {
    return std::exchange(h_, {});
  }

 private:
  friend class detail::task_promise<T>;
  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};


/// True for weft::task<T>.
template <class T>
concept task_type = detail::is_task<std::remove_cvref_t<T>>::value;

/// Calls `f(args...)`, a callable returning a task, and keeps `f` and the arguments alive in the
/// returned task's frame until that task finishes. The safe way to start a capturing lambda:
///
///     weft::spawn(weft::co_invoke([conn = std::move(conn)]() -> weft::task<void> {
///       co_await conn.serve();  // conn lives as long as the task, not as long as the lambda
///     }));
///
/// g++ 12: inside a coroutine, do not co_await co_invoke(lambda) in the expression that creates
/// the lambda (g++ 12 destroys it twice); name the task first: `auto t = co_invoke(f);
/// co_await std::move(t);`.
template <class F, class... Args>
requires std::invocable<F&, Args&...> && task_type<std::invoke_result_t<F&, Args&...>>
    std::invoke_result_t<F&, Args&...> co_invoke(F f, Args... args) {
  co_return co_await std::invoke(f, args...);
}

// ---- Machinery: the promise, the awaiter and how a task starts and ends ----

namespace detail {
[[noreturn]] void throw_empty_task(const char* api);

/// Starts the task: a spawned root checks its cancellation here, so a task cancelled before it
/// ran never runs its body (its start is its first suspension point).
struct initial_awaiter {
  promise_base* promise;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  void await_resume() const {
    if (promise->token_ != nullptr && promise->token_->is_cancelled()) throw operation_cancelled{};
  }
};

struct final_awaiter {
  bool await_ready() const noexcept { return false; }

  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
    promise_base& p = h.promise();
    if (is_root(p)) {
      complete_root(h, p);  // may destroy the frame: touch nothing after it
      return std::noop_coroutine();
    }
#if !WEFT_SYMMETRIC_TRANSFER
    if (sync_start_frame == h.address()) {
      sync_start_frame = nullptr;  // finished inside start_inline: the starter resumes the parent
      return std::noop_coroutine();
    }
#endif
    return std::coroutine_handle<>::from_address(p.link_);
  }

  void await_resume() const noexcept {}
};

template <class T>
struct stored {
  using type = T;
};
template <class T>
struct stored<T&> {
  using type = T*;
};

template <class T>
class task_promise final : public promise_base {
 public:
  task<T> get_return_object() noexcept;
  initial_awaiter initial_suspend() noexcept { return {this}; }
  final_awaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { result_.template emplace<2>(std::current_exception()); }

  template <class U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) {
    if constexpr (std::is_reference_v<T>) {
      T ref = std::forward<U>(value);
      result_.template emplace<1>(std::addressof(ref));
    } else {
      result_.template emplace<1>(std::forward<U>(value));
    }
  }

  /// Moves the result out, or rethrows the task's exception.
  T take() {
    if (result_.index() == 2) std::rethrow_exception(std::get<2>(std::move(result_)));
    if constexpr (std::is_reference_v<T>) {
      return static_cast<T>(*std::get<1>(result_));
    } else {
      return std::get<1>(std::move(result_));
    }
  }
  /// The task's exception, or null: lets a combinator take a failure without rethrowing it.
  [[nodiscard]] std::exception_ptr exception() const noexcept {
    return result_.index() == 2 ? std::get<2>(result_) : std::exception_ptr{};
  }

 private:
  std::variant<std::monostate, typename stored<T>::type, std::exception_ptr> result_;
};

template <>
class task_promise<void> final : public promise_base {
 public:
  task<void> get_return_object() noexcept;
  initial_awaiter initial_suspend() noexcept { return {this}; }
  final_awaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { error_ = std::current_exception(); }
  void return_void() noexcept {}
  void take() {
    if (error_) std::rethrow_exception(std::move(error_));
  }
  [[nodiscard]] std::exception_ptr exception() const noexcept { return error_; }

 private:
  std::exception_ptr error_;
};

/// Awaits a task: starts it with the awaiter as its continuation, hands it the awaiter's token
/// (none when Shielded: weft::shielded), and destroys its frame once the result has been taken.
template <class T, bool Shielded>
class task_awaiter {
 public:
  using handle = std::coroutine_handle<task_promise<T>>;
  explicit task_awaiter(handle h) noexcept : h_(h) {}
  task_awaiter(task_awaiter&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  task_awaiter& operator=(task_awaiter&&) = delete;
  ~task_awaiter() {
    if (h_) h_.destroy();
  }

  bool await_ready() const {
    if (!h_) throw_empty_task("weft::task");
    return false;
  }

  template <class Promise>
#if WEFT_SYMMETRIC_TRANSFER
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> caller) noexcept {
    h_.promise().link_ = caller.address();
    h_.promise().token_ = Shielded ? nullptr : token_of(caller);
    return h_;
  }
#else
  bool await_suspend(std::coroutine_handle<Promise> caller) {
    h_.promise().link_ = caller.address();
    h_.promise().token_ = Shielded ? nullptr : token_of(caller);
    return start_inline(h_);
  }
#endif

  /// A dump follows the awaited task's frame.
  void describe_await(await_description& d) const noexcept { d.child_frame = h_.address(); }

  T await_resume() {
    struct destroy_frame {
      handle& h;
      ~destroy_frame() {
        h.destroy();
        h = {};
      }
    } guard{h_};
    return h_.promise().take();
  }

 private:
  handle h_;
};

template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
  // Shutdown reaches a root's promise through coroutine_handle<promise_base>, which assumes the
  // promise sits where it does for alignments up to 16.
  static_assert(alignof(task_promise<T>) <= 16,
                "weft::task: over-aligned result types are not supported; return them boxed");
  return task<T>{std::coroutine_handle<task_promise<T>>::from_promise(*this)};
}
inline task<void> task_promise<void>::get_return_object() noexcept {
  return task<void>{std::coroutine_handle<task_promise<void>>::from_promise(*this)};
}
}  // namespace detail

}  // namespace weft
