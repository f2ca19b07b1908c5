// weft-bench: runs the workloads of docs/workloads.md on weft and prints one JSON line per
// run (the format the peers harness reads; the timer workloads add wake-up lateness fields)
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

#include "../common/echo_service.hpp"
#include "../common/http_client_load.hpp"
#include "../common/http_service.hpp"
#include "echo_workloads.hpp"
#include "runtime_workloads.hpp"

namespace {

struct options {
  std::vector<std::string> workloads;
  std::vector<std::size_t> workers;
  int repeat = 1;
  bool json = false;
  weft::runtime_options runtime;  // workers is set per run
  int port = -1;                  // echo_server: serve on 127.0.0.1:port until SIGTERM
  std::string server_cmd;         // echo_*: the server to measure instead of weft-echo
  std::string url;                // http_client: what to GET
  std::size_t connections = 64;   // http_client: concurrent requests (and pooled connections)
  double warmup_s = 2, duration_s = 10;
};

bool is_known(const std::string& name) {
  return name == "echo_server" || name == "http_server" || name == "http_client" ||
         weft::bench::find_workload(name) != nullptr ||
         weft::bench::find_echo_workload(name) != nullptr;
}

[[noreturn]] void usage(const std::string& error) {
  std::fprintf(stderr,
               "weft-bench: %s\n"
               "usage: weft-bench [--workload NAME[,NAME...]] [--workers N[,N...]] [--repeat R] "
               "[--json]\n"
               "       [--max-lifo-polls N] [--global-queue-interval N]  (scheduler tuning)\n"
               "       [--stall-threshold-ms N]  (0: stall detector off)\n"
               "       [--busy-poll-us N]  (runtime_options::busy_poll; servers too)\n"
               "       --workload echo_server|http_server --port P   (serve on 127.0.0.1:P "
               "until SIGTERM)\n"
               "       [--server-cmd CMD] [--warmup S] [--duration S]  (echo_* workloads)\n"
               "       --workload http_client --url URL [--connections N] [--warmup S] "
               "[--duration S]\n"
               "workloads:",
               error.c_str());
  for (const auto& w : weft::bench::runtime_workloads()) {
    std::fprintf(stderr, " %.*s", static_cast<int>(w.name.size()), w.name.data());
  }
  for (const auto& w : weft::bench::echo_workloads()) {
    std::fprintf(stderr, " %.*s", static_cast<int>(w.name.size()), w.name.data());
  }
  std::fprintf(stderr, " echo_server http_server http_client");
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
    } else if (arg == "--stall-threshold-ms") {
      // 0 turns the stall detector off: its cost is measured against that.
      o.runtime.stall_threshold = std::chrono::milliseconds{parse_count(value(), arg.data())};
    } else if (arg == "--global-queue-interval") {
      o.runtime.global_queue_interval =
          static_cast<std::uint32_t>(parse_count(value(), arg.data()));
    } else if (arg == "--busy-poll-us") {
      o.runtime.busy_poll = std::chrono::microseconds{parse_count(value(), arg.data())};
    } else if (arg == "--json") {
      o.json = true;
    } else if (arg == "--port") {
      o.port = static_cast<int>(parse_count(value(), "--port"));
    } else if (arg == "--url") {
      o.url = value();
    } else if (arg == "--connections") {
      o.connections = parse_count(value(), "--connections");
      if (o.connections == 0) usage("--connections must be at least 1");
    } else if (arg == "--server-cmd") {
      o.server_cmd = value();
    } else if (arg == "--warmup" || arg == "--duration") {
      const std::string v = value();
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (end != v.c_str() + v.size() || !(d >= 0))
        usage("bad " + std::string(arg) + " '" + v + "'");
      (arg == "--warmup" ? o.warmup_s : o.duration_s) = d;
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
    if (!is_known(name)) usage("unknown workload '" + name + "'");
  }
  for (const char* server : {"echo_server", "http_server"}) {
    if (std::find(o.workloads.begin(), o.workloads.end(), server) != o.workloads.end() &&
        (o.workloads.size() != 1 || o.port < 0 || o.port > 65535)) {
      usage(std::string{server} + " runs alone and needs --port P");
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

/// The echo_* workloads: one JSON line per repetition, server CPU per round trip first.
bool run_echo(const options& o, const weft::bench::echo_workload& w, std::ostream& table) {
  weft::bench::echo_run_options eo;
  eo.tools_dir = std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
  eo.server_cmd = o.server_cmd;
  eo.warmup_s = o.warmup_s;
  eo.duration_s = o.duration_s;
  const std::string server = o.server_cmd.empty() ? "weft-echo" : o.server_cmd;
  bool ok = true;
  for (const auto requested : o.workers) {
    eo.workers = requested == 0 ? 1 : requested;  // pinned to one CPU: one worker by default
    std::vector<double> cpu, rate, p50, p99, mb;
    for (int rep = 0; rep < o.repeat; ++rep) {
      std::fprintf(stderr, "weft-bench: %.*s server=%s workers=%zu rep %d/%d\n",
                   static_cast<int>(w.name.size()), w.name.data(), server.c_str(), eo.workers,
                   rep + 1, o.repeat);
      try {
        const auto r = weft::bench::run_echo_workload(w, eo);
        cpu.push_back(r.server_cpu_us_per_op);
        rate.push_back(r.ops_per_sec);
        p50.push_back(r.p50_us);
        p99.push_back(r.p99_us);
        mb.push_back(r.mb_per_sec);
        std::printf(
            "{\"peer\":\"weft\",\"workload\":\"%.*s\",\"workers\":%zu,\"server\":\"%s\","
            "\"server_cpu_us_per_op\":%.3f,\"ops\":%.0f,\"seconds\":%.3f,\"ops_per_sec\":%.1f,"
            "\"mb_per_sec\":%.3f,\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f,\"lat_p999_us\":%.1f,"
            "\"errors\":%ld,\"peak_rss_kb\":%ld,\"server_fds_before\":%ld,\"server_fds_after\":%ld,"
            "\"client\":%s}\n",
            static_cast<int>(w.name.size()), w.name.data(), eo.workers, server.c_str(),
            r.server_cpu_us_per_op, r.ops, r.seconds, r.ops_per_sec, r.mb_per_sec, r.p50_us,
            r.p99_us, r.p999_us, r.errors, r.server_rss_kb, r.server_fds_before, r.server_fds_after,
            r.client_json.c_str());
        std::fflush(stdout);
        if (r.errors != 0) ok = false;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        ok = false;
      }
    }
    if (cpu.empty()) continue;
    char line[256];
    std::snprintf(line, sizeof line,
                  "| %.*s | %s | %zu | %.2f us (%.2f-%.2f) | %s/s | %.1f MB/s | %.0f / %.0f us |\n",
                  static_cast<int>(w.name.size()), w.name.data(), server.c_str(), eo.workers,
                  median(cpu), *std::min_element(cpu.begin(), cpu.end()),
                  *std::max_element(cpu.begin(), cpu.end()), human(median(rate)).c_str(),
                  median(mb), median(p50), median(p99));
    table << line;
  }
  return ok;
}

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  std::ostream& table = o.json ? std::cerr : std::cout;
  if (o.workloads.front() == "echo_server") {
    weft::tools::echo_server_config config;
    config.listen = weft::net::socket_address{weft::net::ip_address::v4_loopback(),
                                              static_cast<std::uint16_t>(o.port)};
    config.workers = o.workers.front() == 0 ? 1 : o.workers.front();
    config.quiet = o.json;
    config.busy_poll = o.runtime.busy_poll;
    return weft::tools::run_echo_server(config);
  }
  if (o.workloads.front() == "http_client") {
    if (o.workloads.size() != 1 || o.url.empty()) usage("http_client runs alone and needs --url");
    weft::tools::http_client_load_config config;
    config.url = o.url;
    config.connections = o.connections;
    config.warmup_s = o.warmup_s;
    config.duration_s = o.duration_s;
    return weft::tools::run_http_client_load(config);
  }
  if (o.workloads.front() == "http_server") {
    weft::tools::http_server_config config;
    config.listen = weft::net::socket_address{weft::net::ip_address::v4_loopback(),
                                              static_cast<std::uint16_t>(o.port)};
    config.workers = o.workers.front() == 0 ? 1 : o.workers.front();
    config.quiet = o.json;
    config.busy_poll = o.runtime.busy_poll;
    return weft::tools::run_http_server(config);
  }
  std::vector<row> rows;
  bool all_valid = true;
  bool echo_header = false;
  for (const auto& name : o.workloads) {
    if (const auto* ew = weft::bench::find_echo_workload(name)) {
      if (!echo_header) {
        table << "| workload | server | workers | server CPU per op, median (min-max) | ops/s | "
                 "MB/s | p50 / p99 |\n|---|---|---:|---:|---:|---:|---:|\n";
        echo_header = true;
      }
      if (!run_echo(o, *ew, table)) all_valid = false;
      continue;
    }
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
  if (rows.empty()) return all_valid ? 0 : 2;
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
