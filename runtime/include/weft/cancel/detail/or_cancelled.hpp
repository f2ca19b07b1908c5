// The machinery behind <weft/cancel/or_cancelled.hpp>: the types its API returns and uses.
// Include that header, not this one.
#pragma once

#include <coroutine>
#include <optional>
#include <type_traits>
#include <utility>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/await_trace.hpp>
#include <weft/task.hpp>

namespace weft {

namespace detail {

template <class A>
using resume_t = decltype(std::declval<A&>().await_resume());

/// What or_cancelled gives for an awaiter of type A: bool for a void result (true: completed),
/// std::optional<T> otherwise (empty: cancelled).
template <class A>
using or_cancelled_t = std::conditional_t<std::is_void_v<resume_t<A>>, bool,
                                          std::optional<std::remove_cvref_t<resume_t<A>>>>;

template <class A>
class or_cancelled_awaiter {
 public:
  explicit or_cancelled_awaiter(A&& inner) : inner_(std::move(inner)) {}
  or_cancelled_awaiter(const or_cancelled_awaiter&) = delete;
  or_cancelled_awaiter& operator=(const or_cancelled_awaiter&) = delete;
  or_cancelled_awaiter(or_cancelled_awaiter&&) = default;

  void describe_await(await_description& d) const { describe_inner(inner_, d); }
  bool await_ready() { return inner_.await_ready(); }
  template <class Promise>
  decltype(auto) await_suspend(std::coroutine_handle<Promise> caller) {
    return inner_.await_suspend(caller);
  }
  or_cancelled_t<A> await_resume() {
    if constexpr (requires { inner_.await_resume_quietly(); }) {
      // weft's own waits know whether they were cancelled without throwing.
      return inner_.await_resume_quietly();
    } else {
      try {
        if constexpr (std::is_void_v<resume_t<A>>) {
          inner_.await_resume();
          return true;
        } else {
          return or_cancelled_t<A>{inner_.await_resume()};
        }
      } catch (const operation_cancelled&) {
        return or_cancelled_t<A>{};
      }
    }
  }

 private:
  A inner_;
};

}  // namespace detail

}  // namespace weft
