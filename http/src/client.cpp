// The client: the pool of connections per origin, the request/response exchange on one
// connection, and the lease that gives a connection back only when its exchange ended cleanly.
#include <weft/http/client.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <unordered_map>

#include <sys/socket.h>

#include <weft/http/chunked_decoder.hpp>
#include <weft/http/response_parser.hpp>
#include <weft/net/resolve.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/time/timed_out.hpp>
#include <weft/time/timeout.hpp>

#include "head_rules.hpp"

namespace weft::http {

namespace {

std::optional<std::string_view> find_field(const std::vector<field>& fields,
                                           std::string_view name) noexcept {
  for (const auto& f : fields) {
    if (iequals(f.name, name)) return std::string_view{f.value};
  }
  return std::nullopt;
}

[[noreturn]] void fail_system(int error, const std::string& origin, const char* what) {
  throw std::system_error(error, std::system_category(),
                          "weft::http::client " + origin + ": " + what);
}

[[noreturn]] void fail_protocol(const std::string& origin, std::string_view what) {
  throw std::runtime_error("weft::http::client " + origin + ": " + std::string{what});
}

}  // namespace

bool is_idempotent(std::string_view method) noexcept {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
         method == "OPTIONS" || method == "TRACE";
}

std::optional<std::string_view> client_response::header(std::string_view name) const noexcept {
  return find_field(headers, name);
}

std::optional<std::string_view> response_stream::header(std::string_view name) const noexcept {
  return find_field(headers_, name);
}

namespace detail {

/// One connection and the exchange running on it.
class client_connection {
 public:
  client_connection(net::tcp_stream s, std::string origin, const limits& l)
      : stream_(std::move(s)), origin_(std::move(origin)), parser_(l), decoder_(l), limits_(l) {}

  [[nodiscard]] const std::string& origin() const noexcept { return origin_; }
  bool reused = false;
  clock::time_point idle_since{};

  /// True when the exchange ended cleanly: the connection can carry the next one.
  [[nodiscard]] bool clean() const noexcept {
    return body_done_ && keep_alive_ && pos_ == buf_.size() && !broken_;
  }
  /// True if nothing of a response has arrived since the request was sent.
  [[nodiscard]] bool nothing_received() const noexcept { return !got_bytes_; }

