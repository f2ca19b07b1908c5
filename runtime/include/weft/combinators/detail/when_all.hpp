// The machinery behind <weft/combinators/when_all.hpp>: the types its API returns and uses.
// Include that header, not this one.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>
#include <weft/cancel/cancel_token.hpp>
#include <weft/detail/children.hpp>
#include <weft/outcome.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>

namespace weft {

namespace detail {
/// A void child's place in a tuple of results.
template <class T>
using value_or_monostate = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// Registers on the combinator's own token and cancels its children when it is cancelled.
/// Constructed after the children started, so a cancellation that came before is applied too.
template <class Children>
struct cancel_children_on {
  Children* children;
  void operator()() const noexcept { children->cancel_all(); }
};

template <class T>
std::optional<value_or_monostate<T>> value_of(outcome<T>&& o) {
  if constexpr (std::is_void_v<T>) {
    return std::monostate{};
  } else {
    return std::move(o).value();
  }
}

/// The fail-fast step of when_all and map_concurrent for child i of a range: keeps its value, or
/// keeps the first failure and cancels the rest. After a failure nothing more is taken: later
/// results and failures are the siblings' stopping. Taking a result that throws is a failure too.
template <class T>
void take_fail_fast(child_range<T>& set, std::size_t i,
                    std::vector<std::optional<value_or_monostate<T>>>& values,
                    std::exception_ptr& first_error) noexcept {
  if (first_error) return;
  take_guarded(set, first_error, [&] {
    auto o = set.take(i);
    if (o.has_error()) {
      first_error = o.error();
      set.cancel_all();
    } else {
      values[i] = value_of(std::move(o));
    }
  });
}

/// The values in input order, once every one is there.
template <class T>
std::vector<T> unwrap_values(std::vector<std::optional<T>>& values) {
  std::vector<T> out;
  out.reserve(values.size());
  for (auto& v : values) out.push_back(std::move(*v));
  return out;
}

template <class... T>
task<std::tuple<value_or_monostate<T>...>> when_all_pack(task<T>... children);
template <class... T>
task<std::tuple<outcome<T>...>> when_all_settled_pack(task<T>... children);
}  // namespace detail

}  // namespace weft
