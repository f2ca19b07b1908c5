// weft::stall_report: what the stall detector tells runtime_options::on_stall.
//
// Thread safety: a value type; to_string is a pure function. runtime_options::on_stall receives
// reports on the watchdog's thread and on the stalled worker's (see runtime.hpp).
//
// Cancellation: nothing here suspends.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace weft {

/// One resumption of a task kept its worker longer than runtime_options::stall_threshold (a
/// blocking call, a long loop without a co_await). Reported once when noticed (`ended` false,
/// `elapsed` so far) and once when the resumption returned (`ended` true, `elapsed` in total).
struct stall_report {
  std::size_t worker = 0;
  bool ended = false;
  std::chrono::nanoseconds elapsed{0};
  /// The stalling task, when the worker resumed it at its spawned body (its own frame, not a
  /// task it awaits): then id, name and spawn location are known. 0 otherwise.
  std::uint64_t task_id = 0;
  std::string task_name;
  std::string spawned_at;  // "file:line", empty when unknown
};

/// The default report: one line, e.g.
/// "weft: stall: worker 1 has run task 42 "conn" (server.cpp:88) for 212 ms without yielding".
[[nodiscard]] std::string to_string(const stall_report& report);

}  // namespace weft
