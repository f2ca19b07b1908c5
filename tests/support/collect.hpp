// What stream tests share: draining an async_generator into a vector.
#pragma once

#include <utility>
#include <vector>

#include <weft/stream/async_generator.hpp>
#include <weft/task.hpp>

namespace weft::testing {

/// Every value `g` yields, in order, until it ends (its failure propagates).
template <class T>
weft::task<std::vector<T>> collect(weft::async_generator<T> g) {
  std::vector<T> out;
  while (auto v = co_await g.next()) out.push_back(std::move(*v));
  co_return out;
}

}  // namespace weft::testing
