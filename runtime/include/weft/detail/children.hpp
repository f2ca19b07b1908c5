// Typed children for the combinators: a range (std::vector of tasks) or a fixed pack, started as
// roots under one child_watch, their results taken as outcomes and their frames released at the
// end.
#pragma once

#include <array>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/detail/child_watch.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/operation_cancelled.hpp>
#include <weft/outcome.hpp>
#include <weft/task.hpp>

namespace weft::detail {

[[noreturn]] void throw_empty_task(const char* api);

/// Turns an awaitable into a task (a task stays itself): combinators run each child as a task.
template <class T>
task<T> as_task(task<T>&& t) noexcept {
  return std::move(t);
}

/// The awaiter that co_await uses for an `A` (its operator co_await, or itself).
template <class A>
auto awaiter_of(A&& a) {
  if constexpr (requires { std::forward<A>(a).operator co_await(); }) {
    return std::forward<A>(a).operator co_await();
  } else if constexpr (requires { operator co_await(std::forward<A>(a)); }) {
    return operator co_await(std::forward<A>(a));
  } else {
    return std::forward<A>(a);
  }
}

template <class A>
using awaited_t = std::remove_cvref_t<decltype(awaiter_of(std::declval<A>()).await_resume())>;

template <class A>
requires(!is_task<std::remove_cvref_t<A>>::value) task<awaited_t<A&&>> as_task(A a) {
  co_return co_await std::move(a);
}

/// The task type a combinator argument becomes.
template <class A>
using child_task_t = decltype(as_task(std::declval<A>()));

template <class T>
struct task_value;
template <class T>
struct task_value<task<T>> {
  using type = T;
};
template <class A>
using child_value_t = typename task_value<child_task_t<A>>::type;

/// Takes a finished child's result as an outcome (a child the runtime destroyed at shutdown
/// gives operation_cancelled).
template <class T>
outcome<T> take_outcome(std::coroutine_handle<task_promise<T>> h) {
  if (header_of(h.address())->state.load(std::memory_order_acquire) & aborted_bit) {
    return outcome<T>{std::make_exception_ptr(
        operation_cancelled{"weft: the runtime shut down before the child finished"})};
  }
  // The failure is taken as it is stored, not rethrown and caught: a when_any that cancels 999
  // losers would otherwise throw 999 more exceptions.
  if (std::exception_ptr e = h.promise().exception()) return outcome<T>{std::move(e)};
  if constexpr (std::is_void_v<T>) {
    return outcome<void>{};
  } else {
    return outcome<T>{h.promise().take()};
  }
}

/// Runs `take` (moving a finished child's result out, storing it) and keeps what it throws — a
/// move constructor that throws, bad_alloc — in `failure` instead of leaving the combinator's
/// loop: that loop must go on until every child has finished (no child outlives the call), so
/// the other children are cancelled, the loop drains them, and the combinator rethrows `failure`
/// afterwards. The first failure is kept. Returns false if `take` threw.
template <class Set, class F>
bool take_guarded(Set& set, std::exception_ptr& failure, F&& take) noexcept {
  try {
    std::forward<F>(take)();
    return true;
  } catch (...) {
    if (!failure) failure = std::current_exception();
    set.cancel_all();
    return false;
  }
}

/// Releases a child: stops watching it, withdraws a joiner registration it still has (only
/// when the combinator is destroyed by runtime shutdown), and drops the frame reference.
void release_child(child_watch& watch, std::size_t i, std::coroutine_handle<> h,
                   runtime_core* rt) noexcept;

/// Children from a vector of tasks of one type. Declare it before the combinator's
/// cancel_callback, so the callback is gone before the children are released.
template <class T>
class child_range {
  static_assert(!std::is_reference_v<T>, "combinators hold values: use a task of a value type");

 public:
  using handle = std::coroutine_handle<task_promise<T>>;

  explicit child_range(std::vector<task<T>> tasks)
      : tasks_(std::move(tasks)),
        handles_(tasks_.size()),
        slots_(tasks_.size()),
        order_(tasks_.size()),
        watch_(slots_.data(), order_.data(), tasks_.size()) {
    for (const auto& t : tasks_) {
      if (!t) throw_empty_task("weft combinator");
    }
  }
  child_range(const child_range&) = delete;
  child_range& operator=(const child_range&) = delete;
  ~child_range() {
    for (std::size_t i = 0; i < handles_.size(); ++i) {
      if (handles_[i]) release_child(watch_, i, handles_[i], rt_);
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return tasks_.size(); }
  /// Starts child i (children not started are never run; they are destroyed with the range).
  void start(std::size_t i) {
    rt_ = &require_runtime("weft combinator");
    handle h = tasks_[i].release();
    handles_[i] = h;
    watch_.start(i, h, h.promise());
  }
  void start_all() {
    for (std::size_t i = 0; i < size(); ++i) start(i);
  }
  void cancel_all() noexcept { watch_.cancel_all(); }
  auto next() noexcept { return watch_.next(); }
  outcome<T> take(std::size_t i) { return take_outcome(handles_[i]); }

 private:
  std::vector<task<T>> tasks_;
  std::vector<handle> handles_;
  std::vector<child_slot> slots_;
  std::vector<std::size_t> order_;
  child_watch watch_;
  runtime_core* rt_ = nullptr;
};

/// Children from a fixed pack of tasks of any types: nothing allocated but their frames.
template <class... T>
class child_pack {
  static_assert((!std::is_reference_v<T> && ...),
                "combinators hold values: use tasks of value types");
  static constexpr std::size_t n = sizeof...(T);

 public:
  explicit child_pack(task<T>&&... tasks) : tasks_(std::move(tasks)...) {
    std::apply([](const auto&... t) { ((t ? void() : throw_empty_task("weft combinator")), ...); },
               tasks_);
  }
  child_pack(const child_pack&) = delete;
  child_pack& operator=(const child_pack&) = delete;
  ~child_pack() {
    for_each_index([&]<std::size_t I>() {
      if (auto h = std::get<I>(handles_)) release_child(watch_, I, h, rt_);
    });
  }

  static constexpr std::size_t size() noexcept { return n; }
  void start_all() {
    rt_ = &require_runtime("weft combinator");
    for_each_index([&]<std::size_t I>() {
      auto h = std::get<I>(tasks_).release();
      std::get<I>(handles_) = h;
      watch_.start(I, h, h.promise());
    });
  }
  void cancel_all() noexcept { watch_.cancel_all(); }
  auto next() noexcept { return watch_.next(); }
  template <std::size_t I>
  auto take() {
    return take_outcome(std::get<I>(handles_));
  }
  /// Calls f.template operator()<I>() for the I equal to `i`.
  template <class F>
  void visit(std::size_t i, F&& f) {
    for_each_index([&]<std::size_t I>() {
      if (I == i) f.template operator()<I>();
    });
  }

 private:
  template <class F>
  static void for_each_index(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f.template operator()<I>(), ...);
    }
    (std::make_index_sequence<n>{});
  }

  std::tuple<task<T>...> tasks_;
  std::tuple<std::coroutine_handle<task_promise<T>>...> handles_{};
  std::array<child_slot, n> slots_{};
  std::array<std::size_t, n> order_{};
  child_watch watch_{slots_.data(), order_.data(), n};
  runtime_core* rt_ = nullptr;
};

/// True for an exception_ptr holding operation_cancelled (a child stopped by a cancellation).
bool is_cancellation(const std::exception_ptr& e) noexcept;

}  // namespace weft::detail
