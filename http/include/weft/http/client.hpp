// weft::http::client: HTTP/1.1 requests with a connection pool per origin, bodies whole or as a
// stream, cancellation and deadlines from the caller.
//
// Thread safety: one client may be shared by any number of tasks on any workers of one runtime (a
// pooled connection's reads belong to the runtime that first read it: net/stream_socket.hpp). A
// response_stream is read by one task at a time. client_stats are atomics, readable from any
// thread.
//
// Cancellation: request(), get(), stream() and response_stream's reads are cancellable at every
// wait (a pool slot, the connect, the send, the response) and throw weft::operation_cancelled. The
// connection a cancelled exchange used is closed, never pooled; a cancelled wait for a slot takes
// none. Bound a request with weft::timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <weft/http/limits.hpp>
#include <weft/http/message_head.hpp>
#include <weft/http/url.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>

namespace weft::http {

/// A request to send. `url` is absolute (http://host:port/path?query).
struct client_request {
  std::string method = "GET";
  std::string url;
  std::vector<field> headers;  // Host, Content-Length and Connection are the client's
  std::string body;
};

/// A response with its whole body.
struct client_response {
  std::uint16_t status = 0;
  std::string reason;
  std::vector<field> headers;
  std::string body;
  /// The first header named `name` (case-insensitive).
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept;
};

struct client_options {
  /// Open connections per origin (busy and idle); a request beyond it waits for one.
  std::size_t max_connections_per_origin = 64;
  /// Idle connections kept per origin; more are closed when they come back.
  std::size_t max_idle_per_origin = 16;
  /// An idle connection older than this is closed instead of reused.
  clock::duration idle_timeout = std::chrono::seconds{30};
  /// How long a connect (name resolution included) may take before it fails with ETIMEDOUT.
  clock::duration connect_timeout = std::chrono::seconds{10};
  /// What a response may be: a head over the limits or a body over limits.body fails the
  /// request (a parse error as std::runtime_error naming the rule). The body limit defaults to
  /// 64 MiB here.
  http::limits limits = [] {
    http::limits l;
    l.body = 64u << 20;
    return l;
  }();
  /// The User-Agent header; empty sends none.
  std::string user_agent = "weft";
};

/// Counters a client updates (readable from any thread).
struct client_stats {
  std::atomic<std::uint64_t> connects{0};   // connections opened
  std::atomic<std::uint64_t> reused{0};     // requests sent on a pooled connection
  std::atomic<std::uint64_t> retried{0};    // idempotent requests resent after a stale connection
  std::atomic<std::uint64_t> discarded{0};  // connections closed instead of pooled
};

namespace detail {
class client_state;
class client_connection;
struct connection_lease;
}  // namespace detail

/// A response whose body is read as it arrives. The connection goes back to the pool once the
/// body has been read to its end; dropping the stream before that closes the connection.
///
///     auto s = co_await client.stream(export_request);
///     std::array<std::byte, 65536> buf;
///     while (std::size_t n = co_await s.read(buf)) sink(std::span{buf}.first(n));
class response_stream {
 public:
  response_stream(response_stream&&) noexcept;
  response_stream& operator=(response_stream&&) noexcept;
  ~response_stream();

  [[nodiscard]] std::uint16_t status() const noexcept { return status_; }
  [[nodiscard]] const std::string& reason() const noexcept { return reason_; }
  [[nodiscard]] const std::vector<field>& headers() const noexcept { return headers_; }
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept;

  /// Up to buf.size() bytes of the body (decoded if chunked); 0 at its end (and after it). A
  /// moved-from stream throws std::logic_error.
  task<std::size_t> read(std::span<std::byte> buf);
  /// The rest of the body (within client_options::limits.body).
  task<std::string> text();

