// weft::runtime: the work-stealing scheduler that runs tasks; block_on and spawn from any thread.
#pragma once

#include <chrono>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/detail/children.hpp>
#include <weft/detail/completion_call.hpp>
#include <weft/detail/task_frame.hpp>
#include <weft/introspection/stall_report.hpp>
#include <weft/introspection/task_dump.hpp>
#include <weft/join_handle.hpp>
#include <weft/spawn_options.hpp>
#include <weft/task.hpp>
#include <weft/testing/fault_plan.hpp>
#include <weft/time/clock.hpp>

namespace weft {

/// How a runtime is built. Fields have the defaults a service wants; tests set `workers`.
struct runtime_options {
  /// Worker threads; 0 means one per CPU the process may run on.
  std::size_t workers = 0;
  /// Upper bound on the threads spawn_blocking may start (they start on demand).
  std::size_t max_blocking_threads = 512;
  /// An idle blocking thread exits after this long without work.
  std::chrono::milliseconds blocking_keep_alive{10'000};
  /// A worker takes from the injection queue first every this many tasks, so that queue cannot
  /// starve behind a busy local queue (Tokio's 61).
  std::uint32_t global_queue_interval = 61;
  /// At most this many tasks in a row run from the LIFO slot before the local queue gets a turn
  /// (Tokio now uses 3; 3 costs fork-join a third of its throughput here: docs/runtime.md).
  std::uint32_t max_lifo_polls = 32;
  /// Real time, or paused time for deterministic tests of anything timed (see time_mode). Paused
  /// time needs exactly one worker: `workers` 0 becomes 1, more is refused.
  time_mode time = time_mode::real;
  /// Give each worker an io_uring. False (or a kernel that refuses io_uring) leaves tasks and
  /// timers working and makes every I/O operation throw io_unavailable.
  bool io_uring = true;
  /// Submission queue entries per worker ring (a power of two, 1 to 32768); the completion queue
  /// gets four times as many.
  unsigned io_ring_entries = 256;
  /// How long a worker with I/O in flight keeps polling its ring before it sleeps, when it finds
  /// nothing to run (each poll is one non-blocking io_uring_enter). A completion or a task that
  /// arrives meanwhile is handled without the sleep and the wake-up, at the price of the CPU the
  /// polls burn while the worker is idle. 0 (the default) sleeps at once: on the measured loads
  /// the polls cost more CPU than they saved (docs/runtime.md, "Busy polling"). 0 to 1 s.
  std::chrono::microseconds busy_poll{0};
  /// Test seam: called on the worker's thread just before each task resumption. Under paused
  /// time (one worker) the calls come in the same order on every run, so a test can act at the
  /// k-th suspension point of a scenario, e.g. cancel it there. Empty by default; when set it
  /// costs one call per resumption. It must not resume tasks itself or block.
  std::function<void()> before_resume{};
  /// Faults to inject into io_uring operations, for tests (see fault_plan). Empty (the default)
  /// means none, unless the environment variable WEFT_FAULTS holds a plan: then that plan
  /// applies, so a whole test run can be put under faults without changing its code. A plan
  /// that does not parse makes the runtime's constructor throw std::invalid_argument.
  fault_plan faults{};
  /// Stall detector: a watchdog thread reports a task resumption that has kept its worker
  /// longer than this (a blocking call, a long loop without a co_await), once when it notices
  /// and once when the resumption ends. Zero turns it off (no thread). See docs/introspection.md.
  std::chrono::milliseconds stall_threshold{100};
  /// Where stall reports go, on the watchdog's thread (the start) and on the worker's (the end);
  /// it must not block. Empty (the default): one line to stderr.
  std::function<void(const stall_report&)> on_stall{};
  /// Writes dump_tasks() to stderr when the process receives SIGUSR1. The signal handler only
  /// writes a byte to a pipe; a thread of the runtime takes the dump. The handler is installed
  /// while a runtime asking for it lives (the previous disposition comes back after the last).
  bool dump_on_sigusr1 = false;
  /// Paused time only (one worker): when non-zero, the worker picks the next task to run among
  /// the ready ones with a generator seeded by this, instead of in queue order. The same seed
  /// gives the same schedule. Zero: queue order, unless the environment variable
  /// WEFT_SCHEDULE_SEED holds a seed (for putting a whole paused-time suite under one).
  std::uint64_t schedule_seed = 0;
  /// Times every resumption (two clock reads) for the resumption-duration and scheduling-delay
  /// histograms of stats() and prometheus_text. Off: those histograms stay empty.
  bool timing_metrics = false;
  /// External-loop mode: the runtime starts no worker thread. The thread that constructs it is
  /// its one worker, driven by an event loop that is not weft's (epoll, libuv, Qt, a game loop):
  /// the loop waits until event_fd() is readable or the timeout run_ready() returned has passed,
  /// then calls run_ready(). Needs `workers` 0 or 1 (0 becomes 1), real time and no busy_poll;
  /// run_ready(), shutdown() and the destructor must be called on the constructing thread.
  /// See docs/embedding.md.
  bool external_loop = false;
};

/// What runtime::run_ready did, and when the host loop should call it again.
struct run_ready_result {
  /// Task resumptions it ran.
  std::size_t resumed = 0;
  /// Work is still ready (the budget ran out, a timer is due, or the fault injector holds
  /// completions back): call run_ready again without waiting.
  bool more = false;
  /// When the earliest pending timer is due, if any: its deadline, or for a timer far away the
  /// start of its timer-wheel slot (the loop then calls a little early).
  std::optional<clock::time_point> next_timer;
  /// The timeout for the loop's wait on event_fd(), in poll/epoll_wait terms: 0 when `more`, -1
  /// when no timer is pending, else the time from the return to next_timer, rounded up to a
  /// whole millisecond so that the timer is due when the wait ends.
  int timeout_ms = -1;
};

/// Counts of durations in power-of-two buckets: bucket i holds the samples in
/// (2^(i-1), 2^i] microseconds (bucket 0: up to 1 µs); the last bucket holds everything longer.
struct duration_histogram {
  static constexpr std::size_t buckets = 22;  // up to 2^20 µs (about 1 s), then the rest
  std::uint64_t counts[buckets] = {};
  std::uint64_t sum_ns = 0;
  /// The bucket a sample of `ns` nanoseconds falls in.
  [[nodiscard]] static constexpr std::size_t bucket_of(std::uint64_t ns) noexcept {
    if (ns <= 1000) return 0;
    const auto b = static_cast<std::size_t>(64 - __builtin_clzll((ns - 1) / 1000));
    return b < buckets - 1 ? b : buckets - 1;
  }
  [[nodiscard]] std::uint64_t count() const noexcept {
    std::uint64_t n = 0;
    for (auto c : counts) n += c;
    return n;
  }
  /// The upper bound of bucket i in seconds (infinity for the last).
  [[nodiscard]] static double upper_bound_seconds(std::size_t i) noexcept;
};

/// What one worker did since the runtime started. Counters only grow.
struct worker_stats {
  std::uint64_t tasks_run = 0;        // coroutine resumptions
  std::uint64_t steals = 0;           // successful steal operations from other workers
  std::uint64_t tasks_stolen = 0;     // tasks taken by those steals
  std::uint64_t parks = 0;            // times the worker went to sleep
  std::uint64_t busy_poll_hits = 0;   // times a busy poll found work before the worker slept
  std::uint64_t injection_pulls = 0;  // tasks taken from the injection queue
  std::uint64_t lifo_hits = 0;        // tasks run from the LIFO slot
  std::uint64_t overflows = 0;        // times half the local queue moved to the injection queue
  std::uint64_t timers_fired = 0;     // timers that reached their deadline
  std::uint64_t io_submitted = 0;     // SQEs handed to the kernel
  std::uint64_t io_completed = 0;     // operation completions dispatched
  std::uint64_t io_enters = 0;        // io_uring_enter calls (submissions are batched)
  std::uint64_t cq_overflows = 0;     // times the CQ had overflowed and was flushed
  std::uint64_t sq_full = 0;          // times the SQ was full and was submitted to make room
  // What the fault injector did (all zero without runtime_options::faults).
  std::uint64_t injected_errors = 0;           // operations completed with an injected error
  std::uint64_t injected_short_transfers = 0;  // transfers submitted with a shorter length
  std::uint64_t injected_delays = 0;           // completions held back for a few polls
  std::uint64_t injected_enter_failures = 0;   // io_uring_enter calls refused
  std::uint64_t busy_ns = 0;       // time not parked (running tasks, polling, busy polls, stealing)
  std::uint64_t local_queue = 0;   // tasks in the local queue now
  std::uint64_t io_in_flight = 0;  // io_uring operations submitted and not yet completed
  std::uint64_t stalls = 0;        // resumptions the stall detector reported
  bool in_task = false;            // resuming a task right now
  /// With runtime_options::timing_metrics: how long each resumption kept the worker, and how
  /// long a woken task waited before it ran (from its wake-up to its resumption).
  duration_histogram resume_duration;
  duration_histogram schedule_delay;
};

struct runtime_stats {
  std::vector<worker_stats> workers;
  std::size_t blocking_threads = 0;  // blocking threads alive now
  std::size_t blocking_queue = 0;    // spawn_blocking jobs waiting for a thread
  std::size_t blocking_in_flight = 0;  // spawn_blocking jobs submitted and not finished
  std::size_t injection_queue = 0;   // tasks in the shared injection queue
  std::size_t live_tasks = 0;        // spawned tasks not yet destroyed
  /// live_tasks by state, without pausing anyone: running = workers inside a resumption, ready =
  /// tasks in queues, suspended = the rest (an estimate while tasks move; exact when idle).
  std::size_t running_tasks = 0;
  std::size_t ready_tasks = 0;
  std::size_t suspended_tasks = 0;
  std::uint64_t dumps = 0;              // dump_tasks calls
  std::uint64_t last_dump_pause_ns = 0;  // how long the last dump held the workers
};

namespace detail {
[[noreturn]] void throw_empty_task(const char* api);
/// Spawns `h` as a root of `rt` whose completion `waiter` hears about, then blocks this thread
/// until it finished or the runtime destroyed it.
void block_on_root(runtime_core* rt, std::coroutine_handle<> h, promise_base& p,
                   const spawn_site& site);

template <class T>
std::coroutine_handle<task_promise<T>> prepare_root(task<T>&& t, const char* api) {
  auto h = t.release();
  if (!h) throw_empty_task(api);
  return h;
}

template <class F>
concept task_factory = std::invocable<F&> && task_type<std::invoke_result_t<F&>>;
}  // namespace detail

/// A pool of worker threads that run tasks, each with a local run queue that the others steal
/// from, a LIFO slot for the task it just woke, and a shared injection queue for work from
/// outside. Idle workers park without spinning.
///
///     weft::runtime rt{weft::runtime_options{.workers = 2}};
///     int v = rt.block_on(compute());             // from a plain thread
///     auto h = rt.spawn(background());            // runs on the workers
///
/// Destroying the runtime (or shutdown()) stops the workers, destroys every task that has not
/// finished (their destructors run; their join handles then throw operation_cancelled), and joins
/// the threads, waiting for running spawn_blocking functions.
/// Thread safety: every member may be called from any thread, except that shutdown() and the
/// destructor must not run on one of the runtime's own workers, and block_on must not be called
/// from a worker (it would block it): there, co_await instead. An external-loop runtime
/// (runtime_options::external_loop) is driven by the thread that constructed it: run_ready(),
/// shutdown() and the destructor only there (elsewhere shutdown() throws std::logic_error, so
/// the destructor ends the process), and block_on() only from other threads while that thread's
/// loop runs. spawn(), cancellation and the other members stay callable from any thread.
///
/// Cancellation: shutdown cancels nothing cooperatively; it destroys the unfinished tasks (see
/// above). Cancel a task through its join_handle, or a group through a cancel_source.
class runtime {
 public:
  explicit runtime(runtime_options options = {});
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;
  ~runtime();

