// Task dumps: ids, names, spawn locations, await chains and what each task waits on.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <csignal>

#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.hpp>

namespace {

using namespace std::chrono_literals;

// Each co_await under test sits on the line after the one that records __LINE__, with its
// operand on the same line (g++ reports the operand's line, clang the co_await's).
struct lines {
  std::atomic<int> sleep{0}, recv{0}, lock{0}, join{0}, when_all{0}, read{0}, outer{0}, inner{0},
      yield{0}, spawned{0};
};

weft::task<void> sleeper(lines& l) {
  l.sleep = __LINE__ + 1;
  co_await weft::sleep_for(1h);
}

weft::task<void> receiver(lines& l, weft::channel<int>& ch) {
  l.recv = __LINE__ + 1;
  auto v = co_await ch.recv();
  (void)v;
}

weft::task<void> holder(weft::mutex& m, weft::event& release) {
  auto guard = co_await m.lock();
  co_await release.wait();
}

weft::task<void> locker(lines& l, weft::mutex& m) {
  l.lock = __LINE__ + 1;
  auto guard = co_await m.lock();
}

weft::task<void> joiner(lines& l, weft::join_handle<void> h) {
  l.join = __LINE__ + 1;
  co_await h;
}

weft::task<void> forever(weft::event& e) {
  co_await e.wait();
}

weft::task<void> fan_out(lines& l, weft::event& e) {
  l.when_all = __LINE__ + 1;
  co_await weft::when_all(forever(e), forever(e), weft::sleep_for(0ms));
}

weft::task<void> reader(lines& l, int fd) {
  char buf[16];
  auto prep = [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, buf, sizeof buf, 0); };
  l.read = __LINE__ + 1;
  auto r = co_await weft::submit_io(prep);
  (void)r;
}

weft::task<void> inner_frame(lines& l, weft::channel<int>& ch) {
  l.inner = __LINE__ + 1;
  auto v = co_await ch.recv();
  (void)v;
}

weft::task<void> outer_frame(lines& l, weft::channel<int>& ch) {
  l.outer = __LINE__ + 1;
  co_await inner_frame(l, ch);
}

weft::task<void> yielder(lines& l, std::atomic<bool>& stop) {
  while (!stop.load()) {
    l.yield = __LINE__ + 1;
    co_await weft::yield();
  }
}

