// weft::net::udp_socket and the Unix stream sockets: UDP round trips, truncation, ICMP errors,
// cancellation; Unix listeners on paths and abstract names, pairs, bind and path errors,
// unlink_on_close, close under accept; the io_uring-off runtime. Every test checks for fd leaks.
#include <weft/net/udp_socket.hpp>
#include <weft/net/unix_stream.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <liburing.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "../support/fd_leak.hpp"
#include "../support/io_uring.hpp"

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/io/io_operation.hpp>
#include <weft/io/io_unavailable.hpp>
#include <weft/join_handle.hpp>
#include <weft/net/socket_address.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/timeout.hpp>
#include <weft/yield.hpp>

namespace {

using weft::testing::expect_io_unavailable;
using weft::testing::fd_leak_check;
using weft::testing::open_fd_count;

using namespace std::chrono_literals;
using weft::net::socket_address;
using weft::net::udp_socket;
using weft::net::unix_listener;
using weft::net::unix_stream;

// --- helpers ----------------------------------------------------------------------------------

std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span{s.data(), s.size()});
}

std::string text_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

/// A fresh directory under TMPDIR (or /tmp), removed with whatever is left in it.
class temp_dir {
 public:
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string{base != nullptr ? base : "/tmp"} + "/weft-net-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp");
    }
    path_ = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::string file(std::string_view name) const {
    return path_ + "/" + std::string(name);
  }

 private:
  std::string path_;
};

/// A name in the abstract namespace that no other test (or process) uses.
std::string abstract_name() {
  static std::atomic<int> next{0};
  return "@weft-net-test-" + std::to_string(::getpid()) + "-" + std::to_string(next++);
}

/// See tcp_test.cpp: returns once `t` waits with its first operation submitted to the kernel.
/// Needs a one-worker runtime.
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

/// Awaits `t`; returns the errno of the std::system_error it throws (0 if none) and its what().
template <class T>
weft::task<std::pair<int, std::string>> error_of(weft::task<T> t) {
  try {
    co_await std::move(t);
  } catch (const std::system_error& e) {
    co_return std::pair<int, std::string>{e.code().value(), e.what()};
  }
  co_return std::pair<int, std::string>{0, ""};
}

template <std::size_t Workers>
class net_fixture : public weft::testing::needs_io_uring_no_fd_leaks {
 protected:
  weft::runtime rt_{weft::runtime_options{.workers = Workers}};
};

class Udp : public net_fixture<2> {};
class UdpOneWorker : public net_fixture<1> {};
class Unix : public net_fixture<2> {};
class UnixOneWorker : public net_fixture<1> {};

socket_address loopback_v4() {
  return socket_address::parse("127.0.0.1:0");
}

// --- UDP --------------------------------------------------------------------------------------

TEST_F(Udp, BindOnPortZeroGetsAPort) {
  auto s = udp_socket::bind(loopback_v4());
  EXPECT_TRUE(s.is_open());
  EXPECT_EQ(s.local_address().ip(), weft::net::ip_address::v4_loopback());
  EXPECT_NE(s.local_address().port(), 0);
}

TEST_F(Udp, SendToAndRecvFromCarryTheDatagramAndTheSender) {
  rt_.block_on([&]() -> weft::task<void> {
    auto a = udp_socket::bind(loopback_v4());
    auto b = udp_socket::bind(loopback_v4());
    EXPECT_EQ(co_await a.send_to(bytes_of("hello"), b.local_address()), 5u);
    std::array<std::byte, 64> buf{};
    const auto got = co_await b.recv_from(buf);
    EXPECT_EQ(got.size, 5u);
    EXPECT_FALSE(got.truncated);
    EXPECT_EQ(got.from, a.local_address());
    EXPECT_EQ(text_of(std::span{buf}.first(got.size)), "hello");
    // And back to whoever sent it.
    EXPECT_EQ(co_await b.send_to(bytes_of("world!"), got.from), 6u);
    const auto reply = co_await a.recv_from(buf);
    EXPECT_EQ(reply.size, 6u);
    EXPECT_EQ(reply.from, b.local_address());
    EXPECT_EQ(text_of(std::span{buf}.first(reply.size)), "world!");
  });
}

TEST_F(Udp, AnEmptyDatagramArrivesAsAnEmptyDatagram) {
  rt_.block_on([&]() -> weft::task<void> {
    auto a = udp_socket::bind(loopback_v4());
    auto b = udp_socket::bind(loopback_v4());
    EXPECT_EQ(co_await a.send_to({}, b.local_address()), 0u);
    std::array<std::byte, 8> buf{};
    const auto got = co_await b.recv_from(buf);
    EXPECT_EQ(got.size, 0u);
    EXPECT_FALSE(got.truncated);
    EXPECT_EQ(got.from, a.local_address());
  });
}

