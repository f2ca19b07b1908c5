// The weft::flow workloads of weft-bench: flow_pipeline (three trivial stages, 10 million items
// end to end, in input order) and flow_pipeline_unordered (the same, in completion order).
#include <chrono>
#include <cstdint>
#include <ranges>

#include <weft/flow/pipeline.hpp>

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

}  // namespace

const std::vector<workload>& flow_workloads() {
  static const std::vector<workload> all{
      {"flow_pipeline", "items", &run_flow_pipeline},
      {"flow_pipeline_unordered", "items", &run_flow_pipeline_unordered},
  };
  return all;
}

}  // namespace weft::bench
