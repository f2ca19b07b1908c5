// weft::resilience::fallback: replaces a failed call's outcome with what a substitute produces
// (a cached value, a default, a call to another dependency).
//
// Thread safety: one fallback may serve calls on every worker at once (see the class): its options
// and observers are only read while calls run, and the substitute is called concurrently, so it
// must allow that. Move a fallback only while no call runs through it.
//
// Cancellation: it never falls back on a cancelled outcome, nor on a failure that arrives once the
// caller's cancellation (the awaiting task's token or ctx.token) was requested: that failure is
// returned unchanged. The substitute runs under the caller's cancellation; cancelled, its
// operation_cancelled becomes the outcome (kind cancelled).
#pragma once

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/resilience/call_outcome.hpp>
#include <weft/resilience/classify.hpp>
#include <weft/resilience/context.hpp>
#include <weft/resilience/events.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>

namespace weft::resilience {

/// How a fallback judges outcomes, and its name in events.
struct fallback_options {
  /// Which outcomes are failures (default_classify unless `failure_when` is set). Library
  /// rejections fall back whatever it says.
  classifier classify = {};
  std::string name = "fallback";
};

/// What a fallback's substitute may take to see the call it replaces (as Polly's
/// FallbackActionArguments): the failure, the call's context and the attempts made.
///
///     fallback stale{[&](const fallback_args<price>& a) -> weft::task<price> {
///       log("pricing failed for", a.context.key, "after", a.attempts, "attempts");
///       co_return cache.last_known(a.context.key);
///     }};
///
/// Valid while the substitute runs (its task included): copy what it keeps longer.
template <class R>
struct fallback_args {
  /// The failed outcome being replaced.
  const resilience::call_outcome<R>& outcome;
  /// The call's context as the fallback layer sees it: key, pipeline name, deadline (as narrowed
  /// by the layers outside), properties, token and attempt number (that of a retry *outside* the
  /// fallback; one inside has restored it by now, see `attempts`).
  resilience_context& context;
  /// How many attempts the layers inside the fallback made before giving up: the count of the
  /// retry or hedge inside (the outermost one, if several), or 1 without one.
  int attempts = 1;
};

namespace detail {
template <class F, class R>
decltype(auto) call_fallback(F& fn, const fallback_args<R>& args) {
  // The outcome form is tried first, so a generic `[](const auto& x)` keeps getting the outcome
  // as it did before fallback_args existed.
  if constexpr (std::is_invocable_v<F&, const call_outcome<R>&>) {
    return fn(args.outcome);
  } else if constexpr (std::is_invocable_v<F&, const fallback_args<R>&>) {
    return fn(args);
  } else {
    static_assert(
        std::is_invocable_v<F&>,
        "weft::resilience::fallback: the substitute must be callable as "
        "f(const call_outcome<R>&), f(const fallback_args<R>&) or f(), returning task<R>, "
        "R, task<call_outcome<R>> or call_outcome<R>");
    (void)args;
    return fn();
  }
}
}  // namespace detail

/// Replaces a failure with the substitute's result. It falls back on every outcome `classify`
/// judges a failure and on every library rejection (circuit_open, bulkhead_full, rate_limited …,
/// although the default classifier ignores the local-overload ones for breakers); never on a
/// success, and never on cancellation — neither a cancelled outcome nor a failure that arrives
/// once the caller's cancellation was requested.
///
///     fallback cached{[&](const call_outcome<price>&) -> weft::task<price> {
///       co_return last_known_price;
///     }};
///     pipeline pipe{cached, retry{}, breaker};
///     price p = co_await pipe.execute([&] { return pricing.quote(item); });
///
/// The substitute is called as f(const call_outcome<R>& failed), f(const fallback_args<R>& call)
/// (the failure, the call's context and the attempts made; see fallback_args) or f(), and returns
/// task<R>, R, task<call_outcome<R>> or call_outcome<R>. A generic lambda gets the outcome: spell
/// fallback_args<R> to get the rest. It runs under the caller's cancellation (the awaiting task's
/// token, and ctx.token when that is another); whatever it throws, before or after returning a
/// task, becomes the outcome. Each use emits fallback_used (outcome and error of the failure).
/// Thread safety: calls may run on every worker at once; the substitute must allow that.
template <class F>
class fallback {
 public:
  explicit fallback(F substitute, fallback_options options = {})
      : fn_(std::move(substitute)), opts_(std::move(options)), tel_(opts_.name) {}

