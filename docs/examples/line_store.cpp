// A replicated line-protocol key-value store, server and client in one program, written as a
// weft service would be: signals for graceful shutdown, framed reads with a line limit and an
// idle timeout, a flaky backing store behind a resilience pipeline kept in a class, writes to
// three replicas with both quorum idioms, reads that race the replicas, and the right handling
// of a request cancelled on a persistent connection. main() runs it all on loopback and checks
// it: the test suite runs this program (exit 0 = pass). docs/writing-a-service.md walks through it.
//
// Protocol (one line each way): "SET key value" -> "OK"; "GET key" -> "VALUE value" or
// "NOT_FOUND"; anything else -> "ERR ...".
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <weft/net/buffered_reader.hpp>
#include <weft/net/buffered_writer.hpp>
#include <weft/net/framing.hpp>
#include <weft/net/server.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/resilience/any_pipeline.hpp>
#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/resilience/time_limiter.hpp>
#include <weft/weft.hpp>

using namespace std::chrono_literals;
namespace net = weft::net;
namespace wr = weft::resilience;

namespace {

// A request line longer than this is refused: without a limit, a client that never sends "\n"
// makes the server buffer without bound.
constexpr std::size_t max_line = 4096;
// A connection that sends no request for this long is closed. Short so that the test sees it;
// a real service uses tens of seconds.
constexpr auto idle_timeout = 200ms;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    std::abort();
  }
  std::printf("  ok  %s\n", what);
}

// A connection the peer reset or closed under us ends the conversation; it is not an error of
// ours worth reporting.
bool peer_went_away(const std::error_code& code) {
  return code == std::errc::connection_reset || code == std::errc::broken_pipe;
}

// ---------------------------------------------------------------------------------------------
// The server side.

// A replica's durable storage: slow and flaky on purpose, and deterministic about it, so that
// every run takes the same paths through the pipeline. Call 5, 10, 15, ... fails; call 7, 14,
// 21, ... hangs for 2 s (the pipeline's 50 ms time limiter cuts it); every other call takes 1 ms.
// At most two calls in a row go wrong (14 and 15, 20 and 21), so 3 attempts would get through;
// the retry allows 5, leaving room for a time limit missed on a loaded machine.
class backing_store {
 public:
  weft::task<std::optional<std::string>> get(std::string key) {
    co_await misbehave();
    std::lock_guard lock{mutex_};  // never held across a co_await: the task may change threads
    const auto it = data_.find(key);
    if (it == data_.end()) co_return std::nullopt;
    co_return it->second;
  }

  // Stores `value`; returns the previous one.
  weft::task<std::optional<std::string>> put(std::string key, std::string value) {
    co_await misbehave();
    std::lock_guard lock{mutex_};
    std::optional<std::string> previous;
    if (const auto it = data_.find(key); it != data_.end()) previous = it->second;
    data_[key] = std::move(value);
    co_return previous;
  }

  // What the test looks at directly, past the faults.
  std::optional<std::string> peek(const std::string& key) const {
    std::lock_guard lock{mutex_};
    const auto it = data_.find(key);
    if (it == data_.end()) return std::nullopt;
    return it->second;
  }

  int calls() const noexcept { return calls_.load(); }
  int failures() const noexcept { return failures_.load(); }
  int hangs() const noexcept { return hangs_.load(); }

 private:
  weft::task<void> misbehave() {
    const int n = ++calls_;
    if (n % 7 == 0) {
      ++hangs_;
      co_await weft::sleep_for(2s);
    } else {
      co_await weft::sleep_for(1ms);
    }
    if (n % 5 == 0) {
      ++failures_;
      throw std::runtime_error("backing store: I/O error on call " + std::to_string(n));
    }
  }

  mutable std::mutex mutex_;
  std::map<std::string, std::string> data_;
  std::atomic<int> calls_{0};
  std::atomic<int> failures_{0};
  std::atomic<int> hangs_{0};
};

