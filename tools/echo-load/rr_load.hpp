// echo-load's rr mode: N connections, each keeping exactly D messages of S bytes outstanding,
// every echoed byte checked, the round trip of each message timed. One thread, one epoll.
//
// Per connection, the sent stream is byte_pattern's stream at the connection's phase; message m
// is stream bytes [m*S, (m+1)*S). Three cursors describe the connection:
//   1. `queued` = (messages completed + D) * S: what may be sent. Completing message m queues
//      message m + D, so exactly D are outstanding at all times (counting those not yet handed
//      to the kernel because its send buffer is full).
//   2. `sent`: bytes the kernel accepted. A message's clock starts just before the send() that
//      accepted its first byte.
//   3. `received`: echoed bytes checked against the stream. A message's clock stops after the
//      recv() that delivered its last byte.
// Level-triggered epoll with EPOLLIN always on; EPOLLOUT is armed only while the kernel refuses
// part of `queued`, so a small-message run makes no epoll_ctl calls after set-up.
// After the measured interval nothing more is queued and the run waits (drain_timeout_ns at
// most) for the echoes in flight, so no socket is closed with data unread.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "byte_pattern.hpp"
#include "endpoint.hpp"
#include "options.hpp"
#include "run_result.hpp"

namespace echo_load {

namespace detail {

// One rr connection. Invariant: received <= sent <= queued.
struct rr_connection {
  unique_fd fd;
  std::uint64_t phase = 0;
  std::uint64_t queued = 0;
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  bool wants_out = false;  // EPOLLOUT is armed
  // Start time of message m at [m % D]: D in flight at most, so no slot is reused too early.
  std::vector<std::uint64_t> start_ns;
};

class rr_load {
 public:
  rr_load(const options& o, std::ostream& log) : o_(o), errors_(log), recv_buffer_(buffer_size) {}

  run_result run() {
    const endpoint e = resolve_endpoint(o_);
    epoll_ = unique_fd(::epoll_create1(EPOLL_CLOEXEC));
    if (epoll_.get() < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    // Every connection is established before the clock starts: set-up is not load.
    connections_.resize(o_.connections);
    for (std::size_t i = 0; i < connections_.size(); ++i) {
      auto& c = connections_[i];
      c.fd = connect_with_timeout(e, connect_timeout_ms);
      c.phase = byte_pattern::phase_of(i);
      c.queued = o_.depth * o_.size;
      c.start_ns.resize(o_.depth);
      epoll_event ev{.events = EPOLLIN, .data = {.u64 = i}};
      if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.fd.get(), &ev) != 0) {
        throw std::system_error(errno, std::generic_category(), "epoll_ctl ADD");
      }
    }
    live_ = connections_.size();
    errors_.stream() << "echo-load: rr: connections to " << e.name << " open: " << o_.connections
                     << "; depth " << o_.depth << ", " << o_.size << " B; warm-up " << o_.warmup_s
                     << " s, measuring " << o_.duration_s << " s\n";

