// One HTTP/1.1 connection: the read buffer and its head/body regions, the request loop
// (keep-alive, pipelining, batched writes), the response writer, and the watchdog that enforces
// the timeouts and closes idle connections when the server stops.
#include <weft/http/server.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>

#include <sys/socket.h>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/combinators/when_any.hpp>
#include <weft/http/chunked_decoder.hpp>
#include <weft/http/error.hpp>
#include <weft/http/request_parser.hpp>
#include <weft/time/sleep.hpp>

namespace weft::http::detail {

namespace {

using namespace std::string_view_literals;

void append_number(std::string& out, std::uint64_t n);

constexpr std::int64_t no_deadline = std::numeric_limits<std::int64_t>::max();
constexpr std::size_t initial_buffer = 4096;
// Room a body read gets after the head, at least (less than the initial buffer, so that a
// request with a small head and a body does not grow a fresh buffer).
constexpr std::size_t body_room = 2048;
// A body the handler left unread is read and dropped before the next request only up to this
// much; past it the response says Connection: close instead (and a slow uploader cannot hold the
// response back for the whole upload).
constexpr std::uint64_t drain_max = 64 * 1024;
// A string body up to this size is copied behind its head (one send for both, and for the
// responses batched with it); a larger one is sent from where it is.
constexpr std::size_t copy_body_max = 16 * 1024;
// Past this many buffered response bytes, pipelined responses are sent before more are made.
constexpr std::size_t out_flush_at = 64 * 1024;
// After an error response or a close with request bytes unread, the server reads (and drops)
// what the client still sends, up to this many bytes (and for the shortest of the timeouts),
// before it closes, so that the client's unread bytes do not make the kernel reset the
// connection before the client has read the response.
constexpr std::size_t linger_bytes = 256 * 1024;

// The Date header line, formatted once a second per thread (RFC 9110 5.6.7 IMF-fixdate).
std::string_view date_line() noexcept {
  thread_local std::time_t cached = -1;
  thread_local std::array<char, 48> text{};
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec != cached) {
    cached = ts.tv_sec;
    std::tm tm{};
    ::gmtime_r(&cached, &tm);
    static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::snprintf(text.data(), text.size(), "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                  days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                  tm.tm_min, tm.tm_sec);
  }
  return {text.data(), 37};
}

void append_status_line(std::string& out, std::uint16_t status) {
  if (status == 200) {
    out.append("HTTP/1.1 200 OK\r\n"sv);
    return;
  }
  out.append("HTTP/1.1 "sv);
  append_number(out, status);
  out.push_back(' ');
  out.append(reason_phrase(status));
  out.append("\r\n"sv);
}

void append_number(std::string& out, std::uint64_t n) {
  std::array<char, 24> digits{};
  const auto r = std::to_chars(digits.data(), digits.data() + digits.size(), n);
  out.append(digits.data(), r.ptr);
}

void append_hex(std::string& out, std::uint64_t n) {
  std::array<char, 24> digits{};
  const auto r = std::to_chars(digits.data(), digits.data() + digits.size(), n, 16);
  out.append(digits.data(), r.ptr);
}

std::span<const std::byte> bytes_of(std::string_view s) noexcept {
  return std::as_bytes(std::span{s.data(), s.size()});
}

class connection final : public body_source {
 public:
  connection(server_state& state, net::stream_socket& socket, cancel_token stop,
             std::uint64_t number)
      : state_(state),
        options_(state.options),
        socket_(socket),
        stop_(std::move(stop)),
        number_(number),
        parser_(options_.limits),
        peek_(options_.limits),
        decoder_(options_.limits) {
    min_timeout_ = std::min(std::min(options_.header_timeout, options_.body_timeout),
                            std::min(options_.keep_alive_timeout, options_.write_timeout));
    // (Capped: the watchdog's period must not overflow the clock; a shorter period only makes
    // it wake more often.)
    min_timeout_ = std::clamp<clock::duration>(min_timeout_, std::chrono::milliseconds{1},
                                               std::chrono::hours{1});
    max_buffer_ = options_.limits.header_section > std::size_t{1} << 30
                      ? std::size_t{1} << 30  // a head beyond 1 GiB is not buffered, whatever
                      : options_.limits.header_section + body_room;
  }

