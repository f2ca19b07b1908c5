// weft-bench: runs the workloads of docs/workloads.md on weft and prints one JSON line per
// run (the format the peers harness reads; the timer workloads add wake-up lateness fields)
// and a readable table.
//
//   weft-bench                                  all runtime workloads, default workers, table
//   weft-bench --workload spawn_many --workers 1,2 --repeat 5
//   weft-bench --json --workload fork_join_fib --workers 2    JSON lines only on stdout
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <weft/runtime.hpp>

#include "../common/command_line.hpp"
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

// Every name --workload accepts, in the order the help lists them.
std::vector<std::string> known_workloads() {
  std::vector<std::string> names;
  for (const auto& w : weft::bench::runtime_workloads()) names.emplace_back(w.name);
  for (const auto& w : weft::bench::echo_workloads()) names.emplace_back(w.name);
  names.insert(names.end(), {"echo_server", "http_server", "http_client"});
  return names;
}

bool has(const std::vector<std::string>& workloads, const char* name) {
  return std::find(workloads.begin(), workloads.end(), name) != workloads.end();
}

// Parses the command line into `o`. Returns the status to exit with instead of running: 0 after
// --help, 2 for a bad command line.
std::optional<int> parse(int argc, char** argv, options& o) {
  namespace cli = weft::tools::cli;
  CLI::App app{
      "Runs weft's benchmark workloads (docs/workloads.md): one JSON line per run on "
      "stdout, and a table (on stderr with --json).",
      "weft-bench"};
  cli::use_tool_conventions(app);
  const std::vector<std::string> names = known_workloads();
  std::string listed;
  for (const auto& n : names) listed += " " + n;
  app.footer("workloads:" + listed);
  // The list flags take one value each time and append: `--workers 1 --workers 2` is
  // `--workers 1,2`, and `--workers 1 2` is refused as before.
  app.add_option("--workload", o.workloads, "the workloads to run (default: the runtime ones)")
      ->type_name("NAME[,NAME...]")
      ->delimiter(',')
      ->expected(1)
      ->take_all()
      ->default_str("")
      ->check(cli::one_of(names));
  app.add_option("--workers", o.workers,
                 "worker counts, a run each (default, 0: the CPUs; echo_* and the servers: 1)")
      ->type_name("N[,N...]")
      ->delimiter(',')
      ->expected(1)
      ->take_all()
      ->default_str("")
      ->transform(cli::integer_in(0));
  app.add_option("--repeat", o.repeat, "repetitions of every run")
      ->type_name("R")
      ->transform(cli::integer_in(1, INT_MAX));
  app.add_flag("--json", o.json, "only the JSON lines on stdout; the table goes to stderr");

  const std::string tuning = "Runtime tuning (runtime_options; the servers take --busy-poll-us)";
  app.add_option("--max-lifo-polls", o.runtime.max_lifo_polls, "runtime_options::max_lifo_polls")
      ->type_name("N")
      ->group(tuning)
      ->transform(cli::integer_in(0, UINT32_MAX));
  app.add_option("--global-queue-interval", o.runtime.global_queue_interval,
                 "runtime_options::global_queue_interval")
      ->type_name("N")
      ->group(tuning)
      ->transform(cli::integer_in(0, UINT32_MAX));
  // 0 turns the stall detector off: its cost is measured against that.
  app.add_option_function<std::uint32_t>(
         "--stall-threshold-ms",
         [&o](std::uint32_t ms) { o.runtime.stall_threshold = std::chrono::milliseconds{ms}; },
         "0: the stall detector off")
      ->type_name("N")
      ->group(tuning)
      ->default_str(std::to_string(o.runtime.stall_threshold.count()))
      ->transform(cli::integer_in(0, UINT32_MAX));
  app.add_option_function<std::uint32_t>(
         "--busy-poll-us",
         [&o](std::uint32_t us) { o.runtime.busy_poll = std::chrono::microseconds{us}; },
         "runtime_options::busy_poll")
      ->type_name("N")
      ->group(tuning)
      ->default_str(std::to_string(o.runtime.busy_poll.count()))
      ->transform(cli::integer_in(0, UINT32_MAX));

  const std::string servers = "Servers and clients";
  app.add_option("--port", o.port,
                 "echo_server, http_server: serve on 127.0.0.1:P until SIGTERM (they run alone)")
      ->type_name("P")
      ->group(servers)
      ->default_str("")
      ->transform(cli::integer_in(0, 65535));
  app.add_option("--server-cmd", o.server_cmd,
                 "echo_*: the server to measure instead of weft-echo (\"{port}\" is replaced, "
                 "else --port P is appended)")
      ->type_name("CMD")
      ->group(servers)
      ->default_str("");
  app.add_option("--url", o.url, "http_client: what to GET (it runs alone)")
      ->type_name("URL")
      ->group(servers)
      ->default_str("");
  app.add_option("--connections", o.connections,
                 "http_client: concurrent requests (and pooled connections)")
      ->type_name("N")
      ->group(servers)
      ->transform(cli::integer_in(1));
  const auto seconds = cli::number([](double s) { return s >= 0; }, "seconds, 0 or more");
  app.add_option("--warmup", o.warmup_s, "echo_*, http_client: seconds of load before measuring")
      ->type_name("S")
      ->group(servers)
      ->check(seconds);
  app.add_option("--duration", o.duration_s, "echo_*, http_client: seconds measured")
      ->type_name("S")
      ->group(servers)
      ->check(seconds);

  // The checks across flags, after each flag's own (and after --help, which needs none).
  app.callback([&o] {
    if (o.workloads.empty()) {
      for (const auto& w : weft::bench::runtime_workloads()) o.workloads.emplace_back(w.name);
    }
    for (const char* server : {"echo_server", "http_server"}) {
      if (has(o.workloads, server) && (o.workloads.size() != 1 || o.port < 0)) {
        throw CLI::ValidationError("--workload",
                                   std::string{server} + " runs alone and needs --port P");
      }
    }
    if (has(o.workloads, "http_client") && (o.workloads.size() != 1 || o.url.empty())) {
      throw CLI::ValidationError("--workload", "http_client runs alone and needs --url URL");
    }
    if (o.workers.empty()) o.workers.push_back(0);
  });
  return cli::parse(app, argc, argv);
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
  // The timer workloads' wake-up lateness, or flow_events' added latency.
  std::vector<weft::bench::lateness_percentiles> lateness;
  std::vector<double> idle_cpu_ms;                          // idle_timers only
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// The extra JSON fields of a timer workload; run.sh keeps fields it does not know.
std::string lateness_json(const std::optional<weft::bench::lateness_percentiles>& l,
                          const char* field = "lateness") {
  if (!l) return {};
  char buf[160];
  std::snprintf(buf, sizeof buf, ",\"%s_p50_us\":%.3f,\"%s_p99_us\":%.3f,\"%s_max_us\":%.3f",
                field, l->p50_us, field, l->p99_us, field, l->max_us);
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
  options o;
  if (const auto status = parse(argc, argv, o)) return *status;
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
        if (result.latency) r.lateness.push_back(*result.latency);
        if (result.idle_cpu_seconds) r.idle_cpu_ms.push_back(*result.idle_cpu_seconds * 1e3);
        std::printf(
            "{\"peer\":\"weft\",\"workload\":\"%s\",\"workers\":%zu,\"ops\":%llu,\"seconds\":%.6f,"
            "\"ops_per_sec\":%.0f,\"peak_rss_kb\":%ld%s%s%s%s}\n",
            name.c_str(), rt.worker_count(), static_cast<unsigned long long>(result.ops),
            result.seconds, rate, r.peak_rss_kb, lateness_json(result.lateness).c_str(),
            lateness_json(result.latency, "latency").c_str(),
            idle_cpu_json(result.idle_cpu_seconds).c_str(),
            result.valid ? "" : ",\"error\":\"wrong result\"");
        std::fflush(stdout);
      }
      rows.push_back(std::move(r));
    }
  }
  if (rows.empty()) return all_valid ? 0 : 2;
  if (!o.json) table << "\n";
  table << "| workload | workers | median ops/s | median time | runs | peak RSS | lateness or "
           "latency p50 / p99 / max | CPU while idle |\n"
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
