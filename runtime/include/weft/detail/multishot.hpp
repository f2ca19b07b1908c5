// A multishot operation (one SQE, many CQEs) kept armed on one worker's io_uring: multishot
// accept, and multishot receive into the worker's provided-buffer ring. Sockets own one each; a
// task reads from it through read_awaiter. Used by weft::net.
//
// A multishot belongs to the worker that first read from it (its home), and a socket may outlive
// that worker's runtime: the home is shared, reference-counted state that runtime shutdown marks
// gone, so a later close finishes by itself and a later read is refused.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/io_op.hpp>
#include <weft/detail/task_frame.hpp>

namespace weft::detail {

class worker;
class multishot;
class multishot_home;

/// What one read from a multishot got.
struct multishot_result {
  enum kind_t : std::uint8_t {
    data,       // `value` bytes copied into the caller's buffer (0: end of stream)
    fd,         // `value` is a new descriptor (accept); the caller owns it
    error,      // `value` is the errno
    cancelled,  // the reading task was cancelled; nothing was consumed
    fallback,   // no multishot here (no io_uring support, no buffers): do a plain operation
    // The multishot belongs to another runtime: `value` is wrong_runtime_gone (it shut down) or
    // wrong_runtime_other (it runs, but this reader is not on it). The caller throws logic_error.
    wrong_runtime,
    // Another task already waits on this multishot: one reader (or acceptor) at a time. The
    // caller throws logic_error; the waiting task is not disturbed.
    busy,
  };
  static constexpr int wrong_runtime_gone = 0;
  static constexpr int wrong_runtime_other = 1;
  kind_t kind = data;
  int value = 0;
};

/// Owns a multishot through an intrusive reference: the socket holds one, the armed operation
/// another, so the state outlives an operation the kernel still holds after the socket closed.
class multishot {
 public:
  enum class mode : std::uint8_t { recv, accept };

  /// A new multishot for `fd` (not armed until the first read). The caller holds one reference;
  /// give it back with close().
  static multishot* create(int fd, mode m);
  /// Drops the owner's reference: cancels the armed operation (from any thread; through the
  /// owner worker's mailbox if need be), gives queued buffers back and closes queued accepted
  /// descriptors. The socket's fd must stay open until this returns (close it right after).
  /// After the owner's runtime shut down it finishes here, on the calling thread.
  void close() noexcept;

  /// Runtime shutdown, once `w`'s thread has stopped: marks the home of the multishots that
  /// worker ran as gone (their sockets may live on) and finishes the closes it was asked for but
  /// never ran.
  static void worker_gone(worker& w) noexcept;

  /// Awaits the next result. At most one reader at a time.
  class read_awaiter {
   public:
    /// Holds a reference on the multishot until destroyed: a socket closed under a waiting
    /// reader may drop the last other one before the reader has resumed.
    read_awaiter(multishot& m, std::span<std::byte> buf) noexcept : m_(m), buf_(buf) {
      m_.refs_.fetch_add(1, std::memory_order_relaxed);
    }
    read_awaiter(const read_awaiter&) = delete;
    read_awaiter& operator=(const read_awaiter&) = delete;
    ~read_awaiter();
    void describe_await(await_description& d) const {
      d.what = (m_.mode_ == mode::accept ? "accept fd " : "recv fd ") + std::to_string(m_.fd_);
    }

    bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> caller) {
      return suspend(caller, token_of(caller));
    }
    multishot_result await_resume() noexcept {
      hook_.disarm();
      return result_;
    }

   private:
    friend class multishot;
    static constexpr std::uint8_t idle = 0, waiting = 1, cancel_queued = 2, done = 3;

    bool suspend(std::coroutine_handle<> caller, cancel_state* token);
    static void on_cancel(void* self) noexcept;
    static void on_mail(mailbox_node* node) noexcept;

    struct mail : mailbox_node {
      read_awaiter* self = nullptr;
    };
    mail mail_;
    multishot& m_;
    std::span<std::byte> buf_;
    std::coroutine_handle<> caller_;
    cancel_state* token_ = nullptr;
    cancel_hook hook_;
    multishot_result result_;
    std::atomic<std::uint8_t> state_{idle};
    bool migrating_ = false;  // the mail asks the owner to run the read, not a cancellation
  };
  read_awaiter read(std::span<std::byte> buf) noexcept { return {*this, buf}; }

  /// The owner's CQE handler (reactor).
  void on_cqe(int res, unsigned flags) noexcept;
  /// At shutdown: cancel the armed operation (the reactor then waits for its last CQE).
  void cancel_for_shutdown() noexcept;

  multishot* prev_ = nullptr;  // the owner reactor's list of armed multishots
  multishot* next_ = nullptr;

 private:
  struct chunk {
    int res;            // bytes (recv), fd (accept), or -errno
    std::uint16_t bid;  // provided buffer id (recv with F_BUFFER)
    bool has_buffer;
    std::uint32_t offset;  // bytes of the buffer already read
  };

  multishot(int fd, mode m) noexcept : fd_(fd), mode_(m) {}
  ~multishot();
  static void on_close_mail(mailbox_node* node) noexcept;
  /// The first read, on worker `w`: makes `w` the owner and its home ours.
  /// True on the owner's thread while the owner runs (not merely on the thread it ran on).
  bool on_owner() const noexcept;
  void adopt(worker& w);
  /// close() once the owner is gone: no thread of its runtime touches us any more. Its ring and
  /// buffers went with it, so queued data is dropped; queued accepted descriptors are closed.
  void close_orphaned() noexcept;

  /// On the owner: takes queued data for `r`, or arms and registers it as the waiter. True if
  /// `r` has its result now.
  bool take_or_wait(read_awaiter& r) noexcept;
  /// On the owner: moves the front chunk(s) into `r`'s result.
  void take_front(read_awaiter& r) noexcept;
  void arm() noexcept;
  void send_cancel() noexcept;
  void close_on_owner() noexcept;
  void recycle(const chunk& c) noexcept;
  void release() noexcept;

  struct mail : mailbox_node {
    multishot* self = nullptr;
  };
  mail close_mail_;
  int fd_;
  mode mode_;
  bool armed_ = false;
  bool cancel_sent_ = false;
  bool closed_ = false;
  bool eof_ = false;
  bool unsupported_ = false;  // the kernel refused the multishot (EINVAL): plain operations
  bool delivered_any_ = false;
  worker* owner_ = nullptr;  // set by the first read; the operation is armed on its ring
  // The owner's home (a reference), set with owner_; the way other threads learn whether the
  // owner still runs. owner_ is dereferenced only on the owner's thread or under the home's lock
  // while it is alive.
  multishot_home* home_ = nullptr;
  multishot* close_next_ = nullptr;  // the home's list of close mails not yet run
  read_awaiter* waiter_ = nullptr;
  std::vector<chunk> queue_;  // circular: head_ and count_
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::atomic<int> refs_{1};
};

}  // namespace weft::detail
