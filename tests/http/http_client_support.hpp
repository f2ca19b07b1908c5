// What the HTTP server tests share: a raw client over a weft socket that reads responses with
// weft's own response parser and chunked decoder, and a fixture that runs a server on loopback
// for the length of one test and checks that no descriptor is left open.
#pragma once

#include <array>
#include <cerrno>
#include <cstddef>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "../support/fd_leak.hpp"
#include "../support/io_uring.hpp"

#include <weft/cancel/cancel_token.hpp>
#include <weft/http/chunked_decoder.hpp>
#include <weft/http/response_parser.hpp>
#include <weft/http/server.hpp>
#include <weft/net/socket_address.hpp>
#include <weft/net/stream_socket.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>

namespace weft::testing {

inline std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span{s.data(), s.size()});
}

/// A response as the test client read it.
struct http_reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased; the last of a name wins
  std::string body;
  bool keep_alive = true;
  [[nodiscard]] bool has(const std::string& name) const { return headers.contains(name); }
  [[nodiscard]] std::string get(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string{"<none>"} : it->second;
  }
};

/// Reads responses from one connection, keeping what arrives past a response for the next.
class http_reader {
 public:
  explicit http_reader(net::stream_socket& s) : s_(s) {}

  /// The next response (a 1xx is returned like any other); nullopt at the end of the stream
  /// before a response starts. A malformed response fails the test and returns nullopt.
  task<std::optional<http_reply>> next(bool to_head = false) {
    http::response_parser p;
    for (;;) {
      if (!buf_.empty()) {
        const auto st = p.parse(buf_, to_head);
        if (st == http::parse_status::complete) break;
        if (st == http::parse_status::error) {
          ADD_FAILURE() << "malformed response: " << p.error().what << " in\n" << buf_;
          co_return std::nullopt;
        }
      }
      if (!co_await fill()) {
        if (!buf_.empty()) ADD_FAILURE() << "the stream ended inside a response head: " << buf_;
        co_return std::nullopt;
      }
    }
    http_reply r;
    const auto& h = p.head();
    r.status = h.status;
    r.keep_alive = h.keep_alive;
    for (const auto& f : h.headers) {
      std::string name{f.name};
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = std::string{f.value};
    }
    const auto framing = h.body;
    buf_.erase(0, h.size);
    switch (framing.kind) {
      case http::body_kind::none:
        break;
      case http::body_kind::length:
        while (buf_.size() < framing.length) {
          if (!co_await fill()) {
            ADD_FAILURE() << "the stream ended inside a body";
            co_return std::nullopt;
          }
        }
        r.body = buf_.substr(0, framing.length);
        buf_.erase(0, framing.length);
        break;
      case http::body_kind::chunked: {
        http::limits big;
        big.body = std::size_t{1} << 30;
        http::chunked_decoder d(big);
        for (;;) {
          const auto res = d.decode(buf_);
          if (res.status == http::decode_status::data) r.body.append(res.data);
          buf_.erase(0, res.consumed);
          if (res.status == http::decode_status::done) break;
          if (res.status == http::decode_status::error) {
            ADD_FAILURE() << "malformed chunked body: " << d.error().what;
            co_return std::nullopt;
          }
          if (res.status == http::decode_status::need_more && !co_await fill()) {
            ADD_FAILURE() << "the stream ended inside a chunked body";
            co_return std::nullopt;
          }
        }
        break;
      }
      case http::body_kind::until_close:
        while (co_await fill()) {
        }
        r.body = std::move(buf_);
        buf_.clear();
        break;
    }
    co_return r;
  }

  /// Reads until the end of the stream (a reset counts as the end); true if it ended with
  /// nothing more than what was buffered.
  task<bool> at_end() {
    const bool was_empty = buf_.empty();
    while (co_await fill()) {
    }
    co_return was_empty&& buf_.empty();
  }

  [[nodiscard]] std::string& buffered() noexcept { return buf_; }

 private:
  task<bool> fill() {
    std::array<std::byte, 16384> chunk{};
    std::size_t n = 0;
    try {
      n = co_await s_.read_some(chunk);
    } catch (const std::system_error& e) {
      if (e.code().value() != ECONNRESET) throw;
      n = 0;
    }
    buf_.append(reinterpret_cast<const char*>(chunk.data()), n);
    co_return n > 0;
  }

  net::stream_socket& s_;
  std::string buf_;
};

/// Connects, sends `request` and reads one response.
inline task<std::optional<http_reply>> round_trip(net::socket_address at, std::string request) {
  auto c = co_await net::tcp_stream::connect(at);
  co_await c.write_all(bytes_of(request));
  http_reader in{c};
  co_return co_await in.next();
}

/// Connects, sends `raw` (pipelined requests, as one write) and reads `n` responses; fails the
/// test and returns what it got if the connection ends first.
inline task<std::vector<http_reply>> replies(net::socket_address at, std::string raw, int n) {
  auto c = co_await net::tcp_stream::connect(at);
  co_await c.write_all(bytes_of(raw));
  http_reader in{c};
  std::vector<http_reply> got;
  for (int i = 0; i < n; ++i) {
    auto r = co_await in.next();
    if (!r) {
      ADD_FAILURE() << "the connection ended after " << i << " of " << n << " responses";
      break;
    }
    got.push_back(std::move(*r));
  }
  co_return got;
}

/// A runtime and a leak check; run() serves `h` on loopback while `client` runs.
class http_server_test : public needs_io_uring, public fd_leak_check {
 protected:
  explicit http_server_test(runtime_options o = runtime_options{.workers = 2}) : rt_(o) {}
  void SetUp() override {
    needs_io_uring::SetUp();
    remember_fds();
  }
  void TearDown() override {
    if (!IsSkipped()) check_fds();
  }

  /// Serves `h` until `client(address, server)` returns, then stops the server and waits for it.
  template <class Client>
  void run(http::handler h, http::server_options o, Client client) {
    rt_.block_on([&]() -> task<void> {
      auto listener = net::tcp_listener::bind(net::socket_address::parse("127.0.0.1:0"));
      http::server srv{std::move(h), std::move(o)};
      cancel_source stop;
      auto running = spawn(srv.serve(listener, stop.token()));
      co_await client(listener.local_address(), srv);
      stop.request_cancellation();
      co_await std::move(running);
    });
  }

  runtime rt_;
};

}  // namespace weft::testing
