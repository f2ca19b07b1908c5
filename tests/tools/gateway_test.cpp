// weft-gateway's resilience behaviour under paused time with in-process upstreams: answers,
// majority, hedging, fallback to stale or empty reviews, the breaker opening and closing at exact
// instants, deadlines, and /metrics.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <weft/combinators/when_all.hpp>
#include <weft/http/error.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>

#include <weft/cancel/cancel_token.hpp>
#include <weft/http/client.hpp>
#include <weft/http/server.hpp>
#include <weft/net/tcp_listener.hpp>

#include "exposition_check.hpp"
#include "gateway.hpp"
#include "upstream.hpp"

namespace {

using namespace std::chrono_literals;
using weft::gateway::gateway;
using weft::gateway::upstream_behaviour;
using weft::gateway::upstream_kind;
using weft::gateway::upstream_sim;
namespace wr = weft::resilience;

upstream_behaviour exact(double ms) {
  upstream_behaviour b;
  b.median_ms = ms;
  b.p99_ms = ms;
  return b;
}

// The five upstreams in process, with exact latencies, and the URLs and fetch function that reach
// them without sockets.
struct in_process_upstreams {
  upstream_sim inventory, pricing1, pricing2, pricing3, reviews;

  in_process_upstreams(double inventory_ms, double pricing_ms, double reviews_ms)
      : inventory{"inventory", upstream_kind::inventory, exact(inventory_ms)},
        pricing1{"pricing-1", upstream_kind::pricing, exact(pricing_ms)},
        pricing2{"pricing-2", upstream_kind::pricing, exact(pricing_ms)},
        pricing3{"pricing-3", upstream_kind::pricing, exact(pricing_ms)},
        reviews{"reviews", upstream_kind::reviews, exact(reviews_ms)} {}

  static weft::gateway::upstream_urls urls() {
    weft::gateway::upstream_urls u;
    u.inventory = "http://inventory";
    u.pricing = {"http://pricing-1", "http://pricing-2", "http://pricing-3"};
    u.reviews = "http://reviews";
    return u;
  }
  weft::gateway::fetch_fn fetch() {
    return weft::gateway::in_process_fetch({&inventory, &pricing1, &pricing2, &pricing3, &reviews});
  }
};

// The upstreams (inventory 4 ms, pricing 5 ms, reviews 3 ms) and a gateway over them, on a paused
// runtime. The upstreams come first and the gateway before the runtime, so that the runtime (and
// the cache refreshes it runs) ends first.
struct fixture : in_process_upstreams {
  std::optional<gateway> gw;
  weft::runtime rt{weft::runtime_options{.time = weft::time_mode::paused}};

  explicit fixture(weft::gateway::gateway_policy policy = {}) : in_process_upstreams(4, 5, 3) {
    gw.emplace(urls(), fetch(), policy);
  }
};

// What one request came back with, and when (ms after it was sent).
struct answer {
  int status = 0;
  std::string outcome;
  std::string degraded;
  std::string body;
  long ms = -1;
};

weft::task<answer> ask(gateway& gw, std::string id) {
  const auto start = weft::clock::now();
  answer a;
  auto r = co_await gw.product(std::move(id));
  a.status = r.status();
  a.outcome = std::string{r.header("X-Weft-Outcome").value_or("")};
  a.degraded = std::string{r.header("X-Weft-Degraded").value_or("")};
  a.body = std::string{r.body()};
  a.ms = std::chrono::duration_cast<std::chrono::milliseconds>(weft::clock::now() - start).count();
  co_return a;
}

std::string body_of(upstream_kind k, const std::string& id) {
  return weft::gateway::upstream_body(k, id);
}

TEST(Gateway, HealthyAnswerCombinesAllThreeAtTheSlowestMajority) {
  fixture f;
  const answer a = f.rt.block_on(ask(*f.gw, "42"));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.outcome, "ok");
  EXPECT_EQ(a.degraded, "");
  EXPECT_EQ(a.ms, 5);  // inventory 4 ms, pricing 5 ms (two of three), reviews 3 ms, in parallel
  EXPECT_NE(a.body.find(body_of(upstream_kind::inventory, "42")), std::string::npos) << a.body;
  EXPECT_NE(a.body.find(body_of(upstream_kind::pricing, "42")), std::string::npos) << a.body;
  EXPECT_NE(a.body.find(body_of(upstream_kind::reviews, "42")), std::string::npos) << a.body;
  EXPECT_NE(a.body.find(R"("degraded":null)"), std::string::npos) << a.body;
  EXPECT_EQ(f.gw->answered_ok(), 1u);
}