TEST_F(Udp, ConnectedSocketsSendAndRecv) {
  rt_.block_on([&]() -> weft::task<void> {
    auto a = udp_socket::bind(loopback_v4());
    auto b = udp_socket::bind(loopback_v4());
    a.connect(b.local_address());
    b.connect(a.local_address());
    EXPECT_EQ(co_await a.send(bytes_of("ping")), 4u);
    std::array<std::byte, 16> buf{};
    EXPECT_EQ(co_await b.recv(buf), 4u);
    EXPECT_EQ(text_of(std::span{buf}.first(4)), "ping");
    EXPECT_EQ(co_await b.send(bytes_of("pong")), 4u);
    const auto got = co_await a.recv_from(buf);  // recv_from works on a connected socket too
    EXPECT_EQ(got.size, 4u);
    EXPECT_EQ(got.from, b.local_address());
  });
}

TEST_F(Udp, AConnectedSocketIgnoresOtherSenders) {
  rt_.block_on([&]() -> weft::task<void> {
    auto a = udp_socket::bind(loopback_v4());
    auto b = udp_socket::bind(loopback_v4());
    auto stranger = udp_socket::bind(loopback_v4());
    a.connect(b.local_address());
    co_await stranger.send_to(bytes_of("spam"), a.local_address());  // dropped by the kernel
    co_await b.send_to(bytes_of("mail"), a.local_address());
    std::array<std::byte, 16> buf{};
    const auto got = co_await a.recv_from(buf);
    EXPECT_EQ(got.from, b.local_address());
    EXPECT_EQ(text_of(std::span{buf}.first(got.size)), "mail");
  });
}

TEST_F(Udp, ADatagramLargerThanTheBufferIsTruncatedAndFlagged) {
  rt_.block_on([&]() -> weft::task<void> {
    auto a = udp_socket::bind(loopback_v4());
    auto b = udp_socket::bind(loopback_v4());
    const std::string big(100, 'x');
    co_await a.send_to(bytes_of("0123456789" + big), b.local_address());
    co_await a.send_to(bytes_of("next"), b.local_address());
    std::array<std::byte, 10> small{};
    const auto got = co_await b.recv_from(small);
    EXPECT_EQ(got.size, 10u);
    EXPECT_TRUE(got.truncated);
    EXPECT_EQ(text_of(small), "0123456789");
    // The rest of the datagram is gone; the next one is whole.
    std::array<std::byte, 64> buf{};
    const auto next = co_await b.recv_from(buf);
    EXPECT_EQ(next.size, 4u);
    EXPECT_FALSE(next.truncated);
    EXPECT_EQ(text_of(std::span{buf}.first(4)), "next");
  });
}

