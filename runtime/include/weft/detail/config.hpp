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

// A program must compile weft's headers with the settings its weft library was built with:
// WEFT_SYMMETRIC_TRANSFER changes how a task starts and finishes its children, WEFT_INTROSPECTION
// the frame layout. Mixed, the program would break at run time (or, for the protocol, fail to link
// on a symbol of the other protocol). The build passes the library's settings on (meson dependency,
// weft.pc, the CMake package); a program that bypasses them references a symbol the library does
// not define and fails to link with an error that names the setting, e.g.
//   undefined reference to `weft::detail::abi_symmetric_transfer_0'
// (the library was built with 1: compile with -DWEFT_SYMMETRIC_TRANSFER=1, as pkg-config says).
#define WEFT_ABI_SYMBOL_CAT(a, b) a##b
#define WEFT_ABI_SYMBOL(name, value) WEFT_ABI_SYMBOL_CAT(name, value)

namespace weft::detail {
extern const int WEFT_ABI_SYMBOL(abi_symmetric_transfer_, WEFT_SYMMETRIC_TRANSFER);
extern const int WEFT_ABI_SYMBOL(abi_introspection_, WEFT_INTROSPECTION);
// Emitted by every translation unit that includes weft (used), and kept by --gc-sections
// (retain), so the reference always reaches the linker; two pointers per program (an inline
// variable is merged across units).
[[gnu::used, gnu::retain]] inline const int* const abi_check[] = {
    &WEFT_ABI_SYMBOL(abi_symmetric_transfer_, WEFT_SYMMETRIC_TRANSFER),
    &WEFT_ABI_SYMBOL(abi_introspection_, WEFT_INTROSPECTION),
};

/// Tells the CPU we are spinning (frees the sibling hyper-thread, saves power).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
}  // namespace weft::detail
