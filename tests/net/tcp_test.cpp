// weft::net::tcp_stream and tcp_listener over loopback in real time: echo up to 16 MiB, 1,000
// connections, half-close, reset, refused and timed-out connects, cancellation, close under I/O,
// options, addresses, IPv6, misuse and the io_uring-off runtime; every test checks for fd leaks.
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "../support/eventually.hpp"
#include "../support/fd_leak.hpp"
#include "../support/io_uring.hpp"

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/io/io_operation.hpp>
#include <weft/io/io_unavailable.hpp>
#include <weft/join_handle.hpp>
#include <weft/net/socket_address.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/timed_out.hpp>
#include <weft/time/timeout.hpp>
#include <weft/yield.hpp>

namespace {

using weft::testing::expect_io_unavailable;
using weft::testing::fd_leak_check;
using weft::testing::open_fd_count;

using namespace std::chrono_literals;
using weft::net::listen_options;
using weft::net::socket_address;
using weft::net::tcp_accepted;
using weft::net::tcp_listener;
using weft::net::tcp_stream;
using weft::testing::eventually;

// --- helpers ----------------------------------------------------------------------------------

/// Raises the soft descriptor limit to at least `n` if the hard limit allows; false if not.
bool ensure_fd_limit(rlim_t n) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_cur >= n) return true;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < n) return false;
  lim.rlim_cur = n;
  return ::setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

socket_address loopback_v4() {
  return socket_address::parse("127.0.0.1:0");
}

std::vector<std::byte> pattern(std::size_t n, std::uint32_t seed = 0) {
  std::vector<std::byte> v(n);
  std::uint32_t x = seed * 2654435761u + 12345u;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<std::byte>(x >> 24);
  }
  return v;
}

std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span{s.data(), s.size()});
}

std::string text_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

/// Runs `t` as its own task and returns once `t` waits for its first operation, with that
/// operation submitted to the kernel (in flight, not merely queued): `t` has queued its SQE once
/// it started and suspended, and a NOP queued after it completes only once the kernel consumed
/// the queue up to the NOP. Needs a one-worker runtime, so that both SQEs go to one ring.
template <class T>
weft::task<weft::join_handle<T>> spawn_in_flight(weft::task<T> t) {
  bool started = false;
  auto h = weft::spawn([](bool& s, weft::task<T> inner) -> weft::task<T> {
    s = true;
    co_return co_await std::move(inner);
  }(started, std::move(t)));
  while (!started) co_await weft::yield();
  co_await weft::submit_io([](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); });
  co_return h;
}

/// A client and the server side of one loopback connection.
struct connection {
  tcp_stream client;
  tcp_stream server;
  socket_address peer;  // as accept() reported the client
};

weft::task<connection> connect_pair(tcp_listener& listener) {
  // The kernel completes the handshake from the backlog, so connect finishes before accept.
  auto client = co_await tcp_stream::connect(listener.local_address());
  auto accepted = co_await listener.accept();
  co_return connection{std::move(client), std::move(accepted.stream), accepted.peer};
}

/// Echoes until the peer closes its side, then closes this one (explicitly: a parameter lives
/// as long as the coroutine frame, which a spawned task keeps until it is joined).
weft::task<void> echo(tcp_stream s) {
  std::vector<std::byte> buf(64 * 1024);
  for (;;) {
    const std::size_t n = co_await s.read_some(buf);
    if (n == 0) break;
    co_await s.write_all(std::span<const std::byte>(buf.data(), n));
  }
  s.close();
}

/// Writes `data` and reads as many bytes back, concurrently (the kernel's buffers hold far less
/// than 16 MiB, so writing first would deadlock), and returns what came back.
weft::task<std::vector<std::byte>> round_trip(tcp_stream& s, const std::vector<std::byte>& data) {
  std::vector<std::byte> back(data.size());
  auto [written, got] = co_await weft::when_all(s.write_all(data), s.read_exact(back));
  (void)written;
  back.resize(got);
  co_return back;
}

