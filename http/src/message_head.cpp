// Header lookup.
#include <weft/http/message_head.hpp>

namespace weft::http {

std::optional<std::string_view> header_view::get(std::string_view name) const noexcept {
  for (const auto& f : fields_) {
    if (iequals(f.name, name)) return f.value;
  }
  return std::nullopt;
}

}  // namespace weft::http