const weft::task_record* find(const std::vector<weft::task_record>& tasks, std::uint64_t id) {
  for (const auto& t : tasks) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

/// Dumps until `ready(dump)` holds (the tasks reached their co_awaits), at most a few seconds.
template <class F>
std::vector<weft::task_record> dump_when(const weft::runtime& rt, F ready) {
  std::vector<weft::task_record> d;
  for (int i = 0; i < 5000; ++i) {
    d = rt.dump_tasks();
    if (ready(d)) return d;
    std::this_thread::sleep_for(1ms);
  }
  return d;
}

bool suspended_at(const weft::task_record* t, int line) {
  return t != nullptr && t->state == weft::task_state::suspended && !t->await_chain.empty() &&
         t->await_chain.back().line == static_cast<std::uint32_t>(line);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

TEST(TaskDump, ListsNamesSpawnLocationsAwaitChainsAndWhatEachTaskWaitsOn) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  lines l;
  weft::channel<int> ch{1};
  weft::channel<int> ch2{1};
  weft::mutex m;
  weft::event release, never;
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);

  const int spawn_line = __LINE__ + 1;
  auto sleeping = rt.spawn(sleeper(l), {.name = "sleeper"});
  auto receiving = rt.spawn(receiver(l, ch), {.name = "conn 10.0.0.7:5511"});
  auto holding = rt.spawn(holder(m, release));
  auto sleeping2 = rt.spawn(sleeper(l));
  auto joining = rt.spawn(joiner(l, std::move(sleeping2)));
  auto fanning = rt.spawn(fan_out(l, never));
  auto reading = rt.spawn(reader(l, fds[0]));
  auto chained = rt.spawn(outer_frame(l, ch2));
  auto finished = rt.spawn([]() -> weft::task<void> { co_return; });
  const std::uint64_t finished_id = finished.id();
  rt.block_on([&]() -> weft::task<void> { co_await finished; });
  // The lock is held before the lockers queue behind it.
  while (m.try_lock()) {
    std::this_thread::sleep_for(1ms);
  }
  auto locker1 = rt.spawn(locker(l, m));
  (void)dump_when(rt, [&](const auto& d) { return suspended_at(find(d, locker1.id()), l.lock); });
  auto locker2 = rt.spawn(locker(l, m));

  auto d = dump_when(rt, [&](const auto& d) {
    return suspended_at(find(d, sleeping.id()), l.sleep) &&
           suspended_at(find(d, receiving.id()), l.recv) &&
           suspended_at(find(d, locker1.id()), l.lock) &&
           suspended_at(find(d, locker2.id()), l.lock) &&
           suspended_at(find(d, joining.id()), l.join) && find(d, fanning.id()) != nullptr &&
           find(d, fanning.id())->await_chain.size() == 2 &&
           suspended_at(find(d, reading.id()), l.read) &&
           suspended_at(find(d, chained.id()), l.inner);
  });

  const auto* s = find(d, sleeping.id());
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->name, "sleeper");
  EXPECT_TRUE(ends_with(s->spawned_at.file, "introspection_test.cpp")) << s->spawned_at.file;
  EXPECT_EQ(s->spawned_at.line, static_cast<std::uint32_t>(spawn_line));
  ASSERT_EQ(s->await_chain.size(), 1u);
  EXPECT_TRUE(ends_with(s->await_chain[0].file, "introspection_test.cpp"));
  EXPECT_NE(s->await_chain[0].function.find("sleeper"), std::string::npos)
      << s->await_chain[0].function;
  ASSERT_EQ(s->waiting_on.rfind("sleep until +", 0), 0u) << s->waiting_on;
  const double left = std::stod(s->waiting_on.substr(13));
  EXPECT_GT(left, 3500.0) << s->waiting_on;
  EXPECT_LE(left, 3600.0) << s->waiting_on;

  const auto* r = find(d, receiving.id());
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->name, "conn 10.0.0.7:5511");
  EXPECT_EQ(r->waiting_on, "channel recv");

  EXPECT_EQ(find(d, locker1.id())->waiting_on, "mutex lock (0 ahead)");
  EXPECT_EQ(find(d, locker2.id())->waiting_on, "mutex lock (1 ahead)");

  const auto* j = find(d, joining.id());
  ASSERT_NE(j, nullptr);
  const auto joined = std::find_if(d.begin(), d.end(), [&](const weft::task_record& t) {
    return t.id != sleeping.id() && suspended_at(&t, l.sleep);
  });
  ASSERT_NE(joined, d.end());
  EXPECT_EQ(j->waiting_on, "join task " + std::to_string(joined->id));
  const std::uint64_t joined_id = joined->id;

  const auto* f = find(d, fanning.id());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->await_chain.size(), 2u);  // fan_out's co_await, then when_all's own
  EXPECT_EQ(f->await_chain.front().line, static_cast<std::uint32_t>(l.when_all));
  EXPECT_EQ(f->waiting_on.rfind("when_all: 2 of 3 pending (tasks ", 0), 0u) << f->waiting_on;

  ASSERT_TRUE(suspended_at(find(d, reading.id()), l.read)) << weft::to_string(d);
  EXPECT_EQ(find(d, reading.id())->waiting_on, "read fd " + std::to_string(fds[0]));

  const auto* c = find(d, chained.id());
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->await_chain.size(), 2u);
  EXPECT_EQ(c->await_chain[0].line, static_cast<std::uint32_t>(l.outer));
  EXPECT_NE(c->await_chain[0].function.find("outer_frame"), std::string::npos);
  EXPECT_EQ(c->await_chain[1].line, static_cast<std::uint32_t>(l.inner));
  EXPECT_NE(c->await_chain[1].function.find("inner_frame"), std::string::npos);
  EXPECT_EQ(c->waiting_on, "channel recv");

  EXPECT_EQ(find(d, finished_id), nullptr) << "a finished task is gone from the dump";
  for (const auto& t : d) EXPECT_NE(t.id, 0u);

  const std::string text = weft::to_string(d);
  EXPECT_NE(text.find("\"conn 10.0.0.7:5511\" suspended"), std::string::npos) << text;
  EXPECT_NE(text.find("waiting on: mutex lock (1 ahead)"), std::string::npos) << text;
  EXPECT_NE(text.find("introspection_test.cpp:" + std::to_string(l.inner.load())),
            std::string::npos);

  // Let everything go: the tasks end, and the dump empties.
  ch.try_send(1);
  ch2.try_send(1);
  release.set();
  never.set();
  const char byte = 'x';
  ASSERT_EQ(::write(fds[1], &byte, 1), 1);
  sleeping.cancel();
  fanning.cancel();
  joining.cancel();
  rt.block_on([&]() -> weft::task<void> {
    co_await receiving;
    co_await holding;
    co_await locker1;
    co_await locker2;
    co_await reading;
    co_await chained;
    try {
      co_await sleeping;
    } catch (const weft::operation_cancelled&) {
    }
    try {
      co_await fanning;
    } catch (const weft::operation_cancelled&) {
    }
    try {
      co_await joining;
    } catch (const weft::operation_cancelled&) {
    }
  });
  // Left: the sleeper the cancelled joiner detached, still asleep.
  const auto after = dump_when(rt, [](const auto& d) { return d.size() <= 1; });
  ASSERT_EQ(after.size(), 1u) << weft::to_string(after);
  EXPECT_EQ(after[0].id, joined_id);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(TaskDump, ShowsReadyTasksWithTheirWorker) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  lines l;
  std::atomic<bool> stop{false};
  auto a = rt.spawn(yielder(l, stop));
  auto b = rt.spawn(yielder(l, stop));
  auto d = dump_when(rt, [&](const auto& d) {
    const auto* x = find(d, a.id());
    return x != nullptr && !x->await_chain.empty();
  });
  const auto* x = find(d, a.id());
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->state, weft::task_state::ready);
  ASSERT_TRUE(x->worker.has_value());
  EXPECT_EQ(*x->worker, 0u);
  EXPECT_EQ(x->await_chain.back().line, static_cast<std::uint32_t>(l.yield));
  EXPECT_TRUE(x->waiting_on.empty());
  stop = true;
  rt.block_on([&]() -> weft::task<void> {
    co_await a;
    co_await b;
  });
}

