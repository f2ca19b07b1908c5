// The README's "Resilience in one example": a dependency called through timeout | retry |
// breaker | bulkhead, under paused time so the run is exact and instant. main() runs it against
// a dependency that answers, one that fails once (the retry hides it) and one that is down (its
// failure reaches the caller), and exits non-zero if one goes wrong. The test suite runs this
// program (tests/resilience/movable_layers_test.cpp runs the same snippet).
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

struct user {
  int id = 0;
  std::string name;
};

// The dependency: answers after 10 ms, fails its first call when told to, or is down.
struct user_service {
  enum class behaviour { answers, fails_once, down };
  behaviour how = behaviour::answers;
  int calls = 0;
  std::vector<int> answered;

  weft::task<user> get(int id) {
    const int n = ++calls;
    co_await weft::sleep_for(10ms);
    if (how == behaviour::down || (how == behaviour::fails_once && n == 1)) {
      throw std::runtime_error("503 from the user service");
    }
    answered.push_back(id);
    co_return user{id, "user " + std::to_string(id)};
  }
};

// The README's code, run once per call (so its breaker is a new one each time).
weft::task<void> call_through_pipeline(user_service& users, int id) {
  // clang-format off
  // [readme:resilience_pipeline]
  namespace wr = weft::resilience;
  wr::circuit_breaker breaker;  // shared by every call to this dependency
  wr::pipeline pipe{wr::time_limiter{2s}, wr::retry{}, breaker, wr::bulkhead{{.max_concurrent = 8}}};
  try {
    auto user = co_await pipe.execute([&] { return users.get(id); });
  } catch (const wr::rejected& r) {  // circuit_open, bulkhead_full, … with r.retry_after()
  }
  // [/readme:resilience_pipeline]
  // clang-format on
}

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
