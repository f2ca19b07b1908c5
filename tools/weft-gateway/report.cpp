// Renders a weft-gateway run_record as one HTML page. The charts are SVG written here rather than
// drawn by a script, so the page reads the same with scripts off, in a mail client or in a
// screenshot; the inline script only checks the charts (for the browser test) and adds a hover
// readout.
#include "report.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace weft::gateway {
namespace {

// ---------------------------------------------------------------------------------------------
// Numbers as text

[[gnu::format(printf, 1, 2)]] std::string format_string(const char* format, ...) {
  char buffer[128];
  va_list args;
  va_start(args, format);
  va_list again;
  va_copy(again, args);
  const int n = std::vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  std::string out;
  if (n > 0 && static_cast<std::size_t>(n) < sizeof buffer) {
    out.assign(buffer, static_cast<std::size_t>(n));
  } else if (n > 0) {
    out.resize(static_cast<std::size_t>(n) + 1);
    std::vsnprintf(out.data(), out.size(), format, again);
    out.resize(static_cast<std::size_t>(n));
  }
  va_end(again);
  return out;
}

// "2.50" -> "2.5", "3.0" -> "3": fixed-point output without the noise.
std::string trim_zeros(std::string s) {
  if (s.find('.') == std::string::npos) return s;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

const char* const dash = "\u2013";

// An SVG coordinate. Every one goes through here, so no "nan" or "inf" can reach an attribute
// however broken the record is, and absurd values stay small enough for any renderer.
std::string px(double v) {
  if (!std::isfinite(v)) v = 0;
  v = std::clamp(v, -1e6, 1e6);
  return trim_zeros(format_string("%.1f", v));
}

// Seconds as an attribute value the test and the script can parse.
std::string seconds_attr(double t) {
  return std::isfinite(t) ? format_string("%g", t) : "0";
}

std::string with_commas(std::uint64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  const std::size_t lead = digits.size() % 3;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && i % 3 == lead) out += ',';
    out += digits[i];
  }
  return out;
}

// A rate or a mean: whole numbers when large, a little precision when small.
std::string format_number(double v) {
  if (!std::isfinite(v)) return dash;
  const double a = std::fabs(v);
  if (a >= 1e15) return format_string("%.3g", v);
  if (a >= 100) {
    const std::string s = with_commas(static_cast<std::uint64_t>(std::llround(a)));
    return v < 0 ? "-" + s : s;
  }
  if (a >= 10) return trim_zeros(format_string("%.1f", v));
  return trim_zeros(format_string("%.2f", v));
}

// Axis tick labels: short, and exact for the 1-2-5 steps the axes use.
std::string format_tick(double v) {
  if (!std::isfinite(v)) return dash;
  const double a = std::fabs(v);
  if (a >= 1e12) return format_string("%.3g", v);
  if (a >= 1e9) return format_string("%gG", v / 1e9);
  if (a >= 1e6) return format_string("%gM", v / 1e6);
  if (a >= 1e4) return format_string("%gk", v / 1e3);
  return format_string("%g", v);
}

std::string format_seconds(double t) {
  if (!std::isfinite(t)) return dash;
  return trim_zeros(format_string("%.1f", t));
}

std::string format_percent(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return "";
  const double p = 100.0 * static_cast<double>(part) / static_cast<double>(whole);
  if (p > 0 && p < 0.1) return "<0.1%";
  return trim_zeros(format_string("%.1f", p)) + "%";
}

// JSON for the hover readout. "<" is escaped so no string can close the script element.
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || c == '<' || c == '>' || c == '&') {
      out += format_string("\\u%04x", static_cast<unsigned>(u));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  return std::isfinite(v) ? format_string("%.15g", v) : "null";
}

double answers_of(const second_sample& s) {
  // Summed as doubles: three counters near UINT64_MAX must not wrap to a small number.
  return static_cast<double>(s.ok) + static_cast<double>(s.degraded) +
         static_cast<double>(s.failed);
}

// ---------------------------------------------------------------------------------------------
// Geometry

constexpr double chart_width = 1200;
constexpr double plot_left = 118;    // room for upstream names in the breaker timeline
constexpr double plot_right = 1150;  // room for the last time label
constexpr double legend_y = 18;
// Phase names sit in a strip above the plot, so no line or bar can run through them.
constexpr double label_strip = 20;
constexpr double plot_top = legend_y + 12 + label_strip;

const char* const phase_fills[] = {"#edf2f7", "#fef3c7", "#fde2e1",
                                   "#dcfce7", "#e9e3fb", "#dbeafe"};
constexpr std::size_t phase_fill_count = sizeof phase_fills / sizeof phase_fills[0];

struct time_axis {
  double t0 = 0;
  double t1 = 1;
  double x(double t) const {
    if (!std::isfinite(t)) t = t0;
    const double f = std::clamp((t - t0) / (t1 - t0), 0.0, 1.0);
    return plot_left + f * (plot_right - plot_left);
  }
};

