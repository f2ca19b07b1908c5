#!/usr/bin/env bash
# How weft scales with workers, beside Tokio: runs the runtime workloads at 1, 2, 4, 8 and 16
# workers (or --workers), weft and, when given, the Tokio peer, in interleaved repetitions, and
# prints a Markdown table of medians plus an SVG chart (docs/benchmarks.md, "Many cores").
#
#   tools/scaling.sh                                  # weft only
#   tools/scaling.sh --tokio /path/to/peer_tokio      # beside Tokio's peer binary
#   tools/scaling.sh --workers 1,2,4 --repeat 5 --out /tmp/scaling
#
# The Tokio peer is the team's peers harness binary (`peer_tokio --workload W --workers N`,
# one JSON line per run); nothing here builds it. Each figure is the median of --repeat runs,
# each a fresh process. Worker counts above the machine's CPUs are run and marked.
set -euo pipefail
cd "$(dirname "$0")/.."

workers="1,2,4,8,16"
repeat=3
tokio=""
out="build/scaling"
workloads="parallel_work spawn_many yield_many chained_spawn fork_join_fib ping_pong"
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --tokio) tokio="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --workloads) workloads="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "scaling: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "scaling: --repeat takes a positive number" >&2; exit 2; }
[[ "$workers" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || {
  echo "scaling: --workers takes a list like 1,2,4" >&2; exit 2; }
if [ -n "$tokio" ] && [ ! -x "$tokio" ]; then
  echo "scaling: --tokio '$tokio' is not an executable" >&2; exit 2
fi
command -v python3 >/dev/null || { echo "scaling: python3 is needed for the table" >&2; exit 2; }

tools/install-deps.sh
if [ ! -f build/release/build.ninja ]; then
  CXX=g++ meson setup build/release -Dbuildtype=release -Db_ndebug=false >/dev/null
fi
ninja -C build/release tools/weft-bench >/dev/null
weft=build/release/tools/weft-bench

mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"
cpus=$(nproc)
IFS=, read -r -a counts <<< "$workers"

run_one() {  # peer workload workers
  local line
  if [ "$1" = weft ]; then
    line=$(timeout 120 "$weft" --workload "$2" --workers "$3" --repeat 1 --json 2>/dev/null |
           grep '^{' | tail -n 1) || true
  else
    line=$(timeout 120 "$tokio" --workload "$2" --workers "$3" 2>/dev/null | grep '^{' |
           tail -n 1) || true
  fi
  if [ -z "$line" ]; then
    echo "scaling: $1 $2 at $3 workers gave no result" >&2
    return
  fi
  echo "$line" >> "$results"
}

peers=(weft)
[ -n "$tokio" ] && peers+=(tokio)
for ((r = 1; r <= repeat; r++)); do
  for w in "${counts[@]}"; do
    for wl in $workloads; do
      for p in "${peers[@]}"; do
        echo "scaling: repetition $r/$repeat, $p $wl, $w workers" >&2
        run_one "$p" "$wl" "$w"
      done
    done
  done
done

python3 - "$results" "$out/scaling.svg" "$cpus" <<'PY'
import json, statistics, sys
from collections import defaultdict

results, svg_path, cpus = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = defaultdict(list)  # (peer, workload, workers) -> ops/s
for line in open(results):
    try:
        r = json.loads(line)
        runs[(r["peer"], r["workload"], int(r["workers"]))].append(float(r["ops_per_sec"]))
    except (ValueError, KeyError):
        continue
if not runs:
    sys.exit("scaling: no results")
med = {k: statistics.median(v) for k, v in runs.items()}
peers = sorted({k[0] for k in med}, key=lambda p: (p != "weft", p))
workloads = sorted({k[1] for k in med}, key=lambda w: (w != "parallel_work", w))
counts = sorted({k[2] for k in med})

def rel(p, wl, w):
    base = med.get((p, wl, counts[0]))
    v = med.get((p, wl, w))
    return None if not base or v is None else v / base

print(f"Medians of ops/s, and in parentheses the rate relative to {counts[0]} worker(s)"
      f" (this machine: {cpus} CPUs; counts above it are marked *).\n")
head = "| workload | peer | " + " | ".join(f"{w}{'*' if w > cpus else ''}" for w in counts) + " |"
print(head)
print("|---|---|" + "---:|" * len(counts))
for wl in workloads:
    for p in peers:
        cells = []
        for w in counts:
            v = med.get((p, wl, w))
            x = rel(p, wl, w)
            cells.append("—" if v is None else f"{v/1e6:.2f} M/s ({x:.2f}×)")
        print(f"| {wl} | {p} | " + " | ".join(cells) + " |")

# One panel per workload: rate relative to the first count, per peer, on a log2 worker axis.
import math
pw, ph, pad = 300, 200, 40
cols = 3
rows = math.ceil(len(workloads) / cols)
W, H = cols * (pw + pad) + pad, rows * (ph + pad + 20) + pad
colors = {"weft": "#1f77b4", "tokio": "#d62728"}
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
       f'font-family="sans-serif" font-size="11">',
       f'<rect width="{W}" height="{H}" fill="white"/>']
lx = [math.log2(w) for w in counts]
xmin, xmax = min(lx), max(lx) if max(lx) > min(lx) else min(lx) + 1
for i, wl in enumerate(workloads):
    ox = pad + (i % cols) * (pw + pad)
    oy = pad + (i // cols) * (ph + pad + 20)
    ys = [rel(p, wl, w) for p in peers for w in counts]
    ys = [y for y in ys if y is not None] + [1.0]
    ymax = max(ys) * 1.1
    def px(w): return ox + (math.log2(w) - xmin) / (xmax - xmin) * pw
    def py(y): return oy + ph - y / ymax * ph
    out.append(f'<text x="{ox}" y="{oy - 8}" font-weight="bold">{wl}: rate vs {counts[0]} worker(s)</text>')
    out.append(f'<rect x="{ox}" y="{oy}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    out.append(f'<line x1="{ox}" y1="{py(1):.1f}" x2="{ox + pw}" y2="{py(1):.1f}" stroke="#ccc" stroke-dasharray="4"/>')
    for w in counts:
        out.append(f'<text x="{px(w):.1f}" y="{oy + ph + 14}" text-anchor="middle">{w}</text>')
    out.append(f'<text x="{ox - 4}" y="{oy + 10}" text-anchor="end">{ymax:.1f}×</text>')
    for j, p in enumerate(peers):
        pts = [(px(w), py(rel(p, wl, w))) for w in counts if rel(p, wl, w) is not None]
        if len(pts) > 1:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline points="{d}" fill="none" stroke="{colors.get(p, "#555")}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colors.get(p, "#555")}"/>')
        out.append(f'<text x="{ox + pw - 60}" y="{oy + 14 + 14 * j}" fill="{colors.get(p, "#555")}">{p}</text>')
out.append("</svg>")
open(svg_path, "w").write("\n".join(out) + "\n")
print(f"\nChart: {svg_path}")
PY
