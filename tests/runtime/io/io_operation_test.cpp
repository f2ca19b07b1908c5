// The reactor and submit_io: completions, batching, a full SQ, CQ overflow, cancellation of
// operations in flight (same worker, other threads, shutdown), the io_uring-off path, and
// cross-thread wake-ups under stress.
#include <weft/io/io_operation.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <liburing.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "../../support/eventually.hpp"
#include "../../support/io_uring.hpp"
#include "io/reactor.hpp"

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/detail/config.hpp>
#include <weft/io/file.hpp>
#include <weft/io/io_unavailable.hpp>
#include <weft/join_handle.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/sync/event.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>
#include <weft/yield.hpp>

namespace {

using namespace std::chrono_literals;
using weft::testing::eventually;

#if WEFT_TSAN || WEFT_ASAN
constexpr int wake_rounds = 20'000;
#else
constexpr int wake_rounds = 1'000'000;
#endif

weft::task<int> nop() {
  auto r = co_await weft::submit_io([](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); });
  co_return r.res;
}

/// Spawns `count` tasks that each await a NOP, all queued in one turn of the worker; returns how
/// many completed with result 0.
weft::task<int> concurrent_nops(int count) {
  std::vector<weft::join_handle<int>> hs;
  for (int i = 0; i < count; ++i) hs.push_back(weft::spawn(nop()));
  int n = 0;
  for (auto& h : hs) n += (co_await std::move(h)) == 0 ? 1 : 0;
  co_return n;
}

weft::task<void> join(weft::join_handle<void> h) {
  co_await std::move(h);
}

/// A pipe whose ends close with the test.
struct pipe_pair {
  int read_end = -1, write_end = -1;
  explicit pipe_pair(int flags = 0) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | flags) != 0) throw std::runtime_error("pipe2");
    read_end = fds[0];
    write_end = fds[1];
  }
  ~pipe_pair() {
    if (read_end >= 0) ::close(read_end);
    if (write_end >= 0) ::close(write_end);
  }
};

weft::task<std::size_t> read_some(int fd, std::atomic<bool>* started = nullptr) {
  char buf[16];
  if (started != nullptr) started->store(true);
  auto r = co_await weft::submit_io(
      [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, buf, sizeof buf, 0); });
  if (r.res < 0) throw std::system_error(-r.res, std::generic_category(), "read");
  co_return static_cast<std::size_t>(r.res);
}

std::uint64_t total(const weft::runtime& rt, std::uint64_t weft::worker_stats::*field) {
  std::uint64_t n = 0;
  for (const auto& w : rt.stats().workers) n += w.*field;
  return n;
}

class IoOperation : public weft::testing::needs_io_uring {};

TEST_F(IoOperation, ANopCompletesWithItsResult) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  ASSERT_TRUE(rt.io_available()) << rt.io_error();
  EXPECT_EQ(rt.block_on(nop()), 0);
  EXPECT_GE(total(rt, &weft::worker_stats::io_completed), 1u);
}

TEST_F(IoOperation, ACompletionResumesTheTaskOnTheWorkerThatOwnsTheRing) {
  // Completions go to the owning worker's own ready list, which nobody steals: with two busy
  // workers a task would otherwise often continue on the other one.
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  const int moved = rt.block_on([]() -> weft::task<int> {
    std::vector<weft::join_handle<int>> hs;
    for (int i = 0; i < 400; ++i) {
      hs.push_back(weft::spawn([]() -> weft::task<int> {
        int changed = 0;
        for (int k = 0; k < 20; ++k) {
          const auto before = std::this_thread::get_id();
          co_await nop();
          changed += std::this_thread::get_id() != before ? 1 : 0;
          co_await weft::yield();  // may move: that is allowed between operations
        }
        co_return changed;
      }()));
    }
    int n = 0;
    for (auto& h : hs) n += co_await std::move(h);
    co_return n;
  });
  EXPECT_EQ(moved, 0);
}

TEST_F(IoOperation, TheResultOfAFailedOperationIsItsNegativeErrno) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  const int res = rt.block_on([]() -> weft::task<int> {
    char buf[4];
    auto r = co_await weft::submit_io(
        [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, -1, buf, sizeof buf, 0); });
    co_return r.res;
  });
  EXPECT_EQ(res, -EBADF);
}

