// The resilience core: error category and rejected, outcome, classification and predicate
// builders, the context, events and the metrics sink, rng, and the pipeline protocol (result
// types, layer order, rejections as values, caller cancellation before the pipeline starts).
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/classify.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/error.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/rate_limiter.hpp>
#include <weft/resilience/rng.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/sync/event.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>
#include <weft/yield.hpp>

#include "support/paused_time.hpp"

namespace {

namespace wr = weft::resilience;
using weft::testing::paused;
using namespace std::chrono_literals;

// An expected-like result with an error_code error, as services often define.
struct reply {
  std::optional<int> v;
  std::error_code e;
  reply(int x) : v(x) {}  // NOLINT: implicit, like std::expected
  explicit reply(std::error_code code) : e(code) {}
  bool has_value() const { return v.has_value(); }
  int value() const { return *v; }
  std::error_code error() const { return e; }
};

// A layer that records when it runs, and passes through.
struct tracer {
  std::vector<std::string>* log;
  std::string name;
  template <class R, class Next>
  weft::task<wr::call_outcome<R>> run(wr::resilience_context& ctx, Next next) {
    log->push_back(name + ">");
    auto o = co_await next(ctx);
    log->push_back("<" + name);
    co_return o;
  }
};

// A layer that refuses every call as a value.
struct refuser {
  int calls = 0;
  template <class R, class Next>
  weft::task<wr::call_outcome<R>> run(wr::resilience_context&, Next) {
    ++calls;
    co_return wr::call_outcome<R>::failure(wr::errc::circuit_open, 1500us);
  }
};

TEST(ResilienceError, CategoryNamesEveryCode) {
  EXPECT_STREQ(wr::resilience_category().name(), "weft.resilience");
  for (int c = 1; c <= static_cast<int>(wr::errc::hedge_exhausted); ++c) {
    EXPECT_EQ(wr::resilience_category().message(c).find("unknown"), std::string::npos) << c;
  }
  std::error_code code = wr::errc::bulkhead_full;
  EXPECT_EQ(code.category(), wr::resilience_category());
  EXPECT_TRUE(wr::is_rejection(code));
  EXPECT_FALSE(wr::is_rejection(wr::errc::timeout));
  EXPECT_FALSE(wr::is_rejection(std::make_error_code(std::errc::timed_out)));
}

TEST(ResilienceError, RejectedCarriesCodeAndRetryAfter) {
  const wr::rejected r(wr::errc::circuit_open, 1500us);
  EXPECT_EQ(r.code(), wr::errc::circuit_open);
  ASSERT_TRUE(r.retry_after());
  EXPECT_EQ(*r.retry_after(), 1500us);
  EXPECT_NE(std::string(r.what()).find("retry after 1.500 ms"), std::string::npos) << r.what();
  EXPECT_NE(std::string(r.what()).find("circuit breaker is open"), std::string::npos) << r.what();
  EXPECT_FALSE(wr::rejected(wr::errc::rate_limited).retry_after());
}

// A rejection thrown to a plain-T caller names the layer (its configured name) and the call's
// key, and says when to come back.
TEST(ResilienceError, RejectionsNameTheLayerAndTheKey) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::circuit_breaker_options bo;
    bo.name = "pricing";
    bo.open_duration = 1500ms;
    wr::circuit_breaker breaker{bo};
    breaker.transition_to_closed();
    wr::pipeline through_breaker{breaker};
    breaker.transition_to_forced_open();
    wr::resilience_context ctx;
    ctx.key = "eu-west";
    try {
      co_await through_breaker.execute(ctx, []() -> weft::task<int> { co_return 1; });
      ADD_FAILURE() << "not rejected";
    } catch (const wr::rejected& r) {
      EXPECT_STREQ(r.what(), "circuit breaker 'pricing' is forced open for key 'eu-west'");
      EXPECT_EQ(r.layer(), "pricing");
      EXPECT_EQ(r.key(), "eu-west");
      EXPECT_EQ(r.code(), wr::errc::circuit_isolated);
    }

