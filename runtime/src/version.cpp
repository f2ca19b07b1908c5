// weft::version(), and the symbols that make a program built with other task-protocol or
// introspection settings than this library fail to link (detail/config.hpp, abi_check).
#include <weft/detail/config.hpp>
#include <weft/version.hpp>

namespace weft {

std::string_view version() noexcept {
  return WEFT_VERSION_STRING;
}

namespace detail {
extern const int WEFT_ABI_SYMBOL(abi_symmetric_transfer_, WEFT_SYMMETRIC_TRANSFER) = 1;
extern const int WEFT_ABI_SYMBOL(abi_introspection_, WEFT_INTROSPECTION) = 1;
}  // namespace detail

}  // namespace weft
