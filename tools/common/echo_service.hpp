// The echo server that weft-echo and `weft-bench --workload echo_server` run: every byte read is
// written back (as the peers' echo servers do: read up to 16 KiB, write all of it), connections
// served concurrently, SIGINT/SIGTERM for a graceful stop with the connection counts printed.
#pragma once

#include <array>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <weft/cancel/cancel_token.hpp>
#include <weft/net/server.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/unix_stream.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

namespace weft::tools {

/// Echoes until the peer closes (or resets: a benchmark client that leaves is not an error).
template <class Stream>
task<void> echo_stream(Stream stream) {
  std::array<std::byte, 16 * 1024> buf;
  for (;;) {
    const std::size_t n = co_await stream.read_some(buf);
    if (n == 0) co_return;
    co_await stream.write_all(std::span<const std::byte>(buf.data(), n));
  }
}

struct echo_server_config {
  std::optional<net::socket_address> listen;  // TCP
  std::string unix_path;                      // or a Unix socket
  std::size_t workers = 1;
  bool quiet = false;  // no address line on stdout (weft-bench's JSON mode)
  std::chrono::microseconds busy_poll{0};  // runtime_options::busy_poll
};

/// Serves until SIGINT or SIGTERM; returns the process exit status.
inline int run_echo_server(const echo_server_config& config) {
  // Blocked before any thread starts, so every thread inherits the mask and only the waiter
  // below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  weft::runtime rt{weft::runtime_options{.workers = config.workers, .busy_poll = config.busy_poll}};
  if (!rt.io_available()) {
    std::fprintf(stderr, "weft-echo: %s\n", rt.io_error().c_str());
    return 1;
  }
  weft::cancel_source stop;
  net::server_stats stats;
  int signal_number = 0;
  std::thread waiter([&] {
    sigwait(&stop_signals, &signal_number);
    stop.request_cancellation();
  });
  int status = 0;
  try {
    if (!config.unix_path.empty()) {
      auto listener = net::unix_listener::bind(config.unix_path, 1024, true);
      if (!config.quiet) std::printf("weft-echo: listening on unix:%s\n", config.unix_path.c_str());
      std::fflush(stdout);
      rt.block_on(net::serve(
          listener, [](net::unix_accepted c) { return echo_stream(std::move(c.stream)); },
          stop.token(), {.grace = std::chrono::seconds{1}}, &stats));
    } else {
      auto listener = net::tcp_listener::bind(*config.listen);
      if (!config.quiet) {
        std::printf("weft-echo: listening on %s\n", listener.local_address().to_string().c_str());
      }
      std::fflush(stdout);
      rt.block_on(net::serve(
          listener,
          [](net::tcp_accepted c) {
            c.stream.set_nodelay(true);
            return echo_stream(std::move(c.stream));
          },
          stop.token(), {.grace = std::chrono::seconds{1}}, &stats));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-echo: %s\n", e.what());
    status = 1;
  }
  if (!stop.is_cancellation_requested()) pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  std::fprintf(stderr,
               "weft-echo: stopped%s; connections accepted %llu, failed %llu, cut at shutdown "
               "%llu\n",
               signal_number == SIGINT    ? " by SIGINT"
               : signal_number == SIGTERM ? " by SIGTERM"
                                          : "",
               static_cast<unsigned long long>(stats.accepted.load()),
               static_cast<unsigned long long>(stats.failed.load()),
               static_cast<unsigned long long>(stats.cancelled.load()));
  return status;
}

}  // namespace weft::tools
