// The coroutine frame pool: alignment of every size, and blocks freed on another thread.
#include <weft/detail/frame_pool.hpp>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace {

constexpr std::size_t max_tested_size = 4096;
constexpr int handoff_rounds = 200;
constexpr int blocks_per_round = 1'000;
constexpr std::size_t handoff_block_size = 256;

unsigned char pattern_for(std::size_t size) {
  return static_cast<unsigned char>(size * 7 + 1);
}

bool filled_with(const void* block, std::size_t size, unsigned char value) {
  const auto* bytes = static_cast<const unsigned char*>(block);
  for (std::size_t i = 0; i < size; ++i) {
    if (bytes[i] != value) return false;
  }
  return true;
}

// False when the library was built with -Dframe_pool=false (plain operator new): then nothing is
// cached and reuse is up to malloc.
bool frame_pool_enabled() {
  void* probe = weft::detail::frame_allocate(16);
  weft::detail::frame_deallocate(probe, 16);
  return weft::detail::frame_pool_thread_stats().cached_blocks > 0;
}

constexpr const char* without_pool =
    "built with -Dframe_pool=false: frames come from operator new, whose reuse is malloc's";

// Moves batches of blocks from one thread to another, one batch at a time.
class handoff {
 public:
  void put(std::vector<void*> batch) {
    std::unique_lock lock{mutex_};
    changed_.wait(lock, [this] { return !batch_.has_value(); });
    batch_ = std::move(batch);
    changed_.notify_all();
  }
  std::vector<void*> take() {
    std::unique_lock lock{mutex_};
    changed_.wait(lock, [this] { return batch_.has_value(); });
    auto batch = std::move(*batch_);
    batch_.reset();
    changed_.notify_all();
    return batch;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<std::vector<void*>> batch_;
};

TEST(FramePool, EverySizeUpTo4096Is16ByteAlignedAndWritable) {
  std::vector<void*> blocks(max_tested_size + 1, nullptr);
  for (std::size_t size = 1; size <= max_tested_size; ++size) {
    blocks[size] = weft::detail::frame_allocate(size);
    ASSERT_NE(blocks[size], nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(blocks[size]) % 16, 0u) << "size " << size;
    std::memset(blocks[size], pattern_for(size), size);
  }
  // All alive at once: a block overlapping another would have had its bytes overwritten.
  for (std::size_t size = 1; size <= max_tested_size; ++size) {
    EXPECT_TRUE(filled_with(blocks[size], size, pattern_for(size))) << "size " << size;
  }
  for (std::size_t size = 1; size <= max_tested_size; ++size) {
    weft::detail::frame_deallocate(blocks[size], size);
  }
}

TEST(FramePool, AFreedBlockIsReusedForTheSameSize) {
  if (!frame_pool_enabled()) GTEST_SKIP() << without_pool;
  void* first = weft::detail::frame_allocate(100);
  weft::detail::frame_deallocate(first, 100);
  void* second = weft::detail::frame_allocate(100);
  EXPECT_EQ(second, first);
  weft::detail::frame_deallocate(second, 100);
}

TEST(FramePool, ABlockAllocatedOnOneThreadIsReusableAfterAnotherFreesIt) {
  if (!frame_pool_enabled()) GTEST_SKIP() << without_pool;
  void* block = nullptr;
  std::thread{[&block] { block = weft::detail::frame_allocate(64); }}.join();
  std::memset(block, 0x5A, 64);
  weft::detail::frame_deallocate(block, 64);  // on this thread, not the allocating one
  void* again = weft::detail::frame_allocate(64);
  EXPECT_EQ(again, block);
  std::memset(again, 0xA5, 64);
  weft::detail::frame_deallocate(again, 64);
}

TEST(FramePool, BlocksFreedOnAnotherThreadFlowBackToTheAllocatingThread) {
  if (!frame_pool_enabled()) GTEST_SKIP() << without_pool;
  // The producer only allocates and the consumer only frees, so every block the producer gets
  // after the first rounds must come back from the consumer through the shared depot.
  handoff to_consumer;
  std::set<void*> freed_by_consumer;
  std::mutex freed_mutex;
  bool reused = false;

  std::thread consumer{[&] {
    for (int round = 0; round < handoff_rounds; ++round) {
      auto batch = to_consumer.take();
      for (void* block : batch) {
        EXPECT_TRUE(filled_with(block, handoff_block_size, 0xC3));
        std::memset(block, 0x3C, handoff_block_size);
        {
          const std::lock_guard lock{freed_mutex};
          freed_by_consumer.insert(block);
        }
        weft::detail::frame_deallocate(block, handoff_block_size);
      }
    }
  }};
  std::thread producer{[&] {
    for (int round = 0; round < handoff_rounds; ++round) {
      std::vector<void*> batch;
      batch.reserve(blocks_per_round);
      for (int i = 0; i < blocks_per_round; ++i) {
        void* block = weft::detail::frame_allocate(handoff_block_size);
        {
          const std::lock_guard lock{freed_mutex};
          if (freed_by_consumer.erase(block) > 0) reused = true;
        }
        std::memset(block, 0xC3, handoff_block_size);
        batch.push_back(block);
      }
      to_consumer.put(std::move(batch));
    }
  }};
  producer.join();
  consumer.join();
  EXPECT_TRUE(reused);
}

TEST(FramePool, ManyThreadsAllocatingAndFreeingEachOthersBlocksStayConsistent) {
  constexpr int threads = 4;
  constexpr int rounds = 100;
  constexpr int per_round = 500;
  std::vector<handoff> rings(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&rings, t] {
      handoff& out = rings[static_cast<std::size_t>((t + 1) % threads)];
      handoff& in = rings[static_cast<std::size_t>(t)];
      for (int round = 0; round < rounds; ++round) {
        std::vector<void*> batch;
        for (int i = 0; i < per_round; ++i) {
          const std::size_t size = 16 + static_cast<std::size_t>((i * 37) % 1'000);
          void* block = weft::detail::frame_allocate(size);
          std::memset(block, static_cast<int>(size & 0xFF), size);
          batch.push_back(block);
        }
        out.put(std::move(batch));
        auto received = in.take();
        for (std::size_t i = 0; i < received.size(); ++i) {
          const std::size_t size = 16 + (i * 37) % 1'000;
          EXPECT_TRUE(filled_with(received[i], size, static_cast<unsigned char>(size & 0xFF)));
          weft::detail::frame_deallocate(received[i], size);
        }
      }
    });
  }
  for (auto& w : workers) w.join();
}

}  // namespace