/// A TCP socket bound to a loopback port and not listening: a connect to that port is refused,
/// and no other socket can take the port while this one holds it.
class unlistened_port {
 public:
  unlistened_port() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) throw std::system_error(errno, std::system_category(), "socket");
    sockaddr_storage s{};
    socklen_t len = loopback_v4().to_native(s);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&s), len) != 0) {
      throw std::system_error(errno, std::system_category(), "bind");
    }
    len = sizeof s;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&s), &len) != 0) {
      throw std::system_error(errno, std::system_category(), "getsockname");
    }
    address_ = socket_address::from_native(reinterpret_cast<sockaddr*>(&s), len);
  }
  unlistened_port(const unlistened_port&) = delete;
  unlistened_port& operator=(const unlistened_port&) = delete;
  ~unlistened_port() { ::close(fd_); }
  [[nodiscard]] socket_address address() const { return address_; }

 private:
  int fd_;
  socket_address address_;
};

template <std::size_t Workers>
class tcp_fixture : public weft::testing::needs_io_uring, protected fd_leak_check {
 protected:
  void SetUp() override {
    needs_io_uring::SetUp();
    remember_fds();  // after the runtime's own descriptors (rings, eventfds) were opened
  }
  void TearDown() override {
    if (!IsSkipped()) check_fds();
  }
  weft::runtime rt_{weft::runtime_options{.workers = Workers}};
};

class Tcp : public tcp_fixture<2> {};

/// One worker: for spawn_in_flight, and for closing a socket from the worker that uses it.
class TcpOneWorker : public tcp_fixture<1> {};

// --- connecting and echoing -------------------------------------------------------------------

TEST_F(Tcp, ListenerOnPortZeroGetsAPortFromTheKernel) {
  auto listener = tcp_listener::bind(loopback_v4());
  EXPECT_TRUE(listener.is_open());
  EXPECT_EQ(listener.local_address().ip(), weft::net::ip_address::v4_loopback());
  EXPECT_NE(listener.local_address().port(), 0);
}

TEST_F(Tcp, EchoesEverySizeFromOneByteTo16MiB) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    for (const std::size_t size : {std::size_t{1}, std::size_t{100}, std::size_t{65'537},
                                   std::size_t{1} << 20, std::size_t{16} << 20}) {
      auto c = co_await connect_pair(listener);
      auto server = weft::spawn(echo(std::move(c.server)));
      const auto data = pattern(size, static_cast<std::uint32_t>(size));
      const auto back = co_await round_trip(c.client, data);
      EXPECT_EQ(back.size(), size);
      EXPECT_TRUE(back == data) << "size " << size << ": the echo differs";
      c.client.shutdown(SHUT_WR);
      std::array<std::byte, 1> extra{};
      EXPECT_EQ(co_await c.client.read_some(extra), 0u) << "the server closed after the echo";
      co_await std::move(server);
    }
  });
}

TEST_F(Tcp, BothSidesWriteAndRead16MiBAtOnce) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    const auto up = pattern(std::size_t{16} << 20, 1);
    const auto down = pattern(std::size_t{16} << 20, 2);
    std::vector<std::byte> got_up(up.size()), got_down(down.size());
    auto [a, b, n_down, n_up] =
        co_await weft::when_all(c.client.write_all(up), c.server.write_all(down),
                                c.client.read_exact(got_down), c.server.read_exact(got_up));
    (void)a;
    (void)b;
    EXPECT_EQ(n_down, down.size());
    EXPECT_EQ(n_up, up.size());
    EXPECT_TRUE(got_up == up);
    EXPECT_TRUE(got_down == down);
  });
}

/// Connects, sends a message of its own, and checks the echo; returns 1 if it matched.
weft::task<int> echo_client(socket_address server, std::uint32_t id) {
  auto conn = co_await tcp_stream::connect(server);
  const auto data = pattern(1000 + id % 97, id);
  const auto back = co_await round_trip(conn, data);
  co_return back == data ? 1 : 0;
}

/// Accepts `n` connections and echoes on each, concurrently; returns once all are done.
weft::task<void> echo_server(tcp_listener& listener, int n) {
  weft::task_group connections;
  for (int i = 0; i < n; ++i) {
    auto accepted = co_await listener.accept();
    connections.spawn(echo(std::move(accepted.stream)));
  }
  co_await connections.join();
}

