// What socket and file tests share: the count of this process's open descriptors, a fixture
// mix-in that checks a test leaves the same descriptors open, and the check that an operation on
// a runtime without io_uring throws io_unavailable with its explanation.
#pragma once

#include <cerrno>
#include <filesystem>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include <weft/io/io_unavailable.hpp>
#include <weft/runtime.hpp>
#include <weft/task.hpp>

namespace weft::testing {

/// Descriptors this process has open now (the entries of /proc/self/fd; the directory's own
/// descriptor is counted every time, so counts compare).
inline int open_fd_count() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++n;
  }
  return n;
}

/// Every test starts and ends with the same descriptors open: sockets are closed exactly once,
/// by their owners, whatever way the test ends.
class fd_leak_check {
 protected:
  void remember_fds() { fds_before_ = open_fd_count(); }
  void check_fds() const {
    EXPECT_EQ(open_fd_count(), fds_before_) << "descriptors were left open (or closed twice)";
  }

 private:
  int fds_before_ = 0;
};

/// Awaiting `t` on `rt` (built with io_uring off) throws io_unavailable with the runtime's
/// explanation.
template <class T>
void expect_io_unavailable(weft::runtime& rt, weft::task<T> t, const char* what) {
  try {
    rt.block_on(std::move(t));
    ADD_FAILURE() << what << " succeeded without io_uring";
  } catch (const weft::io_unavailable& e) {
    EXPECT_EQ(e.code().value(), ENOTSUP) << what;
    EXPECT_NE(std::string{e.what()}.find("runtime_options::io_uring = false"), std::string::npos)
        << what << ": " << e.what();
  }
}

}  // namespace weft::testing
