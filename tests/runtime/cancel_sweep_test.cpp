// Cancellation at every suspension point of the combinators, task_group, the sync primitives,
// streams and files (see tests/support/cancel_sweep.hpp): each scenario is cancelled at each of
// its points in turn and must end with its value or operation_cancelled, leave no task running
// and no descriptor open, and keep its own accounting exact — no child outlives its combinator,
// every channel value is received, handed back or dropped by a cancelled send exactly once, no
// semaphore unit or mutex is lost. Last, the sweep's own tests: it must catch a broken
// invariant, a leaked task or descriptor, and a run that never ends.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "../support/cancel_sweep.hpp"
#include "../support/io_uring.hpp"

#include <weft/weft.hpp>

namespace {

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;
using weft::testing::cancel_sweep;
using weft::testing::cancel_via;
using weft::testing::sweep_ending;
using weft::testing::sweep_options;

// --- shared pieces ----------------------------------------------------------------------------

/// Children running now and children started in all: a combinator that returned while one of
/// its children still ran leaves `running` above 0 (one worker: nothing runs after the root).
struct census {
  int running = 0;
  int started = 0;
};

struct running_guard {
  census& c;
  explicit running_guard(census& c) : c(c) {
    ++c.running;
    ++c.started;
  }
  running_guard(const running_guard&) = delete;
  running_guard& operator=(const running_guard&) = delete;
  ~running_guard() { --c.running; }
};

/// A child with a few suspension points of both kinds (timer and yield): `steps` sleeps of
/// 1–3 ms, each followed by a yield. Returns id·100 + steps.
weft::task<int> stepper(census& c, int id, int steps) {
  running_guard g{c};
  for (int i = 0; i < steps; ++i) {
    co_await weft::sleep_for(ms{1 + (id + i) % 3});
    co_await weft::yield();
  }
  co_return id * 100 + steps;
}

weft::task<int> fail_after(census& c, ms d, std::string what) {
  running_guard g{c};
  co_await weft::sleep_for(d);
  co_await weft::yield();
  throw std::runtime_error(what);
}

weft::task<void> void_stepper(census& c, int id, int steps) {
  (void)co_await stepper(c, id, steps);
}

bool is_cancellation(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const weft::operation_cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return {};
  }
}

template <class State>
void expect_no_child_running(const State& s) {
  EXPECT_EQ(s.c.running, 0) << "a child outlived its combinator";
}

/// Sweeps through both ways a caller cancels: the spawned root's handle, and a cancel_source
/// through with_cancellation.
template <class State, class Scenario, class Checker>
void sweep_both(const std::string& name, Scenario scenario, Checker checker,
                sweep_options options = {}) {
  options.via = cancel_via::join_handle;
  cancel_sweep<State>(name + "/handle", scenario, checker, options);
  options.via = cancel_via::source;
  cancel_sweep<State>(name + "/source", scenario, checker, options);
}

// --- combinators ------------------------------------------------------------------------------

struct combinator_state {
  census c;
  int phases_done = 0;
};

TEST(CancelSweep, WhenAll) {
  // Phase 1 succeeds; phase 2 fails fast, so its siblings are cancelled while the sweep may be
  // cancelling the caller too.
  auto scenario = [](combinator_state& s) -> weft::task<int> {
    auto [a, b, c, none] = co_await weft::when_all(stepper(s.c, 0, 6), stepper(s.c, 1, 8),
                                                   stepper(s.c, 2, 5), void_stepper(s.c, 3, 6));
    (void)none;
    ++s.phases_done;
    int failed = 0;
    try {
      std::vector<weft::task<int>> ts;
      ts.push_back(stepper(s.c, 4, 8));
      ts.push_back(fail_after(s.c, 9ms, "boom"));
      ts.push_back(stepper(s.c, 5, 8));
      (void)co_await weft::when_all(std::move(ts));
    } catch (const weft::operation_cancelled&) {
      throw;  // a runtime_error too, but the caller's, not the child's
    } catch (const std::runtime_error& e) {
      if (std::string{e.what()} == "boom") failed = 1;
    }
    ++s.phases_done;
    co_return a + b + c + failed;
  };
  auto checker = [](combinator_state& s, const sweep_ending<int>& e) {
    expect_no_child_running(s);
    if (e.has_value()) {
      EXPECT_EQ(*e.value, 6 + 108 + 205 + 1);
      EXPECT_EQ(s.phases_done, 2);
    }
  };
  sweep_both<combinator_state>("when_all", scenario, checker);
}

