// weft::resilience::pipeline: layers composed around an operation, l1 outermost; the layer
// protocol; and execute(), which runs a callable returning task<T>, task<E> (expected-like) or
// task<call_outcome<T>> through the layers and hands the result back in the caller's type.
//
// Thread safety: one pipeline serves any number of calls from any workers at once: execute() only
// reads the layers, whose own rules apply (all weft layers may be shared between workers). Set up
// observers(), and move the pipeline, before its first call, not during one. The awaiter execute()
// returns belongs to one task and is awaited once; a context given to execute(ctx, op) belongs to
// that one call (the layers write it).
//
// Cancellation: a caller already cancelled when the call starts (the awaiting task's token, or
// ctx.token with execute(ctx, op)) gets cancelled at once and no layer runs. After that each layer
// observes both tokens where it waits (see its header). A cancelled call reaches a task<T> or
// task<E> caller as weft::operation_cancelled and a task<call_outcome<T>> caller as a cancelled
// outcome; converted to a weft::task and awaited by a cancelled caller, it throws
// operation_cancelled for every result type (the task does not start).
#pragma once

#include <concepts>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include <weft/cancel/awaiting_token.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/classify.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/events.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

struct standard_pipeline_options;
struct hedged_pipeline_options;

// The layer protocol. A layer is an object with
//
//     template <class R, class Next>
//     weft::task<call_outcome<R>> run(resilience_context& ctx, Next next);
//
// (any awaitable of call_outcome<R> will do as the return type), where `next(ctx)` returns an
// awaitable of call_outcome<R> that runs the rest of the pipeline (the
// inner layers, then the operation) once per co_await, and never throws for the operation's
// failures: they come back as outcomes. A layer may call next any number of times (retry), run
// several at once on copies of ctx (hedge; wrap them with as_task), or not at all (an open
// breaker returns call_outcome<R>::failure(errc::circuit_open, retry_after)). `next` is two pointers:
// copy it freely; it stays valid until run's task completes.

/// An operation marked idempotent: safe to run more than once, even at the same time. Layers
/// that start concurrent copies of a call (hedge) accept only operations wrapped this way, so the
/// promise is made at the call site and checked at compile time. Calling it calls the operation.
///
///     auto v = co_await hedged.execute(weft::resilience::idempotent([&] { return db.get(id); }));
template <class F>
struct idempotent_t {
  F fn;

  decltype(auto) operator()(resilience_context& ctx)
  requires std::is_invocable_v<F&, resilience_context&>
  {
    return fn(ctx);
  }
  decltype(auto) operator()()
  requires std::is_invocable_v<F&>
  {
    return fn();
  }
};

template <class F>
inline constexpr bool is_idempotent_v = false;
template <class F>
inline constexpr bool is_idempotent_v<idempotent_t<F>> = true;

/// True for operations wrapped with idempotent().
template <class F>
concept idempotent_operation = is_idempotent_v<std::remove_cvref_t<F>>;

/// Marks `op` (callable as op() or op(resilience_context&)) as safe to run more than once at the
/// same time; see idempotent_t. Wrapping twice is wrapping once.
template <class F>
auto idempotent(F op) {
  if constexpr (idempotent_operation<F>) {
    return op;
  } else {
    return idempotent_t<F>{std::move(op)};
  }
}

