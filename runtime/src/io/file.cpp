// weft::file on the generic io_uring awaitable. A descriptor opened O_NONBLOCK makes io_uring
// return -EAGAIN instead of waiting: such reads and writes wait for readiness with a poll and
// try again; -EINTR is tried again too.
#include <weft/io/file.hpp>

#include <cerrno>
#include <poll.h>
#include <stdexcept>
#include <system_error>
#include <unistd.h>
#include <utility>

#include <liburing.h>

#include <weft/cancel/shielded.hpp>
#include <weft/io/io_operation.hpp>

namespace weft {

namespace {

constexpr std::uint64_t at_position = ~std::uint64_t{0};  // -1: the file position

[[noreturn]] void throw_errno(int error, const char* api, const std::string& path) {
  throw std::system_error(error, std::generic_category(),
                          std::string{api} + ": " + (path.empty() ? "<unnamed>" : path));
}

task<void> wait_ready(int fd, unsigned events) {
  co_await submit_io([fd, events](io_uring_sqe* sqe) { io_uring_prep_poll_add(sqe, fd, events); });
}

}  // namespace

file::file(file&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

file& file::operator=(file&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

file::~file() {
  if (fd_ >= 0) ::close(fd_);
}

int file::require_open(const char* api) const {
  if (fd_ < 0) {
    throw std::logic_error(std::string{api} +
                           ": the file is not open (default-constructed, moved from or closed)");
  }
  return fd_;
}

task<file> file::open(std::string path, int flags, mode_t mode) {
  const int open_flags = flags | O_CLOEXEC;
  for (;;) {
    auto r = co_await submit_io(
        [&](io_uring_sqe* sqe) {
          io_uring_prep_openat(sqe, AT_FDCWD, path.c_str(), open_flags, mode);
        },
        io_returns::fd);
    if (r.res >= 0) co_return file{r.res, std::move(path)};
    if (r.res != -EINTR && r.res != -EAGAIN) throw_errno(-r.res, "weft::file::open", path);
  }
}

file file::adopt(int fd, std::string name) {
  if (fd < 0) throw std::invalid_argument("weft::file::adopt: the descriptor is negative");
  return file{fd, std::move(name)};
}

task<std::size_t> file::read_impl(std::span<std::byte> buf, std::uint64_t offset, const char* api) {
  const int fd = require_open(api);
  for (;;) {
    auto r = co_await submit_io([&](io_uring_sqe* sqe) {
      io_uring_prep_read(sqe, fd, buf.data(), static_cast<unsigned>(buf.size()), offset);
    });
    if (r.res >= 0) co_return static_cast<std::size_t>(r.res);
    if (r.res == -EAGAIN) {
      co_await wait_ready(fd, POLLIN);
    } else if (r.res != -EINTR) {
      throw_errno(-r.res, api, path_);
    }
  }
}

task<std::size_t> file::read_at(std::span<std::byte> buf, std::uint64_t offset) {
  return read_impl(buf, offset, "weft::file::read_at");
}

task<std::size_t> file::read(std::span<std::byte> buf) {
  return read_impl(buf, at_position, "weft::file::read");
}

task<void> file::write_impl(std::span<const std::byte> bytes, std::uint64_t offset,
                            const char* api) {
  const int fd = require_open(api);
  while (!bytes.empty()) {
    auto r = co_await submit_io([&](io_uring_sqe* sqe) {
      io_uring_prep_write(sqe, fd, bytes.data(), static_cast<unsigned>(bytes.size()), offset);
    });
    if (r.res > 0) {
      // A short write (a full disk's last block, a pipe's free space): go on with the rest.
      bytes = bytes.subspan(static_cast<std::size_t>(r.res));
      if (offset != at_position) offset += static_cast<std::uint64_t>(r.res);
    } else if (r.res == -EAGAIN) {
      co_await wait_ready(fd, POLLOUT);
    } else if (r.res == 0) {
      throw_errno(EIO, api, path_);  // no progress and no error: do not spin
    } else if (r.res != -EINTR) {
      throw_errno(-r.res, api, path_);
    }
  }
}

task<void> file::write_at(std::span<const std::byte> bytes, std::uint64_t offset) {
  return write_impl(bytes, offset, "weft::file::write_at");
}

task<void> file::write(std::span<const std::byte> bytes) {
  return write_impl(bytes, at_position, "weft::file::write");
}

task<void> file::fsync(bool data_only) {
  const int fd = require_open("weft::file::fsync");
  for (;;) {
    auto r = co_await submit_io([&](io_uring_sqe* sqe) {
      io_uring_prep_fsync(sqe, fd, data_only ? IORING_FSYNC_DATASYNC : 0);
    });
    if (r.res >= 0) co_return;
    if (r.res != -EINTR) throw_errno(-r.res, "weft::file::fsync", path_);
  }
}

task<struct ::statx> file::stat() {
  const int fd = require_open("weft::file::stat");
  struct ::statx st {};
  for (;;) {
    auto r = co_await submit_io([&](io_uring_sqe* sqe) {
      io_uring_prep_statx(sqe, fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &st);
    });
    if (r.res >= 0) co_return st;
    if (r.res != -EINTR) throw_errno(-r.res, "weft::file::stat", path_);
  }
}

task<std::uint64_t> file::size() {
  auto st = co_await stat();
  co_return st.stx_size;
}

namespace {
task<io_result> submit_close(int fd) {
  co_return co_await submit_io([fd](io_uring_sqe* sqe) { io_uring_prep_close(sqe, fd); });
}
}  // namespace

task<void> file::close() {
  const int fd = require_open("weft::file::close");
  fd_ = -1;  // gone whatever the kernel says: close(2) releases the descriptor even on error
  io_result r{};
  try {
    // Shielded: once started, a close is not taken back. A cancelled close could not tell
    // whether the kernel had released the descriptor already (a flush interrupted after it did
    // reports -EINTR), and closing it again could close another thread's new file.
    r = co_await shielded(submit_close(fd));
  } catch (...) {
    // Never submitted (no ring, a ring that refuses submissions): the descriptor is still open
    // and nothing else would close it.
    ::close(fd);
    throw;
  }
  if (r.res < 0 && r.res != -EINTR) throw_errno(-r.res, "weft::file::close", path_);
}

task<std::string> read_file(std::string path) {
  file f = co_await file::open(path, O_RDONLY);
  std::string out;
  // The size is a hint (procfs says 0): read until end of file either way.
  const std::uint64_t hint = co_await f.size();
  out.resize(hint > 0 ? static_cast<std::size_t>(hint) + 1 : 65536);
  std::size_t used = 0;
  for (;;) {
    if (used == out.size()) out.resize(out.size() * 2);
    auto* data = reinterpret_cast<std::byte*>(out.data()) + used;
    const std::size_t n = co_await f.read_at({data, out.size() - used}, used);
    if (n == 0) break;
    used += n;
  }
  out.resize(used);
  co_await f.close();
  co_return out;
}

task<void> write_file(std::string path, std::string bytes) {
  file f = co_await file::open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  co_await f.write_at(std::as_bytes(std::span{bytes}), 0);
  co_await f.close();
}

}  // namespace weft
