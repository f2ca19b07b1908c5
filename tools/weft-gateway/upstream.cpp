// The simulated upstreams: latency sampling, faults, bodies and the admin endpoint.
#include "upstream.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include <weft/http/error.hpp>
#include <weft/time/sleep.hpp>

namespace weft::gateway {

std::string_view to_string(upstream_kind k) noexcept {
  switch (k) {
    case upstream_kind::inventory:
      return "inventory";
    case upstream_kind::pricing:
      return "pricing";
    case upstream_kind::reviews:
      return "reviews";
  }
  return "unknown";
}

namespace {

double parse_number(std::string_view key, std::string_view text) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(v) || v < 0) {
    throw std::invalid_argument("upstream behaviour: " + std::string{key} +
                                " takes a non-negative number, not '" + std::string{text} + "'");
  }
  return v;
}

void check_rate(std::string_view key, double v) {
  if (v > 1) {
    throw std::invalid_argument("upstream behaviour: " + std::string{key} +
                                " is a fraction in [0, 1]");
  }
}

// The same product always has the same facts: replicas agree and tests can predict bodies.
std::uint64_t fact(std::string_view id, std::uint64_t salt) {
  const std::uint64_t h = std::hash<std::string_view>{}(id);
  return (h * 0x9E3779B97F4A7C15ULL) ^ salt;
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

upstream_behaviour apply_form(upstream_behaviour b, std::string_view form) {
  while (!form.empty()) {
    const auto amp = form.find('&');
    const std::string_view pair = form.substr(0, amp);
    form = amp == std::string_view::npos ? std::string_view{} : form.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) {
      throw std::invalid_argument("upstream behaviour: '" + std::string{pair} +
                                  "' is not key=value");
    }
    const std::string_view key = pair.substr(0, eq);
    const double v = parse_number(key, pair.substr(eq + 1));
    if (key == "median_ms") {
      b.median_ms = v;
    } else if (key == "p99_ms") {
      b.p99_ms = v;
    } else if (key == "error_rate") {
      check_rate(key, v);
      b.error_rate = v;
    } else if (key == "outage") {
      b.outage = v != 0;
    } else if (key == "retry_after_s") {
      b.retry_after_s = static_cast<std::uint32_t>(std::min(v, 86'400.0));
    } else if (key == "hang_rate") {
      check_rate(key, v);
      b.hang_rate = v;
    } else if (key == "hang_ms") {
      b.hang_ms = v;
    } else {
      throw std::invalid_argument("upstream behaviour: unknown key '" + std::string{key} + "'");
    }
  }
  if (b.p99_ms < b.median_ms) {
    throw std::invalid_argument("upstream behaviour: p99_ms is below median_ms");
  }
  return b;
}

std::string to_json(const upstream_behaviour& b) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                R"({"median_ms":%g,"p99_ms":%g,"error_rate":%g,"outage":%s,"retry_after_s":%u,)"
                R"("hang_rate":%g,"hang_ms":%g})",
                b.median_ms, b.p99_ms, b.error_rate, b.outage ? "true" : "false", b.retry_after_s,
                b.hang_rate, b.hang_ms);
  return buf;
}

