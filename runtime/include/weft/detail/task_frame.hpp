// What every task frame carries: a header in front of the coroutine frame (root bookkeeping that
// must outlive the frame itself), and the promise base that awaiters read the token from.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <source_location>
#include <string_view>
#include <type_traits>

#include <weft/detail/await_trace.hpp>
#include <weft/detail/cancel_state.hpp>
#include <weft/detail/config.hpp>

namespace weft::detail {

class runtime_core;

/// Lives in the same allocation as the coroutine frame, just before it. Only spawned tasks
/// ("roots") use its fields; for a task that is only awaited it is inert. 32 bytes: it is paid by
/// every frame, and a million queued tasks (spawn_many) should stay within Tokio's footprint.
struct alignas(16) frame_header {
  // Links in the owning runtime's registry of live roots, guarded by the shard's lock; null when
  // not linked. The shard is named by the index in the high bits of state.
  frame_header* prev = nullptr;
  frame_header* next = nullptr;
  // The root's own cancellation state: join_handle::cancel() requests on it.
  cancel_state cancel;
  // Flag bits below, registry shard index above bit 16. Invariant: a root frame is destroyed
  // exactly once, by whoever clears the last of {handle_bit, !complete_bit} (see complete_root
  // and release_handle), or by shutdown.
  std::atomic<std::uint32_t> state{0};
#if WEFT_INTROSPECTION
  // Where it was spawned, as an index into the process's table of spawn sites (it fits the
  // padding: the header stays 32 bytes). The task's id is assigned when first asked for and
  // kept in a side table (id_bit); a name, in the runtime's name table (named_bit).
  std::uint32_t site = 0;
#endif
};
static_assert(sizeof(frame_header) == 32, "keep the per-frame overhead small (RSS of spawn_many)");

inline constexpr std::uint32_t spawned_bit = 1;  // a root: scheduled directly, no awaiter
inline constexpr std::uint32_t handle_bit = 2;   // a join_handle (or block_on) still refers to it
inline constexpr std::uint32_t join_waiting_bit = 4;  // a joiner is registered in promise.link_
inline constexpr std::uint32_t complete_bit = 8;      // the body finished; the result is stored
inline constexpr std::uint32_t aborted_bit = 16;      // destroyed by runtime shutdown unfinished
inline constexpr std::uint32_t frame_gone_bit = 32;   // an aborted frame was destroyed; memory kept
inline constexpr std::uint32_t join_cancel_bit = 64;  // the joiner was cancelled before it waited
inline constexpr std::uint32_t unlinked_bit = 128;    // shutdown took it off the registry
inline constexpr std::uint32_t named_bit = 256;       // has an entry in the runtime's name table
inline constexpr std::uint32_t id_bit = 512;          // has an entry in the task id table
// Complete without having run: cancelled before its first step (the worker that took it from a
// queue saw the cancellation and completed it in place: no exception thrown, none allocated).
inline constexpr std::uint32_t cancelled_unstarted_bit = 1024;
inline constexpr std::uint32_t shard_shift = 16;      // registry shard index lives above this
inline constexpr std::uint32_t external_shard = 0xFFFF;

inline frame_header* header_of(void* frame) noexcept {
  // The coroutine handle's address is the pointer our operator new returned (gcc and clang).
  // Only used for spawned tasks: clang may elide the allocation of a task that is only awaited,
  // and such a frame has no header.
  return reinterpret_cast<frame_header*>(static_cast<char*>(frame) - sizeof(frame_header));
}

/// The index of spawn site `at` in the process's table (registered on first use; 0: unknown).
std::uint32_t spawn_site_index(std::source_location at) noexcept;
/// The spawn site registered as `index` (an empty location for 0).
std::source_location spawn_site_at(std::uint32_t index) noexcept;
/// The id of the root `h` (unique in the process, from 1), assigned the first time it is asked
/// for (a dump, join_handle::id(), a stall report); 0 if it could not be recorded.
std::uint64_t task_id(frame_header* h) noexcept;
/// Drops `h`'s id (its frame is being freed).
void forget_task_id(frame_header* h) noexcept;

/// Allocates a frame of `size` bytes with a header in front, from the frame pool.
void* allocate_task_frame(std::size_t size);
/// Frees a frame; for a root, also unlinks it from its runtime's registry.
void free_task_frame(void* frame, std::size_t size) noexcept;

/// Something waiting for a root to finish: a joining task or a thread in block_on.
struct join_waiter {
  void (*wake)(join_waiter* self) noexcept;
};

class promise_base {
 public:
  static void* operator new(std::size_t size) { return allocate_task_frame(size); }
  static void operator delete(void* frame, std::size_t size) noexcept {
    free_task_frame(frame, size);
  }

  /// The cancellation state of the task tree this frame runs in (null: cannot be cancelled).
  cancel_state* token_ = nullptr;
  /// For an awaited task: the awaiting coroutine's address. For a root: its join_waiter* (or
  /// null) tagged with root_tag, which is how final_suspend tells the two apart.
  void* link_ = nullptr;
#if WEFT_INTROSPECTION
  /// Where this frame is suspended and on what (dump_tasks).
  await_slot await_;

