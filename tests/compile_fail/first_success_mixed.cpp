// first_success over children of unrelated result types.
// expect: the children need one result type
#include <string>
#include <weft/combinators/when_any.hpp>

weft::task<int> number() {
  co_return 1;
}
weft::task<std::string> text() {
  co_return "one";
}

weft::task<void> caller() {
  (void)co_await weft::first_success(number(), text());
}
