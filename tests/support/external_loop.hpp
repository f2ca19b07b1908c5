// What the external-loop tests share: the options, a poll(2) on the runtime's descriptor, and a
// host loop that fails on a lost wake-up instead of hanging.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>

#include <weft/runtime.hpp>

namespace weft::testing {

inline weft::runtime_options external_loop() {
  weft::runtime_options o;
  o.external_loop = true;
  return o;
}

/// True if the runtime's descriptor is readable within `timeout_ms`.
inline bool readable(const weft::runtime& rt, int timeout_ms) {
  pollfd p{rt.event_fd(), POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) > 0;
}

/// The host's loop: wait as run_ready says, then run what is ready, until `done()`. No
/// readiness within 10 s while only the descriptor can wake the loop fails the test.
template <class Done>
void drive_until(weft::runtime& rt, Done done) {
  while (!done()) {
    const weft::run_ready_result r = rt.run_ready();
    if (done()) return;
    if (r.timeout_ms < 0) {
      ASSERT_TRUE(readable(rt, 10'000)) << "the runtime has work but its descriptor never said so";
    } else {
      readable(rt, r.timeout_ms);
    }
  }
}

}  // namespace weft::testing
