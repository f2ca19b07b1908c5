// Every weft layer can be moved (issue 13): the README's "Resilience in one example", which hands
// rvalue layers to pipeline{...}, compiles and runs exactly as written; a moved layer keeps its
// state; and calls already running through a layer — holding its permits, queued in it, sleeping
// on its reservations — finish unharmed even when the handle they came through is destroyed, since
// the state lives behind a pointer that the move hands over.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/cancel/shielded.hpp>
#include <weft/resilience/adaptive_limit.hpp>
#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/client_throttle.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/rate_limiter.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>

#include "resilience_pipeline.hpp"
#include "support/paused_time.hpp"

namespace {

using namespace std::chrono_literals;
using weft::testing::ms_since;
using weft::testing::paused;

// --- The README's example --------------------------------------------------------------------

// The dependency and the README's code come from the example that the readme_blocks check
// compares with the README (docs/examples/resilience_pipeline.hpp).
using readme::user_service;

weft::task<void> readme_example(user_service& users, int id) {
  return readme::call_through_pipeline(users, id);
}

TEST(ReadmeExample, RunsAsWrittenWhenTheDependencyAnswers) {
  weft::runtime rt{paused()};
  user_service users;
  rt.block_on(readme_example(users, 7));
  EXPECT_EQ(users.calls, 1);
  EXPECT_EQ(users.answered, (std::vector<int>{7}));
}

TEST(ReadmeExample, RetriesAFailure) {
  weft::runtime rt{paused()};
  user_service users;
  users.how = user_service::behaviour::fails_once;
  rt.block_on(readme_example(users, 7));
  EXPECT_EQ(users.calls, 2);
  EXPECT_EQ(users.answered, (std::vector<int>{7}));
}

TEST(ReadmeExample, CatchesTheTimeoutAsARejection) {
  weft::runtime rt{paused()};
  user_service users;
  users.how = user_service::behaviour::hangs;
  long took = -1;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    co_await readme_example(users, 7);  // the 2 s timeout's rejection is caught inside
    took = ms_since(start);
  });
  EXPECT_EQ(took, 2000);
  EXPECT_EQ(users.calls, 1);
  EXPECT_TRUE(users.answered.empty());
}

namespace wr = weft::resilience;

// --- Moving each layer -----------------------------------------------------------------------

template <class L>
constexpr bool movable_not_copyable = std::is_nothrow_move_constructible_v<L> &&
                                      std::is_nothrow_move_assignable_v<L> &&
                                      !std::is_copy_constructible_v<L> &&
                                      !std::is_copy_assignable_v<L>;
static_assert(movable_not_copyable<wr::time_limiter>);
static_assert(movable_not_copyable<wr::circuit_breaker>);
static_assert(movable_not_copyable<wr::bulkhead>);
static_assert(movable_not_copyable<wr::rate_limiter>);
static_assert(movable_not_copyable<wr::adaptive_limit>);
static_assert(movable_not_copyable<wr::client_throttle>);

// One call through `layer` alone that ends after `d` with a value, or an error when `fail`.
template <class Layer>
weft::task<wr::call_outcome<int>> call_through(Layer& layer, weft::clock::duration d, int value,
                                          bool fail = false) {
  auto op = [d, value, fail]() -> weft::task<wr::call_outcome<int>> {
    co_await weft::sleep_for(d);
    if (fail) co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error));
    co_return wr::call_outcome<int>::success(value);
  };
  auto t = layer.execute(op);  // named: g++ 12 and temporaries beside co_await
  co_return co_await std::move(t);
}

// Code that cannot be cancelled: it sleeps `d` with no cancellation token, then returns `v`.
weft::task<wr::call_outcome<int>> plain_sleep(weft::clock::duration d, int v) {
  co_await weft::sleep_for(d);
  co_return wr::call_outcome<int>::success(v);
}
weft::task<wr::call_outcome<int>> stubborn(weft::clock::duration d, int v) {
  auto t = plain_sleep(d, v);
  co_return co_await weft::shielded(std::move(t));
}

TEST(MovableLayers, TimeoutCallsInFlightSurviveAMove) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    std::optional<wr::time_limiter> first{std::in_place, 100ms};
    std::vector<std::string> events;
    first->observers().on_event([&](const wr::layer_event& e) noexcept {
      events.push_back(std::string(wr::to_string(e.kind)) + "@" + std::to_string(ms_since(start)));
    });
    auto hung = weft::spawn(call_through(*first, 1h, 1));
    auto quick = weft::spawn(call_through(*first, 50ms, 2));
    co_await weft::sleep_for(10ms);
    wr::time_limiter moved{std::move(*first)};
    first.reset();  // the handle both calls came through is gone
    EXPECT_EQ((co_await quick).value(), 2);
    EXPECT_EQ((co_await hung).error(), wr::errc::timeout);
    EXPECT_EQ(ms_since(start), 100);
    EXPECT_EQ(moved.duration(), 100ms);
    // The listeners moved with it.
    EXPECT_EQ(events, (std::vector<std::string>{"timeout@100"}));
  });
}