  /// False if the server closed the idle connection (or sent something it must not have).
  [[nodiscard]] bool still_open() const noexcept {
    char probe = 0;
    const ssize_t n = ::recv(stream_.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  task<void> write_request(std::string_view head, std::string_view body) {
    got_bytes_ = false;
    broken_ = true;  // until the exchange ends well
    const std::array<std::span<const std::byte>, 2> parts{
        std::as_bytes(std::span{head.data(), head.size()}),
        std::as_bytes(std::span{body.data(), body.size()})};
    if (body.empty()) {
      co_await stream_.write_all(parts[0]);
    } else {
      co_await stream_.write_all(std::span<const std::span<const std::byte>>{parts});
    }
  }

  /// Reads the response head (skipping 1xx), copying it out.
  task<void> read_head(bool to_head, std::uint16_t& status, std::string& reason,
                       std::vector<field>& headers) {
    for (;;) {
      parser_.reset();
      for (;;) {
        if (pos_ < buf_.size()) {
          const auto st = parser_.parse(std::string_view{buf_}.substr(pos_), to_head);
          if (st == parse_status::complete) break;
          if (st == parse_status::error) fail_protocol(origin_, parser_.error().what);
        }
        if (!co_await fill()) {
          if (!got_bytes_)
            fail_system(ECONNRESET, origin_,
                        "the server closed the connection "
                        "before it responded");
          fail_protocol(origin_, "the server closed the connection inside the response head");
        }
      }
      const response_head& h = parser_.head();
      if (h.status == 101) fail_protocol(origin_, "101 Switching Protocols was not asked for");
      if (h.status < 200) {  // 100 Continue and other interim responses: the real one follows
        pos_ += h.size;
        continue;
      }
      status = h.status;
      reason = std::string{h.reason};
      headers.clear();
      for (const auto& f : h.headers)
        headers.push_back({std::string{f.name}, std::string{f.value}});
      framing_ = h.body;
      keep_alive_ = h.keep_alive && framing_.kind != body_kind::until_close;
      pos_ += h.size;
      remaining_ = framing_.kind == body_kind::length ? framing_.length : 0;
      received_ = 0;
      body_done_ = framing_.kind == body_kind::none ||
                   (framing_.kind == body_kind::length && remaining_ == 0);
      pending_.clear();
      pending_pos_ = 0;
      decoder_.reset();
      if (framing_.kind == body_kind::length && framing_.length > limits_.body) {
        fail_protocol(origin_, "the response's Content-Length is over the body limit");
      }
      if (body_done_) broken_ = false;
      co_return;
    }
  }

  task<std::size_t> read_body(std::span<std::byte> out) {
    if (body_done_ || out.empty()) co_return 0;
    switch (framing_.kind) {
      case body_kind::none:
        co_return 0;
      case body_kind::length: {
        std::size_t n = 0;
        if (pos_ < buf_.size()) {
          n = static_cast<std::size_t>(std::min<std::uint64_t>(
              std::min<std::uint64_t>(buf_.size() - pos_, remaining_), out.size()));
          std::memcpy(out.data(), buf_.data() + pos_, n);
          pos_ += n;
        } else {
          n = co_await stream_.read_some(
              out.first(static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, out.size()))));
          if (n == 0) fail_protocol(origin_, "the server closed the connection inside the body");
        }
        remaining_ -= n;
        if (remaining_ == 0) finish_body();
        co_return n;
      }
      case body_kind::until_close: {
        std::size_t n = 0;
        if (pos_ < buf_.size()) {
          n = std::min(buf_.size() - pos_, out.size());
          std::memcpy(out.data(), buf_.data() + pos_, n);
          pos_ += n;
        } else {
          n = co_await stream_.read_some(out);
          if (n == 0) {
            finish_body();
            co_return 0;
          }
        }
        received_ += n;
        if (received_ > limits_.body) fail_protocol(origin_, "the response body is over the limit");
        co_return n;
      }
      case body_kind::chunked:
        for (;;) {
          if (pending_pos_ < pending_.size()) {
            const std::size_t n = std::min(pending_.size() - pending_pos_, out.size());
            std::memcpy(out.data(), pending_.data() + pending_pos_, n);
            pending_pos_ += n;
            co_return n;
          }
          if (pos_ == buf_.size() && !co_await fill()) {
            fail_protocol(origin_, "the server closed the connection inside a chunked body");
          }
          const auto r = decoder_.decode(std::string_view{buf_}.substr(pos_));
          pos_ += r.consumed;
          if (r.status == decode_status::data) {
            const std::size_t n = std::min(r.data.size(), out.size());
            std::memcpy(out.data(), r.data.data(), n);
            if (n < r.data.size()) {
              pending_.assign(r.data.substr(n));
              pending_pos_ = 0;
            }
            co_return n;
          }
          if (r.status == decode_status::done) {
            finish_body();
            co_return 0;
          }
          if (r.status == decode_status::error) fail_protocol(origin_, decoder_.error().what);
        }
    }
    co_return 0;
  }

 private:
  void finish_body() noexcept {
    body_done_ = true;
    broken_ = false;
  }

  // Reads more into buf_; false at the end of the stream.
  task<bool> fill() {
    if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
      buf_.erase(0, pos_);  // at most half of what is held moves: amortised O(1) per byte
      pos_ = 0;
    }
    const std::size_t old = buf_.size();
    buf_.resize(old + 16 * 1024);
    std::size_t n = 0;
    try {
      n = co_await stream_.read_some(
          std::as_writable_bytes(std::span{buf_.data() + old, buf_.size() - old}));
    } catch (...) {
      buf_.resize(old);
      throw;
    }
    buf_.resize(old + n);
    if (n > 0) got_bytes_ = true;
    co_return n > 0;
  }

