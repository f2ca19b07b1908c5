// weft::file: files read and written through the worker's io_uring.
//
// Thread safety: a file is used by one task at a time; each operation runs on the io_uring of the
// worker that awaits it (std::logic_error off a worker). The destructor closes synchronously and
// may run on any thread.
//
// Cancellation: every operation that awaits is cancellable (submit_io's rules: operation_cancelled
// once the kernel has let go of the buffer); a cancelled write may have written a prefix. read_file
// and write_file cancelled part way close their descriptor. close() is not cancellable once it
// started (cancelled before it starts, the file stays open for its destructor).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>

#include <weft/task.hpp>

namespace weft {

/// An open file descriptor whose operations run on the io_uring of the worker that awaits them.
/// Move-only; the destructor closes a descriptor that close() did not.
///
///     auto f = co_await weft::file::open("data.bin", O_RDONLY);
///     std::array<std::byte, 4096> buf;
///     std::size_t n = co_await f.read_at(buf, 0);
///
/// Errors: std::system_error with the errno and a message that names the operation and the path;
/// io_unavailable when the runtime has no io_uring; std::logic_error on a closed file.
/// Cancellation: every operation but a started close() is cancellable (see submit_io): a cancelled
/// operation throws operation_cancelled after the kernel has let go of the buffer. A write_at
/// cancelled part way may have written a prefix. The file must outlive the tasks that use it.
class file {
 public:
  file() noexcept = default;
  file(file&& other) noexcept;
  file& operator=(file&& other) noexcept;
  ~file();

  /// Opens `path` (openat(2) flags and mode; O_CLOEXEC is always added).
  static task<file> open(std::string path, int flags = O_RDONLY, mode_t mode = 0644);
  /// Takes ownership of an open descriptor (a pipe, a socket, an inherited file); `name` is used
  /// in error messages.
  static file adopt(int fd, std::string name);

  /// Reads up to buf.size() bytes at `offset`; returns how many, 0 at end of file.
  task<std::size_t> read_at(std::span<std::byte> buf, std::uint64_t offset);
  /// Reads up to buf.size() bytes at the file position (pipes, FIFOs, terminals); 0 at end.
  task<std::size_t> read(std::span<std::byte> buf);
  /// Writes all of `bytes` at `offset`, looping over short writes.
  task<void> write_at(std::span<const std::byte> bytes, std::uint64_t offset);
  /// Writes all of `bytes` at the file position (pipes, FIFOs, O_APPEND files).
  task<void> write(std::span<const std::byte> bytes);
  /// Flushes data and metadata (fdatasync(2)'s subset when `data_only`).
  task<void> fsync(bool data_only = false);
  /// The file's metadata (statx(2), basic fields).
  task<struct ::statx> stat();
  /// The file's size in bytes.
  task<std::uint64_t> size();
  /// Closes the descriptor through the ring; the file is empty afterwards, even on error.
  task<void> close();

  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  [[nodiscard]] int native_handle() const noexcept { return fd_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  file(int fd, std::string path) noexcept : fd_(fd), path_(std::move(path)) {}
  int require_open(const char* api) const;
  task<std::size_t> read_impl(std::span<std::byte> buf, std::uint64_t offset, const char* api);
  task<void> write_impl(std::span<const std::byte> bytes, std::uint64_t offset, const char* api);

  int fd_ = -1;
  std::string path_;
};

/// Reads the whole file at `path`.
task<std::string> read_file(std::string path);
/// Creates or truncates `path` (mode 0644) and writes `bytes` to it.
task<void> write_file(std::string path, std::string bytes);

}  // namespace weft
