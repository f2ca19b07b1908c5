// weft::net::serve: the accept loop of a server, with graceful shutdown — stop accepting, let
// live connections finish within a grace period, then cancel them.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <system_error>
#include <utility>

#include <weft/cancel_token.hpp>
#include <weft/clock.hpp>
#include <weft/operation_cancelled.hpp>
#include <weft/sleep.hpp>
#include <weft/task.hpp>
#include <weft/task_group.hpp>
#include <weft/timed_out.hpp>
#include <weft/timeout.hpp>
#include <weft/with_cancellation.hpp>

namespace weft::net {

/// How serve() ends.
struct server_options {
  /// After the stop request, how long live connections may take to finish before they are
  /// cancelled.
  clock::duration grace = std::chrono::seconds{10};
  /// How long to pause accepting when the process is out of descriptors (EMFILE, ENFILE) or
  /// memory, instead of failing the server.
  clock::duration overload_pause = std::chrono::milliseconds{10};
};

/// Counters a server updates as it runs (readable from any thread).
struct server_stats {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> active{0};
  std::atomic<std::uint64_t> failed{0};     // handlers that threw
  std::atomic<std::uint64_t> cancelled{0};  // handlers cancelled at the end of the grace period
};

namespace detail {
template <class Handler, class Accepted>
task<void> run_connection(Handler& handler, Accepted accepted, server_stats* stats) {
  try {
    co_await handler(std::move(accepted));
  } catch (const operation_cancelled&) {
    if (stats != nullptr) stats->cancelled.fetch_add(1, std::memory_order_relaxed);
  } catch (...) {
    // One connection's failure is not the server's: count it and go on.
    if (stats != nullptr) stats->failed.fetch_add(1, std::memory_order_relaxed);
  }
  if (stats != nullptr) stats->active.fetch_sub(1, std::memory_order_relaxed);
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
/// A handler that throws is counted in stats->failed and does not stop the server. Out of
/// descriptors or memory, accepting pauses for options.overload_pause. Other accept errors end
/// the server the same graceful way and are then rethrown. Cancelling the task that awaits
/// serve() cancels every connection at once (no grace). The listener stays open (its owner
/// closes it); `handler` and `stats` live as long as serve() runs.
template <class Listener, class Handler>
task<void> serve(Listener& listener, Handler handler, cancel_token stop,
                 server_options options = {}, server_stats* stats = nullptr) {
  task_group connections;
  std::exception_ptr failure;
  while (!stop.is_cancellation_requested()) {
    bool overloaded = false;
    try {
      auto accepted = co_await with_cancellation(stop, listener.accept());
      if (stats != nullptr) {
        stats->accepted.fetch_add(1, std::memory_order_relaxed);
        stats->active.fetch_add(1, std::memory_order_relaxed);
      }
      connections.spawn(detail::run_connection(handler, std::move(accepted), stats));
    } catch (const operation_cancelled&) {
      if (!stop.is_cancellation_requested()) throw;  // our own caller: the group cancels all
    } catch (const std::system_error& e) {
      const int code = e.code().value();
      if (e.code().category() == std::system_category() &&
          (code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM)) {
        overloaded = true;
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