TEST(TaskDump, FromInsideATaskTheDumperShowsItself) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  const auto tasks = rt.block_on([]() -> weft::task<std::vector<weft::task_record>> {
    co_return co_await weft::dump_tasks();
  });
  // One root: co_invoke's frame, awaiting the lambda's, awaiting dump_tasks' own.
  ASSERT_EQ(tasks.size(), 1u) << weft::to_string(tasks);
  EXPECT_EQ(tasks[0].state, weft::task_state::suspended);
  EXPECT_EQ(tasks[0].await_chain.size(), 3u) << weft::to_string(tasks);
  EXPECT_EQ(tasks[0].waiting_on, "spawn_blocking (running on a blocking thread)");
  EXPECT_EQ(tasks[0].name, "block_on");
}

TEST(TaskDump, OnAWorkerThreadIsRefusedWithAClearError) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  rt.block_on([&]() -> weft::task<void> {
    EXPECT_THROW((void)rt.dump_tasks(), std::logic_error);
    co_return;
  });
}

TEST(TaskDump, JoinHandleIdsAreUniqueAndNonZero) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 1000; ++i) {
    auto h = rt.spawn([]() -> weft::task<void> { co_return; });
    ids.push_back(h.id());
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
  EXPECT_NE(ids.front(), 0u);
  EXPECT_EQ(weft::join_handle<void>{}.id(), 0u);
}

TEST(TaskDump, SigusrOneWritesTheDumpToStderrAndRestoresTheHandler) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction before {};
  ASSERT_EQ(::sigaction(SIGUSR1, &ignore, &before), 0);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  const int saved_stderr = ::dup(STDERR_FILENO);
  ASSERT_GE(saved_stderr, 0);
  std::string out;
  {
    weft::runtime_options o;
    o.workers = 1;
    o.dump_on_sigusr1 = true;
    weft::runtime rt{o};
    weft::event never;
    auto h = rt.spawn(forever(never), {.name = "waits forever"});
    (void)dump_when(rt, [](const auto& d) {
      return d.size() == 1 && d[0].state == weft::task_state::suspended;
    });
    ASSERT_EQ(::dup2(pipe_fds[1], STDERR_FILENO), STDERR_FILENO);
    ::raise(SIGUSR1);
    // Read until the dump's task line arrived (the dump is written by the runtime's thread).
    for (int i = 0; i < 500 && out.find("waiting on: event wait") == std::string::npos; ++i) {
      pollfd p{pipe_fds[0], POLLIN, 0};
      if (::poll(&p, 1, 10) == 1) {
        char buf[4096];
        const auto n = ::read(pipe_fds[0], buf, sizeof buf);
        if (n > 0) out.append(buf, static_cast<std::size_t>(n));
      }
    }
    ::dup2(saved_stderr, STDERR_FILENO);
    never.set();
    rt.block_on([&]() -> weft::task<void> { co_await h; });
  }
  ::close(saved_stderr);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  EXPECT_NE(out.find("weft: 1 tasks (0 ready, 0 running, 1 suspended)"), std::string::npos) << out;
  EXPECT_NE(out.find("\"waits forever\" suspended"), std::string::npos) << out;
  struct sigaction after {};
  ASSERT_EQ(::sigaction(SIGUSR1, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, SIG_IGN) << "the disposition before the runtime came back";
  ::sigaction(SIGUSR1, &before, nullptr);
}

