// The network workloads of docs/workloads.md run by weft-bench: echo_rr, echo_stream (two shapes) and
// echo_churn. weft-bench starts the echo server (weft-echo, or --server-cmd) pinned to CPU 0 with
// one worker, runs the neutral client echo-load pinned to CPU 1 against it, and reports the
// server's CPU time per round trip first, then round trips/s and latency percentiles.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace weft::bench {

/// One network workload: the echo-load arguments that define it.
struct echo_workload {
  std::string_view name;
  std::vector<std::string> client_args;
};

inline const std::vector<echo_workload>& echo_workloads() {
  static const std::vector<echo_workload> all = {
      {"echo_rr", {"--mode", "rr", "--connections", "64", "--depth", "1", "--size", "64"}},
      {"echo_rr_latency", {"--mode", "rr", "--connections", "1", "--depth", "1", "--size", "64"}},
      {"echo_stream", {"--mode", "rr", "--connections", "4", "--depth", "16", "--size", "512"}},
      {"echo_stream_16k", {"--mode", "rr", "--connections", "4", "--depth", "4", "--size", "16K"}},
      {"echo_churn", {"--mode", "churn", "--concurrency", "32"}},
  };
  return all;
}

inline const echo_workload* find_echo_workload(std::string_view name) {
  for (const auto& w : echo_workloads()) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

/// What one echo run measured (echo-load's JSON line, plus the server's descriptor counts).
struct echo_result {
  std::string client_json;  // echo-load's line, verbatim
  double ops = 0, seconds = 0, ops_per_sec = 0, server_cpu_us_per_op = -1, mb_per_sec = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0;
  long errors = 0;
  long server_fds_before = -1, server_fds_after = -1;
  long server_rss_kb = -1;
};

namespace detail_echo {

inline double json_number(const std::string& json, std::string_view key, double fallback = -1) {
  // Built by appends: g++ 12 warns (-Wrestrict, a false positive) on "\"" + std::string.
  std::string needle(1, '"');
  needle.append(key);
  needle.append("\":");
  const auto at = json.find(needle);
  if (at == std::string::npos) return fallback;
  return std::strtod(json.c_str() + at + needle.size(), nullptr);
}

inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error(std::string("weft-bench: no free port: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool port_open(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

inline long count_fds(pid_t pid) {
  std::error_code ec;
  long n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

inline long rss_kb(pid_t pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
  if (f == nullptr) return -1;
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "VmHWM:", 6) == 0) kb = std::strtol(line + 6, nullptr, 10);
  }
  std::fclose(f);
  return kb;
}

inline pid_t spawn(const std::vector<std::string>& argv, int stdout_fd = -1) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
  pid_t pid = 0;
  const int r = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (r != 0) {
    throw std::runtime_error("weft-bench: cannot start " + argv[0] + ": " + std::strerror(r));
  }
  return pid;
}

inline std::vector<std::string> split_words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace detail_echo

struct echo_run_options {
  std::string tools_dir;   // where weft-echo and echo-load are
  std::string server_cmd;  // empty: weft-echo; "{port}" is replaced, else --port P is appended
  std::size_t workers = 1;
  double warmup_s = 2, duration_s = 10;
};

/// Starts the server pinned to CPU 0, runs echo-load pinned to CPU 1, stops the server.
inline echo_result run_echo_workload(const echo_workload& w, const echo_run_options& o) {
  using namespace detail_echo;
  const int port = free_port();
  std::vector<std::string> server = {"taskset", "-c", "0"};
  if (o.server_cmd.empty()) {
    for (const auto& a :
         {o.tools_dir + "/weft-echo", std::string("--listen"), "127.0.0.1:" + std::to_string(port),
          std::string("--workers"), std::to_string(o.workers)}) {
      server.push_back(a);
    }
  } else {
    std::string cmd = o.server_cmd;
    bool placed = false;
    for (auto at = cmd.find("{port}"); at != std::string::npos; at = cmd.find("{port}")) {
      cmd.replace(at, 6, std::to_string(port));
      placed = true;
    }
    for (auto& a : split_words(cmd)) server.push_back(a);
    if (!placed) {
      server.push_back("--port");
      server.push_back(std::to_string(port));
    }
  }
  const int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  const pid_t server_pid = spawn(server, devnull);  // its address line is not ours to print
  ::close(devnull);
  auto stop_server = [&] {
    ::kill(server_pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 300; ++i) {
      if (::waitpid(server_pid, &status, WNOHANG) == server_pid) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(server_pid, SIGKILL);
    ::waitpid(server_pid, &status, 0);
  };
  bool up = false;
  for (int i = 0; i < 500 && !up; ++i) {
    up = port_open(port);
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!up) {
    stop_server();
    throw std::runtime_error("weft-bench: the echo server did not come up on port " +
                             std::to_string(port));
  }
  echo_result r;
  r.server_fds_before = count_fds(server_pid);
  std::vector<std::string> client = {o.tools_dir + "/echo-load",
                                     "--port",
                                     std::to_string(port),
                                     "--cpu",
                                     "1",
                                     "--server-pid",
                                     std::to_string(server_pid),
                                     "--warmup",
                                     std::to_string(o.warmup_s),
                                     "--duration",
                                     std::to_string(o.duration_s)};
  for (const auto& a : w.client_args) client.push_back(a);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("weft-bench: pipe failed");
  pid_t client_pid = 0;
  try {
    client_pid = spawn(client, pipe_fds[1]);
  } catch (...) {
    stop_server();
    throw;
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(client_pid, &status, 0);
  // Let the server close the client's connections before counting its descriptors.
  for (int i = 0; i < 100; ++i) {
    r.server_fds_after = count_fds(server_pid);
    if (r.server_fds_after <= r.server_fds_before) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  r.server_rss_kb = rss_kb(server_pid);
  stop_server();
  const auto brace = out.rfind('{');
  if (brace == std::string::npos || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("weft-bench: echo-load failed (status " + std::to_string(status) +
                             ")" + (out.empty() ? "" : ": " + out));
  }
  r.client_json = out.substr(brace);
  while (!r.client_json.empty() && (r.client_json.back() == '\n')) r.client_json.pop_back();
  const bool churn = r.client_json.find("\"cycles\"") != std::string::npos;
  r.ops = json_number(r.client_json, churn ? "cycles" : "messages", 0);
  r.seconds = json_number(r.client_json, "seconds", 0);
  r.ops_per_sec = json_number(r.client_json, churn ? "cycles_per_sec" : "messages_per_sec", 0);
  r.server_cpu_us_per_op = json_number(r.client_json, "server_cpu_us_per_op");
  r.mb_per_sec = json_number(r.client_json, "mb_per_sec", 0);
  r.p50_us = json_number(r.client_json, "p50_us", 0);
  r.p99_us = json_number(r.client_json, "p99_us", 0);
  r.p999_us = json_number(r.client_json, "p999_us", 0);
  r.errors = static_cast<long>(json_number(r.client_json, "errors", 0));
  return r;
}

}  // namespace weft::bench