wr::retry_options store_retry() {
  wr::retry_options o;
  o.max_attempts = 5;
  o.backoff = wr::backoff::fixed(5ms);
  return o;
}

wr::circuit_breaker_options store_breaker() {
  wr::circuit_breaker_options o;
  o.window = wr::window::count(20);
  o.minimum_calls = 10;
  o.failure_rate_threshold = 0.5;
  o.open_duration = 1s;
  return o;
}

// The store as the protocol handler sees it: every call goes through retry | time_limiter |
// breaker. The pipeline is a member of type any_pipeline<R>, which names only the result type,
// so adding a layer does not change the class.
class kv_store {
 public:
  // The retry is outermost, so each attempt gets its own 50 ms and asks the breaker. A hung
  // attempt is cancelled by the time limiter; the breaker ignores a cancellation (it says
  // nothing about the store) and the retry retries the timeout.
  kv_store()
      : retry_{store_retry()},
        breaker_{store_breaker()},
        pipe_{retry_, wr::time_limiter{50ms}, breaker_} {}
  // pipe_ refers to retry_ and breaker_: a copy or a move would leave it pointing at the old ones.
  kv_store(const kv_store&) = delete;
  kv_store& operator=(const kv_store&) = delete;

  weft::task<std::optional<std::string>> get(std::string key) {
    return pipe_.execute([this, key = std::move(key)] { return backing_.get(key); });
  }
  weft::task<std::optional<std::string>> put(std::string key, std::string value) {
    return pipe_.execute([this, key = std::move(key), value = std::move(value)] {
      return backing_.put(key, value);
    });
  }

  const backing_store& backing() const noexcept { return backing_; }
  wr::retry_metrics retries() const noexcept { return retry_.metrics(); }
  wr::breaker_state breaker_state() const { return breaker_.state(); }

 private:
  backing_store backing_;
  wr::retry retry_;              // held by reference in pipe_: declared before it
  wr::circuit_breaker breaker_;  // likewise; one breaker per dependency
  wr::any_pipeline<std::optional<std::string>> pipe_;
};

// "SET k some value" -> {"SET", "k", "some value"}. The value keeps its spaces.
struct command {
  std::string_view verb;
  std::string_view key;
  std::string_view value;
  bool has_value = false;
};

command parse(std::string_view line) {
  command c;
  const auto verb_end = line.find(' ');
  c.verb = line.substr(0, verb_end);
  if (verb_end == std::string_view::npos) return c;
  line.remove_prefix(verb_end + 1);
  const auto key_end = line.find(' ');
  c.key = line.substr(0, key_end);
  if (key_end != std::string_view::npos) {
    c.value = line.substr(key_end + 1);
    c.has_value = true;
  }
  return c;
}

// One server replica: its listener, its store, and a switch the test uses to stall it.
class replica {
 public:
  explicit replica(std::string name)
      : name_(std::move(name)),
        listener_(net::tcp_listener::bind(net::socket_address::parse("127.0.0.1:0"))) {}
  replica(const replica&) = delete;
  replica& operator=(const replica&) = delete;

  // Serves until `stop` is cancelled, then gives live connections a grace period to finish.
  weft::task<void> serve(weft::cancel_token stop) {
    net::server_options options;
    options.grace = 1s;
    auto handler = [this](net::tcp_accepted c) { return handle(std::move(c)); };
    co_await net::serve(listener_, handler, stop, options, &stats_);
  }

  // The test's stand-in for a stalled replica (a GC pause, a disk that hangs): the next request
  // this replica reads waits, after it was read and before it runs, until release_held().
  void hold_next_request() {
    released_.reset();
    hold_next_ = true;
  }
  void release_held() {
    hold_next_ = false;
    released_.set();
  }
  int held_total() const noexcept { return held_total_.load(); }

  const std::string& name() const noexcept { return name_; }
  net::socket_address address() const noexcept { return listener_.local_address(); }
  const net::server_stats& stats() const noexcept { return stats_; }
  const kv_store& store() const noexcept { return store_; }

