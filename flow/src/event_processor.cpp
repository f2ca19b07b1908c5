// The event processor's code that is not a template: names, option checks, and the latency
// histogram's arithmetic.
#include <bit>
#include <cmath>
#include <stdexcept>
#include <string>

#include <weft/flow/dead_letter_queue.hpp>
#include <weft/flow/event_processor.hpp>
#include <weft/flow/event_processor_options.hpp>
#include <weft/flow/processor_metrics.hpp>

namespace weft::flow {

const char* to_string(priority p) noexcept {
  switch (p) {
    case priority::critical:
      return "critical";
    case priority::high:
      return "high";
    case priority::medium:
      return "medium";
    case priority::low:
      return "low";
  }
  return "unknown";
}

const char* to_string(dead_letter_reason r) noexcept {
  switch (r) {
    case dead_letter_reason::retries_exhausted:
      return "retries exhausted";
    case dead_letter_reason::not_retryable:
      return "not retryable";
    case dead_letter_reason::breaker_open:
      return "breaker open";
    case dead_letter_reason::shutdown:
      return "shutdown";
  }
  return "unknown";
}

namespace detail {

namespace {
[[noreturn]] void refuse(const std::string& what) {
  throw std::invalid_argument("weft::flow::event_processor: " + what);
}
}  // namespace

void validate_processor(std::size_t destinations, std::size_t max_backlog,
                        const std::array<std::uint32_t, priority_count>& weights,
                        clock::duration drain_grace, clock::duration metrics_interval) {
  if (destinations == 0) refuse("no destinations");
  if (destinations > 0xffff'ffffu) refuse("too many destinations");
  if (max_backlog == 0) refuse("max_backlog is 0");
  for (std::size_t p = 0; p < priority_count; ++p) {
    if (weights[p] == 0) {
      refuse(std::string{"the weight of lane '"} + to_string(static_cast<priority>(p)) +
             "' is 0 (it would starve)");
    }
  }
  if (drain_grace.count() < 0) refuse("drain_grace is negative");
  if (metrics_interval.count() <= 0) refuse("metrics_interval is not positive");
}

void validate_destination(std::string_view name, bool has_deliver, std::size_t batch_size,
                          std::size_t concurrency, clock::duration flush_interval,
                          clock::duration attempt_timeout, clock::duration open_deadline) {
  const std::string who = "destination '" + std::string{name} + "': ";
  if (name.empty()) refuse("a destination has no name");
  if (!has_deliver) refuse(who + "deliver is empty");
  if (batch_size == 0) refuse(who + "batch_size is 0");
  if (concurrency == 0) refuse(who + "concurrency is 0");
  if (flush_interval.count() <= 0) refuse(who + "flush_interval is not positive");
  if (attempt_timeout.count() <= 0) refuse(who + "attempt_timeout is not positive");
  if (open_deadline.count() < 0) refuse(who + "open_deadline is negative");
}

}  // namespace detail

// Buckets beyond the first are counted in units of 125 ns (an eighth of a microsecond): a
// sample's octave is the top bit of that count, its sub-bucket the three bits below it.
std::size_t latency_histogram::bucket_of(std::uint64_t ns) noexcept {
  if (ns <= 1000) return 0;
  const std::uint64_t u = (ns - 1) / 125;  // >= 8
  const auto e = static_cast<std::size_t>(std::bit_width(u) - 1);  // >= 3
  const std::size_t octave = e - 3;
  if (octave >= octaves) return buckets - 1;
  const auto m = static_cast<std::size_t>((u >> octave) & 7u);
  return 1 + octave * sub_buckets + m;
}

clock::duration latency_histogram::upper_bound(std::size_t i) noexcept {
  if (i == 0) return std::chrono::microseconds{1};
  const std::size_t octave = (i - 1) / sub_buckets;
  const std::size_t m = (i - 1) % sub_buckets;
  const std::uint64_t ns = (std::uint64_t{9 + m} << octave) * 125;
  return std::chrono::nanoseconds{static_cast<std::int64_t>(ns)};
}

latency_histogram::counts latency_histogram::read() const noexcept {
  counts c;
  for (std::size_t i = 0; i < buckets; ++i) c.n[i] = n_[i].load(std::memory_order_relaxed);
  c.sum_ns = sum_ns_.load(std::memory_order_relaxed);
  return c;
}

std::uint64_t latency_histogram::counts::total() const noexcept {
  std::uint64_t t = 0;
  for (auto v : n) t += v;
  return t;
}

clock::duration latency_histogram::counts::quantile(double q) const noexcept {
  const auto t = total();
  if (t == 0) return clock::duration::zero();
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(t)));
  if (rank == 0) rank = 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets; ++i) {
    seen += n[i];
    if (seen >= rank) return upper_bound(i);
  }
  return upper_bound(buckets - 1);
}

clock::duration latency_histogram::counts::mean() const noexcept {
  const auto t = total();
  if (t == 0) return clock::duration::zero();
  return std::chrono::nanoseconds{static_cast<std::int64_t>(sum_ns / t)};
}

latency_histogram::counts latency_histogram::counts::since(const counts& earlier) const noexcept {
  counts d;
  for (std::size_t i = 0; i < buckets; ++i) d.n[i] = n[i] - earlier.n[i];
  d.sum_ns = sum_ns - earlier.sum_ns;
  return d;
}

}  // namespace weft::flow
