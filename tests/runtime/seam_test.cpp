// The runtime's public seam for code built on top of it (the resilience layers are): cancel_scope
// (linked tokens, a deadline, an awaitable run under another token), or_cancelled (cancellation
// as a value), child_set (custom combinators), spin_lock, is_cancellation,
// this_thread_is_worker, semaphore::waiting and the Prometheus format writer. Paused time for
// exact instants; two workers and many iterations for the thread-safe parts.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <weft/cancel/awaiting_token.hpp>
#include <weft/cancel/cancel_scope.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/or_cancelled.hpp>
#include <weft/combinators/child_set.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/introspection/prometheus_format.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/sync/spin_lock.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/sleep.hpp>
#include <weft/yield.hpp>

#include "support/paused_time.hpp"

namespace {

using namespace std::chrono_literals;
using weft::testing::ms_since;
using weft::testing::paused;

weft::task<int> sleep_then(std::chrono::milliseconds d, int v) {
  co_await weft::sleep_for(d);
  co_return v;
}

weft::task<bool> observes_cancellation(weft::cancel_token* seen) {
  *seen = co_await weft::this_task::cancel_token();
  co_return seen->is_cancellation_requested();
}

TEST(CancelScope, TheDeadlineCancelsTheOperationAtItsInstant) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    weft::cancel_scope scope;
    scope.cancel_at(t0 + 50ms);
    EXPECT_THROW(co_await scope.run(sleep_then(100ms, 1)), weft::operation_cancelled);
    co_await scope.close();
    EXPECT_EQ(ms_since(t0), 50);
    EXPECT_TRUE(scope.deadline_reached());
    EXPECT_FALSE(scope.linked_cancellation_requested());
    // The task's own token is back: a plain sleep afterwards is not cancelled.
    co_await weft::sleep_for(10ms);
    EXPECT_EQ(ms_since(t0), 60);
  });
}

TEST(CancelScope, AnOperationEndingAtExactlyTheDeadlineKeepsItsResult) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    weft::cancel_scope scope;
    scope.cancel_at(t0 + 50ms);
    const int v = co_await scope.run(sleep_then(50ms, 7));
    co_await scope.close();
    EXPECT_EQ(v, 7);
    EXPECT_FALSE(scope.deadline_reached());
    EXPECT_FALSE(scope.is_cancellation_requested());
  });
}

TEST(CancelScope, TheOperationObservesTheScopesTokenNotTheTasks) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::cancel_scope scope;
    weft::cancel_token seen;
    const bool cancelled = co_await scope.run(observes_cancellation(&seen));
    EXPECT_FALSE(cancelled);
    EXPECT_TRUE(seen == scope.token());
    scope.request_cancellation();
    EXPECT_TRUE(seen.is_cancellation_requested());
    const auto own = co_await weft::this_task::cancel_token();
    EXPECT_FALSE(own.is_cancellation_requested()) << "the scope does not reach its awaiter";
  });
}

TEST(CancelScope, ALinkedTokenAndAStopTokenCancelIt) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    {
      weft::cancel_source source;
      weft::cancel_scope scope{source.token()};
      EXPECT_FALSE(scope.is_cancellation_requested());
      source.request_cancellation();
      EXPECT_TRUE(scope.is_cancellation_requested());
      EXPECT_TRUE(scope.linked_cancellation_requested());
      EXPECT_FALSE(scope.deadline_reached());
    }
    {
      std::stop_source stop;
      stop.request_stop();  // already requested: the scope starts cancelled
      weft::cancel_scope scope{weft::cancel_token{stop.get_token()}};
      EXPECT_TRUE(scope.is_cancellation_requested());
      EXPECT_FALSE(co_await scope.run(weft::or_cancelled(weft::sleep_for(1h))));
    }
  });
}