namespace detail {

template <class X>
struct task_value;
template <class X>
struct task_value<task<X>> {
  using type = X;
};

template <class F>
auto invoke_op(F& f, resilience_context& ctx) {
  if constexpr (std::is_invocable_v<F&, resilience_context&>) {
    return f(ctx);
  } else {
    static_assert(std::is_invocable_v<F&>,
                  "weft::resilience: the operation must be callable as f() or "
                  "f(resilience_context&)");
    return f();
  }
}

template <class F>
using op_task_t = decltype(invoke_op(std::declval<F&>(), std::declval<resilience_context&>()));

template <class X>
struct unwrap_outcome {
  using type = X;
  static constexpr bool is_outcome = false;
};
template <class R>
struct unwrap_outcome<call_outcome<R>> {
  using type = R;
  static constexpr bool is_outcome = true;
};

/// The task's value type X: the operation's result type R is X, or R for X = call_outcome<R>.
template <class F>
struct op_traits {
  static_assert(requires { typename task_value<op_task_t<F>>::type; },
                "weft::resilience: the operation must return weft::task<T>");
  using task_type = op_task_t<F>;
  using value = typename task_value<task_type>::type;
  using result = typename unwrap_outcome<value>::type;
  static constexpr bool returns_outcome = unwrap_outcome<value>::is_outcome;
  /// What execute() gives the caller: the operation's own type.
  using caller_type = value;
  /// Marked with idempotent() at the call site.
  static constexpr bool idempotent = is_idempotent_v<F>;
};

/// Whether a layer needs idempotent operations: it says so with
/// `static constexpr bool requires_idempotent = true;`.
template <class L>
inline constexpr bool layer_requires_idempotent = requires { requires L::requires_idempotent; };

/// The layer a pipeline slot type holds (L, L& or std::shared_ptr<L>).
template <class S>
struct slot_layer {
  using type = S;
};
template <class L>
struct slot_layer<L&> {
  using type = L;
};
template <class L>
struct slot_layer<std::shared_ptr<L>> {
  using type = L;
};

/// Awaits the operation's task and turns whatever it produced, thrown or returned, into an
/// call_outcome<R>, without a coroutine frame of its own.
template <class R, class X>
class op_awaiter {
 public:
  template <class F>
  op_awaiter(F& f, resilience_context& ctx) {
    try {
      auto t = invoke_op(f, ctx);
      auto h = t.release();
      if (!h) {
        ready_.emplace(call_outcome<R>::from_exception(std::make_exception_ptr(
            std::logic_error("weft::resilience: the operation returned an empty task"))));
      } else {
        inner_.emplace(h);
      }
    } catch (...) {
      ready_.emplace(call_outcome<R>::from_exception(std::current_exception()));
    }
  }

  /// A dump follows the operation's frame.
  void describe_await(weft::await_description& d) const {
    if (inner_) inner_->describe_await(d);
  }
  bool await_ready() const noexcept { return ready_.has_value(); }
  template <class Promise>
  decltype(auto) await_suspend(std::coroutine_handle<Promise> caller) {
    return inner_->await_suspend(caller);
  }
  call_outcome<R> await_resume() {
    if (ready_) return std::move(*ready_);
    try {
      if constexpr (std::is_same_v<X, call_outcome<R>>) {
        return inner_->await_resume();
      } else if constexpr (std::is_void_v<X>) {
        inner_->await_resume();
        return call_outcome<R>::success();
      } else {
        return call_outcome<R>::success(inner_->await_resume());
      }
    } catch (...) {
      return call_outcome<R>::from_exception(std::current_exception());
    }
  }

 private:
  std::optional<call_outcome<R>> ready_;
  std::optional<decltype(std::declval<task<X>>().operator co_await())> inner_;
};

/// Wraps an awaiter of call_outcome<R> so that an exception it throws (a task cancelled before
/// its first step: the runtime's rule) comes back as an outcome too.
template <class R, class A>
class outcome_awaiter {
 public:
  explicit outcome_awaiter(A&& inner) : inner_(std::move(inner)) {}
  void describe_await(weft::await_description& d) const {
    if constexpr (requires { inner_.describe_await(d); }) inner_.describe_await(d);
  }
  bool await_ready() { return inner_.await_ready(); }
  template <class Promise>
  decltype(auto) await_suspend(std::coroutine_handle<Promise> caller) {
    return inner_.await_suspend(caller);
  }
  call_outcome<R> await_resume() {
    try {
      return inner_.await_resume();
    } catch (...) {
      return call_outcome<R>::from_exception(std::current_exception());
    }
  }

 private:
  A inner_;
};

/// See outcome_awaiter.
template <class R, class A>
outcome_awaiter<R, A> as_outcome(A&& inner) {
  return outcome_awaiter<R, A>{std::move(inner)};
}

/// Converts to what `make()` returns by calling it, so that optional::emplace can build the
/// result in place (guaranteed elision through the conversion) instead of moving it.
template <class F>
struct built_by {
  F make;
  operator std::invoke_result_t<F&>() { return make(); }  // NOLINT: implicit on purpose
};
template <class F>
built_by(F) -> built_by<F>;

template <class A>
concept member_co_await = requires(A&& a) {
  std::move(a).operator co_await();
};

/// The awaiter of an awaitable A: A itself, or what its member operator co_await returns
/// (weft::task's).
template <class A>
struct awaiter_of {
  using type = A;
};
template <member_co_await A>
struct awaiter_of<A> {
  using type = decltype(std::declval<A&&>().operator co_await());
};

/// The inner call a layer's awaiter runs in place: the awaitable `next(ctx)` returned, and the
/// awaiter its operator co_await makes (weft::task's), built in place when the call starts.
template <class Awaitable>
class inner_call {
  static constexpr bool separate = member_co_await<Awaitable>;

