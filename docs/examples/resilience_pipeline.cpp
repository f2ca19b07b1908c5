// The README's "Resilience in one example": a dependency called through timeout | retry |
// breaker | bulkhead, under paused time so the run is exact and instant. main() runs it against
// a dependency that answers, one that fails once (the retry hides it) and one that is down (its
// failure reaches the caller), and exits non-zero if one goes wrong. The test suite runs this
// program; the snippet and its dependency live in resilience_pipeline.hpp, which
// tests/resilience/movable_layers_test.cpp runs too.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "resilience_pipeline.hpp"

namespace {

using readme::call_through_pipeline;
using readme::user_service;

bool check(bool ok, const char* what) {
  std::printf("%s  %s\n", ok ? "  ok" : "FAIL", what);
  return ok;
}

weft::task<bool> run() {
  bool ok = true;
  {
    user_service users;
    co_await call_through_pipeline(users, 7);
    ok &= check(users.calls == 1 && users.answered == std::vector<int>{7},
                "a dependency that answers: one call");
  }
  {
    user_service users;
    users.how = user_service::behaviour::fails_once;
    co_await call_through_pipeline(users, 8);
    ok &= check(users.calls == 2 && users.answered == std::vector<int>{8},
                "a dependency that fails once: the retry's second call answers");
  }
  {
    // Down for good: the retry gives up and the failure reaches the caller (it is not a
    // rejection, so the snippet's catch clause lets it through).
    user_service users;
    users.how = user_service::behaviour::down;
    bool failed = false;
    try {
      co_await call_through_pipeline(users, 9);
    } catch (const std::runtime_error& e) {
      failed = std::string{e.what()} == "503 from the user service";
    }
    ok &= check(failed && users.calls >= 2 && users.answered.empty(),
                "a dependency that is down: retried, then its failure is thrown");
  }
  co_return ok;
}

}  // namespace

int main() {
  weft::runtime rt{weft::runtime_options{.time = weft::time_mode::paused}};
  const bool ok = rt.block_on(run());
  std::printf("%s\n", ok ? "resilience_pipeline: ok" : "resilience_pipeline: FAILED");
  return ok ? 0 : 1;
}
