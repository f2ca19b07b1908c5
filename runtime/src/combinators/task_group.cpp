// task_group: children are roots of the runtime with a join_waiter each (as block_on uses). A
// child's frame is freed as soon as it finishes (its failure, if any, is kept for join); its slot
// is reused by the next spawn, so cancel() reaches every task that still runs and memory follows
// the tasks running, not the tasks ever run.
#include <weft/combinators/task_group.hpp>

#include <thread>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/children.hpp>

namespace weft {

task_group::~task_group() {
  // At shutdown (the runtime destroys the frame that holds the group) nothing completes any
  // more: only withdraw below.
  if (running() > 0 && !detail::runtime_stopping(rt_)) {
    cancel();
    detail::worker* self = detail::current_worker_or_null();
    {
      std::lock_guard lock{lock_};
      helper_ = self;
    }
    auto pending = [](void* g) { return static_cast<task_group*>(g)->running() > 0; };
    if (!detail::help_while(pending, this)) {
      // Off a worker: nothing of ours runs on this thread, so blocking cannot deadlock.
      for (auto n = running(); n > 0 && !detail::runtime_stopping(rt_); n = running()) {
        running_.wait(n, std::memory_order_acquire);
      }
    }
    std::lock_guard lock{lock_};
    helper_ = nullptr;
  }
  // At shutdown tasks may be left unfinished: withdraw from them. One whose completion already
  // saw our registration is about to call finished() (other workers may still be ending their
  // turn): wait for it, so the children are not freed under it.
  for (std::size_t i = 0;; ++i) {
    child* c = nullptr;
    bool wait_for_it = false;
    {
      // Under the lock: a child with a handle still has its frame (finished() takes the handle
      // under this lock before it frees the frame, and marks the child done only afterwards).
      std::lock_guard lock{lock_};
      if (i >= children_.size()) break;
      if (children_[i].done) continue;
      c = &children_[i];
      if (!c->handle) {
        wait_for_it = true;  // finished() is freeing it right now
      } else {
        const auto old =
            detail::header_of(c->handle.address())
                ->state.fetch_and(~detail::join_waiting_bit, std::memory_order_acq_rel);
        wait_for_it = (old & detail::join_waiting_bit) && (old & detail::complete_bit);
      }
    }
    if (wait_for_it) {
      for (;;) {
        {
          std::lock_guard lock{lock_};
          if (c->done) break;
        }
        std::this_thread::yield();
      }
    }
  }
  collect();
}

void task_group::add(std::coroutine_handle<> h, detail::promise_base& p, error_fn error,
                     const detail::spawn_site& site) {
  detail::runtime_core& rt = detail::require_runtime("weft::task_group::spawn");
  child* c = nullptr;
  bool cancel_now = false;
  {
    std::lock_guard lock{lock_};
    rt_ = &rt;  // under the lock: finished() reads it on other workers
    if (free_.empty()) {
      c = &children_.emplace_back();
    } else {
      c = free_.back();
      free_.pop_back();
    }
    c->group = this;
    c->handle = h;
    c->error = error;
    c->done = false;
    // A group already failing or cancelled starts nothing new: the task sees it at once. Decided
    // before the task starts: once its completion can find the group, finished() may free the
    // frame at any moment. A cancel() from now on finds the child in the list.
    cancel_now = cancelled_ || static_cast<bool>(first_error_);
  }
  if (cancel_now) detail::header_of(h.address())->cancel.request_cancel();
  running_.fetch_add(1, std::memory_order_acq_rel);
  detail::spawn_root(&rt, h, p, site);
  detail::set_joiner(p, c);
  const auto old = detail::header_of(h.address())
                       ->state.fetch_or(detail::join_waiting_bit, std::memory_order_acq_rel);
  if (old & (detail::complete_bit | detail::aborted_bit)) finished(*c);
}

void task_group::on_complete(detail::join_waiter* self) noexcept {
  auto* c = static_cast<child*>(self);
  c->group->finished(*c);
}

void task_group::finished(child& c) noexcept {
  join_awaiter* wake = nullptr;
  detail::worker* helper = nullptr;
  bool cancel_others = false;
  std::coroutine_handle<> release;
  detail::runtime_core* rt = nullptr;
  {
    std::lock_guard lock{lock_};
    const bool aborted =
        detail::header_of(c.handle.address())->state.load(std::memory_order_acquire) &
        detail::aborted_bit;
    if (!aborted) {
      if (!first_error_) {
        // A task stopped by the group's own cancel() (or by a sibling's failure) did not fail.
        std::exception_ptr e = c.error(c.handle);
        if (e && !(cancelled_ && detail::is_cancellation(e))) {
          first_error_ = e;
          cancel_others = true;
        }
      }
      // Its result is no longer needed: the frame is freed below. An aborted task (runtime
      // shutdown) is left to collect(), which frees it once shutdown is done with it.
      release = std::exchange(c.handle, {});
      rt = rt_;
    }
    if (cancel_others) cancel_locked();
  }
  if (release) {
    // Outside the lock (the frame's destructors run user code: the task's parameters), and
    // before the task counts as finished: once running() is 0 the joiner (or the destructor)
    // goes on, and the task's parameters must be gone by then, as they would be for any awaited
    // task. Meanwhile the slot has no handle and is not done: cancel() skips it, and the
    // destructor waits for it to be done.
    detail::release_handle(rt, release);
  }
  {
    std::lock_guard lock{lock_};
    c.done = true;
    if (release) free_.push_back(&c);  // serves the next spawn
    if (running_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      wake = std::exchange(joiner_, nullptr);
      helper = helper_;
      // Under the lock: once it is released the group may be gone (its owner saw 0 and left).
      running_.notify_all();
    }
  }
  if (helper != nullptr) detail::unpark_current_helper(helper);
  if (wake != nullptr && wake->gate_.wake()) detail::schedule_wake(wake->rt_, wake->caller_);
}

void task_group::cancel() noexcept {
  std::lock_guard lock{lock_};
  cancel_locked();
}

void task_group::cancel_locked() noexcept {
  cancelled_ = true;  // tasks spawned from now until the next join are cancelled at once
  for (auto& c : children_) {
    if (!c.done && c.handle) detail::header_of(c.handle.address())->cancel.request_cancel();
  }
}

std::exception_ptr task_group::collect() noexcept {
  std::lock_guard lock{lock_};
  // Finished children are freed; one not finished (only after shutdown stopped the workers,
  // which then destroys it itself) is let go.
  for (auto& c : children_) {
    if (c.handle) detail::release_handle(rt_, c.handle);
  }
  children_.clear();
  free_.clear();
  cancelled_ = false;  // a joined group starts afresh
  return std::exchange(first_error_, nullptr);
}

bool task_group::join_awaiter::suspend(std::coroutine_handle<> caller,
                                       detail::cancel_state* token) {
  caller_ = caller;
  token_ = token;
  rt_ = &detail::require_runtime("weft::task_group::join");
  {
    std::lock_guard lock{g_.lock_};
    if (g_.running() == 0) return false;
    g_.joiner_ = this;
  }
  // A cancelled joiner cancels the tasks; their completions end the wait.
  if (!hook_.arm(token, &on_cancel, this)) g_.cancel();
  return gate_.suspend();
}

void task_group::join_awaiter::on_cancel(void* self) noexcept {
  static_cast<join_awaiter*>(self)->g_.cancel();
}

void task_group::join_awaiter::await_resume() {
  hook_.disarm();
  std::exception_ptr e = g_.collect();
  if (e) std::rethrow_exception(e);
  if (token_ != nullptr && token_->is_cancelled()) throw operation_cancelled{};
}

}  // namespace weft