TEST_F(Tcp, AThousandConcurrentConnectionsEachEchoTheirOwnData) {
  constexpr int n = 1000;
  if (!ensure_fd_limit(2 * n + 256)) {
    GTEST_SKIP() << "RLIMIT_NOFILE's hard limit is below " << 2 * n + 256;
  }
  const int matched = rt_.block_on([&]() -> weft::task<int> {
    auto listener = tcp_listener::bind(loopback_v4(), listen_options{.backlog = n});
    auto server = weft::spawn(echo_server(listener, n));
    std::vector<weft::task<int>> clients;
    clients.reserve(n);
    for (int i = 0; i < n; ++i) {
      clients.push_back(echo_client(listener.local_address(), static_cast<std::uint32_t>(i)));
    }
    const auto results = co_await weft::when_all(std::move(clients));
    co_await std::move(server);
    int ok = 0;
    for (int r : results) ok += r;
    co_return ok;
  });
  EXPECT_EQ(matched, n);
}

TEST_F(Tcp, AcceptReportsThePeerAndBothSidesKnowTheirAddresses) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    EXPECT_EQ(c.peer, c.client.local_address());
    EXPECT_EQ(c.server.peer_address(), c.client.local_address());
    EXPECT_EQ(c.client.peer_address(), listener.local_address());
    EXPECT_EQ(c.server.local_address(), listener.local_address());
    EXPECT_EQ(c.client.peer_name(), listener.local_address().to_string());
    EXPECT_EQ(c.server.peer_name(), c.peer.to_string());
  });
}

TEST_F(Tcp, Ipv6LoopbackEchoes) {
  tcp_listener listener;
  try {
    listener = tcp_listener::bind(socket_address::parse("[::1]:0"));
  } catch (const std::system_error& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  rt_.block_on([&]() -> weft::task<void> {
    auto c = co_await connect_pair(listener);
    EXPECT_TRUE(c.peer.ip().is_v6());
    EXPECT_TRUE(c.peer.ip().is_loopback());
    EXPECT_EQ(c.client.peer_address(), listener.local_address());
    EXPECT_EQ(c.client.peer_name().front(), '[');  // "[::1]:port"
    auto server = weft::spawn(echo(std::move(c.server)));
    const auto data = pattern(200'000, 6);
    EXPECT_TRUE(co_await round_trip(c.client, data) == data);
    c.client.close();
    co_await std::move(server);
  });
}

TEST_F(Tcp, AVectoredWriteSendsTheBuffersInOrder) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    // Large enough for short sends, which resume part-way through a buffer; an empty buffer is
    // skipped.
    const auto a = pattern(3, 1), b = pattern(0, 2), d = pattern((std::size_t{4} << 20) + 7, 3),
               e = pattern(5, 4);
    const std::array<std::span<const std::byte>, 4> buffers{a, b, d, e};
    std::vector<std::byte> want;
    for (const auto& part : buffers) want.insert(want.end(), part.begin(), part.end());
    std::vector<std::byte> got(want.size() + 1);
    auto write_then_close =
        [](tcp_stream& s, std::span<const std::span<const std::byte>> bufs) -> weft::task<void> {
      co_await s.write_all(bufs);
      s.shutdown(SHUT_WR);
    };
    auto writer = write_then_close(c.client, buffers);
    auto [w, n] = co_await weft::when_all(std::move(writer), c.server.read_exact(got));
    (void)w;
    EXPECT_EQ(n, want.size());  // then the end of the stream
    got.resize(n);
    EXPECT_TRUE(got == want);
  });
}

