// The README's "Composing work": when_any over replicas, a quorum write, a call with a deadline, a
// lock with a deadline, when_any over children of different types, and a task_group. The
// replicas, the backend and the connections are coroutines with fixed latencies under paused
// time, so every run is exact and instant; main() checks what each combinator returned and that
// every child it cancelled had stopped, and exits non-zero if one is wrong. The test suite runs
// this program.
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

// A replica of a store: how long it takes, and what happened to the requests it received.
struct replica {
  std::string name;
  weft::clock::duration latency;
  int started = 0;
  int finished = 0;
  int cancelled = 0;
};

// Runs `latency` on `r`, counting a cancellation.
weft::task<void> work_on(replica& r) {
  ++r.started;
  try {
    co_await weft::sleep_for(r.latency);
  } catch (const weft::operation_cancelled&) {
    ++r.cancelled;
    throw;
  }
  ++r.finished;
}

weft::task<std::string> read(replica& r) {
  co_await work_on(r);
  co_return "value from " + r.name;
}

struct record {
  std::string key;
  std::string value;
};

weft::task<void> write(replica& r, const record& rec) {
  co_await work_on(r);
  std::printf("  %s stored %s\n", r.name.c_str(), rec.key.c_str());
}

// A backend that takes a second: longer than the call's deadline.
weft::task<std::string> call(replica& backend) {
  co_await work_on(backend);
  co_return "reply";
}

struct profile {
  int id;
  std::string name;
};

weft::task<profile> load_profile(int id) {
  co_await weft::sleep_for(10ms);
  co_return profile{id, "user " + std::to_string(id)};
}

std::vector<std::string> rendered;
void render(const profile& p) { rendered.push_back(p.name); }

int served = 0;
weft::task<void> serve(int conn) {
  co_await weft::sleep_for(std::chrono::milliseconds{conn});
  ++served;
}

bool check(bool ok, const char* what) {
  std::printf("%s  %s\n", ok ? "  ok" : "FAIL", what);
  return ok;
}

weft::task<bool> run() {
  replica a{"a", 30ms};
  replica b{"b", 10ms};
  replica c{"c", 1h};  // the straggler
  std::vector<weft::task<std::string>> replica_reads;
  replica_reads.push_back(read(a));
  replica_reads.push_back(read(b));
  replica_reads.push_back(read(c));
  const record rec{"color", "blue"};
  replica backend{"backend", 1s};
  weft::mutex table_lock;
  const int id = 7;
  const weft::clock::duration budget = 50ms;
  weft::event stopping;
  std::vector<int> conns{1, 2, 3};
  const auto start = weft::clock::now();

  // clang-format off
  // [readme:composing]
  // The fastest replica answers; the others are cancelled and have stopped when this returns.
  auto first = co_await weft::when_any(std::move(replica_reads));
  auto value = std::move(first.result).value();  // rethrows if the winner failed

  // A write is durable once 2 of 3 replicas acknowledged it; fails as soon as 2 cannot. The
  // third write is cancelled; to let it finish (replicated to all), give the writes a group:
  // co_await weft::quorum(2, std::move(writes), replication) returns at 2 and the third write
  // runs on in `replication`, a task_group the service joins when it stops.
  auto acks = co_await weft::quorum(2, write(a, rec), write(b, rec), write(c, rec));

  // A call with a deadline: timed_out after 200 ms, once the call has stopped.
  try {
    auto reply = co_await weft::timeout(std::chrono::milliseconds{200}, call(backend));
  } catch (const weft::timed_out&) {
    // degrade
  }

  // Any awaitable, as it is written: a lock with a deadline, a wait bounded by a timer.
  auto guard = co_await weft::timeout(std::chrono::seconds{1}, table_lock.lock());

  // Children of different types: the variant's index says which finished first.
  auto next = co_await weft::when_any(load_profile(id), weft::sleep_for(budget), stopping.wait());
  if (next.index() == 0) render(std::get<0>(std::move(next)).value());

  // Any number of tasks in a scope; the first failure cancels the rest and is rethrown.
  weft::task_group group;
  for (auto& conn : conns) group.spawn(serve(conn));
  co_await group.join();
  // [/readme:composing]
  // clang-format on

  bool ok = true;
  ok &= check(first.index == 1 && value == "value from b", "when_any: the fastest replica, b");
  ok &= check(acks.size() == 2 && acks[0].index == 1 && acks[1].index == 0,
              "quorum: b then a acknowledged");
  ok &= check(c.started == 2 && c.cancelled == 2 && c.finished == 0,
              "c's read and c's write were cancelled, and had stopped");
  ok &= check(a.cancelled == 1 && a.finished == 1, "a's read lost to b's and was cancelled");
  ok &= check(backend.cancelled == 1 && backend.finished == 0,
              "the call past its deadline was cancelled");
  ok &= check(!table_lock.try_lock(), "the guard holds the lock");
  ok &= check(next.index() == 0 && rendered == std::vector<std::string>{"user 7"},
              "the profile came before the budget ran out and was rendered");
  ok &= check(served == 3, "the group joined all three connections");
  // 10 ms (b's read) + 30 ms (a's write) + 200 ms (the deadline) + 10 ms (the profile) + 3 ms.
  ok &= check(weft::clock::now() - start == 253ms, "in 253 ms of paused time");
  co_return ok;
}

}  // namespace

int main() {
  weft::runtime rt{weft::runtime_options{.time = weft::time_mode::paused}};
  const bool ok = rt.block_on(run());
  std::printf("%s\n", ok ? "composing: ok" : "composing: FAILED");
  return ok ? 0 : 1;
}