struct value_axis {
  bool log = false;
  double lo = 0;
  double hi = 1;
  double top = 0;
  double height = 1;
  double step = 1;  // between ticks, when linear
  double y(double v) const {
    double f = 0;
    if (log) {
      if (!(v > 0)) v = lo;  // also catches NaN
      f = (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    } else {
      f = (v - lo) / (hi - lo);
    }
    if (std::isnan(f)) f = 0;
    return top + height * (1 - std::clamp(f, 0.0, 1.0));
  }
};

// 1, 2 or 5 times a power of ten, giving about `target` steps over `range`.
double nice_step(double range, double target) {
  if (!std::isfinite(range) || range <= 0) return 1;
  const double raw = range / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double n = raw / magnitude;
  const double step = n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10;
  return step * magnitude;
}

// From 0 to a little above `max_value`, in whole steps: every linear axis here counts things.
value_axis linear_axis(double max_value, double top, double height, double ticks = 4) {
  if (!std::isfinite(max_value) || max_value <= 0) max_value = 1;
  max_value = std::min(max_value, 1e300);
  const double step = std::max(1.0, nice_step(max_value * 1.05, ticks));
  return {false, 0, std::ceil(max_value * 1.05 / step) * step, top, height, step};
}

// Whole decades around the values, clamped to 1 µs .. ~3 hours so one absurd value cannot make
// the rest of the chart a flat line.
value_axis log_axis(double min_value, double max_value, double top, double height) {
  double lo = 1;
  double hi = 1000;
  if (std::isfinite(min_value) && std::isfinite(max_value) && min_value > 0 &&
      max_value >= min_value) {
    lo = std::pow(10.0, std::floor(std::log10(std::max(min_value, 1e-3))));
    hi = std::pow(10.0, std::ceil(std::log10(std::min(max_value, 1e7))));
    if (hi <= lo) hi = lo * 10;
  }
  return {true, lo, hi, top, height, 1};
}

// One second of the run on the time axis: [a, b], b being the sample's t_s.
struct span {
  double a = 0;
  double b = 0;
  bool valid = false;
  double mid() const { return (a + b) / 2; }
};

std::vector<span> spans_of(const run_record& r) {
  std::vector<span> out;
  out.reserve(r.seconds.size());
  std::optional<double> previous;
  for (const second_sample& s : r.seconds) {
    span sp;
    if (std::isfinite(s.t_s)) {
      sp.b = s.t_s;
      sp.a = previous && *previous < s.t_s ? *previous : s.t_s - 1;
      sp.a = std::max(sp.a, std::min(0.0, sp.b));
      sp.valid = true;
      previous = s.t_s;
    }
    out.push_back(sp);
  }
  return out;
}

time_axis time_axis_of(const run_record& r) {
  time_axis axis;
  for (const second_sample& s : r.seconds) {
    if (std::isfinite(s.t_s)) axis.t1 = std::max(axis.t1, s.t_s);
  }
  for (const phase_record& p : r.phases) {
    if (std::isfinite(p.end_s)) axis.t1 = std::max(axis.t1, p.end_s);
  }
  axis.t1 = std::min(axis.t1, 1e15);
  return axis;
}

// ---------------------------------------------------------------------------------------------
// SVG pieces

struct legend_item {
  std::string label;
  std::string color;
  bool line = true;  // a stroke; otherwise a filled box
  bool dashed = false;
};

void draw_legend(std::string& svg, const std::vector<legend_item>& items) {
  double x = plot_left;
  svg += "<g class=\"legend\">";
  for (const legend_item& item : items) {
    if (item.line) {
      svg += "<line x1=\"" + px(x) + "\" y1=\"" + px(legend_y - 4) + "\" x2=\"" + px(x + 18) +
             "\" y2=\"" + px(legend_y - 4) + "\" stroke=\"" + item.color + "\" stroke-width=\"3\"" +
             (item.dashed ? " stroke-dasharray=\"5 3\"" : "") + "/>";
    } else {
      svg += "<rect x=\"" + px(x + 3) + "\" y=\"" + px(legend_y - 10) +
             "\" width=\"12\" height=\"12\" rx=\"2\" fill=\"" + item.color + "\"/>";
    }
    svg += "<text x=\"" + px(x + 24) + "\" y=\"" + px(legend_y) + "\">" + html_escape(item.label) +
           "</text>";
    // Approximate text width: the legend only needs not to overlap itself.
    x += 24 + 7.2 * static_cast<double>(item.label.size()) + 22;
  }
  svg += "</g>";
}

std::string phase_title(const phase_record& p) {
  return html_escape(p.name) + " (" + format_seconds(p.start_s) + dash + format_seconds(p.end_s) +
         " s)";
}

// `text` cut to at most `max_chars` characters, the last being an ellipsis when it is cut. Counts
// UTF-8 characters, so a name is never cut inside one.
std::string shortened(const std::string& text, std::size_t max_chars) {
  const auto starts_character = [](char c) {
    return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  };
  const auto chars =
      static_cast<std::size_t>(std::count_if(text.begin(), text.end(), starts_character));
  if (chars <= max_chars) return text;
  if (max_chars < 2) return {};
  std::size_t kept = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (starts_character(text[i]) && kept++ == max_chars - 1) return text.substr(0, i) + "\u2026";
  }
  return text;
}

// The phases as shaded bands behind the data. In the top panel of a chart the bands reach up
// into the label strip and carry the phase names there.
void draw_phase_bands(std::string& svg, const run_record& r, const time_axis& tx, double top,
                      double height, bool named) {
  const double band_top = named ? top - label_strip : top;
  for (std::size_t k = 0; k < r.phases.size(); ++k) {
    const phase_record& p = r.phases[k];
    if (!std::isfinite(p.start_s) || !std::isfinite(p.end_s) || p.end_s <= p.start_s) continue;
    const double x0 = tx.x(p.start_s);
    const double x1 = tx.x(p.end_s);
    svg += "<rect class=\"phase-band\" data-phase=\"" + std::to_string(k) + "\" x=\"" + px(x0) +
           "\" y=\"" + px(band_top) + "\" width=\"" + px(x1 - x0) + "\" height=\"" +
           px(top + height - band_top) + "\" fill=\"" + phase_fills[k % phase_fill_count] +
           "\"><title>" + phase_title(p) + "</title></rect>";
    if (!named) continue;
    // Cut the name to the band; the full one is in the band's tooltip and the phase table.
    const std::string name =
        shortened(p.name, static_cast<std::size_t>(std::max(0.0, (x1 - x0 - 8) / 6.8)));
    if (name.empty()) continue;
    svg += "<text class=\"phase-label\" data-phase=\"" + std::to_string(k) + "\" x=\"" +
           px(x0 + 5) + "\" y=\"" + px(top - 6) + "\">" + html_escape(name) + "</text>";
  }
}

// Phase boundaries drawn over the data, so they stay visible where bars cover the bands.
void draw_phase_edges(std::string& svg, const run_record& r, const time_axis& tx, double top,
                      double height) {
  for (const phase_record& p : r.phases) {
    if (!std::isfinite(p.start_s) || p.start_s <= tx.t0) continue;
    const double x = tx.x(p.start_s);
    svg += "<line class=\"phase-edge\" x1=\"" + px(x) + "\" y1=\"" + px(top) + "\" x2=\"" + px(x) +
           "\" y2=\"" + px(top + height) + "\"/>";
  }
}