TEST_F(Tcp, NodelayAndKeepaliveRoundTrip) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    c.client.set_nodelay(true);
    EXPECT_TRUE(c.client.nodelay());
    c.client.set_nodelay(false);
    EXPECT_FALSE(c.client.nodelay());
    EXPECT_FALSE(c.client.keepalive());
    c.client.set_keepalive(true, 30, 5, 3);
    EXPECT_TRUE(c.client.keepalive());
    int value = 0;
    socklen_t len = sizeof value;
    EXPECT_EQ(::getsockopt(c.client.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &value, &len), 0);
    EXPECT_EQ(value, 30);
    EXPECT_EQ(::getsockopt(c.client.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &value, &len), 0);
    EXPECT_EQ(value, 5);
    EXPECT_EQ(::getsockopt(c.client.native_handle(), IPPROTO_TCP, TCP_KEEPCNT, &value, &len), 0);
    EXPECT_EQ(value, 3);
    c.client.set_keepalive(false);
    EXPECT_FALSE(c.client.keepalive());
  });
}

TEST_F(Tcp, AdoptTakesOverAConnectedDescriptor) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    auto adopted = tcp_stream::adopt(c.client.release());
    EXPECT_FALSE(c.client.is_open());
    EXPECT_EQ(adopted.peer_name(), listener.local_address().to_string());
    co_await adopted.write_all(bytes_of("hi"));
    std::array<std::byte, 2> buf{};
    EXPECT_EQ(co_await c.server.read_exact(buf), 2u);
    EXPECT_EQ(text_of(buf), "hi");
  });
}

// --- end of stream, resets and errors ---------------------------------------------------------

TEST_F(Tcp, HalfCloseLetsThePeerReadTheEndAndStillAnswer) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    co_await c.client.write_all(bytes_of("ping"));
    c.client.shutdown(SHUT_WR);
    std::array<std::byte, 4> ping{};
    EXPECT_EQ(co_await c.server.read_exact(ping), 4u);
    EXPECT_EQ(text_of(ping), "ping");
    std::array<std::byte, 16> more{};
    EXPECT_EQ(co_await c.server.read_some(more), 0u);  // the FIN: end of stream
    co_await c.server.write_all(bytes_of("pong"));     // its own side is still open
    c.server.close();
    std::array<std::byte, 16> pong{};
    const std::size_t n = co_await c.client.read_exact(pong);
    EXPECT_EQ(n, 4u);  // short: the stream ended, and nothing received was lost
    EXPECT_EQ(text_of(std::span{pong}.first(n)), "pong");
  });
}

TEST_F(TcpOneWorker, ASecondConcurrentReaderIsRefusedAndTheFirstStillGetsItsData) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    auto first = co_await spawn_in_flight([](tcp_stream& s) -> weft::task<std::string> {
      std::array<std::byte, 4> buf{};
      const std::size_t n = co_await s.read_exact(buf);
      co_return text_of(std::span{buf}.first(n));
    }(c.server));
    std::array<std::byte, 4> other{};
    bool refused = false;
    try {
      co_await c.server.read_some(other);
    } catch (const std::logic_error& e) {
      refused = std::string_view{e.what()}.find("one task reads at a time") != std::string::npos;
    }
    EXPECT_TRUE(refused);
    co_await c.client.write_all(bytes_of("ping"));
    EXPECT_EQ(co_await std::move(first), "ping");
    // Accepting is the same: one acceptor waits at a time.
    auto acceptor = co_await spawn_in_flight(
        [](tcp_listener& l) -> weft::task<void> { (void)co_await l.accept(); }(listener));
    bool accept_refused = false;
    try {
      (void)co_await listener.accept();
    } catch (const std::logic_error&) {
      accept_refused = true;
    }
    EXPECT_TRUE(accept_refused);
    acceptor.cancel();
    try {
      co_await std::move(acceptor);
    } catch (const weft::operation_cancelled&) {
    }
  });
}

TEST_F(Tcp, APeerThatClosesMidReadGivesTheBytesThenAnEndOfStream) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    std::array<std::byte, 100> buf{};
    auto reader = weft::spawn(c.client.read_exact(buf));  // waits for 100 bytes
    co_await c.server.write_all(bytes_of("partial"));
    c.server.close();
    const std::size_t n = co_await std::move(reader);
    EXPECT_EQ(n, 7u);
    EXPECT_EQ(text_of(std::span{buf}.first(n)), "partial");
    EXPECT_EQ(co_await c.client.read_some(buf), 0u);  // and stays at the end
  });
}

