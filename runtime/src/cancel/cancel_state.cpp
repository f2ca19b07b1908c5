// The cancellation word: registration, removal and the request that runs the callbacks.
//
// request_cancel():
// 1. Lock the word and set the cancelled bit; from then on try_add() refuses new callbacks.
// 2. Unlink the head node, note (thread-locally) that this thread runs it, where a remove() from
//    inside the callback reports that the node may be gone, unlock, and call it. Unlocking before
//    the call lets the callback take other locks, and lets remove() on other nodes proceed.
// 3. If the callback did not destroy its own node, mark the node done (release); a remove() on
//    another thread waits for exactly this before its owner may free the node.
// 4. Repeat from 2 until the list is empty.
#include <weft/detail/cancel_state.hpp>

#include <thread>

#include <weft/detail/config.hpp>

namespace weft::detail {

namespace {
// The callbacks this thread is running (nested when a callback cancels a linked source), so that
// remove() called from inside one of them knows not to wait for itself.
// The flag lives here, on the canceller's stack, not in the node: the node may be freed by then.
struct running_frame {
  const cancel_node* node;
  running_frame* outer;
  bool destroyed;
};
thread_local running_frame* running_callbacks = nullptr;

running_frame* running_here(const cancel_node& node) noexcept {
  for (auto* f = running_callbacks; f != nullptr; f = f->outer) {
    if (f->node == &node) return f;
  }
  return nullptr;
}
}  // namespace

std::uintptr_t cancel_state::lock() noexcept {
  auto word = word_.load(std::memory_order_relaxed);
  for (int spins = 0;; ++spins) {
    if (!(word & locked_bit)) {
      // acquire: pairs with the release in unlock().
      if (word_.compare_exchange_weak(word, word | locked_bit, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
        return word | locked_bit;
      }
      continue;
    }
    if (spins > 64) {
      std::this_thread::yield();
    } else {
      cpu_relax();
    }
    word = word_.load(std::memory_order_relaxed);
  }
}

void cancel_state::unlock(std::uintptr_t word) noexcept {
  word_.store(word & ~locked_bit, std::memory_order_release);
}

bool cancel_state::try_add(cancel_node& node, cancel_node::callback_fn fn, void* context) noexcept {
  node.fn_ = fn;
  node.context_ = context;
  node.prev_ = nullptr;
  node.next_ = nullptr;
  node.in_list_ = true;
  node.done_.store(false, std::memory_order_relaxed);
  // Common case, one CAS: an empty list nobody holds (a task awaits one thing at a time).
  // release: publishes the node's fields to whoever locks the word next (acquire in lock()).
  std::uintptr_t empty = 0;
  if (word_.compare_exchange_strong(empty, reinterpret_cast<std::uintptr_t>(&node),
                                    std::memory_order_release, std::memory_order_relaxed)) {
    return true;
  }
  if (empty & cancelled_bit) {
    node.in_list_ = false;
    return false;
  }
  auto word = lock();
  if (word & cancelled_bit) {
    unlock(word);
    node.in_list_ = false;
    return false;
  }
  node.next_ = reinterpret_cast<cancel_node*>(word & pointer_mask);
  if (node.next_ != nullptr) node.next_->prev_ = &node;
  unlock(reinterpret_cast<std::uintptr_t>(&node));
  return true;
}

void cancel_state::remove(cancel_node& node) noexcept {
  // Common case, one CAS: the node is the whole list and nobody holds the lock. Its next_ can
  // only become non-null by a push, which changes the head and fails the CAS.
  auto word = word_.load(std::memory_order_relaxed);
  if (word == reinterpret_cast<std::uintptr_t>(&node) &&
      std::atomic_ref{node.next_}.load(std::memory_order_relaxed) == nullptr &&
      word_.compare_exchange_strong(word, 0, std::memory_order_acq_rel,
                                    std::memory_order_relaxed)) {
    node.in_list_ = false;
    return;
  }
  word = lock();
  if (node.in_list_) {
    if (node.prev_ != nullptr) {
      // Atomic: the fast path above reads next_ of the head without the lock.
      std::atomic_ref{node.prev_->next_}.store(node.next_, std::memory_order_relaxed);
    } else {
      word = reinterpret_cast<std::uintptr_t>(node.next_) | (word & ~pointer_mask);
    }
    if (node.next_ != nullptr) node.next_->prev_ = node.prev_;
    node.in_list_ = false;
    unlock(word);
    return;
  }
  unlock(word);
  // The canceller took the node: its callback has run or is running.
  if (node.done_.load(std::memory_order_acquire)) return;
  if (running_frame* f = running_here(node)) {
    // The callback itself removes its node: tell the canceller not to touch it afterwards.
    f->destroyed = true;
    return;
  }
  for (int spins = 0; !node.done_.load(std::memory_order_acquire); ++spins) {
    if (spins > 64) {
      std::this_thread::yield();
    } else {
      cpu_relax();
    }
  }
}

bool cancel_state::request_cancel() noexcept {
  auto word = lock();
  if (word & cancelled_bit) {
    unlock(word);
    return false;
  }
  word |= cancelled_bit;
  while (auto* node = reinterpret_cast<cancel_node*>(word & pointer_mask)) {
    cancel_node* next = node->next_;
    if (next != nullptr) next->prev_ = nullptr;
    node->in_list_ = false;
    unlock(reinterpret_cast<std::uintptr_t>(next) | cancelled_bit);
    running_frame frame{node, running_callbacks, false};
    running_callbacks = &frame;
    node->fn_(node->context_);
    running_callbacks = frame.outer;
    if (!frame.destroyed) {
      // release: pairs with the acquire in remove() on another thread.
      node->done_.store(true, std::memory_order_release);
    }
    word = lock();
  }
  unlock(word);
  return true;
}

}  // namespace weft::detail
