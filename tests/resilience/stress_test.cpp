// Breakers, bulkheads and rate limiters shared by tasks on both workers at once (real time, run
// under TSan in CI): one pipeline, many callers, random failures and cancellations; the counts
// must add up, no permit may leak, and the limits must hold.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/join_handle.hpp>
#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/rate_limiter.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/yield.hpp>

namespace {

namespace wr = weft::resilience;
using namespace std::chrono_literals;

struct tally {
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  std::atomic<std::uint64_t> ran{0}, values{0}, failures{0}, rejected_rate{0}, rejected_bulkhead{0},
      rejected_breaker{0}, cancelled{0};
};

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

template <class Pipe>
weft::task<void> caller(Pipe& pipe, tally& t, int id, int calls) {
  for (int i = 0; i < calls; ++i) {
    const std::uint64_t r =
        mix(static_cast<std::uint64_t>(id) * 1'000'003 + static_cast<std::uint64_t>(i));
    auto op = [&t, r]() -> weft::task<wr::call_outcome<int>> {
      const int now = t.inside.fetch_add(1) + 1;
      for (int seen = t.max_inside.load();
           now > seen && !t.max_inside.compare_exchange_weak(seen, now);) {
      }
      // Leaves even when a cancellation ends the call at the yield.
      struct leave {
        std::atomic<int>& inside;
        ~leave() { inside.fetch_sub(1); }
      } guard{t.inside};
      t.ran.fetch_add(1);
      if (r % 3 == 0) co_await weft::yield();
      if (r % 5 == 0)
        co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error));
      co_return wr::call_outcome<int>::success(1);
    };
    const auto o = co_await pipe.execute(op);
    if (o.has_value()) {
      t.values.fetch_add(1);
    } else if (o.is_cancelled()) {
      t.cancelled.fetch_add(1);
    } else if (o.error() == wr::errc::rate_limited) {
      t.rejected_rate.fetch_add(1);
    } else if (o.error() == wr::errc::bulkhead_full) {
      t.rejected_bulkhead.fetch_add(1);
    } else if (o.error() == wr::errc::circuit_open) {
      t.rejected_breaker.fetch_add(1);
    } else {
      t.failures.fetch_add(1);
    }
    if (r % 7 == 0) co_await weft::yield();
  }
}

TEST(ResilienceStress, SharedLayersFromBothWorkersKeepTheirCounts) {
  constexpr int tasks = 16;
  constexpr int calls = 1500;
  wr::rate_limiter limiter{
      wr::token_bucket{.capacity = 3000, .tokens_per_period = 3000, .period = 1ms}};
  wr::circuit_breaker_options bo;
  bo.window = wr::window::count(50);
  bo.minimum_calls = 20;
  bo.failure_rate_threshold = 0.15;
  bo.open_duration = 1ms;
  bo.half_open_max_duration = 10s;
  bo.half_open_permits = 4;
  bo.half_open_policy = wr::half_open_policy::successes(2);
  wr::circuit_breaker breaker{bo};
  wr::bulkhead_options ko;
  ko.max_concurrent = 3;
  ko.max_queue = 8;
  ko.max_queue_wait = 2ms;
  wr::bulkhead bulkhead{ko};
  wr::pipeline pipe{limiter, breaker, bulkhead};
  tally t;

  for (int round = 0; round < 3; ++round) {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    rt.block_on([&]() -> weft::task<void> {
      std::vector<weft::join_handle<void>> hs;
      for (int i = 0; i < tasks; ++i)
        hs.push_back(weft::spawn(caller(pipe, t, round * tasks + i, calls)));
      // Cancel a few callers part way: their in-flight calls must give their permits back.
      co_await weft::yield();
      hs[3].cancel();
      hs[11].cancel();
      for (auto& h : hs) {
        try {
          co_await std::move(h);
        } catch (const weft::operation_cancelled&) {
        }
      }
    });
  }
  const auto calls_made = t.values + t.failures + t.rejected_rate + t.rejected_bulkhead +
                          t.rejected_breaker + t.cancelled;
  EXPECT_LE(calls_made, static_cast<std::uint64_t>(3 * tasks * calls));
  EXPECT_GT(t.values.load(), 0u);
  // The breaker opened (the limiter's refusals depend on the machine's speed).
  EXPECT_GT(t.rejected_breaker.load(), 0u);
  EXPECT_LE(t.max_inside.load(), 3);  // the bulkhead's limit held
  EXPECT_EQ(t.inside.load(), 0);
  // No leaked permit: all free, nobody queued.
  const auto m = bulkhead.metrics();
  EXPECT_EQ(m.available, 3u);
  EXPECT_EQ(m.inflight, 0u);
  EXPECT_EQ(m.queued, 0u);
  // Every operation that ran ended as a value or a failure (or was cancelled while running).
  EXPECT_GE(t.ran.load(), t.values + t.failures);
  // The breaker saw every call that passed the limiter and was not refused by it.
  const auto b = breaker.metrics();
  EXPECT_EQ(b.totals.rejected, t.rejected_breaker.load());
  EXPECT_GE(b.totals.successful + b.totals.failed + b.totals.ignored, t.values + t.failures);
}

}  // namespace
