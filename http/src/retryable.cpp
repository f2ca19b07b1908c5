// Retryable statuses, Retry-After, and the client's calls as resilience operations.
#include <weft/http/retryable.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <ctime>
#include <string>

#include <weft/http/response.hpp>

namespace weft::http {

namespace {

class status_error_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "weft.http"; }
  std::string message(int status) const override {
    return std::to_string(status) + " " +
           std::string{reason_phrase(static_cast<std::uint16_t>(status))};
  }
};

// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") as seconds since the epoch.
std::optional<std::int64_t> parse_http_date(std::string_view s) {
  if (s.size() != 29 || s[3] != ',' || s[4] != ' ' || s.substr(25) != " GMT") return std::nullopt;
  static constexpr std::array<std::string_view, 12> months = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto number = [&](std::size_t at, std::size_t len) -> std::optional<int> {
    int v = 0;
    const auto [end, ec] = std::from_chars(s.data() + at, s.data() + at + len, v);
    if (ec != std::errc{} || end != s.data() + at + len) return std::nullopt;
    return v;
  };
  std::tm tm{};
  const auto day = number(5, 2);
  const auto year = number(12, 4);
  const auto hour = number(17, 2);
  const auto minute = number(20, 2);
  const auto second = number(23, 2);
  if (!day || !year || !hour || !minute || !second || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':') {
    return std::nullopt;
  }
  int month = -1;
  for (std::size_t i = 0; i < months.size(); ++i) {
    if (s.substr(8, 3) == months[i]) month = static_cast<int>(i);
  }
  if (month < 0 || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  tm.tm_mday = *day;
  tm.tm_mon = month;
  tm.tm_year = *year - 1900;
  tm.tm_hour = *hour;
  tm.tm_min = *minute;
  tm.tm_sec = *second;
  return static_cast<std::int64_t>(::timegm(&tm));
}

}  // namespace

const std::error_category& status_category() noexcept {
  static const status_error_category category;
  return category;
}

std::error_code make_status_error(std::uint16_t status) noexcept {
  return {status, status_category()};
}

bool is_retryable_status(std::uint16_t status) noexcept {
  return status == 502 || status == 503 || status == 504;
}

std::optional<clock::duration> parse_retry_after(std::string_view value,
                                                 std::int64_t now_unix_seconds) {
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {
    std::int64_t seconds = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    // A year of seconds at most: a larger value is a mistake, not a plan.
    if (ec != std::errc{} || end != value.data() + value.size() || seconds > 366 * 24 * 3600) {
      return std::nullopt;
    }
    return std::chrono::seconds{seconds};
  }
  const auto at = parse_http_date(value);
  if (!at) return std::nullopt;
  return std::chrono::seconds{std::max<std::int64_t>(*at - now_unix_seconds, 0)};
}

std::optional<clock::duration> retry_after(const client_response& r) {
  const auto v = r.header("Retry-After");
  if (!v) return std::nullopt;
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return parse_retry_after(*v, now);
}

namespace detail {
task<resilience::call_outcome<client_response>> call_once(client& c, const client_request& req) {
  client_response r = co_await c.request(req);
  if (is_retryable_status(r.status)) {
    co_return resilience::call_outcome<client_response>::failure(make_status_error(r.status),
                                                                 retry_after(r));
  }
  co_return resilience::call_outcome<client_response>::success(std::move(r));
}
}  // namespace detail

}  // namespace weft::http
