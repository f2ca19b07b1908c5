// weft::resilience::prometheus_sink: real retry, breaker and pipeline layers report into it under
// paused time, and a small exposition-format parser checks what it renders — one HELP and TYPE per
// family before its samples, only declared names, cumulative buckets ending in +Inf = _count,
// escaped label values — and the exact counts, buckets and gauges the calls should produce.
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <weft/introspection/metrics.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/prometheus_sink.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>
#include <weft/time/sleep.hpp>

#include "support/paused_time.hpp"

namespace {

namespace wr = weft::resilience;
using weft::testing::paused;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// A parser for the text exposition format (0.0.4), strict where the sink must be.

using label_set = std::map<std::string, std::string>;  // unescaped values

struct sample_line {
  std::string name;
  label_set labels;
  double value = 0;
};

struct exposition {
  std::map<std::string, std::string> types;  // family → TYPE
  std::vector<sample_line> samples;
  std::vector<std::string> problems;  // empty when the text is well-formed

  // The value of the one sample `name{labels}`, or nullopt if there is none.
  [[nodiscard]] std::optional<double> value(std::string_view name, const label_set& labels) const {
    for (const auto& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return std::nullopt;
  }
  // All samples named `name`.
  [[nodiscard]] std::vector<sample_line> named(std::string_view name) const {
    std::vector<sample_line> out;
    for (const auto& s : samples) {
      if (s.name == name) out.push_back(s);
    }
    return out;
  }
};

bool is_name_start(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}
bool is_name_char(char c, bool colon) {
  return is_name_start(c, colon) || (c >= '0' && c <= '9');
}

// Reads a metric (colon = true) or label name at `pos`; empty if there is none.
std::string read_name(std::string_view line, std::size_t& pos, bool colon) {
  const std::size_t start = pos;
  if (pos < line.size() && is_name_start(line[pos], colon)) {
    ++pos;
    while (pos < line.size() && is_name_char(line[pos], colon)) ++pos;
  }
  return std::string(line.substr(start, pos - start));
}

std::optional<double> parse_value(const std::string& text) {
  if (text == "+Inf") return std::numeric_limits<double>::infinity();
  if (text == "-Inf") return -std::numeric_limits<double>::infinity();
  if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return v;
}

// Parses one sample line; returns an empty string or what is wrong with it.
std::string parse_sample(std::string_view line, sample_line& out) {
  std::size_t pos = 0;
  out.name = read_name(line, pos, true);
  if (out.name.empty()) return "no metric name";
  if (pos < line.size() && line[pos] == '{') {
    ++pos;
    while (true) {
      if (pos < line.size() && line[pos] == '}') {
        ++pos;
        break;
      }
      const std::string label = read_name(line, pos, false);
      if (label.empty()) return "bad label name";
      if (pos + 1 >= line.size() || line[pos] != '=' || line[pos + 1] != '"') {
        return "label " + label + " without =\"";
      }
      pos += 2;
      std::string value;
      bool closed = false;
      while (pos < line.size()) {
        const char c = line[pos++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (pos >= line.size()) return "dangling backslash";
          const char e = line[pos++];
          if (e == '\\') {
            value += '\\';
          } else if (e == '"') {
            value += '"';
          } else if (e == 'n') {
            value += '\n';
          } else {
            return std::string("bad escape \\") + e;
          }
          continue;
        }
        value += c;
      }
      if (!closed) return "unterminated value of " + label;
      if (!out.labels.emplace(label, std::move(value)).second) return "duplicate label " + label;
      if (pos < line.size() && line[pos] == ',') {
        ++pos;
      } else if (pos >= line.size() || line[pos] != '}') {
        return "no , or } after label " + label;
      }
    }
  }
  if (pos >= line.size() || line[pos] != ' ') return "no space before the value";
  const auto v = parse_value(std::string(line.substr(pos + 1)));
  if (!v) return "bad value '" + std::string(line.substr(pos + 1)) + "'";
  out.value = *v;
  return {};
}

// The family a sample belongs to: its own name, or a histogram's name under a _bucket, _sum or
// _count suffix. Empty if none was declared.
std::string family_of(const exposition& x, const std::string& name) {
  if (const auto it = x.types.find(name); it != x.types.end() && it->second != "histogram") {
    return name;
  }
  for (const std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      const std::string base = name.substr(0, name.size() - suffix.size());
      if (const auto it = x.types.find(base); it != x.types.end() && it->second == "histogram") {
        return base;
      }
    }
  }
  return {};
}

// Every histogram series: buckets in increasing `le`, non-decreasing counts, ending in +Inf
// equal to _count, and one _sum and one _count.
void check_histograms(exposition& x) {
  struct series {
    std::vector<std::pair<double, double>> buckets;  // le, cumulative count
    int sums = 0;
    int counts = 0;
    double count = 0;
  };
  std::map<std::pair<std::string, label_set>, series> all;
  for (const auto& s : x.samples) {
    const std::string family = family_of(x, s.name);
    if (family.empty() || x.types[family] != "histogram") continue;
    label_set labels = s.labels;
    const std::string suffix = s.name.substr(family.size());
    if (suffix == "_bucket") {
      const auto le = labels.find("le");
      if (le == labels.end()) {
        x.problems.push_back(s.name + " without le");
        continue;
      }
      const auto bound = parse_value(le->second);
      if (!bound) x.problems.push_back(s.name + " with bad le " + le->second);
      labels.erase(le);
      all[{family, labels}].buckets.emplace_back(bound.value_or(0), s.value);
    } else {
      if (labels.contains("le")) x.problems.push_back(s.name + " with le");
      auto& h = all[{family, labels}];
      if (suffix == "_sum") {
        ++h.sums;
      } else {
        ++h.counts;
        h.count = s.value;
      }
    }
  }
  for (const auto& [id, h] : all) {
    const std::string& name = id.first;
    if (h.sums != 1 || h.counts != 1) x.problems.push_back(name + ": not one _sum and one _count");
    if (h.buckets.empty()) {
      x.problems.push_back(name + ": no buckets");
      continue;
    }
    for (std::size_t i = 1; i < h.buckets.size(); ++i) {
      if (!(h.buckets[i].first > h.buckets[i - 1].first)) {
        x.problems.push_back(name + ": le not increasing");
      }
      if (h.buckets[i].second < h.buckets[i - 1].second) {
        x.problems.push_back(name + ": bucket counts decrease");
      }
    }
    if (h.buckets.back().first != std::numeric_limits<double>::infinity()) {
      x.problems.push_back(name + ": last bucket is not +Inf");
    } else if (h.buckets.back().second != h.count) {
      x.problems.push_back(name + ": +Inf bucket != _count");
    }
  }
}

exposition parse(std::string_view text) {
  exposition x;
  if (!text.empty() && text.back() != '\n') x.problems.push_back("no final newline");
  std::map<std::string, int> helps;
  std::map<std::string, int> type_lines;
  std::set<std::string> with_samples;  // families whose samples have started
  std::string current;                 // the family of the last sample
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    const auto problem = [&](const std::string& what) {
      x.problems.push_back("line " + std::to_string(line_no) + ": " + what + ": " +
                           std::string(line));
    };
    if (line.empty()) continue;
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      const bool help = line[2] == 'H';
      std::size_t pos = 7;
      const std::string name = read_name(line, pos, true);
      if (name.empty() || pos >= line.size() || line[pos] != ' ') {
        problem("bad name");
        continue;
      }
      if (with_samples.contains(name)) problem("HELP or TYPE after the family's samples");
      if (help) {
        ++helps[name];
      } else {
        ++type_lines[name];
        const std::string type(line.substr(pos + 1));
        if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
            type != "untyped") {
          problem("unknown type");
        }
        x.types[name] = type;
      }
      continue;
    }
    if (line.starts_with('#')) continue;  // a comment
    sample_line s;
    if (const std::string bad = parse_sample(line, s); !bad.empty()) {
      problem(bad);
      continue;
    }
    const std::string family = family_of(x, s.name);
    if (family.empty()) {
      problem("undeclared metric");
    } else {
      if (helps[family] == 0) problem("sample before the family's HELP");
      if (family != current) {
        if (with_samples.contains(family)) problem("the family's samples are not together");
        with_samples.insert(family);
        current = family;
      }
    }
    x.samples.push_back(std::move(s));
  }
  for (const auto& [name, n] : helps) {
    if (n != 1) x.problems.push_back(name + ": " + std::to_string(n) + " HELP lines");
    if (!type_lines.contains(name)) x.problems.push_back(name + ": no TYPE line");
  }
  for (const auto& [name, n] : type_lines) {
    if (n != 1) x.problems.push_back(name + ": " + std::to_string(n) + " TYPE lines");
    if (!helps.contains(name)) x.problems.push_back(name + ": no HELP line");
  }
  check_histograms(x);
  return x;
}

