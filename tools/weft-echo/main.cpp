// weft-echo: an echo server on weft's io_uring sockets.
//
//   weft-echo [--listen 127.0.0.1:7000 | --unix PATH] [--workers N]
//
// Prints the address it listens on; on SIGINT/SIGTERM stops accepting, gives live connections a
// second to finish, prints the connection counts and exits 0.
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "../common/command_line.hpp"
#include "../common/echo_service.hpp"

int main(int argc, char** argv) {
  namespace cli = weft::tools::cli;
  weft::tools::echo_server_config config;
  config.listen = weft::net::socket_address::parse("127.0.0.1:7000");
  CLI::App app{"An echo server on weft's io_uring sockets.", "weft-echo"};
  cli::use_tool_conventions(app);
  app.add_option_function<std::string>(
         "--listen",
         [&config](const std::string& a) {
           config.listen = weft::net::socket_address::try_parse(a);
         },
         "the TCP address to listen on")
      ->type_name("ADDR:PORT")
      ->default_str(config.listen->to_string())
      ->check(cli::text(
          [](const std::string& a) { return weft::net::socket_address::try_parse(a).has_value(); },
          "ADDR:PORT, e.g. 127.0.0.1:7000 or [::1]:7000"));
  app.add_option("--unix", config.unix_path, "listen on this Unix socket instead")
      ->type_name("PATH");
  app.add_option("--workers", config.workers, "worker threads")
      ->type_name("N")
      ->transform(cli::integer_in(0));
  if (const auto status = cli::parse(app, argc, argv)) return *status;
  return weft::tools::run_echo_server(config);
}
