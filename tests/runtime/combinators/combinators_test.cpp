// when_all, when_all_settled, when_any, first_success, quorum, majority, timeout, with_deadline
// and map_concurrent: results, ordering and timing under paused time, fail-fast and early
// failure, structured completion (no child outlives the call), cancellation from outside,
// nesting, move-only values, any awaitable, 10,000 children, and a multi-worker stress.
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "../../support/paused_time.hpp"

#include <weft/weft.hpp>

namespace {

using weft::testing::ms_since;
using weft::testing::paused;

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

/// Counts children that are running, so a test can check none outlives its combinator.
struct census {
  std::atomic<int> running{0};
  std::atomic<int> cancelled{0};
};

struct running_guard {
  census* c;
  explicit running_guard(census* c) : c(c) { c->running.fetch_add(1); }
  ~running_guard() { c->running.fetch_sub(1); }
};

weft::task<int> value_after(census* c, ms d, int v) {
  running_guard g{c};
  try {
    co_await weft::sleep_for(d);
  } catch (const weft::operation_cancelled&) {
    c->cancelled.fetch_add(1);
    throw;
  }
  co_return v;
}

weft::task<int> fail_after(census* c, ms d, std::string what) {
  running_guard g{c};
  co_await weft::sleep_for(d);
  throw std::runtime_error(what);
}

weft::task<void> nothing_after(census* c, ms d) {
  running_guard g{c};
  co_await weft::sleep_for(d);
}

std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  }
}

TEST(WhenAll, ReturnsEveryValueInInputOrderWhenTheLastFinishes) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    auto [a, b, none] = co_await weft::when_all(value_after(&c, 30ms, 1), value_after(&c, 10ms, 2),
                                                nothing_after(&c, 20ms));
    EXPECT_EQ(a, 1);
    EXPECT_EQ(b, 2);
    EXPECT_EQ(none, std::monostate{});
    EXPECT_EQ(ms_since(start), 30);  // concurrent: the longest, not the sum
  });
  EXPECT_EQ(c.running.load(), 0);
}

TEST(WhenAll, ARangeGivesAVectorInInputOrder) {
  weft::runtime rt{paused()};
  census c;
  const auto v = rt.block_on([&]() -> weft::task<std::vector<int>> {
    std::vector<weft::task<int>> ts;
    for (int i = 0; i < 5; ++i) ts.push_back(value_after(&c, ms{50 - 10 * i}, i));
    co_return co_await weft::when_all(std::move(ts));
  });
  EXPECT_EQ(v, (std::vector<int>{0, 1, 2, 3, 4}));
  const auto empty = rt.block_on(weft::when_all(std::vector<weft::task<int>>{}));
  EXPECT_TRUE(empty.empty());
}

TEST(WhenAll, TheFirstFailureCancelsTheSiblingsWaitsForThemAndIsRethrown) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    try {
      co_await weft::when_all(value_after(&c, 1h, 1), fail_after(&c, 10ms, "first"),
                              fail_after(&c, 20ms, "second"));
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "first");
    }
    EXPECT_EQ(ms_since(start), 10);  // fail-fast: not the hour
    EXPECT_EQ(c.running.load(), 0);  // structured: every sibling stopped before the throw
    EXPECT_EQ(c.cancelled.load(), 1);
  });
}

TEST(WhenAll, MoveOnlyValuesAndAnyAwaitable) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto handle = weft::spawn([]() -> weft::task<int> { co_return 7; }());
    auto [p, seven] = co_await weft::when_all(
        []() -> weft::task<std::unique_ptr<int>> { co_return std::make_unique<int>(5); }(),
        std::move(handle));
    EXPECT_EQ(*p, 5);
    EXPECT_EQ(seven, 7);
  });
}

TEST(WhenAllSettled, GivesEveryOutcomeAndNeverThrowsForAChild) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    auto [a, b] =
        co_await weft::when_all_settled(value_after(&c, 5ms, 1), fail_after(&c, 1ms, "bad"));
    EXPECT_TRUE(a.has_value());
    EXPECT_EQ(a.value(), 1);
    EXPECT_TRUE(b.has_error());
    EXPECT_EQ(message_of(b.error()), "bad");
    EXPECT_THROW(b.value(), std::runtime_error);
    std::vector<weft::task<int>> ts;
    ts.push_back(fail_after(&c, 2ms, "x"));
    ts.push_back(value_after(&c, 1ms, 9));
    auto all = co_await weft::when_all_settled(std::move(ts));
    EXPECT_EQ(all.size(), 2u);
    EXPECT_TRUE(all[0].has_error());
    EXPECT_EQ(all[1].value(), 9);
  });
}