TEST_F(Udp, Ipv6LoopbackRoundTrip) {
  udp_socket a, b;
  try {
    a = udp_socket::bind(socket_address::parse("[::1]:0"));
    b = udp_socket::bind(socket_address::parse("[::1]:0"));
  } catch (const std::system_error& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  rt_.block_on([&]() -> weft::task<void> {
    EXPECT_EQ(co_await a.send_to(bytes_of("six"), b.local_address()), 3u);
    std::array<std::byte, 16> buf{};
    const auto got = co_await b.recv_from(buf);
    EXPECT_EQ(got.size, 3u);
    EXPECT_TRUE(got.from.ip().is_v6());
    EXPECT_EQ(got.from, a.local_address());
    EXPECT_EQ(got.from.to_string(), "[::1]:" + std::to_string(a.local_address().port()));
  });
}

TEST_F(Udp, AConnectedSocketReportsConnectionRefusedOnceThePeerIsGone) {
  // The kernel answers a datagram to a closed port with ICMP port unreachable, which a connected
  // UDP socket reports on its next operation. Over loopback the ICMP comes back within the
  // send (loopback is exempt from ICMP rate limits); the bound below only turns a regression into
  // a failure instead of a hang.
  rt_.block_on([&]() -> weft::task<void> {
    socket_address gone_address;
    {
      auto gone = udp_socket::bind(loopback_v4());
      gone_address = gone.local_address();
    }
    auto s = udp_socket::bind(loopback_v4());
    s.connect(gone_address);
    co_await s.send(bytes_of("anyone?"));
    std::array<std::byte, 16> buf{};
    int error = 0;
    std::string what;
    try {
      (void)co_await weft::timeout(5s, s.recv(buf));
    } catch (const std::system_error& e) {
      error = e.code().value();
      what = e.what();
    }
    EXPECT_EQ(error, ECONNREFUSED) << what;
    EXPECT_NE(what.find("weft::net::udp_socket::recv " + gone_address.to_string()),
              std::string::npos)
        << what;
  });
}

TEST_F(UdpOneWorker, ACancelledRecvThrowsAndLeavesTheSocketUsable) {
  rt_.block_on([&]() -> weft::task<void> {
    auto a = udp_socket::bind(loopback_v4());
    auto b = udp_socket::bind(loopback_v4());
    weft::cancel_source stop;
    std::array<std::byte, 16> buf{};
    auto receiver =
        co_await spawn_in_flight(weft::with_cancellation(stop.token(), b.recv_from(buf)));
    stop.request_cancellation();
    EXPECT_THROW(co_await std::move(receiver), weft::operation_cancelled);
    co_await a.send_to(bytes_of("late"), b.local_address());
    const auto got = co_await b.recv_from(buf);
    EXPECT_EQ(text_of(std::span{buf}.first(got.size)), "late");
  });
}

TEST_F(Udp, AMovedFromOrClosedSocketThrowsLogicError) {
  rt_.block_on([&]() -> weft::task<void> {
    auto a = udp_socket::bind(loopback_v4());
    auto moved = std::move(a);
    EXPECT_FALSE(a.is_open());
    EXPECT_TRUE(moved.is_open());
    std::array<std::byte, 4> buf{};
    EXPECT_THROW(co_await a.send_to(bytes_of("x"), moved.local_address()), std::logic_error);
    EXPECT_THROW(co_await a.recv_from(buf), std::logic_error);
    EXPECT_THROW(co_await a.send(bytes_of("x")), std::logic_error);
    EXPECT_THROW(co_await a.recv(buf), std::logic_error);
    EXPECT_THROW(a.connect(moved.local_address()), std::logic_error);
    moved.close();
    moved.close();
    EXPECT_THROW(co_await moved.recv_from(buf), std::logic_error);
  });
}

// --- Unix stream sockets ----------------------------------------------------------------------

/// Accepts one connection on `listener`, echoes until the peer's end, then closes.
weft::task<void> echo_one(unix_listener& listener) {
  auto [conn] = co_await listener.accept();
  std::array<std::byte, 4096> buf{};
  for (;;) {
    const std::size_t n = co_await conn.read_some(buf);
    if (n == 0) break;
    co_await conn.write_all(std::span<const std::byte>(buf.data(), n));
  }
  conn.close();
}

/// Connects to `path`, sends `message`, half-closes and returns everything that came back.
weft::task<std::string> talk_to(std::string path, std::string message) {
  auto conn = co_await unix_stream::connect(path);
  EXPECT_EQ(conn.peer_name(), "unix:" + path);
  co_await conn.write_all(bytes_of(message));
  conn.shutdown(SHUT_WR);
  std::string back;
  std::array<std::byte, 4096> buf{};
  for (;;) {
    const std::size_t n = co_await conn.read_some(buf);
    if (n == 0) break;
    back += text_of(std::span{buf}.first(n));
  }
  co_return back;
}

TEST_F(Unix, AListenerOnAPathEchoes) {
  const temp_dir dir;
  const auto path = dir.file("echo.sock");
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = unix_listener::bind(path);
    EXPECT_EQ(listener.path(), path);
    EXPECT_TRUE(exists(path));
    auto [served, back] = co_await weft::when_all(echo_one(listener), talk_to(path, "over a path"));
    (void)served;
    EXPECT_EQ(back, "over a path");
  });
}

TEST_F(Unix, AListenerInTheAbstractNamespaceEchoesAndLeavesNoFile) {
  const auto name = abstract_name();
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = unix_listener::bind(name);
    EXPECT_FALSE(exists(name));  // nothing named "@..." in the working directory
    auto [served, back] = co_await weft::when_all(echo_one(listener), talk_to(name, "abstract"));
    (void)served;
    EXPECT_EQ(back, "abstract");
  });
}