    wr::rate_limiter limiter{1, 1, 2s, wr::rate_limiter_options{.name = "api"}};
    co_await limiter.execute([]() -> weft::task<int> { co_return 1; });
    try {
      co_await limiter.execute([]() -> weft::task<int> { co_return 2; });
      ADD_FAILURE() << "not rejected";
    } catch (const wr::rejected& r) {
      EXPECT_STREQ(r.what(), "rate limiter 'api' refused the call; retry after 2 s");
      EXPECT_EQ(r.key(), "");
    }

    wr::bulkhead bulk{wr::bulkhead_options{.max_concurrent = 1, .name = "db"}};
    weft::event release;
    auto holder = weft::spawn(bulk.execute([&release]() -> weft::task<int> {
      co_await release.wait();
      co_return 1;
    }));
    co_await weft::yield();
    try {
      co_await bulk.execute([]() -> weft::task<int> { co_return 2; });
      ADD_FAILURE() << "not rejected";
    } catch (const wr::rejected& r) {
      EXPECT_STREQ(r.what(), "bulkhead 'db' is full");
      EXPECT_EQ(r.layer(), "db");
    }
    release.set();
    EXPECT_EQ(co_await holder, 1);
  });
}

// An outcome is the caller's value: it may outlive the layer that refused the call, and still
// names it.
TEST(ResilienceError, ARejectedOutcomeStillNamesItsLayerAfterTheLayerIsGone) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    std::optional<wr::call_outcome<int>> kept;
    {
      wr::circuit_breaker_options bo;
      bo.name = "short-lived";
      wr::circuit_breaker breaker{bo};
      breaker.transition_to_forced_open();
      kept.emplace(co_await breaker.execute([]() -> weft::task<wr::call_outcome<int>> {
        co_return wr::call_outcome<int>::success(1);
      }));
    }
    EXPECT_TRUE(kept->rejected_by() != nullptr && *kept->rejected_by() == "short-lived");
    try {
      (void)std::move(*kept).get();
      ADD_FAILURE() << "not rejected";
    } catch (const wr::rejected& r) {
      EXPECT_STREQ(r.what(), "circuit breaker 'short-lived' is forced open");
    }
  });
}

TEST(ResilienceError, RetryAfterReadsAsPeopleWriteIt) {
  auto text = [](weft::clock::duration d) {
    return std::string(wr::rejected(wr::errc::rate_limited, d, "l", "").what());
  };
  EXPECT_EQ(text(1500us), "rate limiter 'l' refused the call; retry after 1.5 ms");
  EXPECT_EQ(text(250ms), "rate limiter 'l' refused the call; retry after 250 ms");
  EXPECT_EQ(text(999'700us), "rate limiter 'l' refused the call; retry after 1 s");
  EXPECT_EQ(text(1500ms), "rate limiter 'l' refused the call; retry after 1.5 s");
  EXPECT_EQ(text(2s), "rate limiter 'l' refused the call; retry after 2 s");
  EXPECT_EQ(text(3600s), "rate limiter 'l' refused the call; retry after 3600 s");
}

TEST(ResilienceError, NamedRejectionsCopyWithoutThrowingAndKeepTheirText) {
  const wr::rejected r(wr::errc::bulkhead_full, std::nullopt, "db", "");
  const wr::rejected copy = r;
  EXPECT_STREQ(copy.what(), "bulkhead 'db' is full");
  EXPECT_TRUE(std::is_nothrow_copy_constructible_v<wr::rejected>);
  const wr::rejected later(wr::errc::circuit_open, 250ms, "pricing", "k");
  EXPECT_STREQ(later.what(), "circuit breaker 'pricing' is open for key 'k'; retry after 250 ms");
}

TEST(Outcome, KindsAndHandBack) {
  auto v = wr::call_outcome<int>::success(7);
  EXPECT_EQ(v.kind(), wr::outcome_kind::value);
  EXPECT_EQ(std::move(v).get(), 7);

  auto e = wr::call_outcome<int>::failure(wr::errc::rate_limited, 3ms);
  EXPECT_EQ(e.kind(), wr::outcome_kind::error);
  EXPECT_TRUE(e.is_rejection());
  try {
    (void)std::move(e).get();
    FAIL() << "no throw";
  } catch (const wr::rejected& r) {
    EXPECT_EQ(r.code(), wr::errc::rate_limited);
    EXPECT_EQ(*r.retry_after(), 3ms);
  }

  auto other = wr::call_outcome<int>::failure(std::make_error_code(std::errc::connection_refused));
  EXPECT_THROW((void)std::move(other).get(), std::system_error);

  auto x = wr::call_outcome<int>::from_exception(std::make_exception_ptr(std::runtime_error("boom")));
  EXPECT_EQ(x.kind(), wr::outcome_kind::exception);
  EXPECT_THROW((void)std::move(x).get(), std::runtime_error);

  auto c = wr::call_outcome<int>::from_exception(std::make_exception_ptr(weft::operation_cancelled{}));
  EXPECT_EQ(c.kind(), wr::outcome_kind::cancelled);
  EXPECT_THROW((void)std::move(c).get(), weft::operation_cancelled);
  EXPECT_THROW(wr::call_outcome<void>::cancelled().get(), weft::operation_cancelled);
}

TEST(Outcome, ExpectedLikeKeepsTheCallersValueAndInjectsRejections) {
  auto bad = wr::call_outcome<reply>::success(reply{std::make_error_code(std::errc::io_error)});
  EXPECT_EQ(bad.kind(), wr::outcome_kind::error);
  EXPECT_EQ(bad.error(), std::errc::io_error);
  EXPECT_EQ(std::move(bad).get().error(), std::errc::io_error);

  auto rej = wr::call_outcome<reply>::failure(wr::errc::bulkhead_full);
  const reply r = std::move(rej).get();  // no throw: injected as the caller's type
  EXPECT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), wr::errc::bulkhead_full);
}

