// weft::clock: the runtime's steady clock, which a runtime built with paused time stands still.
//
// Thread safety: clock::now() may be called from any thread. A clock_scope binds only the thread
// that made it, and must be destroyed there.
//
// Cancellation: nothing here suspends.
#pragma once

#include <chrono>
#include <cstdint>

namespace weft {

/// How a runtime's clock moves.
enum class time_mode {
  /// The clock is std::chrono::steady_clock.
  real,
  /// The clock stands still while any task can run; when every task waits it jumps to the next
  /// timer's deadline, and weft::advance moves it by hand. Deterministic; for tests.
  paused,
};

class runtime;

/// The clock of the runtime whose worker calls now(): a steady clock that reads as
/// std::chrono::steady_clock in real time and as the runtime's own time when it is paused.
/// Time points share steady_clock's epoch.
///
/// On a thread that is not a worker there is no runtime to ask (a process may run several, paused
/// and real), so now() reads std::chrono::steady_clock, even while a paused runtime runs —
/// unless the thread is bound to a runtime by a clock_scope, when it reads that runtime's clock.
/// runtime::now() reads one runtime's clock from anywhere.
///
///     auto start = weft::clock::now();
///     co_await weft::sleep_for(30s);          // paused time: returns at once
///     assert(weft::clock::now() - start == 30s);
struct clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<clock, duration>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept;
};

/// Makes clock::now() on this plain thread read `rt`'s clock (its paused time included) while the
/// scope lives, so that code run here — a deadline a test computes before handing it to a task, a
/// resilience layer used off the workers — agrees with the runtime's tasks:
///
///     weft::runtime rt{weft::runtime_options{.time = weft::time_mode::paused}};
///     weft::clock_scope scope{rt};
///     const auto deadline = weft::clock::now() + 5s;  // on rt's clock, not the real one
///
/// Scopes nest (the innermost wins; destroy them in reverse order). Only this thread is bound;
/// `rt` must outlive the scope. Throws std::logic_error on a worker thread, whose clock is always
/// its own runtime's.
class [[nodiscard]] clock_scope {
 public:
  explicit clock_scope(const runtime& rt);
  clock_scope(const clock_scope&) = delete;
  clock_scope& operator=(const clock_scope&) = delete;
  ~clock_scope();

 private:
  const runtime* previous_;
};

}  // namespace weft
