// A fixture for tests that need the kernel's io_uring: where the kernel refuses it (a container's
// seccomp profile, kernel.io_uring_disabled) they are skipped with the runtime's reason, while the
// tests of the io_uring-off path, which never need it, still run.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include <weft/runtime.hpp>

namespace weft::testing {

/// Why this machine's kernel refuses io_uring, or empty.
inline const std::string& io_uring_refusal() {
  static const std::string reason = [] {
    weft::runtime rt{weft::runtime_options{.workers = 1}};
    return rt.io_error();
  }();
  return reason;
}

class needs_io_uring : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!io_uring_refusal().empty()) GTEST_SKIP() << io_uring_refusal();
  }
};

}  // namespace weft::testing
