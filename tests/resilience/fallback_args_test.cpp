// A fallback that sees the call it replaces (issue 13): a substitute taking
// fallback_args<R> gets the failed outcome, the call's context (key, properties, deadline,
// attempt) and the attempts the retry or hedge inside made, valid while its task runs; the
// older forms, f(const outcome<R>&) and f(), keep working.
#include <gtest/gtest.h>

#include <any>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include <weft/resilience/fallback.hpp>
#include <weft/resilience/hedge.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/sleep.hpp>

#include "support/paused_time.hpp"

namespace {

namespace wr = weft::resilience;
using namespace std::chrono_literals;
using weft::testing::ms_since;
using weft::testing::paused;

wr::retry_options three_attempts() {
  wr::retry_options o;
  o.max_attempts = 3;
  o.backoff = wr::backoff::fixed(10ms);
  return o;
}

// What a substitute saw.
struct seen_call {
  std::string error;
  std::string key;
  std::string request;
  int attempts = 0;
  int attempt = 0;
  bool had_deadline = false;
};

// Fails every time, after stashing its argument in the context (as a caller would, so that a
// fallback can see what was asked).
auto failing_lookup(int& calls) {
  return [&calls](wr::resilience_context& ctx) -> weft::task<int> {
    ++calls;
    ctx.property("request") = std::string("price of item 7");
    co_await weft::sleep_for(1ms);
    throw std::runtime_error("pricing down");
  };
}

TEST(FallbackArgs, TheSubstituteSeesTheFailureTheContextAndTheAttempts) {
  weft::runtime rt{paused()};
  seen_call seen;
  wr::fallback fb{[&seen](const wr::fallback_args<int>& a) -> int {
    try {
      std::rethrow_exception(a.outcome.exception());
    } catch (const std::runtime_error& e) {
      seen.error = e.what();
    }
    seen.key = std::string(a.context.key);
    if (const std::any* r = a.context.find_property("request")) {
      seen.request = std::any_cast<std::string>(*r);
    }
    seen.attempts = a.attempts;
    seen.attempt = a.context.attempt;
    seen.had_deadline = a.context.deadline.has_value();
    return -1;
  }};
  wr::pipeline pipe{wr::time_limiter{10s}, fb, wr::retry{three_attempts()}};
  int calls = 0;
  rt.block_on([&]() -> weft::task<void> {
    wr::resilience_context ctx;
    ctx.key = "item:7";
    ctx.token = co_await weft::this_task::cancel_token();
    auto t = pipe.execute(ctx, failing_lookup(calls));
    EXPECT_EQ(co_await std::move(t), -1);
    EXPECT_EQ(ctx.attempt, 1);  // the caller's attempt number is as it was
  });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(seen.error, "pricing down");
  EXPECT_EQ(seen.key, "item:7");
  EXPECT_EQ(seen.request, "price of item 7");
  EXPECT_EQ(seen.attempts, 3);  // the retry inside made three
  EXPECT_EQ(seen.attempt, 1);   // the retry restored the context's own number
  EXPECT_TRUE(seen.had_deadline);
}

TEST(FallbackArgs, OneAttemptWithoutARetryInside) {
  weft::runtime rt{paused()};
  std::vector<int> attempts;  // (attempts, context attempt) per substitute call
  wr::fallback fb{[&attempts](const wr::fallback_args<int>& a) -> int {
    attempts.push_back(a.attempts);
    attempts.push_back(a.context.attempt);
    return -1;
  }};
  // The fallback inside the retry replaces each failure, so the retry never retries.
  wr::pipeline inside{wr::retry{three_attempts()}, fb};
  int calls = 0;
  EXPECT_EQ(rt.block_on(inside.execute(failing_lookup(calls))), -1);
  EXPECT_EQ(attempts, (std::vector<int>{1, 1}));

  // A fallback outside a retry that only failed once (then its failure was not retryable).
  wr::pipeline outside{fb, wr::retry{three_attempts()}};
  attempts.clear();
  int outside_calls = 0;
  auto buggy = [&outside_calls]() -> weft::task<int> {
    ++outside_calls;
    throw std::logic_error("a bug: not retried");
  };
  EXPECT_EQ(rt.block_on(outside.execute(buggy)), -1);
  EXPECT_EQ(outside_calls, 1);
  EXPECT_EQ(attempts, (std::vector<int>{1, 1}));
}

TEST(FallbackArgs, CountsTheHedgesAttempts) {
  weft::runtime rt{paused()};
  int attempts = 0;
  wr::fallback fb{[&attempts](const wr::fallback_args<int>& a) -> int {
    attempts = a.attempts;
    return -1;
  }};
  wr::pipeline pipe{fb, wr::hedge{{.max_hedged = 2, .delay = 10ms}}};
  int calls = 0;
  const int v = rt.block_on(pipe.execute(wr::idempotent([&calls]() -> weft::task<int> {
    ++calls;
    co_await weft::sleep_for(30ms);
    throw std::logic_error("not retryable");  // hedges come from the delay only
  })));
  EXPECT_EQ(v, -1);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(attempts, 3);
}

TEST(FallbackArgs, TheArgumentsLiveAsLongAsTheSubstitutesTask) {
  weft::runtime rt{paused()};
  std::string key_after_sleep;
  wr::fallback fb{[&key_after_sleep](const wr::fallback_args<int>& a) -> weft::task<int> {
    // A coroutine taking the arguments by reference: they must outlive its suspensions.
    co_await weft::sleep_for(50ms);
    key_after_sleep = std::string(a.context.key) + "/" + std::to_string(a.attempts) + "/" +
                      a.outcome.error().message();
    co_return 8;
  }};
  wr::pipeline pipe{fb, wr::retry{three_attempts()}};
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    wr::resilience_context ctx;
    ctx.key = "k";
    ctx.token = co_await weft::this_task::cancel_token();
    auto t = pipe.execute(ctx, []() -> weft::task<wr::call_outcome<int>> {
      co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error));
    });
    const wr::call_outcome<int> o = co_await std::move(t);
    EXPECT_EQ(o.value(), 8);
    EXPECT_EQ(ms_since(start), 20 + 50);  // two 10 ms backoffs, then the substitute's sleep
  });
  EXPECT_EQ(key_after_sleep, "k/3/" + std::make_error_code(std::errc::io_error).message());
}

TEST(FallbackArgs, TheOlderFormsStillWork) {
  weft::runtime rt{paused()};
  auto failing = []() -> weft::task<int> { throw std::runtime_error("down"); };
  // A generic lambda gets the outcome, as before fallback_args existed.
  bool got_outcome = false;
  wr::fallback generic{[&got_outcome](const auto& x) -> int {
    got_outcome = std::is_same_v<std::remove_cvref_t<decltype(x)>, wr::call_outcome<int>>;
    return 1;
  }};
  EXPECT_EQ(rt.block_on(generic.execute(failing)), 1);
  EXPECT_TRUE(got_outcome);
  wr::fallback typed{[](const wr::call_outcome<int>& o) -> int { return o.has_value() ? 0 : 2; }};
  EXPECT_EQ(rt.block_on(typed.execute(failing)), 2);
  wr::fallback nullary{[]() -> weft::task<int> { co_return 3; }};
  EXPECT_EQ(rt.block_on(nullary.execute(failing)), 3);
}

}  // namespace
