// weft::resilience::any_pipeline<R> (issue 13): a class keeps a pipeline as a member without
// spelling its layers' types, builds it in its constructor and calls through it from several
// tasks; the erased pipeline behaves as the pipeline it holds (owned, referred to or shared),
// whatever the callable (small, large, move-only, taking the context), and a hedged pipeline
// needs any_idempotent_pipeline.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/cancel/shielded.hpp>
#include <weft/resilience/any_pipeline.hpp>
#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/standard_pipeline.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/sleep.hpp>

#include "support/paused_time.hpp"

// Result types live outside the anonymous namespace: the pipeline's coroutine frames, defined in
// headers, hold them (g++ -Wsubobject-linkage).
namespace any_pipeline_test {

using namespace std::chrono_literals;

struct user {
  int id = 0;
  std::string name;
};

// A dependency that answers after 10 ms (a negative id fails), counting calls at once.
struct user_service {
  int calls = 0;
  int inflight = 0;
  int max_inflight = 0;

  weft::task<user> get(int id) {
    ++calls;
    max_inflight = std::max(max_inflight, ++inflight);
    co_await weft::sleep_for(10ms);
    --inflight;
    if (id < 0) throw std::runtime_error("no such user");
    co_return user{id, "user " + std::to_string(id)};
  }
};

}  // namespace any_pipeline_test

namespace {

namespace wr = weft::resilience;
using namespace std::chrono_literals;
using any_pipeline_test::user;
using any_pipeline_test::user_service;
using weft::testing::ms_since;
using weft::testing::paused;

wr::retry_options quick_retry() {
  wr::retry_options o;
  o.max_attempts = 2;
  o.backoff = wr::backoff::fixed(5ms);
  return o;
}

// What a service author writes: the pipeline is a member built in the constructor from layers,
// one of them (the breaker) another member shared by reference; no layer type is spelled.
class user_client {
 public:
  explicit user_client(user_service& users)
      : users_(users),
        pipe_{wr::time_limiter{2s}, wr::retry{quick_retry()}, breaker_,
              wr::bulkhead{{.max_concurrent = 2, .max_queue = 10, .max_queue_wait = 1s}}} {}
  // pipe_ refers to breaker_: a copy or move would leave it pointing at the old one.
  user_client(const user_client&) = delete;
  user_client& operator=(const user_client&) = delete;

  weft::task<user> get(int id) {
    return pipe_.execute([this, id] { return users_.get(id); });
  }
  [[nodiscard]] const wr::circuit_breaker& breaker() const { return breaker_; }

 private:
  user_service& users_;
  wr::circuit_breaker breaker_;  // before pipe_, which refers to it
  wr::any_pipeline<user> pipe_;
};

TEST(AnyPipeline, AClassHoldsOneAsAMemberAndCallsThroughItFromSeveralTasks) {
  weft::runtime rt{paused()};
  user_service users;
  user_client client{users};
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    std::vector<weft::join_handle<user>> calls;
    for (int id = 1; id <= 6; ++id) calls.push_back(weft::spawn(client.get(id)));
    for (int id = 1; id <= 6; ++id) {
      const user u = co_await calls[static_cast<std::size_t>(id - 1)];
      EXPECT_EQ(u.id, id);
      EXPECT_EQ(u.name, "user " + std::to_string(id));
    }
    EXPECT_EQ(ms_since(start), 30);  // six calls, two at a time through the bulkhead
  });
  EXPECT_EQ(users.max_inflight, 2);
  EXPECT_EQ(client.breaker().metrics().totals.successful, 6u);
}

TEST(AnyPipeline, FailuresAreRetriedAndRethrownAsThePipelineWould) {
  weft::runtime rt{paused()};
  user_service users;
  user_client client{users};
  rt.block_on([&]() -> weft::task<void> {
    try {
      (void)co_await client.get(-1);
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "no such user");
    }
  });
  EXPECT_EQ(users.calls, 2);  // retried once
  EXPECT_EQ(client.breaker().metrics().totals.failed, 2u);
}

wr::standard_pipeline_options fixed_jitter() {
  wr::standard_pipeline_options o;
  o.retry.random = wr::rng::constant(0.5);
  return o;
}