 public:
  using awaiter = typename awaiter_of<Awaitable>::type;

  /// Builds the awaitable with `make()` (and its awaiter), with no move of either.
  template <class F>
  void start(F make) {
    awaitable_.emplace(built_by{std::move(make)});
    if constexpr (separate) {
      awaiter_.emplace(built_by{[this] { return std::move(*awaitable_).operator co_await(); }});
    }
  }
  [[nodiscard]] bool started() const noexcept { return awaitable_.has_value(); }
  awaiter& get() noexcept {
    if constexpr (separate) {
      return *awaiter_;
    } else {
      return *awaitable_;
    }
  }
  const awaiter& get() const noexcept {
    if constexpr (separate) {
      return *awaiter_;
    } else {
      return *awaitable_;
    }
  }
  /// A dump follows the inner call once it started.
  void describe_await(weft::await_description& d) const {
    if constexpr (requires(const awaiter& a) { a.describe_await(d); }) {
      if (started()) get().describe_await(d);
    }
  }

 private:
  std::optional<Awaitable> awaitable_;
  std::optional<std::conditional_t<separate, awaiter, char>> awaiter_;
};

/// One await_suspend result for an awaiter that may run one of several inner awaiters: with
/// Transfer, a coroutine handle (a bool's "suspended" becomes the no-op coroutine, "resume now"
/// the caller); otherwise a bool.
template <bool Transfer, class A, class Promise>
auto suspend_as(A& a, std::coroutine_handle<Promise> caller) {
  using r = decltype(a.await_suspend(caller));
  if constexpr (Transfer) {
    if constexpr (std::is_void_v<r>) {
      a.await_suspend(caller);
      return std::coroutine_handle<>{std::noop_coroutine()};
    } else if constexpr (std::is_same_v<r, bool>) {
      return a.await_suspend(caller) ? std::coroutine_handle<>{std::noop_coroutine()}
                                     : std::coroutine_handle<>{caller};
    } else {
      return std::coroutine_handle<>{a.await_suspend(caller)};
    }
  } else {
    if constexpr (std::is_void_v<r>) {
      a.await_suspend(caller);
      return true;
    } else {
      return static_cast<bool>(a.await_suspend(caller));
    }
  }
}

/// True when awaiter A's await_suspend, called from a Promise coroutine, transfers to a handle.
template <class A, class Promise>
inline constexpr bool transfers_v =
    std::is_convertible_v<decltype(std::declval<A&>().await_suspend(
                              std::declval<std::coroutine_handle<Promise>>())),
                          std::coroutine_handle<>>;

/// The inner call of a layer's awaiter that either runs it in place (the common case) or, when
/// the layer must wait first (a bulkhead's queue, a rate limiter's reservation), runs one of the
/// layer's coroutines instead: whichever was started is described, suspended and resumed.
template <class R, class Next>
class inner_or_slow {
  using awaitable = std::invoke_result_t<Next&, resilience_context&>;
  using awaiter = typename inner_call<awaitable>::awaiter;
  using slow_awaiter = decltype(std::declval<task<call_outcome<R>>>().operator co_await());

 public:
  /// Starts the inner call in place (make() returns next(ctx)); true if it is ready already.
  template <class F>
  bool start_inner(F make) {
    inner_.start(std::move(make));
    return inner_.get().await_ready();
  }
  /// Starts the layer's coroutine (make() returns its task); true if it is ready already.
  template <class F>
  bool start_slow(F make) {
    slow_.emplace(built_by{[&] { return make().operator co_await(); }});
    return slow_->await_ready();
  }
  [[nodiscard]] bool slow() const noexcept { return slow_.has_value(); }
  /// A dump follows whichever was started.
  void describe_await(weft::await_description& d) const {
    if (slow_) {
      slow_->describe_await(d);
    } else {
      inner_.describe_await(d);
    }
  }
  template <class Promise>
  auto await_suspend(std::coroutine_handle<Promise> caller) {
    constexpr bool transfer = transfers_v<awaiter, Promise> || transfers_v<slow_awaiter, Promise>;
    if (slow_) return suspend_as<transfer>(*slow_, caller);
    return suspend_as<transfer>(inner_.get(), caller);
  }
  call_outcome<R> await_resume() {
    if (slow_) return slow_->await_resume();
    return inner_.get().await_resume();
  }

