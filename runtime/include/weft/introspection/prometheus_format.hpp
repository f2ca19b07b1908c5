// weft::prometheus: the pieces of the Prometheus text exposition format (0.0.4) that the runtime's
// metrics, the resilience layers' sink and services' own /metrics pages write: family headers,
// numbers, escaped label values, samples. Plain functions appending to a std::string; thread
// safety is the string's.
//
// Thread safety: plain functions of their arguments: calls on different strings may run
// concurrently; one string is not synchronised.
//
// Cancellation: nothing here suspends.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace weft::prometheus {

/// `# HELP name help` and `# TYPE name type`.
inline void family(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

/// The shortest text that reads back as the same double, in %g style (0.0005, not 5e-04, as
/// other exporters write bucket bounds); the format spells the special values +Inf, -Inf, NaN.
inline void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
  out.append(buf, r.ptr);
}

inline void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

/// A label value escaped as the format requires: backslash, double quote and newline.
inline void append_escaped(std::string& out, std::string_view value) {
  for (const char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

/// `name{labels} value`, the labels given as text already escaped (empty for none).
template <class V>
void sample(std::string& out, std::string_view name, std::string_view suffix,
            std::string_view label_text, V value) {
  out += name;
  out += suffix;
  if (!label_text.empty()) {
    out += '{';
    out += label_text;
    out += '}';
  }
  out += ' ';
  append_number(out, value);
  out += '\n';
}

}  // namespace weft::prometheus
