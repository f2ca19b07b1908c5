// The default random source (per-thread xoshiro256+) and rng::sequence.
#include <weft/resilience/rng.hpp>

#include <atomic>
#include <cstdint>
#include <random>
#include <stdexcept>

namespace weft::resilience {

namespace {
struct xoshiro256plus {
  std::uint64_t s[4];
  xoshiro256plus() {
    std::random_device seed;
    for (auto& word : s) {
      word = (static_cast<std::uint64_t>(seed()) << 32) ^ seed();
      if (word == 0) word = 0x9e3779b97f4a7c15ULL;
    }
  }
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t next() noexcept {
    const std::uint64_t result = s[0] + s[3];
    const std::uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
};
}  // namespace

double rng::thread_default() noexcept {
  thread_local xoshiro256plus generator;
  // The top 53 bits make a double in [0, 1) with every value equally likely.
  return static_cast<double>(generator.next() >> 11) * 0x1.0p-53;
}

rng rng::sequence(std::vector<double> values) {
  if (values.empty()) throw std::invalid_argument("weft::resilience::rng::sequence: no values");
  for (double v : values) {
    if (!(v >= 0.0 && v < 1.0)) {
      throw std::invalid_argument("weft::resilience::rng::sequence: values must be in [0, 1)");
    }
  }
  struct state {
    std::vector<double> values;
    std::atomic<std::size_t> next{0};
  };
  auto s = std::make_shared<state>();
  s->values = std::move(values);
  return rng([s] { return s->values[s->next.fetch_add(1) % s->values.size()]; });
}

}  // namespace weft::resilience
