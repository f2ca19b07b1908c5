// weft::flow event processor settings: priorities, destinations, backpressure policies, and the
// envelope an accepted event travels in.
//
// Thread safety: plain values.
//
// Cancellation: nothing here suspends.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>

namespace weft::flow {

/// An event's priority: its lane. Lanes are served by weight (event_processor_options::weights),
/// critical first in each round, and the shed policy sheds the lowest lane first.
enum class priority : std::uint8_t { critical = 0, high = 1, medium = 2, low = 3 };
inline constexpr std::size_t priority_count = 4;

/// "critical", "high", "medium", "low".
[[nodiscard]] const char* to_string(priority p) noexcept;

/// What submit() does once the backlog (events accepted and not yet delivered, dead-lettered or
/// shed) reaches event_processor_options::max_backlog.
enum class backpressure {
  block,      // submit() waits for room; try_submit() answers submit_status::full
  reject,     // submit() throws backlog_full; try_submit() answers submit_status::full
  shed_lowest,  // the newest queued event of the lowest lane below the new one's is shed to make
                // room; when no queued event is lower, the new one is shed (both counted)
};

/// Where an event goes: an index into event_processor_options::destinations, from
/// event_processor::destination(name) or the destinations' order.
struct destination_id {
  std::uint32_t index = 0;
  friend bool operator==(destination_id, destination_id) = default;
};

/// An accepted event as destinations and the dead-letter queue see it. `id` is unique per
/// processor and kept by replays, so a destination can drop duplicates (delivery is at least
/// once).
template <class P>
struct envelope {
  P payload;
  std::uint64_t id = 0;
  priority level = priority::medium;
  destination_id to{};
  clock::time_point accepted_at{};  // on the runtime's clock (added latency is counted from it)
  std::uint32_t replays = 0;        // times this event came back from the dead-letter queue
};

/// One destination: how to deliver a batch, how to batch, and its resilience layers. The batch
/// is delivered through retry (outermost), then the breaker, then a per-attempt timeout.
template <class P>
struct destination_options {
  std::string name{};
  /// Delivers one batch; a batch is acknowledged (counted delivered) only when this completes
  /// without an exception. Called again with the same batch for each retry. May be called
  /// concurrently for different batches (up to `concurrency`).
  std::function<task<void>(std::span<const envelope<P>>)> deliver{};
  std::size_t batch_size = 100;                           // a batch flushes at this many events
  clock::duration flush_interval = std::chrono::milliseconds{10};  // or when its oldest waited this
  std::size_t concurrency = 1;                            // batches in delivery at once (>= 1)
  clock::duration attempt_timeout = std::chrono::seconds{5};  // per delivery attempt
  resilience::retry_options retry{};                      // backoff with jitter by default
  resilience::circuit_breaker_options breaker{};
  /// A batch that finds the breaker open keeps waiting for it (probing at its retry_after) until
  /// this long after it first found it open; then it is dead-lettered (reason breaker_open).
  clock::duration open_deadline = std::chrono::seconds{30};
};

/// The processor's settings. Errors: the constructor throws std::invalid_argument for no
/// destinations, duplicate or empty names, a destination without `deliver`, a zero batch size,
/// concurrency, weight, backlog or dead-letter capacity, a flush interval, attempt timeout or
/// metrics interval that is not positive, or a negative drain grace or open deadline.
/// duration::max() is "never" where a duration bounds a wait (flush_interval, open_deadline).
template <class P>
struct event_processor_options {
  std::vector<destination_options<P>> destinations{};
  /// Events accepted and not yet delivered, dead-lettered or shed, at most (the memory bound).
  std::size_t max_backlog = 100'000;
  backpressure policy = backpressure::block;
  /// Lane weights, critical to low: with every lane busy, a destination's batches carry the lanes
  /// in these proportions (deficit round robin, critical first in each round), so no lane starves.
  std::array<std::uint32_t, priority_count> weights{8, 4, 2, 1};
  /// How long a drain (stop) may take to deliver what is buffered; then the rest is
  /// dead-lettered with reason shutdown (zero: at once, nothing more is delivered).
  clock::duration drain_grace = std::chrono::seconds{5};
  /// How often the metrics watch gets a new snapshot while the processor runs.
  clock::duration metrics_interval = std::chrono::seconds{1};
  /// The dead-letter queue's bound; beyond it the oldest dead letter is dropped and counted
  /// (dead_letter_queue::overflowed).
  std::size_t dead_letter_capacity = 100'000;
  /// Called with each shed event (the shed_lowest policy), on the submitting thread, after it
  /// was counted; may be empty. What it throws is swallowed (the event is shed either way).
  std::function<void(const envelope<P>&)> on_shed{};
};

/// What try_submit() did.
enum class submit_status {
  accepted,  // queued for delivery (under shed_lowest possibly by shedding a lower event)
  shed,      // shed_lowest: the backlog was full of events at its priority or higher; counted
  full,      // block or reject: the backlog is full; the payload was not taken
  stopped,   // the processor is draining or stopped; the payload was not taken
};

}  // namespace weft::flow
