// Tasks cancelled before their first step complete as cancelled without running and without an
// exception of their own: a when_any's losers, a child_set's children, a task_group's tasks, a
// joined or detached spawn. The failure such a task reports is one shared operation_cancelled (so
// two losers report the same exception object: neither threw one).
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/combinators/child_set.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/combinators/when_any.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/yield.hpp>

namespace {

weft::runtime_options one_worker() {
  return weft::runtime_options{.workers = 1};
}

weft::task<int> counted(int v, std::atomic<int>* ran) {
  ran->fetch_add(1, std::memory_order_relaxed);
  co_return v;
}

/// Counts its destruction: a frame destroyed unrun still destroys its parameters.
struct tracer {
  std::atomic<int>* destroyed;
  explicit tracer(std::atomic<int>* d) : destroyed(d) {}
  tracer(tracer&& o) noexcept : destroyed(std::exchange(o.destroyed, nullptr)) {}
  tracer& operator=(tracer&&) = delete;
  ~tracer() {
    if (destroyed != nullptr) destroyed->fetch_add(1, std::memory_order_relaxed);
  }
};

weft::task<void> traced(tracer t, std::atomic<int>* ran) {
  (void)t;
  ran->fetch_add(1, std::memory_order_relaxed);
  co_return;
}

TEST(UnstartedCancel, WhenAnyLosersNeverRunAndThrowNothing) {
  weft::runtime rt{one_worker()};
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> ran{0};
    const auto r = rt.block_on([&]() -> weft::task<weft::any_result<int>> {
      std::vector<weft::task<int>> ts;
      for (int i = 0; i < 1000; ++i) ts.push_back(counted(i, &ran));
      co_return co_await weft::when_any(std::move(ts));
    });
    // One worker: the first child to run wins, and the combinator cancels the rest before the
    // worker reaches them.
    EXPECT_EQ(ran.load(), 1) << "round " << round;
    EXPECT_LT(r.index, 1000u);
    EXPECT_EQ(r.result.value(), static_cast<int>(r.index));
  }
}

TEST(UnstartedCancel, ChildSetReportsOneSharedCancellationForUnstartedChildren) {
  weft::runtime rt{one_worker()};
  rt.block_on([]() -> weft::task<void> {
    std::atomic<int> ran{0};
    std::vector<weft::task<int>> ts;
    for (int i = 0; i < 3; ++i) ts.push_back(counted(i, &ran));
    weft::child_set<int> set{std::move(ts)};
    set.start_all();
    set.cancel_all();  // before the worker took any of them
    std::vector<weft::outcome<int>> out;
    for (int i = 0; i < 3; ++i) out.push_back(set.take(co_await set.next()));
    EXPECT_EQ(ran.load(), 0);
    for (const auto& o : out) {
      EXPECT_TRUE(o.has_error());
      if (!o.has_error()) continue;
      EXPECT_TRUE(weft::is_cancellation(o.error()));
    }
    // The same exception object: none of them threw (or allocated) one of its own.
    EXPECT_TRUE(out[0].error() == out[1].error());
    EXPECT_TRUE(out[1].error() == out[2].error());
    try {
      std::rethrow_exception(out[0].error());
    } catch (const weft::operation_cancelled& e) {
      EXPECT_NE(std::string{e.what()}.find("before it started"), std::string::npos) << e.what();
    }
  });
}

TEST(UnstartedCancel, AJoinedSpawnCancelledBeforeItRanThrowsOnJoinAndNeverRan) {
  weft::runtime rt{one_worker()};
  rt.block_on([]() -> weft::task<void> {
    std::atomic<int> ran{0};
    auto h = weft::spawn(counted(7, &ran));
    h.cancel();  // one worker: the task is queued behind this one
    bool threw = false;
    try {
      (void)co_await std::move(h);
    } catch (const weft::operation_cancelled& e) {
      threw = true;
      EXPECT_NE(std::string{e.what()}.find("before it started"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(threw);
    EXPECT_EQ(ran.load(), 0);
  });
}

TEST(UnstartedCancel, ADetachedSpawnCancelledBeforeItRanIsFreedUnrun) {
  weft::runtime rt{one_worker()};
  std::atomic<int> ran{0};
  std::atomic<int> destroyed{0};
  rt.block_on([&]() -> weft::task<void> {
    for (int i = 0; i < 100; ++i) {
      auto h = weft::spawn(traced(tracer{&destroyed}, &ran));
      h.cancel();
      h.detach();
    }
    // Let the worker take the queued tasks.
    for (int i = 0; i < 4; ++i) co_await weft::yield();
  });
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(destroyed.load(), 100) << "each frame freed, its parameters destroyed";
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

TEST(UnstartedCancel, ATaskGroupCancelledBeforeItsTasksRanJoinsCleanly) {
  weft::runtime rt{one_worker()};
  rt.block_on([]() -> weft::task<void> {
    std::atomic<int> ran{0};
    weft::task_group group;
    for (int i = 0; i < 50; ++i) group.spawn(counted(i, &ran));
    group.cancel();
    co_await group.join();  // tasks stopped by the group's own cancel() did not fail
    EXPECT_EQ(ran.load(), 0);
  });
}

TEST(UnstartedCancel, ATaskGroupWhoseTaskFailsReportsThatFailureNotTheUnstartedOnes) {
  weft::runtime rt{one_worker()};
  rt.block_on([]() -> weft::task<void> {
    std::atomic<int> ran{0};
    weft::task_group group;
    group.spawn([]() -> weft::task<void> {
      throw std::runtime_error("first");
      co_return;
    });
    for (int i = 0; i < 20; ++i) group.spawn(counted(i, &ran));
    std::string what;
    try {
      co_await group.join();
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    EXPECT_EQ(what, "first");
  });
}

TEST(UnstartedCancel, ManyWorkersManyRounds) {
  // Cancellations racing with starts on two workers: every child either ran or was skipped,
  // exactly once, and every frame was freed.
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  for (int round = 0; round < 200; ++round) {
    std::atomic<int> ran{0};
    rt.block_on([&]() -> weft::task<void> {
      std::vector<weft::task<int>> ts;
      for (int i = 0; i < 64; ++i) ts.push_back(counted(i, &ran));
      weft::child_set<int> set{std::move(ts)};
      set.start_all();
      set.cancel_all();
      int cancelled = 0;
      for (int i = 0; i < 64; ++i) {
        auto o = set.take(co_await set.next());
        if (o.has_error()) {
          EXPECT_TRUE(weft::is_cancellation(o.error()));
          ++cancelled;
        }
      }
      EXPECT_EQ(cancelled + ran.load(), 64);
    });
  }
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

}  // namespace
