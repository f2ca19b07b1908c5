// weft::net::buffered_writer: small writes (lines, length-prefixed frames) gathered in one buffer
// and sent together, so that a reply of many small pieces costs one send instead of one each.
//
// Thread safety: one task writes through a writer at a time (a second call while one is suspended
// throws std::logic_error; calls from two threads at once are not synchronised). A buffered_reader
// of the same socket may run in another task meanwhile.
//
// Cancellation: a write that sends, and flush(), are cancellable; a send cancelled part way leaves
// the stream's framing unknown, so the writer drops its buffer and refuses every later call
// (std::logic_error): close the connection. A write that only appends does not suspend, but
// awaiting it in a cancelled task still throws weft::operation_cancelled.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include <weft/net/framing.hpp>
#include <weft/net/stream_socket.hpp>
#include <weft/task.hpp>

namespace weft::net {

struct writer_options {
  /// Once the buffered bytes would reach this many, a write sends them together with its own
  /// bytes as one gathered send. 0 is taken as 1 (every write sends at once).
  std::size_t flush_threshold = 16 * 1024;
};

/// A buffered writer over a tcp_stream or unix_stream (any stream_socket).
///
///     weft::net::buffered_writer out{conn};
///     for (const auto& item : items) co_await out.write_line(item);
///     co_await out.flush();  // before waiting for the peer's next request
///
/// **Flushing.** write() appends to the buffer and returns without sending until the buffered
/// bytes would reach flush_threshold; then the buffer and the new bytes go out as one gathered
/// write_all (the new bytes are not copied: a large write costs no copy). flush() sends what is
/// buffered. The buffer never holds flush_threshold bytes or more.
///
/// **Unflushed data is lost** when the writer is destroyed: a destructor cannot co_await, so
/// flush() before dropping the writer (and before waiting for an answer the peer cannot send
/// until it has the request).
///
/// **Lifetime.** The writer refers to the socket, which must outlive it and not move while it is
/// used. Arguments are views: they must stay alive until the co_await returns (a temporary in the
/// co_await's own statement does).
///
/// **Failures.** A send that fails or is cancelled may have sent part of the bytes, and which
/// part is unknown, so the stream's framing is lost: the writer drops its buffer, rethrows, and
/// every later call throws std::logic_error. Close the connection. Writing the socket directly
/// while the writer holds bytes reorders the stream; flush first.
///
/// **Concurrency.** One task at a time (a second call while one is suspended throws
/// std::logic_error). One task may write while another reads the same socket.
class buffered_writer {
 public:
  explicit buffered_writer(stream_socket& socket, writer_options options = {});
  buffered_writer(buffered_writer&&) noexcept = default;
  buffered_writer& operator=(buffered_writer&&) noexcept = default;
  buffered_writer(const buffered_writer&) = delete;  // a copy would send the pending bytes twice
  buffered_writer& operator=(const buffered_writer&) = delete;
  ~buffered_writer() = default;

  /// Appends `bytes`, sending once flush_threshold is reached.
  task<void> write(std::span<const std::byte> bytes);
  task<void> write(std::string_view text);
  /// Appends `line` and `ending`. A "\n" inside `line` would split it into two lines at the
  /// peer (an injection, if the line came from elsewhere): std::invalid_argument.
  ///
  ///     co_await out.write_line("250 OK", "\r\n");
  task<void> write_line(std::string_view line, std::string_view ending = "\n");
  /// Appends a big-endian length prefix of `prefix` width and `payload` (the form
  /// buffered_reader::read_frame reads). A payload too long for the prefix (over 255 bytes for
  /// u8, 65535 for u16, …) throws frame_too_long and writes nothing.
  task<void> write_frame(std::span<const std::byte> payload,
                         length_prefix prefix = length_prefix::u32);
  task<void> write_frame(std::string_view payload, length_prefix prefix = length_prefix::u32);
  /// Sends everything buffered (nothing to send: returns at once, no system call).
  task<void> flush();

  /// Bytes buffered and not sent yet.
  [[nodiscard]] std::size_t pending() const noexcept { return buffer_.size(); }
  [[nodiscard]] stream_socket& socket() const noexcept { return *socket_; }

 private:
  class busy_guard;

  task<void> put(std::span<const std::byte> first, std::span<const std::byte> second);
  task<void> send(std::span<const std::span<const std::byte>> parts);
  [[nodiscard]] std::string context(const char* op) const;

  stream_socket* socket_;
  writer_options options_;
  std::vector<std::byte> buffer_;
  bool busy_ = false;
  bool broken_ = false;  // a send failed part way: what the peer has is unknown
};

}  // namespace weft::net