TEST(Classify, Defaults) {
  auto view = [](auto o) { return wr::view_of(o); };
  EXPECT_EQ(wr::default_classify(view(wr::call_outcome<int>::success(1))), wr::verdict::success);
  EXPECT_EQ(wr::default_classify(view(wr::call_outcome<int>::cancelled())), wr::verdict::ignore);
  for (auto c : {wr::errc::bulkhead_full, wr::errc::rate_limited, wr::errc::limit_exceeded}) {
    EXPECT_EQ(wr::default_classify(view(wr::call_outcome<int>::failure(c))), wr::verdict::ignore);
  }
  EXPECT_EQ(wr::default_classify(view(wr::call_outcome<int>::failure(wr::errc::timeout))),
            wr::verdict::failure);
  EXPECT_EQ(wr::default_classify(view(wr::call_outcome<int>::from_exception(
                std::make_exception_ptr(std::runtime_error("x"))))),
            wr::verdict::failure);

  // A rejection thrown by a nested pipeline is judged as the same rejection returned as a value
  // (the outcome is named: a view points into it).
  const auto thrown_full = wr::call_outcome<int>::from_exception(
      std::make_exception_ptr(wr::rejected(wr::errc::bulkhead_full, std::nullopt, "inner", "")));
  EXPECT_EQ(wr::default_classify(wr::view_of(thrown_full)), wr::verdict::ignore);
  const auto thrown_open = wr::call_outcome<int>::from_exception(
      std::make_exception_ptr(wr::rejected(wr::errc::circuit_open)));
  EXPECT_EQ(wr::default_classify(wr::view_of(thrown_open)), wr::verdict::failure);

  EXPECT_TRUE(wr::default_retryable(view(wr::call_outcome<int>::failure(wr::errc::timeout))));
  EXPECT_FALSE(wr::default_retryable(view(wr::call_outcome<int>::failure(wr::errc::circuit_open))));
  EXPECT_FALSE(wr::default_retryable(view(wr::call_outcome<int>::cancelled())));
  EXPECT_FALSE(wr::default_retryable(view(wr::call_outcome<int>::success(1))));
  EXPECT_FALSE(wr::default_retryable(view(
      wr::call_outcome<int>::from_exception(std::make_exception_ptr(std::invalid_argument("x"))))));
  EXPECT_FALSE(wr::default_retryable(
      view(wr::call_outcome<int>::from_exception(std::make_exception_ptr(std::bad_alloc())))));
  EXPECT_TRUE(wr::default_retryable(
      view(wr::call_outcome<int>::from_exception(std::make_exception_ptr(std::runtime_error("x"))))));
}

