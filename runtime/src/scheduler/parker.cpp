// The parker's two sleeps: in the io_uring wait, or on a futex when the worker has no ring.
#include "scheduler/parker.hpp"

#include <cerrno>
#include <ctime>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "io/reactor.hpp"

namespace weft::detail {

namespace {

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                std::int64_t timeout_ns) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
    tsp = &ts;
  }
  // Returns on a wake, the timeout, a signal, or at once if the word changed (EAGAIN).
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, tsp,
            nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>& word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
            nullptr, 0);
}

}  // namespace

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

void parker::park(std::int64_t timeout_ns) {
  // acquire: pairs with the release in unpark(), so what the unparker wrote is visible.
  if (state_.exchange(empty, std::memory_order_acquire) == notified) return;
  std::uint32_t expected = empty;
  // acq_rel: an unparker that sees `parked` also sees this worker's ring (set up before).
  if (!state_.compare_exchange_strong(expected, parked, std::memory_order_acq_rel)) {
    state_.store(empty, std::memory_order_relaxed);  // notified in between
    return;
  }
  // External loop: the reactor waits on its eventfd, ring or not (the host's loop wakes on it).
  if (reactor_.available() || reactor_.external()) {
    reactor_.wait(timeout_ns);
  } else {
    futex_wait(state_, parked, timeout_ns);
  }
  state_.exchange(empty, std::memory_order_acquire);
}

void parker::unpark() noexcept {
  // acq_rel: release pairs with the acquire in park(); acquire sees the worker's ring.
  if (state_.exchange(notified, std::memory_order_acq_rel) != parked) return;
  if (reactor_.available() || reactor_.external()) {
    reactor_.wake();
  } else {
    futex_wake(state_);
  }
}

}  // namespace weft::detail