TEST(MovableLayers, DetachedOperationsStayCountedByTheMovedTimeout) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    std::optional<wr::time_limiter> first{
        std::in_place, wr::timeout_options{.duration = 100ms, .mode = wr::on_timeout::detach}};
    auto call = weft::spawn(first->execute([] { return stubborn(300ms, 1); }));
    co_await weft::sleep_for(10ms);
    wr::time_limiter moved{std::move(*first)};
    first.reset();
    EXPECT_EQ((co_await call).error(), wr::errc::timeout);
    EXPECT_EQ(ms_since(start), 100);
    EXPECT_EQ(moved.detached(), 1u);  // counted by the state that moved
    co_await weft::sleep_for(201ms);
    EXPECT_EQ(moved.detached(), 0u);
  });
}

TEST(MovableLayers, BreakerKeepsItsStateAndThePermitsItIssued) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options o;
    o.window = wr::window::count(2);
    o.minimum_calls = 2;
    o.open_duration = 1s;
    std::optional<wr::circuit_breaker> first{std::in_place, o};
    auto failing = weft::spawn(call_through(*first, 20ms, 1, true));  // holds a permit
    co_await weft::sleep_for(5ms);
    wr::circuit_breaker moved{std::move(*first)};
    first.reset();
    EXPECT_FALSE((co_await failing).has_value());
    EXPECT_EQ(moved.metrics().totals.failed, 1u);  // recorded on the state that moved
    EXPECT_FALSE((co_await call_through(moved, 1ms, 2, true)).has_value());
    EXPECT_EQ(moved.state(), wr::breaker_state::open);

    wr::circuit_breaker again{std::move(moved)};
    EXPECT_EQ(again.state(), wr::breaker_state::open);
    const auto refused = co_await call_through(again, 1ms, 3);
    EXPECT_EQ(refused.error(), wr::errc::circuit_open);
    EXPECT_EQ(again.metrics().totals.rejected, 1u);
  });
}

TEST(MovableLayers, BulkheadPermitsAndQueuedCallsSurviveAMove) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    std::optional<wr::bulkhead> first{
        std::in_place,
        wr::bulkhead_options{.max_concurrent = 1, .max_queue = 1, .max_queue_wait = 1s}};
    auto holder = weft::spawn(call_through(*first, 30ms, 1));
    auto waiter = weft::spawn(call_through(*first, 10ms, 2));  // queued behind the holder
    co_await weft::sleep_for(5ms);
    wr::bulkhead moved{std::move(*first)};
    first.reset();
    EXPECT_EQ(moved.metrics().inflight, 1u);
    EXPECT_EQ(moved.metrics().queued, 1u);
    EXPECT_EQ((co_await holder).value(), 1);
    EXPECT_EQ((co_await waiter).value(), 2);  // handed the holder's permit at 30 ms
    EXPECT_EQ(ms_since(start), 40);
    EXPECT_EQ(moved.metrics().available, 1u);
    EXPECT_EQ(moved.metrics().queued, 0u);
  });
}

TEST(MovableLayers, RateLimiterReservationsSurviveAMove) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    std::optional<wr::rate_limiter> first{
        std::in_place, wr::token_bucket{.capacity = 1, .tokens_per_period = 1, .period = 100ms},
        wr::rate_limiter_options{.max_wait = 200ms}};
    EXPECT_EQ((co_await call_through(*first, 0ms, 1)).value(), 1);  // takes the only token
    auto reserved = weft::spawn(call_through(*first, 0ms, 2));      // sleeps until 100 ms
    co_await weft::sleep_for(10ms);
    wr::rate_limiter moved{std::move(*first)};
    first.reset();
    EXPECT_EQ(moved.available(), -1);  // the reservation is queued on the moved state
    EXPECT_EQ((co_await reserved).value(), 2);
    EXPECT_EQ(ms_since(start), 100);
    const auto refused = moved.try_acquire();
    EXPECT_FALSE(refused.granted);
    EXPECT_EQ(refused.retry_after, 100ms);
  });
}

TEST(MovableLayers, AdaptiveLimitAdmittedAndQueuedCallsSurviveAMove) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    wr::adaptive_limit_options o;
    o.algorithm = wr::aimd{.initial_limit = 1, .min_limit = 1, .max_limit = 1};
    o.queue = wr::lifo_queue{.max_size = 1, .max_wait = 1s};
    std::optional<wr::adaptive_limit> first{std::in_place, std::move(o)};
    auto admitted = weft::spawn(call_through(*first, 30ms, 1));
    auto queued = weft::spawn(call_through(*first, 10ms, 2));
    co_await weft::sleep_for(5ms);
    wr::adaptive_limit moved{std::move(*first)};
    first.reset();
    EXPECT_EQ(moved.inflight(), 1);
    EXPECT_EQ(moved.queued(), 1u);
    EXPECT_EQ((co_await admitted).value(), 1);
    EXPECT_EQ((co_await queued).value(), 2);  // handed the slot at 30 ms
    EXPECT_EQ(ms_since(start), 40);
    EXPECT_EQ(moved.inflight(), 0);
    EXPECT_EQ(moved.limit(), 1);
  });
}

