// weft::flow::processor_metrics: an event processor's live snapshot (what its metrics watch
// carries), and the log-linear latency histogram behind its average and p99.
//
// Thread safety: latency_histogram may be recorded into and read from any thread at once
// (relaxed atomic counters: a read while samples arrive is consistent per bucket). The snapshot
// structs are plain values.
//
// Cancellation: nothing here suspends.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <weft/flow/event_processor_options.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/time/clock.hpp>

namespace weft::flow {

/// Counts of durations in log-linear buckets: 8 buckets per power of two of microseconds, so a
/// quantile read from it is at most 12.5 % above the true value (it reports bucket upper
/// bounds). Samples up to 1 µs share bucket 0; samples above about 2^30 µs share the last.
class latency_histogram {
 public:
  static constexpr std::size_t sub_buckets = 8;
  static constexpr std::size_t octaves = 31;
  static constexpr std::size_t buckets = 1 + octaves * sub_buckets;

  /// A plain copy of the counts, for differences between two moments.
  struct counts {
    std::array<std::uint64_t, buckets> n{};
    std::uint64_t sum_ns = 0;
    [[nodiscard]] std::uint64_t total() const noexcept;
    /// The upper bound of the bucket holding quantile q (0 < q <= 1); zero when empty.
    [[nodiscard]] clock::duration quantile(double q) const noexcept;
    [[nodiscard]] clock::duration mean() const noexcept;
    /// This minus an earlier copy of the same histogram.
    [[nodiscard]] counts since(const counts& earlier) const noexcept;
  };

  void record(clock::duration d) noexcept {
    const auto ns = d.count() < 0 ? std::uint64_t{0} : static_cast<std::uint64_t>(d.count());
    n_[bucket_of(ns)].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  }
  [[nodiscard]] counts read() const noexcept;

  [[nodiscard]] static std::size_t bucket_of(std::uint64_t ns) noexcept;
  /// The largest duration bucket i holds.
  [[nodiscard]] static clock::duration upper_bound(std::size_t i) noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, buckets> n_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

/// One destination's part of a snapshot.
struct destination_metrics {
  std::string name{};
  resilience::breaker_state breaker = resilience::breaker_state::closed;
  std::uint64_t delivered = 0;        // events acknowledged
  std::uint64_t dead_lettered = 0;    // events sent to the dead-letter queue
  std::uint64_t batches = 0;          // batches delivered
  std::uint64_t attempts = 0;         // delivery attempts (each call of deliver)
  std::uint64_t failed_attempts = 0;  // attempts that threw
  std::size_t queued = 0;             // events waiting for a batch
  std::size_t in_delivery = 0;        // events in batches being delivered
};

/// A processor's state at one moment. Counters are totals since construction; the latency and
/// error rate cover the window since the previous snapshot in the metrics watch (for
/// event_processor::snapshot(), the whole run). accepted = delivered + dead_lettered + shed +
/// backlog holds exactly once the processor stopped, and at any quiet moment.
struct processor_metrics {
  std::uint64_t accepted = 0;       // events taken in (replays included; shed ones included)
  std::uint64_t delivered = 0;      // events in batches their destination acknowledged
  std::uint64_t dead_lettered = 0;  // events sent to the dead-letter queue
  std::uint64_t shed = 0;           // events shed by the shed_lowest policy
  std::uint64_t rejected = 0;       // submissions refused (reject policy, or full/stopped)
  std::uint64_t replayed = 0;       // events taken back from the dead-letter queue
  std::size_t backlog = 0;          // accepted and not yet delivered, dead-lettered or shed
  std::array<std::size_t, priority_count> queued{};  // waiting for a batch, by lane
  clock::duration latency_avg{};    // accepted → acknowledged, delivered events in the window
  clock::duration latency_p99{};    // same, 99th percentile (a bucket's upper bound)
  double error_rate = 0;            // failed attempts / attempts in the window (0 with none)
  std::vector<destination_metrics> destinations{};
  bool draining = false;  // stop was requested: intake closed, buffers flushing
  bool stopped = false;   // run() returned: the counters are final
  /// Events not delivered: dead-lettered + shed.
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dead_lettered + shed; }
  /// accepted == delivered + dead_lettered + shed + backlog.
  [[nodiscard]] bool consistent() const noexcept {
    return accepted == delivered + dead_lettered + shed + backlog;
  }
};

}  // namespace weft::flow
