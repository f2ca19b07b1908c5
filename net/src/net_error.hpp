// What the socket sources share: errors that name the address, and a guard for a new fd.
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include <unistd.h>

namespace weft::net::detail {

/// std::system_error for errno `error`, the message naming the operation and the address.
[[noreturn]] inline void throw_net_error(int error, const std::string& op, const std::string& who) {
  throw std::system_error(error, std::system_category(),
                          "weft::net::" + op + (who.empty() ? std::string{} : " " + who));
}

/// std::logic_error for a read or accept started while another task's read (or accept) on the
/// same socket waits: the waiting one goes on undisturbed.
[[noreturn]] inline void throw_concurrent_read(const std::string& op, const std::string& who) {
  throw std::logic_error("weft::net::" + op + (who.empty() ? std::string{} : " " + who) +
                         ": another task is already waiting to read from (or accept on) this "
                         "socket; one task reads at a time (one may read while another writes)");
}

/// std::logic_error for a read or accept whose multishot belongs to another runtime: `gone` if
/// that runtime shut down (multishot_result::wrong_runtime_gone), else it runs elsewhere.
[[noreturn]] inline void throw_wrong_runtime(const std::string& op, const std::string& who,
                                             bool gone) {
  const std::string head = "weft::net::" + op + (who.empty() ? std::string{} : " " + who) + ": ";
  if (gone) {
    throw std::logic_error(
        head +
        "the runtime that first read from (or accepted on) this socket has shut down, and what "
        "it had received went with it; only writes, shutdown and close work now. Read a socket "
        "from the runtime it was first read from, and destroy it before that runtime");
  }
  throw std::logic_error(head +
                         "this socket's reads (or accepts) belong to another runtime, the one "
                         "that first read from it; read it from that runtime's tasks");
}

/// Closes an fd unless released: RAII for a socket before it is handed to its owner.
struct fd_guard {
  int fd;
  explicit fd_guard(int f) noexcept : fd(f) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
  int release() noexcept { return std::exchange(fd, -1); }
};

}  // namespace weft::net::detail