TEST(Classify, PredicateBuilders) {
  const wr::classifier c{wr::on_exception<std::range_error>() |
                         wr::on_error(std::errc::connection_refused) |
                         wr::on_result([](const int& v) { return v < 0; })};
  auto judge = [&](auto o) { return c(wr::view_of(o)); };
  EXPECT_EQ(judge(wr::call_outcome<int>::success(5)), wr::verdict::success);
  EXPECT_EQ(judge(wr::call_outcome<int>::success(-1)), wr::verdict::failure);
  EXPECT_EQ(judge(wr::call_outcome<int>::failure(std::make_error_code(std::errc::connection_refused))),
            wr::verdict::failure);
  EXPECT_EQ(judge(wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error))),
            wr::verdict::success);  // not matched: counted as a success, as in Polly
  EXPECT_EQ(judge(wr::call_outcome<int>::from_exception(
                std::make_exception_ptr(std::range_error("r")))),
            wr::verdict::failure);
  EXPECT_EQ(judge(wr::call_outcome<int>::from_exception(
                std::make_exception_ptr(std::runtime_error("r")))),
            wr::verdict::success);
  EXPECT_EQ(judge(wr::call_outcome<int>::cancelled()), wr::verdict::ignore);
  EXPECT_EQ(judge(wr::call_outcome<int>::failure(wr::errc::bulkhead_full)), wr::verdict::ignore);
  // A result of another type never matches on_result<int>.
  EXPECT_EQ(judge(wr::call_outcome<long>::success(-1L)), wr::verdict::success);

  const wr::retry_filter only_refused{wr::on_error(std::errc::connection_refused)};
  EXPECT_TRUE(only_refused(wr::view_of(
      wr::call_outcome<int>::failure(std::make_error_code(std::errc::connection_refused)))));
  EXPECT_FALSE(only_refused(wr::view_of(wr::call_outcome<int>::failure(wr::errc::timeout))));
  EXPECT_FALSE(only_refused(wr::view_of(wr::call_outcome<int>::cancelled())));

  const auto big = wr::on_exception<std::length_error>(
      [](const std::length_error& e) { return std::string(e.what()) == "big"; });
  EXPECT_TRUE(big(wr::view_of(
      wr::call_outcome<int>::from_exception(std::make_exception_ptr(std::length_error("big"))))));
  EXPECT_FALSE(big(wr::view_of(
      wr::call_outcome<int>::from_exception(std::make_exception_ptr(std::length_error("small"))))));
}

TEST(Context, DeadlineEpochsAndProperties) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    wr::resilience_context ctx;
    EXPECT_FALSE(ctx.remaining());
    const auto now = weft::clock::now();
    ctx.narrow_deadline(now + 100ms);
    ctx.narrow_deadline(now + 200ms);  // later: ignored
    EXPECT_EQ(*ctx.remaining(), 100ms);
    int a = 0, b = 0;
    ctx.tag_epoch(&a, 3);
    ctx.tag_epoch(&b, 9);
    ctx.tag_epoch(&a, 4);
    EXPECT_EQ(*ctx.epoch_of(&a), 4u);
    EXPECT_EQ(*ctx.epoch_of(&b), 9u);
    EXPECT_FALSE(ctx.epoch_of(&ctx));
    ctx.property("tenant") = std::string("blue");
    wr::resilience_context copy = ctx;  // shares the bag
    EXPECT_NE(copy.find_property("tenant"), nullptr);
    EXPECT_EQ(std::any_cast<std::string>(*copy.find_property("tenant")), "blue");
    EXPECT_EQ(ctx.find_property("missing"), nullptr);
    co_return;
  }());
}

