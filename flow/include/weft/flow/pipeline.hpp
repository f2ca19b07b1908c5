// weft::flow::pipeline: a staged data pipeline (validate → transform → persist), each stage with
// its own concurrency and failure policy, bounded between stages so that a slow stage pushes
// back on the source instead of filling memory.
//
// Thread safety: a pipeline is built and run by one task; its stages' workers run as tasks on
// any worker of the runtime, so a stage's callable may be called concurrently (up to its
// concurrency) and must allow that. The stats handle may be read from any thread.
//
// Cancellation: cancelling the task that consumes the output (or dropping the generator) cancels
// every stage and the source, waits until they stopped, and counts what was in flight as
// abandoned; nothing is dropped without being counted. A stage's callable sees the cancellation
// at its own suspension points.
#pragma once

#include <any>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/flow/detail/pipeline_machinery.hpp>
#include <weft/flow/detail/stage_layers.hpp>
#include <weft/flow/stage_options.hpp>
#include <weft/flow/stage_stats.hpp>
#include <weft/stream/async_generator.hpp>
#include <weft/sync/channel.hpp>
#include <weft/task.hpp>

namespace weft::flow {

/// A pipeline under construction: a source, then stages; T is the type of the items that the
/// last stage produces. Built by value and run once.
///
///     auto out = weft::flow::from_range(records)
///                    .stage({.name = "validate", .concurrency = 5}, validate)
///                    .stage({.name = "transform", .concurrency = 3}, transform)
///                    .stage({.name = "persist", .concurrency = 2}, persist)
///                    .run();
///     while (auto r = co_await out.next()) ...;
///
/// Memory: at most `window()` items are inside the pipeline at once (the sum of the stages'
/// concurrencies and buffers, plus the source's buffer): the source waits for room, whatever
/// the input's size. Errors: std::invalid_argument for a stage with concurrency 0 (at stage());
/// std::logic_error for any call on a moved-from pipeline (stage() and run() consume it).
template <class T>
class pipeline {
 public:
  using value_type = T;

  pipeline(pipeline&&) noexcept = default;
  pipeline& operator=(pipeline&&) noexcept = default;
  // Not copyable: a pipeline's counters belong to one run.
  pipeline(const pipeline&) = delete;
  pipeline& operator=(const pipeline&) = delete;

  /// Appends a stage: `fn(T)` returns a task<R>; R becomes the pipeline's item type. `fn` is
  /// called on the stage's workers, concurrently up to options.concurrency, through the
  /// options' resilience layers when it has any.
  template <class F>
  auto stage(stage_options options, F f) && {
    using L = detail::layered_stage<T, F>;
    using R = detail::stage_result_t<L, T>;
    require_state("stage");
    if (options.concurrency == 0) {
      throw std::invalid_argument("weft::flow::pipeline::stage '" + options.name +
                                  "': concurrency must be at least 1");
    }
    L fn{std::move(f), detail::make_stage_layers(options, std::is_copy_constructible_v<T>)};
    pipeline<R> next;
    next.state_ = std::move(state_);
    const std::size_t index = next.state_->add_stage(options);
    next.window_ = window_ + options.concurrency + options.buffer;
    next.out_buffer_ = options.buffer;
    next.launch_ = [prev = std::move(launch_), in_buffer = out_buffer_, index,
                    options = std::move(options),
                    fn = std::make_shared<L>(std::move(fn))](
                       detail::launch_context& ctx, channel<detail::envelope<R>>& out) mutable {
      std::atomic<std::int64_t>* out_queued = ctx.consumer_queued;
      detail::stage_counters& counters = ctx.state->stages[index];
      auto& in = ctx.make_channel<detail::envelope<T>>(in_buffer);
      ctx.consumer_queued = &counters.queued;
      prev(ctx, in);
      auto closer =
          std::make_shared<detail::stage_closer<detail::envelope<R>>>(out, options.concurrency);
      for (std::size_t i = 0; i < options.concurrency; ++i) {
        ctx.group.spawn(detail::stage_worker<T, R, L>(
                            ctx.state, index, options.on_failure, fn, in, out, out_queued,
                            detail::closer_guard<detail::envelope<R>>{closer}),
                        spawn_options{.name = options.name});
      }
    };
    return next;
  }