  /// Every co_await in a weft coroutine passes through here: the awaiter is recorded in await_
  /// with the co_await's location (the default argument is evaluated at the co_await).
  template <class A>
  traced_for<A> await_transform(A&& a, std::source_location at = std::source_location::current()) {
    return traced_for<A>{await_, std::forward<A>(a), at};
  }
#endif
};

inline constexpr std::uintptr_t root_tag = 1;

// A root's link_ is written by its joiner while the root may be finishing on another worker and
// reading the tag, so root accesses are atomic (relaxed: the joiner pointer itself is published
// by the read-modify-writes of join_waiting_bit).
inline void* load_link(const promise_base& p) noexcept {
  return std::atomic_ref<void*>{const_cast<void*&>(p.link_)}.load(std::memory_order_relaxed);
}
inline bool is_root(const promise_base& p) noexcept {
  return (reinterpret_cast<std::uintptr_t>(load_link(p)) & root_tag) != 0;
}
inline join_waiter* joiner_of(const promise_base& p) noexcept {
  return reinterpret_cast<join_waiter*>(reinterpret_cast<std::uintptr_t>(load_link(p)) & ~root_tag);
}
inline void set_joiner(promise_base& p, join_waiter* w) noexcept {
  std::atomic_ref<void*>{p.link_}.store(
      reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(w) | root_tag),
      std::memory_order_relaxed);
}

/// The awaiting coroutine's cancellation state, if it is a weft task.
template <class Promise>
cancel_state* token_of(std::coroutine_handle<Promise> h) noexcept {
  if constexpr (std::is_base_of_v<promise_base, Promise>) {
    return h.promise().token_;
  } else {
    return nullptr;
  }
}

/// Called from a root's final_suspend: publishes completion, wakes the joiner or frees the frame.
void complete_root(std::coroutine_handle<> h, promise_base& p) noexcept;

/// A root's first step is queued tagged (bit 0 of its frame address: frames are 16-aligned), so
/// the worker that takes it can tell a start from a resumption and complete a root cancelled
/// before it started without running it (cancelled_unstarted_bit).
inline constexpr std::uintptr_t first_run_tag = 1;
inline std::coroutine_handle<> tagged_first_run(std::coroutine_handle<> h) noexcept {
  return std::coroutine_handle<>::from_address(
      reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(h.address()) | first_run_tag));
}
inline bool is_first_run(const void* queued) noexcept {
  return (reinterpret_cast<std::uintptr_t>(queued) & first_run_tag) != 0;
}
/// The frame address a queue entry stands for (its first-run tag removed).
inline void* queued_frame(void* queued) noexcept {
  return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(queued) & ~first_run_tag);
}

/// The failure of a root cancelled before it started, as combinators and task groups take it:
/// one operation_cancelled shared by all such roots, so a when_any's losers throw nothing and
/// allocate nothing.
const std::exception_ptr& unstarted_cancellation() noexcept;
/// True for a finished root that was cancelled before it started (state read with acquire).
inline bool cancelled_unstarted(void* frame) noexcept {
  return (header_of(frame)->state.load(std::memory_order_acquire) & cancelled_unstarted_bit) != 0;
}

/// Drops a join_handle's reference to a root of `rt`: detaches it if running, frees it if done.
void release_handle(runtime_core* rt, std::coroutine_handle<> h) noexcept;

/// Where a root was spawned and what it is called (dump_tasks, stall reports).
struct spawn_site {
  std::source_location at{};
  std::string_view name{};
  // The root's promise gets no token: join_handle::cancel() still requests on the header's cancel
  // state, which the body reads itself (runtime::spawn(task, on_done): a root with a token that
  // is cancelled before its first step never runs its body, and this body must run to report).
  bool body_reads_cancel = false;
};

/// Marks a task as a root of `rt`, links it into rt's registry and schedules its first run.
void spawn_root(runtime_core* rt, std::coroutine_handle<> h, promise_base& p,
                const spawn_site& site = {});

#if !WEFT_SYMMETRIC_TRANSFER
/// The frame being started inline on this thread by start_inline(); its final_suspend sets it to
/// null to tell the starter "finished synchronously, resume me yourself".
extern thread_local void* sync_start_frame;

/// Starts `child` with a plain call instead of a tail call. Returns true if the child suspended
/// (it will resume the caller), false if it finished synchronously (the caller resumes at once,
/// without growing the stack).
inline bool start_inline(std::coroutine_handle<> child) {
  void* const outer = sync_start_frame;
  sync_start_frame = child.address();
  child.resume();
  // Only thread-local state is read after resume(): if the child suspended, another worker may
  // already have finished it and resumed (and destroyed) both frames.
  const bool finished = sync_start_frame == nullptr;
  sync_start_frame = outer;
  return !finished;
}
#endif

}  // namespace weft::detail
