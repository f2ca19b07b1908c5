// weft::http::router through a real server: literal and {name} routes, {name...} rest
// parameters, the most specific route winning whatever the order of registration, 404, 405 with
// Allow, HEAD served by GET, the query ignored; and every malformed pattern refused when added.
#include <weft/http/router.hpp>

#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "http_client_support.hpp"

namespace {

namespace http = weft::http;
using weft::task;
using weft::net::socket_address;
using weft::testing::round_trip;

/// A handler that names itself and the parameters it got.
http::handler named(std::string name) {
  return [name](http::request& req) -> task<http::response> {
    std::string out = name;
    for (const char* p : {"id", "post", "rest"}) {
      if (!req.param(p).empty() || (std::string{p} == "rest" && name.starts_with("static"))) {
        out += std::string{" "} + p + "=" + std::string{req.param(p)};
      }
    }
    co_return http::response::text(out);
  };
}

class Router : public weft::testing::http_server_test {};

task<std::string> get(socket_address at, const std::string& method, const std::string& target,
                      int* status = nullptr, std::string* allow = nullptr) {
  auto r = co_await round_trip(at, method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
  if (!r) co_return "<no response>";
  if (status != nullptr) *status = r->status;
  if (allow != nullptr) *allow = r->get("allow");
  co_return r->body;
}

TEST_F(Router, RoutesByMethodAndPathWithParametersAndTheMostSpecificRouteWins) {
  http::router r;
  // Registered least specific first: specificity, not order, decides.
  r.get("/users/{id}", named("user"));
  r.get("/users/me", named("me"));
  r.get("/users/{id}/posts/{post}", named("post"));
  r.post("/users", named("create"));
  r.get("/static/{rest...}", named("static"));
  r.get("/static/logo", named("logo"));
  r.get("/static", named("index"));
  r.get("/", named("root"));
  r.del("/users/{id}", named("delete"));
  run(std::ref(r), {}, [](socket_address at, http::server&) -> task<void> {
    EXPECT_EQ(co_await get(at, "GET", "/users/7"), "user id=7");
    EXPECT_EQ(co_await get(at, "GET", "/users/me"), "me");
    EXPECT_EQ(co_await get(at, "GET", "/users/7/posts/9?full=1"), "post id=7 post=9");
    EXPECT_EQ(co_await get(at, "POST", "/users"), "create");
    EXPECT_EQ(co_await get(at, "DELETE", "/users/3"), "delete id=3");
    EXPECT_EQ(co_await get(at, "GET", "/static/css/site.css"), "static rest=css/site.css");
    EXPECT_EQ(co_await get(at, "GET", "/static/"), "static rest=");
    EXPECT_EQ(co_await get(at, "GET", "/static"), "index") << "shorter literal first";
    EXPECT_EQ(co_await get(at, "GET", "/static/logo"), "logo") << "literal over rest";
    EXPECT_EQ(co_await get(at, "GET", "/"), "root");
    EXPECT_EQ(co_await get(at, "GET", "/?q=1"), "root");

    int status = 0;
    std::string allow;
    (void)co_await get(at, "GET", "/nowhere", &status);
    EXPECT_EQ(status, 404);
    (void)co_await get(at, "GET", "/users/7/", &status);  // a trailing slash is another path
    EXPECT_EQ(status, 404);
    (void)co_await get(at, "GET", "/users//posts/1", &status);  // an empty {id}
    EXPECT_EQ(status, 404);
    (void)co_await get(at, "PUT", "/users/7", &status, &allow);
    EXPECT_EQ(status, 405);
    EXPECT_EQ(allow, "GET, HEAD, DELETE");
    (void)co_await get(at, "GET", "/users", &status, &allow);
    EXPECT_EQ(status, 405);
    EXPECT_EQ(allow, "POST");
  });
}

TEST_F(Router, HeadIsServedByTheGetRouteWithoutABodyUnlessItHasItsOwn) {
  http::router r;
  r.get("/a", named("get a"));
  r.get("/b", named("get b"));
  r.route("HEAD", "/b", [](http::request&) -> task<http::response> {
    co_return http::response{}.set_header("X-Head", "own");
  });
  run(std::ref(r), {}, [](socket_address at, http::server&) -> task<void> {
    auto c = co_await weft::net::tcp_stream::connect(at);
    co_await c.write_all(weft::testing::bytes_of(
        "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"));
    weft::testing::http_reader in{c};
    auto a = co_await in.next(true);
    auto b = co_await in.next(true);
    EXPECT_TRUE(a && b);
    if (!a || !b) co_return;
    EXPECT_EQ(a->status, 200);
    EXPECT_EQ(a->get("content-length"), "5");  // "get a"
    EXPECT_EQ(b->get("x-head"), "own");
  });
}

TEST(RouterPatterns, MalformedPatternsAndDuplicatesAreRefusedWhenAdded) {
  http::router r;
  auto h = named("x");
  EXPECT_THROW(r.get("users", h), std::invalid_argument);
  EXPECT_THROW(r.get("", h), std::invalid_argument);
  EXPECT_THROW(r.get("/users/{id", h), std::invalid_argument);
  EXPECT_THROW(r.get("/users/{}", h), std::invalid_argument);
  EXPECT_THROW(r.get("/users/a{id}", h), std::invalid_argument);
  EXPECT_THROW(r.get("/a/{rest...}/b", h), std::invalid_argument);
  EXPECT_THROW(r.get("/a/{id}/{id}", h), std::invalid_argument);
  EXPECT_THROW(r.get("/a", http::handler{}), std::invalid_argument);
  EXPECT_THROW(r.route("", "/a", h), std::invalid_argument);
  r.get("/a/{id}", h);
  EXPECT_THROW(r.get("/a/{other}", h), std::invalid_argument) << "same route, renamed parameter";
  EXPECT_NO_THROW(r.post("/a/{id}", h));
  EXPECT_NO_THROW(r.get("/a/{id}/b", h));
}

}  // namespace
