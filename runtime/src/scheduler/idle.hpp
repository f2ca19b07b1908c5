// Which workers are parked and how many are searching for work: decides whom to wake, so that
// work is picked up quickly without waking every worker (a cross-vCPU wake costs 25-35 us here).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

namespace weft::detail {

/// The design is Tokio's (multi_thread/idle.rs).
///
/// Protocol:
/// 1. `state_` packs the number of searching workers (low 16 bits) and unparked workers (high).
/// 2. Whoever makes work available calls worker_to_notify(): it wakes one parked worker only if
///    nobody is searching (a searcher will find the work) and somebody is parked.
/// 3. The woken worker starts as a searcher. When a searcher finds work and it was the last one
///    searching, it wakes another (work may remain), which keeps at most one wake in flight.
/// 4. A worker parks with transition_to_parked() and then re-checks every queue (worker::park):
///    a push that read the state before saw it awake and woke nobody.
/// 5. At most half the workers search at once, so stealing does not turn into contention.
class idle {
 public:
  explicit idle(std::size_t workers)
      : workers_(workers), state_(std::uint32_t(workers) << unparked_shift) {
    sleepers_.reserve(workers);
  }

  /// The worker to unpark for new work, already counted as unparked and searching; or none.
  std::optional<std::size_t> worker_to_notify() {
    if (!should_notify()) return std::nullopt;
    std::lock_guard lock{mutex_};
    if (!should_notify() || sleepers_.empty()) return std::nullopt;
    state_.fetch_add(1 | (1u << unparked_shift), std::memory_order_seq_cst);
    const auto id = sleepers_.back();
    sleepers_.pop_back();
    return id;
  }

  /// Records that `id` parks. Returns true if it was the last searching worker.
  bool transition_to_parked(std::size_t id, bool searching) {
    std::lock_guard lock{mutex_};
    const std::uint32_t dec = (1u << unparked_shift) | (searching ? 1u : 0u);
    const auto prev = state_.fetch_sub(dec, std::memory_order_seq_cst);
    sleepers_.push_back(id);
    return searching && (prev & searching_mask) == 1;
  }

  /// True if the worker may start searching (fewer than half the workers are).
  bool transition_to_searching() {
    const auto s = state_.load(std::memory_order_seq_cst);
    if (2 * (s & searching_mask) >= workers_) return false;
    state_.fetch_add(1, std::memory_order_seq_cst);
    return true;
  }

  /// Ends a search. Returns true if it was the last searching worker.
  bool transition_from_searching() {
    return (state_.fetch_sub(1, std::memory_order_seq_cst) & searching_mask) == 1;
  }

  /// True if `id` is still on the sleepers list (its wake-up was spurious or for shutdown).
  bool is_parked(std::size_t id) {
    std::lock_guard lock{mutex_};
    for (auto s : sleepers_) {
      if (s == id) return true;
    }
    return false;
  }

  /// Takes `id` off the sleepers list (shutdown). Returns true if it was on it.
  bool remove_sleeper(std::size_t id) {
    std::lock_guard lock{mutex_};
    for (auto it = sleepers_.begin(); it != sleepers_.end(); ++it) {
      if (*it == id) {
        sleepers_.erase(it);
        state_.fetch_add(1u << unparked_shift, std::memory_order_seq_cst);
        return true;
      }
    }
    return false;
  }

  std::size_t searching() const noexcept {
    return state_.load(std::memory_order_seq_cst) & searching_mask;
  }

 private:
  static constexpr std::uint32_t unparked_shift = 16;
  static constexpr std::uint32_t searching_mask = (1u << unparked_shift) - 1;

  bool should_notify() const noexcept {
    const auto s = state_.load(std::memory_order_seq_cst);
    return (s & searching_mask) == 0 && (s >> unparked_shift) < workers_;
  }

  const std::size_t workers_;
  std::atomic<std::uint32_t> state_;
  std::mutex mutex_;
  std::vector<std::size_t> sleepers_;
};

}  // namespace weft::detail
