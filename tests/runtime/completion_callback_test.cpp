// runtime::spawn(task, on_done) and weft::to_future: the result reaches code that cannot co_await,
// exactly once, whatever happens to the task (value, exception, cancellation before or after its
// start, runtime shutdown), from any thread.
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <weft/weft.hpp>

namespace {

using namespace std::chrono_literals;

weft::task<int> answer() {
  co_return 42;
}

weft::task<void> fail() {
  throw std::runtime_error("boom");
  co_return;
}

weft::task<int> wait_then(weft::event& e, int v) {
  co_await e.wait();
  co_return v;
}

weft::task<int> mark_ran(std::atomic<bool>& ran) {
  ran = true;
  co_return 1;
}

// What a callback saw, for the test thread to inspect after joining.
template <class T>
struct seen {
  std::atomic<int> calls{0};
  std::optional<weft::outcome<T>> last;
  std::thread::id thread;
};

template <class T>
auto record(seen<T>& s) {
  return [&s](weft::outcome<T> o) {
    s.last.emplace(std::move(o));
    s.thread = std::this_thread::get_id();
    s.calls.fetch_add(1);
  };
}

TEST(CompletionCallback, DeliversTheValueOnAWorkerBeforeTheHandleCompletes) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  seen<int> s;
  auto h = rt.spawn(answer(), record(s));
  rt.block_on(std::move(h));  // completes after the callback returned
  ASSERT_EQ(s.calls.load(), 1);
  ASSERT_TRUE(s.last->has_value());
  EXPECT_EQ(s.last->value(), 42);
  EXPECT_NE(s.thread, std::this_thread::get_id());
}

TEST(CompletionCallback, DeliversTheExceptionAndTheHandleDoesNotRethrowIt) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  seen<void> s;
  rt.block_on(rt.spawn(fail(), record(s)));
  ASSERT_EQ(s.calls.load(), 1);
  ASSERT_TRUE(s.last->has_error());
  EXPECT_THROW(s.last->value(), std::runtime_error);
}

TEST(CompletionCallback, MoveOnlyCallbackAndMoveOnlyResult) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  int got = 0;
  auto owned = std::make_unique<int>(1);  // makes the callback move-only
  auto h =
      rt.spawn([]() -> weft::task<std::unique_ptr<int>> { co_return std::make_unique<int>(7); }(),
               [owned = std::move(owned), &got](weft::outcome<std::unique_ptr<int>> o) mutable {
                 got = *std::move(o).value() + *owned;
               });
  rt.block_on(std::move(h));
  EXPECT_EQ(got, 8);
}

TEST(CompletionCallback, CancelledBeforeItStartsReportsCancellationOnceAtOnceOnAWorker) {
  // Paused time, one worker: the spawn below is still queued when the cancel comes. The handle is
  // kept (as a server keeps it in a table of requests): the report must not wait for its release.
  weft::runtime rt{weft::runtime_options{.workers = 1, .time = weft::time_mode::paused}};
  seen<int> s;
  std::atomic<bool> ran{false};
  std::thread::id worker;
  rt.block_on([&]() -> weft::task<void> {
    worker = std::this_thread::get_id();
    auto h = rt.spawn(mark_ran(ran), record(s));
    h.cancel();
    while (s.calls.load() == 0) co_await weft::yield();
    EXPECT_EQ(s.thread, worker);
    co_await std::move(h);  // completes normally: the wrapper ran and reported
  });
  EXPECT_FALSE(ran.load());
  ASSERT_EQ(s.calls.load(), 1);
  ASSERT_TRUE(s.last->has_error());
  EXPECT_TRUE(weft::is_cancellation(s.last->error()));
}

TEST(CompletionCallback, SpawnOnAShutDownRuntimeThrowsAfterReportingTheCancellation) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.shutdown();
  seen<int> s;
  EXPECT_THROW((void)rt.spawn(answer(), record(s)), std::logic_error);
  ASSERT_EQ(s.calls.load(), 1);
  EXPECT_TRUE(weft::is_cancellation(s.last->error()));
}

