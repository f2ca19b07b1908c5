// weft::net::buffered_reader and buffered_writer over Unix socket pairs and loopback TCP: lines,
// delimiters, exact counts and length-prefixed frames arriving whole, in threes and one byte at
// a time; limits at and over; the end of the stream before, inside and between frames;
// cancellation keeping what arrived; bounded memory; flush thresholds and a writer that lost its
// framing. Every test checks for fd leaks.
#include <weft/net/buffered_reader.hpp>
#include <weft/net/buffered_writer.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <liburing.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include "../support/fd_leak.hpp"
#include "../support/io_uring.hpp"
#include "../support/paused_time.hpp"

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/io/io_operation.hpp>
#include <weft/join_handle.hpp>
#include <weft/net/framing.hpp>
#include <weft/net/socket_address.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/net/unix_stream.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/timed_out.hpp>
#include <weft/time/timeout.hpp>
#include <weft/yield.hpp>

namespace {

using namespace std::chrono_literals;
using weft::net::buffered_reader;
using weft::net::buffered_writer;
using weft::net::frame_errc;
using weft::net::frame_too_long;
using weft::net::length_prefix;
using weft::net::reader_options;
using weft::net::stream_socket;
using weft::net::truncated_frame;
using weft::net::unix_stream;
using weft::net::writer_options;

// --- helpers ----------------------------------------------------------------------------------

std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span{s.data(), s.size()});
}

std::string text_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::string pattern(std::size_t n, std::uint32_t seed = 0) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 12345u;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>('a' + (x >> 24) % 26);
  }
  return s;
}

/// A length-prefixed frame built by hand (big-endian), independent of buffered_writer.
std::string frame(std::string_view payload, length_prefix prefix = length_prefix::u32) {
  const auto width = static_cast<std::size_t>(prefix);
  std::string out(width, '\0');
  std::uint64_t n = payload.size();
  for (std::size_t i = width; i-- > 0; n >>= 8) out[i] = static_cast<char>(n & 0xff);
  return out + std::string(payload);
}

/// Bytes waiting in `s`'s receive queue, not yet taken by any read.
int queued(const stream_socket& s) {
  int n = -1;
  EXPECT_EQ(::ioctl(s.native_handle(), FIONREAD, &n), 0);
  return n;
}

/// Sends `data` whole, or one byte per send with the worker given to the reader in between (so
/// that each byte arrives on its own), then half-closes: the reader sees the end of the stream.
weft::task<void> send(stream_socket& s, std::string data, bool drip, bool then_close = true) {
  if (drip) {
    for (const char& c : data) {
      co_await s.write_all(std::as_bytes(std::span{&c, 1}));
      for (int i = 0; i < 3; ++i) co_await weft::yield();
    }
  } else {
    co_await s.write_all(bytes_of(data));
  }
  if (then_close) s.shutdown(SHUT_WR);
}

/// How bytes reach the reader: its read size, and whether they arrive one per send.
struct arrival {
  std::size_t chunk;
  bool drip;
};
constexpr std::array<arrival, 4> arrivals{
    {{1, false}, {3, true}, {16 * 1024, true}, {16 * 1024, false}}};

std::string describe(const arrival& a) {
  return "chunk " + std::to_string(a.chunk) + (a.drip ? ", one byte per send" : ", one send");
}

/// Polls (yielding, bounded) until `reader` has buffered at least `n` bytes.
weft::task<bool> until_buffered(const buffered_reader& reader, std::size_t n) {
  for (int i = 0; i < 100'000; ++i) {
    if (reader.buffered().size() >= n) co_return true;
    co_await weft::yield();
  }
  co_return false;
}

/// Returns once what was sent to `s` has been taken by the read in flight on it and that read's
/// task has run: the queue is empty, a NOP queued after the receive's completion has completed,
/// and the woken reader had its turns. Needs a one-worker runtime.
weft::task<bool> until_taken(const stream_socket& s) {
  bool empty = false;
  for (int i = 0; i < 100'000 && !empty; ++i) {
    empty = queued(s) == 0;
    if (!empty) co_await weft::yield();
  }
  co_await weft::submit_io([](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); });
  for (int i = 0; i < 20; ++i) co_await weft::yield();
  co_return empty;
}

/// Paused time and one worker: a read that would wait forever times out at once instead of
/// hanging the test, and every test runs the same way each time.
class Framed : public weft::testing::needs_io_uring_no_fd_leaks {
 protected:
  weft::runtime rt_{weft::testing::paused()};
};

/// Two workers in real time: the reader's task may resume on either.
class FramedTwoWorkers : public weft::testing::needs_io_uring_no_fd_leaks {
 protected:
  weft::runtime rt_{weft::runtime_options{.workers = 2}};
};

// --- lines ------------------------------------------------------------------------------------

TEST_F(Framed, LinesEndedByLfOrCrLfComeWholeHoweverTheBytesArrive) {
  rt_.block_on([&]() -> weft::task<void> {
    const std::string input = "alpha\nbeta\r\n\r\n\nmid\rdle\nlast\r\n";
    const std::vector<std::string> want{"alpha", "beta", "", "", "mid\rdle", "last"};
    for (const auto& a : arrivals) {
      auto [left, right] = unix_stream::pair();
      auto writer = weft::spawn(send(right, input, a.drip));
      buffered_reader in{left, reader_options{.chunk = a.chunk}};
      std::vector<std::string> got;
      while (auto line = co_await in.read_line(64)) got.emplace_back(*line);
      EXPECT_EQ(got, want) << describe(a);
      EXPECT_TRUE(in.at_eof());
      EXPECT_EQ(co_await in.read_line(64), std::nullopt) << "the end stays the end";
      co_await std::move(writer);
    }
  });
}

