// weft::when_all and weft::when_all_settled: run children concurrently and wait for every one.
//
// Thread safety: awaited from a task on a worker (std::logic_error elsewhere); every child runs as
// a task of its own, concurrently on any worker, so what children share must be synchronised.
//
// Cancellation: cancelling the caller cancels every child and waits for all of them; when_all then
// throws the first failure (operation_cancelled for a cancelled child), when_all_settled returns
// the outcomes, a cancelled child's holding operation_cancelled.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/detail/children.hpp>
#include <weft/outcome.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/combinators/detail/when_all.hpp>

namespace weft {

/// Runs every child concurrently (each as its own task on the current runtime) and returns their
/// values in input order. Fail-fast: the first child to throw has its siblings cancelled, waited
/// for, and its exception rethrown; the siblings' own failures after that are dropped.
///
///     auto [user, orders] = co_await weft::when_all(load_user(id), load_orders(id));
///
/// A void child gives std::monostate. Structured: it returns only after every child finished.
/// Cancelling the caller cancels every child (the call then throws operation_cancelled).
/// Arguments: tasks or any awaitables (which are wrapped in a task). Throws std::logic_error off
/// a worker or for an empty task.
template <class... A>
requires(!detail::is_task_vector<A>::value && ...)
    task<std::tuple<detail::value_or_monostate<detail::child_value_t<A>>...>> when_all(
        A&&... children) {
  return detail::when_all_pack<detail::child_value_t<A>...>(
      detail::as_task(std::forward<A>(children))...);
}

namespace detail {
template <class... T>
task<std::tuple<value_or_monostate<T>...>> when_all_pack(task<T>... children) {
  using pack = child_pack<T...>;
  pack set{std::move(children)...};
  std::tuple<std::optional<value_or_monostate<T>>...> values;
  set.start_all();
  const auto token = co_await this_task::cancel_token();
  std::exception_ptr first_error;
  {
    cancel_callback stop{token, detail::cancel_children_on<pack>{&set}};
    for (std::size_t done = 0; done < pack::size(); ++done) {
      const std::size_t i = co_await set.next();
      if (first_error) continue;  // a sibling of the failure stopping
      detail::take_guarded(set, first_error, [&] {
        set.visit(i, [&]<std::size_t I>() {
          auto o = set.template take<I>();
          if (o.has_error()) {
            first_error = o.error();
            set.cancel_all();
          } else {
            std::get<I>(values) = detail::value_of(std::move(o));
          }
        });
      });
    }
  }
  if (first_error) std::rethrow_exception(first_error);
  co_return std::apply([](auto&... v) { return std::make_tuple(std::move(*v)...); }, values);
}
}  // namespace detail

/// when_all over a vector of tasks of one type: their values in input order (void tasks:
/// nothing). Fail-fast as the variadic form. An empty vector returns at once.
template <class T>
task<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> when_all(
    std::vector<task<T>> tasks) {
  detail::child_range<T> set{std::move(tasks)};
  std::vector<std::optional<detail::value_or_monostate<T>>> values(set.size());
  set.start_all();
  const auto token = co_await this_task::cancel_token();
  std::exception_ptr first_error;
  {
    cancel_callback stop{token, detail::cancel_children_on<detail::child_range<T>>{&set}};
    for (std::size_t done = 0; done < set.size(); ++done) {
      detail::take_fail_fast(set, co_await set.next(), values, first_error);
    }
  }
  if (first_error) std::rethrow_exception(first_error);
  if constexpr (!std::is_void_v<T>) co_return detail::unwrap_values(values);
}

/// Runs every child concurrently and waits for all of them; never throws for a child's failure:
/// returns one outcome per child, in input order. Cancelling the caller cancels every child
/// (their outcomes then hold operation_cancelled).
///
///     auto [a, b] = co_await weft::when_all_settled(primary(), replica());
template <class... A>
requires(!detail::is_task_vector<A>::value && ...)
    task<std::tuple<outcome<detail::child_value_t<A>>...>> when_all_settled(A&&... children) {
  return detail::when_all_settled_pack<detail::child_value_t<A>...>(
      detail::as_task(std::forward<A>(children))...);
}

namespace detail {
template <class... T>
task<std::tuple<outcome<T>...>> when_all_settled_pack(task<T>... children) {
  using pack = child_pack<T...>;
  pack set{std::move(children)...};
  std::tuple<std::optional<outcome<T>>...> results;
  set.start_all();
  const auto token = co_await this_task::cancel_token();
  std::exception_ptr take_failure;  // taking a result threw: rethrown once all stopped
  {
    cancel_callback stop{token, detail::cancel_children_on<pack>{&set}};
    for (std::size_t done = 0; done < pack::size(); ++done) {
      const std::size_t i = co_await set.next();
      if (take_failure) continue;
      detail::take_guarded(set, take_failure, [&] {
        set.visit(i,
                  [&]<std::size_t I>() { std::get<I>(results).emplace(set.template take<I>()); });
      });
    }
  }
  if (take_failure) std::rethrow_exception(take_failure);
  co_return std::apply([](auto&... r) { return std::make_tuple(std::move(*r)...); }, results);
}
}  // namespace detail

/// when_all_settled over a vector: one outcome per task, in input order.
template <class T>
task<std::vector<outcome<T>>> when_all_settled(std::vector<task<T>> tasks) {
  detail::child_range<T> set{std::move(tasks)};
  std::vector<std::optional<outcome<T>>> results(set.size());
  set.start_all();
  const auto token = co_await this_task::cancel_token();
  std::exception_ptr take_failure;  // taking a result threw: rethrown once all stopped
  {
    cancel_callback stop{token, detail::cancel_children_on<detail::child_range<T>>{&set}};
    for (std::size_t done = 0; done < set.size(); ++done) {
      const std::size_t i = co_await set.next();
      if (take_failure) continue;
      detail::take_guarded(set, take_failure, [&] { results[i].emplace(set.take(i)); });
    }
  }
  if (take_failure) std::rethrow_exception(take_failure);
  co_return detail::unwrap_values(results);
}

}  // namespace weft
