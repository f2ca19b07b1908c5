// weft::flow::event_processor under paused time (exact instants): lane shares, batching by size
// and time, the three backpressure policies, retries and the breaker diverting to the dead-letter
// queue, replay, the metrics watch, drain at shutdown, cancellation mid-batch, misuse; then many
// producers on two real workers. The counter identity is checked after every scenario.
#include <weft/flow/event_processor.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/time/sleep.hpp>
#include <weft/yield.hpp>

#include "support/paused_time.hpp"

namespace {

using namespace std::chrono_literals;
namespace flow = weft::flow;
namespace wr = weft::resilience;
using weft::testing::ms_since;

// A destination that records every batch it is given (the instant, the ids and the lanes), takes
// `delay` per attempt, and fails while `failing` says so.
struct recorder {
  struct batch {
    long at_ms = 0;
    std::vector<std::uint64_t> ids;
    std::vector<flow::priority> lanes;
    std::vector<int> payloads;
  };
  std::mutex mutex;
  std::vector<batch> batches;  // every attempt
  std::vector<batch> acked;    // attempts that returned normally
  weft::clock::time_point start = weft::clock::now();
  weft::clock::duration delay{};
  std::function<bool()> failing = [] { return false; };
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};

  std::function<weft::task<void>(std::span<const flow::envelope<int>>)> deliver() {
    return [this](std::span<const flow::envelope<int>> events) { return take(events); };
  }

  weft::task<void> take(std::span<const flow::envelope<int>> events) {
    batch b;
    b.at_ms = ms_since(start);
    for (const auto& e : events) {
      b.ids.push_back(e.id);
      b.lanes.push_back(e.level);
      b.payloads.push_back(e.payload);
    }
    {
      std::lock_guard lock{mutex};
      batches.push_back(b);
    }
    const int now = ++in_flight;
    int seen = max_in_flight.load();
    while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
    }
    if (delay > weft::clock::duration::zero()) {
      try {
        co_await weft::sleep_for(delay);
      } catch (...) {
        --in_flight;
        throw;
      }
    }
    --in_flight;
    if (failing()) throw std::runtime_error("destination down");
    std::lock_guard lock{mutex};
    acked.push_back(std::move(b));
  }

  std::size_t acked_events() {
    std::lock_guard lock{mutex};
    std::size_t n = 0;
    for (auto& b : acked) n += b.ids.size();
    return n;
  }
};

flow::destination_options<int> to(recorder& r, std::string name, std::size_t batch_size = 100,
                                  weft::clock::duration flush = 10ms) {
  flow::destination_options<int> d;
  d.name = std::move(name);
  d.deliver = r.deliver();
  d.batch_size = batch_size;
  d.flush_interval = flush;
  d.retry.max_attempts = 1;
  return d;
}

void expect_identity(const flow::processor_metrics& m) {
  EXPECT_TRUE(m.consistent()) << "accepted " << m.accepted << " delivered " << m.delivered
                              << " dead-lettered " << m.dead_lettered << " shed " << m.shed
                              << " backlog " << m.backlog;
}

void expect_final(flow::event_processor<int>& p) {
  const auto m = p.snapshot();
  expect_identity(m);
  EXPECT_EQ(m.backlog, 0u);
  EXPECT_TRUE(m.stopped);
  EXPECT_EQ(m.queued, (std::array<std::size_t, flow::priority_count>{}));
}

TEST(EventProcessor, BatchesFlushAtSizeAndAtTheFlushInterval) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  flow::event_processor<int> p{{.destinations = {to(r, "a", 100, 10ms)}}};
  rt.block_on([&]() -> weft::task<void> {
    r.start = weft::clock::now();
    weft::task_group g;
    g.spawn(p.run());
    const auto a = p.destination("a");
    for (int i = 0; i < 250; ++i) co_await p.submit(i, a);
    co_await weft::sleep_for(3ms);
    for (int i = 250; i < 260; ++i) co_await p.submit(i, a);  // accepted at 3 ms
    co_await weft::sleep_for(50ms);
    p.stop();
    co_await g.join();
  }());
  ASSERT_EQ(r.acked.size(), 3u);
  // Two full batches at once; the 50 left flush when the oldest of them has waited 10 ms, and
  // take the 10 that came at 3 ms with them (they are within the batch size).
  EXPECT_EQ(r.acked[0].ids.size(), 100u);
  EXPECT_EQ(r.acked[0].at_ms, 0);
  EXPECT_EQ(r.acked[1].ids.size(), 100u);
  EXPECT_EQ(r.acked[1].at_ms, 0);
  EXPECT_EQ(r.acked[2].ids.size(), 60u);
  EXPECT_EQ(r.acked[2].at_ms, 10);
  expect_final(p);
}

TEST(EventProcessor, APartialBatchWaitsExactlyTheFlushIntervalFromItsOldestEvent) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  flow::event_processor<int> p{{.destinations = {to(r, "a", 100, 25ms)}}};
  rt.block_on([&]() -> weft::task<void> {
    r.start = weft::clock::now();
    weft::task_group g;
    g.spawn(p.run());
    const auto a = p.destination("a");
    co_await weft::sleep_for(5ms);
    co_await p.submit(1, a);  // oldest at 5 ms: flushes at 30 ms
    co_await weft::sleep_for(20ms);
    co_await p.submit(2, a);  // rides along
    co_await weft::sleep_for(20ms);  // 45 ms
    co_await p.submit(3, a);  // a new partial batch: flushes at 70 ms
    co_await weft::sleep_for(40ms);
    p.stop();
    co_await g.join();
  }());
  ASSERT_EQ(r.acked.size(), 2u);
  EXPECT_EQ(r.acked[0].at_ms, 30);
  EXPECT_EQ(r.acked[0].payloads, (std::vector<int>{1, 2}));
  EXPECT_EQ(r.acked[1].at_ms, 70);
  EXPECT_EQ(r.acked[1].payloads, (std::vector<int>{3}));
  expect_final(p);
}

