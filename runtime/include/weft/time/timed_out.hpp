// weft::timed_out: what timeout and with_deadline throw when the deadline came first.
//
// Thread safety: an exception type: distinct objects may be used from different threads, one object
// is not synchronised.
//
// Cancellation: nothing here suspends. timed_out, not operation_cancelled, is what the caller of
// timeout or with_deadline gets when the deadline stopped the work.
#pragma once

#include <stdexcept>

namespace weft {

/// The deadline passed before the task finished; the task was cancelled and has stopped.
/// Not an operation_cancelled: the caller was not cancelled, its deadline expired.
class timed_out : public std::runtime_error {
 public:
  timed_out() : std::runtime_error("weft: the deadline passed before the task finished") {}
  using std::runtime_error::runtime_error;
};

}  // namespace weft
