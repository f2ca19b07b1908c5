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

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/await_check.hpp>
#include <weft/detail/child_watch.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/outcome.hpp>
#include <weft/task.hpp>

namespace weft::detail {

[[noreturn]] void throw_empty_task(const char* api);

/// The awaiter type co_await uses for an expression of type `A`: its operator co_await's result,
/// or `A` itself.
template <class A>
struct awaiter_type {
  using type = std::remove_cvref_t<A>;
};
template <class A>
requires requires {
  std::declval<A>().operator co_await();
}
struct awaiter_type<A> {
  using type = std::remove_cvref_t<decltype(std::declval<A>().operator co_await())>;
};
template <class A>
requires(
    !requires { std::declval<A>().operator co_await(); } &&
    requires { operator co_await(std::declval<A>()); }) struct awaiter_type<A> {
  using type = std::remove_cvref_t<decltype(operator co_await(std::declval<A>()))>;
};

/// Something a task can co_await (await_suspend is not checked: weft's own are templates on
/// the awaiting promise).
template <class A>
concept awaitable = requires(typename awaiter_type<A>::type& w) {
  { w.await_ready() } -> std::convertible_to<bool>;
  w.await_resume();
};

/// What co_await on an `A` gives, as a value type.
template <class A>
using awaited_t =
    std::remove_cvref_t<decltype(std::declval<typename awaiter_type<A>::type&>().await_resume())>;

/// The type a combinator gives for an argument it cannot take; its static_assert says why.
struct not_a_combinator_input {};

/// The value type of a combinator's argument: a task's T, an awaitable's result.
template <class A>
struct child_value {
  using type = not_a_combinator_input;
};
template <class A>
requires is_task<std::remove_cvref_t<A>>::value struct child_value<A> {
  using type = typename std::remove_cvref_t<A>::value_type;
};
template <class A>
requires(!is_task<std::remove_cvref_t<A>>::value && awaitable<A>) struct child_value<A> {
  using type = awaited_t<A>;
};
template <class A>
using child_value_t = typename child_value<A>::type;

/// A vector of tasks (the range form of a combinator, not one of the pack's arguments).
template <class A>
struct is_task_vector : std::false_type {};
template <class T>
struct is_task_vector<std::vector<task<T>>> : std::true_type {};
template <class A>
requires(!std::is_same_v<A, std::remove_cvref_t<A>>) struct is_task_vector<A>
    : is_task_vector<std::remove_cvref_t<A>> {
};

template <class A>
task<awaited_t<A>> awaitable_task(A a) {
  co_return co_await std::move(a);
}

template <class>
inline constexpr bool dependent_false = false;

/// Turns a combinator's argument into the task it runs as a child: a task stays itself; an
/// awaitable moves (or, if copyable, is copied) into a task's frame. What cannot be taken stops
/// the build here with one message that says what to write instead.
template <class A>
task<child_value_t<A>> as_task(A&& a) {
  using V = std::remove_cvref_t<A>;
  if constexpr (is_task<V>::value) {
    static_assert(!std::is_lvalue_reference_v<A>,
                  "weft combinator: a task is moved into the combinator, not copied: write "
                  "std::move(t), or pass the call itself (weft::timeout(1s, fetch(key)))");
    return std::move(a);
  } else if constexpr (requires { typename V::not_a_combinator_child; }) {
    static_assert(dependent_false<A>,
                  "weft combinator: this awaitable only means something in the task that awaits "
                  "it: this_task::cancel_token() in a child would give the child's token, which "
                  "ends with the child, and async_generator::next() in a child that is cancelled "
                  "would end the stream; co_await it in the task itself");
    return {};
  } else if constexpr (!awaitable<A>) {
    static_assert(dependent_false<A>,
                  "weft combinator: this argument is neither a weft::task nor an awaitable (a "
                  "type with await_ready/await_suspend/await_resume, or with operator co_await)");
    return {};
  } else if constexpr (!std::is_constructible_v<V, A&&>) {
    static_assert(dependent_false<A>,
                  "weft combinator: this awaitable cannot be copied into the combinator's child "
                  "task: pass the call itself (weft::timeout(1s, latch.wait())) or std::move(a); "
                  "weft's awaiters move until they are awaited, but do not copy");
    return {};
  } else {
    // An awaiter moves into the child task's frame. A combinator may destroy that child before
    // it ever runs (a when_any decided first), which is not the misuse the awaiter's check
    // (await_check.hpp) reports.
    V child(std::forward<A>(a));
    detail::waive_await_check(child);
    return detail::awaitable_task<V>(std::move(child));
  }
}

/// Takes a finished child's result as an outcome (a child the runtime destroyed at shutdown
/// gives operation_cancelled).
template <class T>
outcome<T> take_outcome(std::coroutine_handle<task_promise<T>> h) {
  const auto state = header_of(h.address())->state.load(std::memory_order_acquire);
  if (state & aborted_bit) {
    return outcome<T>{std::make_exception_ptr(
        operation_cancelled{"weft: the runtime shut down before the child finished"})};
  }
  // Cancelled before it started (a when_any's losers): nothing was thrown, nothing stored.
  if (state & cancelled_unstarted_bit) return outcome<T>{unstarted_cancellation()};
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

/// A fixed number of slots, each running one child at a time: a slot is reused once its child
/// finished and was taken (map_concurrent: O(slots) live frames for any number of elements).
/// Release a slot's child only while no cancel_all() can run on another thread (remove the
/// combinator's cancellation callback first: its removal waits for a running one).
template <class T>
class child_pool {
  static_assert(!std::is_reference_v<T>, "combinators hold values: use a task of a value type");

 public:
  using handle = std::coroutine_handle<task_promise<T>>;

  explicit child_pool(std::size_t slots)
      : handles_(slots),
        slots_(slots),
        order_(slots),
        watch_(slots_.data(), order_.data(), slots) {}
  child_pool(const child_pool&) = delete;
  child_pool& operator=(const child_pool&) = delete;
  ~child_pool() {
    for (std::size_t i = 0; i < handles_.size(); ++i) release(i);
  }

  [[nodiscard]] std::size_t size() const noexcept { return handles_.size(); }
  /// Starts `t` in slot i, which is free (never used, or released).
  void start(std::size_t i, task<T> t) {
    if (!t) throw_empty_task("weft combinator");
    rt_ = &require_runtime("weft combinator");
    handle h = t.release();
    handles_[i] = h;
    watch_.start(i, h, h.promise());
  }
  /// Frees slot i's finished child (nothing if the slot is free).
  void release(std::size_t i) noexcept {
    if (handles_[i]) release_child(watch_, i, std::exchange(handles_[i], {}), rt_);
  }
  void cancel_all() noexcept { watch_.cancel_all(); }
  auto next() noexcept { return watch_.next(); }
  outcome<T> take(std::size_t i) { return take_outcome(handles_[i]); }

 private:
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