  /// Runs `t` on the workers and blocks the calling thread until it finished; returns its value
  /// or rethrows its exception. Throws std::logic_error if called on a worker thread or with an
  /// empty task, operation_cancelled if the runtime shut down before the task finished.
  template <class T>
  T block_on(task<T> t, std::source_location at = std::source_location::current()) {
    auto h = detail::prepare_root(std::move(t), "weft::runtime::block_on");
    detail::block_on_root(core_.get(), h, h.promise(), detail::spawn_site{at, "block_on"});
    detail::consume_root<T> guard{h, core_.get()};
    const auto s = detail::header_of(h.address())->state.load(std::memory_order_acquire);
    if (s & detail::aborted_bit) detail::throw_aborted_join();
    if (s & detail::cancelled_unstarted_bit) detail::throw_unstarted_join();
    return h.promise().take();
  }

  /// block_on(co_invoke(f)): runs a task-returning callable, keeping it alive meanwhile.
  template <detail::task_factory F>
  auto block_on(F f, std::source_location at = std::source_location::current()) {
    return block_on(co_invoke(std::move(f)), at);
  }

  /// block_on for an awaitable that is not a task (a resilience pipeline's execute(), a sleep):
  /// it moves into a task of its own.
  template <class A>
  requires(!detail::is_task<std::remove_cvref_t<A>>::value && !detail::task_factory<A> &&
           detail::awaitable<
               std::remove_cvref_t<A>>) auto block_on(A&& a, std::source_location at =
                                                                 std::source_location::current()) {
    return block_on(detail::as_task(std::forward<A>(a)), at);
  }

