// signal_set and signal_stop. The signal handler may run on any thread at any moment, so it
// touches only lock-free atomics and write(2): a delivery count per signal and a fixed table of
// slots, each with the eventfd of one set and the mask of signals it listens to. Everything else
// (installing and restoring dispositions, claiming slots) happens under a mutex, never in the
// handler.
#include <weft/io/signal.hpp>

#include <cerrno>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/io/io_operation.hpp>
#include <weft/spawn.hpp>

#include "scheduler/runtime_core.hpp"

namespace weft {

namespace {

constexpr int max_signal = 64;
constexpr int slot_count = 128;

struct slot {
  std::atomic<int> fd{-1};             // the set's eventfd; stays open once made (see the header)
  std::atomic<std::uint64_t> mask{0};  // bit n-1: signal n; 0 while the slot is free
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free &&
                  std::atomic<int>::is_always_lock_free,
              "the signal handler may only touch lock-free atomics");

slot slots[slot_count];
std::atomic<std::uint64_t> delivered[max_signal + 1];

struct registry {
  std::mutex mutex;
  int listeners[max_signal + 1] = {};
  struct sigaction previous[max_signal + 1] = {};
  bool claimed[slot_count] = {};
};

registry& the_registry() {
  static registry r;
  return r;
}

std::uint64_t bit_of(int sig) noexcept {
  return std::uint64_t{1} << (sig - 1);
}

extern "C" void on_signal(int sig) {
  const int saved_errno = errno;
  if (sig > 0 && sig <= max_signal) {
    delivered[sig].fetch_add(1, std::memory_order_acq_rel);
    const std::uint64_t bit = bit_of(sig);
    for (auto& s : slots) {
      if ((s.mask.load(std::memory_order_acquire) & bit) == 0) continue;
      const int fd = s.fd.load(std::memory_order_acquire);
      if (fd < 0) continue;
      const std::uint64_t one = 1;
      // EAGAIN (the counter is saturated) still leaves the eventfd readable: nothing is lost.
      [[maybe_unused]] const auto r = ::write(fd, &one, sizeof one);
    }
  }
  errno = saved_errno;
}

[[noreturn]] void refuse_signal(int sig, const char* why) {
  throw std::invalid_argument("weft::signal_set: signal " + std::to_string(sig) + " " + why);
}

void check_signal(int sig) {
  const auto refuse = [sig](const char* why) { refuse_signal(sig, why); };
  if (sig < 1 || sig > max_signal) refuse("is not a signal number (1 to 64)");
  switch (sig) {
    case SIGKILL:
    case SIGSTOP:
      refuse_signal(sig, "cannot be caught");
    case SIGSEGV:
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
    case SIGTRAP:
    case SIGSYS:
      refuse("reports a fault in the thread that caused it, which must not go on running");
    default:
      break;
  }
  if (sig > SIGSYS && sig < SIGRTMIN) refuse("is reserved by the C library's threads");
}

}  // namespace

signal_set::signal_set(std::initializer_list<int> signals)
    : signal_set(std::vector<int>(signals)) {}

signal_set::signal_set(const std::vector<int>& signals) {
  if (signals.empty()) throw std::invalid_argument("weft::signal_set: no signal to wait for");
  for (int sig : signals) {
    check_signal(sig);
    mask_ |= bit_of(sig);
  }
  registry& r = the_registry();
  std::lock_guard lock{r.mutex};
  for (int i = 0; i < slot_count; ++i) {
    if (!r.claimed[i]) {
      slot_ = i;
      break;
    }
  }
  if (slot_ < 0) {
    throw std::length_error("weft::signal_set: more than 128 signal sets alive at once");
  }
  slot& s = slots[slot_];
  int fd = s.fd.load(std::memory_order_relaxed);
  if (fd < 0) {
    fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) throw std::system_error(errno, std::system_category(), "weft::signal_set: eventfd");
    s.fd.store(fd, std::memory_order_release);
  } else {
    std::uint64_t stale = 0;  // a previous set's wake-ups
    [[maybe_unused]] const auto n = ::read(fd, &stale, sizeof stale);
  }
  // Install the handlers first: a failure leaves nothing behind.
  std::uint64_t installed = 0;
  for (int sig = 1; sig <= max_signal; ++sig) {
    if ((mask_ & bit_of(sig)) == 0 || r.listeners[sig] > 0) continue;
    struct sigaction sa = {};
    sa.sa_handler = &on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(sig, &sa, &r.previous[sig]) != 0) {
      const int error = errno;
      for (int undo = 1; undo < sig; ++undo) {
        if ((installed & bit_of(undo)) != 0) ::sigaction(undo, &r.previous[undo], nullptr);
      }
      throw std::system_error(error, std::system_category(),
                              "weft::signal_set: sigaction(" + std::to_string(sig) + ")");
    }
    installed |= bit_of(sig);
  }
  for (int sig = 1; sig <= max_signal; ++sig) {
    if ((mask_ & bit_of(sig)) == 0) continue;
    ++r.listeners[sig];
    // Deliveries before this point belong to no one; from here on they are ours.
    seen_[sig] = delivered[sig].load(std::memory_order_acquire);
  }
  r.claimed[slot_] = true;
  s.mask.store(mask_, std::memory_order_release);
}

