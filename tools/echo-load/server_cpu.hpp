// Server CPU time from /proc/PID/stat (utime + stime, all threads), the figure docs/workloads.md
// reports first because it stays stable where throughput on a small VM does not.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace echo_load {

/// Returns utime + stime, in clock ticks, from the text of a /proc/PID/stat file, or nothing if
/// the text is not in that format.
///
/// The command name (field 2) is in parentheses and may itself hold spaces and ')', so fields are
/// counted from the last ')': utime and stime are fields 14 and 15 of proc(5).
inline std::optional<std::uint64_t> parse_stat_cpu_ticks(std::string_view stat) {
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat.substr(close + 1);
  std::uint64_t sum = 0;
  // After ')' come field 3 (state) onwards: utime is the 12th of them, stime the 13th.
  for (int field = 3; field <= 15; ++field) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const auto end = rest.find(' ');
    const std::string_view token = rest.substr(0, end);
    if (token.empty()) return std::nullopt;
    if (field >= 14) {
      std::uint64_t value = 0;
      const auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
      if (ec != std::errc{} || ptr != token.data() + token.size()) return std::nullopt;
      sum += value;
    }
    rest.remove_prefix(token.size());
  }
  return sum;
}

/// Returns the summed utime + stime of `pids` in microseconds.
///
/// Errors: throws `std::system_error` naming the file when a process is gone or unreadable, and
/// `std::runtime_error` if its stat file cannot be parsed.
inline double read_cpu_us(std::span<const pid_t> pids) {
  static const long ticks_per_second = sysconf(_SC_CLK_TCK);  // 100 on Linux
  std::uint64_t ticks = 0;
  for (const pid_t pid : pids) {
    const std::string path = "/proc/" + std::to_string(pid) + "/stat";
    std::ifstream file(path);
    if (!file) throw std::system_error(errno ? errno : ENOENT, std::generic_category(), path);
    const std::string text{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
    const auto parsed = parse_stat_cpu_ticks(text);
    if (!parsed) throw std::runtime_error(path + ": not in the format of proc(5)");
    ticks += *parsed;
  }
  return static_cast<double>(ticks) * 1e6 / static_cast<double>(ticks_per_second);
}

}  // namespace echo_load