 private:
  inner_call<awaitable> inner_;
  std::optional<slow_awaiter> slow_;
};

/// Holds a layer in a pipeline: by reference (an lvalue was given: stateful layers such as a
/// breaker are shared that way), through a shared_ptr, or by value.
template <class L>
struct slot {
  L layer;
  L& get() noexcept { return layer; }
};
template <class L>
struct slot<L&> {
  L* layer;
  explicit slot(L& l) noexcept : layer(&l) {}
  L& get() noexcept { return *layer; }
};
template <class L>
struct slot<std::shared_ptr<L>> {
  std::shared_ptr<L> layer;
  L& get() noexcept { return *layer; }
};

/// The end of the chain: calls the operation.
template <class R, class F>
struct op_tail {
  static constexpr bool idempotent = op_traits<F>::idempotent;
  F* op;
  auto operator()(resilience_context& ctx) const {
    return op_awaiter<R, typename op_traits<F>::value>(*op, ctx);
  }
};

/// The continuation handed to layer I: runs layer I+1, or the tail after the last.
template <class R, std::size_t I, class Layers, class Tail>
struct next_fn {
  /// Whether the operation at the end of the chain was marked idempotent.
  static constexpr bool idempotent = requires { requires Tail::idempotent; };
  Layers* layers;
  Tail tail;

  auto operator()(resilience_context& ctx) const {
    if constexpr (I == std::tuple_size_v<Layers>) {
      return tail(ctx);
    } else {
      return std::get<I>(*layers).get().template run<R>(
          ctx, next_fn<R, I + 1, Layers, Tail>{layers, tail});
    }
  }
};

template <class R>
verdict verdict_of(const call_outcome<R>& o) {
  return default_classify(view_of(o));
}

/// The outcome in the caller's type.
template <class Traits, class R>
typename Traits::caller_type handed_back(call_outcome<R>&& o, std::string_view key = {}) {
  if constexpr (Traits::returns_outcome) {
    return std::move(o);
  } else {
    return std::move(o).get(key);
  }
}

/// The whole call, as an awaiter in the caller's frame (no task of its own): the context, the
/// caller's cancellation, duration metrics, the layers, and the hand-back in the caller's type.
/// Movable until awaited; awaited once. `Store` holds the layers when the awaiter owns them
/// (execute(layer, op)); otherwise it is empty and `layers` points at the pipeline's.
template <class Layers, class F, class Store = char>
class execute_awaiter {
  using traits = op_traits<F>;
  using R = typename traits::result;
  using chain = next_fn<R, 0, Layers, op_tail<R, F>>;
  using awaitable = std::invoke_result_t<const chain&, resilience_context&>;
  using awaiter = typename inner_call<awaitable>::awaiter;

 public:
  execute_awaiter(Layers* layers, F op, resilience_context* given, const telemetry* tel)
      : layers_(layers), op_(std::move(op)), given_(given), tel_(tel) {}
  execute_awaiter(Store store, F op) requires(!std::is_same_v<Store, char>)
      : store_(std::move(store)), op_(std::move(op)) {}
  execute_awaiter(execute_awaiter&& o) noexcept(
      std::is_nothrow_move_constructible_v<F>&& std::is_nothrow_move_constructible_v<Store>)
      : store_(std::move(o.store_)),
        layers_(o.layers_),
        op_(std::move(o.op_)),
        given_(o.given_),
        tel_(o.tel_) {}
  execute_awaiter& operator=(const execute_awaiter&) = delete;

  /// The call as a task of its own, for code that needs one (returns a task, stores one): the
  /// awaiter moves into the task's frame.
  operator task<typename traits::caller_type>() && {  // NOLINT: implicit on purpose
    return into_task(std::move(*this));
  }

