// A combinator whose child's result throws while it is taken (a move constructor that throws,
// bad_alloc) must still cancel and await every other child before it throws: the structured
// guarantee holds on that path too, and the exception from the take is what the caller sees.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "../../support/paused_time.hpp"

#include <weft/weft.hpp>

namespace {

using weft::testing::paused;

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

struct move_failed : std::runtime_error {
  move_failed() : std::runtime_error("fragile: move failed") {}
};

/// A value whose move constructor throws once `armed` is set: a child arms it after its
/// co_return stored the value, so the throw comes when the combinator takes the result.
struct fragile {
  static inline std::atomic<bool> armed{false};
  int v = 0;
  explicit fragile(int x) : v(x) {}
  fragile(fragile&& o) : v(o.v) {
    if (armed.load()) throw move_failed{};
  }
  fragile& operator=(fragile&& o) {
    if (armed.load()) throw move_failed{};
    v = o.v;
    return *this;
  }
  fragile(const fragile&) = delete;
  fragile& operator=(const fragile&) = delete;
};

/// Counts the children that are still running and those that were cancelled.
struct census {
  std::atomic<int> running{0};
  std::atomic<int> cancelled{0};
};

struct running_guard {
  census* c;
  explicit running_guard(census* x) : c(x) { c->running.fetch_add(1); }
  ~running_guard() { c->running.fetch_sub(1); }
};

/// Destroyed after co_return moved the value into the promise: arms the next move.
struct arm_on_exit {
  arm_on_exit() = default;
  arm_on_exit(const arm_on_exit&) = delete;
  arm_on_exit& operator=(const arm_on_exit&) = delete;
  ~arm_on_exit() { fragile::armed.store(true); }
};

weft::task<fragile> fragile_after(census* c, ms d, int v) {
  running_guard g{c};
  co_await weft::sleep_for(d);
  arm_on_exit arm;
  co_return fragile{v};
}

/// A long child: its result is never taken, it is cancelled.
template <class T>
weft::task<T> sleeper(census* c) {
  running_guard g{c};
  try {
    co_await weft::sleep_for(std::chrono::hours{1});
  } catch (const weft::operation_cancelled&) {
    c->cancelled.fetch_add(1);
    throw;
  }
  if constexpr (std::is_same_v<T, int>) {
    co_return 0;
  } else {
    co_return T{0};
  }
}

class CombinatorTakeFailure : public ::testing::Test {
 protected:
  void SetUp() override { fragile::armed.store(false); }
  void TearDown() override { fragile::armed.store(false); }

