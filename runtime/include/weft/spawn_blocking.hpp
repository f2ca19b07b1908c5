// weft::spawn_blocking: run a blocking function on the runtime's blocking threads.
//
// Thread safety: awaited from a task on a worker; the function runs on a blocking thread,
// concurrently with that worker's tasks. Capture by value: a cancelled await returns while the
// function may still run.
//
// Cancellation: a job not started yet is dropped; a running one is not interrupted: the await
// throws operation_cancelled at once and the result is discarded when the function returns.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>
#include <variant>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/await_check.hpp>
#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/scheduler.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/detail/spawn_blocking.hpp>

namespace weft {

/// Runs `f()` on one of the runtime's blocking threads and resumes with its result (or rethrows
/// its exception), so a blocking call (a file read, getaddrinfo, a CPU-heavy hash) does not stall
/// a worker. Threads start on demand, up to runtime_options::max_blocking_threads; beyond that,
/// jobs queue.
///
///     auto digest = co_await weft::spawn_blocking([data] { return sha256(data); });
///
/// Cancellation: a job not started yet is dropped; a running one cannot be interrupted, so the
/// await throws operation_cancelled at once and the function's result is discarded when it ends.
/// Errors: throws std::logic_error when awaited outside a runtime's worker.
template <class F>
requires std::invocable < std::decay_t<F>
& > [[nodiscard("spawn_blocking does nothing until it is co_awaited")]] auto spawn_blocking(F&& f) {
  return detail::blocking_awaiter<std::decay_t<F>>{std::forward<F>(f)};
}

}  // namespace weft
