// The combinators over weft's own awaiters, written as they are used (`latch.wait()`,
// `m.lock()`, `ch.recv()`, `sleep_for(…)`): each moves into a child task before it is awaited.
// Also the heterogeneous when_any (a variant: which child won, with its outcome). Paused time.
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "../../support/paused_time.hpp"

#include <weft/weft.hpp>

namespace {

using namespace std::chrono_literals;
using weft::testing::ms_since;
using weft::testing::paused;

template <class F>
void run(F body) {
  weft::runtime rt{paused()};
  rt.block_on(body());
}

TEST(AnyAwaitable, TimeoutOverLatchWait) {
  run([]() -> weft::task<void> {
    weft::latch ready{1};
    const auto start = weft::clock::now();
    EXPECT_THROW(co_await weft::timeout(2s, ready.wait()), weft::timed_out);
    EXPECT_EQ(ms_since(start), 2000);
    ready.count_down();
    co_await weft::timeout(2s, ready.wait());  // set: returns at once
    EXPECT_EQ(ms_since(start), 2000);
  });
}

TEST(AnyAwaitable, TimeoutOverEventWaitIsReleasedBySet) {
  run([]() -> weft::task<void> {
    weft::event e;
    auto setter = weft::spawn([](weft::event& ev) -> weft::task<void> {
      co_await weft::sleep_for(300ms);
      ev.set();
    }(e));
    const auto start = weft::clock::now();
    co_await weft::timeout(1s, e.wait());
    EXPECT_EQ(ms_since(start), 300);
    co_await std::move(setter);
  });
}

TEST(AnyAwaitable, TimeoutOverMutexLockReturnsTheGuard) {
  run([]() -> weft::task<void> {
    weft::mutex m;
    auto held = co_await m.lock();
    // Locked: the timed lock gives up, holding nothing.
    EXPECT_THROW(co_await weft::timeout(100ms, m.lock()), weft::timed_out);
    EXPECT_TRUE(m.is_locked());
    held.release();
    EXPECT_FALSE(m.is_locked());
    auto guard = co_await weft::timeout(100ms, m.lock());
    EXPECT_TRUE(guard);
    EXPECT_TRUE(m.is_locked());
  });
}

TEST(AnyAwaitable, TimeoutOverSemaphoreAcquire) {
  run([]() -> weft::task<void> {
    weft::semaphore slots{2};
    auto a = co_await weft::timeout(10ms, slots.acquire(2));
    EXPECT_EQ(a.units(), 2u);
    EXPECT_THROW(co_await weft::timeout(10ms, slots.acquire()), weft::timed_out);
    a.release();
    EXPECT_EQ(slots.available(), 2u);  // the timed-out request left nothing taken
  });
}

TEST(AnyAwaitable, TimeoutOverChannelRecvAndSend) {
  run([]() -> weft::task<void> {
    weft::channel<int> ch{1};
    EXPECT_THROW(co_await weft::timeout(50ms, ch.recv()), weft::timed_out);
    co_await weft::timeout(50ms, ch.send(7));
    EXPECT_THROW(co_await weft::timeout(50ms, ch.send(8)), weft::timed_out);  // full
    const std::optional<int> got = co_await weft::timeout(50ms, ch.recv());
    EXPECT_EQ(got, 7);
    EXPECT_EQ(ch.try_recv(), std::nullopt);  // the timed-out send sent nothing
  });
}

TEST(AnyAwaitable, TimeoutOverSleep) {
  run([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    EXPECT_THROW(co_await weft::timeout(100ms, weft::sleep_for(1s)), weft::timed_out);
    EXPECT_EQ(ms_since(start), 100);
    co_await weft::timeout(1s, weft::sleep_for(100ms));
    EXPECT_EQ(ms_since(start), 200);
    co_await weft::with_deadline(start + 1s, weft::sleep_until(start + 300ms));
    EXPECT_EQ(ms_since(start), 300);
  });
}

TEST(AnyAwaitable, TimeoutOverBarrierWatchBroadcastAndGroupJoin) {
  run([]() -> weft::task<void> {
    weft::barrier two{2};
    EXPECT_THROW(co_await weft::timeout(10ms, two.arrive_and_wait()), weft::timed_out);

    weft::watch<int> w{1};
    auto wrx = w.subscribe();
    EXPECT_THROW(co_await weft::timeout(10ms, wrx.changed()), weft::timed_out);
    w.send(2);
    EXPECT_EQ(co_await weft::timeout(10ms, wrx.changed()), 2);

    weft::broadcast<int> b{4};
    auto brx = b.subscribe();
    EXPECT_THROW(co_await weft::timeout(10ms, brx.recv()), weft::timed_out);
    b.send(5);
    EXPECT_EQ(co_await weft::timeout(10ms, brx.recv()), 5);


    weft::task_group group;
    group.spawn([]() -> weft::task<void> { co_await weft::sleep_for(1s); });
    EXPECT_THROW(co_await weft::timeout(10ms, group.join()), weft::timed_out);
    group.cancel();
    co_await group.join();
  });
}

TEST(AnyAwaitable, SpawnBlockingAndYield) {
  run([]() -> weft::task<void> {
    const int v = co_await weft::timeout(10s, weft::spawn_blocking([] { return 42; }));
    EXPECT_EQ(v, 42);
    co_await weft::timeout(1s, weft::yield());
  });
}

TEST(AnyAwaitable, AnAwaiterMovedIntoAVariableThenIntoACombinator) {
  run([]() -> weft::task<void> {
    weft::latch done{1};
    auto wait = done.wait();  // not awaited yet: handed on below
    done.count_down();
    co_await weft::timeout(1s, std::move(wait));
  });
}

TEST(AnyAwaitable, WhenAllOverAwaiters) {
  run([]() -> weft::task<void> {
    weft::latch a{0};
    weft::channel<std::string> ch{1};
    co_await ch.send("x");
    const auto start = weft::clock::now();
    auto [none, msg, slept] = co_await weft::when_all(a.wait(), ch.recv(), weft::sleep_for(50ms));
    EXPECT_EQ(none, std::monostate{});
    EXPECT_EQ(msg, std::optional<std::string>("x"));
    EXPECT_EQ(slept, std::monostate{});
    EXPECT_EQ(ms_since(start), 50);
  });
}

TEST(AnyAwaitable, WithCancellationOverASleep) {
  run([]() -> weft::task<void> {
    weft::cancel_source stop;
    auto canceller = weft::spawn([](weft::cancel_source& s) -> weft::task<void> {
      co_await weft::sleep_for(250ms);
      s.request_cancellation();
    }(stop));
    const auto start = weft::clock::now();
    EXPECT_THROW(co_await weft::with_cancellation(stop.token(), weft::sleep_for(1h)),
                 weft::operation_cancelled);
    EXPECT_EQ(ms_since(start), 250);
    co_await std::move(canceller);
  });
}

TEST(AnyAwaitable, WhenAnyOfDifferentTypesSaysWhichWon) {
  run([]() -> weft::task<void> {
    weft::channel<int> requests{4};
    weft::event stop;
    const auto start = weft::clock::now();

    // Nothing arrives: the timer wins, at 1 s; the recv and the wait are cancelled.
    auto won = co_await weft::when_any(requests.recv(), weft::sleep_for(1s), stop.wait());
    static_assert(
        std::is_same_v<decltype(won), std::variant<weft::outcome<std::optional<int>>,
                                                   weft::outcome<void>, weft::outcome<void>>>);
    EXPECT_EQ(won.index(), 1u);
    EXPECT_TRUE(std::get<1>(won).has_value());
    EXPECT_EQ(ms_since(start), 1000);

    // A request is waiting: the recv wins with its value.
    co_await requests.send(9);
    auto got = co_await weft::when_any(requests.recv(), weft::sleep_for(1s), stop.wait());
    EXPECT_EQ(got.index(), 0u);
    if (got.index() == 0) {
      EXPECT_EQ(std::get<0>(std::move(got)).value(), std::optional<int>(9));
    }

    // stop is set: its wait wins.
    stop.set();
    auto stopped = co_await weft::when_any(requests.recv(), weft::sleep_for(1s), stop.wait());
    EXPECT_EQ(stopped.index(), 2u);
    EXPECT_EQ(ms_since(start), 1000);  // nothing waited for the timers that lost
  });
}

weft::task<int> small(int v) { co_return v; }
weft::task<long> large(long v) {
  co_await weft::sleep_for(10ms);  // finishes after every `small`
  co_return v;
}

TEST(AnyAwaitable, PackChildrenOfConvertibleTypesShareTheirCommonType) {
  run([]() -> weft::task<void> {
    auto first = co_await weft::when_any(small(1), large(2));
    static_assert(std::is_same_v<decltype(first), weft::any_result<long>>);
    EXPECT_EQ(first.index, 0u);
    EXPECT_EQ(std::move(first.result).value(), 1L);
    const long v = co_await weft::first_success(large(3), small(4));
    EXPECT_EQ(v, 4L);
    auto votes = co_await weft::majority(small(5), large(6), small(7));
    EXPECT_EQ(votes.size(), 2u);
  });
}

weft::task<std::string> fails_after(std::chrono::milliseconds d) {
  co_await weft::sleep_for(d);
  throw std::runtime_error("backend down");
}

TEST(AnyAwaitable, WhenAnyOfDifferentTypesKeepsAFailingWinnersException) {
  run([]() -> weft::task<void> {
    auto won = co_await weft::when_any(fails_after(10ms), weft::sleep_for(1s));
    EXPECT_EQ(won.index(), 0u);
    if (won.index() == 0) {
      EXPECT_THROW((void)std::get<0>(std::move(won)).value(), std::runtime_error);
    }
  });
}

TEST(AnyAwaitable, WhenAnyOfDifferentTypesCancelledByTheCaller) {
  run([]() -> weft::task<void> {
    weft::channel<int> ch{1};
    weft::latch never{1};
    auto racer = weft::spawn([](weft::channel<int>& c, weft::latch& l) -> weft::task<void> {
      (void)co_await weft::when_any(c.recv(), l.wait(), weft::sleep_for(1h));
    }(ch, never));
    co_await weft::sleep_for(10ms);
    racer.cancel();
    EXPECT_THROW(co_await std::move(racer), weft::operation_cancelled);
  });
}

TEST(AnyAwaitable, WhenAnyLosersThatNeverStartedAreNotReportedAsUnawaited) {
  run([]() -> weft::task<void> {
    weft::latch ready{0};
    weft::mutex m;
    // The first child finishes while the others start: those that never ran are destroyed
    // with their awaiters unawaited, which is fine (the check would abort the test otherwise).
    for (int i = 0; i < 100; ++i) {
      auto first = co_await weft::when_any(ready.wait(), m.lock(), weft::sleep_for(1s));
      EXPECT_EQ(first.index(), 0u);
    }
    EXPECT_FALSE(m.is_locked());
  });
}

TEST(AnyAwaitable, QuorumAndFirstSuccessOverAwaiters) {
  run([]() -> weft::task<void> {
    weft::latch a{0};
    weft::latch b{0};
    weft::latch never{1};
    auto votes = co_await weft::majority(a.wait(), b.wait(), never.wait());
    EXPECT_EQ(votes.size(), 2u);
    co_await weft::first_success(never.wait(), a.wait());
    weft::channel<int> ch{2};
    co_await ch.send(1);
    const std::optional<int> v = co_await weft::first_success(ch.recv(), ch.recv());
    EXPECT_EQ(v, 1);
  });
}

}  // namespace
