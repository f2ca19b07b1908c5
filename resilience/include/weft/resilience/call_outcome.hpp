// weft::resilience::call_outcome<R>: what one call through a layer produced — the operation's
// result, an error code (a library rejection or a converted error), an exception, or cancellation.
// Layers pass it to each other as a value, so nothing is thrown inside a pipeline.
//
// Thread safety: a value type: one object is not synchronised, distinct objects are independent.
// The name of the layer that refused a call is an immutable string shared with that layer, so an
// outcome may outlive the layer and move to another thread.
//
// Cancellation: nothing here suspends. Kind cancelled is call_outcome::cancelled(), or an exception
// that is weft::operation_cancelled or a std::system_error with errc::operation_canceled (the
// exception is kept). get() throws weft::operation_cancelled for cancelled() and rethrows a kept
// exception as it is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/outcome.hpp>
#include <weft/resilience/error.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

/// Which of the four things an outcome holds.
enum class outcome_kind : std::uint8_t { value, error, exception, cancelled };

/// A result type with has_value(), value() and error(), such as std::expected<T, E> or
/// boost::outcome: its errors are errors of the call, not exceptions.
template <class E>
concept expected_like = requires(const E& e) {
  { e.has_value() } -> std::convertible_to<bool>;
  e.value();
  e.error();
};

namespace detail {
struct void_value {};
template <class R>
using value_slot = std::conditional_t<std::is_void_v<R>, void_value, R>;

template <class E>
std::error_code error_code_of(const E& e) {
  using err = std::decay_t<decltype(e.error())>;
  if constexpr (std::is_convertible_v<const err&, std::error_code>) {
    return std::error_code(e.error());
  } else if constexpr (std::is_error_code_enum_v<err> || std::is_error_condition_enum_v<err>) {
    return make_error_code(e.error());
  } else {
    return {};  // an error without a code: classified as a failure by its kind alone
  }
}

bool is_cancellation_exception(const std::exception_ptr& e) noexcept;
}  // namespace detail

/// The normalised result of one call, in the caller's result type R (a plain T, void, or an
/// expected-like E). An expected-like R that holds an error has kind error, and keeps the R
/// itself so the caller gets back exactly what the operation returned.
///
///     call_outcome<int> o = co_await weft::resilience::pipeline{retry, breaker}.run(fetch);
///     switch (o.kind()) { case outcome_kind::value: use(o.value()); break; … }
template <class R>
class call_outcome {
 public:
  using value_type = detail::value_slot<R>;

  /// The operation's own result (for an expected-like R, whatever it holds).
  template <class... A>
  static call_outcome success(A&&... a) {
    call_outcome o;
    o.state_.template emplace<value_index>(std::forward<A>(a)...);
    return o;
  }
  /// An error code, with the time the layer expects to accept calls again.
  static call_outcome failure(std::error_code code, std::optional<clock::duration> after = {}) {
    call_outcome o;
    o.state_.template emplace<error_index>(code);
    o.retry_after_ = after;
    return o;
  }
  static call_outcome failure(errc code, std::optional<clock::duration> after = {}) {
    return failure(make_error_code(code), after);
  }
  /// An exception; weft::operation_cancelled becomes kind cancelled (the exception is kept).
  static call_outcome from_exception(std::exception_ptr e) {
    call_outcome o;
    o.cancelled_ = detail::is_cancellation_exception(e);
    o.state_.template emplace<exception_index>(std::move(e));
    return o;
  }
  /// Cancelled by the caller.
  static call_outcome cancelled() {
    call_outcome o;
    o.cancelled_ = true;
    o.state_.template emplace<error_index>(std::make_error_code(std::errc::operation_canceled));
    return o;
  }

  [[nodiscard]] outcome_kind kind() const noexcept {
    if (cancelled_) return outcome_kind::cancelled;
    switch (state_.index()) {
      case value_index:
        if constexpr (expected_like<R>) {
          if (!std::get<value_index>(state_).has_value()) return outcome_kind::error;
        }
        return outcome_kind::value;
      case error_index:
        return outcome_kind::error;
      default:
        return outcome_kind::exception;
    }
  }
  [[nodiscard]] bool has_value() const noexcept { return kind() == outcome_kind::value; }
  [[nodiscard]] bool is_cancelled() const noexcept { return cancelled_; }
  /// True when this is one of the library's own refusals (see is_rejection).
  [[nodiscard]] bool is_rejection() const noexcept {
    return state_.index() == error_index && resilience::is_rejection(std::get<error_index>(state_));
  }
  /// True when the operation itself returned (a value, or an expected-like error value).
  [[nodiscard]] bool holds_result() const noexcept { return state_.index() == value_index; }

