// weft::channel: buffering and backpressure, rendezvous, FIFO order, close (drain, values handed
// back), try_send/try_recv, cancellation of waiting senders and receivers, move-only values,
// shutdown with waiters, and a many-producer many-consumer stress on two workers.
#include <weft/sync/channel.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "../../support/eventually.hpp"
#include "../../support/paused_time.hpp"

#include <weft/detail/config.hpp>
#include <weft/weft.hpp>

namespace {

using weft::testing::ms_since;
using weft::testing::paused;

using namespace std::chrono_literals;
using weft::testing::eventually;

#if WEFT_TSAN || WEFT_ASAN
constexpr int stress_values = 20'000;
#else
constexpr int stress_values = 200'000;
#endif

TEST(Channel, BuffersUpToItsCapacityThenMakesTheSenderWait) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::channel<int> ch{2};
    co_await ch.send(1);
    co_await ch.send(2);
    EXPECT_EQ(ch.size(), 2u);
    std::atomic<bool> third_sent{false};
    auto sender = weft::spawn(weft::co_invoke([&]() -> weft::task<void> {
      co_await ch.send(3);  // full: waits for room
      third_sent.store(true);
    }));
    co_await weft::sleep_for(1ms);  // everything else is waiting
    EXPECT_FALSE(third_sent.load());
    EXPECT_EQ(*co_await ch.recv(), 1);
    co_await std::move(sender);
    EXPECT_TRUE(third_sent.load());
    EXPECT_EQ(*co_await ch.recv(), 2);
    EXPECT_EQ(*co_await ch.recv(), 3);
    EXPECT_EQ(ch.size(), 0u);
  });
}

TEST(Channel, CapacityZeroIsARendezvous) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::channel<std::string> ch{0};
    EXPECT_FALSE(ch.try_send(std::string{"nobody listens"}));
    auto receiver = weft::spawn(weft::co_invoke([&]() -> weft::task<std::string> {
      auto v = co_await ch.recv();
      co_return std::move(*v);
    }));
    co_await weft::yield();  // the receiver waits
    co_await ch.send("hand to hand");
    EXPECT_EQ(co_await std::move(receiver), "hand to hand");
    EXPECT_EQ(ch.size(), 0u);
  });
}

TEST(Channel, ReceiversAndSendersAreServedInArrivalOrder) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::channel<int> ch{0};
    std::vector<int> got;
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 5; ++i) {
      hs.push_back(weft::spawn(weft::co_invoke([&ch, &got, i]() -> weft::task<void> {
        auto v = co_await ch.recv();
        got.push_back(i * 100 + *v);
      })));
      co_await weft::yield();  // receiver i waits before receiver i + 1
    }
    for (int v = 0; v < 5; ++v) co_await ch.send(v);
    for (auto& h : hs) co_await std::move(h);
    // Receiver i got value i (100 * i + i); they may run in another order after the hand-over.
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<int>{0, 101, 202, 303, 404}));
  });
}

TEST(Channel, CloseLetsReceiversDrainThenEndAndHandsUnsentValuesBack) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::channel<std::unique_ptr<int>> ch{1};
    co_await ch.send(std::make_unique<int>(1));
    auto blocked = weft::spawn(weft::co_invoke([&]() -> weft::task<int> {
      try {
        co_await ch.send(std::make_unique<int>(2));  // full: waits, then the channel closes
        co_return -1;
      } catch (weft::channel_closed& e) {
        co_return *e.take_value<std::unique_ptr<int>>();
      }
    }));
    co_await weft::yield();
    ch.close();
    ch.close();  // idempotent
    EXPECT_TRUE(ch.is_closed());
    EXPECT_EQ(co_await std::move(blocked), 2);  // not lost
    auto first = co_await ch.recv();
    EXPECT_TRUE(first.has_value() && **first == 1);
    EXPECT_FALSE((co_await ch.recv()).has_value());  // closed and drained
    try {
      co_await ch.send(std::make_unique<int>(3));
      ADD_FAILURE() << "sent on a closed channel";
    } catch (weft::channel_closed& e) {
      EXPECT_TRUE(e.has_value());
      EXPECT_THROW(e.take_value<int>(), std::logic_error);  // wrong type
      EXPECT_EQ(*e.take_value<std::unique_ptr<int>>(), 3);
      EXPECT_THROW(e.take_value<std::unique_ptr<int>>(), std::logic_error);  // taken
    }
    std::unique_ptr<int> v = std::make_unique<int>(4);
    EXPECT_FALSE(ch.try_send(v));
    EXPECT_NE(v, nullptr);  // untouched
  });
}