TEST(CancelScope, CancellingTheAwaitingTaskReachesTheOperation) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    bool linked = false;
    bool by_deadline = true;
    auto caller = weft::spawn([](bool& linked, bool& by_deadline) -> weft::task<void> {
      weft::cancel_scope scope;
      scope.cancel_at(weft::clock::now() + 1s);
      const bool woke = co_await scope.run(weft::or_cancelled(weft::sleep_for(1h)));
      co_await scope.close();
      EXPECT_FALSE(woke);
      linked = scope.linked_cancellation_requested();
      by_deadline = scope.deadline_reached();
    }(linked, by_deadline));
    co_await weft::sleep_for(20ms);
    caller.cancel();
    co_await caller;
    EXPECT_EQ(ms_since(t0), 20);
    EXPECT_TRUE(linked);
    EXPECT_FALSE(by_deadline);
  });
}

TEST(CancelScope, BoundsASemaphoreWaitWithoutAnException) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    weft::semaphore slots{1};
    auto held = slots.try_acquire();
    EXPECT_TRUE(held.has_value());
    weft::cancel_scope scope;
    scope.cancel_at(t0 + 30ms);
    auto got = co_await scope.run(weft::or_cancelled(slots.acquire()));
    co_await scope.close();
    EXPECT_FALSE(got.has_value());
    EXPECT_TRUE(scope.deadline_reached());
    EXPECT_EQ(ms_since(t0), 30);
    EXPECT_EQ(slots.waiting(), 0u) << "the cancelled request left the queue";
    held.reset();
    EXPECT_EQ(slots.available(), 1u);
  });
}

TEST(OrCancelled, ReportsCompletionAndCancellationAsValues) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    EXPECT_TRUE(co_await weft::or_cancelled(weft::sleep_for(5ms)));
    weft::semaphore slots{1};
    auto p = co_await weft::or_cancelled(slots.acquire());
    EXPECT_TRUE(p.has_value());
    auto v = co_await weft::or_cancelled(sleep_then(1ms, 3));
    EXPECT_EQ(v, std::optional<int>{3});

    auto cancelled = weft::spawn([](weft::semaphore& slots) -> weft::task<int> {
      int nothing = 0;
      if (!co_await weft::or_cancelled(weft::sleep_for(1h))) ++nothing;
      auto none = co_await weft::or_cancelled(slots.acquire());  // still cancelled: no wait
      if (!none) ++nothing;
      auto gone = co_await weft::or_cancelled(sleep_then(1h, 9));
      if (!gone) ++nothing;
      co_return nothing;
    }(slots));
    co_await weft::yield();
    cancelled.cancel();
    EXPECT_EQ(co_await cancelled, 3);
    EXPECT_EQ(slots.waiting(), 0u);
  });
}

weft::task<int> fails() {
  co_await weft::yield();
  throw std::runtime_error("boom");
}

TEST(OrCancelled, OtherExceptionsPropagate) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    EXPECT_THROW((void)co_await weft::or_cancelled(fails()), std::runtime_error);
  });
}

weft::task<int> counted(std::chrono::milliseconds d, int v, std::atomic<int>* ran) {
  ran->fetch_add(1);
  co_await weft::sleep_for(d);
  co_return v;
}

TEST(ChildSet, CollectsInFinishingOrderAndNeverRunsUnstartedChildren) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    std::atomic<int> ran{0};
    std::vector<weft::task<int>> tasks;
    tasks.push_back(counted(30ms, 1, &ran));
    tasks.push_back(counted(10ms, 2, &ran));
    tasks.push_back(counted(1ms, 3, &ran));  // never started
    weft::child_set<int> set{std::move(tasks)};
    EXPECT_EQ(set.size(), 3u);
    set.start(0);
    set.start(1);
    const std::size_t first = co_await set.next();
    EXPECT_EQ(first, 1u);
    EXPECT_EQ(ms_since(t0), 10);
    EXPECT_EQ(set.take(first).value(), 2);
    set.cancel_all();
    const std::size_t second = co_await set.next();
    EXPECT_EQ(second, 0u);
    auto r = set.take(second);
    EXPECT_TRUE(r.has_error());
    EXPECT_TRUE(weft::is_cancellation(r.error()));
    EXPECT_EQ(ms_since(t0), 10) << "cancel_all stopped the sleeper at once";
    EXPECT_EQ(ran.load(), 2);
  });
}

TEST(ChildSet, AnEmptyTaskIsRefusedAtConstruction) {
  std::vector<weft::task<int>> tasks(1);
  EXPECT_THROW(weft::child_set<int>{std::move(tasks)}, std::logic_error);
}

