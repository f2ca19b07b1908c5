// weft::http::handler: the type of what serves a request.
//
// Thread safety: the server calls one handler from every connection at once, on any worker: its
// call operator (and what it captures) must allow that. A request& belongs to the task the handler
// returned until that task finishes.
//
// Cancellation: the server cancels a handler's task when the grace period after a stop ends, when
// the task awaiting serve() is cancelled, or when a body read outlasts body_timeout: its suspension
// points then throw weft::operation_cancelled and the connection closes without a response.
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
