// The stall detector, the runtime's Prometheus metrics, and seeded schedules with explore.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/testing/explore.hpp>
#include <weft/weft.hpp>

namespace {

using namespace std::chrono_literals;

template <class F>
bool eventually(F f) {
  for (int i = 0; i < 5000; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return f();
}

// ---------------------------------------------------------------------------------------------
// Stall detector

struct stall_log {
  std::mutex m;
  std::vector<weft::stall_report> reports;
  std::function<void(const weft::stall_report&)> hook() {
    return [this](const weft::stall_report& r) {
      std::lock_guard lock{m};
      reports.push_back(r);
    };
  }
  std::vector<weft::stall_report> get() {
    std::lock_guard lock{m};
    return reports;
  }
  /// A runtime whose stall reports go to this log.
  weft::runtime_options options(std::size_t workers, std::chrono::milliseconds threshold) {
    weft::runtime_options o;
    o.workers = workers;
    o.stall_threshold = threshold;
    o.on_stall = hook();
    return o;
  }
};

weft::task<void> block_for(std::chrono::milliseconds d) {
  std::this_thread::sleep_for(d);  // a blocking call inside a task: what the detector is for
  co_return;
}

TEST(StallDetector, ReportsATaskThatBlocksWithinTwiceTheThresholdOnceAndItsEnd) {
  stall_log log;
  weft::runtime rt{log.options(2, 100ms)};
  const int spawn_line = __LINE__ + 1;
  auto h = rt.spawn(block_for(300ms), {.name = "blocker"});
  const std::uint64_t id = h.id();
  rt.block_on([&]() -> weft::task<void> { co_await h; });
  ASSERT_TRUE(eventually([&] { return log.get().size() >= 2; }));
  std::this_thread::sleep_for(150ms);  // nothing more comes
  const auto reports = log.get();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_FALSE(reports[0].ended);
  EXPECT_GE(reports[0].elapsed, 100ms);
  EXPECT_LT(reports[0].elapsed, 200ms) << "noticed within twice the threshold";
  EXPECT_EQ(reports[0].task_id, id);
  EXPECT_EQ(reports[0].task_name, "blocker");
  EXPECT_NE(reports[0].spawned_at.find("observability_test.cpp:" + std::to_string(spawn_line)),
            std::string::npos)
      << reports[0].spawned_at;
  EXPECT_TRUE(reports[1].ended);
  EXPECT_EQ(reports[1].task_id, id);
  EXPECT_EQ(reports[1].worker, reports[0].worker);
  EXPECT_GE(reports[1].elapsed, 250ms);  // 300 ms, less at most one sampling period
  EXPECT_EQ(rt.stats().workers[reports[0].worker].stalls, 1u);
  const std::string line = weft::to_string(reports[0]);
  EXPECT_NE(line.find("task " + std::to_string(id) + " \"blocker\""), std::string::npos) << line;
}

TEST(StallDetector, ReportsNothingForABusyRuntimeWhoseTasksYield) {
  stall_log log;
  weft::runtime rt{log.options(2, 100ms)};
  const auto until = std::chrono::steady_clock::now() + 400ms;
  auto busy = [until]() -> weft::task<void> {
    while (std::chrono::steady_clock::now() < until) co_await weft::yield();
  };
  rt.block_on([&]() -> weft::task<void> {
    weft::task_group g;
    for (int i = 0; i < 4; ++i) g.spawn(busy);
    co_await g.join();
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(log.get().empty());
}

TEST(StallDetector, OffWithAZeroThreshold) {
  stall_log log;
  weft::runtime rt{log.options(1, 0ms)};
  rt.block_on(block_for(150ms));
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(log.get().empty());
}

TEST(StallDetector, ANegativeThresholdIsRefused) {
  weft::runtime_options o;
  o.stall_threshold = -1ms;
  EXPECT_THROW(weft::runtime{o}, std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// A strict enough reader of the text exposition format for these checks.
struct exposition {
  std::map<std::string, std::string> types, helps;
  std::vector<std::pair<std::string, double>> samples;  // full series text, value
  std::string error;

  explicit exposition(const std::string& text) {
    std::istringstream in{text};
    std::string line, family;
    while (std::getline(in, line)) {
      if (line.rfind("# HELP ", 0) == 0) {
        const auto name = line.substr(7, line.find(' ', 7) - 7);
        if (helps.count(name)) error += "two HELP lines for " + name + "\n";
        helps[name] = line;
        family = name;
      } else if (line.rfind("# TYPE ", 0) == 0) {
        const auto rest = line.substr(7);
        const auto name = rest.substr(0, rest.find(' '));
        if (types.count(name)) error += "two TYPE lines for " + name + "\n";
        types[name] = rest.substr(rest.find(' ') + 1);
        if (name != family) error += "TYPE without HELP first: " + name + "\n";
      } else if (!line.empty()) {
        const auto space = line.rfind(' ');
        const auto series = line.substr(0, space);
        const auto name = series.substr(0, series.find('{'));
        std::string base = name;
        for (const char* suffix : {"_bucket", "_sum", "_count"}) {
          const std::string s{suffix};
          if (base.size() > s.size() && base.compare(base.size() - s.size(), s.size(), s) == 0 &&
              types.count(base.substr(0, base.size() - s.size())) &&
              types[base.substr(0, base.size() - s.size())] == "histogram") {
            base = base.substr(0, base.size() - s.size());
          }
        }
        if (!types.count(base)) error += "a sample of an undeclared family: " + line + "\n";
        if (base != family) error += "a sample outside its family's block: " + line + "\n";
        samples.emplace_back(series, std::stod(line.substr(space + 1)));
      }
    }
    for (const auto& [name, type] : types) {
      if (!helps.count(name)) error += "no HELP for " + name + "\n";
    }
  }

  [[nodiscard]] double value(const std::string& series) const {
    for (const auto& [s, v] : samples) {
      if (s == series) return v;
    }
    return -1;
  }
  /// Checks every histogram: buckets cumulative, +Inf equal to _count.
  [[nodiscard]] std::string check_histograms() const {
    std::string problems;
    for (const auto& [name, type] : types) {
      if (type != "histogram") continue;
      std::map<std::string, std::vector<double>> buckets;  // by labels without le
      std::map<std::string, double> inf, count;
      for (const auto& [s, v] : samples) {
        if (s.rfind(name + "_bucket{", 0) == 0) {
          const auto le = s.find("le=\"");
          const std::string labels = s.substr(name.size() + 8, le - (name.size() + 8));
          buckets[labels].push_back(v);
          if (s.find("le=\"+Inf\"") != std::string::npos) inf[labels] = v;
        } else if (s.rfind(name + "_count", 0) == 0) {
          auto labels = s.substr(name.size() + 6);
          labels = labels.empty() ? "" : labels.substr(1, labels.size() - 2) + ",";
          count[labels] = v;
        }
      }
      for (const auto& [labels, values] : buckets) {
        for (std::size_t i = 1; i < values.size(); ++i) {
          if (values[i] < values[i - 1]) problems += name + " buckets not cumulative\n";
        }
        if (!inf.count(labels)) problems += name + " has no +Inf bucket for " + labels + "\n";
        if (!count.count(labels) || count.at(labels) != inf[labels]) {
          problems += name + ": +Inf differs from _count for " + labels + "\n";
        }
      }
    }
    return problems;
  }
};

TEST(Metrics, PrometheusTextParsesWithHelpTypeAndCumulativeHistograms) {
  weft::runtime_options o;
  o.workers = 2;
  o.timing_metrics = true;
  weft::runtime rt{o};
  rt.block_on([]() -> weft::task<void> {
    weft::task_group g;
    for (int i = 0; i < 50; ++i) {
      g.spawn([]() -> weft::task<void> {
        for (int k = 0; k < 20; ++k) co_await weft::yield();
        co_await weft::sleep_for(1ms);
      });
    }
    co_await g.join();
  });
  const std::string text = weft::prometheus_text(rt);
  const exposition e{text};
  EXPECT_EQ(e.error, "") << text;
  EXPECT_EQ(e.check_histograms(), "") << text;
  for (const char* family :
       {"weft_worker_busy_seconds_total", "weft_worker_resumptions_total",
        "weft_worker_steals_total", "weft_worker_parks_total", "weft_worker_busy_poll_hits_total", "weft_worker_local_queue_depth",
        "weft_worker_io_in_flight", "weft_worker_resume_duration_seconds",
        "weft_worker_schedule_delay_seconds", "weft_injection_queue_depth", "weft_blocking_threads",
        "weft_blocking_queue_depth", "weft_tasks"}) {
    EXPECT_TRUE(e.types.count(family)) << family;
  }
  EXPECT_EQ(e.types.at("weft_worker_resume_duration_seconds"), "histogram");
  EXPECT_EQ(e.types.at("weft_worker_resumptions_total"), "counter");
  EXPECT_EQ(e.types.at("weft_tasks"), "gauge");
  const double resumptions = e.value("weft_worker_resumptions_total{worker=\"0\"}") +
                             e.value("weft_worker_resumptions_total{worker=\"1\"}");
  EXPECT_GE(resumptions, 50.0 * 20);
  const double timed = e.value("weft_worker_resume_duration_seconds_count{worker=\"0\"}") +
                       e.value("weft_worker_resume_duration_seconds_count{worker=\"1\"}");
  // The last resumption (the one that finished block_on's task) may still be being timed.
  EXPECT_GE(timed, resumptions - 1) << "with timing_metrics every resumption is timed";
  EXPECT_LE(timed, resumptions);
  const double delays = e.value("weft_worker_schedule_delay_seconds_count{worker=\"0\"}") +
                        e.value("weft_worker_schedule_delay_seconds_count{worker=\"1\"}");
  EXPECT_GT(delays, 0.0);
  EXPECT_GT(e.value("weft_worker_busy_seconds_total{worker=\"0\"}") +
                e.value("weft_worker_busy_seconds_total{worker=\"1\"}"),
            0.0);
  EXPECT_EQ(e.value("weft_tasks{state=\"suspended\"}"), 0.0);
}

TEST(Metrics, StatsCountLiveTasksByStateAndTheBlockingPool) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  weft::event e;
  std::vector<weft::join_handle<void>> hs;
  for (int i = 0; i < 10; ++i) {
    hs.push_back(rt.spawn([&e]() -> weft::task<void> { co_await e.wait(); }));
  }
  // stats() does not pause the workers: a batch a worker took from the injection queue and has
  // not yet put in its own queue is briefly counted nowhere (and so as suspended). Wait until
  // every task is seen suspended, with nothing ready or running, three polls in a row.
  int settled = 0;
  ASSERT_TRUE(eventually([&] {
    const auto now = rt.stats();
    const bool quiet = now.suspended_tasks == 10 && now.ready_tasks + now.running_tasks == 0;
    settled = quiet ? settled + 1 : 0;
    return settled >= 3;
  }));
  const auto s = rt.stats();
  EXPECT_EQ(s.live_tasks, 10u);
  EXPECT_EQ(s.ready_tasks + s.running_tasks, 0u);
  EXPECT_EQ(s.injection_queue, 0u);
  e.set();
  rt.block_on([&]() -> weft::task<void> {
    for (auto& h : hs) co_await h;
  });
  EXPECT_EQ(rt.stats().live_tasks, 0u);
  const auto text = weft::prometheus_text(rt);
  EXPECT_NE(text.find("weft_tasks{state=\"suspended\"} 0\n"), std::string::npos) << text;
}

TEST(Metrics, HistogramsStayEmptyWithoutTimingMetrics) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([]() -> weft::task<void> {
    for (int i = 0; i < 10; ++i) co_await weft::yield();
  });
  const auto s = rt.stats();
  EXPECT_GT(s.workers[0].tasks_run, 0u);
  EXPECT_EQ(s.workers[0].resume_duration.count(), 0u);
  EXPECT_EQ(s.workers[0].schedule_delay.count(), 0u);
}

// ---------------------------------------------------------------------------------------------
// Seeded schedules

weft::runtime_options seeded(std::uint64_t seed) {
  weft::runtime_options o;
  o.time = weft::time_mode::paused;
  o.schedule_seed = seed;
  return o;
}

/// Many ready tasks, each recording (task, step, clock) as it goes.
std::vector<std::string> trace_of(std::uint64_t seed) {
  weft::runtime rt{seeded(seed)};
  std::vector<std::string> trace;
  rt.block_on([&]() -> weft::task<void> {
    const auto start = weft::clock::now();
    weft::task_group g;
    for (int t = 0; t < 8; ++t) {
      g.spawn([&trace, t, start]() -> weft::task<void> {
        for (int step = 0; step < 6; ++step) {
          const auto at =
              std::chrono::duration_cast<std::chrono::microseconds>(weft::clock::now() - start)
                  .count();
          trace.push_back(std::to_string(t) + "." + std::to_string(step) + "@" +
                          std::to_string(at));
          if (step % 3 == 2) {
            co_await weft::sleep_for(std::chrono::microseconds{(t % 3) * 10});
          } else {
            co_await weft::yield();
          }
        }
      });
    }
    co_await g.join();
  });
  return trace;
}

TEST(SeededSchedule, TheSameSeedGivesTheSameScheduleAndClockReadings) {
  for (std::uint64_t seed : {1u, 42u, 1234567u}) {
    EXPECT_EQ(trace_of(seed), trace_of(seed)) << "seed " << seed;
  }
}

TEST(SeededSchedule, DifferentSeedsGiveDifferentInterleavings) {
  std::set<std::vector<std::string>> seen;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) seen.insert(trace_of(seed));
  EXPECT_GE(seen.size(), 6u);
  // Queue order (no seed) is one more schedule.
  EXPECT_EQ(trace_of(0).size(), 48u);
}

TEST(SeededSchedule, KeepsTimersAtTheSameInstantInDeadlineOrder) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    weft::runtime rt{seeded(seed)};
    std::vector<int> woke;
    rt.block_on([&]() -> weft::task<void> {
      weft::task_group g;
      for (int i = 0; i < 6; ++i) {
        g.spawn([&woke, i]() -> weft::task<void> {
          co_await weft::sleep_for(std::chrono::milliseconds{10 * (6 - i)});
          woke.push_back(i);
        });
      }
      co_await g.join();
    });
    EXPECT_EQ(woke, (std::vector<int>{5, 4, 3, 2, 1, 0})) << "seed " << seed;
  }
}

TEST(SeededSchedule, ASeedInTheEnvironmentThatIsNotANumberIsRefused) {
  ::setenv("WEFT_SCHEDULE_SEED", "12x", 1);
  EXPECT_THROW(weft::runtime{seeded(0)}, std::invalid_argument);
  ::unsetenv("WEFT_SCHEDULE_SEED");
}

TEST(SeededSchedule, NeedsPausedTime) {
  weft::runtime_options o;
  o.schedule_seed = 7;
  EXPECT_THROW(weft::runtime{o}, std::invalid_argument);
}

/// A planted check-then-act race: the balance is checked, a co_await lets others run, then it is
/// spent. In queue order the second spender looks only after the first spent; other orders
/// overdraw.
weft::task<void> spend(int& balance, int delay_yields) {
  for (int i = 0; i < delay_yields; ++i) co_await weft::yield();
  if (balance >= 100) {
    co_await weft::yield();
    balance -= 100;
  }
}

weft::task<void> overdraw_scenario() {
  int balance = 100;
  co_await weft::when_all(spend(balance, 0), spend(balance, 3));
  if (balance < 0) throw std::logic_error("overdrawn: " + std::to_string(balance));
}

TEST(Explore, AReplaySeedThatIsNotASeedIsRefused) {
  ::setenv("WEFT_EXPLORE_SEED", "0", 1);
  EXPECT_THROW((void)weft::testing::explore(3, [] { return overdraw_scenario(); }),
               std::invalid_argument);
  ::unsetenv("WEFT_EXPLORE_SEED");
}

TEST(Explore, QueueOrderHidesThePlantedRace) {
  weft::runtime rt{weft::runtime_options{.time = weft::time_mode::paused}};
  EXPECT_NO_THROW(rt.block_on(overdraw_scenario()));
}

TEST(Explore, FindsAPlantedCheckThenActRaceWithinAHundredSeeds) {
  const auto result = weft::testing::explore(100, [] { return overdraw_scenario(); });
  ASSERT_FALSE(result.passed) << "no seed of 100 overdrew";
  EXPECT_LE(result.runs, 100u);
  EXPECT_EQ(result.failing_seed, result.runs);  // seeds 1, 2, ...: the last run failed
  EXPECT_NE(result.failure.find("overdrawn"), std::string::npos) << result.failure;
  EXPECT_EQ(result.reproduction.rfind(
                "WEFT_EXPLORE_SEED=" + std::to_string(result.failing_seed) + " '", 0),
            0u)
      << result.reproduction;

  // The reproduction replays exactly that failure.
  ::setenv("WEFT_EXPLORE_SEED", std::to_string(result.failing_seed).c_str(), 1);
  const auto again = weft::testing::explore(100, [] { return overdraw_scenario(); });
  ::unsetenv("WEFT_EXPLORE_SEED");
  EXPECT_FALSE(again.passed);
  EXPECT_EQ(again.runs, 1u);
  EXPECT_EQ(again.failing_seed, result.failing_seed);
  EXPECT_EQ(again.failure, result.failure);
}

weft::task<void> spend_locked(weft::mutex& m, int& balance, int delay_yields) {
  for (int i = 0; i < delay_yields; ++i) co_await weft::yield();
  auto guard = co_await m.lock();
  if (balance >= 100) {
    co_await weft::yield();
    balance -= 100;
  }
}

TEST(Explore, PassesAScenarioWithoutTheRace) {
  const auto result = weft::testing::explore(100, []() -> weft::task<void> {
    weft::mutex m;
    int balance = 100;
    co_await weft::when_all(spend_locked(m, balance, 0), spend_locked(m, balance, 3));
    if (balance != 0) throw std::logic_error("balance " + std::to_string(balance));
  });
  EXPECT_TRUE(result.passed) << result.failure << "\n" << result.reproduction;
  EXPECT_EQ(result.runs, 100u);
}

TEST(Explore, ReportsADeadlockAsAFailure) {
  weft::testing::explore_options o;
  o.seeds = 3;
  o.time_limit = 10s;
  const auto result = weft::testing::explore(o, []() -> weft::task<void> {
    weft::event never;
    co_await never.wait();
  });
  ASSERT_FALSE(result.passed);
  EXPECT_EQ(result.failing_seed, 1u);
  EXPECT_NE(result.failure.find("did not finish"), std::string::npos) << result.failure;
}

}  // namespace