TEST(EventProcessor, LaneWeightsGiveTheirSharesAndNoLaneStarves) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  r.delay = 1ms;
  // Batches of 10 (not a multiple of the weights' sum, 15): the shares must hold across batch
  // boundaries.
  flow::event_processor<int> p{{.destinations = {to(r, "a", 10, 1ms)}, .max_backlog = 10'000}};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group g;
    const auto a = p.destination("a");
    // Fill every lane before the processor starts, low first: critical still comes first.
    for (int lane = 3; lane >= 0; --lane) {
      for (int i = 0; i < 1000; ++i) {
        co_await p.submit(lane * 10'000 + i, a, static_cast<flow::priority>(lane));
      }
    }
    g.spawn(p.run());
    co_await weft::sleep_for(30ms);  // 30 batches of 10
    p.stop();
    co_await g.join();
  }());
  ASSERT_GE(r.acked.size(), 30u);
  std::array<int, 4> share{};
  for (std::size_t b = 0; b < 30; ++b) {
    for (auto lane : r.acked[b].lanes) ++share[static_cast<std::size_t>(lane)];
  }
  // 300 events = 20 rounds of 8 + 4 + 2 + 1.
  EXPECT_EQ(share, (std::array<int, 4>{160, 80, 40, 20}));
  // The first batch: eight critical, then two high (the round goes on in the next batch).
  std::vector<flow::priority> first(8, flow::priority::critical);
  first.push_back(flow::priority::high);
  first.push_back(flow::priority::high);
  EXPECT_EQ(r.acked[0].lanes, first);
  // Within a lane, FIFO.
  std::map<flow::priority, int> last;
  for (const auto& b : r.acked) {
    for (std::size_t i = 0; i < b.payloads.size(); ++i) {
      auto it = last.find(b.lanes[i]);
      if (it != last.end()) {
        EXPECT_LT(it->second, b.payloads[i]);
      }
      last[b.lanes[i]] = b.payloads[i];
    }
  }
  // The drain delivered the rest: nothing lost, nothing dead-lettered.
  EXPECT_EQ(r.acked_events(), 4000u);
  expect_final(p);
}

TEST(EventProcessor, BlockPolicyHoldsProducersUntilThereIsRoom) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  r.delay = 10ms;
  flow::event_processor<int> p{{.destinations = {to(r, "a", 10, 1ms)}, .max_backlog = 25}};
  std::vector<long> accepted_at;
  rt.block_on([&]() -> weft::task<void> {
    r.start = weft::clock::now();
    weft::task_group g;
    g.spawn(p.run());
    const auto a = p.destination("a");
    for (int i = 0; i < 60; ++i) {
      co_await p.submit(i, a);
      accepted_at.push_back(ms_since(r.start));
      EXPECT_LE(p.snapshot().backlog, 25u);
    }
    p.stop();
    co_await g.join();
  }());
  // 25 go in at once; each delivered batch of 10 (every 10 ms) makes room for 10 more.
  EXPECT_EQ(accepted_at[24], 0);
  EXPECT_EQ(accepted_at[25], 10);
  EXPECT_EQ(accepted_at[34], 10);
  EXPECT_EQ(accepted_at[35], 20);
  EXPECT_EQ(r.acked_events(), 60u);
  const auto m = p.snapshot();
  EXPECT_EQ(m.rejected, 0u);
  EXPECT_EQ(m.shed, 0u);
  expect_final(p);
}

TEST(EventProcessor, RejectPolicyThrowsBacklogFullAndKeepsTheEvent) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  r.delay = 10ms;
  flow::event_processor<int> p{{.destinations = {to(r, "a", 10, 1ms)},
                                .max_backlog = 5,
                                .policy = flow::backpressure::reject}};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group g;
    g.spawn(p.run());
    const auto a = p.destination("a");
    for (int i = 0; i < 5; ++i) co_await p.submit(i, a);
    bool threw = false;
    try {
      co_await p.submit(5, a);
    } catch (const flow::backlog_full& e) {
      threw = e.max_backlog() == 5;
    }
    EXPECT_TRUE(threw);
    int kept = 6;
    EXPECT_EQ(p.try_submit(kept, a), flow::submit_status::full);
    EXPECT_EQ(kept, 6);
    co_await weft::sleep_for(20ms);  // delivered: room again
    EXPECT_EQ(p.try_submit(kept, a), flow::submit_status::accepted);
    p.stop();
    co_await g.join();
  }());
  const auto m = p.snapshot();
  EXPECT_EQ(m.rejected, 2u);
  EXPECT_EQ(m.accepted, 6u);
  EXPECT_EQ(m.delivered, 6u);
  expect_final(p);
}

TEST(EventProcessor, ShedPolicyShedsTheLowestLaneFirstAndCountsIt) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  std::vector<std::pair<int, flow::priority>> shed;
  flow::event_processor<int> p{{.destinations = {to(r, "a", 100, 10ms), to(r, "b", 100, 10ms)},
                                .max_backlog = 6,
                                .policy = flow::backpressure::shed_lowest,
                                .on_shed = [&](const flow::envelope<int>& e) {
                                  shed.emplace_back(e.payload, e.level);
                                }}};
  rt.block_on([&]() -> weft::task<void> {
    const auto a = p.destination("a");
    const auto b = p.destination("b");
    // Not running yet: everything stays queued.
    co_await p.submit(1, a, flow::priority::low);
    co_await p.submit(2, b, flow::priority::low);
    co_await p.submit(3, b, flow::priority::low);
    co_await p.submit(4, a, flow::priority::medium);
    co_await p.submit(5, a, flow::priority::high);
    co_await p.submit(6, a, flow::priority::critical);
    // Full. A high event sheds the newest low one of the destination with the most low ones.
    EXPECT_EQ(p.try_submit(7, a, flow::priority::high), flow::submit_status::accepted);
    EXPECT_EQ(p.try_submit(8, a, flow::priority::high), flow::submit_status::accepted);
    EXPECT_EQ(p.try_submit(9, a, flow::priority::high), flow::submit_status::accepted);
    // Lows gone; a medium one goes before anything higher.
    EXPECT_EQ(p.try_submit(10, a, flow::priority::critical), flow::submit_status::accepted);
    // Only high and critical left: a low event is shed itself.
    EXPECT_EQ(p.try_submit(11, b, flow::priority::low), flow::submit_status::shed);
    EXPECT_EQ(p.snapshot().backlog, 6u);
    weft::task_group g;
    g.spawn(p.run());
    p.stop();
    co_await g.join();
  }());
  // Ties between destinations go to the first.
  EXPECT_EQ(shed, (std::vector<std::pair<int, flow::priority>>{{3, flow::priority::low},
                                                              {1, flow::priority::low},
                                                              {2, flow::priority::low},
                                                              {4, flow::priority::medium},
                                                              {11, flow::priority::low}}));
  const auto m = p.snapshot();
  EXPECT_EQ(m.shed, 5u);
  EXPECT_EQ(m.accepted, 11u);
  EXPECT_EQ(m.delivered, 6u);
  EXPECT_EQ(m.dropped(), 5u);
  expect_final(p);
}

