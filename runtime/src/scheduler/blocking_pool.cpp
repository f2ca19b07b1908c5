// The spawn_blocking thread pool and the job protocol.
//
// A job's status moves queued -> running -> done on its thread, or to abandoned when its awaiter
// is cancelled (before it started: it never runs; while it runs: its result is dropped). The one
// that moves it out of queued/running wakes the awaiter, so exactly one wake happens.
#include "scheduler/blocking_pool.hpp"

#include "scheduler/runtime_core.hpp"

#include <stdexcept>

namespace weft::detail {

void blocking_job::run() noexcept {
  auto s = std::uint8_t{queued};
  if (!status.compare_exchange_strong(s, running, std::memory_order_acq_rel)) return;
  invoke();
  s = running;
  // acq_rel: release publishes the result to the awaiter's await_resume.
  if (status.compare_exchange_strong(s, done, std::memory_order_acq_rel)) {
    if (gate.wake()) schedule_wake(rt, waiter);
  }
}

void blocking_job::drop() noexcept {
  // Shutdown: the awaiting task is being destroyed, nobody is to be woken.
  auto s = std::uint8_t{queued};
  status.compare_exchange_strong(s, abandoned, std::memory_order_acq_rel);
}

blocking_pool::blocking_pool(std::size_t max_threads, std::chrono::milliseconds keep_alive)
    : max_threads_(max_threads), keep_alive_(keep_alive) {}

blocking_pool::~blocking_pool() {
  shutdown();
}

void blocking_pool::reap_exited_locked(std::vector<std::thread>& out) {
  for (auto id : exited_) {
    for (auto it = threads_.begin(); it != threads_.end(); ++it) {
      if (it->get_id() == id) {
        out.push_back(std::move(*it));
        threads_.erase(it);
        break;
      }
    }
  }
  exited_.clear();
}

void blocking_pool::submit(std::shared_ptr<blocking_job> job) {
  std::vector<std::thread> finished;
  {
    std::lock_guard lock{mutex_};
    if (shutdown_) {
      throw std::logic_error("weft::spawn_blocking: the runtime is shutting down");
    }
    queue_.push_back(std::move(job));
    reap_exited_locked(finished);
    if (idle_ > 0) {
      wake_.notify_one();
    } else if (alive_ < max_threads_) {
      ++alive_;
      threads_.emplace_back([this] { thread_main(); });
    }
  }
  for (auto& t : finished) t.join();  // already exited: returns at once
}

void blocking_pool::thread_main() {
  std::unique_lock lock{mutex_};
  for (;;) {
    while (!queue_.empty()) {
      auto job = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      job->run();
      runtime_core* rt = job->rt;
      job.reset();
      rt->blocking_finished();
      lock.lock();
    }
    if (shutdown_) break;
    ++idle_;
    const bool woken =
        wake_.wait_for(lock, keep_alive_, [this] { return shutdown_ || !queue_.empty(); });
    --idle_;
    if (!woken) break;  // idle for keep_alive: retire
  }
  --alive_;
  exited_.push_back(std::this_thread::get_id());
}

void blocking_pool::shutdown() {
  std::vector<std::thread> threads;
  std::deque<std::shared_ptr<blocking_job>> dropped;
  {
    std::lock_guard lock{mutex_};
    shutdown_ = true;
    dropped.swap(queue_);
    threads.swap(threads_);
    exited_.clear();
    wake_.notify_all();
  }
  for (auto& job : dropped) job->drop();
  for (auto& t : threads) t.join();
}

std::size_t blocking_pool::threads() const {
  std::lock_guard lock{mutex_};
  return alive_;
}

std::size_t blocking_pool::queued() const {
  std::lock_guard lock{mutex_};
  return queue_.size();
}

}  // namespace weft::detail
