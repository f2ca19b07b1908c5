// The runtime's internal name for weft::spin_lock (<weft/sync/spin_lock.hpp>).
#pragma once

#include <weft/sync/spin_lock.hpp>

namespace weft::detail {
using spin_lock = weft::spin_lock;
}  // namespace weft::detail
