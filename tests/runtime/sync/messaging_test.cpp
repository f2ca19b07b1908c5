// weft::oneshot, weft::watch and weft::broadcast: delivery, errors, a dropped sender, skipped
// intermediate values, lagging receivers, close, cancellation, and cross-worker use.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "../../support/paused_time.hpp"

#include <weft/weft.hpp>

namespace {

using weft::testing::ms_since;
using weft::testing::paused;

using namespace std::chrono_literals;

TEST(Oneshot, DeliversOneValueAcrossWorkers) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  for (int i = 0; i < 500; ++i) {
    auto [tx, rx] = weft::make_oneshot<std::string>();
    auto producer = rt.spawn(weft::co_invoke([tx = std::move(tx), i]() mutable -> weft::task<void> {
      tx.send("value " + std::to_string(i));
      co_return;
    }));
    const std::string got =
        rt.block_on([](weft::oneshot_receiver<std::string> r) -> weft::task<std::string> {
          co_return co_await std::move(r);
        }(std::move(rx)));
    EXPECT_EQ(got, "value " + std::to_string(i));
    producer.detach();
  }
}

TEST(Oneshot, CarriesAnExceptionAndReportsADroppedSender) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto [tx, rx] = weft::make_oneshot<int>();
    tx.fail(std::make_exception_ptr(std::runtime_error("no answer")));
    EXPECT_TRUE(rx.is_ready());
    EXPECT_THROW(co_await std::move(rx), std::runtime_error);
    EXPECT_THROW(tx.send(1), std::logic_error);  // sent already

    auto [tx2, rx2] = weft::make_oneshot<int>();
    auto dropper = weft::spawn(weft::co_invoke([t = std::move(tx2)]() mutable -> weft::task<void> {
      co_await weft::sleep_for(5ms);
      auto gone = std::move(t);  // destroyed unsent at the end of this scope
    }));
    EXPECT_THROW(co_await std::move(rx2), weft::broken_oneshot);
    co_await std::move(dropper);
  });
}

TEST(Oneshot, ACancelledReceiverThrowsOperationCancelled) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    auto [tx, rx] = weft::make_oneshot<int>();
    auto h = weft::spawn([](weft::oneshot_receiver<int> r) -> weft::task<int> {
      co_return co_await std::move(r);
    }(std::move(rx)));
    co_await weft::yield();
    h.cancel();
    EXPECT_THROW(co_await std::move(h), weft::operation_cancelled);
    tx.send(3);  // nobody listens any more: dropped with the state
  });
}

TEST(Watch, ReceiversSeeTheNewestValueAndSkipIntermediateOnes) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::watch<int> w{0};
    auto rx = w.subscribe();
    EXPECT_EQ(rx.get(), 0);
    std::vector<int> seen;
    auto reader = weft::spawn(weft::co_invoke([&]() -> weft::task<void> {
      while (auto v = co_await rx.changed()) seen.push_back(*v);
    }));
    co_await weft::yield();
    w.send(1);
    co_await weft::yield();  // the reader takes 1
    w.send(2);
    w.send(3);  // 2 is overwritten before the reader looks
    co_await weft::yield();
    co_await weft::yield();  // the reader took 3 and waits again
    w.close();
    co_await std::move(reader);
    EXPECT_EQ(seen, (std::vector<int>{1, 3}));
    EXPECT_EQ(w.get(), 3);
  });
}

TEST(Watch, AfterCloseGetStillReadsButChangedEndsAndSendIsRefused) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::watch<int> w{1};
    auto rx = w.subscribe();
    w.send(2);  // rx is behind
    w.close();
    EXPECT_FALSE((co_await rx.changed()).has_value());  // closed: ends, even though behind
    EXPECT_EQ(rx.get(), 2);
    EXPECT_THROW(w.send(3), std::logic_error);
  });
}

TEST(Watch, ACancelledChangedThrows) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::watch<int> w{0};
    auto rx = w.subscribe();
    auto h = weft::spawn(weft::co_invoke([&]() -> weft::task<void> { co_await rx.changed(); }));
    co_await weft::yield();
    h.cancel();
    EXPECT_THROW(co_await std::move(h), weft::operation_cancelled);
  });
}

TEST(Broadcast, EveryReceiverSeesEveryValueInOrder) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  weft::broadcast<int> b{64};
  std::vector<weft::broadcast_receiver<int>> receivers;
  for (int i = 0; i < 3; ++i) receivers.push_back(b.subscribe());
  std::vector<std::vector<int>> got(3);
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group group;
    for (int r = 0; r < 3; ++r) {
      group.spawn(weft::co_invoke([&, r]() -> weft::task<void> {
        while (auto v = co_await receivers[static_cast<std::size_t>(r)].recv()) {
          got[static_cast<std::size_t>(r)].push_back(*v);
        }
      }));
    }
    for (int v = 0; v < 50; ++v) {
      b.send(v);
      if (v % 8 == 0) co_await weft::yield();
    }
    b.close();
    co_await group.join();
  });
  std::vector<int> all(50);
  for (int v = 0; v < 50; ++v) all[static_cast<std::size_t>(v)] = v;
  for (const auto& g : got) EXPECT_EQ(g, all);
  EXPECT_THROW(b.send(1), std::logic_error);
}

TEST(Broadcast, ALaggingReceiverIsToldHowManyItMissed) {
  weft::runtime rt{paused()};
  rt.block_on([]() -> weft::task<void> {
    weft::broadcast<int> b{4};
    auto rx = b.subscribe();
    for (int v = 0; v < 10; ++v) b.send(v);  // keeps 6..9
    try {
      co_await rx.recv();
      ADD_FAILURE() << "no lag reported";
    } catch (const weft::broadcast_lagged& e) {
      EXPECT_EQ(e.missed(), 6u);
    }
    EXPECT_EQ(*co_await rx.recv(), 6);  // goes on from the oldest kept
    auto late = b.subscribe();          // sees only what comes next
    b.send(10);
    EXPECT_EQ(*co_await late.recv(), 10);
    EXPECT_THROW(weft::broadcast<int>{0}, std::invalid_argument);
  });
}

}  // namespace
