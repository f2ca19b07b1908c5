// weft::resilience::any_pipeline<R>: a pipeline behind a handle whose type names only the result
// type, so that a class can keep one as a member without spelling its layers' types
// (pipeline<time_limiter, retry, circuit_breaker&, bulkhead>), which class template argument deduction
// cannot do for a data member and which changes whenever a layer is added.
//
// Thread safety: execute() may be called from any number of tasks on any workers at once, as the
// pipeline's own (all weft layers may be shared between workers). The handle itself is not
// synchronised: build, move or assign it while no other thread uses it (a move does not disturb
// calls already running).
//
// Cancellation: the handle adds no suspension point: a call is cancelled through its layers as with
// pipeline::execute (pipeline.hpp). execute() returns a weft::task, so a caller already cancelled
// when it awaits one gets weft::operation_cancelled thrown, whatever the result type.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <weft/resilience/context.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/task.hpp>

namespace weft::resilience {

template <class R, bool IdempotentOnly>
class basic_any_pipeline;

namespace detail {

/// An operation whose task yields X, its callable's type erased, so that one instantiation of a
/// pipeline's chain serves every callable. A callable of up to inline_size bytes that moves
/// without throwing is kept inline (no allocation per call); a larger one goes to the heap.
/// Copyable, because timeout's on_timeout::detach copies the operation into the detached task;
/// the copy of a callable that is not copyable fails when called, with std::logic_error as the
/// outcome (what detach mode answers for such an operation in a plain pipeline).
template <class X>
class erased_op {
 public:
  static constexpr std::size_t inline_size = 4 * sizeof(void*);

  template <class F>
  requires(!std::is_same_v<F, erased_op>)
  explicit erased_op(F f) {
    if constexpr (fits_inline<F>) {
      ::new (static_cast<void*>(storage_)) F(std::move(f));
      ops_ = &table<inline_kind<F>, F>;
    } else {
      ::new (static_cast<void*>(storage_)) F*(new F(std::move(f)));
      ops_ = &table<heap_kind<F>, F>;
    }
  }
  erased_op(erased_op&& other) noexcept : ops_(std::exchange(other.ops_, nullptr)) {
    if (ops_ != nullptr) ops_->relocate(other.storage_, storage_);
  }
  erased_op(const erased_op& other) {
    if (other.ops_ == nullptr) return;
    if (other.ops_->copy == nullptr) {
      ops_ = &not_copyable;
      return;
    }
    other.ops_->copy(other.storage_, storage_);
    ops_ = other.ops_;
  }
  erased_op& operator=(const erased_op&) = delete;
  erased_op& operator=(erased_op&&) = delete;
  ~erased_op() {
    if (ops_ != nullptr) ops_->destroy(storage_);
  }

  task<X> operator()(resilience_context& ctx) { return ops_->call(storage_, ctx); }

 private:
  using copy_fn = void (*)(const void* from, void* to);
  struct ops {
    task<X> (*call)(void* self, resilience_context& ctx);
    void (*relocate)(void* from, void* to) noexcept;  // moves into raw `to`, destroys `from`
    copy_fn copy;                                     // null: the callable is not copyable
    void (*destroy)(void* self) noexcept;
  };

  template <class F>
  static constexpr bool fits_inline =
      sizeof(F) <= inline_size &&
      alignof(F) <= alignof(std::max_align_t) && std::is_nothrow_move_constructible_v<F>;