void draw_time_ticks(std::string& svg, const time_axis& tx, double top, double height,
                     bool labelled) {
  const double step = nice_step(tx.t1 - tx.t0, 12);
  svg += "<g class=\"axis x\">";
  for (int k = 0; k < 200; ++k) {
    const double t = tx.t0 + step * k;
    if (t > tx.t1 + step * 1e-9) break;
    const double x = tx.x(t);
    svg += "<line class=\"grid\" x1=\"" + px(x) + "\" y1=\"" + px(top) + "\" x2=\"" + px(x) +
           "\" y2=\"" + px(top + height) + "\"/>";
    if (labelled) {
      svg += "<text x=\"" + px(x) + "\" y=\"" + px(top + height + 16) +
             "\" text-anchor=\"middle\">" + format_tick(t) + " s</text>";
    }
  }
  svg += "<line class=\"axis-line\" x1=\"" + px(plot_left) + "\" y1=\"" + px(top + height) +
         "\" x2=\"" + px(plot_right) + "\" y2=\"" + px(top + height) + "\"/>";
  svg += "</g>";
}

void draw_value_ticks(std::string& svg, const value_axis& ya, const std::string& title,
                      std::string (*label)(double)) {
  svg += "<g class=\"axis y\">";
  const auto tick = [&](double v, bool labelled, bool minor) {
    const double y = ya.y(v);
    svg += std::string("<line class=\"") + (minor ? "grid minor" : "grid") + "\" x1=\"" +
           px(plot_left) + "\" y1=\"" + px(y) + "\" x2=\"" + px(plot_right) + "\" y2=\"" + px(y) +
           "\"/>";
    if (labelled) {
      svg += "<text x=\"" + px(plot_left - 8) + "\" y=\"" + px(y + 4) + "\" text-anchor=\"end\">" +
             label(v) + "</text>";
    }
  };
  if (ya.log) {
    const int decades = static_cast<int>(std::lround(std::log10(ya.hi / ya.lo)));
    for (int d = 0; d <= decades && d < 40; ++d) {
      const double v = ya.lo * std::pow(10.0, d);
      tick(v, true, false);
      if (d == decades) break;
      // With few decades the 2s and 5s help to read a value; with many they are clutter.
      if (decades <= 4) {
        tick(v * 2, decades <= 2, true);
        tick(v * 5, decades <= 2, true);
      }
    }
  } else {
    for (int k = 0; k < 100; ++k) {
      const double v = ya.lo + ya.step * k;
      if (v > ya.hi + ya.step * 1e-9) break;
      tick(v, true, false);
    }
  }
  const double mid = ya.top + ya.height / 2;
  svg += "<text class=\"axis-title\" transform=\"translate(" + px(plot_left - 62) + " " + px(mid) +
         ") rotate(-90)\" text-anchor=\"middle\">" + html_escape(title) + "</text>";
  svg += "</g>";
}

std::string svg_open(const std::string& id, const time_axis& tx, double height,
                     const std::string& label) {
  return "<svg class=\"chart\" id=\"" + id + "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
         px(chart_width) + "\" height=\"" + px(height) + "\" viewBox=\"0 0 " + px(chart_width) +
         " " + px(height) + "\" role=\"img\" aria-label=\"" + html_escape(label) + "\" data-t0=\"" +
         seconds_attr(tx.t0) + "\" data-t1=\"" + seconds_attr(tx.t1) + "\" data-left=\"" +
         px(plot_left) + "\" data-right=\"" + px(plot_right) + "\">";
}

std::string svg_close(double top, double bottom) {
  // The hover cursor; hidden until the script moves it.
  return "<line class=\"cursor\" x1=\"0\" y1=\"" + px(top) + "\" x2=\"0\" y2=\"" + px(bottom) +
         "\" visibility=\"hidden\"/></svg>\n";
}

// A line through one value per second, broken where a second has no value (no answers, or a
// figure that is not finite), so a gap is not drawn as a slope.
template <typename Value>
void draw_line(std::string& svg, const run_record& r, const std::vector<span>& spans,
               const time_axis& tx, const value_axis& ya, const std::string& color,
               const std::string& series, Value value) {
  std::string d;
  std::size_t run = 0;
  const auto end_run = [&] {
    if (run == 1) d += "h0.1";  // a lone point still shows, as a dot
    run = 0;
  };
  for (std::size_t i = 0; i < r.seconds.size(); ++i) {
    const std::optional<double> v = spans[i].valid ? value(r.seconds[i]) : std::nullopt;
    if (!v || !std::isfinite(*v)) {
      end_run();
      continue;
    }
    d += (run == 0 ? "M" : "L") + px(tx.x(spans[i].mid())) + " " + px(ya.y(*v));
    ++run;
  }
  end_run();
  if (d.empty()) return;
  svg += "<path class=\"plot line\" data-series=\"" + series + "\" d=\"" + d + "\" stroke=\"" +
         color + "\"/>";
}

// ---------------------------------------------------------------------------------------------
// The charts

struct chart_context {
  const run_record& r;
  const std::vector<span>& spans;
  const time_axis& tx;
};

std::string section_head(const std::string& title, const std::string& caption) {
  return "<section class=\"chart-section\"><h2>" + html_escape(title) +
         "</h2><p class=\"caption\">" + caption + "</p>\n";
}

std::string latency_chart(const chart_context& c) {
  constexpr double top = plot_top;
  constexpr double height = 250;
  double lo = INFINITY;
  double hi = -INFINITY;
  for (const second_sample& s : c.r.seconds) {
    if (answers_of(s) <= 0) continue;
    for (const double v : {s.p50_ms, s.p99_ms, s.p999_ms}) {
      if (std::isfinite(v) && v > 0) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    }
  }
  const value_axis ya = log_axis(lo, hi, top, height);
  const double total = top + height + 42;
  std::string svg = section_head(
      "Latency",
      "Percentiles of the answers that arrived in each second, timed from the instant each "
      "request was due (open loop), so time spent queued behind a slow upstream counts. Log "
      "scale: a fault moves latency by orders of magnitude.");
  svg += svg_open("latency", c.tx, total, "latency percentiles over time");
  draw_phase_bands(svg, c.r, c.tx, top, height, true);
  draw_time_ticks(svg, c.tx, top, height, true);
  draw_value_ticks(svg, ya, "latency", format_ms);
  const auto percentile = [](double second_sample::*field) {
    return [field](const second_sample& s) -> std::optional<double> {
      const double v = s.*field;
      if (answers_of(s) <= 0 || !std::isfinite(v) || v <= 0) return std::nullopt;
      return v;
    };
  };
  draw_line(svg, c.r, c.spans, c.tx, ya, "#2b6cb0", "p50", percentile(&second_sample::p50_ms));
  draw_line(svg, c.r, c.spans, c.tx, ya, "#dd6b20", "p99", percentile(&second_sample::p99_ms));
  draw_line(svg, c.r, c.spans, c.tx, ya, "#c53030", "p99.9", percentile(&second_sample::p999_ms));
  draw_phase_edges(svg, c.r, c.tx, top, height);
  draw_legend(svg, {{"p50", "#2b6cb0"}, {"p99", "#dd6b20"}, {"p99.9", "#c53030"}});
  svg += svg_close(top, top + height);
  return svg + "</section>\n";
}

