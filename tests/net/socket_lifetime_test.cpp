// Sockets that outlive the runtime that ran them: destroying one afterwards is harmless (no
// use-after-free: run under ASan), reads and accepts then fail with a clear std::logic_error,
// operations that hold no runtime state (writes, options, close) work from another runtime, and
// a socket whose reads belong to one live runtime refuses reads from another. Every test checks
// that no descriptor is left open, queued accepted connections included.
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/net/udp_socket.hpp>
#include <weft/net/unix_stream.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

#include <poll.h>
#include <sys/socket.h>

#include <cstring>

#include <gtest/gtest.h>

#include "../support/eventually.hpp"
#include "../support/fd_leak.hpp"
#include "../support/io_uring.hpp"

#include <weft/net/socket_address.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/yield.hpp>

namespace {

using weft::net::socket_address;
using weft::net::tcp_listener;
using weft::net::tcp_stream;
using weft::net::udp_socket;
using weft::net::unix_listener;
using weft::net::unix_stream;
using weft::testing::eventually;
using weft::testing::fd_leak_check;

std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span{s.data(), s.size()});
}

std::string text_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

socket_address loopback_v4() {
  return socket_address::parse("127.0.0.1:0");
}

weft::runtime_options one_worker() {
  return weft::runtime_options{.workers = 1};
}

/// Checks that the message of a logic_error from `f` contains `what`.
template <class F>
void expect_logic_error(F f, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << "no std::logic_error (expected one saying \"" << what << "\")";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string{e.what()}.find(what), std::string::npos) << e.what();
  }
}

/// Sockets made in one runtime and kept by the test after it.
struct tcp_kept {
  std::optional<tcp_listener> listener;
  std::optional<tcp_stream> client;
  std::optional<tcp_stream> server;
};

/// In `rt`: a loopback connection whose server side has read "hi" (its multishot receive is armed
/// on rt's worker), with the listener that accepted it (its multishot accept armed there too).
void make_tcp_pair(weft::runtime& rt, tcp_kept& k) {
  rt.block_on([&]() -> weft::task<void> {
    k.listener = tcp_listener::bind(loopback_v4());
    auto client = co_await tcp_stream::connect(k.listener->local_address());
    auto accepted = co_await k.listener->accept();
    co_await client.write_all(bytes_of("hi"));
    std::array<std::byte, 2> buf{};
    const std::size_t n = co_await accepted.stream.read_exact(buf);
    EXPECT_EQ(n, 2u);
    k.client = std::move(client);
    k.server = std::move(accepted.stream);
  });
}

class SocketLifetime : public weft::testing::needs_io_uring, protected fd_leak_check {
 protected:
  void SetUp() override {
    needs_io_uring::SetUp();
    remember_fds();  // before any runtime of the test exists
  }
  void TearDown() override {
    if (!IsSkipped()) check_fds();
  }
};

// --- destroying after the runtime ---------------------------------------------------------------

TEST_F(SocketLifetime, AStreamAndAListenerWithArmedMultishotsAreDestroyedAfterTheirRuntime) {
  tcp_kept k;
  {
    weft::runtime rt{one_worker()};
    make_tcp_pair(rt, k);
  }
  k.server.reset();
  k.client.reset();
  k.listener.reset();
}

TEST_F(SocketLifetime, AStreamReadToItsEndIsDestroyedAfterItsRuntime) {
  // The multishot ended with the stream (no longer armed, so the reactor no longer tracks it),
  // yet it still names the worker that ran it.
  std::optional<tcp_stream> server;
  {
    weft::runtime rt{one_worker()};
    rt.block_on([&]() -> weft::task<void> {
      auto listener = tcp_listener::bind(loopback_v4());
      auto client = co_await tcp_stream::connect(listener.local_address());
      auto accepted = co_await listener.accept();
      co_await client.write_all(bytes_of("bye"));
      client.close();
      std::array<std::byte, 8> buf{};
      std::size_t total = 0;
      for (std::size_t n; (n = co_await accepted.stream.read_some(buf)) != 0;) total += n;
      EXPECT_EQ(total, 3u);
      server = std::move(accepted.stream);
    });
  }
  server.reset();
}

