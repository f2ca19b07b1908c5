// A staged pipeline with weft::flow (docs/flow.md): validate → transform → persist, with
// concurrency 5, 3 and 2, over 20,000 generated records. Invalid records are dropped and counted;
// records the store refuses go to a dead-letter list. The stages' latencies are simulated with
// sleeps under paused time, so the run is exact and takes no real time; the program checks its
// results and prints the per-stage counters.
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/flow/pipeline.hpp>
#include <weft/weft.hpp>

using namespace std::chrono_literals;
namespace flow = weft::flow;

struct record {
  int id = 0;
  std::string payload;
};

struct row {
  int id = 0;
  std::string json;
};

// The input: a large dataset, produced lazily (the pipeline pulls as it has room).
weft::async_generator<record> generate(int n) {
  for (int i = 0; i < n; ++i) {
    record r;  // named, not braced inside the co_yield (g++ 12 mis-destroys those)
    r.id = i;
    if (i % 100 != 0) r.payload = "payload-" + std::to_string(i);
    co_yield std::move(r);
  }
}

weft::task<record> validate(record r) {
  co_await weft::sleep_for(1ms);
  if (r.payload.empty()) throw std::invalid_argument("record " + std::to_string(r.id) + ": empty");
  co_return r;
}

weft::task<row> transform(record r) {
  co_await weft::sleep_for(2ms);
  row out;
  out.id = r.id;
  out.json = "{\"id\":" + std::to_string(r.id) + ",\"p\":\"" + r.payload + "\"}";
  co_return out;
}

weft::task<int> persist(row r) {
  co_await weft::sleep_for(3ms);
  if (r.id % 1000 == 999) throw std::runtime_error("store refused row " + std::to_string(r.id));
  co_return r.id;
}

int main() {
  weft::runtime rt{weft::runtime_options{.time = weft::time_mode::paused}};
  constexpr int n = 20'000;
  std::vector<flow::dead_letter> refused;
  auto p = flow::from_generator(generate(n))
               .stage({.name = "validate", .concurrency = 5,
                       .on_failure = flow::failure_policy::drop},
                      validate)
               .stage({.name = "transform", .concurrency = 3}, transform)
               .stage({.name = "persist", .concurrency = 2,
                       .on_failure = flow::failure_policy::dead_letter},
                      persist)
               .dead_letters([&](flow::dead_letter d) { refused.push_back(std::move(d)); });
  const flow::pipeline_stats stats = p.stats();
  const auto start = rt.now();
  const int stored = rt.block_on([&]() -> weft::task<int> {
    auto out = std::move(p).run();
    int count = 0;
    int last = -1;
    while (auto id = co_await out.next()) {
      if (*id <= last) throw std::logic_error("the output lost the input's order");
      last = *id;
      ++count;
    }
    co_return count;
  });
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(rt.now() - start);

  const flow::pipeline_snapshot s = stats.snapshot();
  for (const auto& st : s.stages) {
    std::printf("%-9s concurrency %zu (max seen %zu): in %llu, out %llu, dropped %llu, "
                "dead-lettered %llu\n",
                st.name.c_str(), st.concurrency, st.max_in_flight,
                static_cast<unsigned long long>(st.in), static_cast<unsigned long long>(st.out),
                static_cast<unsigned long long>(st.dropped),
                static_cast<unsigned long long>(st.dead_lettered));
  }
  std::printf("%d stored, %zu dead letters, %lld ms of pipeline time\n", stored, refused.size(),
              static_cast<long long>(took.count()));
  // 1 in 100 records is invalid; 1 in 1000 of the valid ones (ids ending in 999) is refused.
  const int invalid = n / 100;
  const int refused_want = n / 1000;
  const bool ok = stored == n - invalid - refused_want &&
                  static_cast<int>(refused.size()) == refused_want && s.consistent() &&
                  s.stages[0].max_in_flight == 5 && s.stages[1].max_in_flight == 3 &&
                  s.stages[2].max_in_flight == 2;
  // The slowest stage bounds the run: persist, 2 at a time for 3 ms each.
  return ok && took.count() >= (n - invalid) / 2 * 3 ? 0 : 1;
}
