// weft::net::serve: the accept loop of a server, with graceful shutdown — stop accepting, let
// live connections finish within a grace period, then cancel them. A handler's failure is
// reported (rate limited, so a client cannot flood the log), and an accept that fails for one
// connection is skipped: neither stops the server.
//
// Thread safety: every connection runs in a task of its own, on any worker, and all of them call
// the one `handler` object: its call operator must be safe to call concurrently, and so must a
// handler_error_reporter. server_stats are atomics, readable from any thread. Nobody else accepts
// on the listener while serve() runs.
//
// Cancellation: cancelling `stop` ends serve() gracefully (accepting stops, live connections get
// `grace`, then are cancelled and awaited); cancelling the task that awaits serve() cancels every
// connection at once, waits for them and throws weft::operation_cancelled. A handler that ends in
// operation_cancelled is counted as cancelled, never reported as failed.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>
#include <weft/time/sleep.hpp>
#include <weft/time/timed_out.hpp>
#include <weft/time/timeout.hpp>

namespace weft::net {

/// The connection a handler served, as server_options::on_handler_error sees it.
struct connection_info {
  std::uint64_t number = 0;  // 1 for the first connection a serve() call accepted, then 2, …
  std::string peer;          // as error messages name it: "127.0.0.1:5000", "unix:/run/app.sock"
};

/// Receives the exception of a handler that threw and the connection it served
/// (server_options::on_handler_error points to one). Called on the handler's worker, from several
/// workers at once: implementations must be thread safe. Whatever it throws is dropped.
class handler_error_reporter {
 public:
  virtual void report(const std::exception_ptr& error, const connection_info& connection) = 0;

 protected:
  ~handler_error_reporter() = default;
};

/// The default reporter: a line on `out` (stderr) naming the connection and the exception, at
/// most one per `interval` of the runtime's clock. Failures in between are counted, not written,
/// and the next line says how many there were. So a client that makes its handler fail on
/// purpose, as fast as it can connect, adds at most one line per interval to the log, while the
/// first failure of a quiet period shows at once.
///
///     weft::net::handler_error_log log{log_file, std::chrono::seconds{10}};  // outlives serve()
///     co_await weft::net::serve(listener, handler, stop, {.on_handler_error = &log});
///
/// handler_error_log::standard() is the process-wide one on stderr, once a second, that
/// server_options uses by default. Thread safe.
class handler_error_log final : public handler_error_reporter {
 public:
  explicit handler_error_log(std::FILE* out = stderr,
                             clock::duration interval = std::chrono::seconds{1});
  handler_error_log(const handler_error_log&) = delete;
  handler_error_log& operator=(const handler_error_log&) = delete;
  ~handler_error_log();

  void report(const std::exception_ptr& error, const connection_info& connection) override;

  /// The process-wide log on stderr, at most a line a second: server_options' default.
  static handler_error_log& standard() noexcept;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

/// A reporter that calls a function: for a lambda. Keep it alive as long as serve() runs.
///
///     weft::net::handler_error_function hook{[&](const std::exception_ptr& e,
///                                                const weft::net::connection_info& c) { ... }};
///     co_await weft::net::serve(listener, handler, stop, {.on_handler_error = &hook});
class handler_error_function final : public handler_error_reporter {
 public:
  explicit handler_error_function(
      std::function<void(const std::exception_ptr&, const connection_info&)> f)
      : f_(std::move(f)) {}
  void report(const std::exception_ptr& error, const connection_info& connection) override {
    if (f_) f_(error, connection);
  }

