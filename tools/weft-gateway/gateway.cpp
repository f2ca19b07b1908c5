// The weft-gateway service: its upstream pipelines, the product fan-out and its /metrics page.
#include "gateway.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <any>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/combinators/quorum.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/http/error.hpp>
#include <weft/http/retryable.hpp>
#include <weft/introspection/metrics.hpp>
#include <weft/introspection/prometheus_format.hpp>
#include <weft/resilience/bulkhead.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/fallback.hpp>
#include <weft/resilience/hedge.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/prometheus_sink.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/retry_budget.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/resilience/ttl_cache.hpp>
#include <weft/this_task.hpp>
#include <weft/time/timed_out.hpp>
#include <weft/time/timeout.hpp>

#include "upstream.hpp"

namespace weft::gateway {

namespace wr = weft::resilience;

using reply = http::client_response;

namespace {

// A Prometheus histogram of seconds with fixed buckets, updated from any worker.
class seconds_histogram {
 public:
  static constexpr std::array<double, 12> bounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                    0.1,   0.25,   0.5,   1,    2.5,   5};
  void record(clock::duration d) noexcept {
    const double s = std::chrono::duration<double>(d).count();
    std::size_t i = 0;
    while (i < bounds.size() && s > bounds[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(d.count(), 0)),
                      std::memory_order_relaxed);
  }
  // Appends the _bucket, _sum and _count lines of `name{labels}`.
  void render(std::string& out, std::string_view name, std::string_view labels) const {
    std::uint64_t cumulative = 0;
    std::string bucket_labels;
    for (std::size_t i = 0; i <= bounds.size(); ++i) {
      cumulative += counts_[i].load(std::memory_order_relaxed);
      bucket_labels.assign(labels).append(",le=\"");
      prometheus::append_number(bucket_labels, i < bounds.size() ? bounds[i] : HUGE_VAL);
      bucket_labels += '"';
      prometheus::sample(out, name, "_bucket", bucket_labels, cumulative);
    }
    const double sum_s = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    prometheus::sample(out, name, "_sum", labels, sum_s);
    prometheus::sample(out, name, "_count", labels, cumulative);
  }

 private:
  std::array<std::atomic<std::uint64_t>, bounds.size() + 1> counts_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

// The exposition format's pieces are the runtime's, so the gateway's page spells numbers and
// headers as weft::prometheus_text does.
using prometheus::family;

void sample(std::string& out, std::string_view name, std::string_view labels, double v) {
  prometheus::sample(out, name, "", labels, v);
}

// Counts a request in flight for as long as it lives.
class in_flight_count {
 public:
  explicit in_flight_count(std::atomic<std::uint64_t>& n) noexcept : n_(n) {
    n_.fetch_add(1, std::memory_order_relaxed);
  }
  in_flight_count(const in_flight_count&) = delete;
  in_flight_count& operator=(const in_flight_count&) = delete;
  ~in_flight_count() { n_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t>& n_;
};

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

// Counts what the layers of one upstream report. Listeners run inside the layers: no
// allocation, no throwing.
auto counting(upstream_counters* c) {
  return [c](const wr::layer_event& e) noexcept {
    switch (e.kind) {
      case wr::event_kind::retry:
        c->retries.fetch_add(1, std::memory_order_relaxed);
        break;
      case wr::event_kind::hedge_launched:
        c->hedges.fetch_add(1, std::memory_order_relaxed);
        break;
      case wr::event_kind::breaker_rejected:
      case wr::event_kind::bulkhead_rejected:
      case wr::event_kind::retry_budget_exhausted:
        c->rejections.fetch_add(1, std::memory_order_relaxed);
        break;
      case wr::event_kind::timeout:
        c->timeouts.fetch_add(1, std::memory_order_relaxed);
        break;
      default:
        break;
    }
  };
}

}  // namespace

// A review list as the cache keeps it: when it was fetched, so an answer served after its ttl
// can be marked stale; `fallback` when the fallback made it up.
struct reviews_entry {
  std::string body;
  clock::time_point fetched_at{};
  bool fallback = false;
  bool stale = false;  // past its ttl when the cache answered (set by the caller)
};

// Not in an anonymous namespace: the pipeline's coroutine frames hold it, and g++ warns about
// frames whose types have internal linkage (-Wsubobject-linkage).
struct empty_reviews {
  reviews_entry operator()(const wr::call_outcome<reviews_entry>&) const {
    return reviews_entry{{}, {}, true, false};
  }
};

// One upstream (a pricing replica is one): its layers, in place (the pipeline refers to the
// breaker and the bulkhead, and the retry to the budget).
struct upstream_layers {
  upstream_layers(std::string n, std::string url, const gateway_policy& p, wr::metrics_sink* sink)
      : name(std::move(n)),
        base_url(std::move(url)),
        budget(wr::retry_budget_options{.ratio = p.retry_budget_ratio}),
        breaker(breaker_options(name, p)),
        bulk(wr::bulkhead_options{.max_concurrent = p.bulkhead_concurrent,
                                  .max_queue = p.bulkhead_queue,
                                  .max_queue_wait = p.bulkhead_wait,
                                  .name = "bulkhead"}) {
    breaker.observers().set_sink(sink);
    breaker.observers().on_event(counting(&counters));
    bulk.observers().set_sink(sink);
    bulk.observers().on_event(counting(&counters));
  }

