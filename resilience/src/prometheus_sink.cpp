// The resilience metrics in the Prometheus text exposition format
// (weft::resilience::prometheus_sink), written as runtime/src/introspection/metrics.cpp writes the
// runtime's.
#include <weft/resilience/prometheus_sink.hpp>

#include <weft/introspection/prometheus_format.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <utility>

namespace weft::resilience {

namespace {

using weft::prometheus::append_escaped;
using weft::prometheus::append_number;
using weft::prometheus::family;
using weft::prometheus::sample;

constexpr std::size_t bucket_count = prometheus_sink::bucket_bounds.size() + 1;  // with +Inf

// The bounds in nanoseconds, so that a duration is placed by integer comparison (0.0005 s is not
// exact in binary; 500000 ns is).
constexpr std::array<std::int64_t, prometheus_sink::bucket_bounds.size()> bounds_ns = [] {
  std::array<std::int64_t, prometheus_sink::bucket_bounds.size()> out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::int64_t>(prometheus_sink::bucket_bounds[i] * 1e9 + 0.5);
  }
  return out;
}();

std::string_view verdict_name(verdict v) noexcept {
  switch (v) {
    case verdict::success:
      return "success";
    case verdict::failure:
      return "failure";
    case verdict::ignore:
      return "ignore";
  }
  return "unknown";
}

// Label values, in the family's label order. Series are stored under owned strings and looked up
// with views, so recording into a series that exists allocates nothing.
template <std::size_t N>
using labels = std::array<std::string, N>;
template <std::size_t N>
using label_views = std::array<std::string_view, N>;

struct labels_less {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const noexcept {
    return std::lexicographical_compare(
        a.begin(), a.end(), b.begin(), b.end(),
        [](std::string_view x, std::string_view y) { return x < y; });
  }
};

template <std::size_t N, class V>
using series_map = std::map<labels<N>, V, labels_less>;

// The series under `key`, created (value-initialized) if it is new; may throw std::bad_alloc.
template <std::size_t N, class V>
V& series(series_map<N, V>& m, const label_views<N>& key) {
  if (auto it = m.find(key); it != m.end()) return it->second;
  labels<N> owned;
  for (std::size_t i = 0; i < N; ++i) owned[i] = std::string(key[i]);
  return m.emplace(std::move(owned), V{}).first->second;
}

struct histogram {
  std::array<std::uint64_t, bucket_count> counts{};  // per bucket, not cumulative
  std::int64_t sum_ns = 0;

  void observe(clock::duration d) noexcept {
    // The runtime clock never goes back; a negative duration counts as zero all the same, so
    // that _sum only grows.
    const std::int64_t ns = std::max<std::int64_t>(0, d.count());
    const auto it = std::lower_bound(bounds_ns.begin(), bounds_ns.end(), ns);  // first le >= ns
    ++counts[static_cast<std::size_t>(it - bounds_ns.begin())];
    sum_ns += ns;
  }
};

template <std::size_t N>
void append_labels(std::string& out, const std::array<const char*, N>& names,
                   const labels<N>& values) {
  for (std::size_t i = 0; i < N; ++i) {
    if (i != 0) out += ',';
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i]);
    out += '"';
  }
}

template <std::size_t N>
void histograms(std::string& out, const char* name, const char* help,
                const std::array<const char*, N>& names, const series_map<N, histogram>& m) {
  family(out, name, "histogram", help);
  std::string label_text;
  std::string bucket_labels;
  for (const auto& [values, h] : m) {
    label_text.clear();
    append_labels(label_text, names, values);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
      cumulative += h.counts[i];
      bucket_labels = label_text;
      bucket_labels += ",le=\"";
      append_number(bucket_labels, i < bounds_ns.size() ? prometheus_sink::bucket_bounds[i]
                                                        : std::numeric_limits<double>::infinity());
      bucket_labels += '"';
      sample(out, name, "_bucket", bucket_labels, cumulative);
    }
    sample(out, name, "_sum", label_text, static_cast<double>(h.sum_ns) / 1e9);
    sample(out, name, "_count", label_text, cumulative);
  }
}

