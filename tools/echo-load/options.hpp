// echo-load's command line: the options struct, its parser and the usage text. Kept apart from
// main.cpp so that tests can check parsing without running a load.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace echo_load {

/// What the load does: request-response on long-lived connections, or connection churn.
enum class load_mode { rr, churn };

/// The largest message --size accepts: 16 MiB.
inline constexpr std::size_t max_message_size = std::size_t{16} << 20;

/// Everything the command line sets; the defaults are the echo_rr workload of docs/workloads.md.
struct options {
  load_mode mode = load_mode::rr;
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;        // required unless unix_path is set
  std::string unix_path;         // non-empty: connect to this AF_UNIX stream socket instead
  std::size_t connections = 64;  // rr
  std::size_t depth = 1;         // rr: messages outstanding per connection
  std::size_t size = 64;         // bytes per message (churn: per cycle)
  std::size_t concurrency = 32;  // churn: loops running at once
  double warmup_s = 2.0;
  double duration_s = 10.0;
  std::vector<pid_t> server_pids;  // CPU time of these processes is reported per operation
  std::optional<int> cpu;          // pin echo-load to this CPU
  bool show_help = false;          // --help: print usage_text and exit 0; nothing else is checked
};

/// The help text printed for --help and after a usage error.
inline constexpr std::string_view usage_text =
    "usage: echo-load [--mode rr|churn] (--port P [--host H] | --unix PATH)\n"
    "                 [--connections N] [--depth D] [--size S] [--concurrency C]\n"
    "                 [--warmup SECONDS] [--duration SECONDS] [--server-pid PID[,PID...]]\n"
    "                 [--cpu K]\n"
    "  --mode rr       N connections, each keeping D messages of S bytes outstanding\n"
    "                  (defaults: N 64, D 1, S 64); every echoed byte is checked\n"
    "  --mode churn    C loops of connect, send S bytes, read the echo, close (C 32, S 64)\n"
    "  --size          bytes, optionally with K/KiB or M/MiB (1024-based); at most 16 MiB\n"
    "  --warmup        seconds of load before measuring (default 2)\n"
    "  --duration      seconds measured (default 10)\n"
    "  --server-pid    report the server's utime+stime per operation over the measured time\n"
    "  --cpu           pin echo-load to CPU K\n"
    "Prints one JSON line on stdout; exits 1 on any connection or verification error.\n";

namespace detail {

inline std::invalid_argument bad_value(std::string_view option, std::string_view expected,
                                       std::string_view got) {
  return std::invalid_argument(std::string(option) + ": expected " + std::string(expected) +
                               ", got '" + std::string(got) + "'");
}

// Parses a whole decimal integer in [low, high]; anything else names the option and the range.
inline std::uint64_t parse_integer(std::string_view option, std::string_view text,
                                   std::uint64_t low, std::uint64_t high) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < low || value > high) {
    throw bad_value(option,
                    "an integer from " + std::to_string(low) + " to " + std::to_string(high), text);
  }
  return value;
}

// Parses a byte count with an optional binary suffix: "64", "16K", "16KiB", "1M", "1MiB".
inline std::size_t parse_bytes(std::string_view option, std::string_view text) {
  constexpr std::string_view expected = "a size from 1 to 16MiB (suffixes K, KiB, M, MiB)";
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string_view suffix = text.substr(digits);
  unsigned shift = 0;
  if (suffix == "K" || suffix == "k" || suffix == "KiB") {
    shift = 10;
  } else if (suffix == "M" || suffix == "MiB") {
    shift = 20;
  } else if (!suffix.empty()) {
    throw bad_value(option, expected, text);
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (digits == 0 || ec != std::errc{} || end != text.data() + digits ||
      value > (max_message_size >> shift) || value == 0) {
    throw bad_value(option, expected, text);
  }
  return static_cast<std::size_t>(value << shift);
}

// Parses seconds as a decimal number in [low, high] ("0.5", "10"); `expected` says the range.
inline double parse_seconds(std::string_view option, std::string_view text, double low, double high,
                            std::string_view expected) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || !(value >= low && value <= high)) {
    throw bad_value(option, expected, text);
  }
  return value;
}

}  // namespace detail