  static wr::circuit_breaker_options breaker_options(const std::string& name,
                                                     const gateway_policy& p) {
    wr::circuit_breaker_options o;
    o.window = wr::window::count(p.breaker_window);
    o.minimum_calls = p.breaker_minimum_calls;
    o.failure_rate_threshold = p.breaker_failure_rate;
    o.slow_call_duration = p.slow_call;
    o.slow_call_rate_threshold = p.breaker_slow_rate;
    o.open_duration = p.breaker_open;
    o.half_open_permits = p.breaker_trials;
    o.half_open_policy = wr::half_open_policy::successes(p.breaker_trials);
    // The dashboard and the report show half-open when it starts, not when a call next comes.
    o.automatic_transition = true;
    o.name = name;
    return o;
  }

  wr::retry retry_layer(const gateway_policy& p, wr::metrics_sink* sink) {
    wr::retry_options o;
    o.max_attempts = p.max_attempts;
    o.backoff = wr::backoff::exponential(p.backoff_initial, 2.0, p.call_timeout);
    o.gate = &budget;
    o.name = "retry";
    wr::retry r{std::move(o)};
    r.observers().set_sink(sink);
    r.observers().on_event(counting(&counters));
    return r;
  }
  wr::time_limiter limiter(clock::duration d, std::string layer_name, wr::metrics_sink* sink) {
    wr::time_limiter t{wr::timeout_options{.duration = d, .name = std::move(layer_name)}};
    t.observers().set_sink(sink);
    t.observers().on_event(counting(&counters));
    return t;
  }