// The parser itself: each of these must be caught, or the tests below would prove nothing.
TEST(ExpositionParser, CatchesMalformedText) {
  const std::string head =
      "# HELP h A histogram.\n# TYPE h histogram\n# HELP c A counter.\n# TYPE c counter\n";
  const std::string good_h =
      "h_bucket{a=\"x\",le=\"1\"} 1\nh_bucket{a=\"x\",le=\"+Inf\"} 2\nh_sum{a=\"x\"} 3\n"
      "h_count{a=\"x\"} 2\n";
  EXPECT_EQ(parse(head + good_h + "c{a=\"q\\\"\\\\\\n\"} 4\n").problems,
            std::vector<std::string>{});
  EXPECT_EQ(parse(head + good_h + "c{a=\"q\\\"\\\\\\n\"} 4\n").value("c", {{"a", "q\"\\\n"}}), 4);
  const std::vector<std::string> bad = {
      head + "c{a=\"q\"\"} 1\n",                               // unescaped quote
      head + "c{a=\"q\\x\"} 1\n",                              // unknown escape
      head + "c{a=\"q\nz\"} 1\n",                              // raw newline
      head + "d 1\n",                                          // undeclared
      "# TYPE c counter\nc 1\n",                               // no HELP
      head + "# HELP c Again.\nc 1\n",                         // two HELPs
      head + "c 1\n# HELP c Late.\n",                          // HELP after samples
      head + "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",  // +Inf != _count
      head + "h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",  // decreasing
      head +
          "h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\n"
          "h_count 1\n",                                                 // le out of order
      head + "h_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",               // no +Inf
      head + "c 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\nc 2\n",  // split family
      head + "c 1",                                                      // no final newline
  };
  for (const auto& text : bad) EXPECT_FALSE(parse(text).problems.empty()) << text;
}

