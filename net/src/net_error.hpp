// Error helpers shared by the socket sources.
#pragma once

#include <string>
#include <system_error>

namespace weft::net::detail {

/// std::system_error for errno `error`, the message naming the operation and the address.
[[noreturn]] inline void throw_net_error(int error, const std::string& op, const std::string& who) {
  throw std::system_error(error, std::system_category(),
                          "weft::net::" + op + (who.empty() ? std::string{} : " " + who));
}

}  // namespace weft::net::detail
