// The report of an awaiter that was destroyed without being co_awaited.
#include <weft/detail/await_check.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>

namespace weft::detail {

namespace {
thread_local int shutdown_destroying = 0;
}  // namespace

shutdown_destroy_scope::shutdown_destroy_scope() noexcept { ++shutdown_destroying; }
shutdown_destroy_scope::~shutdown_destroy_scope() { --shutdown_destroying; }

void report_unawaited(const char* what) noexcept {
  if (std::uncaught_exceptions() > 0 || shutdown_destroying > 0) return;
  std::fprintf(stderr,
               "%s\n  An awaiter does nothing until it is co_awaited: write `co_await` before the "
               "call. (This check is on in builds without NDEBUG; -DWEFT_CHECK_AWAITED=0 turns it "
               "off.)\n",
               what);
  std::fflush(stderr);
  std::abort();
}

}  // namespace weft::detail