  /// Starts `t` on the workers and returns its handle; callable from any thread. `options`
  /// names it for dumps (see spawn_options); the spawn location is recorded.
  template <class T>
  join_handle<T> spawn(task<T> t, spawn_options options = {},
                       std::source_location at = std::source_location::current()) {
    auto h = detail::prepare_root(std::move(t), "weft::runtime::spawn");
    detail::spawn_root(core_.get(), h, h.promise(), detail::spawn_site{at, options.name});
    return join_handle<T>{h, core_.get()};
  }

  /// Starts `t` and calls `on_done(weft::outcome<T>)` once it finished: for code that cannot
  /// co_await, such as a callback-style server handing a request to coroutine code. Callable from
  /// any thread; nothing blocks.
  ///
  ///     rt.spawn(handle(request), [reply](weft::outcome<response> r) {
  ///       if (r.has_value()) reply(std::move(r).value()); else reply_error(r.error());
  ///     }).detach();
  ///
  /// on_done is called exactly once: with the value, with the exception the task threw, or with
  /// operation_cancelled when the task was cancelled (through the returned handle, before or
  /// after it started) or the runtime shut down before it finished. It runs on a worker (so it
  /// must not block), or, at shutdown, on the thread that shuts the runtime down, where it must
  /// not call into the runtime. It must not throw (at shutdown that ends the process). The
  /// returned handle completes after on_done returned; dropping it detaches, cancel() cancels
  /// the task. On a runtime that has shut down, spawn throws std::logic_error as the other
  /// overload does, and on_done has been called with operation_cancelled before it threw.
  template <class T, class F>
  requires(!std::is_reference_v<T> && std::invocable<F&, outcome<T>>)
      join_handle<void> spawn(task<T> t, F on_done, spawn_options options = {},
                              std::source_location at = std::source_location::current()) {
    if (!t) detail::throw_empty_task("weft::runtime::spawn");  // before on_done is taken
    auto h = detail::prepare_root(
        detail::run_then_call(std::move(t), detail::completion_call<T, F>{std::move(on_done)}),
        "weft::runtime::spawn");
    detail::spawn_root(core_.get(), h, h.promise(), detail::spawn_site{at, options.name, true});
    return join_handle<void>{h, core_.get()};
  }