std::string upstream_body(upstream_kind kind, std::string_view id) {
  // Appended piecewise: g++ 12 warns falsely (-Wrestrict) on "\"" + s + "\"".
  std::string quoted;
  quoted += '"';
  quoted += json_escape(id);
  quoted += '"';
  switch (kind) {
    case upstream_kind::inventory:
      return R"({"id":)" + quoted + R"(,"in_stock":)" + std::to_string(fact(id, 1) % 50) + "}";
    case upstream_kind::pricing:
      return R"({"id":)" + quoted + R"(,"price_cents":)" +
             std::to_string(499 + fact(id, 2) % 10'000) + "}";
    case upstream_kind::reviews: {
      const auto stars = 1 + fact(id, 3) % 5;
      return R"({"id":)" + quoted + R"(,"reviews":[{"stars":)" + std::to_string(stars) +
             R"(,"text":"as described"},{"stars":)" + std::to_string(1 + (stars + 2) % 5) +
             R"(,"text":"arrived late"}]})";
    }
  }
  return "{}";
}

upstream_sim::upstream_sim(std::string name, upstream_kind kind, upstream_behaviour behaviour,
                           std::uint64_t seed)
    : name_(std::move(name)),
      kind_(kind),
      behaviour_(apply_form(behaviour, "")),  // the same checks as the admin endpoint's
      rng_state_(seed * 0x9E3779B97F4A7C15ULL + 1) {}

void upstream_sim::set_behaviour(const upstream_behaviour& b) {
  const upstream_behaviour checked = apply_form(b, "");
  std::lock_guard guard{lock_};
  behaviour_ = checked;
}

upstream_behaviour upstream_sim::update(std::string_view form) {
  std::lock_guard guard{lock_};
  behaviour_ = apply_form(behaviour_, form);
  return behaviour_;
}

upstream_behaviour upstream_sim::behaviour() const {
  std::lock_guard guard{lock_};
  return behaviour_;
}

upstream_sim::draw upstream_sim::sample(const upstream_behaviour& b) {
  // splitmix64: small, fast and good enough for load shapes; one stream per upstream.
  auto next = [this] {
    std::uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  };
  auto unit = [&] { return static_cast<double>(next() >> 11) * 0x1.0p-53; };
  draw d;
  {
    std::lock_guard guard{lock_};
    d.uniform = unit();
    d.hang_uniform = unit();
    double ms = b.median_ms;
    if (b.p99_ms > b.median_ms && b.median_ms > 0) {
      // Log-normal: ln(latency) ~ N(ln median, sigma), with the 99th percentile at z = 2.3263.
      const double sigma = std::log(b.p99_ms / b.median_ms) / 2.326347874;
      const double u1 = std::max(unit(), 1e-300);
      const double u2 = unit();
      const double z = std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
      ms = b.median_ms * std::exp(sigma * z);
    }
    d.latency = std::chrono::duration_cast<clock::duration>(
        std::chrono::duration<double, std::milli>{std::min(ms, 3'600'000.0)});
  }
  return d;
}

task<http::response> upstream_sim::serve(std::string id) {
  stats_.requests.fetch_add(1, std::memory_order_relaxed);
  stats_.in_flight.fetch_add(1, std::memory_order_relaxed);
  const auto leave = [](std::atomic<std::uint64_t>* n) {
    n->fetch_sub(1, std::memory_order_relaxed);
  };
  const std::unique_ptr<std::atomic<std::uint64_t>, decltype(leave)> in_flight(&stats_.in_flight,
                                                                               leave);
  const upstream_behaviour b = behaviour();
  if (b.outage) {
    stats_.outages.fetch_add(1, std::memory_order_relaxed);
    co_await weft::sleep_for(std::chrono::milliseconds{1});
    co_return http::response::json(R"({"error":"down for maintenance"})", 503)
        .set_header("Retry-After", std::to_string(b.retry_after_s));
  }
  const draw d = sample(b);
  if (d.hang_uniform < b.hang_rate) {
    stats_.hangs.fetch_add(1, std::memory_order_relaxed);
    co_await weft::sleep_for(std::chrono::duration_cast<clock::duration>(
        std::chrono::duration<double, std::milli>{b.hang_ms}));
  } else {
    co_await weft::sleep_for(d.latency);
  }
  if (d.uniform < b.error_rate) {
    stats_.errors.fetch_add(1, std::memory_order_relaxed);
    co_return http::response::json(R"({"error":"internal error"})", 500);
  }
  co_return http::response::json(upstream_body(kind_, id));
}

http::router upstream_sim::make_router() {
  http::router r;
  std::string pattern{"/"};
  pattern.append(to_string(kind_)).append("/{id}");
  r.get(pattern, [this](http::request& req) { return serve(std::string{req.param("id")}); });
  r.get("/admin/behaviour", [this](http::request&) -> task<http::response> {
    co_return http::response::json(to_json(behaviour()));
  });
  r.post("/admin/behaviour", [this](http::request& req) -> task<http::response> {
    const std::string form = co_await req.body().text();
    upstream_behaviour next;
    try {
      next = update(form);
    } catch (const std::invalid_argument& e) {
      throw http::error{400, e.what()};
    }
    co_return http::response::json(to_json(next));
  });
  return r;
}

}  // namespace weft::gateway