  task<void> run() {
    auto first = co_await when_any(requests(), watch());
    (void)first;
  }

  task<std::size_t> read_body(std::span<std::byte> buf) override;

 private:
  // Bits of flags_: the loop waits for a new request; the server is stopping.
  static constexpr unsigned idle_bit = 1;
  static constexpr unsigned stop_bit = 2;

  task<void> requests();
  task<void> serve_requests();
  task<void> watch();
  task<bool> drain_body();
  task<void> refuse(parse_error e);
  task<void> send(response& r, bool head_only, int version_minor, bool& keep_alive);
  task<void> send_file(response::file_body& f);
  task<void> send_stream(response::chunk_stream& chunks, bool chunked);
  task<void> flush();
  task<void> write(std::span<const std::span<const std::byte>> parts);
  task<void> linger_close();
  void head_fields(response& r);
  [[noreturn]] void abort_response(const std::exception_ptr& failure);
  void compact() noexcept;
  void reset_buffer();
  void grow(std::size_t capacity);
  bool next_request_buffered();

  void set_deadline(clock::duration d) noexcept {
    const std::int64_t now = clock::now().time_since_epoch().count();
    const std::int64_t add = std::max<std::int64_t>(d.count(), 0);
    // Saturating: a timeout of years must not wrap around into the past.
    deadline_.store(add >= no_deadline - 1 - now ? no_deadline - 1 : now + add,
                    std::memory_order_release);
  }
  void clear_deadline() noexcept { deadline_.store(no_deadline, std::memory_order_release); }
  char* data() noexcept { return in_.get(); }
  std::span<std::byte> free_space() noexcept {
    return std::as_writable_bytes(std::span{in_.get() + end_, cap_ - end_});
  }

  server_state& state_;
  const server_options& options_;
  net::stream_socket& socket_;
  cancel_token stop_;
  std::uint64_t number_;
  clock::duration min_timeout_{};
  std::size_t max_buffer_ = 0;

  // The read buffer: [pos_, end_) holds the bytes not consumed yet. While a handler runs, its
  // request's head lies before work_ (views point into it, so nothing moves until the handler is
  // done) and the body is read behind it.
  std::unique_ptr<char[]> in_;
  std::size_t cap_ = 0;
  std::size_t work_ = 0;
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
  std::string out_;  // responses not sent yet

  request_parser parser_;
  request_parser peek_;  // looks ahead while stopping (parser_ still holds the request's head)
  request req_;
  std::uint64_t served_ = 0;

  // The body of the request being handled.
  body_framing framing_{};
  std::uint64_t remaining_ = 0;  // body_kind::length
  chunked_decoder decoder_;
  std::size_t pending_begin_ = 0;  // decoded chunk data not yet handed out: [begin, end)
  std::size_t pending_end_ = 0;
  bool body_done_ = true;
  bool body_broken_ = false;
  bool expect_continue_ = false;
  bool continue_sent_ = false;

