// weft::quorum and weft::majority: return once k children succeeded, give up once they cannot.
//
// Thread safety: awaited from a task on a worker (std::logic_error elsewhere); every child runs as
// a task of its own, concurrently on any worker, so what children share must be synchronised. The
// task_group overloads spawn into `rest`, which only the calling task uses meanwhile.
//
// Cancellation: cancelling the caller cancels every child, waits for them and throws
// operation_cancelled unless k had succeeded already; with a task_group it throws at once and
// leaves the children running in the group.
#pragma once

#include <cmath>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/combinators/aggregate_error.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/combinators/when_any.hpp>
#include <weft/detail/children.hpp>
#include <weft/sync/event.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>

namespace weft {

/// One success counted by quorum: which child, and its value.
template <class T>
struct quorum_vote {
  std::size_t index;
  T value;
};
template <>
struct quorum_vote<void> {
  std::size_t index;
};

namespace detail {
[[noreturn]] void throw_bad_quorum(const char* api, std::size_t k, std::size_t n);
std::size_t majority_count(std::size_t n, double threshold, const char* api);
}  // namespace detail

/// Runs the n children concurrently and returns as soon as k of them succeeded: their values
/// with their indices, in the order they succeeded; the rest are cancelled and awaited first
/// (to let them finish instead, pass a task_group: the overload below).
/// Throws aggregate_error as soon as success became impossible (more than n - k failures), not
/// later, holding the failures seen so far in input order; the rest are then cancelled and
/// awaited.
///
///     auto acks = co_await weft::quorum(2, std::move(writes));   // 2 of 3 replicas
///
/// Argument errors (std::invalid_argument, with the numbers): k = 0, k > n, an empty vector.
/// Cancelling the caller cancels every child; the call throws operation_cancelled unless k had
/// succeeded already.
template <class T>
task<std::vector<quorum_vote<T>>> quorum(std::size_t k, std::vector<task<T>> tasks) {
  const std::size_t n = tasks.size();
  if (n == 0 || k == 0 || k > n) detail::throw_bad_quorum("weft::quorum", k, n);
  detail::child_range<T> set{std::move(tasks)};
  std::vector<std::exception_ptr> errors(n);
  std::vector<quorum_vote<T>> votes;
  votes.reserve(k);
  set.start_all();
  const auto token = co_await this_task::cancel_token();
  std::size_t failures = 0;
  bool decided = false;
  std::exception_ptr take_failure;  // taking a result threw: rethrown once all stopped
  {
    cancel_callback stop{token, detail::cancel_children_on<detail::child_range<T>>{&set}};
    for (std::size_t done = 0; done < n; ++done) {
      const std::size_t i = co_await set.next();
      if (decided) continue;  // a child stopped because the outcome was already known
      const bool taken = detail::take_guarded(set, take_failure, [&] {
        auto o = set.take(i);
        if (o.has_value()) {
          if constexpr (std::is_void_v<T>) {
            votes.push_back(quorum_vote<void>{i});
          } else {
            votes.push_back(quorum_vote<T>{i, std::move(o).value()});
          }
          if (votes.size() == k) {
            decided = true;
            set.cancel_all();
          }
        } else {
          errors[i] = o.error();
          if (++failures > n - k) {
            decided = true;
            set.cancel_all();
          }
        }
      });
      if (!taken) decided = true;  // rethrown below, once the rest stopped
    }
  }
  if (take_failure) std::rethrow_exception(take_failure);
  if (votes.size() == k) co_return votes;
  // A cancelled caller's children fail with operation_cancelled: that is the caller's
  // cancellation, not k becoming impossible.
  if (token.is_cancellation_requested()) throw operation_cancelled{};
  std::vector<std::exception_ptr> seen;
  for (auto& e : errors) {
    if (e) seen.push_back(std::move(e));
  }
  throw aggregate_error(std::move(seen), "weft::quorum: " + std::to_string(k) + " of " +
                                             std::to_string(n) + " can no longer succeed");
}

/// quorum with k = the smallest count strictly greater than threshold × n (threshold 0.5: a
/// strict majority, 2 of 3, 3 of 4). threshold must be in [0, 1); the k it gives must be ≤ n.
template <class T>
task<std::vector<quorum_vote<T>>> majority(std::vector<task<T>> tasks, double threshold = 0.5) {
  const std::size_t k = detail::majority_count(tasks.size(), threshold, "weft::majority");
  return quorum(k, std::move(tasks));
}

namespace detail {

/// What the children of a quorum that lets its stragglers finish share with the caller: the
/// caller may be gone (it returned at k) while they still run, so it lives as long as any of them.
template <class T>
struct finishing_quorum {
  finishing_quorum(std::size_t k, std::size_t n) : k(k), n(n), errors(n) {}
  const std::size_t k;
  const std::size_t n;
  std::mutex lock;
  std::vector<quorum_vote<T>> votes;      // guarded by lock
  std::vector<std::exception_ptr> errors;  // guarded by lock
  std::size_t failures = 0;               // guarded by lock
  bool decided = false;                   // guarded by lock
  event done;
};

/// One child of a finishing quorum, as a task of the caller's group: it never fails (a failure
/// is a vote against, and must not make the group cancel the other children).
template <class T>
task<void> finishing_voter(std::shared_ptr<finishing_quorum<T>> q, std::size_t i, task<T> t) {
  std::exception_ptr error;
  [[maybe_unused]] std::optional<std::conditional_t<std::is_void_v<T>, char, T>> value;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(t);
    } else {
      value.emplace(co_await std::move(t));
    }
  } catch (...) {
    error = std::current_exception();
  }
  bool decide = false;
  {
    std::lock_guard guard{q->lock};
    if (q->decided) co_return;  // a straggler: it finished its work, the answer was given
    if (!error) {
      if constexpr (std::is_void_v<T>) {
        q->votes.push_back(quorum_vote<void>{i});
      } else {
        q->votes.push_back(quorum_vote<T>{i, std::move(*value)});
      }
      decide = q->votes.size() == q->k;
    } else {
      q->errors[i] = std::move(error);
      decide = ++q->failures > q->n - q->k;
    }
    if (decide) q->decided = true;
  }
  if (decide) q->done.set();
}

}  // namespace detail