TEST(EventProcessor, ExhaustedRetriesGoToTheDeadLetterQueueWithReasonAndAttempts) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  r.failing = [] { return true; };
  auto d = to(r, "a", 3, 1ms);
  d.retry.max_attempts = 3;
  d.retry.backoff = wr::backoff::fixed(5ms);
  flow::event_processor<int> p{{.destinations = {d}}};
  rt.block_on([&]() -> weft::task<void> {
    r.start = weft::clock::now();
    weft::task_group g;
    g.spawn(p.run());
    for (int i = 0; i < 3; ++i) co_await p.submit(i, p.destination("a"));
    co_await weft::sleep_for(100ms);
    p.stop();
    co_await g.join();
  }());
  // One batch, three attempts 5 ms apart.
  ASSERT_EQ(r.batches.size(), 3u);
  EXPECT_EQ(r.batches[0].at_ms, 0);
  EXPECT_EQ(r.batches[1].at_ms, 5);
  EXPECT_EQ(r.batches[2].at_ms, 10);
  auto dead = p.dead_letters().take();
  ASSERT_EQ(dead.size(), 3u);
  for (auto& e : dead) {
    EXPECT_EQ(e.reason, flow::dead_letter_reason::retries_exhausted);
    EXPECT_EQ(e.attempts, 3u);
    EXPECT_EQ(e.destination, "a");
    ASSERT_TRUE(e.error);
    EXPECT_THROW(std::rethrow_exception(e.error), std::runtime_error);
  }
  EXPECT_STREQ(flow::to_string(dead[0].reason), "retries exhausted");
  const auto m = p.snapshot();
  EXPECT_EQ(m.dead_lettered, 3u);
  EXPECT_EQ(m.destinations[0].attempts, 3u);
  EXPECT_EQ(m.destinations[0].failed_attempts, 3u);
  EXPECT_DOUBLE_EQ(m.error_rate, 1.0);
  expect_final(p);
}

TEST(EventProcessor, AFailureThatIsNotRetriedIsDeadLetteredAfterOneAttempt) {
  weft::runtime rt{weft::testing::paused()};
  flow::event_processor<int> p{{.destinations = {{
      .name = "a",
      .deliver = [](std::span<const flow::envelope<int>>) -> weft::task<void> {
        throw std::logic_error("malformed batch");  // default_retryable excludes logic_error
        co_return;
      },
      .retry = {.max_attempts = 5},
  }}}};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group g;
    g.spawn(p.run());
    co_await p.submit(1, p.destination("a"));
    p.stop();
    co_await g.join();
  }());
  auto dead = p.dead_letters().take();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].reason, flow::dead_letter_reason::not_retryable);
  EXPECT_EQ(dead[0].attempts, 1u);
  expect_final(p);
}

TEST(EventProcessor, AnOpenBreakerHoldsBatchesThenDeadLettersThemAfterItsDeadline) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  r.failing = [] { return true; };
  auto d = to(r, "a", 1, 1ms);
  d.breaker.window = wr::window::consecutive(2);
  d.breaker.minimum_calls = 2;
  d.breaker.open_duration = 100ms;
  d.open_deadline = 50ms;
  flow::event_processor<int> p{{.destinations = {d}}};
  rt.block_on([&]() -> weft::task<void> {
    r.start = weft::clock::now();
    weft::task_group g;
    g.spawn(p.run());
    const auto a = p.destination("a");
    for (int i = 0; i < 4; ++i) co_await p.submit(i, a);
    co_await weft::sleep_for(1s);
    p.stop();
    co_await g.join();
  }());
  auto dead = p.dead_letters().take();
  ASSERT_EQ(dead.size(), 4u);
  // Batches 0 and 1 failed (and opened the breaker at 0 ms, for 100 ms): retries exhausted.
  EXPECT_EQ(dead[0].reason, flow::dead_letter_reason::retries_exhausted);
  EXPECT_EQ(dead[0].attempts, 1u);
  EXPECT_EQ(dead[1].reason, flow::dead_letter_reason::retries_exhausted);
  // Batch 2 found it open at 0 ms and waited for it until its 50 ms deadline: breaker open,
  // never attempted.
  EXPECT_EQ(dead[2].reason, flow::dead_letter_reason::breaker_open);
  EXPECT_EQ(dead[2].attempts, 0u);
  EXPECT_EQ(dead[2].event.payload, 2);
  EXPECT_STREQ(flow::to_string(dead[2].reason), "breaker open");
  // Batch 3 found it open at 50 ms and probed when it half-opened at 100 ms; the trial failed,
  // and with one attempt allowed its retries were exhausted.
  EXPECT_EQ(dead[3].reason, flow::dead_letter_reason::retries_exhausted);
  EXPECT_EQ(dead[3].attempts, 1u);
  std::vector<long> attempts_at;
  for (auto& b : r.batches) attempts_at.push_back(b.at_ms);
  EXPECT_EQ(attempts_at, (std::vector<long>{0, 0, 100}));
  const auto m = p.snapshot();
  EXPECT_EQ(m.destinations[0].breaker, wr::breaker_state::open);
  expect_final(p);
}

TEST(EventProcessor, ADestinationThatRecoversBeforeTheDeadlineGetsItsHeldBatches) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  bool down = true;
  r.failing = [&] { return down; };
  auto d = to(r, "a", 1, 1ms);
  d.breaker.window = wr::window::consecutive(1);
  d.breaker.minimum_calls = 1;
  d.breaker.open_duration = 100ms;
  d.open_deadline = 10s;
  flow::event_processor<int> p{{.destinations = {d}}};
  rt.block_on([&]() -> weft::task<void> {
    r.start = weft::clock::now();
    weft::task_group g;
    g.spawn(p.run());
    const auto a = p.destination("a");
    for (int i = 0; i < 4; ++i) co_await p.submit(i, a);
    co_await weft::sleep_for(150ms);
    down = false;  // back: the probe at 200 ms succeeds
    co_await weft::sleep_for(1s);
    p.stop();
    co_await g.join();
  }());
  // Batch 0 opened the breaker at 0 ms; batch 1 probed at 100 ms and failed (open again until
  // 200 ms); batches 2 and 3 waited and went through at 200 ms.
  EXPECT_EQ(p.dead_letters().size(), 2u);
  EXPECT_EQ(r.acked_events(), 2u);
  ASSERT_FALSE(r.acked.empty());
  EXPECT_EQ(r.acked.front().at_ms, 200);
  EXPECT_EQ(r.acked.front().payloads, std::vector<int>{2});
  expect_final(p);
}