  /// The layer protocol (see pipeline.hpp).
  template <class R, class Next>
  task<call_outcome<R>> run(resilience_context& ctx, Next next) {
    ctx.attempts_made = 0;  // what a retry or hedge inside reports, not an earlier call's count
    call_outcome<R> o = co_await next(ctx);
    if (o.kind() == outcome_kind::value && opts_.classify.failure_when.empty() &&
        opts_.classify.ignore_when.empty())
      co_return std::move(o);
    if (o.kind() == outcome_kind::cancelled) co_return std::move(o);
    const outcome_view view = view_of(o);
    // ignore_when first: an outcome it matches passes through, even a rejection.
    if (!opts_.classify.ignore_when.empty() && opts_.classify.ignore_when(view)) {
      co_return std::move(o);
    }
    if (!o.is_rejection() && opts_.classify(view) != verdict::failure) co_return std::move(o);
    const cancel_token own = co_await this_task::cancel_token();
    if (own.is_cancellation_requested() || ctx.token.is_cancellation_requested())
      co_return std::move(o);

    if (tel_.active()) {
      layer_event e = tel_.make(event_kind::fallback_used, ctx);
      e.outcome = view.kind;
      e.error = view.error;
      e.attempt = ctx.attempt;
      tel_.emit(e);
    }
    task<call_outcome<R>> substitute =
        take<R>(o, ctx, ctx.attempts_made > 0 ? ctx.attempts_made : 1);
    if (ctx.token.can_be_cancelled() && !(ctx.token == own)) {
      substitute = with_cancellation(ctx.token, std::move(substitute));
    }
    // Constructed in place, never assigned over `o`: R may be move-constructible only.
    std::optional<call_outcome<R>> replaced;
    std::exception_ptr thrown;
    try {
      // take() catches the substitute's exceptions; this only sees the runtime refusing to start
      // it for a caller cancelled in between.
      replaced.emplace(co_await std::move(substitute));
    } catch (...) {
      thrown = std::current_exception();
    }
    if (thrown) co_return call_outcome<R>::from_exception(std::move(thrown));
    co_return std::move(*replaced);
  }

  /// Runs `op` through this fallback alone.
  template <class G>
  auto execute(G op) {
    return weft::resilience::execute(*this, std::move(op));
  }

  /// Events (fallback_used) and the metrics sink.
  [[nodiscard]] telemetry& observers() noexcept { return tel_; }

 private:
  template <class R>
  task<call_outcome<R>> take(const call_outcome<R>& failed, resilience_context& ctx, int attempts) {
    const fallback_args<R> args{failed, ctx, attempts};  // lives as long as the substitute's task
    using result = decltype(detail::call_fallback(fn_, args));
    using plain = std::remove_cvref_t<result>;
    std::exception_ptr thrown;
    try {
      if constexpr (task_type<plain>) {
        using value = typename plain::value_type;
        plain t = detail::call_fallback(fn_, args);
        if constexpr (std::is_same_v<value, call_outcome<R>>) {
          call_outcome<R> o = co_await std::move(t);
          co_return std::move(o);
        } else if constexpr (std::is_void_v<value>) {
          static_assert(std::is_void_v<R>,
                        "weft::resilience::fallback: the substitute returns "
                        "task<void> but the call's result is not void");
          co_await std::move(t);
          co_return call_outcome<R>::success();
        } else {
          static_assert(std::is_convertible_v<value, R>,
                        "weft::resilience::fallback: the substitute's task<T> must produce the "
                        "call's result type R");
          R v = co_await std::move(t);
          co_return call_outcome<R>::success(std::move(v));
        }
      } else if constexpr (std::is_same_v<plain, call_outcome<R>>) {
        co_return detail::call_fallback(fn_, args);
      } else if constexpr (std::is_void_v<plain>) {
        static_assert(std::is_void_v<R>,
                      "weft::resilience::fallback: the substitute returns "
                      "void but the call's result is not void");
        detail::call_fallback(fn_, args);
        co_return call_outcome<R>::success();
      } else {
        static_assert(std::is_convertible_v<result, R>,
                      "weft::resilience::fallback: the substitute must produce the call's result "
                      "type R");
        co_return call_outcome<R>::success(detail::call_fallback(fn_, args));
      }
    } catch (...) {
      thrown = std::current_exception();
    }
    co_return call_outcome<R>::from_exception(std::move(thrown));
  }

  F fn_;
  fallback_options opts_;
  telemetry tel_;
};

template <class F>
fallback(F) -> fallback<F>;
template <class F>
fallback(F, fallback_options) -> fallback<F>;

}  // namespace weft::resilience