TEST_F(Framed, TheLastLineWithoutANewlineIsReturnedAtTheEnd) {
  rt_.block_on([&]() -> weft::task<void> {
    for (const auto& a : arrivals) {
      auto [left, right] = unix_stream::pair();
      auto writer = weft::spawn(send(right, "one\ntwo\r", a.drip));
      buffered_reader in{left, reader_options{.chunk = a.chunk}};
      EXPECT_EQ(co_await in.read_line(16), "one") << describe(a);
      EXPECT_EQ(co_await in.read_line(16), "two") << describe(a) << ": its \"\\r\" stripped";
      EXPECT_EQ(co_await in.read_line(16), std::nullopt) << describe(a);
      co_await std::move(writer);
    }
  });
}

TEST_F(Framed, AnEmptyStreamHasNoLines) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    right.shutdown(SHUT_WR);
    buffered_reader in{left};
    EXPECT_EQ(co_await in.read_line(16), std::nullopt);
    EXPECT_EQ(co_await in.read_until(';', 16), std::nullopt);
    EXPECT_EQ(co_await in.read_exact(4), std::nullopt);
    EXPECT_EQ(co_await in.read_frame(16), std::nullopt);
    std::array<std::byte, 4> buf{};
    EXPECT_FALSE(co_await in.read_exact(buf));
    EXPECT_EQ(co_await in.read_some(buf), 0u);
    EXPECT_EQ(co_await in.fill(), 0u);
  });
}

TEST_F(Framed, ALineOfExactlyTheLimitPassesAndOneByteMoreIsTooLong) {
  rt_.block_on([&]() -> weft::task<void> {
    for (const auto& a : arrivals) {
      auto [left, right] = unix_stream::pair();
      auto writer =
          weft::spawn(send(right, "hello\nhello\r\nhellox\nnext\nhello\rx\nend\n", a.drip));
      buffered_reader in{left, reader_options{.chunk = a.chunk}};
      EXPECT_EQ(co_await in.read_line(5), "hello") << describe(a);
      EXPECT_EQ(co_await in.read_line(5), "hello") << describe(a) << ": the \"\\r\" is not counted";
      for (const std::string_view rest : {"next", "end"}) {
        try {
          auto line = co_await in.read_line(5);
          ADD_FAILURE() << describe(a) << ": a 6-byte line passed a limit of 5: " << *line;
        } catch (const frame_too_long& e) {
          EXPECT_EQ(e.limit(), 5u);
          EXPECT_EQ(e.declared_length(), std::nullopt);
          EXPECT_EQ(e.code(), frame_errc::too_long);
          EXPECT_EQ(e.code(), std::errc::message_size);
          EXPECT_NE(std::string{e.what()}.find("weft::net::buffered_reader::read_line"),
                    std::string::npos)
              << e.what();
          EXPECT_NE(std::string{e.what()}.find("limit of 5 bytes"), std::string::npos) << e.what();
        }
        // Nothing was consumed: the long line is still there, for the caller to drop.
        EXPECT_EQ(in.buffered().substr(0, 5), "hello") << describe(a);
        EXPECT_TRUE(co_await in.skip_until('\n'));
        EXPECT_EQ(co_await in.read_line(5), rest) << describe(a);
      }
      co_await std::move(writer);
    }
  });
}

TEST_F(Framed, AnOverLimitLineFailsAsSoonAsTheLimitIsPassedWithoutWaitingForMore) {
  // The peer sends 6 bytes and then nothing: a limit of 5 is already exceeded. (A "\r" as the
  // sixth byte could still be the end of the line, so that one waits for the seventh.)
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_reader in{left, reader_options{.chunk = 1}};
    co_await right.write_all(bytes_of("hellox"));
    EXPECT_THROW(co_await weft::timeout(1h, in.read_line(5)), frame_too_long);
    EXPECT_EQ(in.buffered(), "hellox");
    auto [left2, right2] = unix_stream::pair();
    buffered_reader in2{left2, reader_options{.chunk = 1}};
    co_await right2.write_all(bytes_of("hello\r"));
    EXPECT_THROW(co_await weft::timeout(1h, in2.read_line(5)), weft::timed_out);
    co_await right2.write_all(bytes_of("x"));
    EXPECT_THROW(co_await weft::timeout(1h, in2.read_line(5)), frame_too_long);
    EXPECT_EQ(in2.buffered(), "hello\rx");
  });
}

TEST_F(Framed, AnOverLimitLineConsumesNothingPastTheLimitAndMemoryStaysBounded) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    const std::string huge = pattern(200'000);
    auto writer = weft::spawn(send(right, huge + "\nafter\n", false));
    buffered_reader in{left, reader_options{.chunk = 4096}};
    EXPECT_THROW(co_await in.read_line(100), frame_too_long);
    EXPECT_GE(in.buffered().size(), 101u);
    EXPECT_EQ(in.buffered().substr(0, 101), std::string_view(huge).substr(0, 101));
    EXPECT_LE(in.capacity(), 100u + 2 + 4096) << "the buffer grew past the limit and a chunk";
    // Discarding holds no more than a chunk either.
    EXPECT_TRUE(co_await in.skip_until('\n'));
    EXPECT_LE(in.capacity(), 100u + 2 + 4096);
    EXPECT_EQ(co_await in.read_line(100), "after");
    co_await std::move(writer);
  });
}

