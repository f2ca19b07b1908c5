// What timed tests share: a runtime with paused time, and milliseconds read off its clock.
#pragma once

#include <chrono>

#include <weft/runtime.hpp>
#include <weft/time/clock.hpp>

namespace weft::testing {

/// One worker, paused time: timers fire in exact deadline order, in microseconds of real time.
inline weft::runtime_options paused() {
  return weft::runtime_options{.time = weft::time_mode::paused};
}

/// Whole milliseconds since `start` on the calling worker's runtime clock.
inline long ms_since(weft::clock::time_point start) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(weft::clock::now() - start).count());
}

}  // namespace weft::testing