// ---------------------------------------------------------------------------------------------
// Values the sink renders, without layers.

constexpr std::string_view events = "weft_resilience_events_total";
constexpr std::string_view attempts = "weft_resilience_attempt_duration_seconds";
constexpr std::string_view pipelines = "weft_resilience_pipeline_duration_seconds";
constexpr std::string_view gauges = "weft_resilience_gauge";

std::string with_suffix(std::string_view name, std::string_view suffix) {
  return std::string(name) + std::string(suffix);
}

wr::resilience_context context(std::string_view pipeline, std::string_view key) {
  wr::resilience_context ctx;
  ctx.pipeline = pipeline;
  ctx.key = key;
  return ctx;
}

TEST(PrometheusSink, AnEmptySinkDeclaresEveryFamilyAndNoSamples) {
  const wr::prometheus_sink sink;
  const auto x = parse(sink.render());
  EXPECT_EQ(x.problems, std::vector<std::string>{});
  EXPECT_EQ(x.types, (std::map<std::string, std::string>{{std::string(events), "counter"},
                                                         {std::string(attempts), "histogram"},
                                                         {std::string(pipelines), "histogram"},
                                                         {std::string(gauges), "gauge"}}));
  EXPECT_TRUE(x.samples.empty());
}

TEST(PrometheusSink, BucketsAreInclusiveUpperBoundsInSeconds) {
  wr::prometheus_sink sink;
  const auto ctx = context("p", "k");
  sink.record_pipeline(ctx, 500us, wr::verdict::success);        // le 0.0005 (inclusive)
  sink.record_pipeline(ctx, 500us + 1ns, wr::verdict::success);  // le 0.001
  sink.record_pipeline(ctx, 10s, wr::verdict::success);          // le 10
  sink.record_pipeline(ctx, 20s, wr::verdict::success);          // +Inf only
  const auto x = parse(sink.render());
  EXPECT_EQ(x.problems, std::vector<std::string>{});
  const auto bucket = [&](const char* le) {
    return x.value(with_suffix(pipelines, "_bucket"),
                   {{"pipeline", "p"}, {"key", "k"}, {"verdict", "success"}, {"le", le}});
  };
  EXPECT_EQ(bucket("0.0005"), 1);
  EXPECT_EQ(bucket("0.001"), 2);
  EXPECT_EQ(bucket("5"), 2);
  EXPECT_EQ(bucket("10"), 3);
  EXPECT_EQ(bucket("+Inf"), 4);
  const label_set labels = {{"pipeline", "p"}, {"key", "k"}, {"verdict", "success"}};
  EXPECT_EQ(x.value(with_suffix(pipelines, "_count"), labels), 4);
  EXPECT_DOUBLE_EQ(*x.value(with_suffix(pipelines, "_sum"), labels), 30.001000001);
  // Every fixed bound, in order, then +Inf.
  std::vector<std::string> les;
  for (const auto& s : x.named(with_suffix(pipelines, "_bucket"))) les.push_back(s.labels.at("le"));
  EXPECT_EQ(les,
            (std::vector<std::string>{"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                      "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}));
}