  net::tcp_stream stream_;
  std::string origin_;
  response_parser parser_;
  chunked_decoder decoder_;
  limits limits_;
  std::string buf_;
  std::size_t pos_ = 0;
  body_framing framing_{};
  std::uint64_t remaining_ = 0;
  std::uint64_t received_ = 0;
  std::string pending_;  // decoded chunk data the caller's buffer had no room for
  std::size_t pending_pos_ = 0;
  bool body_done_ = true;
  bool keep_alive_ = false;
  bool got_bytes_ = false;
  bool broken_ = false;
};

/// The connections of one origin.
struct origin_pool {
  explicit origin_pool(std::size_t max) : slots(max) {}
  semaphore slots;                                       // one unit per busy connection
  std::vector<std::unique_ptr<client_connection>> idle;  // most recently used last
};

class client_state {
 public:
  explicit client_state(client_options o) : options(std::move(o)) {
    if (options.max_connections_per_origin == 0) options.max_connections_per_origin = 1;
  }
  client_options options;
  client_stats stats;
  std::mutex lock;  // guards pools and every pool's idle list
  std::unordered_map<std::string, std::unique_ptr<origin_pool>> pools;

  origin_pool& pool_for(const std::string& origin) {
    std::lock_guard g{lock};
    auto& p = pools[origin];
    if (!p) p = std::make_unique<origin_pool>(options.max_connections_per_origin);
    return *p;
  }
};

/// A connection in use: given back to its pool when the exchange ended cleanly, closed
/// otherwise; its slot in the origin's count is given back either way.
struct connection_lease {
  std::shared_ptr<client_state> state;
  origin_pool* pool = nullptr;
  semaphore::permit permit;
  std::unique_ptr<client_connection> conn;

  connection_lease() = default;
  connection_lease(const connection_lease&) = delete;
  connection_lease& operator=(const connection_lease&) = delete;
  ~connection_lease() {
    std::unique_ptr<client_connection> closing;
    if (conn && conn->clean()) {
      conn->idle_since = clock::now();
      std::lock_guard g{state->lock};
      pool->idle.push_back(std::move(conn));
      if (pool->idle.size() > state->options.max_idle_per_origin) {
        closing = std::move(pool->idle.front());
        pool->idle.erase(pool->idle.begin());
      }
    } else if (conn) {
      closing = std::move(conn);
    }
    if (closing) state->stats.discarded.fetch_add(1, std::memory_order_relaxed);
    closing.reset();   // outside the lock: closing is a system call
    permit.release();  // after the connection is back, so a waiter finds it
  }
};

}  // namespace detail