// --- delimiters -------------------------------------------------------------------------------

TEST_F(Framed, ReadUntilSplitsOnAByteOrAStringEvenWhenTheDelimiterArrivesInPieces) {
  rt_.block_on([&]() -> weft::task<void> {
    for (const auto& a : arrivals) {
      auto [left, right] = unix_stream::pair();
      auto writer = weft::spawn(send(right, "k1=v1;;k2=v2;HEAD\r\nX: y\r\n\r\nBODY", a.drip));
      buffered_reader in{left, reader_options{.chunk = a.chunk}};
      EXPECT_EQ(co_await in.read_until(';', 8), "k1=v1") << describe(a);
      EXPECT_EQ(co_await in.read_until(';', 8), "") << describe(a);
      EXPECT_EQ(co_await in.read_until(';', 8), "k2=v2") << describe(a);
      EXPECT_EQ(co_await in.read_until("\r\n\r\n", 64), "HEAD\r\nX: y") << describe(a);
      EXPECT_EQ(co_await in.read_exact(4), "BODY") << describe(a);
      EXPECT_EQ(co_await in.read_until("\r\n\r\n", 64), std::nullopt) << describe(a);
      co_await std::move(writer);
    }
  });
}

TEST_F(Framed, ReadUntilCountsTheLimitBeforeTheDelimiter) {
  rt_.block_on([&]() -> weft::task<void> {
    for (const auto& a : arrivals) {
      auto [left, right] = unix_stream::pair();
      auto writer = weft::spawn(send(right, "abc;abcd;ab--cd--", a.drip));
      buffered_reader in{left, reader_options{.chunk = a.chunk}};
      EXPECT_EQ(co_await in.read_until(';', 3), "abc") << describe(a);
      try {
        (void)co_await in.read_until(';', 3);
        ADD_FAILURE() << describe(a) << ": 4 bytes passed a limit of 3";
      } catch (const frame_too_long& e) {
        EXPECT_EQ(e.limit(), 3u);
        EXPECT_NE(std::string{e.what()}.find("no \";\" within the limit of 3 bytes"),
                  std::string::npos)
            << e.what();
      }
      EXPECT_EQ(in.buffered().substr(0, 4), "abcd");
      EXPECT_TRUE(co_await in.skip_until(';'));
      EXPECT_EQ(co_await in.read_until("--", 2), "ab") << describe(a);
      EXPECT_EQ(co_await in.read_until("--", 2), "cd") << describe(a);
      co_await std::move(writer);
    }
  });
}

TEST_F(Framed, ReadUntilIsStrictAtTheEndOfTheStream) {
  rt_.block_on([&]() -> weft::task<void> {
    for (const auto& a : arrivals) {
      auto [left, right] = unix_stream::pair();
      auto writer = weft::spawn(send(right, "one\ntail", a.drip));
      buffered_reader in{left, reader_options{.chunk = a.chunk}};
      EXPECT_EQ(co_await in.read_until('\n', 16), "one");
      try {
        (void)co_await in.read_until('\n', 16);
        ADD_FAILURE() << describe(a) << ": a record without its delimiter was returned";
      } catch (const truncated_frame& e) {
        EXPECT_EQ(e.received(), 4u);
        EXPECT_EQ(e.code(), frame_errc::truncated);
        EXPECT_NE(std::string{e.what()}.find("ended after 4 bytes without \"\\n\""),
                  std::string::npos)
            << e.what();
      }
      EXPECT_EQ(in.buffered(), "tail") << describe(a) << ": the cut record is still there";
      co_await std::move(writer);
    }
  });
}

TEST_F(Framed, AnEmptyDelimiterIsInvalid) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_reader in{left};
    EXPECT_THROW(co_await in.read_until("", 8), std::invalid_argument);
    EXPECT_THROW(co_await in.skip_until(""), std::invalid_argument);
  });
}

TEST_F(Framed, SkipUntilFindsADelimiterSplitAcrossReadsOrReportsTheEnd) {
  rt_.block_on([&]() -> weft::task<void> {
    for (const auto& a : arrivals) {
      auto [left, right] = unix_stream::pair();
      auto writer = weft::spawn(send(right, pattern(5000) + "\r\n\r\nkept\nno end", a.drip));
      buffered_reader in{left, reader_options{.chunk = a.chunk}};
      EXPECT_TRUE(co_await in.skip_until("\r\n\r\n")) << describe(a);
      EXPECT_EQ(co_await in.read_line(8), "kept") << describe(a);
      EXPECT_FALSE(co_await in.skip_until('\n')) << describe(a);
      EXPECT_EQ(in.buffered(), "") << describe(a);
      co_await std::move(writer);
    }
  });
}

// --- exact counts, and switching modes ------------------------------------------------------

