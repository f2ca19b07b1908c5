// quorum and majority with a task_group: the call returns at k successes (or throws once k cannot
// succeed) while the stragglers run on in the caller's group, whose join waits for them; their
// failures fail nothing. Paused time: "durable on 2 of 3, replicated to all", exactly.
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "../../support/paused_time.hpp"

#include <weft/weft.hpp>

namespace {

using namespace std::chrono_literals;
using weft::testing::ms_since;
using weft::testing::paused;

/// Replicas that remember what was written to them (one worker: no lock needed).
struct replicas {
  std::map<int, std::string> stored;
  int writes_cancelled = 0;
};

weft::task<int> write(replicas* r, int replica, std::chrono::milliseconds latency,
                      std::string value, bool fail = false) {
  try {
    co_await weft::sleep_for(latency);
  } catch (const weft::operation_cancelled&) {
    ++r->writes_cancelled;
    throw;
  }
  if (fail) throw std::runtime_error("replica " + std::to_string(replica) + " is down");
  r->stored[replica] = std::move(value);
  co_return replica;
}

// Writes to replicas 0, 1, 2, ... with these latencies (ms); bit i of `down` fails replica i.
// (Integers, not braced lists: g++ 12 rejects a braced list inside a coroutine's expression.)
template <class... Ms>
std::vector<weft::task<int>> writes_of(replicas* r, unsigned down, Ms... latencies_ms) {
  std::vector<weft::task<int>> w;
  int i = 0;
  for (int ms : {static_cast<int>(latencies_ms)...}) {
    w.push_back(write(r, i, std::chrono::milliseconds{ms}, "v", ((down >> i) & 1u) != 0));
    ++i;
  }
  return w;
}

TEST(QuorumFinish, DurableOnTwoOfThreeThenReplicatedToAll) {
  weft::runtime rt{paused()};
  replicas r;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    weft::task_group replication;
    auto acks = co_await weft::quorum(2, writes_of(&r, 0u, 10, 20, 30), replication);
    EXPECT_EQ(ms_since(start), 20);  // returned at the second acknowledgement
    EXPECT_EQ(acks.size(), 2u);
    if (acks.size() == 2) {
      EXPECT_EQ(acks[0].value, 0);
      EXPECT_EQ(acks[1].value, 1);
    }
    EXPECT_EQ(r.stored.size(), 2u);
    EXPECT_EQ(replication.running(), 1u);  // the third write goes on
    co_await replication.join();
    EXPECT_EQ(ms_since(start), 30);
    EXPECT_EQ(r.stored.size(), 3u);  // replicated to all, nothing cancelled
    EXPECT_EQ(r.writes_cancelled, 0);
  });
}

TEST(QuorumFinish, TheCancellingFormStillCancelsTheThird) {
  weft::runtime rt{paused()};
  replicas r;
  rt.block_on([&]() -> weft::task<void> {
    auto acks = co_await weft::quorum(2, writes_of(&r, 0u, 10, 20, 30));
    EXPECT_EQ(acks.size(), 2u);
    EXPECT_EQ(r.stored.size(), 2u);
    EXPECT_EQ(r.writes_cancelled, 1);
  });
}

TEST(QuorumFinish, ImpossibleQuorumThrowsAtOnceAndTheRestStillFinish) {
  weft::runtime rt{paused()};
  replicas r;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    weft::task_group replication;
    try {
      (void)co_await weft::quorum(2, writes_of(&r, 0b011u, 10, 20, 30), replication);
      ADD_FAILURE() << "a quorum of 2 with 2 replicas down succeeded";
    } catch (const weft::aggregate_error& e) {
      EXPECT_EQ(e.errors().size(), 2u);
    }
    EXPECT_EQ(ms_since(start), 20);  // as soon as it became impossible
    co_await replication.join();     // the straggler's success and the failures fail nothing
    EXPECT_EQ(r.stored.size(), 1u);
    EXPECT_EQ(r.writes_cancelled, 0);
  });
}

TEST(QuorumFinish, AFailingStragglerDoesNotFailTheGroup) {
  weft::runtime rt{paused()};
  replicas r;
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group replication;
    auto acks = co_await weft::majority(writes_of(&r, 0b100u, 10, 20, 30), replication);
    EXPECT_EQ(acks.size(), 2u);
    co_await replication.join();  // would rethrow the third replica's failure if it counted
    EXPECT_EQ(r.stored.size(), 2u);
  });
}

TEST(QuorumFinish, ACancelledCallerLeavesTheWritesRunningInTheGroup) {
  weft::runtime rt{paused()};
  replicas r;
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group replication;
    auto caller = weft::spawn(weft::quorum(3, writes_of(&r, 0u, 10, 20, 30), replication));
    co_await weft::sleep_for(15ms);
    caller.cancel();
    EXPECT_THROW(co_await std::move(caller), weft::operation_cancelled);
    co_await replication.join();
    EXPECT_EQ(r.stored.size(), 3u);
    EXPECT_EQ(r.writes_cancelled, 0);
  });
}

TEST(QuorumFinish, ArgumentErrorsAreReportedAsForQuorum) {
  weft::runtime rt{paused()};
  replicas r;
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group g;
    EXPECT_THROW((void)co_await weft::quorum(4, writes_of(&r, 0u, 1, 2, 3), g),
                 std::invalid_argument);
    EXPECT_THROW((void)co_await weft::quorum(0, writes_of(&r, 0u, 1), g), std::invalid_argument);
    EXPECT_EQ(g.running(), 0u);  // nothing was started
  });
}

TEST(QuorumFinish, ManyRoundsOnTwoWorkersLeaveNothingRunning) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group replication;
    for (int round = 0; round < 300; ++round) {
      std::vector<weft::task<int>> w;
      for (int i = 0; i < 5; ++i) {
        w.push_back(weft::co_invoke([i]() -> weft::task<int> {
          co_await weft::yield();
          co_return i;
        }));
      }
      auto acks = co_await weft::quorum(3, std::move(w), replication);
      EXPECT_EQ(acks.size(), 3u);
    }
    co_await replication.join();
  });
  EXPECT_EQ(rt.stats().live_tasks, 0u);
}

}  // namespace
