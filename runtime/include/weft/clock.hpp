// weft::clock: the runtime's steady clock, which a runtime built with paused time stands still.
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

/// The clock of the runtime whose worker calls now(): a steady clock that reads as
/// std::chrono::steady_clock in real time and as the runtime's own time when it is paused.
/// On a thread that is not a worker it reads std::chrono::steady_clock (use runtime::now() there
/// for a paused runtime's time). Time points share steady_clock's epoch.
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

}  // namespace weft
