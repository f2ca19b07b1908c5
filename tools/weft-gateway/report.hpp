// The weft-gateway report: one self-contained HTML page (inline CSS, inline SVG charts drawn in
// C++, a small inline script) that shows a whole run_record, so a run can be archived, mailed or
// screenshotted without a server, the network or any JavaScript library.
#pragma once

#include <string>
#include <string_view>

#include "run_record.hpp"

namespace weft::gateway {

/// `text` with &, <, >, " and ' replaced by entities: safe in HTML text and quoted attributes.
std::string html_escape(std::string_view text);

/// A latency for people: "0.42 ms", "1.2 ms", "350 ms", "2.1 s"; "–" when not finite or negative.
std::string format_ms(double ms);

/// The whole page. Never fails: non-finite or absurd figures are shown as "–" or clamped to the
/// chart, and a run without seconds gets a message where the charts would be.
std::string render_report(const run_record& r);

/// Writes render_report(r) to `path`, replacing it. Throws std::system_error or
/// std::runtime_error naming the path when it cannot be written.
void write_report(const run_record& r, const std::string& path);

}  // namespace weft::gateway