TEST_F(Unix, APairIsConnectedBothWays) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    EXPECT_TRUE(left.is_open());
    EXPECT_TRUE(right.is_open());
    co_await left.write_all(bytes_of("to the right"));
    std::array<std::byte, 12> buf{};
    EXPECT_EQ(co_await right.read_exact(buf), 12u);
    EXPECT_EQ(text_of(buf), "to the right");
    co_await right.write_all(bytes_of("and back"));
    right.shutdown(SHUT_WR);
    std::array<std::byte, 64> back{};
    const std::size_t n = co_await left.read_exact(back);
    EXPECT_EQ(n, 8u);  // then the end of the stream
    EXPECT_EQ(text_of(std::span{back}.first(n)), "and back");
  });
}

TEST_F(Unix, BindingAnExistingPathIsAddressInUse) {
  const temp_dir dir;
  const auto path = dir.file("taken.sock");
  auto first = unix_listener::bind(path);
  try {
    auto second = unix_listener::bind(path);
    FAIL() << "bound " << path << " twice";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
    EXPECT_NE(std::string{e.what()}.find("unix_listener::bind unix:" + path), std::string::npos)
        << e.what();
  }
}

TEST_F(Unix, AStaleSocketFileStillBlocksTheBind) {
  // Without unlink_on_close the file outlives the listener, and a new bind must remove it first.
  const temp_dir dir;
  const auto path = dir.file("stale.sock");
  unix_listener::bind(path).close();
  EXPECT_TRUE(exists(path));
  try {
    auto again = unix_listener::bind(path);
    FAIL() << "bound over a stale socket file";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE) << e.what();
  }
  ::unlink(path.c_str());
  auto fresh = unix_listener::bind(path);
  EXPECT_TRUE(fresh.is_open());
}

TEST_F(Unix, AnAbstractNameInUseIsAddressInUse) {
  const auto name = abstract_name();
  auto first = unix_listener::bind(name);
  try {
    auto second = unix_listener::bind(name);
    FAIL() << "bound " << name << " twice";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE) << e.what();
  }
}

TEST_F(Unix, PathsMustHaveOneTo107Bytes) {
  const temp_dir dir;
  // sun_path holds 108 bytes with the terminating NUL.
  const std::string base = dir.path() + "/";
  ASSERT_LT(base.size(), 100u) << "TMPDIR is too long for this test";
  const std::string longest = base + std::string(107 - base.size(), 'p');
  const std::string too_long = longest + "q";
  ASSERT_EQ(longest.size(), 107u);
  {
    auto ok = unix_listener::bind(longest);
    EXPECT_TRUE(exists(longest));
  }
  for (const std::string& bad : {too_long, std::string{}, "@" + std::string(107, 'a')}) {
    try {
      auto l = unix_listener::bind(bad);
      ADD_FAILURE() << "bound a path of " << bad.size() << " bytes";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string{e.what()}.find("1 to 107 bytes"), std::string::npos) << e.what();
      EXPECT_NE(std::string{e.what()}.find('"' + bad + '"'), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(rt_.block_on(unix_stream::connect(too_long)), std::invalid_argument);
  EXPECT_THROW(rt_.block_on(unix_stream::connect("")), std::invalid_argument);
}

TEST_F(Unix, UnlinkOnCloseRemovesTheFileOnce) {
  const temp_dir dir;
  const auto kept = dir.file("kept.sock");
  const auto removed = dir.file("removed.sock");
  unix_listener::bind(kept).close();
  EXPECT_TRUE(exists(kept));
  {
    auto l = unix_listener::bind(removed, 16, /*unlink_on_close=*/true);
    auto moved = std::move(l);  // the duty moves too: destroying l removes nothing
    l = unix_listener{};
    EXPECT_TRUE(exists(removed));
  }
  EXPECT_FALSE(exists(removed));
  // Through close() as well, and a second close does nothing.
  auto l = unix_listener::bind(removed, 16, true);
  l.close();
  EXPECT_FALSE(exists(removed));
  l.close();
}

TEST_F(Unix, ConnectingToAMissingPathOrADeadSocketNamesThePath) {
  const temp_dir dir;
  const auto missing = dir.file("missing.sock");
  const auto dead = dir.file("dead.sock");
  unix_listener::bind(dead).close();  // the file stays, nobody listens
  rt_.block_on([&]() -> weft::task<void> {
    const auto [e1, what1] = co_await error_of(unix_stream::connect(missing));
    EXPECT_EQ(e1, ENOENT) << what1;
    EXPECT_NE(what1.find("weft::net::unix_stream::connect unix:" + missing), std::string::npos)
        << what1;
    const auto [e2, what2] = co_await error_of(unix_stream::connect(dead));
    EXPECT_EQ(e2, ECONNREFUSED) << what2;
    const auto [e3, what3] = co_await error_of(unix_stream::connect(abstract_name()));
    EXPECT_EQ(e3, ECONNREFUSED) << what3;
  });
}

TEST_F(UnixOneWorker, ACancelledAcceptThrowsAndTheListenerStillServes) {
  const auto name = abstract_name();
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = unix_listener::bind(name);
    weft::cancel_source stop;
    auto acceptor =
        co_await spawn_in_flight(weft::with_cancellation(stop.token(), listener.accept()));
    stop.request_cancellation();
    EXPECT_THROW(co_await std::move(acceptor), weft::operation_cancelled);
    auto [served, back] = co_await weft::when_all(echo_one(listener), talk_to(name, "still"));
    (void)served;
    EXPECT_EQ(back, "still");
  });
}

