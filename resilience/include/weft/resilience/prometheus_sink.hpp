// weft::resilience::prometheus_sink: a metrics_sink that aggregates what resilience layers report
// (events, attempt and pipeline durations, gauges) and renders it in the Prometheus text
// exposition format, to append to weft::prometheus_text(rt) on a service's /metrics page.
//
// Thread safety: every member may be called from any thread at once (see the class): one mutex
// guards the series. The sink must outlive every layer and pipeline it is attached to.
//
// Cancellation: nothing here suspends: layers report to it synchronously, and render() and
// render_to() run to completion.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include <weft/resilience/classify.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/events.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

/// Aggregates resilience metrics in memory and renders them as Prometheus text (exposition
/// format 0.0.4). Families, each with its HELP and TYPE lines (also when it has no series yet):
///
///   - weft_resilience_events_total{event,layer,pipeline,key}: counter; `event` is
///     to_string(event_kind) (weft.resilience.events).
///   - weft_resilience_attempt_duration_seconds{layer,pipeline,key,verdict}: histogram of one
///     attempt inside a retry or hedge (weft.resilience.attempt.duration).
///   - weft_resilience_pipeline_duration_seconds{pipeline,key,verdict}: histogram of a whole
///     pipeline call (weft.resilience.pipeline.duration).
///   - weft_resilience_gauge{gauge,layer,key}: gauge; `gauge` is to_string(gauge) and the value
///     is the last one a layer set (breaker.state is the breaker_state's number).
///
/// `verdict` is success, failure or ignore. Histogram buckets are fixed (bucket_bounds, in
/// seconds, then +Inf). Series are rendered sorted by their label values, so equal contents
/// render to equal text.
///
///     weft::resilience::prometheus_sink sink;      // outlives every layer it is attached to
///     breaker.observers().set_sink(&sink);         // a layer's events, gauges and attempts
///     pipe.observers().set_sink(&sink);            // a pipeline's call durations
///     ...
///     std::string page = weft::prometheus_text(rt);
///     sink.render_to(page);
///
/// Cardinality: every distinct (layer, pipeline, key) makes its own series, and series are never
/// removed, so give keyed layers a bounded set of keys.
/// Thread safety: every member may be called from any thread; a mutex guards the series.
/// Recording allocates only for a series seen for the first time; if that allocation fails the
/// sample is dropped (the sink's methods are noexcept and must not fail a layer's call).
class prometheus_sink final : public metrics_sink {
 public:
  /// Upper bounds of the histogram buckets, in seconds; a last bucket, +Inf, holds the rest.
  static constexpr std::array<double, 14> bucket_bounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  prometheus_sink();
  ~prometheus_sink() override;
  // Layers hold a pointer to it.
  prometheus_sink(const prometheus_sink&) = delete;
  prometheus_sink& operator=(const prometheus_sink&) = delete;

  void count_event(const layer_event& e) noexcept override;
  void record_attempt(std::string_view layer, const resilience_context& ctx, clock::duration d,
                      verdict v) noexcept override;
  void record_pipeline(const resilience_context& ctx, clock::duration d,
                       verdict v) noexcept override;
  void set_gauge(gauge g, std::string_view layer, std::string_view key,
                 double value) noexcept override;

  /// The four families as Prometheus text.
  [[nodiscard]] std::string render() const;
  /// Appends the same text to `out` (a page that already holds weft::prometheus_text). If it
  /// throws (std::bad_alloc), `out` is left as it was.
  void render_to(std::string& out) const;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace weft::resilience