TEST(EventProcessor, ReplayHandsDeadLettersBackWithTheirIds) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  bool down = true;
  r.failing = [&] { return down; };
  flow::event_processor<int> p{{.destinations = {to(r, "a", 10, 1ms)}}};
  std::set<std::uint64_t> first_ids;
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group g;
    g.spawn(p.run());
    for (int i = 0; i < 10; ++i) co_await p.submit(i, p.destination("a"));
    co_await weft::sleep_for(10ms);
    EXPECT_EQ(p.dead_letters().size(), 10u);
    for (auto id : r.batches.at(0).ids) first_ids.insert(id);
    down = false;
    EXPECT_EQ(p.replay(4), 4u);
    EXPECT_EQ(p.dead_letters().size(), 6u);
    EXPECT_EQ(p.replay(), 6u);
    co_await weft::sleep_for(10ms);
    p.stop();
    co_await g.join();
  }());
  std::set<std::uint64_t> delivered;
  for (auto& b : r.acked) {
    for (auto id : b.ids) delivered.insert(id);
  }
  EXPECT_EQ(delivered, first_ids);
  const auto m = p.snapshot();
  EXPECT_EQ(m.replayed, 10u);
  EXPECT_EQ(m.accepted, 20u);  // each event accepted twice
  EXPECT_EQ(m.dead_lettered, 10u);
  EXPECT_EQ(m.delivered, 10u);
  expect_final(p);
}

TEST(EventProcessor, ReplayStopsAtAFullBacklogAndKeepsTheRest) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  bool down = true;
  r.failing = [&] { return down; };
  flow::event_processor<int> p{{.destinations = {to(r, "a", 10, 1ms)}, .max_backlog = 10}};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group g;
    g.spawn(p.run());
    for (int i = 0; i < 10; ++i) co_await p.submit(i, p.destination("a"));
    co_await weft::sleep_for(10ms);
    for (int i = 10; i < 17; ++i) co_await p.submit(i, p.destination("a"));  // not yet flushed
    EXPECT_EQ(p.replay(), 3u);  // room for three
    EXPECT_EQ(p.dead_letters().size(), 7u);
    auto rest = p.dead_letters().take();
    EXPECT_EQ(rest.front().event.payload, 3);  // oldest first, order kept
    p.dead_letters().put_back(std::move(rest));
    down = false;
    p.stop();
    co_await g.join();
  }());
  expect_final(p);
  EXPECT_EQ(p.dead_letters().size(), 7u);
}

TEST(EventProcessor, MetricsWatchPublishesWindowedLatencyErrorRateAndBreakerState) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  bool down = false;
  r.failing = [&] { return down; };
  auto d = to(r, "a", 10, 20ms);
  d.breaker.window = wr::window::consecutive(1);
  d.breaker.minimum_calls = 1;
  d.breaker.open_duration = 10s;
  d.open_deadline = 100ms;
  flow::event_processor<int> p{{.destinations = {d}, .metrics_interval = 1s}};
  std::vector<flow::processor_metrics> seen;
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group g;
    g.spawn(p.run());
    g.spawn([&]() -> weft::task<void> {
      auto rx = p.metrics().subscribe();
      while (auto m = co_await rx.changed()) seen.push_back(*m);
      // Closed: the final snapshot stays readable.
      seen.push_back(rx.get());
    });
    const auto a = p.destination("a");
    // Second 1: 25 events, two full batches at once (latency 0), 5 flushed at 20 ms.
    for (int i = 0; i < 25; ++i) co_await p.submit(i, a);
    co_await weft::sleep_for(1500ms);
    // Second 2: the destination is down: one failed attempt opens the breaker.
    down = true;
    for (int i = 0; i < 10; ++i) co_await p.submit(i, a);
    co_await weft::sleep_for(1s);
    p.stop();
    co_await g.join();
  }());
  ASSERT_GE(seen.size(), 3u);
  const auto& first = seen[0];
  EXPECT_EQ(first.delivered, 25u);
  // p99 is the upper bound of 20 ms's bucket (at most 12.5 % above); the average is exact.
  EXPECT_GE(first.latency_p99, 20ms);
  EXPECT_LE(first.latency_p99, 22500us);
  EXPECT_EQ(first.latency_avg, 4ms);  // (20 × 0 + 5 × 20 ms) / 25
  EXPECT_EQ(first.error_rate, 0.0);
  EXPECT_EQ(first.destinations[0].breaker, wr::breaker_state::closed);
  const auto& second = seen[1];
  EXPECT_EQ(second.delivered, 25u);
  EXPECT_EQ(second.dead_lettered, 10u);
  EXPECT_EQ(second.latency_p99, weft::clock::duration::zero());  // nothing delivered in it
  EXPECT_EQ(second.error_rate, 1.0);
  EXPECT_EQ(second.destinations[0].breaker, wr::breaker_state::open);
  EXPECT_TRUE(seen.back().stopped);
  expect_identity(seen.back());
  expect_final(p);
}

TEST(EventProcessor, DrainDeliversWhatIsBufferedWithoutWaitingForTheInterval) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  flow::event_processor<int> p{{.destinations = {to(r, "a", 100, 1h)}}};
  rt.block_on([&]() -> weft::task<void> {
    r.start = weft::clock::now();
    weft::task_group g;
    g.spawn(p.run());
    for (int i = 0; i < 42; ++i) co_await p.submit(i, p.destination("a"));
    co_await weft::sleep_for(5ms);
    p.stop();
    bool refused = false;
    try {
      co_await p.submit(99, p.destination("a"));
    } catch (const flow::processor_stopped&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
    int v = 100;
    EXPECT_EQ(p.try_submit(v, p.destination("a")), flow::submit_status::stopped);
    co_await g.join();
  }());
  ASSERT_EQ(r.acked.size(), 1u);
  EXPECT_EQ(r.acked[0].ids.size(), 42u);
  EXPECT_EQ(r.acked[0].at_ms, 5);
  expect_final(p);
}

