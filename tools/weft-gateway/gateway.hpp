// The weft-gateway service: `GET /product/{id}` fans out to inventory, pricing (a majority of
// three replicas, hedged) and reviews (falling back to a stale cache entry or an empty list),
// each call through timeout, retry with a budget and jitter, a circuit breaker and a bulkhead;
// `/metrics` in the Prometheus text format and `/healthz`.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <weft/http/client.hpp>
#include <weft/http/response.hpp>
#include <weft/http/router.hpp>
#include <weft/resilience/events.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>

namespace weft::gateway {

/// Where the upstreams are: base URLs without a trailing slash ("http://127.0.0.1:8101").
struct upstream_urls {
  std::string inventory;
  std::array<std::string, 3> pricing;
  std::string reviews;
};

/// The resilience policy of the upstream calls. Every duration is on the runtime clock.
struct gateway_policy {
  /// A /product request not answered by then is answered 504.
  clock::duration request_deadline = std::chrono::milliseconds{1000};
  /// One call to inventory or to a pricing replica, its retries included.
  clock::duration call_timeout = std::chrono::milliseconds{600};
  /// One call to reviews, its retries included (then the fallback answers).
  clock::duration reviews_timeout = std::chrono::milliseconds{250};
  /// One attempt.
  clock::duration attempt_timeout = std::chrono::milliseconds{200};
  /// Attempts per call, the first included; retries wait an exponential backoff from
  /// backoff_initial with full jitter, within a retry budget per upstream (retry_budget_ratio
  /// retries per request, Tower's budget).
  int max_attempts = 3;
  clock::duration backoff_initial = std::chrono::milliseconds{10};
  double retry_budget_ratio = 0.2;
  /// Breakers: a count window; open at breaker_failure_rate failures once breaker_minimum_calls
  /// were seen, or when breaker_slow_rate of the calls took longer than slow_call; open for
  /// breaker_open, then breaker_trials trial calls decide.
  std::size_t breaker_window = 40;
  std::size_t breaker_minimum_calls = 20;
  double breaker_failure_rate = 0.5;
  clock::duration slow_call = std::chrono::milliseconds{150};
  double breaker_slow_rate = 0.8;
  clock::duration breaker_open = std::chrono::seconds{2};
  std::size_t breaker_trials = 3;
  /// Bulkheads: calls at once per upstream, and how many may wait, for how long.
  std::size_t bulkhead_concurrent = 96;
  std::size_t bulkhead_queue = 256;
  clock::duration bulkhead_wait = std::chrono::milliseconds{50};
  /// Pricing replicas hedge at the 95th percentile of their recent latencies (at hedge_delay
  /// until 50 samples were seen).
  clock::duration hedge_delay = std::chrono::milliseconds{30};
  /// Reviews are cached this long, and served stale (marked degraded) up to reviews_stale
  /// after that while a refresh runs.
  clock::duration reviews_ttl = std::chrono::seconds{1};
  clock::duration reviews_stale = std::chrono::seconds{60};
  std::size_t reviews_cache_capacity = 10'000;
};

/// How the gateway fetches a URL: an http::client in the service, in-process upstreams in
/// tests (in_process_fetch).
using fetch_fn = std::function<task<http::client_response>(std::string url)>;

/// The upstreams as the gateway names them (breakers, metrics, dashboard): "inventory",
/// "pricing-1", "pricing-2", "pricing-3", "reviews".
inline constexpr std::array<std::string_view, 5> upstream_names = {
    "inventory", "pricing-1", "pricing-2", "pricing-3", "reviews"};

/// Per-upstream counters (readable from any thread).
struct upstream_counters {
  std::atomic<std::uint64_t> calls{0};       // attempts sent
  std::atomic<std::uint64_t> retries{0};     // retry events
  std::atomic<std::uint64_t> hedges{0};      // hedges launched
  std::atomic<std::uint64_t> rejections{0};  // breaker, bulkhead and budget refusals
  std::atomic<std::uint64_t> timeouts{0};    // attempt or call timeouts
};

/// The gateway. Thread safety: serve it from any number of tasks on every worker.
/// Lifetime: it must outlive every task it started (the reviews cache refreshes in the
/// background): destroy the runtime first.
class gateway {
 public:
  gateway(upstream_urls urls, fetch_fn fetch, gateway_policy policy = {});
  ~gateway();
  gateway(const gateway&) = delete;
  gateway& operator=(const gateway&) = delete;

  /// The answer to `GET /product/{id}`: 200 with the product's JSON (`X-Weft-Outcome: ok`, or
  /// `degraded` with `X-Weft-Degraded: reviews-stale` / `reviews-empty` when reviews came from
  /// the fallback); 503 when inventory or a pricing majority failed; 504 past the request
  /// deadline. An id that is not 1 to 64 letters, digits, '-' or '_' is 400.
  task<http::response> product(std::string id);

  /// `/product/{id}`, `/metrics`, `/healthz` (503 once draining). `rt` is the runtime whose
  /// counters /metrics reports; it and the gateway must outlive the router.
  [[nodiscard]] http::router make_router(const runtime& rt);

  /// The /metrics page: the gateway's families, the process's (fds, RSS, CPU), the runtime's
  /// per-worker counters and the resilience layers' events.
  [[nodiscard]] std::string metrics_text(const runtime& rt) const;

  /// /healthz answers 503 from now on (load balancers stop sending before the drain).
  void start_draining() noexcept { draining_.store(true, std::memory_order_relaxed); }

  [[nodiscard]] resilience::breaker_state breaker(std::string_view upstream) const;
  [[nodiscard]] std::size_t bulkhead_queued(std::string_view upstream) const;
  [[nodiscard]] const upstream_counters& counters(std::string_view upstream) const;
  /// Requests answered, by outcome.
  [[nodiscard]] std::uint64_t answered_ok() const noexcept;
  [[nodiscard]] std::uint64_t answered_degraded() const noexcept;
  [[nodiscard]] std::uint64_t answered_failed() const noexcept;

  struct state;

 private:
  std::unique_ptr<state> st_;
  std::atomic<bool> draining_{false};
};

/// A fetch_fn that serves `http://<name>/<kind>/<id>` from in-process upstreams by name, without
/// sockets: exact under paused time. An unknown name is ECONNREFUSED, as a closed port would be.
class upstream_sim;
[[nodiscard]] fetch_fn in_process_fetch(std::vector<upstream_sim*> upstreams);

/// A fetch_fn over an http::client (which must outlive it).
[[nodiscard]] fetch_fn client_fetch(http::client& c);

/// The process's open descriptors and resident set (from /proc/self), for /metrics and checks.
struct process_usage {
  std::size_t open_fds = 0;
  std::uint64_t rss_bytes = 0;
  double cpu_seconds = 0;  // user + system
};
[[nodiscard]] process_usage read_process_usage(int pid = 0);

}  // namespace weft::gateway
