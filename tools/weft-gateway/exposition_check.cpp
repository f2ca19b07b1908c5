// The Prometheus text format checker and reader: one line parser serves both, so the dashboard
// never reads a line the checker would call malformed; the checker then applies the family,
// series, histogram and summary rules to the parsed lines.
#include "exposition_check.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace weft::gateway {
namespace {

using label_list = std::vector<std::pair<std::string, std::string>>;

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}
bool is_name_char(char c, bool colon) {
  return is_name_start(c, colon) || is_digit(c);
}

bool is_metric_name(std::string_view s) {
  if (s.empty() || !is_name_start(s[0], true)) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_name_char(c, true); });
}

bool is_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    // The lead byte gives the length; each length has a least code point it may encode.
    const std::size_t extra = (c & 0xe0) == 0xc0   ? 1
                              : (c & 0xf0) == 0xe0 ? 2
                              : (c & 0xf8) == 0xf0 ? 3
                                                   : 0;
    if (extra == 0 || s.size() - i <= extra) return false;
    constexpr std::uint32_t least[] = {0, 0x80, 0x800, 0x10000};
    std::uint32_t cp = c & (0x3fu >> extra);
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past Unicode are not UTF-8.
    if (cp < least[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

// The format's floats are Go's ParseFloat; this takes the decimal subset every client writes
// plus the three spellings the format names, so an odd spelling is reported rather than guessed.
std::optional<double> parse_float(std::string_view s) {
  if (s == "+Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  std::size_t i = 0;
  const bool negative = i < s.size() && s[i] == '-';
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  const std::size_t mantissa = i;
  std::size_t digits = 0;
  const auto skip_digits = [&] {
    while (i < s.size() && is_digit(s[i])) {
      ++i;
      ++digits;
    }
  };
  skip_digits();
  if (i < s.size() && s[i] == '.') {
    ++i;
    skip_digits();
  }
  if (digits == 0) return std::nullopt;
  const std::size_t mantissa_end = i;
  long long exponent = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    const bool exp_negative = i < s.size() && s[i] == '-';
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (i == s.size() || !is_digit(s[i])) return std::nullopt;
    while (i < s.size() && is_digit(s[i])) {
      if (exponent < 1'000'000) exponent = exponent * 10 + (s[i] - '0');
      ++i;
    }
    if (exp_negative) exponent = -exponent;
  }
  if (i != s.size()) return std::nullopt;
  // from_chars rather than strtod, which follows the C locale's decimal point; it takes no sign.
  const std::string_view unsigned_text = s.substr(mantissa);
  double v = 0;
  const auto [end, ec] =
      std::from_chars(unsigned_text.data(), unsigned_text.data() + unsigned_text.size(), v);
  if (ec == std::errc::result_out_of_range) {
    // Go rejects overflow but reads underflow as zero; tell them apart by the decimal exponent
    // of the first significant digit.
    long long position = 0;
    bool before_point = true;
    bool found = false;
    for (std::size_t k = mantissa; k < mantissa_end && !found; ++k) {
      if (s[k] == '.') {
        before_point = false;
      } else if (s[k] != '0') {
        found = true;
        if (before_point) {
          for (std::size_t m = k; m < mantissa_end && s[m] != '.'; ++m) ++position;
        }
      } else if (!before_point) {
        --position;
      }
    }
    if (found && position + exponent > 0) return std::nullopt;
    v = 0;
  } else if (ec != std::errc{} || end != unsigned_text.data() + unsigned_text.size()) {
    return std::nullopt;
  }
  return negative ? -v : v;
}

std::optional<std::int64_t> parse_timestamp(std::string_view s) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty() || !(is_digit(s[0]) || (s[0] == '-' && s.size() > 1 && is_digit(s[1])))) {
    return std::nullopt;
  }
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string format_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
  return ec == std::errc{} ? std::string(buffer, end) : std::string("?");
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_labels(const label_list& labels) {
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    out += labels[i].first + "=\"" + escape_label_value(labels[i].second) + '"';
  }
  return out + '}';
}