  /// spawn(co_invoke(f)).
  template <detail::task_factory F>
  auto spawn(F f, spawn_options options = {},
             std::source_location at = std::source_location::current()) {
    return spawn(co_invoke(std::move(f)), options, at);
  }

  /// spawn for an awaitable that is not a task: it moves into a task of its own.
  template <class A>
  requires(
      !detail::is_task<std::remove_cvref_t<A>>::value && !detail::task_factory<A> &&
      detail::awaitable<std::remove_cvref_t<A>>) auto spawn(A&& a, spawn_options options = {},
                                                            std::source_location at =
                                                                std::source_location::current()) {
    return spawn(detail::as_task(std::forward<A>(a)), options, at);
  }

  /// Every live spawned task: id, name, spawn location, state and, for a suspended task, the
  /// co_await sites of its await chain and what it waits on (see task_record; to_string renders
  /// it). Each worker is paused at its next turn boundary while the tasks are read, then goes
  /// on; a worker blocked inside a task delays the dump until it comes back. From a plain
  /// thread; inside a task, co_await weft::dump_tasks() instead (this throws std::logic_error on
  /// the runtime's own workers, which the dump must pause). With introspection compiled out,
  /// the records have ids 0 and no locations.
  [[nodiscard]] std::vector<task_record> dump_tasks() const;

