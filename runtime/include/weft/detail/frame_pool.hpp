// The per-thread size-class pool that coroutine frames are allocated from.
#pragma once

#include <cstddef>

namespace weft::detail {

/// Allocates `size` bytes aligned to 16 from the calling thread's pool; never returns null
/// (throws std::bad_alloc).
void* frame_allocate(std::size_t size);

/// Returns a block to the calling thread's pool; `size` must be the size it was allocated with.
/// Any thread may free a block allocated by any other.
void frame_deallocate(void* block, std::size_t size) noexcept;

/// Counters of the calling thread's pool, for tests and benchmarks.
struct frame_pool_stats {
  std::size_t cached_blocks;  // blocks on this thread's free lists
  std::size_t refills;        // times a free list was refilled from the global depot or a chunk
  std::size_t flushes;        // times a full free list was set aside (the one before to the depot)
};
frame_pool_stats frame_pool_thread_stats() noexcept;

}  // namespace weft::detail
