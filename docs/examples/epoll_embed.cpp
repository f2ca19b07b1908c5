// weft embedded in a server that already has its own epoll loop (docs/embedding.md).
//
// The server below is plain Linux: a listening socket, nonblocking connections and one
// epoll_wait loop, written without weft. Each request line is handed to coroutine code (a
// lookup that calls two slow "backends" concurrently and gives up on one after a deadline)
// through a weft runtime in external-loop mode: the runtime adds one descriptor to the loop's
// epoll set, and the loop calls rt.run_ready() when it is readable or its timeout runs out.
// Replies come back through completion callbacks, which run on the loop's thread, inside
// run_ready, so they may touch the server's state without locks.
//
// Run as a test: a client thread sends a few requests and checks the replies; the program exits
// 0 when every reply was right.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

// --- The coroutine side: what the server hands to weft ---

weft::task<std::string> backend(std::string name, std::string key, std::chrono::milliseconds d) {
  co_await weft::sleep_for(d);  // stands in for a network call
  co_return name + ":" + key;
}

/// Both backends at once; the slow one gets 20 ms before the reply goes without it.
weft::task<std::string> lookup(std::string key) {
  auto [fast, slow] = co_await weft::when_all_settled(
      backend("users", key, 2ms), weft::timeout(20ms, backend("ranking", key, 50ms)));
  std::string reply = fast.has_value() ? fast.value() : "users:?";
  reply += ' ';
  reply += slow.has_value() ? slow.value() : "ranking:timed-out";
  co_return reply;
}

// --- The server: plain epoll, no weft in sight except the runtime's descriptor ---

struct connection {
  std::string in;
  int pending = 0;      // requests handed to weft and not answered yet
  bool closed = false;  // the client closed its side
};

int serve(int listener, int requests_to_serve) {
  // [readme:epoll_embed]
  weft::runtime rt{weft::runtime_options{.external_loop = true}};
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = rt.event_fd();  // readable when weft has work for run_ready()
  epoll_ctl(ep, EPOLL_CTL_ADD, rt.event_fd(), &ev);
  // [/readme:epoll_embed]
  ev.data.fd = listener;
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);

  std::map<int, connection> conns;
  int served = 0;
  int timeout = 0;
  while (served < requests_to_serve || !conns.empty()) {
    epoll_event events[16];
    const int n = epoll_wait(ep, events, 16, timeout);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == rt.event_fd()) continue;  // run_ready below takes care of it
      if (fd == listener) {
        const int c = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) continue;
        ev.data.fd = c;
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
        conns[c];
        continue;
      }
      connection& conn = conns[fd];
      char buf[512];
      const ssize_t got = read(fd, buf, sizeof buf);
      if (got <= 0) {
        conn.closed = true;  // its replies still go out; epoll stops reporting its end
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
      } else {
        conn.in.append(buf, static_cast<std::size_t>(got));
      }
      // Every complete line is a request for the coroutine side.
      for (auto nl = conn.in.find('\n'); nl != std::string::npos; nl = conn.in.find('\n')) {
        std::string key = conn.in.substr(0, nl);
        conn.in.erase(0, nl + 1);
        ++conn.pending;
        // [readme:epoll_embed_request]
        rt.spawn(lookup(key), [fd, &conns, &served](weft::outcome<std::string> r) {
            // On the loop's thread, inside run_ready: the server's state is ours to touch.
            std::string line = r.has_value() ? r.value() : "error";
            line += '\n';
            (void)!write(fd, line.data(), line.size());  // small replies: one write each
            --conns[fd].pending;
            ++served;
          }).detach();
        // [/readme:epoll_embed_request]
      }
    }
    // Connections the client closed go once their last reply went out.
    for (auto it = conns.begin(); it != conns.end();) {
      if (it->second.closed && it->second.pending == 0) {
        close(it->first);
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
    // [readme:epoll_embed_loop]
    // Run what weft has ready; wait no longer than its next timer on the next epoll_wait.
    timeout = rt.run_ready().timeout_ms;
    // [/readme:epoll_embed_loop]
  }
  close(ep);
  return 0;
}

// --- A client, to run the example as a test ---

int check_client(std::uint16_t port, int requests) {
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 1;
  std::string out;
  for (int i = 0; i < requests; ++i) {
    out += 'k';
    out += std::to_string(i);
    out += '\n';
  }
  if (write(s, out.data(), out.size()) != static_cast<ssize_t>(out.size())) return 1;
  std::string in;
  int lines = 0;
  while (lines < requests) {
    char buf[512];
    const ssize_t got = read(s, buf, sizeof buf);
    if (got <= 0) return 1;
    in.append(buf, static_cast<std::size_t>(got));
    lines = 0;
    for (char c : in) lines += c == '\n';
  }
  shutdown(s, SHUT_WR);
  close(s);
  // Replies come in completion order; each says what its request asked for.
  for (int i = 0; i < requests; ++i) {
    std::string want = "users:k";
    want += std::to_string(i);
    want += " ranking:timed-out\n";
    if (in.find(want) == std::string::npos) {
      std::fprintf(stderr, "missing reply '%s' in:\n%s", want.c_str(), in.c_str());
      return 1;
    }
  }
  std::printf("%s", in.c_str());
  return 0;
}

int main() {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 16) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("listen");
    return 1;
  }
  constexpr int requests = 5;
  int client_result = 1;
  std::thread client([&] { client_result = check_client(ntohs(addr.sin_port), requests); });
  const int server_result = serve(listener, requests);
  client.join();
  close(listener);
  return server_result != 0 ? server_result : client_result;
}