 private:
  weft::task<void> handle(net::tcp_accepted c) {
    try {
      co_await converse(c.stream);
    } catch (const std::system_error& e) {
      if (!peer_went_away(e.code())) throw;  // anything else is reported by serve()
    }
  }

  weft::task<void> converse(net::tcp_stream& stream) {
    net::buffered_reader in{stream};  // both refer to the stream, which outlives them
    net::buffered_writer out{stream};
    for (;;) {
      std::optional<std::string_view> line;  // a view into `in`, valid until its next read
      bool too_long = false;
      try {
        line = co_await weft::timeout(idle_timeout, in.read_line(max_line));
      } catch (const net::frame_too_long&) {
        too_long = true;  // answered below: no co_await inside a handler
      } catch (const weft::timed_out&) {
        co_return;  // idle: close; a client reconnects when it needs us again
      }
      if (too_long) {
        co_await out.write_line("ERR line too long");
        co_await out.flush();
        // Read to the end of that line before closing (bounded by the idle timeout): closing a
        // socket with unread input sends a reset, which can destroy the error reply in flight.
        auto rest = weft::timeout(idle_timeout, in.skip_until('\n'));
        try {
          (void)co_await std::move(rest);
        } catch (const weft::timed_out&) {
        }
        co_return;
      }
      if (!line) co_return;  // the client closed its side
      if (hold_next_.exchange(false)) {
        ++held_total_;
        co_await released_.wait();  // cancellable: the end of the grace period ends it too
      }
      const std::string reply = co_await execute(*line);  // nothing reads `in` meanwhile
      co_await out.write_line(reply);
      // Pipelined requests already buffered are answered first, then all replies go in one send.
      if (in.buffered().empty()) co_await out.flush();
    }
  }

  weft::task<std::string> execute(std::string_view line) {
    const command cmd = parse(line);
    const bool is_get = cmd.verb == "GET" && !cmd.key.empty() && !cmd.has_value;
    const bool is_set = cmd.verb == "SET" && !cmd.key.empty() && cmd.has_value;
    if (cmd.verb == "GET" && !is_get) co_return "ERR usage: GET key";
    if (cmd.verb == "SET" && !is_set) co_return "ERR usage: SET key value";
    if (!is_get && !is_set) co_return "ERR unknown command";
    std::optional<std::string> value;
    std::string failure;
    try {
      if (is_get) {
        value = co_await store_.get(std::string(cmd.key));
      } else {
        (void)co_await store_.put(std::string(cmd.key), std::string(cmd.value));
      }
    } catch (const weft::operation_cancelled&) {
      throw;  // the server is stopping this connection: no reply
    } catch (const std::exception& e) {
      failure = e.what();  // the retries ran out, or the breaker is open
    }
    if (!failure.empty()) co_return "ERR unavailable: " + failure;
    if (is_set) co_return "OK";
    if (!value) co_return "NOT_FOUND";
    co_return "VALUE " + *value;
  }

  std::string name_;
  net::tcp_listener listener_;
  kv_store store_;
  net::server_stats stats_;
  std::atomic<bool> hold_next_{false};
  std::atomic<int> held_total_{0};
  weft::event released_{true};
};

// ---------------------------------------------------------------------------------------------
// The client side.

// One persistent connection to one replica, for one request at a time. After a request that was
// cancelled or failed half way, the connection's state is unknown (the reply may still be on its
// way, and would be read as the answer to the next request), so it is closed, and the next
// request opens a new one (docs/net.md, "A cancelled request on a persistent connection").
class replica_connection {
 public:
  explicit replica_connection(net::socket_address address) : address_(address) {}

