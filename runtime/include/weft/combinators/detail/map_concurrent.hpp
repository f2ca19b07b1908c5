// The machinery behind <weft/combinators/map_concurrent.hpp>: the types its API returns and uses.
// Include that header, not this one.
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

namespace weft {

namespace detail {
[[noreturn]] void throw_zero_limit();
}

namespace detail {
/// Most slots for a range read once (its length unknown): they are allocated up front.
inline constexpr std::size_t max_input_range_slots = std::size_t{1} << 16;

/// Slots for map_concurrent's pool: no more than the range has elements where that can be known
/// without consuming it; a range read once gets at most max_input_range_slots.
template <class V>
std::size_t pool_slots(V& view, std::size_t limit) {
  std::size_t n = max_input_range_slots;
  if constexpr (std::ranges::sized_range<V>) {
    n = static_cast<std::size_t>(std::ranges::size(view));
  } else if constexpr (std::ranges::forward_range<V>) {
    n = static_cast<std::size_t>(std::ranges::distance(view));
  }
  return n < limit ? n : limit;
}

template <class T, class V, class F>
task<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> map_owned(V view, F fn,
                                                                            std::size_t limit) {
  // fn lives in this frame for the whole call: a coroutine lambda's captures live in the lambda
  // object, so every task it made must finish before it goes. It is called for an element only
  // when a slot is free, so at most `slots` children (frames, arguments) exist at once.
  const std::size_t slots = pool_slots(view, limit);
  child_pool<T> pool{slots};
  // The values in input order, as they come (a void map keeps none).
  using values_t = std::conditional_t<std::is_void_v<T>, std::monostate,
                                      std::vector<std::optional<value_or_monostate<T>>>>;
  values_t values;
  std::vector<std::size_t> element_of(slots);  // the element each slot's child works on
  const auto token = co_await this_task::cancel_token();
  std::exception_ptr first_error;
  auto it = std::ranges::begin(view);
  const auto end = std::ranges::end(view);
  std::size_t started = 0;
  std::size_t running = 0;
  // Calls fn for the next element and starts its task in `slot`. fn throwing (or running out of
  // memory) is a failure like a child's: fail-fast.
  auto start_next = [&](std::size_t slot) {
    try {
      auto t = as_task(fn(*it));
      ++it;
      if constexpr (!std::is_void_v<T>) values.emplace_back();
      element_of[slot] = started;
      pool.start(slot, std::move(t));
      ++started;
      ++running;
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
      pool.cancel_all();
    }
  };
  for (std::size_t slot = 0;
       slot < slots && it != end && !first_error && !token.is_cancellation_requested(); ++slot) {
    start_next(slot);
  }
  {
    std::optional<cancel_callback<cancel_children_on<child_pool<T>>>> stop;
    stop.emplace(token, cancel_children_on<child_pool<T>>{&pool});
    while (running > 0) {
      const std::size_t slot = co_await pool.next();
      --running;
      if (!first_error) {
        take_guarded(pool, first_error, [&] {
          auto o = pool.take(slot);
          if (o.has_error()) {
            first_error = o.error();
            pool.cancel_all();
          } else if constexpr (!std::is_void_v<T>) {
            values[element_of[slot]] = value_of(std::move(o));
          }
        });
      }
      if (!first_error && it != end && !token.is_cancellation_requested()) {
        // No cancel_all may read the slot's header while its frame goes: removing the callback
        // waits for one running on another thread, and putting it back applies a cancellation
        // that came meanwhile.
        stop.reset();
        pool.release(slot);
        start_next(slot);
        stop.emplace(token, cancel_children_on<child_pool<T>>{&pool});
      }
    }
  }
  if (first_error) std::rethrow_exception(first_error);
  if (it != end) throw operation_cancelled{};  // cancelled before every element ran
  if constexpr (!std::is_void_v<T>) co_return unwrap_values(values);
}

template <class R, class F>
using map_value_t = child_value_t<std::invoke_result_t<F&, std::ranges::range_reference_t<R>>>;
}  // namespace detail

}  // namespace weft
