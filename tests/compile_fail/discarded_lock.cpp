// `m.lock();` without co_await: locks nothing, so it is an error that says so.
// expect: does nothing until it is co_awaited
#include <weft/sync/mutex.hpp>
#include <weft/task.hpp>

weft::task<void> caller(weft::mutex& m) {
  m.lock();
  co_return;
}