TEST_F(IoOperation, SubmissionsAreBatched) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  EXPECT_EQ(rt.block_on(concurrent_nops(64)), 64);
  const auto submitted = total(rt, &weft::worker_stats::io_submitted);
  const auto enters = total(rt, &weft::worker_stats::io_enters);
  EXPECT_GE(submitted, 64u);
  // 64 SQEs queued by 64 tasks in one turn of the worker go in a handful of io_uring_enter calls.
  EXPECT_LE(enters, submitted / 4) << "enters " << enters << ", SQEs " << submitted;
}

TEST_F(IoOperation, AFullSubmissionQueueIsSubmittedToMakeRoom) {
  weft::runtime rt{weft::runtime_options{.workers = 1, .io_ring_entries = 4}};
  EXPECT_EQ(rt.block_on(concurrent_nops(300)), 300);
  EXPECT_GT(total(rt, &weft::worker_stats::sq_full), 0u);
}

TEST_F(IoOperation, AnOverflowingCompletionQueueLosesNothing) {
  // A 2-entry SQ has an 8-entry CQ; 2,000 operations queued in one turn overflow it many times.
  weft::runtime rt{weft::runtime_options{.workers = 1, .io_ring_entries = 2}};
  EXPECT_EQ(rt.block_on(concurrent_nops(2000)), 2000);
  EXPECT_GT(total(rt, &weft::worker_stats::cq_overflows), 0u);
}

TEST_F(IoOperation, AReadOnAPipeCompletesWhenDataArrives) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  pipe_pair p;
  std::atomic<bool> started{false};
  auto h = rt.spawn(read_some(p.read_end, &started));
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  ASSERT_EQ(::write(p.write_end, "hello", 5), 5);
  EXPECT_EQ(rt.block_on([](weft::join_handle<std::size_t> h) -> weft::task<std::size_t> {
    co_return co_await std::move(h);
  }(std::move(h))),
            5u);
}

TEST_F(IoOperation, CancellingAReadInFlightOnTheSameWorkerWaitsForTheKernel) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  pipe_pair p;
  rt.block_on([&]() -> weft::task<void> {
    auto h = weft::spawn(read_some(p.read_end));
    co_await weft::yield();  // the read is queued
    co_await weft::yield();  // and submitted by the worker between turns
    const auto before = weft::clock::now();
    h.cancel();
    EXPECT_THROW(co_await std::move(h), weft::operation_cancelled);
    (void)before;
  });
  // The cancelled read's own CQE arrived before its task resumed (the buffer was released), and
  // it consumed nothing: a new read gets the byte written now.
  EXPECT_GE(total(rt, &weft::worker_stats::io_completed), 1u);
  ASSERT_EQ(::write(p.write_end, "x", 1), 1);
  EXPECT_EQ(rt.block_on(read_some(p.read_end)), 1u);
}

TEST_F(IoOperation, CancellingAReadInFlightFromAnotherThread) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  for (int i = 0; i < 300; ++i) {
    pipe_pair p;
    std::atomic<bool> started{false};
    auto h = rt.spawn([](int fd, std::atomic<bool>& s) -> weft::task<void> {
      co_await read_some(fd, &s);
    }(p.read_end, started));
    if (i % 3 != 0) {
      ASSERT_TRUE(eventually([&] { return started.load(); }));
    }
    if (i % 5 == 0) std::this_thread::yield();
    h.cancel();
    EXPECT_THROW(rt.block_on(join(std::move(h))), weft::operation_cancelled);
  }
}

TEST_F(IoOperation, CancelledBeforeSubmissionSubmitsNothing) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::cancel_source src;
  src.request_cancellation();
  EXPECT_THROW(rt.block_on(weft::with_cancellation(src.token(), nop())), weft::operation_cancelled);
  EXPECT_EQ(total(rt, &weft::worker_stats::io_completed), 0u);
}

