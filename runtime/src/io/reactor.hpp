// A worker's io_uring: submission batching, completion dispatch, wake-ups from other threads, the
// mailbox for cancellations posted from elsewhere, and the drain at shutdown.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <liburing.h>

#include <weft/detail/io_op.hpp>
#include <weft/detail/multishot.hpp>
#include <weft/runtime.hpp>

#include "io/fault_injector.hpp"
#include "scheduler/owned_counter.hpp"

namespace weft::detail {

class worker;

/// What the kernel offered when the ring was set up; code paths are chosen from it.
struct io_capabilities {
  unsigned setup_flags = 0;  // the IORING_SETUP_* flags the ring got
  unsigned features = 0;     // IORING_FEAT_*
  bool msg_ring = false;     // IORING_OP_MSG_RING: worker-to-worker wake-ups
  bool ext_arg = false;      // waits take a timeout without an SQE
};

/// Describes an io_uring_setup failure: the cause and what to do (exposed for tests).
std::string describe_io_uring_error(int error);

class reactor {
 public:
  /// Creates the eventfd that other threads wake this worker with (the ring comes in open()).
  explicit reactor(worker& owner);
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;
  ~reactor();

  /// Sets the ring up on the worker's own thread (SINGLE_ISSUER ties it to its creator), trying
  /// the best flags first. On failure records why; the worker then runs without I/O.
  void open(const runtime_options& options) noexcept;

  [[nodiscard]] bool available() const noexcept { return available_; }
  /// runtime_options::external_loop: the eventfd is what the host's loop waits on. The kernel
  /// signals it for completions (io_uring_register_eventfd), other threads write it to wake the
  /// worker, and wait() sleeps in ppoll on it rather than in the ring.
  [[nodiscard]] bool external() const noexcept { return external_; }
  [[nodiscard]] int event_fd() const noexcept { return event_fd_; }
  /// External loop: turns the kernel's eventfd signal for completions on or off (off while the
  /// worker runs: it takes its completions itself).
  void set_completion_signals(bool on) noexcept;
  /// External loop: consumes the eventfd's count (the host's readiness).
  void drain_eventfd() noexcept;
  /// Writes the eventfd (a wake-up for whoever waits on it).
  void write_eventfd() noexcept;
  /// The fault injector holds completions back (released by later polls).
  [[nodiscard]] bool holding() const noexcept { return faults_ != nullptr && faults_->holding(); }
  [[nodiscard]] const io_capabilities& capabilities() const noexcept { return caps_; }
  /// Why there is no ring (describe_io_uring_error), or empty.
  [[nodiscard]] std::string error_message() const {
    return available_ ? std::string{} : describe_io_uring_error(setup_error_);
  }
  /// Throws io_unavailable with the reason the ring could not be set up.
  [[noreturn]] void throw_unavailable() const;

  /// A free SQE; when the SQ is full, submits what is queued first. Throws std::system_error if
  /// the kernel refuses the submission for good.
  io_uring_sqe* get_sqe();
  /// Records an operation as in flight (its CQE will come) / no longer in flight.
  void track(io_op_base* op) noexcept;
  void untrack(io_op_base* op) noexcept;

  /// user_data tag (low bits) of a multishot's SQE and CQEs.
  static constexpr std::uint64_t multishot_tag = 4;
  /// Records a multishot as armed (its final CQE will come) / no longer armed.
  void track(multishot* m) noexcept;
  void untrack(multishot* m) noexcept;

  /// The provided-buffer ring for multishot receives, set up on first use: false if the kernel
  /// refuses it (the caller then reads with plain operations).
  bool provided_buffers_ready() noexcept;
  static constexpr std::uint16_t buffer_group = 1;
  static constexpr std::size_t buffer_size = 16 * 1024;
  static constexpr unsigned buffer_count = 256;
  std::byte* provided_buffer(std::uint16_t bid) noexcept { return buffers_ + bid * buffer_size; }
  /// Hands a buffer back to the kernel; on the owner's thread.
  void recycle_buffer(std::uint16_t bid) noexcept;

  /// True if SQEs wait for submission or operations are in flight.
  [[nodiscard]] bool busy() const noexcept;
  /// Submits what is queued and dispatches the completions that are ready, without waiting.
  /// Returns the number of operation completions dispatched.
  std::size_t poll();
  /// Submits what is queued and waits for a completion, a wake-up or `timeout_ns` (< 0: no
  /// limit), then dispatches what completed. Returns the number of operation completions.
  std::size_t wait(std::int64_t timeout_ns);

  /// Wakes the worker if it waits in wait(); from any thread. A worker of the same runtime sends
  /// IORING_OP_MSG_RING from its own ring; anyone else writes the eventfd.
  void wake() noexcept;

  /// Posts a request to run on this worker's thread, then wakes it. From any thread.
  void post(mailbox_node* node) noexcept;
  /// Runs the posted requests; on the owner's thread. Returns how many ran.
  std::size_t run_mail() noexcept;
  [[nodiscard]] bool has_mail() const noexcept {
    return mailbox_.load(std::memory_order_relaxed) != nullptr;
  }

  /// At worker exit: cancels every operation in flight and waits for all their completions, so no
  /// kernel write lands in a frame that shutdown is about to destroy. Their tasks are not resumed.
  void drain_for_shutdown() noexcept;
  [[nodiscard]] bool draining() const noexcept { return draining_; }

  worker& owner() const noexcept { return owner_; }

  /// The fault injector when runtime_options::faults (or WEFT_FAULTS) asks for one, else null.
  /// Every SQE of an operation goes through its on_submit once prepared.
  fault_injector* faults() const noexcept { return faults_.get(); }

  owned_counter sqes_submitted, enters, completions, cq_overflows, sq_full;

 private:
  void submit_queued();
  std::size_t reap() noexcept;
  std::size_t wait_external(std::int64_t timeout_ns);
  void arm_wake_read() noexcept;
  void send_wake_from(reactor& sender) noexcept;
  /// Completions the fault injector held back whose delay ran out (all of them when draining).
  std::size_t dispatch_held() noexcept;
  /// io_uring_submit, unless the fault injector refuses this enter.
  int submit_or_fault();

  worker& owner_;
  io_uring ring_{};
  io_capabilities caps_;
  bool available_ = false;
  bool draining_ = false;
  const bool external_;
  bool wake_armed_ = false;  // the eventfd read is in flight
  int setup_error_ = 0;
  int event_fd_ = -1;
  std::uint64_t wake_buffer_ = 0;
  std::size_t in_flight_ = 0;
  io_op_base* in_flight_head_ = nullptr;
  multishot* multishot_head_ = nullptr;
  io_uring_buf_ring* buffer_ring_ = nullptr;
  std::byte* buffers_ = nullptr;
  int buffer_state_ = 0;  // 0 not tried, 1 ready, -1 refused
  std::atomic<mailbox_node*> mailbox_{nullptr};
  std::unique_ptr<fault_injector> faults_;
  std::vector<fault_injector::held> due_;  // scratch for dispatch_held
};

}  // namespace weft::detail