TEST(CompletionCallback, CancelledWhileItWaitsReportsCancellation) {
  weft::runtime rt{weft::runtime_options{.workers = 1, .time = weft::time_mode::paused}};
  seen<int> s;
  weft::event never;
  rt.block_on([&]() -> weft::task<void> {
    auto h = rt.spawn(wait_then(never, 5), record(s));
    co_await weft::sleep_for(10ms);  // it has started and waits
    EXPECT_EQ(s.calls.load(), 0);
    h.cancel();
    co_await std::move(h);
  });
  ASSERT_EQ(s.calls.load(), 1);
  EXPECT_TRUE(weft::is_cancellation(s.last->error()));
}

TEST(CompletionCallback, ShutdownBeforeTheTaskFinishedReportsCancellationOnThatThread) {
  seen<int> s;
  weft::event never;
  {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    rt.spawn(wait_then(never, 5), record(s)).detach();
    rt.block_on([]() -> weft::task<void> { co_await weft::yield(); });
  }  // the destructor destroys the waiting task
  ASSERT_EQ(s.calls.load(), 1);
  EXPECT_TRUE(weft::is_cancellation(s.last->error()));
  EXPECT_EQ(s.thread, std::this_thread::get_id());
}

TEST(CompletionCallback, AnEmptyTaskIsRefusedAtTheCallAndTheCallbackNeverRuns) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  seen<int> s;
  weft::task<int> t = answer();
  weft::task<int> moved = std::move(t);
  EXPECT_THROW((void)rt.spawn(std::move(t), record(s)), std::logic_error);
  EXPECT_EQ(s.calls.load(), 0);
  EXPECT_EQ(rt.block_on(std::move(moved)), 42);
}

TEST(CompletionCallback, ManyFromForeignThreadsEachCalledExactlyOnce) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  constexpr int per_thread = 5000;
  std::vector<std::atomic<int>> calls(2 * per_thread);
  std::atomic<int> total{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const int k = t * per_thread + i;
        rt.spawn(
              [](int v) -> weft::task<int> {
                if (v % 3 == 0) co_await weft::yield();
                co_return v;
              }(k),
              [&calls, &total, k](weft::outcome<int> o) {
                if (o.value() == k) calls[static_cast<std::size_t>(k)].fetch_add(1);
                total.fetch_add(1);
              })
            .detach();
      }
    });
  }
  for (auto& th : threads) th.join();
  rt.block_on([&]() -> weft::task<void> {
    while (total.load() < 2 * per_thread) co_await weft::yield();
  });
  for (auto& c : calls) ASSERT_EQ(c.load(), 1);
}

TEST(ToFuture, ValueExceptionAndVoid) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  std::future<int> v = weft::to_future(rt, answer());
  std::future<void> e = weft::to_future(rt, fail());
  std::future<void> d = weft::to_future(rt, []() -> weft::task<void> { co_return; }());
  EXPECT_EQ(v.get(), 42);
  EXPECT_THROW(e.get(), std::runtime_error);
  EXPECT_NO_THROW(d.get());
}

TEST(ToFuture, ShutdownFirstMakesTheFutureThrowOperationCancelled) {
  std::future<int> f;
  weft::event never;
  {
    weft::runtime rt{weft::runtime_options{.workers = 1}};
    f = weft::to_future(rt, wait_then(never, 1));
  }
  EXPECT_THROW(f.get(), weft::operation_cancelled);
}

TEST(ToFuture, OnARuntimeThatHasShutDownThrowsLogicError) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.shutdown();
  EXPECT_THROW((void)weft::to_future(rt, answer()), std::logic_error);
}

TEST(ToFuture, WaitedOnFromAnotherThread) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::event go;
  std::future<int> f = weft::to_future(rt, wait_then(go, 9));
  std::thread waiter([&] { EXPECT_EQ(f.get(), 9); });
  rt.block_on([&]() -> weft::task<void> {
    go.set();
    co_return;
  });
  waiter.join();
}

}  // namespace
