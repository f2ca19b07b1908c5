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

// Registered during static initialisation (a plain load at each co_await; a function-local
// static cost a guard check and a call, 3 % of ping_pong). A co_await that runs before this
// initialiser (in another static initialiser) reads 0: its awaiter is shown as unknown.
template <class A>
inline const std::uint16_t describer_id_v = register_describer(&describe_thunk<A>);

template <class A>
std::uint16_t describer_id() noexcept {
  return describer_id_v<A>;
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
  void enter(const A* a, std::source_location at) noexcept {
    // User-space addresses fit 48 bits on x86-64 and arm64 (with 5-level paging too, unless a
    // mapping asked for an address above 2^47: malloc and the stack never do); the dump masks
    // the id off.
    awaiter = reinterpret_cast<std::uintptr_t>(a) | (std::uintptr_t{describer_id<A>()} << 48);
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

#if WEFT_INTROSPECTION
/// What await_transform returns: forwards to the real awaiter, records the suspension in the
/// slot on the way in and clears it on the way out. When the co_await operand is itself the
/// awaiter, the wrapper holds only the slot (the awaiter's address is in it); when operator
/// co_await made the awaiter, the wrapper holds that by value.
/// traced_awaiter's copy of an awaiter that operator co_await made (nothing for one it refers
/// to). A struct of its own: a [[no_unique_address]] member may not be initialised in place from
/// a prvalue, and weft's awaiters cannot be moved once made.
template <class Awaiter, bool = std::is_reference_v<Awaiter>>
struct traced_storage {
  template <class X>
  explicit traced_storage(X&& x) : value(awaiter_of(std::forward<X>(x))) {}
  Awaiter value;
};
template <class Awaiter>
struct traced_storage<Awaiter, true> {
  template <class X>
  explicit traced_storage(X&&) noexcept {}
};

template <class Awaiter>
class traced_awaiter {
  static constexpr bool by_reference = std::is_reference_v<Awaiter>;
  using A = std::remove_reference_t<Awaiter>;

 public:
  template <class X>
  traced_awaiter(await_slot& slot, X&& x, std::source_location at)
      : slot_(slot), storage_(std::forward<X>(x)) {
    if constexpr (by_reference) {
      auto&& a = awaiter_of(std::forward<X>(x));  // the empty storage left x alone
      slot.enter(std::addressof(a), at);
    } else {
      slot.enter(&storage_.value, at);
    }
  }
  traced_awaiter(const traced_awaiter&) = delete;
  traced_awaiter& operator=(const traced_awaiter&) = delete;

  // An exception from await_ready or await_suspend leaves the frame running: the slot must not
  // go on pointing at the awaiter (a dump would read it after it is gone).
  decltype(auto) await_ready() {
    try {
      return inner().await_ready();
    } catch (...) {
      slot_.leave();
      throw;
    }
  }
  template <class Promise>
  decltype(auto) await_suspend(std::coroutine_handle<Promise> h) {
    try {
      return inner().await_suspend(h);
    } catch (...) {
      slot_.leave();
      throw;
    }
  }
  decltype(auto) await_resume() {
    A& a = inner();
    slot_.leave();
    return a.await_resume();
  }

 private:
  A& inner() noexcept {
    if constexpr (by_reference) {
      return *const_cast<A*>(static_cast<const A*>(slot_.address()));
    } else {
      return storage_.value;
    }
  }

  await_slot& slot_;
  [[no_unique_address]] traced_storage<Awaiter> storage_;
};

// What the wrapper adds to a frame when the operand is the awaiter itself: one reference.
struct traced_probe {};
static_assert(sizeof(traced_awaiter<traced_probe&>) == sizeof(void*));

template <class A>
using traced_for = traced_awaiter<decltype(awaiter_of(std::declval<A>()))>;
#endif

}  // namespace detail
}  // namespace weft
