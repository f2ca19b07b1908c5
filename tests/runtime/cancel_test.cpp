// Cancellation: sources, tokens, callbacks, std::stop_token, and cancelling tasks where they wait.
#include <weft/cancel/cancel_token.hpp>

#include <atomic>
#include <functional>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

#include "../support/eventually.hpp"

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/join_handle.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/spawn_blocking.hpp>
#include <weft/sync/event.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/yield.hpp>

namespace {

using weft::testing::eventually;

weft::task<int> wait_then_return(weft::event& e, int value) {
  co_await e.wait();
  co_return value;
}

weft::task<void> set_flag(bool& flag) {
  flag = true;
  co_return;
}

template <class T>
weft::task<T> join(weft::join_handle<T>& handle) {
  co_return co_await handle;
}

// Sets a flag when the test leaves, however it leaves: a blocking function waiting for the flag
// would otherwise keep the runtime's destructor waiting for it.
struct set_on_exit {
  std::atomic<bool>& flag;
  ~set_on_exit() { flag.store(true); }
};

// ---------------------------------------------------------------------------------------------
// cancel_source, cancel_token, cancel_callback

using erased_callback = weft::cancel_callback<std::function<void()>>;

TEST(CancelSource, RequestingReportsWhetherThisCallMadeTheRequest) {
  weft::cancel_source source;
  EXPECT_FALSE(source.is_cancellation_requested());
  EXPECT_TRUE(source.request_cancellation());
  EXPECT_FALSE(source.request_cancellation());
  EXPECT_TRUE(source.is_cancellation_requested());
}

TEST(CancelToken, ObservesItsSource) {
  weft::cancel_source source;
  const weft::cancel_token token = source.token();
  EXPECT_TRUE(token.can_be_cancelled());
  EXPECT_FALSE(token.is_cancellation_requested());
  source.request_cancellation();
  EXPECT_TRUE(token.is_cancellation_requested());
}

TEST(CancelToken, DefaultTokenIsNeverCancelled) {
  const weft::cancel_token token;
  EXPECT_FALSE(token.can_be_cancelled());
  EXPECT_FALSE(token.is_cancellation_requested());
}

TEST(CancelToken, TokensOfOneSourceCompareEqual) {
  weft::cancel_source a, b;
  EXPECT_EQ(a.token(), a.token());
  EXPECT_FALSE(a.token() == b.token());
  EXPECT_EQ(weft::cancel_token{}, weft::cancel_token{});
}

TEST(CancelCallback, RunsOnceWhenCancellationIsRequested) {
  weft::cancel_source source;
  int calls = 0;
  weft::cancel_callback callback{source.token(), [&calls]() noexcept { ++calls; }};
  EXPECT_EQ(calls, 0);
  source.request_cancellation();
  source.request_cancellation();
  EXPECT_EQ(calls, 1);
}

TEST(CancelCallback, RunsEveryRegisteredCallback) {
  weft::cancel_source source;
  int calls = 0;
  weft::cancel_callback first{source.token(), [&calls]() noexcept { ++calls; }};
  weft::cancel_callback second{source.token(), [&calls]() noexcept { ++calls; }};
  source.request_cancellation();
  EXPECT_EQ(calls, 2);
}

TEST(CancelCallback, RunsImmediatelyIfAlreadyCancelled) {
  weft::cancel_source source;
  source.request_cancellation();
  int calls = 0;
  weft::cancel_callback callback{source.token(), [&calls]() noexcept { ++calls; }};
  EXPECT_EQ(calls, 1);
}

TEST(CancelCallback, NeverRunsOnceDeregistered) {
  weft::cancel_source source;
  int calls = 0;
  {
    weft::cancel_callback callback{source.token(), [&calls]() noexcept { ++calls; }};
  }
  source.request_cancellation();
  EXPECT_EQ(calls, 0);
}

TEST(CancelCallback, NeverRunsForADefaultToken) {
  int calls = 0;
  weft::cancel_callback callback{weft::cancel_token{}, [&calls]() noexcept { ++calls; }};
  EXPECT_EQ(calls, 0);
}

TEST(CancelCallback, DestructorWaitsForTheCallbackRunningOnAnotherThread) {
  weft::cancel_source source;
  std::atomic<bool> entered{false}, destroying{false}, finished{false};
  std::optional<erased_callback> callback;
  callback.emplace(source.token(), [&] {
    entered.store(true);
    while (!destroying.load()) std::this_thread::yield();
    // A destructor that did not wait would return during these yields and find finished false.
    for (int i = 0; i < 1'000; ++i) std::this_thread::yield();
    finished.store(true);
  });
  std::thread canceller{[&source] { source.request_cancellation(); }};
  ASSERT_TRUE(eventually([&] { return entered.load(); }));
  destroying.store(true);
  callback.reset();
  EXPECT_TRUE(finished.load());
  canceller.join();
}

TEST(CancelCallback, ACallbackThatDestroysItselfDoesNotDeadlock) {
  weft::cancel_source source;
  int calls = 0;
  std::optional<erased_callback> callback;
  callback.emplace(source.token(), [&callback, &calls] {
    ++calls;
    callback.reset();  // destroys this very lambda: nothing of it is touched afterwards
  });
  source.request_cancellation();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(callback.has_value());
}

TEST(CancelCallback, ACallbackThatDeregistersAnotherKeepsThatOneFromRunning) {
  weft::cancel_source source;
  int calls = 0;
  std::optional<erased_callback> a, b;
  // Whichever runs first deregisters the other.
  a.emplace(source.token(), [&b, &calls] {
    ++calls;
    b.reset();
  });
  b.emplace(source.token(), [&a, &calls] {
    ++calls;
    a.reset();
  });
  source.request_cancellation();
  EXPECT_EQ(calls, 1);
}

TEST(CancelCallback, ACallbackMayRequestCancellationOfAnotherSource) {
  weft::cancel_source outer, inner;
  int inner_calls = 0;
  weft::cancel_callback forward{outer.token(),
                                [&inner]() noexcept { inner.request_cancellation(); }};
  weft::cancel_callback count{inner.token(), [&inner_calls]() noexcept { ++inner_calls; }};
  outer.request_cancellation();
  EXPECT_TRUE(inner.is_cancellation_requested());
  EXPECT_EQ(inner_calls, 1);
}

// ---------------------------------------------------------------------------------------------
// std::stop_token

TEST(CancelToken, ObservesAStdStopToken) {
  std::stop_source stop;
  const weft::cancel_token token = stop.get_token();
  EXPECT_TRUE(token.can_be_cancelled());
  EXPECT_FALSE(token.is_cancellation_requested());
  stop.request_stop();
  EXPECT_TRUE(token.is_cancellation_requested());
}

TEST(CancelCallback, FiresWhenAStdStopSourceRequestsStop) {
  std::stop_source stop;
  int calls = 0;
  weft::cancel_callback callback{stop.get_token(), [&calls]() noexcept { ++calls; }};
  EXPECT_EQ(calls, 0);
  stop.request_stop();
  EXPECT_EQ(calls, 1);
}

TEST(CancelToken, AStopTokenWithoutASourceCannotBeCancelled) {
  const weft::cancel_token token = std::stop_token{};
  EXPECT_FALSE(token.can_be_cancelled());
}

// ---------------------------------------------------------------------------------------------
// Cancelling tasks

class Cancel : public ::testing::Test {
 protected:
  weft::runtime rt_{weft::runtime_options{.workers = 1}};
};

TEST_F(Cancel, CancellingATaskWaitingOnAnEventMakesItsJoinThrow) {
  weft::event never;
  rt_.block_on([&never]() -> weft::task<void> {
    auto handle = weft::spawn(wait_then_return(never, 1));
    co_await weft::yield();  // it now waits on the event
    handle.cancel();
    EXPECT_THROW(co_await handle, weft::operation_cancelled);
  });
  EXPECT_FALSE(never.is_set());
}

TEST_F(Cancel, CancellingFromAnotherThreadMakesTheJoinThrow) {
  weft::event never;
  auto handle = rt_.spawn(wait_then_return(never, 1));
  handle.cancel();
  EXPECT_THROW(rt_.block_on(join(handle)), weft::operation_cancelled);
}

TEST_F(Cancel, ATaskCancelledBeforeItStartsNeverRunsItsBody) {
  bool ran = false;
  rt_.block_on([&ran]() -> weft::task<void> {
    auto handle = weft::spawn(set_flag(ran));  // queued on this worker, behind us
    handle.cancel();
    EXPECT_THROW(co_await handle, weft::operation_cancelled);
  });
  EXPECT_FALSE(ran);
}

TEST_F(Cancel, CancellingAFinishedTaskKeepsItsResult) {
  rt_.block_on([]() -> weft::task<void> {
    weft::event go{true};
    auto handle = weft::spawn(wait_then_return(go, 5));
    co_await weft::yield();
    EXPECT_TRUE(handle.is_finished());
    handle.cancel();
    EXPECT_EQ(co_await handle, 5);
  });
}

weft::task<void> record_token(std::optional<weft::cancel_token>& out, weft::event& e) {
  out = co_await weft::this_task::cancel_token();
  co_await e.wait();
}

TEST_F(Cancel, ThisTaskCancelTokenObservesCancellationOfTheTask) {
  rt_.block_on([]() -> weft::task<void> {
    weft::event never;
    std::optional<weft::cancel_token> token;
    auto handle = weft::spawn(record_token(token, never));
    co_await weft::yield();  // it recorded its token and waits
    EXPECT_TRUE(token.has_value());
    const weft::cancel_token observed = token.value_or(weft::cancel_token{});
    EXPECT_TRUE(observed.can_be_cancelled());
    EXPECT_FALSE(observed.is_cancellation_requested());
    handle.cancel();
    EXPECT_TRUE(observed.is_cancellation_requested());
    EXPECT_THROW(co_await handle, weft::operation_cancelled);
  });
}

weft::task<weft::cancel_token> own_token() {
  co_return co_await weft::this_task::cancel_token();
}

weft::task<bool> child_shares_token() {
  const weft::cancel_token mine = co_await weft::this_task::cancel_token();
  const weft::cancel_token childs = co_await own_token();
  co_return mine == childs;
}

TEST_F(Cancel, AnAwaitedTaskSeesItsAwaitersToken) {
  EXPECT_TRUE(rt_.block_on([]() -> weft::task<bool> {
    auto handle = weft::spawn(child_shares_token());
    co_return co_await handle;
  }));
}

weft::task<int> await_child_waiting_on(weft::event& e) {
  co_return co_await wait_then_return(e, 1);
}

TEST_F(Cancel, CancellingATaskCancelsTheTaskItAwaits) {
  rt_.block_on([]() -> weft::task<void> {
    weft::event never;
    auto handle = weft::spawn(await_child_waiting_on(never));
    co_await weft::yield();  // the child now waits on the event
    handle.cancel();
    EXPECT_THROW(co_await handle, weft::operation_cancelled);
  });
}

weft::task<void> yield_forever(std::atomic<int>& yields) {
  for (;;) {
    yields.fetch_add(1);
    co_await weft::yield();
  }
}

TEST_F(Cancel, YieldInACancelledTaskThrowsOperationCancelled) {
  rt_.block_on([]() -> weft::task<void> {
    std::atomic<int> yields{0};
    auto handle = weft::spawn(yield_forever(yields));
    co_await weft::yield();
    EXPECT_GT(yields.load(), 0);  // it has been yielding
    handle.cancel();
    EXPECT_THROW(co_await handle, weft::operation_cancelled);
  });
}

weft::task<bool> catch_then_check_again(weft::event& e) {
  try {
    co_await e.wait();
  } catch (const weft::operation_cancelled&) {
  }
  bool threw_again = false;
  try {
    co_await weft::yield();
  } catch (const weft::operation_cancelled&) {
    threw_again = true;
  }
  co_return threw_again;
}

TEST_F(Cancel, CancellationStaysRequestedAfterBeingCaught) {
  rt_.block_on([]() -> weft::task<void> {
    weft::event never;
    auto handle = weft::spawn(catch_then_check_again(never));
    co_await weft::yield();
    handle.cancel();
    EXPECT_TRUE(co_await handle);
  });
}

// ---------------------------------------------------------------------------------------------
// with_cancellation

TEST_F(Cancel, WithCancellationCancelsWhenItsTokenFires) {
  weft::cancel_source source;
  weft::event never;
  auto handle = rt_.spawn(weft::with_cancellation(source.token(), wait_then_return(never, 1)));
  source.request_cancellation();
  EXPECT_THROW(rt_.block_on(join(handle)), weft::operation_cancelled);
}

TEST_F(Cancel, WithCancellationCancelsWhenAStdStopTokenFires) {
  std::stop_source stop;
  weft::event never;
  auto handle = rt_.spawn(weft::with_cancellation(stop.get_token(), wait_then_return(never, 1)));
  stop.request_stop();
  EXPECT_THROW(rt_.block_on(join(handle)), weft::operation_cancelled);
}

// The form with_cancellation's documentation shows: a std::stop_token made in the await itself.
TEST_F(Cancel, WithCancellationOfAStdStopTokenCanBeAwaitedInOneExpression) {
  std::stop_source stop;
  weft::event go{true};
  const int value = rt_.block_on([&]() -> weft::task<int> {
    co_return co_await weft::with_cancellation(stop.get_token(), wait_then_return(go, 4));
  });
  EXPECT_EQ(value, 4);
}

TEST_F(Cancel, WithCancellationCancelsWhenTheAwaitingTaskIsCancelled) {
  weft::cancel_source never_fired;
  weft::event never;
  auto handle = rt_.spawn(weft::with_cancellation(never_fired.token(), wait_then_return(never, 1)));
  handle.cancel();
  EXPECT_THROW(rt_.block_on(join(handle)), weft::operation_cancelled);
  EXPECT_FALSE(never_fired.is_cancellation_requested());
}

TEST_F(Cancel, WithCancellationReturnsTheValueWhenNothingIsCancelled) {
  weft::cancel_source source;
  weft::event go{true};
  EXPECT_EQ(rt_.block_on(weft::with_cancellation(source.token(), wait_then_return(go, 8))), 8);
}

TEST_F(Cancel, WithAnAlreadyCancelledTokenTheBodyNeverRuns) {
  weft::cancel_source source;
  source.request_cancellation();
  bool ran = false;
  EXPECT_THROW(rt_.block_on(weft::with_cancellation(source.token(), set_flag(ran))),
               weft::operation_cancelled);
  EXPECT_FALSE(ran);
}

TEST_F(Cancel, AMillionSynchronousAwaitsThroughWithCancellationDoNotGrowTheStack) {
  constexpr int iterations = 1'000'000;
  weft::cancel_source source;
  const long long sum = rt_.block_on([&source]() -> weft::task<long long> {
    weft::event go{true};
    long long total = 0;
    for (int i = 0; i < iterations; ++i) {
      auto t = weft::with_cancellation(source.token(), wait_then_return(go, 1));
      total += co_await std::move(t);
    }
    co_return total;
  });
  EXPECT_EQ(sum, iterations);
}

// ---------------------------------------------------------------------------------------------
// Cancelling a join and spawn_blocking

TEST_F(Cancel, ACancelledJoinThrowsWhileTheJoinedTaskKeepsRunning) {
  weft::event go;
  auto target = rt_.spawn(wait_then_return(go, 3));
  rt_.block_on([&]() -> weft::task<void> {
    auto joiner = weft::spawn(join(target));
    co_await weft::yield();  // the joiner now waits for target
    joiner.cancel();
    EXPECT_THROW(co_await joiner, weft::operation_cancelled);
    EXPECT_TRUE(target.valid());
    EXPECT_FALSE(target.is_finished());
    go.set();
    EXPECT_EQ(co_await target, 3);
  });
}

TEST(CancelSpawnBlocking, CancelledWhileQueuedResumesWithOperationCancelledAndNeverRuns) {
  std::atomic<bool> occupying{false}, release{false}, about_to_queue{false}, queued_ran{false};
  weft::runtime rt{weft::runtime_options{.workers = 1, .max_blocking_threads = 1}};
  const set_on_exit unblock{release};
  auto occupy = rt.spawn([&]() -> weft::task<void> {
    co_await weft::spawn_blocking([&] {
      occupying.store(true);
      while (!release.load()) std::this_thread::yield();
    });
  });
  ASSERT_TRUE(eventually([&] { return occupying.load(); }));  // the only blocking thread is busy
  auto queued = rt.spawn([&]() -> weft::task<void> {
    about_to_queue.store(true);
    co_await weft::spawn_blocking([&] { queued_ran.store(true); });
  });
  ASSERT_TRUE(eventually([&] { return about_to_queue.load(); }));
  queued.cancel();
  EXPECT_THROW(rt.block_on(join(queued)), weft::operation_cancelled);
  release.store(true);
  rt.block_on(join(occupy));
  EXPECT_FALSE(queued_ran.load());
}

TEST(CancelSpawnBlocking, CancelledWhileRunningResumesWithOperationCancelledAtOnce) {
  std::atomic<bool> running{false}, release{false}, finished{false};
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  const set_on_exit unblock{release};
  auto handle = rt.spawn([&]() -> weft::task<int> {
    co_return co_await weft::spawn_blocking([&] {
      running.store(true);
      while (!release.load()) std::this_thread::yield();
      finished.store(true);
      return 1;
    });
  });
  ASSERT_TRUE(eventually([&] { return running.load(); }));
  handle.cancel();
  EXPECT_THROW(rt.block_on(join(handle)), weft::operation_cancelled);
  EXPECT_FALSE(finished.load());  // the await did not wait for the function
  release.store(true);
}

}  // namespace