  std::atomic<std::int64_t> deadline_{no_deadline};
  std::atomic<unsigned> flags_{0};
  std::atomic<bool> lingering_{false};
};

task<void> connection::requests() {
  try {
    co_await serve_requests();
  } catch (const operation_cancelled&) {
    throw;
  } catch (...) {
    // A reset, a broken pipe, a client gone: the connection's end, nothing to report. (A
    // handler's failure was answered with 500 and reported where it happened.)
  }
}

task<void> connection::serve_requests() {
  in_ = std::make_unique<char[]>(initial_buffer);
  cap_ = initial_buffer;
  for (;;) {
    // --- the next request's head, from pos_ (pipelined requests are parsed where they lie:
    // moving the rest of a batch forward for each request would cost O(batch²))
    if (pos_ == end_) reset_buffer();
    parser_.reset();
    bool head_timer = false;
    for (;;) {
      const auto status =
          end_ > pos_ ? parser_.parse({data() + pos_, end_ - pos_}) : parse_status::need_more;
      if (status == parse_status::complete) break;
      if (status == parse_status::error) {
        co_await refuse(parser_.error());
        co_return;
      }
      // Responses to the requests read so far go out before the server waits for more.
      if (!out_.empty()) co_await flush();
      if (end_ == pos_) {
        if (flags_.fetch_or(idle_bit, std::memory_order_acq_rel) & stop_bit) co_return;
        // A new connection gets the header timeout for its first request: one that sends
        // nothing is as slow a client as one that trickles.
        set_deadline(served_ == 0 ? options_.header_timeout : options_.keep_alive_timeout);
      } else if (!head_timer) {
        head_timer = true;
        set_deadline(options_.header_timeout);
      }
      if (end_ == cap_) {
        if (pos_ > 0) {
          compact();  // the parser keeps offsets only: the bytes may move
        } else if (cap_ >= max_buffer_) {
          // The parser refuses a head over its limits before this; a limit above the buffer's
          // bound still cannot make the server buffer more.
          co_await refuse({431, "the request head does not fit the server's buffer"});
          co_return;
        } else {
          grow(std::min(cap_ * 2, max_buffer_));
        }
      }
      const std::size_t n = co_await socket_.read_some(free_space());
      if (n == 0) co_return;  // the client closed (inside a head: there is no one to answer)
      // The watchdog may have seen the stop while we were idle and be cancelling us now: a
      // request that arrives then is not started (its client sees the close and may retry).
      if (flags_.fetch_and(~idle_bit, std::memory_order_acq_rel) & stop_bit) co_return;
      end_ += n;
    }
    if (parser_.head().body.kind != body_kind::none &&
        cap_ - pos_ - parser_.head().size < body_room) {
      // A body read needs room behind the head, which must not move while the handler runs:
      // make it now, and parse again for views into the moved bytes.
      compact();
      grow(parser_.head().size + body_room);
      parser_.reset();
      parser_.parse({data(), end_});
    }
    const request_head& head = parser_.head();
    work_ = pos_ = pos_ + head.size;
    framing_ = head.body;
    remaining_ = framing_.kind == body_kind::length ? framing_.length : 0;
    body_done_ =
        framing_.kind == body_kind::none || (framing_.kind == body_kind::length && remaining_ == 0);
    body_broken_ = false;
    expect_continue_ = head.expect_continue;
    continue_sent_ = false;
    pending_begin_ = pending_end_ = 0;
    decoder_.reset();
    request_access::bind(req_, head, this, &socket_.peer_name());
    ++served_;
    state_.stats.requests.fetch_add(1, std::memory_order_relaxed);
    clear_deadline();

    // --- the handler
    response res;
    try {
      res = co_await state_.h(req_);
    } catch (const http::error& e) {
      res = response::text(std::string{e.what()} + "\n", e.status());
    } catch (const operation_cancelled&) {
      throw;
    } catch (...) {
      state_.stats.handler_errors.fetch_add(1, std::memory_order_relaxed);
      net::detail::report_handler_error(options_.on_error, std::current_exception(), number_,
                                        socket_.peer_name());
      res = response::text("internal server error\n", 500);
    }
    const bool head_only = head.method == "HEAD";
    const int version_minor = head.version_minor;
    bool keep_alive = head.keep_alive && !res.closes_connection();

    // --- the rest of the body, so that the next request starts in the right place
    if (!body_done_) {
      if (body_broken_ || (expect_continue_ && !continue_sent_)) {
        keep_alive = false;  // (a body never asked for is never sent by a polite client)
      } else if (keep_alive) {
        const bool drained = co_await drain_body();
        if (!drained) keep_alive = false;
      }  // (closing anyway: what is left is not read first, the lingering close drops it)
    }
    // Stopping: answer what was received already, the last answer closing.
    if (keep_alive && stop_.is_cancellation_requested() && !next_request_buffered()) {
      keep_alive = false;
    }
    co_await send(res, head_only, version_minor, keep_alive);
    if (!keep_alive) {
      co_await flush();
      co_await linger_close();
      co_return;
    }
    if (out_.size() >= out_flush_at) co_await flush();
  }
}

// True if the bytes after the current request hold the next request's whole head.
bool connection::next_request_buffered() {
  if (pos_ >= end_ || !body_done_) return false;
  peek_.reset();
  return peek_.parse({data() + pos_, end_ - pos_}) == parse_status::complete;
}

void connection::compact() noexcept {
  if (pos_ > 0) {
    std::memmove(data(), data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
}

void connection::reset_buffer() {
  pos_ = end_ = 0;
  if (cap_ > initial_buffer) {
    // An idle connection keeps a small buffer, however large its last head was.
    in_ = std::make_unique<char[]>(initial_buffer);
    cap_ = initial_buffer;
  }
}

void connection::grow(std::size_t capacity) {
  if (capacity <= cap_) return;
  auto bigger = std::make_unique<char[]>(capacity);
  std::memcpy(bigger.get(), data(), end_);
  in_ = std::move(bigger);
  cap_ = capacity;
}

task<std::size_t> connection::read_body(std::span<std::byte> buf) {
  if (body_done_ || buf.empty()) co_return 0;
  if (body_broken_) throw http::error{400, "the request body could not be read"};
  bool failed = false;
  try {
    if (expect_continue_ && !continue_sent_) {
      continue_sent_ = true;
      out_.append("HTTP/1.1 100 Continue\r\n\r\n");
      co_await flush();
    }
    if (framing_.kind == body_kind::length) {
      std::size_t n = 0;
      if (pos_ < end_) {
        n = static_cast<std::size_t>(
            std::min<std::uint64_t>(std::min<std::uint64_t>(end_ - pos_, remaining_), buf.size()));
        std::memcpy(buf.data(), data() + pos_, n);
        pos_ += n;
      } else {
        // Straight into the caller's buffer, never past the body (the next request stays in
        // the socket).
        set_deadline(options_.body_timeout);
        n = co_await socket_.read_some(
            buf.first(static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, buf.size()))));
        clear_deadline();
        if (n == 0) {
          body_broken_ = true;
          throw http::error{400, "the client closed the connection inside the request body"};
        }
      }
      remaining_ -= n;
      if (remaining_ == 0) body_done_ = true;
      co_return n;
    }
    for (;;) {
      if (pending_begin_ < pending_end_) {
        const std::size_t n = std::min(pending_end_ - pending_begin_, buf.size());
        std::memcpy(buf.data(), data() + pending_begin_, n);
        pending_begin_ += n;
        co_return n;
      }
      if (pos_ == end_) {
        pos_ = end_ = work_;  // everything behind the head is consumed: reuse the room
        set_deadline(options_.body_timeout);
        const std::size_t n = co_await socket_.read_some(free_space());
        clear_deadline();
        if (n == 0) {
          body_broken_ = true;
          throw http::error{400, "the client closed the connection inside the request body"};
        }
        end_ += n;
      }
      const auto r = decoder_.decode({data() + pos_, end_ - pos_});
      switch (r.status) {
        case decode_status::data:
          pending_begin_ = static_cast<std::size_t>(r.data.data() - data());
          pending_end_ = pending_begin_ + r.data.size();
          pos_ += r.consumed;
          break;
        case decode_status::need_more:
          pos_ += r.consumed;
          break;
        case decode_status::done:
          pos_ += r.consumed;
          body_done_ = true;
          co_return 0;
        case decode_status::error:
          body_broken_ = true;
          throw http::error{decoder_.error().status, std::string{decoder_.error().what}};
      }
    }
  } catch (const operation_cancelled&) {
    // Where the body stands after a cancelled read is not known: the connection closes after
    // this request.
    clear_deadline();
    body_broken_ = true;
    throw;
  } catch (const std::system_error&) {
    // The client reset the connection (or the socket failed) inside the body: the handler sees
    // a 400 like any broken body, not an error of its own to be reported.
    clear_deadline();
    body_broken_ = true;
    failed = true;
  }
  if (failed) throw http::error{400, "the connection failed inside the request body"};
  co_return 0;
}

task<bool> connection::drain_body() {
  if (framing_.kind == body_kind::length && remaining_ > drain_max) co_return false;
  std::array<std::byte, 4096> sink{};
  std::uint64_t drained = 0;
  try {
    while (const std::size_t n = co_await read_body(sink)) {
      drained += n;
      if (drained > drain_max) co_return false;
    }
  } catch (const http::error&) {
    co_return false;
  }
  co_return true;
}

void connection::head_fields(response& r) {
  if (!state_.server_line.empty() && (r.headers().empty() || !r.header("Server"))) {
    out_.append(state_.server_line);
  }
  if (r.headers().empty() || !r.header("Date")) out_.append(date_line());
  if (const auto type = r.content_type(); !type.empty()) {
    out_.append("Content-Type: "sv);
    out_.append(type);
    out_.append("\r\n"sv);
  }
  for (const auto& f : r.headers()) {
    out_.append(f.name);
    out_.append(": "sv);
    out_.append(f.value);
    out_.append("\r\n"sv);
  }
}

task<void> connection::send(response& r, bool head_only, int version_minor, bool& keep_alive) {
  const std::uint16_t status = r.status();
  const bool bodiless = status == 204 || status == 304;
  auto& body = response_access::body(r);
  auto* stream = std::get_if<response::chunk_stream>(&body);
  const bool chunked = stream != nullptr && version_minor >= 1;
  if (stream != nullptr && !chunked && !head_only && !bodiless) {
    keep_alive = false;  // HTTP/1.0: the end of the connection ends the body
  }
  append_status_line(out_, status);
  head_fields(r);
  if (!bodiless) {
    if (auto* s = std::get_if<std::string>(&body)) {
      out_.append("Content-Length: "sv);
      append_number(out_, s->size());
      out_.append("\r\n"sv);
    } else if (auto* f = std::get_if<response::file_body>(&body)) {
      out_.append("Content-Length: "sv);
      append_number(out_, f->length);
      out_.append("\r\n"sv);
    } else if (chunked) {
      out_.append("Transfer-Encoding: chunked\r\n"sv);
    }
  }
  if (!keep_alive) {
    out_.append("Connection: close\r\n"sv);
  } else if (version_minor == 0) {
    out_.append("Connection: keep-alive\r\n"sv);
  }
  out_.append("\r\n"sv);
  if (head_only || bodiless) co_return;
  if (auto* s = std::get_if<std::string>(&body)) {
    if (s->size() <= copy_body_max) {
      out_.append(*s);
    } else {
      const std::array<std::span<const std::byte>, 2> parts{bytes_of(out_), bytes_of(*s)};
      co_await write(parts);
      out_.clear();
    }
  } else if (auto* f = std::get_if<response::file_body>(&body)) {
    co_await flush();
    co_await send_file(*f);
  } else {
    co_await flush();
    co_await send_stream(*stream, chunked);
  }
}

task<void> connection::send_file(response::file_body& f) {
  constexpr std::size_t chunk = 64 * 1024;
  auto buffer = std::make_unique<std::byte[]>(chunk);
  std::uint64_t offset = f.offset;
  std::uint64_t left = f.length;
  while (left > 0) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk));
    std::size_t n = 0;
    std::exception_ptr failure;
    try {
      n = co_await f.file.read_at(std::span{buffer.get(), want}, offset);
      if (n == 0) {
        throw std::runtime_error("weft::http: the file " + f.file.path() +
                                 " ended before the length its response declared");
      }
    } catch (const operation_cancelled&) {
      throw;
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) abort_response(failure);
    const std::array<std::span<const std::byte>, 1> parts{
        std::span<const std::byte>{buffer.get(), n}};
    co_await write(parts);
    offset += n;
    left -= n;
  }
}