TEST_F(Tcp, AResetIsAnErrorAfterTheBytesReceivedBeforeIt) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    co_await c.server.write_all(bytes_of("hello"));
    // The bytes are in the client's receive queue before the reset is sent.
    const bool arrived = eventually([&] {
      int queued = 0;
      return ::ioctl(c.client.native_handle(), FIONREAD, &queued) == 0 && queued == 5;
    });
    EXPECT_TRUE(arrived);
    const linger abortive{1, 0};  // close sends RST instead of FIN
    EXPECT_EQ(
        ::setsockopt(c.server.native_handle(), SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive),
        0);
    c.server.close();
    std::string received;
    int error = 0;
    std::string what;
    for (int i = 0; i < 10 && error == 0; ++i) {
      std::array<std::byte, 64> buf{};
      try {
        const std::size_t n = co_await c.client.read_some(buf);
        if (n == 0) break;  // a FIN instead of the reset: wrong, reported below
        received += text_of(std::span{buf}.first(n));
      } catch (const std::system_error& e) {
        error = e.code().value();
        what = e.what();
      }
    }
    EXPECT_EQ(received, "hello");
    EXPECT_EQ(error, ECONNRESET) << what;
    EXPECT_NE(what.find("weft::net::tcp_stream::read_some " + listener.local_address().to_string()),
              std::string::npos)
        << what;
  });
}

TEST_F(Tcp, WritingToAClosedPeerIsAnErrorNeverSigpipe) {
  // SIGPIPE's default action would kill the test: the sends must use MSG_NOSIGNAL.
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    c.server.close();
    const auto chunk = pattern(1024);
    int error = 0;
    for (int i = 0; i < 100 && error == 0; ++i) {  // the first send may still succeed
      try {
        co_await c.client.write_all(chunk);
      } catch (const std::system_error& e) {
        error = e.code().value();
      }
    }
    EXPECT_TRUE(error == EPIPE || error == ECONNRESET) << error;
    const std::array<std::span<const std::byte>, 2> vectored{std::span{chunk}, std::span{chunk}};
    EXPECT_THROW(co_await c.client.write_all(vectored), std::system_error);
  });
}

TEST_F(Tcp, WritingAfterShutdownIsEpipe) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    c.client.shutdown(SHUT_WR);
    try {
      co_await c.client.write_all(bytes_of("late"));
      ADD_FAILURE() << "a write after SHUT_WR succeeded";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EPIPE) << e.what();
      EXPECT_NE(std::string{e.what()}.find("tcp_stream::write_all"), std::string::npos);
    }
  });
}

TEST_F(Tcp, ARefusedConnectNamesTheAddress) {
  const unlistened_port closed;
  try {
    rt_.block_on(tcp_stream::connect(closed.address()));
    FAIL() << "connected to a port nobody listens on";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNREFUSED);
    EXPECT_EQ(e.code(), std::errc::connection_refused);
    const std::string what = e.what();
    EXPECT_NE(what.find("weft::net::tcp_stream::connect " + closed.address().to_string()),
              std::string::npos)
        << what;
  }
}

TEST_F(Tcp, ConnectToAFullBacklogTimesOut) {
  // With listen(fd, 0) the accept queue holds one connection; once it is full, Linux drops new
  // SYNs (tcp_conn_request checks sk_acceptq_is_full before it would use a SYN cookie), and the
  // client retransmits after 1 s, 3 s, ... — so with nobody accepting, the next connect hangs
  // until weft::timeout cancels it. Filling takes one or two connects, depending on the kernel's
  // accounting; if eight all complete, the kernel does not behave as described and the test
  // fails rather than guessing. No address outside loopback is used.
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4(), listen_options{.backlog = 0});
    std::vector<tcp_stream> queued;  // completed by the kernel, never accepted
    // The first one fits in the empty queue: not timed, so that a slow machine cannot fail it.
    queued.push_back(co_await tcp_stream::connect(listener.local_address()));
    bool timed_out = false;
    for (int i = 0; i < 8 && !timed_out; ++i) {
      try {
        queued.push_back(
            co_await weft::timeout(200ms, tcp_stream::connect(listener.local_address())));
      } catch (const weft::timed_out&) {
        timed_out = true;
      }
    }
    EXPECT_TRUE(timed_out) << queued.size() << " connects completed, none timed out";
  });
}

