// weft-bench: runs the workloads of ../shared/WORKLOADS.md on weft and prints one JSON line per
// run (the format ../shared/peers/run.sh reads; the timer workloads add wake-up lateness fields)
// and a readable table.
//
//   weft-bench                                  all runtime workloads, default workers, table
//   weft-bench --workload spawn_many --workers 1,2 --repeat 5
//   weft-bench --json --workload fork_join_fib --workers 2    JSON lines only on stdout
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <weft/runtime.hpp>

#include "runtime_workloads.hpp"

namespace {

struct options {
  std::vector<std::string> workloads;
  std::vector<std::size_t> workers;
  int repeat = 1;
  bool json = false;
  weft::runtime_options runtime;  // workers is set per run
};

[[noreturn]] void usage(const std::string& error) {
  std::fprintf(stderr,
               "weft-bench: %s\n"
               "usage: weft-bench [--workload NAME[,NAME...]] [--workers N[,N...]] [--repeat R] "
               "[--json]\n"
               "       [--max-lifo-polls N] [--global-queue-interval N]  (scheduler tuning)\n"
               "workloads:",
               error.c_str());
  for (const auto& w : weft::bench::runtime_workloads()) {
    std::fprintf(stderr, " %.*s", static_cast<int>(w.name.size()), w.name.data());
  }
  std::fprintf(stderr, "\n");
  std::exit(2);
}

std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const auto comma = s.find(',');
    out.emplace_back(s.substr(0, comma));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

std::size_t parse_count(const std::string& text, const char* what) {
  std::size_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end) usage(std::string{"bad "} + what + " '" + text + "'");
  return value;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(std::string{arg} + " needs a value");
      return argv[++i];
    };
    if (arg == "--workload") {
      for (auto& w : split(value())) o.workloads.push_back(w);
    } else if (arg == "--workers") {
      for (auto& w : split(value())) o.workers.push_back(parse_count(w, "--workers"));
    } else if (arg == "--repeat") {
      o.repeat = static_cast<int>(parse_count(value(), "--repeat"));
      if (o.repeat < 1) usage("--repeat must be at least 1");
    } else if (arg == "--max-lifo-polls") {
      o.runtime.max_lifo_polls = static_cast<std::uint32_t>(parse_count(value(), arg.data()));
    } else if (arg == "--global-queue-interval") {
      o.runtime.global_queue_interval =
          static_cast<std::uint32_t>(parse_count(value(), arg.data()));
    } else if (arg == "--json") {
      o.json = true;
    } else if (arg == "--help" || arg == "-h") {
      usage("runs weft's benchmark workloads");
    } else {
      usage("unknown argument '" + std::string{arg} + "'");
    }
  }
  if (o.workloads.empty()) {
    for (const auto& w : weft::bench::runtime_workloads()) o.workloads.emplace_back(w.name);
  }
  for (const auto& name : o.workloads) {
    if (weft::bench::find_workload(name) == nullptr) {
      usage("unknown workload '" + name + "'");
    }
  }
  if (o.workers.empty()) o.workers.push_back(0);
  return o;
}