std::string throughput_chart(const chart_context& c) {
  constexpr double top = plot_top;
  constexpr double height = 200;
  double hi = 0;
  for (const second_sample& s : c.r.seconds) hi = std::max(hi, answers_of(s));
  const bool offered = std::isfinite(c.r.rate) && c.r.rate > 0;
  if (offered) hi = std::max(hi, c.r.rate);
  const value_axis ya = linear_axis(hi, top, height);
  const double total = top + height + 42;
  std::string svg = section_head(
      "Throughput",
      "Answers that arrived in each second, whatever their outcome, against the rate the load "
      "sent. The load does not wait for answers, so a dip here is the gateway falling behind, "
      "not the load backing off.");
  svg += svg_open("throughput", c.tx, total, "answers per second over time");
  draw_phase_bands(svg, c.r, c.tx, top, height, true);
  draw_time_ticks(svg, c.tx, top, height, true);
  draw_value_ticks(svg, ya, "answers/s", format_tick);
  if (offered) {
    const double y = ya.y(c.r.rate);
    svg += "<path class=\"plot ref\" data-series=\"offered\" d=\"M" + px(plot_left) + " " + px(y) +
           "H" + px(plot_right) + "\" stroke=\"#718096\" stroke-dasharray=\"6 4\"/>";
  }
  draw_line(svg, c.r, c.spans, c.tx, ya, "#2b6cb0", "answers",
            [](const second_sample& s) -> std::optional<double> { return answers_of(s); });
  draw_phase_edges(svg, c.r, c.tx, top, height);
  std::vector<legend_item> legend = {{"answers/s", "#2b6cb0"}};
  if (offered) legend.push_back({"sent: " + format_number(c.r.rate) + "/s", "#718096", true, true});
  draw_legend(svg, legend);
  svg += svg_close(top, top + height);
  return svg + "</section>\n";
}

const char* const ok_color = "#38a169";
const char* const degraded_color = "#ecc94b";
const char* const failed_color = "#e53e3e";

std::string outcome_chart(const chart_context& c) {
  constexpr double top = plot_top;
  constexpr double height = 200;
  double hi = 0;
  for (const second_sample& s : c.r.seconds) hi = std::max(hi, answers_of(s));
  const value_axis ya = linear_axis(hi, top, height);
  const double total = top + height + 42;
  const run_record& r = c.r;
  std::string svg = section_head(
      "Outcomes",
      "Each second's answers stacked by outcome: <b>ok</b>, <b>degraded</b> (answered without a "
      "part, e.g. no reviews, which is the gateway doing its job) and <b>failed</b>. Run totals: " +
          with_commas(r.ok) + " ok, " + with_commas(r.degraded) + " degraded, " +
          with_commas(r.failed) + " failed, " + with_commas(r.lost) + " lost of " +
          with_commas(r.sent) + " sent.");
  svg += svg_open("outcomes", c.tx, total, "outcome mix over time");
  draw_phase_bands(svg, r, c.tx, top, height, true);
  draw_time_ticks(svg, c.tx, top, height, true);
  draw_value_ticks(svg, ya, "answers/s", format_tick);
  for (std::size_t i = 0; i < r.seconds.size(); ++i) {
    if (!c.spans[i].valid) continue;
    const second_sample& s = r.seconds[i];
    const double x0 = c.tx.x(c.spans[i].a);
    // Slightly wider than the second so neighbouring bars leave no hairline gaps.
    const double width = std::max(c.tx.x(c.spans[i].b) - x0 + 0.4, 0.6);
    double base = 0;
    const std::pair<const char*, std::uint64_t> parts[] = {
        {"ok", s.ok}, {"degraded", s.degraded}, {"failed", s.failed}};
    for (const auto& [name, count] : parts) {
      if (count == 0) continue;
      const double y_low = ya.y(base);
      base += static_cast<double>(count);
      const double y_high = ya.y(base);
      const char* color = name[0] == 'o'   ? ok_color
                          : name[0] == 'd' ? degraded_color
                                           : failed_color;
      svg += std::string("<rect class=\"plot bar ") + name + "\" x=\"" + px(x0) + "\" y=\"" +
             px(y_high) + "\" width=\"" + px(width) + "\" height=\"" +
             px(std::max(y_low - y_high, 0.0)) + "\" fill=\"" + color + "\"/>";
    }
  }
  draw_phase_edges(svg, r, c.tx, top, height);
  draw_legend(svg,
              {{"ok " + with_commas(r.ok) + " " + format_percent(r.ok, r.sent), ok_color, false},
               {"degraded " + with_commas(r.degraded) + " " + format_percent(r.degraded, r.sent),
                degraded_color, false},
               {"failed " + with_commas(r.failed) + " " + format_percent(r.failed, r.sent),
                failed_color, false}});
  svg += svg_close(top, top + height);
  return svg + "</section>\n";
}

const char* state_name(breaker_view v) {
  switch (v) {
    case breaker_view::closed:
      return "closed";
    case breaker_view::open:
      return "open";
    case breaker_view::half_open:
      return "half_open";
    case breaker_view::other:
      break;
  }
  return "other";
}

const char* state_color(breaker_view v) {
  switch (v) {
    case breaker_view::closed:
      return "#9ae6b4";
    case breaker_view::open:
      return "#e53e3e";
    case breaker_view::half_open:
      return "#f6ad55";
    case breaker_view::other:
      break;
  }
  return "#a0aec0";
}

// Values outside the enum (a newer gateway) are shown as "other" rather than trusted.
breaker_view known_state(breaker_view v) {
  return static_cast<std::uint8_t>(v) <= 3 ? v : breaker_view::other;
}

