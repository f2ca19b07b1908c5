// weft::fault_plan: faults the reactor injects into io_uring operations, for tests that prove a
// program survives a hostile kernel and network (errors, short transfers, late completions, a
// refused io_uring_enter), deterministic for a seed.
//
// Thread safety: a value type; parse, to_string and errno_name share no state. Each worker draws
// its faults from a generator of its own.
//
// Cancellation: nothing here suspends.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace weft {

/// Classes of io_uring operation a fault applies to (a bit set), chosen by the SQE's opcode.
namespace io_kinds {
inline constexpr unsigned read = 1;      // read, readv, read_fixed (files, pipes)
inline constexpr unsigned write = 2;     // write, writev, write_fixed
inline constexpr unsigned recv = 4;      // recv, recvmsg, multishot receive
inline constexpr unsigned send = 8;      // send, sendmsg
inline constexpr unsigned accept = 16;   // accept, multishot accept
inline constexpr unsigned connect = 32;  // connect
inline constexpr unsigned other = 64;    // everything else (openat, fsync, statx, close, ...)
inline constexpr unsigned all = 127;
}  // namespace io_kinds

/// One error to inject: an operation of a chosen kind completes with `-error` at `rate`
/// (0..1), without having been performed (the kernel never sees it, so no data moves).
struct injected_error {
  int error = 0;  // an errno value: EINTR, EAGAIN, ECONNRESET, EPIPE, ENOMEM, EMFILE, ...
  double rate = 0;
  unsigned kinds = io_kinds::all;
};

/// Faults for a runtime's reactor: set runtime_options::faults, or the WEFT_FAULTS environment
/// variable for every runtime of a process (a test run) — parse() reads its syntax.
///
///     weft::runtime rt{{.faults = weft::fault_plan::parse(
///         "seed=7 error=ECONNRESET:0.01:recv,send short=0.3 delay=0.1 enter=0.02")}};
///
/// Each operation gets at most one fault, decided when it is submitted: the errors in order,
/// then a short transfer. A short transfer submits a read, write, recv or send with a shorter
/// length (a vectored one as its first buffer only), so the kernel performs a real partial
/// transfer. A delayed completion is held back for 1 to `max_delay` of the worker's polls. A
/// refused io_uring_enter returns EAGAIN or EBUSY before reaching the kernel. Each worker draws
/// from its own generator seeded from `seed` and its index: with one worker (paused time) the
/// same seed gives the same faults on every run. Off (and free but for one branch per
/// operation) when empty().
struct fault_plan {
  std::uint64_t seed = 1;
  std::vector<injected_error> errors{};
  double short_rate = 0;
  unsigned short_kinds = io_kinds::read | io_kinds::write | io_kinds::recv | io_kinds::send;
  double delay_rate = 0;
  unsigned max_delay = 4;
  double enter_failure_rate = 0;

  /// No fault at all.
  [[nodiscard]] bool empty() const noexcept;

  /// Throws std::invalid_argument for a plan that cannot work: an errno outside 1..4095, a rate
  /// outside [0, 1], enter_failure_rate 1 (nothing would ever be submitted), max_delay 0 or over
  /// 1000 with delays on. The runtime's constructor calls it.
  void validate() const;

  /// Parses a plan from words separated by spaces or semicolons:
  ///   seed=N                         the generator's seed
  ///   error=NAME:RATE[:KINDS]        NAME an errno name (ECONNRESET) or number; KINDS a comma
  ///                                  list of read,write,recv,send,accept,connect,other,all
  ///   short=RATE[:KINDS]             short transfers (default kinds: read,write,recv,send)
  ///   delay=RATE[:MAX]               completions held back up to MAX polls (default 4)
  ///   enter=RATE                     io_uring_enter refused with EAGAIN or EBUSY
  /// Rates are probabilities from 0 to 1. Throws std::invalid_argument naming the bad word.
  static fault_plan parse(std::string_view spec);

  /// The plan in parse()'s syntax (to replay a failing run).
  [[nodiscard]] std::string to_string() const;
};

/// The name of an errno value as parse() accepts it ("ECONNRESET"), or its number.
std::string errno_name(int error);

}  // namespace weft
