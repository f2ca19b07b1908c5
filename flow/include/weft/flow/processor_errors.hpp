// weft::flow::backlog_full and processor_stopped: what an event processor's submit() throws when
// it will not take an event.
//
// Thread safety: exception types: distinct objects may be used from different threads.
//
// Cancellation: nothing here suspends.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace weft::flow {

/// The backlog is at event_processor_options::max_backlog and the policy is reject. The event was
/// not taken: the caller still owns it and may try later or elsewhere.
class backlog_full : public std::runtime_error {
 public:
  explicit backlog_full(std::size_t max_backlog)
      : std::runtime_error("weft::flow::event_processor: the backlog is full (" +
                           std::to_string(max_backlog) + " events); the event was not taken"),
        max_backlog_(max_backlog) {}
  [[nodiscard]] std::size_t max_backlog() const noexcept { return max_backlog_; }

 private:
  std::size_t max_backlog_;
};

/// The processor is draining or has stopped: it takes no more events. The event was not taken.
class processor_stopped : public std::runtime_error {
 public:
  processor_stopped()
      : std::runtime_error(
            "weft::flow::event_processor: the processor is stopping or stopped; the event was "
            "not taken") {}
};

}  // namespace weft::flow
