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
  std::atomic<std::int64_t> queued{0};  // items in its input queue
  /// Its last timed item took 20 µs or more (or none was timed yet): the source then sends
  /// items one at a time, so that the stage's workers share them.
  std::atomic<bool> slow{true};
  std::array<std::atomic<std::uint64_t>, duration_histogram::buckets> latency{};
  std::atomic<std::uint64_t> latency_sum_ns{0};

  void record_latency(std::int64_t ns) noexcept;
  void enter() noexcept {
    const std::size_t now = in_flight.fetch_add(1, std::memory_order_relaxed) + 1;
    std::size_t seen = max_in_flight.load(std::memory_order_relaxed);
    while (seen < now &&
           !max_in_flight.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
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
  std::mutex sink_lock;  // dead letters are handed to the sink one at a time

  std::size_t total_concurrency = 0;

  /// Items per batch for the source's next batch: one while any stage is slow (its workers must
  /// share the items), else `largest` (fast stages: a batch pays one queue operation and one
  /// wake-up per hop for all its items).
  [[nodiscard]] std::size_t batch_size(std::size_t largest) const noexcept {
    for (const auto& c : stages) {
      if (c.slow.load(std::memory_order_relaxed)) return 1;
    }
    return largest;
  }

  std::size_t add_stage(const stage_options& o);
  /// At the end of a run: what was let in and did not come out, nor was dropped or
  /// dead-lettered, was abandoned.
  void finish() noexcept;
};

/// Items on their way, in a batch: consecutive positions of the input from `sequence` on (for
/// the order), the values (empty: a hole left by a dropped or dead-lettered item, which the
/// output skips) and their slots in the pipeline's window, given back when the batch leaves.
/// Queues carry batches so that a queue operation, a wake-up and a window acquisition are paid
/// once per batch, not per item.
template <class T>
struct envelope {
  std::uint64_t sequence = 0;
  std::vector<std::optional<T>> items;
  semaphore::permit slots;
};

/// What runs a pipeline: the window's semaphore, the task group of its tasks, and the queues.
struct launch_context {
  std::shared_ptr<pipeline_state> state;
  semaphore& window;
  /// The queues, owned by the run (not the counters): destroyed after the tasks stopped and
  /// before the window, since batches left in them give their slots back.
  std::vector<std::shared_ptr<void>>& queues;
  task_group& group;
  /// Items per batch the source forms (the window over the stages' total concurrency, so that
  /// every worker can hold a batch, capped at 64).
  std::size_t batch = 1;
  /// While launching: the queued-items counter of the stage that reads the queue being launched
  /// into (null for the output); each launcher takes it, then sets its own for its producer.
  std::atomic<std::int64_t>* consumer_queued = nullptr;

  template <class T>
  channel<T>& make_channel(std::size_t capacity) {
    auto ch = std::make_shared<channel<T>>(capacity);
    queues.push_back(ch);
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
/// A task's share in closing a queue. Passed to the task as a parameter, not made in its body:
/// a task cancelled before it starts never runs its body, but its parameters are destroyed with
/// its frame, so the queue is still closed.
template <class T>
struct closer_guard {
  explicit closer_guard(std::shared_ptr<stage_closer<T>> c) noexcept : closer(std::move(c)) {}
  closer_guard(closer_guard&&) noexcept = default;
  closer_guard& operator=(closer_guard&&) = delete;
  ~closer_guard() {
    if (closer && closer->live.fetch_sub(1, std::memory_order_acq_rel) == 1) closer->out.close();
  }
  std::shared_ptr<stage_closer<T>> closer;
};

/// Closes a channel when the task that holds it as a parameter ends, however it ends.
template <class T>
struct channel_closer {
  explicit channel_closer(channel<T>& c) noexcept : ch(&c) {}
  channel_closer(channel_closer&& o) noexcept : ch(std::exchange(o.ch, nullptr)) {}
  channel_closer& operator=(channel_closer&&) = delete;
  ~channel_closer() {
    if (ch != nullptr) ch->close();
  }
  channel<T>* ch;
};

/// The source's share in closing the first queue (it is the queue's only writer).
template <class T>
closer_guard<envelope<T>> source_closer(channel<envelope<T>>& out) {
  return closer_guard<envelope<T>>{std::make_shared<stage_closer<envelope<T>>>(out, 1)};
}

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

/// Sends a batch on, counting its items as queued for the stage that reads it.
template <class T>
task<void> pass_on(channel<envelope<T>>& out, std::atomic<std::int64_t>* queued, envelope<T> e) {
  const auto n = static_cast<std::int64_t>(e.items.size());
  co_await out.send(std::move(e));
  // After the send: a receiver may have taken it first and counted it out (the depth reads a
  // negative count as 0 meanwhile).
  if (queued != nullptr) queued->fetch_add(n, std::memory_order_relaxed);
}

/// One of a stage's workers: takes batches from its input queue until it is closed, calls the
/// stage's callable on each item in turn (one item at a time per worker, so the stage never has
/// more than `concurrency` in its callable), and passes the results (or holes) on.
template <class T, class R, class F>
task<void> stage_worker(std::shared_ptr<pipeline_state> st, std::size_t index,
                        failure_policy policy, std::shared_ptr<F> fn,
                        channel<envelope<T>>& in, channel<envelope<R>>& out,
                        std::atomic<std::int64_t>* out_queued, closer_guard<envelope<R>> guard) {
  (void)guard;
  stage_counters& c = st->stages[index];
  const cancel_token token = co_await this_task::cancel_token();
  // Latency: two clock reads cost about as much as a trivial item, so a fast stage's items are
  // timed one in 32; once an item took 20 µs or more, every item is timed until one is fast.
  std::uint32_t untimed = 0;
  bool slow = true;
  for (;;) {
    std::optional<envelope<T>> b = co_await in.recv();
    if (!b) co_return;
    c.queued.fetch_sub(static_cast<std::int64_t>(b->items.size()), std::memory_order_relaxed);
    envelope<R> next;
    next.sequence = b->sequence;
    next.slots = std::move(b->slots);
    next.items.reserve(b->items.size());
    for (std::optional<T>& item : b->items) {
      // Cancelled: what is left of the batch is abandoned, not handed to the callable (which
      // might turn the cancellation into a failure of its own and have it counted as one).
      if (token.is_cancellation_requested()) throw operation_cancelled{};
      std::optional<R>& result = next.items.emplace_back();
      if (!item) continue;  // a hole from upstream: the ordered output must see it pass
      std::any kept;  // the item, for the dead-letter sink
      if constexpr (std::is_copy_constructible_v<T>) {
        if (policy == failure_policy::dead_letter) kept = *item;
      }
      c.in.fetch_add(1, std::memory_order_relaxed);
      c.enter();
      const bool timed = slow || ++untimed % 32 == 0;
      const auto started = timed ? clock::now() : clock::time_point{};
      std::exception_ptr error;
      try {
        if constexpr (std::is_void_v<typename stage_task_t<F, T>::value_type>) {
          co_await std::invoke(*fn, std::move(*item));
          result.emplace();
        } else {
          result.emplace(co_await std::invoke(*fn, std::move(*item)));
        }
      } catch (...) {
        error = std::current_exception();
      }
      if (timed) {
        const std::int64_t took = (clock::now() - started).count();
        c.record_latency(took);
        slow = took >= 20'000;
        if (c.slow.load(std::memory_order_relaxed) != slow) {
          c.slow.store(slow, std::memory_order_relaxed);
        }
      }
      c.in_flight.fetch_sub(1, std::memory_order_relaxed);
      if (!error) {
        c.out.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      // The pipeline is being cancelled: not the item's failure; stop.
      if (token.is_cancellation_requested() && weft::detail::is_cancellation(error)) {
        std::rethrow_exception(error);
      }
      c.failed.fetch_add(1, std::memory_order_relaxed);
      if (policy == failure_policy::fail) std::rethrow_exception(error);
      const std::uint64_t position = next.sequence + (next.items.size() - 1);
      if (policy == failure_policy::drop) {
        c.dropped.fetch_add(1, std::memory_order_relaxed);
      } else {
        c.dead_lettered.fetch_add(1, std::memory_order_relaxed);
        deliver_dead_letter(*st, make_dead_letter(c.name, position, error, std::move(kept)));
      }
    }
    auto sending = pass_on(out, out_queued, std::move(next));  // named first (g++ 12)
    co_await std::move(sending);
  }
}

/// Admits a batch: waits for slots in the window for `items`, then sends it to the first queue.
template <class T>
task<void> admit(semaphore& window, channel<envelope<T>>& out,
                 std::atomic<std::int64_t>* out_queued, std::uint64_t sequence,
                 std::vector<std::optional<T>> items) {
  envelope<T> e;
  e.slots = co_await window.acquire(items.size());
  e.sequence = sequence;
  e.items = std::move(items);
  co_await pass_on(out, out_queued, std::move(e));
}

template <class T, class R>
task<void> feed_range(std::shared_ptr<pipeline_state> st, semaphore& window, std::size_t batch,
                      std::shared_ptr<R> range, channel<envelope<T>>& out,
                      std::atomic<std::int64_t>* out_queued, closer_guard<envelope<T>> guard) {
  (void)guard;
  std::uint64_t sequence = 0;
  std::vector<std::optional<T>> items;
  std::size_t size = st->batch_size(batch);
  for (auto&& x : *range) {
    items.emplace_back(T(x));
    st->admitted.fetch_add(1, std::memory_order_relaxed);  // taken: counted from here on
    if (items.size() >= size) {
      const std::size_t n = items.size();
      co_await admit<T>(window, out, out_queued, sequence, std::move(items));
      sequence += n;
      items = {};
      size = st->batch_size(batch);
    }
  }
  if (!items.empty()) co_await admit<T>(window, out, out_queued, sequence, std::move(items));
}

/// A channel's items, in batches of what is queued when the first of each arrives (a batch
/// never waits to fill).
template <class T>
task<void> feed_channel(std::shared_ptr<pipeline_state> st, semaphore& window, std::size_t batch,
                        channel<T>& source, channel<envelope<T>>& out,
                        std::atomic<std::int64_t>* out_queued, closer_guard<envelope<T>> guard) {
  (void)guard;
  std::uint64_t sequence = 0;
  while (auto x = co_await source.recv()) {
    std::vector<std::optional<T>> items;
    items.emplace_back(std::move(*x));
    const std::size_t size = st->batch_size(batch);
    while (items.size() < size) {
      auto more = source.try_recv();
      if (!more) break;
      items.emplace_back(std::move(*more));
    }
    const std::size_t n = items.size();
    st->admitted.fetch_add(n, std::memory_order_relaxed);  // taken: counted from here on
    co_await admit<T>(window, out, out_queued, sequence, std::move(items));
    sequence += n;
  }
}

/// A generator's items go through a channel of `buffer` (a pump task pulls them), so that the
/// pipeline batches what is ready instead of waiting for a batch to fill.
template <class T>
task<void> pump_generator(std::shared_ptr<async_generator<T>> source, channel<T>& to,
                          channel_closer<T> closing) {
  (void)closing;
  while (auto x = co_await source->next()) co_await to.send(std::move(*x));
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
  std::vector<std::shared_ptr<void>> queues;
  task_group group;
  launch_context ctx{st, window, queues, group};
  const std::size_t per_worker = window_size / std::max<std::size_t>(st->total_concurrency, 1);
  ctx.batch = std::clamp<std::size_t>(per_worker, 1, 64);
  channel<envelope<T>>& last = ctx.make_channel<envelope<T>>(out_buffer);
  ctx.consumer_queued = nullptr;
  launch(ctx, last);
  const bool ordered = st->order == ordering::preserved;
  // Ordered: batches that arrived before their turn, at sequence % window. At most window_size
  // items are inside, with sequences in [next, next + window_size): each batch has its own slot.
  std::vector<std::optional<envelope<T>>> waiting(ordered ? window_size : 0);
  std::uint64_t next = 0;
  for (;;) {
    std::optional<envelope<T>> e = co_await last.recv();
    if (!e) break;
    if (ordered) {
      waiting[e->sequence % window_size] = std::move(e);
      e.reset();
    }
    for (;;) {
      envelope<T>* b = nullptr;
      if (!ordered) {
        if (!e) break;
        b = &*e;
      } else {
        std::optional<envelope<T>>& turn = waiting[next % window_size];
        if (!turn || turn->sequence != next) break;
        b = &*turn;
      }
      next += b->items.size();
      for (std::optional<T>& v : b->items) {
        if (!v) continue;
        st->emitted.fetch_add(1, std::memory_order_relaxed);
        co_yield std::move(*v);
      }
      if (ordered) {
        waiting[b->sequence % window_size].reset();  // gives its window slots back
      } else {
        e.reset();
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