/// quorum that lets the stragglers finish instead of cancelling them: every child runs as a task
/// of `rest` (a group the caller owns and joins later), and the call returns as soon as k
/// succeeded (or throws aggregate_error as soon as they cannot) while the others go on. What the
/// stragglers return is discarded and their failures fail nothing (not the call, not `rest`):
/// have the child record what it must. "Durable on 2 of 3, replicated to all":
///
///     weft::task_group replication;  // joined before the service stops
///     auto acks = co_await weft::quorum(2, std::move(writes), replication);
///     // 2 replicas acknowledged; the third write still runs in `replication`
///
/// Cancelling the caller throws operation_cancelled and leaves the children running in `rest`
/// (cancel the group to stop them). Argument errors as for quorum.
template <class T>
task<std::vector<quorum_vote<T>>> quorum(std::size_t k, std::vector<task<T>> tasks,
                                         task_group& rest) {
  const std::size_t n = tasks.size();
  if (n == 0 || k == 0 || k > n) detail::throw_bad_quorum("weft::quorum", k, n);
  auto q = std::make_shared<detail::finishing_quorum<T>>(k, n);
  for (std::size_t i = 0; i < n; ++i) {
    rest.spawn(detail::finishing_voter<T>(q, i, std::move(tasks[i])));
  }
  co_await q->done.wait();
  std::lock_guard guard{q->lock};  // decided: no voter touches votes or errors any more
  if (q->votes.size() == k) co_return std::move(q->votes);
  std::vector<std::exception_ptr> seen;
  for (auto& e : q->errors) {
    if (e) seen.push_back(std::move(e));
  }
  throw aggregate_error(std::move(seen), "weft::quorum: " + std::to_string(k) + " of " +
                                             std::to_string(n) + " can no longer succeed");
}

/// majority that lets the stragglers finish in `rest` (see quorum with a task_group).
template <class T>
task<std::vector<quorum_vote<T>>> majority(std::vector<task<T>> tasks, task_group& rest,
                                           double threshold = 0.5) {
  const std::size_t k = detail::majority_count(tasks.size(), threshold, "weft::majority");
  return quorum(k, std::move(tasks), rest);
}

/// quorum over a pack of children with one result type (tasks or awaitables).
template <class... A>
requires(sizeof...(A) > 0 && (!detail::is_task_vector<A>::value && ...) &&
         (!std::is_same_v<std::remove_cvref_t<A>, task_group> && ...))
task<std::vector<quorum_vote<detail::common_child_value_t<A...>>>> quorum(std::size_t k,
                                                                          A&&... children) {
  static_assert(detail::common_children<A...>,
                "weft::quorum: the children need one result type (std::common_type)");
  using T = detail::common_child_value_t<A...>;
  return quorum(k, detail::to_vector<T>(std::forward<A>(children)...));
}

/// majority over a pack of children with one result type.
template <class... A>
requires(sizeof...(A) > 0 && (!detail::is_task_vector<A>::value && ...) &&
         (!std::is_same_v<std::remove_cvref_t<A>, task_group> && ...))
task<std::vector<quorum_vote<detail::common_child_value_t<A...>>>> majority(A&&... children) {
  static_assert(detail::common_children<A...>,
                "weft::majority: the children need one result type (std::common_type)");
  using T = detail::common_child_value_t<A...>;
  return majority(detail::to_vector<T>(std::forward<A>(children)...));
}

}  // namespace weft
