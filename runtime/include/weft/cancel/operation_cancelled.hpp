// The exception a cancelled suspension point completes with.
//
// Thread safety: an exception type: distinct objects may be used from different threads, one object
// is not synchronised. is_cancellation may be called from any thread.
//
// Cancellation: nothing here suspends. operation_cancelled is what every cancellable suspension
// point throws; catching it does not withdraw the request, which stays for the task's next
// suspension point.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>

namespace weft {

/// Thrown from a suspension point (a sleep, a join, a yield, a wait) of a task whose cancellation
/// was requested, and from a join of a task that ended that way.
///
/// Catch it to clean up, then rethrow: once requested, cancellation stays requested, so every
/// later suspension point of the same task throws it again.
class operation_cancelled : public std::runtime_error {
 public:
  operation_cancelled() : std::runtime_error("weft: the operation was cancelled") {}
  explicit operation_cancelled(const std::string& what) : std::runtime_error(what) {}
};

/// True when `e` holds an operation_cancelled (or a class derived from it): a task or a wait that
/// ended by cancellation. False for a null pointer and for every other exception.
///
///     if (weft::is_cancellation(outcome.error())) { /* stopped, not failed */ }
[[nodiscard]] bool is_cancellation(const std::exception_ptr& e) noexcept;

}  // namespace weft
