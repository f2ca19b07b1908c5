// weft::http with weft::resilience: which responses and failures are worth retrying, the
// Retry-After they carry, and the client's calls as pipeline operations.
//
// Thread safety: the free functions are pure. call() and idempotent_call() keep the client by
// reference; a pipeline may run the operation several times at once (hedge), which the client
// allows.
//
// Cancellation: the operation is client::request and is cancelled as it is (a pipeline's timeout or
// hedge cancels it that way); nothing here adds a suspension point of its own.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <utility>

#include <weft/http/client.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>

namespace weft::http {

/// The "weft.http" error category: an error code whose value is an HTTP status (503: "503
/// Service Unavailable"). call() reports retryable statuses with it.
[[nodiscard]] const std::error_category& status_category() noexcept;
[[nodiscard]] std::error_code make_status_error(std::uint16_t status) noexcept;

/// 502, 503 and 504: the upstream is failing or overloaded, and the same request may succeed
/// later. (Other 5xx are answers of the service itself; 4xx are the caller's.)
[[nodiscard]] bool is_retryable_status(std::uint16_t status) noexcept;

/// The response's Retry-After as a delay: delay-seconds ("120") or an HTTP-date (the time left
/// until it, zero if it passed). nullopt without the header or with a malformed one.
[[nodiscard]] std::optional<clock::duration> retry_after(const client_response& r);

/// Parses a Retry-After value relative to `now_unix_seconds` (for tests; retry_after() uses the
/// system clock).
[[nodiscard]] std::optional<clock::duration> parse_retry_after(std::string_view value,
                                                               std::int64_t now_unix_seconds);

namespace detail {
task<resilience::call_outcome<client_response>> call_once(client& c, const client_request& req);
}  // namespace detail

/// `req` on `c` as an operation of a resilience pipeline, which may run it more than once: a
/// 502, 503 or 504 comes back as a failure outcome (code make_status_error(status), the
/// response's Retry-After as its retry_after, which retry honours), connection errors as the
/// exceptions the default classification retries, any other response as the value.
///
///     // pipeline<>::standard() is in <weft/resilience/standard_pipeline.hpp>
///     auto pipe = weft::resilience::pipeline<>::standard();
///     auto o = co_await pipe.execute(weft::http::call(client, req));  // a client_request
///     if (o.kind() == weft::resilience::outcome_kind::value) use(o.value().body);
///
/// The client and the request are kept by reference and by value: the client must outlive the
/// call.
inline auto call(client& c, client_request req) {
  return [&c, req = std::move(req)]() { return detail::call_once(c, req); };
}

/// call(), marked idempotent for hedge (which runs copies at the same time): only for GET, HEAD,
/// PUT, DELETE, OPTIONS and TRACE; another method is std::invalid_argument.
inline auto idempotent_call(client& c, client_request req) {
  if (!is_idempotent(req.method)) {
    throw std::invalid_argument("weft::http::idempotent_call: " + req.method +
                                " is not an idempotent method");
  }
  return resilience::idempotent(call(c, std::move(req)));
}

}  // namespace weft::http
