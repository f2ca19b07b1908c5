// The README's line protocol: a connection read line by line through a buffered_reader with a
// limit. A server on 127.0.0.1 (a port the kernel picks) runs the snippet for each connection;
// one client sends four lines, another a line over the 4 KiB limit. main() checks the lines the
// handler saw and that the long line ended its connection with frame_too_long, and exits non-zero
// if not. The test suite runs this program.
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <weft/net/buffered_reader.hpp>
#include <weft/net/framing.hpp>
#include <weft/net/server.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

namespace {

std::mutex received_mutex;
std::vector<std::string> received;  // every line a handler saw

void handle(std::string_view line) {
  const std::lock_guard lock{received_mutex};
  received.emplace_back(line);
}

weft::task<void> serve_lines(weft::net::tcp_accepted c) {
  // [readme:read_lines]
  weft::net::buffered_reader in{c.stream};
  while (auto line = co_await in.read_line(4096)) {  // frame_too_long past 4 KiB; empty at EOF
    handle(*line);  // a view into the reader's buffer, valid until the next read
  }
  // [/readme:read_lines]
}

// Sends `text`, ends its side, and reads until the server closes the connection (a reset counts:
// a server that stops reading early resets a connection with unread data).
weft::task<void> send(weft::net::socket_address server, std::string text) {
  auto conn = co_await weft::net::tcp_stream::connect(server);
  co_await conn.write_all(std::as_bytes(std::span{text.data(), text.size()}));
  conn.shutdown(SHUT_WR);
  std::array<std::byte, 1024> buf;
  try {
    while (co_await conn.read_some(buf) != 0) {
    }
  } catch (const std::system_error& e) {
    if (e.code() != std::errc::connection_reset) throw;
  }
}

bool check(bool ok, const char* what) {
  std::printf("%s  %s\n", ok ? "  ok" : "FAIL", what);
  return ok;
}

weft::task<bool> run() {
  auto listener =
      weft::net::tcp_listener::bind(weft::net::socket_address::parse("127.0.0.1:0"));
  std::mutex errors_mutex;
  std::vector<std::string> errors;
  weft::net::handler_error_function on_error{
      [&](const std::exception_ptr& e, const weft::net::connection_info&) {
        try {
          std::rethrow_exception(e);
        } catch (const weft::net::frame_too_long&) {
          const std::lock_guard lock{errors_mutex};
          errors.emplace_back("frame_too_long");
        } catch (const std::exception& other) {
          const std::lock_guard lock{errors_mutex};
          errors.emplace_back(other.what());
        }
      }};
  weft::net::server_options options;
  options.grace = std::chrono::seconds{1};
  options.on_handler_error = &on_error;
  weft::net::server_stats stats;
  weft::cancel_source stop;
  auto handler = [](weft::net::tcp_accepted c) { return serve_lines(std::move(c)); };
  auto server =
      weft::spawn(weft::net::serve(listener, handler, stop.token(), options, &stats));

  co_await send(listener.local_address(), "first\nsecond\r\n\nlast without a newline");
  co_await send(listener.local_address(), std::string(5000, 'x') + "\n");
  for (int tries = 0; tries < 5000 && stats.failed.load() == 0; ++tries) {
    co_await weft::sleep_for(std::chrono::milliseconds{1});
  }
  stop.request_cancellation();
  co_await server;

  bool ok = true;
  const std::vector<std::string> expected = {"first", "second", "", "last without a newline"};
  ok &= check(received == expected, "the handler saw each line, without its \\n or \\r\\n");
  ok &= check(stats.accepted.load() == 2 && stats.failed.load() == 1,
              "two connections, one of them failed");
  ok &= check(errors == std::vector<std::string>{"frame_too_long"},
              "a line over 4 KiB ended its connection with frame_too_long");
  co_return ok;
}

}  // namespace

int main() {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  bool ok = false;
  try {
    ok = rt.block_on(run());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "read_lines: %s\n", e.what());
  }
  std::printf("%s\n", ok ? "read_lines: ok" : "read_lines: FAILED");
  return ok ? 0 : 1;
}
