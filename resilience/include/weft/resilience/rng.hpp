// weft::resilience::rng: the one source of randomness for jitter and sampling, injectable so that
// tests fix every random draw.
//
// Thread safety: the default source is a generator per thread (no lock); rng::sequence's copies
// share one atomic position and rng::constant holds a value, so both may be called from any thread.
// A custom source is called from whichever worker runs the layer, concurrently for a shared layer.
// An rng object is not synchronised against assignment.
//
// Cancellation: nothing here suspends.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace weft::resilience {

/// Returns doubles in [0, 1). The default draws from a per-thread xoshiro256+ generator seeded
/// from std::random_device, so layers shared between workers need no lock. A custom source is
/// called from whichever worker runs the layer: make it thread-safe if layers are shared.
///
///     retry_options o;
///     o.random = rng::sequence({0.5, 0.25});  // first retry draws 0.5, the second 0.25, …
class rng {
 public:
  rng() = default;
  template <class F>
  requires(std::is_invocable_r_v<double, F&> && !std::same_as<std::decay_t<F>, rng>)
  explicit rng(F source) : source_(std::move(source)) {}

  double operator()() const { return source_ ? source_() : thread_default(); }

  /// Cycles through `values` (each must be in [0, 1)); thread-safe.
  static rng sequence(std::vector<double> values);
  /// Always `value`.
  static rng constant(double value) {
    return rng([value] { return value; });
  }

 private:
  static double thread_default() noexcept;
  std::function<double()> source_;
};

}  // namespace weft::resilience
