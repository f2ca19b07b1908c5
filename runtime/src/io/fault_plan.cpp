// fault_plan: its text form (WEFT_FAULTS), parsed strictly so a typo cannot silently test nothing.
#include <weft/testing/fault_plan.hpp>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <iterator>
#include <stdexcept>
#include <utility>

namespace weft {

namespace {

struct named_errno {
  const char* name;
  int value;
};

// The errors a network or file operation meets in practice.
constexpr named_errno errno_names[] = {
    {"EINTR", EINTR},
    {"EAGAIN", EAGAIN},
    {"ECONNRESET", ECONNRESET},
    {"EPIPE", EPIPE},
    {"ENOMEM", ENOMEM},
    {"ENOBUFS", ENOBUFS},
    {"ECANCELED", ECANCELED},
    {"EMFILE", EMFILE},
    {"ENFILE", ENFILE},
    {"EBUSY", EBUSY},
    {"ECONNABORTED", ECONNABORTED},
    {"ECONNREFUSED", ECONNREFUSED},
    {"ETIMEDOUT", ETIMEDOUT},
    {"EHOSTUNREACH", EHOSTUNREACH},
    {"ENETUNREACH", ENETUNREACH},
    {"EIO", EIO},
    {"ENOSPC", ENOSPC},
    {"EBADF", EBADF},
    {"EINVAL", EINVAL},
    {"EPROTO", EPROTO},
    {"ENOSYS", ENOSYS},
    {"EPERM", EPERM},
    {"EACCES", EACCES},
};

constexpr std::pair<const char*, unsigned> kind_names[] = {
    {"read", io_kinds::read},   {"write", io_kinds::write},   {"recv", io_kinds::recv},
    {"send", io_kinds::send},   {"accept", io_kinds::accept}, {"connect", io_kinds::connect},
    {"other", io_kinds::other}, {"all", io_kinds::all},
};

[[noreturn]] void bad(std::string_view word, const std::string& why) {
  throw std::invalid_argument("weft::fault_plan: '" + std::string(word) + "': " + why);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    const auto at = s.find(sep);
    parts.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return parts;
    s.remove_prefix(at + 1);
  }
}

double parse_rate(std::string_view word, std::string_view text) {
  // from_chars for double is in g++ 11+ and clang's libstdc++ use alike.
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(v) || v < 0 ||
      v > 1) {
    bad(word, "a rate is a number from 0 to 1, not '" + std::string(text) + "'");
  }
  return v;
}

std::uint64_t parse_number(std::string_view word, std::string_view text) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    bad(word, "expected a non-negative integer, not '" + std::string(text) + "'");
  }
  return v;
}

unsigned parse_kinds(std::string_view word, std::string_view text) {
  unsigned kinds = 0;
  for (auto name : split(text, ',')) {
    bool found = false;
    for (const auto& [n, k] : kind_names) {
      if (name == n) {
        kinds |= k;
        found = true;
      }
    }
    if (!found) {
      bad(word, "unknown operation kind '" + std::string(name) +
                    "' (read, write, recv, send, accept, connect, other, all)");
    }
  }
  return kinds;
}

int parse_errno(std::string_view word, std::string_view text) {
  for (const auto& e : errno_names) {
    if (text == e.name) return e.value;
  }
  const auto v = parse_number(word, text);
  if (v == 0 || v > 4095) bad(word, "unknown error '" + std::string(text) + "'");
  return static_cast<int>(v);
}

std::string kinds_text(unsigned kinds) {
  if (kinds == io_kinds::all) return "all";
  std::string s;
  for (const auto& [n, k] : kind_names) {
    if (k != io_kinds::all && (kinds & k) != 0) {
      if (!s.empty()) s += ',';
      s += n;
    }
  }
  return s;
}

std::string rate_text(double r) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, r);
  return ec == std::errc{} ? std::string(buf, end) : std::to_string(r);
}

}  // namespace

std::string errno_name(int error) {
  for (const auto& e : errno_names) {
    if (e.value == error) return e.name;
  }
  return std::to_string(error);
}