TEST(EventProcessor, WhatTheGracePeriodCannotDeliverIsDeadLetteredAsShutdown) {
  weft::runtime rt{weft::testing::paused()};
  recorder slow;
  slow.delay = 1s;
  recorder quick;
  auto d = to(slow, "slow", 10, 1ms);
  flow::event_processor<int> p{
      {.destinations = {d, to(quick, "quick", 10, 1ms)}, .drain_grace = 2500ms}};
  weft::cancel_source stop;
  long returned_at = 0;
  rt.block_on([&]() -> weft::task<void> {
    slow.start = weft::clock::now();
    weft::task_group g;
    g.spawn(p.run(stop.token()));
    for (int i = 0; i < 50; ++i) co_await p.submit(i, p.destination("slow"));
    for (int i = 0; i < 50; ++i) co_await p.submit(i, p.destination("quick"));
    co_await weft::sleep_for(1ms);
    stop.request_cancellation();
    co_await g.join();
    returned_at = ms_since(slow.start);
  }());
  // Slow: batches at 0, 1 s, 2 s; the third is cut at 2.5 s, and two were never started.
  EXPECT_EQ(returned_at, 2501);
  EXPECT_EQ(slow.acked_events(), 20u);
  EXPECT_EQ(quick.acked_events(), 50u);
  auto dead = p.dead_letters().take();
  ASSERT_EQ(dead.size(), 30u);
  for (auto& e : dead) {
    EXPECT_EQ(e.reason, flow::dead_letter_reason::shutdown);
    EXPECT_EQ(e.destination, "slow");
  }
  EXPECT_STREQ(flow::to_string(dead[0].reason), "shutdown");
  // The batch cut mid-delivery had one attempt; the ones never started had none.
  EXPECT_EQ(std::count_if(dead.begin(), dead.end(), [](auto& e) { return e.attempts == 1; }), 10);
  EXPECT_EQ(std::count_if(dead.begin(), dead.end(), [](auto& e) { return e.attempts == 0; }), 20);
  expect_final(p);
}

TEST(EventProcessor, CancellingRunMidBatchLosesNothing) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  r.delay = 100ms;
  auto d = to(r, "a", 10, 1ms);
  d.concurrency = 3;
  flow::event_processor<int> p{{.destinations = {d}}};
  bool cancelled = false;
  rt.block_on([&]() -> weft::task<void> {
    auto run = weft::spawn(p.run());
    for (int i = 0; i < 100; ++i) co_await p.submit(i, p.destination("a"));
    co_await weft::sleep_for(150ms);  // batches 0-2 delivered at 100 ms, 3-5 in delivery
    run.cancel();
    try {
      co_await run;
    } catch (const weft::operation_cancelled&) {
      cancelled = true;
    }
  }());
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(r.max_in_flight.load(), 3);
  EXPECT_EQ(r.acked_events(), 30u);
  const auto m = p.snapshot();
  EXPECT_EQ(m.delivered, 30u);
  EXPECT_EQ(m.dead_lettered, 70u);
  for (auto& e : p.dead_letters().take()) {
    EXPECT_EQ(e.reason, flow::dead_letter_reason::shutdown);
  }
  expect_final(p);
}

TEST(EventProcessor, AtLeastOnceABatchIsAcknowledgedOnlyAfterItsDeliveryCompleted) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  int calls = 0;
  r.failing = [&] { return ++calls == 1; };  // the first attempt reaches it, then fails
  auto d = to(r, "a", 5, 1ms);
  d.retry.max_attempts = 2;
  d.retry.backoff = wr::backoff::fixed(10ms);
  flow::event_processor<int> p{{.destinations = {d}}};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group g;
    g.spawn(p.run());
    for (int i = 0; i < 5; ++i) co_await p.submit(i, p.destination("a"));
    co_await weft::sleep_for(5ms);
    EXPECT_EQ(p.snapshot().delivered, 0u);  // attempted, failed, not acknowledged
    EXPECT_EQ(p.snapshot().backlog, 5u);
    co_await weft::sleep_for(10ms);
    EXPECT_EQ(p.snapshot().delivered, 5u);
    p.stop();
    co_await g.join();
  }());
  // The destination saw the batch twice (a duplicate it can drop by id).
  ASSERT_EQ(r.batches.size(), 2u);
  EXPECT_EQ(r.batches[0].ids, r.batches[1].ids);
  expect_final(p);
}

TEST(EventProcessor, ConcurrencyBoundsBatchesInDelivery) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  r.delay = 10ms;
  auto d = to(r, "a", 10, 1ms);
  d.concurrency = 4;
  flow::event_processor<int> p{{.destinations = {d}}};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group g;
    g.spawn(p.run());
    for (int i = 0; i < 200; ++i) co_await p.submit(i, p.destination("a"));
    p.stop();
    co_await g.join();
  }());
  EXPECT_EQ(r.max_in_flight.load(), 4);
  EXPECT_EQ(r.acked_events(), 200u);
  expect_final(p);
}

TEST(EventProcessor, TheGracePeriodCutsTheLastBatchInDelivery) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  r.delay = 10s;
  flow::event_processor<int> p{{.destinations = {to(r, "a", 10, 1ms)}, .drain_grace = 2500ms}};
  long returned_at = 0;
  rt.block_on([&]() -> weft::task<void> {
    r.start = weft::clock::now();
    weft::task_group g;
    g.spawn(p.run());
    for (int i = 0; i < 10; ++i) co_await p.submit(i, p.destination("a"));
    co_await weft::sleep_for(1ms);  // the batch is in delivery, nothing is queued
    p.stop();
    co_await g.join();
    returned_at = ms_since(r.start);
  }());
  EXPECT_EQ(returned_at, 2501);
  auto dead = p.dead_letters().take();
  ASSERT_EQ(dead.size(), 10u);
  EXPECT_EQ(dead[0].reason, flow::dead_letter_reason::shutdown);
  EXPECT_EQ(dead[0].attempts, 1u);
  EXPECT_EQ(p.snapshot().destinations[0].failed_attempts, 0u);  // cut, not failed
  expect_final(p);
}

