// weft::map_concurrent: co_await fn(x) for every x of a range, at most `limit` at a time.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/cancel_token.hpp>
#include <weft/detail/children.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/when_all.hpp>

namespace weft {

namespace detail {
[[noreturn]] void throw_zero_limit();
}

namespace detail {
template <class T>
task<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> run_limited(
    std::vector<task<T>> tasks, std::size_t limit) {
  child_range<T> set{std::move(tasks)};
  const std::size_t n = set.size();
  std::vector<std::optional<value_or_monostate<T>>> values(n);
  std::size_t started = 0;
  while (started < n && started < limit) set.start(started++);
  const auto token = co_await this_task::cancel_token();
  std::exception_ptr first_error;
  {
    cancel_callback stop{token, cancel_children_on<child_range<T>>{&set}};
    for (std::size_t done = 0; done < started; ++done) {
      take_fail_fast(set, co_await set.next(), values, first_error);
      if (!first_error && started < n && !token.is_cancellation_requested()) {
        set.start(started++);
        // A cancellation that came while it started may have missed it: apply it again.
        if (token.is_cancellation_requested()) set.cancel_all();
      }
    }
  }
  if (first_error) std::rethrow_exception(first_error);
  if (started < n) throw operation_cancelled{};  // cancelled before every element ran
  if constexpr (!std::is_void_v<T>) co_return unwrap_values(values);
}
}  // namespace detail

namespace detail {
template <class T, class V, class F>
task<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> map_owned(V view, F fn,
                                                                            std::size_t limit) {
  // fn lives in this frame for the whole call: a coroutine lambda's captures live in the lambda
  // object, so every task it made must finish before it goes.
  std::vector<task<T>> tasks;
  for (auto&& x : view) tasks.push_back(as_task(fn(x)));
  co_return co_await run_limited<T>(std::move(tasks), limit);
}

template <class R, class F>
using map_value_t = child_value_t<std::invoke_result_t<F&, std::ranges::range_reference_t<R>>>;
}  // namespace detail

/// Returns the values of co_await fn(x) for each x in `range`, in input order, with at most
/// `limit` of them running at once (each as its own task). Fail-fast like when_all: the first
/// failure stops new starts, cancels those running, waits for them and is rethrown.
///
///     auto pages = co_await weft::map_concurrent(urls, [](const std::string& u) {
///       return fetch(u);
///     }, 8);
///
/// `fn` (kept alive for the whole call, so a capturing coroutine lambda is safe) is called for
/// every element when the returned task starts (tasks are lazy: nothing runs until started).
/// An lvalue range is referred to and must outlive the call; a temporary one is moved in.
/// Throws std::invalid_argument for limit 0.
template <std::ranges::input_range R, class F>
auto map_concurrent(R&& range, F fn, std::size_t limit)
    -> task<std::conditional_t<std::is_void_v<detail::map_value_t<R, F>>, void,
                               std::vector<detail::map_value_t<R, F>>>> {
  if (limit == 0) detail::throw_zero_limit();
  return detail::map_owned<detail::map_value_t<R, F>>(std::views::all(std::forward<R>(range)),
                                                      std::move(fn), limit);
}

}  // namespace weft
