#!/usr/bin/env bash
# The soak: runs weft-echo under connection churn and request-response load together for a long
# while and fails if the server keeps memory or descriptors it should have given back.
#
#   tools/soak.sh [options] [DURATION]      DURATION: 30s, 10m, 1h or seconds (default 10m)
#     --build DIR    build holding tools/weft-echo and tools/echo-load (env WEFT_BUILD;
#                    default build/release)
#     --echo PATH    the weft-echo to soak (env WEFT_ECHO; default DIR/tools/weft-echo)
#     --load PATH    the echo-load to drive it (env WEFT_ECHO_LOAD; default DIR/tools/echo-load)
#     --out DIR      where the CSV, the SVG chart and the logs go (env WEFT_SOAK_OUT;
#                    default build/soak)
#     --workers N    weft-echo's workers (env WEFT_SOAK_WORKERS; default 1)
#
# What it does: starts weft-echo on 127.0.0.1 (a port the kernel picks; never another address),
# takes the server's descriptor count as the baseline, then runs two echo-loads against it for
# DURATION, both stopping by themselves: churn (32 loops of connect, one 64-byte exchange, close)
# and request-response (16 long-lived connections). Every second it records the server's VmRSS,
# open descriptors, threads and CPU time in soak.csv; at the end it draws soak.svg and prints a
# summary. Exit status: 0 pass, 1 fail (the last line says why), 2 bad usage, 77 skipped (no
# io_uring here).
#
# The verdict fails when:
#   - weft-echo does not start, dies, does not stop within 10 s of SIGTERM, or exits non-zero;
#   - either echo-load reports an error (a refused, reset or wrong echo is a server bug here: the
#     load is well within the listen backlog and the client's limits) or runs 15 s past the end;
#   - the descriptor count is not back to the baseline within 5 s after the load stopped;
#   - RSS grew more than 5% after warm-up. Warm-up is the first sixth of the run: frame pools,
#     malloc arenas and io_uring buffer rings fill up there and then stay. RSS after warm-up is
#     the median of the samples within 2 s of its end, RSS at the end the median of the last 5
#     samples of the load; medians, so that one sample caught in a burst decides nothing. A leak of
#     300 bytes per connection is 3 MB a second at the 10,000 connections a second this churn
#     makes on two cores, far past 5% of a server of a few MB; a server that holds only what its
#     live connections need stays flat (within 0.1% over 30 s).
#
# soak.csv, one row a second: seconds (since the load started), rss_kib (VmRSS), fds (entries of
# /proc/PID/fd), threads, cpu_s (the server's utime + stime), phase (idle: the baseline before the
# load; load; drain: the clients finishing; after: once the descriptors settled).
set -euo pipefail
shopt -s nullglob
export LC_ALL=C  # EPOCHREALTIME and printf with a '.' decimal point

root=$(cd "$(dirname "$0")/.." && pwd)

usage() { sed -n '5,12p' "$0" | sed 's/^# \{0,1\}//'; }
die_usage() {
  echo "soak: $1" >&2
  usage >&2
  exit 2
}

build=${WEFT_BUILD:-$root/build/release}
echo_bin=${WEFT_ECHO:-}
load_bin=${WEFT_ECHO_LOAD:-}
out=${WEFT_SOAK_OUT:-$root/build/soak}
workers=${WEFT_SOAK_WORKERS:-1}
duration_arg=10m
while [ $# -gt 0 ]; do
  case $1 in
    --build) [ $# -ge 2 ] || die_usage "$1 needs a value"; build=$2; shift 2 ;;
    --echo) [ $# -ge 2 ] || die_usage "$1 needs a value"; echo_bin=$2; shift 2 ;;
    --load) [ $# -ge 2 ] || die_usage "$1 needs a value"; load_bin=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || die_usage "$1 needs a value"; out=$2; shift 2 ;;
    --workers) [ $# -ge 2 ] || die_usage "$1 needs a value"; workers=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) die_usage "unknown option '$1'" ;;
    *) duration_arg=$1; shift ;;
  esac
done
echo_bin=${echo_bin:-$build/tools/weft-echo}
load_bin=${load_bin:-$build/tools/echo-load}