std::string breaker_chart(const chart_context& c) {
  constexpr double top = plot_top;
  constexpr double row = 30;
  const run_record& r = c.r;
  const double height = row * static_cast<double>(r.upstreams.size());
  const double total = top + height + 42;
  std::string svg = section_head(
      "Circuit breakers",
      "Each upstream's breaker as the gateway's /metrics showed it every second. An open "
      "breaker sheds calls to a sick upstream at once instead of letting them queue; half-open "
      "is the breaker letting a few probes through to see whether it has recovered.");
  svg += svg_open("breakers", c.tx, total, "breaker states over time");
  draw_phase_bands(svg, r, c.tx, top, height, true);
  draw_time_ticks(svg, c.tx, top, height, true);
  for (std::size_t u = 0; u < r.upstreams.size(); ++u) {
    const double y = top + row * static_cast<double>(u);
    const std::string name = shortened(r.upstreams[u], 15);
    svg += "<text class=\"row-label\" x=\"" + px(plot_left - 8) + "\" y=\"" + px(y + row / 2 + 4) +
           "\" text-anchor=\"end\">" + html_escape(name) + "<title>" + html_escape(r.upstreams[u]) +
           "</title></text>";
    // One band per run of seconds in the same state.
    std::optional<breaker_view> state;
    double from = 0;
    double to = 0;
    const auto flush = [&] {
      if (!state) return;
      const double x0 = c.tx.x(from);
      svg += std::string("<rect class=\"plot band state-") + state_name(*state) +
             "\" data-upstream=\"" + html_escape(r.upstreams[u]) + "\" data-from=\"" +
             seconds_attr(from) + "\" data-to=\"" + seconds_attr(to) + "\" x=\"" + px(x0) +
             "\" y=\"" + px(y + 5) + "\" width=\"" + px(std::max(c.tx.x(to) - x0, 0.6)) +
             "\" height=\"" + px(row - 10) + "\" fill=\"" + state_color(*state) + "\"><title>" +
             html_escape(r.upstreams[u]) + ": " + state_name(*state) + ", " + format_seconds(from) +
             dash + format_seconds(to) + " s</title></rect>";
      state.reset();
    };
    for (std::size_t i = 0; i < r.seconds.size(); ++i) {
      const second_sample& s = r.seconds[i];
      if (!c.spans[i].valid || u >= s.breakers.size()) {
        flush();  // not scraped this second: leave a gap rather than guess
        continue;
      }
      const breaker_view v = known_state(s.breakers[u]);
      if (state && *state == v && c.spans[i].a == to) {
        to = c.spans[i].b;
        continue;
      }
      flush();
      state = v;
      from = c.spans[i].a;
      to = c.spans[i].b;
    }
    flush();
  }
  draw_phase_edges(svg, r, c.tx, top, height);
  draw_legend(svg, {{"closed", state_color(breaker_view::closed), false},
                    {"open", state_color(breaker_view::open), false},
                    {"half-open", state_color(breaker_view::half_open), false},
                    {"other", state_color(breaker_view::other), false}});
  svg += svg_close(top, top + height);
  return svg + "</section>\n";
}

std::string resilience_chart(const chart_context& c) {
  constexpr double top = plot_top;
  constexpr double height = 170;
  constexpr double queue_top = top + height + 34;
  constexpr double queue_height = 80;
  const run_record& r = c.r;
  double hi = 0;
  double queue_hi = 0;
  for (const second_sample& s : r.seconds) {
    hi = std::max({hi, static_cast<double>(s.retries), static_cast<double>(s.hedges),
                   static_cast<double>(s.rejections)});
    queue_hi = std::max(queue_hi, static_cast<double>(s.bulkhead_queued));
  }
  const value_axis ya = linear_axis(hi, top, height);
  const value_axis qa = linear_axis(queue_hi, queue_top, queue_height, 2);
  const double total = queue_top + queue_height + 42;
  std::string svg = section_head(
      "Retries, hedges and rejections",
      "What the gateway did about the faults, per second: retries of failed calls, hedges (a "
      "second call sent when the first is slow) and rejections (calls refused by a breaker, a "
      "bulkhead or the retry budget without trying). Below, the calls waiting in the bulkheads "
      "at each scrape.");
  svg += svg_open("resilience", c.tx, total,
                  "retries, hedges, rejections and bulkhead queue over time");
  draw_phase_bands(svg, r, c.tx, top, height, true);
  draw_phase_bands(svg, r, c.tx, queue_top, queue_height, false);
  draw_time_ticks(svg, c.tx, top, height, false);
  draw_time_ticks(svg, c.tx, queue_top, queue_height, true);
  draw_value_ticks(svg, ya, "per second", format_tick);
  draw_value_ticks(svg, qa, "queued", format_tick);
  const auto counter = [](std::uint64_t second_sample::*field) {
    return [field](const second_sample& s) -> std::optional<double> {
      return static_cast<double>(s.*field);
    };
  };
  draw_line(svg, r, c.spans, c.tx, ya, "#805ad5", "retries", counter(&second_sample::retries));
  draw_line(svg, r, c.spans, c.tx, ya, "#3182ce", "hedges", counter(&second_sample::hedges));
  draw_line(svg, r, c.spans, c.tx, ya, "#e53e3e", "rejections",
            counter(&second_sample::rejections));
  // The queue as a step area: it is a level at the scrape, not a count over the second.
  std::string d;
  double run_end = 0;
  bool open = false;
  const auto close_area = [&] {
    if (open) d += "L" + px(c.tx.x(run_end)) + " " + px(qa.y(0)) + "Z";
    open = false;
  };
  for (std::size_t i = 0; i < r.seconds.size(); ++i) {
    if (!c.spans[i].valid) {
      close_area();
      continue;
    }
    const double y = qa.y(static_cast<double>(r.seconds[i].bulkhead_queued));
    if (!open) d += "M" + px(c.tx.x(c.spans[i].a)) + " " + px(qa.y(0));
    d +=
        "L" + px(c.tx.x(c.spans[i].a)) + " " + px(y) + "L" + px(c.tx.x(c.spans[i].b)) + " " + px(y);
    open = true;
    run_end = c.spans[i].b;
  }
  close_area();
  if (!d.empty()) {
    svg += "<path class=\"plot area\" data-series=\"queued\" d=\"" + d +
           "\" fill=\"#a3bffa\" stroke=\"#4c51bf\" stroke-width=\"1.2\"/>";
  }
  draw_phase_edges(svg, r, c.tx, top, height);
  draw_phase_edges(svg, r, c.tx, queue_top, queue_height);
  draw_legend(svg, {{"retries", "#805ad5"},
                    {"hedges", "#3182ce"},
                    {"rejections", "#e53e3e"},
                    {"bulkhead queue", "#a3bffa", false}});
  svg += svg_close(top, queue_top + queue_height);
  return svg + "</section>\n";
}

