// How layers judge an outcome: verdict (success, failure, ignore), the default classification and
// retryability of docs/resilience-rules.md, and the predicate builders on_exception<E>(),
// on_error(cond) and on_result(pred) that replace them.
//
// Thread safety: verdict, outcome_view, predicate, classifier and retry_filter are values whose
// evaluation is const, so a layer calls its predicates from any worker at once: the tests given to
// predicate, on_exception and on_result must allow that. default_classify and default_retryable are
// pure. An outcome_view points into its outcome and is valid while that lives.
//
// Cancellation: nothing here suspends. A cancellation is judged ignore (by default_classify, and by
// a classifier whatever failure_when says), is never retryable, and matches none of on_exception,
// on_error and on_result.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <weft/resilience/error.hpp>
#include <weft/resilience/call_outcome.hpp>

namespace weft::resilience {

/// success and failure are counted by breakers and limiters; ignore is neither (a permit held for
/// the call is given back).
enum class verdict : std::uint8_t { success, failure, ignore };

/// An outcome of any result type, as predicates see it: the kind, the error code, the exception
/// and a pointer to the result with its type.
struct outcome_view {
  outcome_kind kind = outcome_kind::value;
  std::error_code error;
  const std::exception_ptr* exception = nullptr;  // null unless kind is exception or cancelled
  const void* result = nullptr;                   // the operation's own result, if it returned
  const std::type_info* result_type = nullptr;
};

template <class R>
outcome_view view_of(const call_outcome<R>& o) noexcept {
  static_assert(!std::is_reference_v<R>);
  outcome_view v;
  v.kind = o.kind();
  if (v.kind == outcome_kind::value) {
    v.result = &o.value();
    v.result_type = &typeid(detail::value_slot<R>);
    return v;  // the fast path: nothing else to read
  }
  v.error = o.error();
  if (o.holds_result()) {
    v.result = &o.value();
    v.result_type = &typeid(detail::value_slot<R>);
  }
  v.exception = o.exception_ptr_if_any();
  return v;
}

/// The default (docs/resilience-rules.md "Verdicts"): value → success; cancelled → ignore; the
/// local-overload rejections bulkhead_full, rate_limited and limit_exceeded → ignore (they say
/// nothing about the dependency); everything else (timeout, other errors, exceptions) → failure.
/// A `rejected` thrown by a pipeline nested inside the operation is judged by its code.
[[nodiscard]] verdict default_classify(const outcome_view& o) noexcept;

/// The default (docs/resilience-rules.md "Retryability"): failures are retryable except library
/// rejections, std::logic_error and its subclasses, and std::bad_alloc; values, cancellation and
/// ignored outcomes are not.
[[nodiscard]] bool default_retryable(const outcome_view& o) noexcept;

/// A test on outcomes, built from on_exception, on_error and on_result and combined with `|`
/// (any of). Copyable; evaluating it allocates nothing.
///
///     auto transient = on_exception<io_error>() | on_error(std::errc::connection_refused) |
///                      on_result([](const response& r) { return r.status >= 500; });
class predicate {
 public:
  predicate() = default;
  explicit predicate(std::function<bool(const outcome_view&)> test) {
    tests_.push_back(std::move(test));
  }
  [[nodiscard]] bool operator()(const outcome_view& o) const {
    for (const auto& t : tests_) {
      if (t(o)) return true;
    }
    return false;
  }
  [[nodiscard]] bool empty() const noexcept { return tests_.empty(); }
  friend predicate operator|(predicate a, const predicate& b) {
    a.tests_.insert(a.tests_.end(), b.tests_.begin(), b.tests_.end());
    return a;
  }

 private:
  std::vector<std::function<bool(const outcome_view&)>> tests_;
};

/// Matches outcomes holding an exception of type E (or derived), optionally only those for which
/// `test(const E&)` is true.
template <class E>
predicate on_exception() {
  return predicate([](const outcome_view& o) {
    if (o.exception == nullptr || !*o.exception || o.kind == outcome_kind::cancelled) return false;
    try {
      std::rethrow_exception(*o.exception);
    } catch (const E&) {
      return true;
    } catch (...) {
      return false;
    }
  });
}
template <class E, class F>
requires std::is_invocable_r_v<bool, const F&, const E&>
predicate on_exception(F test) {
  return predicate([test = std::move(test)](const outcome_view& o) {
    if (o.exception == nullptr || !*o.exception || o.kind == outcome_kind::cancelled) return false;
    try {
      std::rethrow_exception(*o.exception);
    } catch (const E& e) {
      return static_cast<bool>(test(e));
    } catch (...) {
      return false;
    }
  });
}

/// Matches error outcomes whose code equals `cond` (a std::error_condition, std::error_code or an
/// enum that converts to one, e.g. std::errc::connection_refused), compared as the standard
/// library compares them (so a condition matches every code equivalent to it).
template <class C>
requires requires(const std::error_code& e, const C& c) { e == c; }
predicate on_error(C cond) {
  return predicate([cond](const outcome_view& o) {
    return o.kind == outcome_kind::error && static_cast<bool>(o.error) && o.error == cond;
  });
}

namespace detail {
template <class F>
struct first_arg;
template <class C, class Ret, class A>
struct first_arg<Ret (C::*)(A) const> {
  using type = std::remove_cvref_t<A>;
};
template <class C, class Ret, class A>
struct first_arg<Ret (C::*)(A) const noexcept> {
  using type = std::remove_cvref_t<A>;
};
}  // namespace detail

/// Matches outcomes whose result is an X (the type pred takes) and for which pred is true. The
/// result can be an expected-like value that holds an error, so on_result can classify those too.
template <class F, class X = typename detail::first_arg<decltype(&F::operator())>::type>
predicate on_result(F pred) {
  return predicate([pred = std::move(pred)](const outcome_view& o) {
    if (o.result == nullptr || o.result_type == nullptr || *o.result_type != typeid(X)) return false;
    return static_cast<bool>(pred(*static_cast<const X*>(o.result)));
  });
}

/// How a layer judges outcomes: by default_classify, or — when `failure_when` is set — a match is
/// a failure, cancellation is ignored, the local-overload rejections are ignored, and anything
/// else is a success (as Polly's ShouldHandle and resilience4j's recordExceptions do). An outcome
/// that `ignore_when` matches is ignored whatever else would apply: neither a success nor a
/// failure (resilience4j's ignoreExceptions), so a breaker neither counts it nor keeps its
/// permit, and a fallback lets it through.
///
///     breaker_options.ignore_when = wr::on_exception<not_found>();  // the caller's mistake
struct classifier {
  predicate failure_when;
  predicate ignore_when = {};

  [[nodiscard]] verdict operator()(const outcome_view& o) const {
    if (!ignore_when.empty() && ignore_when(o)) return verdict::ignore;
    if (failure_when.empty()) return default_classify(o);
    if (o.kind == outcome_kind::cancelled) return verdict::ignore;
    if (failure_when(o)) return verdict::failure;
    if (default_classify(o) == verdict::ignore) return verdict::ignore;
    return verdict::success;
  }
};

/// Decides which failures a retry or hedge tries again: default_retryable, or — when
/// `retry_when` is set — exactly the outcomes it matches (never cancellation).
struct retry_filter {
  predicate retry_when;

  [[nodiscard]] bool operator()(const outcome_view& o) const {
    if (o.kind == outcome_kind::cancelled || o.kind == outcome_kind::value) return false;
    if (retry_when.empty()) return default_retryable(o);
    return retry_when(o);
  }
};

}  // namespace weft::resilience