TEST(Gateway, MajorityAnswersWithoutAHungReplicaAndCancelsIt) {
  fixture f;
  upstream_behaviour hung = exact(5);
  hung.hang_rate = 1;
  f.pricing3.set_behaviour(hung);
  const answer a = f.rt.block_on(ask(*f.gw, "7"));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.outcome, "ok");
  EXPECT_EQ(a.ms, 5);
  EXPECT_EQ(f.pricing3.stats().hangs.load(), 1u);
  // The hung call was cancelled when the majority was reached: nothing of it is left running.
  EXPECT_EQ(f.pricing3.stats().in_flight.load(), 0u);
}

TEST(Gateway, TwoFailingReplicasFailTheRequestWith503) {
  fixture f;
  upstream_behaviour broken = exact(5);
  broken.error_rate = 1;
  f.pricing1.set_behaviour(broken);
  f.pricing2.set_behaviour(broken);
  const answer a = f.rt.block_on(ask(*f.gw, "7"));
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.outcome, "failed");
  EXPECT_NE(a.body.find("quorum"), std::string::npos) << a.body;
  EXPECT_EQ(f.gw->answered_failed(), 1u);
  // Each failing replica was tried max_attempts (3) times (a 500 is retried), and each attempt
  // launched its hedge at once on the failure: 6 requests.
  EXPECT_EQ(f.pricing1.stats().requests.load(), 6u);
  EXPECT_EQ(f.gw->counters("pricing-1").retries.load(), 2u);
  EXPECT_EQ(f.gw->counters("pricing-1").hedges.load(), 3u);
}

TEST(Gateway, SlowReplicasAreHedgedAfterTheColdStartDelay) {
  fixture f;
  for (auto* p : {&f.pricing1, &f.pricing2, &f.pricing3}) p->set_behaviour(exact(100));
  const answer a = f.rt.block_on(ask(*f.gw, "9"));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.ms, 100);  // the primaries answer first: hedges started at 30 ms end at 130 ms
  for (const char* name : {"pricing-1", "pricing-2"}) {
    EXPECT_EQ(f.gw->counters(name).hedges.load(), 1u) << name;
  }
  // pricing-3 also hedged at 30 ms (launched before the majority came at 100 ms).
  EXPECT_EQ(f.pricing3.stats().requests.load(), 2u);
}

TEST(Gateway, ReviewsOutageServesTheStaleEntryThenAnEmptyListForUncachedIds) {
  fixture f;
  f.rt.block_on([](fixture& f) -> weft::task<void> {
    const answer fresh = co_await ask(*f.gw, "1");
    EXPECT_EQ(fresh.outcome, "ok");
    upstream_behaviour down = exact(3);
    down.outage = true;
    f.reviews.set_behaviour(down);
    co_await weft::sleep_for(2s);  // past the 1 s ttl, within the stale window
    const answer stale = co_await ask(*f.gw, "1");
    EXPECT_EQ(stale.status, 200);
    EXPECT_EQ(stale.outcome, "degraded");
    EXPECT_EQ(stale.degraded, "reviews-stale");
    EXPECT_NE(stale.body.find(body_of(upstream_kind::reviews, "1")), std::string::npos);
    EXPECT_EQ(stale.ms, 5);  // served at once; the refresh fails in the background

    const answer empty = co_await ask(*f.gw, "2");
    EXPECT_EQ(empty.status, 200);
    EXPECT_EQ(empty.degraded, "reviews-empty");
    EXPECT_NE(empty.body.find(R"("reviews":{"reviews":[]})"), std::string::npos) << empty.body;
    // The 503 came after 1 ms with Retry-After: 1 s, past the 250 ms reviews budget, so the
    // retry gave up at once and the fallback answered: the answer waits only for pricing.
    EXPECT_EQ(empty.ms, 5);
  }(f));
  EXPECT_EQ(f.gw->answered_degraded(), 2u);
}

TEST(Gateway, HealthyReviewsPastTheirTtlAreRefreshedNotServedStale) {
  fixture f;
  f.rt.block_on([](fixture& f) -> weft::task<void> {
    (void)co_await ask(*f.gw, "1");
    const auto calls = f.reviews.stats().requests.load();
    const answer cached = co_await ask(*f.gw, "1");  // within the 1 s ttl: from the cache
    EXPECT_EQ(cached.outcome, "ok");
    EXPECT_EQ(f.reviews.stats().requests.load(), calls);
    co_await weft::sleep_for(2s);
    const answer refreshed = co_await ask(*f.gw, "1");  // past it: refreshed, and fresh
    EXPECT_EQ(refreshed.outcome, "ok");
    EXPECT_EQ(refreshed.degraded, "");
    EXPECT_EQ(f.reviews.stats().requests.load(), calls + 1);
  }(f));
}

