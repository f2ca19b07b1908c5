// The Prometheus text format checker and reader (tools/weft-gateway/exposition_check.hpp): valid
// pages of every type pass, each rule has a page that breaks it and is reported on the right
// line, and parse_exposition / sum_of read a realistic page back.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exposition_check.hpp"

namespace {

using weft::gateway::check_exposition;
using weft::gateway::exposition_sample;
using weft::gateway::parse_exposition;
using weft::gateway::sum_of;

std::string joined(const std::vector<std::string>& problems) {
  std::string out;
  for (const auto& p : problems) out += "  " + p + "\n";
  return out;
}

// The checker finds a problem on `line` whose text holds `rule`.
testing::AssertionResult has_problem(std::string_view text, int line, std::string_view rule) {
  const auto problems = check_exposition(text);
  const std::string prefix = "line " + std::to_string(line) + ": ";
  for (const auto& p : problems) {
    if (p.starts_with(prefix) && p.find(rule) != std::string::npos) {
      return testing::AssertionSuccess();
    }
  }
  return testing::AssertionFailure() << "no problem \"" << prefix << "..." << rule << "...\" in:\n"
                                     << joined(problems) << "for the page:\n"
                                     << text;
}

testing::AssertionResult is_valid(std::string_view text) {
  const auto problems = check_exposition(text);
  if (problems.empty()) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "problems:\n"
                                     << joined(problems) << "in the page:\n"
                                     << text;
}

// A page like weft-gateway's /metrics: every type, two label sets per histogram, escaped label
// values, special values, a timestamp, comments and a blank line.
constexpr std::string_view realistic_page =
    "# HELP weft_gateway_requests_total Requests answered, by outcome.\n"
    "# TYPE weft_gateway_requests_total counter\n"
    "weft_gateway_requests_total{outcome=\"ok\"} 1027\n"
    "weft_gateway_requests_total{outcome=\"degraded\"} 31\n"
    "weft_gateway_requests_total{outcome=\"failed\"} 4\n"
    "# HELP weft_gateway_requests_in_flight Requests in flight.\n"
    "# TYPE weft_gateway_requests_in_flight gauge\n"
    "weft_gateway_requests_in_flight 3\n"
    "\n"
    "# A plain comment is ignored.\n"
    "# HELP weft_gateway_request_duration_seconds Time to answer, by outcome.\n"
    "# TYPE weft_gateway_request_duration_seconds histogram\n"
    "weft_gateway_request_duration_seconds_bucket{outcome=\"ok\",le=\"0.005\"} 700\n"
    "weft_gateway_request_duration_seconds_bucket{outcome=\"ok\",le=\"0.05\"} 1000\n"
    "weft_gateway_request_duration_seconds_bucket{outcome=\"ok\",le=\"+Inf\"} 1027\n"
    "weft_gateway_request_duration_seconds_sum{outcome=\"ok\"} 6.25\n"
    "weft_gateway_request_duration_seconds_count{outcome=\"ok\"} 1027\n"
    "weft_gateway_request_duration_seconds_bucket{le=\"0.005\",outcome=\"failed\"} 0\n"
    "weft_gateway_request_duration_seconds_bucket{le=\"0.05\",outcome=\"failed\"} 1\n"
    "weft_gateway_request_duration_seconds_bucket{le=\"+Inf\",outcome=\"failed\"} 4\n"
    "weft_gateway_request_duration_seconds_sum{outcome=\"failed\"} 2.5e0\n"
    "weft_gateway_request_duration_seconds_count{outcome=\"failed\"} 4\n"
    "# HELP weft_gateway_breaker_state Each upstream's breaker: 0 closed, 1 open.\n"
    "# TYPE weft_gateway_breaker_state gauge\n"
    "weft_gateway_breaker_state{upstream=\"pricing-1\"} 0\n"
    "weft_gateway_breaker_state{upstream=\"pricing-2\"} 1\n"
    "weft_gateway_breaker_state{upstream=\"reviews\"} 0\n"
    "# HELP weft_resilience_events_total Events by layer and key.\n"
    "# TYPE weft_resilience_events_total counter\n"
    "weft_resilience_events_total{event=\"retry\",layer=\"retry\",key=\"a \\\"b\\\"\\\\c\\nd\"} 2\n"
    "weft_resilience_events_total{event=\"retry\",layer=\"retry\",key=\"plain\"} 5\n"
    "weft_resilience_events_total{event=\"timeout\",layer=\"timeout\",key=\"plain\"} 1\n"
    "# TYPE weft_gauge_specials gauge\n"
    "weft_gauge_specials{v=\"inf\"} +Inf\n"
    "weft_gauge_specials{v=\"-inf\"} -Inf\n"
    "weft_gauge_specials{v=\"nan\"} NaN 1700000000000\n";

// ---------------------------------------------------------------------------------------------
// Valid pages

TEST(ExpositionCheck, RealisticPagePasses) {
  EXPECT_TRUE(is_valid(realistic_page));
}

TEST(ExpositionCheck, EmptyPageAndBlankAndCommentLinesPass) {
  EXPECT_TRUE(is_valid(""));
  EXPECT_TRUE(is_valid("\n\n  \t\n# just a comment\n#\n"));
}

TEST(ExpositionCheck, EveryTypeWithSeveralLabelSetsPasses) {
  EXPECT_TRUE(
      is_valid("# TYPE c counter\n"
               "c{a=\"1\"} 0\n"
               "c{a=\"2\"} 3.5\n"
               "# HELP g A gauge may go below zero.\n"
               "# TYPE g gauge\n"
               "g -12.5e-3\n"
               "# TYPE h histogram\n"
               "# HELP h HELP may follow TYPE.\n"
               "h_bucket{path=\"/a\",le=\"0.1\"} 1\n"
               "h_bucket{path=\"/a\",le=\"1\"} 1\n"
               "h_bucket{path=\"/a\",le=\"+Inf\"} 2\n"
               "h_bucket{path=\"/b\",le=\"0.1\"} 0\n"
               "h_bucket{path=\"/b\",le=\"+Inf\"} 0\n"
               "h_count{path=\"/b\"} 0\n"
               "h_sum{path=\"/b\"} 0\n"
               "h_sum{path=\"/a\"} -3\n"
               "h_count{path=\"/a\"} 2\n"
               "# TYPE s summary\n"
               "s{quantile=\"0\"} 0.1\n"
               "s{quantile=\"0.5\"} NaN\n"
               "s{quantile=\"1\"} 9\n"
               "s_sum 12\n"
               "s_count 4\n"
               "# TYPE s2 summary\n"
               "s2_sum 0\n"
               "s2_count 0\n"
               "# TYPE u untyped\n"
               "u 1\n"
               "no_type_at_all:with_colons 2\n"));
}

TEST(ExpositionCheck, LabelSyntaxVariantsAndEscapesPass) {
  EXPECT_TRUE(
      is_valid("a{} 1\n"
               "b{x=\"1\",} 1\n"
               "c { x = \"1\" , y=\"\" } 1\n"
               "d{x=\"back\\\\slash \\\"quote\\\" new\\nline\"} 1\n"
               "e{x=\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"} 1\n"
               "f{x=\"{},=#\"}1\n"
               "\tg\t2\t\n"));
}

