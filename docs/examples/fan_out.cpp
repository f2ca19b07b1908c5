// Fan out: spawn one task per item, then join them all in order. The README's example.
#include <cstdio>
#include <vector>

#include <weft/weft.hpp>

weft::task<int> square(int x) {
  co_await weft::yield();  // give the worker to the other tasks: they interleave
  const int squared = x * x;
  co_return squared;
}

weft::task<int> sum_of_squares(int n) {
  std::vector<weft::join_handle<int>> handles;
  for (int i = 1; i <= n; ++i) handles.push_back(weft::spawn(square(i)));
  int sum = 0;
  for (auto& h : handles) sum += co_await h;  // rethrows if a task threw
  co_return sum;
}

int main() {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  const int sum = rt.block_on(sum_of_squares(100));
  std::printf("sum of squares 1..100 = %d\n", sum);
  return sum == 338350 ? 0 : 1;
}
