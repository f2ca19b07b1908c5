// What the tools' command lines share on top of CLI11: their conventions (a flag given twice takes
// its last value, defaults shown in --help, errors prefixed with the tool's name, exit status 2
// for a bad command line) and validators whose messages say what a flag expects and what it got.
// Plain C++20 and CLI11, no weft: echo-load uses it too.
#pragma once

#include <charconv>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

namespace weft::tools::cli {

/// Sets the tools' conventions on `app`; call it before adding options or subcommands, which
/// inherit them. A repeated flag takes its last value, because the scripts put their defaults
/// before "$@" (tools/bench.sh: `--repeat 3 "$@"`); list flags say take_all() to append instead.
inline void use_tool_conventions(CLI::App& app) {
  app.option_defaults()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->always_capture_default();
  app.failure_message([](const CLI::App* a, const CLI::Error& e) {
    return a->get_name() + ": " + CLI::FailureMessage::simple(a, e);
  });
}

/// Parses argv into `app`. Returns the status to exit with, 0 after --help (printed on stdout) and
/// 2 for a bad command line (the message on stderr), or nothing when the tool should go on.
inline std::optional<int> parse(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return std::nullopt;
}

namespace detail {
inline std::string expected_got(const std::string& expected, const std::string& got) {
  return "expected " + expected + ", got '" + got + "'";
}
}  // namespace detail

/// A whole decimal integer in [low, high]; no sign, space or hex form. Apply it with
/// ->transform(), not ->check(): it rewrites the text in canonical form, because CLI11's own
/// conversion reads a leading 0 as octal ("010" would be 8), and a check may not change the text.
inline CLI::Validator integer_in(std::uint64_t low,
                                 std::uint64_t high = std::numeric_limits<std::uint64_t>::max()) {
  std::string expected;
  if (high != std::numeric_limits<std::uint64_t>::max()) {
    expected = "an integer from " + std::to_string(low) + " to " + std::to_string(high);
  } else if (low == 0) {
    expected = "a non-negative integer";
  } else {
    expected = "an integer of at least " + std::to_string(low);
  }
  return CLI::Validator(
      [low, high, expected](std::string& text) -> std::string {
        std::uint64_t value = 0;
        const char* last = text.data() + text.size();
        const auto [end, ec] = std::from_chars(text.data(), last, value);
        if (ec != std::errc{} || end != last || value < low || value > high) {
          return detail::expected_got(expected, text);
        }
        text = std::to_string(value);
        return {};
      },
      "");
}

/// A decimal number ("0.5", "10", "1e3") for which `accept` holds; `expected` says which, as in
/// "seconds from 0 to 3600".
inline CLI::Validator number(std::function<bool(double)> accept, std::string expected) {
  return CLI::Validator(
      [accept = std::move(accept), expected = std::move(expected)](std::string& text) {
        double value = 0;
        const char* last = text.data() + text.size();
        const auto [end, ec] = std::from_chars(text.data(), last, value);
        if (ec != std::errc{} || end != last || !accept(value)) {
          return detail::expected_got(expected, text);
        }
        return std::string{};
      },
      "");
}

/// Text for which `accept` holds (an address that parses, a name that is not empty).
inline CLI::Validator text(std::function<bool(const std::string&)> accept, std::string expected) {
  return CLI::Validator(
      [accept = std::move(accept), expected = std::move(expected)](std::string& value) {
        return accept(value) ? std::string{} : detail::expected_got(expected, value);
      },
      "");
}

/// One of `choices`, spelled exactly; the message lists them ("expected rr or churn").
inline CLI::Validator one_of(std::vector<std::string> choices) {
  std::string expected;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) expected += i + 1 == choices.size() ? " or " : ", ";
    expected += choices[i];
  }
  return text(
      [choices = std::move(choices)](const std::string& value) {
        for (const auto& c : choices) {
          if (value == c) return true;
        }
        return false;
      },
      std::move(expected));
}

}  // namespace weft::tools::cli