TEST(ExpositionCheck, ValuesAndTimestampsPass) {
  EXPECT_TRUE(
      is_valid("v{i=\"1\"} +Inf\n"
               "v{i=\"2\"} -Inf\n"
               "v{i=\"3\"} NaN\n"
               "v{i=\"4\"} 1e-400\n"
               "v{i=\"5\"} .5\n"
               "v{i=\"6\"} 5.\n"
               "v{i=\"7\"} +1.5E+3\n"
               "v{i=\"8\"} -0\n"
               "v{i=\"9\"} 1 1700000000000\n"
               "v{i=\"10\"} 1 -5\n"
               "v{i=\"11\"} 1 9223372036854775807\n"));
}

TEST(ExpositionCheck, CounterTotalAndCreatedSamplesBelongToTheTypedName) {
  EXPECT_TRUE(
      is_valid("# HELP jobs Jobs run.\n"
               "# TYPE jobs counter\n"
               "jobs_total{kind=\"a\"} 3\n"
               "jobs_created{kind=\"a\"} 1700000000\n"
               "# TYPE done_total counter\n"
               "done_total 1\n"));
  // Under `# TYPE jobs counter`, jobs_total is a sample of jobs: declaring it again clashes.
  EXPECT_TRUE(has_problem("# TYPE jobs counter\njobs_total 3\n# TYPE jobs_total counter\n", 3,
                          "a sample name of"));
}

