// weft::net::ip_address, socket_address and resolve: parsing and formatting (IPv4, IPv6, mapped
// IPv4, scope ids, brackets, ports), rejection of bad text, native round trips, ordering, and
// name resolution of localhost, numeric hosts and a name that cannot exist.
#include <weft/net/ip_address.hpp>
#include <weft/net/resolve.hpp>
#include <weft/net/socket_address.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <gtest/gtest.h>

#include <weft/runtime.hpp>
#include <weft/task.hpp>
#include <weft/time/timed_out.hpp>
#include <weft/time/timeout.hpp>

namespace {

using namespace std::chrono_literals;
using weft::net::ip_address;
using weft::net::socket_address;

/// The message of the std::invalid_argument that `f` throws, or a failure if it throws nothing.
template <class F>
std::string invalid_argument_message(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "no std::invalid_argument was thrown";
  return {};
}

// --- ip_address -------------------------------------------------------------------------------

TEST(IpAddress, DefaultIsTheIpv4UnspecifiedAddress) {
  const ip_address a;
  EXPECT_TRUE(a.is_v4());
  EXPECT_TRUE(a.is_unspecified());
  EXPECT_EQ(a.to_string(), "0.0.0.0");
  EXPECT_EQ(a, ip_address::v4_any());
}

TEST(IpAddress, ParsesDottedIpv4IntoNetworkOrderBytes) {
  const auto a = ip_address::parse("10.1.2.254");
  EXPECT_TRUE(a.is_v4());
  EXPECT_FALSE(a.is_v6());
  const std::array<std::uint8_t, 16> want{10, 1, 2, 254};  // the rest stays zero
  EXPECT_EQ(a.bytes(), want);
  EXPECT_EQ(a.scope_id(), 0u);
  EXPECT_EQ(a.to_string(), "10.1.2.254");
  EXPECT_EQ(a, ip_address::v4({10, 1, 2, 254}));
}

TEST(IpAddress, Ipv4LoopbackIsTheWhole127Network) {
  EXPECT_TRUE(ip_address::parse("127.0.0.1").is_loopback());
  EXPECT_TRUE(ip_address::parse("127.255.0.9").is_loopback());
  EXPECT_FALSE(ip_address::parse("128.0.0.1").is_loopback());
  EXPECT_EQ(ip_address::v4_loopback().to_string(), "127.0.0.1");
  EXPECT_FALSE(ip_address::v4_loopback().is_unspecified());
}

TEST(IpAddress, ParsesIpv6AndFormatsItTheRfc5952Way) {
  const auto a = ip_address::parse("2001:0DB8:0000:0000:0000:0000:0000:0001");
  EXPECT_TRUE(a.is_v6());
  EXPECT_EQ(a.bytes()[0], 0x20);
  EXPECT_EQ(a.bytes()[1], 0x01);
  EXPECT_EQ(a.bytes()[15], 0x01);
  EXPECT_EQ(a.to_string(), "2001:db8::1");  // lower case, zeros compressed
  EXPECT_EQ(ip_address::parse("2001:db8:0:0:1:0:0:1").to_string(), "2001:db8::1:0:0:1");
}

TEST(IpAddress, Ipv6LoopbackAndAny) {
  const auto lo = ip_address::parse("::1");
  EXPECT_TRUE(lo.is_v6());
  EXPECT_TRUE(lo.is_loopback());
  EXPECT_FALSE(lo.is_unspecified());
  EXPECT_EQ(lo, ip_address::v6_loopback());
  EXPECT_EQ(lo.to_string(), "::1");
  const auto any = ip_address::parse("::");
  EXPECT_TRUE(any.is_unspecified());
  EXPECT_FALSE(any.is_loopback());
  EXPECT_EQ(any, ip_address::v6_any());
  EXPECT_EQ(any.to_string(), "::");
}

TEST(IpAddress, AMappedIpv4AddressStaysIpv6) {
  const auto a = ip_address::parse("::ffff:1.2.3.4");
  EXPECT_TRUE(a.is_v6());
  const std::array<std::uint8_t, 16> want{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4};
  EXPECT_EQ(a.bytes(), want);
  EXPECT_EQ(a.to_string(), "::ffff:1.2.3.4");
  EXPECT_NE(a, ip_address::parse("1.2.3.4"));  // a different family is a different address
}

TEST(IpAddress, ANumericScopeIdIsKeptAndPrinted) {
  const auto a = ip_address::parse("fe80::1%2");
  EXPECT_TRUE(a.is_v6());
  EXPECT_EQ(a.scope_id(), 2u);
  EXPECT_EQ(a.to_string(), "fe80::1%2");
  EXPECT_EQ(ip_address::parse(a.to_string()), a);
  EXPECT_NE(a, ip_address::parse("fe80::1"));
  EXPECT_EQ(ip_address::parse("fe80::1").to_string(), "fe80::1");  // scope 0 is not printed
}

TEST(IpAddress, AnInterfaceNameScopeIsLookedUp) {
  // Every network namespace has "lo".
  const unsigned lo = ::if_nametoindex("lo");
  ASSERT_NE(lo, 0u) << "no loopback interface";
  const auto a = ip_address::parse("fe80::1%lo");
  EXPECT_EQ(a.scope_id(), lo);
  EXPECT_EQ(a.to_string(), "fe80::1%" + std::to_string(lo));
}

TEST(IpAddress, RejectsTextThatIsNoAddressAndQuotesIt) {
  const std::string bad[] = {
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.0.0.1",
      "1.2.3.-4",
      "localhost",
      " 1.2.3.4",
      "1.2.3.4 ",
      "0x7f.0.0.1",
      "::g",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "fe80::1%",
      "1.2.3.4%1",
      "[::1]",
      "::1%nosuchif0",
      "12345::",
      ":::",
      std::string(200, '1'),
  };
  for (const auto& text : bad) {
    EXPECT_FALSE(ip_address::try_parse(text).has_value()) << '"' << text << '"';
    const auto what = invalid_argument_message([&] { (void)ip_address::parse(text); });
    EXPECT_NE(what.find("weft::net::ip_address"), std::string::npos) << what;
    EXPECT_NE(what.find('"' + text + '"'), std::string::npos) << what;
  }
}

TEST(IpAddress, RejectsTextWithAnEmbeddedNul) {
  // inet_pton stops at the NUL: without a check "127.0.0.1\0junk" would parse as 127.0.0.1.
  using namespace std::string_view_literals;
  EXPECT_FALSE(ip_address::try_parse("127.0.0.1\0junk"sv).has_value());
  EXPECT_FALSE(ip_address::try_parse("::1\0"sv).has_value());
  EXPECT_THROW((void)ip_address::parse("10.0.0.1\0"sv), std::invalid_argument);
}

TEST(IpAddress, OrdersIpv4BeforeIpv6ThenByBytesThenByScope) {
  const std::vector<ip_address> sorted{
      ip_address::parse("0.0.0.0"),   ip_address::parse("9.255.255.255"),
      ip_address::parse("10.0.0.1"),  ip_address::parse("10.0.0.2"),
      ip_address::parse("::"),        ip_address::parse("::1"),
      ip_address::parse("fe80::1"),   ip_address::parse("fe80::1%1"),
      ip_address::parse("fe80::1%2"),
  };
  for (std::size_t i = 0; i + 1 < sorted.size(); ++i) {
    EXPECT_LT(sorted[i], sorted[i + 1])
        << sorted[i].to_string() << " vs " << sorted[i + 1].to_string();
    EXPECT_NE(sorted[i], sorted[i + 1]);
  }
  auto shuffled = sorted;
  std::reverse(shuffled.begin(), shuffled.end());
  std::sort(shuffled.begin(), shuffled.end());
  EXPECT_EQ(shuffled, sorted);
  EXPECT_EQ(ip_address::parse("10.0.0.1"), ip_address::v4({10, 0, 0, 1}));
  EXPECT_EQ(std::set<ip_address>(sorted.begin(), sorted.end()).size(), sorted.size());
}

// --- socket_address ---------------------------------------------------------------------------

TEST(SocketAddress, ParsesIpv4WithAPort) {
  const auto a = socket_address::parse("127.0.0.1:8080");
  EXPECT_EQ(a.ip(), ip_address::v4_loopback());
  EXPECT_EQ(a.port(), 8080);
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_EQ(a.to_string(), "127.0.0.1:8080");
}

TEST(SocketAddress, ParsesBracketedIpv6WithAPort) {
  const auto a = socket_address::parse("[::1]:8080");
  EXPECT_EQ(a.ip(), ip_address::v6_loopback());
  EXPECT_EQ(a.port(), 8080);
  EXPECT_EQ(a.family(), AF_INET6);
  EXPECT_EQ(a.to_string(), "[::1]:8080");
}

TEST(SocketAddress, KeepsTheScopeIdAndTheMappedForm) {
  const auto scoped = socket_address::parse("[fe80::1%2]:80");
  EXPECT_EQ(scoped.ip().scope_id(), 2u);
  EXPECT_EQ(scoped.to_string(), "[fe80::1%2]:80");
  const auto mapped = socket_address::parse("[::ffff:1.2.3.4]:443");
  EXPECT_TRUE(mapped.ip().is_v6());
  EXPECT_EQ(mapped.to_string(), "[::ffff:1.2.3.4]:443");
}

TEST(SocketAddress, AcceptsEveryPortFromZeroTo65535) {
  EXPECT_EQ(socket_address::parse("1.2.3.4:0").port(), 0);
  EXPECT_EQ(socket_address::parse("1.2.3.4:1").port(), 1);
  EXPECT_EQ(socket_address::parse("1.2.3.4:65535").port(), 65535);
  EXPECT_EQ(socket_address::parse("[::]:65535").port(), 65535);
}

TEST(SocketAddress, RejectsBadTextAndQuotesIt) {
  const std::string bad[] = {
      "",               // nothing
      "1.2.3.4",        // no port
      "1.2.3.4:",       // empty port
      "1.2.3.4:65536",  // port out of range
      "1.2.3.4:99999999999999999999",
      "1.2.3.4:-1",     // negative
      "1.2.3.4:+80",    // sign
      "1.2.3.4:80 ",    // trailing junk
      "1.2.3.4:8o",     // not a number
      ":80",            // no host
      "localhost:80",   // names are resolve()'s job
      "::1:80",         // IPv6 without brackets
      "[::1]",          // no port
      "[::1]80",        // no colon after the bracket
      "[::1]:",         // empty port
      "[::1:80",        // unclosed bracket
      "[]:80",          // empty host
      "[1.2.3.4]:80",   // brackets are for IPv6 only
      "[::1]:65536",    // port out of range
      "1.2.3.4:80:90",  // two ports
  };
  for (const auto& text : bad) {
    EXPECT_FALSE(socket_address::try_parse(text).has_value()) << '"' << text << '"';
    const auto what = invalid_argument_message([&] { (void)socket_address::parse(text); });
    EXPECT_NE(what.find("weft::net::socket_address"), std::string::npos) << what;
    EXPECT_NE(what.find('"' + text + '"'), std::string::npos) << what;
  }
}

TEST(SocketAddress, FormatThenParseRoundTrips) {
  const socket_address addrs[] = {
      {ip_address::v4({192, 168, 0, 1}), 1}, {ip_address::v4_any(), 0},
      {ip_address::v6_loopback(), 65535},    {ip_address::parse("2001:db8::42"), 8443},
      {ip_address::parse("fe80::1%7"), 22},
  };
  for (const auto& a : addrs) {
    EXPECT_EQ(socket_address::parse(a.to_string()), a) << a.to_string();
  }
}

TEST(SocketAddress, ToNativeFillsASockaddrIn) {
  const auto a = socket_address::parse("10.20.30.40:5060");
  sockaddr_storage s;
  std::memset(&s, 0xab, sizeof s);  // to_native clears what it does not use
  const socklen_t len = a.to_native(s);
  ASSERT_EQ(len, sizeof(sockaddr_in));
  sockaddr_in in;
  std::memcpy(&in, &s, sizeof in);
  EXPECT_EQ(in.sin_family, AF_INET);
  EXPECT_EQ(ntohs(in.sin_port), 5060);
  char text[INET_ADDRSTRLEN];
  ASSERT_NE(::inet_ntop(AF_INET, &in.sin_addr, text, sizeof text), nullptr);
  EXPECT_STREQ(text, "10.20.30.40");
  EXPECT_EQ(socket_address::from_native(reinterpret_cast<const sockaddr*>(&s), len), a);
}

TEST(SocketAddress, ToNativeFillsASockaddrIn6WithTheScope) {
  const auto a = socket_address::parse("[fe80::abcd%3]:443");
  sockaddr_storage s;
  const socklen_t len = a.to_native(s);
  ASSERT_EQ(len, sizeof(sockaddr_in6));
  sockaddr_in6 in;
  std::memcpy(&in, &s, sizeof in);
  EXPECT_EQ(in.sin6_family, AF_INET6);
  EXPECT_EQ(ntohs(in.sin6_port), 443);
  EXPECT_EQ(in.sin6_scope_id, 3u);
  EXPECT_EQ(in.sin6_flowinfo, 0u);
  char text[INET6_ADDRSTRLEN];
  ASSERT_NE(::inet_ntop(AF_INET6, &in.sin6_addr, text, sizeof text), nullptr);
  EXPECT_STREQ(text, "fe80::abcd");
  EXPECT_EQ(socket_address::from_native(reinterpret_cast<const sockaddr*>(&s), len), a);
}

TEST(SocketAddress, FromNativeReadsWhatTheKernelWrites) {
  sockaddr_in6 in{};
  in.sin6_family = AF_INET6;
  in.sin6_port = htons(9);
  ASSERT_EQ(::inet_pton(AF_INET6, "::ffff:127.0.0.1", &in.sin6_addr), 1);
  const auto a = socket_address::from_native(reinterpret_cast<const sockaddr*>(&in), sizeof in);
  EXPECT_EQ(a.to_string(), "[::ffff:127.0.0.1]:9");
}

TEST(SocketAddress, FromNativeRejectsOtherFamiliesAndShortLengths) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  EXPECT_THROW((void)socket_address::from_native(reinterpret_cast<const sockaddr*>(&un), sizeof un),
               std::invalid_argument);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  EXPECT_THROW(
      (void)socket_address::from_native(reinterpret_cast<const sockaddr*>(&in), sizeof in - 1),
      std::invalid_argument);
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  EXPECT_THROW((void)socket_address::from_native(reinterpret_cast<const sockaddr*>(&in6),
                                                 sizeof(sockaddr_in)),
               std::invalid_argument);
}