  /// A dump follows the first layer (or the operation).
  void describe_await(weft::await_description& d) const { inner_.describe_await(d); }
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  auto await_suspend(std::coroutine_handle<Promise> caller) {
    using inner_suspend = decltype(std::declval<awaiter&>().await_suspend(caller));
    constexpr bool transfer = std::is_convertible_v<inner_suspend, std::coroutine_handle<>>;
    using result = std::conditional_t<transfer, std::coroutine_handle<>, bool>;
    if (awaited_) throw std::logic_error("weft::resilience: an execute() awaited twice");
    awaited_ = true;
    if constexpr (!std::is_same_v<Store, char>) layers_ = &store_;
    ctx_ = given_ != nullptr ? given_ : &local_;
    if (given_ == nullptr) local_.token = awaiting_token(caller);
    if (tel_ != nullptr) {
      if (ctx_->pipeline.empty()) ctx_->pipeline = tel_->name();
      sink_ = tel_->sink();
      if (sink_ != nullptr) [[unlikely]]
        started_ = clock::now();
    }
    // A caller cancelled before the pipeline starts gets cancelled at once: no layer runs, no
    // fallback is taken.
    if (ctx_->token.is_cancellation_requested()) [[unlikely]] {
      return result(resume_now<transfer>(caller));
    }
    inner_.start([this] { return chain{layers_, {&op_}}(*ctx_); });
    if (inner_.get().await_ready()) return result(resume_now<transfer>(caller));
    if constexpr (std::is_void_v<inner_suspend>) {
      inner_.get().await_suspend(caller);
      return true;
    } else {
      return result(inner_.get().await_suspend(caller));
    }
  }
  typename traits::caller_type await_resume() {
    if (!started()) return handed_back<traits>(call_outcome<R>::cancelled());
    call_outcome<R> o = inner_.get().await_resume();
    if (sink_ != nullptr) [[unlikely]] {
      sink_->record_pipeline(*ctx_, clock::now() - started_, verdict_of(o));
    }
    return handed_back<traits>(std::move(o), ctx_->key);
  }

 private:
  static task<typename traits::caller_type> into_task(execute_awaiter a) {
    if constexpr (std::is_void_v<typename traits::caller_type>) {
      co_await std::move(a);
    } else {
      co_return co_await std::move(a);
    }
  }
  template <bool Transfer>
  static auto resume_now(std::coroutine_handle<> caller) noexcept {
    if constexpr (Transfer) {
      return caller;  // symmetric transfer back to the caller: it resumes at once
    } else {
      return false;
    }
  }
  bool started() const noexcept { return inner_.started(); }

  [[no_unique_address]] Store store_{};
  Layers* layers_ = nullptr;
  F op_;
  resilience_context* given_ = nullptr;
  const telemetry* tel_ = nullptr;
  resilience_context* ctx_ = nullptr;
  metrics_sink* sink_ = nullptr;
  clock::time_point started_{};
  bool awaited_ = false;
  resilience_context local_;
  inner_call<awaitable> inner_;
};

}  // namespace detail

/// True when `next`, a layer's continuation, ends in an operation marked idempotent(). A layer
/// that runs copies of a call at the same time constrains its run() with it.
template <class Next>
concept idempotent_continuation = requires { requires Next::idempotent; };

/// Adapts `next` (a layer's continuation) to a task, for layers that start attempts as child
/// tasks (hedge) or need a task to wrap (timeout).
template <class R, class Next>
task<call_outcome<R>> as_task(Next next, resilience_context ctx) {
  co_return co_await next(ctx);
}

/// Layers composed around an operation, l1 outermost (as in Polly and Tower).
///
///     weft::resilience::circuit_breaker breaker{{.window = window::count(20)}};
///     weft::resilience::pipeline pipe{time_limiter{2s}, retry{}, breaker,
///     bulkhead{{.max_concurrent = 8}}}; int v = co_await pipe.execute([&] { return
///     backend.get(key); });
///
/// An lvalue layer is held by reference (share one breaker between pipelines), a shared_ptr by
/// sharing, anything else by value (moved in; docs/resilience.md lists the movable layers). The
/// pipeline must outlive the calls that run through it, and stay where it is while they run: it
/// may be moved (returned, stored) before its first call, not during one. To keep one as a class
/// member without spelling its type, use any_pipeline<R> (<weft/resilience/any_pipeline.hpp>).
/// execute() returns an awaiter that runs the call in the awaiting task's frame (no task of its
/// own); it converts to a weft::task where one is needed, and spawn/block_on take it as they take
/// a task; it is awaited once (again: std::logic_error). Awaiting it gives the operation's own
/// type: for task<T>, T (a rejection throws `rejected`, an exception propagates); for an
/// expected-like task<E>, E (rejections are injected with make_resilience_error); for
/// task<call_outcome<T>>, the outcome itself (nothing throws). Thread safety: the layers' own
/// (all weft layers may be shared between workers).
template <class... Slots>
class pipeline {
 public:
  template <class... L>
  requires(sizeof...(L) == sizeof...(Slots))
  explicit pipeline(L&&... layers) : layers_(detail::slot<Slots>{std::forward<L>(layers)}...) {}