std::string quoted(std::string_view s) {
  return '"' + std::string(s) + '"';
}

// ---------------------------------------------------------------------------------------------
// One line

enum class line_kind { blank, comment, help, type, sample };

struct parsed_line {
  line_kind kind = line_kind::blank;
  std::string name;  // the HELP or TYPE line's metric name, or the sample's name
  std::string text;  // the TYPE line's type (the HELP text is checked, not kept)
  label_list labels;
  double value = 0;
  // A syntax error: the line means nothing and parse_exposition refuses it.
  std::string error;
  // Rules a well-formed line breaks (reserved or repeated label names, invalid UTF-8): the
  // checker reports them, the reader still reads the line.
  std::vector<std::string> issues;
};

class line_parser {
 public:
  explicit line_parser(std::string_view line) : s_(line) {}

  parsed_line parse() {
    parsed_line out;
    if (!s_.empty() && s_.back() == '\r') {
      out.error = "line ends with a carriage return (CRLF line ends are not allowed)";
      return out;
    }
    skip_blanks();
    if (at_end()) return out;
    if (s_[i_] == '#') {
      ++i_;
      skip_blanks();
      const std::string_view token = read_token();
      if (token == "HELP") {
        out.kind = line_kind::help;
        parse_help(out);
      } else if (token == "TYPE") {
        out.kind = line_kind::type;
        parse_type(out);
      } else {
        out.kind = line_kind::comment;
      }
      return out;
    }
    out.kind = line_kind::sample;
    parse_sample(out);
    return out;
  }

 private:
  bool at_end() const { return i_ >= s_.size(); }
  void skip_blanks() {
    while (!at_end() && is_blank(s_[i_])) ++i_;
  }
  // Up to the next blank or the end of the line.
  std::string_view read_token() {
    const std::size_t start = i_;
    while (!at_end() && !is_blank(s_[i_])) ++i_;
    return s_.substr(start, i_ - start);
  }
  // Up to the next character in `stops`, a blank or the end, for naming a bad token.
  std::string_view token_until(std::size_t from, std::string_view stops) const {
    std::size_t end = from;
    while (end < s_.size() && !is_blank(s_[end]) && stops.find(s_[end]) == std::string_view::npos) {
      ++end;
    }
    return s_.substr(from, end - from);
  }

  bool read_metric_name(parsed_line& out, std::string_view what) {
    skip_blanks();
    const std::string_view name = read_token();
    if (name.empty()) {
      out.error = std::string(what) + " line has no metric name";
      return false;
    }
    if (!is_metric_name(name)) {
      out.error = std::string(what) + " line has invalid metric name " + quoted(name);
      return false;
    }
    out.name = std::string(name);
    return true;
  }

  void parse_help(parsed_line& out) {
    if (!read_metric_name(out, "HELP")) return;
    skip_blanks();
    const std::string_view text = s_.substr(i_);
    for (std::size_t k = 0; k < text.size(); ++k) {
      if (text[k] != '\\') continue;
      if (k + 1 < text.size() && (text[k + 1] == '\\' || text[k + 1] == 'n')) {
        ++k;
        continue;
      }
      out.error = "HELP text of " + quoted(out.name) + " has invalid escape " +
                  quoted(text.substr(k, k + 1 < text.size() ? 2 : 1)) + " (only \\\\ and \\n)";
      return;
    }
    if (!is_utf8(text)) out.issues.push_back("HELP text of " + quoted(out.name) + " is not UTF-8");
  }

