// External-loop mode (runtime_options::external_loop): a runtime driven by the caller's own loop
// through event_fd() and run_ready(). The loop here is poll(2), as a host's epoll loop would be.
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <liburing.h>
#include <poll.h>
#include <unistd.h>

#include <weft/weft.hpp>

#include "support/fd_leak.hpp"
#include "support/external_loop.hpp"
#include "support/io_uring.hpp"

namespace {

using namespace std::chrono_literals;

using weft::testing::drive_until;
using weft::testing::readable;

weft::runtime_options external() {
  return weft::testing::external_loop();
}

weft::task<int> answer() {
  co_return 42;
}

weft::task<int> after(std::chrono::milliseconds d, int v) {
  co_await weft::sleep_for(d);
  co_return v;
}

TEST(ExternalLoop, OptionsThatCannotWorkAreRefused) {
  auto o = external();
  o.workers = 2;
  EXPECT_THROW(weft::runtime{o}, std::invalid_argument);
  o = external();
  o.time = weft::time_mode::paused;
  EXPECT_THROW(weft::runtime{o}, std::invalid_argument);
  o = external();
  o.busy_poll = 50us;
  EXPECT_THROW(weft::runtime{o}, std::invalid_argument);
  weft::runtime rt{external()};
  EXPECT_EQ(rt.worker_count(), 1u);
  EXPECT_GE(rt.event_fd(), 0);
  EXPECT_THROW(rt.run_ready(0), std::invalid_argument);
}

TEST(ExternalLoop, AThreadedRuntimeHasNoDescriptorAndRefusesRunReady) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  EXPECT_EQ(rt.event_fd(), -1);
  EXPECT_THROW(rt.run_ready(), std::logic_error);
}

TEST(ExternalLoop, ASpawnFromTheLoopThreadRunsInsideRunReady) {
  weft::runtime rt{external()};
  EXPECT_FALSE(readable(rt, 0));
  const auto loop_thread = std::this_thread::get_id();
  int value = 0;
  std::thread::id ran_on{};
  rt.spawn(answer(), [&](weft::outcome<int> r) {
      value = r.value();
      ran_on = std::this_thread::get_id();
    }).detach();
  EXPECT_EQ(value, 0);  // nothing runs outside run_ready
  EXPECT_TRUE(readable(rt, 0));
  const auto r = rt.run_ready();
  EXPECT_EQ(value, 42);
  EXPECT_EQ(ran_on, loop_thread);
  EXPECT_GE(r.resumed, 1u);
  EXPECT_FALSE(r.more);
  EXPECT_EQ(r.timeout_ms, -1);
  EXPECT_FALSE(r.next_timer.has_value());
  EXPECT_FALSE(readable(rt, 0));  // run_ready consumed the readiness
  EXPECT_FALSE(rt.on_worker_thread());
}

TEST(ExternalLoop, SpawnsFromOtherThreadsWakeTheLoopAndNoneIsLost) {
  weft::runtime rt{external()};
  const auto parks_before = rt.stats().workers[0].parks;
  constexpr int per_thread = 2000;
  std::atomic<int> done{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < 3; ++t) {
    producers.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        rt.spawn(answer(), [&](weft::outcome<int> r) {
            if (r.value() == 42) done.fetch_add(1, std::memory_order_relaxed);
          }).detach();
        if (i % 64 == 0) std::this_thread::yield();  // let the loop catch up and park again
      }
    });
  }
  drive_until(rt, [&] { return done.load() == 3 * per_thread; });
  for (auto& p : producers) p.join();
  EXPECT_EQ(done.load(), 3 * per_thread);
  EXPECT_GT(rt.stats().workers[0].parks, parks_before);  // it went back to the host's wait
}

TEST(ExternalLoop, RunReadyStopsAtItsBudgetAndSaysThereIsMore) {
  weft::runtime rt{external()};
  int done = 0;
  for (int i = 0; i < 10; ++i) {
    rt.spawn(answer(), [&](weft::outcome<int>) { ++done; }).detach();
  }
  const auto r = rt.run_ready(3);
  EXPECT_EQ(r.resumed, 3u);
  EXPECT_EQ(done, 3);
  EXPECT_TRUE(r.more);
  EXPECT_EQ(r.timeout_ms, 0);
  drive_until(rt, [&] { return done == 10; });
}