  /// True when a layer (a hedge) runs copies of a call at the same time: then execute() accepts
  /// only operations wrapped with idempotent(), and any other does not compile.
  static constexpr bool requires_idempotent =
      (detail::layer_requires_idempotent<typename detail::slot_layer<Slots>::type> || ...);

  /// Runs `op` (callable as op() or op(resilience_context&), returning a weft::task) through the
  /// layers with a fresh context carrying the caller's cancellation.
  template <class F>
  requires(!requires_idempotent || idempotent_operation<F>)
  auto execute(F op) {
    return detail::execute_awaiter<decltype(layers_), F>{&layers_, std::move(op), nullptr,
                                                         &telemetry_};
  }
  /// Runs `op` with the caller's context (its deadline, key and properties are honoured and its
  /// token is the cancellation the layers observe). `ctx` must outlive the call.
  template <class F>
  requires(!requires_idempotent || idempotent_operation<F>)
  auto execute(resilience_context& ctx, F op) {
    return detail::execute_awaiter<decltype(layers_), F>{&layers_, std::move(op), &ctx,
                                                         &telemetry_};
  }

  /// As a layer inside another pipeline (returns the first layer's awaitable).
  template <class R, class Next>
  auto run(resilience_context& ctx, Next next) {
    return detail::next_fn<R, 0, decltype(layers_), Next>{&layers_, next}(ctx);
  }

  /// The pipeline's name (events and metrics carry it) and its metrics sink for
  /// weft.resilience.pipeline.duration.
  [[nodiscard]] telemetry& observers() noexcept { return telemetry_; }

  template <std::size_t I>
  auto& layer() noexcept {
    return std::get<I>(layers_).get();
  }

  /// the standard pipeline (docs/resilience-rules.md "Pipelines and ordering") (include
  /// <weft/resilience/standard_pipeline.hpp>): `auto p = pipeline<>::standard();`
  template <class Options = standard_pipeline_options>
  requires(sizeof...(Slots) == 0)
  static auto standard(Options options = {}) {
    return make_standard_pipeline(std::move(options));
  }
  /// the hedged pipeline (docs/resilience-rules.md): `auto p = pipeline<>::hedged();`
  template <class Options = hedged_pipeline_options>
  requires(sizeof...(Slots) == 0)
  static auto hedged(Options options = {}) {
    return make_hedged_pipeline(std::move(options));
  }

 private:
  std::tuple<detail::slot<Slots>...> layers_;
  telemetry telemetry_;
};

namespace detail {
template <class L>
struct slot_type {
  using type = std::remove_cvref_t<L>;
};
template <class L>
requires std::is_lvalue_reference_v<L>
struct slot_type<L> {
  using type = std::remove_reference_t<L>&;
};
template <class L>
struct slot_type<std::shared_ptr<L>&> {
  using type = std::shared_ptr<L>;
};
template <class L>
struct slot_type<const std::shared_ptr<L>&> {
  using type = std::shared_ptr<L>;
};
}  // namespace detail

template <class... L>
pipeline(L&&...) -> pipeline<typename detail::slot_type<L>::type...>;

/// Runs `op` through one layer: `execute(breaker, op)` is `pipeline{breaker}.execute(op)`.
/// `layer` must outlive the call. A layer that requires idempotent operations accepts only ops
/// wrapped with idempotent().
template <class L, class F>
requires(!detail::layer_requires_idempotent<L> || idempotent_operation<F>)
auto execute(L& layer, F op) {
  using layers = std::tuple<detail::slot<L&>>;
  // The awaiter holds the one-layer tuple itself and points at it once awaited.
  return detail::execute_awaiter<layers, F, layers>{layers{detail::slot<L&>{layer}}, std::move(op)};
}

}  // namespace weft::resilience