TEST(Channel, CloseWakesWaitingReceiversWithNothing) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  weft::channel<int> ch{4};
  std::atomic<int> waiting{0};
  std::vector<weft::join_handle<bool>> hs;
  for (int i = 0; i < 3; ++i) {
    hs.push_back(rt.spawn(weft::co_invoke([&]() -> weft::task<bool> {
      waiting.fetch_add(1);
      co_return (co_await ch.recv()).has_value();
    })));
  }
  ASSERT_TRUE(eventually([&] { return waiting.load() == 3; }));
  ch.close();  // from a plain thread
  for (auto& h : hs) {
    EXPECT_FALSE(rt.block_on([](weft::join_handle<bool> j) -> weft::task<bool> {
      co_return co_await std::move(j);
    }(std::move(h))));
  }
}

TEST(Channel, TrySendAndTryRecvNeverWait) {
  weft::channel<int> ch{1};  // usable from plain threads, no runtime needed
  EXPECT_FALSE(ch.try_recv().has_value());
  EXPECT_TRUE(ch.try_send(5));
  EXPECT_FALSE(ch.try_send(6));
  EXPECT_EQ(ch.try_recv(), 5);
  EXPECT_EQ(ch.capacity(), 1u);
}

TEST(Channel, ACancelledSenderThrowsAndItsValueIsNotSent) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::channel<int> ch{0};
    auto h = weft::spawn(weft::co_invoke([&]() -> weft::task<void> { co_await ch.send(1); }));
    co_await weft::yield();
    h.cancel();
    EXPECT_THROW(co_await std::move(h), weft::operation_cancelled);
    EXPECT_FALSE(ch.try_recv().has_value());
  });
}

TEST(Channel, ACancelledReceiverThrowsAndTakesNothing) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::channel<int> ch{1};
    auto h = weft::spawn(weft::co_invoke([&]() -> weft::task<void> { co_await ch.recv(); }));
    co_await weft::yield();
    h.cancel();
    EXPECT_THROW(co_await std::move(h), weft::operation_cancelled);
    co_await ch.send(7);
    EXPECT_EQ(ch.try_recv(), 7);  // nobody took it
  });
}

TEST(Channel, CancellationRacingAHandOverLosesNoValue) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  for (int i = 0; i < 2'000; ++i) {
    weft::channel<int> ch{0};
    std::atomic<int> received{-1};
    auto h = rt.spawn(weft::co_invoke([&]() -> weft::task<void> {
      auto v = co_await ch.recv();
      received.store(*v);
    }));
    const bool sent = [&] {
      for (int tries = 0; tries < 1000; ++tries) {
        if (ch.try_send(i)) return true;
        std::this_thread::yield();
      }
      return false;
    }();
    h.cancel();
    try {
      rt.block_on([](weft::join_handle<void> j) -> weft::task<void> {
        co_await std::move(j);
      }(std::move(h)));
    } catch (const weft::operation_cancelled&) {
    }
    // Either the receiver got the value, or nobody did and it was never taken from the sender.
    if (sent) {
      EXPECT_EQ(received.load(), i);
    }
  }
}

TEST(Channel, ShutdownDestroysWaitingTasksCleanly) {
  weft::channel<int> ch{0};
  {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    std::atomic<int> waiting{0};
    for (int i = 0; i < 10; ++i) {
      rt.spawn(weft::co_invoke([&ch, &waiting, i]() -> weft::task<void> {
          waiting.fetch_add(1);
          if (i % 2 == 0) {
            co_await ch.recv();
          } else {
            co_await ch.send(i);
          }
        }))
          .detach();
    }
    ASSERT_TRUE(eventually([&] { return waiting.load() == 10; }));
  }
  EXPECT_EQ(ch.size(), 0u);  // and the channel's destructor finds no waiter left
}

TEST(Channel, ManyProducersAndConsumersOnTwoWorkersReceiveEveryValueOnce) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  constexpr int producers = 4, consumers = 4;
  weft::channel<int> ch{8};
  std::vector<std::atomic<int>> seen(stress_values);
  std::atomic<int> done_producers{0};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    for (int p = 0; p < producers; ++p) {
      group.spawn(weft::co_invoke([&, p]() -> weft::task<void> {
        for (int v = p; v < stress_values; v += producers) co_await ch.send(v);
        if (done_producers.fetch_add(1) + 1 == producers) ch.close();
      }));
    }
    for (int c = 0; c < consumers; ++c) {
      group.spawn(weft::co_invoke([&]() -> weft::task<void> {
        while (auto v = co_await ch.recv()) seen[static_cast<std::size_t>(*v)].fetch_add(1);
      }));
    }
    co_await group.join();
  });
  for (int v = 0; v < stress_values; ++v) {
    ASSERT_EQ(seen[static_cast<std::size_t>(v)].load(), 1) << "value " << v;
  }
}

TEST(Channel, AwaitedOffAWorkerWhenItWouldWaitIsALogicError) {
  weft::channel<int> ch{0};
  auto r = ch.recv();
  EXPECT_FALSE(r.await_ready());  // as co_await does: ready is asked first
  EXPECT_THROW(r.await_suspend(std::noop_coroutine()), std::logic_error);
}

}  // namespace
