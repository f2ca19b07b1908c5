// echo-load's churn mode: C loops, each repeating connect -> send S bytes -> read the echo ->
// close, timing whole cycles. It loads a server's accept, socket set-up and teardown paths.
//
// Each loop is a slot whose socket is registered edge-triggered for both directions once, just
// after connect() (registered earlier, an unconnected TCP socket would report EPOLLHUP), so a
// cycle costs no epoll_ctl beyond that ADD: the first EPOLLOUT edge says the connection is up,
// the EPOLLIN edges bring the echo, and close() removes the socket from the set. Every cycle
// sends a fresh stream of byte_pattern, so an echo from an earlier cycle cannot pass the check.
// After the measured interval no cycle starts, and those in flight finish (drain_timeout_ns at
// most), so no socket is closed with an echo unread.
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

// One churn loop. Invariant: fd is open exactly when stage is not idle; received <= sent.
struct churn_slot {
  enum class stage { idle, connecting, exchanging };
  stage at = stage::idle;
  unique_fd fd;
  // Bumped per cycle and carried in the epoll data, so an event already fetched for a socket
  // that has since been closed cannot be mistaken for one of the slot's next socket.
  std::uint32_t generation = 0;
  std::uint64_t phase = 0;
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t start_ns = 0;
};

class churn_load {
 public:
  churn_load(const options& o, std::ostream& log)
      : o_(o), errors_(log), recv_buffer_(std::min(o.size, byte_pattern::max_span)) {}

  run_result run() {
    endpoint_ = resolve_endpoint(o_);
    // One connection first, so a server that is not there fails the run at once and clearly
    // instead of as C loops of errors.
    connect_with_timeout(endpoint_, connect_timeout_ms);
    epoll_ = unique_fd(::epoll_create1(EPOLL_CLOEXEC));
    if (epoll_.get() < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    slots_.resize(o_.concurrency);
    errors_.stream() << "echo-load: churn against " << endpoint_.name << ": " << o_.concurrency
                     << " loops, " << o_.size << " B per cycle; warm-up " << o_.warmup_s
                     << " s, measuring " << o_.duration_s << " s\n";

    run_phases phases(o_, now_ns());
    std::vector<epoll_event> events(256);
    std::uint64_t drain_deadline = 0;
    while (true) {
      const std::uint64_t now = now_ns();
      int wait_ms = 0;
      if (!draining_) {
        phases.advance(now);
        if (phases.is_done()) {
          // Start no more cycles; let those in flight finish, so no socket closes undrained.
          draining_ = true;
          drain_deadline = now + drain_timeout_ns;
        }
        measuring_ = phases.is_measuring();
        wait_ms = phases.wait_ms(now);
      }
      if (draining_) {
        const auto busy = static_cast<std::size_t>(
            std::count_if(slots_.begin(), slots_.end(),
                          [](const churn_slot& s) { return s.at != churn_slot::stage::idle; }));
        if (busy == 0) break;
        if (now >= drain_deadline) {
          errors_.report("churn: " + std::to_string(busy) +
                         " cycle(s) still unfinished 2 s after the run");
          break;
        }
        wait_ms = ms_until(drain_deadline, now);
      } else {
        // Slots go idle after an error (or a full AF_UNIX backlog); restarting them at most once
        // per wait keeps a refusing server from turning the loop into a spin.
        bool any_idle = false;
        for (std::size_t i = 0; i < slots_.size(); ++i) {
          if (slots_[i].at == churn_slot::stage::idle) start_cycle(i);
          any_idle = any_idle || slots_[i].at == churn_slot::stage::idle;
        }
        if (any_idle) wait_ms = std::min(wait_ms, 1);
      }
      const int n =
          ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), wait_ms);
      if (n < 0 && errno != EINTR) {
        throw std::system_error(errno, std::generic_category(), "epoll_wait");
      }
      for (int k = 0; k < n; ++k) {
        const std::uint64_t data = events[k].data.u64;
        auto& s = slots_[data & 0xffff'ffff];
        if (s.at == churn_slot::stage::idle || s.generation != (data >> 32)) continue;
        on_event(static_cast<std::size_t>(data & 0xffff'ffff), events[k].events);
      }
    }
    slots_.clear();  // closes the cycles in flight
    phases.fill(result_);
    if (result_.ops == 0 && errors_.count() == 0) {
      errors_.report("churn: no cycle completed in the measured " +
                     std::to_string(result_.seconds) + " s; is the server echoing?");
    }
    result_.errors = errors_.count();
    return std::move(result_);
  }

 private:
  static constexpr int connect_timeout_ms = 5000;

  void fail(churn_slot& s, const std::string& why) {
    errors_.report("churn: " + why);
    s.fd.reset();
    s.at = churn_slot::stage::idle;
  }

  void start_cycle(std::size_t index) {
    auto& s = slots_[index];
    s.start_ns = now_ns();
    s.phase = byte_pattern::phase_of(next_cycle_++);
    s.sent = 0;
    s.received = 0;
    try {
      s.fd = open_socket(endpoint_);
    } catch (const std::system_error& e) {  // EMFILE and the like: worth a line, not an abort
      return fail(s, e.what());
    }
    const int rc = start_connect(s.fd.get(), endpoint_);
    if (rc == EAGAIN && !endpoint_.is_tcp) {  // AF_UNIX backlog full: back-pressure, not failure
      s.fd.reset();
      s.at = churn_slot::stage::idle;
      return;
    }
    if (rc != 0 && rc != EINPROGRESS) {
      return fail(s, "connect " + endpoint_.name + ": " + std::strerror(rc));
    }
    ++s.generation;
    epoll_event ev{.events = EPOLLIN | EPOLLOUT | EPOLLET,
                   .data = {.u64 = index | (std::uint64_t{s.generation} << 32)}};
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, s.fd.get(), &ev) != 0) {
      return fail(s, std::string("epoll_ctl ADD: ") + std::strerror(errno));
    }
    s.at = churn_slot::stage::connecting;
  }