TEST(PrometheusSink, GaugesKeepTheLastValueAndSeriesAreSortedByLabels) {
  wr::prometheus_sink sink;
  sink.set_gauge(wr::gauge::tokens, "limiter", "b", 7);
  sink.set_gauge(wr::gauge::inflight, "bulkhead", "", 3);
  sink.set_gauge(wr::gauge::tokens, "limiter", "a", 2.5);
  sink.set_gauge(wr::gauge::inflight, "bulkhead", "", 5);
  const std::string text = sink.render();
  EXPECT_NE(text.find("weft_resilience_gauge{gauge=\"inflight\",layer=\"bulkhead\",key=\"\"} 5\n"
                      "weft_resilience_gauge{gauge=\"tokens\",layer=\"limiter\",key=\"a\"} 2.5\n"
                      "weft_resilience_gauge{gauge=\"tokens\",layer=\"limiter\",key=\"b\"} 7\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(parse(text).problems, std::vector<std::string>{});
}

TEST(PrometheusSink, RenderToAppendsAndRenderingIsDeterministic) {
  wr::prometheus_sink sink;
  wr::layer_event e;
  e.kind = wr::event_kind::cache_hit;
  e.layer = "cache";
  sink.count_event(e);
  std::string page = "# HELP other Something else.\n# TYPE other gauge\nother 1\n";
  const std::string before = page;
  sink.render_to(page);
  EXPECT_EQ(page, before + sink.render());
  EXPECT_EQ(sink.render(), sink.render());
  const auto x = parse(page);
  EXPECT_EQ(x.problems, std::vector<std::string>{});
  EXPECT_EQ(
      x.value(events, {{"event", "cache_hit"}, {"layer", "cache"}, {"pipeline", ""}, {"key", ""}}),
      1);
}

// Workers report concurrently (run under TSan): nothing is lost and rendering meanwhile is safe.
TEST(PrometheusSink, ConcurrentReportsAreAllCounted) {
  wr::prometheus_sink sink;
  constexpr int threads = 4;
  constexpr int per_thread = 5000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&sink, t] {
      const std::string own_key = "k" + std::to_string(t);
      const auto ctx = context("p", own_key);
      wr::layer_event e;
      e.kind = wr::event_kind::retry;
      e.layer = "retry";
      for (int i = 0; i < per_thread; ++i) {
        e.key = (i % 2 == 0) ? std::string_view("shared") : std::string_view(own_key);
        sink.count_event(e);
        sink.record_attempt("retry", ctx, 1ms, wr::verdict::failure);
        sink.set_gauge(wr::gauge::inflight, "bulkhead", own_key, i);
      }
    });
  }
  std::string rendered;
  for (int i = 0; i < 20; ++i) rendered = sink.render();
  for (auto& t : pool) t.join();
  const auto x = parse(sink.render());
  EXPECT_EQ(x.problems, std::vector<std::string>{});
  const auto count = [&](const std::string& key) {
    return x.value(events,
                   {{"event", "retry"}, {"layer", "retry"}, {"pipeline", ""}, {"key", key}});
  };
  EXPECT_EQ(count("shared"), threads * per_thread / 2);
  for (int t = 0; t < threads; ++t) {
    const std::string key = "k" + std::to_string(t);
    EXPECT_EQ(count(key), per_thread / 2);
    EXPECT_EQ(
        x.value(with_suffix(attempts, "_count"),
                {{"layer", "retry"}, {"pipeline", "p"}, {"key", key}, {"verdict", "failure"}}),
        per_thread);
    EXPECT_EQ(x.value(gauges, {{"gauge", "inflight"}, {"layer", "bulkhead"}, {"key", key}}),
              per_thread - 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Real layers reporting into the sink.

std::error_code io_error() {
  return std::make_error_code(std::errc::io_error);
}

// One attempt: takes 30 ms, fails with io_error for the first `failures` calls, then succeeds.
weft::task<wr::call_outcome<int>> flaky(int* calls, int failures) {
  co_await weft::sleep_for(30ms);
  if (++*calls <= failures) co_return wr::call_outcome<int>::failure(io_error());
  co_return wr::call_outcome<int>::success(42);
}

// A layer name and key that need escaping: a quote, a backslash and a newline.
const std::string odd_layer = "pay\"ments\\eu";
const std::string odd_key = "line1\nline2";

wr::retry_options four_attempts() {
  wr::retry_options o;
  o.name = odd_layer;
  o.max_attempts = 4;
  o.backoff = wr::backoff::exponential(100ms, 2.0, 10s, wr::jitter::none());  // 100, 200, 400
  return o;
}

wr::circuit_breaker_options small_breaker() {
  wr::circuit_breaker_options o;
  o.name = "breaker";
  o.window = wr::window::count(2);
  o.minimum_calls = 2;
  o.open_duration = 10s;
  return o;
}

class PrometheusSinkLayers : public ::testing::Test {
 protected:
  weft::runtime rt_{paused()};
};

TEST_F(PrometheusSinkLayers, RetryEventsAttemptsAndPipelineDurationsWithEscapedLabels) {
  wr::prometheus_sink sink;
  wr::retry r{four_attempts()};
  r.observers().set_sink(&sink);
  wr::pipeline pipe{r};
  pipe.observers().set_name("checkout");
  pipe.observers().set_sink(&sink);
  int first_calls = 0;
  int second_calls = 0;
  rt_.block_on([&]() -> weft::task<void> {
    wr::resilience_context ctx;
    ctx.key = odd_key;
    // Three failures, then a success: three retries.
    const auto ok = co_await pipe.execute(ctx, [&first_calls] { return flaky(&first_calls, 3); });
    EXPECT_EQ(ok.value(), 42);
    // Four failures: three retries, then the retry gives up.
    wr::resilience_context ctx2;
    ctx2.key = odd_key;
    const auto failed =
        co_await pipe.execute(ctx2, [&second_calls] { return flaky(&second_calls, 100); });
    EXPECT_EQ(failed.error(), std::errc::io_error);
  }());
  EXPECT_EQ(first_calls, 4);
  EXPECT_EQ(second_calls, 4);

  const std::string text = sink.render();
  const auto x = parse(text);
  EXPECT_EQ(x.problems, std::vector<std::string>{}) << text;

  // The escaped spelling, as it stands on the page.
  EXPECT_NE(text.find("weft_resilience_events_total{event=\"retry\",layer=\"pay\\\"ments\\\\eu\","
                      "pipeline=\"checkout\",key=\"line1\\nline2\"} 6\n"),
            std::string::npos)
      << text;

  // And read back: six retries (three per call), one give-up, nothing else.
  const label_set retry_labels = {
      {"event", "retry"}, {"layer", odd_layer}, {"pipeline", "checkout"}, {"key", odd_key}};
  EXPECT_EQ(x.value(events, retry_labels), 6);
  auto gave_up = retry_labels;
  gave_up["event"] = "retry_gave_up";
  EXPECT_EQ(x.value(events, gave_up), 1);
  EXPECT_EQ(x.named(events).size(), 2u);

  // Attempts: 7 failures and 1 success, each 30 ms (le 0.05, not le 0.025).
  const auto attempt = [&](const char* verdict, std::string_view suffix, const char* le = nullptr) {
    label_set l = {
        {"layer", odd_layer}, {"pipeline", "checkout"}, {"key", odd_key}, {"verdict", verdict}};
    if (le != nullptr) l["le"] = le;
    return x.value(with_suffix(attempts, suffix), l);
  };
  EXPECT_EQ(attempt("failure", "_count"), 7);
  EXPECT_EQ(attempt("success", "_count"), 1);
  EXPECT_EQ(attempt("failure", "_bucket", "0.025"), 0);
  EXPECT_EQ(attempt("failure", "_bucket", "0.05"), 7);
  EXPECT_EQ(attempt("failure", "_bucket", "+Inf"), 7);
  EXPECT_DOUBLE_EQ(*attempt("failure", "_sum"), 0.21);
  EXPECT_DOUBLE_EQ(*attempt("success", "_sum"), 0.03);

  // Each pipeline call: 4 × 30 ms + 100 + 200 + 400 ms of backoff = 820 ms (le 1, not le 0.5).
  const auto call = [&](const char* verdict, std::string_view suffix, const char* le = nullptr) {
    label_set l = {{"pipeline", "checkout"}, {"key", odd_key}, {"verdict", verdict}};
    if (le != nullptr) l["le"] = le;
    return x.value(with_suffix(pipelines, suffix), l);
  };
  for (const char* verdict : {"success", "failure"}) {
    EXPECT_EQ(call(verdict, "_count"), 1) << verdict;
    EXPECT_EQ(call(verdict, "_bucket", "0.5"), 0) << verdict;
    EXPECT_EQ(call(verdict, "_bucket", "1"), 1) << verdict;
    EXPECT_DOUBLE_EQ(*call(verdict, "_sum"), 0.82) << verdict;
  }
}

TEST_F(PrometheusSinkLayers, BreakerOpeningShowsInEventsAndTheStateGauge) {
  wr::prometheus_sink sink;
  wr::circuit_breaker b{small_breaker()};
  b.observers().set_sink(&sink);
  wr::pipeline pipe{b};
  pipe.observers().set_name("payments");
  pipe.observers().set_sink(&sink);
  int calls = 0;
  rt_.block_on([&]() -> weft::task<void> {
    for (int i = 0; i < 3; ++i) {  // two failures open it; the third call is rejected
      wr::resilience_context ctx;
      ctx.key = "card";
      co_await pipe.execute(ctx, [&calls] { return flaky(&calls, 100); });
    }
    EXPECT_EQ(b.state(), wr::breaker_state::open);
  }());
  EXPECT_EQ(calls, 2);

  const std::string text = sink.render();
  const auto x = parse(text);
  EXPECT_EQ(x.problems, std::vector<std::string>{}) << text;
  const auto event = [&](const char* name) {
    return x.value(
        events, {{"event", name}, {"layer", "breaker"}, {"pipeline", "payments"}, {"key", "card"}});
  };
  EXPECT_EQ(event("breaker_failure"), 2);
  EXPECT_EQ(event("breaker_state_changed"), 1);
  EXPECT_EQ(event("breaker_rejected"), 1);
  EXPECT_EQ(event("breaker_success"), std::nullopt);
  EXPECT_EQ(x.value(gauges, {{"gauge", "breaker.state"}, {"layer", "breaker"}, {"key", "card"}}),
            static_cast<double>(wr::breaker_state::open));
  // Three pipeline calls, whatever their verdicts.
  double total = 0;
  for (const auto& s : x.named(with_suffix(pipelines, "_count"))) total += s.value;
  EXPECT_EQ(total, 3);
}

// The service's page: the runtime's metrics, then the sink's — still one well-formed exposition.
TEST_F(PrometheusSinkLayers, AppendsToTheRuntimesPage) {
  wr::prometheus_sink sink;
  wr::retry r{four_attempts()};
  r.observers().set_sink(&sink);
  int calls = 0;
  rt_.block_on([&]() -> weft::task<void> {
    const auto o = co_await r.execute([&calls] { return flaky(&calls, 1); });
    EXPECT_EQ(o.value(), 42);
  }());
  std::string page = weft::prometheus_text(rt_);
  const std::size_t runtime_part = page.size();
  sink.render_to(page);
  const auto x = parse(page);
  EXPECT_EQ(x.problems, std::vector<std::string>{}) << page;
  EXPECT_TRUE(x.types.contains("weft_tasks"));
  EXPECT_EQ(
      x.value(events, {{"event", "retry"}, {"layer", odd_layer}, {"pipeline", ""}, {"key", ""}}),
      1);
  EXPECT_EQ(page.substr(runtime_part), sink.render());
}

}  // namespace