TEST_F(Tcp, BindingAPortInUseNamesTheAddress) {
  auto first = tcp_listener::bind(loopback_v4());
  try {
    auto second = tcp_listener::bind(first.local_address());
    FAIL() << "two listeners on " << first.local_address().to_string();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
    EXPECT_NE(std::string{e.what()}.find(first.local_address().to_string()), std::string::npos)
        << e.what();
  }
}

// --- cancellation -----------------------------------------------------------------------------

TEST_F(TcpOneWorker, ACancelledReadThrowsAndLeavesTheSocketUsable) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    weft::cancel_source stop;
    std::array<std::byte, 16> buf{};
    auto reader =
        co_await spawn_in_flight(weft::with_cancellation(stop.token(), c.client.read_some(buf)));
    stop.request_cancellation();
    EXPECT_THROW(co_await std::move(reader), weft::operation_cancelled);
    // Nothing was consumed: bytes sent now reach the next read, and writing still works.
    co_await c.server.write_all(bytes_of("after"));
    std::array<std::byte, 5> got{};
    EXPECT_EQ(co_await c.client.read_exact(got), 5u);
    EXPECT_EQ(text_of(got), "after");
    co_await c.client.write_all(bytes_of("back"));
    std::array<std::byte, 4> back{};
    EXPECT_EQ(co_await c.server.read_exact(back), 4u);
    EXPECT_EQ(text_of(back), "back");
  });
}

TEST_F(TcpOneWorker, AReadBoundByATimeoutThrowsTimedOut) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    std::array<std::byte, 16> buf{};
    EXPECT_THROW(co_await weft::timeout(20ms, c.client.read_some(buf)), weft::timed_out);
    co_await c.server.write_all(bytes_of("x"));
    EXPECT_EQ(co_await c.client.read_some(buf), 1u);
  });
}

TEST_F(Tcp, ACancelRacingTheDataEitherDeliversItOrLeavesItQueued) {
  // From another thread, a byte is sent and the pending read cancelled at about the same time:
  // whichever wins, the byte is read exactly once.
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    int delivered = 0, cancelled = 0;
    for (int i = 0; i < 300; ++i) {
      weft::cancel_source stop;
      std::array<std::byte, 1> buf{};
      auto reader = weft::spawn(weft::with_cancellation(stop.token(), c.client.read_some(buf)));
      std::thread racer([&, i] {
        const char byte = static_cast<char>('a' + i % 26);
        if (i % 2 == 0) stop.request_cancellation();
        EXPECT_EQ(::send(c.server.native_handle(), &byte, 1, MSG_NOSIGNAL), 1);
        if (i % 2 == 1) stop.request_cancellation();
      });
      std::size_t n = 0;
      try {
        n = co_await std::move(reader);
        ++delivered;
      } catch (const weft::operation_cancelled&) {
        ++cancelled;
      }
      racer.join();
      if (n == 0) n = co_await c.client.read_some(buf);  // the byte waited in the socket
      EXPECT_EQ(n, 1u);
      EXPECT_EQ(static_cast<char>(buf[0]), static_cast<char>('a' + i % 26)) << "iteration " << i;
    }
    EXPECT_EQ(delivered + cancelled, 300);
  });
}

TEST_F(TcpOneWorker, ACancelledAcceptThrowsAndLeavesTheConnectionForTheNext) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    weft::cancel_source stop;
    auto acceptor =
        co_await spawn_in_flight(weft::with_cancellation(stop.token(), listener.accept()));
    stop.request_cancellation();
    EXPECT_THROW(co_await std::move(acceptor), weft::operation_cancelled);
    // The listener still works.
    auto c = co_await connect_pair(listener);
    EXPECT_EQ(c.peer, c.client.local_address());
  });
}