// ---------------------------------------------------------------------------------------------
// Syntax

TEST(ExpositionCheck, TextMustEndWithANewline) {
  EXPECT_TRUE(has_problem("# TYPE a gauge\na 1", 2, "does not end with a newline"));
}

TEST(ExpositionCheck, CrlfLineEndsAreRejected) {
  EXPECT_TRUE(has_problem("a 1\nb 2\r\n", 2, "carriage return"));
}

TEST(ExpositionCheck, MetricNamesMustMatchTheGrammar) {
  EXPECT_TRUE(has_problem("ok 1\n1abc 1\n", 2, "invalid metric name \"1abc\""));
  EXPECT_TRUE(has_problem("ok 1\nfoo-bar 1\n", 2, "invalid metric name \"foo-bar\""));
  EXPECT_TRUE(has_problem("ok 1\n# HELP foo.bar x\n", 2, "invalid metric name \"foo.bar\""));
  EXPECT_TRUE(has_problem("ok 1\n# TYPE 9x gauge\n", 2, "invalid metric name \"9x\""));
  EXPECT_TRUE(has_problem("ok 1\n# HELP\n", 2, "HELP line has no metric name"));
}

TEST(ExpositionCheck, LabelNamesMustMatchTheGrammar) {
  EXPECT_TRUE(has_problem("a{ok=\"1\"} 1\na{1x=\"1\"} 1\n", 2, "invalid label name \"1x\""));
  EXPECT_TRUE(has_problem("a{ok=\"1\"} 1\na{a:b=\"1\"} 1\n", 2, "invalid label name \"a:b\""));
  EXPECT_TRUE(has_problem("a{ok=\"1\"} 1\na{,} 1\n", 2, "empty label name"));
}

TEST(ExpositionCheck, LabelNamesStartingWithTwoUnderscoresAreReserved) {
  EXPECT_TRUE(
      has_problem("a{_ok=\"1\"} 1\na{__name__=\"1\"} 1\n", 2, "reserved label name \"__name__\""));
}

TEST(ExpositionCheck, DuplicateLabelNamesInASampleAreAnError) {
  EXPECT_TRUE(
      has_problem("a{x=\"1\"} 1\na{x=\"1\",y=\"2\",x=\"3\"} 1\n", 2, "duplicate label name \"x\""));
}

TEST(ExpositionCheck, LabelValuesAreQuotedWithOnlyThreeEscapes) {
  EXPECT_TRUE(has_problem("a 1\na{x=\"tab\\t\"} 1\n", 2, "invalid escape \"\\t\""));
  EXPECT_TRUE(has_problem("a 1\na{x=1} 1\n", 2, "not quoted"));
  EXPECT_TRUE(has_problem("a 1\na{x=\"open} 1\n", 2, "unterminated value"));
  EXPECT_TRUE(has_problem("a 1\na{x=\"1\" 1\n", 2, "no ',' or '}'"));
  // Not UTF-8: a stray byte, an overlong '/', a UTF-16 surrogate, a cut sequence.
  for (const std::string_view bad : {"\xff", "\xc0\xaf", "\xed\xa0\x80", "ab\xc3"}) {
    EXPECT_TRUE(has_problem("a 1\na{x=\"" + std::string(bad) + "\"} 1\n", 2, "not UTF-8"));
  }
}

