// Misuse detection for weft's awaiters: one that is destroyed without ever being co_awaited
// (`auto guard = m.lock();`, which locks nothing) stops the program in a checked build with a
// message naming the call. Also the move that lets an awaiter be handed to a combinator before
// it is awaited (`weft::timeout(2s, latch.wait())`).
#pragma once

#include <utility>

// On unless NDEBUG is defined, like assert; a build may set it either way. The layout of an
// awaiter does not depend on it (the pointer is always there); the inline destructors do, so a
// program should build every file with one setting (as with NDEBUG and assert).
#ifndef WEFT_CHECK_AWAITED
#ifdef NDEBUG
#define WEFT_CHECK_AWAITED 0
#else
#define WEFT_CHECK_AWAITED 1
#endif
#endif

namespace weft::detail {

/// Writes `what` ("weft::mutex::lock() was never co_awaited: nothing is locked") and a hint to
/// stderr and aborts, unless the stack is
/// unwinding (an exception thrown between making an awaiter and awaiting it is not misuse).
void report_unawaited(const char* what) noexcept;

/// Runtime shutdown destroys the frames of unfinished tasks, with any awaiter a task had made and
/// not yet awaited: that is not misuse, and is not reported while one of these lives on the
/// destroying thread.
class shutdown_destroy_scope {
 public:
  shutdown_destroy_scope() noexcept;
  ~shutdown_destroy_scope();
  shutdown_destroy_scope(const shutdown_destroy_scope&) = delete;
  shutdown_destroy_scope& operator=(const shutdown_destroy_scope&) = delete;
};

/// A base of every weft awaiter: armed with the call's message when the awaiter is made,
/// disarmed by await_ready (which every co_await calls first). Moving hands the duty to the new
/// awaiter; a moved-from awaiter is never reported.
class await_check {
 public:
  await_check() noexcept = default;
  explicit await_check(const char* what) noexcept : call_(what) {}
  await_check(await_check&& other) noexcept : call_(std::exchange(other.call_, nullptr)) {}
  await_check(const await_check&) = delete;
  await_check& operator=(const await_check&) = delete;
  await_check& operator=(await_check&&) = delete;
  ~await_check() {
#if WEFT_CHECK_AWAITED
    if (call_ != nullptr) report_unawaited(call_);
#endif
  }

  /// Called from await_ready: the awaiter is being awaited.
  void mark_awaited() const noexcept {
    call_ = nullptr;
  }
  /// For an owner that takes the awaiter over and may legitimately drop it unawaited (a
  /// combinator's child that is cancelled before it starts).
  void waive_await_check() noexcept {
    call_ = nullptr;
  }

 private:
  mutable const char* call_ = nullptr;
};

/// Waives the check of an awaitable handed to a combinator (no-op for other types).
template <class A>
void waive_await_check(A& a) noexcept {
  if constexpr (requires { a.waive_await_check(); }) a.waive_await_check();
}

}  // namespace weft::detail