TEST_F(UnixOneWorker, ClosingTheListenerStopsListeningAndEndsAPendingAccept) {
  const temp_dir dir;
  const auto path = dir.file("closing.sock");
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = unix_listener::bind(path);
    auto acceptor = co_await spawn_in_flight(listener.accept());
    listener.close();
    const auto [error, what] = co_await error_of(unix_stream::connect(path));
    EXPECT_EQ(error, ECONNREFUSED) << "a connect after close(): " << what;
    EXPECT_THROW(co_await weft::timeout(5s, std::move(acceptor)), std::system_error);
  });
}

TEST_F(UnixOneWorker, ACancelledReadThrowsAndLeavesTheStreamUsable) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    weft::cancel_source stop;
    std::array<std::byte, 8> buf{};
    auto reader =
        co_await spawn_in_flight(weft::with_cancellation(stop.token(), left.read_some(buf)));
    stop.request_cancellation();
    EXPECT_THROW(co_await std::move(reader), weft::operation_cancelled);
    co_await right.write_all(bytes_of("kept"));
    std::array<std::byte, 4> got{};
    EXPECT_EQ(co_await left.read_exact(got), 4u);
    EXPECT_EQ(text_of(got), "kept");
  });
}

TEST_F(Unix, AMovedFromStreamOrListenerThrowsLogicError) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    auto moved = std::move(left);
    std::array<std::byte, 4> buf{};
    EXPECT_THROW(co_await left.read_some(buf), std::logic_error);
    EXPECT_THROW(co_await left.write_all(bytes_of("x")), std::logic_error);
    EXPECT_THROW(left.shutdown(), std::logic_error);
    co_await moved.write_all(bytes_of("ok"));
    EXPECT_EQ(co_await right.read_exact(std::span{buf}.first(2)), 2u);
    auto listener = unix_listener::bind(abstract_name());
    auto moved_listener = std::move(listener);
    EXPECT_FALSE(listener.is_open());
    EXPECT_THROW(co_await listener.accept(), std::logic_error);
  });
}

// --- the io_uring-off runtime -----------------------------------------------------------------

class WithoutIoUring : public ::testing::Test, protected fd_leak_check {
 protected:
  void SetUp() override { remember_fds(); }
  void TearDown() override { check_fds(); }
  weft::runtime rt_{weft::runtime_options{.workers = 1, .io_uring = false}};
};

TEST_F(WithoutIoUring, UdpBindsAndEveryTransferThrowsIoUnavailable) {
  auto a = udp_socket::bind(loopback_v4());
  auto b = udp_socket::bind(loopback_v4());
  a.connect(b.local_address());  // a plain syscall
  std::array<std::byte, 8> buf{};
  expect_io_unavailable(rt_, a.send_to(bytes_of("x"), b.local_address()), "send_to");
  expect_io_unavailable(rt_, b.recv_from(buf), "recv_from");
  expect_io_unavailable(rt_, a.send(bytes_of("x")), "send");
  expect_io_unavailable(rt_, a.recv(buf), "recv");
}

TEST_F(WithoutIoUring, UnixBindsAndEveryStreamOperationThrowsIoUnavailable) {
  const auto name = abstract_name();
  auto listener = unix_listener::bind(name);
  expect_io_unavailable(rt_, listener.accept(), "accept");
  expect_io_unavailable(rt_, unix_stream::connect(name), "connect");
  auto [left, right] = unix_stream::pair();
  std::array<std::byte, 8> buf{};
  expect_io_unavailable(rt_, left.read_some(buf), "read_some");
  expect_io_unavailable(rt_, left.write_all(bytes_of("x")), "write_all");
  left.shutdown(SHUT_WR);  // a plain syscall
}

}  // namespace
