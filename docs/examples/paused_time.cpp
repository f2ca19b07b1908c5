// The README's paused time: a task sleeps 30 s of the runtime's clock, which jumps to the timer
// because nothing else can run, so the program ends in microseconds of real time. The assert
// inside checks the task's view; main() checks the runtime's clock against the real one after,
// and exits non-zero if 30 s were not skipped. The test suite runs this program.
#include <chrono>
#include <cstdio>

#include <weft/weft.hpp>

// The snippet's assert is one of its checks: keep it in a build with NDEBUG too (<cassert>
// defines assert anew at each inclusion).
#undef NDEBUG
#include <cassert>

int main() {
  const auto real_start = std::chrono::steady_clock::now();

  // [readme:paused_time]
  weft::runtime rt{weft::runtime_options{.time = weft::time_mode::paused}};
  rt.block_on([]() -> weft::task<void> {
    const auto start = weft::clock::now();
    co_await weft::sleep_for(std::chrono::seconds{30});
    assert(weft::clock::now() - start == std::chrono::seconds{30});
  });
  // [/readme:paused_time]

  // weft::clock shares steady_clock's epoch: the runtime's time ran 30 s ahead of the real one,
  // while the real time that passed is a small fraction of a second.
  const auto real_end = std::chrono::steady_clock::now();
  const auto ahead = rt.now().time_since_epoch() - real_end.time_since_epoch();
  const auto real = real_end - real_start;
  std::printf("runtime clock ahead of the real one by %.3f s; real time taken %.3f s\n",
              std::chrono::duration<double>(ahead).count(),
              std::chrono::duration<double>(real).count());
  const bool ok = ahead >= std::chrono::seconds{29} && ahead <= std::chrono::seconds{30} &&
                  real < std::chrono::seconds{5};
  std::printf("%s\n", ok ? "paused_time: ok" : "paused_time: FAILED");
  return ok ? 0 : 1;
}
