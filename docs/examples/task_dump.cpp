// "What is my program waiting on?": a small program whose tasks wait on a socket, a channel, a
// mutex, a timer and a fan-out, and the task dump that answers it (README.md quotes its output).
// It checks its own dump and exits non-zero if a task is missing, so the README's dump cannot rot.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <liburing.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

weft::task<std::size_t> read_request(int fd) {
  char buf[512];
  auto r = co_await weft::submit_io(
      [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, buf, sizeof buf, 0); });
  co_return r.res > 0 ? static_cast<std::size_t>(r.res) : 0;
}

weft::task<void> serve_connection(int fd) {
  const std::size_t n = co_await read_request(fd);
  std::printf("read %zu bytes\n", n);
}

weft::task<void> job_worker(weft::channel<std::string>& jobs) {
  while (auto job = co_await jobs.recv()) std::printf("job %s\n", job->c_str());
}

weft::task<void> refresh_cache() {
  for (;;) co_await weft::sleep_for(30s);
}

weft::task<void> update_inventory(weft::mutex& db) {
  auto lock = co_await db.lock();
  co_await weft::sleep_for(5s);  // a slow write, holding the lock
}

weft::task<void> checkout(weft::mutex& db) {
  auto lock = co_await db.lock();
}

weft::task<int> price_of(weft::channel<std::string>& quotes) {
  auto q = co_await quotes.recv();
  co_return q ? static_cast<int>(q->size()) : 0;
}

weft::task<void> quote_order(weft::channel<std::string>& quotes) {
  auto [a, b] = co_await weft::when_all(price_of(quotes), price_of(quotes));
  std::printf("quotes %d %d\n", a, b);
}

}  // namespace

int main() {
  weft::runtime rt{weft::runtime_options{.workers = 2}};
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return 1;
  weft::channel<std::string> jobs{16};
  weft::channel<std::string> quotes{16};
  weft::mutex db;

  auto conn = rt.spawn(serve_connection(fds[0]), {.name = "conn 10.0.0.7:5511"});
  auto worker = rt.spawn(job_worker(jobs), {.name = "job worker"});
  auto cache = rt.spawn(refresh_cache(), {.name = "cache refresh"});
  auto inventory = rt.spawn(update_inventory(db));
  std::this_thread::sleep_for(10ms);  // inventory takes the lock first
  auto order = rt.spawn(checkout(db), {.name = "checkout 4711"});
  auto quote = rt.spawn(quote_order(quotes));
  std::this_thread::sleep_for(50ms);  // let every task reach its co_await

  const auto tasks = rt.dump_tasks();
  std::fputs(weft::to_string(tasks).c_str(), stdout);

  // The dump must show each of them suspended where the code above says.
  const char* expected[] = {"read fd ", "channel recv", "sleep until +", "mutex lock (0 ahead)",
                            "when_all: 2 of 2 pending"};
  for (const char* what : expected) {
    bool found = false;
    for (const auto& t : tasks) found = found || t.waiting_on.find(what) != std::string::npos;
    if (!found) {
      std::fprintf(stderr, "task_dump: no task waits on '%s'\n", what);
      return 1;
    }
  }

  // Let the program end: everything is cancelled or finishes when the runtime shuts down.
  jobs.close();
  quotes.close();
  ::close(fds[1]);
  cache.cancel();
  inventory.cancel();
  rt.block_on([&]() -> weft::task<void> {
    co_await conn;
    co_await worker;
    co_await order;
    co_await quote;
  });
  ::close(fds[0]);
  return 0;
}