  std::string name;
  std::string base_url;
  upstream_counters counters;
  wr::retry_budget budget;
  wr::circuit_breaker breaker;
  wr::bulkhead bulk;
  // The pipelines' types are spelled rather than erased (any_pipeline): a call then costs no
  // virtual call, and only the path the gateway uses is compiled (an erased pipeline
  // instantiates both its value and its outcome paths; this file compiled in twice the time).
  using plain_pipeline = wr::pipeline<wr::time_limiter, wr::retry, wr::circuit_breaker&,
                                      wr::bulkhead&, wr::time_limiter>;
  using hedged_pipeline = wr::pipeline<wr::time_limiter, wr::retry, wr::hedge, wr::circuit_breaker&,
                                       wr::bulkhead&, wr::time_limiter>;
  std::optional<plain_pipeline> pipe;     // inventory
  std::optional<hedged_pipeline> hedged;  // pricing replicas
};

struct gateway::state {
  state(upstream_urls u, fetch_fn f, gateway_policy p)
      : urls(std::move(u)),
        fetch(std::move(f)),
        policy(p),
        reviews_cache(wr::ttl_cache_options<std::string>{
            .ttl = p.reviews_ttl,
            .capacity = p.reviews_cache_capacity,
            .stale_while_revalidate = p.reviews_stale,
            // The product id travels as a property, not as the context's key: the metrics
            // sink makes a series per key, and ids are unbounded.
            .key_of =
                [](const wr::resilience_context& ctx) {
                  const std::any* id = ctx.find_property("id");
                  if (id == nullptr)
                    throw std::logic_error("weft-gateway: reviews call without an id");
                  return std::any_cast<std::string>(*id);
                },
            .name = "reviews cache"}),
        reviews_fallback(empty_reviews{}, wr::fallback_options{.name = "fallback"}) {
    if (!fetch) throw std::invalid_argument("weft::gateway::gateway: no fetch function");
    reviews_cache.observers().set_sink(&sink);
    reviews_fallback.observers().set_sink(&sink);

    auto add = [&](std::string name, std::string url) -> upstream_layers& {
      upstreams.push_back(
          std::make_unique<upstream_layers>(std::move(name), std::move(url), policy, &sink));
      return *upstreams.back();
    };
    auto plain = [&](upstream_layers& u, clock::duration total) {
      u.pipe.emplace(u.limiter(total, "timeout", &sink), u.retry_layer(policy, &sink), u.breaker,
                     u.bulk, u.limiter(policy.attempt_timeout, "attempt timeout", &sink));
      u.pipe->observers().set_name(u.name);
      u.pipe->observers().set_sink(&sink);
    };
    plain(add("inventory", urls.inventory), policy.call_timeout);
    for (std::size_t i = 0; i < urls.pricing.size(); ++i) {
      upstream_layers& u = add("pricing-" + std::to_string(i + 1), urls.pricing[i]);
      wr::hedge_options h;
      h.max_hedged = 1;
      h.delay = policy.hedge_delay;
      h.percentile = wr::percentile_delay{.quantile = 0.95,
                                          .period = std::chrono::seconds{2},
                                          .min_samples = 50,
                                          .until_min_samples = wr::cold_start::fixed_delay};
      h.gate = &u.budget;
      h.name = "hedge";
      wr::hedge hedge_layer{std::move(h)};
      hedge_layer.observers().set_sink(&sink);
      hedge_layer.observers().on_event(counting(&u.counters));
      u.hedged.emplace(u.limiter(policy.call_timeout, "timeout", &sink),
                       u.retry_layer(policy, &sink), std::move(hedge_layer), u.breaker, u.bulk,
                       u.limiter(policy.attempt_timeout, "attempt timeout", &sink));
      u.hedged->observers().set_name(u.name);
      u.hedged->observers().set_sink(&sink);
    }
    // Reviews: the fallback outermost (an empty list when everything inside failed), then the
    // cache (a fresh entry answers at once; the first caller to find an entry past its ttl
    // refreshes it through the layers below and gets the stale entry back if that fails).
    upstream_layers& r = add("reviews", urls.reviews);
    reviews_pipe.emplace(reviews_fallback, reviews_cache,
                         r.limiter(policy.reviews_timeout, "timeout", &sink),
                         r.retry_layer(policy, &sink), r.breaker, r.bulk,
                         r.limiter(policy.attempt_timeout, "attempt timeout", &sink));
    reviews_pipe->observers().set_name(r.name);
    reviews_pipe->observers().set_sink(&sink);
  }

  upstream_layers& at(std::string_view name) const {
    for (const auto& u : upstreams) {
      if (u->name == name) return *u;
    }
    throw std::invalid_argument("weft::gateway: no upstream named '" + std::string{name} + "'");
  }

  // One attempt: 502, 503 and 504 are retryable failures carrying their Retry-After; any other
  // status but 200 is a failure too (a 500 of a flaky upstream is worth another try).
  task<wr::call_outcome<reply>> call(upstream_layers& u, std::string url) {
    u.counters.calls.fetch_add(1, std::memory_order_relaxed);
    reply r = co_await fetch(std::move(url));
    if (r.status == 200) co_return wr::call_outcome<reply>::success(std::move(r));
    std::optional<clock::duration> after;
    if (http::is_retryable_status(r.status)) after = http::retry_after(r);
    co_return wr::call_outcome<reply>::failure(http::make_status_error(r.status), after);
  }

