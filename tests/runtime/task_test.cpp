// weft::task: laziness, values, references, move-only types, exceptions and misuse.
#include <weft/task.hpp>

#include <gtest/gtest.h>

#include <weft/runtime.hpp>

namespace {

weft::task<int> answer() { co_return 42; }

TEST(Task, ReturnsItsValue) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  EXPECT_EQ(rt.block_on(answer()), 42);
}

}  // namespace