  /// The operation's result. Precondition: holds_result().
  value_type& value() & { return std::get<value_index>(state_); }
  const value_type& value() const& { return std::get<value_index>(state_); }
  value_type&& value() && { return std::get<value_index>(std::move(state_)); }

  /// The error code: the one stored, or an expected-like result's error converted (empty when
  /// its error type has no std::error_code form); empty for values and exceptions.
  [[nodiscard]] std::error_code error() const {
    if (state_.index() == error_index) return std::get<error_index>(state_);
    if constexpr (expected_like<R>) {
      if (state_.index() == value_index && !std::get<value_index>(state_).has_value()) {
        return detail::error_code_of(std::get<value_index>(state_));
      }
    }
    return {};
  }
  /// The exception, or null.
  [[nodiscard]] std::exception_ptr exception() const noexcept {
    return state_.index() == exception_index ? std::get<exception_index>(state_)
                                             : std::exception_ptr{};
  }
  /// The stored exception_ptr itself (no copy), or null.
  [[nodiscard]] const std::exception_ptr* exception_ptr_if_any() const noexcept {
    return std::get_if<exception_index>(&state_);
  }
  [[nodiscard]] std::optional<clock::duration> retry_after() const noexcept { return retry_after_; }
  void set_retry_after(std::optional<clock::duration> d) noexcept { retry_after_ = d; }
  /// The configured name of the layer that refused the call, for a rejection whose layer said
  /// (null otherwise). Shared with the layer, so it stays valid after the layer is gone.
  [[nodiscard]] const std::string* rejected_by() const noexcept { return rejected_by_.get(); }
  /// Names the refusing layer (what a layer does to its own rejections).
  call_outcome&& from_layer(const std::shared_ptr<const std::string>& name) && noexcept {
    rejected_by_ = name;
    return std::move(*this);
  }

  /// Hands the outcome to a caller of result type R: the result itself; an error code injected
  /// through make_resilience_error (expected-like R) or thrown as `rejected` (resilience codes,
  /// naming the refusing layer and `key`, the call's operation key, when known) or
  /// std::system_error (others); the exception rethrown; cancellation thrown as
  /// weft::operation_cancelled.
  R get(std::string_view key = {}) && {
    switch (state_.index()) {
      case value_index:
        if constexpr (std::is_void_v<R>) {
          return;
        } else {
          return std::get<value_index>(std::move(state_));
        }
      case error_index: {
        const auto code = std::get<error_index>(state_);
        if (cancelled_) throw operation_cancelled{};
        if constexpr (expected_like<R>) {
          return make_resilience_error(std::type_identity<R>{}, code, retry_after_);
        } else {
          if (code.category() == resilience_category()) {
            if (rejected_by_ != nullptr) throw rejected(code, retry_after_, *rejected_by_, key);
            throw rejected(code, retry_after_);
          }
          throw std::system_error(code);
        }
      }
      default:
        std::rethrow_exception(std::get<exception_index>(state_));
    }
  }

 private:
  call_outcome() = default;
  // The error code comes first so that a fresh outcome needs no default-constructible R.
  static constexpr std::size_t error_index = 0, value_index = 1, exception_index = 2;
  std::variant<std::error_code, value_type, std::exception_ptr> state_;
  std::optional<clock::duration> retry_after_;
  std::shared_ptr<const std::string> rejected_by_;  // only rejections: one copy on that path
  bool cancelled_ = false;
};

template <class T>
struct is_outcome : std::false_type {};
template <class R>
struct is_outcome<call_outcome<R>> : std::true_type {};

/// weft::outcome<T> (from when_all_settled and friends) as a resilience outcome.
template <class T>
call_outcome<T> from_weft(weft::outcome<T>&& o) {
  if (o.has_error()) return call_outcome<T>::from_exception(o.error());
  if constexpr (std::is_void_v<T>) {
    return call_outcome<T>::success();
  } else {
    return call_outcome<T>::success(std::move(o).value());
  }
}

}  // namespace weft::resilience
