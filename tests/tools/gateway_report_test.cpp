// The weft-gateway HTML report (tools/weft-gateway/report.hpp) over a synthetic 40-second run:
// every chart drawn, phases and breaker states in the right places, checks shown, text escaped,
// an empty run and absurd figures still giving a well-formed page without "nan" in the SVG.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "gateway_report_sample.hpp"
#include "report.hpp"
#include "run_record.hpp"

namespace {

using weft::gateway::breaker_view;
using weft::gateway::run_record;
using weft::gateway::second_sample;

using weft::gateway::testing::pricing_2;
using weft::gateway::testing::reviews;
using weft::gateway::testing::sample_run;

// ---------------------------------------------------------------------------------------------
// Reading the page back

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

// Each <svg class="chart" ...> ... </svg>, in page order.
std::vector<std::string> charts_of(const std::string& html) {
  std::vector<std::string> out;
  for (std::size_t at = html.find("<svg class=\"chart\""); at != std::string::npos;
       at = html.find("<svg class=\"chart\"", at + 1)) {
    const std::size_t end = html.find("</svg>", at);
    if (end == std::string::npos) break;
    out.push_back(html.substr(at, end + 6 - at));
  }
  return out;
}

std::string chart_with_id(const std::string& html, const std::string& id) {
  for (const std::string& c : charts_of(html)) {
    if (c.find("id=\"" + id + "\"") != std::string::npos) return c;
  }
  return {};
}

// Whether every element is closed in order: script and style contents are skipped as raw text,
// void elements and "/>" need no end tag. Explains the first mismatch in `why`.
bool tags_balanced(const std::string& html, std::string& why) {
  static const std::regex tag(R"re(<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^>]*?(/?)>)re");
  static const char* const void_elements[] = {"meta", "br", "hr", "img", "input", "link"};
  std::vector<std::string> open;
  std::size_t at = 0;
  while (true) {
    std::smatch m;
    const std::string rest = html.substr(at);
    if (!std::regex_search(rest, m, tag)) break;
    const std::string name = m[2];
    at += static_cast<std::size_t>(m.position(0) + m.length(0));
    bool is_void = m[3].length() != 0;
    for (const char* v : void_elements) is_void = is_void || name == v;
    if (is_void) continue;
    if (m[1].length() == 0) {
      if (name == "script" || name == "style") {
        const std::size_t end = html.find("</" + name + ">", at);
        if (end == std::string::npos) {
          why = "unterminated <" + name + ">";
          return false;
        }
        at = end + name.size() + 3;
        continue;
      }
      open.push_back(name);
    } else {
      if (open.empty() || open.back() != name) {
        why = "</" + name + "> closes <" + (open.empty() ? "nothing" : open.back()) + ">";
        return false;
      }
      open.pop_back();
    }
  }
  if (!open.empty()) {
    why = "<" + open.back() + "> never closed";
    return false;
  }
  return true;
}

void expect_well_formed(const std::string& html) {
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  std::string why;
  EXPECT_TRUE(tags_balanced(html, why)) << why;
}

struct band {
  std::string state;
  double from = 0;
  double to = 0;
};

// Breaker bands by upstream, as data-* attributes of the timeline's rects.
std::map<std::string, std::vector<band>> bands_of(const std::string& html) {
  static const std::regex rect(
      R"re(<rect class="plot band state-(\w+)" data-upstream="([^"]*)" data-from="([^"]*)" )re"
      R"re(data-to="([^"]*)")re");
  std::map<std::string, std::vector<band>> out;
  for (std::sregex_iterator it(html.begin(), html.end(), rect), end; it != end; ++it) {
    out[(*it)[2]].push_back({(*it)[1], std::stod((*it)[3]), std::stod((*it)[4])});
  }
  return out;
}

// The page without its last script (the checking script, whose own source names NaN and inf).
std::string without_page_script(const std::string& html) {
  return html.substr(0, html.rfind("<script>"));
}

// ---------------------------------------------------------------------------------------------
// The tests

TEST(GatewayReport, DrawsEveryChart) {
  const std::string html = weft::gateway::render_report(sample_run());
  expect_well_formed(html);
  const std::vector<std::string> charts = charts_of(html);
  ASSERT_EQ(charts.size(), 5u);
  EXPECT_EQ(count_of(html, "<svg class=\"chart"), 5u);
  EXPECT_NE(html.find("data-charts-expected=\"5\""), std::string::npos);
  for (const char* id : {"latency", "throughput", "outcomes", "breakers", "resilience"}) {
    const std::string chart = chart_with_id(html, id);
    ASSERT_FALSE(chart.empty()) << id;
    EXPECT_NE(chart.find("class=\"plot"), std::string::npos) << id << " has nothing plotted";
    EXPECT_NE(chart.find("class=\"legend\""), std::string::npos) << id << " has no legend";
    EXPECT_NE(chart.find("class=\"axis x\""), std::string::npos) << id << " has no time axis";
    EXPECT_NE(chart.find(">20 s</text>"), std::string::npos) << id << " has no time labels";
  }
}

TEST(GatewayReport, MarksEveryPhaseInEveryChart) {
  const run_record r = sample_run();
  const std::string html = weft::gateway::render_report(r);
  for (const std::string& chart : charts_of(html)) {
    for (std::size_t k = 0; k < r.phases.size(); ++k) {
      EXPECT_NE(chart.find("class=\"phase-band\" data-phase=\"" + std::to_string(k) + "\""),
                std::string::npos)
          << "phase " << k << " in " << chart.substr(0, 60);
      EXPECT_NE(chart.find("class=\"phase-label\" data-phase=\"" + std::to_string(k) + "\""),
                std::string::npos)
          << "phase " << k << " named in " << chart.substr(0, 60);
      EXPECT_NE(chart.find(">" + r.phases[k].name + "</text>"), std::string::npos);
    }
  }
  // Phase 1 (10-20 s of 40) starts a quarter of the way along the 118..1150 plot area.
  EXPECT_NE(html.find("data-phase=\"1\" x=\"376\" "), std::string::npos);
}

TEST(GatewayReport, LatencyChartUsesALogAxisAndOneLinePerPercentile) {
  const std::string chart = chart_with_id(weft::gateway::render_report(sample_run()), "latency");
  for (const char* label : {">1 ms<", ">10 ms<", ">100 ms<", ">1 s<", ">10 s<"}) {
    EXPECT_NE(chart.find(label), std::string::npos) << label;
  }
  static const std::regex path(R"re(data-series="(p50|p99|p99\.9)" d="([^"]*)")re");
  std::size_t lines = 0;
  for (std::sregex_iterator it(chart.begin(), chart.end(), path), end; it != end; ++it) {
    ++lines;
    const std::string d = (*it)[2];
    EXPECT_EQ(count_of(d, "M"), 1u) << (*it)[1];
    EXPECT_EQ(count_of(d, "L"), 39u) << (*it)[1] << ": one point a second";
  }
  EXPECT_EQ(lines, 3u);
}

TEST(GatewayReport, ASecondWithoutAnswersBreaksTheLatencyLines) {
  run_record r = sample_run();
  second_sample& quiet = r.seconds[24];
  quiet.ok = quiet.degraded = quiet.failed = 0;
  const std::string chart = chart_with_id(weft::gateway::render_report(r), "latency");
  static const std::regex path(R"re(data-series="p99" d="([^"]*)")re");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(chart, m, path));
  EXPECT_EQ(count_of(m[1], "M"), 2u);
  EXPECT_EQ(count_of(m[1], "L"), 37u);
}

TEST(GatewayReport, OutcomeBarsFollowTheSeconds) {
  const std::string chart = chart_with_id(weft::gateway::render_report(sample_run()), "outcomes");
  EXPECT_EQ(count_of(chart, "class=\"plot bar ok\""), 40u);
  EXPECT_EQ(count_of(chart, "class=\"plot bar degraded\""), 40u);
  EXPECT_EQ(count_of(chart, "class=\"plot bar failed\""), 40u);
  EXPECT_NE(chart.find("ok 30,350 75.9%"), std::string::npos) << "totals in the legend";
  // The bars of a reviews-down second are mostly degraded: taller than its ok bar.
  static const std::regex bar(R"re(class="plot bar (ok|degraded)" x="([^"]*)" y="[^"]*" )re"
                              R"re(width="[^"]*" height="([^"]*)")re");
  std::map<std::string, std::map<std::string, double>> height;  // x -> outcome -> height
  for (std::sregex_iterator it(chart.begin(), chart.end(), bar), end; it != end; ++it) {
    height[(*it)[2]][(*it)[1]] = std::stod((*it)[3]);
  }
  ASSERT_EQ(height.size(), 40u);
  std::size_t mostly_degraded = 0;
  for (const auto& [x, h] : height) mostly_degraded += h.at("degraded") > h.at("ok") ? 1 : 0;
  EXPECT_EQ(mostly_degraded, 10u);
}

TEST(GatewayReport, BreakerTimelineHasABandPerStateChangeForEachUpstream) {
  const run_record r = sample_run();
  const std::map<std::string, std::vector<band>> bands =
      bands_of(chart_with_id(weft::gateway::render_report(r), "breakers"));
  ASSERT_EQ(bands.size(), 5u);
  for (const std::string& upstream : r.upstreams) {
    ASSERT_TRUE(bands.count(upstream)) << upstream;
    const std::vector<band>& b = bands.at(upstream);
    // The bands tile the run without gaps or overlaps.
    EXPECT_DOUBLE_EQ(b.front().from, 0) << upstream;
    EXPECT_DOUBLE_EQ(b.back().to, 40) << upstream;
    for (std::size_t i = 1; i < b.size(); ++i) EXPECT_DOUBLE_EQ(b[i].from, b[i - 1].to);
  }
  for (const char* healthy : {"inventory", "pricing-1", "pricing-3"}) {
    ASSERT_EQ(bands.at(healthy).size(), 1u) << healthy;
    EXPECT_EQ(bands.at(healthy)[0].state, "closed");
  }
  const auto expect_states = [&](const std::string& upstream, const std::vector<band>& want) {
    const std::vector<band>& got = bands.at(upstream);
    ASSERT_EQ(got.size(), want.size()) << upstream;
    for (std::size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].state, want[i].state) << upstream << " band " << i;
      EXPECT_DOUBLE_EQ(got[i].from, want[i].from) << upstream << " band " << i;
      EXPECT_DOUBLE_EQ(got[i].to, want[i].to) << upstream << " band " << i;
    }
  };
  expect_states("pricing-2",
                {{"closed", 0, 12}, {"open", 12, 15}, {"half_open", 15, 16}, {"closed", 16, 40}});
  expect_states("reviews",
                {{"closed", 0, 20}, {"open", 20, 30}, {"half_open", 30, 31}, {"closed", 31, 40}});
  const std::string chart = chart_with_id(weft::gateway::render_report(r), "breakers");
  for (const char* legend : {">closed<", ">open<", ">half-open<"}) {
    EXPECT_NE(chart.find(legend), std::string::npos) << legend;
  }
}

TEST(GatewayReport, UnscrapedBreakersLeaveAGapAndUnknownStatesShowAsOther) {
  run_record r = sample_run();
  r.seconds[5].breakers.clear();
  r.seconds[6].breakers[0] = static_cast<breaker_view>(9);
  const auto bands = bands_of(chart_with_id(weft::gateway::render_report(r), "breakers"));
  const std::vector<band>& inventory = bands.at("inventory");
  ASSERT_EQ(inventory.size(), 3u);
  EXPECT_DOUBLE_EQ(inventory[0].to, 5);
  EXPECT_EQ(inventory[1].state, "other");
  EXPECT_DOUBLE_EQ(inventory[1].from, 6);
  EXPECT_DOUBLE_EQ(inventory[1].to, 7);
  EXPECT_EQ(inventory[2].state, "closed");
}

TEST(GatewayReport, ResilienceChartHasItsLinesAndTheQueue) {
  const std::string chart = chart_with_id(weft::gateway::render_report(sample_run()), "resilience");
  for (const char* series : {"retries", "hedges", "rejections", "queued"}) {
    EXPECT_NE(chart.find("data-series=\"" + std::string(series) + "\""), std::string::npos)
        << series;
  }
  EXPECT_NE(chart.find("class=\"plot area\""), std::string::npos);
}

TEST(GatewayReport, HeaderAndPhaseTableShowTheFigures) {
  const std::string html = weft::gateway::render_report(sample_run());
  for (const char* text :
       {"2025-01-02T03:04:05Z", "1,000 requests/s", "2 gateway workers", ">40,000<", ">30,350<",
        ">9,570<", ">40<", ">31.5<", "3 / 4", "pricing-2 answers after 300 ms", ">10\u201320 s<",
        ">310 ms<", ">1.2 s<", ">1.2 ms<", ">9,450<"}) {
    EXPECT_NE(html.find(text), std::string::npos) << text;
  }
  EXPECT_EQ(count_of(html, "<table class=\"phases\">"), 1u);
  const std::size_t table = html.find("<table class=\"phases\">");
  const std::string phases = html.substr(table, html.find("</table>", table) - table);
  EXPECT_EQ(count_of(phases, "<tr>"), 5u);  // the head and a row per phase
}

TEST(GatewayReport, ChecksTableShowsPassAndFail) {
  const std::string html = weft::gateway::render_report(sample_run());
  const std::size_t table = html.find("<table class=\"checks\">");
  ASSERT_NE(table, std::string::npos);
  const std::string checks = html.substr(table, html.find("</table>", table) - table);
  EXPECT_EQ(count_of(checks, "<span class=\"verdict pass\">PASS</span>"), 3u);
  EXPECT_EQ(count_of(checks, "<span class=\"verdict fail\">FAIL</span>"), 1u);
  const std::size_t failed_row = checks.find("<tr class=\"fail\">");
  ASSERT_NE(failed_row, std::string::npos);
  EXPECT_LT(failed_row, checks.find("gateway CPU under 20"));
  EXPECT_NE(checks.find("31.5 µs/request"), std::string::npos);
  EXPECT_NE(html.find("<div class=\"card bad\"><div class=\"v\">3 / 4</div>"), std::string::npos);
}

TEST(GatewayReport, EscapesEveryTextFromTheRecord) {
  run_record r = sample_run();
  r.title = "gateway <u>&</u>";
  r.phases[1].name = "<script>alert(1)</script>";
  r.phases[1].description = "\"quoted\" & <i>slanted</i>";
  r.upstreams[reviews] = "rev\"iews<x>";
  r.checks[0].detail = "<img src=x onerror=alert(1)>";
  r.started_at = "</title><script>alert(2)</script>";
  const std::string html = weft::gateway::render_report(r);
  expect_well_formed(html);
  for (const char* raw : {"<script>alert", "<u>", "<i>", "<img", "<x>", "rev\"iews"}) {
    EXPECT_EQ(html.find(raw), std::string::npos) << raw;
  }
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("data-upstream=\"rev&quot;iews&lt;x&gt;\""), std::string::npos);
  EXPECT_NE(html.find("gateway &lt;u&gt;&amp;&lt;/u&gt;"), std::string::npos);
  // The same scripts as a page without hostile names: nothing opened or closed one.
  EXPECT_EQ(count_of(html, "<script"), 3u);
  EXPECT_EQ(count_of(html, "</script>"), 3u);
  EXPECT_NE(html.find("\\u003cscript\\u003ealert(1)"), std::string::npos) << "hover data";
  EXPECT_EQ(weft::gateway::html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
}

TEST(GatewayReport, AnEmptyRunGetsAMessageInsteadOfCharts) {
  run_record r;
  const std::string html = weft::gateway::render_report(r);
  expect_well_formed(html);
  EXPECT_EQ(count_of(html, "<svg"), 0u);
  EXPECT_NE(html.find("data-charts-expected=\"0\""), std::string::npos);
  EXPECT_NE(html.find("recorded no seconds"), std::string::npos);
  EXPECT_NE(html.find("No phases were recorded"), std::string::npos);
  EXPECT_NE(html.find("No checks were recorded"), std::string::npos);
  EXPECT_NE(html.find("id=\"run-data\""), std::string::npos) << "the script still finds it";
  EXPECT_EQ(without_page_script(html).find("nan"), std::string::npos);
}

TEST(GatewayReport, NonFiniteAndHugeFiguresNeverReachTheSvg) {
  run_record r = sample_run();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  r.rate = nan;
  r.gateway_cpu_us_per_request = inf;
  r.phases[0].p99_ms = nan;
  r.phases[1].start_s = -inf;
  r.phases[2].end_s = nan;
  r.phases[3].requests_per_s = inf;
  r.seconds[3].p50_ms = nan;
  r.seconds[4].p99_ms = inf;
  r.seconds[5].p999_ms = -inf;
  r.seconds[6].p999_ms = 1e300;
  r.seconds[7].p50_ms = -5;
  r.seconds[8].t_s = nan;
  r.seconds[9].ok = UINT64_MAX;
  r.seconds[9].degraded = UINT64_MAX;
  r.seconds[10].bulkhead_queued = UINT64_MAX;
  r.seconds[11].retries = UINT64_MAX / 3;
  r.seconds[12].t_s = 1e300;
  const std::string html = weft::gateway::render_report(r);
  expect_well_formed(html);
  ASSERT_EQ(charts_of(html).size(), 5u);
  static const std::regex geometry(R"re(\s(x|y|x1|x2|y1|y2|width|height|cx|cy|r|d|points|)re"
                                   R"re(data-from|data-to|data-t0|data-t1)="([^"]*)")re");
  static const std::regex numbers_only(R"re([-0-9. MLHZhe+]*)re");
  std::size_t attributes = 0;
  for (const std::string& chart : charts_of(html)) {
    for (std::sregex_iterator it(chart.begin(), chart.end(), geometry), end; it != end; ++it) {
      ++attributes;
      const std::string value = (*it)[2];
      EXPECT_TRUE(std::regex_match(value, numbers_only)) << (*it)[1] << "=\"" << value << "\"";
      if ((*it)[1] != "d") {
        // Every coordinate parses, and is small enough for any renderer.
        const double v = std::stod(value);
        EXPECT_TRUE(std::isfinite(v));
        if ((*it)[1].str().rfind("data-", 0) != 0) {
          EXPECT_LE(std::fabs(v), 1e6);
        }
      }
    }
  }
  EXPECT_GT(attributes, 500u);
  static const std::regex words(R"re(\b(nan|inf|infinity)\b)re", std::regex::icase);
  const std::string visible = without_page_script(html);
  std::smatch m;
  EXPECT_FALSE(std::regex_search(visible, m, words))
      << "\"" << m.str()
      << "\" near: " << visible.substr(m.position(0) > 80 ? m.position(0) - 80 : 0, 160);
}

TEST(GatewayReport, FormatsLatenciesForPeople) {
  using weft::gateway::format_ms;
  EXPECT_EQ(format_ms(0), "0 ms");
  EXPECT_EQ(format_ms(0.042), "42 µs");
  EXPECT_EQ(format_ms(0.42), "0.42 ms");
  EXPECT_EQ(format_ms(1.234), "1.2 ms");
  EXPECT_EQ(format_ms(1), "1 ms");
  EXPECT_EQ(format_ms(9.97), "10 ms");
  EXPECT_EQ(format_ms(350.4), "350 ms");
  EXPECT_EQ(format_ms(999.7), "1 s");
  EXPECT_EQ(format_ms(2'100), "2.1 s");
  EXPECT_EQ(format_ms(45'000), "45 s");
  EXPECT_EQ(format_ms(std::numeric_limits<double>::quiet_NaN()), "\u2013");
  EXPECT_EQ(format_ms(std::numeric_limits<double>::infinity()), "\u2013");
  EXPECT_EQ(format_ms(-1), "\u2013");
}

TEST(GatewayReport, WriteReportWritesThePageAndNamesAPathItCannotWrite) {
  const run_record r = sample_run();
  const std::string path = "/tmp/gateway_report_test." + std::to_string(getpid()) + ".html";
  weft::gateway::write_report(r, path);
  std::ifstream in(path, std::ios::binary);
  std::stringstream written;
  written << in.rdbuf();
  std::remove(path.c_str());
  EXPECT_EQ(written.str(), weft::gateway::render_report(r));

  const std::string bad = "/nonexistent-weft-dir/report.html";
  try {
    weft::gateway::write_report(r, bad);
    ADD_FAILURE() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
  }
}

}  // namespace
