// A fixture for tests that need the kernel's io_uring: where the kernel refuses it (a container's
// seccomp profile, kernel.io_uring_disabled) they are skipped with the runtime's reason, while the
// tests of the io_uring-off path, which never need it, still run.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include <weft/runtime.hpp>

#include "fd_leak.hpp"

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

/// needs_io_uring, and every descriptor the test opened (sockets, rings, eventfds) must be closed
/// again when it ends.
class needs_io_uring_no_fd_leaks : public needs_io_uring, protected fd_leak_check {
 protected:
  void SetUp() override {
    needs_io_uring::SetUp();
    remember_fds();
  }
  void TearDown() override {
    if (!IsSkipped()) check_fds();
  }
};

}  // namespace weft::testing
