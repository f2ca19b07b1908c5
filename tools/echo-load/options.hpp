// echo-load's command line: the options struct, its parser (on CLI11) and the help text. Kept apart
// from main.cpp so that tests can check parsing without running a load.
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

#include <CLI/CLI.hpp>

#include "../common/command_line.hpp"

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
  bool show_help = false;          // --help: print usage_text() and exit 0
};

namespace detail {

// Reads a byte count with an optional binary suffix: "64", "16K", "16KiB", "1M", "1MiB"; nothing
// when the text is not one or is outside 1..16 MiB.
inline std::optional<std::size_t> parse_bytes(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string_view suffix = text.substr(digits);
  unsigned shift = 0;
  if (suffix == "K" || suffix == "k" || suffix == "KiB") {
    shift = 10;
  } else if (suffix == "M" || suffix == "MiB") {
    shift = 20;
  } else if (!suffix.empty()) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (digits == 0 || ec != std::errc{} || end != text.data() + digits ||
      value > (max_message_size >> shift) || value == 0) {
    return std::nullopt;
  }
  return static_cast<std::size_t>(value << shift);
}

// --size's check: rewrites the text as the plain byte count that the option then converts.
inline CLI::Validator byte_size() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto bytes = parse_bytes(text);
        if (!bytes) {
          return "expected a size from 1 to 16MiB (suffixes K, KiB, M, MiB), got '" + text + "'";
        }
        text = std::to_string(*bytes);
        return {};
      },
      "");
}

// The options whose presence the checks across options need.
struct given_options {
  const CLI::Option* host;
  const CLI::Option* port;
  const CLI::Option* connections;
  const CLI::Option* depth;
  const CLI::Option* concurrency;
};

// Declares echo-load's command line on `app`, parsing into `o`. CLI11 does the spellings
// (`--name value`, `--name=value`), --help, and refuses unknown options, missing values and
// values that fail a check; the checks across options are parse_options'.
inline given_options describe(CLI::App& app, options& o) {
  namespace cli = weft::tools::cli;
  cli::use_tool_conventions(app);
  app.description(
      "The neutral echo load client: (--port P [--host H] | --unix PATH), either mode.\n"
      "  --mode rr     N connections, each keeping D messages of S bytes outstanding; every\n"
      "                echoed byte is checked\n"
      "  --mode churn  C loops of connect, send S bytes, read the echo, close");
  app.footer("Prints one JSON line on stdout; exits 1 on any connection or verification error.");
  app.add_option_function<std::string>(
         "--mode",
         [&o](const std::string& m) { o.mode = m == "churn" ? load_mode::churn : load_mode::rr; },
         "rr: request-response on long-lived connections; churn: a connection per message")
      ->type_name("rr|churn")
      ->default_str("rr")
      ->check(cli::one_of({"rr", "churn"}));
  given_options given{};
  given.host = app.add_option("--host", o.host, "the server's host name or address")
                   ->type_name("H")
                   ->check(cli::text([](const std::string& h) { return !h.empty(); },
                                     "a host name or address"));
  given.port = app.add_option("--port", o.port, "the server's port")
                   ->type_name("P")
                   ->default_str("")
                   ->transform(cli::integer_in(1, 65535));
  app.add_option("--unix", o.unix_path, "connect to this AF_UNIX stream socket instead")
      ->type_name("PATH")
      ->check(cli::text([](const std::string& p) { return !p.empty(); }, "a socket path"));
  given.connections = app.add_option("--connections", o.connections, "rr: connections")
                          ->type_name("N")
                          ->transform(cli::integer_in(1, 100'000));
  given.depth = app.add_option("--depth", o.depth, "rr: messages outstanding per connection")
                    ->type_name("D")
                    ->transform(cli::integer_in(1, 65536));
  app.add_option("--size", o.size,
                 "bytes per message (churn: per cycle); K/KiB, M/MiB: 1024-based; at most 16 MiB")
      ->type_name("S")
      ->transform(byte_size());
  given.concurrency = app.add_option("--concurrency", o.concurrency, "churn: loops running at once")
                          ->type_name("C")
                          ->transform(cli::integer_in(1, 10'000));
  app.add_option("--warmup", o.warmup_s, "seconds of load before measuring")
      ->type_name("SECONDS")
      ->check(cli::number([](double s) { return s >= 0 && s <= 3600; }, "seconds from 0 to 3600"));
  app.add_option("--duration", o.duration_s, "seconds measured")
      ->type_name("SECONDS")
      ->check(cli::number([](double s) { return s >= 0.001 && s <= 86400; },
                          "seconds from 0.001 to 86400"));
  // One PID or a list each time; given again, the lists add up.
  app.add_option("--server-pid", o.server_pids,
                 "report these processes' utime+stime per operation over the measured time")
      ->type_name("PID[,PID...]")
      ->default_str("")
      ->delimiter(',')
      ->expected(1)
      ->take_all()
      ->transform(cli::integer_in(1, INT32_MAX));
  app.add_option_function<int>(
         "--cpu", [&o](int k) { o.cpu = k; }, "pin echo-load to CPU K")
      ->type_name("K")
      ->transform(cli::integer_in(0, CPU_SETSIZE - 1));
  return given;
}

}  // namespace detail

/// The help text printed for --help.
inline std::string usage_text() {
  options o;
  CLI::App app{"", "echo-load"};
  detail::describe(app, o);
  return app.help();
}

/// Parses the arguments after the program name into `options`.
///
/// Accepts `--name value` and `--name=value`; a flag given twice takes its last value, except
/// --server-pid, whose lists add up. Checks ranges and combinations: an endpoint is required
/// (--port, or --unix without --host/--port), and options of the other mode are refused rather
/// than silently ignored.
///
/// Errors: throws `std::invalid_argument` whose message names the option, what it expects and
/// what it got, e.g. "--depth: expected an integer from 1 to 65536, got '0'".
inline options parse_options(std::span<const std::string_view> args) {
  options o;
  CLI::App app{"", "echo-load"};
  const detail::given_options given = detail::describe(app, o);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    o.show_help = true;
    return o;
  } catch (const CLI::ParseError& e) {
    throw std::invalid_argument(e.what());
  }
  const bool seen_port = given.port->count() > 0;
  if (!o.unix_path.empty() && (given.host->count() > 0 || seen_port)) {
    throw std::invalid_argument("--unix cannot be combined with --host or --port");
  }
  if (o.unix_path.empty() && !seen_port) {
    throw std::invalid_argument("the server's --port (or --unix PATH) is required");
  }
  if (o.mode == load_mode::rr && given.concurrency->count() > 0) {
    throw std::invalid_argument("--concurrency is for --mode churn; rr mode uses --connections");
  }
  if (o.mode == load_mode::churn && (given.connections->count() > 0 || given.depth->count() > 0)) {
    throw std::invalid_argument(
        "--connections and --depth are for --mode rr; churn mode uses --concurrency");
  }
  return o;
}

}  // namespace echo_load