TEST_F(Framed, AHeaderLineThenABodyOfTheCountItGives) {
  rt_.block_on([&]() -> weft::task<void> {
    const std::string body = pattern(40'000, 3);
    const std::string input = "LEN 5\r\nhelloLEN 0\r\nLEN 40000\r\n" + body + "LEN 3\nabc";
    for (const auto& a : arrivals) {
      auto [left, right] = unix_stream::pair();
      auto writer = weft::spawn(send(right, input, a.drip && a.chunk > 1));  // 40 KB: skip drip
      buffered_reader in{left, reader_options{.chunk = a.chunk}};
      std::vector<std::string> bodies;
      while (auto line = co_await in.read_line(32)) {
        EXPECT_TRUE(line->starts_with("LEN ")) << *line;
        const std::size_t n = std::stoul(std::string{line->substr(4)});
        auto got = co_await in.read_exact(n);
        EXPECT_TRUE(got.has_value());
        if (got) bodies.emplace_back(*got);
      }
      EXPECT_EQ(bodies, (std::vector<std::string>{"hello", "", body, "abc"})) << describe(a);
      co_await std::move(writer);
    }
  });
}

TEST_F(Framed, ReadExactIntoASpanTakesTheBufferFirstThenTheSocket) {
  rt_.block_on([&]() -> weft::task<void> {
    const std::string body = pattern(100'000, 4);
    for (const auto& a : arrivals) {
      auto [left, right] = unix_stream::pair();
      auto writer = weft::spawn(send(right, "HDR\n" + body + "tiny", a.drip && a.chunk > 1));
      buffered_reader in{left, reader_options{.chunk = a.chunk}};
      EXPECT_EQ(co_await in.read_line(8), "HDR");
      std::vector<std::byte> big(body.size());  // larger than a chunk: read straight into it
      EXPECT_TRUE(co_await in.read_exact(big));
      EXPECT_EQ(text_of(big), body) << describe(a);
      EXPECT_LE(in.capacity(), 2 * std::max<std::size_t>(a.chunk, 8) + 8)
          << describe(a) << ": the span form does not grow the buffer";
      std::array<std::byte, 4> small{};
      EXPECT_TRUE(co_await in.read_exact(small));
      EXPECT_EQ(text_of(small), "tiny");
      EXPECT_FALSE(co_await in.read_exact(small));
      co_await std::move(writer);
    }
  });
}

TEST_F(Framed, TheEndOfTheStreamInsideAnExactReadIsTruncatedAndKeepsTheBytes) {
  rt_.block_on([&]() -> weft::task<void> {
    for (const auto& a : arrivals) {
      auto [left, right] = unix_stream::pair();
      auto writer = weft::spawn(send(right, "abcdef", a.drip));
      buffered_reader in{left, reader_options{.chunk = a.chunk}};
      try {
        (void)co_await in.read_exact(10);
        ADD_FAILURE() << describe(a) << ": 6 bytes made 10";
      } catch (const truncated_frame& e) {
        EXPECT_EQ(e.received(), 6u);
        EXPECT_NE(std::string{e.what()}.find("after 6 of 10 bytes"), std::string::npos) << e.what();
      }
      EXPECT_EQ(in.buffered(), "abcdef");
      std::vector<std::byte> out(20'000);  // the direct path for large chunks
      try {
        (void)co_await in.read_exact(out);
        ADD_FAILURE() << describe(a) << ": 6 bytes filled 20000";
      } catch (const truncated_frame& e) {
        EXPECT_EQ(e.received(), 6u);
      }
      EXPECT_EQ(in.buffered(), "abcdef") << describe(a) << ": the bytes went back in the buffer";
      EXPECT_EQ(co_await in.read_exact(6), "abcdef");
      EXPECT_EQ(co_await in.read_exact(6), std::nullopt);
      co_await std::move(writer);
    }
  });
}

TEST_F(Framed, ReadSomeGivesTheBufferedBytesFirstThenReadsTheSocket) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_reader in{left, reader_options{.chunk = 64}};
    co_await right.write_all(bytes_of("line\nrest"));
    EXPECT_EQ(co_await in.read_line(8), "line");
    std::array<std::byte, 2> two{};
    EXPECT_EQ(co_await in.read_some(two), 2u);
    EXPECT_EQ(text_of(two), "re");
    std::array<std::byte, 16> buf{};
    EXPECT_EQ(co_await in.read_some(buf), 2u);  // the buffer's rest, without waiting
    EXPECT_EQ(text_of(std::span{buf}.first(2)), "st");
    co_await right.write_all(bytes_of("more"));
    EXPECT_EQ(co_await in.read_some(buf), 4u);
    EXPECT_EQ(text_of(std::span{buf}.first(4)), "more");
    EXPECT_EQ(co_await in.read_some(std::span<std::byte>{}), 0u);
    right.shutdown(SHUT_WR);
    EXPECT_EQ(co_await in.read_some(buf), 0u);
  });
}

TEST_F(Framed, BufferedConsumeAndFillLetAParserLookBeforeItTakes) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    auto writer = weft::spawn(send(right, "GET / HTTP/1.1\r\nHost: x\r\n\r\nnext", true));
    buffered_reader in{left, reader_options{.chunk = 5}};
    while (in.buffered().find("\r\n\r\n") == std::string_view::npos) {
      if (co_await in.fill() == 0) break;
    }
    const std::size_t end = in.buffered().find("\r\n\r\n");
    EXPECT_EQ(end, 23u);
    EXPECT_EQ(in.buffered().substr(0, 14), "GET / HTTP/1.1");
    in.consume(std::min(end + 4, in.buffered().size()));
    EXPECT_EQ(co_await in.read_exact(4), "next");
    EXPECT_THROW(in.consume(1), std::out_of_range);
    EXPECT_EQ(co_await in.fill(), 0u);
    EXPECT_TRUE(in.at_eof());
    co_await std::move(writer);
  });
}

