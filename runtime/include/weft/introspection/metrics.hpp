// weft::prometheus_text: a runtime's metrics in the Prometheus text exposition format.
//
// Thread safety: prometheus_text(rt) may be called from any thread, tasks included: it reads
// rt.stats() without stopping the workers, so the task counts are an estimate while tasks move.
//
// Cancellation: nothing here suspends.
#pragma once

#include <string>

#include <weft/runtime.hpp>

namespace weft {

/// The runtime's metrics (runtime::stats()) as Prometheus text (exposition format 0.0.4), for a
/// `/metrics` endpoint. Every family has its HELP and TYPE lines; per-worker series carry a
/// `worker` label. Families (docs/introspection.md lists them all):
/// weft_worker_busy_seconds_total, weft_worker_resumptions_total, weft_worker_steals_total,
/// weft_worker_parks_total, weft_worker_busy_poll_hits_total, weft_worker_local_queue_depth,
/// weft_worker_io_in_flight, weft_worker_stalls_total, weft_worker_resume_duration_seconds
/// (histogram), weft_worker_schedule_delay_seconds (histogram), weft_injection_queue_depth,
/// weft_blocking_threads, weft_blocking_queue_depth, weft_tasks{state=...}.
///
///     using weft::http::response;
///     routes.get("/metrics", [&rt](weft::http::request&) -> weft::task<response> {
///       co_return response::text(weft::prometheus_text(rt));
///     });
///
/// The histograms fill only with runtime_options::timing_metrics. To add the resilience layers'
/// metrics to the same page, append a weft::resilience::prometheus_sink's render().
[[nodiscard]] std::string prometheus_text(const runtime& rt);
/// The same from a stats() snapshot taken earlier.
[[nodiscard]] std::string prometheus_text(const runtime_stats& stats);

}  // namespace weft
