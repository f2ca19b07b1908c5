// The threads that run spawn_blocking jobs: started on demand, retired when idle.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <weft/spawn_blocking.hpp>

namespace weft::detail {

class blocking_pool {
 public:
  blocking_pool(std::size_t max_threads, std::chrono::milliseconds keep_alive);
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;
  ~blocking_pool();

  /// Queues `job`; starts a thread if none is idle and fewer than the maximum run.
  /// Throws std::logic_error after shutdown().
  void submit(std::shared_ptr<blocking_job> job);

  /// Drops jobs that have not started, waits for running ones and joins every thread.
  void shutdown();

  [[nodiscard]] std::size_t threads() const;
  /// Jobs waiting for a thread.
  [[nodiscard]] std::size_t queued() const;

 private:
  void thread_main();
  void reap_exited_locked(std::vector<std::thread>& out);

  const std::size_t max_threads_;
  const std::chrono::milliseconds keep_alive_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<blocking_job>> queue_;
  std::vector<std::thread> threads_;
  std::vector<std::thread::id> exited_;
  std::size_t idle_ = 0;
  std::size_t alive_ = 0;
  bool shutdown_ = false;
};

}  // namespace weft::detail