// --- length-prefixed frames ------------------------------------------------------------------

TEST_F(Framed, FramesOfEveryPrefixWidthIncludingEmptyOnes) {
  rt_.block_on([&]() -> weft::task<void> {
    for (const auto prefix :
         {length_prefix::u8, length_prefix::u16, length_prefix::u32, length_prefix::u64}) {
      const std::vector<std::string> payloads{"", "x", pattern(255, 1), "", pattern(40, 2)};
      std::string input;
      for (const auto& p : payloads) input += frame(p, prefix);
      for (const auto& a : arrivals) {
        auto [left, right] = unix_stream::pair();
        auto writer = weft::spawn(send(right, input, a.drip));
        buffered_reader in{left, reader_options{.chunk = a.chunk}};
        std::vector<std::string> got;
        while (auto f = co_await in.read_frame(255, prefix)) got.emplace_back(*f);
        EXPECT_EQ(got, payloads) << describe(a) << ", prefix " << static_cast<int>(prefix);
        co_await std::move(writer);
      }
    }
  });
}

TEST_F(Framed, AFrameOverTheLimitFailsBeforeItsPayloadAndCanBeSkipped) {
  rt_.block_on([&]() -> weft::task<void> {
    const std::string big = pattern(1000, 5);
    const std::string input = frame(pattern(999, 6)) + frame(big) + frame("after");
    for (const auto& a : arrivals) {
      auto [left, right] = unix_stream::pair();
      auto writer = weft::spawn(send(right, input, a.drip));
      buffered_reader in{left, reader_options{.chunk = a.chunk}};
      EXPECT_EQ(co_await in.read_frame(999), pattern(999, 6)) << "exactly the limit";
      try {
        (void)co_await in.read_frame(999);
        ADD_FAILURE() << describe(a) << ": a 1000-byte frame passed a limit of 999";
      } catch (const frame_too_long& e) {
        EXPECT_EQ(e.limit(), 999u);
        EXPECT_EQ(e.declared_length(), 1000u);
        EXPECT_EQ(e.code(), frame_errc::too_long);
        EXPECT_NE(std::string{e.what()}.find("a frame of 1000 bytes is over the limit of 999"),
                  std::string::npos)
            << e.what();
      }
      EXPECT_EQ(in.buffered().substr(0, 4), frame(big).substr(0, 4)) << "the prefix is kept";
      EXPECT_LE(in.capacity(), 4 + 999 + std::max<std::size_t>(a.chunk, 4) + 4);
      EXPECT_EQ(co_await in.skip(4 + 1000), 1004u);
      EXPECT_EQ(co_await in.read_frame(999), "after") << describe(a);
      EXPECT_EQ(co_await in.read_frame(999), std::nullopt);
      co_await std::move(writer);
    }
  });
}

TEST_F(Framed, TheEndOfTheStreamInsideAPrefixOrAPayloadIsTruncated) {
  rt_.block_on([&]() -> weft::task<void> {
    for (const auto& a : arrivals) {
      {
        auto [left, right] = unix_stream::pair();
        auto writer = weft::spawn(send(right, frame("ok") + std::string("\0\0", 2), a.drip));
        buffered_reader in{left, reader_options{.chunk = a.chunk}};
        EXPECT_EQ(co_await in.read_frame(16), "ok");
        try {
          (void)co_await in.read_frame(16);
          ADD_FAILURE() << describe(a) << ": half a prefix made a frame";
        } catch (const truncated_frame& e) {
          EXPECT_EQ(e.received(), 2u);
          EXPECT_NE(std::string{e.what()}.find("after 2 bytes of a 4-byte length prefix"),
                    std::string::npos)
              << e.what();
        }
        co_await std::move(writer);
      }
      {
        auto [left, right] = unix_stream::pair();
        auto writer = weft::spawn(send(right, frame("0123456789").substr(0, 10), a.drip));
        buffered_reader in{left, reader_options{.chunk = a.chunk}};
        try {
          (void)co_await in.read_frame(16);
          ADD_FAILURE() << describe(a) << ": 6 of 10 bytes made a frame";
        } catch (const truncated_frame& e) {
          EXPECT_EQ(e.received(), 10u);  // the prefix and 6 bytes of the payload
          EXPECT_NE(std::string{e.what()}.find("after 6 of the 10 bytes of a frame"),
                    std::string::npos)
              << e.what();
        }
        EXPECT_EQ(in.buffered().size(), 10u);
        co_await std::move(writer);
      }
    }
  });
}

// --- cancellation -----------------------------------------------------------------------------