TEST(CancelSweep, WhenAllSettled) {
  // A cancelled caller still gets every outcome (documented: the cancelled children's hold
  // operation_cancelled), so the value says which way each child ended: a: 8 or cancelled (-1);
  // b: its own failure (1000) or cancelled (2000).
  auto scenario = [](combinator_state& s) -> weft::task<int> {
    auto [a, b] =
        co_await weft::when_all_settled(stepper(s.c, 0, 8), fail_after(s.c, 10ms, "settled"));
    const int a_code = a.has_value() ? a.value() : is_cancellation(a.error()) ? -1 : -1000;
    const int b_code = b.has_value()                        ? 0
                       : is_cancellation(b.error())         ? 2000
                       : message_of(b.error()) == "settled" ? 1000
                                                            : 0;
    co_return a_code + b_code;
  };
  auto checker = [](combinator_state& s, const sweep_ending<int>& e) {
    expect_no_child_running(s);
    if (e.has_value() && !e.cancel_requested) {
      EXPECT_EQ(*e.value, 8 + 1000);
    }
    if (e.has_value() && e.cancel_requested) {
      EXPECT_TRUE(*e.value == 8 + 1000 || *e.value == 8 + 2000 || *e.value == -1 + 1000 ||
                  *e.value == -1 + 2000)
          << *e.value;
    }
  };
  sweep_both<combinator_state>("when_all_settled", scenario, checker);
}

TEST(CancelSweep, WhenAny) {
  // The fastest wins; the losers are cancelled and awaited. Then a race whose first finisher
  // fails, and first_success, which waits past it.
  auto scenario = [](combinator_state& s) -> weft::task<int> {
    std::vector<weft::task<int>> ts;
    ts.push_back(stepper(s.c, 0, 12));
    ts.push_back(stepper(s.c, 1, 5));
    ts.push_back(stepper(s.c, 2, 10));
    auto first = co_await weft::when_any(std::move(ts));
    const int winner = static_cast<int>(first.index);
    const int value = first.result.value();
    std::vector<weft::task<int>> race;
    race.push_back(fail_after(s.c, 1ms, "early"));
    race.push_back(stepper(s.c, 3, 6));
    auto failed_first = co_await weft::when_any(std::move(race));
    const int failed_index =
        failed_first.result.has_error() ? static_cast<int>(failed_first.index) : -1;
    std::vector<weft::task<int>> success;
    success.push_back(fail_after(s.c, 1ms, "early"));
    success.push_back(stepper(s.c, 4, 6));
    const int best = co_await weft::first_success(std::move(success));
    co_return winner * 10000 + value + failed_index * 1000 + best * 10;
  };
  auto checker = [](combinator_state& s, const sweep_ending<int>& e) {
    expect_no_child_running(s);
    if (e.has_value()) {
      EXPECT_EQ(*e.value, 10000 + 105 + 0 + 4060);
    }
  };
  sweep_both<combinator_state>("when_any", scenario, checker);
}

TEST(CancelSweep, QuorumAndMajority) {
  // 3 of 5 with two early failures; then a majority of 4 that cannot be reached (2 fail of 4
  // with k = 3), which throws aggregate_error as soon as it is certain.
  auto scenario = [](combinator_state& s) -> weft::task<int> {
    std::vector<weft::task<int>> ts;
    ts.push_back(fail_after(s.c, 1ms, "a"));
    ts.push_back(stepper(s.c, 1, 6));
    ts.push_back(fail_after(s.c, 2ms, "b"));
    ts.push_back(stepper(s.c, 2, 8));
    ts.push_back(stepper(s.c, 3, 5));
    auto votes = co_await weft::quorum(3, std::move(ts));
    int sum = 0;
    for (const auto& v : votes) sum += v.value;
    std::vector<weft::task<int>> ms4;
    ms4.push_back(stepper(s.c, 4, 8));
    ms4.push_back(fail_after(s.c, 1ms, "c"));
    ms4.push_back(fail_after(s.c, 3ms, "d"));
    ms4.push_back(stepper(s.c, 5, 8));
    int failures = 0;
    try {
      (void)co_await weft::majority(std::move(ms4));
    } catch (const weft::aggregate_error& e) {
      failures = static_cast<int>(e.errors().size());
    }
    co_return sum * 10 + failures;
  };
  auto checker = [](combinator_state& s, const sweep_ending<int>& e) {
    expect_no_child_running(s);
    if (e.has_value()) {
      EXPECT_EQ(*e.value, (106 + 208 + 305) * 10 + 2);
    }
  };
  sweep_both<combinator_state>("quorum", scenario, checker);
}

