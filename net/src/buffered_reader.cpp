// buffered_reader: one growable buffer, [begin_, end_) unconsumed. State changes only after an
// awaited read returned, so a cancelled or failed read leaves every byte that arrived before it
// in the buffer; errors consume nothing.
#include <weft/net/buffered_reader.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace weft::net {

namespace {

constexpr std::size_t npos = std::string_view::npos;

std::size_t saturating_add(std::size_t a, std::size_t b) noexcept {
  return a > std::numeric_limits<std::size_t>::max() - b ? std::numeric_limits<std::size_t>::max()
                                                         : a + b;
}

/// A delimiter as error messages show it: "\r\n" rather than a line break.
std::string quoted(std::string_view bytes) {
  std::string out = "\"";
  for (const char c : bytes) {
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
          static constexpr char hex[] = "0123456789abcdef";
          out += "\\x";
          out += hex[static_cast<unsigned char>(c) >> 4];
          out += hex[static_cast<unsigned char>(c) & 0xf];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace

/// Marks the reader busy for one public operation: a second task's read would move or grow the
/// buffer under a receive that is still writing into it.
class buffered_reader::busy_guard {
 public:
  busy_guard(buffered_reader& reader, const char* op) : reader_(reader) {
    reader.check_idle(op);
    reader.busy_ = true;
  }
  busy_guard(const busy_guard&) = delete;
  busy_guard& operator=(const busy_guard&) = delete;
  ~busy_guard() { reader_.busy_ = false; }

 private:
  buffered_reader& reader_;
};

buffered_reader::buffered_reader(stream_socket& socket, reader_options options)
    : socket_(&socket), options_(options) {
  if (options_.chunk == 0) options_.chunk = 1;
}

buffered_reader::buffered_reader(buffered_reader&& other) noexcept
    : socket_(other.socket_),
      options_(other.options_),
      data_(std::move(other.data_)),
      capacity_(std::exchange(other.capacity_, 0)),
      begin_(std::exchange(other.begin_, 0)),
      end_(std::exchange(other.end_, 0)),
      eof_(other.eof_),
      busy_(std::exchange(other.busy_, false)) {}

buffered_reader& buffered_reader::operator=(buffered_reader&& other) noexcept {
  if (this != &other) {
    socket_ = other.socket_;
    options_ = other.options_;
    data_ = std::move(other.data_);
    capacity_ = std::exchange(other.capacity_, 0);
    begin_ = std::exchange(other.begin_, 0);
    end_ = std::exchange(other.end_, 0);
    eof_ = other.eof_;
    busy_ = std::exchange(other.busy_, false);
  }
  return *this;
}

buffered_reader::~buffered_reader() = default;

void buffered_reader::check_idle(const char* op) const {
  if (busy_) {
    throw std::logic_error(context(op) +
                           ": another task's read of this buffered_reader is still in progress");
  }
}

std::string buffered_reader::context(const char* op) const {
  std::string s = std::string("weft::net::buffered_reader::") + op;
  if (!socket_->peer_name().empty()) s += " " + socket_->peer_name();
  return s;
}

void buffered_reader::consume(std::size_t n) {
  check_idle("consume");
  if (n > end_ - begin_) {
    throw std::out_of_range(context("consume") + ": " + std::to_string(n) + " bytes asked, " +
                            std::to_string(end_ - begin_) + " buffered");
  }
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;  // empty: the next read starts at the front, free
}

void buffered_reader::shrink_to_fit() {
  check_idle("shrink_to_fit");
  const std::size_t size = end_ - begin_;
  if (size == capacity_) return;
  std::unique_ptr<char[]> smaller;
  if (size > 0) {
    smaller = std::make_unique_for_overwrite<char[]>(size);
    std::memcpy(smaller.get(), data_.get() + begin_, size);
  }
  data_ = std::move(smaller);
  capacity_ = size;
  begin_ = 0;
  end_ = size;
}

void buffered_reader::make_room(std::size_t room, std::size_t bound) {
  if (capacity_ - end_ >= room) return;
  const std::size_t size = end_ - begin_;
  if (begin_ > 0) {
    // Moves at most one partial frame, and only when the tail has less than a read's worth.
    std::memmove(data_.get(), data_.get() + begin_, size);
    begin_ = 0;
    end_ = size;
    if (capacity_ - end_ >= room) return;
  }
  // Doubling up to the read's bound: a large frame costs a few copies, and memory follows what
  // arrived rather than what a prefix declared.
  const std::size_t needed = saturating_add(size, room);
  const std::size_t grown = std::max(needed, std::min(capacity_ * 2, std::max(bound, needed)));
  auto bigger = std::make_unique_for_overwrite<char[]>(grown);
  if (size > 0) std::memcpy(bigger.get(), data_.get(), size);
  data_ = std::move(bigger);
  capacity_ = grown;
}

task<std::size_t> buffered_reader::fill_once(std::size_t room, std::size_t bound) {
  make_room(room, bound);
  auto tail = std::as_writable_bytes(std::span<char>(data_.get() + end_, capacity_ - end_));
  const std::size_t n = co_await socket_->read_some(tail);
  if (n == 0) eof_ = true;
  end_ += n;
  co_return n;
}

task<bool> buffered_reader::ensure(std::size_t n) {
  while (end_ - begin_ < n) {
    if (eof_) co_return false;
    const std::size_t got = co_await fill_once(options_.chunk, saturating_add(n, options_.chunk));
    if (got == 0) co_return false;
  }
  co_return true;
}

task<std::size_t> buffered_reader::find(std::string_view delimiter, std::size_t max, bool allow_cr,
                                        const char* op) {
  // The delimiter can only start within the first max bytes (max + 1 for a line, whose "\r"
  // before the "\n" does not count): nothing further is searched or needed.
  const std::size_t window =
      saturating_add(saturating_add(max, delimiter.size()), allow_cr ? 1 : 0);
  std::size_t from = 0;  // searched already, relative to begin_ (compaction keeps it valid)
  for (;;) {
    const std::string_view have = buffered();
    const std::size_t searchable = std::min(have.size(), window);
    const std::size_t pos = have.substr(0, searchable).find(delimiter, from);
    // A line of max + 1 bytes before its "\n" is within the limit only if the last is the "\r".
    const bool over =
        pos == npos ? have.size() >= window || (allow_cr && have.size() > max && have[max] != '\r')
                    : allow_cr && pos > max && have[max] != '\r';
    if (over) {
      const std::string what =
          allow_cr ? ": a line longer than the limit of " + std::to_string(max) + " bytes"
                   : ": no " + quoted(delimiter) + " within the limit of " + std::to_string(max) +
                         " bytes";
      throw frame_too_long(max, std::nullopt, context(op) + what);
    }
    if (pos != npos) co_return pos;
    if (searchable >= delimiter.size()) from = searchable - delimiter.size() + 1;
    if (eof_) co_return npos;
    const std::size_t got =
        co_await fill_once(options_.chunk, saturating_add(window, options_.chunk));
    if (got == 0) co_return npos;
  }
}

task<std::optional<std::string_view>> buffered_reader::read_line(std::size_t max) {
  busy_guard guard{*this, "read_line"};
  const std::size_t pos = co_await find("\n", max, true, "read_line");
  const std::string_view have = buffered();
  if (pos == npos && have.empty()) co_return std::nullopt;
  // Without "\n" the stream ended: the rest is the last line (find bounded it already).
  std::size_t length = pos == npos ? have.size() : pos;
  const std::size_t used = pos == npos ? have.size() : pos + 1;
  if (length > 0 && have[length - 1] == '\r') --length;
  begin_ += used;
  if (begin_ == end_) begin_ = end_ = 0;  // the bytes stay put until the next read
  co_return have.substr(0, length);
}

task<std::optional<std::string_view>> buffered_reader::until(std::string_view delimiter,
                                                             std::size_t max, const char* op) {
  if (delimiter.empty()) throw std::invalid_argument(context(op) + ": an empty delimiter");
  const std::size_t pos = co_await find(delimiter, max, false, op);
  const std::string_view have = buffered();
  if (pos == npos) {
    if (have.empty()) co_return std::nullopt;
    throw truncated_frame(have.size(), context(op) + ": the stream ended after " +
                                           std::to_string(have.size()) + " bytes without " +
                                           quoted(delimiter));
  }
  begin_ += pos + delimiter.size();
  if (begin_ == end_) begin_ = end_ = 0;
  co_return have.substr(0, pos);
}

task<std::optional<std::string_view>> buffered_reader::read_until(char delimiter, std::size_t max) {
  busy_guard guard{*this, "read_until"};
  const char one[1] = {delimiter};
  co_return co_await until(std::string_view(one, 1), max, "read_until");
}

task<std::optional<std::string_view>> buffered_reader::read_until(std::string_view delimiter,
                                                                  std::size_t max) {
  busy_guard guard{*this, "read_until"};
  co_return co_await until(delimiter, max, "read_until");
}

task<std::optional<std::string_view>> buffered_reader::read_exact(std::size_t n) {
  busy_guard guard{*this, "read_exact"};
  if (!co_await ensure(n)) {
    const std::size_t have = end_ - begin_;
    if (have == 0) co_return std::nullopt;
    throw truncated_frame(have, context("read_exact") + ": the stream ended after " +
                                    std::to_string(have) + " of " + std::to_string(n) + " bytes");
  }
  const std::string_view frame = buffered().substr(0, n);
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
  co_return frame;
}

task<bool> buffered_reader::read_exact(std::span<std::byte> out) {
  busy_guard guard{*this, "read_exact"};
  // Copies what is buffered into out[got, ...) and consumes it.
  auto take = [this, out](std::size_t got) {
    const std::size_t k = std::min(out.size() - got, end_ - begin_);
    if (k == 0) return got;  // the buffer may not exist yet: no memcpy from null
    std::memcpy(out.data() + got, data_.get() + begin_, k);
    begin_ += k;
    if (begin_ == end_) begin_ = end_ = 0;
    return got + k;
  };
  std::size_t got = take(0);
  try {
    while (got < out.size() && !eof_) {
      const std::size_t missing = out.size() - got;
      if (missing >= options_.chunk) {
        // Large: straight into the caller's memory, no copy and no growth.
        const std::size_t n = co_await socket_->read_some(out.subspan(got));
        if (n == 0) eof_ = true;
        got += n;
      } else {
        const std::size_t n =
            co_await fill_once(options_.chunk, saturating_add(missing, options_.chunk));
        got = take(got);
        if (n == 0) break;
      }
    }
  } catch (...) {
    unread(out.first(got));  // what reached out before the failure is read again next time
    throw;
  }
  if (got == out.size()) co_return true;
  if (got == 0) co_return false;
  unread(out.first(got));
  throw truncated_frame(got, context("read_exact") + ": the stream ended after " +
                                 std::to_string(got) + " of " + std::to_string(out.size()) +
                                 " bytes");
}

task<std::size_t> buffered_reader::read_some(std::span<std::byte> out) {
  busy_guard guard{*this, "read_some"};
  if (out.empty()) co_return 0;
  if (begin_ == end_) {
    if (eof_) co_return 0;
    if (out.size() >= options_.chunk) {
      const std::size_t n = co_await socket_->read_some(out);
      if (n == 0) eof_ = true;
      co_return n;
    }
    const std::size_t n = co_await fill_once(options_.chunk, options_.chunk);
    if (n == 0) co_return 0;
  }
  const std::size_t k = std::min(out.size(), end_ - begin_);
  std::memcpy(out.data(), data_.get() + begin_, k);
  begin_ += k;
  if (begin_ == end_) begin_ = end_ = 0;
  co_return k;
}

task<std::optional<std::string_view>> buffered_reader::read_frame(std::size_t max,
                                                                  length_prefix prefix) {
  busy_guard guard{*this, "read_frame"};
  const auto width = static_cast<std::size_t>(prefix);
  if (!co_await ensure(width)) {
    const std::size_t have = end_ - begin_;
    if (have == 0) co_return std::nullopt;
    throw truncated_frame(have, context("read_frame") + ": the stream ended after " +
                                    std::to_string(have) + " bytes of a " + std::to_string(width) +
                                    "-byte length prefix");
  }
  std::uint64_t length = 0;
  for (std::size_t i = 0; i < width; ++i) {
    length = (length << 8) | static_cast<unsigned char>(data_[begin_ + i]);
  }
  if (length > max || length > std::numeric_limits<std::size_t>::max() - width) {
    throw frame_too_long(max, length,
                         context("read_frame") + ": a frame of " + std::to_string(length) +
                             " bytes is over the limit of " + std::to_string(max) + " bytes");
  }
  const std::size_t total = width + static_cast<std::size_t>(length);
  if (!co_await ensure(total)) {
    const std::size_t have = end_ - begin_;
    throw truncated_frame(have, context("read_frame") + ": the stream ended after " +
                                    std::to_string(have - width) + " of the " +
                                    std::to_string(length) + " bytes of a frame");
  }
  const std::string_view payload = buffered().substr(width, static_cast<std::size_t>(length));
  begin_ += total;
  if (begin_ == end_) begin_ = end_ = 0;
  co_return payload;
}

task<bool> buffered_reader::skip_past(std::string_view delimiter) {
  for (;;) {
    const std::string_view have = buffered();
    const std::size_t pos = have.find(delimiter);
    if (pos != npos) {
      begin_ += pos + delimiter.size();
      if (begin_ == end_) begin_ = end_ = 0;
      co_return true;
    }
    // Keep only what could be the start of a delimiter split across reads.
    const std::size_t keep = std::min(have.size(), delimiter.size() - 1);
    begin_ += have.size() - keep;
    if (begin_ == end_) begin_ = end_ = 0;
    std::size_t got = 0;
    if (!eof_) got = co_await fill_once(options_.chunk, saturating_add(options_.chunk, keep));
    if (got == 0) {
      begin_ = end_ = 0;
      co_return false;
    }
  }
}

task<bool> buffered_reader::skip_until(char delimiter) {
  busy_guard guard{*this, "skip_until"};
  const char one[1] = {delimiter};
  co_return co_await skip_past(std::string_view(one, 1));
}

task<bool> buffered_reader::skip_until(std::string_view delimiter) {
  busy_guard guard{*this, "skip_until"};
  if (delimiter.empty()) {
    throw std::invalid_argument(context("skip_until") + ": an empty delimiter");
  }
  co_return co_await skip_past(delimiter);
}

task<std::size_t> buffered_reader::skip(std::size_t n) {
  busy_guard guard{*this, "skip"};
  std::size_t skipped = 0;
  for (;;) {
    const std::size_t k = std::min(n - skipped, end_ - begin_);
    begin_ += k;
    if (begin_ == end_) begin_ = end_ = 0;
    skipped += k;
    if (skipped == n || eof_) co_return skipped;
    const std::size_t got = co_await fill_once(options_.chunk, options_.chunk);
    if (got == 0) co_return skipped;
  }
}

task<std::size_t> buffered_reader::fill() {
  busy_guard guard{*this, "fill"};
  if (eof_) co_return 0;
  co_return co_await fill_once(options_.chunk, saturating_add(end_ - begin_, options_.chunk));
}

void buffered_reader::unread(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  const std::size_t size = end_ - begin_;
  if (begin_ >= bytes.size()) {
    begin_ -= bytes.size();
  } else {
    const std::size_t needed = size + bytes.size();
    if (capacity_ < needed) {
      auto bigger = std::make_unique_for_overwrite<char[]>(needed);
      if (size > 0) std::memcpy(bigger.get() + bytes.size(), data_.get() + begin_, size);
      data_ = std::move(bigger);
      capacity_ = needed;
    } else {
      std::memmove(data_.get() + bytes.size(), data_.get() + begin_, size);
    }
    begin_ = 0;
    end_ = needed;
  }
  std::memcpy(data_.get() + begin_, bytes.data(), bytes.size());
}

}  // namespace weft::net
