// weft-gateway's load: an open-loop generator that sends requests at a fixed rate whatever the
// answers take (as wrk2 does), so a slow gateway cannot hide its latency by slowing the load
// down. Latency is measured from the instant each request was due, not from when it was sent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <weft/task.hpp>
#include <weft/time/clock.hpp>

#include "../echo-load/histogram.hpp"

namespace weft::gateway {

/// What became of one request.
enum class answer_kind : std::uint8_t {
  ok,        // 200, fully fresh
  degraded,  // 200, part of it from a fallback
  failed,    // an error status: the gateway answered that it could not
  lost,      // no answer: the connection failed, or nothing came within give_up
};

/// Sends one request for product `id` and says what came back; lost when it throws.
using send_fn = std::function<task<answer_kind>(std::string id)>;

struct load_options {
  double rate = 300;                                  // requests per second
  std::size_t ids = 500;                              // product ids 1..ids, drawn uniformly
  std::uint64_t seed = 1;                             // of the id draw
  clock::duration give_up = std::chrono::seconds{5};  // a request without an answer by then is lost
};

/// Counts and latencies of one interval (a second, or a phase).
struct load_interval {
  std::uint64_t ok = 0, degraded = 0, failed = 0, lost = 0;
  std::uint64_t sent = 0;                   // requests due in the interval (phases only)
  echo_load::log_linear_histogram latency;  // ns, of the answered (ok, degraded, failed)
  std::uint64_t max_degraded_ns = 0;
  [[nodiscard]] std::uint64_t answered() const noexcept { return ok + degraded + failed; }
};

/// The generator. Thread safety: run() on one runtime; take_second(), set_phase() and the
/// readers from any thread.
class open_loop_load {
 public:
  open_loop_load(load_options options, send_fn send);

  /// Sends a request every 1/rate seconds from now until `until` (late ticks are caught up at
  /// once, never skipped), then waits for every answer; each request gives up after give_up.
  task<void> run(clock::time_point until);

  /// Requests due from now on are counted in phase `index` (phases are numbered from 0).
  void set_phase(std::size_t index);

  /// What was answered since the last call (by the instant of the answer).
  [[nodiscard]] load_interval take_second();
  /// Everything about the requests due in phase `index`.
  [[nodiscard]] load_interval phase(std::size_t index) const;
  /// The whole run.
  [[nodiscard]] load_interval total() const;
  /// Requests sent and not answered yet.
  [[nodiscard]] std::uint64_t in_flight() const;

 private:
  task<void> one(std::string id, clock::time_point due, std::size_t phase);
  void record(answer_kind k, clock::duration latency, std::size_t phase);

  load_options options_;
  send_fn send_;
  mutable std::mutex lock_;
  std::size_t phase_ = 0;
  load_interval second_;
  load_interval total_;
  std::vector<std::unique_ptr<load_interval>> phases_;
  std::uint64_t in_flight_ = 0;
  std::uint64_t rng_;
};

}  // namespace weft::gateway
