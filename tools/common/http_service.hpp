// The HTTP server that `weft-bench --workload http_server` runs for the peers' HTTP workloads
// (docs/workloads.md): GET answers "Hello, World!" as text/plain (http_plaintext, http_pipelined),
// GET /bytes/N answers N bytes (large responses), POST echoes its body (http_body). SIGINT or
// SIGTERM stops it gracefully.
#pragma once

#include <charconv>
#include <csignal>
#include <cstdio>
#include <string>
#include <string_view>

#include <signal.h>

#include <weft/cancel/cancel_token.hpp>
#include <weft/http/server.hpp>
#include <weft/io/signal.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

namespace weft::tools {

/// The benchmark's handler.
inline task<http::response> bench_handler(http::request& req) {
  if (req.method() == "POST" || req.method() == "PUT") {
    co_return http::response::text(co_await req.body().text());
  }
  const std::string_view path = req.path();
  if (path.starts_with("/bytes/")) {
    std::size_t n = 0;
    const auto digits = path.substr(7);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc{} || end != digits.data() + digits.size() || n > (64u << 20)) {
      throw http::error{400, "/bytes/N takes a count up to 64 MiB"};
    }
    co_return http::response{200}
        .set_content_type("application/octet-stream")
        .set_body(std::string(n, 'x'));
  }
  co_return http::response::text("Hello, World!");
}

struct http_server_config {
  net::socket_address listen;
  std::size_t workers = 1;
  bool quiet = false;                      // no address line on stdout
  std::chrono::microseconds busy_poll{0};  // runtime_options::busy_poll
};

inline task<void> serve_until_signal(http::server& srv, net::tcp_listener& listener) {
  weft::signal_stop stop;  // SIGINT, SIGTERM
  co_await srv.serve(listener, stop.token());
}

/// Serves until SIGINT or SIGTERM; returns the process exit status.
inline int run_http_server(const http_server_config& config) {
  ::signal(SIGPIPE, SIG_IGN);
  weft::runtime rt{weft::runtime_options{.workers = config.workers, .busy_poll = config.busy_poll}};
  if (!rt.io_available()) {
    std::fprintf(stderr, "weft-bench: %s\n", rt.io_error().c_str());
    return 1;
  }
  http::server_options options;
  options.grace = std::chrono::seconds{1};
  http::server srv{bench_handler, std::move(options)};
  int status = 0;
  try {
    auto listener = net::tcp_listener::bind(config.listen);
    if (!config.quiet) {
      std::printf("weft-bench: http on %s\n", listener.local_address().to_string().c_str());
    }
    std::fflush(stdout);
    rt.block_on(serve_until_signal(srv, listener));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-bench: %s\n", e.what());
    status = 1;
  }
  const auto& s = srv.stats();
  std::fprintf(stderr,
               "weft-bench: http stopped; connections %llu, requests %llu, refused %llu, "
               "handler errors %llu, timeouts %llu\n",
               static_cast<unsigned long long>(s.connections.accepted.load()),
               static_cast<unsigned long long>(s.requests.load()),
               static_cast<unsigned long long>(s.refused.load()),
               static_cast<unsigned long long>(s.handler_errors.load()),
               static_cast<unsigned long long>(s.timeouts.load()));
  return status;
}

}  // namespace weft::tools