TEST(WhenAny, TheFirstToFinishWinsAndTheOthersAreCancelledAndAwaited) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    std::vector<weft::task<int>> ts;
    ts.push_back(value_after(&c, 30ms, 0));
    ts.push_back(value_after(&c, 10ms, 1));
    ts.push_back(value_after(&c, 20ms, 2));
    auto first = co_await weft::when_any(std::move(ts));
    EXPECT_EQ(first.index, 1u);
    EXPECT_EQ(first.result.value(), 1);
    EXPECT_EQ(ms_since(start), 10);
    EXPECT_EQ(c.running.load(), 0);
    EXPECT_EQ(c.cancelled.load(), 2);
    // A failure that comes first wins too.
    auto failed = co_await weft::when_any(fail_after(&c, 1ms, "fast"), value_after(&c, 5ms, 3));
    EXPECT_EQ(failed.index, 0u);
    EXPECT_TRUE(failed.result.has_error());
  });
  EXPECT_THROW(rt.block_on(weft::when_any(std::vector<weft::task<int>>{})), std::invalid_argument);
}

TEST(FirstSuccess, IgnoresFailuresWhileAnotherMaySucceed) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const int v = co_await weft::first_success(fail_after(&c, 1ms, "a"), value_after(&c, 20ms, 42),
                                               value_after(&c, 30ms, 43));
    EXPECT_EQ(v, 42);
    EXPECT_EQ(ms_since(start), 20);
    EXPECT_EQ(c.running.load(), 0);
  });
}

TEST(FirstSuccess, WhenEveryChildFailsThrowsAnAggregateInInputOrder) {
  weft::runtime rt{paused()};
  census c;
  try {
    rt.block_on(weft::first_success(fail_after(&c, 3ms, "zero"), fail_after(&c, 1ms, "one"),
                                    fail_after(&c, 2ms, "two")));
    FAIL() << "no exception";
  } catch (const weft::aggregate_error& e) {
    ASSERT_EQ(e.errors().size(), 3u);
    EXPECT_EQ(message_of(e.errors()[0]), "zero");
    EXPECT_EQ(message_of(e.errors()[1]), "one");
    EXPECT_EQ(message_of(e.errors()[2]), "two");
    EXPECT_NE(std::string{e.what()}.find("3 failures"), std::string::npos) << e.what();
  }
}

TEST(Quorum, ReturnsOnceKSucceededWithIndicesInCompletionOrder) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    std::vector<weft::task<int>> ts;
    ts.push_back(value_after(&c, 50ms, 0));
    ts.push_back(value_after(&c, 10ms, 1));
    ts.push_back(fail_after(&c, 5ms, "down"));
    ts.push_back(value_after(&c, 30ms, 3));
    ts.push_back(value_after(&c, 40ms, 4));
    auto votes = co_await weft::quorum(3, std::move(ts));
    EXPECT_EQ(votes.size(), 3u);
    if (votes.size() != 3u) co_return;
    EXPECT_EQ(votes[0].index, 1u);
    EXPECT_EQ(votes[1].index, 3u);
    EXPECT_EQ(votes[2].index, 4u);
    EXPECT_EQ(votes[2].value, 4);
    EXPECT_EQ(ms_since(start), 40);
    EXPECT_EQ(c.running.load(), 0);
    EXPECT_EQ(c.cancelled.load(), 1);  // the 50 ms one
  });
}

TEST(Quorum, FailsAsSoonAsSuccessBecameImpossible) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    std::vector<weft::task<int>> ts;
    ts.push_back(value_after(&c, 100ms, 0));
    ts.push_back(fail_after(&c, 1ms, "a"));
    ts.push_back(value_after(&c, 100ms, 2));
    ts.push_back(fail_after(&c, 2ms, "b"));
    ts.push_back(fail_after(&c, 3ms, "c"));
    try {
      co_await weft::quorum(3, std::move(ts));  // 3 of 5 needs at most 2 failures
      ADD_FAILURE() << "no exception";
    } catch (const weft::aggregate_error& e) {
      EXPECT_EQ(e.errors().size(), 3u);
    }
    EXPECT_EQ(ms_since(start), 3);  // at the third failure, not at 100 ms
    EXPECT_EQ(c.running.load(), 0);
  });
}

