#!/usr/bin/env bash
# A bounded fuzz run for CI: TARGET runs for SECONDS from the seed corpus in CORPUS (copied, so
# that the repository's corpus only changes by hand) and fails on a crash, a leak or a broken
# invariant (an abort). Long runs are a tool: fuzz/README.md.
set -uo pipefail
target=$1 corpus=$2 seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$corpus"/. "$work"/
"$target" -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work" >"$work/log" 2>&1
rc=$?
grep -E "stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs" "$work/log"
if [ $rc -ne 0 ]; then
  echo "fuzz smoke: $(basename "$target") failed (exit $rc):" >&2
  grep -A40 -E "ERROR|==[0-9]+==" "$work/log" | head -60 >&2
  for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-*; do
    [ -f "$f" ] && { echo "input ($f):" >&2; od -c "$f" | head -20 >&2; }
  done
fi
exit $rc