  /// Awaits `combinator`, expects move_failed, and checks the long children were cancelled and
  /// had stopped by then (no child outlives the call), with the clock still at 10 ms.
  template <class Make>
  void expect_drained(Make make, int long_children) {
    weft::runtime rt{paused()};
    census c;
    rt.block_on([&]() -> weft::task<void> {
      const auto start = weft::clock::now();
      bool threw = false;
      try {
        auto t = make(&c);
        (void)co_await std::move(t);
      } catch (const move_failed&) {
        threw = true;
        EXPECT_EQ(c.running.load(), 0) << "a child outlived the combinator";
        EXPECT_EQ(c.cancelled.load(), long_children);
        EXPECT_EQ(weft::clock::now() - start, 10ms);
      }
      EXPECT_TRUE(threw) << "the exception from taking the result did not propagate";
      // The detached children of the bug would still be sleeping here.
      EXPECT_EQ(rt.stats().live_tasks, 1u);
    });
  }
};

TEST_F(CombinatorTakeFailure, WhenAllPackCancelsAndAwaitsTheSiblings) {
  expect_drained(
      [](census* c) {
        return weft::when_all(fragile_after(c, 10ms, 1), sleeper<int>(c), sleeper<int>(c));
      },
      2);
}

TEST_F(CombinatorTakeFailure, WhenAllRangeCancelsAndAwaitsTheSiblings) {
  expect_drained(
      [](census* c) {
        std::vector<weft::task<fragile>> v;
        v.push_back(fragile_after(c, 10ms, 1));
        v.push_back(sleeper<fragile>(c));
        return weft::when_all(std::move(v));
      },
      1);
}

TEST_F(CombinatorTakeFailure, WhenAllSettledPackCancelsAndAwaitsTheSiblings) {
  expect_drained(
      [](census* c) { return weft::when_all_settled(fragile_after(c, 10ms, 1), sleeper<int>(c)); },
      1);
}

TEST_F(CombinatorTakeFailure, WhenAllSettledRangeCancelsAndAwaitsTheSiblings) {
  expect_drained(
      [](census* c) {
        std::vector<weft::task<fragile>> v;
        v.push_back(fragile_after(c, 10ms, 1));
        v.push_back(sleeper<fragile>(c));
        return weft::when_all_settled(std::move(v));
      },
      1);
}

TEST_F(CombinatorTakeFailure, WhenAnyCancelsAndAwaitsTheLosers) {
  expect_drained(
      [](census* c) {
        std::vector<weft::task<fragile>> v;
        v.push_back(sleeper<fragile>(c));
        v.push_back(fragile_after(c, 10ms, 1));
        v.push_back(sleeper<fragile>(c));
        return weft::when_any(std::move(v));
      },
      2);
}

TEST_F(CombinatorTakeFailure, FirstSuccessCancelsAndAwaitsTheRest) {
  expect_drained(
      [](census* c) {
        std::vector<weft::task<fragile>> v;
        v.push_back(fragile_after(c, 10ms, 1));
        v.push_back(sleeper<fragile>(c));
        return weft::first_success(std::move(v));
      },
      1);
}

TEST_F(CombinatorTakeFailure, QuorumCancelsAndAwaitsTheRest) {
  expect_drained(
      [](census* c) {
        std::vector<weft::task<fragile>> v;
        v.push_back(fragile_after(c, 10ms, 1));
        v.push_back(sleeper<fragile>(c));
        v.push_back(sleeper<fragile>(c));
        return weft::quorum(2, std::move(v));
      },
      2);
}

TEST_F(CombinatorTakeFailure, MapConcurrentCancelsAndAwaitsTheRest) {
  expect_drained(
      [](census* c) {
        std::vector<int> delays{10, 0, 0};
        return weft::map_concurrent(
            std::move(delays),
            [c](int d) { return d > 0 ? fragile_after(c, ms{d}, d) : sleeper<fragile>(c); }, 3);
      },
      2);
}

TEST_F(CombinatorTakeFailure, TimeoutCancelsAndAwaitsItsDeadlineTimer) {
  // The deadline is a child of its own (not counted in the census): live_tasks shows it.
  expect_drained(
      [](census* c) { return weft::timeout(std::chrono::hours{1}, fragile_after(c, 10ms, 1)); }, 0);
}

TEST_F(CombinatorTakeFailure, AFailureThatCameFirstStillWins) {
  // A child failed first (fail-fast): its exception is the one rethrown. A sibling that ignores
  // its cancellation and returns a value later is not taken at all, so its throwing move cannot
  // replace the first failure.
  weft::runtime rt{paused()};
  census c;
  rt.block_on([&]() -> weft::task<void> {
    auto fail = [](census* cc) -> weft::task<fragile> {
      running_guard g{cc};
      co_await weft::sleep_for(5ms);
      throw std::logic_error("first");
    };
    auto stubborn = [](census* cc) -> weft::task<fragile> {
      running_guard g{cc};
      try {
        co_await weft::sleep_for(10ms);
      } catch (const weft::operation_cancelled&) {
        // ignored: it finishes with a value anyway
      }
      arm_on_exit arm;
      co_return fragile{2};
    };
    std::vector<weft::task<fragile>> v;
    v.push_back(fail(&c));
    v.push_back(stubborn(&c));
    try {
      auto t = weft::when_all(std::move(v));
      (void)co_await std::move(t);
      ADD_FAILURE() << "when_all returned";
    } catch (const std::logic_error& e) {
      EXPECT_STREQ(e.what(), "first");
    } catch (const move_failed&) {
      ADD_FAILURE() << "a sibling's result replaced the first failure";
    }
    EXPECT_EQ(c.running.load(), 0);
  });
}

}  // namespace