 private:
  std::function<void(const std::exception_ptr&, const connection_info&)> f_;
};

/// How serve() ends, and what it does with failures.
///
/// Trivially destructible on purpose (the reporter is a pointer, not a std::function): g++ 12
/// destroys an aggregate temporary twice when it shares one full-expression with a co_await that
/// ends in an exception, and `co_await serve(l, h, stop, {.grace = 2s})` is exactly that, so any
/// member with a real destructor would be freed twice when serve() is cancelled.
struct server_options {
  /// After the stop request, how long live connections may take to finish before they are
  /// cancelled.
  clock::duration grace = std::chrono::seconds{10};
  /// How long to pause accepting when the process is out of descriptors (EMFILE, ENFILE) or
  /// memory, instead of failing the server; also after every 64 accepts in a row that failed for
  /// their connection (so a listener that keeps failing cannot spin).
  clock::duration overload_pause = std::chrono::milliseconds{10};
  /// Told about every handler that threw (not one cancelled at the end of the grace period). The
  /// default reports to stderr, rate limited (handler_error_log::standard()); nullptr reports
  /// nothing. It must outlive serve().
  handler_error_reporter* on_handler_error = &handler_error_log::standard();
  /// At most this many connections at once; 0 is no limit. At the limit the server stops
  /// accepting until a connection ends: new connections wait in the listener's backlog (and
  /// beyond it the kernel refuses them), none is accepted and then dropped.
  std::size_t max_connections = 0;
};
static_assert(std::is_trivially_destructible_v<server_options>,
              "server_options must stay trivially destructible (see its comment)");

/// Counters a server updates as it runs (readable from any thread).
struct server_stats {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> active{0};
  std::atomic<std::uint64_t> failed{0};         // handlers that threw
  std::atomic<std::uint64_t> cancelled{0};      // handlers cancelled at the end of the grace period
  std::atomic<std::uint64_t> accept_errors{0};  // accepts that failed for their connection only
};

namespace detail {
/// Calls the reporter (if any), dropping what it throws: reporting a failure must not become one.
void report_handler_error(handler_error_reporter* reporter, const std::exception_ptr& error,
                          std::uint64_t number, std::string peer) noexcept;

/// True for an accept error about the one connection being accepted, not the listener: Linux
/// passes a new connection's pending network errors to accept(2) ("Error handling" there: treat
/// them like EAGAIN), EPERM is a firewall refusing it, ECONNABORTED/ECONNRESET a peer gone first.
bool is_connection_error(int error) noexcept;

/// One connection's place in server_stats::active, given back when the connection's task ends.
/// Passed by value: a coroutine's parameters are destroyed with its frame even when the task was
/// cancelled before its body ever ran (serve() cancelled between an accept and the first run of
/// the connection's task), so the count cannot stay up. A connection that never ran counts as
/// cancelled.
class connection_slot {
 public:
  explicit connection_slot(server_stats* stats) noexcept : stats_(stats) {
    if (stats_ != nullptr) {
      stats_->accepted.fetch_add(1, std::memory_order_relaxed);
      stats_->active.fetch_add(1, std::memory_order_relaxed);
    }
  }
  connection_slot(connection_slot&& other) noexcept
      : stats_(std::exchange(other.stats_, nullptr)), settled_(other.settled_) {}
  connection_slot(const connection_slot&) = delete;
  connection_slot& operator=(const connection_slot&) = delete;
  connection_slot& operator=(connection_slot&&) = delete;
  ~connection_slot() {
    if (stats_ == nullptr) return;
    if (!settled_) stats_->cancelled.fetch_add(1, std::memory_order_relaxed);
    stats_->active.fetch_sub(1, std::memory_order_relaxed);
  }
  /// The handler ended: counted as cancelled, failed or neither by the connection's task itself.
  void settle(std::atomic<std::uint64_t> server_stats::* counter) noexcept {
    settled_ = true;
    if (stats_ != nullptr && counter != nullptr) {
      (stats_->*counter).fetch_add(1, std::memory_order_relaxed);
    }
  }

