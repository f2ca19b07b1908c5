// A strict checker and a small reader of the Prometheus text exposition format (0.0.4), so the
// gateway's tests can hold its /metrics page to the format and the dashboard can read values
// back from a scraped page.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace weft::gateway {

/// Every problem in `text` as the text exposition format 0.0.4, in line order, each as
/// `line N: <what is wrong>` (e.g. `line 12: sample "foo_bucket" has le values not increasing
/// (0.5 after 1)`); empty when the page is valid. An empty text is a valid (empty) page.
///
/// Syntax, line by line (lines end in '\n'; blank lines and `#` comments other than HELP and
/// TYPE are ignored; blanks and tabs may separate tokens, and lead or trail a line):
///   - metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*; label
///     names starting with `__` are reserved, and a label name appears once per sample;
///   - label values are double-quoted, valid UTF-8, with only the escapes \\, \" and \n;
///     `{}` and a trailing comma (`{a="1",}`) are accepted, as in the format's grammar;
///   - a value is a decimal float ([+-]digits[.digits][e[+-]digits], also `.5` and `5.`) or
///     exactly `+Inf`, `-Inf` or `NaN` (not Go's other spellings: `Inf`, `inf`, `0x1p3`, ...);
///   - an optional timestamp is an integer ([+-]digits) that fits in 64 bits;
///   - `# HELP name text`, the text valid UTF-8 with only the escapes \\ and \n;
///   - `# TYPE name type`, type one of counter, gauge, histogram, summary, untyped (lower case);
///   - the text ends with a newline; CRLF line ends are rejected.
/// Families (a sample belongs to family `x` when named `x`, or `x_bucket`, `x_sum`, `x_count`
/// under `# TYPE x histogram`, `x_sum`, `x_count` under `# TYPE x summary`, `x_total`,
/// `x_created` under `# TYPE x counter`; any other sample is its own untyped family):
///   - at most one HELP and one TYPE per family, both before the family's first sample;
///   - a family's lines (HELP, TYPE, samples) are contiguous: it does not come back after
///     another family's lines;
///   - no name declared by HELP or TYPE is also a sample name of another declared family;
///   - no duplicate series (same sample name, same label set, label order aside);
///   - counter samples are not negative (NaN is accepted);
///   - a histogram `x` has only x_bucket, x_sum and x_count samples; per label set (without
///     `le`): every bucket has an `le` that is a float, le values strictly increase in the order
///     the buckets appear, cumulative counts do not decrease, an `le="+Inf"` bucket exists and
///     equals x_count, and there is one x_sum and one x_count; x_sum and x_count have no `le`;
///   - a summary `x` has x{quantile="q"} with q a float in [0,1], and per label set (without
///     `quantile`) an x_sum and an x_count (a summary without quantiles is fine); x_sum and
///     x_count have no `quantile`.
std::vector<std::string> check_exposition(std::string_view text);

/// One sample of a page: its name, its labels in page order with unescaped values, its value.
struct exposition_sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

/// The samples of `text` in page order (HELP, TYPE, comments and timestamps are dropped).
/// Throws std::invalid_argument naming the line when a line breaks the syntax above or the
/// text does not end with a newline (a truncated page must not read as a smaller value). Only
/// the syntax is checked; check_exposition holds a page to the whole format.
std::vector<exposition_sample> parse_exposition(std::string_view text);

/// The sum of the values of the samples named `name` that carry every (label, value) pair of
/// `label_filter` (other labels are free); 0 when none match. A NaN sample makes it NaN.
double sum_of(
    const std::vector<exposition_sample>& samples, std::string_view name,
    std::initializer_list<std::pair<std::string_view, std::string_view>> label_filter = {});

}  // namespace weft::gateway
