// The core of the showcase gateway, as the README quotes it (abridged from
// tools/weft-gateway/gateway.cpp): a price voted by two of three hedged replicas, and a product
// page that asks inventory, pricing and reviews at once within a deadline. Here the upstreams
// are coroutines with fixed latencies under paused time, so every run is exact and instant;
// main() checks the answer, the timing, the cancelled straggler, a disagreement and a missed
// deadline, and exits non-zero if one is wrong. The test suite runs this program.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;
using weft::task;

namespace {

struct gateway_policy {
  weft::clock::duration request_deadline = 100ms;
};
gateway_policy policy;

struct product {
  std::string stock;
  std::string price;
  std::string ratings;
};

// One pricing replica: how long it takes, what it answers, and whether its first request hangs
// (the hedge then asks again).
struct replica_behaviour {
  weft::clock::duration latency = 5ms;
  std::string price = "9.99";
  bool first_request_hangs = false;
};
std::array<replica_behaviour, 3> replicas;
std::array<int, 3> requests{};  // requests each replica received
int live_requests = 0;          // requests running now (one worker: no lock needed)
weft::clock::duration reviews_latency = 30ms;

// Counts a request as live for as long as its frame exists: cancelled ones included.
struct live_request {
  live_request() { ++live_requests; }
  ~live_request() { --live_requests; }
  live_request(const live_request&) = delete;
  live_request& operator=(const live_request&) = delete;
};

task<std::string> ask(std::size_t replica, std::string id) {
  const live_request live;
  const replica_behaviour& r = replicas[replica];
  const int n = ++requests[replica];
  if (n == 1 && r.first_request_hangs) co_await weft::sleep_for(1h);
  co_await weft::sleep_for(r.latency);
  co_return r.price + " for " + id;
}

constexpr auto hedge_delay = 20ms;

task<std::string> ask_later(std::size_t replica, std::string id) {
  co_await weft::sleep_for(hedge_delay);
  co_return co_await ask(replica, std::move(id));
}

// A hedged call: a second request when the first has not answered within hedge_delay; the
// first answer wins and the other request is cancelled.
task<std::string> price_from(std::size_t replica, std::string id) {
  auto first = co_await weft::when_any(ask(replica, id), ask_later(replica, id));
  co_return std::move(first.result).value();
}

task<std::string> inventory(std::string id) {
  co_await weft::sleep_for(10ms);
  co_return "12 of " + id + " in stock";
}

task<std::string> reviews(std::string id) {
  co_await weft::sleep_for(reviews_latency);
  co_return "4.5 stars for " + id;
}

// clang-format off
// [readme:gateway_core]
// Two of the three replicas must answer, and agree; each call is hedged.
task<std::string> pricing(std::string id) {
  std::vector<task<std::string>> calls;
  for (std::size_t i = 0; i < 3; ++i) calls.push_back(price_from(i, id));
  auto votes = co_await weft::majority(std::move(calls));  // the third is cancelled
  if (votes[0].value != votes[1].value) throw std::runtime_error("pricing replicas disagree");
  co_return std::move(votes[0].value);
}

// GET /product/{id}: all three at once, within the request's deadline.
task<product> get_product(std::string id) {
  auto [stock, price, ratings] = co_await weft::timeout(
      policy.request_deadline, weft::when_all(inventory(id), pricing(id), reviews(id)));
  co_return product{std::move(stock), std::move(price), std::move(ratings)};
}
// [/readme:gateway_core]
// clang-format on

bool check(bool ok, const char* what) {
  std::printf("%s  %s\n", ok ? "  ok" : "FAIL", what);
  return ok;
}

void reset() {
  replicas = {};
  requests = {};
  reviews_latency = 30ms;
}

task<bool> run() {
  bool ok = true;
  {
    // Replica 1's first request hangs: its hedge answers at 20 + 5 ms. Replica 2 is slow: it
    // is the third, cancelled once 0 and 1 agreed.
    reset();
    replicas[1].first_request_hangs = true;
    replicas[2].latency = 1s;
    const auto start = weft::clock::now();
    const product p = co_await get_product("42");
    const auto took = weft::clock::now() - start;
    ok &= check(p.stock == "12 of 42 in stock" && p.price == "9.99 for 42" &&
                    p.ratings == "4.5 stars for 42",
                "the product page has all three answers");
    ok &= check(took == 30ms, "it took as long as the slowest of the three (reviews, 30 ms)");
    ok &= check(requests[0] == 1 && requests[1] == 2 && requests[2] == 2,
                "replicas 1 and 2, late after 20 ms, were asked a second time");
    ok &= check(live_requests == 0, "no request outlives the call: the losers were cancelled");
  }
  {
    reset();
    replicas[1].price = "8.99";
    replicas[2].latency = 1s;
    bool disagreed = false;
    try {
      (void)co_await get_product("42");
    } catch (const std::runtime_error& e) {
      disagreed = std::string{e.what()} == "pricing replicas disagree";
    }
    ok &= check(disagreed, "replicas that disagree fail the page");
    ok &= check(live_requests == 0, "... and leave no request running");
  }
  {
    reset();
    reviews_latency = 1s;
    const auto start = weft::clock::now();
    bool timed_out = false;
    try {
      (void)co_await get_product("42");
    } catch (const weft::timed_out&) {
      timed_out = true;
    }
    ok &= check(timed_out && weft::clock::now() - start == policy.request_deadline,
                "a slow upstream: timed_out at the request's deadline");
    ok &= check(live_requests == 0, "... once every call has stopped");
  }
  co_return ok;
}

}  // namespace

int main() {
  weft::runtime rt{weft::runtime_options{.time = weft::time_mode::paused}};
  const bool ok = rt.block_on(run());
  std::printf("%s\n", ok ? "gateway_core: ok" : "gateway_core: FAILED");
  return ok ? 0 : 1;
}
