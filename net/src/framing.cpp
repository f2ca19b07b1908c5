// The "weft.net.framing" error category: one instance in the library, so that error_code
// comparisons hold across every translation unit that includes framing.hpp.
#include <weft/net/framing.hpp>

namespace weft::net {

namespace {

class framing_category_impl final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "weft.net.framing"; }

  [[nodiscard]] std::string message(int value) const override {
    switch (static_cast<frame_errc>(value)) {
      case frame_errc::too_long:
        return "frame longer than the limit";
      case frame_errc::truncated:
        return "stream ended inside a frame";
    }
    return "unknown framing error";
  }

  // Lets `e.code() == std::errc::message_size` hold for code that already checks EMSGSIZE.
  [[nodiscard]] std::error_condition default_error_condition(int value) const noexcept override {
    if (static_cast<frame_errc>(value) == frame_errc::too_long) {
      return std::make_error_condition(std::errc::message_size);
    }
    return {value, *this};
  }
};

}  // namespace

const std::error_category& framing_category() noexcept {
  static const framing_category_impl category;
  return category;
}

}  // namespace weft::net
