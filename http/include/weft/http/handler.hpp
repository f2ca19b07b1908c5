// weft::http::handler: the type of what serves a request.
#pragma once

#include <functional>

#include <weft/http/error.hpp>
#include <weft/http/request.hpp>
#include <weft/http/response.hpp>
#include <weft/task.hpp>

namespace weft::http {

/// Serves one request: any callable `request&` -> `task<response>` (a lambda, a router). The
/// request (and every view into it) is valid until the returned task finishes.
///
///     weft::http::handler hello = [](weft::http::request&) -> weft::task<weft::http::response> {
///       co_return weft::http::response::text("Hello, World!");
///     };
using handler = std::function<task<response>(request&)>;

}  // namespace weft::http
