// weft::flow::event_processor: a resilient event-stream processor. Events with a priority and a
// destination are batched per destination (by size and by time), their lanes served by weight,
// delivered through each destination's retry, breaker and timeout, acknowledged only once their
// batch was delivered, and dead-lettered (with the reason and the attempts) when they cannot be.
// The backlog is bounded by a policy (block, reject, shed the lowest priority); metrics come as
// a watch; a stop drains within a grace period.
//
// Thread safety: submit(), try_submit(), replay(), stop(), snapshot() and metrics() may be called
// from any thread at once (submit() from tasks; try_submit() also from plain threads). run() is
// called once, from a task. Destinations' deliver() run as tasks on any worker, up to their
// concurrency at once. The processor must outlive run() and every submit() in progress.
//
// Cancellation: a stop (the token given to run(), or stop()) drains: intake closes, buffers flush
// without waiting for their interval, and what is not delivered within drain_grace is
// dead-lettered with reason shutdown. Cancelling run()'s own task stops at once: batches in
// delivery are cancelled and everything not delivered is dead-lettered (shutdown); run() then
// throws operation_cancelled. Either way nothing is lost uncounted: once run() returns,
// accepted = delivered + dead_lettered + shed. A cancelled submit() that was waiting for room
// took nothing.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/shielded.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/flow/dead_letter_queue.hpp>
#include <weft/flow/detail/event_destination.hpp>
#include <weft/flow/event_processor_options.hpp>
#include <weft/flow/processor_errors.hpp>
#include <weft/flow/processor_metrics.hpp>
#include <weft/resilience/error.hpp>
#include <weft/resilience/pipeline.hpp>
#include <weft/sync/watch.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/time/sleep.hpp>
#include <weft/time/timed_out.hpp>
#include <weft/time/timeout.hpp>

namespace weft::flow {

namespace detail {
/// Throws std::invalid_argument for settings the processor cannot run with (one message per
/// problem, naming the option).
void validate_processor(std::size_t destinations, std::size_t max_backlog,
                        const std::array<std::uint32_t, priority_count>& weights,
                        clock::duration drain_grace, clock::duration metrics_interval);
void validate_destination(std::string_view name, bool has_deliver, std::size_t batch_size,
                          std::size_t concurrency, clock::duration flush_interval,
                          clock::duration attempt_timeout, clock::duration open_deadline);
}  // namespace detail

/// Delivers events to destinations in batches, at least once.
///
///     weft::flow::event_processor<order_event> events{{
///         .destinations = {{.name = "billing", .deliver = send_to_billing, .batch_size = 100},
///                          {.name = "audit", .deliver = send_to_audit}},
///         .max_backlog = 50'000,
///         .policy = weft::flow::backpressure::shed_lowest}};
///     weft::spawn(events.run(stop.token()));
///     co_await events.submit(e, events.destination("billing"), weft::flow::priority::high);
///
/// Delivery: a destination's batcher takes a batch when `batch_size` events wait, or when the
/// oldest has waited `flush_interval`, and while it has a free delivery slot (`concurrency`).
/// The batch goes through retry (with backoff and jitter), the breaker, and a timeout per
/// attempt. A batch that finds the breaker open waits for it (probing at its retry_after) until
/// `open_deadline` after it first found it open, then is dead-lettered (breaker_open). A pass
/// through the retry layer that ends in a failure dead-letters the batch at once: retries
/// exhausted when the pass made retry.max_attempts attempts, not retryable otherwise. A pass
/// ended by the breaker opening is followed by a new pass once it lets calls through, so a held
/// batch's attempts (dead_letter_entry::attempts counts them all) may exceed max_attempts.
/// replay() hands dead letters back.
///
/// Misuse: an unknown destination id throws std::out_of_range from submit()/try_submit();
/// run() a second time throws std::logic_error; submitting after a stop throws
/// processor_stopped (try_submit: submit_status::stopped). Destroying the processor while run()
/// or a submit() is in progress is undefined (it is what they work on).
template <class P>
class event_processor {
 public:
  using payload_type = P;

