// A pipeline stage's optional resilience layers (stage_options::retry, breaker, timeout) and the
// callable that runs the stage's function through them: retry outermost, then the breaker, then
// a timeout per attempt. Without layers it calls the function directly (no extra frame).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include <weft/flow/stage_options.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/task.hpp>

namespace weft::flow::detail {

struct stage_layers {
  std::optional<resilience::retry> retry;
  std::optional<resilience::circuit_breaker> breaker;
  std::optional<resilience::time_limiter> timeout;
};

/// The layers `options` asks for, or null when it asks for none. The layers' own checks throw
/// std::invalid_argument for bad settings; a retry over items that cannot be copied (each
/// attempt needs the item again) is refused the same way.
std::shared_ptr<stage_layers> make_stage_layers(const stage_options& options, bool item_copyable);

template <class T, class F>
class layered_stage {
 public:
  using task_type = std::invoke_result_t<F&, T>;

  layered_stage(F fn, std::shared_ptr<stage_layers> layers)
      : fn_(std::make_shared<F>(std::move(fn))), layers_(std::move(layers)) {}

  task_type operator()(T item) {
    if (!layers_) return std::invoke(*fn_, std::move(item));
    return through(fn_, layers_, std::move(item));
  }

 private:
  // The frames below own what they use: the stage's workers may outlive nothing of theirs.
  static task_type through(std::shared_ptr<F> fn, std::shared_ptr<stage_layers> layers, T item) {
    stage_layers& l = *layers;
    // One attempt: a copy of the item when a retry may need it again.
    auto attempt = [&]() -> task_type {
      if constexpr (std::is_copy_constructible_v<T>) {
        if (l.retry) co_return co_await std::invoke(*fn, T(item));
      }
      co_return co_await std::invoke(*fn, std::move(item));
    };
    auto timed = [&]() -> task_type {
      if (l.timeout) co_return co_await resilience::execute(*l.timeout, std::ref(attempt));
      co_return co_await attempt();
    };
    auto guarded = [&]() -> task_type {
      if (l.breaker) co_return co_await resilience::execute(*l.breaker, std::ref(timed));
      co_return co_await timed();
    };
    if (l.retry) co_return co_await resilience::execute(*l.retry, std::ref(guarded));
    co_return co_await guarded();
  }

  std::shared_ptr<F> fn_;
  std::shared_ptr<stage_layers> layers_;
};

}  // namespace weft::flow::detail