// ---------------------------------------------------------------------------------------------
// Tables and the page

std::string card(const std::string& key, const std::string& value, const char* extra = "") {
  return std::string("<div class=\"card") + extra + "\"><div class=\"v\">" + html_escape(value) +
         "</div><div class=\"k\">" + html_escape(key) + "</div></div>";
}

std::string phase_table(const run_record& r) {
  if (r.phases.empty()) return "<p class=\"empty\">No phases were recorded.</p>\n";
  std::string t =
      "<table class=\"phases\"><thead><tr><th>phase</th><th>what was done</th>"
      "<th class=\"n\">time</th><th class=\"n\">answers/s</th><th class=\"n\">p50</th>"
      "<th class=\"n\">p99</th><th class=\"n\">p99.9</th><th class=\"n\">ok</th>"
      "<th class=\"n\">degraded</th><th class=\"n\">failed</th>"
      "<th class=\"n\">CPU µs/request</th></tr></thead><tbody>\n";
  for (std::size_t k = 0; k < r.phases.size(); ++k) {
    const phase_record& p = r.phases[k];
    t += "<tr><td><span class=\"swatch\" style=\"background:" +
         std::string(phase_fills[k % phase_fill_count]) + "\"></span>" + html_escape(p.name) +
         "</td><td>" + html_escape(p.description) + "</td><td class=\"n\">" +
         format_seconds(p.start_s) + dash + format_seconds(p.end_s) + " s</td><td class=\"n\">" +
         format_number(p.requests_per_s) + "</td><td class=\"n\">" + format_ms(p.p50_ms) +
         "</td><td class=\"n\">" + format_ms(p.p99_ms) + "</td><td class=\"n\">" +
         format_ms(p.p999_ms) + "</td><td class=\"n\">" + with_commas(p.ok) +
         "</td><td class=\"n\">" + with_commas(p.degraded) + "</td><td class=\"n\">" +
         with_commas(p.failed) + "</td><td class=\"n\">" +
         format_number(p.gateway_cpu_us_per_request) + "</td></tr>\n";
  }
  return t + "</tbody></table>\n";
}

std::string check_table(const run_record& r) {
  if (r.checks.empty()) return "<p class=\"empty\">No checks were recorded.</p>\n";
  std::string t =
      "<table class=\"checks\"><thead><tr><th>check</th><th>verdict</th><th>detail</th></tr>"
      "</thead><tbody>\n";
  for (const check_record& c : r.checks) {
    const char* verdict = c.passed ? "pass" : "fail";
    t += std::string("<tr class=\"") + verdict + "\"><td>" + html_escape(c.name) +
         "</td><td><span class=\"verdict " + verdict + "\">" + (c.passed ? "PASS" : "FAIL") +
         "</span></td><td>" + html_escape(c.detail) + "</td></tr>\n";
  }
  return t + "</tbody></table>\n";
}

// Per-second figures for the hover readout, as JSON arrays (null where not finite).
std::string run_data_json(const run_record& r, const std::vector<span>& spans) {
  std::string j = "{\"upstreams\":[";
  for (std::size_t u = 0; u < r.upstreams.size(); ++u) {
    j += (u ? "," : "") + json_string(r.upstreams[u]);
  }
  j += "],\"phases\":[";
  for (std::size_t k = 0; k < r.phases.size(); ++k) {
    j += (k ? "," : "") + json_string(r.phases[k].name);
  }
  j += "]";
  const auto array = [&](const char* name, auto value) {
    j += std::string(",\"") + name + "\":[";
    for (std::size_t i = 0; i < r.seconds.size(); ++i) {
      if (i) j += ',';
      j += value(i);
    }
    j += ']';
  };
  const auto count = [](std::uint64_t v) { return json_number(static_cast<double>(v)); };
  array("a", [&](std::size_t i) { return spans[i].valid ? json_number(spans[i].a) : "null"; });
  array("b", [&](std::size_t i) { return spans[i].valid ? json_number(spans[i].b) : "null"; });
  array("p50", [&](std::size_t i) { return json_number(r.seconds[i].p50_ms); });
  array("p99", [&](std::size_t i) { return json_number(r.seconds[i].p99_ms); });
  array("p999", [&](std::size_t i) { return json_number(r.seconds[i].p999_ms); });
  array("ok", [&](std::size_t i) { return count(r.seconds[i].ok); });
  array("degraded", [&](std::size_t i) { return count(r.seconds[i].degraded); });
  array("failed", [&](std::size_t i) { return count(r.seconds[i].failed); });
  array("retries", [&](std::size_t i) { return count(r.seconds[i].retries); });
  array("hedges", [&](std::size_t i) { return count(r.seconds[i].hedges); });
  array("rejections", [&](std::size_t i) { return count(r.seconds[i].rejections); });
  array("queued", [&](std::size_t i) { return count(r.seconds[i].bulkhead_queued); });
  array("phase", [&](std::size_t i) {
    return r.seconds[i].phase < r.phases.size() ? std::to_string(r.seconds[i].phase)
                                                : std::string("null");
  });
  array("breakers", [&](std::size_t i) {
    std::string s;
    for (const breaker_view v : r.seconds[i].breakers)
      s += "cohx"[static_cast<int>(known_state(v))];
    return json_string(s);
  });
  return j + "}";
}