TEST(SocketAddress, OrdersByAddressThenPort) {
  const auto a = socket_address::parse("10.0.0.1:90");
  const auto b = socket_address::parse("10.0.0.2:80");
  const auto c = socket_address::parse("10.0.0.2:81");
  const auto d = socket_address::parse("[::1]:1");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_LT(c, d);
  EXPECT_EQ(b, socket_address(ip_address::v4({10, 0, 0, 2}), 80));
  EXPECT_NE(b, c);
}

// --- resolve ----------------------------------------------------------------------------------

class Resolve : public ::testing::Test {
 protected:
  // resolve() needs no io_uring: getaddrinfo runs on the blocking pool.
  weft::runtime rt_{weft::runtime_options{.workers = 1}};
};

TEST_F(Resolve, LocalhostGivesLoopbackAddressesWithThePort) {
  const auto addrs = rt_.block_on(weft::net::resolve("localhost", 8080));
  ASSERT_FALSE(addrs.empty());
  for (const auto& a : addrs) {
    EXPECT_TRUE(a.ip().is_loopback()) << a.to_string();
    EXPECT_EQ(a.port(), 8080);
  }
  const std::set<socket_address> unique(addrs.begin(), addrs.end());
  EXPECT_EQ(unique.size(), addrs.size()) << "duplicates were not removed";
}

