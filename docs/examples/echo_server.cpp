// The README's "Sockets in one example": a TCP echo server that stops on SIGINT or SIGTERM. The
// snippet keeps its listener to itself, so the client here finds the port the kernel picked by
// looking for this process's listening socket on 127.0.0.1, sends 40 KiB, checks that every byte
// comes back, and then sends SIGTERM to its own process, which ends the server. main() exits
// non-zero if the echo was wrong or the server did not stop on the signal. The signal goes to
// this process only, so the test suite may run it beside other tests.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <span>
#include <string>

#include <weft/net/server.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

namespace {

// The port of this process's TCP socket listening on 127.0.0.1, once there is one.
std::optional<std::uint16_t> listening_port() {
  for (int fd = 0; fd < 4096; ++fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening == 0) {
      continue;
    }
    sockaddr_in address{};
    socklen_t address_len = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &address_len) == 0 &&
        address.sin_family == AF_INET && ntohl(address.sin_addr.s_addr) == INADDR_LOOPBACK) {
      return ntohs(address.sin_port);
    }
  }
  return std::nullopt;
}

weft::task<bool> echo_once(std::uint16_t port) {
  auto conn = co_await weft::net::tcp_stream::connect(
      weft::net::socket_address::parse("127.0.0.1:" + std::to_string(port)));
  std::string sent(40 * 1024, '\0');
  for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + i % 26);
  co_await conn.write_all(std::as_bytes(std::span{sent.data(), sent.size()}));
  conn.shutdown(SHUT_WR);  // the server sees the end of the stream once it has echoed it all
  std::string received;
  std::array<std::byte, 4096> buf;
  for (std::size_t n; (n = co_await conn.read_some(buf)) != 0;) {
    received.append(reinterpret_cast<const char*>(buf.data()), n);
  }
  std::printf("echoed %zu of %zu bytes\n", received.size(), sent.size());
  co_return received == sent;
}

// Waits for the server to listen, talks to it, then stops it as a user would: SIGTERM.
weft::task<bool> client() {
  bool ok = false;
  try {
    std::optional<std::uint16_t> port;
    for (int tries = 0; tries < 5000 && !(port = listening_port()); ++tries) {
      co_await weft::sleep_for(std::chrono::milliseconds{1});
    }
    if (port) {
      std::printf("the server listens on 127.0.0.1:%u\n", static_cast<unsigned>(*port));
      ok = co_await echo_once(*port);
    } else {
      std::fprintf(stderr, "echo_server: the server never listened\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_server: client failed: %s\n", e.what());
  }
  ::kill(::getpid(), SIGTERM);
  co_return ok;
}

weft::task<bool> run() {
  auto echoed = weft::spawn(client());

  // clang-format off
  // [readme:echo_server]
  auto listener = weft::net::tcp_listener::bind(weft::net::socket_address::parse("127.0.0.1:0"));
  weft::signal_stop stop;  // SIGINT or SIGTERM: no new connections, a grace period, then cancel
  co_await weft::net::serve(listener, [](weft::net::tcp_accepted c) -> weft::task<void> {
    std::array<std::byte, 16384> buf;
    for (std::size_t n; (n = co_await c.stream.read_some(buf)) != 0;)
      co_await c.stream.write_all(std::span<const std::byte>(buf.data(), n));
  }, stop.token());
  // [/readme:echo_server]
  // clang-format on

  const bool ok = co_await echoed;
  std::printf("serve() returned on signal %d\n", stop.signal());
  co_return ok && stop.signal() == SIGTERM;
}

}  // namespace

int main() {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  const bool ok = rt.block_on(run());
  std::printf("%s\n", ok ? "echo_server: ok" : "echo_server: FAILED");
  return ok ? 0 : 1;
}
