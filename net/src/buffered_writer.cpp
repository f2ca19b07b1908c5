// buffered_writer: appends below the threshold; at it, one gathered send of the buffer and the
// caller's bytes, so large writes are never copied. A failed send poisons the writer, since
// write_all cannot say how much of the stream went out.
#include <weft/net/buffered_writer.hpp>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace weft::net {

namespace {

std::span<const std::byte> bytes_of(std::string_view text) noexcept {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

}  // namespace

/// Marks the writer busy for one public operation, and checks it is still usable: a second
/// task's write would append to (and may reallocate) the buffer a send is reading.
class buffered_writer::busy_guard {
 public:
  busy_guard(buffered_writer& writer, const char* op) : writer_(writer) {
    if (writer.busy_) {
      throw std::logic_error(writer.context(op) +
                             ": another task's write of this buffered_writer is in progress");
    }
    if (writer.broken_) {
      throw std::logic_error(writer.context(op) +
                             ": an earlier send failed part way; the stream's framing is lost");
    }
    writer.busy_ = true;
  }
  busy_guard(const busy_guard&) = delete;
  busy_guard& operator=(const busy_guard&) = delete;
  ~busy_guard() { writer_.busy_ = false; }

 private:
  buffered_writer& writer_;
};

buffered_writer::buffered_writer(stream_socket& socket, writer_options options)
    : socket_(&socket), options_(options) {
  if (options_.flush_threshold == 0) options_.flush_threshold = 1;
}

std::string buffered_writer::context(const char* op) const {
  std::string s = std::string("weft::net::buffered_writer::") + op;
  if (!socket_->peer_name().empty()) s += " " + socket_->peer_name();
  return s;
}

task<void> buffered_writer::send(std::span<const std::span<const std::byte>> parts) {
  try {
    co_await socket_->write_all(parts);
  } catch (...) {
    buffer_.clear();
    broken_ = true;
    throw;
  }
  buffer_.clear();  // keeps its capacity: below the threshold, never reallocated again
}

task<void> buffered_writer::put(std::span<const std::byte> first,
                                std::span<const std::byte> second) {
  if (buffer_.size() + first.size() + second.size() < options_.flush_threshold) {
    buffer_.insert(buffer_.end(), first.begin(), first.end());
    buffer_.insert(buffer_.end(), second.begin(), second.end());
    co_return;
  }
  const std::array<std::span<const std::byte>, 3> parts{std::span<const std::byte>(buffer_), first,
                                                        second};
  co_await send(parts);
}

task<void> buffered_writer::write(std::span<const std::byte> bytes) {
  busy_guard guard{*this, "write"};
  co_await put(bytes, {});
}

task<void> buffered_writer::write(std::string_view text) {
  busy_guard guard{*this, "write"};
  co_await put(bytes_of(text), {});
}

task<void> buffered_writer::write_line(std::string_view line, std::string_view ending) {
  busy_guard guard{*this, "write_line"};
  if (line.find('\n') != std::string_view::npos) {
    throw std::invalid_argument(context("write_line") + ": the line contains a \"\\n\"");
  }
  co_await put(bytes_of(line), bytes_of(ending));
}

task<void> buffered_writer::write_frame(std::span<const std::byte> payload, length_prefix prefix) {
  busy_guard guard{*this, "write_frame"};
  const auto width = static_cast<std::size_t>(prefix);
  const std::uint64_t most = width == 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * width)) - 1;
  if (payload.size() > most) {
    throw frame_too_long(static_cast<std::size_t>(most), payload.size(),
                         context("write_frame") + ": a frame of " + std::to_string(payload.size()) +
                             " bytes does not fit a " + std::to_string(width) +
                             "-byte length prefix (at most " + std::to_string(most) + ")");
  }
  std::array<std::byte, 8> header{};
  std::uint64_t length = payload.size();
  for (std::size_t i = width; i-- > 0; length >>= 8) {
    header[i] = static_cast<std::byte>(length & 0xff);
  }
  co_await put(std::span<const std::byte>(header.data(), width), payload);
}

task<void> buffered_writer::write_frame(std::string_view payload, length_prefix prefix) {
  // Not a coroutine: the view's bytes are the caller's, as for the span overload.
  return write_frame(bytes_of(payload), prefix);
}

task<void> buffered_writer::flush() {
  busy_guard guard{*this, "flush"};
  if (buffer_.empty()) co_return;
  const std::array<std::span<const std::byte>, 1> parts{std::span<const std::byte>(buffer_)};
  co_await send(parts);
}

}  // namespace weft::net