TEST_F(Framed, ACancelledReadLineKeepsTheHalfLineAndTheNextReadGetsItWhole) {
  rt_.block_on([&]() -> weft::task<void> {
    for (const std::size_t chunk : {std::size_t{1}, std::size_t{16 * 1024}}) {
      auto [left, right] = unix_stream::pair();
      buffered_reader in{left, reader_options{.chunk = chunk}};
      weft::cancel_source stop;
      auto reader = weft::spawn(weft::with_cancellation(stop.token(), in.read_line(100)));
      co_await send(right, "hel", true, false);
      EXPECT_TRUE(co_await until_buffered(in, 3)) << "chunk " << chunk;
      stop.request_cancellation();
      EXPECT_THROW(co_await std::move(reader), weft::operation_cancelled);
      EXPECT_EQ(in.buffered(), "hel") << "chunk " << chunk;
      co_await send(right, "lo\r\nworld\n", true, false);
      EXPECT_EQ(co_await weft::timeout(30s, in.read_line(100)), "hello") << "chunk " << chunk;
      EXPECT_EQ(co_await weft::timeout(30s, in.read_line(100)), "world") << "chunk " << chunk;
    }
  });
}

TEST_F(Framed, ACancelledFrameReadKeepsThePrefixAndPartOfThePayload) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_reader in{left, reader_options{.chunk = 3}};
    const std::string whole = frame("payload") + frame("second");
    weft::cancel_source stop;
    auto reader = weft::spawn(weft::with_cancellation(stop.token(), in.read_frame(64)));
    co_await right.write_all(bytes_of(std::string_view(whole).substr(0, 7)));
    EXPECT_TRUE(co_await until_buffered(in, 7));
    stop.request_cancellation();
    EXPECT_THROW(co_await std::move(reader), weft::operation_cancelled);
    EXPECT_EQ(in.buffered(), std::string_view(whole).substr(0, 7));
    co_await right.write_all(bytes_of(std::string_view(whole).substr(7)));
    EXPECT_EQ(co_await weft::timeout(30s, in.read_frame(64)), "payload");
    EXPECT_EQ(co_await weft::timeout(30s, in.read_frame(64)), "second");
  });
}

TEST_F(Framed, ACancelledReadExactIntoASpanPutsWhatArrivedBackInTheBuffer) {
  // The span is larger than a chunk, so the bytes go straight into it; the cancellation must
  // not lose them.
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_reader in{left, reader_options{.chunk = 16}};
    const std::string body = pattern(1000, 7);
    std::vector<std::byte> out(body.size());
    weft::cancel_source stop;
    auto reader = weft::spawn(weft::with_cancellation(stop.token(), in.read_exact(out)));
    co_await right.write_all(bytes_of(std::string_view(body).substr(0, 300)));
    EXPECT_TRUE(co_await until_taken(left));
    stop.request_cancellation();
    EXPECT_THROW(co_await std::move(reader), weft::operation_cancelled);
    EXPECT_EQ(in.buffered(), std::string_view(body).substr(0, 300));
    co_await right.write_all(bytes_of(std::string_view(body).substr(300)));
    std::vector<std::byte> again(body.size());
    // Bounded: were bytes lost, the read would wait forever (paused time: it fails at once).
    EXPECT_TRUE(co_await weft::timeout(30s, in.read_exact(again)));
    EXPECT_EQ(text_of(again), body);
  });
}

TEST_F(Framed, AReadLineThatTimesOutLosesNothing) {
  // Paused time: the timeout fires as soon as every task waits, in no real time.
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_reader in{left};
    co_await right.write_all(bytes_of("par"));
    EXPECT_THROW(co_await weft::timeout(30s, in.read_line(100)), weft::timed_out);
    co_await right.write_all(bytes_of("tial\n"));
    EXPECT_EQ(co_await weft::timeout(30s, in.read_line(100)), "partial");
  });
}

TEST_F(Framed, ASecondReadWhileOneWaitsIsALogicError) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_reader in{left};
    bool started = false;
    auto first =
        weft::spawn([](bool& s, buffered_reader& r) -> weft::task<std::optional<std::string>> {
          s = true;
          auto line = co_await r.read_line(16);
          co_return line ? std::optional<std::string>{std::string{*line}} : std::nullopt;
        }(started, in));
    while (!started) co_await weft::yield();  // one worker: it now waits in read_line
    // Bounded: without the check the second read would wait beside the first.
    EXPECT_THROW(co_await weft::timeout(30s, in.read_line(16)), std::logic_error);
    EXPECT_THROW(in.consume(0), std::logic_error);
    co_await right.write_all(bytes_of("mine\n"));
    EXPECT_EQ(co_await std::move(first), "mine");
    EXPECT_EQ(in.buffered(), "");
  });
}

// --- memory -----------------------------------------------------------------------------------

