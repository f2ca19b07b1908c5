// weft::channel_closed: a send on a closed channel, with the value handed back.
//
// Thread safety: an exception type: distinct objects may be used from different threads, one object
// is not synchronised. take_value() moves the value out once.
//
// Cancellation: nothing here suspends. A cancelled send throws operation_cancelled, not this, and
// its value is destroyed unsent (see channel.hpp).
#pragma once

#include <memory>
#include <stdexcept>
#include <typeinfo>
#include <utility>

namespace weft {

/// Thrown by channel::send when the channel is (or gets) closed before the value was taken.
/// The value is not lost: take_value<T>() moves it out of the exception (once; move-only types
/// work, the exception stays copyable because it holds the value through a shared pointer).
///
///     try { co_await ch.send(std::move(msg)); }
///     catch (weft::channel_closed& e) { requeue(e.take_value<message>()); }
class channel_closed : public std::logic_error {
 public:
  channel_closed() : std::logic_error("weft::channel: send on a closed channel") {}
  template <class T>
  explicit channel_closed(T value)
      : std::logic_error("weft::channel: send on a closed channel"),
        value_(std::make_shared<T>(std::move(value))),
        type_(&typeid(T)) {}

  /// True while the exception still holds the unsent value.
  [[nodiscard]] bool has_value() const noexcept { return value_ != nullptr; }

  /// Moves the unsent value out. Throws std::logic_error if it was taken already or T is not
  /// the channel's value type.
  template <class T>
  T take_value() {
    if (!value_) throw std::logic_error("weft::channel_closed: the value was taken already");
    if (*type_ != typeid(T)) {
      throw std::logic_error(std::string{"weft::channel_closed: the value is not a "} +
                             typeid(T).name());
    }
    T v = std::move(*static_cast<T*>(value_.get()));
    value_.reset();
    return v;
  }

 private:
  std::shared_ptr<void> value_;
  const std::type_info* type_ = nullptr;
};

}  // namespace weft
