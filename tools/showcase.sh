#!/usr/bin/env bash
# The showcase: installs what is missing, builds weft (release) and runs weft-gateway's scenario
# (about a minute): a gateway in front of flaky upstreams under an open-loop load, with a live
# dashboard, self-checks and a report. Arguments go to weft-gateway (`--scenario short`, `--rate
# N`, `--plain`, `--report PATH`; docs/gateway.md). The micro-benchmark table is tools/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
if [ ! -f build/release/build.ninja ]; then
  CXX=g++ meson setup build/release -Dbuildtype=release -Db_ndebug=false >/dev/null
fi
ninja -C build/release tools/weft-gateway/weft-gateway >/dev/null
mkdir -p build/showcase
exec build/release/tools/weft-gateway/weft-gateway --report build/showcase/report.html "$@"
