// weft::http::error: an exception that carries the HTTP status a server answers with.
//
// Thread safety: an exception type: distinct objects may be used from different threads, one object
// is not synchronised.
//
// Cancellation: nothing here suspends.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace weft::http {

/// Thrown by a request's body reader when the body is malformed or over the limit (400, 413), and
/// thrown by handlers to answer with a status: the server turns it into a response with that
/// status and the message as a text body, and does not report it as a handler failure.
///
///     if (!user) throw weft::http::error{404, "no such user"};
///
/// A status outside 400-599 is taken as 500.
class error : public std::runtime_error {
 public:
  error(std::uint16_t status, const std::string& message)
      : std::runtime_error(message), status_(status >= 400 && status <= 599 ? status : 500) {}
  [[nodiscard]] std::uint16_t status() const noexcept { return status_; }

 private:
  std::uint16_t status_;
};

}  // namespace weft::http
