// weft::spawn: start a task on the current runtime from inside a task.
#pragma once

#include <utility>

#include <weft/detail/scheduler.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/join_handle.hpp>
#include <weft/runtime.hpp>
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
template <class T>
join_handle<T> spawn(task<T> t) {
  detail::runtime_core& rt = detail::require_runtime("weft::spawn");
  auto h = detail::prepare_root(std::move(t), "weft::spawn");
  detail::spawn_root(&rt, h, h.promise());
  return join_handle<T>{h, &rt};
}

/// spawn(co_invoke(f)): the callable (and its captures) lives as long as the task.
template <detail::task_factory F>
auto spawn(F f) {
  return weft::spawn(co_invoke(std::move(f)));
}

}  // namespace weft
