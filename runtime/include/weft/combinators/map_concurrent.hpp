// weft::map_concurrent: co_await fn(x) for every x of a range, at most `limit` at a time.
//
// Thread safety: awaited from a task on a worker; `fn` is called in that task, one element at a
// time, but the tasks it returns run concurrently on any worker, so what they share must be
// synchronised.
//
// Cancellation: cancelling the caller stops new starts, cancels the running children and waits for
// them, then throws operation_cancelled unless every element had completed anyway; a caller
// cancelled before the start gets it without `fn` being called.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/detail/children.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/combinators/detail/map_concurrent.hpp>

namespace weft {

/// Returns the values of co_await fn(x) for each x in `range`, in input order, with at most
/// `limit` of them running at once (each as its own task). Fail-fast like when_all: the first
/// failure stops new starts, cancels those running, waits for them and is rethrown.
///
///     auto pages = co_await weft::map_concurrent(urls, [](const std::string& u) {
///       return fetch(u);
///     }, 8);
///
/// Lazy: `fn` (kept alive for the whole call, so a capturing coroutine lambda is safe) is called
/// for an element only when one of the `limit` slots is free, and the range is read one element
/// at a time, in order, so at most `limit` children (their frames and arguments) exist at once
/// whatever the range's length; an input range read once (a generator, std::views::istream) works.
/// Memory is O(limit) plus the results: the values are kept until the end, in input order (a
/// void map keeps none). Slots are allocated up front (about 80 bytes each): min(length, limit)
/// for a range whose length is known without reading it (sized or forward), and for a range read
/// once min(limit, 65,536), so at most 65,536 of its elements run at once. A caller cancelled
/// before the map starts gets operation_cancelled without fn being called.
///
/// `fn` throwing is a failure like a child's: nothing more starts, the running ones are cancelled
/// and awaited, and the exception is rethrown. If the caller is cancelled, nothing more starts,
/// the running children are cancelled and awaited, and operation_cancelled is thrown unless every
/// element had already started. The element `fn` is given is `*it` of the range's iterator: with a
/// range that yields temporaries, take it by value in `fn` (the task may outlive the temporary).
/// An lvalue range is referred to and must outlive the call; a temporary one is moved in.
/// Throws std::invalid_argument for limit 0.
template <std::ranges::input_range R, class F>
auto map_concurrent(R&& range, F fn, std::size_t limit)
    -> task<std::conditional_t<std::is_void_v<detail::map_value_t<R, F>>, void,
                               std::vector<detail::map_value_t<R, F>>>> {
  if (limit == 0) detail::throw_zero_limit();
  return detail::map_owned<detail::map_value_t<R, F>>(std::views::all(std::forward<R>(range)),
                                                      std::move(fn), limit);
}

}  // namespace weft