const char* const page_style = R"css(
:root { color-scheme: light; }
body { margin: 0; background: #f4f6f9; color: #1a202c;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 22px 20px 40px; }
h1 { font-size: 26px; margin: 0 0 2px; }
.meta { color: #4a5568; margin: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0 4px; }
.card { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 8px 14px;
  min-width: 104px; }
.card .v { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .k { color: #718096; font-size: 12px; }
.card.good .v { color: #2f855a; }
.card.bad .v { color: #c53030; }
section { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 12px 18px 14px;
  margin: 14px 0; }
h2 { font-size: 17px; margin: 0 0 2px; }
p.caption { margin: 0 0 6px; color: #4a5568; max-width: 1100px; }
p.empty { color: #744210; background: #fffbeb; border: 1px solid #f6e05e; border-radius: 6px;
  padding: 10px 14px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #edf2f7;
  vertical-align: top; }
th { color: #4a5568; font-weight: 600; font-size: 12px; }
.n { text-align: right; white-space: nowrap; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px;
  border: 1px solid #cbd5e0; margin-right: 7px; vertical-align: -1px; }
.verdict { display: inline-block; min-width: 38px; text-align: center; font-weight: 700;
  font-size: 12px; border-radius: 4px; padding: 1px 6px; color: #fff; }
.verdict.pass { background: #2f855a; }
.verdict.fail { background: #c53030; }
tr.fail td { background: #fff5f5; }
svg.chart { display: block; width: 100%; max-width: 1200px; height: auto; }
svg.chart text { font: 12px system-ui, "DejaVu Sans", sans-serif; fill: #4a5568; }
svg.chart .phase-label { font-weight: 600; fill: #2d3748; }
svg.chart .row-label { fill: #1a202c; }
svg.chart .axis-title { fill: #718096; }
svg.chart .grid { stroke: #e2e8f0; stroke-width: 1; }
svg.chart .grid.minor { stroke: #edf2f7; }
svg.chart .axis-line { stroke: #a0aec0; }
svg.chart .phase-band { fill-opacity: .75; }
svg.chart .phase-edge { stroke: #718096; stroke-dasharray: 3 3; }
svg.chart .line { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
svg.chart .ref { fill: none; stroke-width: 1.5; }
svg.chart .bar, svg.chart .band { shape-rendering: crispEdges; }
svg.chart .cursor { stroke: #1a202c; stroke-width: 1; stroke-dasharray: 2 2; pointer-events: none; }
#readout { position: fixed; pointer-events: none; background: rgba(26, 32, 44, .93); color: #fff;
  padding: 6px 9px; border-radius: 6px; font-size: 12px; white-space: pre-line; z-index: 10;
  max-width: 420px; }
footer { color: #718096; font-size: 12px; }
)css";

// Installed first, so an error in any later script is recorded where the browser test reads it.
const char* const error_script = R"js(
window.onerror = function (message, source, line) {
  var d = document.documentElement.dataset;
  d.scriptErrors = (d.scriptErrors ? d.scriptErrors + ' | ' : '') + message +
    ' (line ' + line + ')';
};
)js";

// Checks that every chart has something plotted with a real extent (for the browser test), then
// adds a readout of the hovered second to every chart.
const char* const page_script = R"js(
(function () {
  var root = document.documentElement;
  var geometry = ['x', 'y', 'x1', 'x2', 'y1', 'y2', 'width', 'height', 'd', 'points', 'cx', 'cy',
    'r'];
  function record(e) {
    var d = root.dataset;
    d.scriptErrors = (d.scriptErrors ? d.scriptErrors + ' | ' : '') +
      (e && e.message ? e.message : e);
  }
  function verify(svg) {
    var drawn = 0;
    svg.querySelectorAll('path.plot, polyline.plot, rect.plot, circle.plot').forEach(function (el) {
      var box = el.getBBox();
      if (box.width > 0 || box.height > 0) drawn++;
    });
    var clean = true;
    svg.querySelectorAll('*').forEach(function (el) {
      geometry.forEach(function (name) {
        var v = el.getAttribute(name);
        if (v !== null && /nan|inf|undefined/i.test(v)) clean = false;
      });
    });
    svg.dataset.plotted = drawn;
    return drawn > 0 && clean;
  }
  function ms(v) {
    if (v === null || !(v >= 0)) return '\u2013';
    if (v < 0.1) return (v * 1000).toFixed(v < 0.01 ? 1 : 0) + ' \u00b5s';
    if (v < 1) return +v.toFixed(2) + ' ms';
    if (v < 10) return +v.toFixed(1) + ' ms';
    if (v < 999.5) return v.toFixed(0) + ' ms';
    if (v < 10000) return +(v / 1000).toFixed(1) + ' s';
    return (v / 1000).toFixed(0) + ' s';
  }
  function count(v) { return v === null ? '\u2013' : v.toLocaleString('en-US'); }
  function hover(charts) {
    var data = JSON.parse(document.getElementById('run-data').textContent);
    var box = document.getElementById('readout');
    var states = { c: 'closed', o: 'OPEN', h: 'half-open', x: 'other' };
    function second_at(t) {
      for (var i = 0; i < data.b.length; i++) {
        if (data.a[i] !== null && data.a[i] <= t && t <= data.b[i]) return i;
      }
      return -1;
    }
    function hide() {
      box.hidden = true;
      charts.forEach(function (svg) {
        svg.querySelector('.cursor').setAttribute('visibility', 'hidden');
      });
    }
    function text(i) {
      var phase = data.phase[i] === null ? '' : ' \u00b7 ' + data.phases[data.phase[i]];
      var answers = data.ok[i] + data.degraded[i] + data.failed[i];
      var lines = [
        data.a[i] + '\u2013' + data.b[i] + ' s' + phase,
        count(answers) + ' answers: ' + count(data.ok[i]) + ' ok, ' + count(data.degraded[i]) +
          ' degraded, ' + count(data.failed[i]) + ' failed',
        'p50 ' + ms(data.p50[i]) + ' \u00b7 p99 ' + ms(data.p99[i]) + ' \u00b7 p99.9 ' +
          ms(data.p999[i]),
        count(data.retries[i]) + ' retries \u00b7 ' + count(data.hedges[i]) + ' hedges \u00b7 ' +
          count(data.rejections[i]) + ' rejections \u00b7 ' + count(data.queued[i]) + ' queued'
      ];
      var breakers = [];
      for (var u = 0; u < data.upstreams.length; u++) {
        var s = data.breakers[i].charAt(u);
        if (s && s !== 'c') breakers.push(data.upstreams[u] + ' ' + states[s]);
      }
      lines.push('breakers: ' + (breakers.length ? breakers.join(', ') : 'all closed'));
      return lines.join('\n');
    }
    charts.forEach(function (svg) {
      var t0 = +svg.dataset.t0, t1 = +svg.dataset.t1;
      var left = +svg.dataset.left, right = +svg.dataset.right;
      svg.addEventListener('mousemove', function (ev) {
        var p = svg.createSVGPoint();
        p.x = ev.clientX;
        p.y = ev.clientY;
        var q = p.matrixTransform(svg.getScreenCTM().inverse());
        var t = t0 + (q.x - left) / (right - left) * (t1 - t0);
        var i = q.x < left || q.x > right ? -1 : second_at(t);
        if (i < 0) { hide(); return; }
        var x = left + ((data.a[i] + data.b[i]) / 2 - t0) / (t1 - t0) * (right - left);
        charts.forEach(function (other) {
          var c = other.querySelector('.cursor');
          c.setAttribute('x1', x);
          c.setAttribute('x2', x);
          c.setAttribute('visibility', 'visible');
        });
        box.textContent = text(i);
        box.hidden = false;
        var w = box.offsetWidth;
        box.style.left = Math.min(ev.clientX + 14, window.innerWidth - w - 8) + 'px';
        box.style.top = ev.clientY + 16 + 'px';
      });
      svg.addEventListener('mouseleave', hide);
    });
  }
  try {
    var charts = Array.prototype.slice.call(document.querySelectorAll('svg.chart'));
    var verified = 0;
    charts.forEach(function (svg) { if (verify(svg)) verified++; });
    root.dataset.chartsOk = verified;
    root.dataset.chartsTotal = charts.length;
    if (charts.length) hover(charts);
  } catch (e) {
    record(e);
  }
  root.dataset.pageHeight = Math.ceil(Math.max(root.scrollHeight, document.body.scrollHeight));
  root.dataset.scriptRan = '1';
})();
)js";

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string format_ms(double ms) {
  if (!std::isfinite(ms) || ms < 0) return dash;
  if (ms == 0) return "0 ms";
  if (ms < 0.1) {
    const double us = ms * 1000;
    return trim_zeros(format_string(us < 10 ? "%.1f" : "%.0f", us)) + " \u00b5s";
  }
  if (ms < 1) return trim_zeros(format_string("%.2f", ms)) + " ms";
  if (ms < 9.95) return trim_zeros(format_string("%.1f", ms)) + " ms";
  if (ms < 999.5) return format_string("%.0f", ms) + " ms";
  const double s = ms / 1000;
  if (s < 9.95) return trim_zeros(format_string("%.1f", s)) + " s";
  if (s < 1e6) return format_string("%.0f", s) + " s";
  return format_string("%.3g", s) + " s";
}

std::string render_report(const run_record& r) {
  const std::vector<span> spans = spans_of(r);
  const time_axis tx = time_axis_of(r);
  const chart_context context{r, spans, tx};

  std::string charts;
  int chart_count = 0;
  if (r.seconds.empty()) {
    charts =
        "<p class=\"empty\">This run recorded no seconds of load, so there is nothing to chart. "
        "(Did the load start?)</p>\n";
  } else {
    charts += latency_chart(context);
    charts += throughput_chart(context);
    charts += outcome_chart(context);
    chart_count += 3;
    if (r.upstreams.empty()) {
      charts +=
          "<p class=\"empty\">No upstreams were recorded, so there are no breakers to "
          "show.</p>\n";
    } else {
      charts += breaker_chart(context);
      ++chart_count;
    }
    charts += resilience_chart(context);
    ++chart_count;
  }

  std::size_t passed = 0;
  for (const check_record& c : r.checks) passed += c.passed ? 1 : 0;
  const bool all_passed = passed == r.checks.size();
  const double duration = r.seconds.empty() ? 0 : tx.t1 - tx.t0;

  std::string page;
  page.reserve(64 * 1024 + r.seconds.size() * 1024);
  page += "<!DOCTYPE html>\n<html lang=\"en\" data-charts-expected=\"" +
          std::to_string(chart_count) + "\">\n<head>\n<meta charset=\"utf-8\">\n";
  // The page must never reach the network: only its own inline style and scripts may run.
  page +=
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n";
  page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  page += "<title>" + html_escape(r.title) + " report</title>\n";
  page += "<script>" + std::string(error_script) + "</script>\n";
  page += "<style>" + std::string(page_style) + "</style>\n</head>\n<body>\n<main>\n";

  page += "<header><h1>" + html_escape(r.title) + "</h1>\n<p class=\"meta\">Started " +
          (r.started_at.empty() ? std::string(dash) : html_escape(r.started_at)) + " \u00b7 " +
          format_number(r.rate) + " requests/s, open loop \u00b7 " +
          std::to_string(r.gateway_workers) + " gateway worker" +
          (r.gateway_workers == 1 ? "" : "s") + " \u00b7 " + format_seconds(duration) +
          " s \u00b7 " + std::to_string(r.upstreams.size()) + " upstreams</p>\n";
  page += "<div class=\"cards\">";
  page += card("sent", with_commas(r.sent));
  page += card("ok " + format_percent(r.ok, r.sent), with_commas(r.ok));
  page += card("degraded " + format_percent(r.degraded, r.sent), with_commas(r.degraded));
  page += card("failed " + format_percent(r.failed, r.sent), with_commas(r.failed),
               r.failed ? " bad" : "");
  page += card("lost", with_commas(r.lost), r.lost ? " bad" : " good");
  page += card("gateway CPU µs/request", format_number(r.gateway_cpu_us_per_request));
  page += card("checks passed", std::to_string(passed) + " / " + std::to_string(r.checks.size()),
               r.checks.empty() ? ""
               : all_passed     ? " good"
                                : " bad");
  page += "</div></header>\n";

  page += "<section><h2>Phases</h2>\n" + phase_table(r) + "</section>\n";
  page += charts;
  page += "<section><h2>Checks</h2>\n" + check_table(r) + "</section>\n";
  page +=
      "<footer>Latencies are measured by the load from the instant each request was due. "
      "Hover a chart for the figures of one second.</footer>\n";
  page += "<div id=\"readout\" hidden></div>\n";
  page += "<script type=\"application/json\" id=\"run-data\">" + run_data_json(r, spans) +
          "</script>\n";
  page += "<script>" + std::string(page_script) + "</script>\n</main>\n</body>\n</html>\n";
  return page;
}

void write_report(const run_record& r, const std::string& path) {
  const std::string page = render_report(r);
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) {
    throw std::system_error(errno, std::generic_category(), "cannot open report " + path);
  }
  const std::size_t written = std::fwrite(page.data(), 1, page.size(), file);
  const int write_error = written == page.size() ? 0 : errno;
  if (std::fclose(file) != 0 || written != page.size()) {
    const int e = write_error != 0 ? write_error : errno;
    if (e != 0) throw std::system_error(e, std::generic_category(), "cannot write report " + path);
    throw std::runtime_error("cannot write report " + path);
  }
}

}  // namespace weft::gateway