TEST(Gateway, ReviewsBreakerOpensOnItsTwentiethFailureAndClosesAfterRecovery) {
  fixture f;
  f.rt.block_on([](fixture& f) -> weft::task<void> {
    upstream_behaviour down = exact(3);
    down.outage = true;
    f.reviews.set_behaviour(down);
    // Distinct ids: every request misses the cache and calls reviews once (no retries: the
    // Retry-After of 1 s is past the call's budget).
    for (int i = 0; i < 19; ++i) co_await ask(*f.gw, "a" + std::to_string(i));
    EXPECT_EQ(f.gw->breaker("reviews"), wr::breaker_state::closed);
    const auto opened_at = weft::clock::now();
    co_await ask(*f.gw, "a19");
    EXPECT_EQ(f.gw->breaker("reviews"), wr::breaker_state::open);
    EXPECT_EQ(f.reviews.stats().requests.load(), 20u);
    // Open: the next call is refused without reaching reviews, and the fallback answers.
    const answer refused = co_await ask(*f.gw, "b0");
    EXPECT_EQ(refused.degraded, "reviews-empty");
    EXPECT_EQ(f.reviews.stats().requests.load(), 20u);
    EXPECT_EQ(f.gw->counters("reviews").rejections.load(), 1u);
    // The reviews call failed 1 ms after the request started, so the breaker opened at +1 ms;
    // half-open exactly 2 s later.
    co_await weft::sleep_until(opened_at + 1ms + 2s - 1ns);
    EXPECT_EQ(f.gw->breaker("reviews"), wr::breaker_state::open);
    co_await weft::sleep_for(1ns);
    EXPECT_EQ(f.gw->breaker("reviews"), wr::breaker_state::half_open);
    f.reviews.set_behaviour(exact(3));
    for (int i = 0; i < 3; ++i) {
      const answer a = co_await ask(*f.gw, "c" + std::to_string(i));
      EXPECT_EQ(a.outcome, "ok");
    }
    EXPECT_EQ(f.gw->breaker("reviews"), wr::breaker_state::closed);
  }(f));
}

TEST(Gateway, HungInventoryFailsAtTheCallTimeout) {
  fixture f;
  upstream_behaviour hung = exact(4);
  hung.hang_rate = 1;
  f.inventory.set_behaviour(hung);
  const answer a = f.rt.block_on(ask(*f.gw, "5"));
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.ms, 600);  // the 600 ms budget of the call, its retries included
  EXPECT_NE(a.body.find("inventory"), std::string::npos) << a.body;
  EXPECT_GE(f.gw->counters("inventory").timeouts.load(), 1u);
}

TEST(Gateway, RequestDeadlineAnswers504) {
  weft::gateway::gateway_policy policy;
  policy.request_deadline = 300ms;
  policy.call_timeout = 2s;
  policy.attempt_timeout = 1s;
  fixture f{policy};
  upstream_behaviour slow = exact(800);
  f.inventory.set_behaviour(slow);
  const answer a = f.rt.block_on(ask(*f.gw, "5"));
  EXPECT_EQ(a.status, 504);
  EXPECT_EQ(a.ms, 300);
  EXPECT_EQ(f.inventory.stats().in_flight.load(), 0u);
}

TEST(Gateway, MalformedIdIs400) {
  fixture f;
  for (const char* id : {"", "a/b", "x y", "\"quote"}) {
    try {
      f.rt.block_on(ask(*f.gw, id));
      ADD_FAILURE() << "no error for '" << id << "'";
    } catch (const weft::http::error& e) {
      EXPECT_EQ(e.status(), 400);
    }
  }
  EXPECT_THROW(f.rt.block_on(ask(*f.gw, std::string(65, 'a'))), weft::http::error);
}

TEST(Gateway, UnknownUpstreamIsRefusedAndCountsAsAFailure) {
  fixture f;
  weft::gateway::upstream_urls urls = in_process_upstreams::urls();
  urls.inventory = "http://nowhere";  // no upstream of that name
  gateway g{urls, f.fetch()};
  const answer a = f.rt.block_on(ask(g, "3"));
  EXPECT_EQ(a.status, 503);
  EXPECT_NE(a.body.find("inventory"), std::string::npos) << a.body;
}