if [[ $duration_arg =~ ^([0-9]+)(s|m|h)?$ ]]; then
  case ${BASH_REMATCH[2]} in
    m) duration=$((10#${BASH_REMATCH[1]} * 60)) ;;
    h) duration=$((10#${BASH_REMATCH[1]} * 3600)) ;;
    *) duration=$((10#${BASH_REMATCH[1]})) ;;
  esac
else
  die_usage "bad duration '$duration_arg' (30s, 10m, 1h or seconds)"
fi
# Below 12 s the warm-up window and the end window would overlap.
if [ "$duration" -lt 12 ] || [ "$duration" -gt 86400 ]; then
  die_usage "duration must be 12 s to 24 h"
fi
[[ $workers =~ ^[1-9][0-9]*$ ]] || die_usage "bad --workers '$workers'"
for bin in "$echo_bin" "$load_bin"; do
  [ -x "$bin" ] || { echo "soak: no executable $bin (build it, or see --build)" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "soak: python3 is needed for the chart" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
csv=$out/soak.csv
svg=$out/soak.svg
rm -f "$csv" "$svg" "$out"/{weft-echo.log,churn.json,churn.log,rr.json,rr.log}

# Children still to stop; each is cleared once reaped, so no recycled pid is ever signalled.
server_pid='' churn_pid='' rr_pid=''
server_rc=0 churn_rc=0 rr_rc=0  # their exit statuses, set by reap
failures=()
fail() { failures+=("$1"); }

alive() {  # alive PID: the process runs (a zombie waiting to be reaped does not)
  local stat
  [ -n "$1" ] || return 1
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

status_of() {  # status_of RC: "status N" or "signal NAME", as wait reported it
  if [ "$1" -gt 128 ]; then echo "signal $(kill -l "$(($1 - 128))" 2>/dev/null || echo $(($1 - 128)))"
  else echo "status $1"; fi
}

reap() {  # reap VAR: waits for the child whose pid VAR holds, sets VAR_rc, clears VAR
  local -n pid_ref=$1
  local rc=0
  wait "$pid_ref" 2>/dev/null || rc=$?
  printf -v "${1%_pid}_rc" %d "$rc"
  pid_ref=''
}

stop() {  # stop VAR: SIGTERM, up to 10 s, then SIGKILL; reaps it. Fails (1) if it needed SIGKILL.
  local -n stop_pid=$1
  local i
  [ -n "$stop_pid" ] || return 0
  kill -TERM "$stop_pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive "$stop_pid" || { reap "$1"; return 0; }
    sleep 0.1
  done
  kill -KILL "$stop_pid" 2>/dev/null || true
  reap "$1"
  return 1
}

server_said() {  # the server's last line other than its address: why it stopped, if it said
  grep -v 'listening on' "$out/weft-echo.log" | tail -1 || true
}

cleanup() {
  stop churn_pid || true
  stop rr_pid || true
  stop server_pid || true
}
trap cleanup EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT
trap 'echo "soak: terminated" >&2; exit 143' TERM

clock_ticks=$(getconf CLK_TCK)
now_us() { now=${EPOCHREALTIME/./}; }  # sets now: microseconds, without a subshell

sample() {  # sample PHASE: appends one CSV row for the server; returns 1 if it is gone
  local key value rest rss=-1 threads=-1 stat fields fds ms cs
  {
    while read -r key value rest; do
      case $key in
        VmRSS:) rss=$value ;;
        Threads:) threads=$value ;;
      esac
    done <"/proc/$server_pid/status"
    read -r stat <"/proc/$server_pid/stat"
  } 2>/dev/null || return 1
  fds=("/proc/$server_pid/fd/"*)
  read -ra fields <<<"${stat##*) }"
  cs=$(((fields[11] + fields[12]) * 100 / clock_ticks))  # utime + stime, in 1/100 s
  now_us
  ms=$(((now - start_us) / 1000))
  [ "$ms" -ge 0 ] || ms=0
  printf '%d.%d,%s,%d,%s,%d.%02d,%s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$rss" ${#fds[@]} \
    "$threads" $((cs / 100)) $((cs % 100)) "$1" >>"$csv"
}

fd_count() { local f=("/proc/$server_pid/fd/"*); echo ${#f[@]}; }

# --- the server: port 0 on loopback, the kernel picks a free port and weft-echo prints it -----
"$echo_bin" --listen 127.0.0.1:0 --workers "$workers" >"$out/weft-echo.log" 2>&1 &
server_pid=$!
port=''
for ((i = 0; i < 100; i++)); do
  # The log may not exist yet: the shell creates it in the child, after the fork.
  line=$(grep -m1 'listening on 127\.0\.0\.1:' "$out/weft-echo.log" 2>/dev/null || true)
  if [ -n "$line" ]; then port=${line##*:}; break; fi
  alive "$server_pid" || break
  sleep 0.1
done
if [ -z "$port" ]; then
  if ! alive "$server_pid"; then
    reap server_pid
    if grep -q 'io_uring is unavailable' "$out/weft-echo.log"; then
      echo "soak: SKIP: $(head -1 "$out/weft-echo.log")"
      exit 77
    fi
  fi
  echo "soak: FAIL: weft-echo did not start listening within 10 s: $(head -1 "$out/weft-echo.log")"
  exit 1
fi

echo "soak: weft-echo (pid $server_pid, $workers worker(s)) on 127.0.0.1:$port; load for" \
  "${duration} s; output in $out"
echo 'seconds,rss_kib,fds,threads,cpu_s,phase' >"$csv"
now_us
start_us=$now
fd_base=$(fd_count)
sample idle

# --- the load: both echo-loads measure from the first second and stop on their own ------------
start_us=$now
"$load_bin" --mode churn --port "$port" --concurrency 32 --size 64 --warmup 0 \
  --duration "$duration" >"$out/churn.json" 2>"$out/churn.log" &
churn_pid=$!
"$load_bin" --mode rr --port "$port" --connections 16 --depth 1 --size 64 --warmup 0 \
  --duration "$duration" >"$out/rr.json" 2>"$out/rr.log" &
rr_pid=$!

server_died=0
for ((tick = 1; ; tick++)); do
  alive "$churn_pid" || alive "$rr_pid" || break
  now_us
  wait_us=$((start_us + tick * 1000000 - now))
  [ "$wait_us" -le 0 ] || sleep "$(printf '%d.%06d' $((wait_us / 1000000)) $((wait_us % 1000000)))"
  if ! alive "$server_pid"; then server_died=1; break; fi
  if [ "$tick" -le "$duration" ]; then sample load || true; else sample drain || true; fi
  # echo-load drains for 2 s at most after its duration; a client still there is stuck.
  if [ "$tick" -ge $((duration + 15)) ]; then
    fail "echo-load still running 15 s after the load's end"
    break
  fi
done

# --- after the load: reap the clients, wait for the server's descriptors to come back ----------
# A dead server is the one failure to report first: the clients' errors follow from it.
if [ "$server_died" -eq 1 ] || ! alive "$server_pid"; then
  server_died=1
  reap server_pid
  said=$(server_said)
  fail "weft-echo died during the load ($(status_of "$server_rc"))${said:+: $said}"
fi
stop churn_pid || true
stop rr_pid || true
check_client() {  # check_client MODE RC: a failure, with the client's first error, unless RC is 0
  local first_error
  [ "$2" -ne 0 ] || return 0
  first_error=$(grep -m1 -v -e ': churn against' -e ': rr: connections' "$out/$1.log" || true)
  fail "echo-load --mode $1 exited with $(status_of "$2")${first_error:+: $first_error}"
}
check_client churn "$churn_rc"
check_client rr "$rr_rc"

fd_end=-1
settle_ms=-1
if [ "$server_died" -eq 0 ]; then
  now_us
  drain_start=$now
  for ((i = 0; i <= 50; i++)); do
    fd_end=$(fd_count)
    [ "$fd_end" -gt "$fd_base" ] || break
    [ "$i" -eq 50 ] || sleep 0.1
  done
  now_us
  settle_ms=$(((now - drain_start) / 1000))
  sample after || true
  if [ "$fd_end" -gt "$fd_base" ]; then
    fail "weft-echo holds $fd_end descriptors 5 s after the load, baseline $fd_base"
  fi
  if ! stop server_pid; then
    fail "weft-echo did not stop within 10 s of SIGTERM"
  elif [ "$server_rc" -ne 0 ]; then
    said=$(server_said)
    fail "weft-echo exited with $(status_of "$server_rc") at shutdown${said:+: $said}"
  fi
fi

# --- the verdict, the summary and the chart ----------------------------------------------------
export SOAK_CSV=$csv SOAK_SVG=$svg SOAK_OUT=$out SOAK_DURATION=$duration
export SOAK_FD_BASE=$fd_base SOAK_FD_END=$fd_end SOAK_SETTLE_MS=$settle_ms SOAK_WORKERS=$workers
export SOAK_MAX_GROWTH_PCT=5
SOAK_FAILURES=$(printf '%s\n' ${failures[@]+"${failures[@]}"})
export SOAK_FAILURES
python3 - <<'PY'
# Reads the CSV and the clients' JSON lines, decides the RSS rule, prints the summary and the
# verdict, draws the SVG; exits 1 when any check failed.
import csv, json, math, os, re, statistics, sys
from xml.sax.saxutils import escape

env = os.environ
duration = int(env["SOAK_DURATION"])
warmup = duration / 6
max_growth = float(env["SOAK_MAX_GROWTH_PCT"])
fd_base, fd_end = int(env["SOAK_FD_BASE"]), int(env["SOAK_FD_END"])
failures = [f for f in env["SOAK_FAILURES"].split("\n") if f]
out = env["SOAK_OUT"]

rows = []
with open(env["SOAK_CSV"]) as f:
    for r in csv.DictReader(f):
        rows.append({"t": float(r["seconds"]), "rss": int(r["rss_kib"]), "fds": int(r["fds"]),
                     "phase": r["phase"]})
load = [r for r in rows if r["phase"] == "load" and r["rss"] >= 0]

def client(mode):
    try:
        with open(os.path.join(out, mode + ".json")) as f:
            lines = [l for l in f if l.startswith("{")]
        return json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        return {}

churn, rr = client("churn"), client("rr")
accepted = failed = None
try:
    with open(os.path.join(out, "weft-echo.log")) as f:
        m = re.search(r"connections accepted (\d+), failed (\d+)", f.read())
        if m:
            accepted, failed = int(m.group(1)), int(m.group(2))
except OSError:
    pass

# The RSS rule (see the top of tools/soak.sh).
rss_start = rows[0]["rss"] if rows else None
around = [r["rss"] for r in load if abs(r["t"] - warmup) <= 2]
last = [r["rss"] for r in load[-5:]]
rss_warm = statistics.median(around) if len(around) >= 3 else None
rss_end = statistics.median(last) if len(last) >= 3 and load[-1]["t"] > warmup + 2 else None
growth = None
if rss_warm and rss_end is not None:
    growth = (rss_end - rss_warm) / rss_warm * 100
    if growth > max_growth:
        failures.append(f"RSS grew {growth:.1f}% after warm-up ({rss_warm:,.0f} -> "
                        f"{rss_end:,.0f} KiB; limit {max_growth:g}%)")
elif not failures:
    failures.append("too few RSS samples to judge (the load ended early)")

verdict = "PASS" if not failures else "FAIL: " + "; ".join(failures)
title_verdict = "PASS" if not failures else "FAIL: " + failures[0]

def n(x):
    return f"{x:,}" if isinstance(x, int) else f"{x:,.0f}" if isinstance(x, float) else "?"

print(f"soak: duration {duration} s (warm-up {warmup:.0f} s), weft-echo {env['SOAK_WORKERS']} "
      f"worker(s)")
cycles, messages = churn.get("cycles"), rr.get("messages")
print(f"soak: churn {n(cycles)} connections ({n(churn.get('cycles_per_sec'))}/s, "
      f"{n(churn.get('errors'))} errors); rr {n(messages)} requests "
      f"({n(rr.get('messages_per_sec'))}/s on 16 connections, {n(rr.get('errors'))} errors); "
      f"server accepted {n(accepted)}, handlers failed {n(failed)}")
per_conn = ""
if growth is not None and growth > max_growth and cycles:
    after_warmup = cycles * (duration - warmup) / duration  # churn runs at an even rate
    per_conn = f"; about {(rss_end - rss_warm) * 1024 / after_warmup:.0f} B per connection after it"
print(f"soak: RSS KiB start {n(rss_start)}, after warm-up {n(rss_warm)}, end {n(rss_end)}"
      + (f" ({growth:+.1f}%{per_conn})" if growth is not None else ""))
settle = int(env["SOAK_SETTLE_MS"])
print(f"soak: fds baseline {fd_base}, end {fd_end if fd_end >= 0 else '?'}"
      + (f" ({settle / 1000:.1f} s after the load)" if settle >= 0 else ""))

# The chart: RSS (left axis) and descriptors (right axis) over time.
W, H, L, R, T, B = 960, 480, 80, 80, 80, 50
pw, ph = W - L - R, H - T - B
t_max = max([r["t"] for r in rows] + [duration]) or 1
# Room above the highest sample and above the limit line, so that neither touches the frame.
rss_max = max([r["rss"] for r in rows if r["rss"] >= 0] + [1] +
              [rss_warm * (1 + max_growth / 100) if rss_warm else 0]) / 1024 * 1.15
fd_max = max([r["fds"] for r in rows] + [fd_base, 1]) * 1.25

def ticks(top):  # about five round steps (1, 2 or 5 times a power of ten) from 0 to top
    raw = top / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(top / step) + 1)]

X = lambda t: L + t / t_max * pw
YR = lambda kib: T + ph - kib / 1024 / rss_max * ph
YF = lambda fds: T + ph - fds / fd_max * ph
s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
     f'font-family="sans-serif" font-size="12">',
     f'<rect width="{W}" height="{H}" fill="white"/>',
     f'<rect x="{L}" y="{T}" width="{X(warmup) - L:.1f}" height="{ph}" fill="#eeeeee"/>',
     f'<text x="{L + 4}" y="{T + 14}" fill="#666">warm-up</text>']
color = "#1a7f37" if not failures else "#cf222e"
s.append(f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="16" fill="{color}">'
         f'{escape(f"weft-echo soak, {duration} s: {title_verdict}")}</text>')
s.append(f'<text x="{W / 2}" y="44" text-anchor="middle" fill="#444">'
         f'{escape(f"churn {n(cycles)} connections + rr {n(messages)} requests; RSS KiB {n(rss_warm)} after warm-up, {n(rss_end)} at the end; fds {fd_base} -> {fd_end}")}</text>')
for v in ticks(rss_max):
    y = T + ph - v / rss_max * ph
    s.append(f'<line x1="{L}" x2="{L + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
    s.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#0969da">{v:g}</text>')
for v in ticks(fd_max):
    y = T + ph - v / fd_max * ph
    s.append(f'<text x="{L + pw + 6}" y="{y + 4:.1f}" fill="#bc4c00">{v:g}</text>')
for v in ticks(t_max):
    x = X(v)
    s.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{T + ph}" y2="{T + ph + 4}" stroke="#444"/>')
    s.append(f'<text x="{x:.1f}" y="{T + ph + 18}" text-anchor="middle">{v:g}</text>')
s.append(f'<text x="{L + pw / 2}" y="{H - 8}" text-anchor="middle">seconds</text>')
s.append(f'<text x="18" y="{T + ph / 2}" fill="#0969da" text-anchor="middle" '
         f'transform="rotate(-90 18 {T + ph / 2})">RSS (MiB)</text>')
s.append(f'<text x="{W - 18}" y="{T + ph / 2}" fill="#bc4c00" text-anchor="middle" '
         f'transform="rotate(90 {W - 18} {T + ph / 2})">open descriptors</text>')
s.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
for t, label in ((warmup, "warm-up ends"), (duration, "load ends")):
    s.append(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{T}" y2="{T + ph}" stroke="#666" '
             f'stroke-dasharray="4 3"/>')
    s.append(f'<text x="{X(t) - 4:.1f}" y="{T + ph - 6}" text-anchor="end" fill="#666">{label}</text>')
if rss_warm:
    y = YR(rss_warm * (1 + max_growth / 100))
    s.append(f'<line x1="{X(warmup):.1f}" x2="{X(duration):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
             f'stroke="#cf222e" stroke-dasharray="6 4"/>')
    s.append(f'<text x="{X(duration) - 4:.1f}" y="{y - 4:.1f}" text-anchor="end" fill="#cf222e">'
             f'RSS limit: +{max_growth:g}% over warm-up</text>')
y = YF(fd_base)
s.append(f'<line x1="{L}" x2="{L + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#bc4c00" '
         f'stroke-dasharray="2 3"/>')
def path(key, Y, stroke):
    pts = " ".join(f"{X(r['t']):.1f},{Y(r[key]):.1f}" for r in rows if r[key] >= 0)
    return f'<polyline points="{pts}" fill="none" stroke="{stroke}" stroke-width="2"/>'
s.append(path("fds", YF, "#bc4c00"))
s.append(path("rss", YR, "#0969da"))
s.append(f'<text x="{L + pw - 214}" y="{T - 8}" text-anchor="end" fill="#0969da">'
         f'&#9473;&#9473; RSS</text>')
s.append(f'<text x="{L + pw}" y="{T - 8}" text-anchor="end" fill="#bc4c00">'
         f'&#9473;&#9473; descriptors (dotted: baseline)</text>')
s.append("</svg>")
with open(env["SOAK_SVG"], "w") as f:
    f.write("\n".join(s) + "\n")

print(f"soak: csv {env['SOAK_CSV']}")
print(f"soak: svg {env['SOAK_SVG']}")
print(f"soak: {verdict}")
sys.exit(0 if not failures else 1)
PY