  // The callable in the storage itself.
  template <class F>
  struct inline_kind {
    static F& object(void* p) noexcept { return *std::launder(static_cast<F*>(p)); }
    static task<X> call(void* p, resilience_context& ctx) { return invoke_op(object(p), ctx); }
    static void relocate(void* from, void* to) noexcept {
      ::new (to) F(std::move(object(from)));
      object(from).~F();
    }
    static void copy(const void* from, void* to) {
      ::new (to) F(*std::launder(static_cast<const F*>(from)));
    }
    static void destroy(void* p) noexcept { object(p).~F(); }
  };
  // The storage holds a pointer to the callable.
  template <class F>
  struct heap_kind {
    static F* object(const void* p) noexcept { return *std::launder(static_cast<F* const*>(p)); }
    static task<X> call(void* p, resilience_context& ctx) { return invoke_op(*object(p), ctx); }
    static void relocate(void* from, void* to) noexcept { ::new (to) F*(object(from)); }
    static void copy(const void* from, void* to) { ::new (to) F*(new F(*object(from))); }
    static void destroy(void* p) noexcept { delete object(p); }
  };

  template <class Kind, class F>
  static constexpr copy_fn copier() noexcept {
    if constexpr (std::is_copy_constructible_v<F>) {
      return &Kind::copy;
    } else {
      return nullptr;
    }
  }
  template <class Kind, class F>
  static constexpr ops table = {&Kind::call, &Kind::relocate, copier<Kind, F>(), &Kind::destroy};

  // What a copy of a callable that is not copyable does: fail when called.
  static task<X> refuse(void*, resilience_context&) {
    throw std::logic_error(
        "weft::resilience: a layer (timeout's on_timeout::detach) needed a copy of the operation, "
        "and the callable given to any_pipeline::execute is not copyable; make it copyable or use "
        "on_timeout::await");
  }
  static void nothing(void*, void*) noexcept {}
  static void nothing(void*) noexcept {}
  static constexpr ops not_copyable = {&refuse, &nothing, nullptr, &nothing};

  alignas(std::max_align_t) std::byte storage_[inline_size];
  const ops* ops_ = nullptr;
};

/// What an any_pipeline calls: its pipeline, through one virtual call per execute().
template <class R, bool IdempotentOnly>
class any_pipeline_base {
 public:
  template <class X>
  using op = std::conditional_t<IdempotentOnly, idempotent_t<erased_op<X>>, erased_op<X>>;

  virtual ~any_pipeline_base() = default;
  /// `ctx` null: a fresh context, as pipeline::execute(op).
  virtual task<R> execute_value(op<R> o, resilience_context* ctx) = 0;
  virtual task<call_outcome<R>> execute_outcome(op<call_outcome<R>> o, resilience_context* ctx) = 0;
  virtual telemetry& observers() noexcept = 0;
};

struct from_layers_t {};

/// A pipeline held as `Slot` says (by value, by reference or through a shared_ptr; see slot).
template <class R, bool IdempotentOnly, class Slot>
class any_pipeline_model final : public any_pipeline_base<R, IdempotentOnly> {
  using pipe_type = typename slot_layer<Slot>::type;
  template <class X>
  using op = typename any_pipeline_base<R, IdempotentOnly>::template op<X>;
  static_assert(IdempotentOnly || !pipe_type::requires_idempotent,
                "weft::resilience::any_pipeline: this pipeline runs copies of a call (a hedge); "
                "hold it in an any_idempotent_pipeline<R>, whose execute() takes only operations "
                "wrapped with idempotent()");

 public:
  template <class P>
  explicit any_pipeline_model(P&& p) : held_{std::forward<P>(p)} {}
  template <class... L>
  explicit any_pipeline_model(from_layers_t, L&&... layers)
      : held_{pipe_type(std::forward<L>(layers)...)} {}

  task<R> execute_value(op<R> o, resilience_context* ctx) override {
    return run(std::move(o), ctx);
  }
  task<call_outcome<R>> execute_outcome(op<call_outcome<R>> o, resilience_context* ctx) override {
    return run(std::move(o), ctx);
  }
  telemetry& observers() noexcept override { return held_.get().observers(); }

 private:
  template <class Op>
  auto run(Op o, resilience_context* ctx) {
    if (ctx != nullptr) return held_.get().execute(*ctx, std::move(o));
    return held_.get().execute(std::move(o));
  }

