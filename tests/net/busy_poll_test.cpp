// runtime_options::busy_poll: a worker with I/O in flight polls its ring before it sleeps, and
// work that shows up meanwhile (a completion, a task from another thread) is taken without a
// sleep; off, it never polls; the option's range; shutdown while a worker polls.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <thread>
#include <utility>

#include <unistd.h>

#include <gtest/gtest.h>

#include "../support/fd_leak.hpp"
#include "../support/io_uring.hpp"

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/join_handle.hpp>
#include <weft/net/unix_stream.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

namespace {

using namespace std::chrono_literals;
using weft::net::unix_stream;

std::uint64_t busy_poll_hits(const weft::runtime& rt) {
  std::uint64_t n = 0;
  for (const auto& w : rt.stats().workers) n += w.busy_poll_hits;
  return n;
}

std::uint64_t parks(const weft::runtime& rt) {
  std::uint64_t n = 0;
  for (const auto& w : rt.stats().workers) n += w.parks;
  return n;
}

// Returns once no worker is resuming a task (after `started`, if given, was set by one): the
// read is then in flight and the workers poll (busy_poll on) or sleep (off). Not timed: it only
// waits for the state.
void wait_until_idle(const weft::runtime& rt, const std::atomic<bool>* started = nullptr) {
  while (started != nullptr && !started->load()) std::this_thread::yield();
  for (;;) {
    bool busy = false;
    for (const auto& w : rt.stats().workers) busy = busy || w.in_task;
    if (!busy) return;
    std::this_thread::yield();
  }
}

weft::task<std::size_t> read_one(unix_stream& s, std::atomic<bool>& started) {
  std::byte b{};
  started = true;
  co_return co_await s.read_some(std::span{&b, 1});
}

// One round: a read waits for a byte that this thread writes once the worker is idle.
std::size_t round_trip(weft::runtime& rt, unix_stream& reader, int writer_fd) {
  std::atomic<bool> started{false};
  auto h = rt.spawn(read_one(reader, started));
  wait_until_idle(rt, &started);
  const char byte = 'x';
  EXPECT_EQ(::write(writer_fd, &byte, 1), 1);
  return rt.block_on(std::move(h));
}

// Every test checks that the descriptors it opened (sockets, rings, eventfds) all came back.
class BusyPoll : public weft::testing::needs_io_uring_no_fd_leaks {};

TEST(BusyPollOption, OutOfRangeIsRefused) {
  EXPECT_THROW(weft::runtime(weft::runtime_options{.workers = 1, .busy_poll = -1us}),
               std::invalid_argument);
  EXPECT_THROW(weft::runtime(weft::runtime_options{.workers = 1, .busy_poll = 1s + 1us}),
               std::invalid_argument);
  weft::runtime rt{weft::runtime_options{.workers = 1, .busy_poll = 1s}};
  EXPECT_EQ(rt.block_on([]() -> weft::task<int> { co_return 7; }()), 7);
}

TEST_F(BusyPoll, ACompletionArrivingWhileTheWorkerPollsIsTakenWithoutSleeping) {
  {
    // A budget of a second: the write below comes within microseconds, so every round is taken
    // by the poll unless this thread is descheduled for a whole second (then that round parks,
    // and the count below still holds for the others).
    weft::runtime rt{weft::runtime_options{.workers = 1, .busy_poll = 1s}};
    auto [a, b] = unix_stream::pair();
    constexpr int rounds = 50;
    const auto hits_before = busy_poll_hits(rt);
    for (int i = 0; i < rounds; ++i) EXPECT_EQ(round_trip(rt, b, a.native_handle()), 1u);
    EXPECT_GE(busy_poll_hits(rt) - hits_before, static_cast<std::uint64_t>(rounds / 2));
  }
}

TEST_F(BusyPoll, OffTheWorkerSleepsInsteadOfPolling) {
  {
    weft::runtime rt{weft::runtime_options{.workers = 1}};  // busy_poll 0: the default
    auto [a, b] = unix_stream::pair();
    constexpr int rounds = 50;
    const auto parks_before = parks(rt);
    for (int i = 0; i < rounds; ++i) EXPECT_EQ(round_trip(rt, b, a.native_handle()), 1u);
    EXPECT_EQ(busy_poll_hits(rt), 0u);
    // Each round the worker ran out of work with the read in flight, and slept.
    EXPECT_GE(parks(rt) - parks_before, static_cast<std::uint64_t>(rounds));
  }
}

TEST_F(BusyPoll, ATaskSpawnedFromAnotherThreadEndsThePoll) {
  {
    weft::runtime rt{weft::runtime_options{.workers = 1, .busy_poll = 1s}};
    auto [a, b] = unix_stream::pair();
    std::atomic<bool> started{false};
    auto reader = rt.spawn(read_one(b, started));  // never gets a byte: the worker keeps polling
    wait_until_idle(rt, &started);
    constexpr int rounds = 20;
    for (int i = 0; i < rounds; ++i) {
      wait_until_idle(rt);
      EXPECT_EQ(rt.block_on([](int k) -> weft::task<int> { co_return k + 1; }(i)), i + 1);
    }
    EXPECT_GE(busy_poll_hits(rt), static_cast<std::uint64_t>(rounds / 2));
    reader.cancel();
    EXPECT_THROW(rt.block_on(std::move(reader)), weft::operation_cancelled);
  }
}

TEST_F(BusyPoll, ShutdownWhileAWorkerPollsEndsThePollAndLosesNothing) {
  for (int i = 0; i < 20; ++i) {
    auto [a, b] = unix_stream::pair();
    weft::runtime rt{weft::runtime_options{.workers = 2, .busy_poll = 1s}};
    std::atomic<bool> started{false};
    rt.spawn(read_one(b, started)).detach();  // in flight when the runtime goes away
    wait_until_idle(rt, &started);
  }  // the runtime stops first (the read is cancelled and its frame freed), then the sockets
}

}  // namespace
