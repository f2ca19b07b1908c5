#!/usr/bin/env bash
# The micro-benchmark table: installs what is missing, builds weft (release) and runs weft-bench
# over the runtime workloads at 1 worker and at every CPU (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
if [ ! -f build/release/build.ninja ]; then
  CXX=g++ meson setup build/release -Dbuildtype=release -Db_ndebug=false >/dev/null
fi
ninja -C build/release tools/weft-bench >/dev/null
exec build/release/tools/weft-bench --workers "1,$(nproc)" --repeat 3 "$@"
