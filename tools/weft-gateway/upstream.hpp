// The simulated upstream services of weft-gateway: inventory, pricing and reviews as weft HTTP
// servers whose latency, errors and faults (an outage answering 503 with Retry-After, a slow
// tail, a replica that hangs) are set when they start and changed while they run through an
// admin endpoint.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include <weft/http/response.hpp>
#include <weft/http/router.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>

namespace weft::gateway {

/// What an upstream serves: `GET /<kind>/{id}` answers JSON about product `id`.
enum class upstream_kind : std::uint8_t { inventory, pricing, reviews };
[[nodiscard]] std::string_view to_string(upstream_kind k) noexcept;

/// How an upstream behaves. Latency is log-normal with the given median and 99th percentile
/// (median == p99 makes it exact, which the paused-time tests use).
struct upstream_behaviour {
  double median_ms = 4;
  double p99_ms = 20;
  /// The fraction of requests answered 500 (an error of the service itself, not retryable).
  double error_rate = 0;
  /// While set, every request is answered 503 with `Retry-After: retry_after_s` after 1 ms.
  bool outage = false;
  std::uint32_t retry_after_s = 1;
  /// The fraction of requests held for hang_ms before they are answered (a replica that
  /// hangs: 1).
  double hang_rate = 0;
  double hang_ms = 30'000;
};

/// Changes `b` by a form (`median_ms=250&p99_ms=1200&outage=1`): keys are the field names of
/// upstream_behaviour; keys not given keep their value. An unknown key, a malformed or negative
/// number, a rate outside [0, 1] or p99_ms below median_ms throws std::invalid_argument naming it.
upstream_behaviour apply_form(upstream_behaviour b, std::string_view form);
/// `b` as JSON (what `GET /admin/behaviour` answers).
[[nodiscard]] std::string to_json(const upstream_behaviour& b);

/// Counters of one upstream.
struct upstream_stats {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> errors{0};   // answered 500
  std::atomic<std::uint64_t> outages{0};  // answered 503
  std::atomic<std::uint64_t> hangs{0};    // held for hang_ms
  std::atomic<std::uint64_t> in_flight{0};
};

/// One simulated upstream (a replica of a service). Thread safety: every member may be called
/// from any task or thread; the behaviour is swapped under a mutex, read once per request.
class upstream_sim {
 public:
  upstream_sim(std::string name, upstream_kind kind, upstream_behaviour behaviour = {},
               std::uint64_t seed = 1);
  upstream_sim(const upstream_sim&) = delete;
  upstream_sim& operator=(const upstream_sim&) = delete;

  /// Serves `GET /<kind>/{id}` for product `id`: waits the sampled latency on the runtime clock
  /// (paused time included), then answers. The body depends only on the kind and the id, so
  /// replicas agree.
  task<http::response> serve(std::string id);

  /// The service's routes: `GET /<kind>/{id}`, `GET /admin/behaviour` (JSON) and
  /// `POST /admin/behaviour` (a form as apply_form takes; answers the new behaviour, or 400 with
  /// the reason). The router refers to this upstream, which must outlive it.
  [[nodiscard]] http::router make_router();

  void set_behaviour(const upstream_behaviour& b);
  /// Applies a form (apply_form) to the current behaviour atomically; returns the new one.
  upstream_behaviour update(std::string_view form);
  [[nodiscard]] upstream_behaviour behaviour() const;
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] upstream_kind kind() const noexcept { return kind_; }
  [[nodiscard]] const upstream_stats& stats() const noexcept { return stats_; }

 private:
  // A draw in [0, 1) and a latency sample, from one generator (under lock_).
  struct draw {
    double uniform = 0;
    clock::duration latency{};
    double hang_uniform = 0;
  };
  draw sample(const upstream_behaviour& b);

  std::string name_;
  upstream_kind kind_;
  mutable std::mutex lock_;
  upstream_behaviour behaviour_;
  std::uint64_t rng_state_;
  upstream_stats stats_;
};

/// The body `kind` answers for product `id` (shared by the simulator and the tests).
[[nodiscard]] std::string upstream_body(upstream_kind kind, std::string_view id);

}  // namespace weft::gateway