 private:
  friend class client;
  response_stream(std::unique_ptr<detail::connection_lease> lease, std::uint16_t status,
                  std::string reason, std::vector<field> headers);
  std::unique_ptr<detail::connection_lease> lease_;
  bool ended_ = false;  // the body was read to its end (the connection went back)
  std::uint16_t status_ = 0;
  std::string reason_;
  std::vector<field> headers_;
};

/// An HTTP/1.1 client for plain HTTP (service-to-service traffic; no TLS).
///
///     weft::http::client c;
///     auto r = co_await c.get("http://127.0.0.1:8080/users/7");
///     if (r.status == 200) use(r.body);
///     weft::http::client_request post;  // (a variable: g++ 12 miscompiles nested braced
///     post.method = "POST";              // initializers inside coroutines)
///     post.url = "http://127.0.0.1:8080/users";
///     post.headers.push_back(weft::http::field{"Content-Type", "application/json"});
///     post.body = R"({"name":"ada"})";
///     auto created = co_await c.request(std::move(post));
///
/// **Pool.** Connections are kept per origin (host:port) and reused, at most
/// max_connections_per_origin open at once (further requests wait, in order). A connection goes
/// back only when its exchange ended cleanly: the whole response read, keep-alive on both sides,
/// nothing extra received. One that failed, was cancelled part way, or whose response was
/// read until the close is closed instead. A pooled connection that the server has closed meanwhile
/// is noticed before reuse; if the server closes one while the request is sent (before any
/// byte of the response came), an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) is
/// sent once more on a new connection, and any other fails.
///
/// **Cancellation and deadlines** come from the caller: `weft::timeout(2s, c.get(u))` cancels the
/// request when the time is up, and the connection it used is closed, never pooled mid-response.
///
/// **Errors.** A URL that is not http:// is std::invalid_argument; a refused or failed connect,
/// a reset, a connection closed early are std::system_error with the errno (ECONNREFUSED,
/// ECONNRESET, ETIMEDOUT for the connect timeout, EPIPE) and the origin in the message; a
/// malformed response or one over the limits is std::runtime_error naming the rule. A response
/// with any status is a response, not an error (see http/retryable.hpp for resilience).
///
/// Thread safety: one client may be used from any number of tasks on any workers. It must
/// outlive its requests and streams. Idle connections are closed by the destructor.
class client {
 public:
  explicit client(client_options options = {});
  client(const client&) = delete;
  client& operator=(const client&) = delete;
  ~client();

  task<client_response> get(std::string url);
  /// Sends `req` and reads the whole response.
  task<client_response> request(client_request req);
  /// Sends `req` and returns once the response head arrived; read the body from the stream.
  task<response_stream> stream(client_request req);

  /// Closes every idle connection now.
  void close_idle() noexcept;
  /// Closes the idle connections that have been idle for idle_timeout or longer, and returns how
  /// many. Expired connections are otherwise closed only when a request to their origin finds
  /// them; a service whose traffic to an origin stops calls this periodically, so that the
  /// connections (and the upstream's resources for them) do not stay open until the next one:
  ///
  ///     for (;;) { co_await weft::sleep_for(1s); upstreams.close_expired(); }
  std::size_t close_expired() noexcept;
  [[nodiscard]] const client_stats& stats() const noexcept;

 private:
  // A connection to `origin` with a place in its count: pooled if a live one is idle, else new.
  task<std::unique_ptr<detail::connection_lease>> connection_for(const url& u,
                                                                 const std::string& origin,
                                                                 bool fresh);
  // Sends the request and reads the response head, with one resend of an idempotent request
  // whose pooled connection the server closed under it.
  task<std::unique_ptr<detail::connection_lease>> begin_exchange(const client_request& req,
                                                                 std::uint16_t& status,
                                                                 std::string& reason,
                                                                 std::vector<field>& headers);
  std::shared_ptr<detail::client_state> state_;
};

/// True for the methods RFC 9110 calls idempotent: GET, HEAD, PUT, DELETE, OPTIONS, TRACE.
[[nodiscard]] bool is_idempotent(std::string_view method) noexcept;

}  // namespace weft::http
