// The machinery behind <weft/time/timeout.hpp>: the types its API returns and uses.
// Include that header, not this one.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>
#include <weft/cancel/cancel_token.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/detail/children.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/clock.hpp>
#include <weft/time/sleep.hpp>
#include <weft/time/timed_out.hpp>

namespace weft {

namespace detail {
/// True if the deadline came, false if cancelled first (without an exception).
task<bool> deadline_task(clock::time_point deadline);

template <class T>
task<T> race_deadline(clock::time_point deadline, task<T> work) {
  using pack = child_pack<T, bool>;
  pack set{std::move(work), deadline_task(deadline)};
  set.start_all();
  const auto token = co_await this_task::cancel_token();
  std::optional<outcome<T>> result;
  bool expired = false;
  std::exception_ptr take_failure;  // taking a result threw: rethrown once both stopped
  {
    cancel_callback stop{token, cancel_children_on<pack>{&set}};
    for (std::size_t done = 0; done < 2; ++done) {
      const std::size_t i = co_await set.next();
      if (take_failure) continue;
      take_guarded(set, take_failure, [&] {
        if (i == 0) {
          result.emplace(set.template take<0>());
          if (!expired) set.cancel_all();  // frees the timer at once
        } else if (auto fired = set.template take<1>();
                   fired.has_value() && fired.value() && !result) {
          expired = true;
          set.cancel_all();
        }
      });
    }
  }
  if (take_failure) std::rethrow_exception(take_failure);
  // A task that finished anyway (it ignored the cancellation, or won the race by a hair) keeps
  // its value: nothing it did is thrown away. One stopped by the deadline becomes timed_out.
  if (expired && result->has_error() && is_cancellation(result->error()) &&
      !token.is_cancellation_requested()) {
    throw timed_out{};
  }
  if constexpr (std::is_void_v<T>) {
    result->value();
  } else {
    co_return std::move(*result).value();
  }
}

template <class T>
task<T> race_timeout(clock::duration d, task<T> work) {
  // Read the clock when the caller awaits, not when it builds the task.
  co_return co_await race_deadline(deadline_after(d), std::move(work));
}
}  // namespace detail

}  // namespace weft
