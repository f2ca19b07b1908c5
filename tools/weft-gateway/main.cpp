// weft-gateway: the showcase. `weft-gateway run` starts the simulated upstreams and the gateway as
// two processes, sends them an open-loop load through a scenario of faults, shows a live
// dashboard, checks the promises the gateway makes, and writes report.html. `weft-gateway
// upstreams` and `weft-gateway gateway` run one side alone (docs/gateway.md).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <CLI/CLI.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/http/client.hpp>
#include <weft/http/server.hpp>
#include <weft/io/signal.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>

#include "../common/command_line.hpp"
#include "dashboard.hpp"
#include "exposition_check.hpp"
#include "gateway.hpp"
#include "load.hpp"
#include "report.hpp"
#include "run_record.hpp"
#include "upstream.hpp"

namespace wg = weft::gateway;
using namespace std::chrono_literals;

namespace {

// --- the processes ----------------------------------------------------------------------------

// A child process, killed and reaped if it is still running when this goes.
class child_process {
 public:
  child_process() = default;
  explicit child_process(pid_t pid) : pid_(pid) {}
  child_process(child_process&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
  child_process& operator=(child_process&& o) noexcept {
    std::swap(pid_, o.pid_);
    return *this;
  }
  ~child_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  // Sends `sig` and waits up to `limit` for the exit; the exit status, or -1 if it had to be
  // killed.
  int stop(int sig, std::chrono::milliseconds limit) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    const auto until = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (std::chrono::steady_clock::now() < until) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      ::usleep(10'000);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return -1;
  }

 private:
  pid_t pid_ = -1;
};

// Forks `body` into a child whose stdout-side pipe carries "name port" lines and then "ready";
// returns the child and what it reported.
template <class F>
std::pair<child_process, std::map<std::string, std::uint16_t>> start_child(const char* what,
                                                                           F body) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    ::close(fds[0]);
    int status = 1;
    try {
      status = body(fds[1]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "weft-gateway %s: %s\n", what, e.what());
    }
    std::fflush(nullptr);
    ::_exit(status);
  }
  ::close(fds[1]);
  child_process child{pid};
  std::string text;
  std::map<std::string, std::uint16_t> ports;
  const auto until = std::chrono::steady_clock::now() + 20s;
  for (;;) {
    if (text.find("ready\n") != std::string::npos) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    pollfd p{fds[0], POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      ::close(fds[0]);
      throw std::runtime_error(std::string{what} + " did not start within 20 s");
    }
    char buf[256];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) {
      ::close(fds[0]);
      throw std::runtime_error(std::string{what} + " exited before it was ready");
    }
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  std::size_t at = 0;
  while (at < text.size()) {
    const auto nl = text.find('\n', at);
    const std::string line = text.substr(at, nl - at);
    at = nl + 1;
    const auto space = line.find(' ');
    if (space != std::string::npos) {
      ports[line.substr(0, space)] = static_cast<std::uint16_t>(std::stoi(line.substr(space + 1)));
    }
  }
  return {std::move(child), std::move(ports)};
}

void report_ready(int fd, const std::vector<std::pair<std::string, std::uint16_t>>& ports) {
  if (fd < 0) return;
  std::string text;
  for (const auto& [name, port] : ports) text += name + " " + std::to_string(port) + "\n";
  text += "ready\n";
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    throw std::system_error(errno, std::generic_category(), "reporting ports");
  }
  ::close(fd);
}

struct upstream_spec {
  const char* name;
  wg::upstream_kind kind;
};
constexpr upstream_spec upstream_specs[] = {
    {"inventory", wg::upstream_kind::inventory}, {"pricing-1", wg::upstream_kind::pricing},
    {"pricing-2", wg::upstream_kind::pricing},   {"pricing-3", wg::upstream_kind::pricing},
    {"reviews", wg::upstream_kind::reviews},
};

// `ready` is reported once the signal handler (and its descriptor) exists: from then on SIGTERM
// drains, and the process holds every descriptor it keeps while idle.
weft::task<void> serve_upstreams(std::vector<std::unique_ptr<weft::http::server>>& servers,
                                 std::vector<weft::net::tcp_listener>& listeners,
                                 const std::function<void()>& ready) {
  weft::signal_stop stop;  // SIGINT, SIGTERM
  ready();
  std::vector<weft::task<void>> serving;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    serving.push_back(servers[i]->serve(listeners[i], stop.token()));
  }
  co_await weft::when_all(std::move(serving));
}