TEST_F(IoOperation, ShutdownWithReadsInFlightCancelsThemAndDestroysTheirTasks) {
  std::atomic<int> destroyed{0};
  struct on_destroy {
    std::atomic<int>* n;
    ~on_destroy() { n->fetch_add(1); }
  };
  pipe_pair p;
  {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    std::atomic<int> started{0};
    for (int i = 0; i < 20; ++i) {
      rt.spawn(weft::co_invoke([&, fd = p.read_end]() -> weft::task<void> {
          on_destroy guard{&destroyed};
          char buf[8];
          started.fetch_add(1);
          co_await weft::submit_io(
              [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, buf, sizeof buf, 0); });
        }))
          .detach();
    }
    ASSERT_TRUE(eventually([&] { return started.load() == 20; }));
  }
  EXPECT_EQ(destroyed.load(), 20);
  // Nothing reads the pipe any more: the data stays in it.
  ASSERT_EQ(::write(p.write_end, "y", 1), 1);
  char c = 0;
  EXPECT_EQ(::read(p.read_end, &c, 1), 1);
  EXPECT_EQ(c, 'y');
}

TEST_F(IoOperation, AnFdOpenedForATaskThatIsGoneIsClosed) {
  // Shutdown while openat operations complete: whichever way each ends (delivered to the task,
  // completed during the drain, or cancelled), no descriptor outlives the runtime.
  auto count_fds = [] {
    int n = 0;
    for (int fd = 0; fd < 4096; ++fd) n += ::fcntl(fd, F_GETFD) != -1 ? 1 : 0;
    return n;
  };
  const int before = count_fds();
  {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    for (int i = 0; i < 50; ++i) {
      rt.spawn(weft::co_invoke([]() -> weft::task<void> {
          auto r = co_await weft::submit_io(
              [](io_uring_sqe* sqe) {
                io_uring_prep_openat(sqe, AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC, 0);
              },
              weft::io_returns::fd);
          // Keep the fd only while sleeping: the runtime shuts down meanwhile.
          weft::file f = weft::file::adopt(r.res, "/dev/null");
          co_await weft::sleep_for(1h);
        }))
          .detach();
    }
  }
  EXPECT_EQ(count_fds(), before);
}

TEST(IoWithoutRing, WithIoUringOffTasksAndTimersRunAndIoThrowsACleanError) {
  weft::runtime rt{weft::runtime_options{.workers = 2, .io_uring = false}};
  EXPECT_FALSE(rt.io_available());
  EXPECT_NE(rt.io_error().find("runtime_options::io_uring = false"), std::string::npos);
  try {
    rt.block_on(nop());
    FAIL() << "I/O succeeded without io_uring";
  } catch (const weft::io_unavailable& e) {
    EXPECT_EQ(e.code().value(), ENOTSUP);
    EXPECT_NE(std::string{e.what()}.find("tasks and timers"), std::string::npos) << e.what();
  }
  // Timers and cross-thread wake-ups still work (futex parking with a timeout).
  const auto start = std::chrono::steady_clock::now();
  rt.block_on([]() -> weft::task<void> { co_await weft::sleep_for(2ms); });
  EXPECT_GE(std::chrono::steady_clock::now() - start, 2ms);
  EXPECT_THROW(rt.block_on(weft::read_file("/dev/null")), weft::io_unavailable);
}

TEST(IoWithoutRing, PausedTimeWithIoUringOffStillJumps) {
  weft::runtime rt{weft::runtime_options{.time = weft::time_mode::paused, .io_uring = false}};
  const auto before = rt.now();
  rt.block_on([]() -> weft::task<void> { co_await weft::sleep_for(1h); });
  EXPECT_EQ(rt.now() - before, 1h);
}

/// In a child process: makes io_uring_setup fail with EPERM, as Docker's default seccomp profile
/// does, then checks that a runtime still runs tasks and timers and that I/O throws a clean error.
/// Returns the child's exit code: 0 if all held, a step number otherwise.
int run_under_seccomp_refusal() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 10;
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return 11;
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  if (rt.io_available()) return 1;
  const std::string why = rt.io_error();
  if (why.find("EPERM") == std::string::npos || why.find("seccomp") == std::string::npos) return 2;
  const auto start = std::chrono::steady_clock::now();
  rt.block_on([]() -> weft::task<void> { co_await weft::sleep_for(1ms); });
  if (std::chrono::steady_clock::now() - start < 1ms) return 3;
  try {
    rt.block_on(nop());
    return 4;
  } catch (const weft::io_unavailable& e) {
    if (e.code().value() != EPERM) return 5;
  }
  return 0;
}