  // Sends `line`, returns the reply line.
  weft::task<std::string> request(std::string line) {
    for (;;) {
      const bool reused = session_ != nullptr;
      if (!reused) {
        auto stream = co_await net::tcp_stream::connect(address_);
        stream.set_nodelay(true);
        session_ = std::make_unique<session>(std::move(stream));
        ++connects_;
      }
      std::optional<std::string> reply;
      try {
        co_await session_->out.write_line(line);
        co_await session_->out.flush();
        if (const auto got = co_await session_->in.read_line(max_line)) reply.emplace(*got);
      } catch (const std::system_error& e) {
        session_.reset();
        if (!reused || !peer_went_away(e.code())) throw;
      } catch (...) {
        session_.reset();  // cancelled or failed mid-exchange: never reuse this connection
        throw;
      }
      if (reply) co_return std::move(*reply);
      // The server closed the connection before answering. On a reused connection that is
      // usually its idle timeout, which came before our request: send it again, once, on a new
      // connection. Safe only because every request of this protocol is idempotent.
      session_.reset();
      if (!reused) throw std::runtime_error(address_.to_string() + " closed the connection");
    }
  }

  weft::task<void> set(std::string key, std::string value) {
    const std::string reply = co_await request("SET " + key + " " + value);
    if (reply != "OK") throw std::runtime_error(address_.to_string() + ": " + reply);
  }

  bool connected() const noexcept { return session_ != nullptr; }
  int connects() const noexcept { return connects_; }
  void close() noexcept { session_.reset(); }

 private:
  // Heap-allocated so that the stream never moves: the reader and writer refer to it.
  struct session {
    explicit session(net::tcp_stream s) : stream(std::move(s)), in(stream), out(stream) {}
    net::tcp_stream stream;
    net::buffered_reader in;
    net::buffered_writer out;
  };

  net::socket_address address_;
  std::unique_ptr<session> session_;
  int connects_ = 0;
};

// A client of all the replicas: writes go to every one, reads to whichever answers first.
class replicated_client {
 public:
  explicit replicated_client(const std::vector<net::socket_address>& replicas) {
    for (const auto& address : replicas) {
      replicas_.push_back(std::make_unique<replica_connection>(address));
    }
  }

  // Durable once a majority acknowledged; the straggler's write is cancelled. Returns which
  // replicas acknowledged.
  weft::task<std::vector<std::size_t>> set_majority(std::string key, std::string value) {
    std::vector<weft::task<void>> writes;
    for (auto& r : replicas_) writes.push_back(r->set(key, value));
    const auto acks = co_await weft::majority(std::move(writes));
    co_return indices(acks);
  }

  // Durable once a majority acknowledged, and replicated to all: the straggler's write goes on
  // in `replication`, which the caller joins. Until then the straggler still owns its replica's
  // connection, so no other request may use that replica.
  weft::task<std::vector<std::size_t>> set_replicated(std::string key, std::string value,
                                                      weft::task_group& replication) {
    std::vector<weft::task<void>> writes;
    for (std::size_t i = 0; i < replicas_.size(); ++i) writes.push_back(replicate(i, key, value));
    const auto acks = co_await weft::majority(std::move(writes), replication);
    co_return indices(acks);
  }

  // The first replica to answer wins; the others are cancelled (and so lose their connections).
  weft::task<std::optional<std::string>> get(std::string key) {
    std::vector<weft::task<std::string>> reads;
    for (auto& r : replicas_) reads.push_back(r->request("GET " + key));
    auto first = co_await weft::when_any(std::move(reads));
    last_reader_ = first.index;
    const std::string reply = std::move(first.result).value();  // rethrows the winner's failure
    if (reply == "NOT_FOUND") co_return std::nullopt;
    if (!reply.starts_with("VALUE ")) throw std::runtime_error("GET " + key + ": " + reply);
    co_return reply.substr(6);
  }

  replica_connection& replica(std::size_t i) { return *replicas_[i]; }
  std::size_t last_reader() const noexcept { return last_reader_; }
  int failed_replications() const noexcept { return failed_replications_.load(); }
  void close() noexcept {
    for (auto& r : replicas_) r->close();
  }

