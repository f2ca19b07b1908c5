// resolve(): getaddrinfo on the blocking pool, its EAI_* errors in a category of their own.
#include <weft/net/resolve.hpp>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <system_error>

#include <netdb.h>
#include <sys/socket.h>

#include <weft/spawn_blocking.hpp>

namespace weft::net {

namespace {
class gai_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int value) const override { return ::gai_strerror(value); }
};
const std::error_category& gai() noexcept {
  static const gai_category instance;
  return instance;
}

std::vector<socket_address> lookup(const std::string& host, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;  // one entry per address, not one per socket type
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  const int r = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (r != 0) {
    if (r == EAI_SYSTEM) {
      throw std::system_error(errno, std::system_category(), "weft::net::resolve " + host);
    }
    throw std::system_error(r, gai(), "weft::net::resolve " + host);
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(list, ::freeaddrinfo);
  std::vector<socket_address> out;
  for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    const auto ip = socket_address::from_native(a->ai_addr, a->ai_addrlen).ip();
    const socket_address addr{ip, port};
    if (std::find(out.begin(), out.end(), addr) == out.end()) out.push_back(addr);
  }
  return out;
}
}  // namespace

task<std::vector<socket_address>> resolve(std::string host, std::uint16_t port) {
  if (host.empty()) throw std::invalid_argument("weft::net::resolve: the host name is empty");
  // Numeric addresses need no lookup ("::1" or "[::1]").
  std::string_view bare = host;
  if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']')
    bare = bare.substr(1, bare.size() - 2);
  if (auto ip = ip_address::try_parse(bare)) co_return std::vector<socket_address>{{*ip, port}};
  // Named, not a temporary in the co_await: g++ 12 destroys such a temporary twice (a double
  // free of the captured string).
  auto job = [host, port] { return lookup(host, port); };
  co_return co_await spawn_blocking(std::move(job));
}

}  // namespace weft::net
