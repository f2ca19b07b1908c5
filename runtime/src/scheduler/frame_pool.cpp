// The coroutine frame pool: per-thread free lists by 16-byte size class, refilled from a global
// depot or carved from 2 MiB chunks, so spawning a short task does not reach malloc.
//
// 1. Allocation pops the calling thread's list for the size class. An empty list takes a batch
//    the thread set aside itself, else from the depot (the blocks other threads gave back), else
//    carves a block from the thread's current chunk.
// 2. Freeing pushes onto the *calling* thread's list, whichever thread allocated the block: a
//    frame freed on another worker is simply reused there. A list longer than its limit is set
//    aside whole, and the list set aside before goes to the depot in one batch, so memory flows
//    back to the threads that allocate without walking a list of cold blocks.
// 3. At thread exit every list goes to the depot and the unused rest of the chunk is kept for the
//    next thread. Chunks are never returned to the system; they stay referenced from the global
//    state, so leak checkers see them as reachable.
// 4. After a thread's first 4 MiB (carved from 64 KiB chunks, so an idle worker costs little
//    RSS), chunks are 2 MiB and filled in at once (MADV_POPULATE_WRITE: one call instead of 512
//    page faults). They are advised as huge pages while huge pages come cheap: a warm huge page
//    costs 0.17 ms to fill, 2 MiB of base pages 0.65 ms. On a VM whose host takes freed memory
//    back (free page reporting hands it whole 2 MiB blocks, exactly what a huge page needs), a
//    huge page can cost 4-5 ms to fill right after another process freed a lot; the pool times
//    every huge chunk and, after a slow one, takes base pages for the next few (docs/runtime.md,
//    "Frame memory").
#include <weft/detail/frame_pool.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include <sys/mman.h>

#include <weft/detail/config.hpp>

#if WEFT_ASAN
#include <sanitizer/asan_interface.h>
#define WEFT_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define WEFT_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define WEFT_POISON(p, n) ((void)(p), (void)(n))
#define WEFT_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#ifndef WEFT_FRAME_POOL
#define WEFT_FRAME_POOL 1
#endif