TEST(TaskDump, ARuntimeThatCannotInstallItsDumpHandlerThrowsInsteadOfTerminating) {
  // 64 runtimes may ask for SIGUSR1 dumps at once; the 65th is refused with an exception, after
  // its workers started, and must stop them cleanly.
  std::vector<std::unique_ptr<weft::runtime>> many;
  weft::runtime_options o;
  o.workers = 1;
  o.stall_threshold = std::chrono::milliseconds{0};
  o.dump_on_sigusr1 = true;
  for (int i = 0; i < 64; ++i) many.push_back(std::make_unique<weft::runtime>(o));
  EXPECT_THROW(weft::runtime{o}, std::invalid_argument);
  many.pop_back();
  EXPECT_NO_THROW(weft::runtime{o});  // a slot is free again
}

// A user's awaiter that says what it waits on, and one that does not (never resumed: the
// runtime's shutdown destroys the suspended tasks).
struct described_awaiter {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  void await_resume() const noexcept {}
  void describe_await(weft::await_description& d) const { d.what = "my queue pop"; }
};
struct plain_awaiter {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  void await_resume() const noexcept {}
};

TEST(TaskDump, UsesAnAwaitersOwnDescriptionOrElseItsTypeName) {
  weft::runtime rt{weft::runtime_options{.workers = 1}};
  auto described = rt.spawn([]() -> weft::task<void> { co_await described_awaiter{}; });
  auto plain = rt.spawn([]() -> weft::task<void> { co_await plain_awaiter{}; });
  auto d = dump_when(rt, [&](const auto& d) {
    const auto* a = find(d, described.id());
    const auto* b = find(d, plain.id());
    return a && b && !a->waiting_on.empty() && !b->waiting_on.empty();
  });
  EXPECT_EQ(find(d, described.id())->waiting_on, "my queue pop");
  EXPECT_NE(find(d, plain.id())->waiting_on.find("plain_awaiter"), std::string::npos)
      << find(d, plain.id())->waiting_on;
  described.detach();
  plain.detach();
}

weft::task<void> hold_permit(weft::semaphore& s, weft::event& release) {
  auto p = co_await s.acquire(2);
  co_await release.wait();
}

TEST(TaskDump, DescribesSemaphoresBarriersGroupsAndBlockingJobs) {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  weft::semaphore sem{2};
  weft::barrier bar{3};
  weft::event release, block_release;
  auto holding = rt.spawn(hold_permit(sem, release));
  while (sem.available() != 0) std::this_thread::sleep_for(1ms);
  auto acquiring = rt.spawn([&sem]() -> weft::task<void> { auto p = co_await sem.acquire(1); });
  auto arriving = rt.spawn([&bar]() -> weft::task<void> { co_await bar.arrive_and_wait(); });
  auto grouping = rt.spawn([&release]() -> weft::task<void> {
    weft::task_group g;
    g.spawn(forever(release));
    co_await g.join();
  });
  std::atomic<bool> unblock{false};
  auto blocking = rt.spawn([&unblock]() -> weft::task<void> {
    co_await weft::spawn_blocking([&unblock] {
      while (!unblock.load()) std::this_thread::sleep_for(1ms);
    });
  });
  auto d = dump_when(rt, [&](const auto& d) {
    const auto* a = find(d, acquiring.id());
    const auto* b = find(d, arriving.id());
    const auto* g = find(d, grouping.id());
    const auto* j = find(d, blocking.id());
    return a && b && g && j && !a->waiting_on.empty() && !b->waiting_on.empty() &&
           !g->waiting_on.empty() && j->waiting_on.find("running") != std::string::npos;
  });
  EXPECT_EQ(find(d, acquiring.id())->waiting_on, "semaphore acquire 1 (0 ahead, 0 free)");
  EXPECT_EQ(find(d, arriving.id())->waiting_on, "barrier arrive_and_wait (1 of 3 arrived)");
  EXPECT_EQ(find(d, grouping.id())->waiting_on, "task_group join (1 running)");
  EXPECT_EQ(find(d, blocking.id())->waiting_on, "spawn_blocking (running on a blocking thread)");
  unblock = true;
  release.set();
  rt.block_on([&]() -> weft::task<void> {
    co_await holding;
    co_await acquiring;
    co_await grouping;
    co_await blocking;
    co_await weft::when_all(bar.arrive_and_wait(), bar.arrive_and_wait());
    co_await arriving;
  });
}

}  // namespace