  /// Stops the runtime as the destructor does; later calls do nothing. Throws std::logic_error
  /// when called on one of this runtime's workers.
  void shutdown();

  /// Per-worker counters, read without stopping the workers.
  [[nodiscard]] runtime_stats stats() const;

  /// The number of worker threads.
  [[nodiscard]] std::size_t worker_count() const noexcept;

  /// True if the calling thread is one of this runtime's workers.
  [[nodiscard]] bool on_worker_thread() const noexcept;

  /// The runtime's clock, from any thread (paused time included, unlike clock::now() off a
  /// worker).
  [[nodiscard]] clock::time_point now() const noexcept;

  /// External-loop mode (runtime_options::external_loop): a file descriptor that becomes
  /// readable when the runtime has work for run_ready(): an I/O completion, a task spawned or
  /// woken from another thread, a cancellation posted to it. It is level-triggered, and
  /// run_ready() consumes the readiness; add it to the loop's epoll/poll set for reading and
  /// neither read, write nor close it. Timers do not make it readable: run_ready() returns the
  /// next deadline. -1 for a runtime with worker threads.
  ///
  ///     epoll_event ev{.events = EPOLLIN, .data = {.fd = rt.event_fd()}};
  ///     epoll_ctl(ep, EPOLL_CTL_ADD, rt.event_fd(), &ev);
  ///     for (int timeout = 0;;) {
  ///       int n = epoll_wait(ep, events, 64, timeout);
  ///       /* ...the loop's own descriptors... */
  ///       timeout = rt.run_ready().timeout_ms;
  ///     }
  [[nodiscard]] int event_fd() const noexcept;

  /// External-loop mode: runs what is ready (tasks, I/O completions, due timers) without
  /// blocking, and says when to call again. It stops taking new work once `max_resumptions`
  /// task resumptions ran (a task that the last one woke may still run right after it). Tasks
  /// run on the calling thread, inside this call: a completion callback of spawn(task, on_done)
  /// runs here too. Throws std::logic_error on a runtime with worker threads, on a thread other
  /// than the one that constructed the runtime, or from inside one of its tasks (a task must not
  /// drive its own runtime); std::invalid_argument if `max_resumptions` is 0. After shutdown it
  /// returns an empty result.
  run_ready_result run_ready(std::size_t max_resumptions = 256);

  /// Whether the workers got an io_uring; if not, io_error() says why (else it is empty).
  [[nodiscard]] bool io_available() const;
  [[nodiscard]] std::string io_error() const;

 private:
  std::unique_ptr<detail::runtime_core> core_;
};

/// The process-wide runtime used by weft::block_on, created with default options on first use
/// and shut down at exit.
runtime& default_runtime();

/// Runs `t` on the default runtime and blocks until it finished (see runtime::block_on).
template <class T>
T block_on(task<T> t) {
  return default_runtime().block_on(std::move(t));
}

template <detail::task_factory F>
auto block_on(F f) {
  return default_runtime().block_on(std::move(f));
}

/// block_on for an awaitable that is not a task (see runtime::block_on).
template <class A>
requires(!detail::is_task<std::remove_cvref_t<A>>::value && !detail::task_factory<A> &&
         detail::awaitable<std::remove_cvref_t<A>>) auto block_on(A&& a) {
  return default_runtime().block_on(std::forward<A>(a));
}

/// True if the calling thread is a worker of any weft runtime: for code that is also driven from
/// plain threads and does some things (start a timer, spawn) only where a worker runs it.
///
///     if (weft::this_thread_is_worker()) weft::spawn(expire_later()).detach();
[[nodiscard]] bool this_thread_is_worker() noexcept;

}  // namespace weft
