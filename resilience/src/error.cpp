// The resilience error category and the rejected exception.
#include <weft/resilience/error.hpp>

#include <chrono>
#include <string>

namespace weft::resilience {

namespace {
class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "weft.resilience"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::circuit_open: return "circuit breaker is open";
      case errc::circuit_isolated: return "circuit breaker is isolated (forced open)";
      case errc::bulkhead_full: return "bulkhead is full";
      case errc::rate_limited: return "rate limited";
      case errc::limit_exceeded: return "concurrency limit exceeded";
      case errc::budget_exhausted: return "retry budget exhausted";
      case errc::timeout: return "timed out";
      case errc::deadline_exceeded: return "deadline exceeded";
      case errc::hedge_exhausted: return "every hedged attempt failed";
    }
    return "unknown weft.resilience error " + std::to_string(value);
  }
};

std::string describe(const std::error_code& code, const std::optional<clock::duration>& after) {
  (void)code;  // system_error appends the code's message after ": "
  std::string text = "weft::resilience";
  if (after) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(*after).count();
    text += " (retry after " + std::to_string(us / 1000) + "." +
            std::to_string(1000 + us % 1000).substr(1) + " ms)";
  }
  return text;
}
}  // namespace

const std::error_category& resilience_category() noexcept {
  static const category instance;
  return instance;
}

bool is_rejection(const std::error_code& code) noexcept {
  if (code.category() != resilience_category()) return false;
  switch (static_cast<errc>(code.value())) {
    case errc::circuit_open:
    case errc::circuit_isolated:
    case errc::bulkhead_full:
    case errc::rate_limited:
    case errc::limit_exceeded:
    case errc::budget_exhausted: return true;
    default: return false;
  }
}

rejected::rejected(std::error_code code, std::optional<clock::duration> retry_after)
    : std::system_error(code, describe(code, retry_after)), retry_after_(retry_after) {}

}  // namespace weft::resilience
