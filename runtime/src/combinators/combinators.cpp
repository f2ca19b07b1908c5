// The argument errors of the combinators, out of line.
#include <cmath>
#include <stdexcept>
#include <string>

#include <weft/combinators/map_concurrent.hpp>
#include <weft/combinators/quorum.hpp>
#include <weft/combinators/when_any.hpp>
#include <weft/time/timeout.hpp>

namespace weft::detail {

task<bool> deadline_task(clock::time_point deadline) {
  co_return co_await quiet_sleep_awaiter{deadline, 0};
}

void throw_zero_limit() {
  throw std::invalid_argument("weft::map_concurrent: limit must be at least 1");
}

void throw_empty_input(const char* api) {
  throw std::invalid_argument(std::string{api} + ": no children (an empty input has no first)");
}

void throw_bad_quorum(const char* api, std::size_t k, std::size_t n) {
  if (n == 0) throw std::invalid_argument(std::string{api} + ": no children");
  throw std::invalid_argument(std::string{api} + ": k = " + std::to_string(k) +
                              " must be between 1 and the number of children, " +
                              std::to_string(n));
}

std::size_t majority_count(std::size_t n, double threshold, const char* api) {
  if (!(threshold >= 0.0 && threshold < 1.0)) {
    throw std::invalid_argument(std::string{api} + ": threshold " + std::to_string(threshold) +
                                " must be in [0, 1)");
  }
  if (n == 0) throw std::invalid_argument(std::string{api} + ": no children");
  // The smallest k with k > threshold * n.
  const double bound = threshold * static_cast<double>(n);
  auto k = static_cast<std::size_t>(std::floor(bound)) + 1;
  if (k > n) k = n;
  return k;
}

}  // namespace weft::detail