TEST(MovableLayers, ClientThrottleKeepsItsCounts) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    std::optional<wr::client_throttle> first{std::in_place};
    for (int i = 0; i < 3; ++i) (void)co_await call_through(*first, 1ms, i);
    auto running = weft::spawn(call_through(*first, 10ms, 3));
    co_await weft::sleep_for(5ms);
    wr::client_throttle moved{std::move(*first)};
    first.reset();
    EXPECT_EQ(moved.requests(), 4);
    EXPECT_EQ(moved.accepts(), 3);
    EXPECT_EQ((co_await running).value(), 3);
    EXPECT_EQ(moved.accepts(), 4);  // the running call's accept reached the moved state
  });
}

TEST(MovableLayers, MoveAssignmentReplacesTheState) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::bulkhead pool{{.max_concurrent = 1}};
    pool = wr::bulkhead{{.max_concurrent = 5}};
    EXPECT_EQ(pool.metrics().max_concurrent, 5u);

    wr::time_limiter t{1s};
    t = wr::time_limiter{2s};
    EXPECT_EQ(t.duration(), 2s);

    wr::circuit_breaker breaker;
    breaker.transition_to_forced_open();
    breaker = wr::circuit_breaker{};
    EXPECT_EQ(breaker.state(), wr::breaker_state::closed);

    wr::rate_limiter limiter{1, 1, 1s};
    limiter = wr::rate_limiter{10, 10, 1s};
    EXPECT_EQ(limiter.available(), 10);

    wr::adaptive_limit limit{wr::aimd{.initial_limit = 20}};
    limit = wr::adaptive_limit{wr::aimd{.initial_limit = 30, .min_limit = 30}};
    EXPECT_EQ(limit.limit(), 30);

    wr::client_throttle throttle;
    (void)co_await call_through(throttle, 1ms, 1);
    throttle = wr::client_throttle{};
    EXPECT_EQ(throttle.requests(), 0);
  });
}

// Returned by value: the pipeline owns its rvalue layers and moves with them before any call.
auto make_owning_pipeline() {
  wr::adaptive_limit_options limit;
  limit.algorithm = wr::aimd{.initial_limit = 4, .min_limit = 4, .max_limit = 4};
  // The throttle's draw stays above p (at most 3/4 here, before the first accept): it admits all.
  return wr::pipeline{wr::client_throttle{{.random = wr::rng::constant(0.99)}},
                      wr::rate_limiter{100, 100, 1s},
                      wr::time_limiter{1s},
                      wr::retry{},
                      wr::circuit_breaker{},
                      wr::adaptive_limit{std::move(limit)},
                      wr::bulkhead{{.max_concurrent = 2, .max_queue = 4, .max_queue_wait = 1s}}};
}

TEST(MovableLayers, APipelineOwnsRvalueLayersAndCanBeReturned) {
  weft::runtime rt{paused()};
  auto pipe = make_owning_pipeline();
  static_assert(std::is_same_v<decltype(pipe.layer<6>()), wr::bulkhead&>);
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    std::vector<weft::join_handle<wr::call_outcome<int>>> calls;
    for (int i = 0; i < 4; ++i) calls.push_back(weft::spawn(call_through(pipe, 10ms, i)));
    for (int i = 0; i < 4; ++i) {
      const wr::call_outcome<int> o = co_await calls[static_cast<std::size_t>(i)];
      EXPECT_TRUE(o.has_value()) << i << ": " << o.error().message();
      if (o.has_value()) {
        EXPECT_EQ(o.value(), i);
      }
    }
    EXPECT_EQ(ms_since(start), 20);  // two at a time through the owned bulkhead
  });
  EXPECT_EQ(pipe.layer<0>().accepts(), 4);
  EXPECT_EQ(pipe.layer<4>().metrics().totals.successful, 4u);
}

#ifndef NDEBUG
TEST(MovableLayersDeathTest, UsingAMovedFromLayerIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        wr::bulkhead first;
        wr::bulkhead second{std::move(first)};
        (void)first.metrics();  // NOLINT(bugprone-use-after-move): the misuse under test
      },
      "moved from");
  EXPECT_DEATH(
      {
        wr::circuit_breaker first;
        wr::circuit_breaker second{std::move(first)};
        (void)first.state();  // NOLINT(bugprone-use-after-move)
      },
      "moved from");
}
#endif

}  // namespace