TEST_F(Framed, TheBufferNeverHoldsMoreThanTheLimitAndAChunk) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    std::string input;
    for (int i = 0; i < 200; ++i) input += pattern(1000, static_cast<std::uint32_t>(i)) + "\r\n";
    for (int i = 0; i < 20; ++i) input += frame(pattern(65'536, static_cast<std::uint32_t>(i)));
    auto writer = weft::spawn(send(right, input, false));
    buffered_reader in{left, reader_options{.chunk = 4096}};
    std::size_t most = 0;
    for (int i = 0; i < 200; ++i) {
      EXPECT_EQ(co_await in.read_line(1000), pattern(1000, static_cast<std::uint32_t>(i)));
      most = std::max(most, in.capacity());
    }
    EXPECT_LE(most, 1000u + 2 + 4096) << "lines";
    for (int i = 0; i < 20; ++i) {
      EXPECT_EQ(co_await in.read_frame(65'536), pattern(65'536, static_cast<std::uint32_t>(i)));
      most = std::max(most, in.capacity());
    }
    EXPECT_LE(most, 4u + 65'536 + 4096) << "frames";
    EXPECT_EQ(co_await in.read_frame(65'536), std::nullopt);
    in.shrink_to_fit();
    EXPECT_EQ(in.capacity(), 0u) << "nothing buffered: all memory given back";
    co_await std::move(writer);
  });
}

TEST_F(Framed, ADeclaredLengthDoesNotAllocateBeforeTheBytesArrive) {
  // A peer announcing a 64 MiB frame (within the limit) and sending 10 bytes does not make the
  // reader allocate 64 MiB.
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_reader in{left, reader_options{.chunk = 4096}};
    std::string head = frame(pattern(10)).substr(0, 14);
    head[0] = 0x04;  // 64 MiB
    head[3] = 0x00;
    co_await right.write_all(bytes_of(head));
    EXPECT_THROW(co_await weft::timeout(30s, in.read_frame(std::size_t{1} << 27)), weft::timed_out);
    EXPECT_EQ(in.buffered().size(), 14u);
    EXPECT_LE(in.capacity(), 2u * 4096);
  });
}

// --- writer -----------------------------------------------------------------------------------

TEST_F(Framed, WritesStayBufferedUntilTheThresholdThenGoOutTogether) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_writer out{left, writer_options{.flush_threshold = 16}};
    co_await out.write("abc");
    co_await out.write_line("defg");
    EXPECT_EQ(out.pending(), 8u);
    EXPECT_EQ(queued(right), 0) << "below the threshold nothing is sent";
    co_await out.write("hijklmn");  // 15 bytes: still below
    EXPECT_EQ(out.pending(), 15u);
    EXPECT_EQ(queued(right), 0);
    co_await out.write("o");  // reaches 16: all of it goes
    EXPECT_EQ(out.pending(), 0u);
    EXPECT_EQ(queued(right), 16);
    std::array<std::byte, 16> got{};
    EXPECT_EQ(co_await right.read_exact(got), 16u);
    EXPECT_EQ(text_of(got), "abcdefg\nhijklmno");
  });
}

TEST_F(Framed, FlushSendsWhatIsBufferedAndAnEmptyFlushSendsNothing) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_writer out{left};
    co_await out.flush();
    EXPECT_EQ(queued(right), 0);
    co_await out.write_line("PING", "\r\n");
    EXPECT_EQ(queued(right), 0);
    co_await out.flush();
    EXPECT_EQ(out.pending(), 0u);
    EXPECT_EQ(queued(right), 6);
    buffered_reader in{right};
    EXPECT_EQ(co_await in.read_line(8), "PING");
  });
}

TEST_F(Framed, ALargeWriteGoesOutAfterWhatIsBufferedInOrder) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_writer out{left, writer_options{.flush_threshold = 1024}};
    const std::string big = pattern(1 << 20, 8);  // more than the socket holds: read meanwhile
    auto write_all = [](buffered_writer& w, const std::string& b) -> weft::task<void> {
      co_await w.write("head:");
      co_await w.write(b);
      EXPECT_EQ(w.pending(), 0u);
      co_await w.write(":tail");
      co_await w.flush();
      w.socket().shutdown(SHUT_WR);
    };
    auto writer = weft::spawn(write_all(out, big));
    buffered_reader in{right};
    const auto got = co_await in.read_exact(5 + big.size() + 5);
    EXPECT_TRUE(got.has_value() && *got == "head:" + big + ":tail");
    co_await std::move(writer);
  });
}

TEST_F(Framed, WrittenLinesAndFramesReadBackThroughTheReader) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_writer out{left, writer_options{.flush_threshold = 100}};
    co_await out.write_line("hello");
    co_await out.write_line("", "\r\n");
    for (const auto prefix :
         {length_prefix::u8, length_prefix::u16, length_prefix::u32, length_prefix::u64}) {
      co_await out.write_frame("", prefix);
      co_await out.write_frame(pattern(255, 9), prefix);
    }
    const auto bin = bytes_of("bytes");
    co_await out.write_frame(bin);
    co_await out.flush();
    left.shutdown(SHUT_WR);
    buffered_reader in{right, reader_options{.chunk = 7}};
    EXPECT_EQ(co_await in.read_line(8), "hello");
    EXPECT_EQ(co_await in.read_line(8), "");
    for (const auto prefix :
         {length_prefix::u8, length_prefix::u16, length_prefix::u32, length_prefix::u64}) {
      EXPECT_EQ(co_await in.read_frame(255, prefix), "");
      EXPECT_EQ(co_await in.read_frame(255, prefix), pattern(255, 9));
    }
    EXPECT_EQ(co_await in.read_frame(255), "bytes");
    EXPECT_EQ(co_await in.read_frame(255), std::nullopt);
  });
}

