// weft::file, read_file and write_file: round trips, offsets, short and large writes, stat, pipes
// (blocking and O_NONBLOCK), errors that name the path, misuse, and cancellation.
#include <weft/io/file.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "../../support/eventually.hpp"
#include "../../support/fd_leak.hpp"
#include "../../support/io_uring.hpp"

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/io/io_unavailable.hpp>
#include <weft/join_handle.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>

namespace {

using weft::testing::eventually;

/// A fresh directory under TMPDIR (or /tmp), removed with its files at the end of the test.
class temp_dir {
 public:
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string{base != nullptr ? base : "/tmp"} + "/weft-file-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::system_error(errno, std::generic_category());
    path_ = pattern;
  }
  ~temp_dir() {
    for (const auto& f : created_) ::unlink(f.c_str());
    ::rmdir(path_.c_str());
  }
  std::string file(const std::string& name) {
    created_.push_back(path_ + "/" + name);
    return created_.back();
  }

 private:
  std::string path_;
  std::vector<std::string> created_;
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span{s});
}

class File : public weft::testing::needs_io_uring {};

TEST_F(File, WriteFileThenReadFileRoundTrips) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  temp_dir dir;
  const auto path = dir.file("round_trip");
  for (std::size_t size :
       {std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{1 << 20}}) {
    const std::string data = pattern(size);
    const std::string back = rt.block_on([&]() -> weft::task<std::string> {
      co_await weft::write_file(path, data);
      co_return co_await weft::read_file(path);
    });
    EXPECT_EQ(back, data) << "size " << size;
  }
}

TEST_F(File, ReadAtAndWriteAtUseTheirOffsets) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  temp_dir dir;
  const auto path = dir.file("offsets");
  const std::string got = rt.block_on([&]() -> weft::task<std::string> {
    auto f = co_await weft::file::open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    EXPECT_TRUE(f.is_open());
    EXPECT_EQ(f.path(), path);
    const std::string head = "hello", tail = "world";
    co_await f.write_at(bytes_of(tail), 10);
    co_await f.write_at(bytes_of(head), 0);
    EXPECT_EQ(co_await f.size(), 15u);
    std::array<std::byte, 5> buf{};
    const std::size_t n = co_await f.read_at(buf, 10);
    EXPECT_EQ(n, 5u);
    std::array<std::byte, 8> past{};
    EXPECT_EQ(co_await f.read_at(past, 15), 0u);  // end of file
    co_await f.fsync();
    co_await f.fsync(true);
    co_await f.close();
    EXPECT_FALSE(f.is_open());
    co_return std::string(reinterpret_cast<const char*>(buf.data()), n);
  });
  EXPECT_EQ(got, "world");
}

TEST_F(File, StatReportsTheSizeAndMode) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  temp_dir dir;
  const auto path = dir.file("stat");
  rt.block_on([&]() -> weft::task<void> {
    co_await weft::write_file(path, pattern(12345));
    auto f = co_await weft::file::open(path);
    const auto st = co_await f.stat();
    EXPECT_EQ(st.stx_size, 12345u);
    EXPECT_TRUE(S_ISREG(st.stx_mode));
    EXPECT_EQ(
        st.stx_mode & 0777, 0644u & ~[] {
          const mode_t m = ::umask(0);
          ::umask(m);
          return m;
        }());
  });
}

TEST_F(File, ErrorsCarryTheErrnoAndThePath) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  const std::string missing = "/nonexistent-weft-dir/file.txt";
  try {
    rt.block_on(weft::read_file(missing));
    FAIL() << "opened a missing file";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string{e.what()}.find(missing), std::string::npos) << e.what();
    EXPECT_NE(std::string{e.what()}.find("weft::file::open"), std::string::npos) << e.what();
  }
  try {
    rt.block_on([]() -> weft::task<void> {
      auto f = co_await weft::file::open("/dev/null", O_RDONLY);
      const std::string data = "x";
      co_await f.write_at(bytes_of(data), 0);  // opened read-only
    });
    FAIL() << "wrote to a read-only descriptor";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
    EXPECT_NE(std::string{e.what()}.find("/dev/null"), std::string::npos) << e.what();
  }
}

TEST_F(File, OperationsOnAClosedFileAreALogicError) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([]() -> weft::task<void> {
    weft::file empty;
    std::array<std::byte, 4> buf{};
    EXPECT_THROW(co_await empty.read_at(buf, 0), std::logic_error);
    auto f = co_await weft::file::open("/dev/null");
    weft::file moved = std::move(f);
    EXPECT_THROW(co_await f.size(), std::logic_error);  // NOLINT(bugprone-use-after-move)
    co_await moved.close();
    EXPECT_THROW(co_await moved.close(), std::logic_error);
  });
  EXPECT_THROW(weft::file::adopt(-1, "bad"), std::invalid_argument);
}