TEST(AnyPipeline, OwnsAReadyMadePipeline) {
  weft::runtime rt{paused()};
  wr::any_pipeline<int> pipe = wr::pipeline<>::standard(fixed_jitter());
  EXPECT_TRUE(pipe);
  EXPECT_EQ(pipe.observers().name(), "standard");
  int calls = 0;
  std::vector<long> at;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    auto t = pipe.execute([&]() -> weft::task<int> {
      at.push_back(ms_since(start));
      if (++calls < 3) throw std::runtime_error("flaky");
      co_return 7;
    });
    EXPECT_EQ(co_await std::move(t), 7);
  });
  EXPECT_EQ(at, (std::vector<long>{0, 50, 150}));  // as pipeline_test's StandardPipeline
}

TEST(AnyPipeline, RefersToAnLvaluePipelineOrSharesAShared) {
  weft::runtime rt{paused()};
  wr::circuit_breaker breaker;
  wr::pipeline inner{breaker};
  wr::any_pipeline<int> by_reference{inner};
  auto shared = std::make_shared<wr::pipeline<wr::circuit_breaker&>>(breaker);
  wr::any_pipeline<int> by_sharing{shared};
  inner.observers().set_name("inner");
  EXPECT_EQ(by_reference.observers().name(), "inner");
  auto op = []() -> weft::task<int> { co_return 1; };
  rt.block_on([&]() -> weft::task<void> {
    EXPECT_EQ(co_await by_reference.execute(op), 1);
    EXPECT_EQ(co_await by_sharing.execute(op), 1);
  });
  EXPECT_EQ(breaker.metrics().totals.successful, 2u);
}

TEST(AnyPipeline, TakesOutcomeOperationsAndTheCallersContext) {
  weft::runtime rt{paused()};
  wr::any_pipeline<int> pipe{wr::retry{quick_retry()}};
  rt.block_on([&]() -> weft::task<void> {
    int calls = 0;
    auto failing = [&]() -> weft::task<wr::call_outcome<int>> {
      ++calls;
      co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error));
    };
    const wr::call_outcome<int> o = co_await pipe.execute(failing);  // nothing thrown
    EXPECT_EQ(o.error(), std::errc::io_error);
    EXPECT_EQ(calls, 2);

    wr::resilience_context ctx;
    ctx.key = "user:7";
    ctx.token = co_await weft::this_task::cancel_token();
    std::string seen;
    auto keyed = [&](wr::resilience_context& c) -> weft::task<int> {
      seen = std::string(c.key) + "#" + std::to_string(c.attempt);
      co_return 5;
    };
    EXPECT_EQ(co_await pipe.execute(ctx, keyed), 5);
    EXPECT_EQ(seen, "user:7#1");
  });
}

TEST(AnyPipeline, RejectionsAreThrownAsRejected) {
  weft::runtime rt{paused()};
  wr::any_pipeline<int> pipe{wr::bulkhead{{.max_concurrent = 1}}};
  rt.block_on([&]() -> weft::task<void> {
    auto slow = weft::spawn(pipe.execute([]() -> weft::task<int> {
      co_await weft::sleep_for(10ms);
      co_return 1;
    }));
    co_await weft::sleep_for(1ms);
    try {
      (void)co_await pipe.execute([]() -> weft::task<int> { co_return 2; });
      ADD_FAILURE() << "not rejected";
    } catch (const wr::rejected& r) {
      EXPECT_EQ(r.code(), wr::errc::bulkhead_full);
    }
    EXPECT_EQ(co_await slow, 1);
  });
}