TEST(Seam, IsCancellationTellsCancellationFromFailure) {
  EXPECT_FALSE(weft::is_cancellation(nullptr));
  EXPECT_TRUE(weft::is_cancellation(std::make_exception_ptr(weft::operation_cancelled{})));
  EXPECT_FALSE(weft::is_cancellation(std::make_exception_ptr(std::runtime_error("x"))));
}

TEST(Seam, ThisThreadIsWorkerOnlyOnAWorker) {
  EXPECT_FALSE(weft::this_thread_is_worker());
  weft::runtime rt{paused()};
  const bool on_worker =
      rt.block_on([]() -> weft::task<bool> { co_return weft::this_thread_is_worker(); });
  EXPECT_TRUE(on_worker);
}

TEST(Seam, SpinLockExcludesAcrossThreads) {
  for (int round = 0; round < 20; ++round) {
    weft::spin_lock lock;
    long counter = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 2000; ++i) {
          std::lock_guard guard{lock};
          ++counter;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(counter, 8000);
    EXPECT_TRUE(lock.try_lock());
    EXPECT_FALSE(lock.try_lock());
    lock.unlock();
  }
}

TEST(Seam, ScopesOnTwoWorkersNeverLoseACancellationOrAResult) {
  weft::runtime rt{{.workers = 2}};
  std::atomic<int> completed{0};
  std::atomic<int> cancelled{0};
  rt.block_on([](std::atomic<int>& completed, std::atomic<int>& cancelled) -> weft::task<void> {
    weft::task_group g;
    for (int i = 0; i < 400; ++i) {
      g.spawn(
          [](int i, std::atomic<int>& completed, std::atomic<int>& cancelled) -> weft::task<void> {
            weft::cancel_scope scope;
            // Half the deadlines have passed already; the rest are far away.
            scope.cancel_at(weft::clock::now() + (i % 2 == 0 ? 0ms : 1h));
            const bool woke = co_await scope.run(weft::or_cancelled(weft::yield()));
            co_await scope.close();
            (woke ? completed : cancelled).fetch_add(1);
          }(i, completed, cancelled));
    }
    co_await g.join();
  }(completed, cancelled));
  EXPECT_EQ(completed.load() + cancelled.load(), 400);
}

TEST(Seam, PrometheusWriterEscapesAndFormats) {
  std::string out;
  weft::prometheus::family(out, "x_total", "counter", "Things.");
  std::string labels = "k=\"";
  weft::prometheus::append_escaped(labels, "a\"b\\c\nd");
  labels += '"';
  weft::prometheus::sample(out, "x", "_total", labels, std::uint64_t{3});
  weft::prometheus::sample(out, "y", "", "", 0.0005);
  EXPECT_EQ(out,
            "# HELP x_total Things.\n# TYPE x_total counter\n"
            "x_total{k=\"a\\\"b\\\\c\\nd\"} 3\ny 0.0005\n");
}

}  // namespace

namespace {

// An awaiter written outside the runtime that hands its caller's token on, as resilience's do.
struct token_reader {
  weft::cancel_token* out;
  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> caller) noexcept {
    *out = weft::awaiting_token(caller);
    return false;  // resumes at once
  }
  void await_resume() const noexcept {}
};

TEST(Seam, AwaitingTokenIsTheAwaitingTasksToken) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::cancel_token seen;
    co_await token_reader{&seen};
    EXPECT_TRUE(seen == co_await weft::this_task::cancel_token());
    weft::cancel_scope scope;
    co_await scope.run(token_reader{&seen});
    EXPECT_TRUE(seen == scope.token()) << "under a scope, the scope's token";
  });
}

TEST(Seam, SpawnAndBlockOnTakeAwaitablesThatAreNotTasks) {
  weft::runtime rt{paused()};
  const auto t0 = rt.now();
  rt.block_on(weft::sleep_for(5ms));
  EXPECT_GE(rt.now() - t0, 5ms) << "block_on waited for the sleep";
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    auto h = weft::spawn(weft::sleep_for(7ms));
    co_await h;
    EXPECT_EQ(ms_since(start), 7);
  });
}

}  // namespace

