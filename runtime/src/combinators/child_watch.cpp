// child_watch: starting children as roots and hearing about their completions.
#include <weft/detail/child_watch.hpp>

#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include <weft/cancel/operation_cancelled.hpp>

namespace weft::detail {

child_watch::~child_watch() {
  for (std::size_t i = 0; i < n_; ++i) {
    if (frame_header* h = std::atomic_ref{slots_[i].header}.load(std::memory_order_acquire)) {
      h->state.fetch_and(~join_waiting_bit, std::memory_order_acq_rel);
    }
  }
}

void child_watch::start(std::size_t i, std::coroutine_handle<> h, promise_base& p) {
  runtime_core& rt = require_runtime("weft combinator");
  child_slot& s = slots_[i];
  s.wake = &on_complete;
  s.watch = this;
  s.index = i;
  spawn_root(&rt, h, p);
  frame_header* header = header_of(h.address());
  // release: cancel_all on another thread reads it (atomic_ref: the slot is plain storage).
  std::atomic_ref{s.header}.store(header, std::memory_order_release);
  // As block_on does: the child may run (and finish) from here on; register as its joiner.
  set_joiner(p, &s);
  const auto old = header->state.fetch_or(join_waiting_bit, std::memory_order_acq_rel);
  // Finished before it saw us (complete_root only wakes a registered joiner): record it now.
  if (old & (complete_bit | aborted_bit)) record(i);
}

std::string combinator_name(const char* function) {
  // The combinator's own frame awaits next(); its function names it.
  const std::string_view f{function != nullptr ? function : ""};
  for (const char* name :
       {"when_all", "when_any", "first_success", "quorum", "majority", "map_concurrent", "race"}) {
    if (f.find(name) != std::string_view::npos) return std::string{name} + ": ";
  }
  return {};
}

std::string child_watch::describe() const {
  std::size_t produced = 0;
  {
    std::lock_guard lock{lock_};
    produced = produced_;
  }
  // A pool that reused its slots counts the children running now, not those never started.
  std::string s = produced <= n_
                      ? std::to_string(n_ - produced) + " of " + std::to_string(n_) + " pending"
                      : std::to_string(running()) + " running";
#if WEFT_INTROSPECTION
  std::string ids;
  std::size_t listed = 0;
  for (std::size_t i = 0; i < n_; ++i) {
    frame_header* h = std::atomic_ref{slots_[i].header}.load(std::memory_order_acquire);
    if (h == nullptr || (h->state.load(std::memory_order_acquire) & complete_bit)) continue;
    if (++listed > 8) {
      ids += ", ...";
      break;
    }
    ids += (ids.empty() ? "" : ", ") + std::to_string(task_id(h));
  }
  if (!ids.empty()) s += " (tasks " + ids + ")";
#endif
  return s;
}

std::size_t child_watch::running() const noexcept {
  std::size_t k = 0;
  for (std::size_t i = 0; i < n_; ++i) {
    frame_header* h = std::atomic_ref{slots_[i].header}.load(std::memory_order_acquire);
    if (h != nullptr && !(h->state.load(std::memory_order_acquire) & complete_bit)) ++k;
  }
  return k;
}

void child_watch::cancel_all() noexcept {
  for (std::size_t i = 0; i < n_; ++i) {
    // acquire: pairs with the release in start(). The combinator releases a child's frame only
    // after its cancellation callback is gone, so a header read here stays valid.
    frame_header* h = std::atomic_ref{slots_[i].header}.load(std::memory_order_acquire);
    if (h == nullptr) continue;
    if (h->state.load(std::memory_order_acquire) & complete_bit) continue;
    h->cancel.request_cancel();
  }
}

void child_watch::on_complete(join_waiter* self) noexcept {
  auto* s = static_cast<child_slot*>(self);
  s->watch->record(s->index);
}

void child_watch::record(std::size_t index) noexcept {
  next_awaiter* wake = nullptr;
  {
    std::lock_guard lock{lock_};
    // A ring: a pool (map_concurrent) reuses slots, but never has more than n_ children
    // finished and not yet taken.
    order_[produced_ < n_ ? produced_ : produced_ % n_] = index;
    ++produced_;
    wake = std::exchange(waiting_, nullptr);
  }
  if (wake != nullptr && wake->gate_.wake()) schedule_wake(wake->rt_, wake->caller_);
}

bool child_watch::next_awaiter::await_ready() noexcept {
  std::lock_guard lock{w_.lock_};
  return w_.consumed_ < w_.produced_;
}

bool child_watch::next_awaiter::await_suspend(std::coroutine_handle<> caller) {
  caller_ = caller;
  rt_ = &require_runtime("weft combinator");
  {
    std::lock_guard lock{w_.lock_};
    if (w_.consumed_ < w_.produced_) return false;
    w_.waiting_ = this;
  }
  return gate_.suspend();
}

std::size_t child_watch::next_awaiter::await_resume() noexcept {
  std::lock_guard lock{w_.lock_};
  const std::size_t at = w_.consumed_ < w_.n_ ? w_.consumed_ : w_.consumed_ % w_.n_;
  ++w_.consumed_;
  return w_.order_[at];
}

}  // namespace weft::detail

namespace weft::detail {

void release_child(child_watch& watch, std::size_t i, std::coroutine_handle<> h,
                   runtime_core* rt) noexcept {
  auto& state = header_of(h.address())->state;
  // Normally the child finished and its completion was recorded; after a shutdown that destroys
  // the combinator first, it may still hold our registration: withdraw it.
  state.fetch_and(~join_waiting_bit, std::memory_order_acq_rel);
  watch.forget(i);
  release_handle(rt, h);
}

bool is_cancellation(const std::exception_ptr& e) noexcept {
  return weft::is_cancellation(e);
}

}  // namespace weft::detail

namespace weft {

bool is_cancellation(const std::exception_ptr& e) noexcept {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const operation_cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace weft
