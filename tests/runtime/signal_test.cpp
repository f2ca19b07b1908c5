// weft::signal_set and weft::signal_stop, with signals raised at the process: a delivery before
// or during a wait, on a plain thread or a worker; every delivery counted; several sets; the
// replaced disposition restored; bad signals refused; cancellation; a stop source for servers.
#include <weft/io/signal.hpp>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../support/eventually.hpp"
#include "../support/io_uring.hpp"
#include "../support/paused_time.hpp"

#include <weft/weft.hpp>

namespace {

using namespace std::chrono_literals;

class Signals : public weft::testing::needs_io_uring {};

TEST_F(Signals, ADeliveryBeforeTheWaitIsKept) {
  weft::runtime rt{{.workers = 1}};
  weft::signal_set set{SIGUSR1, SIGUSR2};
  ASSERT_EQ(::raise(SIGUSR2), 0);  // handled on this thread, before anyone waits
  EXPECT_EQ(rt.block_on(set.wait()), SIGUSR2);
  EXPECT_EQ(set.poll(), 0);
}

weft::task<void> raise_later(int sig) {
  co_await weft::yield();
  co_await weft::yield();
  ::kill(::getpid(), sig);
}

TEST_F(Signals, ADeliveryDuringTheWaitWakesIt) {
  weft::runtime rt{{.workers = 1}};
  weft::signal_set set{SIGUSR1};
  const int got = rt.block_on([&]() -> weft::task<int> {
    auto [sig, nothing] = co_await weft::when_all(set.wait(), raise_later(SIGUSR1));
    co_return sig;
  });
  EXPECT_EQ(got, SIGUSR1);
}

TEST_F(Signals, ASignalHandledOnAWorkerOrAnotherThreadIsSeen) {
  weft::runtime rt{{.workers = 2}};
  weft::signal_set set{SIGUSR1};
  EXPECT_EQ(rt.block_on([&]() -> weft::task<int> {
    ::raise(SIGUSR1);  // this worker's thread runs the handler
    co_return co_await set.wait();
  }),
            SIGUSR1);
  std::thread other{[] { ::raise(SIGUSR1); }};
  other.join();
  EXPECT_EQ(rt.block_on(set.wait()), SIGUSR1);
}

TEST_F(Signals, EveryDeliveryIsReturnedOnce) {
  weft::runtime rt{{.workers = 1}};
  weft::signal_set set{SIGUSR1, SIGUSR2};
  for (int i = 0; i < 3; ++i) ASSERT_EQ(::raise(SIGUSR1), 0);
  ASSERT_EQ(::raise(SIGUSR2), 0);
  std::vector<int> got;
  for (int i = 0; i < 4; ++i) got.push_back(rt.block_on(set.wait()));
  EXPECT_EQ(got, (std::vector<int>{SIGUSR1, SIGUSR1, SIGUSR1, SIGUSR2}));
  EXPECT_EQ(set.poll(), 0);
}

TEST_F(Signals, EverySetForASignalSeesEachDelivery) {
  weft::runtime rt{{.workers = 1}};
  weft::signal_set a{SIGUSR1};
  weft::signal_set b{SIGUSR1, SIGUSR2};
  ASSERT_EQ(::raise(SIGUSR1), 0);
  EXPECT_EQ(rt.block_on(a.wait()), SIGUSR1);
  EXPECT_EQ(rt.block_on(b.wait()), SIGUSR1);
  EXPECT_EQ(a.poll(), 0);
  EXPECT_EQ(b.poll(), 0);
  weft::signal_set late{SIGUSR1};  // deliveries before a set exists are not its
  EXPECT_EQ(late.poll(), 0);
}

std::atomic<int> custom_calls{0};
extern "C" void custom_handler(int) {
  custom_calls.fetch_add(1);
}

TEST_F(Signals, TheReplacedDispositionComesBackWithTheLastSet) {
  custom_calls.store(0);
  struct sigaction custom = {};
  custom.sa_handler = &custom_handler;
  sigemptyset(&custom.sa_mask);
  struct sigaction original = {};
  ASSERT_EQ(::sigaction(SIGUSR2, &custom, &original), 0);
  {
    weft::signal_set a{SIGUSR2};
    { weft::signal_set b{SIGUSR2}; }
    ASSERT_EQ(::raise(SIGUSR2), 0);  // still ours: a listens
    EXPECT_EQ(custom_calls.load(), 0);
    EXPECT_EQ(a.poll(), SIGUSR2);
  }
  ASSERT_EQ(::raise(SIGUSR2), 0);
  EXPECT_EQ(custom_calls.load(), 1);
  ASSERT_EQ(::sigaction(SIGUSR2, &original, nullptr), 0);
}

TEST(SignalMisuse, SignalsThatCannotBeWaitedForAreRefused) {
  for (int sig : {0, -1, 65, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, 32, 33}) {
    EXPECT_THROW(weft::signal_set({sig}), std::invalid_argument) << sig;
  }
  EXPECT_THROW(weft::signal_set(std::vector<int>{}), std::invalid_argument);
  // A refused list installs nothing: SIGUSR1 keeps its disposition.
  struct sigaction before = {};
  ::sigaction(SIGUSR1, nullptr, &before);
  EXPECT_THROW(weft::signal_set({SIGUSR1, SIGKILL}), std::invalid_argument);
  struct sigaction after = {};
  ::sigaction(SIGUSR1, nullptr, &after);
  EXPECT_EQ(before.sa_handler, after.sa_handler);
}

TEST_F(Signals, AWaitIsCancellable) {
  weft::runtime rt{weft::testing::paused()};
  weft::signal_set set{SIGUSR1};
  EXPECT_THROW(rt.block_on(weft::timeout(1s, set.wait())), weft::timed_out);
  ASSERT_EQ(::raise(SIGUSR1), 0);  // the set is still usable
  EXPECT_EQ(rt.block_on(set.wait()), SIGUSR1);
}

weft::task<void> sleep_an_hour() {
  co_await weft::sleep_for(1h);
}

TEST_F(Signals, ASignalStopCancelsItsTokenAndSaysWhichSignal) {
  weft::runtime rt{{.workers = 2}};
  const int which = rt.block_on([]() -> weft::task<int> {
    weft::signal_stop stop;  // SIGINT, SIGTERM
    auto h = weft::spawn(raise_later(SIGTERM));
    try {
      co_await weft::with_cancellation(stop.token(), sleep_an_hour());
      ADD_FAILURE() << "the sleep was not cancelled";
    } catch (const weft::operation_cancelled&) {
    }
    co_await h;
    co_return stop.signal();
  });
  EXPECT_EQ(which, SIGTERM);
}

TEST_F(Signals, RequestStopCancelsWithoutASignal) {
  weft::runtime rt{{.workers = 1}};
  rt.block_on([]() -> weft::task<void> {
    weft::signal_stop stop{SIGUSR1};
    EXPECT_FALSE(stop.token().is_cancellation_requested());
    stop.request_stop();
    EXPECT_TRUE(stop.token().is_cancellation_requested());
    EXPECT_EQ(stop.signal(), 0);
    co_return;
  });
  // The watcher ended with its signal_stop: the runtime holds no task.
  // Its cancelled read completes on the worker a moment later: a bounded wait for that.
  EXPECT_TRUE(weft::testing::eventually([&] { return rt.stats().live_tasks == 0; }));
}

TEST(SignalMisuse, ASignalStopNeedsAWorkerWithIoUring) {
  EXPECT_THROW(weft::signal_stop{}, std::logic_error);
  weft::runtime rt{{.workers = 1, .io_uring = false}};
  EXPECT_THROW(rt.block_on([]() -> weft::task<void> {
    weft::signal_stop stop;
    co_return;
  }),
               weft::io_unavailable);
  weft::signal_set set{SIGUSR1};
  EXPECT_THROW(rt.block_on(set.wait()), weft::io_unavailable);
}

}  // namespace
