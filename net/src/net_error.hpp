// What the socket sources share: errors that name the address, and a guard for a new fd.
#pragma once

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
