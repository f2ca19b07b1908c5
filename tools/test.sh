#!/usr/bin/env bash
# The test command: installs dependencies, then builds and tests weft three ways, as CI does:
#   release  g++ 12, -O2 with assertions
#   asan     clang 19, AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer)
#   tsan     clang 19, ThreadSanitizer
# Warnings are errors in all three. Usage: tools/test.sh [release|asan|tsan ...]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh

builds=("$@")
[ ${#builds[@]} -eq 0 ] && builds=(release asan tsan)

setup() {  # setup NAME CXX [meson options...]
  local dir=build/$1 cxx=$2
  shift 2
  if [ ! -f "$dir/build.ninja" ]; then
    CXX=$cxx meson setup "$dir" -Dwerror=true "$@" >/dev/null
  fi
}

total_ok=0
total_fail=0
for b in "${builds[@]}"; do
  case $b in
    release) setup release g++ -Dbuildtype=release -Db_ndebug=false ;;
    # The sanitizer builds are most of CI's time, and compiling is most of theirs: they build
    # at -O0 (about three times faster to compile than -O2; the tests then run a little
    # slower, far less than the compile saves) with line tables only (the reports keep file
    # and line; a sixth faster again than full debug information). clang guarantees symmetric
    # transfer's tail call at every level, so -O0 grows no stacks (docs/runtime.md).
    asan) setup asan clang++-19 -Dbuildtype=debug -Db_sanitize=address,undefined \
            -Db_lundef=false "-Dcpp_args=-fno-sanitize-recover=all -gline-tables-only" \
            -Dbenchmarks=false ;;
    tsan) setup tsan clang++-19 -Dbuildtype=debug -Db_sanitize=thread \
            -Db_lundef=false -Dcpp_args=-gline-tables-only -Dbenchmarks=false ;;
    *) echo "tools/test.sh: unknown build '$b' (release, asan, tsan)" >&2; exit 2 ;;
  esac
  echo "== weft: building $b" >&2
  ninja -C "build/$b" >/dev/null
  echo "== weft: testing $b" >&2
  summary=build/$b/test-output.txt
  meson test -C "build/$b" --print-errorlogs --num-processes 2 | tee "$summary" || true
  count() { awk -v k="$1" '$1 == k {v = $2} END {print v + 0}' "$summary"; }
  total_ok=$((total_ok + $(count Ok:)))
  total_fail=$((total_fail + $(count Fail:) + $(count Timeout:)))
  grep -q '^Ok:' "$summary" || total_fail=$((total_fail + 1))  # meson test did not finish
done
echo "weft: ${builds[*]}"
echo "total: $total_ok passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
