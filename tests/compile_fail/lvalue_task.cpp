// A task passed to a combinator as an lvalue: it must be moved in.
// expect: a task is moved into the combinator, not copied
#include <chrono>
#include <weft/time/timeout.hpp>

weft::task<int> fetch() {
  co_return 1;
}

weft::task<int> caller() {
  auto t = fetch();
  co_return co_await weft::timeout(std::chrono::seconds{1}, t);
}