TEST(ExpositionCheck, ValuesMustBeFloats) {
  for (const std::string_view bad :
       {"abc", "Inf", "inf", "nan", "0x10", "1,5", "1e", "--1", "1e400", "1_000"}) {
    EXPECT_TRUE(has_problem("ok 1\nv " + std::string(bad) + "\n", 2, "not a float")) << bad;
  }
  EXPECT_TRUE(has_problem("ok 1\nv\n", 2, "has no value"));
}

TEST(ExpositionCheck, TimestampsMustBeIntegers) {
  EXPECT_TRUE(has_problem("ok 1\nv 1 1.5\n", 2, "timestamp \"1.5\""));
  EXPECT_TRUE(has_problem("ok 1\nv 1 9223372036854775808\n", 2, "not a 64-bit integer"));
  EXPECT_TRUE(has_problem("ok 1\nv 1 2 3\n", 2, "text after its timestamp"));
}

TEST(ExpositionCheck, HelpTextAllowsOnlyBackslashAndNewlineEscapes) {
  EXPECT_TRUE(is_valid("# HELP a Back\\\\slash and new\\nline.\na 1\n"));
  EXPECT_TRUE(has_problem("ok 1\n# HELP a Say \\\"hi\\\".\n", 2, "invalid escape"));
}

TEST(ExpositionCheck, TypeMustBeAKnownLowerCaseType) {
  EXPECT_TRUE(has_problem("ok 1\n# TYPE a timer\n", 2, "unknown metric type \"timer\""));
  EXPECT_TRUE(has_problem("ok 1\n# TYPE a COUNTER\n", 2, "unknown metric type \"COUNTER\""));
  EXPECT_TRUE(has_problem("ok 1\n# TYPE a\n", 2, "has no type"));
  EXPECT_TRUE(has_problem("ok 1\n# TYPE a gauge extra\n", 2, "text after its type"));
}

// ---------------------------------------------------------------------------------------------
// Families and series

TEST(ExpositionCheck, AtMostOneTypeAndOneHelpPerFamily) {
  EXPECT_TRUE(has_problem("# TYPE a gauge\n# TYPE a gauge\na 1\n", 2,
                          "second TYPE line for \"a\" (first on line 1)"));
  EXPECT_TRUE(has_problem("# HELP a x\n# HELP a y\na 1\n", 2,
                          "second HELP line for \"a\" (first on line 1)"));
}

TEST(ExpositionCheck, TypeAndHelpComeBeforeTheFamilysSamples) {
  EXPECT_TRUE(
      has_problem("a 1\n# TYPE a gauge\n", 2, "TYPE for \"a\" comes after its first sample"));
  EXPECT_TRUE(has_problem("a 1\n# HELP a x\n", 2, "HELP for \"a\" comes after its first sample"));
  // A histogram's samples have other names than the family.
  EXPECT_TRUE(has_problem("h_count 1\n# TYPE h histogram\n", 2,
                          "TYPE for \"h\" comes after its first sample \"h_count\""));
}

TEST(ExpositionCheck, AFamilysLinesAreContiguous) {
  EXPECT_TRUE(has_problem("# TYPE a gauge\na{x=\"1\"} 1\nb 2\na{x=\"2\"} 3\n", 4,
                          "family \"a\" reappears after family \"b\""));
  // Declared, left for another family, then sampled.
  EXPECT_TRUE(has_problem("# TYPE a gauge\n# TYPE b gauge\nb 1\na 1\n", 4,
                          "family \"a\" reappears after family \"b\""));
  // A histogram's _bucket, _sum and _count lines are one family.
  EXPECT_TRUE(
      has_problem("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nother 1\nh_count 1\n", 5,
                  "family \"h\" reappears after family \"other\""));
}

TEST(ExpositionCheck, NoDuplicateSeries) {
  EXPECT_TRUE(has_problem("a{x=\"1\",y=\"2\"} 1\na{x=\"2\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 1\n", 3,
                          "duplicate series a{y=\"2\",x=\"1\"} (first on line 1)"));
  EXPECT_TRUE(has_problem("a 1\na 2\n", 2, "duplicate series a{}"));
}

