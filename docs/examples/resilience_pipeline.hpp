// The README's "Resilience in one example", and the dependency it calls: one copy, run by
// docs/examples/resilience_pipeline.cpp and by tests/resilience/movable_layers_test.cpp, and
// compared with the README by the readme_blocks check.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/weft.hpp>

namespace readme {

using namespace std::chrono_literals;

struct user {
  int id = 0;
  std::string name;
};

// The dependency: answers after 10 ms, fails its first call when told to, hangs, or is down.
struct user_service {
  enum class behaviour { answers, fails_once, hangs, down };
  behaviour how = behaviour::answers;
  int calls = 0;
  std::vector<int> answered;

  weft::task<user> get(int id) {
    const int n = ++calls;
    co_await weft::sleep_for(10ms);
    if (how == behaviour::hangs) co_await weft::sleep_for(1h);
    if (how == behaviour::down || (how == behaviour::fails_once && n == 1)) {
      throw std::runtime_error("503 from the user service");
    }
    answered.push_back(id);
    co_return user{id, "user " + std::to_string(id)};
  }
};

// The README's code, run once per call (so its breaker is a new one each time).
inline weft::task<void> call_through_pipeline(user_service& users, int id) {
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

}  // namespace readme
