// weft::signal_set and weft::signal_stop: POSIX signals awaited inside tasks, and a cancellation
// source that SIGINT/SIGTERM request (a server's graceful shutdown).
//
// Thread safety: a signal_set is waited on by one task at a time (wait() and poll() are not
// synchronised with each other); sets may be made and destroyed on any thread, and the handler is
// safe on whichever thread the kernel picks. signal_stop is made on a worker; its token(), signal()
// and request_stop() work from any thread.
//
// Cancellation: wait() is cancellable: a cancelled wait throws operation_cancelled and takes no
// delivery (the next wait() or poll() returns it). A signal_stop's token is cancelled by the first
// signal or request_stop(); destroying it ends its watcher task.
#pragma once

#include <array>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/join_handle.hpp>
#include <weft/task.hpp>

namespace weft {

/// Waits for POSIX signals in a task.
///
///     weft::signal_set signals{SIGINT, SIGTERM};
///     const int sig = co_await signals.wait();  // the next one delivered to the process
///
/// A set counts every delivery of its signals from its construction on: a signal that arrives
/// while nobody waits is kept, and each wait() returns one delivery (the kernel itself merges
/// deliveries of a standard signal that are pending at once). Several sets may listen to the
/// same signal; each sees every delivery.
///
/// How: the first set for a signal installs a process-wide handler (sigaction, SA_RESTART) that
/// only counts the delivery and writes to the eventfd of each set listening; wait() reads that
/// eventfd through the worker's io_uring. No thread needs the signal blocked (signalfd would
/// need it blocked in every thread of the process, which a library cannot promise for threads
/// it did not start), and it does not matter which thread the kernel picks. When the last set
/// for a signal is destroyed, the disposition it replaced comes back. A set's eventfd stays open
/// for the process's life and is reused by later sets: closing it could let the handler, running
/// on another thread at that moment, write into whatever file reused the descriptor.
///
/// Misuse: SIGKILL and SIGSTOP cannot be caught, and the synchronous fault signals (SIGSEGV,
/// SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS) must not return to the faulting code: the constructor
/// throws std::invalid_argument for those, for numbers out of range, and for an empty list; it
/// throws std::length_error past 128 sets alive at once. wait() is cancellable, must be awaited
/// on a runtime's worker with io_uring (else io_unavailable), and by one task at a time.
class signal_set {
 public:
  signal_set(std::initializer_list<int> signals);
  explicit signal_set(const std::vector<int>& signals);
  signal_set(const signal_set&) = delete;
  signal_set& operator=(const signal_set&) = delete;
  ~signal_set();

  /// The next delivery of one of the set's signals (its number); deliveries since construction
  /// that no wait() returned yet come first, lowest signal number first.
  [[nodiscard("a signal wait does nothing until it is co_awaited")]] task<int> wait();

  /// A delivery not yet returned by wait(), taken without waiting; 0 if none.
  [[nodiscard]] int poll() noexcept;

 private:
  int take_pending() noexcept;

  int slot_ = -1;                         // this set's slot in the process-wide registry
  std::uint64_t mask_ = 0;                // bit n: signal n
  std::array<std::uint64_t, 65> seen_{};  // deliveries of each signal already returned or before us
};

/// A cancellation source that the first of `signals` requests: what a server's graceful
/// shutdown waits on.
///
///     weft::signal_stop stop;  // SIGINT, SIGTERM; inside a task
///     co_await weft::net::serve(listener, handler, stop.token());
///     std::printf("stopped by signal %d\n", stop.signal());
///
/// It starts a small task on the current runtime that waits for the signals; the task ends
/// when a signal came or the signal_stop is destroyed. request_stop() cancels without a signal.
/// Constructed on a runtime's worker (std::logic_error elsewhere); the token is valid while the
/// signal_stop lives.
class signal_stop {
 public:
  signal_stop();
  signal_stop(std::initializer_list<int> signals);
  signal_stop(const signal_stop&) = delete;
  signal_stop& operator=(const signal_stop&) = delete;
  ~signal_stop();

  [[nodiscard]] cancel_token token() const noexcept;
  /// The signal that requested the stop; 0 if none did (yet, or request_stop() did).
  [[nodiscard]] int signal() const noexcept;
  /// Requests the stop as a signal would.
  void request_stop() noexcept;

  struct state;

 private:
  std::shared_ptr<state> state_;
  join_handle<void> watcher_;
};

}  // namespace weft