 private:
  // A straggler's failure fails nothing (the quorum has answered), so it records its own.
  weft::task<void> replicate(std::size_t i, std::string key, std::string value) {
    try {
      co_await replicas_[i]->set(std::move(key), std::move(value));
    } catch (const weft::operation_cancelled&) {
      throw;
    } catch (...) {
      ++failed_replications_;
      throw;  // still a vote against, when the quorum is undecided
    }
  }

  static std::vector<std::size_t> indices(const std::vector<weft::quorum_vote<void>>& acks) {
    std::vector<std::size_t> who;
    for (const auto& a : acks) who.push_back(a.index);
    std::sort(who.begin(), who.end());
    return who;
  }

  std::vector<std::unique_ptr<replica_connection>> replicas_;
  std::size_t last_reader_ = 0;
  std::atomic<int> failed_replications_{0};
};

// ---------------------------------------------------------------------------------------------
// The test.

// Polls `done` every 2 ms for up to a second: for what the test can only observe from outside.
// Takes the predicate by reference: a lambda temporary in a co_await expression is what g++ 12
// destroys twice.
template <class F>
weft::task<bool> eventually(F& done) {
  const auto deadline = weft::clock::now() + 1s;
  while (!done()) {
    if (weft::clock::now() >= deadline) co_return false;
    co_await weft::sleep_for(2ms);
  }
  co_return true;
}

// Waits until replica `r` has held a request since its count was `before`, and releases it. A
// request the replica had not read yet when it was released would otherwise take a later hold.
weft::task<void> release_after_held(replica& r, int before, const char* what) {
  auto held = [&r, before] { return r.held_total() > before; };
  check(co_await eventually(held), what);
  r.release_held();
}

// A reply read on a raw connection, bounded so that a bug fails the test instead of hanging it.
weft::task<std::optional<std::string>> read_reply(net::buffered_reader& in) {
  const auto line = co_await weft::timeout(2s, in.read_line(max_line));
  if (!line) co_return std::nullopt;
  co_return std::string(*line);
}

weft::task<void> nothing() {
  co_return;
}

bool acked_by_a_and_b(const std::vector<std::size_t>& acks) {
  return acks.size() == 2 && acks[0] == 0 && acks[1] == 1;
}

bool has(const replica& r, const std::string& key, const std::string& value) {
  return r.store().backing().peek(key) == value;
}