  task<std::string> inventory(std::string id) {
    upstream_layers& u = *upstreams[0];
    std::string url = u.base_url + "/inventory/" + id;
    auto o = co_await u.pipe->execute([this, &u, &url] { return call(u, url); });
    co_return named(u, std::move(o));
  }

  // The body, or the failure thrown with the upstream's name in its message.
  static std::string named(const upstream_layers& u, wr::call_outcome<reply>&& o) {
    if (o.holds_result() || o.is_cancelled()) return std::move(o).get().body;
    try {
      return std::move(o).get().body;
    } catch (const std::exception& e) {
      throw std::runtime_error(u.name + ": " + e.what());
    }
  }

  task<std::string> price_from(std::size_t replica, std::string id) {
    upstream_layers& u = *upstreams[1 + replica];
    std::string url = u.base_url + "/pricing/" + id;
    auto o = co_await u.hedged->execute(wr::idempotent([this, &u, &url] { return call(u, url); }));
    co_return named(u, std::move(o));
  }

  // Two of the three replicas must answer, and agree.
  task<std::string> pricing(std::string id) {
    std::vector<task<std::string>> calls;
    calls.reserve(3);
    for (std::size_t i = 0; i < 3; ++i) calls.push_back(price_from(i, id));
    auto votes = co_await weft::majority(std::move(calls));
    if (votes[0].value != votes[1].value) {
      throw std::runtime_error("pricing replicas " + std::to_string(votes[0].index + 1) + " and " +
                               std::to_string(votes[1].index + 1) + " disagree");
    }
    co_return std::move(votes[0].value);
  }

  // One attempt at reviews.
  task<wr::call_outcome<reviews_entry>> fetch_reviews(std::string id) {
    upstream_layers& u = *upstreams.back();
    std::string url = u.base_url + "/reviews/" + id;
    auto o = co_await call(u, std::move(url));
    co_return to_entry(std::move(o));
  }

  // Outside the coroutine: g++ 12 frees a temporary of this conversion twice when it is
  // written inside load_reviews.
  static wr::call_outcome<reviews_entry> to_entry(wr::call_outcome<reply>&& o) {
    using entry_outcome = wr::call_outcome<reviews_entry>;
    if (o.is_cancelled()) return entry_outcome::cancelled();
    if (const auto e = o.exception()) return entry_outcome::from_exception(e);
    if (!o.holds_result()) return entry_outcome::failure(o.error(), o.retry_after());
    reviews_entry entry;
    entry.body = std::move(o).value().body;
    entry.fetched_at = clock::now();
    return entry_outcome::success(std::move(entry));
  }

  task<reviews_entry> reviews(std::string id) {
    wr::resilience_context ctx;
    ctx.token = co_await weft::this_task::cancel_token();
    ctx.property("id") = id;
    // The lambda holds only pointers: g++ 12 destroys a by-value std::string capture twice when
    // such a lambda is passed by value into a coroutine. id outlives the call.
    auto o = co_await reviews_pipe->execute(ctx, [this, &id] { return fetch_reviews(id); });
    reviews_entry entry = std::move(o).get();
    // Judged now, when the cache answered, not once the other calls of the request are done.
    entry.stale = !entry.fallback && clock::now() - entry.fetched_at >= policy.reviews_ttl;
    co_return entry;
  }

  upstream_urls urls;
  fetch_fn fetch;
  gateway_policy policy;
  wr::prometheus_sink sink;
  std::vector<std::unique_ptr<upstream_layers>> upstreams;
  wr::ttl_cache<std::string, reviews_entry> reviews_cache;
  wr::fallback<empty_reviews> reviews_fallback;
  using reviews_cache_t = wr::ttl_cache<std::string, reviews_entry>;
  // Refers to the two above.
  std::optional<wr::pipeline<wr::fallback<empty_reviews>&, reviews_cache_t&, wr::time_limiter,
                             wr::retry, wr::circuit_breaker&, wr::bulkhead&, wr::time_limiter>>
      reviews_pipe;