struct timeout_state {
  census c;
  bool second_timed_out = false;  // the call with room to spare reported timed_out: a bug
};

TEST(CancelSweep, Timeout) {
  // One call that times out (its task is cancelled and awaited), one that finishes in time: a
  // cancelled caller must see operation_cancelled, never timed_out, from the call that had room
  // to spare.
  auto scenario = [](timeout_state& s) -> weft::task<int> {
    int timed_out = 0;
    try {
      (void)co_await weft::timeout(7ms, stepper(s.c, 0, 8));
    } catch (const weft::timed_out&) {
      timed_out = 1;
    }
    int v = 0;
    try {
      v = co_await weft::timeout(1s, stepper(s.c, 1, 8));
    } catch (const weft::timed_out&) {
      s.second_timed_out = true;
      throw;
    }
    const auto deadline = weft::clock::now() + 5ms;
    try {
      (void)co_await weft::with_deadline(deadline, stepper(s.c, 2, 12));
    } catch (const weft::timed_out&) {
      ++timed_out;
    }
    co_return v + timed_out;
  };
  auto checker = [](timeout_state& s, const sweep_ending<int>& e) {
    expect_no_child_running(s);
    EXPECT_FALSE(s.second_timed_out) << "timed_out from a call 1 s from its deadline";
    if (e.has_value()) {
      EXPECT_EQ(*e.value, 108 + 2);
    }
  };
  sweep_options o;
  o.accept_error = [](const std::exception_ptr& e) {
    // The second call rethrows timed_out only in the bug the checker names.
    try {
      std::rethrow_exception(e);
    } catch (const weft::timed_out&) {
      return true;
    } catch (...) {
      return false;
    }
  };
  sweep_both<timeout_state>("timeout", scenario, checker, o);
}

TEST(CancelSweep, MapConcurrent) {
  auto scenario = [](combinator_state& s) -> weft::task<int> {
    std::vector<int> inputs;
    for (int i = 1; i <= 24; ++i) inputs.push_back(i);
    census* c = &s.c;
    auto square = [c](int x) -> weft::task<int> {
      running_guard g{*c};
      co_await weft::sleep_for(ms{1 + x % 3});
      co_await weft::yield();
      co_return x* x;
    };
    // Named first: g++ 12 destroys a lambda temporary twice beside a co_await (README Hazards).
    auto all = weft::map_concurrent(std::move(inputs), square, 4);
    auto squares = co_await std::move(all);
    int sum = 0;
    for (int v : squares) sum += v;
    co_return sum;
  };
  auto checker = [](combinator_state& s, const sweep_ending<int>& e) {
    expect_no_child_running(s);
    if (e.has_value()) {
      EXPECT_EQ(*e.value, 4900);
    }
  };
  sweep_both<combinator_state>("map_concurrent", scenario, checker);
}

// --- task_group -------------------------------------------------------------------------------

struct group_state {
  census c;
  int finished = 0;  // tasks that ran to their end
  int spawned = 0;
};

weft::task<void> group_member(group_state& s, weft::task_group& g, int id) {
  running_guard guard{s.c};
  co_await weft::sleep_for(ms{1 + id % 4});
  if (id < 6) {
    // Children spawn into their own group while it is being joined (or torn down).
    ++s.spawned;
    g.spawn(group_member(s, g, id + 10));
  }
  co_await weft::yield();
  ++s.finished;
}