TEST(ExpositionCheck, CountersAreNotNegative) {
  EXPECT_TRUE(has_problem("# TYPE c counter\nc{a=\"1\"} 0\nc{a=\"2\"} -1\n", 3,
                          "sample \"c\" of counter \"c\" is negative (-1)"));
  EXPECT_TRUE(has_problem("# TYPE c counter\nc_total -Inf\n", 2, "is negative"));
  // A gauge may be negative.
  EXPECT_TRUE(is_valid("# TYPE g gauge\ng -1\n"));
}

TEST(ExpositionCheck, DeclaredNamesDoNotClashWithSampleNames) {
  EXPECT_TRUE(has_problem("# TYPE h histogram\n# TYPE h_bucket gauge\n", 2,
                          "declares \"h_bucket\", a sample name of histogram \"h\""));
  EXPECT_TRUE(has_problem("# TYPE h_sum gauge\n# TYPE h summary\n", 2,
                          "makes \"h_sum\" one of its sample names"));
}

// ---------------------------------------------------------------------------------------------
// Histograms

constexpr std::string_view histogram_head = "# HELP h H.\n# TYPE h histogram\n";  // lines 1-2

TEST(ExpositionCheck, AHistogramHasOnlyBucketSumAndCountSamples) {
  EXPECT_TRUE(has_problem(std::string(histogram_head) + "h 1\n", 3,
                          "histogram \"h\" has a sample named \"h\""));
}

TEST(ExpositionCheck, BucketsHaveAnLeLabelThatIsABound) {
  EXPECT_TRUE(has_problem(std::string(histogram_head) +
                              "h_bucket{le=\"+Inf\"} 1\nh_bucket{x=\"1\"} 1\nh_sum 1\nh_count 1\n",
                          4, "sample \"h_bucket\" has no le label"));
  EXPECT_TRUE(
      has_problem(std::string(histogram_head) +
                      "h_bucket{le=\"big\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
                  3, "le value \"big\" that is not a bucket bound"));
}

TEST(ExpositionCheck, LeValuesStrictlyIncrease) {
  const std::string page = std::string(histogram_head) +
                           "h_bucket{le=\"1\"} 1\n"
                           "h_bucket{le=\"0.5\"} 1\n"  // line 4
                           "h_bucket{le=\"+Inf\"} 1\n"
                           "h_sum 1\nh_count 1\n";
  EXPECT_TRUE(has_problem(page, 4, "sample \"h_bucket\" has le values not increasing"));
  // Equal bounds, spelled differently, are not increasing either.
  EXPECT_TRUE(has_problem(std::string(histogram_head) +
                              "h_bucket{le=\"1\"} 1\nh_bucket{le=\"1.0\"} 1\n"
                              "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
                          4, "le values not increasing"));
  // Increasing per label set: another set starting low is fine.
  EXPECT_TRUE(
      is_valid(std::string(histogram_head) +
               "h_bucket{a=\"1\",le=\"1\"} 1\nh_bucket{a=\"2\",le=\"0.5\"} 1\n"
               "h_bucket{a=\"1\",le=\"+Inf\"} 1\nh_bucket{a=\"2\",le=\"+Inf\"} 1\n"
               "h_sum{a=\"1\"} 1\nh_count{a=\"1\"} 1\nh_sum{a=\"2\"} 1\nh_count{a=\"2\"} 1\n"));
}

TEST(ExpositionCheck, BucketCountsAreCumulative) {
  EXPECT_TRUE(has_problem(std::string(histogram_head) +
                              "h_bucket{le=\"1\"} 5\nh_bucket{le=\"2\"} 3\n"
                              "h_bucket{le=\"+Inf\"} 5\nh_sum 1\nh_count 5\n",
                          4, "bucket counts decreasing (3 after 5)"));
}