task<void> connection::send_stream(response::chunk_stream& chunks, bool chunked) {
  std::string frame;
  for (;;) {
    std::optional<std::string> piece;
    std::exception_ptr failure;
    try {
      piece = co_await chunks.next();
    } catch (const operation_cancelled&) {
      throw;
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) abort_response(failure);
    if (!piece) break;
    if (piece->empty()) continue;  // an empty chunk would end a chunked body
    if (!chunked) {
      const std::array<std::span<const std::byte>, 1> parts{bytes_of(*piece)};
      co_await write(parts);
      continue;
    }
    frame.clear();
    append_hex(frame, piece->size());
    frame.append("\r\n");
    const std::array<std::span<const std::byte>, 3> parts{bytes_of(frame), bytes_of(*piece),
                                                          bytes_of("\r\n")};
    co_await write(parts);
  }
  if (chunked) {
    const std::array<std::span<const std::byte>, 1> parts{bytes_of("0\r\n\r\n")};
    co_await write(parts);
  }
}

// The body's source failed after the head went out: the handler's error is reported like one
// thrown before, and the connection is reset rather than closed, so that a client reading a
// close-delimited or chunked body cannot take the part it got for the whole.
void connection::abort_response(const std::exception_ptr& failure) {
  state_.stats.handler_errors.fetch_add(1, std::memory_order_relaxed);
  net::detail::report_handler_error(options_.on_error, failure, number_, socket_.peer_name());
  const ::linger reset{1, 0};
  ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  std::rethrow_exception(failure);
}

