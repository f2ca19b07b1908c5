// The machinery behind <weft/stream/timed_operators.hpp>: the types its API returns and uses.
// Include that header, not this one.
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

namespace weft {

namespace detail {

/// The first failure among several pump tasks (which may fail at once on different workers).
struct first_failure {
  std::atomic<bool> claimed{false};
  std::exception_ptr error;  // read after the pumps were joined
  void record(std::exception_ptr e) noexcept {
    if (!claimed.exchange(true, std::memory_order_acq_rel)) error = std::move(e);
  }
};

/// Pulls `source` in a task of its own into `out`. The last of `*pumps` to end closes `out`;
/// a failing source records the first failure and closes `out` at once (so the others stop).
template <class T>
task<void> pump(async_generator<T> source, channel<T>* out, first_failure* failure,
                std::atomic<std::size_t>* pumps) {
  const auto token = co_await this_task::cancel_token();
  try {
    while (auto v = co_await source.next()) co_await out->send(std::move(*v));
  } catch (const channel_closed&) {
    // another source failed and closed the channel
  } catch (const operation_cancelled&) {
    // The operator cancelled us (its consumer left, or a sibling failed); a source that throws
    // operation_cancelled by itself has failed like any other.
    if (!token.is_cancellation_requested()) {
      failure->record(std::current_exception());
      out->close();
    }
  } catch (...) {
    failure->record(std::current_exception());
    out->close();
  }
  if (pumps->fetch_sub(1, std::memory_order_acq_rel) == 1) out->close();
}

template <class T>
task<std::optional<T>> recv_task(channel<T>* ch) {
  co_return co_await ch->recv();
}

/// Receives from `ch` until `deadline`: the value, an empty optional when `ch` closed, or
/// `expired` set (nothing taken: a cancelled recv takes nothing).
template <class T>
task<std::optional<T>> recv_until(channel<T>* ch, clock::time_point deadline, bool* expired) {
  *expired = false;
  std::optional<T> v;
  try {
    v = co_await with_deadline(deadline, recv_task(ch));
  } catch (const timed_out&) {
    *expired = true;
  }
  co_return v;
}

inline void require_positive(clock::duration d, const char* what) {
  if (d <= clock::duration::zero()) {
    throw std::invalid_argument(std::string{what} + " must be positive");
  }
}

}  // namespace detail

namespace detail {
template <class T>
async_generator<std::vector<T>> buffer_impl(async_generator<T> source, std::size_t max_items,
                                            clock::duration max_wait);
}  // namespace detail

}  // namespace weft