TEST(CancelSweep, TaskGroup) {
  // Spawns with yields in between (a cancellation there leaves the scope with tasks running: the
  // group's destructor cancels and waits for them), a join, then a group whose member fails.
  auto scenario = [](group_state& s) -> weft::task<int> {
    weft::task_group group;
    for (int i = 0; i < 12; ++i) {
      ++s.spawned;
      group.spawn(group_member(s, group, i));
      if (i % 2 == 1) co_await weft::yield();
    }
    co_await group.join();
    const int first = s.finished;
    weft::task_group failing;
    ++s.spawned;
    failing.spawn(group_member(s, failing, 27));
    failing.spawn(fail_after(s.c, 2ms, "member"));
    ++s.spawned;
    failing.spawn(group_member(s, failing, 28));
    int caught = 0;
    try {
      co_await failing.join();
    } catch (const weft::operation_cancelled&) {
      throw;  // a runtime_error too, but the caller's, not the member's
    } catch (const std::runtime_error&) {
      caught = 1;
    }
    co_return first * 10 + caught;
  };
  auto checker = [](group_state& s, const sweep_ending<int>& e) {
    expect_no_child_running(s);
    EXPECT_LE(s.finished, s.spawned);
    if (e.has_value()) {
      EXPECT_EQ(*e.value, 18 * 10 + 1);
    }
  };
  sweep_both<group_state>("task_group", scenario, checker);
}

// --- channel ----------------------------------------------------------------------------------

/// Where each value of a channel run went. Every value created ends in exactly one place:
/// received, drained from the buffer afterwards, handed back by channel_closed, or destroyed —
/// and destroyed only by a send that threw operation_cancelled.
struct ledger {
  struct entry {
    int created = 0, sent = 0, send_cancelled = 0, handed_back = 0, received = 0, drained = 0,
        destroyed = 0;
  };
  std::map<int, entry> entries;
};

/// A value that reports its destruction unless someone claimed it.
class item {
 public:
  item(int id, ledger& l) : id_(id), ledger_(&l) { ++l.entries[id].created; }
  item(item&& o) noexcept : id_(o.id_), ledger_(std::exchange(o.ledger_, nullptr)) {}
  item& operator=(item&& o) noexcept {
    if (this != &o) {
      drop();
      id_ = o.id_;
      ledger_ = std::exchange(o.ledger_, nullptr);
    }
    return *this;
  }
  item(const item&) = delete;
  item& operator=(const item&) = delete;
  ~item() { drop(); }
  /// Takes the value out of circulation: its fate is recorded by the caller.
  int claim() noexcept {
    ledger_ = nullptr;
    return id_;
  }

 private:
  void drop() noexcept {
    if (ledger_ != nullptr) ++ledger_->entries[id_].destroyed;
  }
  int id_;
  ledger* ledger_;
};

struct channel_state {
  ledger l;
  weft::channel<item> ch{2};
  weft::channel<item> rendezvous{0};
  int received = 0;
};

weft::task<void> produce(channel_state& s, weft::channel<item>& ch, int who, int n) {
  for (int i = 0; i < n; ++i) {
    const int id = who * 100 + i;
    try {
      co_await ch.send(item{id, s.l});
      ++s.l.entries[id].sent;
    } catch (const weft::operation_cancelled&) {
      ++s.l.entries[id].send_cancelled;
      throw;
    } catch (weft::channel_closed& e) {
      ++s.l.entries[id].handed_back;
      (void)e.take_value<item>().claim();
      co_return;
    }
    if (i % 3 == 2) co_await weft::sleep_for(1ms);
  }
}

weft::task<void> consume(channel_state& s, weft::channel<item>& ch, int pace) {
  while (auto v = co_await ch.recv()) {
    ++s.l.entries[v->claim()].received;
    ++s.received;
    if (pace > 0) co_await weft::sleep_for(ms{pace});
  }
}

weft::task<void> produce_then_close(channel_state& s, weft::channel<item>& ch) {
  co_await weft::when_all(produce(s, ch, 1, 20), produce(s, ch, 2, 20));
  ch.close();
}

weft::task<void> close_after(weft::channel<item>& ch, ms d) {
  co_await weft::sleep_for(d);
  ch.close();
}

