// The few scheduler entry points that header-only awaiters call; implemented in runtime/src.
#pragma once

#include <coroutine>

namespace weft::detail {

class runtime_core;

/// The runtime whose worker runs on this thread; null on any other thread. Set by the worker loop.
extern thread_local runtime_core* tls_runtime;

/// The runtime whose worker is running on this thread, or null on any other thread.
inline runtime_core* current_runtime() noexcept {
  return tls_runtime;
}

[[noreturn]] void throw_outside_runtime(const char* api);

/// Throws std::logic_error naming `api` if this thread is not a worker of a weft runtime.
inline runtime_core& require_runtime(const char* api) {
  if (tls_runtime == nullptr) throw_outside_runtime(api);
  return *tls_runtime;
}

/// Makes a woken coroutine runnable on `rt`: into the current worker's LIFO slot if this thread
/// is one of rt's workers, otherwise into rt's injection queue (waking a parked worker if needed).
void schedule_wake(runtime_core* rt, std::coroutine_handle<> h) noexcept;

/// What run_taken_inline did.
enum class inline_join : unsigned char {
  suspended,   // its first step suspended (or it ran and we were cancelled): the joiner waits
  resume_now,  // it finished in its first step and woke the joiner here: go on at once
};
/// Work-first joins, in three steps (join_handle's awaiter). First, before registering as the
/// joiner: if root `h` of `rt` has not started and its first step is still queued on this
/// thread's worker (its LIFO slot, or the back of its run queue), take_back_joined removes it
/// and returns true; nobody else can start it now. Then, if the join does not go ahead,
/// requeue_first_run puts it back; otherwise, after registering, run_taken_inline runs that
/// first step here (nested in the joiner's await_suspend; a root cancelled meanwhile is
/// completed unrun). Unless told resume_now, the joiner touches nothing of its frame afterwards.
bool take_back_joined(runtime_core* rt, std::coroutine_handle<> h) noexcept;
void requeue_first_run(runtime_core* rt, std::coroutine_handle<> h) noexcept;
inline_join run_taken_inline(std::coroutine_handle<> h, std::coroutine_handle<> joiner) noexcept;

/// Puts the running coroutine at the back of the current worker's queue (weft::yield).
void schedule_yield(std::coroutine_handle<> h);

class worker;
/// On a worker thread: runs the worker's loop (tasks, I/O, timers, parking) until
/// pending(context) is false or the runtime stops, and returns true. Off a worker: returns false
/// at once. For code that must wait synchronously for tasks, such as a destructor.
bool help_while(bool (*pending)(void*), void* context);
/// The worker running on this thread, or null.
worker* current_worker_or_null() noexcept;
/// True once `rt` began shutting down (its workers leave their loops; nothing more completes).
bool runtime_stopping(const runtime_core* rt) noexcept;
/// Wakes `w` if it is parked (inside help_while or its loop).
void unpark_current_helper(worker* w) noexcept;

}  // namespace weft::detail