task<void> connection::flush() {
  if (out_.empty()) co_return;
  const std::array<std::span<const std::byte>, 1> parts{bytes_of(out_)};
  co_await write(parts);
  out_.clear();
  if (out_.capacity() > out_flush_at * 2) out_.shrink_to_fit();
}

task<void> connection::write(std::span<const std::span<const std::byte>> parts) {
  set_deadline(options_.write_timeout);
  if (parts.size() == 1) {
    co_await socket_.write_all(parts.front());
  } else {
    co_await socket_.write_all(parts);
  }
  clear_deadline();
}

task<void> connection::refuse(parse_error e) {
  state_.stats.refused.fetch_add(1, std::memory_order_relaxed);
  std::string body = std::string{reason_phrase(e.status)} + ": " + std::string{e.what} + "\n";
  append_status_line(out_, e.status);
  out_.append(state_.server_line);
  out_.append(date_line());
  out_.append("Content-Type: text/plain; charset=utf-8\r\nContent-Length: ");
  append_number(out_, body.size());
  out_.append("\r\nConnection: close\r\n\r\n");
  out_.append(body);
  co_await flush();
  co_await linger_close();
}

task<void> connection::linger_close() {
  const bool unread = pos_ < end_ || !body_done_;
  socket_.shutdown(SHUT_WR);
  if (!unread) co_return;
  // The client may still be sending (a pipelined request, the rest of a body): read and drop
  // it for a short while, so that the kernel does not answer it with a reset that could
  // destroy the response before the client has read it.
  lingering_.store(true, std::memory_order_relaxed);
  // The shortest timeout, not less: the watchdog may be asleep for that long.
  set_deadline(min_timeout_);
  std::size_t dropped = 0;
  pos_ = end_ = 0;
  while (dropped < linger_bytes) {
    const std::size_t n = co_await socket_.read_some(free_space());
    if (n == 0) break;
    dropped += n;
  }
}

