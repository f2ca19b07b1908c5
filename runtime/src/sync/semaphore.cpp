// weft::semaphore: units and a FIFO of waiting requests under one spin lock.
//
// Units are never lost: a request that leaves the queue (cancelled, or withdrawn because runtime
// shutdown destroyed its task) re-runs the grant for the requests behind it, and units granted to
// a request whose task was destroyed before it took them go back to the semaphore.
#include <weft/sync/semaphore.hpp>

#include <string>

#include <cassert>
#include <string>

namespace weft {

semaphore::~semaphore() {
  assert(waiters_.empty() && "weft::semaphore destroyed while tasks wait on it");
}

std::optional<semaphore::permit> semaphore::try_acquire(std::size_t units) {
  if (units == 0) throw std::invalid_argument("weft::semaphore::try_acquire: 0 units");
  std::lock_guard lock{lock_};
  if (!waiters_.empty() || available_ < units) return std::nullopt;
  available_ -= units;
  return permit{this, units};
}

std::size_t semaphore::available() const noexcept {
  std::lock_guard lock{lock_};
  return available_;
}

std::size_t semaphore::waiting() const noexcept {
  std::lock_guard lock{lock_};
  return waiting_;
}

semaphore::counts_t semaphore::counts() const noexcept {
  std::lock_guard lock{lock_};
  return {available_, waiting_};
}

std::string semaphore::describe(const acquire_awaiter& a) const {
  std::size_t ahead = 0;
  std::size_t free = 0;
  {
    std::lock_guard lock{lock_};
    ahead = detail::waiters_ahead(a);
    free = available_;
  }
  if (a.mutex_) return "mutex lock (" + std::to_string(ahead) + " ahead)";
  return "semaphore acquire " + std::to_string(a.units_) + " (" + std::to_string(ahead) +
         " ahead, " + std::to_string(free) + " free)";
}

bool semaphore::suspend(acquire_awaiter& a, std::coroutine_handle<> h,
                        detail::cancel_state* token) {
  if (!a.begin(h, token)) return false;
  {
    std::lock_guard lock{lock_};
    if (waiters_.empty() && available_ >= a.units_) {
      available_ -= a.units_;
      a.state = detail::waiter::done;
      return false;
    }
    a.rt = &detail::require_runtime("weft::semaphore::acquire");
    waiters_.push_back(&a);
    ++waiting_;
  }
  return a.park(token, &acquire_awaiter::on_cancel, &a);
}

detail::waiter* semaphore::grant_locked() noexcept {
  detail::waiter* list = nullptr;
  detail::waiter** tail = &list;
  while (!waiters_.empty()) {
    auto* front = static_cast<acquire_awaiter*>(waiters_.head);
    if (front->units_ > available_) break;  // FIFO: nobody passes the front request
    available_ -= front->units_;
    waiters_.pop_front_to_wake();
    --waiting_;
    front->state = detail::waiter::done;
    front->next = nullptr;
    *tail = front;
    tail = &front->next;
  }
  return list;
}

void semaphore::release(std::size_t units) noexcept {
  detail::waiter* wake = nullptr;
  {
    std::lock_guard lock{lock_};
    available_ += units;
    wake = grant_locked();
  }
  detail::wake_chain(wake);
}

void semaphore::cancel_waiter(acquire_awaiter* a) noexcept {
  detail::waiter* wake = nullptr;
  {
    std::lock_guard lock{lock_};
    if (!a->linked) return;  // served first: it holds the units now
    waiters_.erase(a);
    --waiting_;
    a->state = detail::waiter::cancelled;
    wake = grant_locked();  // it may have been the request everyone behind it waited for
  }
  a->wake();
  detail::wake_chain(wake);
}

void semaphore::withdraw(acquire_awaiter* a) noexcept {
  a->hook.disarm();  // waits for a cancellation running elsewhere
  detail::waiter* wake = nullptr;
  {
    std::lock_guard lock{lock_};
    if (a->linked) {
      // Still waiting: it may be the request everyone behind it waits for.
      waiters_.erase(a);
      --waiting_;
    } else if (a->state == detail::waiter::done && !a->taken_) {
      // Granted, but its task was destroyed before it resumed to take the units.
      available_ += a->units_;
    } else {
      return;
    }
    wake = grant_locked();
  }
  detail::wake_chain(wake);
}

}  // namespace weft