TEST(Gateway, MetricsNameEveryUpstreamAndCountOutcomes) {
  fixture f;
  f.rt.block_on(ask(*f.gw, "42"));
  const std::string page = f.gw->metrics_text(f.rt);
  EXPECT_NE(page.find("weft_gateway_requests_total{outcome=\"ok\"} 1\n"), std::string::npos);
  for (auto name : weft::gateway::upstream_names) {
    EXPECT_NE(page.find("weft_gateway_breaker_state{upstream=\"" + std::string{name} + "\"} 0"),
              std::string::npos)
        << name;
  }
  EXPECT_NE(page.find("weft_worker_resumptions_total"), std::string::npos);
  EXPECT_NE(page.find("weft_resilience_events_total"), std::string::npos);
  EXPECT_NE(page.find("process_open_fds "), std::string::npos);
}

// The router over real sockets: products, /metrics as valid Prometheus text, /healthz turning
// 503 once draining, a malformed id, and the upstream admin endpoint.
TEST(GatewayRouter, ServesProductsMetricsAndHealthzOverHttp) {
  in_process_upstreams up{1, 1, 1};
  gateway gw{in_process_upstreams::urls(), up.fetch()};
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  ASSERT_TRUE(rt.io_available()) << rt.io_error();
  weft::http::server srv{gw.make_router(rt)};
  weft::http::server admin{up.reviews.make_router()};
  auto listener = weft::net::tcp_listener::bind(weft::net::socket_address::parse("127.0.0.1:0"));
  auto admin_listener =
      weft::net::tcp_listener::bind(weft::net::socket_address::parse("127.0.0.1:0"));
  const std::string base = "http://" + listener.local_address().to_string();
  const std::string admin_base = "http://" + admin_listener.local_address().to_string();
  rt.block_on([](weft::http::server& srv, weft::http::server& admin,
                 weft::net::tcp_listener& listener, weft::net::tcp_listener& admin_listener,
                 gateway& gw, const std::string& base,
                 const std::string& admin_base) -> weft::task<void> {
    weft::cancel_source stop;
    auto serving = weft::spawn(srv.serve(listener, stop.token()));
    auto admin_serving = weft::spawn(admin.serve(admin_listener, stop.token()));
    {
      weft::http::client c;
      const auto product = co_await c.get(base + "/product/42");
      EXPECT_EQ(product.status, 200);
      EXPECT_EQ(product.header("X-Weft-Outcome").value_or(""), "ok");
      const auto bad = co_await c.get(base + "/product/a%20b");
      EXPECT_EQ(bad.status, 400);
      const auto metrics = co_await c.get(base + "/metrics");
      EXPECT_EQ(metrics.status, 200);
      EXPECT_EQ(metrics.header("Content-Type").value_or(""),
                "text/plain; version=0.0.4; charset=utf-8");
      const auto problems = weft::gateway::check_exposition(metrics.body);
      EXPECT_TRUE(problems.empty()) << problems.front();
      const auto samples = weft::gateway::parse_exposition(metrics.body);
      EXPECT_EQ(weft::gateway::sum_of(samples, "weft_gateway_requests_total", {{"outcome", "ok"}}),
                1.0);
      EXPECT_EQ((co_await c.get(base + "/healthz")).status, 200);
      gw.start_draining();
      EXPECT_EQ((co_await c.get(base + "/healthz")).status, 503);

      weft::http::client_request change;
      change.method = "POST";
      change.url = admin_base + "/admin/behaviour";
      change.body = "outage=1";
      const auto changed = co_await c.request(std::move(change));
      EXPECT_EQ(changed.status, 200);
      EXPECT_NE(changed.body.find(R"("outage":true)"), std::string::npos) << changed.body;
      weft::http::client_request wrong;
      wrong.method = "POST";
      wrong.url = admin_base + "/admin/behaviour";
      wrong.body = "colour=blue";
      const auto refused = co_await c.request(std::move(wrong));
      EXPECT_EQ(refused.status, 400);
      const auto now = co_await c.get(admin_base + "/admin/behaviour");
      EXPECT_NE(now.body.find(R"("outage":true)"), std::string::npos)
          << "the bad form changed nothing";
    }
    stop.request_cancellation();
    co_await serving;
    co_await admin_serving;
  }(srv, admin, listener, admin_listener, gw, base, admin_base));
  EXPECT_TRUE(up.reviews.behaviour().outage);
}

