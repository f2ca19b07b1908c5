// The bytes echo-load sends: a deterministic stream per connection, so every echoed byte can be
// checked with no per-message copy (O(1) memory per connection, whatever the size and depth).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

namespace echo_load {

/// A pseudo-random byte sequence of prime period, from which each stream reads at its own phase.
///
/// Byte `k` of the stream with phase `p` is `sequence[(p + k) % period]`. The period is prime so
/// that message boundaries (usually powers of two) never line up with it: consecutive messages
/// differ, and a dropped, repeated or reordered message is caught. The buffer holds `max_span`
/// bytes past one period, so any run of up to `max_span` stream bytes is one contiguous slice:
/// sending and checking are a plain send() and memcmp() on it.
///
/// Thread safety: const after construction; share one instance.
class byte_pattern {
 public:
  static constexpr std::uint64_t period = 65521;  // the largest prime below 2^16
  static constexpr std::size_t max_span = 256 * 1024;

  byte_pattern() : bytes_(period + max_span) {
    std::uint64_t state = 0x9e3779b97f4a7c15;
    for (std::size_t i = 0; i < period; ++i) bytes_[i] = static_cast<unsigned char>(mix(state++));
    // The tail repeats the sequence from its start (max_span spans several periods).
    for (std::size_t i = period; i < bytes_.size(); ++i) bytes_[i] = bytes_[i - period];
  }

  /// Returns the phase of stream `stream_id`: distinct streams start at unrelated offsets, so
  /// bytes delivered to the wrong connection are caught too.
  [[nodiscard]] static std::uint64_t phase_of(std::uint64_t stream_id) noexcept {
    return mix(stream_id) % period;
  }

  /// Returns the stream's bytes from `offset` on; up to `max_span` of them may be read.
  [[nodiscard]] const unsigned char* at(std::uint64_t phase, std::uint64_t offset) const noexcept {
    return bytes_.data() + (phase + offset) % period;
  }

  /// Returns the index in `data` of the first byte that differs from the stream's bytes at
  /// [offset, offset + size), or nothing when all match. `size` may exceed `max_span`.
  [[nodiscard]] std::optional<std::size_t> first_mismatch(const unsigned char* data,
                                                          std::size_t size, std::uint64_t phase,
                                                          std::uint64_t offset) const noexcept {
    for (std::size_t done = 0; done < size;) {
      const std::size_t span = size - done < max_span ? size - done : max_span;
      const unsigned char* expected = at(phase, offset + done);
      if (std::memcmp(data + done, expected, span) != 0) {
        for (std::size_t i = 0; i < span; ++i) {
          if (data[done + i] != expected[i]) return done + i;
        }
      }
      done += span;
    }
    return std::nullopt;
  }

 private:
  static std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64's finaliser
    x += 0x9e3779b97f4a7c15;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
    x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
    return x ^ (x >> 31);
  }

  std::vector<unsigned char> bytes_;
};

}  // namespace echo_load
