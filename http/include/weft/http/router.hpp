// weft::http::router: a handler that dispatches on method and path, with {name} path parameters.
//
// Thread safety: add routes before serving: route() and its shorthands are not synchronised.
// operator() only reads the routes, so one router may serve every connection at once; its route
// handlers are then called concurrently and must allow that.
//
// Cancellation: operator() suspends only in the handler it picks, whose cancellation passes through
// unchanged (see handler.hpp).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <weft/http/handler.hpp>
#include <weft/http/request.hpp>
#include <weft/http/response.hpp>
#include <weft/task.hpp>

namespace weft::http {

/// Routes requests by method and path. A pattern is a path whose segments are literal, a
/// parameter `{name}` (one non-empty segment) or, as the last segment only, `{name...}` (the rest
/// of the path, possibly empty and with its slashes). Parameters are read with request::param.
///
///     weft::http::router r;
///     r.get("/users/{id}", [](weft::http::request& req) -> weft::task<weft::http::response> {
///       co_return weft::http::response::text(std::string{req.param("id")});
///     });
///     r.get("/static/{file...}", serve_static);
///     weft::http::server srv{std::ref(r)};  // or std::move(r)
///
/// Where several routes match a path, the most specific wins: segment by segment, a literal
/// beats a parameter, which beats a rest parameter. A path no route matches is 404; one that
/// routes match for other methods only is 405 with an `Allow` header listing them. HEAD is served
/// by the GET route when there is no HEAD route (the server then sends no body). Matching is on
/// the path as sent (no percent-decoding, no "." or ".." resolution), with the query ignored.
///
/// Misuse: a pattern that does not start with '/', an unclosed or empty `{}`, a rest parameter
/// that is not last, a parameter name used twice, or the same method and pattern registered twice
/// throws std::invalid_argument when the route is added. Add routes before serving: the router is
/// not synchronised, and serving only reads it.
class router {
 public:
  router& route(std::string_view method, std::string_view pattern, handler h);
  router& get(std::string_view pattern, handler h) { return route("GET", pattern, std::move(h)); }
  router& post(std::string_view pattern, handler h) { return route("POST", pattern, std::move(h)); }
  router& put(std::string_view pattern, handler h) { return route("PUT", pattern, std::move(h)); }
  router& patch(std::string_view pattern, handler h) {
    return route("PATCH", pattern, std::move(h));
  }
  router& del(std::string_view pattern, handler h) {
    return route("DELETE", pattern, std::move(h));
  }

  /// Serves `req` with the matching route (or answers 404/405).
  task<response> operator()(request& req) const;

 private:
  struct segment {
    enum kind_t : unsigned char { literal, param, rest } kind;
    std::string text;  // the literal, or the parameter's name
  };
  struct entry {
    std::string method;
    std::string pattern;
    std::vector<segment> segments;
    handler h;
  };
  // Matches `path` against `e`; on success, and if `params` is given, fills it.
  static bool match(const entry& e, std::string_view path,
                    std::vector<std::pair<std::string_view, std::string_view>>* params);
  // True if `a` is more specific than `b` (both matching one path): segment by segment a
  // literal beats a parameter, which beats a rest parameter. Both match the same path, so this
  // depends on the patterns alone and needs no per-request record.
  static bool more_specific(const entry& a, const entry& b) noexcept;

  std::vector<entry> routes_;
};

}  // namespace weft::http