TEST(CancelSweep, Channel) {
  // Two producers and two consumers of different pace over a buffered channel, then a
  // rendezvous channel whose producer is closed on while it waits.
  auto scenario = [](channel_state& s) -> weft::task<int> {
    co_await weft::when_all(produce_then_close(s, s.ch), consume(s, s.ch, 1), consume(s, s.ch, 2));
    const int buffered = s.received;
    co_await weft::when_all(produce(s, s.rendezvous, 3, 5), consume(s, s.rendezvous, 1),
                            close_after(s.rendezvous, 3ms));
    co_return buffered;
  };
  auto checker = [](channel_state& s, const sweep_ending<int>& e) {
    // What is still buffered was sent and not received: drain it.
    while (auto v = s.ch.try_recv()) ++s.l.entries[v->claim()].drained;
    while (auto v = s.rendezvous.try_recv()) ++s.l.entries[v->claim()].drained;
    for (const auto& [id, en] : s.l.entries) {
      SCOPED_TRACE(::testing::Message() << "value " << id);
      EXPECT_EQ(en.created, 1);
      EXPECT_EQ(en.received + en.drained + en.handed_back + en.destroyed, 1)
          << "received " << en.received << ", drained " << en.drained << ", handed back "
          << en.handed_back << ", destroyed " << en.destroyed;
      EXPECT_EQ(en.sent + en.send_cancelled + en.handed_back, 1)
          << "a send ended " << en.sent + en.send_cancelled + en.handed_back << " ways";
      if (en.destroyed > 0) {
        EXPECT_EQ(en.send_cancelled, 1) << "a value sent was lost";
      }
      if (en.send_cancelled > 0) {
        EXPECT_EQ(en.received + en.drained, 0) << "a cancelled send's value was delivered";
      }
    }
    if (e.has_value()) {
      EXPECT_EQ(*e.value, 40);
      int delivered = 0;
      for (const auto& [id, en] : s.l.entries) delivered += en.received;
      EXPECT_GE(delivered, 40);
    }
  };
  sweep_both<channel_state>("channel", scenario, checker);
}

TEST(CancelSweep, ChannelClosedAtEveryPoint) {
  // Not a cancellation: the buffered channel closed at each point instead. Waiting senders get
  // their values back, receivers drain what is buffered, and the run ends normally.
  auto scenario = [](channel_state& s) -> weft::task<int> {
    co_await weft::when_all(produce_then_close(s, s.ch), consume(s, s.ch, 1), consume(s, s.ch, 2));
    co_return s.received;
  };
  auto checker = [](channel_state& s, const sweep_ending<int>& e) {
    EXPECT_TRUE(e.has_value()) << "closing a channel ended the run "
                               << (e.cancelled ? "cancelled" : "with an error");
    if (auto left = s.ch.try_recv()) {
      ADD_FAILURE() << "a closed channel kept value " << left->claim()
                    << ", which its receivers did not drain";
    }
    int received = 0, handed_back = 0;
    for (const auto& [id, en] : s.l.entries) {
      SCOPED_TRACE(::testing::Message() << "value " << id);
      EXPECT_EQ(en.created, 1);
      EXPECT_EQ(en.destroyed, 0) << "a value was lost (nothing was cancelled)";
      EXPECT_EQ(en.received + en.handed_back, 1);
      EXPECT_EQ(en.sent + en.handed_back, 1);
      received += en.received;
      handed_back += en.handed_back;
    }
    if (e.has_value()) {
      EXPECT_EQ(*e.value, received);
    }
    // Each producer stops at its first handed-back value.
    EXPECT_LE(handed_back, 2);
  };
  cancel_sweep<channel_state>("channel_close", scenario, checker, {},
                              [](channel_state& s) { s.ch.close(); });
}

// --- semaphore, mutex, event ------------------------------------------------------------------

struct semaphore_state {
  static constexpr std::size_t units = 3;
  weft::semaphore sem{units};
  std::size_t in_use = 0;
  bool over = false;  // more units in use than exist
  int rounds = 0;
};

weft::task<void> use_units(semaphore_state& s, std::size_t n, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    auto permit = co_await s.sem.acquire(n);
    s.in_use += n;
    if (s.in_use > semaphore_state::units) s.over = true;
    struct give_back {
      semaphore_state& s;
      std::size_t n;
      ~give_back() { s.in_use -= n; }
    } g{s, n};
    co_await weft::sleep_for(ms{1 + i % 2});
    co_await weft::yield();
    ++s.rounds;
  }
}

