// weft::outcome<T>: a value or the exception that took its place.
//
// Thread safety: a value type: distinct objects may be used from different threads, one object is
// not synchronised.
//
// Cancellation: nothing here suspends.
#pragma once

#include <exception>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace weft {

/// What a child of a combinator produced: its value, or the exception it threw. Returned by
/// when_all_settled and when_any; resilience predicates inspect it.
///
///     auto [a, b] = co_await weft::when_all_settled(fetch(x), fetch(y));
///     if (a.has_value()) use(a.value()); else log(a.error());
///
/// value() on an outcome that holds an exception rethrows it; error() on one that holds a value
/// returns a null exception_ptr. Move-only types work; value() && moves out.
template <class T>
class outcome {
 public:
  explicit outcome(T value) noexcept(std::is_nothrow_move_constructible_v<T>)
      : state_(std::in_place_index<0>, std::move(value)) {}
  explicit outcome(std::exception_ptr error) : state_(std::in_place_index<1>, error) {
    if (!error) throw std::invalid_argument("weft::outcome: a null exception_ptr is no error");
  }

  [[nodiscard]] bool has_value() const noexcept { return state_.index() == 0; }
  [[nodiscard]] bool has_error() const noexcept { return state_.index() == 1; }

  T& value() & {
    rethrow_if_error();
    return std::get<0>(state_);
  }
  const T& value() const& {
    rethrow_if_error();
    return std::get<0>(state_);
  }
  T&& value() && {
    rethrow_if_error();
    return std::get<0>(std::move(state_));
  }
  [[nodiscard]] std::exception_ptr error() const noexcept {
    return has_error() ? std::get<1>(state_) : std::exception_ptr{};
  }

 private:
  void rethrow_if_error() const {
    if (has_error()) std::rethrow_exception(std::get<1>(state_));
  }
  std::variant<T, std::exception_ptr> state_;
};

/// A void child's outcome: done, or the exception it threw.
template <>
class outcome<void> {
 public:
  outcome() noexcept = default;
  explicit outcome(std::exception_ptr error) : error_(std::move(error)) {
    if (!error_) throw std::invalid_argument("weft::outcome: a null exception_ptr is no error");
  }
  [[nodiscard]] bool has_value() const noexcept { return !error_; }
  [[nodiscard]] bool has_error() const noexcept { return static_cast<bool>(error_); }
  void value() const {
    if (error_) std::rethrow_exception(error_);
  }
  [[nodiscard]] std::exception_ptr error() const noexcept { return error_; }

 private:
  std::exception_ptr error_;
};

}  // namespace weft
