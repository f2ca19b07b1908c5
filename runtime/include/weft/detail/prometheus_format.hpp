// The runtime's internal name for weft::prometheus (<weft/introspection/prometheus_format.hpp>).
#pragma once

#include <weft/introspection/prometheus_format.hpp>

namespace weft::detail {
namespace prometheus = weft::prometheus;
}  // namespace weft::detail
