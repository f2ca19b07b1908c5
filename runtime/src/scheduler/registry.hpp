// The runtime's registry of live spawned tasks, so that shutdown can find and destroy every task
// that has not finished, wherever it is suspended.
#pragma once

#include <cstddef>
#include <mutex>

#include <weft/detail/spin_lock.hpp>
#include <weft/detail/task_frame.hpp>

namespace weft::detail {

/// A circular doubly-linked list of root frame headers around a sentinel, one per worker (plus
/// one for spawns from outside), so spawning rarely contends. A root records its shard's index in
/// its state word; whoever frees it unlinks it first (runtime_core::unregister).
struct registry_shard {
  registry_shard() noexcept { sentinel.prev = sentinel.next = &sentinel; }
  registry_shard(const registry_shard&) = delete;
  registry_shard& operator=(const registry_shard&) = delete;

  void insert(frame_header* h) noexcept {
    std::lock_guard guard{lock};
    insert_locked(h);
  }
  void insert_locked(frame_header* h) noexcept {
    h->next = sentinel.next;
    h->prev = &sentinel;
    sentinel.next->prev = h;
    sentinel.next = h;
    ++count;
  }
  void remove(frame_header* h) noexcept {
    std::lock_guard guard{lock};
    if (h->prev == nullptr) return;  // popped by shutdown
    unlink_locked(h);
  }
  /// Unlinks and returns some root, or null when empty (shutdown).
  frame_header* pop() noexcept {
    std::lock_guard guard{lock};
    frame_header* h = sentinel.next;
    if (h == &sentinel) return nullptr;
    unlink_locked(h);
    return h;
  }
  std::size_t size() const noexcept {
    std::lock_guard guard{lock};
    return count;
  }

  mutable spin_lock lock;
  frame_header sentinel;
  std::size_t count = 0;  // guarded by lock

 private:
  void unlink_locked(frame_header* h) noexcept {
    h->prev->next = h->next;
    h->next->prev = h->prev;
    h->prev = h->next = nullptr;
    --count;
  }
};

}  // namespace weft::detail
