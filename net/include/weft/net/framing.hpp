// The vocabulary buffered_reader and buffered_writer share: the width of a length prefix and the
// two framing errors (over the limit; cut short by the end of the stream). The errors have their
// own category, so that a caller can tell a protocol violation from the socket's errno errors.
//
// Thread safety: enums and exception types, values like any other; framing_category() returns one
// immutable object that every thread may use.
//
// Cancellation: nothing here suspends (what a cancelled framed read or write does is in
// buffered_reader.hpp and buffered_writer.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>

namespace weft::net {

/// The width of a frame's length prefix in bytes. The length is unsigned, big-endian (network
/// order), and counts the payload only, not the prefix.
enum class length_prefix : std::uint8_t { u8 = 1, u16 = 2, u32 = 4, u64 = 8 };

/// Why framed I/O refused the input. too_long also compares equal to std::errc::message_size
/// (EMSGSIZE); truncated has no errno equivalent.
enum class frame_errc {
  too_long = 1,  // a line or frame is longer than the limit the caller gave
  truncated,     // the stream ended inside a line, a frame or a length prefix
};

/// The category of frame_errc; its name is "weft.net.framing".
[[nodiscard]] const std::error_category& framing_category() noexcept;

[[nodiscard]] inline std::error_code make_error_code(frame_errc e) noexcept {
  return {static_cast<int>(e), framing_category()};
}

/// A line or frame is longer than the caller's limit (or, writing, than its prefix can say).
/// Nothing was consumed: the reader still holds the bytes, so the caller chooses between
/// discarding (`skip_until('\n')`, `skip(prefix + *declared_length())`) and closing.
///
///     try { line = co_await in.read_line(4096); }
///     catch (const weft::net::frame_too_long& e) { co_await in.skip_until('\n'); }
class frame_too_long : public std::system_error {
 public:
  frame_too_long(std::size_t limit, std::optional<std::uint64_t> declared_length,
                 const std::string& what)
      : std::system_error(make_error_code(frame_errc::too_long), what),
        limit_(limit),
        declared_(declared_length) {}
  /// The limit that was exceeded, in payload bytes (a line's limit excludes its "\r\n").
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
  /// The length a prefix declared; empty for delimited reads (the delimiter was not found within
  /// the limit, so the length is unknown).
  [[nodiscard]] std::optional<std::uint64_t> declared_length() const noexcept { return declared_; }

 private:
  std::size_t limit_;
  std::optional<std::uint64_t> declared_;
};

/// The stream ended after some but not all bytes of a line, frame or length prefix. The bytes
/// that arrived stay buffered (see buffered_reader::buffered()).
class truncated_frame : public std::system_error {
 public:
  truncated_frame(std::size_t received, const std::string& what)
      : std::system_error(make_error_code(frame_errc::truncated), what), received_(received) {}
  /// How many bytes of the frame (its prefix included) arrived before the end.
  [[nodiscard]] std::size_t received() const noexcept { return received_; }

 private:
  std::size_t received_;
};

}  // namespace weft::net

template <>
struct std::is_error_code_enum<weft::net::frame_errc> : std::true_type {};