  explicit event_processor(event_processor_options<P> options);
  event_processor(const event_processor&) = delete;
  event_processor& operator=(const event_processor&) = delete;

  /// The id of the destination named `name`; std::invalid_argument if there is none.
  [[nodiscard]] destination_id destination(std::string_view name) const;
  [[nodiscard]] std::size_t destination_count() const noexcept { return dests_.size(); }

  /// Runs the batchers and the metrics until a stop, then drains (see the file comment).
  /// Events submitted before run() wait for it. A run() whose task is destroyed before it
  /// started (cancelled first, or never awaited) still closes the processor as a stop with no
  /// grace would: intake closed, what is queued dead-lettered, the metrics watch closed.
  task<void> run(cancel_token stop = {});
  /// Begins the drain, as the stop token does. Idempotent; any thread.
  void stop() noexcept;

  /// Takes one event, applying the backpressure policy when the backlog is full: waits for room
  /// (block), throws backlog_full (reject), or sheds (shed_lowest; it never waits). Throws
  /// processor_stopped once a stop began.
  task<void> submit(P payload, destination_id to, priority level = priority::medium);
  /// Takes one event without waiting. `payload` is moved from only when the answer is accepted
  /// or shed.
  submit_status try_submit(P& payload, destination_id to, priority level = priority::medium);
  submit_status try_submit(P&& payload, destination_id to, priority level = priority::medium) {
    return try_submit(payload, to, level);
  }

  /// Takes up to `max` dead letters back (oldest first) and submits them again, keeping their
  /// ids; stops early, leaving the rest in the queue, when the backlog is full or a stop began
  /// (replays never wait or shed). Returns how many went back in.
  std::size_t replay(std::size_t max = std::numeric_limits<std::size_t>::max());

  /// The counters now, with the latency and error rate over the whole run.
  [[nodiscard]] processor_metrics snapshot() const;
  /// A snapshot every metrics_interval while run() runs, with the latency and error rate over
  /// the interval; the final one (stopped = true) when run() ends, after which the watch is
  /// closed: changed() then returns empty, and get() still returns that final snapshot.
  ///
  ///     auto rx = events.metrics().subscribe();
  ///     while (auto m = co_await rx.changed()) export_gauges(*m);
  ///     export_gauges(rx.get());   // the final counters
  [[nodiscard]] watch<processor_metrics>& metrics() noexcept { return metrics_; }
  [[nodiscard]] dead_letter_queue<P>& dead_letters() noexcept { return dead_letters_; }

 private:
  using dest_state = detail::event_destination<P>;

  // Counts a submit() waiting for room (completions wake such waiters only).
  struct blocked_guard {
    std::atomic<std::size_t>& n;
    explicit blocked_guard(std::atomic<std::size_t>& c) noexcept : n(c) { n.fetch_add(1); }
    ~blocked_guard() { n.fetch_sub(1); }
  };

