// weft::flow::dead_letter_queue: where an event processor puts the events it could not deliver,
// with the reason and the attempts made, bounded, for inspection and replay.
//
// Thread safety: every member may be called from any thread at once (one lock).
//
// Cancellation: nothing here suspends.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <weft/flow/event_processor_options.hpp>

namespace weft::flow {

/// Why an event was dead-lettered.
enum class dead_letter_reason {
  retries_exhausted,  // every delivery attempt failed (retry_options::max_attempts)
  not_retryable,      // failed with an error the retry does not retry (or its gate refused)
  breaker_open,       // the breaker stayed open past destination_options::open_deadline
  shutdown,           // still buffered or in delivery when a drain's grace period ended
};

/// "retries exhausted", "not retryable", "breaker open", "shutdown".
[[nodiscard]] const char* to_string(dead_letter_reason r) noexcept;

/// One undelivered event.
template <class P>
struct dead_letter_entry {
  envelope<P> event;
  dead_letter_reason reason = dead_letter_reason::retries_exhausted;
  std::uint32_t attempts = 0;   // delivery attempts of its last batch (0: never tried)
  std::exception_ptr error{};   // the last attempt's failure (empty for shutdown without one)
  std::string destination{};
};

/// A bounded FIFO of dead letters (capacity at least 1). When full, adding drops the oldest entry
/// and counts it in overflowed(): the processor's counters still count the event as
/// dead-lettered.
///
///     for (auto& d : processor.dead_letters().take(100)) log(d.reason, d.event.id);
///     processor.replay();   // or hand them back for another try
template <class P>
class dead_letter_queue {
 public:
  /// Throws std::invalid_argument for a capacity of 0.
  explicit dead_letter_queue(std::size_t capacity) : capacity_(capacity) {
    if (capacity == 0) {
      throw std::invalid_argument("weft::flow::dead_letter_queue: the capacity is 0");
    }
  }
  dead_letter_queue(const dead_letter_queue&) = delete;
  dead_letter_queue& operator=(const dead_letter_queue&) = delete;

  /// Adds one entry (the oldest goes when full). Never throws: an entry that memory cannot be
  /// found for is dropped and counted in overflowed() too.
  void push(dead_letter_entry<P> d) noexcept {
    std::lock_guard lock{mutex_};
    ++added_;
    if (entries_.size() >= capacity_) {
      entries_.pop_front();
      ++overflowed_;
    }
    try {
      entries_.push_back(std::move(d));
    } catch (...) {
      ++overflowed_;
    }
  }
  /// Counts an entry that could not be built (memory) as dropped.
  void count_lost() noexcept {
    std::lock_guard lock{mutex_};
    ++added_;
    ++overflowed_;
  }
  /// Removes and returns up to `max` entries, oldest first.
  [[nodiscard]] std::vector<dead_letter_entry<P>> take(
      std::size_t max = std::numeric_limits<std::size_t>::max()) {
    std::vector<dead_letter_entry<P>> out;
    std::lock_guard lock{mutex_};
    const std::size_t n = std::min(max, entries_.size());
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      out.push_back(std::move(entries_.front()));
      entries_.pop_front();
    }
    return out;
  }
  /// Puts entries back at the front, in their order (a replay that found no room).
  void put_back(std::vector<dead_letter_entry<P>>&& entries) {
    std::lock_guard lock{mutex_};
    for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
      entries_.push_front(std::move(*it));
    }
    while (entries_.size() > capacity_) {
      entries_.pop_back();
      ++overflowed_;
    }
  }
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock{mutex_};
    return entries_.size();
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  /// Entries ever added.
  [[nodiscard]] std::uint64_t added() const {
    std::lock_guard lock{mutex_};
    return added_;
  }
  /// Entries dropped because the queue was full.
  [[nodiscard]] std::uint64_t overflowed() const {
    std::lock_guard lock{mutex_};
    return overflowed_;
  }

 private:
  mutable std::mutex mutex_;
  std::deque<dead_letter_entry<P>> entries_;
  std::size_t capacity_;
  std::uint64_t added_ = 0;
  std::uint64_t overflowed_ = 0;
};

}  // namespace weft::flow
