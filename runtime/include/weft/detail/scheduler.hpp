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

/// Puts the running coroutine at the back of the current worker's queue (weft::yield).
void schedule_yield(std::coroutine_handle<> h);

}  // namespace weft::detail
