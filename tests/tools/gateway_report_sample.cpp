// Writes the sample run's report to the path given, for tests/tools/report_browser_test.sh (which
// loads it in headless Chromium). Exit status 2 without a path, 1 when it cannot be written.
#include <cstdio>
#include <exception>

#include "gateway_report_sample.hpp"
#include "report.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gateway_report_sample REPORT.html\n");
    return 2;
  }
  try {
    weft::gateway::write_report(weft::gateway::testing::sample_run(), argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gateway_report_sample: %s\n", e.what());
    return 1;
  }
  return 0;
}