  std::atomic<std::uint64_t> ok{0}, degraded{0}, failed{0};
  std::atomic<std::uint64_t> stale_reviews{0}, empty_reviews_count{0};
  std::atomic<std::uint64_t> in_flight{0};
  seconds_histogram latency_ok, latency_degraded, latency_failed;
};

gateway::gateway(upstream_urls urls, fetch_fn fetch, gateway_policy policy)
    : st_(std::make_unique<state>(std::move(urls), std::move(fetch), policy)) {}

gateway::~gateway() = default;

task<http::response> gateway::product(std::string id) {
  if (!valid_id(id)) {
    throw http::error{400, "a product id is 1 to 64 letters, digits, '-' or '_'"};
  }
  state& st = *st_;
  const auto started = clock::now();
  const in_flight_count in_flight(st.in_flight);

  std::optional<http::response> answer;
  std::string failure;
  std::uint16_t failure_status = 503;
  try {
    auto [inventory, price, reviews] =
        co_await weft::timeout(st.policy.request_deadline,
                               weft::when_all(st.inventory(id), st.pricing(id), st.reviews(id)));
    std::string degraded_reason;
    std::string body = R"({"id":")" + id + R"(","inventory":)" + inventory + R"(,"price":)" +
                       price + R"(,"reviews":)";
    if (reviews.fallback) {
      degraded_reason = "reviews-empty";
      body += R"({"reviews":[]})";
      st.empty_reviews_count.fetch_add(1, std::memory_order_relaxed);
    } else {
      if (reviews.stale) {
        degraded_reason = "reviews-stale";
        st.stale_reviews.fetch_add(1, std::memory_order_relaxed);
      }
      body += reviews.body;
    }
    body += R"(,"degraded":)" +
            (degraded_reason.empty() ? std::string{"null"} : "\"" + degraded_reason + "\"") + "}";
    answer.emplace(http::response::json(std::move(body)));
    if (degraded_reason.empty()) {
      answer->set_header("X-Weft-Outcome", "ok");
    } else {
      answer->set_header("X-Weft-Outcome", "degraded");
      answer->set_header("X-Weft-Degraded", std::move(degraded_reason));
    }
  } catch (const operation_cancelled&) {
    throw;  // the connection went away or the server stops: nobody is waiting for an answer
  } catch (const timed_out&) {
    failure_status = 504;
    failure = "no answer within the request deadline";
  } catch (const std::exception& e) {
    failure = e.what();
  }
  const auto took = clock::now() - started;
  if (answer) {
    if (answer->header("X-Weft-Degraded")) {
      st.degraded.fetch_add(1, std::memory_order_relaxed);
      st.latency_degraded.record(took);
    } else {
      st.ok.fetch_add(1, std::memory_order_relaxed);
      st.latency_ok.record(took);
    }
    co_return std::move(*answer);
  }
  st.failed.fetch_add(1, std::memory_order_relaxed);
  st.latency_failed.record(took);
  std::string escaped;
  for (const char c : failure) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  }
  co_return http::response::json(R"({"error":")" + escaped + "\"}", failure_status)
      .set_header("X-Weft-Outcome", "failed");
}

http::router gateway::make_router(const runtime& rt) {
  http::router r;
  r.get("/product/{id}",
        [this](http::request& req) { return product(std::string{req.param("id")}); });
  r.get("/metrics", [this, &rt](http::request&) -> task<http::response> {
    co_return http::response{200}
        .set_content_type("text/plain; version=0.0.4; charset=utf-8")
        .set_body(metrics_text(rt));
  });
  r.get("/healthz", [this](http::request&) -> task<http::response> {
    if (draining_.load(std::memory_order_relaxed)) {
      co_return http::response::text("draining\n", 503);
    }
    co_return http::response::text("ok\n");
  });
  return r;
}