// The upstreams: one process, one worker, five servers on consecutive ports from `first`
// (port 0: any free ports).
int upstreams_main(weft::net::socket_address first, int ready_fd) {
  ::signal(SIGPIPE, SIG_IGN);
  std::vector<std::unique_ptr<wg::upstream_sim>> sims;
  std::uint64_t seed = 11;
  for (const auto& s : upstream_specs) {
    sims.push_back(
        std::make_unique<wg::upstream_sim>(s.name, s.kind, wg::upstream_behaviour{}, seed++));
  }
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  if (!rt.io_available()) throw std::runtime_error(rt.io_error());
  std::vector<std::unique_ptr<weft::http::server>> servers;
  std::vector<weft::net::tcp_listener> listeners;
  std::vector<std::pair<std::string, std::uint16_t>> ports;
  for (std::size_t i = 0; i < sims.size(); ++i) {
    weft::http::server_options o;
    o.grace = 1s;
    o.server_name = sims[i]->name();
    o.on_error = nullptr;
    servers.push_back(std::make_unique<weft::http::server>(sims[i]->make_router(), o));
    const auto port = static_cast<std::uint16_t>(first.port() == 0 ? 0 : first.port() + i);
    listeners.push_back(weft::net::tcp_listener::bind(weft::net::socket_address{first.ip(), port}));
    ports.emplace_back(sims[i]->name(), listeners.back().local_address().port());
    if (ready_fd < 0) {
      std::printf("%-9s http://%s\n", sims[i]->name().c_str(),
                  listeners.back().local_address().to_string().c_str());
    }
  }
  std::fflush(stdout);
  const std::function<void()> ready = [&] { report_ready(ready_fd, ports); };
  rt.block_on(serve_upstreams(servers, listeners, ready));
  return 0;
}

weft::task<void> serve_gateway(weft::http::server& srv, weft::net::tcp_listener& listener,
                               wg::gateway& gw, weft::http::client& upstream_client,
                               const std::function<void()>& ready) {
  weft::signal_stop stop;  // SIGINT, SIGTERM
  ready();                 // as for the upstreams: with the handler in place
  weft::task_group group;
  group.spawn(srv.serve(listener, stop.token()));
  // Idle upstream connections past their timeout are closed, so a quiet gateway holds none.
  group.spawn(
      [](weft::cancel_token stop, weft::http::client& c, wg::gateway& gw) -> weft::task<void> {
        while (!stop.is_cancellation_requested()) {
          co_await weft::sleep_for(250ms);
          c.close_expired();
        }
        gw.start_draining();
      }(stop.token(), upstream_client, gw));
  co_await group.join();
}

struct gateway_config {
  weft::net::socket_address listen;
  wg::upstream_urls urls;
  std::size_t workers = 2;
};

int gateway_main(const gateway_config& config, int ready_fd) {
  ::signal(SIGPIPE, SIG_IGN);
  weft::http::client_options co;
  co.max_connections_per_origin = 512;
  co.max_idle_per_origin = 128;
  co.idle_timeout = 2s;
  co.connect_timeout = 1s;
  weft::http::client upstream_client{co};
  std::optional<wg::gateway> gw;  // outlives the runtime, whose tasks refer to it
  weft::runtime rt{weft::runtime_options{.workers = config.workers}};
  if (!rt.io_available()) throw std::runtime_error(rt.io_error());
  gw.emplace(config.urls, wg::client_fetch(upstream_client));
  weft::http::server_options so;
  so.grace = 2s;
  so.server_name = "weft-gateway";
  weft::http::server srv{gw->make_router(rt), so};
  auto listener = weft::net::tcp_listener::bind(config.listen);
  if (ready_fd < 0) {
    std::printf("weft-gateway on http://%s (GET /product/{id}, /metrics, /healthz)\n",
                listener.local_address().to_string().c_str());
    std::fflush(stdout);
  }
  const std::uint16_t port = listener.local_address().port();
  const std::function<void()> ready = [&] { report_ready(ready_fd, {{"gateway", port}}); };
  rt.block_on(serve_gateway(srv, listener, *gw, upstream_client, ready));
  return 0;
}

// --- the showcase -----------------------------------------------------------------------------

