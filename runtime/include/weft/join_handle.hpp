// weft::join_handle<T>: the result of spawn; await it, cancel it, or drop it to detach.
//
// Thread safety: one handle is used by one task or thread at a time; it may be awaited from a task
// of any runtime, and cancel(), detach() and the destructor work on any thread. cancel() may race
// with the task's completion.
//
// Cancellation: awaiting is cancellable: a cancelled joiner throws operation_cancelled (even if the
// task finished) and the task runs on. cancel() cancels the task itself, whose join then gives what
// the task ended with; a task that shutdown destroyed joins as operation_cancelled.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <string>
#include <utility>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/scheduler.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/task.hpp>

namespace weft {

template <class T>
class join_handle;

namespace detail {

[[noreturn]] void throw_empty_join_handle();
[[noreturn]] void throw_aborted_join();
/// A joined root was cancelled before it started: the join throws what its start would have.
[[noreturn]] void throw_unstarted_join();

/// Destroys a finished root whose result a join took (or rethrew), whatever happens.
template <class T>
struct consume_root {
  std::coroutine_handle<task_promise<T>>& h;
  runtime_core* rt;
  ~consume_root() { release_handle(rt, std::exchange(h, {})); }
};

template <class T>
class join_awaiter final : public join_waiter {
 public:
  using handle = std::coroutine_handle<task_promise<T>>;
  join_awaiter(handle& h, runtime_core* root_rt) noexcept
      : join_waiter{&on_complete}, h_(h), root_rt_(root_rt) {}
  join_awaiter(const join_awaiter&) = delete;
  join_awaiter& operator=(const join_awaiter&) = delete;
  ~join_awaiter() {
    // A joiner destroyed while still registered (runtime shutdown destroying its frame) withdraws.
    if (registered_ && h_) state().fetch_and(~join_waiting_bit, std::memory_order_acq_rel);
  }

  // Never ready: even a finished task's result is taken in await_suspend, after the awaiter's
  // cancellation was checked, so a cancelled task's join always throws.
  bool await_ready() const {
    if (!h_) throw_empty_join_handle();
    return false;
  }

  // Protocol: join_waiting_bit in the joined task's header decides who resumes the joiner.
  // complete_root wakes it if it sees the bit; on_cancel takes the bit away to wake it itself, or,
  // finding it not yet set, leaves join_cancel_bit for await_suspend to see. Nothing in the
  // awaiter is touched after the bit is published unless the publisher still owns it.
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> caller) {
    caller_ = caller;
    rt_ = &require_runtime("weft::join_handle");
    cancel_state* const token = token_of(caller);
    token_ = token;
    if (token != nullptr && token->is_cancelled()) {
      cancelled_ = true;
      return false;
    }
    // acquire: pairs with the acq_rel fetch_or of complete_bit in complete_root.
    if (state().load(std::memory_order_acquire) & (complete_bit | aborted_bit)) return false;
    // Work-first: a task that has not started and is still queued last on this worker is taken
    // back now, before we register, so that nobody else can start (or finish) it; it runs below
    // instead of after everything queued before it.
    const handle joined = h_;
    runtime_core* const joined_rt = root_rt_;
    const bool taken = take_back_joined(joined_rt, joined);
    set_joiner(h_.promise(), this);
    if (!hook_.arm(token, &on_cancel, this)) {
      cancelled_ = true;
      if (taken) requeue_first_run(joined_rt, joined);
      return false;
    }
    registered_ = true;
    auto& st = state();
    // Published only if on_cancel has not left join_cancel_bit and the task has not finished:
    // once published, completion may resume us anywhere, so nothing of this frame (or the
    // task's) is touched after a successful exchange.
    auto old = st.load(std::memory_order_acquire);
    for (;;) {
      if (old & join_cancel_bit) {
        // Cancelled before we published: on_cancel left the bit instead of waking us.
        cancelled_ = true;
        st.fetch_and(~join_cancel_bit, std::memory_order_acq_rel);
        if (taken) requeue_first_run(joined_rt, joined);
        return false;
      }
      if (old & complete_bit) return false;  // finished meanwhile (never a task taken back)
      if (st.compare_exchange_weak(old, old | join_waiting_bit, std::memory_order_acq_rel,
                                   std::memory_order_acquire)) {
        break;
      }
    }
    if (!taken) return true;
    // Runs its first step here; its completion wakes us as registered. Only locals are used
    // from here on: unless it finished right here (then the wake-up is in this worker's LIFO
    // slot, and we take it back), we may already be resumed elsewhere.
    return run_taken_inline(joined, caller) != inline_join::resume_now;
  }

  void describe_await(await_description& d) const {
#if WEFT_INTROSPECTION
    d.what = "join task " + std::to_string(task_id(header_of(h_.address())));
#else
    d.what = "join task";
#endif
  }

