// A task called but neither awaited nor spawned.
// expect: a task does nothing until it is co_awaited or spawned
#include <weft/task.hpp>

weft::task<int> fetch() {
  co_return 1;
}

weft::task<void> caller() {
  fetch();
  co_return;
}
