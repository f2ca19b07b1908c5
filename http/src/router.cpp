// The router: patterns split into segments at registration, matched segment by segment.
#include <weft/http/router.hpp>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace weft::http {

namespace {

[[noreturn]] void bad_pattern(std::string_view pattern, const char* why) {
  throw std::invalid_argument("weft::http::router: pattern '" + std::string{pattern} + "' " + why);
}

// Splits "/a/b" into "a", "b" ("/" into one empty segment).
template <class F>
void for_each_segment(std::string_view path, F f) {
  path.remove_prefix(1);
  for (;;) {
    const auto slash = path.find('/');
    f(path.substr(0, slash));
    if (slash == std::string_view::npos) return;
    path.remove_prefix(slash + 1);
  }
}

}  // namespace

router& router::route(std::string_view method, std::string_view pattern, handler h) {
  if (method.empty()) throw std::invalid_argument("weft::http::router: empty method");
  if (pattern.empty() || pattern.front() != '/') bad_pattern(pattern, "does not start with '/'");
  if (!h) throw std::invalid_argument("weft::http::router: empty handler");
  entry e{std::string{method}, std::string{pattern}, {}, std::move(h)};
  bool rest_seen = false;
  for_each_segment(pattern, [&](std::string_view s) {
    if (rest_seen) bad_pattern(pattern, "has segments after a {name...} parameter");
    if (s.empty() || s.front() != '{') {
      if (s.find_first_of("{}") != std::string_view::npos) {
        bad_pattern(pattern, "has a brace inside a segment (a parameter is a whole segment)");
      }
      e.segments.push_back({segment::literal, std::string{s}});
      return;
    }
    if (s.back() != '}') bad_pattern(pattern, "has an unclosed '{'");
    auto name = s.substr(1, s.size() - 2);
    auto kind = segment::param;
    if (name.ends_with("...")) {
      name.remove_suffix(3);
      kind = segment::rest;
      rest_seen = true;
    }
    if (name.empty() || name.find_first_of("{}/") != std::string_view::npos) {
      bad_pattern(pattern, "has an empty or malformed parameter name");
    }
    for (const auto& other : e.segments) {
      if (other.kind != segment::literal && other.text == name) {
        bad_pattern(pattern, "uses a parameter name twice");
      }
    }
    e.segments.push_back({kind, std::string{name}});
  });
  for (const auto& other : routes_) {
    if (other.method == e.method && other.segments.size() == e.segments.size() &&
        std::equal(other.segments.begin(), other.segments.end(), e.segments.begin(),
                   [](const segment& a, const segment& b) {
                     return a.kind == b.kind && (a.kind != segment::literal || a.text == b.text);
                   })) {
      bad_pattern(pattern, ("is already routed for " + e.method).c_str());
    }
  }
  routes_.push_back(std::move(e));
  return *this;
}

bool router::match(const entry& e, std::string_view path,
                   std::vector<std::pair<std::string_view, std::string_view>>* params) {
  if (params != nullptr) params->clear();
  std::string_view rest = path.substr(1);  // path starts with '/' (checked by the caller)
  for (const segment& s : e.segments) {
    if (s.kind == segment::rest) {
      if (params != nullptr) params->emplace_back(s.text, rest);
      return true;
    }
    if (rest.data() == nullptr) return false;  // the path has fewer segments
    const auto slash = rest.find('/');
    const auto piece = rest.substr(0, slash);
    if (s.kind == segment::literal) {
      if (piece != s.text) return false;
    } else {
      if (piece.empty()) return false;
      if (params != nullptr) params->emplace_back(s.text, piece);
    }
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  }
  return rest.data() == nullptr;  // every segment of the path was matched
}

bool router::more_specific(const entry& a, const entry& b) noexcept {
  const std::size_t n = std::min(a.segments.size(), b.segments.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (a.segments[i].kind != b.segments[i].kind) return a.segments[i].kind < b.segments[i].kind;
  }
  return a.segments.size() < b.segments.size();  // "/a" before "/a/{rest...}" for "/a"
}

task<response> router::operator()(request& req) const {
  const std::string_view path = req.path();
  if (path.empty() || path.front() != '/') {
    // An absolute-form or asterisk-form target: nothing here routes it.
    co_return response::text("not found\n", 404);
  }
  // The common case allocates nothing but the winner's parameters: candidates are compared by
  // their patterns, and Allow is built only when the method has no route for the path.
  const entry* best = nullptr;
  const entry* best_get = nullptr;  // for HEAD without a HEAD route
  const bool head = req.method() == "HEAD";
  for (const auto& e : routes_) {
    if (e.method == req.method()) {
      if ((best == nullptr || more_specific(e, *best)) && match(e, path, nullptr)) best = &e;
    } else if (head && e.method == "GET") {
      if ((best_get == nullptr || more_specific(e, *best_get)) && match(e, path, nullptr)) {
        best_get = &e;
      }
    }
  }
  if (best == nullptr) best = best_get;
  if (best != nullptr) {
    match(*best, path, &detail::request_access::params(req));
    co_return co_await best->h(req);
  }
  std::string allow;
  auto allow_add = [&](std::string_view m) {
    // Allow lists each method once.
    std::string_view list = allow;
    for (;;) {
      const auto comma = list.find(", ");
      if (list.substr(0, comma) == m) return;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 2);
    }
    if (!allow.empty()) allow += ", ";
    allow += m;
  };
  for (const auto& e : routes_) {
    if (!match(e, path, nullptr)) continue;
    allow_add(e.method);
    if (e.method == "GET") allow_add("HEAD");
  }
  if (allow.empty()) co_return response::text("not found\n", 404);
  auto r = response::text("method not allowed\n", 405);
  r.set_header("Allow", std::move(allow));
  co_return r;
}

}  // namespace weft::http
