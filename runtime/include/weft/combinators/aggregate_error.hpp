// weft::aggregate_error: the failures of several children, together.
//
// Thread safety: an exception type: distinct objects may be used from different threads, one object
// is not synchronised.
//
// Cancellation: nothing here suspends.
#pragma once

#include <cstddef>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace weft {

/// Thrown by first_success when every child failed and by quorum when too many failed to reach k.
/// errors() holds each child's exception in input order (quorum: every failure seen until it
/// gave up, in input order).
class aggregate_error : public std::exception {
 public:
  explicit aggregate_error(std::vector<std::exception_ptr> errors, std::string context = {});
  [[nodiscard]] const char* what() const noexcept override { return message_.c_str(); }
  [[nodiscard]] const std::vector<std::exception_ptr>& errors() const noexcept { return errors_; }

 private:
  std::vector<std::exception_ptr> errors_;
  std::string message_;
};

}  // namespace weft