  T await_resume() {
    hook_.disarm();
    registered_ = false;
    // Checked again here: a cancellation that came after the check in await_suspend but before
    // the task finished must win too, whichever path resumed us.
    if (cancelled_ || (token_ != nullptr && token_->is_cancelled())) throw operation_cancelled{};
    const auto s = state().load(std::memory_order_acquire);
    if (s & aborted_bit) throw_aborted_join();
    consume_root<T> guard{h_, root_rt_};
    if (s & cancelled_unstarted_bit) throw_unstarted_join();
    return h_.promise().take();
  }

 private:
  std::atomic<std::uint32_t>& state() const noexcept { return header_of(h_.address())->state; }

  static void on_complete(join_waiter* self) noexcept {
    auto* a = static_cast<join_awaiter*>(self);
    schedule_wake(a->rt_, a->caller_);
  }
  static void on_cancel(void* self) noexcept {
    auto* a = static_cast<join_awaiter*>(self);
    auto& st = a->state();
    auto s = st.load(std::memory_order_acquire);
    for (;;) {
      if (s & complete_bit) return;  // completion wakes the joiner
      if (s & join_waiting_bit) {
        if (st.compare_exchange_weak(s, s & ~join_waiting_bit, std::memory_order_acq_rel)) {
          a->cancelled_ = true;
          schedule_wake(a->rt_, a->caller_);
          return;
        }
      } else if (st.compare_exchange_weak(s, s | join_cancel_bit, std::memory_order_acq_rel)) {
        return;  // await_suspend has not published yet; it will see join_cancel_bit
      }
    }
  }

  handle& h_;
  runtime_core* const root_rt_;  // the joined task's runtime (not necessarily the joiner's)
  std::coroutine_handle<> caller_;
  runtime_core* rt_ = nullptr;
  cancel_state* token_ = nullptr;
  cancel_hook hook_;
  bool cancelled_ = false;
  bool registered_ = false;
};

}  // namespace detail

/// Refers to a spawned task. `co_await` it for the task's value or exception, `cancel()` it, or
/// drop it: the task keeps running, detached, and its result is discarded.
///
///     auto h = weft::spawn(fetch(url));
///     auto body = co_await h;  // rethrows fetch's exception
///
/// A handle is awaited once. Awaiting an empty (moved-from, default or already awaited) handle
/// throws std::logic_error. Awaiting is cancellable: if the awaiting task is cancelled, before or
/// while it waits, the await throws operation_cancelled (even if the spawned task has finished)
/// and the spawned task keeps running. Awaiting a task that the runtime destroyed at shutdown
/// throws operation_cancelled.
/// Thread safety: one handle is used by one task at a time; cancel() may race with completion.
template <class T>
class [[nodiscard(
    "a dropped join_handle detaches its task: keep it, or call detach()")]] join_handle {
 public:
  using handle_type = std::coroutine_handle<detail::task_promise<T>>;

  join_handle() noexcept = default;
  /// Takes over a root spawned on `rt` (runtime::spawn and weft::spawn make these).
  join_handle(handle_type h, detail::runtime_core * rt) noexcept : h_(h), rt_(rt) {}
  join_handle(join_handle&& other) noexcept
      : h_(std::exchange(other.h_, {})), rt_(std::exchange(other.rt_, nullptr)) {}
  join_handle& operator=(join_handle&& other) noexcept {
    if (this != &other) {
      detach();
      h_ = std::exchange(other.h_, {});
      rt_ = std::exchange(other.rt_, nullptr);
    }
    return *this;
  }
  join_handle(const join_handle&) = delete;
  join_handle& operator=(const join_handle&) = delete;
  ~join_handle() {
    detach();
  }

  /// Requests cancellation of the task: its current or next suspension point throws
  /// operation_cancelled (a task not started yet never runs its body). No effect once it finished.
  void cancel() noexcept {
    if (!h_) return;
    auto* header = detail::header_of(h_.address());
    if (header->state.load(std::memory_order_acquire) & detail::complete_bit) return;
    header->cancel.request_cancel();
  }

  /// Lets the task run on without this handle; the handle becomes empty.
  void detach() noexcept {
    if (h_) detail::release_handle(rt_, std::exchange(h_, {}));
  }

  /// True once the task finished (its result is waiting to be taken).
  [[nodiscard]] bool is_finished() const noexcept {
    return h_ && (detail::header_of(h_.address())->state.load(std::memory_order_acquire) &
                  detail::complete_bit) != 0;
  }

  /// False for an empty handle.
  [[nodiscard]] bool valid() const noexcept {
    return static_cast<bool>(h_);
  }

  /// The task's id, as dump_tasks shows it (0 for an empty handle, or when introspection is
  /// compiled out).
  [[nodiscard]] std::uint64_t id() const noexcept {
#if WEFT_INTROSPECTION
    return h_ ? detail::task_id(detail::header_of(h_.address())) : 0;
#else
    return 0;
#endif
  }

  detail::join_awaiter<T> operator co_await()& noexcept {
    return detail::join_awaiter<T>{h_, rt_};
  }
  detail::join_awaiter<T> operator co_await()&& noexcept {
    return detail::join_awaiter<T>{h_, rt_};
  }

 private:
  handle_type h_;
  detail::runtime_core* rt_ = nullptr;
};

}  // namespace weft