TEST(Rng, SequenceCyclesAndRejectsOutOfRange) {
  auto r = wr::rng::sequence({0.5, 0.25});
  EXPECT_EQ(r(), 0.5);
  EXPECT_EQ(r(), 0.25);
  EXPECT_EQ(r(), 0.5);
  EXPECT_THROW(wr::rng::sequence({1.0}), std::invalid_argument);
  EXPECT_THROW(wr::rng::sequence({}), std::invalid_argument);
  const wr::rng d;
  for (int i = 0; i < 1000; ++i) {
    const double x = d();
    ASSERT_GE(x, 0.0);
    ASSERT_LT(x, 1.0);
  }
}

TEST(Pipeline, LayersRunOutermostFirstAndReturnTheCallersType) {
  weft::runtime rt{paused()};
  std::vector<std::string> log;
  wr::pipeline pipe{tracer{&log, "a"}, tracer{&log, "b"}};
  const int v = rt.block_on(pipe.execute([&]() -> weft::task<int> {
    log.push_back("op");
    co_return 42;
  }));
  EXPECT_EQ(v, 42);
  EXPECT_EQ(log, (std::vector<std::string>{"a>", "b>", "op", "<b", "<a"}));

  // void, outcome and expected-like operations.
  rt.block_on(pipe.execute([]() -> weft::task<void> { co_return; }));
  auto o = rt.block_on(pipe.execute([]() -> weft::task<wr::call_outcome<int>> {
    co_return wr::call_outcome<int>::failure(std::make_error_code(std::errc::io_error));
  }));
  EXPECT_EQ(o.error(), std::errc::io_error);
  const reply r = rt.block_on(pipe.execute([]() -> weft::task<reply> { co_return reply{5}; }));
  EXPECT_EQ(r.value(), 5);
}

TEST(Pipeline, RejectionTravelsAsAValueAndSurfacesInTheCallersType) {
  weft::runtime rt{paused()};
  std::vector<std::string> log;
  refuser no;
  wr::pipeline pipe{tracer{&log, "outer"}, no};
  int ran = 0;
  auto op = [&]() -> weft::task<int> {
    ++ran;
    co_return 1;
  };
  EXPECT_THROW(rt.block_on(pipe.execute(op)), wr::rejected);
  const auto o = rt.block_on(pipe.execute([&]() -> weft::task<wr::call_outcome<int>> {
    ++ran;
    co_return wr::call_outcome<int>::success(1);
  }));
  EXPECT_EQ(o.error(), wr::errc::circuit_open);
  EXPECT_EQ(*o.retry_after(), 1500us);
  const reply r = rt.block_on(pipe.execute([&]() -> weft::task<reply> { co_return reply{1}; }));
  EXPECT_EQ(r.error(), wr::errc::circuit_open);
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(no.calls, 3);
  EXPECT_EQ(log, (std::vector<std::string>{"outer>", "<outer", "outer>", "<outer", "outer>",
                                           "<outer"}));
}

TEST(Pipeline, OperationsTakingTheContextAndThrowingSynchronously) {
  weft::runtime rt{paused()};
  wr::pipeline pipe{refuser{}};
  wr::pipeline pass{};
  const int attempt = rt.block_on(pass.execute([](wr::resilience_context& ctx) -> weft::task<int> {
    co_return ctx.attempt;
  }));
  EXPECT_EQ(attempt, 1);
  // A callable that throws before returning a task: its exception is the outcome.
  EXPECT_THROW(rt.block_on(pass.execute([]() -> weft::task<int> {
                 throw std::out_of_range("sync");
               })),
               std::out_of_range);
  auto thrower = []() -> weft::task<int> { throw std::out_of_range("sync"); };
  (void)thrower;
  auto sync_throw = [](bool b) {
    if (b) throw std::domain_error("before the task");
    return []() -> weft::task<int> { co_return 1; }();
  };
  EXPECT_THROW(rt.block_on(pass.execute([&] { return sync_throw(true); })), std::domain_error);
  EXPECT_EQ(rt.block_on(pass.execute([&] { return sync_throw(false); })), 1);
}