TEST_F(Tcp, ACancelRacingAConnectionNeverLosesOrLeaksIt) {
  // Each round a plain thread connects while the pending accept is cancelled: the accept either
  // returns the connection or throws operation_cancelled, and then the connection waits in the
  // backlog for the next accept. Every connection is accepted exactly once, and the fixture
  // checks that no descriptor (the kernel's accepted fd of a cancelled accept included) leaks.
  constexpr int rounds = 200;
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    std::vector<int> clients;
    int accepted = 0;
    for (int i = 0; i < rounds; ++i) {
      weft::cancel_source stop;
      auto acceptor = weft::spawn(weft::with_cancellation(stop.token(), listener.accept()));
      std::thread racer([&, i] {
        if (i % 2 == 0) stop.request_cancellation();
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_storage s{};
        const socklen_t len = listener.local_address().to_native(s);
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&s), len), 0);
        clients.push_back(fd);
        if (i % 2 == 1) stop.request_cancellation();
      });
      try {
        auto conn = co_await std::move(acceptor);
        ++accepted;
      } catch (const weft::operation_cancelled&) {
      }
      racer.join();
    }
    // What the cancelled accepts left in the backlog is still there, once each.
    while (accepted < rounds) {
      auto conn = co_await weft::timeout(5s, listener.accept());
      ++accepted;
    }
    EXPECT_EQ(accepted, rounds);
    for (int fd : clients) ::close(fd);
  });
}

TEST_F(TcpOneWorker, ClosingTheListenerStopsListeningAndEndsAPendingAccept) {
  // The accept in flight holds a reference to the socket inside io_uring, so close() alone would
  // leave it listening (connects still completing) until that request ended.
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    const auto address = listener.local_address();
    auto acceptor = co_await spawn_in_flight(listener.accept());
    listener.close();
    try {
      auto late = co_await tcp_stream::connect(address);
      ADD_FAILURE() << "a connect after close() completed";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNREFUSED) << e.what();
    }
    // The pending accept fails — bounded, so that a regression fails instead of hanging.
    EXPECT_THROW(co_await weft::timeout(5s, std::move(acceptor)), std::system_error);
  });
}

TEST_F(TcpOneWorker, ClosingAStreamUnderAPendingReadFailsThatReadWithEbadf) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    std::array<std::byte, 8> buf{};
    auto reader = co_await spawn_in_flight(c.client.read_some(buf));
    c.client.close();
    try {
      (void)co_await weft::timeout(5s, std::move(reader));
      ADD_FAILURE() << "the read returned after its socket was closed";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF) << e.what();
    }
    // The peer sees the close.
    EXPECT_EQ(co_await c.server.read_some(buf), 0u);
  });
}

// --- misuse -----------------------------------------------------------------------------------

/// The message of the std::logic_error that `t` throws when awaited, or empty.
template <class T>
weft::task<std::string> logic_error_of(weft::task<T> t) {
  try {
    co_await std::move(t);
  } catch (const std::logic_error& e) {
    co_return e.what();
  }
  co_return std::string{};
}

TEST_F(Tcp, AMovedFromStreamThrowsLogicErrorOnEveryOperation) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    tcp_stream moved = std::move(c.client);
    EXPECT_TRUE(moved.is_open());
    EXPECT_FALSE(c.client.is_open());
    EXPECT_EQ(c.client.native_handle(), -1);
    std::array<std::byte, 4> buf{};
    const std::string what = co_await logic_error_of(c.client.read_some(buf));
    EXPECT_NE(what.find("weft::net::tcp_stream::read_some: the socket is closed"),
              std::string::npos)
        << what;
    EXPECT_NE((co_await logic_error_of(c.client.read_exact(buf))), "");
    EXPECT_NE((co_await logic_error_of(c.client.write_all(bytes_of("x")))), "");
    const std::array<std::span<const std::byte>, 1> bufs{bytes_of("x")};
    EXPECT_NE((co_await logic_error_of(c.client.write_all(bufs))), "");
    EXPECT_THROW(c.client.shutdown(), std::logic_error);
    EXPECT_THROW(c.client.set_nodelay(true), std::logic_error);
    EXPECT_THROW((void)c.client.nodelay(), std::logic_error);
    EXPECT_THROW(c.client.set_keepalive(true), std::logic_error);
    EXPECT_THROW((void)c.client.local_address(), std::logic_error);
    EXPECT_THROW((void)c.client.peer_address(), std::logic_error);
    // The moved-to stream is the connection.
    co_await moved.write_all(bytes_of("ok"));
    std::array<std::byte, 2> ok{};
    EXPECT_EQ(co_await c.server.read_exact(ok), 2u);
  });
}