TEST(ExternalLoop, TimersComeBackAsTheLoopsTimeout) {
  weft::runtime rt{external()};
  int value = 0;
  rt.spawn(after(30ms, 7), [&](weft::outcome<int> r) { value = r.value(); }).detach();
  const auto before = rt.now();
  const auto r = rt.run_ready();
  EXPECT_EQ(value, 0);
  EXPECT_FALSE(r.more);
  ASSERT_TRUE(r.next_timer.has_value());
  EXPECT_GE(*r.next_timer, before + 30ms);
  // Rounded up to whole milliseconds, never past the deadline by more than one.
  EXPECT_GE(r.timeout_ms, 1);
  EXPECT_LE(r.timeout_ms, 31);
  drive_until(rt, [&] { return value == 7; });
  EXPECT_GE(rt.now(), before + 30ms);
}

class ExternalLoopIo : public weft::testing::needs_io_uring_no_fd_leaks {};

weft::task<std::string> read_pipe(int fd) {
  char buf[16] = {};
  const auto r = co_await weft::submit_io(
      [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, buf, sizeof buf, 0); });
  if (r.res < 0) throw std::runtime_error("read failed");
  co_return std::string(buf, static_cast<std::size_t>(r.res));
}

TEST_F(ExternalLoopIo, AnIoCompletionMakesTheDescriptorReadable) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  {
    weft::runtime rt{external()};
    ASSERT_TRUE(rt.io_available()) << rt.io_error();
    std::string got;
    rt.spawn(read_pipe(fds[0]), [&](weft::outcome<std::string> r) { got = r.value(); }).detach();
    auto r = rt.run_ready();  // submits the read, which waits for data
    EXPECT_FALSE(r.more);
    EXPECT_TRUE(got.empty());
    EXPECT_FALSE(readable(rt, 0));
    // From another thread, as a peer would: the kernel completes the read while the loop
    // sleeps in poll(2), and the completion alone must wake it.
    std::thread writer([&] { ASSERT_EQ(::write(fds[1], "ping", 4), 4); });
    EXPECT_TRUE(readable(rt, 10'000));
    writer.join();
    drive_until(rt, [&] { return !got.empty(); });
    EXPECT_EQ(got, "ping");
    EXPECT_GT(rt.stats().workers[0].io_completed, 0u);
  }
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_F(ExternalLoopIo, ShutdownCancelsInFlightIoOnTheLoopThread) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  bool cancelled = false;
  {
    weft::runtime rt{external()};
    rt.spawn(read_pipe(fds[0]), [&](weft::outcome<std::string> r) {
        try {
          r.value();
        } catch (const weft::operation_cancelled&) {
          cancelled = true;
        }
      }).detach();
    rt.run_ready();
    EXPECT_EQ(rt.stats().workers[0].io_in_flight, 1u);
  }  // the read is cancelled and its completion taken before the frame goes
  EXPECT_TRUE(cancelled);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_F(ExternalLoopIo, SeveralOperationsOfOneTaskCompleteThroughTheHostsWait) {
  // A write and a read on a pipe, each completing through the host's wait.
  weft::runtime rt{external()};
  std::string echoed;
  auto echo = [](std::string text) -> weft::task<std::string> {
    int sv[2];
    if (::pipe(sv) != 0) throw std::runtime_error("pipe");
    const auto w = co_await weft::submit_io([&](io_uring_sqe* sqe) {
      io_uring_prep_write(sqe, sv[1], text.data(), static_cast<unsigned>(text.size()), 0);
    });
    char buf[32] = {};
    const auto r = co_await weft::submit_io(
        [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, sv[0], buf, sizeof buf, 0); });
    ::close(sv[0]);
    ::close(sv[1]);
    if (w.res < 0 || r.res < 0) throw std::runtime_error("io");
    co_return std::string(buf, static_cast<std::size_t>(r.res));
  };
  rt.spawn(weft::co_invoke(echo, std::string{"hello"}),
           [&](weft::outcome<std::string> r) { echoed = r.value(); })
      .detach();
  drive_until(rt, [&] { return !echoed.empty(); });
  EXPECT_EQ(echoed, "hello");
}

TEST(ExternalLoop, BlockOnWorksFromOtherThreadsAndRefusesTheLoopThread) {
  weft::runtime rt{external()};
  EXPECT_THROW(rt.block_on(answer()), std::logic_error);
  std::atomic<int> got{0};
  std::atomic<bool> finished{false};
  std::thread caller([&] {
    got = rt.block_on([&]() -> weft::task<int> {
      const int v = co_await after(1ms, 5);
      finished = true;  // the loop's condition: the caller wakes after the task ended
      co_return v;
    });
  });
  drive_until(rt, [&] { return finished.load(); });
  caller.join();
  EXPECT_EQ(got.load(), 5);
}

TEST(ExternalLoop, OnlyTheConstructingThreadDrivesAndShutsDown) {
  weft::runtime rt{external()};
  std::thread other([&] {
    EXPECT_THROW(rt.run_ready(), std::logic_error);
    EXPECT_THROW(rt.shutdown(), std::logic_error);
  });
  other.join();
  // A task cannot drive its own runtime either.
  bool refused = false;
  rt.spawn([&]() -> weft::task<void> {
      try {
        rt.run_ready();
      } catch (const std::logic_error&) {
        refused = true;
      }
      co_return;
    }).detach();
  drive_until(rt, [&] { return refused; });
  rt.shutdown();
  const auto r = rt.run_ready();  // after shutdown: nothing, and no error
  EXPECT_EQ(r.resumed, 0u);
  EXPECT_THROW(rt.spawn(answer()).detach(), std::logic_error);
}

TEST(ExternalLoopDeathTest, DestroyingItOnAnotherThreadEndsTheProcessSayingWhy) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto rt = std::make_unique<weft::runtime>(external());
        std::thread other([&] { rt.reset(); });
        other.join();
      },
      "shuts down on the thread that drives it");
}

