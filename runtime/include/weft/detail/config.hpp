// Compiler-dependent switches of the runtime, kept in one place.
#pragma once

// Symmetric transfer (await_suspend returning a handle) is a guaranteed tail call only under
// clang. g++ 12 turns it into a nested call at -O0 and under ASan/TSan even at -O2, so a loop of
// synchronously completing co_awaits grows the stack until it overflows (measured: docs/runtime.md).
// Without it, tasks start their children with the completion-flag protocol of task.hpp.
#ifndef WEFT_SYMMETRIC_TRANSFER
#if defined(__clang__)
#define WEFT_SYMMETRIC_TRANSFER 1
#else
#define WEFT_SYMMETRIC_TRANSFER 0
#endif
#endif

// Task introspection (ids, names and spawn locations of tasks, the co_await site of every
// suspended frame, dump_tasks): on by default; -DWEFT_INTROSPECTION=0 (meson -Dintrospection=false)
// compiles it out, for the overhead figures in docs/introspection.md. Every translation unit of a
// program must agree, so meson puts it on the dependency's compile arguments.
#ifndef WEFT_INTROSPECTION
#define WEFT_INTROSPECTION 1
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#endif
#ifndef WEFT_ASAN
#define WEFT_ASAN 0
#endif
#ifndef WEFT_TSAN
#define WEFT_TSAN 0
#endif

#define WEFT_LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace weft::detail {
/// Tells the CPU we are spinning (frees the sibling hyper-thread, saves power).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
}  // namespace weft::detail
