// The stream operators that need no template: interval's schedule.
#include <weft/stream/operators.hpp>

namespace weft::detail {

async_generator<std::uint64_t> interval_from(clock::duration period) {
  const auto start = clock::now();
  for (std::uint64_t k = 0;; ++k) {
    co_await sleep_until(start + period * static_cast<std::int64_t>(k + 1));
    co_yield k;
  }
}

}  // namespace weft::detail