TEST_F(Framed, AWriterRefusesALineWithANewlineAndAFrameItsPrefixCannotSay) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_writer out{left};
    EXPECT_THROW(co_await out.write_line("a\nb"), std::invalid_argument);
    try {
      co_await out.write_frame(pattern(256), length_prefix::u8);
      ADD_FAILURE() << "256 bytes behind a 1-byte prefix";
    } catch (const frame_too_long& e) {
      EXPECT_EQ(e.limit(), 255u);
      EXPECT_EQ(e.declared_length(), 256u);
      EXPECT_NE(std::string{e.what()}.find("does not fit a 1-byte length prefix"),
                std::string::npos)
          << e.what();
    }
    co_await out.write_frame(pattern(65'535), length_prefix::u16);  // the most a u16 says
    EXPECT_THROW(co_await out.write_frame(pattern(65'536), length_prefix::u16), frame_too_long);
    EXPECT_EQ(out.pending(), 0u);
    EXPECT_EQ(queued(right), 2 + 65'535) << "the refused writes sent nothing";
  });
}

TEST_F(Framed, ASendThatFailedLeavesTheWriterRefusingMore) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_writer out{left, writer_options{.flush_threshold = 8}};
    right.close();
    try {
      co_await out.write("more than eight bytes");
      ADD_FAILURE() << "a write to a closed peer succeeded";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EPIPE) << e.what();
    }
    EXPECT_EQ(out.pending(), 0u);
    try {
      co_await out.write("x");
      ADD_FAILURE() << "the writer accepted bytes after losing the stream's framing";
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string{e.what()}.find("earlier send failed"), std::string::npos) << e.what();
    }
    EXPECT_THROW(co_await out.flush(), std::logic_error);
  });
}

TEST_F(Framed, AWriteWhileAnotherTaskFlushesIsALogicError) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    buffered_writer out{left, writer_options{.flush_threshold = 1}};
    const std::string big = pattern(8 << 20);  // more than the socket holds: the send waits
    bool started = false;
    auto writer =
        weft::spawn([](bool& s, buffered_writer& w, const std::string& b) -> weft::task<void> {
          s = true;
          co_await w.write(b);
        }(started, out, big));
    while (!started) co_await weft::yield();
    EXPECT_THROW(co_await out.write("x"), std::logic_error);
    EXPECT_THROW(co_await out.flush(), std::logic_error);
    buffered_reader in{right};
    EXPECT_EQ(co_await in.skip(big.size()), big.size());
    co_await std::move(writer);
  });
}

TEST_F(Framed, UnflushedBytesAreLostWhenTheWriterIsDestroyed) {
  rt_.block_on([&]() -> weft::task<void> {
    auto [left, right] = unix_stream::pair();
    {
      buffered_writer out{left};
      co_await out.write_line("never sent");
      EXPECT_EQ(out.pending(), 11u);
    }
    left.shutdown(SHUT_WR);
    buffered_reader in{right};
    EXPECT_EQ(co_await in.read_line(64), std::nullopt);
  });
}

// --- TCP --------------------------------------------------------------------------------------

/// The handler of docs/net.md ("Framed reading and writing"), as printed there.
// "PING" answers "+PONG", "ECHO text" answers "text"; a line over 4 KiB is refused and skipped.
weft::task<void> serve_lines(weft::net::tcp_stream conn) {
  weft::net::buffered_reader in{conn};  // both refer to conn, which outlives them
  weft::net::buffered_writer out{conn};
  for (;;) {
    std::optional<std::string_view> line;  // a view into `in`: valid until its next call
    bool too_long = false;
    try {
      line = co_await in.read_line(4096);
    } catch (const weft::net::frame_too_long&) {
      too_long = true;  // no co_await inside a handler: answered below
    }
    if (too_long) {
      co_await out.write_line("-ERR line too long", "\r\n");
      if (!co_await in.skip_until('\n')) break;  // drop the rest of it; false: the peer left
      continue;
    }
    if (!line) break;  // the peer closed its side
    if (*line == "PING") {
      co_await out.write_line("+PONG", "\r\n");
    } else if (line->starts_with("ECHO ")) {
      co_await out.write_line(line->substr(5), "\r\n");
    } else {
      co_await out.write_line("-ERR unknown command", "\r\n");
    }
    if (in.buffered().empty()) co_await out.flush();  // pipelined requests: one send for all
  }
  co_await out.flush();  // a writer destroyed with bytes in it drops them
}

TEST_F(FramedTwoWorkers, TheLineProtocolOfTheDocsOverLoopbackTcp) {
  rt_.block_on([&]() -> weft::task<void> {
    auto listener = weft::net::tcp_listener::bind(weft::net::socket_address::parse("127.0.0.1:0"));
    auto client = co_await weft::net::tcp_stream::connect(listener.local_address());
    auto accepted = co_await listener.accept();
    auto server = weft::spawn(serve_lines(std::move(accepted.stream)));
    buffered_writer out{client};
    buffered_reader in{client};
    co_await out.write_line("PING", "\r\n");
    co_await out.flush();
    EXPECT_EQ(co_await in.read_line(64), "+PONG");
    // Pipelined: the answers come back in order, the long line refused and skipped in between.
    for (int i = 0; i < 100; ++i) co_await out.write_line("ECHO " + std::to_string(i), "\r\n");
    co_await out.write_line(pattern(5000));
    co_await out.write_line("nonsense");
    co_await out.write_line("ECHO last");
    co_await out.flush();
    client.shutdown(SHUT_WR);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(co_await in.read_line(64), std::to_string(i));
    EXPECT_EQ(co_await in.read_line(64), "-ERR line too long");
    EXPECT_EQ(co_await in.read_line(64), "-ERR unknown command");
    EXPECT_EQ(co_await in.read_line(64), "last");
    co_await std::move(server);  // its frame, and the connection with it, goes here
    EXPECT_EQ(co_await in.read_line(64), std::nullopt);
  });
}

}  // namespace