struct phase_plan {
  std::string name;
  std::string description;
  double seconds = 0;
  std::vector<std::pair<std::string, std::string>> actions;  // upstream, behaviour form
};

std::vector<phase_plan> scenario(const std::string& which) {
  const bool full = which == "full";
  const double k = full ? 1.0 : 0.25;
  std::vector<phase_plan> plan;
  plan.push_back(
      {"warm-up", "every upstream healthy (4 ms median, 20 ms p99)", full ? 12.0 : 3.0, {}});
  plan.push_back({"pricing-2 slow",
                  "pricing-2 turns slow: 150 ms median, 1.5 s p99; the majority goes on without it",
                  15 * k + (full ? 0 : 0.25),
                  {{"pricing-2", "median_ms=150&p99_ms=1500"}}});
  plan.push_back(
      {"reviews down",
       "reviews answers 503 with Retry-After: 2; stale cache or an empty list",
       15 * k + (full ? 0 : 0.75),
       {{"pricing-2", "median_ms=4&p99_ms=20"}, {"reviews", "outage=1&retry_after_s=2"}}});
  plan.push_back({"recovery",
                  "reviews is back; its breaker half-opens and closes",
                  15 * k + (full ? 0 : 1.25),
                  {{"reviews", "outage=0"}}});
  return plan;
}

struct showcase_options {
  std::string scenario = "full";
  double rate = 0;
  std::size_t ids = 500;
  std::size_t gateway_workers = 2;
  std::string report = "weft-gateway-report.html";
  bool plain = false;
};

weft::task<wg::answer_kind> send_product(weft::http::client& c, std::string url) {
  weft::http::client_response r = co_await c.get(std::move(url));
  if (r.status != 200) co_return wg::answer_kind::failed;
  const auto outcome = r.header("X-Weft-Outcome");
  co_return outcome&&* outcome == "degraded" ? wg::answer_kind::degraded : wg::answer_kind::ok;
}

weft::task<void> post_form(weft::http::client& c, std::string url, std::string form) {
  weft::http::client_request req;
  req.method = "POST";
  req.url = std::move(url);
  req.headers.push_back(weft::http::field{"Content-Type", "application/x-www-form-urlencoded"});
  req.body = std::move(form);
  const weft::http::client_response r = co_await c.request(std::move(req));
  if (r.status != 200) {
    throw std::runtime_error("admin request to " + req.url + " answered " +
                             std::to_string(r.status) + ": " + r.body);
  }
}

// What one scrape of /metrics read.
struct scrape {
  bool ok = false;
  std::uint64_t retries = 0, hedges = 0, rejections = 0, queued = 0;
  std::vector<wg::breaker_view> breakers;
  std::vector<std::string> problems;  // against the exposition format
};

