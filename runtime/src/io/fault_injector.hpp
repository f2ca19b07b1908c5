// A worker's fault injector: decides, from the fault_plan and its own seeded generator, which
// operation fails, which transfer is cut short, which completion comes late, and which
// io_uring_enter is refused. Owned by the reactor and touched only on its worker's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include <weft/testing/fault_plan.hpp>

#include "scheduler/owned_counter.hpp"

struct io_uring_sqe;

namespace weft::detail {

class fault_injector {
 public:
  fault_injector(const fault_plan& plan, std::size_t worker_index);

  /// Looks at a prepared SQE (user_data set) before it is submitted: it may turn it into a NOP
  /// whose completion will carry an injected error, or shorten its transfer.
  void on_submit(io_uring_sqe* sqe) noexcept;

  /// A CQE for `user_data` arrived: replaces its result if an error was injected for it.
  /// Returns the result to dispatch.
  int on_complete(std::uint64_t user_data, int res) noexcept;

  /// Whether to hold this completion back (true: it was stored and comes out of take_due later).
  bool maybe_delay(std::uint64_t user_data, int res, unsigned flags) noexcept;
  struct held {
    std::uint64_t user_data;
    int res;
    unsigned flags;
    unsigned polls_left;
  };
  /// Completions whose delay ran out at this poll (all of them when `all`), oldest first.
  void take_due(std::vector<held>& out, bool all) noexcept;
  [[nodiscard]] bool holding() const noexcept { return !held_.empty(); }
  [[nodiscard]] std::size_t held_count() const noexcept { return held_.size(); }

  /// Whether this io_uring_enter is refused; then `error` is -EAGAIN or -EBUSY.
  bool fail_enter(int& error) noexcept;

  owned_counter errors, short_transfers, delays, enter_failures;

 private:
  // Three independent streams, so that how often the worker happens to poll or enter the kernel
  // (which depends on timing) does not shift which operations fail: with one worker, the n-th
  // submission and the n-th completion get the same decision on every run of a seed.
  enum stream { submissions, completions, enters_stream };
  std::uint64_t next(stream s) noexcept;
  bool roll(stream s, double rate) noexcept;
  static unsigned kind_of(const io_uring_sqe* sqe) noexcept;

  fault_plan plan_;
  std::uint64_t state_[3];
  std::unordered_map<std::uint64_t, int> injected_;  // user_data -> -errno, until its CQE
  std::vector<held> held_;
};

}  // namespace weft::detail
