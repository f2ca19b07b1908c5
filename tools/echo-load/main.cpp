// echo-load: the neutral echo load client of docs/workloads.md. Plain C++20 and Linux
// calls, no weft, so it measures any echo server the same way; prints one JSON line.
//
//   echo-load --port 7000                                  echo_rr: 64 connections, depth 1, 64 B
//   echo-load --port 7000 --connections 4 --depth 4 --size 16KiB --server-pid 1234 --cpu 1
//   echo-load --mode churn --port 7000 --concurrency 32
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "churn_load.hpp"
#include "options.hpp"
#include "rr_load.hpp"
#include "run_result.hpp"

namespace {

// N connections need N descriptors; the usual soft limit of 1,024 is below what a run may ask.
void raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);  // best effort: a failure shows later as EMFILE
  }
}

void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            "--cpu " + std::to_string(cpu) + ": sched_setaffinity");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  echo_load::options o;
  try {
    o = echo_load::parse_options(args);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "echo-load: %s\nRun with --help for more information.\n", e.what());
    return 2;
  }
  if (o.show_help) {
    const std::string help = echo_load::usage_text();
    std::fwrite(help.data(), 1, help.size(), stdout);
    return 0;
  }
  // A server that closes early must show up as an error on that connection, not kill us.
  ::signal(SIGPIPE, SIG_IGN);
  try {
    raise_fd_limit();
    if (o.cpu) pin_to_cpu(*o.cpu);
    const echo_load::run_result r = o.mode == echo_load::load_mode::rr
                                        ? echo_load::run_rr(o, std::cerr)
                                        : echo_load::run_churn(o, std::cerr);
    std::printf("%s\n", echo_load::format_json(o, r).c_str());
    std::fflush(stdout);
    if (r.errors != 0) {
      std::fprintf(stderr, "echo-load: %llu error(s); see the messages above\n",
                   static_cast<unsigned long long>(r.errors));
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo-load: %s\n", e.what());
    return 1;
  }
}
