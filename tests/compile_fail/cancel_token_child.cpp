// this_task::cancel_token() handed to a combinator: in the child task it would be the child's
// token, which ends with the child.
// expect: this awaitable only means something in the task that awaits it
#include <chrono>
#include <weft/this_task.hpp>
#include <weft/time/timeout.hpp>

weft::task<void> caller() {
  auto token = co_await weft::timeout(std::chrono::seconds{1}, weft::this_task::cancel_token());
  (void)token;
}
