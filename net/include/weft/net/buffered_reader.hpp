// weft::net::buffered_reader: lines, delimited records, exact counts and length-prefixed frames
// read from a stream socket through one bounded buffer, so that a protocol needs no hand-written
// buffering and a peer cannot make it hold more than the caller's limit.
//
// Thread safety: one task reads through a reader at a time (a second read while one is suspended
// throws std::logic_error; calls from two threads at once are not synchronised). A buffered_writer
// of the same socket may run in another task meanwhile.
//
// Cancellation: every read is cancellable (weft::operation_cancelled): what had arrived stays
// buffered, bytes already copied into the caller's span included, so the next read returns the
// whole line or frame. skip and skip_until drop what they had read.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include <weft/net/framing.hpp>
#include <weft/net/stream_socket.hpp>
#include <weft/task.hpp>

namespace weft::net {

struct reader_options {
  /// The least free space a read of the socket is given at the end of the buffer (it is given
  /// all there is, which may be more); also how far the buffer may grow past a read's limit.
  /// 16 KiB is the size of the worker's provided receive buffers. 0 is taken as 1.
  std::size_t chunk = 16 * 1024;
};

/// A buffered reader over a tcp_stream or unix_stream (any stream_socket).
///
///     weft::net::buffered_reader in{conn};
///     while (auto line = co_await in.read_line(4096)) {  // empty at the end of the stream
///       if (line->starts_with("DATA ")) {
///         const std::size_t n = parse_size(line->substr(5));  // before the next read
///         if (n > max_body) break;
///         auto body = co_await in.read_exact(n);  // the body, whatever the line contained
///       }
///     }
///
/// **Lifetime.** The reader refers to the socket: the socket must outlive the reader and must
/// not be moved while the reader uses it. Once a reader is in use, read the socket only through
/// it: the bytes it has buffered are no longer in the socket. Writing the socket directly (or
/// through a buffered_writer) at the same time is fine.
///
/// **Views.** Every std::string_view returned points into the reader's buffer and stays valid
/// until the next call of a non-const member (a read, skip, consume, fill or shrink_to_fit) or
/// the reader's destruction: copy it (`std::string{*line}`) to keep it longer. Views are chars;
/// `std::as_bytes(std::span{*view})` gives bytes.
///
/// **Ends and errors.** A read that finds the stream ended before the first byte of its frame
/// returns an empty optional (or false, or 0); one that finds it ended inside a frame throws
/// truncated_frame (read_line alone accepts a last line without "\n"). A line or frame over the
/// limit throws frame_too_long. Neither consumes anything: the bytes stay in buffered(). The
/// socket's errors (std::system_error with the errno) pass through, again after everything
/// received before them.
///
/// **Cancellation.** Every read is cancellable (operation_cancelled, timeout): what had arrived
/// stays buffered for the next call, so nothing is lost and a frame cut by a cancellation is
/// read whole by the next read.
///
/// **Memory.** One heap buffer, allocated by the first read, that grows only as far as the
/// current read needs: a delimited read with limit `max` holds at most max + the delimiter + one
/// chunk, a frame at most prefix + max + one chunk, read_exact(n) at most n + one chunk. Room
/// is made by moving the unconsumed bytes to the front (at most one partial frame, and only
/// when less than a chunk is free at the end) before growing. A read_exact into a span that is
/// cancelled or cut short puts back what it had copied, growing the buffer to hold it. The
/// capacity stays at its high-water mark until shrink_to_fit() or destruction.
///
/// **Concurrency.** One task at a time: a second read (or consume) while one is suspended throws
/// std::logic_error.
class buffered_reader {
 public:
  explicit buffered_reader(stream_socket& socket, reader_options options = {});
  buffered_reader(buffered_reader&& other) noexcept;
  buffered_reader& operator=(buffered_reader&& other) noexcept;
  buffered_reader(const buffered_reader&) = delete;
  buffered_reader& operator=(const buffered_reader&) = delete;
  ~buffered_reader();

  /// The next line without its "\n" or "\r\n" (a "\r" elsewhere is kept); empty at the end of
  /// the stream. A last line that the stream ends without "\n" is returned too (a trailing "\r"
  /// stripped), as getline does; use read_until('\n', max) to treat it as truncated instead.
  /// Throws frame_too_long once more than `max` bytes (not counting "\r\n") precede the "\n".
  ///
  ///     auto line = co_await in.read_line(4096);  // "PING\r\n" -> "PING"
  task<std::optional<std::string_view>> read_line(std::size_t max);

