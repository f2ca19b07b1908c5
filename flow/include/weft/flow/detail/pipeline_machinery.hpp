// The machinery behind <weft/flow/pipeline.hpp>: the shared counters, the envelopes items travel
// in, the source and stage tasks and the collector. Include that header, not this one.
#pragma once

#include <algorithm>
#include <any>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/detail/children.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/flow/stage_options.hpp>
#include <weft/flow/stage_stats.hpp>
#include <weft/stream/async_generator.hpp>
#include <weft/sync/channel.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/clock.hpp>

namespace weft::flow {

template <class T>
class pipeline;

namespace detail {

/// One stage's counters (written by its workers, read by snapshots on any thread).
struct stage_counters {
  std::string name;
  std::size_t concurrency = 0;
  std::atomic<std::uint64_t> in{0}, out{0}, failed{0}, dropped{0}, dead_lettered{0};
  std::atomic<std::size_t> in_flight{0}, max_in_flight{0};
  std::array<std::atomic<std::uint64_t>, duration_histogram::buckets> latency{};
  std::atomic<std::uint64_t> latency_sum_ns{0};
  /// The stage's input queue, for its depth (set when the pipeline starts).
  std::function<std::size_t()> depth;  // guarded by pipeline_state::lock

  void record_latency(std::int64_t ns) noexcept;
  void enter() noexcept {
    const std::size_t now = in_flight.fetch_add(1, std::memory_order_relaxed) + 1;
    std::size_t seen = max_in_flight.load(std::memory_order_relaxed);
    while (seen < now && !max_in_flight.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
    }
  }
};

/// What a pipeline's stages, source, collector and stats handle share.
struct pipeline_state {
  std::deque<stage_counters> stages;  // stable addresses
  ordering order = ordering::preserved;
  std::function<void(dead_letter)> sink;
  std::atomic<std::uint64_t> admitted{0}, emitted{0}, abandoned{0};
  std::atomic<bool> finished{false};
  std::mutex lock;  // the depth functions and the channels
  /// The queues between stages: kept as long as the counters, so that a snapshot reads the
  /// depth of a queue even after the run (then 0).
  std::vector<std::shared_ptr<void>> channels;

  std::size_t add_stage(const stage_options& o);
  /// At the end of a run: what was let in and did not come out, nor was dropped or
  /// dead-lettered, was abandoned.
  void finish() noexcept;
};

/// An item on its way: its position in the input (for the order), the value (empty: a hole
/// left by a dropped or dead-lettered item, which the ordered output skips) and its slot in the
/// pipeline's window, given back when the item leaves.
template <class T>
struct envelope {
  std::uint64_t sequence = 0;
  std::optional<T> value;
  semaphore::permit slot;
};

/// What runs a pipeline: the window's semaphore, the task group of its tasks, and the queues.
struct launch_context {
  std::shared_ptr<pipeline_state> state;
  semaphore& window;
  task_group& group;