  dest_state& dest_of(destination_id to) const {
    if (to.index >= dests_.size()) {
      std::string what = "weft::flow::event_processor: no destination with index ";
      what += std::to_string(to.index);
      throw std::out_of_range(what);
    }
    return *dests_[to.index];
  }
  bool try_admit() noexcept {
    auto n = backlog_.load();
    while (n < options_.max_backlog) {
      if (backlog_.compare_exchange_weak(n, n + 1)) return true;
    }
    return false;
  }
  /// One entry into the dead-letter queue; an entry that memory cannot be found for is counted
  /// as lost there (dead_letter_queue::overflowed), never thrown from here.
  void add_dead_letter(dest_state& d, envelope<P>& e, dead_letter_reason reason,
                       std::uint32_t attempts, const std::exception_ptr& error) noexcept {
    try {
      dead_letters_.push(
          dead_letter_entry<P>{std::move(e), reason, attempts, error, d.options.name});
    } catch (...) {
      dead_letters_.count_lost();
    }
  }
  /// `k` events left the backlog: wake the submitters waiting for room.
  void resolve(std::size_t k) noexcept {
    backlog_.fetch_sub(k);
    if (blocked_.load() > 0) space_.send(space_version_.fetch_add(1) + 1);
  }
  // The hot path touches one shared line besides the backlog: the destination's. The stop
  // check is made under its lock, which the drain's sweep takes too, so an event is either
  // refused or queued where the sweep finds it. False (the event back in `e`) once stopping.
  bool enqueue(envelope<P>& e, bool fresh) {
    auto& d = *dests_[e.to.index];
    bool ring = false;
    {
      std::lock_guard lock{d.lock};
      if (stopping_.load(std::memory_order_relaxed)) return false;
      if (fresh) e.id = d.next_sequence * dests_.size() + e.to.index;
      ring = d.push_locked(std::move(e));  // may throw (memory): then nothing changed
      if (fresh) ++d.next_sequence;
      ++d.accepted;
    }
    if (ring) d.bell.set();
    return true;
  }
  envelope<P> wrap(P& payload, destination_id to, priority level) {
    return envelope<P>{std::move(payload), 0, level, to, clock::now(), 0};
  }
  /// shed_lowest: removes the newest queued event of the lowest lane below `level`, from the
  /// destination with the most events in that lane.
  std::optional<envelope<P>> take_victim(priority level) {
    for (std::size_t p = priority_count; p-- > static_cast<std::size_t>(level) + 1;) {
      for (;;) {
        dest_state* best = nullptr;
        std::size_t most = 0;
        for (auto& d : dests_) {
          std::lock_guard lock{d->lock};
          if (d->lanes[p].size() > most) {
            most = d->lanes[p].size();
            best = d.get();
          }
        }
        if (best == nullptr) break;  // this lane is empty: the next one up
        std::lock_guard lock{best->lock};
        if (auto e = best->pop_newest_locked(p)) return e;
        // A batcher took it meanwhile: look at this lane again.
      }
    }
    return std::nullopt;
  }
  /// try_submit without counting refusals (submit() counts its own).
  submit_status offer(P& payload, destination_id to, priority level);
  // Counted first; the callback is a notification, and what it throws is swallowed (the event
  // is shed either way, and the submitter's own event must not fail for it).
  void shed_one(const envelope<P>& e) noexcept {
    shed_.fetch_add(1);
    if (!options_.on_shed) return;
    try {
      options_.on_shed(e);
    } catch (...) {
    }
  }

  task<void> batcher(dest_state& d);
  // A batch handed to a delivery task. Whatever happens to the task (it may be cancelled before
  // it runs, and its frame destroyed with this in it), a batch not yet resolved is dead-lettered
  // (shutdown) when this goes, so no event leaves the counters.
  struct batch_in_delivery {
    event_processor* owner = nullptr;
    dest_state* d = nullptr;
    std::vector<envelope<P>> events;
    semaphore::permit slot;
    batch_in_delivery(event_processor* o, dest_state* dest, std::vector<envelope<P>> e,
                      semaphore::permit s) noexcept
        : owner(o), d(dest), events(std::move(e)), slot(std::move(s)) {}
    batch_in_delivery(batch_in_delivery&& other) noexcept
        : owner(std::exchange(other.owner, nullptr)),
          d(other.d),
          events(std::move(other.events)),
          slot(std::move(other.slot)) {}
    batch_in_delivery& operator=(batch_in_delivery&&) = delete;
    /// Marks it resolved (acknowledged or dead-lettered by the delivery itself).
    void done() noexcept { owner = nullptr; }
    ~batch_in_delivery() {
      if (owner == nullptr) return;
      d->in_delivery.fetch_sub(events.size(), std::memory_order_relaxed);
      owner->dead_letter(*d, events, dead_letter_reason::shutdown, 0, nullptr);
    }
  };
  task<void> deliver(batch_in_delivery b);
  void acknowledge(dest_state& d, const std::vector<envelope<P>>& batch);
  void dead_letter(dest_state& d, std::vector<envelope<P>>& batch, dead_letter_reason reason,
                   std::uint32_t attempts, const std::exception_ptr& error) noexcept;
  void begin_drain() noexcept;
  // Finishes a run() whose task was destroyed before it started (cancelled first, or the
  // runtime shut down): the intake closes, what is queued is dead-lettered (shutdown) and the
  // metrics watch closes, as a run would have done.
  struct run_guard {
    event_processor* owner = nullptr;
    bool entered = false;
    explicit run_guard(event_processor* o) noexcept : owner(o) {}
    run_guard(run_guard&& other) noexcept
        : owner(std::exchange(other.owner, nullptr)), entered(other.entered) {}
    run_guard& operator=(run_guard&&) = delete;
    ~run_guard() {
      if (owner == nullptr || entered) return;
      owner->begin_drain();
      owner->finish();
    }
  };
  task<void> run_body(cancel_token stop, run_guard guard);
  /// The end of a run: the sweep, the final snapshot, the watch closed.
  void finish() noexcept;

