// `weft-bench --workload http_client --url URL`: weft's HTTP client as a load generator, to
// measure its requests/s and CPU per request against a server (nginx, weft's own) beside wrk.
// N tasks (--connections) on one worker each send GETs back to back through one client whose
// pool allows N connections, for --duration seconds after --warmup.
#pragma once

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <weft/combinators/when_all.hpp>
#include <weft/http/client.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>

namespace weft::tools {

struct http_client_load_config {
  std::string url;
  std::size_t connections = 64;
  double warmup_s = 1;
  double duration_s = 10;
};

struct http_client_load_result {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  double seconds = 0;
  double cpu_us_per_request = 0;
};

namespace detail {
inline double process_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

inline task<void> http_client_loop(http::client& c, const std::string& url,
                                   const std::atomic<int>& phase, std::uint64_t& requests,
                                   std::uint64_t& errors) {
  while (phase.load(std::memory_order_relaxed) < 2) {
    bool ok = false;
    try {
      const auto r = co_await c.get(url);
      ok = r.status == 200;
    } catch (const std::exception&) {
      ok = false;
    }
    if (phase.load(std::memory_order_relaxed) == 1) ++(ok ? requests : errors);
  }
}

inline task<http_client_load_result> http_client_load(http_client_load_config cfg) {
  http::client_options o;
  o.max_connections_per_origin = cfg.connections;
  o.max_idle_per_origin = cfg.connections;
  http::client c{o};
  std::atomic<int> phase{0};  // 0 warm-up, 1 measuring, 2 stop
  std::vector<std::uint64_t> requests(cfg.connections);
  std::vector<std::uint64_t> errors(cfg.connections);
  std::vector<task<void>> loops;
  for (std::size_t i = 0; i < cfg.connections; ++i) {
    loops.push_back(http_client_loop(c, cfg.url, phase, requests[i], errors[i]));
  }
  auto timer = [](std::atomic<int>& phase, double warmup, double duration, double& cpu,
                  double& seconds) -> task<void> {
    co_await weft::sleep_for(std::chrono::duration<double>(warmup));
    const double cpu0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    phase.store(1);
    co_await weft::sleep_for(std::chrono::duration<double>(duration));
    phase.store(2);
    cpu = process_cpu_seconds() - cpu0;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double cpu = 0;
  double seconds = 0;
  loops.push_back(timer(phase, cfg.warmup_s, cfg.duration_s, cpu, seconds));
  co_await weft::when_all(std::move(loops));
  http_client_load_result r;
  for (auto n : requests) r.requests += n;
  for (auto n : errors) r.errors += n;
  r.seconds = seconds;
  r.cpu_us_per_request = r.requests == 0 ? 0 : cpu * 1e6 / static_cast<double>(r.requests);
  co_return r;
}
}  // namespace detail

/// Runs the load on a one-worker runtime and prints one JSON line; returns the exit status.
inline int run_http_client_load(const http_client_load_config& cfg) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  if (!rt.io_available()) {
    std::fprintf(stderr, "weft-bench: %s\n", rt.io_error().c_str());
    return 1;
  }
  const auto r = rt.block_on(detail::http_client_load(cfg));
  std::printf(
      "{\"peer\":\"weft\",\"workload\":\"http_client\",\"url\":\"%s\",\"connections\":%zu,"
      "\"ops\":%llu,\"errors\":%llu,\"seconds\":%.3f,\"ops_per_sec\":%.1f,"
      "\"client_cpu_us_per_op\":%.2f}\n",
      cfg.url.c_str(), cfg.connections, static_cast<unsigned long long>(r.requests),
      static_cast<unsigned long long>(r.errors), r.seconds,
      r.seconds > 0 ? static_cast<double>(r.requests) / r.seconds : 0.0, r.cpu_us_per_request);
  return r.errors == 0 && r.requests > 0 ? 0 : 1;
}

}  // namespace weft::tools