  void parse_type(parsed_line& out) {
    if (!read_metric_name(out, "TYPE")) return;
    skip_blanks();
    const std::string_view type = read_token();
    if (type.empty()) {
      out.error = "TYPE line of " + quoted(out.name) + " has no type";
      return;
    }
    if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
        type != "untyped") {
      out.error = "TYPE line of " + quoted(out.name) + " has unknown metric type " + quoted(type) +
                  " (counter, gauge, histogram, summary or untyped)";
      return;
    }
    skip_blanks();
    if (!at_end()) {
      out.error = "TYPE line of " + quoted(out.name) + " has text after its type";
      return;
    }
    out.text = std::string(type);
  }

  void parse_sample(parsed_line& out) {
    const std::size_t start = i_;
    while (!at_end() && is_name_char(s_[i_], true)) ++i_;
    const std::string_view name = s_.substr(start, i_ - start);
    if (name.empty() || !is_name_start(name[0], true) ||
        (!at_end() && !is_blank(s_[i_]) && s_[i_] != '{')) {
      out.error = "invalid metric name " + quoted(token_until(start, "{"));
      return;
    }
    out.name = std::string(name);
    skip_blanks();
    if (!at_end() && s_[i_] == '{') {
      ++i_;
      if (!parse_labels(out)) return;
      skip_blanks();
    }
    const std::string_view value = read_token();
    if (value.empty()) {
      out.error = "sample " + quoted(out.name) + " has no value";
      return;
    }
    const auto v = parse_float(value);
    if (!v) {
      out.error = "sample " + quoted(out.name) + " has value " + quoted(value) +
                  " that is not a float (decimal, +Inf, -Inf or NaN)";
      return;
    }
    out.value = *v;
    skip_blanks();
    if (at_end()) return;
    const std::string_view timestamp = read_token();
    if (!parse_timestamp(timestamp)) {
      out.error = "sample " + quoted(out.name) + " has timestamp " + quoted(timestamp) +
                  " that is not a 64-bit integer (milliseconds)";
      return;
    }
    skip_blanks();
    if (!at_end()) out.error = "sample " + quoted(out.name) + " has text after its timestamp";
  }

  // After the '{'; leaves i_ after the '}'.
  bool parse_labels(parsed_line& out) {
    const std::string sample = "sample " + quoted(out.name);
    while (true) {
      skip_blanks();
      if (at_end()) {
        out.error = sample + " has an unterminated label set (no '}')";
        return false;
      }
      if (s_[i_] == '}') {
        ++i_;
        return true;
      }
      const std::size_t start = i_;
      while (!at_end() && is_name_char(s_[i_], false)) ++i_;
      const std::string_view name = s_.substr(start, i_ - start);
      if (name.empty() || !is_name_start(name[0], false) ||
          (!at_end() && !is_blank(s_[i_]) && s_[i_] != '=')) {
        const std::string_view bad = token_until(start, "=,}\"");
        out.error = bad.empty() ? sample + " has an empty label name"
                                : sample + " has invalid label name " + quoted(bad);
        return false;
      }
      const std::string label = "label " + quoted(name) + " of " + sample;
      skip_blanks();
      if (at_end() || s_[i_] != '=') {
        out.error = label + " has no '='";
        return false;
      }
      ++i_;
      skip_blanks();
      if (at_end() || s_[i_] != '"') {
        out.error = label + " has a value that is not quoted";
        return false;
      }
      ++i_;
      std::string value;
      bool closed = false;
      while (!at_end()) {
        const char c = s_[i_++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c != '\\') {
          value += c;
          continue;
        }
        const char e = at_end() ? '\0' : s_[i_];
        if (e == '\\' || e == '"') {
          value += e;
        } else if (e == 'n') {
          value += '\n';
        } else {
          out.error = label + " has invalid escape " +
                      quoted(at_end() ? std::string("\\") : std::string{'\\', e}) +
                      " in its value (only \\\\, \\\" and \\n)";
          return false;
        }
        ++i_;
      }
      if (!closed) {
        out.error = label + " has an unterminated value";
        return false;
      }
      if (!is_utf8(value)) out.issues.push_back(label + " has a value that is not UTF-8");
      if (name.starts_with("__")) {
        out.issues.push_back(sample + " uses reserved label name " + quoted(name) +
                             " (names starting with __ are reserved)");
      }
      const bool repeated = std::any_of(out.labels.begin(), out.labels.end(),
                                        [&](const auto& l) { return l.first == name; });
      if (repeated) out.issues.push_back(sample + " has duplicate label name " + quoted(name));
      out.labels.emplace_back(std::string(name), std::move(value));
      skip_blanks();
      if (!at_end() && s_[i_] == ',') {
        ++i_;
      } else if (at_end() || s_[i_] != '}') {
        out.error = sample + " has no ',' or '}' after label " + quoted(name);
        return false;
      }
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

// Calls f(line_number, line, ends_with_newline) for each line of `text`.
template <typename F>
void for_each_line(std::string_view text, F&& f) {
  std::size_t number = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    ++number;
    const std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      f(number, text.substr(pos), false);
      return;
    }
    f(number, text.substr(pos, nl - pos), true);
    pos = nl + 1;
  }
}

