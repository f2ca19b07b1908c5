// The README's HTTP service: a router with a path parameter and a body, served until SIGINT or
// SIGTERM (then in-flight requests finish). `hello_http 127.0.0.1:0` picks a free port; the test
// suite runs it that way and talks to it (hello_http_check.py).
#include <cstdio>
#include <string>

#include <weft/http.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/weft.hpp>

namespace http = weft::http;

weft::task<void> serve(std::string address) {
  http::router routes;
  routes.get("/hello/{name}", [](http::request& req) -> weft::task<http::response> {
    co_return http::response::text("Hello, " + std::string{req.param("name")} + "!\n");
  });
  routes.post("/echo", [](http::request& req) -> weft::task<http::response> {
    co_return http::response::text(co_await req.body().text());  // up to 1 MiB, else 413
  });
  http::server server{std::move(routes)};
  auto listener = weft::net::tcp_listener::bind(weft::net::socket_address::parse(address));
  std::printf("listening on %s\n", listener.local_address().to_string().c_str());
  std::fflush(stdout);
  weft::signal_stop stop;  // SIGINT or SIGTERM: stop accepting, finish what is in flight
  co_await server.serve(listener, stop.token());
}

int main(int argc, char** argv) {
  weft::runtime rt;
  rt.block_on(serve(argc > 1 ? argv[1] : "127.0.0.1:8080"));
}