    run_phases phases(o_, now_ns());
    for (auto& c : connections_) send_queued(c);
    std::vector<epoll_event> events(256);
    std::uint64_t drain_deadline = 0;
    while (true) {
      const std::uint64_t now = now_ns();
      int wait_ms = 0;
      if (!draining_) {
        phases.advance(now);
        if (live_ == 0) phases.stop(now);
        if (phases.is_done()) {
          // Queue nothing more; wait for what is in flight, so every socket closes drained.
          draining_ = true;
          drain_deadline = now + drain_timeout_ns;
          for (auto& c : connections_) c.queued = c.sent;
        }
        measuring_ = phases.is_measuring();
        wait_ms = phases.wait_ms(now);
      }
      if (draining_) {
        const std::size_t undrained = count_undrained();
        if (undrained == 0) break;
        if (now >= drain_deadline) {
          errors_.report("rr: " + std::to_string(undrained) +
                         " connection(s) still awaited echoes 2 s after the run");
          break;
        }
        wait_ms = ms_until(drain_deadline, now);
      }
      const int n =
          ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), wait_ms);
      if (n < 0 && errno != EINTR) {
        throw std::system_error(errno, std::generic_category(), "epoll_wait");
      }
      for (int k = 0; k < n; ++k) {
        auto& c = connections_[events[k].data.u64];
        if (c.fd.get() < 0) continue;  // failed earlier: its error is already counted
        if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) receive(c);
        if (c.fd.get() >= 0 && (events[k].events & EPOLLOUT)) send_queued(c);
      }
    }
    connections_.clear();  // closes every socket: the server sees the end of the run
    phases.fill(result_);
    if (result_.ops == 0 && errors_.count() == 0) {
      errors_.report("rr: no message was echoed in the measured " +
                     std::to_string(result_.seconds) + " s; is the server echoing?");
    }
    result_.errors = errors_.count();
    return std::move(result_);
  }

 private:
  static constexpr int connect_timeout_ms = 5000;
  // One recv() takes up to this much; byte_pattern checks it in one memcmp.
  static constexpr std::size_t buffer_size = byte_pattern::max_span;
  // Then level-triggered epoll brings the connection back: one fast stream cannot starve others.
  static constexpr int max_reads_per_event = 4;

  std::size_t count_undrained() const noexcept {
    return static_cast<std::size_t>(std::count_if(
        connections_.begin(), connections_.end(),
        [](const rr_connection& c) { return c.fd.get() >= 0 && c.received < c.sent; }));
  }

  void fail(rr_connection& c, const std::string& why) {
    errors_.report("rr: connection " + std::to_string(&c - connections_.data()) + ": " + why);
    c.fd.reset();  // closing also removes it from the epoll set
    --live_;
  }

  // Hands queued bytes to the kernel until it has all of them or refuses more.
  void send_queued(rr_connection& c) {
    bool blocked = false;
    while (c.sent < c.queued) {
      const std::size_t want = static_cast<std::size_t>(
          std::min<std::uint64_t>(c.queued - c.sent, byte_pattern::max_span));
      const std::uint64_t t = now_ns();
      const ssize_t n = ::send(c.fd.get(), pattern_.at(c.phase, c.sent), want, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          blocked = true;
          break;
        }
        return fail(c, std::string("send: ") + std::strerror(errno));
      }
      // Start the clock of each message whose first byte this send() carried.
      const std::uint64_t end = c.sent + static_cast<std::uint64_t>(n);
      for (std::uint64_t m = (c.sent + o_.size - 1) / o_.size; m * o_.size < end; ++m) {
        c.start_ns[m % o_.depth] = t;
      }
      c.sent = end;
      if (static_cast<std::size_t>(n) < want) {  // a short send: the buffer is full
        blocked = true;
        break;
      }
    }
    if (blocked != c.wants_out) {
      epoll_event ev{.events = EPOLLIN | (blocked ? EPOLLOUT : 0u),
                     .data = {.u64 = static_cast<std::uint64_t>(&c - connections_.data())}};
      if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) != 0) {
        return fail(c, std::string("epoll_ctl MOD: ") + std::strerror(errno));
      }
      c.wants_out = blocked;
    }
  }

  // Reads what has arrived, checks it, times the messages it completes and queues their
  // successors.
  void receive(rr_connection& c) {
    for (int reads = 0; reads < max_reads_per_event; ++reads) {
      const ssize_t n = ::recv(c.fd.get(), recv_buffer_.data(), recv_buffer_.size(), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return fail(c, std::string("recv: ") + std::strerror(errno));
      }
      if (n == 0) {
        return fail(c, "the server closed the connection after echoing " +
                           std::to_string(c.received) + " of " + std::to_string(c.sent) +
                           " bytes sent");
      }
      const std::uint64_t t = now_ns();
      const auto got = static_cast<std::uint64_t>(n);
      if (c.received + got > c.sent) {
        return fail(c, "the server sent " + std::to_string(c.received + got) + " bytes but only " +
                           std::to_string(c.sent) + " were sent to it");
      }
      if (const auto bad = pattern_.first_mismatch(recv_buffer_.data(), got, c.phase, c.received)) {
        char what[160];
        std::snprintf(what, sizeof what, "echoed byte %llu is 0x%02x, expected 0x%02x",
                      static_cast<unsigned long long>(c.received + *bad), recv_buffer_[*bad],
                      *pattern_.at(c.phase, c.received + *bad));
        return fail(c, what);
      }
      const std::uint64_t done_before = c.received / o_.size;
      c.received += got;
      const std::uint64_t done_after = c.received / o_.size;
      if (measuring_) {
        for (std::uint64_t m = done_before; m < done_after; ++m) {
          result_.latency.record(t - c.start_ns[m % o_.depth]);
        }
        result_.ops += done_after - done_before;
      }
      if (!draining_) c.queued = (done_after + o_.depth) * o_.size;
      // A full buffer may mean more is waiting; a short read means the socket is drained, and
      // level-triggered epoll reports whatever arrives next.
      if (static_cast<std::size_t>(n) < recv_buffer_.size()) break;
    }
    if (!c.wants_out) send_queued(c);
  }

  const options& o_;
  error_log errors_;
  byte_pattern pattern_;
  std::vector<unsigned char> recv_buffer_;
  unique_fd epoll_;
  std::vector<rr_connection> connections_;
  std::size_t live_ = 0;
  bool measuring_ = false;
  bool draining_ = false;  // after the measured interval: nothing more is queued
  run_result result_;
};

}  // namespace detail

/// Runs the rr load described by `o` and returns what the measured interval saw.
///
/// Connection failures during set-up throw; failures later (verification, a closed or reset
/// connection) close that connection, go to `log` and are counted in `errors`, and the run goes
/// on with the others.
///
/// Errors: throws `std::system_error` naming the endpoint when a connection cannot be opened
/// ("connect 127.0.0.1:7000: Connection refused").
inline run_result run_rr(const options& o, std::ostream& log) {
  return detail::rr_load(o, log).run();
}

}  // namespace echo_load
