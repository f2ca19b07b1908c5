// weft::io_unavailable: what every I/O operation throws when the runtime has no io_uring.
//
// Thread safety: an exception type: distinct objects may be used from different threads, one object
// is not synchronised.
//
// Cancellation: nothing here suspends.
#pragma once

#include <string>
#include <system_error>

namespace weft {

/// Thrown by every I/O operation of a runtime that runs without io_uring: the kernel refused it
/// (ENOSYS: no io_uring in this kernel; EPERM: a seccomp filter such as Docker's default profile,
/// or sysctl kernel.io_uring_disabled; ENOMEM: the locked-memory limit) or
/// runtime_options::io_uring was false. what() names the cause and what to do; code() holds the
/// errno of io_uring_setup (ENOTSUP when turned off). Tasks and timers keep working.
class io_unavailable : public std::system_error {
 public:
  io_unavailable(int error, const std::string& message)
      : std::system_error(error, std::generic_category(), message) {}
};

}  // namespace weft
