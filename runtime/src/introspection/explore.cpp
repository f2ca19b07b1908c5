// What weft::testing::explore needs at run time: the seed override and the reproduction line.
#include <weft/testing/explore.hpp>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace weft::testing::detail {

std::uint64_t explore_seed_override() {
  const char* env = std::getenv("WEFT_EXPLORE_SEED");
  if (env == nullptr || *env == '\0') return 0;
  char* end = nullptr;
  const unsigned long long seed = std::strtoull(env, &end, 10);
  if (end == env || *end != '\0' || seed == 0) {
    throw std::invalid_argument(std::string{"weft::testing::explore: WEFT_EXPLORE_SEED = '"} + env +
                                "' is not a seed (a decimal number from 1)");
  }
  return seed;
}

std::string reproduction_line(std::uint64_t seed) {
  std::string line = "WEFT_EXPLORE_SEED=" + std::to_string(seed);
  std::ifstream in{"/proc/self/cmdline", std::ios::binary};
  const std::string cmdline{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  // Arguments are NUL-separated; quote each one for a shell.
  std::size_t start = 0;
  while (start < cmdline.size()) {
    std::size_t end = cmdline.find('\0', start);
    if (end == std::string::npos) end = cmdline.size();
    std::string arg = cmdline.substr(start, end - start);
    line += " '";
    for (char c : arg) {
      if (c == '\'') {
        line += "'\\''";
      } else {
        line += c;
      }
    }
    line += '\'';
    start = end + 1;
  }
  return line;
}

std::string describe_exception(std::exception_ptr e) {
  try {
    std::rethrow_exception(std::move(e));
  } catch (const timed_out&) {
    return "the scenario did not finish within its paused-time limit (a deadlock?)";
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

}  // namespace weft::testing::detail
