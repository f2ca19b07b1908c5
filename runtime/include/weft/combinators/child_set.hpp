// weft::child_set: child tasks of the awaiting task, started one at a time and awaited in the
// order they finish — the piece weft's own combinators are made of, for writing combinators with
// rules of their own (a hedge, a race judged by content, a staggered start).
//
// Thread safety: one task uses a set; cancel_all() may also be called from any thread (a
// cancel_callback on the caller's token does). Children run as tasks of their own, on any worker,
// concurrently with the caller.
//
// Cancellation: next() is not cancellable and the children do not observe the caller's token:
// register cancel_all() on it to stop them. A child cancelled before it started gives
// operation_cancelled from take().
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include <weft/detail/children.hpp>
#include <weft/outcome.hpp>
#include <weft/task.hpp>

namespace weft {

/// A fixed set of child tasks, started when you say and collected as they finish.
///
///     std::vector<weft::task<int>> replicas = …;
///     weft::child_set<int> set{std::move(replicas)};
///     set.start(0);
///     std::size_t i = co_await set.next();          // the first child to finish
///     weft::outcome<int> r = set.take(i);
///     set.cancel_all();                              // then drain what was started:
///     for (std::size_t left = …; left > 0; --left) set.take(co_await set.next());
///
/// Rules:
/// - start(i) queues child i on the current worker as a task of its own (another worker may steal
///   it), with the set as its joiner; children never started are destroyed with the set unrun.
/// - next() waits for the next started child to finish and returns its index; it is not itself
///   cancellable (children may refer to the caller's frame, so the caller waits for them). To stop
///   children when the caller is cancelled, register cancel_all() with a cancel_callback on the
///   caller's token. take(i) gives a finished child's value or exception as an outcome, without
///   rethrowing it; a child the runtime destroyed at shutdown gives operation_cancelled.
/// - Children observe the set's own cancellation only (cancel_all()), not the caller's.
/// - Await next() once for every child started before the set goes away (the destructor does not
///   wait), except when the runtime shuts down.
///
/// Misuse: an empty task throws std::logic_error at construction; start() off a worker throws
/// std::logic_error; starting a child twice, or take() of a child that has not finished, is a
/// precondition violation. Thread safety: one task uses a set; cancel_all() from any thread.
template <class T>
class child_set {
 public:
  explicit child_set(std::vector<task<T>> tasks) : children_(std::move(tasks)) {}
  child_set(const child_set&) = delete;
  child_set& operator=(const child_set&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return children_.size(); }
  /// Starts child i.
  void start(std::size_t i) { children_.start(i); }
  void start_all() { children_.start_all(); }
  /// Requests cancellation of every child started so far and not finished (a child started
  /// afterwards is not affected).
  void cancel_all() noexcept { children_.cancel_all(); }
  /// Waits for the next started child to finish; gives its index.
  [[nodiscard("next() does nothing until it is co_awaited")]] auto next() noexcept {
    return children_.next();
  }
  /// A finished child's result.
  [[nodiscard]] outcome<T> take(std::size_t i) { return children_.take(i); }

 private:
  detail::child_range<T> children_;
};

}  // namespace weft
