// A statistics counter written by one thread and read by any.
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

/// Written by one thread (its worker) and read by any: no read-modify-write needed.
class owned_counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

}  // namespace weft::detail