  template <class T>
  channel<T>& make_channel(std::size_t capacity) {
    auto ch = std::make_shared<channel<T>>(capacity);
    std::lock_guard guard{state->lock};
    state->channels.push_back(ch);
    return *ch;
  }
};

/// Closes a stage's output queue when its last worker ends, however it ends.
template <class T>
struct stage_closer {
  stage_closer(channel<T>& out, std::size_t workers) : out(out), live(workers) {}
  channel<T>& out;
  std::atomic<std::size_t> live;
};
template <class T>
struct closer_guard {
  std::shared_ptr<stage_closer<T>> closer;
  ~closer_guard() {
    if (closer->live.fetch_sub(1, std::memory_order_acq_rel) == 1) closer->out.close();
  }
};

/// A stage's result type: what its callable's task returns (void becomes std::monostate, so a
/// last "persist" stage still yields one item per input).
template <class F, class T>
using stage_task_t = std::invoke_result_t<F&, T>;
template <class F, class T>
using stage_result_t = std::conditional_t<std::is_void_v<typename stage_task_t<F, T>::value_type>,
                                          std::monostate, typename stage_task_t<F, T>::value_type>;

void deliver_dead_letter(pipeline_state& st, dead_letter d) noexcept;
dead_letter make_dead_letter(const std::string& stage, std::uint64_t sequence,
                             std::exception_ptr error, std::any item);

/// At most this many queued items a worker takes at once: it runs them one after another, so
/// the queue is locked and the worker woken once for all of them.
inline constexpr std::size_t max_take = 32;

/// One of a stage's workers: takes items from its input queue until it is closed, calls the
/// stage's callable on each, and passes the result (or a hole) on.
template <class T, class R, class F>
task<void> stage_worker(std::shared_ptr<pipeline_state> st, std::size_t index,
                        failure_policy policy, std::shared_ptr<F> fn,
                        channel<envelope<T>>& in, channel<envelope<R>>& out,
                        std::shared_ptr<stage_closer<envelope<R>>> closer) {
  closer_guard<envelope<R>> guard{std::move(closer)};
  stage_counters& c = st->stages[index];
  const cancel_token token = co_await this_task::cancel_token();
  std::vector<envelope<T>> taken;
  taken.reserve(max_take);
  // Latency: two clock reads cost about as much as a trivial item, so a fast stage's items are
  // timed one in 32; once an item took 20 µs or more, every item is timed until one is fast.
  std::uint32_t untimed = 0;
  bool slow = true;
  for (;;) {
    std::optional<envelope<T>> first = co_await in.recv();
    if (!first) co_return;
    taken.push_back(std::move(*first));
    // A fair share of what else is queued: the other workers of the stage get theirs, so a
    // slow stage still runs `concurrency` items at once.
    const std::size_t share = std::min(max_take, in.size() / c.concurrency + 1);
    while (taken.size() < share) {
      std::optional<envelope<T>> more = in.try_recv();
      if (!more) break;
      taken.push_back(std::move(*more));
    }
    for (envelope<T>& e : taken) {
      envelope<R> next;
      next.sequence = e.sequence;
      next.slot = std::move(e.slot);
      if (e.value) {  // else a hole from upstream: the ordered output must see it pass
        c.in.fetch_add(1, std::memory_order_relaxed);
        c.enter();
        std::any kept;  // the item, for the dead-letter sink
        if constexpr (std::is_copy_constructible_v<T>) {
          if (policy == failure_policy::dead_letter) kept = *e.value;
        }
        const bool timed = slow || ++untimed % 32 == 0;
        const auto started = timed ? clock::now() : clock::time_point{};
        std::exception_ptr error;
        try {
          if constexpr (std::is_void_v<typename stage_task_t<F, T>::value_type>) {
            co_await std::invoke(*fn, std::move(*e.value));
            next.value.emplace();
          } else {
            next.value.emplace(co_await std::invoke(*fn, std::move(*e.value)));
          }
        } catch (...) {
          error = std::current_exception();
        }
        if (timed) {
          const std::int64_t took = (clock::now() - started).count();
          c.record_latency(took);
          slow = took >= 20'000;
        }
        c.in_flight.fetch_sub(1, std::memory_order_relaxed);
        if (error) {
          // The pipeline is being cancelled: not the item's failure; stop.
          if (token.is_cancellation_requested() && weft::detail::is_cancellation(error)) {
            std::rethrow_exception(error);
          }
          c.failed.fetch_add(1, std::memory_order_relaxed);
          if (policy == failure_policy::fail) std::rethrow_exception(error);
          if (policy == failure_policy::drop) {
            c.dropped.fetch_add(1, std::memory_order_relaxed);
          } else {
            c.dead_lettered.fetch_add(1, std::memory_order_relaxed);
            deliver_dead_letter(*st, make_dead_letter(c.name, e.sequence, error, std::move(kept)));
          }
        } else {
          c.out.fetch_add(1, std::memory_order_relaxed);
        }
      }
      co_await out.send(std::move(next));
    }
    taken.clear();
  }
}

/// Admits one item: waits for a slot in the window, then sends it to the first queue.
template <class T>
task<void> admit(pipeline_state& st, semaphore& window, channel<envelope<T>>& out,
                 std::uint64_t sequence, T value) {
  envelope<T> e;
  e.slot = co_await window.acquire();
  e.sequence = sequence;
  e.value.emplace(std::move(value));
  st.admitted.fetch_add(1, std::memory_order_relaxed);
  co_await out.send(std::move(e));
}

template <class T, class R>
task<void> feed_range(std::shared_ptr<pipeline_state> st, semaphore& window, std::shared_ptr<R> range,
                      channel<envelope<T>>& out) {
  closer_guard<envelope<T>> guard{std::make_shared<stage_closer<envelope<T>>>(out, 1)};
  std::uint64_t sequence = 0;
  for (auto&& x : *range) co_await admit<T>(*st, window, out, sequence++, T(x));
}

template <class T>
task<void> feed_generator(std::shared_ptr<pipeline_state> st, semaphore& window,
                          std::shared_ptr<async_generator<T>> source, channel<envelope<T>>& out) {
  closer_guard<envelope<T>> guard{std::make_shared<stage_closer<envelope<T>>>(out, 1)};
  std::uint64_t sequence = 0;
  while (auto x = co_await source->next()) co_await admit<T>(*st, window, out, sequence++, std::move(*x));
}

template <class T>
task<void> feed_channel(std::shared_ptr<pipeline_state> st, semaphore& window, channel<T>& source,
                        channel<envelope<T>>& out) {
  closer_guard<envelope<T>> guard{std::make_shared<stage_closer<envelope<T>>>(out, 1)};
  std::uint64_t sequence = 0;
  while (auto x = co_await source.recv()) co_await admit<T>(*st, window, out, sequence++, std::move(*x));
}

/// Marks the run finished however the collector ends (also when its generator is dropped).
struct finish_guard {
  pipeline_state* st;
  ~finish_guard() { st->finish(); }
};

template <class T>
using launch_fn = std::function<void(launch_context&, channel<envelope<T>>&)>;

/// The collector: starts every task, then yields the last queue's items (in input order, or as
/// they come), and finally rethrows a failure once every task stopped.
template <class T>
async_generator<T> run_pipeline(std::shared_ptr<pipeline_state> st, launch_fn<T> launch,
                                std::size_t window_size, std::size_t out_buffer) {
  finish_guard finished{st.get()};
  // Declared before the group: the group's destructor (a dropped generator) waits for the tasks
  // that hold slots and refer to the queues.
  semaphore window{window_size};
  task_group group;
  launch_context ctx{st, window, group};
  channel<envelope<T>>& last = ctx.make_channel<envelope<T>>(out_buffer);
  launch(ctx, last);
  const bool ordered = st->order == ordering::preserved;
  // Ordered: items that arrived before their turn, at sequence % window. At most window_size
  // items are inside, all with sequences in [next, next + window_size): each has its own slot.
  std::vector<std::optional<envelope<T>>> waiting(ordered ? window_size : 0);
  std::uint64_t next = 0;
  for (;;) {
    std::optional<envelope<T>> e = co_await last.recv();
    if (!e) break;
    if (!ordered) {
      std::optional<T> v = std::move(e->value);
      e.reset();  // its slot goes back before the consumer sees the value
      if (v) {
        st->emitted.fetch_add(1, std::memory_order_relaxed);
        co_yield std::move(*v);
      }
      continue;
    }
    waiting[e->sequence % window_size] = std::move(e);
    for (;;) {
      std::optional<envelope<T>>& turn = waiting[next % window_size];
      if (!turn || turn->sequence != next) break;
      ++next;
      std::optional<T> v = std::move(turn->value);
      turn.reset();  // gives its window slot back
      if (v) {
        st->emitted.fetch_add(1, std::memory_order_relaxed);
        co_yield std::move(*v);
      }
    }
  }
  co_await group.join();
}

template <class U, class Launch>
pipeline<U> make_pipeline(Launch launch, std::size_t buffer) {
  pipeline<U> p;
  p.state_ = std::make_shared<pipeline_state>();
  p.launch_ = std::move(launch);
  p.window_ = buffer;
  p.out_buffer_ = buffer;
  return p;
}

}  // namespace detail
}  // namespace weft::flow