TEST(EventProcessor, CancellingRunStopsTheLastBatchInDeliveryAtOnce) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  r.delay = 10s;
  flow::event_processor<int> p{{.destinations = {to(r, "a", 10, 1ms)}}};
  long returned_at = 0;
  rt.block_on([&]() -> weft::task<void> {
    r.start = weft::clock::now();
    auto run = weft::spawn(p.run());
    for (int i = 0; i < 10; ++i) co_await p.submit(i, p.destination("a"));
    co_await weft::sleep_for(1ms);
    run.cancel();
    try {
      co_await run;
    } catch (const weft::operation_cancelled&) {
    }
    returned_at = ms_since(r.start);
  }());
  EXPECT_EQ(returned_at, 1);
  EXPECT_EQ(p.dead_letters().size(), 10u);
  expect_final(p);
}

TEST(EventProcessor, AZeroGraceDeadLettersEverythingNotDeliveredAtOnce) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  r.delay = 5ms;
  flow::event_processor<int> p{{.destinations = {to(r, "a", 10, 1ms)},
                                .drain_grace = weft::clock::duration::zero()}};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group g;
    g.spawn(p.run());
    for (int i = 0; i < 100; ++i) co_await p.submit(i, p.destination("a"));
    co_await weft::sleep_for(12ms);  // two batches delivered, the third in delivery
    p.stop();
    co_await g.join();
  }());
  EXPECT_EQ(r.acked_events(), 20u);
  EXPECT_EQ(p.dead_letters().size(), 80u);
  expect_final(p);
}

TEST(EventProcessor, AThrowingShedCallbackChangesNoCounter) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  int calls = 0;
  flow::event_processor<int> p{{.destinations = {to(r, "a", 100, 10ms)},
                                .max_backlog = 2,
                                .policy = flow::backpressure::shed_lowest,
                                .on_shed = [&](const flow::envelope<int>&) {
                                  ++calls;
                                  throw std::runtime_error("logging is down");
                                }}};
  const auto a = p.destination("a");
  EXPECT_EQ(p.try_submit(1, a, flow::priority::low), flow::submit_status::accepted);
  EXPECT_EQ(p.try_submit(2, a, flow::priority::low), flow::submit_status::accepted);
  EXPECT_EQ(p.try_submit(3, a, flow::priority::high), flow::submit_status::accepted);  // sheds 2
  EXPECT_EQ(p.try_submit(4, a, flow::priority::low), flow::submit_status::shed);       // itself
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(p.snapshot().backlog, 2u);
  rt.block_on([&]() -> weft::task<void> {
    p.stop();
    co_await p.run();
  }());
  EXPECT_EQ(r.acked_events(), 2u);
  EXPECT_EQ(p.snapshot().shed, 2u);
  expect_final(p);
}

TEST(EventProcessor, ReplayIsRefusedOnceStoppingAndKeepsTheDeadLetters) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  r.failing = [] { return true; };
  flow::event_processor<int> p{{.destinations = {to(r, "a", 5, 1ms)}}};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group g;
    g.spawn(p.run());
    for (int i = 0; i < 5; ++i) co_await p.submit(i, p.destination("a"));
    co_await weft::sleep_for(5ms);
    p.stop();
    EXPECT_EQ(p.replay(), 0u);
    co_await g.join();
    EXPECT_EQ(p.replay(), 0u);
  }());
  EXPECT_EQ(p.dead_letters().size(), 5u);
  EXPECT_EQ(p.snapshot().replayed, 0u);
  expect_final(p);
}

TEST(EventProcessor, ARunCancelledBeforeItStartsStillClosesTheProcessor) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  flow::event_processor<int> p{{.destinations = {to(r, "a")}}};
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(p.try_submit(i, flow::destination_id{0}), flow::submit_status::accepted);
  }
  rt.block_on([&]() -> weft::task<void> {
    auto rx = p.metrics().subscribe();
    auto run = weft::spawn(p.run());
    run.cancel();  // before it ever ran
    try {
      co_await run;
    } catch (const weft::operation_cancelled&) {
    }
    EXPECT_FALSE(co_await rx.changed());  // the watch closed
    EXPECT_TRUE(rx.get().stopped);
  }());
  int v = 8;
  EXPECT_EQ(p.try_submit(v, flow::destination_id{0}), flow::submit_status::stopped);
  EXPECT_EQ(p.dead_letters().size(), 7u);
  expect_final(p);
}

TEST(EventProcessor, AFlushIntervalOfNeverFlushesOnlyAtSizeOrDrain) {
  weft::runtime rt{weft::testing::paused()};
  recorder r;
  auto d = to(r, "a", 10, weft::clock::duration::max());
  d.open_deadline = weft::clock::duration::max();
  flow::event_processor<int> p{{.destinations = {d}}};
  rt.block_on([&]() -> weft::task<void> {
    r.start = weft::clock::now();
    weft::task_group g;
    g.spawn(p.run());
    for (int i = 0; i < 15; ++i) co_await p.submit(i, p.destination("a"));
    co_await weft::sleep_for(24h);
    EXPECT_EQ(r.acked_events(), 10u);  // the full batch only
    p.stop();
    co_await g.join();
  }());
  EXPECT_EQ(r.acked_events(), 15u);
  expect_final(p);
}

// Cancelling run() at every point of a burst (a delivery may be cancelled before it ever ran):
// every event ends delivered or dead-lettered.
TEST(EventProcessor, CancellingAtAnyPointOfABurstLosesNothing) {
  for (int k = 0; k < 40; ++k) {
    weft::runtime rt{weft::testing::paused()};
    recorder r;
    auto d = to(r, "a", 5, 1ms);
    d.concurrency = 4;
    flow::event_processor<int> p{{.destinations = {d}}};
    rt.block_on([&]() -> weft::task<void> {
      for (int i = 0; i < 100; ++i) co_await p.submit(i, p.destination("a"));
      auto run = weft::spawn(p.run());
      for (int y = 0; y < k; ++y) co_await weft::yield();
      run.cancel();
      try {
        co_await run;
      } catch (const weft::operation_cancelled&) {
      }
    }());
    const auto m = p.snapshot();
    EXPECT_EQ(m.delivered + m.dead_lettered, 100u) << "cancelled after " << k << " yields";
    EXPECT_EQ(m.delivered, r.acked_events());
    expect_final(p);
  }
}