weft::task<scrape> scrape_metrics(weft::http::client& c, std::string url) {
  scrape s;
  weft::http::client_response r = co_await c.get(std::move(url));
  if (r.status != 200) {
    s.problems.push_back("/metrics answered " + std::to_string(r.status));
    co_return s;
  }
  s.problems = wg::check_exposition(r.body);
  try {
    const auto samples = wg::parse_exposition(r.body);
    auto sum = [&](std::string_view name) {
      return static_cast<std::uint64_t>(wg::sum_of(samples, name));
    };
    s.retries = sum("weft_gateway_retries_total");
    s.hedges = sum("weft_gateway_hedges_total");
    s.rejections = sum("weft_gateway_rejections_total");
    s.queued = sum("weft_gateway_bulkhead_queued");
    for (auto name : wg::upstream_names) {
      const double v = wg::sum_of(samples, "weft_gateway_breaker_state", {{"upstream", name}});
      s.breakers.push_back(v == 0   ? wg::breaker_view::closed
                           : v == 1 ? wg::breaker_view::open
                           : v == 2 ? wg::breaker_view::half_open
                                    : wg::breaker_view::other);
    }
    s.ok = true;
  } catch (const std::exception& e) {
    s.problems.push_back(e.what());
  }
  co_return s;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void copy_totals(const wg::load_interval& total, wg::run_record& rec) {
  rec.sent = total.sent;
  rec.ok = total.ok;
  rec.degraded = total.degraded;
  rec.failed = total.failed;
  rec.lost = total.lost;
}

double ms_of(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

// The parent's side of a run: drives the phases, samples every second, draws, and finally
// checks. Fills `rec`; returns the gateway's fds/RSS observations for the checks.
struct observations {
  std::size_t fds_idle = 0;              // before the load
  std::uint64_t rss_after_warmup = 0;    // at the end of the warm-up
  std::uint64_t rss_recovery_start = 0;  // half-way through the last phase (recovery)
  std::size_t fds_after = 0;             // after the load, once idle connections closed
  std::uint64_t rss_load_end = 0;        // as the load's last answer came
  std::uint64_t rss_after = 0;  // after the load's connections closed (reported, not checked)
  double fds_settle_s = 0;
  std::size_t metric_pages = 0;
  std::vector<std::string> metric_problems;
  double degraded_bound_ms = 0;
  double max_degraded_ms = 0;
};

weft::task<void> drive(const showcase_options& opt, const std::vector<phase_plan>& plan,
                       pid_t gateway_pid, std::uint16_t gateway_port,
                       const std::map<std::string, std::uint16_t>& upstream_ports,
                       wg::run_record& rec, observations& obs, bool tty) {
  weft::http::client_options lo;
  lo.max_connections_per_origin = 2048;
  lo.max_idle_per_origin = 512;
  weft::http::client load_client{lo};
  weft::http::client admin_client;
  const std::string base = "http://127.0.0.1:" + std::to_string(gateway_port);
  wg::load_options load_opts;
  load_opts.rate = rec.rate;
  load_opts.ids = opt.ids;
  // Named, and parentheses rather than braces: g++ 12 mishandles nested braced initializers
  // inside a coroutine body.
  wg::send_fn send = [&load_client, &base](std::string id) {
    return send_product(load_client, base + "/product/" + id);
  };
  wg::open_loop_load load(load_opts, std::move(send));
  obs.fds_idle = wg::read_process_usage(gateway_pid).open_fds;
  double total_s = 0;
  for (const auto& p : plan) total_s += p.seconds;

  const auto start = weft::clock::now();
  const auto end = start + std::chrono::duration_cast<weft::clock::duration>(
                               std::chrono::duration<double>{total_s});
  weft::task_group group;
  bool load_done = false;
  group.spawn(
      [](wg::open_loop_load& load, weft::clock::time_point end, bool& done) -> weft::task<void> {
        co_await load.run(end);
        done = true;
      }(load, end, load_done));

  // The phases: set the load's phase, then change the upstreams.
  group.spawn([](const std::vector<phase_plan>& plan, wg::open_loop_load& load,
                 weft::http::client& admin, const std::map<std::string, std::uint16_t>& ports,
                 wg::run_record& rec, observations& obs, pid_t gateway_pid,
                 weft::clock::time_point start) -> weft::task<void> {
    double at = 0;
    for (std::size_t i = 0; i < plan.size(); ++i) {
      co_await weft::sleep_until(start + std::chrono::duration_cast<weft::clock::duration>(
                                             std::chrono::duration<double>{at}));
      if (i == 1) obs.rss_after_warmup = wg::read_process_usage(gateway_pid).rss_bytes;
      load.set_phase(i);
      for (const auto& [upstream, form] : plan[i].actions) {
        co_await post_form(
            admin, "http://127.0.0.1:" + std::to_string(ports.at(upstream)) + "/admin/behaviour",
            form);
      }
      rec.phases[i].start_s = at;
      at += plan[i].seconds;
      rec.phases[i].end_s = at;
    }
    // The memory reference for the end: half-way through the last phase, once the breakers have
    // closed and the caches and pools are back in use.
    const double mid = at - plan.back().seconds / 2;
    co_await weft::sleep_until(start + std::chrono::duration_cast<weft::clock::duration>(
                                           std::chrono::duration<double>{mid}));
    obs.rss_recovery_start = wg::read_process_usage(gateway_pid).rss_bytes;
  }(plan, load, admin_client, upstream_ports, rec, obs, gateway_pid, start));

  // Every second: what the load saw, what the gateway says, its CPU; then draw.
  weft::http::client scrape_client;
  const std::string metrics_url = base + "/metrics";
  double cpu_before = wg::read_process_usage(gateway_pid).cpu_seconds;
  scrape previous;
  for (int second = 1; !load_done || second <= 1; ++second) {
    co_await weft::sleep_until(start + std::chrono::seconds{second});
    wg::load_interval in = load.take_second();
    scrape now = co_await scrape_metrics(scrape_client, metrics_url);
    ++obs.metric_pages;
    for (auto& p : now.problems) {
      if (obs.metric_problems.size() < 20) obs.metric_problems.push_back(std::move(p));
    }
    const double cpu = wg::read_process_usage(gateway_pid).cpu_seconds;
    wg::second_sample s;
    s.t_s = second;
    s.ok = in.ok;
    s.degraded = in.degraded;
    s.failed = in.failed;
    s.p50_ms = ms_of(in.latency.value_at_percentile(50));
    s.p99_ms = ms_of(in.latency.value_at_percentile(99));
    s.p999_ms = ms_of(in.latency.value_at_percentile(99.9));
    s.max_ms = ms_of(in.latency.max());
    if (now.ok) {
      s.retries = now.retries - std::min(now.retries, previous.retries);
      s.hedges = now.hedges - std::min(now.hedges, previous.hedges);
      s.rejections = now.rejections - std::min(now.rejections, previous.rejections);
      s.bulkhead_queued = now.queued;
      s.breakers = now.breakers;
      previous = now;
    } else {
      s.breakers = previous.breakers;
    }
    s.gateway_cpu_s = cpu - cpu_before;
    cpu_before = cpu;
    const double t = static_cast<double>(second);
    s.phase = 0;
    for (std::size_t i = 0; i < rec.phases.size(); ++i) {
      if (rec.phases[i].end_s > 0 && t > rec.phases[i].start_s) s.phase = i;
    }
    if (t > std::ceil(total_s) && !rec.seconds.empty()) {
      // After the load stopped sending: the stragglers' answers belong to the last second,
      // not to a second of their own that would read as a collapse of throughput.
      wg::second_sample& last = rec.seconds.back();
      last.ok += s.ok;
      last.degraded += s.degraded;
      last.failed += s.failed;
      last.max_ms = std::max(last.max_ms, s.max_ms);
      last.retries += s.retries;
      last.hedges += s.hedges;
      last.rejections += s.rejections;
      last.gateway_cpu_s += s.gateway_cpu_s;
      last.breakers = s.breakers;
    } else {
      rec.seconds.push_back(std::move(s));
    }
    copy_totals(load.total(), rec);
    const std::string frame = tty ? wg::render_dashboard(rec, total_s) : wg::render_line(rec);
    std::fwrite(frame.data(), 1, frame.size(), stdout);
    std::fflush(stdout);
  }
  co_await group.join();
  obs.rss_load_end = wg::read_process_usage(gateway_pid).rss_bytes;

  // Per phase, from the whole phase's histogram.
  double cpu_total = 0;
  for (const auto& s : rec.seconds) cpu_total += s.gateway_cpu_s;
  for (std::size_t i = 0; i < rec.phases.size(); ++i) {
    const wg::load_interval p = load.phase(i);
    auto& ph = rec.phases[i];
    ph.ok = p.ok;
    ph.degraded = p.degraded;
    ph.failed = p.failed;
    const double len = std::max(ph.end_s - ph.start_s, 1e-9);
    ph.requests_per_s = static_cast<double>(p.answered()) / len;
    ph.p50_ms = ms_of(p.latency.value_at_percentile(50));
    ph.p99_ms = ms_of(p.latency.value_at_percentile(99));
    ph.p999_ms = ms_of(p.latency.value_at_percentile(99.9));
    // A second's CPU goes to the phase its middle falls in (phases need not start on a second).
    double cpu = 0;
    for (const auto& s : rec.seconds) {
      const double mid = s.t_s - 0.5;
      if (mid >= ph.start_s && (mid < ph.end_s || i + 1 == rec.phases.size())) {
        cpu += s.gateway_cpu_s;
      }
    }
    ph.gateway_cpu_us_per_request =
        p.answered() > 0 ? cpu / static_cast<double>(p.answered()) * 1e6 : 0;
  }
  const wg::load_interval total = load.total();
  copy_totals(total, rec);
  obs.max_degraded_ms = ms_of(total.max_degraded_ns);
  rec.gateway_cpu_us_per_request =
      total.answered() > 0 ? cpu_total / static_cast<double>(total.answered()) * 1e6 : 0;

  // After the load: the load's connections close, the gateway's idle upstream connections
  // expire (2 s) and are swept; its descriptors should come back to where they were.
  load_client.close_idle();
  scrape_client.close_idle();
  admin_client.close_idle();
  const auto settle_start = weft::clock::now();
  for (int i = 0; i < 100; ++i) {
    obs.fds_after = wg::read_process_usage(gateway_pid).open_fds;
    if (obs.fds_after <= obs.fds_idle) break;
    co_await weft::sleep_for(100ms);
  }
  obs.fds_settle_s = std::chrono::duration<double>(weft::clock::now() - settle_start).count();
  obs.rss_after = wg::read_process_usage(gateway_pid).rss_bytes;
}

int showcase_main(const showcase_options& opt) {
  const std::vector<phase_plan> plan = scenario(opt.scenario);
  wg::run_record rec;
  rec.title = "weft-gateway: " + opt.scenario + " scenario";
  rec.started_at = utc_now();
  rec.rate = opt.rate > 0 ? opt.rate : (opt.scenario == "full" ? 400 : 200);
  rec.gateway_workers = opt.gateway_workers;
  for (auto name : wg::upstream_names) rec.upstreams.emplace_back(name);
  for (const auto& p : plan) {
    wg::phase_record r;
    r.name = p.name;
    r.description = p.description;
    rec.phases.push_back(r);
  }

  // Forked before any thread exists in this process.
  auto [upstreams, upstream_ports] = start_child("upstreams", [](int fd) {
    return upstreams_main(weft::net::socket_address::parse("127.0.0.1:0"), fd);
  });
  gateway_config gc;
  gc.listen = weft::net::socket_address::parse("127.0.0.1:0");
  gc.workers = opt.gateway_workers;
  auto url = [&](const char* name) {
    return "http://127.0.0.1:" + std::to_string(upstream_ports.at(name));
  };
  gc.urls.inventory = url("inventory");
  gc.urls.pricing = {url("pricing-1"), url("pricing-2"), url("pricing-3")};
  gc.urls.reviews = url("reviews");
  auto [gateway, gateway_ports] =
      start_child("gateway", [&gc](int fd) { return gateway_main(gc, fd); });

  const bool tty = !opt.plain && ::isatty(STDOUT_FILENO) == 1;
  observations obs;
  const wg::gateway_policy policy;
  obs.degraded_bound_ms =
      std::chrono::duration<double, std::milli>(policy.request_deadline).count() + 250;
  {
    ::signal(SIGPIPE, SIG_IGN);
    weft::runtime rt{weft::runtime_options{.workers = 1}};
    if (!rt.io_available()) throw std::runtime_error(rt.io_error());
    rt.block_on(drive(opt, plan, gateway.pid(), gateway_ports.at("gateway"), upstream_ports, rec,
                      obs, tty));
  }
  const int gateway_exit = gateway.stop(SIGTERM, 5s);
  upstreams.stop(SIGTERM, 5s);

  // The promises.
  auto check = [&](std::string name, bool passed, std::string detail) {
    rec.checks.push_back(wg::check_record{std::move(name), passed, std::move(detail)});
  };
  char buf[512];
  std::snprintf(buf, sizeof buf, "sent %llu: ok %llu, degraded %llu, failed %llu, lost %llu",
                static_cast<unsigned long long>(rec.sent), static_cast<unsigned long long>(rec.ok),
                static_cast<unsigned long long>(rec.degraded),
                static_cast<unsigned long long>(rec.failed),
                static_cast<unsigned long long>(rec.lost));
  check("every request answered (none lost or hung)",
        rec.lost == 0 && rec.sent == rec.ok + rec.degraded + rec.failed, buf);

  const std::size_t reviews = rec.upstreams.size() - 1;
  bool opened = false, closed_after = false;
  double opened_at = -1, closed_at = -1;
  for (const auto& s : rec.seconds) {
    if (s.breakers.size() <= reviews) continue;
    const bool is_open = s.breakers[reviews] == wg::breaker_view::open ||
                         s.breakers[reviews] == wg::breaker_view::half_open;
    if (rec.phases[s.phase].name == "reviews down" && is_open && !opened) {
      opened = true;
      opened_at = s.t_s;
    }
    if (opened && rec.phases[s.phase].name == "recovery" && !is_open) {
      if (!closed_after) closed_at = s.t_s;
      closed_after = true;
    } else if (opened && is_open) {
      closed_after = false;
    }
  }
  std::snprintf(buf, sizeof buf, "%s%s", opened ? "" : "never opened while reviews was down",
                opened && !closed_after ? "still open at the end" : "");
  std::string detail = buf;
  if (opened && closed_after) {
    std::snprintf(buf, sizeof buf, "opened by t = %.0f s, closed again by t = %.0f s", opened_at,
                  closed_at);
    detail = buf;
  }
  check("reviews breaker opened during the outage and closed after recovery",
        opened && closed_after, detail);

  std::snprintf(buf, sizeof buf,
                "slowest degraded answer %.1f ms; bound %.0f ms (the request "
                "deadline and 250 ms for the load's own scheduling)",
                obs.max_degraded_ms, obs.degraded_bound_ms);
  check("degraded answers within their latency bound", obs.max_degraded_ms <= obs.degraded_bound_ms,
        buf);

  std::snprintf(buf, sizeof buf,
                "%zu before the load, %zu after it (%.1f s after the load's connections closed)",
                obs.fds_idle, obs.fds_after, obs.fds_settle_s);
  check("gateway's open descriptors back to their starting level", obs.fds_after <= obs.fds_idle,
        buf);
  // Memory: allocators and frame pools keep what the fault phases' peak concurrency needed, so
  // RSS does not fall back to the warm-up's level. What must hold is that it stops growing once
  // the faults are over: a leak per request would keep it climbing through the second half of the
  // recovery, after the breakers closed. Measured at the load's end, under the same load; the
  // tolerance takes a pool's or an arena's one-time step of a few MiB, not a slope (at 200/s the
  // short scenario's half recovery is 500 requests: a leak of 8 KiB each would exceed it).
  constexpr double mib = 1 << 20;
  const double flat_limit = static_cast<double>(obs.rss_recovery_start) * 1.10 + 4 * mib;
  const double bound = static_cast<double>(obs.rss_after_warmup) * 2 + 8 * mib;
  std::snprintf(buf, sizeof buf,
                "%.1f MiB after the warm-up, %.1f MiB half-way through the recovery, %.1f MiB "
                "at the load's end (flat within 10 %% + 4 MiB since; at most twice the warm-up's "
                "+ 8 MiB); %.1f MiB once its connections closed",
                static_cast<double>(obs.rss_after_warmup) / mib,
                static_cast<double>(obs.rss_recovery_start) / mib,
                static_cast<double>(obs.rss_load_end) / mib,
                static_cast<double>(obs.rss_after) / mib);
  check("gateway's memory flat once the faults end",
        obs.rss_after_warmup > 0 && obs.rss_recovery_start > 0 &&
            static_cast<double>(obs.rss_load_end) <= flat_limit &&
            static_cast<double>(obs.rss_load_end) <= bound,
        buf);

  std::string problems = std::to_string(obs.metric_pages) + " pages scraped";
  for (std::size_t i = 0; i < obs.metric_problems.size() && i < 3; ++i) {
    problems += "; " + obs.metric_problems[i];
  }
  check("/metrics follows the Prometheus text format on every scrape",
        obs.metric_pages > 0 && obs.metric_problems.empty(), problems);

  check("gateway drained and exited on SIGTERM", gateway_exit == 0,
        gateway_exit == 0  ? "exit status 0"
        : gateway_exit < 0 ? "still running 5 s after SIGTERM: killed"
                           : "exit status " + std::to_string(gateway_exit));

  wg::write_report(rec, opt.report);
  bool all = true;
  std::printf("\nweft-gateway: %s scenario, %.0f req/s offered, %llu sent\n", opt.scenario.c_str(),
              rec.rate, static_cast<unsigned long long>(rec.sent));
  std::printf("  %-16s %8s %9s %9s %9s %7s %8s %7s %11s\n", "phase", "ans/s", "p50", "p99", "p99.9",
              "ok", "degraded", "failed", "CPU us/req");
  for (const auto& p : rec.phases) {
    std::printf("  %-16s %8.0f %9s %9s %9s %7llu %8llu %7llu %11.0f\n", p.name.c_str(),
                p.requests_per_s, wg::format_ms(p.p50_ms).c_str(), wg::format_ms(p.p99_ms).c_str(),
                wg::format_ms(p.p999_ms).c_str(), static_cast<unsigned long long>(p.ok),
                static_cast<unsigned long long>(p.degraded),
                static_cast<unsigned long long>(p.failed), p.gateway_cpu_us_per_request);
  }
  std::printf("  gateway CPU per request over the run: %.0f us\n", rec.gateway_cpu_us_per_request);
  for (const auto& c : rec.checks) {
    std::printf("  %s  %s: %s\n", c.passed ? "PASS" : "FAIL", c.name.c_str(), c.detail.c_str());
    all = all && c.passed;
  }
  std::printf("report: %s\n", std::filesystem::absolute(opt.report).string().c_str());
  return all ? 0 : 1;
}

// run's flags. They are declared twice, on the top level (run is the default command) and on the
// run subcommand, both writing into `o`; returns the top level's, which the other commands refuse.
std::vector<CLI::Option*> add_run_options(CLI::App& app, showcase_options& o) {
  namespace cli = weft::tools::cli;
  return {
      app.add_option("--scenario", o.scenario, "full: about a minute; short: about 15 s (CI)")
          ->type_name("full|short")
          ->check(cli::one_of({"full", "short"})),
      app.add_option("--rate", o.rate, "requests per second (default 400 full, 200 short)")
          ->type_name("N")
          ->default_str("")
          ->check(
              cli::number([](double r) { return std::isfinite(r) && r > 0; }, "a positive number")),
      app.add_option("--ids", o.ids, "product ids drawn from 1..N")
          ->type_name("N")
          ->transform(cli::integer_in(1)),
      app.add_option("--gateway-workers", o.gateway_workers, "the gateway's worker threads")
          ->type_name("N")
          ->transform(cli::integer_in(1)),
      app.add_option("--report", o.report, "where report.html goes")->type_name("PATH"),
      app.add_flag("--plain", o.plain, "one line per second even on a terminal"),
  };
}

CLI::Validator address_check() {
  return weft::tools::cli::text(
      [](const std::string& a) { return weft::net::socket_address::try_parse(a).has_value(); },
      "HOST:PORT, e.g. 127.0.0.1:8100");
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = weft::tools::cli;
  CLI::App app{"The showcase service (docs/gateway.md). Without a command: run.", "weft-gateway"};
  cli::use_tool_conventions(app);
  app.require_subcommand(0, 1);

  showcase_options o;
  const std::vector<CLI::Option*> run_flags = add_run_options(app, o);
  CLI::App* run = app.add_subcommand(
      "run", "the showcase: upstreams, gateway, load, dashboard, report (the default)");
  add_run_options(*run, o);

  std::string upstreams_listen = "127.0.0.1:8101";
  CLI::App* upstreams = app.add_subcommand(
      "upstreams", "inventory, pricing-1..3 and reviews on consecutive ports from --listen's");
  upstreams->add_option("--listen", upstreams_listen, "where inventory listens")
      ->type_name("HOST:PORT")
      ->check(address_check());

  gateway_config gc;
  std::string gateway_listen = "127.0.0.1:8100";
  std::string first_upstream = "127.0.0.1:8101";
  CLI::App* gateway =
      app.add_subcommand("gateway", "the gateway alone, in front of `weft-gateway upstreams`");
  gateway->add_option("--listen", gateway_listen, "where the gateway listens")
      ->type_name("HOST:PORT")
      ->check(address_check());
  gateway->add_option("--upstreams", first_upstream, "the --listen of `weft-gateway upstreams`")
      ->type_name("HOST:PORT")
      ->check(address_check());
  gateway->add_option("--workers", gc.workers, "the gateway's worker threads")
      ->type_name("N")
      ->transform(cli::integer_in(1));
  for (CLI::Option* flag : run_flags) {
    upstreams->excludes(flag);
    gateway->excludes(flag);
  }

  if (const auto status = cli::parse(app, argc, argv)) return *status;
  try {
    if (upstreams->parsed()) {
      return upstreams_main(weft::net::socket_address::parse(upstreams_listen), -1);
    }
    if (gateway->parsed()) {
      gc.listen = weft::net::socket_address::parse(gateway_listen);
      const auto first = weft::net::socket_address::parse(first_upstream);
      auto at = [&](int k) {
        return "http://" +
               weft::net::socket_address{first.ip(), static_cast<std::uint16_t>(first.port() + k)}
                   .to_string();
      };
      gc.urls.inventory = at(0);
      gc.urls.pricing = {at(1), at(2), at(3)};
      gc.urls.reviews = at(4);
      return gateway_main(gc, -1);
    }
    return showcase_main(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-gateway: %s\n", e.what());
    return 1;
  }
}