namespace weft::detail {

namespace {

constexpr std::size_t granule = 16;
constexpr std::size_t max_small = 2048;
constexpr std::size_t classes = max_small / granule + 1;
constexpr std::size_t chunk_size = std::size_t{2} << 20;
// A thread's first chunks are small and not huge pages: a huge page costs 2 MiB of RSS at first
// touch, which every worker and every block_on thread would pay for a handful of frames.
constexpr std::size_t small_chunk_size = std::size_t{64} << 10;
constexpr std::size_t small_chunks_until = std::size_t{4} << 20;  // bytes carved by the thread
constexpr std::size_t cache_bytes_per_class = 256 * 1024;
// A huge chunk that took longer than this to fill cost more than twice what base pages cost
// (0.65 ms here); the next `base_page_run` chunks of the process then take base pages, and the
// one after tries a huge page again (a process stays fast once the host has memory at hand).
constexpr std::int64_t slow_huge_chunk_ns = 1'500'000;
constexpr int base_page_run = 15;

struct free_block {
  free_block* next;
};

struct batch {
  free_block* head;
  std::size_t count;
};

struct global_state {
  std::mutex mutex;
  std::vector<batch> depot[classes];
  std::atomic<std::size_t> depot_batches[classes] = {};
  std::vector<void*> chunks;                        // reachability only; never freed
  std::vector<std::pair<char*, char*>> remainders;  // unused ends of chunks of exited threads
};

// Constructed in static storage and never destroyed: threads may free frames during static
// destruction (the default runtime's workers), after an ordinary static would be gone.
global_state& global() {
  alignas(global_state) static unsigned char storage[sizeof(global_state)];
  static global_state* g = new (storage) global_state{};
  return *g;
}

// How many free blocks of each class a thread keeps in its active list before setting the list
// aside (and giving the one set aside before to the depot): about cache_bytes_per_class / 2, at
// least 32, so a thread caches at most about cache_bytes_per_class per class. A table, because a
// division on every free showed up.
constexpr auto class_limits = [] {
  std::array<std::uint32_t, classes> limits{};
  for (std::size_t c = 1; c < classes; ++c) {
    const std::size_t by_bytes = cache_bytes_per_class / 2 / (c * granule);
    limits[c] = static_cast<std::uint32_t>(by_bytes < 32 ? 32 : by_bytes);
  }
  return limits;
}();

// Trivially destructible, so it is usable until the thread is gone; thread_guard flushes it.
struct thread_cache {
  free_block* heads[classes];
  std::uint32_t counts[classes];
  // The previous full list of each class, set aside whole when `heads` filled up; the next
  // overflow gives it to the depot. Spilling whole lists (with their counts) instead of walking
  // to the middle of one: a walk of 500 links through freed frames cost a cache miss per link
  // (7 % of the timers workload).
  free_block* spill_heads[classes];
  std::uint32_t spill_counts[classes];
  char* bump;
  char* bump_end;
  std::size_t carved;  // bytes taken from chunks by this thread, for choosing chunk sizes
  std::size_t refills;
  std::size_t flushes;
  enum : std::uint8_t { fresh, live, dead } state;
};
thread_local thread_cache cache;

void flush_all(thread_cache& tc);

struct thread_guard {
  bool armed = false;
  ~thread_guard() {
    if (armed) flush_all(cache);
  }
};
thread_local thread_guard guard;

void arm(thread_cache& tc) {
  guard.armed = true;  // first use registers the guard's destructor for this thread
  tc.state = thread_cache::live;
}

void give_batch(std::size_t c, batch b) {
  auto& g = global();
  std::lock_guard lock{g.mutex};
  g.depot[c].push_back(b);
  g.depot_batches[c].fetch_add(1, std::memory_order_release);
}

void flush_all(thread_cache& tc) {
  for (std::size_t c = 1; c < classes; ++c) {
    if (tc.heads[c] != nullptr) give_batch(c, batch{tc.heads[c], tc.counts[c]});
    if (tc.spill_heads[c] != nullptr) give_batch(c, batch{tc.spill_heads[c], tc.spill_counts[c]});
    tc.heads[c] = tc.spill_heads[c] = nullptr;
    tc.counts[c] = tc.spill_counts[c] = 0;
  }
  if (tc.bump != nullptr && tc.bump_end - tc.bump >= static_cast<std::ptrdiff_t>(granule)) {
    auto& g = global();
    std::lock_guard lock{g.mutex};
    g.remainders.emplace_back(tc.bump, tc.bump_end);
  }
  tc.bump = tc.bump_end = nullptr;
  tc.state = thread_cache::dead;
}

// Chunks left to take base pages for, after a huge page was slow to fill (relaxed: a hint that
// only steers how fast the next chunks fill, never what they hold).
std::atomic<int> base_page_chunks{0};

std::int64_t monotonic_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Backs a fresh 2 MiB chunk with memory now, as huge pages when they come cheap. All advice:
// a kernel without MADV_POPULATE_WRITE (before 5.14) or without THP falls back to page faults.
void fill_chunk(void* chunk) noexcept {
  int left = base_page_chunks.load(std::memory_order_relaxed);
  const bool huge = left == 0;
  if (!huge) base_page_chunks.store(left - 1, std::memory_order_relaxed);
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
  // Base pages must be asked for: with transparent huge pages set to "always", an aligned 2 MiB
  // chunk gets a huge page anyway.
  ::madvise(chunk, chunk_size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
  const std::int64_t start = huge ? monotonic_ns() : 0;
  ::madvise(chunk, chunk_size, MADV_POPULATE_WRITE);
  if (huge && monotonic_ns() - start > slow_huge_chunk_ns) {
    base_page_chunks.store(base_page_run, std::memory_order_relaxed);
  }
#endif
}

// Gives the thread a region of at least `bytes`: a remainder left by an exited thread, or a new
// chunk.
void new_chunk(thread_cache& tc, std::size_t bytes) {
  auto& g = global();
  {
    std::lock_guard lock{g.mutex};
    for (auto it = g.remainders.begin(); it != g.remainders.end(); ++it) {
      if (static_cast<std::size_t>(it->second - it->first) >= bytes) {
        std::tie(tc.bump, tc.bump_end) = *it;
        g.remainders.erase(it);
        return;
      }
    }
  }
  const bool big = tc.carved >= small_chunks_until;
  const std::size_t size = big ? chunk_size : small_chunk_size;
  void* chunk = std::aligned_alloc(big ? chunk_size : granule, size);
  if (chunk == nullptr) throw std::bad_alloc{};
  if (big) fill_chunk(chunk);
  WEFT_POISON(chunk, size);
  {
    std::lock_guard lock{g.mutex};
    g.chunks.push_back(chunk);
  }
  tc.bump = static_cast<char*>(chunk);
  tc.bump_end = tc.bump + size;
}

[[gnu::noinline]] void* refill(thread_cache& tc, std::size_t c) {
  if (tc.state == thread_cache::fresh) arm(tc);
  if (free_block* first = tc.spill_heads[c]) {
    // The list set aside last is this thread's own: take it back before asking the depot.
    WEFT_UNPOISON(first, c * granule);
    tc.heads[c] = first->next;
    tc.counts[c] = tc.spill_counts[c] - 1;
    tc.spill_heads[c] = nullptr;
    tc.spill_counts[c] = 0;
    return first;
  }
  ++tc.refills;
  auto& g = global();
  // acquire: pairs with the release in give_batch; skips the lock while the depot is empty.
  if (g.depot_batches[c].load(std::memory_order_acquire) > 0) {
    std::unique_lock lock{g.mutex};
    if (!g.depot[c].empty()) {
      batch b = g.depot[c].back();
      g.depot[c].pop_back();
      g.depot_batches[c].fetch_sub(1, std::memory_order_relaxed);
      lock.unlock();
      free_block* first = b.head;
      WEFT_UNPOISON(first, c * granule);
      tc.heads[c] = first->next;
      tc.counts[c] = static_cast<std::uint32_t>(b.count - 1);
      return first;
    }
  }
  const std::size_t bytes = c * granule;
  if (tc.bump == nullptr || static_cast<std::size_t>(tc.bump_end - tc.bump) < bytes) {
    if (tc.bump != nullptr && tc.bump_end - tc.bump >= static_cast<std::ptrdiff_t>(granule)) {
      // Too small for this class: keep the rest for smaller classes of other threads.
      std::lock_guard lock{g.mutex};
      g.remainders.emplace_back(tc.bump, tc.bump_end);
    }
    tc.bump = tc.bump_end = nullptr;
    new_chunk(tc, bytes);
  }
  void* block = tc.bump;
  tc.bump += bytes;
  tc.carved += bytes;
  WEFT_UNPOISON(block, bytes);
  return block;
}

[[gnu::noinline]] void spill(thread_cache& tc, std::size_t c) {
  ++tc.flushes;
  if (tc.spill_heads[c] != nullptr) give_batch(c, batch{tc.spill_heads[c], tc.spill_counts[c]});
  tc.spill_heads[c] = tc.heads[c];
  tc.spill_counts[c] = tc.counts[c];
  tc.heads[c] = nullptr;
  tc.counts[c] = 0;
}

// A free on a thread whose cache is not live: the first use on this thread, or during its exit.
[[gnu::noinline]] void free_unusual(thread_cache& tc, void* block, std::size_t c) {
  auto* b = static_cast<free_block*>(block);
  if (tc.state == thread_cache::dead) {
    b->next = nullptr;
    WEFT_POISON(reinterpret_cast<char*>(b) + sizeof(free_block), c * granule - sizeof(free_block));
    give_batch(c, batch{b, 1});
    return;
  }
  arm(tc);
  b->next = tc.heads[c];
  tc.heads[c] = b;
  ++tc.counts[c];
  WEFT_POISON(reinterpret_cast<char*>(b) + sizeof(free_block), c * granule - sizeof(free_block));
}

}  // namespace

void* frame_allocate(std::size_t size) {
  if (!WEFT_FRAME_POOL || size > max_small) return ::operator new(size);
  const std::size_t c = size == 0 ? 1 : (size + granule - 1) / granule;
  thread_cache& tc = cache;
  if (free_block* b = tc.heads[c]; WEFT_LIKELY(b != nullptr)) {
    WEFT_UNPOISON(b, c * granule);
    tc.heads[c] = b->next;
    --tc.counts[c];
    return b;
  }
  return refill(tc, c);
}

void frame_deallocate(void* block, std::size_t size) noexcept {
  if (!WEFT_FRAME_POOL || size > max_small) {
    ::operator delete(block, size);
    return;
  }
  const std::size_t c = size == 0 ? 1 : (size + granule - 1) / granule;
  thread_cache& tc = cache;
  if (WEFT_UNLIKELY(tc.state != thread_cache::live)) {
    free_unusual(tc, block, c);
    return;
  }
  auto* b = static_cast<free_block*>(block);
  b->next = tc.heads[c];
  tc.heads[c] = b;
  WEFT_POISON(reinterpret_cast<char*>(b) + sizeof(free_block), c * granule - sizeof(free_block));
  if (WEFT_UNLIKELY(++tc.counts[c] > class_limits[c])) spill(tc, c);
}

frame_pool_stats frame_pool_thread_stats() noexcept {
  const thread_cache& tc = cache;
  frame_pool_stats s{0, tc.refills, tc.flushes};
  for (std::size_t c = 1; c < classes; ++c) s.cached_blocks += tc.counts[c] + tc.spill_counts[c];
  return s;
}

}  // namespace weft::detail