  /// After every batcher stopped: dead-letters what is still queued (reason shutdown).
  void sweep() noexcept;
  task<void> publish_loop();
  [[nodiscard]] std::pair<std::uint64_t, std::uint64_t> attempt_totals() const noexcept;
  /// A snapshot whose latency and error rate cover the window since the last published one;
  /// `advance` starts the next window.
  processor_metrics windowed(bool advance);
  processor_metrics build(const latency_histogram::counts& latency, std::uint64_t attempts,
                          std::uint64_t failed) const;
  static task<void> join_all(task_group& g) { co_await g.join(); }

  event_processor_options<P> options_;
  std::vector<std::unique_ptr<dest_state>> dests_;

  std::atomic<std::uint64_t> accepted_shed_{0};  // accepted and shed at once (the rest: dests_)
  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint64_t> dead_lettered_{0};
  std::atomic<std::uint64_t> shed_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> replayed_{0};
  std::atomic<std::size_t> backlog_{0};
  std::atomic<std::size_t> blocked_{0};
  std::atomic<std::uint64_t> space_version_{0};
  watch<std::uint64_t> space_{0};
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  event stop_requested_;

  dead_letter_queue<P> dead_letters_;
  latency_histogram latency_;
  // The metrics watch's window: what the previous published snapshot had seen.
  std::mutex window_mutex_;
  latency_histogram::counts window_latency_{};
  std::uint64_t window_attempts_ = 0;
  std::uint64_t window_failed_ = 0;
  watch<processor_metrics> metrics_{processor_metrics{}};
};

// ---------------------------------------------------------------------------------------------

template <class P>
event_processor<P>::event_processor(event_processor_options<P> options)
    : options_(std::move(options)), dead_letters_(options_.dead_letter_capacity) {
  detail::validate_processor(options_.destinations.size(), options_.max_backlog, options_.weights,
                             options_.drain_grace, options_.metrics_interval);
  for (std::size_t i = 0; i < options_.destinations.size(); ++i) {
    const auto& o = options_.destinations[i];
    detail::validate_destination(o.name, static_cast<bool>(o.deliver), o.batch_size,
                                 o.concurrency, o.flush_interval, o.attempt_timeout,
                                 o.open_deadline);
    for (std::size_t j = 0; j < i; ++j) {
      if (options_.destinations[j].name == o.name) {
        std::string what = "weft::flow::event_processor: two destinations are named '";
        what += o.name;
        what += "'";
        throw std::invalid_argument(what);
      }
    }
  }
  dests_.reserve(options_.destinations.size());
  for (auto& o : options_.destinations) {
    dests_.push_back(std::make_unique<dest_state>(std::move(o)));
  }
  options_.destinations.clear();
  metrics_.send(build({}, 0, 0));
}

template <class P>
destination_id event_processor<P>::destination(std::string_view name) const {
  for (std::size_t i = 0; i < dests_.size(); ++i) {
    if (dests_[i]->options.name == name) return destination_id{static_cast<std::uint32_t>(i)};
  }
  std::string what = "weft::flow::event_processor: no destination named '";
  what += name;
  what += "'";
  throw std::invalid_argument(what);
}

template <class P>
submit_status event_processor<P>::offer(P& payload, destination_id to, priority level) {
  dest_of(to);
  if (stopping_.load(std::memory_order_relaxed)) return submit_status::stopped;
  // Queues the new event in a backlog slot it already holds; gives the slot back if the stop
  // came first or memory ran out (the payload back in the caller's hands either way).
  const auto place = [&]() -> bool {
    auto e = wrap(payload, to, level);
    try {
      if (enqueue(e, true)) return true;
    } catch (...) {
      payload = std::move(e.payload);
      resolve(1);
      throw;
    }
    payload = std::move(e.payload);
    resolve(1);
    return false;
  };
  if (try_admit()) return place() ? submit_status::accepted : submit_status::stopped;
  if (options_.policy != backpressure::shed_lowest) return submit_status::full;
  if (auto victim = take_victim(level)) {
    // The new event takes the victim's slot. (A stop between the two leaves the victim shed,
    // counted, where the drain would have dead-lettered or delivered it.)
    shed_one(*victim);
    return place() ? submit_status::accepted : submit_status::stopped;
  }
  if (stopping_.load()) return submit_status::stopped;
  const auto incoming = wrap(payload, to, level);
  accepted_shed_.fetch_add(1);
  shed_one(incoming);
  return submit_status::shed;
}

template <class P>
submit_status event_processor<P>::try_submit(P& payload, destination_id to, priority level) {
  const auto status = offer(payload, to, level);
  if (status == submit_status::full || status == submit_status::stopped) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
  }
  return status;
}

