// An event processor with weft::flow (docs/flow.md): 30,000 order events over six seconds,
// delivered in batches to three simulated destinations. "analytics" is quick, "audit" slow, and
// "billing" is down from the first second to the fourth: its breaker opens, its batches wait,
// retry, and go to the dead-letter queue once they have waited too long. When billing is back,
// the dead letters are replayed; at the end the processor drains. Paused time makes the run
// exact and instant; the program prints the metrics watch every second and checks that every
// event was delivered exactly where it was sent.
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/flow/event_processor.hpp>
#include <weft/weft.hpp>

using namespace std::chrono_literals;
namespace flow = weft::flow;

struct order_event {
  int order = 0;
  std::string what;
};

// A destination: remembers which orders it received (ids, to drop the duplicates that
// at-least-once delivery allows), takes `latency` per batch, and fails while `down` says so.
struct service {
  std::string name{};
  weft::clock::duration latency{};
  std::function<bool()> down = [] { return false; };
  std::set<std::uint64_t> ids{};
  std::set<int> orders{};

  weft::task<void> deliver(std::span<const flow::envelope<order_event>> batch) {
    co_await weft::sleep_for(latency);
    if (down()) throw std::runtime_error(name + ": 503 Service Unavailable");
    for (const auto& e : batch) {
      if (ids.insert(e.id).second) orders.insert(e.payload.order);
    }
  }
};

flow::destination_options<order_event> destination(service& s) {
  // clang-format off
  // [readme:event_destination]
  flow::destination_options<order_event> d;
  d.name = s.name;
  d.deliver = [&s](std::span<const flow::envelope<order_event>> batch) { return s.deliver(batch); };
  d.batch_size = 100;                   // a batch goes at 100 events,
  d.flush_interval = 50ms;              // or when its oldest waited 50 ms
  d.concurrency = 2;                    // batches in delivery at once
  d.attempt_timeout = 1s;
  d.retry.max_attempts = 3;             // exponential backoff with full jitter
  d.retry.backoff = weft::resilience::backoff::exponential(50ms, 2.0, 1s);
  d.breaker.window = weft::resilience::window::consecutive(3);
  d.breaker.minimum_calls = 3;
  d.breaker.open_duration = 500ms;
  d.open_deadline = 1500ms;             // held that long by an open breaker: dead-lettered
  // [/readme:event_destination]
  // clang-format on
  return d;
}

void print(const flow::processor_metrics& m, long second) {
  std::printf("t=%lds accepted %6llu delivered %6llu dead-lettered %5llu backlog %5zu p99 %6.1f ms"
              " errors %3.0f%%",
              second, static_cast<unsigned long long>(m.accepted),
              static_cast<unsigned long long>(m.delivered),
              static_cast<unsigned long long>(m.dead_lettered), m.backlog,
              std::chrono::duration<double, std::milli>(m.latency_p99).count(),
              m.error_rate * 100);
  for (const auto& d : m.destinations) {
    const std::string breaker{weft::resilience::to_string(d.breaker)};
    std::printf("  %s:%s", d.name.c_str(), breaker.c_str());
  }
  std::printf("\n");
}

int main() {
  weft::runtime rt{weft::runtime_options{.time = weft::time_mode::paused}};
  const auto start = rt.now();
  service analytics{.name = "analytics", .latency = 2ms};
  service billing{.name = "billing", .latency = 10ms};
  service audit{.name = "audit", .latency = 40ms};
  billing.down = [&] {
    const auto t = weft::clock::now() - start;
    return t >= 1s && t < 4s;
  };

  // clang-format off
  // [readme:event_processor]
  flow::event_processor<order_event> events{{
      .destinations = {destination(analytics), destination(billing), destination(audit)},
      .max_backlog = 20'000,                  // events in flight, at most
      .policy = flow::backpressure::block,    // or reject, or shed_lowest
      .drain_grace = 2s,
      .metrics_interval = 1s,
  }};
  // [/readme:event_processor]
  // clang-format on
  const flow::destination_id to[] = {events.destination("analytics"),
                                     events.destination("billing"), events.destination("audit")};
  const int total = 30'000;
  std::map<flow::dead_letter_reason, int> reasons;
  std::size_t replayed = 0;

  rt.block_on([&]() -> weft::task<void> {
    // clang-format off
    // [readme:event_processor_run]
    weft::cancel_source stop;
    weft::task_group g;
    g.spawn(events.run(stop.token()));     // until stop: then drain
    g.spawn([&]() -> weft::task<void> {    // a dashboard
      auto rx = events.metrics().subscribe();
      long second = 0;
      while (auto m = co_await rx.changed()) print(*m, ++second);
      print(rx.get(), ++second);           // the final counters
    });
    // [/readme:event_processor_run]
    // clang-format on
    g.spawn([&]() -> weft::task<void> {  // replays once billing is back
      co_await weft::sleep_for(5s);
      for (auto& d : events.dead_letters().take()) {
        ++reasons[d.reason];
        events.dead_letters().push(std::move(d));
      }
      replayed = events.replay();
    });
    // Five orders a millisecond; each goes to one destination, billing events are high priority.
    for (int i = 0; i < total; ++i) {
      if (i % 5 == 0) co_await weft::sleep_for(1ms);
      const int k = i % 3;
      order_event e;
      e.order = i;
      e.what = "order placed";
      // clang-format off
      // [readme:event_processor_submit]
      co_await events.submit(std::move(e), to[k],
                             k == 1 ? flow::priority::high : flow::priority::medium);
      // [/readme:event_processor_submit]
      // clang-format on
    }
    co_await weft::sleep_for(1s);
    stop.request_cancellation();  // drain: intake closes, buffers flush
    co_await g.join();
  }());

  const auto m = events.snapshot();
  bool ok = m.consistent() && m.backlog == 0 && events.dead_letters().size() == 0;
  service* services[] = {&analytics, &billing, &audit};
  for (int k = 0; k < 3; ++k) {
    service* s = services[k];
    int expected = 0;
    bool all = true;
    for (int i = k; i < total; i += 3) {
      ++expected;
      all = all && s->orders.count(i) == 1;
    }
    std::printf("%s received %zu of %d orders\n", s->name.c_str(), s->orders.size(), expected);
    ok = ok && all && static_cast<int>(s->orders.size()) == expected;
  }
  std::printf("dead letters before the replay: %d retries exhausted, %d breaker open; "
              "replayed %zu\n",
              reasons[flow::dead_letter_reason::retries_exhausted],
              reasons[flow::dead_letter_reason::breaker_open], replayed);
  ok = ok && reasons[flow::dead_letter_reason::breaker_open] > 0 && replayed > 0;
  std::printf("%s\n", ok ? "event_processor: ok" : "event_processor: FAILED");
  return ok ? 0 : 1;
}
