// Bounded polling for tests that wait on another thread: a broken runtime fails the test
// instead of hanging it. No sleeps: each iteration yields the thread.
#pragma once

#include <thread>

namespace weft::testing {

inline constexpr long poll_limit = 20'000'000;

/// Polls `done` until it returns true (then true) or poll_limit iterations passed (then false).
template <class Predicate>
bool eventually(Predicate done) {
  for (long i = 0; i < poll_limit; ++i) {
    if (done()) return true;
    std::this_thread::yield();
  }
  return done();
}

}  // namespace weft::testing