  /// The bytes before the next `delimiter` (which is consumed, not returned); empty at the end
  /// of the stream. Strict: the stream ending after some bytes without the delimiter throws
  /// truncated_frame; more than `max` bytes before it throws frame_too_long. A string delimiter
  /// must stay alive until the read returns (a literal does).
  ///
  ///     auto head = co_await in.read_until("\r\n\r\n", 64 * 1024);  // HTTP header block
  task<std::optional<std::string_view>> read_until(char delimiter, std::size_t max);
  task<std::optional<std::string_view>> read_until(std::string_view delimiter, std::size_t max);

  /// Exactly `n` bytes; empty at the end of the stream before any of them, truncated_frame if it
  /// ends after some. n == 0 gives an empty view at once. The buffer grows to hold n: bound `n`
  /// before asking (or use the span form, which does not grow it).
  task<std::optional<std::string_view>> read_exact(std::size_t n);
  /// Fills `out` exactly, from the buffer first and then (for large spans) straight from the
  /// socket; false at the end of the stream before any byte, truncated_frame after some (those
  /// bytes are buffered again, as after a cancellation).
  task<bool> read_exact(std::span<std::byte> out);

  /// What is buffered, or else what one read of the socket gives, up to out.size() bytes; 0 at
  /// the end of the stream (or for an empty span). A drop-in for stream_socket::read_some.
  task<std::size_t> read_some(std::span<std::byte> out);

  /// The next length-prefixed frame's payload (the prefix is big-endian and counts the payload
  /// only); empty at the end of the stream before a prefix. A declared length over `max` throws
  /// frame_too_long with declared_length() set, before any of the payload is read. A
  /// zero-length frame is an empty view.
  ///
  ///     while (auto msg = co_await in.read_frame(1 << 20)) handle(*msg);
  task<std::optional<std::string_view>> read_frame(std::size_t max,
                                                   length_prefix prefix = length_prefix::u32);

  /// Discards up to and including the next `delimiter`, holding at most one chunk meanwhile;
  /// false if the stream ended first (everything up to the end discarded).
  ///
  ///     catch (const weft::net::frame_too_long&) { co_await in.skip_until('\n'); }
  task<bool> skip_until(char delimiter);
  task<bool> skip_until(std::string_view delimiter);
  /// Discards `n` bytes (buffered first); fewer only at the end of the stream. Discarding is what
  /// it is for: a cancelled skip or skip_until has dropped what it had read.
  task<std::size_t> skip(std::size_t n);

  /// The bytes read from the socket and not consumed yet (valid as the other views are). For
  /// parsers that look before they take: inspect, then consume(n), or fill() for more.
  [[nodiscard]] std::string_view buffered() const noexcept {
    return {data_.get() + begin_, end_ - begin_};
  }
  /// Drops the first `n` buffered bytes; std::out_of_range if fewer are buffered.
  void consume(std::size_t n);
  /// Reads the socket once more into the buffer; returns how many bytes arrived, 0 at the end of
  /// the stream. Grows the buffer by up to a chunk each call: the caller's loop bounds it.
  task<std::size_t> fill();

  /// True once the socket reported the end of the stream: buffered() is all there will be.
  [[nodiscard]] bool at_eof() const noexcept { return eof_; }
  /// The buffer's size in bytes (0 before the first read).
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  /// Gives back the memory the buffered bytes do not use (all of it when nothing is buffered, as
  /// for an idle connection after a large frame); the next read allocates again.
  void shrink_to_fit();
  [[nodiscard]] stream_socket& socket() const noexcept { return *socket_; }

 private:
  class busy_guard;

  task<std::size_t> find(std::string_view delimiter, std::size_t max, bool allow_cr,
                         const char* op);
  task<bool> ensure(std::size_t n);
  task<std::size_t> fill_once(std::size_t room, std::size_t bound);
  task<std::optional<std::string_view>> until(std::string_view delimiter, std::size_t max,
                                              const char* op);
  task<bool> skip_past(std::string_view delimiter);
  void make_room(std::size_t room, std::size_t bound);
  void unread(std::span<const std::byte> bytes);
  void check_idle(const char* op) const;
  [[nodiscard]] std::string context(const char* op) const;

  stream_socket* socket_;
  reader_options options_;
  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;  // the first unconsumed byte
  std::size_t end_ = 0;    // one past the last byte read
  bool eof_ = false;
  bool busy_ = false;
};

}  // namespace weft::net