TEST(CancelSweep, Semaphore) {
  // FIFO requests of 1, 2 and 3 units over 3: a cancelled front request must let the ones
  // behind it through, and no unit may stay taken.
  auto scenario = [](semaphore_state& s) -> weft::task<int> {
    co_await weft::when_all(use_units(s, 1, 6), use_units(s, 2, 6), use_units(s, 3, 4),
                            use_units(s, 1, 6), use_units(s, 2, 4));
    co_return s.rounds;
  };
  auto checker = [](semaphore_state& s, const sweep_ending<int>& e) {
    EXPECT_EQ(s.sem.available(), semaphore_state::units) << "a permit was lost";
    EXPECT_EQ(s.in_use, 0u);
    EXPECT_FALSE(s.over) << "more units handed out than the semaphore has";
    auto all = s.sem.try_acquire(semaphore_state::units);
    EXPECT_TRUE(all.has_value()) << "the semaphore still has waiters or lost units";
    if (e.has_value()) {
      EXPECT_EQ(*e.value, 26);
    }
  };
  sweep_both<semaphore_state>("semaphore", scenario, checker);
}

struct mutex_event_state {
  weft::mutex m;
  weft::event ready;
  bool inside = false;
  bool overlap = false;  // two tasks held the mutex at once
  int sections = 0;
  int woke = 0;
};

weft::task<void> locker(mutex_event_state& s, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    auto guard = co_await s.m.lock();
    if (s.inside) s.overlap = true;
    s.inside = true;
    co_await weft::yield();
    s.inside = false;
    ++s.sections;
  }
}

weft::task<void> waiter(mutex_event_state& s) {
  co_await s.ready.wait();
  ++s.woke;
}

weft::task<void> setter(mutex_event_state& s) {
  co_await weft::sleep_for(2ms);
  s.ready.set();
}

TEST(CancelSweep, MutexAndEvent) {
  auto scenario = [](mutex_event_state& s) -> weft::task<int> {
    co_await weft::when_all(locker(s, 6), locker(s, 6), locker(s, 4), waiter(s), waiter(s),
                            waiter(s), setter(s));
    co_return s.sections * 10 + s.woke;
  };
  auto checker = [](mutex_event_state& s, const sweep_ending<int>& e) {
    EXPECT_FALSE(s.overlap) << "two tasks held the mutex at once";
    EXPECT_FALSE(s.m.is_locked()) << "the mutex stayed locked";
    EXPECT_TRUE(s.m.try_lock().has_value());
    if (e.has_value()) {
      EXPECT_EQ(*e.value, 163);
    }
  };
  sweep_both<mutex_event_state>("mutex_event", scenario, checker);
}

// --- streams ----------------------------------------------------------------------------------

weft::async_generator<int> ticks(int base, int n, ms period) {
  for (int i = 0; i < n; ++i) {
    co_await weft::sleep_for(period);
    co_yield base + i;
  }
}

struct stream_state {
  std::vector<int> merged;
  std::vector<std::size_t> batches;
  std::vector<int> settled;
};

TEST(CancelSweep, Streams) {
  // merge runs a pump task per source; take drops the merge while those still run, so the
  // generator's frame, with its task group, is destroyed mid-stream. buffer runs its source in a
  // task of its own against a timer; debounce races values against a quiet period.
  auto scenario = [](stream_state& s) -> weft::task<int> {
    auto merged =
        weft::take(weft::merge(ticks(0, 8, 1ms), ticks(100, 6, 2ms), ticks(200, 4, 3ms)), 10);
    while (auto v = co_await merged.next()) s.merged.push_back(*v);
    auto batches = weft::buffer(ticks(0, 9, 1ms), 4, 3ms);
    while (auto b = co_await batches.next()) s.batches.push_back(b->size());
    auto settled = weft::debounce(ticks(0, 6, 1ms), 2ms);
    while (auto v = co_await settled.next()) s.settled.push_back(*v);
    co_return static_cast<int>(s.merged.size() * 100 + s.batches.size() * 10 + s.settled.size());
  };
  auto checker = [](stream_state& s, const sweep_ending<int>& e) {
    std::size_t batched = 0;
    for (auto n : s.batches) batched += n;
    EXPECT_LE(batched, 9u) << "buffer emitted a value twice";
    if (e.has_value()) {
      EXPECT_EQ(s.merged.size(), 10u);
      EXPECT_EQ(batched, 9u);
      EXPECT_FALSE(s.settled.empty());
      EXPECT_EQ(s.settled.back(), 5);
    }
  };
  sweep_both<stream_state>("streams", scenario, checker);
}

// --- files ------------------------------------------------------------------------------------

