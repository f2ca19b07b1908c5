// Stream operators that race values against the clock (buffer, debounce, throttle), merge several
// streams, and turn a callback API into a stream.
//
// Thread safety: each result has one consumer at a time, but buffer, debounce and merge pull their
// sources in tasks of their own, possibly on other workers: a source must share nothing
// unsynchronised with the consumer. from_callback's callback may be called from any thread, also
// after the stream or the runtime is gone.
//
// Cancellation: the consumer's cancellation ends the stream as for any async_generator; buffer,
// debounce and merge then cancel their pump tasks and wait for them (values pulled and not emitted
// are dropped). A source's own operation_cancelled is its failure.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/stream/async_generator.hpp>
#include <weft/sync/channel.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/clock.hpp>
#include <weft/time/timed_out.hpp>
#include <weft/time/timeout.hpp>
#include <weft/stream/detail/timed_operators.hpp>

namespace weft {

/// Groups values into batches: a batch is emitted when it holds `max_items`, when `max_wait`
/// passed since its first value, and (if not empty) at the end of the stream. The source runs in
/// a task of its own, so the timer fires while it waits; dropping the buffer stops it.
///
///     auto batches = weft::buffer(events(), 100, std::chrono::milliseconds{50});
///     while (auto b = co_await batches.next()) write_batch(*b);
///
/// Throws std::invalid_argument for max_items 0 or a non-positive max_wait. An exception of the
/// source is rethrown after the batch collected before it.
template <class T>
async_generator<std::vector<T>> buffer(async_generator<T> source, std::size_t max_items,
                                       clock::duration max_wait) {
  // Checked here, when called, not when the stream starts.
  if (max_items == 0) throw std::invalid_argument("weft::buffer: max_items must be at least 1");
  detail::require_positive(max_wait, "weft::buffer: max_wait");
  return detail::buffer_impl(std::move(source), max_items, max_wait);
}

namespace detail {
template <class T>
async_generator<std::vector<T>> buffer_impl(async_generator<T> source, std::size_t max_items,
                                            clock::duration max_wait) {
  channel<T> ch{max_items};
  detail::first_failure failure;
  std::atomic<std::size_t> pumps{1};
  task_group group;
  group.spawn(detail::pump(std::move(source), &ch, &failure, &pumps));
  std::vector<T> batch;
  clock::time_point deadline{};
  for (;;) {
    std::optional<T> v;
    bool expired = false;
    if (batch.empty()) {
      v = co_await ch.recv();
    } else {
      v = co_await detail::recv_until(&ch, deadline, &expired);
    }
    if (expired) {
      co_yield std::exchange(batch, {});
      continue;
    }
    if (!v) break;  // the source ended (or failed)
    if (batch.empty()) deadline = clock::now() + max_wait;
    batch.push_back(std::move(*v));
    if (batch.size() == max_items) co_yield std::exchange(batch, {});
  }
  if (!batch.empty()) co_yield std::exchange(batch, {});
  group.cancel();  // the pump has ended (the channel closed); nothing left to stop
  co_await group.join();
  if (failure.error) std::rethrow_exception(failure.error);
}
}  // namespace detail

namespace detail {
template <class T>
async_generator<T> throttle_impl(async_generator<T> source, clock::duration period);
}  // namespace detail

/// Passes a value, then drops every value that comes within `period` of the last one passed
/// (leading-edge throttling: the first of a burst goes through at once).
template <class T>
async_generator<T> throttle(async_generator<T> source, clock::duration period) {
  detail::require_positive(period, "weft::throttle: period");
  return detail::throttle_impl(std::move(source), period);
}

namespace detail {
template <class T>
async_generator<T> throttle_impl(async_generator<T> source, clock::duration period) {
  std::optional<clock::time_point> last;
  while (auto v = co_await source.next()) {
    const auto now = clock::now();
    if (!last || now - *last >= period) {
      last = now;
      co_yield std::move(*v);
    }
  }
}
}  // namespace detail

struct debounce_options {
  /// Also emit the first value of a burst at once (a burst: values less than `quiet` apart).
  bool leading = false;
  /// If values keep coming, emit the newest at the latest this long after the burst began (and
  /// again every max_wait while it lasts); zero: no limit.
  clock::duration max_wait = clock::duration::zero();
};

namespace detail {
template <class T>
async_generator<T> debounce_impl(async_generator<T> source, clock::duration quiet,
                                 debounce_options options);
}  // namespace detail

/// Emits a value once the source has been quiet for `quiet` after it: of a burst, only the last
/// value (and, with `leading`, the first as well); `max_wait` bounds how long a burst can hold
/// values back. At the end of the stream a value still held back is emitted.
///
///     auto settled = weft::debounce(keystrokes(), 300ms, {.leading = false, .max_wait = 2s});
template <class T>
async_generator<T> debounce(async_generator<T> source, clock::duration quiet,
                            debounce_options options = {}) {
  detail::require_positive(quiet, "weft::debounce: quiet");
  if (options.max_wait < clock::duration::zero()) {
    throw std::invalid_argument("weft::debounce: max_wait must not be negative");
  }
  return detail::debounce_impl(std::move(source), quiet, options);
}

namespace detail {
template <class T>
async_generator<T> debounce_impl(async_generator<T> source, clock::duration quiet,
                                 debounce_options options) {
  channel<T> ch{1};
  detail::first_failure failure;
  std::atomic<std::size_t> pumps{1};
  task_group group;
  group.spawn(detail::pump(std::move(source), &ch, &failure, &pumps));
  std::optional<T> pending;
  bool in_burst = false;
  clock::time_point burst_start{}, last_arrival{};
  for (;;) {
    if (!in_burst) {
      auto v = co_await ch.recv();
      if (!v) break;
      in_burst = true;
      burst_start = last_arrival = clock::now();
      if (options.leading) {
        co_yield std::move(*v);
      } else {
        pending = std::move(v);
      }
      continue;
    }
    const auto quiet_deadline = last_arrival + quiet;
    const bool capped = options.max_wait > clock::duration::zero() &&
                        burst_start + options.max_wait < quiet_deadline;
    const auto deadline = capped ? burst_start + options.max_wait : quiet_deadline;
    bool expired = false;
    auto v = co_await detail::recv_until(&ch, deadline, &expired);
    if (expired) {
      if (capped) {
        burst_start = clock::now();  // the burst goes on; the next forced emission is max_wait on
      } else {
        in_burst = false;
      }
      if (pending) co_yield *std::exchange(pending, std::nullopt);
      continue;
    }
    if (!v) break;
    pending = std::move(v);
    last_arrival = clock::now();
  }
  if (pending) co_yield *std::exchange(pending, std::nullopt);
  group.cancel();  // the pump has ended (the channel closed); nothing left to stop
  co_await group.join();
  if (failure.error) std::rethrow_exception(failure.error);
}
}  // namespace detail

/// The values of every source as they come; ends when all ended. The first source to fail stops
/// the others and its exception is rethrown.
template <class T, class... More>
requires(std::is_same_v<More, async_generator<T>>&&...)
    async_generator<T> merge(async_generator<T> first, More... rest) {
  channel<T> ch{1};
  detail::first_failure failure;
  std::atomic<std::size_t> pumps{1 + sizeof...(More)};
  task_group group;
  group.spawn(detail::pump(std::move(first), &ch, &failure, &pumps));
  (group.spawn(detail::pump(std::move(rest), &ch, &failure, &pumps)), ...);
  while (auto v = co_await ch.recv()) co_yield std::move(*v);
  group.cancel();  // after a failure the others may wait on their sources forever
  co_await group.join();
  if (failure.error) std::rethrow_exception(failure.error);
}

/// What from_callback does with a value that finds its buffer full.
enum class overflow {
  drop_oldest,  // keep the newest: the oldest buffered value is dropped
  drop_newest,  // keep what is buffered: the new value is dropped
  block,        // the callback waits for room (never call it on a worker that consumes it)
};

namespace detail {
template <class T, class Subscribe, class Unsubscribe>
async_generator<T> from_callback_impl(Subscribe subscribe, Unsubscribe unsubscribe,
                                      std::size_t capacity, overflow policy);
}  // namespace detail

/// Turns a callback API into a stream: calls `subscribe(callback)` when the stream starts, where
/// callback(T) may be called from any thread, and `unsubscribe(handle)` with what subscribe
/// returned when the stream is dropped. Values wait in a buffer of `capacity`; `policy` says what
/// a full buffer does. The callback stays safe to call after unsubscribe and after the runtime
/// is gone (its values are then dropped), and while runtime shutdown destroys the stream.
///
///     auto clicks = weft::from_callback<click>(
///         [&](auto cb) { return button.on_click(std::move(cb)); },
///         [&](auto id) { button.remove(id); }, 256, weft::overflow::drop_oldest);
template <class T, class Subscribe, class Unsubscribe>
async_generator<T> from_callback(Subscribe subscribe, Unsubscribe unsubscribe, std::size_t capacity,
                                 overflow policy) {
  if (capacity == 0) throw std::invalid_argument("weft::from_callback: capacity 0");
  return detail::from_callback_impl<T>(std::move(subscribe), std::move(unsubscribe), capacity,
                                       policy);
}

namespace detail {
template <class T, class Subscribe, class Unsubscribe>
async_generator<T> from_callback_impl(Subscribe subscribe, Unsubscribe unsubscribe,
                                      std::size_t capacity, overflow policy) {
  auto ch = std::make_shared<channel<T>>(capacity);
  auto callback = [ch, policy](T v) {
    if (ch->try_send(v)) return;
    switch (policy) {
      case overflow::drop_newest:
        return;
      case overflow::drop_oldest:
        while (!ch->is_closed()) {
          (void)ch->try_recv();
          if (ch->try_send(v)) return;
        }
        return;
      case overflow::block:
        while (!ch->is_closed() && !ch->try_send(v)) std::this_thread::yield();
        return;
    }
  };
  auto subscription = subscribe(std::move(callback));
  using subscription_t = decltype(subscription);
  struct unsubscribe_on_exit {
    Unsubscribe& unsub;
    subscription_t& sub;
    std::shared_ptr<channel<T>>& chan;
    ~unsubscribe_on_exit() {
      chan->close();  // late callbacks drop their values; a blocked one returns
      unsub(std::move(sub));
    }
  } guard{unsubscribe, subscription, ch};
  while (auto v = co_await ch->recv()) co_yield std::move(*v);
}
}  // namespace detail

}  // namespace weft