 private:
  server_stats* stats_;
  bool settled_ = false;
};

// `permit` (empty without max_connections) is a parameter so that it goes back with the frame,
// even for a connection cancelled before its body ran.
template <class Handler, class Accepted>
task<void> run_connection(Handler& handler, Accepted accepted, connection_slot slot,
                          handler_error_reporter* on_error, std::uint64_t number,
                          [[maybe_unused]] semaphore::permit permit) {
  std::string peer;
  try {
    peer = accepted.stream.peer_name();  // inside: its copy may throw, like anything here
    co_await handler(std::move(accepted));
    slot.settle(nullptr);
  } catch (const operation_cancelled&) {
    slot.settle(&server_stats::cancelled);
  } catch (...) {
    // One connection's failure is not the server's: count it, report it and go on.
    slot.settle(&server_stats::failed);
    report_handler_error(on_error, std::current_exception(), number, std::move(peer));
  }
}

inline task<void> join_group(task_group& group) {
  co_await group.join();
}
}  // namespace detail

/// Accepts connections from `listener` (tcp_listener or unix_listener) and runs
/// `handler(accepted)` — a callable returning a task — for each, concurrently, until `stop` is
/// cancelled. Then it stops accepting, waits up to `options.grace` for the live connections,
/// cancels those still running and waits for them, and returns.
///
///     weft::cancel_source stop;  // request_cancellation() from a signal handler's task
///     co_await weft::net::serve(listener, [](weft::net::tcp_accepted c) -> weft::task<void> {
///       co_await echo(std::move(c.stream));
///     }, stop.token());
///
/// A handler that throws is counted in stats->failed, reported to options.on_handler_error (by
/// default a rate-limited line on stderr) and does not stop the server. An accept that failed for
/// its connection only (ECONNABORTED, EPROTO, EPERM from a firewall, the network errors of
/// accept(2)) is counted in stats->accept_errors and skipped. Out of descriptors or memory,
/// accepting pauses for options.overload_pause; at options.max_connections, until a connection
/// ends. Other accept errors (the listener's: EBADF,
/// EINVAL, …) end the server the same graceful way and are then rethrown. Cancelling the task
/// that awaits serve() cancels every connection at once (no grace). The listener stays open (its
/// owner closes it); `handler` and `stats` live as long as serve() runs.
template <class Listener, class Handler>
task<void> serve(Listener& listener, Handler handler, cancel_token stop,
                 server_options options = {}, server_stats* stats = nullptr) {
  // Declared before the group, so that it outlives every connection's permit.
  std::optional<semaphore> slots;
  if (options.max_connections != 0) slots.emplace(options.max_connections);
  task_group connections;
  std::exception_ptr failure;
  std::uint64_t number = 0;
  int connection_errors_in_a_row = 0;
  while (!stop.is_cancellation_requested()) {
    bool overloaded = false;
    try {
      semaphore::permit permit;
      if (slots) permit = co_await with_cancellation(stop, slots->acquire());
      auto accepted = co_await with_cancellation(stop, listener.accept());
      connection_errors_in_a_row = 0;
      connections.spawn(detail::run_connection(handler, std::move(accepted),
                                               detail::connection_slot{stats},
                                               options.on_handler_error, ++number,
                                               std::move(permit)));
    } catch (const operation_cancelled&) {
      if (!stop.is_cancellation_requested()) throw;  // our own caller: the group cancels all
    } catch (const std::system_error& e) {
      const int code = e.code().value();
      const bool system = e.code().category() == std::system_category();
      if (system && (code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM)) {
        overloaded = true;
      } else if (system && detail::is_connection_error(code)) {
        // That connection is lost, the listener is fine. Bounded: a listener that fails this way
        // for good pauses like an overloaded one instead of spinning.
        if (stats != nullptr) stats->accept_errors.fetch_add(1, std::memory_order_relaxed);
        if (++connection_errors_in_a_row % 64 == 0) overloaded = true;
      } else {
        failure = std::current_exception();
        break;
      }
    }
    if (overloaded) co_await sleep_for(options.overload_pause);  // (no co_await in a handler)
  }
  try {
    co_await with_deadline(clock::now() + options.grace, detail::join_group(connections));
  } catch (const timed_out&) {
    // with_deadline cancelled the join, and a cancelled join cancels the connections and waits
    // for them; nothing is left running.
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace weft::net