TEST(Quorum, ACancelledCallerGetsOperationCancelledNotAnAggregate) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    std::vector<weft::task<int>> ts;
    for (int i = 0; i < 3; ++i) ts.push_back(value_after(&c, 1h, i));
    auto h = weft::spawn(weft::quorum(2, std::move(ts)));
    co_await weft::sleep_for(1ms);
    h.cancel();
    EXPECT_THROW(co_await std::move(h), weft::operation_cancelled);
    EXPECT_EQ(c.running.load(), 0);
  });
}

TEST(Quorum, ArgumentErrorsAreClear) {
  weft::runtime rt{paused()};
  census c;
  auto three = [&] {
    std::vector<weft::task<int>> ts;
    for (int i = 0; i < 3; ++i) ts.push_back(value_after(&c, 1ms, i));
    return ts;
  };
  EXPECT_THROW(rt.block_on(weft::quorum(0, three())), std::invalid_argument);
  try {
    rt.block_on(weft::quorum(4, three()));
    FAIL() << "k > n accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string{e.what()}.find("k = 4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(rt.block_on(weft::quorum(1, std::vector<weft::task<int>>{})), std::invalid_argument);
  EXPECT_THROW(rt.block_on(weft::majority(three(), 1.0)), std::invalid_argument);
}

TEST(Majority, NeedsStrictlyMoreThanTheThreshold) {
  weft::runtime rt{paused()};
  census c;
  auto n_tasks = [&](int n) {
    std::vector<weft::task<int>> ts;
    for (int i = 0; i < n; ++i) ts.push_back(value_after(&c, ms{i + 1}, i));
    return ts;
  };
  EXPECT_EQ(rt.block_on(weft::majority(n_tasks(3))).size(), 2u);
  EXPECT_EQ(rt.block_on(weft::majority(n_tasks(4))).size(), 3u);
  EXPECT_EQ(rt.block_on(weft::majority(n_tasks(4), 0.75)).size(), 4u);
  EXPECT_EQ(rt.block_on(weft::majority(n_tasks(5), 0.0)).size(), 1u);
  // The pack forms.
  EXPECT_EQ(rt.block_on(weft::majority(value_after(&c, 1ms, 1), value_after(&c, 2ms, 2),
                                       fail_after(&c, 3ms, "x")))
                .size(),
            2u);
  const auto one = rt.block_on(weft::quorum(1, value_after(&c, 2ms, 1), value_after(&c, 1ms, 2)));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].index, 1u);
}

TEST(Timeout, FiresAtTheDeadlineAfterTheTaskStopped) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    EXPECT_THROW(co_await weft::timeout(100ms, value_after(&c, 1h, 1)), weft::timed_out);
    EXPECT_EQ(ms_since(start), 100);
    EXPECT_EQ(c.running.load(), 0);
    EXPECT_EQ(c.cancelled.load(), 1);
  });
}

TEST(Timeout, ATaskThatFinishesInTimeKeepsItsValueAndFreesTheTimer) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    EXPECT_EQ(co_await weft::timeout(1h, value_after(&c, 10ms, 5)), 5);
    EXPECT_EQ(ms_since(start), 10);
    co_await weft::advance(0ms);  // nothing due: the hour's timer is gone
    EXPECT_EQ(ms_since(start), 10);
    EXPECT_EQ(co_await weft::with_deadline(weft::clock::now() + 5ms, value_after(&c, 1ms, 6)), 6);
    // A task's own failure is its own, not a timeout.
    EXPECT_THROW(co_await weft::timeout(1h, fail_after(&c, 1ms, "own")), std::runtime_error);
  });
}

TEST(Timeout, ATaskThatIgnoresCancellationDelaysTheReturnAndKeepsItsValue) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    const int v = co_await weft::timeout(10ms, []() -> weft::task<int> {
      try {
        co_await weft::sleep_for(1h);
      } catch (const weft::operation_cancelled&) {
        // ignores it and finishes with a value, without suspending again
      }
      co_return 3;
    }());
    EXPECT_EQ(v, 3);
    EXPECT_EQ(ms_since(start), 10);
  });
}

TEST(Cancellation, CancellingTheCallerCancelsChildrenMidSleepAndWaitsForThem) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    auto h = weft::spawn(weft::when_all(value_after(&c, 1h, 1), value_after(&c, 2h, 2)));
    co_await weft::sleep_for(10ms);
    EXPECT_EQ(c.running.load(), 2);
    h.cancel();
    EXPECT_THROW(co_await std::move(h), weft::operation_cancelled);
    EXPECT_EQ(c.running.load(), 0);
    EXPECT_EQ(c.cancelled.load(), 2);
    EXPECT_EQ(ms_since(start), 10);
  });
}

