// The table of awaiter describers that await slots name by a 16-bit id.
#include <weft/detail/await_trace.hpp>

#include <array>
#include <atomic>
#include <cstdio>
#include <string>

namespace weft::detail {

namespace {
// Ids are handed out once per awaiter type (describer_id's function-local static), so the table
// only grows with the number of awaiter types a program has: a few hundred at most.
constexpr std::size_t max_describers = 4096;
std::array<std::atomic<describe_fn>, max_describers> describers{};
std::atomic<std::size_t> next_describer{1};
}  // namespace

std::uint16_t register_describer(describe_fn fn) noexcept {
  const std::size_t id = next_describer.fetch_add(1, std::memory_order_relaxed);
  if (id >= max_describers) return 0;  // shown as an unknown awaiter
  describers[id].store(fn, std::memory_order_release);
  return static_cast<std::uint16_t>(id);
}

describe_fn describer(std::uint16_t id) noexcept {
  if (id == 0 || id >= max_describers) return nullptr;
  return describers[id].load(std::memory_order_acquire);
}

std::string describe_deadline(const char* what, std::int64_t deadline_ns, std::int64_t now_ns) {
  const double seconds = static_cast<double>(deadline_ns - now_ns) / 1e9;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s %s%.3f s", what, seconds < 0 ? "" : "+", seconds);
  return buf;
}

std::string_view type_name_from(std::string_view pretty, std::string_view marker) noexcept {
  // g++: "... [with A = weft::detail::sleep_awaiter; ...]"; clang: "... [A = weft::...]".
  const auto start = pretty.find(marker);
  if (start == std::string_view::npos) return pretty;
  std::string_view rest = pretty.substr(start + marker.size());
  int depth = 0;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    const char c = rest[i];
    if (c == '<' || c == '(') ++depth;
    if (c == '>' || c == ')') --depth;
    if (depth == 0 && (c == ';' || c == ']')) return rest.substr(0, i);
    if (depth < 0) return rest.substr(0, i);
  }
  return rest;
}

}  // namespace weft::detail