constexpr std::array<const char*, 4> event_labels = {"event", "layer", "pipeline", "key"};
constexpr std::array<const char*, 4> attempt_labels = {"layer", "pipeline", "key", "verdict"};
constexpr std::array<const char*, 3> pipeline_labels = {"pipeline", "key", "verdict"};
constexpr std::array<const char*, 3> gauge_labels = {"gauge", "layer", "key"};

}  // namespace

struct prometheus_sink::state {
  mutable std::mutex mutex;
  series_map<4, std::uint64_t> events;
  series_map<4, histogram> attempts;
  series_map<3, histogram> pipelines;
  series_map<3, double> gauges;
};

prometheus_sink::prometheus_sink() : state_(std::make_unique<state>()) {}
prometheus_sink::~prometheus_sink() = default;

// Each recorder drops its sample if the series is new and cannot be allocated (std::bad_alloc) or
// the mutex fails (std::system_error): a layer's call must not fail for its metrics.

void prometheus_sink::count_event(const layer_event& e) noexcept {
  try {
    const std::lock_guard lock(state_->mutex);
    ++series(state_->events, label_views<4>{to_string(e.kind), e.layer, e.pipeline, e.key});
  } catch (...) {
  }
}

void prometheus_sink::record_attempt(std::string_view layer, const resilience_context& ctx,
                                     clock::duration d, verdict v) noexcept {
  try {
    const std::lock_guard lock(state_->mutex);
    series(state_->attempts, label_views<4>{layer, ctx.pipeline, ctx.key, verdict_name(v)})
        .observe(d);
  } catch (...) {
  }
}

void prometheus_sink::record_pipeline(const resilience_context& ctx, clock::duration d,
                                      verdict v) noexcept {
  try {
    const std::lock_guard lock(state_->mutex);
    series(state_->pipelines, label_views<3>{ctx.pipeline, ctx.key, verdict_name(v)}).observe(d);
  } catch (...) {
  }
}

void prometheus_sink::set_gauge(gauge g, std::string_view layer, std::string_view key,
                                double value) noexcept {
  try {
    const std::lock_guard lock(state_->mutex);
    series(state_->gauges, label_views<3>{to_string(g), layer, key}) = value;
  } catch (...) {
  }
}

std::string prometheus_sink::render() const {
  std::string out;
  render_to(out);
  return out;
}

void prometheus_sink::render_to(std::string& out) const {
  const std::size_t size = out.size();
  try {
    // Rendered under the lock, not from a copy: a copy would allocate as much, under it too.
    const std::lock_guard lock(state_->mutex);
    const char* events = "weft_resilience_events_total";
    family(out, events, "counter",
           "Resilience layer events (weft.resilience.events) by event, layer, pipeline and key.");
    std::string label_text;
    for (const auto& [values, n] : state_->events) {
      label_text.clear();
      append_labels(label_text, event_labels, values);
      sample(out, events, "", label_text, n);
    }
    histograms(out, "weft_resilience_attempt_duration_seconds",
               "Duration of one attempt inside a retry or hedge layer "
               "(weft.resilience.attempt.duration), in seconds.",
               attempt_labels, state_->attempts);
    histograms(out, "weft_resilience_pipeline_duration_seconds",
               "Duration of a whole resilience pipeline call (weft.resilience.pipeline.duration), "
               "in seconds.",
               pipeline_labels, state_->pipelines);
    const char* gauges = "weft_resilience_gauge";
    family(out, gauges, "gauge",
           "Last value a resilience layer reported for a gauge (breaker.state, inflight, limit, "
           "tokens, detached).");
    for (const auto& [values, v] : state_->gauges) {
      label_text.clear();
      append_labels(label_text, gauge_labels, values);
      sample(out, gauges, "", label_text, v);
    }
  } catch (...) {
    out.resize(size);
    throw;
  }
}

}  // namespace weft::resilience