/// A directory of its own for the file sweep, removed at the end.
class scratch_dir {
 public:
  scratch_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "weft-sweep-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  ~scratch_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

const scratch_dir* file_sweep_dir = nullptr;  // set by the test while it sweeps

struct file_state {
  std::string path = (file_sweep_dir->path() / "data").string();
  std::string read_back;
};

TEST(CancelSweep, Files) {
  if (!weft::testing::io_uring_refusal().empty()) GTEST_SKIP() << weft::testing::io_uring_refusal();
  // Open (the kernel may finish an open the task was cancelled out of: the runtime must close
  // that descriptor), write in chunks, fsync, close; then the whole-file helpers.
  scratch_dir dir;
  file_sweep_dir = &dir;
  auto scenario = [](file_state& s) -> weft::task<std::size_t> {
    auto f = co_await weft::file::open(s.path, O_CREAT | O_TRUNC | O_WRONLY);
    const std::string chunk(512, 'x');
    for (int i = 0; i < 6; ++i) {
      co_await f.write_at(std::as_bytes(std::span{chunk.data(), chunk.size()}),
                          static_cast<std::uint64_t>(i) * chunk.size());
    }
    co_await f.fsync();
    co_await f.close();
    s.read_back = co_await weft::read_file(s.path);
    co_await weft::write_file(s.path, "done");
    co_return s.read_back.size();
  };
  auto checker = [](file_state& s, const sweep_ending<std::size_t>& e) {
    if (e.has_value()) {
      EXPECT_EQ(*e.value, 3072u);
      EXPECT_EQ(s.read_back, std::string(3072, 'x'));
    }
  };
  sweep_options o;
  o.io_uring = true;
  o.deterministic = false;  // completions come at the kernel's pace
  sweep_both<file_state>("files", scenario, checker, o);
  file_sweep_dir = nullptr;
}

// --- the sweep itself: it must catch what it exists to catch ----------------------------------

/// Runs `sweep` with its failures intercepted; returns their messages.
template <class F>
std::vector<std::string> intercepted_failures(F sweep) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter{
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ALL_THREADS, &results};
    sweep();
  }
  std::vector<std::string> messages;
  for (int i = 0; i < results.size(); ++i) {
    if (results.GetTestPartResult(i).failed()) {
      messages.emplace_back(results.GetTestPartResult(i).message());
    }
  }
  return messages;
}

bool any_contains(const std::vector<std::string>& messages, const std::string& what) {
  return std::any_of(messages.begin(), messages.end(),
                     [&](const std::string& m) { return m.find(what) != std::string::npos; });
}

struct empty_state {};

weft::task<void> few_sleeps(int n) {
  for (int i = 0; i < n; ++i) co_await weft::sleep_for(1ms);
}

void no_check(empty_state&, const sweep_ending<void>&) {}

TEST(CancelSweepHelper, ReportsTheFirstBrokenPointAndStops) {
  auto scenario = [](empty_state&) { return few_sleeps(10); };
  weft::testing::sweep_report report;
  const auto failures = intercepted_failures([&] {
    report = cancel_sweep<empty_state>("self_broken_k", scenario,
                                       [](empty_state&, const sweep_ending<void>& e) {
                                         EXPECT_NE(e.k, 5u) << "the invariant breaks at k=5";
                                       });
  });
  EXPECT_EQ(report.failed_at, 5u);
  EXPECT_EQ(report.runs, 5u);
  EXPECT_TRUE(any_contains(failures, "broke at k=5")) << ::testing::PrintToString(failures);
}

TEST(CancelSweepHelper, CatchesATaskLeftRunning) {
  // A task spawned and dropped: it outlives the root whenever the root is cancelled before it
  // would have waited for it.
  auto scenario = [](empty_state&) -> weft::task<void> {
    auto h = weft::spawn(few_sleeps(50));
    co_await few_sleeps(3);
    h.cancel();
    co_await few_sleeps(3);  // by now the dropped task has seen its cancellation
  };
  weft::testing::sweep_report report;
  const auto failures = intercepted_failures(
      [&] { report = cancel_sweep<empty_state>("self_leaked_task", scenario, no_check); });
  EXPECT_NE(report.failed_at, 0u);
  EXPECT_TRUE(any_contains(failures, "outlived the scenario's root"))
      << ::testing::PrintToString(failures);
}

