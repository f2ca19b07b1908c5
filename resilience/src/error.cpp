// The resilience error category and the rejected exception.
#include <weft/resilience/error.hpp>

#include <chrono>
#include <cstdio>
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

namespace {
// "circuit breaker 'pricing' is open", from the code and the layer's name.
std::string refusal(const std::error_code& code, std::string_view layer) {
  // Appended piecewise: g++ 12 warns falsely (-Wrestrict) on "'" + s + "'".
  std::string quoted;
  quoted.append(1, '\'').append(layer).append(1, '\'');
  if (code.category() == resilience_category()) {
    switch (static_cast<errc>(code.value())) {
      case errc::circuit_open: return "circuit breaker " + quoted + " is open";
      case errc::circuit_isolated: return "circuit breaker " + quoted + " is forced open";
      case errc::bulkhead_full: return "bulkhead " + quoted + " is full";
      case errc::rate_limited: return "rate limiter " + quoted + " refused the call";
      case errc::limit_exceeded: return "concurrency limit " + quoted + " is reached";
      case errc::budget_exhausted: return "retry budget " + quoted + " is exhausted";
      default: break;
    }
  }
  return "layer " + quoted + ": " + code.message();
}

// 250 ms, 1.5 s: how long until the layer takes calls again, as people read it.
std::string human(clock::duration d) {
  const double ms = std::chrono::duration<double, std::milli>(d).count();
  char buf[48];
  if (ms < 10) {
    std::snprintf(buf, sizeof buf, "%.2g ms", ms);
  } else if (ms < 999.5) {
    std::snprintf(buf, sizeof buf, "%.0f ms", ms);
  } else if (ms < 9'995) {
    std::snprintf(buf, sizeof buf, "%.2f s", ms / 1000);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f s", ms / 1000);
  }
  // "1.50 s" reads as "1.5 s"; "2.00 s" as "2 s".
  std::string text = buf;
  const auto dot = text.find('.');
  if (dot != std::string::npos && text.find(" s") != std::string::npos) {
    auto end = text.find(' ');
    while (end > dot + 1 && text[end - 1] == '0') text.erase(--end, 1);
    if (end == dot + 1) text.erase(dot, 1);
  }
  return text;
}
}  // namespace

rejected::rejected(std::error_code code, std::optional<clock::duration> retry_after,
                   std::string_view layer, std::string_view key)
    : std::system_error(code, describe(code, retry_after)), retry_after_(retry_after) {
  std::string message = refusal(code, layer);
  if (!key.empty()) message.append(" for key '").append(key).append(1, '\'');
  if (retry_after) message += "; retry after " + human(*retry_after);
  named_ = std::make_shared<const named>(named{std::string{layer}, std::string{key},
                                               std::move(message)});
}

const std::string& rejected::layer() const noexcept {
  static const std::string none;
  return named_ ? named_->layer : none;
}

const std::string& rejected::key() const noexcept {
  static const std::string none;
  return named_ ? named_->key : none;
}

const char* rejected::what() const noexcept {
  return named_ ? named_->message.c_str() : std::system_error::what();
}

}  // namespace weft::resilience