/// Parses the arguments after the program name into `options`.
///
/// Accepts `--name value` and `--name=value`. Checks ranges and combinations: an endpoint is
/// required (--port, or --unix without --host/--port), and options of the other mode are refused
/// rather than silently ignored.
///
/// Errors: throws `std::invalid_argument` whose message names the option, what it expects and
/// what it got, e.g. "--depth: expected an integer from 1 to 65536, got '0'".
inline options parse_options(std::span<const std::string_view> args) {
  options o;
  bool seen_host = false, seen_port = false, seen_connections = false, seen_depth = false,
       seen_concurrency = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view name = args[i];
    std::optional<std::string_view> inline_value;
    if (const auto eq = name.find('='); name.starts_with("--") && eq != std::string_view::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto value = [&]() -> std::string_view {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) throw std::invalid_argument(std::string(name) + " needs a value");
      return args[++i];
    };
    if (name == "--help" || name == "-h") {
      o.show_help = true;
      return o;
    } else if (name == "--mode") {
      const auto v = value();
      if (v == "rr") {
        o.mode = load_mode::rr;
      } else if (v == "churn") {
        o.mode = load_mode::churn;
      } else {
        throw detail::bad_value(name, "rr or churn", v);
      }
    } else if (name == "--host") {
      o.host = std::string(value());
      if (o.host.empty()) throw detail::bad_value(name, "a host name or address", o.host);
      seen_host = true;
    } else if (name == "--port") {
      o.port = static_cast<std::uint16_t>(detail::parse_integer(name, value(), 1, 65535));
      seen_port = true;
    } else if (name == "--unix") {
      o.unix_path = std::string(value());
      if (o.unix_path.empty()) throw detail::bad_value(name, "a socket path", o.unix_path);
    } else if (name == "--connections") {
      o.connections = detail::parse_integer(name, value(), 1, 100'000);
      seen_connections = true;
    } else if (name == "--depth") {
      o.depth = detail::parse_integer(name, value(), 1, 65536);
      seen_depth = true;
    } else if (name == "--size") {
      o.size = detail::parse_bytes(name, value());
    } else if (name == "--concurrency") {
      o.concurrency = detail::parse_integer(name, value(), 1, 10'000);
      seen_concurrency = true;
    } else if (name == "--warmup") {
      o.warmup_s = detail::parse_seconds(name, value(), 0, 3600, "seconds from 0 to 3600");
    } else if (name == "--duration") {
      o.duration_s =
          detail::parse_seconds(name, value(), 0.001, 86400, "seconds from 0.001 to 86400");
    } else if (name == "--server-pid") {
      std::string_view list = value();
      while (true) {
        const auto comma = list.find(',');
        o.server_pids.push_back(
            static_cast<pid_t>(detail::parse_integer(name, list.substr(0, comma), 1, INT32_MAX)));
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    } else if (name == "--cpu") {
      o.cpu = static_cast<int>(detail::parse_integer(name, value(), 0, CPU_SETSIZE - 1));
    } else {
      throw std::invalid_argument("unknown option '" + std::string(args[i]) + "'");
    }
  }
  if (!o.unix_path.empty() && (seen_host || seen_port)) {
    throw std::invalid_argument("--unix cannot be combined with --host or --port");
  }
  if (o.unix_path.empty() && !seen_port) {
    throw std::invalid_argument("the server's --port (or --unix PATH) is required");
  }
  if (o.mode == load_mode::rr && seen_concurrency) {
    throw std::invalid_argument("--concurrency is for --mode churn; rr mode uses --connections");
  }
  if (o.mode == load_mode::churn && (seen_connections || seen_depth)) {
    throw std::invalid_argument(
        "--connections and --depth are for --mode rr; churn mode uses --concurrency");
  }
  return o;
}

}  // namespace echo_load