long peak_rss_kb() {
  std::ifstream status{"/proc/self/status"};
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

std::string human(double v) {
  char buf[32];
  if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f M", v / 1e6);
  } else if (v >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1f k", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  }
  return buf;
}

struct row {
  std::string workload;
  std::string unit;
  std::size_t workers;
  std::vector<double> ops_per_sec;
  std::vector<double> seconds;
  long peak_rss_kb;
  std::vector<weft::bench::lateness_percentiles> lateness;  // the timer workloads only
  std::vector<double> idle_cpu_ms;                          // idle_timers only
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// The extra JSON fields of a timer workload; run.sh keeps fields it does not know.
std::string lateness_json(const std::optional<weft::bench::lateness_percentiles>& l) {
  if (!l) return {};
  char buf[128];
  std::snprintf(buf, sizeof buf,
                ",\"lateness_p50_us\":%.3f,\"lateness_p99_us\":%.3f,\"lateness_max_us\":%.3f",
                l->p50_us, l->p99_us, l->max_us);
  return buf;
}

std::string idle_cpu_json(const std::optional<double>& cpu_seconds) {
  if (!cpu_seconds) return {};
  char buf[64];
  std::snprintf(buf, sizeof buf, ",\"idle_cpu_ms\":%.3f", *cpu_seconds * 1e3);
  return buf;
}

std::string idle_cpu_cell(const std::vector<double>& runs) {
  if (runs.empty()) return "-";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2f ms", median(runs));
  return buf;
}

/// The table's lateness column: the median over the runs of each percentile.
std::string lateness_cell(const std::vector<weft::bench::lateness_percentiles>& runs) {
  if (runs.empty()) return "-";
  std::vector<double> p50, p99, max;
  for (const auto& l : runs) {
    p50.push_back(l.p50_us);
    p99.push_back(l.p99_us);
    max.push_back(l.max_us);
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.1f / %.1f / %.1f us", median(p50), median(p99), median(max));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  std::ostream& table = o.json ? std::cerr : std::cout;
  std::vector<row> rows;
  bool all_valid = true;
  for (const auto& name : o.workloads) {
    const auto* w = weft::bench::find_workload(name);
    for (const auto workers : o.workers) {
      auto runtime_options = o.runtime;
      runtime_options.workers = workers;
      weft::runtime rt{runtime_options};
      row r{name, std::string{w->unit}, rt.worker_count(), {}, {}, 0, {}, {}};
      for (int rep = 0; rep < o.repeat; ++rep) {
        std::fprintf(stderr, "weft-bench: %s workers=%zu rep %d/%d\n", name.c_str(),
                     rt.worker_count(), rep + 1, o.repeat);
        const auto result = w->run(rt);
        if (!result.valid) {
          std::fprintf(stderr, "weft-bench: %s computed a wrong result\n", name.c_str());
          all_valid = false;
        }
        const double rate = static_cast<double>(result.ops) / result.seconds;
        r.ops_per_sec.push_back(rate);
        r.seconds.push_back(result.seconds);
        r.peak_rss_kb = peak_rss_kb();
        if (result.lateness) r.lateness.push_back(*result.lateness);
        if (result.idle_cpu_seconds) r.idle_cpu_ms.push_back(*result.idle_cpu_seconds * 1e3);
        std::printf(
            "{\"peer\":\"weft\",\"workload\":\"%s\",\"workers\":%zu,\"ops\":%llu,\"seconds\":%.6f,"
            "\"ops_per_sec\":%.0f,\"peak_rss_kb\":%ld%s%s%s}\n",
            name.c_str(), rt.worker_count(), static_cast<unsigned long long>(result.ops),
            result.seconds, rate, r.peak_rss_kb, lateness_json(result.lateness).c_str(),
            idle_cpu_json(result.idle_cpu_seconds).c_str(),
            result.valid ? "" : ",\"error\":\"wrong result\"");
        std::fflush(stdout);
      }
      rows.push_back(std::move(r));
    }
  }
  if (!o.json) table << "\n";
  table << "| workload | workers | median ops/s | median time | runs | peak RSS | wake-up lateness "
           "p50 / p99 / max | CPU while idle |\n"
        << "|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    char time[32];
    std::snprintf(time, sizeof time, "%.1f ms", median(r.seconds) * 1e3);
    table << "| " << r.workload << " | " << r.workers << " | " << human(median(r.ops_per_sec))
          << r.unit << "/s | " << time << " | " << r.ops_per_sec.size() << " | "
          << r.peak_rss_kb / 1024 << " MiB | " << lateness_cell(r.lateness) << " | "
          << idle_cpu_cell(r.idle_cpu_ms) << " |\n";
  }
  return all_valid ? 0 : 2;
}