TEST(Cancellation, ACancelledWhenAnyThrowsOperationCancelledOnceItsChildrenStopped) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    auto h = weft::spawn(weft::when_any(value_after(&c, 1h, 1), value_after(&c, 2h, 2)));
    co_await weft::sleep_for(5ms);
    h.cancel();
    EXPECT_THROW(co_await std::move(h), weft::operation_cancelled);
    EXPECT_EQ(c.running.load(), 0);
  });
}

TEST(Nesting, CombinatorsCompose) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    auto [fast, first] =
        co_await weft::when_all(weft::timeout(50ms, value_after(&c, 20ms, 1)),
                                weft::when_any(value_after(&c, 30ms, 2), value_after(&c, 40ms, 3)));
    EXPECT_EQ(fast, 1);
    EXPECT_EQ(first.index, 0u);
    EXPECT_EQ(ms_since(start), 30);
    EXPECT_EQ(c.running.load(), 0);
  });
}

TEST(Scale, TenThousandChildren) {
  weft::runtime rt{paused()};
  census c;
  const long sum = rt.block_on([&]() -> weft::task<long> {
    std::vector<weft::task<int>> ts;
    for (int i = 0; i < 10'000; ++i) ts.push_back(value_after(&c, ms{i % 100}, i));
    auto v = co_await weft::when_all(std::move(ts));
    long s = 0;
    for (int x : v) s += x;
    co_return s;
  });
  EXPECT_EQ(sum, 10'000L * 9'999 / 2);
  EXPECT_EQ(c.running.load(), 0);
}

TEST(MapConcurrent, KeepsInputOrderAndTheLimit) {
  weft::runtime rt{paused()};
  std::atomic<int> now_running{0}, most{0};
  std::vector<int> inputs;
  for (int i = 0; i < 50; ++i) inputs.push_back(i);
  const auto out = rt.block_on([&]() -> weft::task<std::vector<int>> {
    co_return co_await weft::map_concurrent(
        inputs,
        [&](int x) -> weft::task<int> {
          const int n = now_running.fetch_add(1) + 1;
          int m = most.load();
          while (n > m && !most.compare_exchange_weak(m, n)) {
          }
          co_await weft::sleep_for(ms{(x * 7) % 13 + 1});
          now_running.fetch_sub(1);
          co_return x* x;
        },
        4);
  });
  ASSERT_EQ(out.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)], i * i);
  EXPECT_EQ(most.load(), 4);
  EXPECT_THROW(rt.block_on(weft::map_concurrent(
                   inputs, [](int) -> weft::task<int> { co_return 0; }, 0)),
               std::invalid_argument);
}

TEST(MapConcurrent, FailsFastAndStartsNothingMore) {
  weft::runtime rt{paused()};
  std::atomic<int> started{0};
  std::vector<int> inputs(100, 0);
  EXPECT_THROW(rt.block_on(weft::map_concurrent(
                   inputs,
                   [&](int) -> weft::task<int> {
                     const int k = started.fetch_add(1);
                     co_await weft::sleep_for(1ms);
                     if (k == 3) throw std::runtime_error("fourth");
                     co_return k;
                   },
                   5)),
               std::runtime_error);
  EXPECT_LT(started.load(), 100);
}

TEST(Stress, ChildrenFinishingOnDifferentWorkersAtOnce) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  for (int round = 0; round < 2'000; ++round) {
    std::atomic<int> arrived{0};
    auto child = [&arrived](int v) -> weft::task<int> {
      // Both children spin until both run, so they finish at the same moment on two workers
      // (or give up after a while when one worker runs both).
      arrived.fetch_add(1);
      for (int spins = 0; arrived.load() < 2 && spins < 20'000; ++spins) std::this_thread::yield();
      co_return v;
    };
    auto [a, b] = rt.block_on(weft::when_all(weft::co_invoke(child, 1), weft::co_invoke(child, 2)));
    ASSERT_EQ(a + b, 3);
    auto any = rt.block_on(weft::when_any(weft::co_invoke(child, 4), weft::co_invoke(child, 5)));
    ASSERT_TRUE(any.index == 0 || any.index == 1);
  }
}

}  // namespace