std::string gateway::metrics_text(const runtime& rt) const {
  const state& st = *st_;
  std::string out;
  out.reserve(32 * 1024);
  family(out, "weft_gateway_requests_total", "counter",
         "Requests to /product/{id} answered, by outcome (degraded: reviews from the fallback).");
  sample(out, "weft_gateway_requests_total", R"(outcome="ok")", static_cast<double>(st.ok.load()));
  sample(out, "weft_gateway_requests_total", R"(outcome="degraded")",
         static_cast<double>(st.degraded.load()));
  sample(out, "weft_gateway_requests_total", R"(outcome="failed")",
         static_cast<double>(st.failed.load()));
  family(out, "weft_gateway_requests_in_flight", "gauge", "Requests to /product/{id} in flight.");
  sample(out, "weft_gateway_requests_in_flight", "", static_cast<double>(st.in_flight.load()));
  family(out, "weft_gateway_degraded_total", "counter",
         "Degraded answers by reason: stale cached reviews, or an empty list.");
  sample(out, "weft_gateway_degraded_total", R"(reason="reviews-stale")",
         static_cast<double>(st.stale_reviews.load()));
  sample(out, "weft_gateway_degraded_total", R"(reason="reviews-empty")",
         static_cast<double>(st.empty_reviews_count.load()));
  family(out, "weft_gateway_request_duration_seconds", "histogram",
         "Time to answer /product/{id}, by outcome.");
  st.latency_ok.render(out, "weft_gateway_request_duration_seconds", R"(outcome="ok")");
  st.latency_degraded.render(out, "weft_gateway_request_duration_seconds", R"(outcome="degraded")");
  st.latency_failed.render(out, "weft_gateway_request_duration_seconds", R"(outcome="failed")");

  struct counter_family {
    const char* name;
    const char* help;
    const std::atomic<std::uint64_t> upstream_counters::*field;
  };
  static constexpr counter_family counter_families[] = {
      {"weft_gateway_upstream_calls_total", "Attempts sent to each upstream.",
       &upstream_counters::calls},
      {"weft_gateway_retries_total", "Retries of calls to each upstream.",
       &upstream_counters::retries},
      {"weft_gateway_hedges_total", "Hedged attempts launched to each upstream.",
       &upstream_counters::hedges},
      {"weft_gateway_rejections_total",
       "Calls refused without reaching the upstream: open breaker, full bulkhead, spent budget.",
       &upstream_counters::rejections},
      {"weft_gateway_timeouts_total", "Attempts and calls to each upstream that timed out.",
       &upstream_counters::timeouts},
  };
  for (const auto& f : counter_families) {
    family(out, f.name, "counter", f.help);
    for (const auto& u : st.upstreams) {
      sample(out, f.name, "upstream=\"" + u->name + "\"",
             static_cast<double>((u->counters.*f.field).load(std::memory_order_relaxed)));
    }
  }
  family(out, "weft_gateway_breaker_state", "gauge",
         "Each upstream's circuit breaker: 0 closed, 1 open, 2 half-open, 3 forced open, 4 "
         "disabled, 5 metrics only.");
  for (const auto& u : st.upstreams) {
    sample(out, "weft_gateway_breaker_state", "upstream=\"" + u->name + "\"",
           static_cast<double>(static_cast<int>(u->breaker.state())));
  }
  family(out, "weft_gateway_bulkhead_queued", "gauge",
         "Calls waiting in each upstream's bulkhead.");
  for (const auto& u : st.upstreams) {
    sample(out, "weft_gateway_bulkhead_queued", "upstream=\"" + u->name + "\"",
           static_cast<double>(u->bulk.metrics().queued));
  }
  family(out, "weft_gateway_bulkhead_inflight", "gauge", "Calls inside each upstream's bulkhead.");
  for (const auto& u : st.upstreams) {
    sample(out, "weft_gateway_bulkhead_inflight", "upstream=\"" + u->name + "\"",
           static_cast<double>(u->bulk.metrics().inflight));
  }
  const process_usage usage = read_process_usage();
  family(out, "process_open_fds", "gauge", "Open file descriptors.");
  sample(out, "process_open_fds", "", static_cast<double>(usage.open_fds));
  family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  sample(out, "process_resident_memory_bytes", "", static_cast<double>(usage.rss_bytes));
  family(out, "process_cpu_seconds_total", "counter", "User and system CPU time in seconds.");
  sample(out, "process_cpu_seconds_total", "", usage.cpu_seconds);
  out += prometheus_text(rt);
  st.sink.render_to(out);
  return out;
}

