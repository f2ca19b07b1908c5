// Which weft a program runs with: the library's version beside the headers' (docs/embedding.md).
#include <cstdio>
#include <string>

#include <weft/weft.hpp>

int main() {
  std::printf("weft %s (headers %s)\n", std::string{weft::version()}.c_str(), WEFT_VERSION_STRING);
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  const int answer = rt.block_on([]() -> weft::task<int> { co_return 42; }());
  return answer == 42 && weft::version() == WEFT_VERSION_STRING ? 0 : 1;
}