  slot<Slot> held_;
};

/// Whether a basic_any_pipeline<R, IdempotentOnly> may hold a `Pipe`: an any_pipeline whose
/// execute() takes any operation cannot hold a pipeline that runs copies of a call (a hedge).
template <class Pipe, bool IdempotentOnly>
concept any_pipeline_can_hold = IdempotentOnly || !Pipe::requires_idempotent;

template <class T>
inline constexpr bool is_pipeline_v = false;
template <class... S>
inline constexpr bool is_pipeline_v<pipeline<S...>> = true;
template <class... S>
inline constexpr bool is_pipeline_v<std::shared_ptr<pipeline<S...>>> = true;
template <class R, bool I>
inline constexpr bool is_pipeline_v<basic_any_pipeline<R, I>> = true;

}  // namespace detail

/// A pipeline for operations of result type R, whatever its layers: what a class keeps as a
/// member, built in its constructor and called from any task.
///
///     class user_client {
///      public:
///       explicit user_client(user_service& users)
///           : users_(users),
///             pipe_{time_limiter{2s}, retry{}, breaker_, bulkhead{{.max_concurrent = 8}}} {}
///       weft::task<user> get(int id) {
///         return pipe_.execute([this, id] { return users_.get(id); });
///       }
///      private:
///       user_service& users_;
///       circuit_breaker breaker_;           // before pipe_: it refers to it
///       any_pipeline<user> pipe_;           // no layer types spelled
///     };
///
/// Built from layers (as pipeline{...} is: an lvalue layer is held by reference, a shared_ptr
/// shared, an rvalue owned), from a pipeline rvalue (owned: `any_pipeline<int> p =
/// pipeline<>::standard();`), from a pipeline lvalue (referred to; it must outlive this) or from
/// a shared_ptr to one. execute() takes operations returning task<R> or task<call_outcome<R>> (for an
/// expected-like result, R is the expected type itself) and behaves exactly as the pipeline's.
///
/// Cost: one allocation when built; per call, one virtual call, one indirect call per attempt, and
/// no allocation for callables of up to 4 pointers (a larger one is moved to the heap).
/// Move-only; moving it never disturbs calls in flight (the pipeline stays where it was built).
/// A default-constructed or moved-from any_pipeline is empty: execute() throws std::logic_error.
/// A pipeline with a hedge needs any_idempotent_pipeline<R> (another type does not compile).
/// Thread safety: that of its layers (all weft layers may be shared between workers).
template <class R, bool IdempotentOnly = false>
class basic_any_pipeline {
  static_assert(!detail::unwrap_outcome<R>::is_outcome,
                "weft::resilience::any_pipeline<R>: R is the operation's result type; "
                "any_pipeline<T> accepts operations returning task<call_outcome<T>> as well");
  using base = detail::any_pipeline_base<R, IdempotentOnly>;
  template <class Slot>
  using model = detail::any_pipeline_model<R, IdempotentOnly, Slot>;

 public:
  /// True when execute() accepts only operations wrapped with idempotent().
  static constexpr bool requires_idempotent = IdempotentOnly;