// The drain's deadline and a hard cancel on two real workers, with deliveries in flight.
TEST(EventProcessor, DrainDeadlinesAndCancelsOnTwoWorkersKeepTheIdentity) {
  for (int round = 0; round < 20; ++round) {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    std::atomic<std::uint64_t> seen{0};
    std::vector<flow::destination_options<int>> dests;
    for (int i = 0; i < 3; ++i) {
      flow::destination_options<int> d;
      d.name = "d";
      d.name += std::to_string(i);
      d.batch_size = 8;
      d.flush_interval = 100us;
      d.concurrency = 3;
      d.deliver = [&, i](std::span<const flow::envelope<int>> events) -> weft::task<void> {
        co_await weft::sleep_for(std::chrono::microseconds{50 * (i + 1)});
        seen.fetch_add(events.size());
      };
      dests.push_back(std::move(d));
    }
    flow::event_processor<int> p{{.destinations = std::move(dests),
                                  .max_backlog = 300,
                                  .drain_grace = std::chrono::microseconds{200 * (round % 4)}}};
    rt.block_on([&]() -> weft::task<void> {
      auto run = weft::spawn(p.run());
      weft::task_group producers;
      for (int t = 0; t < 2; ++t) {
        producers.spawn([&, t]() -> weft::task<void> {
          for (int i = 0; i < 2000; ++i) {
            try {
              co_await p.submit(i, flow::destination_id{static_cast<std::uint32_t>((i + t) % 3)});
            } catch (const flow::processor_stopped&) {
              co_return;
            }
          }
        });
      }
      co_await weft::sleep_for(std::chrono::microseconds{300});
      if (round % 2 == 0) {
        p.stop();
      } else {
        run.cancel();
      }
      try {
        co_await run;
      } catch (const weft::operation_cancelled&) {
      }
      co_await producers.join();
    }());
    const auto m = p.snapshot();
    expect_identity(m);
    EXPECT_EQ(m.backlog, 0u);
    EXPECT_EQ(m.delivered, seen.load());
    EXPECT_EQ(m.dead_lettered, p.dead_letters().added());
  }
}

TEST(EventProcessor, ADestinationsOwnCancellationIsAFailureNotAShutdown) {
  weft::runtime rt{weft::testing::paused()};
  auto d = flow::destination_options<int>{};
  d.name = "a";
  d.retry.max_attempts = 3;
  d.deliver = [](std::span<const flow::envelope<int>>) -> weft::task<void> {
    throw weft::operation_cancelled{};  // e.g. its own client gave up; the processor did not
    co_return;
  };
  flow::event_processor<int> p{{.destinations = {d}}};
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group g;
    g.spawn(p.run());
    co_await p.submit(1, p.destination("a"));
    co_await weft::sleep_for(1s);
    EXPECT_EQ(p.dead_letters().size(), 1u);  // dead-lettered while running, not at the stop
    p.stop();
    co_await g.join();
  }());
  auto dead = p.dead_letters().take();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_NE(dead[0].reason, flow::dead_letter_reason::shutdown);
  EXPECT_EQ(dead[0].attempts, 1u);  // cancellation is never retried
  EXPECT_EQ(p.snapshot().destinations[0].failed_attempts, 1u);
  expect_final(p);
}

