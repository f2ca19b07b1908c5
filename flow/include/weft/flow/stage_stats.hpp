// weft::flow::stage_stats and pipeline_stats: a pipeline's per-stage counters, read live.
//
// Thread safety: snapshot() may be called from any thread while the pipeline runs and after it
// ended; the counters are atomic, so a snapshot taken while items move is consistent per counter,
// not across counters (after the run it is exact).
//
// Cancellation: nothing here suspends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <weft/runtime.hpp>

namespace weft::flow {

namespace detail {
struct pipeline_state;
}

/// One stage's counters.
struct stage_stats {
  std::string name;
  std::size_t concurrency = 0;
  std::uint64_t in = 0;             // items its callable was called with
  std::uint64_t out = 0;            // items it passed on
  std::uint64_t failed = 0;         // items its callable threw on (dropped + dead-lettered + fatal)
  std::uint64_t dropped = 0;        // failure_policy::drop
  std::uint64_t dead_lettered = 0;  // failure_policy::dead_letter
  std::size_t in_flight = 0;        // items in its callable now
  std::size_t max_in_flight = 0;    // the most it ever had at once (never above concurrency)
  std::size_t queued = 0;           // items waiting in its input queue now
  /// How long its callable took per item (runtime clock). Every item while items take 20 µs or
  /// more; one in 32 of a fast stage's items (two clock reads cost about what a trivial item
  /// does), so latency.count() may be below `in`.
  duration_histogram latency;
};

/// The whole pipeline: admitted = emitted + dropped + dead_lettered + abandoned once it ended,
/// and + what is inside while it runs.
struct pipeline_snapshot {
  std::vector<stage_stats> stages;
  std::uint64_t admitted = 0;   // items the source let in
  std::uint64_t emitted = 0;    // items the output yielded
  std::uint64_t abandoned = 0;  // items inside when it stopped early (cancelled, or a failure)
  bool finished = false;        // the run ended (fully, by failure or cancellation)
  [[nodiscard]] std::uint64_t dropped() const noexcept;
  [[nodiscard]] std::uint64_t dead_lettered() const noexcept;
  /// The counter identity above holds (while running: admitted >= emitted + dropped + ...).
  [[nodiscard]] bool consistent() const noexcept;
};

/// A live handle on a pipeline's counters (pipeline::stats()); it keeps them after the run.
class pipeline_stats {
 public:
  explicit pipeline_stats(std::shared_ptr<detail::pipeline_state> state) noexcept
      : state_(std::move(state)) {}
  [[nodiscard]] pipeline_snapshot snapshot() const;

 private:
  std::shared_ptr<detail::pipeline_state> state_;
};

}  // namespace weft::flow