// ---------------------------------------------------------------------------------------------
// Families

// The suffixes a type gives its samples' names ("" is the family's own name).
std::vector<std::string_view> suffixes_of(std::string_view type) {
  if (type == "histogram") return {"_bucket", "_sum", "_count"};
  if (type == "summary") return {"", "_sum", "_count"};
  if (type == "counter") return {"", "_total", "_created"};
  return {""};
}

bool admits(std::string_view type, std::string_view suffix) {
  const auto s = suffixes_of(type);
  return std::find(s.begin(), s.end(), suffix) != s.end();
}

struct sample_record {
  std::string suffix;
  std::string name;
  label_list labels;
  double value = 0;
  std::size_t line = 0;
};

struct family_info {
  std::string type;  // empty until its TYPE line
  std::size_t type_line = 0;
  std::size_t help_line = 0;
  std::size_t first_sample_line = 0;
  std::size_t last_line = 0;           // 0: no line yet
  std::vector<sample_record> samples;  // histograms and summaries, for the checks at the end
};

// (value, line) of a histogram's or summary's _sum or _count.
struct located {
  double value = 0;
  std::size_t line = 0;
};

label_list without(label_list labels, std::string_view name) {
  std::erase_if(labels, [&](const auto& l) { return l.first == name; });
  return labels;
}

const std::string* find_label(const label_list& labels, std::string_view name) {
  for (const auto& l : labels) {
    if (l.first == name) return &l.second;
  }
  return nullptr;
}