template <class P>
task<void> event_processor<P>::submit(P payload, destination_id to, priority level) {
  auto status = offer(payload, to, level);
  while (status == submit_status::full && options_.policy == backpressure::block) {
    // Full: subscribe, count ourselves waiting, then look again, so that room made after the
    // look (whose maker sees the count) wakes the wait. Only waiting submitters pay for this.
    auto room = space_.subscribe();
    blocked_guard waiting{blocked_};
    status = offer(payload, to, level);
    if (status != submit_status::full) break;
    co_await room.changed();
    status = offer(payload, to, level);
  }
  switch (status) {
    case submit_status::accepted:
    case submit_status::shed:
      co_return;
    case submit_status::stopped:
      rejected_.fetch_add(1, std::memory_order_relaxed);
      throw processor_stopped();
    case submit_status::full:
      break;
  }
  rejected_.fetch_add(1, std::memory_order_relaxed);
  throw backlog_full(options_.max_backlog);
}

template <class P>
std::size_t event_processor<P>::replay(std::size_t max) {
  auto entries = dead_letters_.take(max);
  std::size_t done = 0;
  // Whatever did not go back in returns to the front of the queue, in order (also when memory
  // ran out half way).
  struct put_back_rest {
    dead_letter_queue<P>& q;
    std::vector<dead_letter_entry<P>>& entries;
    std::size_t& done;
    ~put_back_rest() {
      if (done >= entries.size()) return;
      entries.erase(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(done));
      q.put_back(std::move(entries));
    }
  } rest{dead_letters_, entries, done};
  for (; done < entries.size(); ++done) {
    if (stopping_.load() || !try_admit()) break;
    auto& e = entries[done].event;
    const auto accepted_at = e.accepted_at;
    e.accepted_at = clock::now();
    ++e.replays;
    bool queued = false;
    try {
      queued = enqueue(e, false);
    } catch (...) {
      --e.replays;
      e.accepted_at = accepted_at;
      resolve(1);
      throw;
    }
    if (!queued) {
      --e.replays;
      e.accepted_at = accepted_at;
      resolve(1);
      break;
    }
    replayed_.fetch_add(1, std::memory_order_relaxed);
  }
  return done;
}

template <class P>
void event_processor<P>::stop() noexcept {
  begin_drain();  // intake closes now, not when run() next looks
  stop_requested_.set();
}

template <class P>
void event_processor<P>::begin_drain() noexcept {
  stopping_.store(true);
  for (auto& d : dests_) {
    {
      // A batcher decides to wait under the lock: taking it here orders this wake after that.
      std::lock_guard lock{d->lock};
      d->wants = dest_state::wake_on::nothing;
    }
    d->bell.set();
  }
  space_.send(space_version_.fetch_add(1) + 1);  // submitters waiting for room: stopped
}

