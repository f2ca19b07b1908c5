// Where each suspended frame waits: every co_await in a weft coroutine goes through the promise's
// await_transform, which records the co_await's source location and the awaiter (with a small id
// for its type) in the frame's promise, so that dump_tasks can walk a task's await chain and ask
// the leaf awaiter, in words, what it waits on.
#pragma once

#include <coroutine>
#include <cstdint>
#include <source_location>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <weft/detail/config.hpp>

namespace weft {

/// What a suspended task waits on, as a task dump shows it. An awaiter says it in words by
/// defining a const member `describe_await`:
///
///     struct my_awaiter {
///       void describe_await(weft::await_description& d) const { d.what = "my queue pop"; }
///       ...
///     };
///
/// It is called while the runtime's workers are paused (see runtime::dump_tasks), so it may read
/// the awaiter's state, but must not block, allocate beyond `what`, or touch the task. Awaiters
/// without it are shown by their type's name.
struct await_description {
  /// The runtime's clock at the dump (nanoseconds, as clock::time_point), for "sleep until +1 s".
  std::int64_t now_ns = 0;
  /// The co_await being described.
  std::source_location where{};
  /// Filled by the awaiter: what the task waits on ("channel recv", "mutex lock (3 ahead)").
  std::string what;
  /// Set by weft's own awaiters that wait on another frame (an awaited task, a generator's
  /// body): the dump follows it and shows that frame's co_await site next in the chain.
  void* child_frame = nullptr;
};

namespace detail {

using describe_fn = void (*)(const void* awaiter, await_description& out);

/// Gives `fn` a small id (1..) for the await slot's packed word; 0 if the table is full.
std::uint16_t register_describer(describe_fn fn) noexcept;
/// The function registered as `id`, or null.
describe_fn describer(std::uint16_t id) noexcept;

/// "weft::detail::sleep_awaiter" from the compiler's spelling of a template argument.
std::string_view type_name_from(std::string_view pretty, std::string_view marker) noexcept;

template <class A>
std::string_view type_name() noexcept {
  return type_name_from(__PRETTY_FUNCTION__, "A = ");
}

/// "sleep until +1.250 s": a deadline relative to the dump's clock reading.
std::string describe_deadline(const char* what, std::int64_t deadline_ns, std::int64_t now_ns);

/// What `inner` would say (for awaiters that wrap another one).
template <class A>
void describe_inner(const A& inner, await_description& out);

template <class A>
void describe_thunk(const void* awaiter, await_description& out) {
  const A& a = *static_cast<const A*>(awaiter);
  if constexpr (requires { a.describe_await(out); }) {
    a.describe_await(out);
  } else {
    out.what = type_name<A>();
  }
}

template <class A>
void describe_inner(const A& inner, await_description& out) {
  describe_thunk<A>(&inner, out);
}

template <class A>
std::uint16_t describer_id() noexcept {
  static const std::uint16_t id = register_describer(&describe_thunk<A>);
  return id;
}

/// The await slot of a frame's promise: 16 bytes. `awaiter` packs the address of the awaiter the
/// frame is suspended on (low 48 bits) with its type's describer id (high 16); zero while the
/// frame runs, before it first suspends and after its last resumption. `where` is the co_await
/// expression's location (a pointer to static data).
struct await_slot {
#if WEFT_INTROSPECTION
  std::uintptr_t awaiter = 0;
  std::source_location where{};

  template <class A>
  void enter(const A* a, const std::source_location& at) noexcept {
    const auto address = reinterpret_cast<std::uintptr_t>(a);
    // User-space addresses fit 48 bits on x86-64 and arm64 (4- and 5-level paging alike unless
    // a mapping asked for more); one that does not is recorded as "unknown" rather than wrong.
    awaiter = (address >> 48) == 0 ? address | (std::uintptr_t{describer_id<A>()} << 48) : 0;
    where = at;
  }
  void leave() noexcept {
    awaiter = 0;
  }
  [[nodiscard]] const void* address() const noexcept {
    return reinterpret_cast<const void*>(awaiter & ((std::uintptr_t{1} << 48) - 1));
  }
  [[nodiscard]] std::uint16_t type() const noexcept {
    return static_cast<std::uint16_t>(awaiter >> 48);
  }
#endif
};

template <class A>
decltype(auto) awaiter_of(A&& a) {
  if constexpr (requires { std::forward<A>(a).operator co_await(); }) {
    return std::forward<A>(a).operator co_await();
  } else if constexpr (requires { operator co_await(std::forward<A>(a)); }) {
    return operator co_await(std::forward<A>(a));
  } else {
    return std::forward<A>(a);
  }
}

/// What await_transform returns: forwards to the real awaiter (held by reference when the
/// co_await operand is itself the awaiter, by value when operator co_await made it), records the
/// suspension in the slot on the way in and clears it on the way out.
template <class Awaiter>
class traced_awaiter {
  static constexpr bool by_reference = std::is_reference_v<Awaiter>;
  using stored = std::conditional_t<by_reference, std::remove_reference_t<Awaiter>*, Awaiter>;

 public:
  template <class A>
  traced_awaiter(await_slot& slot, A&& a, const std::source_location& at)
      : slot_(slot), inner_(make(std::forward<A>(a))) {
#if WEFT_INTROSPECTION
    slot.enter(&inner(), at);
#else
    (void)at;
#endif
  }
  traced_awaiter(const traced_awaiter&) = delete;
  traced_awaiter& operator=(const traced_awaiter&) = delete;

  decltype(auto) await_ready() {
    return inner().await_ready();
  }
  template <class Promise>
  decltype(auto) await_suspend(std::coroutine_handle<Promise> h) {
    return inner().await_suspend(h);
  }
  decltype(auto) await_resume() {
#if WEFT_INTROSPECTION
    slot_.leave();
#endif
    return inner().await_resume();
  }

 private:
  template <class A>
  static stored make(A&& a) {
    if constexpr (by_reference) {
      auto&& awaiter = awaiter_of(std::forward<A>(a));
      return std::addressof(awaiter);
    } else {
      return awaiter_of(std::forward<A>(a));
    }
  }
  auto& inner() noexcept {
    if constexpr (by_reference) {
      return *inner_;
    } else {
      return inner_;
    }
  }

  [[maybe_unused]] await_slot& slot_;
  stored inner_;
};

template <class A>
using traced_for = traced_awaiter<decltype(awaiter_of(std::declval<A>()))>;

}  // namespace detail
}  // namespace weft