TEST(ExternalLoop, DumpsWorkFromTheLoopThreadAndFromOthers) {
  weft::runtime rt{external()};
  weft::event gate;
  bool finished = false;
  rt.spawn([&]() -> weft::task<void> {
      co_await gate.wait();
      finished = true;
    }, weft::spawn_options{.name = "waiter"}).detach();
  rt.run_ready();
  // Between two run_ready calls the worker runs nothing: the loop thread reads it at once.
  auto here = rt.dump_tasks();
  ASSERT_EQ(here.size(), 1u);
  EXPECT_EQ(here[0].name, "waiter");
  // Another thread's dump waits for the loop to pause the worker in run_ready.
  std::atomic<std::size_t> dumped{0};
  std::atomic<bool> dump_done{false};
  std::thread other([&] {
    dumped = rt.dump_tasks().size();
    dump_done = true;
  });
  // The dump's request wakes the loop; its end is the other thread's, which signals nothing.
  while (!dump_done.load()) {
    rt.run_ready();
    readable(rt, 1);
  }
  other.join();
  EXPECT_EQ(dumped.load(), 1u);
  gate.set();  // from the loop thread, outside run_ready: a foreign wake-up
  drive_until(rt, [&] { return finished; });
}

TEST(ExternalLoop, ADumpOnTheLoopThreadWhileAnotherThreadsDumpWaitsDoesNotDeadlock) {
  weft::runtime rt{external()};
  weft::event gate;
  rt.spawn([&]() -> weft::task<void> { co_await gate.wait(); }).detach();
  rt.run_ready();
  std::thread other([&] { EXPECT_EQ(rt.dump_tasks().size(), 1u); });
  // The other dump asks the worker to pause, which writes the descriptor; the loop thread then
  // dumps too instead of calling run_ready, while the other one holds the dump lock.
  EXPECT_TRUE(readable(rt, 10'000));
  EXPECT_EQ(rt.dump_tasks().size(), 1u);
  other.join();
  gate.set();
  rt.run_ready();
}

TEST(ExternalLoop, WorksWithoutIoUring) {
  auto o = external();
  o.io_uring = false;
  weft::runtime rt{o};
  EXPECT_FALSE(rt.io_available());
  std::atomic<int> done{0};
  std::thread producer([&] {
    for (int i = 0; i < 100; ++i) {
      rt.spawn(after(1ms, 1), [&](weft::outcome<int> r) { done += r.value(); }).detach();
    }
  });
  drive_until(rt, [&] { return done.load() == 100; });
  producer.join();
}

TEST(ExternalLoop, ATaskGroupWaitingInsideRunReadyWakesOnItsChildren) {
  // A task_group's destructor waits for its children synchronously (helping the worker): inside
  // run_ready that wait sleeps on the same descriptor, and must still see the child's timer.
  weft::runtime rt{external()};
  bool done = false;
  rt.spawn([&]() -> weft::task<void> {
      {
        weft::task_group g;
        // Shielded: the group's cancellation does not end the sleep, so the wait is real.
        g.spawn([]() -> weft::task<void> { co_await weft::shielded(after(2ms, 1)); });
      }
      done = true;
      co_return;
    }).detach();
  drive_until(rt, [&] { return done; });
}

TEST(ExternalLoop, DescriptorsAndTasksStayFlatAcrossRuntimes) {
  const int fds_before = weft::testing::open_fd_count();
  for (int i = 0; i < 50; ++i) {
    weft::runtime rt{external()};
    int done = 0;
    rt.spawn(after(0ms, 1), [&](weft::outcome<int>) { ++done; }).detach();
    drive_until(rt, [&] { return done == 1; });
    EXPECT_EQ(rt.stats().live_tasks, 0u);
  }
  EXPECT_EQ(weft::testing::open_fd_count(), fds_before);
}

}  // namespace
