// aggregate_error's message: how many failed, and the first failure's own message.
#include <weft/combinators/aggregate_error.hpp>

namespace weft {

namespace {
std::string describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}
}  // namespace

aggregate_error::aggregate_error(std::vector<std::exception_ptr> errors, std::string context)
    : errors_(std::move(errors)) {
  message_ = "weft::aggregate_error: ";
  if (!context.empty()) message_ += context + ": ";
  message_ += std::to_string(errors_.size()) + (errors_.size() == 1 ? " failure" : " failures");
  if (!errors_.empty() && errors_.front()) message_ += "; the first: " + describe(errors_.front());
}

}  // namespace weft