TEST(CancelSweepHelper, CatchesALeakedDescriptor) {
  static std::vector<int> leaked;
  auto scenario = [](empty_state&) -> weft::task<void> {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    co_await few_sleeps(3);  // a cancellation here skips the closes below
    ::close(fds[0]);
    ::close(fds[1]);
  };
  // The leak is found at the first point that skips the closes; the pipe's ends stay open in
  // the process otherwise, so close what this test leaked.
  weft::testing::sweep_report report;
  const int before = weft::testing::open_fd_count();
  const auto failures = intercepted_failures(
      [&] { report = cancel_sweep<empty_state>("self_leaked_fd", scenario, no_check); });
  for (int fd = 3; fd < 1024 && weft::testing::open_fd_count() > before; ++fd) {
    // Only descriptors that are pipes created after `before` was taken are ours to close.
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) ::close(fd);
  }
  EXPECT_NE(report.failed_at, 0u);
  EXPECT_TRUE(any_contains(failures, "descriptors were left open"))
      << ::testing::PrintToString(failures);
}

/// A scenario that goes on forever once its trigger set `stuck`: what a cancellation that does
/// not reach a task looks like (a cancelled task cannot wait on: every later suspension point
/// throws, so a swallowed cancellation spins, which only the real-time watchdog sees).
struct stuck_state {
  bool stuck = false;
};

TEST(CancelSweepHelper, CatchesARunThatSleepsOnForever) {
  auto scenario = [](stuck_state& s) -> weft::task<void> {
    co_await few_sleeps(5);
    while (s.stuck) co_await weft::sleep_for(1h);
  };
  sweep_options o;
  o.clock_limit = 10h;
  const auto failures = intercepted_failures([&] {
    (void)cancel_sweep<stuck_state>(
        "self_sleeps_on", scenario, [](stuck_state&, const sweep_ending<void>&) {}, o,
        [](stuck_state& s) { s.stuck = true; });
  });
  EXPECT_TRUE(any_contains(failures, "paused-clock limit")) << ::testing::PrintToString(failures);
}

TEST(CancelSweepHelper, CatchesALivelock) {
  // Yielding forever never moves the clock: the resumptions run past their limit.
  auto scenario = [](stuck_state& s) -> weft::task<void> {
    co_await few_sleeps(5);
    while (s.stuck) co_await weft::yield();
  };
  const auto failures = intercepted_failures([&] {
    (void)cancel_sweep<stuck_state>(
        "self_livelock", scenario, [](stuck_state&, const sweep_ending<void>&) {}, {},
        [](stuck_state& s) { s.stuck = true; });
  });
  EXPECT_TRUE(any_contains(failures, "resumption limit")) << ::testing::PrintToString(failures);
}

TEST(CancelSweepHelper, CatchesARunThatNeverEndsInRealTime) {
  // A cancelled run that blocks its worker: the real-time watchdog shuts the runtime down.
  static int fired_before;  // a static: the scenario lambda captures nothing
  fired_before = weft::testing::detail::sweep_watchdog::fired_count().load();
  auto scenario = [](empty_state&) -> weft::task<void> {
    try {
      co_await few_sleeps(3);
    } catch (const weft::operation_cancelled&) {
      // What a blocking call in a task does: block the worker, here until the watchdog fired
      // (not for a guessed time, which a loaded machine could outlast).
      auto& fired = weft::testing::detail::sweep_watchdog::fired_count();
      while (fired.load(std::memory_order_acquire) == fired_before) {
        std::this_thread::sleep_for(1ms);
      }
      throw;
    }
  };
  sweep_options o;
  o.watchdog = 100ms;
  const auto failures = intercepted_failures(
      [&] { (void)cancel_sweep<empty_state>("self_stuck", scenario, no_check, o); });
  EXPECT_TRUE(any_contains(failures, "real-time watchdog")) << ::testing::PrintToString(failures);
}

TEST(CancelSweepHelper, StepsThroughLongScenarios) {
  auto scenario = [](empty_state&) { return few_sleeps(400); };
  sweep_options o;
  o.max_points = 25;
  const auto report = cancel_sweep<empty_state>("self_stepped", scenario, no_check, o);
  EXPECT_GE(report.points, 400u);
  EXPECT_EQ(report.runs, 25u);
  EXPECT_EQ(report.failed_at, 0u);
}

}  // namespace