class checker {
 public:
  std::vector<std::string> run(std::string_view text) {
    std::size_t last = 0;
    bool terminated = true;
    for_each_line(text, [&](std::size_t number, std::string_view line, bool ends_with_newline) {
      last = number;
      terminated = ends_with_newline;
      on_line(number, line);
    });
    if (!terminated) add(last, "the text does not end with a newline");
    for (auto& [name, f] : families_) {
      if (f.type == "histogram") check_histogram(name, f);
      if (f.type == "summary") check_summary(name, f);
    }
    // By line, then in the order found (std::stable_sort trips clang 19 over libstdc++ 12).
    std::vector<std::size_t> order(problems_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return std::pair(problems_[a].first, a) < std::pair(problems_[b].first, b);
    });
    std::vector<std::string> out;
    out.reserve(problems_.size());
    for (const std::size_t i : order) out.push_back(std::move(problems_[i].second));
    return out;
  }

 private:
  void add(std::size_t line, const std::string& what) {
    problems_.emplace_back(line, "line " + std::to_string(line) + ": " + what);
  }

  void on_line(std::size_t number, std::string_view line) {
    parsed_line p = line_parser(line).parse();
    if (!p.error.empty()) {
      add(number, p.error);
      return;
    }
    for (const auto& issue : p.issues) add(number, issue);
    switch (p.kind) {
      case line_kind::blank:
      case line_kind::comment:
        return;
      case line_kind::help:
        on_help(number, p);
        return;
      case line_kind::type:
        on_type(number, p);
        return;
      case line_kind::sample:
        on_sample(number, p);
        return;
    }
  }

  // The typed family whose sample `name` is, with the suffix: the name's own family if none.
  std::pair<std::string, std::string> resolve(const std::string& name) const {
    for (const std::string_view suffix : {"_bucket", "_sum", "_count", "_total", "_created"}) {
      if (name.size() <= suffix.size() || !name.ends_with(suffix)) continue;
      const std::string base = name.substr(0, name.size() - suffix.size());
      const auto it = families_.find(base);
      if (it != families_.end() && admits(it->second.type, suffix)) {
        return {base, std::string(suffix)};
      }
    }
    return {name, ""};
  }

  // The line's family becomes the current one; coming back to a family is an error.
  family_info& enter(const std::string& family, std::size_t number) {
    family_info& f = families_[family];
    if (family != current_ && f.last_line != 0) {
      add(number, "family " + quoted(family) + " reappears after family " + quoted(current_) +
                      " (a family's lines must be contiguous; it was last on line " +
                      std::to_string(f.last_line) + ")");
    }
    current_ = family;
    f.last_line = number;
    return f;
  }

  // A HELP or TYPE line naming what is already a sample name of a typed family.
  void check_declared_name(std::size_t number, const parsed_line& p, std::string_view what) {
    const auto [family, suffix] = resolve(p.name);
    if (suffix.empty()) return;
    const family_info& f = families_.at(family);
    add(number, std::string(what) + " line declares " + quoted(p.name) + ", a sample name of " +
                    f.type + " " + quoted(family) + " (TYPE on line " +
                    std::to_string(f.type_line) + ")");
  }

  void on_help(std::size_t number, const parsed_line& p) {
    check_declared_name(number, p, "HELP");
    family_info& f = enter(p.name, number);
    if (f.help_line != 0) {
      add(number, "second HELP line for " + quoted(p.name) + " (first on line " +
                      std::to_string(f.help_line) + ")");
      return;
    }
    f.help_line = number;
    if (f.first_sample_line != 0) {
      add(number, "HELP for " + quoted(p.name) + " comes after its first sample (line " +
                      std::to_string(f.first_sample_line) +
                      "); HELP and TYPE come before a family's samples");
    }
  }

  void on_type(std::size_t number, const parsed_line& p) {
    check_declared_name(number, p, "TYPE");
    family_info& f = enter(p.name, number);
    if (f.type_line != 0) {
      add(number, "second TYPE line for " + quoted(p.name) + " (first on line " +
                      std::to_string(f.type_line) + ")");
      return;
    }
    if (f.first_sample_line != 0) {
      add(number, "TYPE for " + quoted(p.name) + " comes after its first sample (line " +
                      std::to_string(f.first_sample_line) +
                      "); TYPE must come before a family's samples");
    }
    for (const std::string_view suffix : suffixes_of(p.text)) {
      const std::string sample = p.name + std::string(suffix);
      const auto s = first_sample_.find(sample);
      if (f.first_sample_line == 0 && s != first_sample_.end()) {
        add(number, "TYPE for " + quoted(p.name) + " comes after its first sample " +
                        quoted(sample) + " (line " + std::to_string(s->second) +
                        "); TYPE must come before a family's samples");
        break;
      }
    }
    for (const std::string_view suffix : suffixes_of(p.text)) {
      if (suffix.empty()) continue;
      const std::string sample = p.name + std::string(suffix);
      const auto other = families_.find(sample);
      if (other == families_.end()) continue;
      const std::size_t declared =
          other->second.type_line != 0 ? other->second.type_line : other->second.help_line;
      if (declared == 0) continue;
      add(number, "TYPE " + p.name + " " + p.text + " makes " + quoted(sample) +
                      " one of its sample names, but it is a family declared on line " +
                      std::to_string(declared));
    }
    f.type = p.text;
    f.type_line = number;
  }

  void on_sample(std::size_t number, parsed_line& p) {
    const auto [family, suffix] = resolve(p.name);
    family_info& f = enter(family, number);
    if (f.first_sample_line == 0) f.first_sample_line = number;
    first_sample_.try_emplace(p.name, number);
    const std::string type = f.type.empty() ? "untyped" : f.type;
    if (!admits(type, suffix)) {
      // Only a histogram's own name can get here: every other name resolves to a suffix.
      add(number, type + " " + quoted(family) + " has a sample named " + quoted(p.name) +
                      "; its samples are " + family + "_bucket, " + family + "_sum and " + family +
                      "_count");
      return;
    }
    label_list sorted = p.labels;
    std::sort(sorted.begin(), sorted.end());
    const auto [it, inserted] = series_.try_emplace({p.name, sorted}, number);
    if (!inserted) {
      add(number, "duplicate series " + p.name + format_labels(p.labels) + " (first on line " +
                      std::to_string(it->second) + ")");
      return;
    }
    if (type == "counter" && p.value < 0) {
      add(number, "sample " + quoted(p.name) + " of counter " + quoted(family) + " is negative (" +
                      format_number(p.value) + ")");
    }
    if (type == "histogram" || type == "summary") {
      f.samples.push_back({suffix, p.name, std::move(p.labels), p.value, number});
    }
  }

  void check_histogram(const std::string& family, const family_info& f) {
    struct group {
      std::size_t first_line = 0;
      std::size_t last_bucket_line = 0;
      std::optional<double> previous_le;
      std::string previous_le_text;
      std::optional<double> previous_count;
      std::optional<located> inf;
      std::optional<located> sum;
      std::optional<located> count;
    };
    std::map<label_list, group> groups;
    for (const sample_record& s : f.samples) {
      const std::string sample = "sample " + quoted(s.name);
      const std::string* le = find_label(s.labels, "le");
      label_list key = without(s.labels, "le");
      std::sort(key.begin(), key.end());
      if (s.suffix != "_bucket") {
        if (le != nullptr) {
          add(s.line, sample + " has an le label; only " + family + "_bucket samples have one");
        }
        group& g = groups[key];
        if (g.first_line == 0) g.first_line = s.line;
        std::optional<located>& slot = s.suffix == "_sum" ? g.sum : g.count;
        if (!slot) slot = located{s.value, s.line};
        if (s.suffix == "_count" && !(s.value >= 0)) {
          add(s.line, sample + " has count " + format_number(s.value) + " that is not a count");
        }
        continue;
      }
      if (le == nullptr) {
        add(s.line, sample + " has no le label");
        continue;
      }
      group& g = groups[key];
      if (g.first_line == 0) g.first_line = s.line;
      g.last_bucket_line = s.line;
      const auto bound = parse_float(*le);
      if (!bound || std::isnan(*bound)) {
        add(s.line, sample + " has le value " + quoted(*le) + " that is not a bucket bound");
        continue;
      }
      if (g.previous_le && !(*bound > *g.previous_le)) {
        add(s.line, sample + " has le values not increasing (le=" + quoted(*le) +
                        " after le=" + quoted(g.previous_le_text) + ")");
      } else {
        g.previous_le = *bound;
        g.previous_le_text = *le;
      }
      if (!(s.value >= 0)) {
        add(s.line,
            sample + " has bucket count " + format_number(s.value) + " that is not a count");
      } else if (g.previous_count && s.value < *g.previous_count) {
        add(s.line, sample + " has bucket counts decreasing (" + format_number(s.value) +
                        " after " + format_number(*g.previous_count) + ")");
      } else {
        g.previous_count = s.value;
      }
      if (std::isinf(*bound) && *bound > 0 && !g.inf) g.inf = located{s.value, s.line};
    }
    for (const auto& [key, g] : groups) {
      const std::string series = "histogram " + quoted(family) + " series " + format_labels(key);
      if (!g.inf) {
        add(g.last_bucket_line != 0 ? g.last_bucket_line : g.first_line,
            series + " has no le=\"+Inf\" bucket" +
                (g.last_bucket_line != 0 ? "" : " (no buckets)"));
      }
      if (!g.count) add(g.first_line, series + " has no " + family + "_count sample");
      if (!g.sum) add(g.first_line, series + " has no " + family + "_sum sample");
      if (g.inf && g.count && g.inf->value != g.count->value) {
        add(g.count->line, "sample " + quoted(family + "_count") + " of series " +
                               format_labels(key) + " is " + format_number(g.count->value) +
                               " but its le=\"+Inf\" bucket (line " + std::to_string(g.inf->line) +
                               ") is " + format_number(g.inf->value) + "; they must be equal");
      }
    }
  }

  void check_summary(const std::string& family, const family_info& f) {
    struct group {
      std::size_t first_line = 0;
      std::optional<located> sum;
      std::optional<located> count;
    };
    std::map<label_list, group> groups;
    for (const sample_record& s : f.samples) {
      const std::string sample = "sample " + quoted(s.name);
      const std::string* quantile = find_label(s.labels, "quantile");
      label_list key = without(s.labels, "quantile");
      std::sort(key.begin(), key.end());
      group& g = groups[key];
      if (g.first_line == 0) g.first_line = s.line;
      if (s.suffix.empty()) {
        if (quantile == nullptr) {
          add(s.line, sample + " of summary " + quoted(family) + " has no quantile label");
          continue;
        }
        const auto q = parse_float(*quantile);
        if (!q || !(*q >= 0 && *q <= 1)) {
          add(s.line, sample + " has quantile " + quoted(*quantile) + " outside [0,1]");
        }
        continue;
      }
      if (quantile != nullptr) {
        add(s.line, sample + " has a quantile label; only " + family + " samples have one");
      }
      std::optional<located>& slot = s.suffix == "_sum" ? g.sum : g.count;
      if (!slot) slot = located{s.value, s.line};
      if (s.suffix == "_count" && !(s.value >= 0)) {
        add(s.line, sample + " has count " + format_number(s.value) + " that is not a count");
      }
    }
    for (const auto& [key, g] : groups) {
      const std::string series = "summary " + quoted(family) + " series " + format_labels(key);
      if (!g.count) add(g.first_line, series + " has no " + family + "_count sample");
      if (!g.sum) add(g.first_line, series + " has no " + family + "_sum sample");
    }
  }

  std::vector<std::pair<std::size_t, std::string>> problems_;
  std::map<std::string, family_info> families_;
  std::string current_;
  std::unordered_map<std::string, std::size_t> first_sample_;  // sample name → first line
  std::map<std::pair<std::string, label_list>, std::size_t> series_;
};

}  // namespace