template <class P>
task<void> event_processor<P>::run(cancel_token stop) {
  return run_body(std::move(stop), run_guard{this});
}

template <class P>
void event_processor<P>::finish() noexcept {
  sweep();
  stopped_.store(true);
  try {
    metrics_.send(windowed(false));
  } catch (...) {
    // Out of memory for the snapshot: the watch keeps the previous one; snapshot() is exact.
  }
  metrics_.close();
}

template <class P>
task<void> event_processor<P>::run_body(cancel_token stop, run_guard guard) {
  if (started_.exchange(true)) {
    guard.owner = nullptr;  // not this run's to finish
    throw std::logic_error("weft::flow::event_processor::run: the processor already ran");
  }
  guard.entered = true;
  const auto own = co_await this_task::cancel_token();
  task_group batchers;
  for (auto& d : dests_) batchers.spawn(batcher(*d));
  task_group publisher;
  publisher.spawn(publish_loop());

  bool hard = false;
  try {
    co_await with_cancellation(stop, stop_requested_.wait());
  } catch (const operation_cancelled&) {
    hard = own.is_cancellation_requested();
  }
  begin_drain();
  if (!hard) {
    try {
      // On the deadline the join is cancelled: it cancels the batchers (they cancel their
      // deliveries, which dead-letter their batches) and waits for them.
      co_await weft::timeout(options_.drain_grace, batchers.join());
    } catch (const timed_out&) {
    } catch (const operation_cancelled&) {
      hard = true;
    }
  }
  // Whatever ended the wait above (a join cancelled before it started cancels nothing), every
  // batcher and delivery is stopped and joined before the sweep.
  batchers.cancel();
  co_await shielded(join_all(batchers));
  publisher.cancel();
  co_await shielded(join_all(publisher));
  finish();
  if (hard) throw operation_cancelled{};
}

template <class P>
void event_processor<P>::sweep() noexcept {
  // begin_drain ran: enqueue refuses under the lock taken here, so nothing arrives after.
  for (auto& d : dests_) {
    std::size_t n = 0;
    {
      std::lock_guard lock{d->lock};
      for (std::size_t p = 0; p < priority_count; ++p) {
        for (auto& e : d->lanes[p]) {
          add_dead_letter(*d, e, dead_letter_reason::shutdown, 0, nullptr);
          ++n;
        }
        d->lanes[p].clear();
      }
      d->queued = 0;
    }
    d->dead_lettered.fetch_add(n, std::memory_order_relaxed);
    dead_lettered_.fetch_add(n, std::memory_order_relaxed);
    if (n != 0) resolve(n);
  }
}

template <class P>
task<void> event_processor<P>::batcher(dest_state& d) {
  task_group deliveries;
  std::exception_ptr failure;
  try {
    for (;;) {
      auto slot = co_await d.slots.acquire();
      std::vector<envelope<P>> batch;
      bool finished = false;
      for (;;) {
        bool wait_any = false;
        clock::time_point deadline{};
        {
          std::lock_guard lock{d.lock};
          const bool draining = stopping_.load();
          const auto due = [&] {
            return clock::now() >= detail::saturating_add(d.oldest_locked(),
                                                          d.options.flush_interval);
          };
          if (d.queued >= d.options.batch_size || (d.queued > 0 && (draining || due()))) {
            batch.reserve(std::min(d.queued, d.options.batch_size));
            d.take_batch_locked(options_.weights, batch);
          } else if (d.queued == 0 && draining) {
            finished = true;
          } else {
            d.bell.reset();
            if (d.queued == 0) {
              d.wants = dest_state::wake_on::any;
              wait_any = true;
            } else {
              d.wants = dest_state::wake_on::full_batch;
              deadline = detail::saturating_add(d.oldest_locked(), d.options.flush_interval);
            }
          }
        }
        if (finished || !batch.empty()) break;
        if (wait_any || deadline == clock::time_point::max()) {
          co_await d.bell.wait();
        } else {
          try {
            co_await with_deadline(deadline, d.bell.wait());
          } catch (const timed_out&) {
          }
        }
      }
      if (finished) break;
      d.in_delivery.fetch_add(batch.size(), std::memory_order_relaxed);
      deliveries.spawn(deliver(batch_in_delivery{this, &d, std::move(batch), std::move(slot)}));
    }
    // Cancellable: a drain's deadline or a hard stop reaching this join cancels the deliveries
    // still running (each dead-letters its batch) and waits for them.
    co_await deliveries.join();
    co_return;
  } catch (...) {
    failure = std::current_exception();  // cancelled: the deliveries are cancelled below
  }
  deliveries.cancel();
  co_await shielded(join_all(deliveries));
  std::rethrow_exception(failure);
}

