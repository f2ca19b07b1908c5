// The event processor's per-destination state: four priority lanes under one lock, the deficit
// round robin that fills a batch from them, the doorbell that wakes the destination's batcher,
// and its resilience layers and counters.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include <weft/flow/event_processor_options.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/detail/quiet_wait.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/sync/spin_lock.hpp>

namespace weft::flow::detail {

// t + d that stops at the clock's end for "never" durations: the resilience layers' own.
using resilience::detail::saturating_add;

template <class P>
struct event_destination {
  explicit event_destination(destination_options<P> o)
      : options(std::move(o)),
        retry(options.retry),
        breaker(options.breaker),
        limiter(options.attempt_timeout),
        slots(options.concurrency) {}

  destination_options<P> options;
  resilience::retry retry;
  resilience::circuit_breaker breaker;
  resilience::time_limiter limiter;
  semaphore slots;  // batches in delivery at once

  // What the batcher waits for on the bell (guarded by lock): nothing (it is not waiting on the
  // bell), the first event, or a full batch (it has a partial one and a flush deadline).
  enum class wake_on : std::uint8_t { nothing, any, full_batch };

  // Guarded by lock.
  spin_lock lock;
  std::array<std::deque<envelope<P>>, priority_count> lanes;
  std::size_t queued = 0;
  std::uint64_t accepted = 0;       // events queued here ever (replays included)
  std::uint64_t next_sequence = 1;  // ids are sequence × destinations + index: unique
  std::array<std::uint64_t, priority_count> deficit{};
  std::size_t cursor = 0;      // the lane the round robin serves now
  bool granted = false;        // whether that lane got its quantum in this visit
  wake_on wants = wake_on::nothing;
  event bell;

  // Counters (any thread).
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> dead_lettered{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> attempts{0};
  std::atomic<std::uint64_t> failed_attempts{0};
  std::atomic<std::size_t> in_delivery{0};

  /// Under lock: adds an event; true when the batcher should be woken (it waits for exactly this).
  bool push_locked(envelope<P>&& e) {
    lanes[static_cast<std::size_t>(e.level)].push_back(std::move(e));
    ++queued;
    if (wants == wake_on::any || (wants == wake_on::full_batch && queued >= options.batch_size)) {
      wants = wake_on::nothing;
      return true;
    }
    return false;
  }

  /// Under lock, with queued > 0: when the oldest queued event was accepted.
  [[nodiscard]] clock::time_point oldest_locked() const noexcept {
    auto oldest = clock::time_point::max();
    for (const auto& lane : lanes) {
      if (!lane.empty()) oldest = std::min(oldest, lane.front().accepted_at);
    }
    return oldest;
  }

  /// Under lock: moves up to batch_size events into `out` by deficit round robin over the lanes
  /// (each visit grants a lane its weight; critical is visited first in each round). Deficits and
  /// the cursor carry over between batches, so the shares hold across batch boundaries. Returns
  /// how many it took from each lane.
  std::array<std::size_t, priority_count> take_batch_locked(
      const std::array<std::uint32_t, priority_count>& weights, std::vector<envelope<P>>& out) {
    std::array<std::size_t, priority_count> taken{};
    const std::size_t max = options.batch_size;
    while (out.size() < max && queued > 0) {
      const std::size_t p = cursor;
      auto& lane = lanes[p];
      if (lane.empty()) {
        deficit[p] = 0;
        advance();
        continue;
      }
      if (!granted) {
        deficit[p] += weights[p];
        granted = true;
      }
      const auto k = static_cast<std::size_t>(
          std::min<std::uint64_t>({deficit[p], lane.size(), max - out.size()}));
      for (std::size_t i = 0; i < k; ++i) {
        out.push_back(std::move(lane.front()));
        lane.pop_front();
      }
      deficit[p] -= k;
      queued -= k;
      taken[p] += k;
      if (lane.empty()) {
        deficit[p] = 0;
        advance();
      } else if (deficit[p] == 0) {
        advance();
      }
      // Otherwise the batch is full: the lane keeps its turn and the rest of its quantum.
    }
    return taken;
  }

  /// Under lock: removes the newest event of lane `p`, if any.
  std::optional<envelope<P>> pop_newest_locked(std::size_t p) {
    auto& lane = lanes[p];
    if (lane.empty()) return std::nullopt;
    std::optional<envelope<P>> e{std::move(lane.back())};
    lane.pop_back();
    --queued;
    return e;
  }

 private:
  void advance() noexcept {
    cursor = (cursor + 1) % priority_count;
    granted = false;
  }
};

}  // namespace weft::flow::detail