resilience::breaker_state gateway::breaker(std::string_view upstream) const {
  return st_->at(upstream).breaker.state();
}
std::size_t gateway::bulkhead_queued(std::string_view upstream) const {
  return st_->at(upstream).bulk.metrics().queued;
}
const upstream_counters& gateway::counters(std::string_view upstream) const {
  return st_->at(upstream).counters;
}
std::uint64_t gateway::answered_ok() const noexcept {
  return st_->ok.load();
}
std::uint64_t gateway::answered_degraded() const noexcept {
  return st_->degraded.load();
}
std::uint64_t gateway::answered_failed() const noexcept {
  return st_->failed.load();
}

// --- fetching ---

namespace {
task<reply> fetch_in_process(upstream_sim* sim, std::string id) {
  http::response r = co_await sim->serve(std::move(id));
  reply out;
  out.status = r.status();
  out.reason = std::string{http::reason_phrase(r.status())};
  out.headers = r.headers();
  out.body = std::string{r.body()};
  co_return out;
}

task<reply> refuse(std::string url) {
  throw std::system_error(std::make_error_code(std::errc::connection_refused),
                          "in-process fetch: nothing at " + url);
  co_return reply{};
}
}  // namespace

// The upstream `url` (http://<name>/<kind>/<id>) names, and the id; null if none does.
// Not inlined: g++ 12 warns falsely (maybe-uninitialized) when it is inlined into the lambda.
[[gnu::noinline]] static upstream_sim* route(const std::vector<upstream_sim*>& upstreams,
                                             const std::string& url, std::string& id) {
  std::size_t host_at = url.compare(0, 7, "http://") == 0 ? 7 : 0;
  const std::size_t slash = url.find('/', host_at);
  const std::size_t last = url.rfind('/');
  if (slash == std::string::npos || last <= slash) return nullptr;
  const std::string host = url.substr(host_at, slash - host_at);
  const std::string kind = url.substr(slash + 1, last - slash - 1);
  for (upstream_sim* s : upstreams) {
    if (s->name() == host && to_string(s->kind()) == kind) {
      id = url.substr(last + 1);
      return s;
    }
  }
  return nullptr;
}

fetch_fn in_process_fetch(std::vector<upstream_sim*> upstreams) {
  return [upstreams = std::move(upstreams)](std::string url) -> task<reply> {
    std::string id;
    if (upstream_sim* s = route(upstreams, url, id)) return fetch_in_process(s, std::move(id));
    return refuse(std::move(url));
  };
}

fetch_fn client_fetch(http::client& c) {
  return [&c](std::string url) { return c.get(std::move(url)); };
}

process_usage read_process_usage(int pid) {
  const std::string base = pid == 0 ? "/proc/self" : "/proc/" + std::to_string(pid);
  process_usage u;
  if (DIR* d = ::opendir((base + "/fd").c_str())) {
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++u.open_fds;
    }
    ::closedir(d);
    if (pid == 0 && u.open_fds > 0) --u.open_fds;  // the directory stream's own descriptor
  }
  {
    std::ifstream statm{base + "/statm"};
    std::uint64_t size = 0, resident = 0;
    if (statm >> size >> resident) {
      u.rss_bytes = resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    }
  }
  {
    std::ifstream stat{base + "/stat"};
    std::string line;
    if (std::getline(stat, line)) {
      // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
      const auto close = line.rfind(')');
      if (close != std::string::npos) {
        std::istringstream rest{line.substr(close + 2)};
        std::string field;
        unsigned long long utime = 0, stime = 0;
        for (int i = 3; i <= 15 && rest >> field; ++i) {
          if (i == 14) utime = std::stoull(field);
          if (i == 15) stime = std::stoull(field);
        }
        u.cpu_seconds =
            static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
      }
    }
  }
  return u;
}

}  // namespace weft::gateway