TEST_F(File, PipesWorkBlockingAndNonBlocking) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  for (int flags : {0, O_NONBLOCK}) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC | flags), 0);
    auto reader = weft::file::adopt(fds[0], "pipe (read end)");
    auto writer = weft::file::adopt(fds[1], "pipe (write end)");
    // 1 MiB through a 64 KiB pipe: writes are short or -EAGAIN until the reader drains it.
    const std::string data = pattern(1 << 20);
    const std::string got = rt.block_on([&]() -> weft::task<std::string> {
      auto w = weft::spawn(weft::co_invoke([&]() -> weft::task<void> {
        co_await writer.write(bytes_of(data));
        co_await writer.close();
      }));
      std::string out;
      std::array<std::byte, 8192> buf{};
      for (;;) {
        const std::size_t n = co_await reader.read(buf);
        if (n == 0) break;
        out.append(reinterpret_cast<const char*>(buf.data()), n);
      }
      co_await std::move(w);
      co_return out;
    });
    EXPECT_EQ(got.size(), data.size()) << "flags " << flags;
    EXPECT_TRUE(got == data) << "flags " << flags;
  }
}

TEST_F(File, ACancelledReadOnAPipeThatNeverGetsDataThrowsAndLeavesThePipeUsable) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  auto reader = weft::file::adopt(fds[0], "pipe");
  std::atomic<bool> started{false};
  auto h = rt.spawn(weft::co_invoke([&]() -> weft::task<void> {
    std::array<std::byte, 16> buf{};
    started.store(true);
    co_await reader.read(buf);
  }));
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  h.cancel();
  EXPECT_THROW(rt.block_on([](weft::join_handle<void> j) -> weft::task<void> {
    co_await std::move(j);
  }(std::move(h))),
               weft::operation_cancelled);
  ASSERT_EQ(::write(fds[1], "z", 1), 1);
  const std::size_t n = rt.block_on([&]() -> weft::task<std::size_t> {
    std::array<std::byte, 16> buf{};
    co_return co_await reader.read(buf);
  });
  EXPECT_EQ(n, 1u);
  ::close(fds[1]);
}

TEST_F(File, ACloseCancelledBeforeItStartsLeavesTheFileOpenAndItsDestructorClosesIt) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  temp_dir dir;
  const auto path = dir.file("cancelled_close");
  const int before = weft::testing::open_fd_count();
  const bool still_open = rt.block_on([&]() -> weft::task<bool> {
    auto f = co_await weft::file::open(path, O_WRONLY | O_CREAT);
    weft::cancel_source stop;
    try {
      auto closing = [&]() -> weft::task<void> {
        stop.request_cancellation();
        co_await f.close();  // cancelled at its start: its body does not run
      };
      auto t = weft::with_cancellation(stop.token(), closing());
      co_await std::move(t);
    } catch (const weft::operation_cancelled&) {
      co_return f.is_open();
    }
    co_return false;
  });
  EXPECT_TRUE(still_open);
  EXPECT_EQ(weft::testing::open_fd_count(), before);
}

TEST_F(File, ManyConcurrentReadersOfOneFile) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  temp_dir dir;
  const auto path = dir.file("shared");
  const std::string data = pattern(64 * 1024);
  const int ok = rt.block_on([&]() -> weft::task<int> {
    co_await weft::write_file(path, data);
    std::vector<weft::join_handle<bool>> hs;
    for (int i = 0; i < 200; ++i) {
      hs.push_back(weft::spawn(weft::co_invoke([&path, &data]() -> weft::task<bool> {
        const std::string got = co_await weft::read_file(path);
        co_return got == data;
      })));
    }
    int n = 0;
    for (auto& h : hs) n += (co_await std::move(h)) ? 1 : 0;
    co_return n;
  });
  EXPECT_EQ(ok, 200);
}

TEST_F(File, ReadFileReadsFilesThatReportSizeZero) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  const std::string status = rt.block_on(weft::read_file("/proc/self/status"));
  EXPECT_NE(status.find("Name:"), std::string::npos);
}

TEST(FileWithoutRing, EveryOperationThrowsIoUnavailable) {
  weft::runtime rt{weft::runtime_options{.workers = 1, .io_uring = false}};
  EXPECT_THROW(rt.block_on(weft::file::open("/dev/null")), weft::io_unavailable);
  EXPECT_THROW(rt.block_on(weft::write_file("/tmp/never-written-by-weft", "x")),
               weft::io_unavailable);
}

}  // namespace