weft::task<void> run(weft::runtime& rt) {
  // Misuse the runtime refuses instead of deadlocking: block_on on one of its own workers.
  bool refused = false;
  try {
    rt.block_on(nothing());
  } catch (const std::logic_error&) {
    refused = true;
  }
  check(refused, "block_on inside a task throws std::logic_error");

  // SIGINT or SIGTERM cancels stop.token(); every replica's serve() watches it.
  weft::signal_stop stop;

  std::vector<std::unique_ptr<replica>> replicas;
  std::vector<net::socket_address> addresses;
  const char* const names[] = {"a", "b", "c"};
  for (const char* name : names) {
    replicas.push_back(std::make_unique<replica>(name));
    addresses.push_back(replicas.back()->address());
  }
  replica& a = *replicas[0];
  replica& c = *replicas[2];
  weft::task_group servers;
  for (auto& r : replicas) servers.spawn(r->serve(stop.token()));

  std::printf("framing and the idle timeout\n");
  {
    auto conn = co_await net::tcp_stream::connect(a.address());
    net::buffered_reader in{conn};
    const auto start = weft::clock::now();
    const auto line = co_await read_reply(in);  // we send nothing
    check(!line && weft::clock::now() - start >= idle_timeout / 2,
          "a silent connection is closed after the idle timeout");
  }
  {
    auto conn = co_await net::tcp_stream::connect(a.address());
    net::buffered_reader in{conn};
    net::buffered_writer out{conn};
    const std::string huge(max_line + 1000, 'x');
    co_await out.write_line(huge);
    co_await out.flush();
    const auto reply = co_await read_reply(in);
    check(reply == "ERR line too long", "an over-long line gets an error reply");
    check(!co_await read_reply(in), "... and the connection is closed");
  }
  replicated_client client{addresses};
  {
    auto& to_a = client.replica(0);
    check(co_await to_a.request("SET greeting hello world") == "OK", "SET answers OK");
    check(co_await to_a.request("GET greeting") == "VALUE hello world", "GET answers the value");
    check(co_await to_a.request("GET nobody") == "NOT_FOUND", "GET of a missing key: NOT_FOUND");
    check(co_await to_a.request("DEL greeting") == "ERR unknown command", "unknown commands: ERR");
    check(co_await to_a.request("GET") == "ERR usage: GET key", "malformed commands: ERR");
  }

  std::printf("writes: both quorum idioms\n");
  {
    // (a) Durable on 2 of 3, the straggler cancelled. Replica c stalls, so it is the straggler.
    const int held_before = c.held_total();
    c.hold_next_request();
    const auto acks = co_await client.set_majority("color", "blue");
    check(acked_by_a_and_b(acks), "(a) majority: a and b acknowledged");
    check(!has(c, "color", "blue"), "(a) c does not have the write when the call returns");
    check(!client.replica(2).connected(),
          "(a) the cancelled write cost its connection (its reply could still come)");
    // The client cannot know whether c applies the write it may have received: a cancelled
    // request is not a rolled-back one.
    co_await release_after_held(c, held_before, "c received the request it holds");
  }
  {
    // (b) Durable on 2 of 3, and the third write finishes in a group the caller owns.
    weft::task_group replication;
    const int held_before = c.held_total();
    c.hold_next_request();
    const auto acks = co_await client.set_replicated("shape", "square", replication);
    check(acked_by_a_and_b(acks), "(b) majority with a group: a and b first");
    check(!has(c, "shape", "square"), "(b) c does not have the write when the call returns");
    co_await release_after_held(c, held_before, "c received the request it holds");
    co_await replication.join();  // "replicated to all"
    check(has(*replicas[0], "shape", "square") && has(*replicas[1], "shape", "square") &&
              has(c, "shape", "square"),
          "(b) after join() all three replicas have the write");
    (void)co_await client.set_replicated("size", "large", replication);
    co_await replication.join();
    check(client.failed_replications() == 0 && has(c, "size", "large"),
          "(b) no replication failed");
  }

  std::printf("reads: the first replica to answer\n");
  {
    const int held_before = c.held_total();
    c.hold_next_request();
    const auto shape = co_await client.get("shape");
    check(shape == "square" && client.last_reader() != 2, "when_any: a stalled replica loses");
    co_await release_after_held(c, held_before, "c received the request it holds");
  }

  std::printf("a cancelled request on a persistent connection\n");
  {
    // The wrong way, on a raw connection: reuse it after a request that timed out.
    auto conn = co_await net::tcp_stream::connect(c.address());
    net::buffered_reader in{conn};
    net::buffered_writer out{conn};
    const int held_before = c.held_total();
    c.hold_next_request();
    co_await out.write_line("GET size");
    co_await out.flush();
    bool timed_out = false;
    auto first = weft::timeout(50ms, in.read_line(max_line));
    try {
      (void)co_await std::move(first);
    } catch (const weft::timed_out&) {
      timed_out = true;
    }
    check(timed_out, "GET size on a stalled replica times out");
    co_await release_after_held(c, held_before, "c received the request it holds");
    co_await out.write_line("GET shape");
    co_await out.flush();
    const auto reply = co_await read_reply(in);
    check(reply == "VALUE large",
          "reusing that connection: GET shape reads the late reply to GET size (wrong!)");
  }
  {
    // The right way: replica_connection drops a connection whose request did not finish.
    auto& to_c = client.replica(2);
    const int held_before = c.held_total();
    c.hold_next_request();
    bool timed_out = false;
    auto first = weft::timeout(50ms, to_c.request("GET size"));
    try {
      (void)co_await std::move(first);
    } catch (const weft::timed_out&) {
      timed_out = true;
    }
    check(timed_out && !to_c.connected(), "the timed-out request's connection is dropped");
    // Released now, the late reply is sent at once: to the connection that was dropped.
    co_await release_after_held(c, held_before, "c received the request it holds");
    const int connects = to_c.connects();
    check(co_await to_c.request("GET shape") == "VALUE square",
          "the next request, on a new connection, gets its own reply");
    check(to_c.connects() == connects + 1, "... which cost one reconnect");
  }

  std::printf("misuse that is refused\n");
  {
    bool refused_newline = false;
    try {
      co_await client.replica(0).set("note", "two\nlines");
    } catch (const std::invalid_argument&) {
      refused_newline = true;  // buffered_writer::write_line: a "\n" would inject a command
    }
    check(refused_newline, "a value with a newline is refused before anything is sent");
  }

  std::printf("graceful shutdown on SIGTERM\n");
  {
    // A request in flight when the signal comes: the grace period lets it finish.
    const int held = a.held_total();
    a.hold_next_request();
    auto in_flight = weft::spawn(client.replica(0).request("GET greeting"));
    auto arrived = [&] { return a.held_total() == held + 1; };
    check(co_await eventually(arrived), "a request is in flight on replica a");
    check(::kill(::getpid(), SIGTERM) == 0, "SIGTERM sent to the process");
    const weft::cancel_token token = stop.token();
    auto stopping = [&] { return token.is_cancellation_requested(); };
    check(co_await eventually(stopping) && stop.signal() == SIGTERM, "signal_stop saw SIGTERM");
    a.release_held();
    check(co_await in_flight == "VALUE hello world", "the request in flight is still answered");
    client.close();  // the replicas' handlers see the end of their streams and return
    const auto start = weft::clock::now();
    auto drain = weft::timeout(5s, servers.join());
    co_await std::move(drain);
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(weft::clock::now() - start);
    bool drained = took < 1s;  // within the grace period: nothing was cut short
    for (auto& r : replicas) {
      drained =
          drained && r->stats().active == 0 && r->stats().cancelled == 0 && r->stats().failed == 0;
    }
    check(drained, "every replica drained its connections and serve() returned");
    std::printf("  serve() returned %lld ms after the last client left\n",
                static_cast<long long>(took.count()));
  }

  std::printf("summary\n");
  for (auto& r : replicas) {
    const auto& s = r->store();
    const auto retries = s.retries();
    std::printf(
        "  replica %s: %llu connections; store calls %d (%d failed, %d hung); "
        "calls that needed a retry %llu; breaker %.*s\n",
        r->name().c_str(), static_cast<unsigned long long>(r->stats().accepted.load()),
        s.backing().calls(), s.backing().failures(), s.backing().hangs(),
        static_cast<unsigned long long>(retries.successful_with_retry),
        static_cast<int>(wr::to_string(s.breaker_state()).size()),
        wr::to_string(s.breaker_state()).data());
  }
  std::printf("  client connections opened: a %d, b %d, c %d\n", client.replica(0).connects(),
              client.replica(1).connects(), client.replica(2).connects());
}

}  // namespace

int main() {
  // A signal_stop belongs to a runtime: made off a worker, it is refused at once.
  bool refused = false;
  try {
    weft::signal_stop stop;
  } catch (const std::logic_error&) {
    refused = true;
  }
  check(refused, "signal_stop outside a runtime throws std::logic_error");

  weft::runtime_options options;
  options.workers = 2;
  weft::runtime rt{options};
  const auto start = std::chrono::steady_clock::now();
  try {
    rt.block_on(run(rt));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAILED: %s\n", e.what());
    return 1;
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  std::printf("passed in %lld ms\n", static_cast<long long>(took.count()));
  return 0;
}