namespace {

TEST(TaskGroup, JoinWaitsForEveryTaskSpawnedIntoIt) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    weft::task_group group;
    for (int i = 1; i <= 5; ++i) group.spawn(value_after(&c, ms{10 * i}, i));
    group.spawn(nothing_after(&c, 5ms));
    EXPECT_EQ(group.running(), 6u);
    co_await group.join();
    EXPECT_EQ(ms_since(start), 50);
    EXPECT_EQ(group.running(), 0u);
    EXPECT_EQ(c.running.load(), 0);
    // Reusable after a join; an empty join returns at once.
    co_await group.join();
    group.spawn(value_after(&c, 1ms, 1));
    co_await group.join();
  });
}

TEST(TaskGroup, TheFirstFailureCancelsTheRestAndIsRethrownByJoin) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    weft::task_group group;
    group.spawn(value_after(&c, 1h, 1));
    group.spawn(fail_after(&c, 10ms, "broken"));
    group.spawn(value_after(&c, 2h, 2));
    try {
      co_await group.join();
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "broken");
    }
    EXPECT_EQ(ms_since(start), 10);
    EXPECT_EQ(c.running.load(), 0);
    EXPECT_EQ(c.cancelled.load(), 2);
  });
}

TEST(TaskGroup, LeavingTheScopeWithTasksRunningCancelsAndWaitsForThem) {
  for (auto options :
       {paused(), weft::runtime_options{.workers = 1}, weft::runtime_options{.workers = 2}}) {
    weft::runtime rt{options};
    census c;
    EXPECT_THROW(rt.block_on([&]() -> weft::task<void> {
      weft::task_group group;
      group.spawn(value_after(&c, 1h, 1));
      group.spawn(value_after(&c, 2h, 2));
      // Both asleep before leaving: on two workers one yield is not enough for the other
      // worker to have started its task, and a task cancelled before it ran never counts.
      while (c.running.load() < 2) co_await weft::yield();
      throw std::runtime_error("left early");
    }),
                 std::runtime_error);
    EXPECT_EQ(c.running.load(), 0);  // no task outlived its group
    EXPECT_EQ(c.cancelled.load(), 2);
  }
}

TEST(TaskGroup, ACancelledJoinerCancelsTheTasksAndWaitsForThem) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    auto h = weft::spawn(weft::co_invoke([&c]() -> weft::task<void> {
      weft::task_group group;
      group.spawn(value_after(&c, 1h, 1));
      group.spawn(value_after(&c, 1h, 2));
      co_await group.join();
    }));
    co_await weft::sleep_for(1ms);
    h.cancel();
    EXPECT_THROW(co_await std::move(h), weft::operation_cancelled);
    EXPECT_EQ(c.running.load(), 0);
  });
}

TEST(TaskGroup, ShutdownWithAGroupWaitingDoesNotHang) {
  census c;
  {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    rt.spawn(weft::co_invoke([&c]() -> weft::task<void> {
        weft::task_group group;
        group.spawn(value_after(&c, 1h, 1));
        co_await group.join();
      }))
        .detach();
    while (c.running.load() == 0) std::this_thread::yield();
  }
  SUCCEED();  // reaching here is the test: the destructor did not wait for a stopped runtime
}

TEST(TaskGroup, CancelAlsoCancelsTasksSpawnedAfterItUntilTheNextJoin) {
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    group.spawn(value_after(&c, 1h, 1));
    group.cancel();
    group.spawn(value_after(&c, 1h, 2));  // an accept loop spawning after the cancel
    const auto start = weft::clock::now();
    co_await group.join();          // both were cancelled: no failure is rethrown for a cancel()
    EXPECT_EQ(ms_since(start), 0);  // neither waited for its hour (cancelled before they ran)
    EXPECT_EQ(c.running.load(), 0);
    group.spawn(value_after(&c, 1ms, 3));  // a joined group starts afresh: this one runs
    co_await group.join();
    EXPECT_EQ(ms_since(start), 1);
    EXPECT_EQ(c.cancelled.load(), 0);
  });
}

TEST(TaskGroup, SpawnOffAWorkerIsALogicError) {
  weft::task_group group;
  EXPECT_THROW(group.spawn([]() -> weft::task<void> { co_return; }()), std::logic_error);
}

TEST(TaskGroup, StressManyTasksFinishingOnTwoWorkers) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  std::atomic<int> ran{0};
  for (int round = 0; round < 200; ++round) {
    rt.block_on([&]() -> weft::task<void> {
      weft::task_group group;
      for (int i = 0; i < 50; ++i) {
        group.spawn(weft::co_invoke([&ran]() -> weft::task<void> {
          ran.fetch_add(1);
          co_await weft::yield();
        }));
      }
      co_await group.join();
    });
  }
  EXPECT_EQ(ran.load(), 200 * 50);
}

}  // namespace
