// A synthetic weft-gateway run for the report's tests: warm-up, pricing-2 slow, reviews down,
// recovery, ten seconds each, with breakers opening and closing. Shared by gateway_report_test and
// gateway_report_sample (the page the headless-browser test loads).
#pragma once

#include <cstddef>

#include "run_record.hpp"

namespace weft::gateway::testing {

using weft::gateway::breaker_view;
using weft::gateway::run_record;
using weft::gateway::second_sample;

// Indexes into run_record::upstreams.
inline constexpr std::size_t pricing_2 = 2;
inline constexpr std::size_t reviews = 4;

inline run_record sample_run() {
  run_record r;
  r.title = "weft-gateway showcase";
  r.started_at = "2025-01-02T03:04:05Z";
  r.rate = 1000;
  r.gateway_workers = 2;
  r.upstreams = {"inventory", "pricing-1", "pricing-2", "pricing-3", "reviews"};
  const char* names[] = {"warm-up", "pricing-2 slow", "reviews down", "recovery"};
  const char* what[] = {"all upstreams healthy", "pricing-2 answers after 300 ms",
                        "reviews refuses every call", "all upstreams healthy again"};
  for (std::size_t k = 0; k < 4; ++k) {
    weft::gateway::phase_record p;
    p.name = names[k];
    p.description = what[k];
    p.start_s = 10.0 * static_cast<double>(k);
    p.end_s = p.start_s + 10;
    p.ok = k == 2 ? 500 : 9'950;
    p.degraded = k == 2 ? 9'450 : 40;
    p.failed = 10;
    p.requests_per_s = 1000;
    p.p50_ms = 1.2;
    p.p99_ms = k == 1 ? 310 : 4.5;
    p.p999_ms = k == 1 ? 1'200 : 9;
    p.gateway_cpu_us_per_request = 31.5;
    r.phases.push_back(p);
  }
  for (int t = 1; t <= 40; ++t) {
    second_sample s;
    s.t_s = t;
    s.phase = static_cast<std::size_t>((t - 1) / 10);
    const bool slow = s.phase == 1;
    const bool reviews_down = s.phase == 2;
    s.ok = reviews_down ? 50 : 995;
    s.degraded = reviews_down ? 945 : 4;
    s.failed = 1;
    s.p50_ms = 1.2 + 0.01 * t;
    s.p99_ms = slow ? 310 : 4.5;
    s.p999_ms = slow ? 1'200 : 9;
    s.max_ms = s.p999_ms * 2;
    s.retries = slow ? 40 : 2;
    s.hedges = slow ? 120 : 0;
    s.rejections = reviews_down ? 900 : 0;
    s.bulkhead_queued = slow ? 12 : 0;
    s.gateway_cpu_s = 0.03;
    s.breakers.assign(r.upstreams.size(), breaker_view::closed);
    // pricing-2 opens during its slow phase, probes, and closes again.
    if (t >= 13 && t <= 15) s.breakers[pricing_2] = breaker_view::open;
    if (t == 16) s.breakers[pricing_2] = breaker_view::half_open;
    // reviews is open while down, half-open for the first second of recovery.
    if (t >= 21 && t <= 30) s.breakers[reviews] = breaker_view::open;
    if (t == 31) s.breakers[reviews] = breaker_view::half_open;
    r.seconds.push_back(s);
  }
  r.checks = {{"every request answered", true, "40,000 sent, 40,000 answered, 0 lost"},
              {"p99 within 50 ms outside the faults", true, "worst 4.5 ms"},
              {"reviews breaker opened", true, "open 20-30 s"},
              {"gateway CPU under 20 µs/request", false, "31.5 µs/request"}};
  r.sent = 40'000;
  r.ok = 30'350;
  r.degraded = 9'570;
  r.failed = 40;
  r.lost = 0;
  r.gateway_cpu_us_per_request = 31.5;
  return r;
}

}  // namespace weft::gateway::testing
