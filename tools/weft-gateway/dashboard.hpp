// weft-gateway's live view: a dashboard redrawn in place every second on a terminal, or one
// plain line per second when stdout is not one (CI logs, pipes).
#pragma once

#include <string>

#include "run_record.hpp"

namespace weft::gateway {

/// The dashboard for the latest second of `r` (which must hold at least one), as text with ANSI
/// colours and cursor movement: print it as is; each frame starts by moving to the top left and
/// clearing the screen.
[[nodiscard]] std::string render_dashboard(const run_record& r, double run_length_s);

/// The latest second of `r` as one line without escapes.
[[nodiscard]] std::string render_line(const run_record& r);

}  // namespace weft::gateway