TEST(ExpositionCheck, EveryLabelSetHasAnInfBucketEqualToCount) {
  EXPECT_TRUE(has_problem(std::string(histogram_head) +
                              "h_bucket{a=\"x\",le=\"1\"} 1\nh_bucket{a=\"x\",le=\"2\"} 2\n"
                              "h_sum{a=\"x\"} 1\nh_count{a=\"x\"} 2\n",
                          4, "histogram \"h\" series {a=\"x\"} has no le=\"+Inf\" bucket"));
  EXPECT_TRUE(has_problem(std::string(histogram_head) + "h_sum 1\nh_count 0\n", 3,
                          "no le=\"+Inf\" bucket (no buckets)"));
  EXPECT_TRUE(has_problem(std::string(histogram_head) +
                              "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 4\nh_sum 1\nh_count 5\n",
                          6, "sample \"h_count\" of series {} is 5 but its le=\"+Inf\" bucket"));
}

TEST(ExpositionCheck, EveryLabelSetHasSumAndCountWithoutLe) {
  EXPECT_TRUE(has_problem(std::string(histogram_head) + "h_bucket{le=\"+Inf\"} 1\nh_sum 1\n", 3,
                          "has no h_count sample"));
  EXPECT_TRUE(has_problem(std::string(histogram_head) + "h_bucket{le=\"+Inf\"} 1\nh_count 1\n", 3,
                          "has no h_sum sample"));
  EXPECT_TRUE(has_problem(
      std::string(histogram_head) + "h_bucket{le=\"+Inf\"} 1\nh_sum{le=\"+Inf\"} 1\nh_count 1\n", 4,
      "sample \"h_sum\" has an le label"));
}

// ---------------------------------------------------------------------------------------------
// Summaries

constexpr std::string_view summary_head = "# TYPE s summary\n";  // line 1

TEST(ExpositionCheck, SummaryQuantilesAreInZeroToOne) {
  EXPECT_TRUE(has_problem(std::string(summary_head) + "s{quantile=\"1.5\"} 1\ns_sum 1\ns_count 1\n",
                          2, "quantile \"1.5\" outside [0,1]"));
  EXPECT_TRUE(
      has_problem(std::string(summary_head) + "s{quantile=\"-0.1\"} 1\ns_sum 1\ns_count 1\n", 2,
                  "outside [0,1]"));
  EXPECT_TRUE(has_problem(std::string(summary_head) + "s{quantile=\"NaN\"} 1\ns_sum 1\ns_count 1\n",
                          2, "outside [0,1]"));
  EXPECT_TRUE(has_problem(std::string(summary_head) + "s{x=\"1\"} 1\ns_sum{x=\"1\"} 1\n"
                                                      "s_count{x=\"1\"} 1\n",
                          2, "has no quantile label"));
}

TEST(ExpositionCheck, SummaryHasSumAndCountPerLabelSet) {
  EXPECT_TRUE(
      has_problem(std::string(summary_head) + "s{a=\"1\",quantile=\"0.5\"} 1\ns_sum{a=\"1\"} 1\n",
                  2, "summary \"s\" series {a=\"1\"} has no s_count sample"));
  EXPECT_TRUE(has_problem(std::string(summary_head) + "s{quantile=\"0.5\"} 1\ns_count 1\n", 2,
                          "has no s_sum sample"));
  EXPECT_TRUE(has_problem(
      std::string(summary_head) + "s{quantile=\"0.5\"} 1\ns_sum 1\ns_count{quantile=\"0.5\"} 1\n",
      4, "sample \"s_count\" has a quantile label"));
}

TEST(ExpositionCheck, ProblemsComeInLineOrderAndAllAreReported) {
  const auto problems = check_exposition(
      "# TYPE h histogram\n"
      "h_bucket{le=\"+Inf\"} 1\n"  // line 2: no h_sum, h_count (found at the end)
      "bad-name 1\n"               // line 3
      "# TYPE c counter\n"
      "c -1\n");  // line 5
  ASSERT_EQ(problems.size(), 4u) << joined(problems);
  EXPECT_TRUE(problems[0].starts_with("line 2: ")) << joined(problems);
  EXPECT_TRUE(problems[1].starts_with("line 2: ")) << joined(problems);
  EXPECT_TRUE(problems[2].starts_with("line 3: ")) << joined(problems);
  EXPECT_TRUE(problems[3].starts_with("line 5: ")) << joined(problems);
}