TEST(LatencyHistogram, BucketsAreLogLinearAndQuantilesReadTheirUpperBounds) {
  using h = flow::latency_histogram;
  // Up to 1 µs in bucket 0; then eight buckets per doubling: 1000–1125 ns, …, 1875–2000 ns.
  EXPECT_EQ(h::bucket_of(0), 0u);
  EXPECT_EQ(h::bucket_of(1000), 0u);
  EXPECT_EQ(h::bucket_of(1001), 1u);
  EXPECT_EQ(h::bucket_of(1125), 1u);
  EXPECT_EQ(h::bucket_of(1126), 2u);
  EXPECT_EQ(h::bucket_of(2000), 8u);
  EXPECT_EQ(h::bucket_of(2001), 9u);
  EXPECT_EQ(h::upper_bound(0), 1us);
  EXPECT_EQ(h::upper_bound(1), 1125ns);
  EXPECT_EQ(h::upper_bound(8), 2000ns);
  EXPECT_EQ(h::upper_bound(9), 2250ns);
  EXPECT_EQ(h::bucket_of(~std::uint64_t{0}), h::buckets - 1);
  for (std::uint64_t ns : {1'500ull, 20'000'000ull, 3'000'000'000ull}) {
    const auto up = h::upper_bound(h::bucket_of(ns));
    EXPECT_GE(up.count(), static_cast<std::int64_t>(ns));
    EXPECT_LE(static_cast<double>(up.count()), 1.125 * static_cast<double>(ns));
  }

  h hist;
  EXPECT_EQ(hist.read().quantile(0.99), weft::clock::duration::zero());  // empty
  EXPECT_EQ(hist.read().mean(), weft::clock::duration::zero());
  for (int i = 0; i < 99; ++i) hist.record(10us);
  hist.record(1ms);
  hist.record(-5us);  // a clock that stepped back counts as zero
  const auto before = hist.read();
  EXPECT_EQ(before.total(), 101u);
  EXPECT_EQ(before.quantile(0.5), h::upper_bound(h::bucket_of(10'000)));
  EXPECT_EQ(before.quantile(0.98), h::upper_bound(h::bucket_of(10'000)));
  EXPECT_EQ(before.quantile(1.0), h::upper_bound(h::bucket_of(1'000'000)));
  EXPECT_EQ(before.mean(), std::chrono::nanoseconds{(99 * 10'000 + 1'000'000) / 101});
  hist.record(2ms);
  const auto window = hist.read().since(before);  // what came after `before`
  EXPECT_EQ(window.total(), 1u);
  EXPECT_EQ(window.mean(), 2ms);
  EXPECT_EQ(window.quantile(0.99), h::upper_bound(h::bucket_of(2'000'000)));
}

TEST(DeadLetterQueue, IsBoundedDropsTheOldestAndCountsWhatItDropped) {
  EXPECT_THROW(flow::dead_letter_queue<int>{0}, std::invalid_argument);
  flow::dead_letter_queue<int> q{3};
  EXPECT_EQ(q.capacity(), 3u);
  const auto entry = [](int v) {
    flow::dead_letter_entry<int> d;
    d.event.payload = v;
    return d;
  };
  for (int i = 0; i < 5; ++i) q.push(entry(i));
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.added(), 5u);
  EXPECT_EQ(q.overflowed(), 2u);  // 0 and 1 went
  auto first = q.take(2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].event.payload, 2);
  EXPECT_EQ(first[1].event.payload, 3);
  q.push(entry(5));
  q.push(entry(6));
  // Back at the front, in order; what no longer fits goes from the back, counted.
  q.put_back(std::move(first));
  auto all = q.take();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].event.payload, 2);
  EXPECT_EQ(all[1].event.payload, 3);
  EXPECT_EQ(all[2].event.payload, 4);
  EXPECT_EQ(q.overflowed(), 4u);
  EXPECT_EQ(q.size(), 0u);
}

TEST(EventProcessor, MisuseGetsClearErrors) {
  recorder r;
  using opts = flow::event_processor_options<int>;
  EXPECT_THROW(flow::event_processor<int>{opts{}}, std::invalid_argument);
  EXPECT_THROW((flow::event_processor<int>{opts{.destinations = {to(r, "a"), to(r, "a")}}}),
               std::invalid_argument);
  EXPECT_THROW((flow::event_processor<int>{opts{.destinations = {to(r, "")}}}),
               std::invalid_argument);
  EXPECT_THROW((flow::event_processor<int>{opts{.destinations = {to(r, "a", 0)}}}),
               std::invalid_argument);
  EXPECT_THROW((flow::event_processor<int>{opts{.destinations = {to(r, "a", 10, 0ms)}}}),
               std::invalid_argument);
  EXPECT_THROW((flow::event_processor<int>{opts{.destinations = {to(r, "a")}, .max_backlog = 0}}),
               std::invalid_argument);
  EXPECT_THROW(
      (flow::event_processor<int>{opts{.destinations = {to(r, "a")}, .weights = {8, 4, 0, 1}}}),
      std::invalid_argument);
  auto no_deliver = to(r, "a");
  no_deliver.deliver = nullptr;
  EXPECT_THROW((flow::event_processor<int>{opts{.destinations = {no_deliver}}}),
               std::invalid_argument);
  EXPECT_THROW(
      (flow::event_processor<int>{opts{.destinations = {to(r, "a")}, .dead_letter_capacity = 0}}),
      std::invalid_argument);
  auto no_slots = to(r, "a");
  no_slots.concurrency = 0;
  EXPECT_THROW((flow::event_processor<int>{opts{.destinations = {no_slots}}}),
               std::invalid_argument);

  weft::runtime rt{weft::testing::paused()};
  flow::event_processor<int> p{{.destinations = {to(r, "a")}}};
  EXPECT_EQ(p.destination_count(), 1u);
  EXPECT_EQ(p.destination("a"), flow::destination_id{0});
  EXPECT_THROW((void)p.destination("nope"), std::invalid_argument);
  int v = 1;
  EXPECT_THROW((void)p.try_submit(v, flow::destination_id{7}), std::out_of_range);
  rt.block_on([&]() -> weft::task<void> {
    bool out_of_range = false;
    try {
      co_await p.submit(1, flow::destination_id{7});
    } catch (const std::out_of_range&) {
      out_of_range = true;
    }
    EXPECT_TRUE(out_of_range);
    p.stop();
    co_await p.run();
    bool twice = false;
    try {
      co_await p.run();
    } catch (const std::logic_error&) {
      twice = true;
    }
    EXPECT_TRUE(twice);
  }());
  expect_final(p);
}

// Many producers on two real workers, four destinations with flaky deliveries: every accepted
// event ends delivered, dead-lettered or shed, and each event is delivered at most once per
// attempt that succeeded (no event acknowledged twice without a replay).
TEST(EventProcessor, ManyProducersOnTwoWorkersKeepTheIdentity) {
  for (int round = 0; round < 10; ++round) {
    weft::runtime rt{weft::runtime_options{.workers = 2}};
    std::atomic<std::uint64_t> seen{0};
    std::atomic<int> calls{0};
    std::mutex ids_mutex;
    std::set<std::uint64_t> ids;
    bool duplicate = false;
    std::vector<flow::destination_options<int>> dests;
    for (int i = 0; i < 4; ++i) {
      flow::destination_options<int> d;
      d.name = "d";
      d.name += std::to_string(i);
      d.batch_size = 16;
      d.flush_interval = 200us;
      d.concurrency = 2;
      d.retry.max_attempts = 2;
      d.retry.backoff = wr::backoff::fixed(50us);
      d.deliver = [&, i](std::span<const flow::envelope<int>> events) -> weft::task<void> {
        if (i == 3 && ++calls % 5 == 0) throw std::runtime_error("flaky");
        seen.fetch_add(events.size());
        std::lock_guard lock{ids_mutex};
        for (const auto& e : events) duplicate |= !ids.insert(e.id).second;
        co_return;
      };
      dests.push_back(std::move(d));
    }
    const auto policy = static_cast<flow::backpressure>(round % 3);
    flow::event_processor<int> p{
        {.destinations = std::move(dests), .max_backlog = 500, .policy = policy}};
    std::atomic<std::uint64_t> refused{0};
    rt.block_on([&]() -> weft::task<void> {
      weft::task_group runner;
      runner.spawn(p.run());
      weft::task_group producers;
      for (int t = 0; t < 4; ++t) {
        producers.spawn([&, t]() -> weft::task<void> {
          for (int i = 0; i < 5000; ++i) {
            try {
              co_await p.submit(i, flow::destination_id{static_cast<std::uint32_t>((i + t) % 4)},
                                static_cast<flow::priority>(i % 4));
            } catch (const flow::backlog_full&) {
              refused.fetch_add(1);
            }
          }
        });
      }
      co_await producers.join();
      p.stop();
      co_await runner.join();
    }());
    const auto m = p.snapshot();
    expect_identity(m);
    EXPECT_EQ(m.backlog, 0u);
    EXPECT_EQ(m.accepted + refused.load(), 20'000u);
    EXPECT_EQ(m.rejected, refused.load());
    EXPECT_EQ(m.delivered, seen.load());
    EXPECT_FALSE(duplicate) << "an event was acknowledged twice";
    EXPECT_EQ(ids.size(), seen.load());
    EXPECT_EQ(m.dead_lettered, p.dead_letters().added());
  }
}

}  // namespace
