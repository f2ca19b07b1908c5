// The runtime's metrics in the Prometheus text exposition format.
#include <weft/introspection/metrics.hpp>

#include <cmath>
#include <limits>

#include <weft/detail/prometheus_format.hpp>

namespace weft {

double duration_histogram::upper_bound_seconds(std::size_t i) noexcept {
  if (i + 1 >= buckets) return std::numeric_limits<double>::infinity();
  return std::ldexp(1e-6, static_cast<int>(i));  // 2^i µs
}

namespace {

namespace fmt = detail::prometheus;

struct writer {
  std::string& out;

  void family(const char* name, const char* type, const char* help) {
    fmt::family(out, name, type, help);
  }
  template <class V>
  void sample(const char* name, const std::string& labels, V value) {
    fmt::sample(out, name, "", labels, value);
  }
  void histogram(const std::string& name, const std::string& labels, const duration_histogram& h) {
    std::uint64_t cumulative = 0;
    std::string bucket_labels;
    for (std::size_t i = 0; i < duration_histogram::buckets; ++i) {
      cumulative += h.counts[i];
      bucket_labels = labels.empty() ? "" : labels + ",";
      bucket_labels += "le=\"";
      fmt::append_number(bucket_labels, duration_histogram::upper_bound_seconds(i));
      bucket_labels += '"';
      fmt::sample(out, name, "_bucket", bucket_labels, cumulative);
    }
    fmt::sample(out, name, "_sum", labels, static_cast<double>(h.sum_ns) / 1e9);
    fmt::sample(out, name, "_count", labels, cumulative);
  }
};

std::string worker_label(std::size_t i) {
  return "worker=\"" + std::to_string(i) + "\"";
}

}  // namespace

std::string prometheus_text(const runtime& rt) {
  return prometheus_text(rt.stats());
}

std::string prometheus_text(const runtime_stats& s) {
  std::string out;
  out.reserve(4096 + s.workers.size() * 4096);
  writer w{out};
  const auto per_worker = [&](const char* name, const char* type, const char* help, auto field) {
    w.family(name, type, help);
    for (std::size_t i = 0; i < s.workers.size(); ++i) {
      w.sample(name, worker_label(i), field(s.workers[i]));
    }
  };
  per_worker("weft_worker_busy_seconds_total", "counter",
             "Time the worker spent awake (running tasks, polling, stealing), in seconds.",
             [](const worker_stats& x) { return static_cast<double>(x.busy_ns) / 1e9; });
  per_worker("weft_worker_resumptions_total", "counter", "Task resumptions the worker ran.",
             [](const worker_stats& x) { return x.tasks_run; });
  per_worker("weft_worker_steals_total", "counter",
             "Successful steals of tasks from other workers' queues.",
             [](const worker_stats& x) { return x.steals; });
  per_worker("weft_worker_parks_total", "counter", "Times the worker went to sleep.",
             [](const worker_stats& x) { return x.parks; });
  per_worker("weft_worker_busy_poll_hits_total", "counter",
             "Times a busy poll (runtime_options::busy_poll) found work before the worker slept.",
             [](const worker_stats& x) { return x.busy_poll_hits; });
  per_worker("weft_worker_stalls_total", "counter",
             "Resumptions the stall detector reported (longer than the stall threshold).",
             [](const worker_stats& x) { return x.stalls; });
  per_worker("weft_worker_io_submitted_total", "counter",
             "io_uring submission queue entries handed to the kernel.",
             [](const worker_stats& x) { return x.io_submitted; });
  per_worker("weft_worker_io_completed_total", "counter", "io_uring completions dispatched.",
             [](const worker_stats& x) { return x.io_completed; });
  per_worker("weft_worker_local_queue_depth", "gauge", "Tasks in the worker's local run queue.",
             [](const worker_stats& x) { return x.local_queue; });
  per_worker("weft_worker_io_in_flight", "gauge",
             "io_uring operations submitted and not yet completed.",
             [](const worker_stats& x) { return x.io_in_flight; });

  w.family("weft_worker_resume_duration_seconds", "histogram",
           "How long one task resumption kept the worker (with timing_metrics).");
  for (std::size_t i = 0; i < s.workers.size(); ++i) {
    w.histogram("weft_worker_resume_duration_seconds", worker_label(i),
                s.workers[i].resume_duration);
  }
  w.family("weft_worker_schedule_delay_seconds", "histogram",
           "How long a woken task waited before it ran (with timing_metrics).");
  for (std::size_t i = 0; i < s.workers.size(); ++i) {
    w.histogram("weft_worker_schedule_delay_seconds", worker_label(i), s.workers[i].schedule_delay);
  }

  w.family("weft_injection_queue_depth", "gauge",
           "Tasks in the shared injection queue (spawned or woken from outside the workers).");
  w.sample("weft_injection_queue_depth", "", static_cast<std::uint64_t>(s.injection_queue));
  w.family("weft_blocking_threads", "gauge", "Threads of the spawn_blocking pool alive now.");
  w.sample("weft_blocking_threads", "", static_cast<std::uint64_t>(s.blocking_threads));
  w.family("weft_blocking_queue_depth", "gauge", "spawn_blocking jobs waiting for a thread.");
  w.sample("weft_blocking_queue_depth", "", static_cast<std::uint64_t>(s.blocking_queue));
  w.family("weft_tasks", "gauge", "Live spawned tasks by state.");
  w.sample("weft_tasks", "state=\"ready\"", static_cast<std::uint64_t>(s.ready_tasks));
  w.sample("weft_tasks", "state=\"running\"", static_cast<std::uint64_t>(s.running_tasks));
  w.sample("weft_tasks", "state=\"suspended\"", static_cast<std::uint64_t>(s.suspended_tasks));
  return out;
}

}  // namespace weft