  void on_event(std::size_t index, std::uint32_t events) {
    auto& s = slots_[index];
    if (s.at == churn_slot::stage::connecting) {
      if (events & (EPOLLERR | EPOLLHUP)) {
        const int error = connect_result(s.fd.get());
        return fail(
            s, "connect " + endpoint_.name + ": " + std::strerror(error != 0 ? error : ECONNRESET));
      }
      if (!(events & EPOLLOUT)) return;
      s.at = churn_slot::stage::exchanging;
    }
    if ((events & EPOLLOUT) && s.sent < o_.size && !send_rest(s)) return;
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !receive(s)) return;
    if (s.received == o_.size) {
      const std::uint64_t t = now_ns();
      s.fd.reset();
      s.at = churn_slot::stage::idle;
      if (measuring_) {
        result_.latency.record(t - s.start_ns);
        ++result_.ops;
      }
      if (!draining_) start_cycle(index);
    }
  }

  // Edge-triggered: sends until all S bytes are out or the kernel refuses (the next EPOLLOUT
  // edge resumes). Returns false when the slot failed.
  bool send_rest(churn_slot& s) {
    while (s.sent < o_.size) {
      const std::size_t want = std::min<std::size_t>(o_.size - s.sent, byte_pattern::max_span);
      const ssize_t n = ::send(s.fd.get(), pattern_.at(s.phase, s.sent), want, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        fail(s, std::string("send: ") + std::strerror(errno));
        return false;
      }
      s.sent += static_cast<std::uint64_t>(n);
    }
    return true;
  }

  // Edge-triggered: reads until the whole echo is in or nothing is left. Returns false when the
  // slot failed.
  bool receive(churn_slot& s) {
    while (s.received < o_.size) {
      const ssize_t n = ::recv(s.fd.get(), recv_buffer_.data(), recv_buffer_.size(), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        fail(s, std::string("recv: ") + std::strerror(errno));
        return false;
      }
      if (n == 0) {
        fail(s, "the server closed the connection after echoing " + std::to_string(s.received) +
                    " of " + std::to_string(o_.size) + " bytes");
        return false;
      }
      const auto got = static_cast<std::uint64_t>(n);
      if (s.received + got > s.sent) {
        fail(s, "the server sent " + std::to_string(s.received + got) + " bytes but only " +
                    std::to_string(s.sent) + " were sent to it");
        return false;
      }
      if (const auto bad = pattern_.first_mismatch(recv_buffer_.data(), got, s.phase, s.received)) {
        char what[160];
        std::snprintf(what, sizeof what, "echoed byte %llu is 0x%02x, expected 0x%02x",
                      static_cast<unsigned long long>(s.received + *bad), recv_buffer_[*bad],
                      *pattern_.at(s.phase, s.received + *bad));
        fail(s, what);
        return false;
      }
      s.received += got;
    }
    return true;
  }

  const options& o_;
  error_log errors_;
  byte_pattern pattern_;
  std::vector<unsigned char> recv_buffer_;
  endpoint endpoint_;
  unique_fd epoll_;
  std::vector<churn_slot> slots_;
  std::uint64_t next_cycle_ = 0;
  bool measuring_ = false;
  bool draining_ = false;  // after the measured interval: no new cycles
  run_result result_;
};

}  // namespace detail

/// Runs the churn load described by `o` and returns what the measured interval saw.
///
/// Failed cycles go to `log` and are counted in `errors`; the loop starts a new cycle.
///
/// Errors: throws `std::system_error` naming the endpoint when the first, trial connection
/// cannot be opened ("connect 127.0.0.1:7000: Connection refused").
inline run_result run_churn(const options& o, std::ostream& log) {
  return detail::churn_load(o, log).run();
}

}  // namespace echo_load