// ---------------------------------------------------------------------------------------------
// Reading values

TEST(ParseExposition, ReadsSamplesWithUnescapedLabelsInPageOrder) {
  const std::vector<exposition_sample> samples = parse_exposition(realistic_page);
  ASSERT_EQ(samples.size(), 23u);
  EXPECT_EQ(samples[0].name, "weft_gateway_requests_total");
  ASSERT_EQ(samples[0].labels.size(), 1u);
  EXPECT_EQ(samples[0].labels[0], (std::pair<std::string, std::string>{"outcome", "ok"}));
  EXPECT_EQ(samples[0].value, 1027);
  EXPECT_EQ(samples[3].name, "weft_gateway_requests_in_flight");
  EXPECT_TRUE(samples[3].labels.empty());
  const exposition_sample& escaped = samples[17];
  EXPECT_EQ(escaped.name, "weft_resilience_events_total");
  ASSERT_EQ(escaped.labels.size(), 3u);
  EXPECT_EQ(escaped.labels[2].second, "a \"b\"\\c\nd");
  EXPECT_EQ(samples[20].value, HUGE_VAL);
  EXPECT_EQ(samples[21].value, -HUGE_VAL);
  EXPECT_TRUE(std::isnan(samples[22].value));  // its timestamp is dropped
}

TEST(ParseExposition, SumOfAddsSamplesMatchingNameAndLabels) {
  const auto samples = parse_exposition(realistic_page);
  EXPECT_EQ(sum_of(samples, "weft_gateway_requests_total"), 1027 + 31 + 4);
  EXPECT_EQ(sum_of(samples, "weft_gateway_requests_total", {{"outcome", "degraded"}}), 31);
  EXPECT_EQ(sum_of(samples, "weft_gateway_requests_total", {{"outcome", "lost"}}), 0);
  EXPECT_EQ(sum_of(samples, "weft_gateway_breaker_state", {{"upstream", "pricing-2"}}), 1);
  EXPECT_EQ(sum_of(samples, "weft_resilience_events_total", {{"event", "retry"}}), 7);
  EXPECT_EQ(sum_of(samples, "weft_resilience_events_total", {{"key", "plain"}}), 6);
  EXPECT_EQ(sum_of(samples, "weft_resilience_events_total",
                   {{"event", "retry"}, {"key", "a \"b\"\\c\nd"}}),
            2);
  EXPECT_EQ(
      sum_of(samples, "weft_resilience_events_total", {{"event", "timeout"}, {"layer", "retry"}}),
      0);
  EXPECT_EQ(sum_of(samples, "weft_gateway_request_duration_seconds_count"), 1031);
  EXPECT_EQ(sum_of(samples, "weft_gateway_request_duration_seconds_bucket", {{"le", "+Inf"}}),
            1031);
  EXPECT_EQ(sum_of(samples, "no_such_metric"), 0);
}

TEST(ParseExposition, ThrowsNamingTheLineOfMalformedInput) {
  const auto message_of = [](std::string_view text) -> std::string {
    try {
      parse_exposition(text);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "(no exception)";
  };
  EXPECT_TRUE(message_of("a 1\n\nb{x=\"1\"} one\n").starts_with("line 3: "))
      << message_of("a 1\n\nb{x=\"1\"} one\n");
  EXPECT_NE(message_of("a 1\nb{x=1} 1\n").find("line 2: "), std::string::npos);
  EXPECT_NE(message_of("a 1\n# TYPE a nonsense\n").find("line 2: "), std::string::npos);
  // A truncated page would read as a smaller value.
  EXPECT_NE(message_of("a 1\nb 12").find("line 2: the text does not end with a newline"),
            std::string::npos);
  // Only syntax: a duplicate series still reads.
  EXPECT_EQ(parse_exposition("a 1\na 2\n").size(), 2u);
}

}  // namespace
