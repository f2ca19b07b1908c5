// Log-linear latency histogram for echo-load: nanosecond values, constant memory, percentiles
// within 1/64 of the true value (the HdrHistogram layout with 6 significant bits).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace echo_load {

/// Counts nanosecond values in buckets whose width is 1/64 of their magnitude.
///
/// Values below 64 get one bucket each (exact). Above, each power of two [2^e, 2^(e+1)) is split
/// into 64 equal sub-buckets of width 2^(e-6), so a reported percentile is at most 1/64 (1.6%)
/// above the true one. 3,776 buckets cover all of uint64_t: recording never allocates or fails.
///
///     log_linear_histogram h;
///     h.record(1'234);                       // ns
///     h.value_at_percentile(99.0);           // 1'247: the top of 1'234's bucket [1'232, 1'247]
///
/// Thread safety: none; echo-load records from its one thread.
class log_linear_histogram {
 public:
  static constexpr unsigned sub_bucket_bits = 6;
  static constexpr std::uint64_t sub_buckets = std::uint64_t{1} << sub_bucket_bits;  // 64
  // 64 exact buckets, then 64 sub-buckets for each exponent 6..63.
  static constexpr std::size_t bucket_count = sub_buckets + (64 - sub_bucket_bits) * sub_buckets;
  static_assert(bucket_count == 3776, "the layout comment above states 3,776 buckets");

  /// Adds one value.
  void record(std::uint64_t value_ns) noexcept {
    ++counts_[bucket_of(value_ns)];
    ++total_;
    min_ = std::min(min_, value_ns);
    max_ = std::max(max_, value_ns);
  }

  /// Number of values recorded.
  [[nodiscard]] std::uint64_t count() const noexcept { return total_; }
  /// Smallest and largest values recorded, exactly; 0 when empty.
  [[nodiscard]] std::uint64_t min() const noexcept { return total_ == 0 ? 0 : min_; }
  [[nodiscard]] std::uint64_t max() const noexcept { return max_; }

  /// Returns the smallest bucket top at or below which `percentile`% of the values lie.
  ///
  /// The result is the highest value its bucket holds (as HdrHistogram reports), capped at the
  /// recorded maximum, so it is never below the true percentile and at most one bucket width
  /// (1/64 of it) above. `percentile` is clamped to [0, 100]; 0 gives the minimum's bucket and
  /// 100 the exact maximum. An empty histogram gives 0.
  [[nodiscard]] std::uint64_t value_at_percentile(double percentile) const noexcept {
    if (total_ == 0) return 0;
    percentile = std::clamp(percentile, 0.0, 100.0);
    // The rank of the value sought: the ceil(p% of n)-th smallest, at least the first. In
    // doubles 99.9% of 10,000 is 9990.000000000002, whose ceiling would skip a rank; a relative
    // tolerance far above rounding error and far below one rank absorbs that.
    const double exact_rank = percentile / 100.0 * static_cast<double>(total_);
    auto rank = static_cast<std::uint64_t>(std::ceil(exact_rank * (1 - 1e-12)));
    rank = std::clamp<std::uint64_t>(rank, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(bucket_top(i), max_);
    }
    return max_;  // unreachable: the counts sum to total_
  }

  /// Index of the bucket that holds `value_ns`.
  [[nodiscard]] static constexpr std::size_t bucket_of(std::uint64_t value_ns) noexcept {
    if (value_ns < sub_buckets) return static_cast<std::size_t>(value_ns);
    const unsigned exponent = 63 - static_cast<unsigned>(std::countl_zero(value_ns));  // >= 6
    const unsigned shift = exponent - sub_bucket_bits;
    const std::uint64_t sub = (value_ns >> shift) - sub_buckets;  // drop the leading 1 bit
    return static_cast<std::size_t>(sub_buckets + shift * sub_buckets + sub);
  }

  /// Smallest value that falls in bucket `index`.
  [[nodiscard]] static constexpr std::uint64_t bucket_bottom(std::size_t index) noexcept {
    if (index < sub_buckets) return index;
    const std::uint64_t shift = (index - sub_buckets) / sub_buckets;
    const std::uint64_t sub = (index - sub_buckets) % sub_buckets;
    return (sub_buckets + sub) << shift;
  }

  /// Largest value that falls in bucket `index`.
  [[nodiscard]] static constexpr std::uint64_t bucket_top(std::size_t index) noexcept {
    if (index < sub_buckets) return index;
    const std::uint64_t shift = (index - sub_buckets) / sub_buckets;
    return bucket_bottom(index) + ((std::uint64_t{1} << shift) - 1);
  }

 private:
  // Invariant: total_ is the sum of counts_; min_/max_ bound every recorded value.
  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
};

}  // namespace echo_load
