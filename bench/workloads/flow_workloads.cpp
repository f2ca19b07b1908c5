// The weft::flow workloads of weft-bench: flow_pipeline (three trivial stages, 10 million items
// end to end, in input order), flow_pipeline_unordered (the same, in completion order) and
// flow_events (an event processor: 5 million events to four trivial destinations in batches of
// 100, as fast as producers can submit them) and flow_events_paced (the same at an offered 2
// million events/s), both with the added latency's percentiles.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ranges>
#include <span>
#include <string>
#include <vector>

#include <weft/combinators/task_group.hpp>
#include <weft/flow/event_processor.hpp>
#include <weft/flow/pipeline.hpp>
#include <weft/time/sleep.hpp>

#include "runtime_workloads.hpp"

namespace weft::bench {

namespace {

constexpr std::int64_t flow_items = 10'000'000;

weft::task<int> step(int x) {
  co_return x + 1;
}

weft::task<std::int64_t> drain(weft::async_generator<int> out) {
  std::int64_t n = 0;
  std::int64_t sum = 0;
  while (auto v = co_await out.next()) {
    ++n;
    sum += *v;
  }
  // Every item passed the three stages: item i comes out as i + 3.
  const std::int64_t want = flow_items * (flow_items - 1) / 2 + 3 * flow_items;
  co_return sum == want ? n : -1;
}

workload_result run_flow(weft::runtime& rt, flow::ordering order) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t c = rt.worker_count();
  auto out = flow::from_range(std::views::iota(0, static_cast<int>(flow_items)), 256)
                 .stage({.name = "validate", .concurrency = c, .buffer = 256}, &step)
                 .stage({.name = "transform", .concurrency = c, .buffer = 256}, &step)
                 .stage({.name = "persist", .concurrency = c, .buffer = 256}, &step)
                 .ordered(order)
                 .run();
  const std::int64_t n = rt.block_on(drain(std::move(out)));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  workload_result r;
  r.ops = flow_items;
  r.seconds = s;
  r.valid = n == flow_items;
  return r;
}

workload_result run_flow_pipeline(weft::runtime& rt) {
  return run_flow(rt, flow::ordering::preserved);
}
workload_result run_flow_pipeline_unordered(weft::runtime& rt) {
  return run_flow(rt, flow::ordering::completion);
}

constexpr std::int64_t event_count = 5'000'000;
constexpr std::size_t event_destinations = 4;

// One trivial destination: sums what it is given, and keeps every 16th event's added latency
// (acknowledgement instant minus acceptance) for exact percentiles. Its batches are delivered
// one at a time (concurrency 1), so the samples need no lock.
struct counting_destination {
  std::atomic<std::uint64_t> events{0};
  std::atomic<std::uint64_t> sum{0};
  std::vector<std::int64_t> latency_ns;

  weft::task<void> deliver(std::span<const flow::envelope<std::uint64_t>> batch) {
    const auto now = weft::clock::now();
    std::uint64_t s = 0;
    for (const auto& e : batch) {
      s += e.payload;
      if (e.id % 16 == 0) latency_ns.push_back((now - e.accepted_at).count());
    }
    sum.fetch_add(s, std::memory_order_relaxed);
    events.fetch_add(batch.size(), std::memory_order_relaxed);
    co_return;
  }
};

// Submits events [from, to). Paced: `per_ms` events at the start of each millisecond (an open
// loop: a late producer catches up with the schedule, it does not lower the offered rate).
weft::task<void> produce(flow::event_processor<std::uint64_t>& p, std::int64_t from,
                         std::int64_t to, std::int64_t per_ms) {
  auto next = weft::clock::now();
  for (std::int64_t i = from; i < to; ++i) {
    if (per_ms > 0 && (i - from) % per_ms == 0) {
      co_await weft::sleep_until(next);
      next += std::chrono::milliseconds{1};
    }
    co_await p.submit(static_cast<std::uint64_t>(i),
                      flow::destination_id{static_cast<std::uint32_t>(i % event_destinations)},
                      static_cast<flow::priority>(i % 4));
  }
}

// Offered load for flow_events_paced: the target rate.
constexpr std::int64_t paced_events_per_second = 2'000'000;

workload_result run_flow_events(weft::runtime& rt, bool paced) {
  std::vector<counting_destination> sinks(event_destinations);
  for (auto& s : sinks) s.latency_ns.reserve(event_count / event_destinations / 16 + 16);
  flow::event_processor_options<std::uint64_t> o;
  for (std::size_t i = 0; i < event_destinations; ++i) {
    flow::destination_options<std::uint64_t> d;
    d.name = "sink-";
    d.name += std::to_string(i);
    d.batch_size = 100;
    d.flush_interval = std::chrono::milliseconds{5};
    d.deliver = [&s = sinks[i]](std::span<const flow::envelope<std::uint64_t>> b) {
      return s.deliver(b);
    };
    o.destinations.push_back(std::move(d));
  }
  o.max_backlog = 16'384;
  o.policy = flow::backpressure::block;
  flow::event_processor<std::uint64_t> p{std::move(o)};

  const auto t0 = std::chrono::steady_clock::now();
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group runner;
    runner.spawn(p.run());
    weft::task_group producers;
    const auto n = static_cast<std::int64_t>(rt.worker_count());
    for (std::int64_t k = 0; k < n; ++k) {
      const std::int64_t per_ms = paced ? paced_events_per_second / 1000 / n : 0;
      producers.spawn(produce(p, event_count * k / n, event_count * (k + 1) / n, per_ms));
    }
    co_await producers.join();
    p.stop();
    co_await runner.join();
  }());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::uint64_t delivered = 0;
  std::uint64_t sum = 0;
  std::vector<std::int64_t> latency;
  for (auto& d : sinks) {
    delivered += d.events.load();
    sum += d.sum.load();
    latency.insert(latency.end(), d.latency_ns.begin(), d.latency_ns.end());
  }
  const auto m = p.snapshot();
  workload_result r;
  r.ops = static_cast<std::uint64_t>(event_count);
  r.seconds = s;
  r.valid = delivered == static_cast<std::uint64_t>(event_count) &&
            sum == static_cast<std::uint64_t>(event_count * (event_count - 1) / 2) &&
            m.consistent() && m.delivered == delivered && m.backlog == 0;
  if (!latency.empty()) r.latency = lateness_summary(std::move(latency));
  return r;
}

workload_result run_flow_events_saturated(weft::runtime& rt) {
  return run_flow_events(rt, false);
}
workload_result run_flow_events_paced(weft::runtime& rt) {
  return run_flow_events(rt, true);
}

}  // namespace

const std::vector<workload>& flow_workloads() {
  static const std::vector<workload> all{
      {"flow_pipeline", "items", &run_flow_pipeline},
      {"flow_pipeline_unordered", "items", &run_flow_pipeline_unordered},
      {"flow_events", "events", &run_flow_events_saturated},
      {"flow_events_paced", "events", &run_flow_events_paced},
  };
  return all;
}

}  // namespace weft::bench
