// The default classification and retryability of docs/resilience-rules.md "Outcomes and
// classification".
#include <weft/resilience/classify.hpp>

#include <weft/cancel/operation_cancelled.hpp>

#include <new>
#include <stdexcept>

namespace weft::resilience {

namespace detail {
bool is_cancellation_exception(const std::exception_ptr& e) noexcept {
  if (!e) return false;
  if (weft::is_cancellation(e)) return true;
  // docs/resilience-rules.md "Outcomes and classification" also counts errc::operation_canceled as
  // cancellation.
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& s) {
    return s.code() == std::errc::operation_canceled;
  } catch (...) {
    return false;
  }
}
}  // namespace detail

verdict default_classify(const outcome_view& o) noexcept {
  switch (o.kind) {
    case outcome_kind::value:
      return verdict::success;
    case outcome_kind::cancelled:
      return verdict::ignore;
    case outcome_kind::error:
      if (o.error == std::errc::operation_canceled) return verdict::ignore;
      if (o.error.category() == resilience_category()) {
        switch (static_cast<errc>(o.error.value())) {
          case errc::bulkhead_full:
          case errc::rate_limited:
          case errc::limit_exceeded:
            return verdict::ignore;
          default:
            return verdict::failure;
        }
      }
      return verdict::failure;
    case outcome_kind::exception:
      // A rejection thrown by a pipeline nested inside the operation is judged as the same
      // rejection returned as a value: local overload says nothing about the dependency.
      if (o.exception != nullptr && *o.exception) {
        try {
          std::rethrow_exception(*o.exception);
        } catch (const rejected& r) {
          outcome_view as_error;
          as_error.kind = outcome_kind::error;
          as_error.error = r.code();
          return default_classify(as_error);
        } catch (...) {
        }
      }
      return verdict::failure;
  }
  return verdict::failure;
}

bool default_retryable(const outcome_view& o) noexcept {
  switch (o.kind) {
    case outcome_kind::value:
    case outcome_kind::cancelled:
      return false;
    case outcome_kind::error:
      if (o.error == std::errc::operation_canceled) return false;
      return !is_rejection(o.error);
    case outcome_kind::exception:
      if (o.exception == nullptr || !*o.exception) return true;
      try {
        std::rethrow_exception(*o.exception);
      } catch (const rejected& r) {
        return !is_rejection(r.code());
      } catch (const std::logic_error&) {
        return false;
      } catch (const std::bad_alloc&) {
        return false;
      } catch (...) {
        return true;
      }
  }
  return false;
}

}  // namespace weft::resilience
