// Stream operators: functions from async_generator to async_generator.
//
// Thread safety: each result is a generator with one consumer at a time; for_each calls `f` in the
// awaiting task, one value at a time.
//
// Cancellation: the operators run in the consumer's task, so its cancellation reaches the source
// and ends the stream as async_generator.hpp says; interval's sleeps are cancellable the same way.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <weft/stream/async_generator.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>
#include <weft/time/sleep.hpp>

namespace weft {

/// The range-for of a stream: calls `f(value)` for every value, in order, and awaits what it
/// returns when that is a task (so the next value is pulled only after the previous one was
/// handled); ends when the stream ends and rethrows its exception.
///
///     co_await weft::for_each(lines(sock), [&](line l) -> weft::task<void> {
///       co_await reply(sock, l);
///     });
template <class T, class F>
task<void> for_each(async_generator<T> source, F f) {
  while (auto v = co_await source.next()) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&, T&&>>) {
      std::invoke(f, std::move(*v));
    } else {
      co_await std::invoke(f, std::move(*v));
    }
  }
}

/// The values of `source` passed through `f`.
///
///     auto lengths = weft::map(lines(sock), [](const line& l) { return l.size(); });
template <class T, class F>
async_generator<std::invoke_result_t<F&, T&&>> map(async_generator<T> source, F f) {
  while (auto v = co_await source.next()) co_yield std::invoke(f, std::move(*v));
}

/// The values of `source` for which `pred` is true.
template <class T, class P>
async_generator<T> filter(async_generator<T> source, P pred) {
  while (auto v = co_await source.next()) {
    if (std::invoke(pred, std::as_const(*v))) co_yield std::move(*v);
  }
}

/// The first `n` values of `source`; the source is destroyed (its cleanup runs) when the
/// consumer asks for one more, or drops the stream.
template <class T>
async_generator<T> take(async_generator<T> source, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    auto v = co_await source.next();
    if (!v) co_return;
    co_yield std::move(*v);
  }
}

namespace detail {
async_generator<std::uint64_t> interval_from(clock::duration period);
}

/// Ticks 0, 1, 2, … at start + period, start + 2·period, … on the runtime clock, where start is
/// the first next(); a consumer that falls behind gets the missed ticks at once, in order (the
/// schedule does not drift). Throws std::invalid_argument for a period that is not positive.
template <class Rep, class Period>
async_generator<std::uint64_t> interval(std::chrono::duration<Rep, Period> period) {
  const auto p = std::chrono::duration_cast<clock::duration>(period);
  if (p <= clock::duration::zero()) {
    throw std::invalid_argument("weft::interval: the period must be positive");
  }
  return detail::interval_from(p);
}

}  // namespace weft