TEST(IoWithoutRing, AKernelThatRefusesIoUringLeavesTasksAndTimersRunning) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(run_under_seccomp_refusal());
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died: status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "failed at step " << WEXITSTATUS(status);
}

TEST(IoWithoutRing, RefusalMessagesNameTheCauseAndTheFix) {
  using weft::detail::describe_io_uring_error;
  const auto eperm = describe_io_uring_error(EPERM);
  EXPECT_NE(eperm.find("EPERM"), std::string::npos);
  EXPECT_NE(eperm.find("seccomp"), std::string::npos);
  EXPECT_NE(eperm.find("kernel.io_uring_disabled"), std::string::npos);
  const auto enosys = describe_io_uring_error(ENOSYS);
  EXPECT_NE(enosys.find("ENOSYS"), std::string::npos);
  EXPECT_NE(enosys.find("CONFIG_IO_URING"), std::string::npos);
  const auto enomem = describe_io_uring_error(ENOMEM);
  EXPECT_NE(enomem.find("ulimit -l"), std::string::npos);
  EXPECT_NE(describe_io_uring_error(EMFILE).find("ulimit -n"), std::string::npos);
}

TEST(IoMisuse, AwaitedOutsideARuntimeThrowsLogicError) {
  auto op = weft::submit_io([](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); });
  EXPECT_FALSE(op.await_ready());  // as co_await does: ready is asked first
  EXPECT_THROW(op.await_suspend(std::noop_coroutine()), std::logic_error);
}

TEST(IoMisuse, ARingSizeThatIsNotAPowerOfTwoIsRefused) {
  EXPECT_THROW(weft::runtime(weft::runtime_options{.io_ring_entries = 100}), std::invalid_argument);
  EXPECT_THROW(weft::runtime(weft::runtime_options{.io_ring_entries = 0}), std::invalid_argument);
}

TEST(WakeUps, APlainThreadWakesAParkedWorkerEveryTime) {
  // Each round the worker has nothing to do and parks in its ring; the plain thread's event.set()
  // must end that wait (eventfd), or the test hangs.
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::event ping, pong;
  std::atomic<int> rounds{0};
  auto h = rt.spawn(weft::co_invoke([&]() -> weft::task<void> {
    for (int i = 0; i < wake_rounds; ++i) {
      co_await ping.wait();
      ping.reset();
      rounds.store(i + 1, std::memory_order_release);
    }
  }));
  for (int i = 0; i < wake_rounds; ++i) {
    ping.set();
    while (rounds.load(std::memory_order_acquire) != i + 1) {
      // Spin briefly, then give the CPU away: with 2 vCPUs the worker needs one.
    }
  }
  rt.block_on(join(std::move(h)));
  EXPECT_EQ(rounds.load(), wake_rounds);
  (void)pong;
}

TEST(WakeUps, WorkersWakeEachOtherThroughTheirRings) {
  // A task spawns a task and then holds its worker until the new task ran: only the other
  // worker, woken from its ring wait by this one (IORING_OP_MSG_RING), can run it.
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  constexpr int rounds = wake_rounds / 50;
  const int ran = rt.block_on([]() -> weft::task<int> {
    int n = 0;
    for (int i = 0; i < rounds; ++i) {
      std::atomic<bool> done{false};
      auto a = weft::spawn(weft::co_invoke([&done]() -> weft::task<void> {
        done.store(true, std::memory_order_release);
        co_return;
      }));
      // Spawning b moves a from the LIFO slot to the stealable queue and notifies a worker.
      auto b = weft::spawn([]() -> weft::task<void> { co_return; }());
      while (!done.load(std::memory_order_acquire)) {
      }
      co_await std::move(a);
      co_await std::move(b);
      ++n;
    }
    co_return n;
  });
  std::uint64_t stolen = 0;
  for (const auto& w : rt.stats().workers) stolen += w.tasks_stolen;
  EXPECT_GE(stolen, static_cast<std::uint64_t>(rounds));
  EXPECT_EQ(ran, rounds);
}

}  // namespace