signal_set::~signal_set() {
  registry& r = the_registry();
  std::lock_guard lock{r.mutex};
  slots[slot_].mask.store(0, std::memory_order_release);
  for (int sig = 1; sig <= max_signal; ++sig) {
    if ((mask_ & bit_of(sig)) == 0) continue;
    if (--r.listeners[sig] == 0) ::sigaction(sig, &r.previous[sig], nullptr);
  }
  r.claimed[slot_] = false;
}

int signal_set::take_pending() noexcept {
  for (int sig = 1; sig <= max_signal; ++sig) {
    if ((mask_ & bit_of(sig)) == 0) continue;
    if (delivered[sig].load(std::memory_order_acquire) > seen_[sig]) {
      ++seen_[sig];
      return sig;
    }
  }
  return 0;
}

int signal_set::poll() noexcept {
  return take_pending();
}

task<int> signal_set::wait() {
  const int fd = slots[slot_].fd.load(std::memory_order_acquire);
  for (;;) {
    // Checked before every read: the handler counts first and writes the eventfd after, so a
    // delivery is either seen here or wakes the read below.
    if (const int sig = take_pending()) co_return sig;
    std::uint64_t value = 0;
    const auto r = co_await submit_io(
        [fd, &value](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, &value, sizeof value, 0); });
    if (r.res < 0 && r.res != -EINTR && r.res != -EAGAIN) {
      throw std::system_error(-r.res, std::system_category(), "weft::signal_set::wait");
    }
  }
}

struct signal_stop::state {
  explicit state(std::initializer_list<int> s) : signals(s) {}
  signal_set signals;
  cancel_source source;
  std::atomic<int> which{0};
};

namespace {

task<void> watch_signals(std::shared_ptr<signal_stop::state> s) {
  try {
    const int sig = co_await s->signals.wait();
    s->which.store(sig, std::memory_order_release);
    s->source.request_cancellation();
  } catch (const operation_cancelled&) {
    // the signal_stop was destroyed
  }
}

std::shared_ptr<signal_stop::state> make_stop_state(std::initializer_list<int> signals) {
  detail::worker* w = detail::this_worker();
  if (w == nullptr) detail::throw_outside_runtime("weft::signal_stop");
  // Refused now, not in the watcher, where the error would reach nobody.
  if (!w->io().available()) w->io().throw_unavailable();
  return std::make_shared<signal_stop::state>(signals);
}

}  // namespace

signal_stop::signal_stop() : signal_stop({SIGINT, SIGTERM}) {}

signal_stop::signal_stop(std::initializer_list<int> signals)
    : state_(make_stop_state(signals)), watcher_(weft::spawn(watch_signals(state_))) {}

signal_stop::~signal_stop() {
  watcher_.cancel();  // the handle then detaches: the watcher ends at its next resumption
}

cancel_token signal_stop::token() const noexcept {
  return state_->source.token();
}

int signal_stop::signal() const noexcept {
  return state_->which.load(std::memory_order_acquire);
}

void signal_stop::request_stop() noexcept {
  state_->source.request_cancellation();
}

}  // namespace weft
