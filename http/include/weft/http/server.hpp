// weft::http::server: HTTP/1.1 over weft::net: one task per connection, keep-alive, pipelining,
// timeouts against slow clients, graceful drain and a bounded number of connections.
//
// Thread safety: the handler is called from every connection at once, on any worker (see
// handler.hpp). serve() may run on several listeners at once, from different tasks; the counters of
// stats() are atomics, readable from any thread. The server and options.on_error must outlive every
// serve().
//
// Cancellation: cancelling `stop` drains gracefully (idle connections close, busy ones answer what
// they received, whatever runs after `grace` is cancelled); cancelling the task that awaits serve()
// cancels every connection at once. A timeout cancels its connection wherever it waits; a cancelled
// handler's connection closes without a response.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include <weft/cancel/cancel_token.hpp>
#include <weft/http/handler.hpp>
#include <weft/http/limits.hpp>
#include <weft/http/request.hpp>
#include <weft/http/response.hpp>
#include <weft/net/server.hpp>
#include <weft/net/stream_socket.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>

namespace weft::http {

/// How a server reads, times out, reports and drains. Every duration is on the runtime's clock
/// (paused time included).
struct server_options {
  /// What a request may be: over a limit it is answered 413, 414 or 431 and the connection closed.
  http::limits limits{};
  /// From a request's first byte to the end of its head (slow-loris: a client that trickles a
  /// head in is cut off here, however steadily it sends).
  clock::duration header_timeout = std::chrono::seconds{10};
  /// The longest wait for the next bytes of a body the handler reads (or the server drains).
  clock::duration body_timeout = std::chrono::seconds{30};
  /// How long a connection may sit idle between requests.
  clock::duration keep_alive_timeout = std::chrono::seconds{60};
  /// The longest a response's write may wait for the client to take the bytes.
  clock::duration write_timeout = std::chrono::seconds{30};
  /// After the stop request, how long in-flight requests may take before they are cancelled.
  clock::duration grace = std::chrono::seconds{10};
  /// At most this many connections at once; at the limit accepting pauses until one ends.
  std::size_t max_connections = 10'000;
  /// The `Server` header's value; empty sends none. A value with a control character is
  /// std::invalid_argument when the server is made.
  std::string server_name = "weft";
  /// Told about every handler that threw something other than http::error (the client got a
  /// 500). The default is a rate-limited line on stderr; nullptr reports nothing. It must
  /// outlive the server.
  net::handler_error_reporter* on_error = &net::handler_error_log::standard();
};

/// Counters a server updates as it runs (readable from any thread).
struct server_stats {
  net::server_stats connections;                 // accepted, active, …
  std::atomic<std::uint64_t> requests{0};        // handed to the handler
  std::atomic<std::uint64_t> refused{0};         // malformed or over a limit: 4xx/5xx and closed
  std::atomic<std::uint64_t> handler_errors{0};  // handlers that threw (answered 500)
  std::atomic<std::uint64_t> timeouts{0};        // connections closed by a timeout
};

namespace detail {
/// What every connection of a server shares.
struct server_state {
  handler h;
  server_options options;
  server_stats stats;
  std::string server_line;  // "Server: <name>\r\n", or empty
};

/// Serves HTTP on one accepted connection until it closes; never throws (a connection's end,
/// however it came, is not the server's failure) but operation_cancelled when cancelled.
task<void> serve_connection(server_state& state, net::stream_socket& socket, cancel_token stop,
                            std::uint64_t number);
}  // namespace detail

/// An HTTP/1.1 server: a handler, options and counters. serve() runs it on a listener.
///
///     weft::http::server srv{[](weft::http::request& req) -> weft::task<weft::http::response> {
///       co_return weft::http::response::text("Hello, World!");
///     }};
///     auto listener = weft::net::tcp_listener::bind(
///         weft::net::socket_address::parse("0.0.0.0:8080"));
///     co_await srv.serve(listener, stop.token());  // until stop is cancelled, then drains
///
/// Per connection: requests are read, parsed strictly (docs/http.md) and handled one at a time;
/// pipelined requests are answered in order, and responses to requests that were already
/// buffered go out together in one write. A handler that throws http::error gets that status; one
/// that throws anything else gets 500 and is reported to options.on_error. A malformed request
/// is answered with its status (400, 413, 414, 417, 431, 501, 505) and the connection closed
/// without reading further requests. The timeouts of server_options close the connection.
///
/// Stop: accepting ends; idle connections close at once; a connection busy with a request
/// finishes it, answers the requests already received (the last answer says `Connection: close`)
/// and closes; whatever still runs after options.grace is cancelled. Cancelling the task that
/// awaits serve() cancels everything at once.
///
/// The server must outlive serve(); serve() may run on several listeners at once.
class server {
 public:
  explicit server(handler h, server_options options = {})
      : state_(std::make_unique<detail::server_state>()) {
    state_->h = std::move(h);
    state_->options = std::move(options);
    if (!state_->options.server_name.empty()) {
      // Checked like any header value: a CR or LF here would split every response.
      http::response{}.set_header("Server", state_->options.server_name);
      state_->server_line = "Server: " + state_->options.server_name + "\r\n";
    }
  }

  /// Serves connections from `listener` (tcp_listener or unix_listener) until `stop`.
  template <class Listener>
  task<void> serve(Listener& listener, cancel_token stop) {
    net::server_options net_options;
    net_options.grace = state_->options.grace;
    net_options.max_connections = state_->options.max_connections;
    // Connections report their handlers' failures themselves; what reaches serve() is a socket
    // error, which is a client's doing, not a failure of the server.
    net_options.on_handler_error = nullptr;
    detail::server_state* state = state_.get();
    std::atomic<std::uint64_t> number{0};
    co_await net::serve(
        listener,
        [state, stop, &number](auto accepted) {
          return run(*state, std::move(accepted.stream), stop,
                     number.fetch_add(1, std::memory_order_relaxed) + 1);
        },
        stop, net_options, &state_->stats.connections);
  }

  [[nodiscard]] const server_stats& stats() const noexcept { return state_->stats; }
  [[nodiscard]] const server_options& options() const noexcept { return state_->options; }

 private:
  template <class Stream>
  static task<void> run(detail::server_state& state, Stream stream, cancel_token stop,
                        std::uint64_t number) {
    if constexpr (requires { stream.set_nodelay(true); }) {
      // Responses are written whole, but a streamed body is many writes: Nagle's algorithm
      // would hold each back for the client's delayed acknowledgement.
      try {
        stream.set_nodelay(true);
      } catch (const std::system_error&) {
        // Not fatal: the connection works, only slower.
      }
    }
    co_await detail::serve_connection(state, stream, std::move(stop), number);
  }

  std::unique_ptr<detail::server_state> state_;
};

}  // namespace weft::http