TEST(Pipeline, CallerCancelledBeforeStartRunsNoLayer) {
  weft::runtime rt{paused()};
  std::vector<std::string> log;
  wr::pipeline pipe{tracer{&log, "a"}};
  weft::cancel_source source;
  source.request_cancellation();
  EXPECT_THROW(rt.block_on(weft::with_cancellation(
                   source.token(), pipe.execute([]() -> weft::task<int> { co_return 1; }))),
               weft::operation_cancelled);
  // Even an outcome-returning call throws: in weft a task awaited by a cancelled caller never
  // starts its body (the runtime's rule), which is "cancelled at once" for every result type.
  EXPECT_THROW(rt.block_on(weft::with_cancellation(
                   source.token(), pipe.execute([]() -> weft::task<wr::call_outcome<int>> {
                     co_return wr::call_outcome<int>::success(1);
                   }))),
               weft::operation_cancelled);
  EXPECT_TRUE(log.empty());
}

TEST(Pipeline, NestedPipelineAndSingleLayerExecute) {
  weft::runtime rt{paused()};
  std::vector<std::string> log;
  wr::pipeline inner{tracer{&log, "i"}};
  wr::pipeline outer{tracer{&log, "o"}, inner};
  EXPECT_EQ(rt.block_on(outer.execute([]() -> weft::task<int> { co_return 3; })), 3);
  EXPECT_EQ(log, (std::vector<std::string>{"o>", "i>", "<i", "<o"}));
  tracer t{&log, "t"};
  EXPECT_EQ(rt.block_on(wr::execute(t, []() -> weft::task<int> { co_return 4; })), 4);
}

struct counting_sink final : wr::metrics_sink {
  std::vector<std::string> lines;
  void count_event(const wr::layer_event& e) noexcept override {
    lines.push_back("event " + std::string(wr::to_string(e.kind)));
  }
  void record_attempt(std::string_view, const wr::resilience_context&, weft::clock::duration,
                      wr::verdict) noexcept override {
    lines.push_back("attempt");
  }
  void record_pipeline(const wr::resilience_context& ctx, weft::clock::duration d,
                       wr::verdict v) noexcept override {
    lines.push_back("pipeline " + std::string(ctx.pipeline) + " " +
                    std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) +
                    (v == wr::verdict::success ? " success" : " other"));
  }
  void set_gauge(wr::gauge g, std::string_view, std::string_view, double v) noexcept override {
    lines.push_back(std::string(wr::to_string(g)) + "=" + std::to_string(static_cast<int>(v)));
  }
};

TEST(Telemetry, ListenersInOrderAndSink) {
  weft::runtime rt{paused()};
  wr::telemetry t{"layer"};
  EXPECT_FALSE(t.active());
  std::vector<std::string> seen;
  t.on_event([&](const wr::layer_event& e) noexcept { seen.push_back("1:" + std::string(wr::to_string(e.kind))); });
  t.on_event([&](const wr::layer_event& e) noexcept { seen.push_back("2:" + std::string(e.layer)); });
  EXPECT_TRUE(t.active());
  counting_sink sink;
  t.set_sink(&sink);
  rt.block_on([&]() -> weft::task<void> {
    wr::resilience_context ctx;
    ctx.key = "k";
    auto e = t.make(wr::event_kind::retry, ctx);
    EXPECT_EQ(e.at, weft::clock::now());
    EXPECT_EQ(e.key, "k");
    t.emit(e);
    t.gauge_value(wr::gauge::inflight, "k", 3);
    co_return;
  }());
  EXPECT_EQ(seen, (std::vector<std::string>{"1:retry", "2:layer"}));
  EXPECT_EQ(sink.lines, (std::vector<std::string>{"event retry", "inflight=3"}));

  // The pipeline's duration goes to its sink, in virtual time.
  wr::pipeline pipe{};
  pipe.observers().set_name("checkout");
  pipe.observers().set_sink(&sink);
  sink.lines.clear();
  rt.block_on(pipe.execute([]() -> weft::task<int> {
    co_await weft::sleep_for(25ms);
    co_return 1;
  }));
  EXPECT_EQ(sink.lines, (std::vector<std::string>{"pipeline checkout 25 success"}));
}

}  // namespace
