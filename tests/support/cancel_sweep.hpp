// Cancellation at every suspension point: a scenario runs once uncancelled on a paused-time
// runtime to count its task resumptions (through runtime_options::before_resume), then once per
// point k on a fresh runtime with its root cancelled just before the k-th resumption. Every run
// must end (a paused-clock limit and a real-time watchdog turn a hang into a failure naming k),
// with a value or operation_cancelled (or an error the scenario documents), no task left, the
// same descriptors open, and the scenario's own invariants intact. Cancellation bugs hide in the
// one interleaving nobody wrote a test for; this writes all of them, deterministically.
#pragma once

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/join_handle.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/task.hpp>
#include <weft/time/clock.hpp>

#include "fd_leak.hpp"
#include "paused_time.hpp"

namespace weft::testing {

/// How the sweep cancels the scenario's root: the two ways a caller can.
enum class cancel_via {
  join_handle,  // spawn the scenario and cancel() its handle (from a driver task that joins it)
  source,       // block_on(with_cancellation(source.token(), scenario)); request on the source
};

struct sweep_options {
  /// More points than this are stepped through evenly (the first and last always run), so a
  /// scenario with thousands of resumptions still sweeps in seconds under ASan.
  std::size_t max_points = 300;
  cancel_via via = cancel_via::join_handle;
  /// Sockets need the ring; everything else runs faster without one.
  bool io_uring = false;
  /// Two uncancelled runs must count the same resumptions, and every cancelled run must reach its
  /// k-th. False for I/O, where the kernel's completion timing may reorder resumptions: then the
  /// invariants are checked whatever point the cancellation hit (or if the run ended first).
  bool deterministic = true;
  /// Paused time one run may take; past it the run counts as a hang (a loop the cancellation did
  /// not stop keeps jumping the clock).
  clock::duration clock_limit = std::chrono::hours{24};
  /// Resumptions one run may take, as a multiple of the uncancelled run's (a livelock that yields
  /// forever never moves the clock).
  std::size_t resumption_factor = 50;
  /// Real time one run may take before the watchdog shuts its runtime down and fails the sweep.
  std::chrono::milliseconds watchdog{30'000};
  /// Errors other than operation_cancelled that the scenario documents (e.g. timed_out from a
  /// timeout racing the cancellation): true accepts one, which then goes to the checker.
  std::function<bool(const std::exception_ptr&)> accept_error;
};

template <class T>
using sweep_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// How one run ended, for the scenario's checker.
template <class T>
struct sweep_ending {
  std::size_t k = 0;              // the point cancelled at; 0 for an uncancelled run
  bool cancel_requested = false;  // the k-th resumption came and the cancellation was requested
  std::size_t resumptions = 0;    // resumptions the run took in all
  std::optional<sweep_value_t<T>> value;
  bool cancelled = false;    // ended with operation_cancelled
  std::exception_ptr error;  // ended with an error accept_error accepted
  [[nodiscard]] bool has_value() const noexcept { return value.has_value(); }
};

struct sweep_report {
  std::size_t points = 0;     // resumptions of the uncancelled run (the largest, if they differ)
  std::size_t runs = 0;       // cancelled runs made
  std::size_t failed_at = 0;  // the first k that broke an invariant; 0 if none did
  // How the cancelled runs ended: a sweep whose runs all end with a value cancelled nothing.
  std::size_t ended_cancelled = 0;
  std::size_t ended_with_value = 0;
  std::size_t ended_with_error = 0;  // errors accept_error accepted
};

namespace detail {

inline std::string describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return std::string{typeid(ex).name()} + ": " + ex.what();
  } catch (...) {
    return "a non-std exception";
  }
}

/// Runs the scenario's checker and reports its failures as they were, noting whether there were
/// any: a test that intercepts failures (the helper's own tests) hides them from the test's
/// result, and the sweep must stop at the first failing run either way.
template <class Checker, class State, class Ending>
bool check_and_report(Checker& checker, State& state, const Ending& ending) {
  ::testing::TestPartResultArray parts;
  {
    ::testing::ScopedFakeTestPartResultReporter intercept{
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &parts};
    checker(state, ending);
  }
  bool any = false;
  for (int i = 0; i < parts.size(); ++i) {
    const auto& part = parts.GetTestPartResult(i);
    if (!part.failed()) continue;
    any = true;
    std::string message = part.message();
    // The sweep's trace is still in scope and is added again when re-reported.
    if (const auto at = message.find("\nGoogle Test trace:"); at != std::string::npos) {
      message.resize(at);
    }
    ADD_FAILURE_AT(part.file_name() != nullptr ? part.file_name() : "(unknown)", part.line_number())
        << message;
  }
  return any;
}

/// One thread per sweep that shuts a run's runtime down when the run takes too long, so a hang
/// fails the test with its k instead of stalling the suite. Shutdown destroys the stuck tasks,
/// which ends block_on; the main thread then waits for the shutdown before destroying the
/// runtime itself.
class sweep_watchdog {
 public:
  sweep_watchdog() : thread_([this] { loop(); }) {}
  sweep_watchdog(const sweep_watchdog&) = delete;
  sweep_watchdog& operator=(const sweep_watchdog&) = delete;
  ~sweep_watchdog() {
    {
      std::lock_guard lock{m_};
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void arm(weft::runtime& rt, std::chrono::steady_clock::duration limit, std::string what) {
    std::lock_guard lock{m_};
    rt_ = &rt;
    limit_ = limit;
    deadline_ = std::chrono::steady_clock::now() + limit;
    what_ = std::move(what);
    fired_.clear();
    cv_.notify_all();
  }
  /// From the worker, when the run went past its clock or resumption limit.
  void fire_now(const char* why) {
    std::lock_guard lock{m_};
    if (rt_ == nullptr) return;
    reason_ = why;
    deadline_ = std::chrono::steady_clock::now();
    cv_.notify_all();
  }
  /// How many times any watchdog fired, so a test can block "until the watchdog fired" instead
  /// of for a guessed time.
  static std::atomic<int>& fired_count() noexcept {
    static std::atomic<int> count{0};
    return count;
  }
  /// Ends the watch; waits for a shutdown in progress. Returns why it fired, or empty.
  std::string disarm() {
    std::unique_lock lock{m_};
    cv_.wait(lock, [this] { return !shutting_down_; });
    rt_ = nullptr;
    reason_ = "ran past the real-time watchdog";
    return std::exchange(fired_, {});
  }

 private:
  void loop() {
    std::unique_lock lock{m_};
    while (!quit_) {
      if (rt_ == nullptr) {
        cv_.wait(lock);
        continue;
      }
      if (std::chrono::steady_clock::now() < deadline_) {
        cv_.wait_until(lock, deadline_);
        continue;
      }
      weft::runtime* rt = std::exchange(rt_, nullptr);
      fired_ = reason_;
      shutting_down_ = true;
      fired_count().fetch_add(1, std::memory_order_release);
      std::fprintf(stderr, "cancel_sweep watchdog: %s %s; shutting its runtime down\n",
                   what_.c_str(), reason_.c_str());
      // A task that never suspends cannot be stopped, and shutdown waits for it: then the test
      // binary ends here, naming the run, rather than hanging the suite.
      auto done = std::make_shared<std::atomic<bool>>(false);
      std::thread([done, limit = limit_ + std::chrono::seconds{10}, what = what_] {
        std::this_thread::sleep_for(limit);
        if (done->load()) return;
        std::fprintf(stderr,
                     "cancel_sweep watchdog: %s: its runtime did not shut down (a task "
                     "that never suspends?); aborting\n",
                     what.c_str());
        std::abort();
      }).detach();
      lock.unlock();
      rt->shutdown();
      done->store(true);
      lock.lock();
      shutting_down_ = false;
      cv_.notify_all();
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  weft::runtime* rt_ = nullptr;
  std::chrono::steady_clock::time_point deadline_;
  std::chrono::steady_clock::duration limit_{};
  std::string what_;
  std::string reason_ = "ran past the real-time watchdog";
  std::string fired_;
  bool shutting_down_ = false;
  bool quit_ = false;
  std::thread thread_;  // last: it starts reading the members above at once
};

/// What before_resume needs; written only on the one worker (before_resume, the root's end). The
/// main thread reads the counts once block_on returned, while a task that outlived the root may
/// still run: hence the atomics.
struct sweep_control {
  std::size_t k = 0;  // 0: never cancel
  std::atomic<std::size_t> count{0};
  // Resumptions after the root ended. A task that outlived the root is either still registered
  // (live_tasks) or was resumed since (this): counted before it resumes, so one of the two
  // always shows it, however soon it finishes in paused time.
  std::atomic<std::size_t> after_root{0};
  bool root_done = false;
  std::size_t resumption_limit = 0;
  std::atomic<bool> requested{false};
  bool pending = false;  // the point came before the root's handle existed
  bool over_limit = false;
  bool clock_started = false;
  clock::time_point start{};
  clock::duration clock_limit{};
  std::function<void()> cancel;
  sweep_watchdog* watchdog = nullptr;

  void before_resume() {
    const std::size_t n = count.fetch_add(1, std::memory_order_relaxed) + 1;
    if (root_done) after_root.fetch_add(1, std::memory_order_relaxed);
    if (!clock_started) {
      clock_started = true;
      start = clock::now();
    }
    if (n == k) {
      requested.store(true, std::memory_order_relaxed);
      cancel();
    }
    if (!over_limit && (n > resumption_limit || clock::now() - start > clock_limit)) {
      over_limit = true;
      watchdog->fire_now(n > resumption_limit ? "ran past its resumption limit"
                                              : "ran past its paused-clock limit");
    }
  }
};

/// Marks the root's end, on the worker, in the root's last resumption (value or exception).
struct root_end_guard {
  sweep_control& ctl;
  ~root_end_guard() { ctl.root_done = true; }
};

/// Clears the driver's handle slot when the driver ends, so a late before_resume cannot reach a
/// handle that is gone.
template <class T>
struct slot_guard {
  weft::join_handle<T>*& slot;
  ~slot_guard() { slot = nullptr; }
};

/// Spawns the scenario and joins it; the sweep cancels it through the handle in `slot`.
template <class T, class Scenario, class State>
weft::task<T> spawn_and_join(Scenario& scenario, State& state, sweep_control& ctl,
                             weft::join_handle<T>*& slot) {
  root_end_guard end{ctl};
  auto h = weft::spawn(scenario(state));
  slot = &h;
  slot_guard<T> guard{slot};
  if (ctl.pending) h.cancel();  // the point was this driver's own first resumption
  co_return co_await h;
}

/// Runs the scenario under the sweep's cancel_source.
template <class T>
weft::task<T> run_with_source(weft::task<T> scenario, weft::cancel_token token,
                              sweep_control& ctl) {
  root_end_guard end{ctl};
  auto t = weft::with_cancellation(std::move(token), std::move(scenario));
  co_return co_await std::move(t);
}

}  // namespace detail

/// Sweeps `scenario` (State& -> task<T>) over every suspension point. Each run gets a fresh
/// runtime and a fresh default-constructed State (made after the runtime, destroyed before it,
/// so sockets in it close on their runtime); `checker(State&, const sweep_ending<T>&)` then
/// checks the scenario's invariants with EXPECT_*, the runtime still alive. At the k-th point
/// the root is cancelled, or, given a `trigger(State&)`, that is called instead (e.g. a graceful
/// stop). The sweep stops at the first run that fails and names its k; it prints and records
/// the number of points.
template <class State, class Scenario, class Checker>
sweep_report cancel_sweep(const std::string& name, Scenario scenario, Checker checker,
                          const sweep_options& options = {},
                          std::function<void(State&)> trigger = {}) {
  using T = typename std::invoke_result_t<Scenario&, State&>::value_type;
  detail::sweep_watchdog watchdog;
  sweep_report report;

  // One run; returns its resumption count, or nothing if it failed. The helper's own checks set
  // `failed` as well as reporting, so the sweep stops even where failures are intercepted.
  auto run = [&](std::size_t k) -> std::optional<std::size_t> {
    SCOPED_TRACE(::testing::Message() << "cancel_sweep " << name << " k=" << k);
    bool failed = false;
    auto fail = [&failed]() -> const char* {  // streamed first into each failure: marks it
      failed = true;
      return "";
    };
    const int fds_before = open_fd_count();
    detail::sweep_control ctl;
    ctl.k = k;
    ctl.clock_limit = options.clock_limit;
    ctl.resumption_limit =
        report.points == 0 ? 1'000'000
                           : std::max<std::size_t>(report.points, 100) * options.resumption_factor;
    ctl.watchdog = &watchdog;
    sweep_ending<T> ending;
    ending.k = k;
    {
      weft::runtime_options o = paused();
      o.io_uring = options.io_uring;
      o.before_resume = [&ctl] { ctl.before_resume(); };
      weft::runtime rt{o};
      {
        auto state = std::make_unique<State>();
        weft::cancel_source source;
        weft::join_handle<T>* slot = nullptr;
        if (trigger) {
          ctl.cancel = [&trigger, &state] { trigger(*state); };
        } else if (options.via == cancel_via::source) {
          ctl.cancel = [&source] { source.request_cancellation(); };
        } else {
          ctl.cancel = [&ctl, &slot] {
            if (slot != nullptr) {
              slot->cancel();
            } else {
              ctl.pending = true;
            }
          };
        }
        auto root = options.via == cancel_via::source
                        ? detail::run_with_source<T>(scenario(*state), source.token(), ctl)
                        : detail::spawn_and_join<T>(scenario, *state, ctl, slot);
        watchdog.arm(rt, options.watchdog, "cancel_sweep " + name + " k=" + std::to_string(k));
        try {
          if constexpr (std::is_void_v<T>) {
            rt.block_on(std::move(root));
            ending.value.emplace();
          } else {
            ending.value.emplace(rt.block_on(std::move(root)));
          }
        } catch (const weft::operation_cancelled&) {
          ending.cancelled = true;
        } catch (...) {
          ending.error = std::current_exception();
        }
        const std::string hang = watchdog.disarm();
        ending.cancel_requested = ctl.requested.load(std::memory_order_relaxed);
        ending.resumptions = ctl.count.load();
        if (!hang.empty()) {
          ADD_FAILURE() << "cancel_sweep " << name << " k=" << k << ": the run " << hang
                        << " (after " << ending.resumptions << " resumptions)";
          return std::nullopt;  // the runtime is shut down; its leftovers say nothing more
        }
        // live first: a leftover that finishes after this read was counted in after_root before.
        const std::size_t live = rt.stats().live_tasks;
        const std::size_t after = ctl.after_root.load(std::memory_order_relaxed);
        if (live != 0 || after != 0) {
          ADD_FAILURE() << fail() << "task(s) outlived the scenario's root: " << live
                        << " still live, " << after << " resumption(s) after the root ended";
          rt.shutdown();  // the leftovers may use the state, which goes next
        }
        if (ending.error && !(options.accept_error && options.accept_error(ending.error))) {
          ADD_FAILURE() << fail() << "ended with " << detail::describe(ending.error);
        } else {
          if (k == 0 && !ending.has_value() && !ending.error) {
            ADD_FAILURE() << fail() << "the uncancelled run ended cancelled";
          }
          if (k != 0 && options.deterministic && !ending.cancel_requested) {
            ADD_FAILURE() << fail() << "the run ended after " << ending.resumptions
                          << " resumptions, before its k-th: the scenario is not deterministic";
          }
          if (!ending.cancel_requested && !trigger && ending.cancelled) {
            ADD_FAILURE() << fail() << "cancelled though no cancellation was requested";
          }
          if (detail::check_and_report(checker, *state, ending)) failed = true;
        }
        ctl.cancel = [] {};  // the state and slot go first; a late resumption finds nothing
      }
    }
    const int fds_after = open_fd_count();
    if (fds_after != fds_before) {
      ADD_FAILURE() << fail() << "descriptors were left open (or closed twice): " << fds_before
                    << " before the run, " << fds_after << " after";
    }
    if (failed) return std::nullopt;
    if (k != 0) {
      ++(ending.cancelled ? report.ended_cancelled
         : ending.error   ? report.ended_with_error
                          : report.ended_with_value);
    }
    return ending.resumptions;
  };

  const auto first = run(0);
  if (!first) return report;
  const auto second = run(0);
  if (!second) return report;
  if (options.deterministic && *first != *second) {
    ADD_FAILURE() << "cancel_sweep " << name << ": two uncancelled runs resumed tasks " << *first
                  << " and " << *second << " times; the scenario is not deterministic";
  }
  report.points = std::max(*first, *second);

  const std::size_t runs = std::min(report.points, std::max<std::size_t>(options.max_points, 2));
  for (std::size_t i = 0; i < runs; ++i) {
    // Evenly spread, first and last included: k = 1 + i·(N−1)/(runs−1).
    const std::size_t k = runs == 1 ? 1 : 1 + i * (report.points - 1) / (runs - 1);
    ++report.runs;
    if (!run(k)) {
      report.failed_at = k;
      ADD_FAILURE() << "cancel_sweep " << name << ": broke at k=" << k << " of " << report.points
                    << " points";
      break;
    }
  }
  std::printf(
      "cancel_sweep %s: %zu points, %zu runs (ended: %zu cancelled, %zu with a value, %zu with "
      "an accepted error)\n",
      name.c_str(), report.points, report.runs, report.ended_cancelled, report.ended_with_value,
      report.ended_with_error);
  std::fflush(stdout);
  // Property names become XML attribute names in the test report: letters, digits, '_' only.
  std::string key = "cancel_sweep_" + name + "_points";
  std::replace_if(
      key.begin(), key.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); },
      '_');
  ::testing::Test::RecordProperty(key, std::to_string(report.points));
  return report;
}

}  // namespace weft::testing
