// A flaky dependency called through timeout | retry | breaker | bulkhead, under paused time so
// the run is exact and instant. Every event the layers emit is printed with its virtual time.
// docs/resilience.md walks through the output; the test suite runs this program.
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/weft.hpp>

using namespace std::chrono_literals;
namespace wr = weft::resilience;

namespace {

// The dependency: calls 1 and 2 fail, call 3 hangs (the timeout cuts it), then it recovers —
// until it goes down for good.
struct flaky_service {
  int calls = 0;
  bool down = false;
  weft::task<std::string> get() {
    const int n = ++calls;
    co_await weft::sleep_for(20ms);  // network time
    if (n <= 2 || down) {
      throw std::runtime_error("503 from backend (call " + std::to_string(n) + ")");
    }
    if (n == 3) co_await weft::sleep_for(1h);  // stuck: only cancellation ends this
    co_return "payload " + std::to_string(n);
  }
};

weft::clock::time_point start;

long ms() {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(weft::clock::now() - start).count());
}

void print(const wr::layer_event& e) noexcept {
  std::printf("%6ld ms  %-16.*s %-22.*s", ms(), static_cast<int>(e.layer.size()), e.layer.data(),
              static_cast<int>(wr::to_string(e.kind).size()), wr::to_string(e.kind).data());
  if (e.kind == wr::event_kind::retry) {
    std::printf(" attempt %d failed, next in %lld ms", e.attempt,
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(e.delay).count()));
  }
  if (e.kind == wr::event_kind::breaker_state_changed) {
    std::printf(" %.*s -> %.*s (%.*s)", static_cast<int>(wr::to_string(e.from).size()),
                wr::to_string(e.from).data(), static_cast<int>(wr::to_string(e.to).size()),
                wr::to_string(e.to).data(), static_cast<int>(e.reason.size()), e.reason.data());
  }
  if (e.kind == wr::event_kind::breaker_failure_rate_exceeded) {
    std::printf(" %.0f %%", e.value * 100);
  }
  std::printf("\n");
}

}  // namespace

int main() {
  weft::runtime rt{weft::runtime_options{.time = weft::time_mode::paused}};

  wr::time_limiter per_call{200ms};
  wr::retry_options ro;
  ro.max_attempts = 4;
  ro.backoff = wr::backoff::exponential(100ms, 2, 1s, wr::jitter::none());
  wr::retry retry{ro};
  wr::circuit_breaker_options bo;
  bo.window = wr::window::count(4);
  bo.minimum_calls = 4;
  bo.failure_rate_threshold = 0.75;
  bo.open_duration = 5s;
  bo.name = "service";  // events and rejections name it
  wr::circuit_breaker breaker{bo};
  wr::bulkhead_options ko;
  ko.max_concurrent = 2;
  wr::bulkhead bulkhead{ko};

  for (wr::telemetry* t :
       {&per_call.observers(), &retry.observers(), &breaker.observers(), &bulkhead.observers()}) {
    t->on_event([](const wr::layer_event& e) noexcept { print(e); });
  }

  // The retry wraps the breaker: every attempt asks the breaker, and the timeout bounds each one.
  wr::pipeline pipe{retry, per_call, breaker, bulkhead};
  flaky_service service;
  const bool ok = rt.block_on([&]() -> weft::task<bool> {
    start = weft::clock::now();
    // 1: two failures and a hang, retried until the fourth call answers.
    const std::string reply = co_await pipe.execute([&] { return service.get(); });
    std::printf("%6ld ms  reply: %s after %d calls\n", ms(), reply.c_str(), service.calls);

    // 2: the dependency goes down. One more failure fills the breaker's window at 3 of 4
    // failed: it opens, and the retry's next attempt is refused without a call. A rejection is
    // not retried: the caller gets it at once, with the time the breaker stays open.
    service.down = true;
    const int before = service.calls;
    try {
      (void)co_await pipe.execute([&] { return service.get(); });
    } catch (const wr::rejected& r) {
      std::printf("%6ld ms  rejected: %s; %d more call(s) reached the service\n", ms(), r.what(),
                  service.calls - before);
      co_return r.code() == wr::errc::circuit_open&& service.calls == before + 1 &&
          reply == "payload 4";
    }
    co_return false;
  });
  return ok ? 0 : 1;
}