namespace {

task<net::tcp_stream> connect_any(url u) {
  auto addresses = co_await net::resolve(u.host, u.port);
  std::exception_ptr last;
  for (const auto& a : addresses) {
    try {
      co_return co_await net::tcp_stream::connect(a);
    } catch (const std::system_error&) {
      last = std::current_exception();
    }
  }
  if (last) std::rethrow_exception(last);
  fail_system(EHOSTUNREACH, u.origin(), "the host has no address");
}

void check_header(const field& f) {
  if (!detail::is_token(f.name)) {
    throw std::invalid_argument("weft::http::client: '" + f.name + "' is not a valid header name");
  }
  if (iequals(f.name, "content-length") || iequals(f.name, "transfer-encoding") ||
      iequals(f.name, "connection")) {
    throw std::invalid_argument("weft::http::client: " + f.name +
                                " is set by the client (it frames the body)");
  }
  for (const char c : f.value) {
    if (!detail::is_field_char(static_cast<unsigned char>(c))) {
      throw std::invalid_argument("weft::http::client: the value of " + f.name +
                                  " holds a control character (CR and LF would split the "
                                  "request)");
    }
  }
}

std::string format_request_head(const client_request& req, const url& u, const client_options& o) {
  if (!detail::is_token(req.method)) {
    throw std::invalid_argument("weft::http::client: '" + req.method + "' is not a method");
  }
  std::string head;
  head.reserve(128 + req.headers.size() * 32);
  head.append(req.method).append(" ").append(u.target).append(" HTTP/1.1\r\n");
  bool host_set = false;
  bool agent_set = false;
  for (const auto& f : req.headers) {
    check_header(f);
    host_set = host_set || iequals(f.name, "host");
    agent_set = agent_set || iequals(f.name, "user-agent");
  }
  if (!host_set) head.append("Host: ").append(u.host_header()).append("\r\n");
  if (!agent_set && !o.user_agent.empty()) {
    head.append("User-Agent: ").append(o.user_agent).append("\r\n");
  }
  for (const auto& f : req.headers) head.append(f.name).append(": ").append(f.value).append("\r\n");
  // A body, or a method that usually has one, gets a length; a GET without a body gets none.
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    head.append("Content-Length: ").append(std::to_string(req.body.size())).append("\r\n");
  }
  head.append("\r\n");
  return head;
}

}  // namespace

client::client(client_options options)
    : state_(std::make_shared<detail::client_state>(std::move(options))) {}

client::~client() {
  close_idle();
}

void client::close_idle() noexcept {
  std::vector<std::unique_ptr<detail::client_connection>> closing;
  {
    std::lock_guard g{state_->lock};
    for (auto& [origin, pool] : state_->pools) {
      for (auto& c : pool->idle) closing.push_back(std::move(c));
      pool->idle.clear();
    }
  }
}

std::size_t client::close_expired() noexcept {
  std::vector<std::unique_ptr<detail::client_connection>> closing;
  const auto now = clock::now();
  {
    std::lock_guard g{state_->lock};
    for (auto& [origin, pool] : state_->pools) {
      auto& idle = pool->idle;
      // Most recently used last: the expired ones are a prefix.
      auto live = idle.begin();
      while (live != idle.end() && now - (*live)->idle_since >= state_->options.idle_timeout) {
        ++live;
      }
      for (auto it = idle.begin(); it != live; ++it) closing.push_back(std::move(*it));
      idle.erase(idle.begin(), live);
    }
  }
  state_->stats.discarded.fetch_add(closing.size(), std::memory_order_relaxed);
  return closing.size();  // closed outside the lock as `closing` goes
}

const client_stats& client::stats() const noexcept {
  return state_->stats;
}

task<std::unique_ptr<detail::connection_lease>> client::connection_for(const url& u,
                                                                       const std::string& origin,
                                                                       bool fresh) {
  detail::origin_pool& pool = state_->pool_for(origin);
  auto lease = std::make_unique<detail::connection_lease>();
  lease->state = state_;
  lease->pool = &pool;
  lease->permit = co_await pool.slots.acquire();
  {
    std::vector<std::unique_ptr<detail::client_connection>> stale;
    {
      std::lock_guard g{state_->lock};
      const auto now = clock::now();
      while (!fresh && !pool.idle.empty()) {
        auto c = std::move(pool.idle.back());
        pool.idle.pop_back();
        if (now - c->idle_since < state_->options.idle_timeout && c->still_open()) {
          lease->conn = std::move(c);
          break;
        }
        stale.push_back(std::move(c));
      }
    }
    state_->stats.discarded.fetch_add(stale.size(), std::memory_order_relaxed);
  }
  if (lease->conn) {
    lease->conn->reused = true;
    state_->stats.reused.fetch_add(1, std::memory_order_relaxed);
  } else {
    bool timed_out_connecting = false;
    std::optional<net::tcp_stream> s;
    try {
      s.emplace(co_await weft::timeout(state_->options.connect_timeout, connect_any(u)));
    } catch (const timed_out&) {
      timed_out_connecting = true;
    }
    if (timed_out_connecting) fail_system(ETIMEDOUT, origin, "connect timed out");
    s->set_nodelay(true);
    state_->stats.connects.fetch_add(1, std::memory_order_relaxed);
    lease->conn =
        std::make_unique<detail::client_connection>(std::move(*s), origin, state_->options.limits);
  }
  co_return lease;
}

