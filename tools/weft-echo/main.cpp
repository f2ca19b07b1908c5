// weft-echo: an echo server on weft's io_uring sockets.
//
//   weft-echo [--listen 127.0.0.1:7000 | --unix PATH] [--workers N]
//
// Prints the address it listens on; on SIGINT/SIGTERM stops accepting, gives live connections a
// second to finish, prints the connection counts and exits 0.
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "../common/echo_service.hpp"

namespace {
[[noreturn]] void usage(const std::string& error) {
  std::fprintf(stderr,
               "weft-echo: %s\nusage: weft-echo [--listen ADDR:PORT | --unix PATH] [--workers N]\n",
               error.c_str());
  std::exit(2);
}
}  // namespace

int main(int argc, char** argv) {
  weft::tools::echo_server_config config;
  config.listen = weft::net::socket_address::parse("127.0.0.1:7000");
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--listen") {
      auto a = weft::net::socket_address::try_parse(value());
      if (!a) usage("--listen needs ADDR:PORT, e.g. 127.0.0.1:7000 or [::1]:7000");
      config.listen = *a;
    } else if (arg == "--unix") {
      config.unix_path = value();
    } else if (arg == "--workers") {
      const std::string v = value();
      const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), config.workers);
      if (ec != std::errc{} || p != v.data() + v.size()) usage("bad --workers '" + v + "'");
    } else if (arg == "--help" || arg == "-h") {
      usage("an echo server");
    } else {
      usage("unknown argument '" + std::string(arg) + "'");
    }
  }
  return weft::tools::run_echo_server(config);
}
