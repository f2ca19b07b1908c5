// The live dashboard and the plain per-second line.
#include "dashboard.hpp"

#include <algorithm>
#include <cstdio>

namespace weft::gateway {

namespace {

const char* breaker_name(breaker_view b) {
  switch (b) {
    case breaker_view::closed:
      return "closed";
    case breaker_view::open:
      return "OPEN";
    case breaker_view::half_open:
      return "half-open";
    case breaker_view::other:
      return "other";
  }
  return "?";
}

const char* breaker_colour(breaker_view b) {
  switch (b) {
    case breaker_view::closed:
      return "\x1b[32m";
    case breaker_view::open:
      return "\x1b[1;31m";
    case breaker_view::half_open:
      return "\x1b[33m";
    case breaker_view::other:
      return "\x1b[35m";
  }
  return "";
}

std::string format(const char* fmt, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

std::string ms(double v) {
  if (v >= 1000) return format("%.2f s", v / 1000);
  if (v >= 100) return format("%.0f ms", v);
  return format("%.1f ms", v);
}

// A bar of `width` cells: ok green, degraded yellow, failed red.
std::string mix_bar(std::uint64_t ok, std::uint64_t degraded, std::uint64_t failed, int width) {
  const double total = static_cast<double>(ok + degraded + failed);
  if (total == 0) return std::string(static_cast<std::size_t>(width), ' ');
  const int d = static_cast<int>(static_cast<double>(degraded) / total * width + 0.5);
  const int f = static_cast<int>(static_cast<double>(failed) / total * width + 0.5);
  const int o = std::max(0, width - d - f);
  std::string s = "\x1b[42m" + std::string(static_cast<std::size_t>(o), ' ');
  s += "\x1b[43m" + std::string(static_cast<std::size_t>(d), ' ');
  s += "\x1b[41m" + std::string(static_cast<std::size_t>(f), ' ') + "\x1b[0m";
  return s;
}

}  // namespace

std::string render_dashboard(const run_record& r, double run_length_s) {
  const second_sample& s = r.seconds.back();
  const std::string phase = s.phase < r.phases.size() ? r.phases[s.phase].name : "";
  const std::string what = s.phase < r.phases.size() ? r.phases[s.phase].description : "";
  const std::uint64_t answered = s.ok + s.degraded + s.failed;
  std::string out = "\x1b[H\x1b[2J";
  out += format(
      "\x1b[1mweft-gateway\x1b[0m  %.0f req/s offered, %zu gateway workers   t = %4.0f / %.0f s\n",
      r.rate, r.gateway_workers, s.t_s, run_length_s);
  out += format("phase \x1b[1;36m%-22s\x1b[0m %s\n\n", phase.c_str(), what.c_str());
  out += format("  answers/s  %6llu    p50 %-9s p99 %-9s p99.9 %-9s max %s\n",
                static_cast<unsigned long long>(answered), ms(s.p50_ms).c_str(),
                ms(s.p99_ms).c_str(), ms(s.p999_ms).c_str(), ms(s.max_ms).c_str());
  out += format("  this second  ok %-6llu degraded %-6llu failed %-6llu  ",
                static_cast<unsigned long long>(s.ok), static_cast<unsigned long long>(s.degraded),
                static_cast<unsigned long long>(s.failed));
  out += mix_bar(s.ok, s.degraded, s.failed, 30) + "\n";
  out += format("  so far       ok %-6llu degraded %-6llu failed %-6llu lost %llu\n\n",
                static_cast<unsigned long long>(r.ok), static_cast<unsigned long long>(r.degraded),
                static_cast<unsigned long long>(r.failed), static_cast<unsigned long long>(r.lost));
  out += "  breakers    ";
  for (std::size_t i = 0; i < r.upstreams.size() && i < s.breakers.size(); ++i) {
    out += format("%s %s%-9s\x1b[0m  ", r.upstreams[i].c_str(), breaker_colour(s.breakers[i]),
                  breaker_name(s.breakers[i]));
    if (i == 1) out += "\n              ";
  }
  out += "\n";
  out +=
      format("  per second  retries %-5llu hedges %-5llu rejections %-5llu bulkhead queue %llu\n",
             static_cast<unsigned long long>(s.retries), static_cast<unsigned long long>(s.hedges),
             static_cast<unsigned long long>(s.rejections),
             static_cast<unsigned long long>(s.bulkhead_queued));
  out += format("  gateway CPU %.0f %% of a core\n", s.gateway_cpu_s * 100);
  return out;
}

std::string render_line(const run_record& r) {
  const second_sample& s = r.seconds.back();
  const std::string phase = s.phase < r.phases.size() ? r.phases[s.phase].name : "";
  std::string breakers;
  for (std::size_t i = 0; i < r.upstreams.size() && i < s.breakers.size(); ++i) {
    if (s.breakers[i] != breaker_view::closed) {
      breakers += " " + r.upstreams[i] + "=" + breaker_name(s.breakers[i]);
    }
  }
  if (breakers.empty()) breakers = " all closed";
  return format(
      "t=%3.0fs %-16s ans/s %5llu p50 %-8s p99 %-8s p99.9 %-8s ok %llu degraded %llu failed %llu "
      "| retries %llu hedges %llu rejections %llu queue %llu | breakers:%s\n",
      s.t_s, phase.c_str(), static_cast<unsigned long long>(s.ok + s.degraded + s.failed),
      ms(s.p50_ms).c_str(), ms(s.p99_ms).c_str(), ms(s.p999_ms).c_str(),
      static_cast<unsigned long long>(s.ok), static_cast<unsigned long long>(s.degraded),
      static_cast<unsigned long long>(s.failed), static_cast<unsigned long long>(s.retries),
      static_cast<unsigned long long>(s.hedges), static_cast<unsigned long long>(s.rejections),
      static_cast<unsigned long long>(s.bulkhead_queued), breakers.c_str());
}

}  // namespace weft::gateway
