// weft::net::stream_socket: the byte-stream operations TCP and Unix stream sockets share
// (read_some, read_exact, write_all, vectored writes, shutdown, close), on the worker's io_uring.
//
// Thread safety: one task uses a socket at a time, except that one task may read while another
// writes; never read (or write) from two tasks at once (a second waiting read throws
// std::logic_error). Reads belong to the runtime whose task first read the socket (a task of
// another runtime gets std::logic_error); writes, shutdown, options and addresses work from any
// runtime. close() and the destructor may run on any thread, also after that runtime shut down;
// closing under a pending read fails it with EBADF.
//
// Cancellation: read_some, read_exact and both write_all are cancellable suspension points: they
// throw weft::operation_cancelled once the kernel has let go of the buffer. A cancelled read
// consumes nothing (what arrived stays queued for the next read) and leaves the socket usable, but
// a read_exact cancelled part way has consumed what it copied into `buf`. A cancelled write may
// have sent a prefix: the stream's framing is then unknown, so close the connection.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <utility>

#include <sys/socket.h>
#include <sys/uio.h>

#include <weft/task.hpp>

namespace weft::detail {
class multishot;
}

namespace weft::net {

/// A connected stream socket. Move-only; the destructor closes a descriptor close() did not.
/// tcp_stream and unix_stream add how to connect and what the addresses are.
///
/// Every operation runs on the io_uring of the worker that awaits it and is cancellable: a
/// cancelled read or write throws weft::operation_cancelled once the kernel has let go of the
/// buffer (a write cancelled part way may have sent a prefix). Errors are std::system_error with
/// the errno and a message naming the operation and the peer ("weft::net::tcp_stream::read_some
/// 127.0.0.1:8080: Connection reset by peer"); weft::io_unavailable when the runtime has no
/// io_uring; std::logic_error on a closed socket. One reader and one writer may work at the same
/// time (from different tasks). A read started while another task's read waits throws
/// std::logic_error (the waiting one goes on); two concurrent writes interleave unpredictably.
class stream_socket {
 public:
  stream_socket() noexcept = default;
  stream_socket(stream_socket&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)),
        receiver_(std::exchange(other.receiver_, nullptr)),
        peer_(std::move(other.peer_)),
        kind_(other.kind_) {}
  stream_socket& operator=(stream_socket&& other) noexcept;
  ~stream_socket();

  /// Reads what is there, up to buf.size() bytes (waiting for at least one); 0 means the peer
  /// closed its side (end of stream), or `buf` is empty. A reset is an error; bytes received
  /// before it were returned by earlier reads.
  ///
  /// Where the kernel has them, reads come from one multishot receive kept armed on the worker
  /// that first read, into that worker's provided-buffer ring, and are copied into `buf`: no
  /// submission per read. Otherwise (or when the ring's buffers run out) each read is a plain
  /// receive into `buf`. Closing the socket while another task reads it fails that read with
  /// EBADF.
  task<std::size_t> read_some(std::span<std::byte> buf);
  /// Reads until `buf` is full or the stream ends; returns the count (less than buf.size() only
  /// at end of stream — everything received is in buf).
  task<std::size_t> read_exact(std::span<std::byte> buf);
  /// Writes all of `bytes`, looping over short sends. Never raises SIGPIPE: a closed peer is an
  /// EPIPE error.
  task<void> write_all(std::span<const std::byte> bytes);
  /// Writes all the buffers in order as one gathered send (looping over short sends).
  task<void> write_all(std::span<const std::span<const std::byte>> buffers);

  /// Shuts down reading, writing or both (SHUT_RD, SHUT_WR, SHUT_RDWR): SHUT_WR sends FIN and
  /// keeps reading possible (half-close).
  void shutdown(int how = SHUT_WR);
  /// Closes the descriptor now; the socket is empty afterwards. Idempotent.
  void close() noexcept;

  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  [[nodiscard]] int native_handle() const noexcept { return fd_; }
  /// Gives the descriptor up without closing it.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  /// The peer as error messages name it.
  [[nodiscard]] const std::string& peer_name() const noexcept { return peer_; }

 protected:
  stream_socket(int fd, std::string peer, const char* kind) noexcept
      : fd_(fd), peer_(std::move(peer)), kind_(kind) {}
  [[noreturn]] void fail(const char* op, int error) const;
  void check_open(const char* op) const;
  void set_option(int level, int name, int value, const char* what);
  [[nodiscard]] int get_option(int level, int name, const char* what) const;

 private:
  task<std::size_t> read_plain(std::span<std::byte> buf);

  int fd_ = -1;
  ::weft::detail::multishot* receiver_ = nullptr;  // created by the first read
  std::string peer_;
  const char* kind_ = "stream_socket";
};

}  // namespace weft::net