TEST_F(Resolve, ANumericHostIsParsedWithoutALookup) {
  const auto v4 = rt_.block_on(weft::net::resolve("192.0.2.7", 53));
  ASSERT_EQ(v4.size(), 1u);
  EXPECT_EQ(v4[0], socket_address::parse("192.0.2.7:53"));
  const auto v6 = rt_.block_on(weft::net::resolve("::1", 80));
  ASSERT_EQ(v6.size(), 1u);
  EXPECT_EQ(v6[0], socket_address::parse("[::1]:80"));
  const auto bracketed = rt_.block_on(weft::net::resolve("[2001:db8::1]", 443));
  ASSERT_EQ(bracketed.size(), 1u);
  EXPECT_EQ(bracketed[0], socket_address::parse("[2001:db8::1]:443"));
  // No getaddrinfo ran: the blocking pool, which starts threads on demand, never started one.
  EXPECT_EQ(rt_.stats().blocking_threads, 0u);
}

TEST_F(Resolve, AnEmptyHostIsAnInvalidArgument) {
  EXPECT_THROW(rt_.block_on(weft::net::resolve("", 80)), std::invalid_argument);
}

TEST_F(Resolve, ANameThatCannotExistFailsWithTheHostInTheMessage) {
  // RFC 6761 reserves ".invalid": no resolver may answer for it, so the lookup fails without
  // the internet — from /etc/hosts and the local stub, or from a DNS server that says NXDOMAIN.
  // A machine whose resolver points at an unreachable server would instead wait out its
  // resolv.conf timeouts (glibc: 5 s × attempts); the 20 s bound turns that into timed_out,
  // which is accepted too: either way no address was produced. (The runtime's destructor then
  // waits for getaddrinfo to give up, as it waits for every spawn_blocking function.)
  try {
    const auto addrs = rt_.block_on([]() -> weft::task<std::vector<socket_address>> {
      co_return co_await weft::timeout(20s, weft::net::resolve("nosuch.invalid", 80));
    }());
    FAIL() << "nosuch.invalid resolved to " << addrs.size() << " addresses";
  } catch (const weft::timed_out&) {
    SUCCEED() << "the resolver did not answer within 20 s: no address either";
  } catch (const std::system_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("weft::net::resolve nosuch.invalid"), std::string::npos) << what;
    // getaddrinfo's own code (EAI_NONAME, or EAI_AGAIN for a resolver that is not there), or
    // an errno for EAI_SYSTEM.
    if (e.code().category() != std::system_category()) {
      EXPECT_STREQ(e.code().category().name(), "getaddrinfo");
      EXPECT_TRUE(e.code().value() == EAI_NONAME || e.code().value() == EAI_AGAIN ||
                  e.code().value() == EAI_NODATA || e.code().value() == EAI_FAIL)
          << e.code().value() << ": " << what;
    }
  }
}

}  // namespace