TEST_F(Tcp, AClosedStreamThrowsLogicErrorAndCloseIsIdempotent) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto c = co_await connect_pair(listener);
    c.client.close();
    c.client.close();
    EXPECT_FALSE(c.client.is_open());
    std::array<std::byte, 4> buf{};
    EXPECT_NE((co_await logic_error_of(c.client.read_some(buf))), "");
    EXPECT_NE((co_await logic_error_of(c.client.write_all(bytes_of("x")))), "");
    EXPECT_THROW(c.client.shutdown(SHUT_RDWR), std::logic_error);
    // The peer sees the close as an end of stream.
    EXPECT_EQ(co_await c.server.read_some(buf), 0u);
  });
}

TEST_F(Tcp, MoveAssignmentClosesTheOldConnection) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    auto a = co_await connect_pair(listener);
    auto b = co_await connect_pair(listener);
    a.client = std::move(b.client);  // a's old connection is closed here, once
    std::array<std::byte, 4> buf{};
    EXPECT_EQ(co_await a.server.read_some(buf), 0u);
    co_await a.client.write_all(bytes_of("b"));
    EXPECT_EQ(co_await b.server.read_some(buf), 1u);
  });
}

TEST_F(Tcp, AMovedFromOrClosedListenerThrowsLogicError) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = tcp_listener::bind(loopback_v4());
    tcp_listener moved = std::move(listener);
    EXPECT_FALSE(listener.is_open());
    const std::string what = co_await logic_error_of(listener.accept());
    EXPECT_NE(what.find("weft::net::tcp_listener::accept"), std::string::npos) << what;
    moved.close();
    moved.close();
    EXPECT_NE((co_await logic_error_of(moved.accept())), "");
  });
}

// --- the io_uring-off runtime -----------------------------------------------------------------

class TcpWithoutIoUring : public ::testing::Test, protected fd_leak_check {
 protected:
  void SetUp() override { remember_fds(); }
  void TearDown() override { check_fds(); }
  weft::runtime rt_{weft::runtime_options{.workers = 1, .io_uring = false}};
};

TEST_F(TcpWithoutIoUring, BindAndListenWorkAndEverySocketOperationThrowsIoUnavailable) {
  // bind and listen are plain syscalls: they work without a ring.
  auto listener = tcp_listener::bind(loopback_v4());
  EXPECT_TRUE(listener.is_open());
  expect_io_unavailable(rt_, listener.accept(), "accept");
  expect_io_unavailable(rt_, tcp_stream::connect(listener.local_address()), "connect");
  // A connection made with plain syscalls (the kernel completes it from the backlog).
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_storage s{};
  const socklen_t len = listener.local_address().to_native(s);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&s), len), 0);
  auto stream = tcp_stream::adopt(fd);
  std::array<std::byte, 8> buf{};
  expect_io_unavailable(rt_, stream.read_some(buf), "read_some");
  expect_io_unavailable(rt_, stream.read_exact(buf), "read_exact");
  expect_io_unavailable(rt_, stream.write_all(bytes_of("x")), "write_all");
  const std::array<std::span<const std::byte>, 1> bufs{bytes_of("x")};
  expect_io_unavailable(rt_, stream.write_all(bufs), "vectored write_all");
  // Options and addresses are plain syscalls too.
  stream.set_nodelay(true);
  EXPECT_TRUE(stream.nodelay());
  EXPECT_EQ(stream.peer_address(), listener.local_address());
}

}  // namespace
