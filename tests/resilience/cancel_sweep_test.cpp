// Cancellation at every suspension point of resilience pipelines (see
// tests/support/cancel_sweep.hpp): a hand-built timeout | retry | breaker | bulkhead | attempt
// timeout pipeline, pipeline<>::standard() and pipeline<>::hedged(), each over a flaky
// operation called concurrently. Wherever the caller is cancelled, every bulkhead permit comes
// back, no half-open trial slot stays taken, every layer frame entered is left, and no task is
// left running.
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/standard_pipeline.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>

#include "support/cancel_sweep.hpp"

namespace {

namespace wr = weft::resilience;
using namespace std::chrono_literals;
using weft::testing::cancel_sweep;
using weft::testing::cancel_via;
using weft::testing::sweep_ending;
using weft::testing::sweep_options;

/// Operation calls started and ended (an end is counted by a destructor, so a frame destroyed
/// instead of finishing counts too; only a frame that never ends is missing).
struct op_census {
  int started = 0;
  int ended = 0;
  int calls = 0;  // every call, for the flaky pattern
};

struct end_counter {
  int& n;
  ~end_counter() { ++n; }
};

/// Fails fast, hangs past any attempt timeout, or answers after a short wait, in turn.
weft::task<int> flaky(op_census& c) {
  const int n = c.calls++;
  ++c.started;
  end_counter end{c.ended};
  switch (n % 4) {
    case 0:
      co_await weft::sleep_for(2ms);
      throw std::runtime_error("flaky");
    case 1:
      co_await weft::sleep_for(60ms);  // past the attempt timeout
      co_return n;
    default:
      co_await weft::sleep_for(std::chrono::milliseconds{1 + n % 3});
      co_return n;
  }
}

/// A layer that counts the calls that passed the layers outside it (here: the breaker's
/// admissions that reached the inner layers) and how many of them left.
struct counting_layer {
  int entered = 0;
  int left = 0;
  template <class R, class Next>
  weft::task<wr::call_outcome<R>> run(wr::resilience_context& ctx, Next next) {
    ++entered;
    end_counter leave{left};
    co_return co_await next(ctx);
  }
};

/// One call's result as a code: its value, or -1 for any failure the pipeline reported. A
/// cancellation is the caller's and goes on.
template <class Pipe, class Op>
weft::task<int> call(Pipe& pipe, Op op) {
  try {
    auto t = pipe.execute(std::move(op));  // named: g++ 12 and temporaries beside co_await
    co_return co_await std::move(t);
  } catch (const weft::operation_cancelled&) {
    throw;
  } catch (...) {
    co_return -1;
  }
}

void expect_breaker_settled(const wr::circuit_breaker& breaker, const counting_layer* inner) {
  const auto m = breaker.metrics();
  if (m.state == wr::breaker_state::half_open) {
    EXPECT_EQ(m.trial_permits_used, m.buffered_calls)
        << "a half-open trial slot is still taken with nothing in flight";
  }
  if (inner != nullptr) {
    const auto recorded = m.totals.successful + m.totals.failed + m.totals.ignored;
    EXPECT_GE(recorded, static_cast<std::uint64_t>(inner->entered))
        << "a call passed the breaker without an outcome recorded";
  }
}

void expect_bulkhead_idle(const wr::bulkhead& bulk) {
  const auto m = bulk.metrics();
  EXPECT_EQ(m.available, m.max_concurrent) << "a bulkhead permit was lost";
  EXPECT_EQ(m.inflight, 0u);
  EXPECT_EQ(m.queued, 0u) << "a call is still queued in the bulkhead";
}

// --- timeout | retry | breaker | bulkhead | attempt timeout -------------------------------------

wr::retry_options fast_retry() {
  wr::retry_options o;
  o.max_attempts = 3;
  o.backoff = wr::backoff::fixed(2ms);
  return o;
}

wr::circuit_breaker_options small_breaker() {
  wr::circuit_breaker_options o;
  o.window = wr::window::count(6);
  o.minimum_calls = 4;
  o.failure_rate_threshold = 0.6;
  o.open_duration = 15ms;
  o.half_open_permits = 2;
  o.half_open_policy = wr::half_open_policy::successes(2);
  return o;
}

struct layered_state {
  op_census ops;
  wr::time_limiter total{200ms};
  wr::retry retry{fast_retry()};
  wr::circuit_breaker breaker{small_breaker()};
  counting_layer counter;
  wr::bulkhead bulk{{.max_concurrent = 2, .max_queue = 2, .max_queue_wait = 20ms}};
  wr::time_limiter attempt{10ms};
  int answered = 0;
};

weft::task<int> layered_calls(layered_state& s, int first, int n) {
  // Lvalue layers are held by reference: the state keeps their counters for the checker.
  wr::pipeline pipe{s.total, s.retry, s.breaker, s.counter, s.bulk, s.attempt};
  op_census* ops = &s.ops;
  auto op = [ops] { return flaky(*ops); };
  std::vector<weft::task<int>> calls;
  for (int i = first; i < first + n; ++i) calls.push_back(call(pipe, op));
  auto codes = co_await weft::when_all(std::move(calls));
  int ok = 0;
  for (int code : codes) ok += code >= 0 ? 1 : 0;
  co_return ok;
}

TEST(ResilienceCancelSweep, TimeoutRetryBreakerBulkhead) {
  // Six concurrent calls through a bulkhead of 2 (+2 queued: the rest are rejected), then, each
  // time the breaker has had time to move on (open, half-open), three more waves.
  auto scenario = [](layered_state& s) -> weft::task<int> {
    int answered = co_await layered_calls(s, 0, 6);
    for (int wave = 0; wave < 3; ++wave) {
      co_await weft::sleep_for(20ms);
      answered = answered * 10 + co_await layered_calls(s, 6 + wave * 4, 4);
    }
    s.answered = answered;
    co_return answered;
  };
  auto checker = [](layered_state& s, const sweep_ending<int>&) {
    expect_bulkhead_idle(s.bulk);
    expect_breaker_settled(s.breaker, &s.counter);
    EXPECT_EQ(s.counter.entered, s.counter.left) << "a layer frame was never left";
    EXPECT_EQ(s.ops.started, s.ops.ended) << "an operation never ended";
  };
  for (auto via : {cancel_via::join_handle, cancel_via::source}) {
    sweep_options o;
    o.via = via;
    cancel_sweep<layered_state>(
        via == cancel_via::source ? "resilience_layers/source" : "resilience_layers/handle",
        scenario, checker, o);
  }
}

// --- pipeline<>::standard() -------------------------------------------------------------------

wr::standard_pipeline_options small_standard() {
  wr::standard_pipeline_options o;
  o.total_timeout = 150ms;
  o.attempt_timeout = 10ms;
  o.retry = fast_retry();
  o.retry.random = wr::rng::constant(0.5);
  o.breaker = small_breaker();
  return o;
}

struct standard_state {
  op_census ops;
  decltype(wr::pipeline<>::standard(small_standard())) pipe =
      wr::pipeline<>::standard(small_standard());
};

TEST(ResilienceCancelSweep, StandardPipeline) {
  auto scenario = [](standard_state& s) -> weft::task<int> {
    op_census* ops = &s.ops;
    auto op = [ops] { return flaky(*ops); };
    std::vector<weft::task<int>> calls;
    for (int i = 0; i < 8; ++i) calls.push_back(call(s.pipe, op));
    auto codes = co_await weft::when_all(std::move(calls));
    co_await weft::sleep_for(20ms);
    const int late = co_await call(s.pipe, op);
    co_await weft::sleep_for(20ms);
    std::vector<weft::task<int>> more;
    for (int i = 0; i < 4; ++i) more.push_back(call(s.pipe, op));
    auto later_codes = co_await weft::when_all(std::move(more));
    int later = 0;
    for (int code : later_codes) later += code >= 0 ? 1 : 0;
    int ok = 0;
    for (int code : codes) ok += code >= 0 ? 1 : 0;
    co_return ok * 100 + (late >= 0 ? 10 : 0) + later;
  };
  auto checker = [](standard_state& s, const sweep_ending<int>&) {
    expect_breaker_settled(s.pipe.layer<3>(), nullptr);
    EXPECT_EQ(s.ops.started, s.ops.ended) << "an operation never ended";
  };
  for (auto via : {cancel_via::join_handle, cancel_via::source}) {
    sweep_options o;
    o.via = via;
    cancel_sweep<standard_state>(
        via == cancel_via::source ? "standard_pipeline/source" : "standard_pipeline/handle",
        scenario, checker, o);
  }
}

// --- pipeline<>::hedged() ---------------------------------------------------------------------

wr::hedged_pipeline_options small_hedged() {
  wr::hedged_pipeline_options o;
  o.total_timeout = 150ms;
  o.attempt_timeout = 12ms;
  o.hedge.delay = 3ms;
  o.hedge.max_hedged = 1;
  o.bulkhead.max_concurrent = 2;
  o.bulkhead.max_queue = 2;
  o.bulkhead.max_queue_wait = wr::bulkhead_options::unbounded_wait;
  o.breaker = small_breaker();
  return o;
}

struct hedged_state {
  op_census ops;
  decltype(wr::pipeline<>::hedged(small_hedged())) pipe = wr::pipeline<>::hedged(small_hedged());
};

TEST(ResilienceCancelSweep, HedgedPipeline) {
  // Hedges start concurrent copies of a call and cancel the losers: the bulkhead under them
  // must get every permit back whichever copy the caller's cancellation finds where.
  auto scenario = [](hedged_state& s) -> weft::task<int> {
    op_census* ops = &s.ops;
    auto op = wr::idempotent([ops] { return flaky(*ops); });
    std::vector<weft::task<int>> calls;
    for (int i = 0; i < 5; ++i) calls.push_back(call(s.pipe, op));
    auto codes = co_await weft::when_all(std::move(calls));
    co_await weft::sleep_for(20ms);
    std::vector<weft::task<int>> more;
    for (int i = 0; i < 3; ++i) more.push_back(call(s.pipe, op));
    auto late = co_await weft::when_all(std::move(more));
    int ok = 0;
    for (int code : codes) ok += code >= 0 ? 1 : 0;
    for (int code : late) ok += code >= 0 ? 1 : 0;
    co_return ok;
  };
  auto checker = [](hedged_state& s, const sweep_ending<int>&) {
    expect_bulkhead_idle(s.pipe.layer<2>());
    expect_breaker_settled(s.pipe.layer<3>(), nullptr);
    EXPECT_EQ(s.ops.started, s.ops.ended) << "an operation never ended";
  };
  for (auto via : {cancel_via::join_handle, cancel_via::source}) {
    sweep_options o;
    o.via = via;
    cancel_sweep<hedged_state>(
        via == cancel_via::source ? "hedged_pipeline/source" : "hedged_pipeline/handle", scenario,
        checker, o);
  }
}

}  // namespace