  /// The output order (preserved by default).
  pipeline&& ordered(ordering o) && {
    require_state("ordered");
    state_->order = o;
    return std::move(*this);
  }

  /// Where items go under failure_policy::dead_letter; called on the stage's worker, it must not
  /// block. Without a sink such items are only counted.
  pipeline&& dead_letters(std::function<void(dead_letter)> sink) && {
    require_state("dead_letters");
    state_->sink = std::move(sink);
    return std::move(*this);
  }

  /// The per-stage counters, live: keep it to read them while and after the pipeline runs.
  [[nodiscard]] pipeline_stats stats() const {
    require_state("stats");
    return pipeline_stats{state_};
  }

  /// The most items inside the pipeline at once.
  [[nodiscard]] std::size_t window() const noexcept { return window_; }

  /// Starts the pipeline when the returned generator is first pulled; yields the last stage's
  /// items. Must be consumed on a weft worker (inside a task). Throws the first failure of a
  /// failure_policy::fail stage, after every stage stopped.
  async_generator<T> run() && {
    require_state("run");
    return detail::run_pipeline<T>(std::move(state_), std::move(launch_),
                                   window_ > 0 ? window_ : 1, out_buffer_);
  }

 private:
  template <class>
  friend class pipeline;
  template <class U, class Launch>
  friend pipeline<U> detail::make_pipeline(Launch launch, std::size_t buffer);

  pipeline() = default;
  void require_state(const char* what) const {
    if (!state_) {
      throw std::logic_error(std::string{"weft::flow::pipeline::"} + what +
                             ": the pipeline was moved from (stage() and run() consume it)");
    }
  }

  std::shared_ptr<detail::pipeline_state> state_;
  std::function<void(detail::launch_context&, channel<detail::envelope<T>>&)> launch_;
  std::size_t window_ = 0;
  std::size_t out_buffer_ = 0;
};

/// A pipeline whose source is a range (taken by value; iterated on the pipeline's source task).
/// `buffer` bounds the items read ahead of the first stage.
template <std::ranges::input_range R>
pipeline<std::ranges::range_value_t<R>> from_range(R range, std::size_t buffer = 16) {
  using T = std::ranges::range_value_t<R>;
  return detail::make_pipeline<T>(
      [range = std::make_shared<R>(std::move(range))](detail::launch_context& ctx,
                                                      channel<detail::envelope<T>>& out) {
        ctx.group.spawn(detail::feed_range<T, R>(ctx.state, ctx.window, ctx.batch, range, out,
                                                 ctx.consumer_queued, detail::source_closer(out)),
                        spawn_options{.name = "source"});
      },
      buffer);
}

/// A pipeline whose source is an async_generator, pulled by a task of its own that hands items
/// over one at a time, so that the pipeline moves what is ready without waiting for more.
/// `buffer` bounds the items read ahead of the first stage.
template <class T>
pipeline<T> from_generator(async_generator<T> source, std::size_t buffer = 16) {
  return detail::make_pipeline<T>(
      [source = std::make_shared<async_generator<T>>(std::move(source))](
          detail::launch_context& ctx, channel<detail::envelope<T>>& out) {
        // A hand-over queue: the pump holds at most the one item it is handing over.
        auto& pumped = ctx.make_channel<T>(0);
        ctx.group.spawn(
            detail::pump_generator<T>(source, pumped, detail::channel_closer<T>{pumped}),
            spawn_options{.name = "source"});
        ctx.group.spawn(detail::feed_channel<T>(ctx.state, ctx.window, ctx.batch, pumped, out,
                                                ctx.consumer_queued, detail::source_closer(out)),
                        spawn_options{.name = "source"});
      },
      buffer);
}

/// A pipeline whose source is a channel, read until it is closed. The channel must outlive the
/// pipeline's run.
template <class T>
pipeline<T> from_channel(channel<T>& source, std::size_t buffer = 16) {
  return detail::make_pipeline<T>(
      [&source](detail::launch_context& ctx, channel<detail::envelope<T>>& out) {
        ctx.group.spawn(detail::feed_channel<T>(ctx.state, ctx.window, ctx.batch, source, out,
                                                ctx.consumer_queued, detail::source_closer(out)),
                        spawn_options{.name = "source"});
      },
      buffer);
}

}  // namespace weft::flow