template <class P>
task<void> event_processor<P>::deliver(batch_in_delivery b) {
  dest_state& d = *b.d;
  const auto token = co_await this_task::cancel_token();
  std::uint32_t attempts = 0;
  std::optional<clock::time_point> open_since;
  std::exception_ptr error;
  std::optional<dead_letter_reason> dead;
  bool delivered = false;
  resilience::pipeline layers{d.retry, d.breaker, d.limiter};
  const std::span<const envelope<P>> events{b.events};
  // With max_attempts 1 every failure has used the one attempt: retries exhausted.
  const auto exhausted = [&](std::uint32_t pass) {
    return pass >= static_cast<std::uint32_t>(d.options.retry.max_attempts)
               ? dead_letter_reason::retries_exhausted
               : dead_letter_reason::not_retryable;
  };
  while (!delivered && !dead) {
    clock::duration pause{};
    std::uint32_t pass = 0;  // attempts in this pass through the retry layer
    bool cut = false;        // the last attempt was cut short by our own cancellation
    try {
      co_await layers.execute([&] {
        ++attempts;
        ++pass;
        return d.options.deliver(events);
      });
      delivered = true;
    } catch (const resilience::rejected& r) {
      error = std::current_exception();
      const auto code = r.code();
      if (code == resilience::errc::circuit_open || code == resilience::errc::circuit_isolated) {
        const auto now = clock::now();
        if (!open_since) open_since = now;
        const auto give_up = detail::saturating_add(*open_since, d.options.open_deadline);
        if (now >= give_up) {
          dead = dead_letter_reason::breaker_open;
        } else {
          // Probe when the breaker expects to let calls through (at least a millisecond apart,
          // at most at the deadline).
          const clock::duration floor = std::chrono::milliseconds{1};
          pause = std::min(std::max(r.retry_after().value_or(d.options.flush_interval), floor),
                           give_up - now);
        }
      } else {
        dead = exhausted(pass);
      }
    } catch (const operation_cancelled&) {
      if (token.is_cancellation_requested()) {
        dead = dead_letter_reason::shutdown;
        cut = pass > 0;
      } else {
        // The destination's own cancellation (not ours): a failure like any other.
        error = std::current_exception();
        dead = exhausted(pass);
      }
    } catch (...) {
      error = std::current_exception();
      dead = exhausted(pass);
    }
    // Counted per pass, so the error rate moves while a batch is held by an open breaker.
    d.attempts.fetch_add(pass, std::memory_order_relaxed);
    d.failed_attempts.fetch_add(pass - (delivered || cut ? 1u : 0u), std::memory_order_relaxed);
    if (delivered || dead) break;
    try {
      co_await sleep_for(pause);
    } catch (const operation_cancelled&) {
      dead = dead_letter_reason::shutdown;
    }
  }
  d.in_delivery.fetch_sub(b.events.size(), std::memory_order_relaxed);
  b.done();
  if (delivered) {
    acknowledge(d, b.events);
  } else {
    dead_letter(d, b.events, *dead, attempts, error);
  }
  b.slot.release();
}

