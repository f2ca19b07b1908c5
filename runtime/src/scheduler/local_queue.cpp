// The lock-free local run queue; see the protocol atop local_queue.hpp.
#include "scheduler/local_queue.hpp"

#include <cassert>

#include "scheduler/injection_queue.hpp"

namespace weft::detail {

namespace {
constexpr std::uint32_t mask = local_queue::capacity - 1;
}

std::uint32_t local_queue::size() const noexcept {
  const auto head = head_.load(std::memory_order_acquire);
  const auto tail = tail_.load(std::memory_order_acquire);
  // Signed, for the moment take_back holds tail_ one below a stealer's claim.
  const auto n = static_cast<std::int32_t>(tail - real_part(head));
  return n > 0 ? static_cast<std::uint32_t>(n) : 0;
}

bool local_queue::push_back(std::coroutine_handle<> h, injection_queue& overflow) {
  for (;;) {
    // acquire: pairs with the AcqRel CAS of a stealer that finished, so its slots are free.
    const auto head = head_.load(std::memory_order_acquire);
    const auto steal = steal_part(head);
    const auto tail = tail_.load(std::memory_order_relaxed);  // only the owner writes tail_
    if (tail - steal < capacity) {
      buffer_[tail & mask].store(h.address(), std::memory_order_relaxed);
      // release: publishes the slot to pop()/steal_into2(), which acquire tail_.
      tail_.store(tail + 1, std::memory_order_release);
      return false;
    }
    if (steal != real_part(head)) {
      // A stealer is copying out; it will free half the queue. Do not wait for it.
      overflow.push(h);
      return true;
    }
    if (push_overflow(h, real_part(head), tail, overflow)) return true;
    // A stealer or the owner moved head_ meanwhile: there may be room now, retry.
  }
}

bool local_queue::push_overflow(std::coroutine_handle<> h, std::uint32_t head, std::uint32_t tail,
                                injection_queue& overflow) {
  constexpr std::uint32_t taken = capacity / 2;
  assert(tail - head == capacity);
  auto expected = pack(head, head);
  // Claim the front half; fails if a stealer started meanwhile.
  if (!head_.compare_exchange_strong(expected, pack(head + taken, head + taken),
                                     std::memory_order_release, std::memory_order_relaxed)) {
    return false;
  }
  std::array<void*, taken + 1> batch;
  for (std::uint32_t i = 0; i < taken; ++i) {
    batch[i] = buffer_[(head + i) & mask].load(std::memory_order_relaxed);
  }
  batch[taken] = h.address();
  overflow.push_batch(batch.data(), batch.size());
  return true;
}

std::coroutine_handle<> local_queue::pop() {
  auto head = head_.load(std::memory_order_acquire);
  for (;;) {
    const auto steal = steal_part(head);
    const auto real = real_part(head);
    const auto tail = tail_.load(std::memory_order_relaxed);  // only the owner writes tail_
    if (real == tail) return {};
    const auto next_real = real + 1;
    const auto next = steal == real ? pack(next_real, next_real) : pack(steal, next_real);
    // acq_rel: acquire pairs with stealers' release; release tells them the slot is consumed.
    if (head_.compare_exchange_weak(head, next, std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
      if (tail - next_real > 1) {
        // Start loading the frame of the task after next (its header and first lines): a task
        // queued long ago is cold, and a cache miss per task is what a big fan-out costs.
        auto* ahead =
            static_cast<char*>(buffer_[(next_real + 1) & mask].load(std::memory_order_relaxed));
        __builtin_prefetch(ahead - 32);
        __builtin_prefetch(ahead + 32);
      }
      return std::coroutine_handle<>::from_address(
          buffer_[real & mask].load(std::memory_order_relaxed));
    }
  }
}

bool local_queue::take_back(void* expected) {
  const auto tail = tail_.load(std::memory_order_relaxed);  // only the owner writes tail_
  if (real_part(head_.load(std::memory_order_acquire)) == tail) return false;
  if (buffer_[(tail - 1) & mask].load(std::memory_order_relaxed) != expected) return false;
  // seq_cst store, then seq_cst load: a stealer that read the old tail_ has either claimed from
  // a head_ this load sees, or reads the new tail_ (protocol step 5).
  tail_.store(tail - 1, std::memory_order_seq_cst);
  const auto real = real_part(head_.load(std::memory_order_seq_cst));
  // Signed: the indices wrap.
  if (static_cast<std::int32_t>(tail - 1 - real) > 0) return true;  // two or more were queued:
                                                                     // no steal reaches the last
  tail_.store(tail, std::memory_order_seq_cst);
  if (real != tail - 1) return false;  // a stealer took it
  // The only entry left: ours if the front pop wins it.
  return pop().address() == expected;
}

std::coroutine_handle<> local_queue::steal_into(local_queue& dst, std::uint32_t& stolen) {
  const auto dst_tail = dst.tail_.load(std::memory_order_relaxed);  // dst is the caller's own
  const auto dst_steal = steal_part(dst.head_.load(std::memory_order_acquire));
  if (dst_tail - dst_steal > capacity / 2) return {};  // our own queue is too full to take half

  auto n = steal_into2(dst, dst_tail);
  if (n == 0) return {};
  stolen = n;
  // Run the last stolen task at once; publish the rest in dst.
  --n;
  const auto ret_pos = dst_tail + n;
  void* ret = dst.buffer_[ret_pos & mask].load(std::memory_order_relaxed);
  if (n > 0) dst.tail_.store(dst_tail + n, std::memory_order_release);
  return std::coroutine_handle<>::from_address(ret);
}

std::uint32_t local_queue::steal_into2(local_queue& dst, std::uint32_t dst_tail) {
  // seq_cst (here, and the claim's CAS): with take_back's seq_cst store of tail_ and load of
  // head_, a stealer that sees another stealer's claim also sees the owner's lowered tail_.
  auto prev = head_.load(std::memory_order_seq_cst);
  std::uint32_t n;
  std::uint64_t next;
  for (;;) {
    const auto src_steal = steal_part(prev);
    const auto src_real = real_part(prev);
    if (src_steal != src_real) return 0;  // another worker is stealing from this queue
    // acquire: pairs with the owner's release store of tail_, making the slots visible;
    // seq_cst: ordered against take_back's store of tail_ and load of head_ (step 5).
    const auto src_tail = tail_.load(std::memory_order_seq_cst);
    // Signed: while the owner takes its last entry back, tail_ may sit one below a stealer's
    // claim for a moment (take_back restores it); that reads as empty, not as 2^32 - 1 tasks.
    const auto len = static_cast<std::int32_t>(src_tail - src_real);
    if (len <= 0) return 0;
    n = static_cast<std::uint32_t>(len - len / 2);
    const auto steal_to = src_real + n;
    next = pack(src_steal, steal_to);
    if (head_.compare_exchange_weak(prev, next, std::memory_order_seq_cst,
                                    std::memory_order_seq_cst)) {
      break;
    }
  }
  const auto first = steal_part(next);
  for (std::uint32_t i = 0; i < n; ++i) {
    dst.buffer_[(dst_tail + i) & mask].store(
        buffer_[(first + i) & mask].load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
  // Finish the steal: steal = real, letting the owner reuse the slots. The owner may have popped
  // meanwhile (moving real), so retry with what we see.
  prev = next;
  for (;;) {
    const auto real = real_part(prev);
    const auto done = pack(real, real);
    if (head_.compare_exchange_weak(prev, done, std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
      return n;
    }
  }
}

}  // namespace weft::detail