// Many requests at once on two workers while faults come and go: every one is answered, the
// counters add up, and (under ThreadSanitizer) nothing races.
TEST(GatewayStress, ConcurrentRequestsOnTwoWorkersWhileFaultsChange) {
  in_process_upstreams up{0.2, 0.2, 0.2};
  std::optional<gateway> gw;
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  weft::gateway::gateway_policy policy;
  policy.reviews_ttl = 1ms;  // every round refreshes: the outage rounds are seen
  gw.emplace(in_process_upstreams::urls(), up.fetch(), policy);
  constexpr int rounds = 8, per_round = 250;
  int statuses[2] = {0, 0};  // 200, other
  rt.block_on([](gateway& gw, upstream_sim& p3, upstream_sim& reviews,
                 int(&statuses)[2]) -> weft::task<void> {
    for (int round = 0; round < rounds; ++round) {
      // Faults change between rounds: reviews down on odd rounds, pricing-3 hanging on every
      // third.
      upstream_behaviour r = exact(0.2);
      r.outage = round % 2 == 1;
      reviews.set_behaviour(r);
      upstream_behaviour h = exact(0.2);
      h.hang_rate = round % 3 == 2 ? 1 : 0;
      h.hang_ms = 50;
      p3.set_behaviour(h);
      std::vector<weft::task<weft::http::response>> batch;
      for (int i = 0; i < per_round; ++i) {
        batch.push_back(gw.product(std::to_string((round * per_round + i) % 97)));
      }
      auto answers = co_await weft::when_all(std::move(batch));
      for (const auto& a : answers) ++statuses[a.status() == 200 ? 0 : 1];
    }
  }(*gw, up.pricing3, up.reviews, statuses));
  EXPECT_EQ(statuses[0], rounds * per_round) << statuses[1] << " answers were not 200";
  EXPECT_EQ(gw->answered_ok() + gw->answered_degraded() + gw->answered_failed(),
            static_cast<std::uint64_t>(rounds * per_round));
  EXPECT_GT(gw->answered_degraded(), 0u);
  EXPECT_EQ(up.inventory.stats().in_flight.load() + up.pricing3.stats().in_flight.load(), 0u);
}

TEST(Upstream, FormChangesOnlyTheKeysGivenAndRefusesBadInput) {
  upstream_behaviour b = weft::gateway::apply_form({}, "median_ms=250&p99_ms=1200&outage=1");
  EXPECT_EQ(b.median_ms, 250);
  EXPECT_EQ(b.p99_ms, 1200);
  EXPECT_TRUE(b.outage);
  EXPECT_EQ(b.error_rate, 0);
  b = weft::gateway::apply_form(b, "outage=0");
  EXPECT_FALSE(b.outage);
  EXPECT_EQ(b.median_ms, 250);
  EXPECT_THROW(weft::gateway::apply_form(b, "colour=3"), std::invalid_argument);
  EXPECT_THROW(weft::gateway::apply_form(b, "error_rate=2"), std::invalid_argument);
  EXPECT_THROW(weft::gateway::apply_form(b, "median_ms=-1"), std::invalid_argument);
  EXPECT_THROW(weft::gateway::apply_form(b, "median_ms=abc"), std::invalid_argument);
  EXPECT_THROW(weft::gateway::apply_form(b, "median_ms=2000"), std::invalid_argument);  // > p99
  EXPECT_THROW(weft::gateway::apply_form(b, "novalue"), std::invalid_argument);
}

TEST(Upstream, LatencyIsLogNormalWithTheGivenMedianAndP99) {
  upstream_behaviour b;
  b.median_ms = 10;
  b.p99_ms = 100;
  upstream_sim sim{"inventory", upstream_kind::inventory, b, 3};
  weft::runtime rt{weft::runtime_options{.time = weft::time_mode::paused}};
  std::vector<long> us;
  rt.block_on([](upstream_sim& sim, std::vector<long>& us) -> weft::task<void> {
    for (int i = 0; i < 4000; ++i) {
      const auto start = weft::clock::now();
      co_await sim.serve("1");
      us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(weft::clock::now() - start)
                       .count());
    }
  }(sim, us));
  std::sort(us.begin(), us.end());
  const double median = static_cast<double>(us[us.size() / 2]) / 1000;
  const double p99 = static_cast<double>(us[us.size() * 99 / 100]) / 1000;
  EXPECT_NEAR(median, 10, 1.0);
  EXPECT_NEAR(p99, 100, 20.0);
}

}  // namespace