template <class P>
void event_processor<P>::acknowledge(dest_state& d, const std::vector<envelope<P>>& batch) {
  const auto now = clock::now();
  for (const auto& e : batch) latency_.record(now - e.accepted_at);
  d.delivered.fetch_add(batch.size(), std::memory_order_relaxed);
  d.batches.fetch_add(1, std::memory_order_relaxed);
  delivered_.fetch_add(batch.size(), std::memory_order_relaxed);
  resolve(batch.size());
}

template <class P>
void event_processor<P>::dead_letter(dest_state& d, std::vector<envelope<P>>& batch,
                                     dead_letter_reason reason, std::uint32_t attempts,
                                     const std::exception_ptr& error) noexcept {
  for (auto& e : batch) add_dead_letter(d, e, reason, attempts, error);
  d.dead_lettered.fetch_add(batch.size(), std::memory_order_relaxed);
  dead_lettered_.fetch_add(batch.size(), std::memory_order_relaxed);
  resolve(batch.size());
}

template <class P>
task<void> event_processor<P>::publish_loop() {
  for (;;) {
    co_await sleep_for(options_.metrics_interval);
    metrics_.send(windowed(true));
  }
}

template <class P>
std::pair<std::uint64_t, std::uint64_t> event_processor<P>::attempt_totals() const noexcept {
  std::uint64_t attempts = 0, failed = 0;
  for (auto& d : dests_) {
    attempts += d->attempts.load(std::memory_order_relaxed);
    failed += d->failed_attempts.load(std::memory_order_relaxed);
  }
  return {attempts, failed};
}

template <class P>
processor_metrics event_processor<P>::windowed(bool advance) {
  std::lock_guard lock{window_mutex_};
  const auto latency = latency_.read();
  const auto [attempts, failed] = attempt_totals();
  auto m = build(latency.since(window_latency_), attempts - window_attempts_,
                 failed - window_failed_);
  if (advance) {
    window_latency_ = latency;
    window_attempts_ = attempts;
    window_failed_ = failed;
  }
  return m;
}

template <class P>
processor_metrics event_processor<P>::snapshot() const {
  const auto [attempts, failed] = attempt_totals();
  return build(latency_.read(), attempts, failed);
}

template <class P>
processor_metrics event_processor<P>::build(const latency_histogram::counts& latency,
                                            std::uint64_t attempts, std::uint64_t failed) const {
  processor_metrics m;
  // Resolutions first, acceptances last: a snapshot taken while events move then errs towards
  // a backlog that is too small, never towards counting an event twice.
  m.delivered = delivered_.load();
  m.dead_lettered = dead_lettered_.load();
  m.shed = shed_.load();
  m.backlog = backlog_.load();
  m.accepted = accepted_shed_.load();
  m.rejected = rejected_.load(std::memory_order_relaxed);
  m.replayed = replayed_.load(std::memory_order_relaxed);
  m.latency_avg = latency.mean();
  m.latency_p99 = latency.quantile(0.99);
  m.error_rate = attempts == 0 ? 0.0 : static_cast<double>(failed) / static_cast<double>(attempts);
  m.destinations.reserve(dests_.size());
  for (auto& d : dests_) {
    destination_metrics dm;
    dm.name = d->options.name;
    dm.breaker = d->breaker.state();
    dm.delivered = d->delivered.load(std::memory_order_relaxed);
    dm.dead_lettered = d->dead_lettered.load(std::memory_order_relaxed);
    dm.batches = d->batches.load(std::memory_order_relaxed);
    dm.attempts = d->attempts.load(std::memory_order_relaxed);
    dm.failed_attempts = d->failed_attempts.load(std::memory_order_relaxed);
    {
      std::lock_guard lock{d->lock};
      dm.queued = d->queued;
      m.accepted += d->accepted;
      for (std::size_t p = 0; p < priority_count; ++p) m.queued[p] += d->lanes[p].size();
    }
    dm.in_delivery = d->in_delivery.load(std::memory_order_relaxed);
    m.destinations.push_back(std::move(dm));
  }
  m.draining = stopping_.load();
  m.stopped = stopped_.load();
  return m;
}

}  // namespace weft::flow