namespace {

weft::task<bool> wait_under(weft::cancel_scope& scope) {
  co_return co_await scope.run(weft::or_cancelled(weft::sleep_for(1h)));
}

TEST(CancelScope, ARunAwaitedInAnotherTaskLeavesNoLinkBehindIt) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::cancel_scope scope;
    // run() awaited by a spawned task: the scope links that task only while it awaits.
    auto h = weft::spawn(wait_under(scope));
    co_await weft::sleep_for(5ms);
    scope.request_cancellation();
    EXPECT_FALSE(co_await h) << "the waiter saw the scope's cancellation";
    // The child's frame is gone; the scope refers to nothing of it (ASan would see a read).
    EXPECT_FALSE(scope.linked_cancellation_requested());
    co_await scope.close();
  });
}

TEST(CancelScope, AScopeLeftByAnExceptionDisarmsItsDeadline) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    const auto t0 = weft::clock::now();
    try {
      weft::cancel_scope scope;
      scope.cancel_at(t0 + 10ms);
      co_await scope.run(weft::sleep_for(1ms));
      throw std::runtime_error("left early, without close()");
    } catch (const std::runtime_error&) {
    }
    // The alarm went with the scope: passing its instant touches nothing (ASan would see it).
    co_await weft::sleep_for(20ms);
    EXPECT_EQ(ms_since(t0), 21);
  });
}

TEST(CancelScope, ScopesLeftWithoutCloseOnTwoWorkersAreSafe) {
  weft::runtime rt{{.workers = 2}};
  std::atomic<int> done{0};
  rt.block_on([](std::atomic<int>& done) -> weft::task<void> {
    weft::task_group g;
    for (int i = 0; i < 300; ++i) {
      g.spawn([](int i, std::atomic<int>& done) -> weft::task<void> {
        {
          weft::cancel_scope scope;
          // Some deadlines fire while the task is elsewhere; none is closed explicitly.
          scope.cancel_at(weft::clock::now() + std::chrono::microseconds(i % 3 == 0 ? 0 : 50));
          (void)co_await scope.run(weft::or_cancelled(weft::yield()));
          (void)co_await weft::or_cancelled(weft::sleep_for(std::chrono::microseconds(i % 7)));
        }
        done.fetch_add(1);
      }(i, done));
    }
    co_await g.join();
  }(done));
  EXPECT_EQ(done.load(), 300);
}

TEST(Seam, SemaphoreCountsAreReadTogether) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::semaphore slots{1};
    auto held = co_await slots.acquire();
    auto waiter = weft::spawn(
        [](weft::semaphore& s) -> weft::task<void> { auto p = co_await s.acquire(); }(slots));
    co_await weft::yield();
    auto c = slots.counts();
    EXPECT_EQ(c.available, 0u);
    EXPECT_EQ(c.waiting, 1u);
    held.release();
    EXPECT_EQ(slots.waiting(), 0u) << "handed over: no longer waiting";
    co_await waiter;
    EXPECT_EQ(slots.counts().available, 1u);
  });
}

}  // namespace

namespace {

TEST(Seam, RuntimeSpawnAndTheDefaultBlockOnTakeAwaitablesToo) {
  weft::runtime rt{paused()};
  auto h = rt.spawn(weft::sleep_for(3ms));
  rt.block_on(std::move(h));
  weft::block_on(weft::sleep_for(1ms));  // the process-wide default runtime
}

TEST(Seam, MisuseOffAWorkerIsAClearError) {
  weft::cancel_scope scope;
  EXPECT_THROW(scope.cancel_at(weft::clock::now()), std::logic_error);
  std::vector<weft::task<int>> tasks;
  tasks.push_back(sleep_then(1ms, 1));
  weft::child_set<int> set{std::move(tasks)};
  EXPECT_THROW(set.start(0), std::logic_error);
}

TEST(OrCancelled, AnEmptyTaskIsStillAClearError) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::task<int> empty;
    EXPECT_THROW((void)co_await weft::or_cancelled(std::move(empty)), std::logic_error);
  });
}

}  // namespace