task<std::unique_ptr<detail::connection_lease>> client::begin_exchange(
    const client_request& req, std::uint16_t& status, std::string& reason,
    std::vector<field>& headers) {
  const url u = url::parse(req.url);
  const std::string head = format_request_head(req, u, state_->options);
  const std::string origin = u.origin();
  const bool to_head = req.method == "HEAD";
  for (int attempt = 0;; ++attempt) {
    // A resend goes on a new connection: the other idle ones may be as stale as the first.
    auto lease = co_await connection_for(u, origin, attempt > 0);
    bool resend = false;
    try {
      co_await lease->conn->write_request(head, req.body);
      co_await lease->conn->read_head(to_head, status, reason, headers);
      co_return lease;
    } catch (const std::system_error&) {
      // A pooled connection that the server closed as the request arrived fails before any of
      // the response came: an idempotent request can safely go again on a new one, once.
      if (attempt > 0 || !lease->conn->reused || !lease->conn->nothing_received() ||
          !is_idempotent(req.method)) {
        throw;
      }
      resend = true;
    }
    if (resend) state_->stats.retried.fetch_add(1, std::memory_order_relaxed);
  }
}

task<client_response> client::request(client_request req) {
  client_response r;
  auto lease = co_await begin_exchange(req, r.status, r.reason, r.headers);
  std::array<std::byte, 16 * 1024> chunk{};
  while (const std::size_t n = co_await lease->conn->read_body(chunk)) {
    r.body.append(reinterpret_cast<const char*>(chunk.data()), n);
    if (r.body.size() > state_->options.limits.body) {
      fail_protocol(lease->conn->origin(), "the response body is over the limit");
    }
  }
  co_return r;
}

task<client_response> client::get(std::string url) {
  client_request req;
  req.url = std::move(url);
  co_return co_await request(std::move(req));
}

task<response_stream> client::stream(client_request req) {
  std::uint16_t status = 0;
  std::string reason;
  std::vector<field> headers;
  auto lease = co_await begin_exchange(req, status, reason, headers);
  co_return response_stream{std::move(lease), status, std::move(reason), std::move(headers)};
}

response_stream::response_stream(std::unique_ptr<detail::connection_lease> lease,
                                 std::uint16_t status, std::string reason,
                                 std::vector<field> headers)
    : lease_(std::move(lease)),
      status_(status),
      reason_(std::move(reason)),
      headers_(std::move(headers)) {}

response_stream::response_stream(response_stream&&) noexcept = default;
response_stream& response_stream::operator=(response_stream&&) noexcept = default;
response_stream::~response_stream() = default;

task<std::size_t> response_stream::read(std::span<std::byte> buf) {
  if (ended_) co_return 0;
  if (!lease_) throw std::logic_error("weft::http::response_stream::read on a moved-from stream");
  const std::size_t n = co_await lease_->conn->read_body(buf);
  if (n == 0 && !buf.empty()) {
    ended_ = true;
    lease_.reset();  // the body ended: the connection goes back now
  }
  co_return n;
}

task<std::string> response_stream::text() {
  std::string all;
  if (ended_) co_return all;
  const std::size_t limit = lease_->state->options.limits.body;
  std::array<std::byte, 16 * 1024> chunk{};
  while (const std::size_t n = co_await read(chunk)) {
    all.append(reinterpret_cast<const char*>(chunk.data()), n);
    if (all.size() > limit) fail_protocol("response_stream", "the response body is over the limit");
  }
  co_return all;
}

}  // namespace weft::http
