// Something that is neither a task nor an awaitable, handed to a combinator.
// expect: this argument is neither a weft::task nor an awaitable
#include <chrono>
#include <weft/time/timeout.hpp>

weft::task<void> caller() {
  co_await weft::timeout(std::chrono::seconds{1}, 42);
}
