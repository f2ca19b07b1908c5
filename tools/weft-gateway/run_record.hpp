// What one weft-gateway run recorded, second by second: the load generator's view (outcomes and
// latencies of the requests it sent) beside the gateway's own (breaker states, retries, hedges,
// rejections scraped from its /metrics). The dashboard draws the latest sample; the report
// draws them all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace weft::gateway {

/// A circuit breaker's state as the report shows it (the numbers of
/// weft::resilience::breaker_state, which /metrics exports).
enum class breaker_view : std::uint8_t { closed = 0, open = 1, half_open = 2, other = 3 };

/// One second of the run.
struct second_sample {
  double t_s = 0;  // end of the second, from the start of the load
  // Answers that arrived in this second, by outcome.
  std::uint64_t ok = 0;
  std::uint64_t degraded = 0;
  std::uint64_t failed = 0;
  // Latencies of those answers (from the instant each request was due to be sent: open loop),
  // in milliseconds.
  double p50_ms = 0;
  double p99_ms = 0;
  double p999_ms = 0;
  double max_ms = 0;
  // Counted by the gateway during this second.
  std::uint64_t retries = 0;
  std::uint64_t hedges = 0;
  std::uint64_t rejections = 0;       // breaker, bulkhead and budget refusals
  std::uint64_t bulkhead_queued = 0;  // calls waiting in the bulkheads at the scrape
  // Each upstream's breaker at the scrape, in the order of run_record::upstreams.
  std::vector<breaker_view> breakers;
  // The gateway process's CPU time in this second, in seconds (user + system).
  double gateway_cpu_s = 0;
  std::size_t phase = 0;  // index into run_record::phases
};

/// A phase of the scenario.
struct phase_record {
  std::string name;         // "warm-up", "pricing-2 slow", …
  std::string description;  // what was done to the upstreams
  double start_s = 0;
  double end_s = 0;
  // What the load saw of the requests sent in this phase, from a histogram of the whole phase.
  std::uint64_t ok = 0;
  std::uint64_t degraded = 0;
  std::uint64_t failed = 0;
  double requests_per_s = 0;  // answers per second
  double p50_ms = 0;
  double p99_ms = 0;
  double p999_ms = 0;
  double gateway_cpu_us_per_request = 0;  // the gateway's CPU over the phase / its answers
};

/// A promise the run checks about itself.
struct check_record {
  std::string name;  // "every request answered"
  bool passed = false;
  std::string detail;  // the figures behind the verdict
};

/// The whole run.
struct run_record {
  std::string title = "weft-gateway";
  std::string started_at;  // UTC, ISO 8601
  double rate = 0;         // requests per second the load sent
  std::size_t gateway_workers = 0;
  std::vector<std::string> upstreams;  // breaker names, in the order of second_sample::breakers
  std::vector<phase_record> phases;
  std::vector<second_sample> seconds;
  std::vector<check_record> checks;
  // Totals.
  std::uint64_t sent = 0;
  std::uint64_t ok = 0;
  std::uint64_t degraded = 0;
  std::uint64_t failed = 0;
  std::uint64_t lost = 0;  // sent and never answered (a broken promise when not 0)
  double gateway_cpu_us_per_request = 0;
};

}  // namespace weft::gateway
