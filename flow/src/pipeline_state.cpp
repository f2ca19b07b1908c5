// The non-template parts of weft::flow pipelines: their counters, snapshots, dead letters and
// stages' resilience layers.
#include <cstdio>
#include <stdexcept>
#include <string>

#include <weft/flow/pipeline.hpp>

namespace weft::flow {

namespace detail {

void stage_counters::record_latency(std::int64_t ns) noexcept {
  const auto v = static_cast<std::uint64_t>(ns > 0 ? ns : 0);
  latency[duration_histogram::bucket_of(v)].fetch_add(1, std::memory_order_relaxed);
  latency_sum_ns.fetch_add(v, std::memory_order_relaxed);
}

std::shared_ptr<stage_layers> make_stage_layers(const stage_options& o, bool item_copyable) {
  if (!o.retry && !o.breaker && !o.timeout) return nullptr;
  std::string who = "weft::flow::pipeline::stage '";
  who += o.name;
  who += "': ";
  if (o.retry && o.retry->max_attempts > 1 && !item_copyable) {
    throw std::invalid_argument(who.append("a retry needs items that can be copied"));
  }
  if (o.timeout && o.timeout->count() <= 0) {
    throw std::invalid_argument(who.append("the timeout must be positive"));
  }
  auto l = std::make_shared<stage_layers>();
  if (o.retry) l->retry.emplace(*o.retry);
  if (o.breaker) l->breaker.emplace(*o.breaker);
  if (o.timeout) l->timeout.emplace(*o.timeout);
  return l;
}

std::size_t pipeline_state::add_stage(const stage_options& o) {
  stage_counters& c = stages.emplace_back();
  c.name = o.name.empty() ? "stage " + std::to_string(stages.size()) : o.name;
  c.concurrency = o.concurrency;
  total_concurrency += o.concurrency;
  return stages.size() - 1;
}

void pipeline_state::finish() noexcept {
  std::uint64_t out = emitted.load(std::memory_order_relaxed);
  for (const auto& c : stages) {
    out += c.dropped.load(std::memory_order_relaxed) +
           c.dead_lettered.load(std::memory_order_relaxed);
  }
  const std::uint64_t in = admitted.load(std::memory_order_relaxed);
  abandoned.store(in > out ? in - out : 0, std::memory_order_relaxed);
  finished.store(true, std::memory_order_release);
}

void deliver_dead_letter(pipeline_state& st, dead_letter d) noexcept {
  if (!st.sink) return;
  try {
    std::lock_guard guard{st.sink_lock};  // workers of several threads fail items at once
    st.sink(std::move(d));
  } catch (...) {
    // The item is counted as dead-lettered either way; a sink that throws loses only itself.
    std::fputs("weft::flow: a dead-letter sink threw; the item stays counted\n", stderr);
  }
}

dead_letter make_dead_letter(const std::string& stage, std::uint64_t sequence,
                             std::exception_ptr error, std::any item) {
  dead_letter d;
  d.stage = stage;
  d.sequence = sequence;
  d.error = std::move(error);
  d.item = std::move(item);
  return d;
}

}  // namespace detail

std::uint64_t pipeline_snapshot::dropped() const noexcept {
  std::uint64_t n = 0;
  for (const auto& s : stages) n += s.dropped;
  return n;
}

std::uint64_t pipeline_snapshot::dead_lettered() const noexcept {
  std::uint64_t n = 0;
  for (const auto& s : stages) n += s.dead_lettered;
  return n;
}

bool pipeline_snapshot::consistent() const noexcept {
  const std::uint64_t out = emitted + dropped() + dead_lettered() + abandoned;
  return finished ? admitted == out : admitted >= out;
}

pipeline_snapshot pipeline_stats::snapshot() const {
  pipeline_snapshot s;
  const detail::pipeline_state& st = *state_;
  // finished first (acquire): a finished run's counters are then final.
  s.finished = st.finished.load(std::memory_order_acquire);
  for (const auto& c : st.stages) {
    stage_stats t;
    t.name = c.name;
    t.concurrency = c.concurrency;
    t.in = c.in.load(std::memory_order_relaxed);
    t.out = c.out.load(std::memory_order_relaxed);
    t.failed = c.failed.load(std::memory_order_relaxed);
    t.dropped = c.dropped.load(std::memory_order_relaxed);
    t.dead_lettered = c.dead_lettered.load(std::memory_order_relaxed);
    t.in_flight = c.in_flight.load(std::memory_order_relaxed);
    t.max_in_flight = c.max_in_flight.load(std::memory_order_relaxed);
    const std::int64_t queued = c.queued.load(std::memory_order_relaxed);
    t.queued = queued > 0 ? static_cast<std::size_t>(queued) : 0;  // briefly negative: see pass_on
    for (std::size_t i = 0; i < duration_histogram::buckets; ++i) {
      t.latency.counts[i] = c.latency[i].load(std::memory_order_relaxed);
    }
    t.latency.sum_ns = c.latency_sum_ns.load(std::memory_order_relaxed);
    s.stages.push_back(std::move(t));
  }
  // Admitted last: an item counted out (emitted, dropped, ...) was counted in before, so the
  // live identity admitted >= out holds for what this snapshot read.
  s.emitted = st.emitted.load(std::memory_order_acquire);
  s.abandoned = st.abandoned.load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  s.admitted = st.admitted.load(std::memory_order_relaxed);
  return s;
}

}  // namespace weft::flow