TEST_F(SocketLifetime, ConnectionsQueuedInAListenerAtShutdownAreClosed) {
  std::optional<tcp_listener> listener;
  std::vector<int> clients;
  {
    weft::runtime rt{one_worker()};
    rt.block_on([&]() -> weft::task<void> {
      listener = tcp_listener::bind(loopback_v4());
      auto first = co_await tcp_stream::connect(listener->local_address());
      auto accepted = co_await listener->accept();  // arms the multishot accept
      // Three more connect; the armed accept takes them into the listener's queue, not handed
      // out before the runtime goes.
      for (int i = 0; i < 3; ++i) {
        auto c = co_await tcp_stream::connect(listener->local_address());
        clients.push_back(c.release());
      }
      for (int i = 0; i < 100; ++i) co_await weft::yield();  // the worker reaps the accepts
    });
  }
  listener.reset();  // closes the queued connections it never handed out
  // Each client sees its connection end: EOF (the queued accepted socket was closed) or a reset
  // (it was still in the kernel's backlog). A leaked server side would leave it readable never.
  for (int fd : clients) {
    pollfd p{fd, POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 10'000), 1) << "the server side of a queued connection was not closed";
    char byte = 0;
    const auto n = ::recv(fd, &byte, 1, MSG_DONTWAIT);
    EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << n << " " << std::strerror(errno);
    ::close(fd);
  }
}

TEST_F(SocketLifetime, UnixStreamsAndAUnixListenerAreDestroyedAfterTheirRuntime) {
  const std::string path = "@weft-socket-lifetime-" + std::to_string(::getpid());
  std::optional<unix_listener> listener;
  std::optional<unix_stream> a, b, accepted;
  {
    weft::runtime rt{one_worker()};
    rt.block_on([&]() -> weft::task<void> {
      auto [x, y] = unix_stream::pair();
      co_await x.write_all(bytes_of("ping"));
      std::array<std::byte, 4> buf{};
      const std::size_t n = co_await y.read_exact(buf);
      EXPECT_EQ(n, 4u);
      listener = unix_listener::bind(path);
      auto client = co_await unix_stream::connect(path);
      auto conn = co_await listener->accept();
      a = std::move(x);
      b = std::move(y);
      accepted = std::move(conn.stream);
      client.close();
    });
  }
  a.reset();
  b.reset();
  accepted.reset();
  listener.reset();
}

TEST_F(SocketLifetime, AUdpSocketHoldsNoRuntimeStateAndWorksInTheNextRuntime) {
  std::optional<udp_socket> sock;
  {
    weft::runtime rt{one_worker()};
    rt.block_on([&]() -> weft::task<void> {
      sock = udp_socket::bind(loopback_v4());
      co_await sock->send_to(bytes_of("one"), sock->local_address());
      std::array<std::byte, 8> buf{};
      const auto got = co_await sock->recv_from(buf);
      EXPECT_EQ(got.size, 3u);
    });
  }
  weft::runtime next{one_worker()};
  next.block_on([&]() -> weft::task<void> {
    co_await sock->send_to(bytes_of("two"), sock->local_address());
    std::array<std::byte, 8> buf{};
    const auto got = co_await sock->recv_from(buf);
    EXPECT_EQ(got.size, 3u);
  });
  sock.reset();
}

// --- using after the runtime --------------------------------------------------------------------

TEST_F(SocketLifetime, ReadingAfterTheRuntimeIsGoneIsALogicErrorSayingSo) {
  tcp_kept k;
  {
    weft::runtime rt{one_worker()};
    make_tcp_pair(rt, k);
  }
  weft::runtime next{one_worker()};
  // Bytes that arrived meanwhile are not the issue: the read side's state went with its runtime.
  next.block_on([&]() -> weft::task<void> { co_await k.client->write_all(bytes_of("more")); });
  expect_logic_error(
      [&] {
        next.block_on([&]() -> weft::task<void> {
          std::array<std::byte, 4> buf{};
          (void)co_await k.server->read_some(buf);
        });
      },
      "shut down");
  expect_logic_error(
      [&] { next.block_on([&]() -> weft::task<void> { (void)co_await k.listener->accept(); }); },
      "shut down");
  // What holds no runtime state still works there: the peer gets this write.
  next.block_on([&]() -> weft::task<void> {
    co_await k.server->write_all(bytes_of("late"));
    std::array<std::byte, 4> buf{};
    const std::size_t n = co_await k.client->read_exact(buf);
    EXPECT_EQ(n, 4u);
    EXPECT_EQ(text_of(buf), "late");
  });
  k.server.reset();
  k.client.reset();
  k.listener.reset();
}

TEST_F(SocketLifetime, ShutdownAndCloseOnAPlainThreadAfterTheRuntimeWork) {
  // Neither involves a task: they work wherever the socket is, its runtime gone or not.
  tcp_kept k;
  {
    weft::runtime rt{one_worker()};
    make_tcp_pair(rt, k);
  }
  k.server->shutdown(SHUT_WR);
  k.server->close();
  k.listener->close();
  EXPECT_FALSE(k.server->is_open());
  EXPECT_FALSE(k.listener->is_open());
}

TEST_F(SocketLifetime, ReadingFromAnotherLiveRuntimeIsALogicError) {
  tcp_kept k;
  weft::runtime first{one_worker()};
  weft::runtime second{one_worker()};
  make_tcp_pair(first, k);
  second.block_on([&]() -> weft::task<void> { co_await k.client->write_all(bytes_of("x")); });
  expect_logic_error(
      [&] {
        second.block_on([&]() -> weft::task<void> {
          std::array<std::byte, 1> buf{};
          (void)co_await k.server->read_some(buf);
        });
      },
      "another runtime");
  // Its own runtime still reads it, the byte included.
  first.block_on([&]() -> weft::task<void> {
    std::array<std::byte, 1> buf{};
    const std::size_t n = co_await k.server->read_some(buf);
    EXPECT_EQ(n, 1u);
    EXPECT_EQ(text_of(buf), "x");
  });
  k.server.reset();
  k.client.reset();
  k.listener.reset();
}

TEST_F(SocketLifetime, ClosingFromAPlainThreadWhileTheRuntimeShutsDownIsHarmless) {
  // The close and the shutdown race: the close goes to the owner worker's mailbox, or finds the
  // owner gone and closes by itself; either way exactly once, with nothing left open.
  for (int i = 0; i < 150; ++i) {
    tcp_kept k;
    std::thread closer;
    std::atomic<bool> go{false};
    {
      weft::runtime rt{weft::runtime_options{.workers = 1 + static_cast<std::size_t>(i % 2)}};
      make_tcp_pair(rt, k);
      closer = std::thread([&] {
        while (!go.load()) std::this_thread::yield();
        k.server->close();
        k.listener->close();
      });
      go.store(true);
    }
    closer.join();
    k.client.reset();
  }
}

}  // namespace
