// Cooperative cancellation: cancel_source requests it, cancel_token observes it, cancel_callback
// reacts to it. Non-allocating, thread-safe, and convertible from std::stop_token.
//
// Thread safety: cancel_source and cancel_token may be used concurrently from any thread. A
// cancel_callback's function runs on the thread that requests cancellation (or in its constructor),
// and its destructor waits for a run in progress on another thread.
//
// Cancellation: this is the mechanism, not a suspension point: nothing here suspends. A request is
// never withdrawn; callbacks run once, inside request_cancellation().
#pragma once

#include <concepts>
#include <new>
#include <stop_token>
#include <type_traits>
#include <utility>

#include <weft/detail/cancel_state.hpp>

namespace weft {

class cancel_token;

namespace detail {
struct token_access;
}  // namespace detail

/// Owns a cancellation state in place and requests cancellation on it.
///
///     weft::cancel_source source;
///     auto handle = weft::spawn(weft::with_cancellation(source.token(), serve()));
///     source.request_cancellation();  // serve()'s current or next suspension point throws
///
/// Not copyable or movable: tokens point into it, so it must outlive every token and callback.
/// Thread safety: every member may be called concurrently.
class cancel_source {
 public:
  cancel_source() noexcept = default;
  cancel_source(const cancel_source&) = delete;
  cancel_source& operator=(const cancel_source&) = delete;

  /// Requests cancellation and runs the registered callbacks on this thread. Returns true for the
  /// call that made the request, false if cancellation had been requested before.
  bool request_cancellation() noexcept { return state_.request_cancel(); }

  /// True once cancellation has been requested, and from then on.
  [[nodiscard]] bool is_cancellation_requested() const noexcept { return state_.is_cancelled(); }

  /// A token observing this source.
  [[nodiscard]] cancel_token token() const noexcept;

 private:
  friend struct detail::token_access;
  mutable detail::cancel_state state_;
};

/// Observes a cancel_source or a std::stop_token. A default-constructed token is never cancelled.
/// Copying is cheap (a pointer, or a std::stop_token's reference count).
class cancel_token {
 public:
  cancel_token() noexcept = default;

  /// Observes a std::stop_token, so callers can pass the tokens they already have.
  cancel_token(std::stop_token token) noexcept : stop_(std::move(token)) {}  // NOLINT: implicit

  /// True once cancellation has been requested on the source this token observes.
  [[nodiscard]] bool is_cancellation_requested() const noexcept {
    return (state_ != nullptr && state_->is_cancelled()) || stop_.stop_requested();
  }

  /// False for a token that can never be cancelled (a default one, or a stop_token without a
  /// source).
  [[nodiscard]] bool can_be_cancelled() const noexcept {
    return state_ != nullptr || stop_.stop_possible();
  }

  friend bool operator==(const cancel_token& a, const cancel_token& b) noexcept {
    return a.state_ == b.state_ && a.stop_ == b.stop_;
  }

 private:
  friend struct detail::token_access;
  explicit cancel_token(detail::cancel_state* state) noexcept : state_(state) {}
  detail::cancel_state* state_ = nullptr;
  std::stop_token stop_;
};

namespace detail {

/// A std::stop_callback<F> that may or may not be engaged. Hand-rolled instead of
/// std::optional because g++ 12 reports a false "may be used uninitialized" inside
/// std::optional<std::stop_callback> at -O2, which -Werror turns into a build failure.
template <class F>
class optional_stop_callback {
 public:
  optional_stop_callback() noexcept = default;
  optional_stop_callback(const optional_stop_callback&) = delete;
  optional_stop_callback& operator=(const optional_stop_callback&) = delete;
  ~optional_stop_callback() { reset(); }

  void emplace(const std::stop_token& token, F f) {
    reset();
    ::new (static_cast<void*>(storage_)) std::stop_callback<F>(token, std::move(f));
    engaged_ = true;
  }
  void reset() noexcept {
    if (engaged_) {
      std::launder(reinterpret_cast<std::stop_callback<F>*>(storage_))->~stop_callback();
      engaged_ = false;
    }
  }

 private:
  alignas(std::stop_callback<F>) unsigned char storage_[sizeof(std::stop_callback<F>)];
  bool engaged_ = false;
};

struct token_access {
  static cancel_state* state(const cancel_token& t) noexcept { return t.state_; }
  static const std::stop_token& stop(const cancel_token& t) noexcept { return t.stop_; }
  static cancel_token make(cancel_state* s) noexcept { return cancel_token{s}; }
  static cancel_state* state(const cancel_source& s) noexcept { return &s.state_; }
};
}  // namespace detail

inline cancel_token cancel_source::token() const noexcept {
  return detail::token_access::make(&state_);
}

/// Runs `f` once when cancellation is requested on `token`, on the requesting thread; runs it at
/// once, in the constructor, if cancellation was already requested.
///
///     weft::cancel_callback on_cancel{token, [&] { socket.abort(); }};
///
/// The destructor deregisters; if `f` is running on another thread at that moment, it waits for
/// `f` to return, so `f` never outlives the objects it refers to. `f` must not throw.
template <std::invocable F>
class cancel_callback {
 public:
  template <class G>
  requires std::constructible_from<F, G> cancel_callback(const cancel_token& token, G&& f)
      : f_(std::forward<G>(f)) {
    if (auto* s = detail::token_access::state(token); s != nullptr) {
      if (s->try_add(node_, &invoke, this)) {
        state_ = s;
      } else {
        f_();
      }
    } else if (detail::token_access::stop(token).stop_possible()) {
      stop_.emplace(detail::token_access::stop(token), forward_to{this});
    }
  }
  cancel_callback(const cancel_callback&) = delete;
  cancel_callback& operator=(const cancel_callback&) = delete;
  ~cancel_callback() {
    if (state_ != nullptr) state_->remove(node_);
  }

 private:
  struct forward_to {
    cancel_callback* self;
    void operator()() const noexcept { self->f_(); }
  };
  static void invoke(void* self) noexcept { static_cast<cancel_callback*>(self)->f_(); }

  F f_;
  detail::cancel_node node_;
  detail::cancel_state* state_ = nullptr;
  detail::optional_stop_callback<forward_to> stop_;
};

template <class F>
cancel_callback(const cancel_token&, F) -> cancel_callback<F>;

}  // namespace weft
