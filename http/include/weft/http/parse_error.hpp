// weft::http::parse_error: why a message was refused, and the status a server answers with.
//
// Thread safety: a plain aggregate, a value like any other (`what` points to a static string).
//
// Cancellation: nothing here suspends.
#pragma once

#include <cstdint>
#include <string_view>

namespace weft::http {

/// What a parser found wrong. `status` is the response a server sends before it closes the
/// connection (400, 413, 414, 417, 431, 501 or 505 for a request; 502, what a gateway answers,
/// for a malformed response head; the chunked decoder's 400, 413 or 431 for either's body);
/// `what` names the rule that was broken, for logs ("a bare LF (a line must end in CRLF)"). A
/// default-constructed error is "no error".
struct parse_error {
  std::uint16_t status = 0;
  std::string_view what;  // a static string

  explicit operator bool() const noexcept { return status != 0; }
};

}  // namespace weft::http