task<void> connection::watch() {
  bool stop_seen = false;
  for (;;) {
    // Sleep until the deadline, but never longer than the shortest timeout: a deadline set
    // later is at least that far from when it is set, so none is overslept.
    const auto d = deadline_.load(std::memory_order_acquire);
    auto until = clock::now() + min_timeout_;
    if (d != no_deadline) until = std::min(until, clock::time_point{clock::duration{d}});
    if (stop_seen) {
      co_await sleep_until(until);
    } else {
      try {
        co_await with_cancellation(stop_, sleep_until(until));
      } catch (const operation_cancelled&) {
        if (!stop_.is_cancellation_requested()) throw;
        stop_seen = true;
      }
      if (stop_seen) {
        // An idle connection closes now; a busy one finishes what it received (its loop sees
        // the stop between requests).
        if (flags_.fetch_or(stop_bit, std::memory_order_acq_rel) & idle_bit) co_return;
        continue;
      }
    }
    const auto now = clock::now().time_since_epoch().count();
    if (deadline_.load(std::memory_order_acquire) <= now) {
      if (!lingering_.load(std::memory_order_relaxed))
        state_.stats.timeouts.fetch_add(1, std::memory_order_relaxed);
      co_return;  // when_any cancels the request loop, wherever it waits
    }
  }
}

}  // namespace

task<void> serve_connection(server_state& state, net::stream_socket& socket, cancel_token stop,
                            std::uint64_t number) {
  connection c{state, socket, std::move(stop), number};
  co_await c.run();
}

}  // namespace weft::http::detail
