// The resilience error category (circuit_open, bulkhead_full, …), the `rejected` exception that
// carries it to plain-T callers, and make_resilience_error, which injects a rejection into an
// expected-like result type.
//
// Thread safety: resilience_category() is one immutable object; `rejected` copies without throwing,
// sharing its immutable message, so copies may go to other threads (one object is not
// synchronised). is_rejection and the default make_resilience_error are pure.
//
// Cancellation: nothing here suspends. Cancellation has no errc: it is an outcome kind of its own
// (call_outcome.hpp), never a `rejected`.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include <weft/time/clock.hpp>

namespace weft::resilience {

/// Why a resilience layer refused or ended a call. The first six are *rejections*: the library
/// said no without calling the operation (they are never retried by default).
enum class errc {
  circuit_open = 1,   // a breaker is open, or half-open with every trial slot taken
  circuit_isolated,   // a breaker was forced open
  bulkhead_full,      // no permit and the queue is full, or the queue wait ran out
  rate_limited,       // no token within max_wait
  limit_exceeded,     // an adaptive limiter is at its limit
  budget_exhausted,   // a retry or hedge budget / throttle refused
  timeout,            // a timeout layer's deadline passed first (a failure, retryable)
  deadline_exceeded,  // the propagated deadline left no time to start
  hedge_exhausted,    // every hedged attempt failed and none had an error of its own
};

/// The category of errc; its name is "weft.resilience".
[[nodiscard]] const std::error_category& resilience_category() noexcept;

[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), resilience_category()};
}

/// True for the library's own refusals (circuit_open, circuit_isolated, bulkhead_full,
/// rate_limited, limit_exceeded, budget_exhausted).
[[nodiscard]] bool is_rejection(const std::error_code& code) noexcept;

/// A resilience error surfaced to a caller whose result type is a plain T.
///
///     try { co_await breaker.execute(call); }
///     catch (const weft::resilience::rejected& r) {
///       if (r.code() == weft::resilience::errc::circuit_open) back_off(r.retry_after());
///     }
///
/// A rejection that a layer refused through a pipeline or its own execute() names the layer (its
/// configured name) and the call's operation key: "circuit breaker 'pricing' is open for key
/// 'eu-west'; retry after 1.5 s".
class rejected : public std::system_error {
 public:
  explicit rejected(std::error_code code, std::optional<clock::duration> retry_after = {});
  /// A rejection by the layer named `layer` of a call with operation key `key` (may be empty).
  rejected(std::error_code code, std::optional<clock::duration> retry_after, std::string_view layer,
           std::string_view key);
  /// When the layer expects to accept calls again (an open breaker's remaining open time, a rate
  /// limiter's time to the next token), if it knows.
  [[nodiscard]] std::optional<clock::duration> retry_after() const noexcept { return retry_after_; }
  /// The refusing layer's name and the call's key; empty when not known.
  [[nodiscard]] const std::string& layer() const noexcept;
  [[nodiscard]] const std::string& key() const noexcept;
  [[nodiscard]] const char* what() const noexcept override;

 private:
  struct named {
    std::string layer, key, message;
  };
  std::optional<clock::duration> retry_after_;
  // Shared, so that copying the exception cannot throw.
  std::shared_ptr<const named> named_;
};

/// The customization point through which a layer returns an error as the caller's own
/// expected-like type E. The default constructs E from the std::error_code, and throws
/// `rejected` where E cannot be built from one. Overload it for your E, found by ADL:
///
///     my_result make_resilience_error(std::type_identity<my_result>, std::error_code code,
///                                     std::optional<weft::clock::duration> retry_after);
template <class E>
E make_resilience_error(std::type_identity<E>, std::error_code code,
                        std::optional<clock::duration> retry_after) {
  if constexpr (std::is_constructible_v<E, std::error_code>) {
    (void)retry_after;
    return E(code);
  } else {
    throw rejected(code, retry_after);
  }
}

}  // namespace weft::resilience

template <>
struct std::is_error_code_enum<weft::resilience::errc> : std::true_type {};
