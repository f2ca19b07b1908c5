// weft::spawn: start a task on the current runtime from inside a task.
//
// Thread safety: weft::spawn and weft::dump_tasks() from a task on a worker only (std::logic_error
// elsewhere; runtime::spawn works from any thread). The spawned task runs on any worker,
// concurrently with its spawner.
//
// Cancellation: a spawned task does not inherit the spawner's token: cancel it through its
// join_handle, or tie it with with_cancellation. One cancelled before it ran never runs its body.
// dump_tasks() is cancellable as spawn_blocking is.
#pragma once

#include <source_location>
#include <utility>
#include <vector>

#include <weft/detail/children.hpp>
#include <weft/detail/scheduler.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/join_handle.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn_options.hpp>
#include <weft/task.hpp>

namespace weft {

/// Starts `t` on the runtime whose worker calls it and returns its handle. The task runs
/// independently of its spawner: it does not inherit the spawner's cancellation token (use
/// cancel() on the handle, or with_cancellation, to tie them). The new task goes to this worker's
/// LIFO slot, so it usually runs next, on this worker, unless another worker steals it.
///
///     auto h = weft::spawn(fetch(url));
///     ...
///     auto body = co_await h;
///
/// Throws std::logic_error outside a runtime's worker (use runtime::spawn there) or for an empty
/// task.
///
/// Name a long-lived task for task dumps and stall reports (the spawn location is always kept):
///
///     weft::spawn(serve(std::move(conn)), {.name = "conn 10.0.0.7:5511"});
template <class T>
join_handle<T> spawn(task<T> t, spawn_options options = {},
                     std::source_location at = std::source_location::current()) {
  detail::runtime_core& rt = detail::require_runtime("weft::spawn");
  auto h = detail::prepare_root(std::move(t), "weft::spawn");
  detail::spawn_root(&rt, h, h.promise(), detail::spawn_site{at, options.name});
  return join_handle<T>{h, &rt};
}

/// spawn(co_invoke(f)): the callable (and its captures) lives as long as the task.
template <detail::task_factory F>
auto spawn(F f, spawn_options options = {},
           std::source_location at = std::source_location::current()) {
  return weft::spawn(co_invoke(std::move(f)), options, at);
}

/// spawn for an awaitable that is not a task (a pipeline's execute(), a sleep, a join): it moves
/// into a task of its own, which is spawned.
///
///     auto h = weft::spawn(pipe.execute(fetch_config));   // fetch_config() returns a task
template <class A>
requires(
    !detail::is_task<std::remove_cvref_t<A>>::value && !detail::task_factory<A> &&
    detail::awaitable<std::remove_cvref_t<A>>) auto spawn(A&& a, spawn_options options = {},
                                                          std::source_location at =
                                                              std::source_location::current()) {
  return weft::spawn(detail::as_task(std::forward<A>(a)), options, at);
}

/// The current runtime's dump_tasks(), from inside a task: the dump is taken on a blocking-pool
/// thread while this task waits (suspended, so it shows up too, waiting on "dump_tasks").
///
///     auto tasks = co_await weft::dump_tasks();
///     std::cerr << weft::to_string(tasks);
///
/// Awaiting it outside a runtime's worker throws std::logic_error.
task<std::vector<task_record>> dump_tasks();

}  // namespace weft
