// weft::net::resolve: host names to socket addresses, with getaddrinfo on the blocking pool.
//
// Thread safety: resolve() may be awaited by any number of tasks at once, on any worker; each
// lookup runs on the awaiting runtime's blocking pool and shares nothing with the others.
//
// Cancellation: cancellable as spawn_blocking is: a lookup that has not started is dropped; one
// that runs cannot be interrupted, so the await throws weft::operation_cancelled at once and
// getaddrinfo's answer is discarded when it comes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <weft/net/socket_address.hpp>
#include <weft/task.hpp>

namespace weft::net {

/// Every address `host` resolves to (IPv4 and IPv6, in getaddrinfo's order, duplicates
/// removed), each with `port`. A numeric host is parsed without a lookup. getaddrinfo blocks, so
/// it runs on the runtime's blocking pool; the awaiting worker keeps running other tasks.
///
///     for (auto addr : co_await weft::net::resolve("localhost", 8080)) try_connect(addr);
///
/// Errors: std::system_error with getaddrinfo's message and the host ("weft::net::resolve
/// nosuch.invalid: Name or service not known"); an empty host is std::invalid_argument.
task<std::vector<socket_address>> resolve(std::string host, std::uint16_t port);

}  // namespace weft::net
