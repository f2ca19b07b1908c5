// Looking inside a running runtime: task names and ids, pausing the workers for a dump, walking
// each task's await chain, the stall watchdog and the SIGUSR1 dump thread.
//
// Why a dump pauses the workers: a suspended frame can be resumed by any worker at any moment
// (a wake-up queues it anywhere, a completion resumes its parent by a tail call), and the awaiter
// a dump reads lives in that frame. So a dump asks every worker to stop at its next turn
// boundary (between two resumptions: no frame of ours is running), reads the registry and the
// frames, and lets them go. What it reads that needs no pause (names, locations) is turned into
// strings after the workers went on.
#include <weft/introspection/task_dump.hpp>
#include <weft/spawn.hpp>
#include <weft/spawn_blocking.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "scheduler/runtime_core.hpp"

namespace weft {

namespace detail {

namespace {

// --- SIGUSR1: the handler writes a byte to the pipe of every runtime that asked for dumps ---

constexpr std::size_t max_dump_runtimes = 64;
// Each slot holds a pipe's write end plus one (0: free), so that zero-initialisation empties it.
std::atomic<int> sigusr1_fds[max_dump_runtimes];
std::mutex sigusr1_mutex;
std::size_t sigusr1_users = 0;  // guarded by sigusr1_mutex
struct sigaction sigusr1_previous {};

// Handlers running now: a runtime that stops waits for none to be left before it closes the
// pipe, so a handler never writes to a descriptor number that was reused.
std::atomic<int> sigusr1_in_flight{0};

extern "C" void on_sigusr1(int) {
  const int saved = errno;
  sigusr1_in_flight.fetch_add(1, std::memory_order_seq_cst);
  for (auto& slot : sigusr1_fds) {
    const int fd = slot.load(std::memory_order_acquire) - 1;
    if (fd >= 0) {
      const char byte = 'd';
      [[maybe_unused]] const auto n = ::write(fd, &byte, 1);  // async-signal-safe
    }
  }
  sigusr1_in_flight.fetch_sub(1, std::memory_order_seq_cst);
  errno = saved;
}

bool add_sigusr1_fd(int fd) {
  std::lock_guard lock{sigusr1_mutex};
  for (auto& slot : sigusr1_fds) {
    int expected = 0;
    if (slot.compare_exchange_strong(expected, fd + 1, std::memory_order_acq_rel)) {
      if (sigusr1_users++ == 0) {
        struct sigaction sa {};
        sa.sa_handler = &on_sigusr1;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        ::sigaction(SIGUSR1, &sa, &sigusr1_previous);
      }
      return true;
    }
  }
  return false;
}

void remove_sigusr1_fd(int fd) {
  std::lock_guard lock{sigusr1_mutex};
  for (auto& slot : sigusr1_fds) {
    int expected = fd + 1;
    if (slot.compare_exchange_strong(expected, 0, std::memory_order_seq_cst)) {
      if (--sigusr1_users == 0) ::sigaction(SIGUSR1, &sigusr1_previous, nullptr);
      // A handler that read the slot before it was cleared may still be writing to `fd`.
      while (sigusr1_in_flight.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
      return;
    }
  }
}

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const auto n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

/// g++ names the function of a co_await inside a coroutine after its "actor", e.g.
/// "void ns::f(ns::f(int)::_ZN2ns1fEi.Frame*)"; this recovers "ns::f(int)". Other spellings
/// (clang's, plain functions) come back as they are.
std::string clean_function(const char* raw) {
  std::string_view s{raw != nullptr ? raw : ""};
  const auto frame = s.find(".Frame*)");
  if (frame == std::string_view::npos) return std::string{s};
  const auto mangled = s.rfind("::_Z", frame);
  const std::size_t close = frame + std::string_view{".Frame*"}.size();
  int depth = 0;
  std::size_t open = std::string_view::npos;
  for (std::size_t i = close + 1; i-- > 0;) {
    if (s[i] == ')') ++depth;
    if (s[i] == '(' && --depth == 0) {
      open = i;
      break;
    }
  }
  if (mangled == std::string_view::npos || open == std::string_view::npos || mangled <= open) {
    return std::string{s};
  }
  return std::string{s.substr(open + 1, mangled - open - 1)};
}

/// "weft::task<void> ns::serve(int)" -> "ns::serve(int)": the return type says nothing in a dump.
std::string without_return_type(std::string s) {
  int depth = 0;
  std::size_t last_space = std::string::npos;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '<' || c == '[' || c == '{') ++depth;
    if (c == '>' || c == ']' || c == '}') --depth;
    if (depth == 0 && c == ' ') last_space = i;
    if (depth == 0 && c == '(') break;
  }
  return last_space == std::string::npos ? s : s.substr(last_space + 1);
}

code_location location_of(const std::source_location& at) {
  code_location c;
  c.file = at.file_name() != nullptr ? at.file_name() : "";
  c.function = without_return_type(clean_function(at.function_name()));
  c.line = at.line();
  return c;
}

/// What a dump reads while the workers are paused.
struct raw_task {
  frame_header* header = nullptr;
  std::uint64_t id = 0;
  std::uint32_t site = 0;
  std::string name;
  task_state state = task_state::suspended;
  int worker = -2;  // -2: none, -1: the injection queue
  std::vector<std::source_location> chain;
  std::string what;
};

// The process's spawn sites and task ids. Both are off the hot paths: a spawn finds its site in
// a small per-thread cache, and ids are only made when someone asks.
struct site_table {
  std::mutex mutex;
  std::vector<std::source_location> sites{std::source_location{}};  // 0: unknown
  std::unordered_map<const void*, std::uint32_t> index;
};
site_table& sites() {
  static site_table* t = new site_table;  // never destroyed: spawns may run during exit
  return *t;
}

struct id_table {
  std::mutex mutex;
  std::unordered_map<const frame_header*, std::uint64_t> ids;
  std::uint64_t next = 1;
};
id_table& ids() {
  static id_table* t = new id_table;
  return *t;
}

const void* site_key(std::source_location at) noexcept {
  static_assert(sizeof(std::source_location) == sizeof(void*),
                "std::source_location is one pointer to static data in libstdc++ and libc++");
  return std::bit_cast<const void*>(at);
}

}  // namespace

std::uint32_t spawn_site_index(std::source_location at) noexcept {
  const void* key = site_key(at);
  if (key == nullptr) return 0;
  // A direct-mapped cache per thread: a spawn call site hits it after its first spawn.
  struct cache_entry {
    const void* key = nullptr;
    std::uint32_t index = 0;
  };
  thread_local cache_entry cache[64];
  cache_entry& e = cache[(reinterpret_cast<std::uintptr_t>(key) >> 4) & 63];
  if (e.key == key) return e.index;
  site_table& t = sites();
  try {
    std::lock_guard lock{t.mutex};
    auto [it, added] = t.index.try_emplace(key, static_cast<std::uint32_t>(t.sites.size()));
    if (added) t.sites.push_back(at);
    e = cache_entry{key, it->second};
    return it->second;
  } catch (...) {
    return 0;  // out of memory: the task is shown without its spawn location
  }
}

std::source_location spawn_site_at(std::uint32_t index) noexcept {
  site_table& t = sites();
  std::lock_guard lock{t.mutex};
  return index < t.sites.size() ? t.sites[index] : std::source_location{};
}

std::uint64_t task_id(frame_header* h) noexcept {
  // A frame that shutdown destroyed is not a task any more (its memory may outlive it only until
  // its handle goes, and that path frees it without asking for ids).
  if (h->state.load(std::memory_order_acquire) & aborted_bit) return 0;
  id_table& t = ids();
  try {
    std::lock_guard lock{t.mutex};
    auto [it, added] = t.ids.try_emplace(h, t.next);
    if (added) {
      ++t.next;
      h->state.fetch_or(id_bit, std::memory_order_relaxed);
    }
    return it->second;
  } catch (...) {
    return 0;
  }
}

namespace {
void assign_ids(std::vector<raw_task>& raw) {
#if WEFT_INTROSPECTION
  id_table& t = ids();
  std::lock_guard lock{t.mutex};
  t.ids.reserve(t.ids.size() + raw.size());
  for (raw_task& r : raw) {
    auto [it, added] = t.ids.try_emplace(r.header, t.next);
    if (added) {
      ++t.next;
      r.header->state.fetch_or(id_bit, std::memory_order_relaxed);
    }
    r.id = it->second;
  }
#else
  (void)raw;
#endif
}
}  // namespace

void forget_task_id(frame_header* h) noexcept {
  id_table& t = ids();
  std::lock_guard lock{t.mutex};
  t.ids.erase(h);
}

bool runtime_core::set_name(const frame_header* h, std::string_view name) noexcept {
  try {
    std::string copy{name};
    std::lock_guard lock{names_lock_};
    names_[h] = std::move(copy);
    return true;
  } catch (...) {
    return false;  // out of memory: the task goes unnamed rather than failing its spawn
  }
}

void runtime_core::unregister_name(const frame_header* h) noexcept {
  std::string gone;  // freed outside the lock
  std::lock_guard lock{names_lock_};
  if (auto it = names_.find(h); it != names_.end()) {
    gone = std::move(it->second);
    names_.erase(it);
  }
}

std::string runtime_core::name_of(const frame_header* h) const {
  std::lock_guard lock{names_lock_};
  auto it = names_.find(h);
  return it != names_.end() ? it->second : std::string{};
}

void runtime_core::pause_here() {
  std::unique_lock lock{pause_mutex_};
  if (!pause_requested_.load(std::memory_order_relaxed)) return;
  ++paused_workers_;
  pause_cv_.notify_all();
  // Not for shutdown: a dump that holds the workers reads their frames until it lets them go
  // (pause_workers gives up and clears the flag if shutdown comes before everyone paused).
  pause_cv_.wait(lock, [this] { return !pause_requested_.load(std::memory_order_relaxed); });
  --paused_workers_;
}

bool runtime_core::pause_workers() {
  {
    std::lock_guard lock{pause_mutex_};
    pause_requested_.store(true, std::memory_order_relaxed);
  }
  // Parked workers wake, see the request in their park loop and come to the pause.
  for (auto& w : workers) w->park_state().unpark();
  std::unique_lock lock{pause_mutex_};
  pause_cv_.wait(lock, [this] { return paused_workers_ == workers.size() || is_stopping(); });
  if (paused_workers_ == workers.size()) return true;
  pause_requested_.store(false, std::memory_order_relaxed);
  lock.unlock();
  pause_cv_.notify_all();
  return false;
}

void runtime_core::resume_workers() noexcept {
  {
    std::lock_guard lock{pause_mutex_};
    pause_requested_.store(false, std::memory_order_relaxed);
  }
  pause_cv_.notify_all();
}

std::vector<task_record> runtime_core::dump_tasks() {
  if (worker* w = this_worker(); w != nullptr && &w->rt() == this) {
    throw std::logic_error(
        "weft::runtime::dump_tasks: called on one of the runtime's workers, which the dump must "
        "pause; inside a task, co_await weft::dump_tasks()");
  }
  std::vector<raw_task> raw;
  {
    // An external loop's worker, asked from its own thread between two run_ready calls, runs
    // nothing until this returns: it is paused already.
    const bool quiescent = options.external_loop && std::this_thread::get_id() == loop_thread_;
    std::unique_lock dump_guard{dump_mutex_, std::defer_lock};
    if (quiescent) {
      // Another thread's dump may hold the lock while it waits for this worker to pause, which
      // only this thread can do: pause here for it meanwhile.
      while (!dump_guard.try_lock()) {
        if (pause_requested()) {
          pause_here();
        } else {
          std::this_thread::yield();
        }
      }
    } else {
      dump_guard.lock();
    }
    if (is_stopping()) return {};
    const std::int64_t started = steady_now_ns();
    if (!quiescent && !pause_workers()) return {};
    struct resume_guard {
      runtime_core& rt;
      ~resume_guard() { rt.resume_workers(); }
    } resume{*this};

    // Where each queued coroutine waits: a task whose innermost frame is queued is ready.
    std::vector<std::pair<void*, int>> queued;
    for (const auto& w : workers) w->collect_queued(queued);
    std::vector<void*> injected;
    injection.snapshot(injected);
    std::unordered_map<const void*, int> ready;
    ready.reserve(queued.size() + injected.size());
    for (const auto& [frame, index] : queued) ready.emplace(frame, index);
    for (void* frame : injected) ready.emplace(queued_frame(frame), -1);
    // A worker inside help_while (a task_group's destructor waiting) runs a task meanwhile.
    int helper = -2;
    int helpers = 0;
    for (const auto& w : workers) {
      if (w->helping_ > 0 && ++helpers == 1) helper = static_cast<int>(w->index());
    }
    if (helpers > 1) helper = -2;  // which one runs which task is not known

    await_description description;
    description.now_ns = clock.now_ns();
    // First the live roots, oldest first (roots are linked at the front), with their ids: a
    // task first seen by this dump gets its id in spawn order.
    auto read_shard = [&](const registry_shard& shard) {
      std::lock_guard lock{shard.lock};
      for (const frame_header* h = shard.sentinel.prev; h != &shard.sentinel; h = h->prev) {
        const auto state = h->state.load(std::memory_order_acquire);
        if (state & complete_bit) continue;  // finished: its result waits for its handle
        raw_task& t = raw.emplace_back();
        t.header = const_cast<frame_header*>(h);
        // Copied now: once the workers go on, the task may end and its address be reused.
        if (state & named_bit) t.name = name_of(h);
#if WEFT_INTROSPECTION
        t.site = h->site;
#endif
      }
    };
    read_shard(external_registry_);
    for (const auto& w : workers) read_shard(w->registry());
    assign_ids(raw);
    // Then each one's await chain. No root listed can finish or be freed while the workers are
    // paused (only a worker completes a task), so this needs no shard lock.
#if WEFT_INTROSPECTION
    for (raw_task& t : raw) {
      void* frame = t.header + 1;
      std::string outer;  // what the frame that led here waits on, if it said
      for (int depth = 0; depth < 256; ++depth) {
        const promise_base& p = std::coroutine_handle<promise_base>::from_address(frame).promise();
        const bool suspended = p.await_.awaiter != 0;
        if (suspended) t.chain.push_back(p.await_.where);
        if (auto it = ready.find(frame); it != ready.end()) {
          t.state = task_state::ready;  // woken (or not started), waiting for its turn
          t.worker = it->second;
          break;
        }
        if (!suspended) {
          // A frame another awaiter led to (a generator at its start) waits as that said; any
          // other frame without an await is running (in a task_group's destructor).
          if (depth > 0 && !outer.empty()) {
            t.what = std::move(outer);
          } else {
            t.state = task_state::running;
            t.worker = helper;
          }
          break;
        }
        description.what.clear();
        description.child_frame = nullptr;
        description.where = p.await_.where;
        if (describe_fn fn = describer(p.await_.type())) {
          fn(p.await_.address(), description);
        } else {
          description.what = "an awaiter weft cannot describe";
        }
        if (description.child_frame != nullptr) {
          frame = description.child_frame;
          outer = std::move(description.what);
          continue;
        }
        t.what = std::move(description.what);
        break;
      }
    }
#else
    (void)helper;
#endif
    last_dump_pause_ns_.store(static_cast<std::uint64_t>(steady_now_ns() - started),
                              std::memory_order_relaxed);
    dumps_.fetch_add(1, std::memory_order_relaxed);
  }
  // The workers run again: names and locations become strings now.
  std::vector<task_record> out;
  out.reserve(raw.size());
  for (auto& t : raw) {
    task_record& r = out.emplace_back();
    r.id = t.id;
    r.name = std::move(t.name);
    r.spawned_at = location_of(spawn_site_at(t.site));
    r.state = t.state;
    if (t.worker >= 0) r.worker = static_cast<std::size_t>(t.worker);
    r.await_chain.reserve(t.chain.size());
    for (const auto& at : t.chain) r.await_chain.push_back(location_of(at));
    r.waiting_on = std::move(t.what);
  }
  std::sort(out.begin(), out.end(),
            [](const task_record& a, const task_record& b) { return a.id < b.id; });
  return out;
}

bool runtime_core::describe_running(void* frame, stall_report& out) const {
#if WEFT_INTROSPECTION
  if (frame == nullptr) return false;
  // Only compared, never read through: the frame may be gone by now.
  const auto* wanted =
      reinterpret_cast<const frame_header*>(static_cast<const char*>(frame) - sizeof(frame_header));
  auto search = [&](const registry_shard& shard) {
    std::lock_guard lock{shard.lock};
    for (const frame_header* h = shard.sentinel.next; h != &shard.sentinel; h = h->next) {
      if (h != wanted) continue;
      out.task_id = task_id(const_cast<frame_header*>(h));
      const std::source_location at = spawn_site_at(h->site);
      out.spawned_at = std::string{at.file_name()} + ":" + std::to_string(at.line());
      if (h->state.load(std::memory_order_relaxed) & named_bit) out.task_name = name_of(h);
      return true;
    }
    return false;
  };
  for (const auto& w : workers) {
    if (search(w->registry())) return true;
  }
  return search(external_registry_);
#else
  (void)frame;
  (void)out;
  return false;
#endif
}

void runtime_core::report_stall(const stall_report& r) const {
  try {
    if (options.on_stall) {
      options.on_stall(r);
    } else {
      const std::string line = to_string(r) + "\n";
      write_all(STDERR_FILENO, line);
    }
  } catch (...) {
    // A report that throws (or cannot allocate) is dropped; the runtime goes on.
  }
}

void runtime_core::start_threads() {
  if (options.stall_threshold.count() > 0) {
    watch_.resize(workers.size());
    watchdog_ = std::thread([this] { watchdog_loop(); });
  }
  if (options.dump_on_sigusr1) {
    if (::pipe2(signal_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
      const int err = errno;
      stop_threads();
      throw std::system_error(err, std::generic_category(),
                              "weft::runtime: dump_on_sigusr1: pipe2");
    }
    if (!add_sigusr1_fd(signal_pipe_[1])) {
      stop_threads();
      throw std::invalid_argument(
          "weft::runtime: dump_on_sigusr1: more than 64 runtimes asked for SIGUSR1 dumps");
    }
    signal_thread_ = std::thread([this] { signal_loop(); });
  }
}

void runtime_core::stop_threads() noexcept {
  {
    std::lock_guard lock{threads_mutex_};
    threads_stop_ = true;
  }
  threads_cv_.notify_all();
  if (signal_pipe_[1] >= 0) {
    remove_sigusr1_fd(signal_pipe_[1]);
    const char byte = 'q';
    [[maybe_unused]] const auto n = ::write(signal_pipe_[1], &byte, 1);
  }
  if (watchdog_.joinable()) watchdog_.join();
  if (signal_thread_.joinable()) signal_thread_.join();
  for (int& fd : signal_pipe_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

void runtime_core::watchdog_loop() {
  const std::int64_t threshold = std::chrono::nanoseconds{options.stall_threshold}.count();
  // Sampled: a resumption is noticed between one and 1.25 thresholds after it began.
  const auto period = std::max(options.stall_threshold / 4, std::chrono::milliseconds{1});
  // Sized before the thread starts: the watchdog allocates nothing while all is well (a first
  // malloc on a thread gives it an arena, hundreds of KiB of RSS for nothing).
  std::vector<watch_state>& last = watch_;
  std::unique_lock lock{threads_mutex_};
  while (!threads_stop_) {
    threads_cv_.wait_for(lock, period, [this] { return threads_stop_; });
    if (threads_stop_) break;
    lock.unlock();
    const std::int64_t now = steady_now_ns();
    for (std::size_t i = 0; i < workers.size(); ++i) {
      const std::uint64_t seq = workers[i]->resume_seq();
      watch_state& s = last[i];
      if (seq != s.seq) {
        s = watch_state{seq, now, false};  // a new resumption (or none) since the last look
        continue;
      }
      if ((seq & 1) == 0 || s.reported || now - s.since < threshold) continue;
      s.reported = true;
      try {
        stall_report r;
        r.worker = i;
        r.elapsed = std::chrono::nanoseconds{now - s.since};
        describe_running(workers[i]->running_frame(), r);
        workers[i]->mark_stalled(r, s.since, seq);
        report_stall(r);
      } catch (...) {
        // Out of memory: this stall goes unreported; the watchdog goes on.
      }
    }
    lock.lock();
  }
}

void runtime_core::signal_loop() {
  for (;;) {
    pollfd p{signal_pipe_[0], POLLIN, 0};
    if (::poll(&p, 1, -1) < 0 && errno != EINTR) return;
    char bytes[64];
    const auto n = ::read(signal_pipe_[0], bytes, sizeof bytes);
    if (n <= 0) continue;
    if (std::memchr(bytes, 'q', static_cast<std::size_t>(n)) != nullptr) return;
    try {
      write_all(STDERR_FILENO, to_string(dump_tasks()));
    } catch (const std::exception& e) {
      write_all(STDERR_FILENO, std::string{"weft: SIGUSR1 dump failed: "} + e.what() + "\n");
    }
  }
}

}  // namespace detail

task<std::vector<task_record>> dump_tasks() {
  detail::runtime_core& rt = detail::require_runtime("weft::dump_tasks");
  co_return co_await spawn_blocking([&rt] { return rt.dump_tasks(); });
}

const char* to_string(task_state state) noexcept {
  switch (state) {
    case task_state::ready:
      return "ready";
    case task_state::running:
      return "running";
    case task_state::suspended:
      return "suspended";
  }
  return "unknown";
}

std::string to_string(const task_record& t) {
  std::string s = "task " + std::to_string(t.id);
  if (!t.name.empty()) s += " \"" + t.name + "\"";
  s += ' ';
  s += to_string(t.state);
  if (t.worker)
    s += (t.state == task_state::ready ? " on worker " : " by worker ") + std::to_string(*t.worker);
  if (!t.spawned_at.file.empty()) {
    s += ", spawned at " + t.spawned_at.file + ":" + std::to_string(t.spawned_at.line) + " in " +
         t.spawned_at.function;
  }
  s += '\n';
  for (const auto& c : t.await_chain) {
    s += "  at " + c.file + ":" + std::to_string(c.line) + " in " + c.function + "\n";
  }
  if (!t.waiting_on.empty()) s += "  waiting on: " + t.waiting_on + "\n";
  return s;
}

std::string to_string(const std::vector<task_record>& tasks) {
  std::size_t counts[3] = {};
  for (const auto& t : tasks) ++counts[static_cast<int>(t.state)];
  std::string s = "weft: " + std::to_string(tasks.size()) + " tasks (" + std::to_string(counts[0]) +
                  " ready, " + std::to_string(counts[1]) + " running, " +
                  std::to_string(counts[2]) + " suspended)\n";
  for (const auto& t : tasks) s += to_string(t);
  return s;
}

std::string to_string(const stall_report& r) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(r.elapsed).count();
  std::string task = "a task";
  if (r.task_id != 0) {
    task = "task " + std::to_string(r.task_id);
    if (!r.task_name.empty()) task += " \"" + r.task_name + "\"";
    if (!r.spawned_at.empty()) task += " (spawned at " + r.spawned_at + ")";
  }
  if (r.ended) {
    return "weft: stall ended: worker " + std::to_string(r.worker) + " ran " + task + " for " +
           std::to_string(ms) + " ms without yielding";
  }
  return "weft: stall: worker " + std::to_string(r.worker) + " has run " + task + " for " +
         std::to_string(ms) + " ms without yielding (still running)";
}

}  // namespace weft
