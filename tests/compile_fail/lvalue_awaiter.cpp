// A weft awaiter kept in a variable and passed as an lvalue: awaiters move but do not copy.
// expect: this awaitable cannot be copied into the combinator's child task
#include <chrono>
#include <weft/sync/latch.hpp>
#include <weft/time/timeout.hpp>

weft::task<void> caller(weft::latch& ready) {
  auto wait = ready.wait();
  co_await weft::timeout(std::chrono::seconds{1}, wait);
}