  /// Empty; assign a pipeline to it before calling execute().
  basic_any_pipeline() noexcept = default;
  /// Owns `p` (moved to the heap once).
  template <class... S>
  requires detail::any_pipeline_can_hold<pipeline<S...>, IdempotentOnly>
  basic_any_pipeline(pipeline<S...>&& p)  // NOLINT(google-explicit-constructor): owns it
      : impl_(std::make_unique<model<pipeline<S...>>>(std::move(p))) {}
  /// Refers to `p`, which must outlive this any_pipeline and its calls.
  template <class... S>
  requires detail::any_pipeline_can_hold<pipeline<S...>, IdempotentOnly>
  explicit basic_any_pipeline(pipeline<S...>& p)
      : impl_(std::make_unique<model<pipeline<S...>&>>(p)) {}
  /// Shares `p`.
  template <class... S>
  requires detail::any_pipeline_can_hold<pipeline<S...>, IdempotentOnly>
  explicit basic_any_pipeline(std::shared_ptr<pipeline<S...>> p)
      : impl_(std::make_unique<model<std::shared_ptr<pipeline<S...>>>>(std::move(p))) {}
  /// Builds pipeline{layers...} and owns it.
  template <class... L>
  requires(sizeof...(L) > 0 &&
           !(sizeof...(L) == 1 && (detail::is_pipeline_v<std::remove_cvref_t<L>> || ...)) &&
           detail::any_pipeline_can_hold<pipeline<typename detail::slot_type<L>::type...>,
                                         IdempotentOnly>)
  explicit basic_any_pipeline(L&&... layers)
      : impl_(std::make_unique<model<pipeline<typename detail::slot_type<L>::type...>>>(
            detail::from_layers_t{}, std::forward<L>(layers)...)) {}

  basic_any_pipeline(basic_any_pipeline&&) noexcept = default;
  basic_any_pipeline& operator=(basic_any_pipeline&&) noexcept = default;

  /// Runs `op` (callable as op() or op(resilience_context&), returning task<R> or
  /// task<call_outcome<R>>) through the pipeline with a fresh context carrying the caller's
  /// cancellation; returns what pipeline::execute returns.
  template <class F>
  requires(!IdempotentOnly || idempotent_operation<F>)
  task<typename detail::op_traits<F>::caller_type> execute(F op) {
    return dispatch(std::move(op), nullptr);
  }
  /// Runs `op` with the caller's context (see pipeline::execute(ctx, op)); `ctx` must outlive the
  /// call.
  template <class F>
  requires(!IdempotentOnly || idempotent_operation<F>)
  task<typename detail::op_traits<F>::caller_type> execute(resilience_context& ctx, F op) {
    return dispatch(std::move(op), &ctx);
  }

  /// The pipeline's name and metrics sink (see pipeline::observers()).
  [[nodiscard]] telemetry& observers() { return held().observers(); }

  /// False when empty (default-constructed or moved from).
  explicit operator bool() const noexcept { return impl_ != nullptr; }

 private:
  base& held() const {
    if (impl_ == nullptr) {
      throw std::logic_error(
          "weft::resilience::any_pipeline: used while empty (default-constructed or moved from)");
    }
    return *impl_;
  }

  template <class F>
  auto dispatch(F op, resilience_context* ctx) {
    using X = typename detail::op_traits<F>::value;
    static_assert(std::is_same_v<X, R> || std::is_same_v<X, call_outcome<R>>,
                  "weft::resilience::any_pipeline<R>: the operation must return task<R> or "
                  "task<call_outcome<R>> for the R the any_pipeline was declared with");
    base& b = held();
    if constexpr (std::is_same_v<X, R>) {
      return b.execute_value(wrap<X>(std::move(op)), ctx);
    } else {
      return b.execute_outcome(wrap<X>(std::move(op)), ctx);
    }
  }

  template <class X, class F>
  static typename base::template op<X> wrap(F op) {
    if constexpr (IdempotentOnly) {
      return idempotent_t<detail::erased_op<X>>{detail::erased_op<X>{std::move(op)}};
    } else {
      return detail::erased_op<X>{std::move(op)};
    }
  }

  std::unique_ptr<base> impl_;
};

/// The pipeline type a class holds as a member; see basic_any_pipeline.
template <class R>
using any_pipeline = basic_any_pipeline<R, false>;

/// An any_pipeline whose pipeline may start copies of a call (a hedge, as in
/// pipeline<>::hedged()): execute() takes only operations wrapped with idempotent().
///
///     any_idempotent_pipeline<row> reads_ = pipeline<>::hedged();
///     row r = co_await reads_.execute(idempotent([&] { return db.get(id); }));
template <class R>
using any_idempotent_pipeline = basic_any_pipeline<R, true>;

}  // namespace weft::resilience
