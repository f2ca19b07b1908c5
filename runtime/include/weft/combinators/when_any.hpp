// weft::when_any and weft::first_success: the first child to finish, or to succeed.
//
// Thread safety: awaited from a task on a worker (std::logic_error elsewhere); every child runs as
// a task of its own, concurrently on any worker, so what children share must be synchronised.
//
// Cancellation: cancelling the caller cancels every child, waits for them and throws
// operation_cancelled, unless a child had finished (first_success: succeeded) by itself first; then
// that outcome is returned. A loser that finished anyway has its result dropped.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/combinators/aggregate_error.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/detail/children.hpp>
#include <weft/outcome.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>

namespace weft {

/// The first child to finish: its position in the input and its outcome.
template <class T>
struct any_result {
  std::size_t index;
  outcome<T> result;
};

namespace detail {
[[noreturn]] void throw_empty_input(const char* api);

/// The children of a pack form share a result type (then the pack is a vector of tasks).
template <class... A>
concept common_children = requires {
  typename std::common_type_t<child_value_t<A>...>;
};

/// Their common result type (not_a_combinator_input where there is none, for a static_assert
/// to name).
template <class... A>
struct common_child_value {
  using type = not_a_combinator_input;
};
template <class... A>
requires common_children<A...>
struct common_child_value<A...> {
  using type = std::common_type_t<child_value_t<A>...>;
};
template <class... A>
using common_child_value_t = typename common_child_value<A...>::type;

/// A child whose value converts to the pack's common type (task<int> among task<long>s).
template <class T, class U>
task<T> converted(task<U> t) {
  co_return co_await std::move(t);
}

template <class T, class A>
task<T> as_task_of(A&& child) {
  if constexpr (std::is_same_v<child_value_t<A>, T>) {
    return detail::as_task(std::forward<A>(child));
  } else {
    return detail::converted<T>(detail::as_task(std::forward<A>(child)));
  }
}

template <class T, class... A>
std::vector<task<T>> to_vector(A&&... children) {
  std::vector<task<T>> v;
  v.reserve(sizeof...(A));
  (v.push_back(detail::as_task_of<T>(std::forward<A>(children))), ...);
  return v;
}

template <class... T>
task<std::variant<outcome<T>...>> when_any_pack(task<T>... children);
}  // namespace detail

/// Runs the children concurrently and returns the first to finish — value or exception — with
/// its index; the others are cancelled and waited for before it returns.
///
///     auto first = co_await weft::when_any(std::move(replicas));
///     auto body = std::move(first.result).value();  // rethrows if the winner failed
///
/// Throws std::invalid_argument for an empty vector. Cancelling the caller cancels every
/// child and, once all stopped, throws operation_cancelled — unless a child had finished by
/// itself first, whose outcome is then returned.
template <class T>
task<any_result<T>> when_any(std::vector<task<T>> tasks) {
  if (tasks.empty()) detail::throw_empty_input("weft::when_any");
  detail::child_range<T> set{std::move(tasks)};
  set.start_all();
  const auto token = co_await this_task::cancel_token();
  std::optional<any_result<T>> winner;
  std::exception_ptr take_failure;  // taking the winner's result threw: rethrown once all stopped
  {
    cancel_callback stop{token, detail::cancel_children_on<detail::child_range<T>>{&set}};
    for (std::size_t done = 0; done < set.size(); ++done) {
      const std::size_t i = co_await set.next();
      if (winner || take_failure) continue;  // a loser stopping: its result is not taken
      if (detail::take_guarded(set, take_failure, [&] {
            winner.emplace(any_result<T>{i, set.take(i)});
          })) {
        set.cancel_all();
      }
    }
  }
  if (take_failure) std::rethrow_exception(take_failure);
  if (token.is_cancellation_requested() && winner->result.has_error() &&
      detail::is_cancellation(winner->result.error())) {
    throw operation_cancelled{};
  }
  co_return std::move(*winner);
}

/// when_any over a pack of children with one result type (tasks or awaitables).
///
///     auto first = co_await weft::when_any(primary.get(key), replica.get(key));
template <class... A>
requires(sizeof...(A) > 0 && detail::common_children<A...> &&
         (!detail::is_task_vector<A>::value &&
          ...)) task<any_result<detail::common_child_value_t<A...>>> when_any(A&&... children) {
  using T = detail::common_child_value_t<A...>;
  return when_any(detail::to_vector<T>(std::forward<A>(children)...));
}

/// when_any over children of different result types (Tokio's select!): the winner's position is
/// the variant's index, and its outcome is the alternative there (a void child's is
/// outcome<void>). The others are cancelled and waited for, as above.
///
///     auto won = co_await weft::when_any(load_profile(id), weft::sleep_for(budget), stop.wait());
///     switch (won.index()) {
///       case 0: render(std::get<0>(std::move(won)).value()); break;  // the profile
///       case 1: render_anonymous(); break;                            // the budget ran out
///       case 2: co_return;                                            // stopping
///     }
///
/// A loser that finished anyway has its result dropped: race readers, and bound a consumer (a
/// channel receive) with weft::timeout instead (docs/combinators.md).
///
/// Cancelling the caller cancels every child and throws operation_cancelled, unless a child had
/// finished by itself first.
template <class... A>
requires(sizeof...(A) > 1 && !detail::common_children<A...>)
    task<std::variant<outcome<detail::child_value_t<A>>...>> when_any(A&&... children) {
  return detail::when_any_pack<detail::child_value_t<A>...>(
      detail::as_task(std::forward<A>(children))...);
}

namespace detail {
template <class... T>
task<std::variant<outcome<T>...>> when_any_pack(task<T>... children) {
  using pack = child_pack<T...>;
  using result = std::variant<outcome<T>...>;
  pack set{std::move(children)...};
  set.start_all();
  const auto token = co_await this_task::cancel_token();
  std::optional<result> winner;
  std::exception_ptr take_failure;  // taking the winner's result threw: rethrown once all stopped
  {
    cancel_callback stop{token, cancel_children_on<pack>{&set}};
    for (std::size_t done = 0; done < pack::size(); ++done) {
      const std::size_t i = co_await set.next();
      if (winner || take_failure) continue;  // a loser stopping: its result is not taken
      if (take_guarded(set, take_failure, [&] {
            set.visit(i, [&]<std::size_t I>() {
              winner.emplace(std::in_place_index<I>, set.template take<I>());
            });
          })) {
        set.cancel_all();
      }
    }
  }
  if (take_failure) std::rethrow_exception(take_failure);
  const bool cancelled_loss = std::visit(
      [](const auto& o) { return o.has_error() && is_cancellation(o.error()); }, *winner);
  if (token.is_cancellation_requested() && cancelled_loss) throw operation_cancelled{};
  co_return std::move(*winner);
}
}  // namespace detail

/// Runs the children concurrently and returns the value of the first to succeed, cancelling
/// and awaiting the rest. Failures are ignored while another child may still succeed; if every
/// child fails, throws aggregate_error with every exception in input order.
///
///     auto page = co_await weft::first_success(std::move(mirrors));
///
/// Throws std::invalid_argument for an empty vector. Cancelling the caller cancels every child
/// and throws operation_cancelled (unless a child had already succeeded).
template <class T>
task<T> first_success(std::vector<task<T>> tasks) {
  if (tasks.empty()) detail::throw_empty_input("weft::first_success");
  detail::child_range<T> set{std::move(tasks)};
  std::vector<std::exception_ptr> errors(set.size());
  set.start_all();
  const auto token = co_await this_task::cancel_token();
  std::optional<outcome<T>> won;
  std::exception_ptr take_failure;  // taking a result threw: rethrown once all stopped
  {
    cancel_callback stop{token, detail::cancel_children_on<detail::child_range<T>>{&set}};
    for (std::size_t done = 0; done < set.size(); ++done) {
      const std::size_t i = co_await set.next();
      if (won || take_failure) continue;  // the rest stopping: their results are not taken
      detail::take_guarded(set, take_failure, [&] {
        auto o = set.take(i);
        if (o.has_value()) {
          won.emplace(std::move(o));
          set.cancel_all();
        } else {
          errors[i] = o.error();
        }
      });
    }
  }
  if (take_failure) std::rethrow_exception(take_failure);
  if (!won) {
    if (token.is_cancellation_requested()) throw operation_cancelled{};
    throw aggregate_error(std::move(errors), "weft::first_success: every child failed");
  }
  if constexpr (std::is_void_v<T>) {
    co_return;
  } else {
    co_return std::move(*won).value();
  }
}

/// first_success over a pack of children with one result type.
template <class... A>
requires(sizeof...(A) > 0 &&
         (!detail::is_task_vector<A>::value &&
          ...)) task<detail::common_child_value_t<A...>> first_success(A&&... children) {
  static_assert(detail::common_children<A...>,
                "weft::first_success: the children need one result type (std::common_type); "
                "for different types, use when_any, whose result is a variant");
  using T = detail::common_child_value_t<A...>;
  return first_success(detail::to_vector<T>(std::forward<A>(children)...));
}

}  // namespace weft