TEST(AnyPipeline, LargeAndMoveOnlyCallables) {
  weft::runtime rt{paused()};
  wr::any_pipeline<int> pipe{wr::retry{quick_retry()}};
  rt.block_on([&]() -> weft::task<void> {
    std::array<int, 64> big{};  // past the inline buffer: kept on the heap
    big[63] = 40;
    auto large = [big]() -> weft::task<int> { co_return big[63] + 2; };
    static_assert(sizeof(large) > wr::detail::erased_op<int>::inline_size);
    auto t1 = pipe.execute(large);
    EXPECT_EQ(co_await std::move(t1), 42);

    auto owned = std::make_unique<int>(9);
    auto move_only = [p = std::move(owned)]() -> weft::task<int> { co_return *p; };
    auto t2 = pipe.execute(std::move(move_only));
    EXPECT_EQ(co_await std::move(t2), 9);
  });
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

TEST(AnyPipeline, DetachModeTimeoutsOwnACopyOfTheOperation) {
  weft::runtime rt{paused()};
  wr::time_limiter detaching{
      wr::timeout_options{.duration = 100ms, .mode = wr::on_timeout::detach}};
  wr::any_pipeline<int> pipe{detaching};
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    {
      auto op = [] { return stubborn(300ms, 1); };  // copyable: the detached task gets a copy
      auto t = pipe.execute(op);
      EXPECT_EQ((co_await std::move(t)).error(), wr::errc::timeout);
    }  // the caller's callable is gone; the detached copy runs on
    EXPECT_EQ(ms_since(start), 100);
    EXPECT_EQ(detaching.detached(), 1u);
    co_await weft::sleep_for(201ms);
    EXPECT_EQ(detaching.detached(), 0u);

    // A move-only callable cannot be copied into the detached task: std::logic_error, as a
    // plain pipeline answers.
    auto owned = std::make_unique<int>(3);
    auto move_only = [p = std::move(owned)]() -> weft::task<wr::call_outcome<int>> {
      co_return wr::call_outcome<int>::success(*p);
    };
    auto t = pipe.execute(std::move(move_only));
    const wr::call_outcome<int> o = co_await std::move(t);
    EXPECT_EQ(o.kind(), wr::outcome_kind::exception);
    if (o.kind() == wr::outcome_kind::exception) {
      EXPECT_THROW(std::rethrow_exception(o.exception()), std::logic_error);
    }
  });
}

TEST(AnyPipeline, MovingItKeepsCallsInFlightAndLeavesItEmpty) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto first = std::make_unique<wr::any_pipeline<int>>(wr::bulkhead{{.max_concurrent = 1}});
    auto running = weft::spawn(first->execute([]() -> weft::task<int> {
      co_await weft::sleep_for(10ms);
      co_return 4;
    }));
    co_await weft::sleep_for(1ms);
    wr::any_pipeline<int> moved{std::move(*first)};
    EXPECT_FALSE(*first);
    EXPECT_THROW((void)first->execute([]() -> weft::task<int> { co_return 0; }), std::logic_error);
    first.reset();
    EXPECT_EQ(co_await running, 4);
    EXPECT_EQ(co_await moved.execute([]() -> weft::task<int> { co_return 5; }), 5);
  });
  wr::any_pipeline<int> empty;
  EXPECT_FALSE(empty);
}

// A hedged pipeline starts copies of a call: only any_idempotent_pipeline holds one, and its
// execute() takes only operations marked idempotent().
using hedged_type = decltype(wr::pipeline<>::hedged());
static_assert(!std::is_constructible_v<wr::any_pipeline<int>, hedged_type>);
static_assert(std::is_constructible_v<wr::any_idempotent_pipeline<int>, hedged_type>);
static_assert(std::is_constructible_v<wr::any_idempotent_pipeline<int>, wr::retry>);
static_assert(!std::is_copy_constructible_v<wr::any_pipeline<int>>);
static_assert(std::is_nothrow_move_constructible_v<wr::any_pipeline<int>>);

struct plain_op {
  weft::task<int> operator()() const { co_return 1; }
};
template <class P, class Op>
concept executes = requires(P& p, Op op) {
  p.execute(op);
};
static_assert(executes<wr::any_pipeline<int>, plain_op>);
static_assert(!executes<wr::any_idempotent_pipeline<int>, plain_op>);
static_assert(executes<wr::any_idempotent_pipeline<int>, decltype(wr::idempotent(plain_op{}))>);

TEST(AnyIdempotentPipeline, HoldsAHedgedPipeline) {
  weft::runtime rt{paused()};
  wr::hedged_pipeline_options o;
  o.hedge.delay = 100ms;
  wr::any_idempotent_pipeline<int> pipe = wr::pipeline<>::hedged(o);
  int calls = 0;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    auto t = pipe.execute(wr::idempotent([&]() -> weft::task<int> {
      const int n = ++calls;
      co_await weft::sleep_for(n == 1 ? 1s : 30ms);
      co_return n;
    }));
    EXPECT_EQ(co_await std::move(t), 2);
    EXPECT_EQ(ms_since(start), 130);  // as pipeline_test's HedgedPipeline
  });
  EXPECT_EQ(calls, 2);
}

}  // namespace
