// weft::resilience::detail::pinned: the heap-held state behind a movable layer. Calls in flight
// keep pointers into a layer's state (permits, queued waiters, their coroutine frames' `this`),
// so the state stays put while the layer object that owns it moves: moving a layer never
// invalidates a call that is already running through it.
#pragma once

#include <cassert>
#include <memory>
#include <utility>  // std::in_place_t, std::forward

namespace weft::resilience::detail {

/// Owns a T on the heap, allocated once at construction; movable, not copyable. A moved-from
/// pinned owns nothing: the layer holding it may only be destroyed or assigned to.
template <class T>
class pinned {
 public:
  template <class... A>
  explicit pinned(std::in_place_t, A&&... args)
      : p_(std::make_unique<T>(std::forward<A>(args)...)) {}
  pinned(pinned&&) noexcept = default;
  pinned& operator=(pinned&&) noexcept = default;

  T& operator*() const noexcept {
    assert(p_ != nullptr && "weft::resilience: a layer was used after it was moved from");
    return *p_;
  }
  T* operator->() const noexcept { return &**this; }

 private:
  std::unique_ptr<T> p_;
};

}  // namespace weft::resilience::detail
