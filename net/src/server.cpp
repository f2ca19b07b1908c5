// serve()'s failure handling out of line: the rate-limited default report of a handler's
// exception, and which accept errors belong to one connection rather than to the listener.
#include <weft/net/server.hpp>

#include <cerrno>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace weft::net {

struct handler_error_log::state {
  std::FILE* out;
  clock::duration interval;
  std::mutex lock;
  std::optional<clock::time_point> last;  // when the last line was written
  std::uint64_t unreported = 0;           // failures since then that got no line
};

handler_error_log::handler_error_log(std::FILE* out, clock::duration interval)
    : state_(std::make_unique<state>()) {
  state_->out = out;
  state_->interval = interval;
}

handler_error_log::~handler_error_log() = default;

handler_error_log& handler_error_log::standard() noexcept {
  // Never destroyed: a server may still report while static destructors run at exit.
  static handler_error_log* const log = new handler_error_log{};  // NOLINT: immortal on purpose
  return *log;
}

namespace {
std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}
}  // namespace

void handler_error_log::report(const std::exception_ptr& error, const connection_info& connection) {
  state& s = *state_;
  std::uint64_t left_out = 0;
  {
    const auto now = clock::now();
    std::lock_guard guard{s.lock};
    if (s.last && now - *s.last < s.interval) {
      ++s.unreported;
      return;
    }
    s.last = now;
    left_out = std::exchange(s.unreported, 0);
  }
  std::string line = "weft::net::serve: the handler of connection " +
                     std::to_string(connection.number) + " (" + connection.peer +
                     ") failed: " + describe(error);
  if (left_out > 0) {
    line += " [" + std::to_string(left_out) + " more handler failure" + (left_out == 1 ? "" : "s") +
            " since the previous report, not written]";
  }
  line += '\n';
  std::fputs(line.c_str(), s.out);
  std::fflush(s.out);
}

namespace detail {

void report_handler_error(handler_error_reporter* reporter, const std::exception_ptr& error,
                          std::uint64_t number, std::string peer) noexcept {
  if (reporter == nullptr) return;
  try {
    const connection_info connection{number, std::move(peer)};
    reporter->report(error, connection);
  } catch (...) {
    // Dropped: the hook's own failure must not end the connection's task differently.
  }
}

bool is_connection_error(int error) noexcept {
  switch (error) {
    case ECONNABORTED:  // the peer reset it while it waited in the backlog
    case ECONNRESET:
    case EPERM:  // a firewall rule refused it
    // The new socket's pending network errors (accept(2), "Error handling", for TCP/IP).
    case ENETDOWN:
    case EPROTO:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:  // (also "not a stream socket", which a listener of ours never is)
    case ENETUNREACH:
      return true;
    default:
      return false;
  }
}

}  // namespace detail

}  // namespace weft::net