std::vector<std::string> check_exposition(std::string_view text) {
  return checker{}.run(text);
}

std::vector<exposition_sample> parse_exposition(std::string_view text) {
  std::vector<exposition_sample> out;
  for_each_line(text, [&](std::size_t number, std::string_view line, bool ends_with_newline) {
    parsed_line p = line_parser(line).parse();
    if (!p.error.empty()) {
      throw std::invalid_argument("line " + std::to_string(number) + ": " + p.error);
    }
    if (!ends_with_newline) {
      throw std::invalid_argument("line " + std::to_string(number) +
                                  ": the text does not end with a newline");
    }
    if (p.kind == line_kind::sample) {
      out.push_back({std::move(p.name), std::move(p.labels), p.value});
    }
  });
  return out;
}

double sum_of(const std::vector<exposition_sample>& samples, std::string_view name,
              std::initializer_list<std::pair<std::string_view, std::string_view>> label_filter) {
  double total = 0;
  for (const auto& s : samples) {
    if (s.name != name) continue;
    const bool matches = std::all_of(label_filter.begin(), label_filter.end(), [&](const auto& f) {
      return std::any_of(s.labels.begin(), s.labels.end(),
                         [&](const auto& l) { return l.first == f.first && l.second == f.second; });
    });
    if (matches) total += s.value;
  }
  return total;
}

}  // namespace weft::gateway