void fault_plan::validate() const {
  const auto rate_ok = [](double r) { return r >= 0 && r <= 1; };
  for (const auto& e : errors) {
    if (e.error <= 0 || e.error > 4095) {
      throw std::invalid_argument("weft::fault_plan: error " + std::to_string(e.error) +
                                  " is not an errno value (1 to 4095)");
    }
    if (!rate_ok(e.rate))
      throw std::invalid_argument("weft::fault_plan: an error rate outside [0, 1]");
  }
  if (!rate_ok(short_rate) || !rate_ok(delay_rate)) {
    throw std::invalid_argument("weft::fault_plan: a rate outside [0, 1]");
  }
  if (!(enter_failure_rate >= 0 && enter_failure_rate < 1)) {
    throw std::invalid_argument(
        "weft::fault_plan: enter_failure_rate must be in [0, 1): every enter refused never "
        "submits");
  }
  if (delay_rate > 0 && (max_delay == 0 || max_delay > 1000)) {
    throw std::invalid_argument("weft::fault_plan: max_delay must be from 1 to 1000 polls");
  }
}

bool fault_plan::empty() const noexcept {
  for (const auto& e : errors) {
    if (e.rate > 0 && e.kinds != 0) return false;
  }
  return !(short_rate > 0 && short_kinds != 0) && !(delay_rate > 0 && max_delay > 0) &&
         !(enter_failure_rate > 0);
}

fault_plan fault_plan::parse(std::string_view spec) {
  fault_plan plan;
  std::string normalized(spec);
  for (char& c : normalized) {
    if (c == ';' || c == '\t' || c == '\n') c = ' ';
  }
  for (auto word : split(normalized, ' ')) {
    if (word.empty()) continue;
    const auto eq = word.find('=');
    if (eq == std::string_view::npos) bad(word, "expected key=value");
    const auto key = word.substr(0, eq);
    const auto args = split(word.substr(eq + 1), ':');
    if (key == "seed") {
      if (args.size() != 1) bad(word, "seed=N");
      plan.seed = parse_number(word, args[0]);
    } else if (key == "error") {
      if (args.size() < 2 || args.size() > 3) bad(word, "error=NAME:RATE[:KINDS]");
      injected_error e;
      e.error = parse_errno(word, args[0]);
      e.rate = parse_rate(word, args[1]);
      if (args.size() == 3) e.kinds = parse_kinds(word, args[2]);
      plan.errors.push_back(e);
    } else if (key == "short") {
      if (args.size() > 2) bad(word, "short=RATE[:KINDS]");
      plan.short_rate = parse_rate(word, args[0]);
      if (args.size() == 2) plan.short_kinds = parse_kinds(word, args[1]);
    } else if (key == "delay") {
      if (args.size() > 2) bad(word, "delay=RATE[:MAX]");
      plan.delay_rate = parse_rate(word, args[0]);
      if (args.size() == 2) {
        const auto max = parse_number(word, args[1]);
        if (max == 0 || max > 1000) bad(word, "MAX is a number of polls from 1 to 1000");
        plan.max_delay = static_cast<unsigned>(max);
      }
    } else if (key == "enter") {
      if (args.size() != 1) bad(word, "enter=RATE");
      plan.enter_failure_rate = parse_rate(word, args[0]);
      if (plan.enter_failure_rate >= 1)
        bad(word, "a rate below 1: every enter refused never submits");
    } else {
      bad(word, "unknown key '" + std::string(key) + "' (seed, error, short, delay, enter)");
    }
  }
  return plan;
}

std::string fault_plan::to_string() const {
  std::string s = "seed=" + std::to_string(seed);
  for (const auto& e : errors) {
    s += " error=" + errno_name(e.error) + ":" + rate_text(e.rate) + ":" + kinds_text(e.kinds);
  }
  if (short_rate > 0) s += " short=" + rate_text(short_rate) + ":" + kinds_text(short_kinds);
  if (delay_rate > 0) s += " delay=" + rate_text(delay_rate) + ":" + std::to_string(max_delay);
  if (enter_failure_rate > 0) s += " enter=" + rate_text(enter_failure_rate);
  return s;
}

}  // namespace weft
