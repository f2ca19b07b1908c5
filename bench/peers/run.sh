#!/usr/bin/env bash
# weft beside Tokio, Boost.Asio, nginx and a plain C server: the same workloads, one run, one
# machine (bench/peers/README.md).
#
#   ./run.sh deps                      apt-get install what the peers need (root)
#   ./run.sh build                     build weft (release) and every peer
#   ./run.sh check                     correctness gate: HTTP parser + echo for every server peer
#   ./run.sh run [options]             run the selected matrix, append JSON lines to the results file
#   ./run.sh summary [FILE...]         median tables (Markdown) from results files
#   ./run.sh report OUTDIR [FILE...]   tables and SVG charts (report.md) from results files
#   ./run.sh [all] [options]           deps where something is missing, build, run, report
#
# options (run/all):
#   --peers "P ..."       default: every peer that implements the workload
#                         (weft tokio asio_epoll asio_uring asio_epoll_postspawn nginx c_epoll)
#   --workloads "W ..."   default: spawn_many yield_many ping_pong chained_spawn fork_join_fib
#                         timers http_plaintext http_pipelined tcp_echo
#   --workers "N ..."     runtime workloads only (servers always get 1 worker); default "1 2"
#   --reps N              repetitions of every cell (default 3)
#   --duration S          seconds of load per server run (default 10)
#   --results FILE        default build/peers/results.jsonl (appended)
#   --report DIR          (all) where the report goes; default build/peers/report-RUN_ID
#
# Environment: WEFT_BIN=the weft benchmark command (program and fixed arguments, split on spaces;
# default: this repository's build/release/tools/weft-bench --json, built by `build`).
# PEERS_BUILD / PEERS_RESULTS: build folder and results file (defaults: build/peers/ and
# build/peers/results.jsonl under the repository root). PEERS_PORT_BASE (default 18400): first loopback port used.
# QUIET_MAX / QUIET_WAIT: before each run wait up to QUIET_WAIT s (default 20)
# for machine-wide CPU use to drop below QUIET_MAX % (default 25); the value
# seen is stored as bg_busy_pct in every result line.
# FOREIGN_MAX / MAX_ATTEMPTS: CPU time used by processes that are not this
# script's own (other users of a shared machine) is measured over each timed
# window; above FOREIGN_MAX % of one CPU (default 10) the line is marked
# "disturbed":true and the run is repeated, at most MAX_ATTEMPTS (default 3)
# attempts per repetition. `summary` takes medians over undisturbed lines.
#
# Every single run is bounded with `timeout` (55 s for runtime workloads,
# DURATION+30 s for servers). Only loopback addresses are used. Only
# processes started here are stopped, by PID.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="${PEERS_BUILD:-$ROOT/build/peers}"
RESULTS="${PEERS_RESULTS:-$BUILD/results.jsonl}"
# weft-bench linked fully static, as the Rust peer is (meson option static_tools): a dynamically
# linked one counts ~1.5 MiB more of shared-library pages in its peak RSS.
WEFT_BUILD="${WEFT_BUILD:-$ROOT/build/peers-weft}"
WEFT_BIN="${WEFT_BIN:-$WEFT_BUILD/tools/weft-bench --json}"
REPS=3
WORKERS_LIST="1 2"
DURATION=10
CONNECTIONS=100
PIPELINE_DEPTH=16
ECHO_MSG_BYTES=64
RUN_TIMEOUT=55
PORT=${PEERS_PORT_BASE:-18400}
QUIET_MAX=${QUIET_MAX:-25}
QUIET_WAIT=${QUIET_WAIT:-20}
FOREIGN_MAX=${FOREIGN_MAX:-10}
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
MAX_ATTEMPTS=${MAX_ATTEMPTS:-3}
# Debian's vendored crate sources: the directory that librust-tokio-dev
# installs its crate into (found with dpkg at run time; override if elsewhere).
if [[ -z "${DEB_CARGO_REGISTRY:-}" ]]; then
  DEB_CARGO_REGISTRY=$(dpkg -L librust-tokio-dev 2>/dev/null | sed -n 's|/tokio-[0-9][^/]*$||p' | head -n 1)
fi

RUNTIME_WORKLOADS="spawn_many yield_many ping_pong chained_spawn fork_join_fib timers parallel_work"
SERVER_WORKLOADS="http_plaintext http_pipelined tcp_echo"
RUNTIME_PEERS="weft tokio asio_epoll asio_uring asio_epoll_postspawn"
HTTP_PEERS="weft tokio asio_epoll asio_uring nginx"
ECHO_PEERS="weft tokio asio_epoll asio_uring c_epoll"
PEERS_SEL=""
WORKLOADS_SEL="$RUNTIME_WORKLOADS $SERVER_WORKLOADS"

APT_PACKAGES="g++ liburing-dev libboost1.81-dev librust-tokio-dev wrk nginx jq python3 util-linux procps
  meson ninja-build pkg-config"

log() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------
deps() {
  [[ $(id -u) -eq 0 ]] || die "deps needs root (apt-get)"
  "$ROOT/tools/install-deps.sh" # weft's own build and test dependencies
  local pkgs=$APT_PACKAGES
  command -v cargo >/dev/null || pkgs+=" cargo" # Debian's toolchain only if none is installed
  apt-get update
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y $pkgs
}

# Missing tools or Debian's tokio sources -> deps (the one-command path on a fresh machine).
deps_if_missing() {
  local t
  for t in cargo g++ gcc jq wrk nginx python3 taskset meson ninja; do
    command -v "$t" >/dev/null || { deps; return; }
  done
  [[ -n "$DEB_CARGO_REGISTRY" && -d "$DEB_CARGO_REGISTRY" ]] || { deps; return; }
  [[ -f /usr/include/boost/asio.hpp ]] || deps
}

build_weft() {
  if [[ ! -f "$WEFT_BUILD/build.ninja" ]]; then
    log "build: weft (meson, release, g++, static weft-bench)"
    CXX=${CXX:-g++} meson setup "$WEFT_BUILD" "$ROOT" -Dbuildtype=release -Db_ndebug=false \
      -Dstatic_tools=true -Ddefault_library=static -Dtests=false -Dbenchmarks=false >/dev/null \
      || die "meson setup failed"
  fi
  log "build: weft-bench"
  ninja -C "$WEFT_BUILD" tools/weft-bench >"$BUILD/weft-build.log" 2>&1 \
    || die "ninja (weft-bench) failed: $BUILD/weft-build.log"
}

build() {
  mkdir -p "$BUILD"
  build_weft
  command -v cargo >/dev/null || die "cargo missing (./run.sh deps)"
  [[ -n "$DEB_CARGO_REGISTRY" && -d "$DEB_CARGO_REGISTRY" ]] \
    || die "Debian's vendored tokio crate not found (./run.sh deps, or set DEB_CARGO_REGISTRY)"

  log "build: tokio peer (cargo --release --offline, Debian's vendored crates)"
  # Build from a copy in build/ so Cargo.lock (generated) stays out of the tree.
  mkdir -p "$BUILD/tokio-src"
  cp -rp "$HERE/tokio/Cargo.toml" "$HERE/tokio/src" "$BUILD/tokio-src/"
  CARGO_HOME="$BUILD/cargo-home" cargo build --release --offline --quiet \
    --manifest-path "$BUILD/tokio-src/Cargo.toml" --target-dir "$BUILD/cargo-target" \
    --config 'source.crates-io.replace-with="debian-vendored"' \
    --config "source.debian-vendored.directory=\"$DEB_CARGO_REGISTRY\"" \
    || die "cargo build failed"

  local src="$HERE/asio/peer_asio.cpp"
  if [[ "$src" -nt "$BUILD/peer_asio_epoll" ]]; then
    log "build: asio peer, epoll reactor"
    g++ -O2 -std=c++20 -pthread "$src" -o "$BUILD/peer_asio_epoll" || die "g++ (epoll) failed"
  fi
  if [[ "$src" -nt "$BUILD/peer_asio_uring" ]]; then
    log "build: asio peer, io_uring backend"
    g++ -O2 -std=c++20 -pthread -DBOOST_ASIO_HAS_IO_URING -DBOOST_ASIO_DISABLE_EPOLL \
      "$src" -o "$BUILD/peer_asio_uring" -luring || die "g++ (io_uring) failed"
  fi
  log "build: C echo server and echo client"
  gcc -O2 -std=gnu11 "$HERE/c/echo_server.c" -o "$BUILD/echo_server_c" || die "gcc failed"
  gcc -O2 -std=gnu11 "$HERE/c/echo_client.c" -o "$BUILD/echo_client" || die "gcc failed"
  log "build: done"
}

# ---------------------------------------------------------------------------
# peer -> command (global array PEER_CMD)
peer_cmd() {
  case "$1" in
    tokio) PEER_CMD=("$BUILD/cargo-target/release/peer_tokio") ;;
    asio_epoll) PEER_CMD=("$BUILD/peer_asio_epoll") ;;
    asio_uring) PEER_CMD=("$BUILD/peer_asio_uring") ;;
    asio_epoll_postspawn) PEER_CMD=("$BUILD/peer_asio_epoll" --spawn post) ;;
    c_epoll) PEER_CMD=("$BUILD/echo_server_c") ;;
    weft) read -ra PEER_CMD <<<"$WEFT_BIN" ;;
    *) return 1 ;;
  esac
  [[ -x "${PEER_CMD[0]}" ]] || die "peer $1: ${PEER_CMD[0]} not built (./run.sh build)"
}

peer_selected() { # peer
  [[ -z "$PEERS_SEL" ]] && return 0
  [[ " $PEERS_SEL " == *" $1 "* ]]
}

# Machine-wide CPU use (percent, all CPUs) over 0.5 s.
cpu_busy_pct() {
  local _c a b c d e f g h t1 i1 t2 i2
  read -r _c a b c d e f g h _ </proc/stat; t1=$((a + b + c + d + e + f + g + h)); i1=$((d + e))
  sleep 0.5
  read -r _c a b c d e f g h _ </proc/stat; t2=$((a + b + c + d + e + f + g + h)); i2=$((d + e))
  ((t2 > t1)) || { echo 0; return; }
  echo $((100 * ((t2 - t1) - (i2 - i1)) / (t2 - t1)))
}

BG=0
quiet_wait() {
  local deadline=$((SECONDS + QUIET_WAIT))
  while :; do
    BG=$(cpu_busy_pct)
    ((BG <= QUIET_MAX || SECONDS >= deadline)) && break
    sleep 1
  done
  ((BG > QUIET_MAX)) && log "note: machine busy (${BG}%) before this run"
  return 0
}

# CPU ticks (user+system, plus reaped children) of every user-space process
# that is neither this script nor one of its descendants, nor a kernel thread.
foreign_ticks() {
  local mine
  mine=" $$ $(descendants $$ | tr '\n' ' ') "
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v mine="$mine" '
    {
      pid = $1; rest = $0
      sub(/^[0-9]+ \(.*\) /, "", rest); n = split(rest, f, " ")
      if (n < 15 || pid == 2 || f[2] == 2) next          # kernel threads
      if (index(mine, " " pid " ")) next
      t += f[12] + f[13] + f[14] + f[15]
    }
    END { print t + 0 }'
}

FOREIGN=0 DISTURBED=0 ATTEMPT=1 F_T0=0 F_W0=0
foreign_begin() { F_T0=$(foreign_ticks); F_W0=$EPOCHREALTIME; }
foreign_end() {
  local t1 w1
  t1=$(foreign_ticks); w1=$EPOCHREALTIME
  FOREIGN=$(awk -v a="$F_T0" -v b="$t1" -v w0="$F_W0" -v w1="$w1" -v hz="$CLK_TCK" \
    'BEGIN { w = w1 - w0; if (w <= 0) w = 1e-3; v = 100 * (b - a) / hz / w; if (v < 0) v = 0; printf "%.1f", v }')
  DISTURBED=$(awk -v f="$FOREIGN" -v m="$FOREIGN_MAX" 'BEGIN { print (f > m) ? 1 : 0 }')
}
# jq fragment arguments shared by all result lines
attempt_args() { ATT_ARGS=(--argjson att "$ATTEMPT" --argjson fg "$FOREIGN" --argjson dist "$([[ $DISTURBED -eq 1 ]] && echo true || echo false)"); }

with_retries() { # run_fn args...
  for ((ATTEMPT = 1; ATTEMPT <= MAX_ATTEMPTS; ATTEMPT++)); do
    DISTURBED=0
    "$@"
    [[ $DISTURBED -eq 0 ]] && return 0
    log "other processes used ${FOREIGN}% of a CPU during that run: marked disturbed$( ((ATTEMPT < MAX_ATTEMPTS)) && echo ', repeating')"
  done
  return 0
}

emit() { printf '%s\n' "$1" >>"$RESULTS"; printf '%s\n' "$1"; }

emit_error() { # peer workload workers rep message
  emit "$(jq -cn --arg p "$1" --arg w "$2" --argjson n "$3" --argjson r "$4" --arg e "$5" \
    --arg rid "$RUN_ID" '{peer:$p,workload:$w,workers:$n,error:$e,rep:$r,run_id:$rid}')"
}

# ---------------------------------------------------------------------------
run_runtime() { # peer workload workers rep
  local peer=$1 w=$2 n=$3 rep=$4 rc line pin=() pinned="none" outf
  peer_cmd "$peer" || return 0
  if [[ $n -eq 1 ]]; then pin=(taskset -c 0); pinned="cpu0"; fi
  quiet_wait
  outf=$(mktemp "${TMPDIR:-/tmp}/peers-rt.XXXXXX")
  foreign_begin
  run_client "$outf" timeout "$RUN_TIMEOUT" "${pin[@]}" "${PEER_CMD[@]}" --workload "$w" --workers "$n"
  rc=$?
  foreign_end
  line=$(grep '^{' "$outf" | tail -n 1)
  rm -f "$outf"
  if [[ $rc -ne 0 || -z "$line" ]] || ! jq -e . >/dev/null 2>&1 <<<"$line"; then
    DISTURBED=0
    emit_error "$peer" "$w" "$n" "$rep" "exit status $rc$([[ $rc -eq 124 ]] && echo ' (timeout)')"
    return 0
  fi
  attempt_args
  emit "$(jq -c --arg p "$peer" --argjson r "$rep" --arg rid "$RUN_ID" --argjson bg "$BG" \
    --arg pin "$pinned" --argjson cpu "$CLIENT_CPU_S" "${ATT_ARGS[@]}" \
    '. + {peer:$p, process_cpu_s:$cpu, rep:$r, attempt:$att, run_id:$rid, bg_busy_pct:$bg,
          foreign_cpu_pct:$fg, disturbed:$dist, pinned:$pin}' <<<"$line")"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

next_port() {
  PORT=$((PORT + 1))
  while port_open "$PORT"; do PORT=$((PORT + 1)); done
}

descendants() { # pid -> all descendant pids
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do echo "$c"; descendants "$c"; done
}

SERVER_PID=""
NGINX_PREFIX=""
start_server() { # peer kind(http|echo) port
  local peer=$1 kind=$2 port=$3 limit=$((DURATION + 30)) i
  if [[ $peer == nginx ]]; then
    command -v nginx >/dev/null || die "nginx missing (./run.sh deps)"
    NGINX_PREFIX=$(mktemp -d "${TMPDIR:-/tmp}/peers-nginx.XXXXXX")
    mkdir -p "$NGINX_PREFIX/tmp"
    sed "s/@PORT@/$port/" "$HERE/nginx/nginx.conf.in" >"$NGINX_PREFIX/nginx.conf"
    timeout "$limit" taskset -c 0 nginx -p "$NGINX_PREFIX/" -c nginx.conf -e stderr 2>>"$LOG" &
  else
    peer_cmd "$peer" || return 1
    timeout "$limit" taskset -c 0 "${PEER_CMD[@]}" --workload "${kind}_server" --workers 1 \
      --port "$port" 2>>"$LOG" &
  fi
  SERVER_PID=$!
  for ((i = 0; i < 100; i++)); do
    port_open "$port" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  log "server $peer did not come up on port $port"
  stop_server
  return 1
}

server_rss_kb() { # sum of VmHWM over the server's processes (nginx: master + worker)
  local sum=0 p v
  for p in $(descendants "$SERVER_PID"); do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

server_cpu_ticks() { # utime+stime (all threads) summed over the server's processes
  local sum=0 p v
  for p in $(descendants "$SERVER_PID"); do
    v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# Runs a load generator; its stdout goes to $1, its CPU time (user+sys, s)
# to CLIENT_CPU_S.
CLIENT_CPU_S=0
run_client() { # outfile cmd...
  local outf=$1 tf rc
  shift
  tf=$(mktemp "${TMPDIR:-/tmp}/peers-time.XXXXXX")
  local TIMEFORMAT='%3U %3S'
  { time "$@" >"$outf" 2>>"$LOG"; } 2>"$tf"
  rc=$?
  CLIENT_CPU_S=$(awk 'NF == 2 {printf "%.3f", $1 + $2}' "$tf")
  rm -f "$tf"
  : "${CLIENT_CPU_S:=0}"
  return $rc
}

stop_server() {
  if [[ -n "$SERVER_PID" ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null # the timeout wrapper forwards TERM to the server
    wait "$SERVER_PID" 2>/dev/null
  fi
  SERVER_PID=""
  if [[ -n "$NGINX_PREFIX" ]]; then rm -rf "$NGINX_PREFIX"; NGINX_PREFIX=""; fi
}

CHECKED=" "
check_server() { # peer kind -> 0 if correct (checked once per peer per invocation)
  local peer=$1 kind=$2 ok=0
  [[ "$CHECKED" == *" $peer/$kind "* ]] && return 0
  next_port
  start_server "$peer" "$kind" "$PORT" || return 1
  if [[ $kind == http ]]; then
    timeout 30 python3 "$HERE/tools/http_check.py" "$PORT" 2>>"$LOG" || ok=1
  else
    timeout 10 "$BUILD/echo_client" --port "$PORT" --connections 4 --size 4096 --seconds 1 \
      --peer "$peer" >/dev/null 2>>"$LOG" || ok=1
  fi
  stop_server
  if [[ $ok -eq 0 ]]; then CHECKED+="$peer/$kind "; log "check: $peer $kind ok"; else log "check: $peer $kind FAILED (see $LOG)"; fi
  return $ok
}

run_http() { # peer workload rep
  local peer=$1 w=$2 rep=$3 rc wj rss script extra=() c0 c1 outf
  if [[ $w == http_pipelined ]]; then script=pipeline.lua; extra=(-- "$PIPELINE_DEPTH"); else script=report.lua; fi
  check_server "$peer" http || { emit_error "$peer" "$w" 1 "$rep" "http_check failed"; return 0; }
  quiet_wait
  next_port
  start_server "$peer" http "$PORT" || { emit_error "$peer" "$w" 1 "$rep" "server start failed"; return 0; }
  outf=$(mktemp "${TMPDIR:-/tmp}/peers-wrk.XXXXXX")
  c0=$(server_cpu_ticks)
  foreign_begin
  run_client "$outf" timeout $((DURATION + 20)) taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" \
    --latency -s "$HERE/wrk/$script" "http://127.0.0.1:$PORT/" "${extra[@]}"
  rc=$?
  foreign_end
  c1=$(server_cpu_ticks)
  rss=$(server_rss_kb)
  stop_server
  wj=$(sed -n 's/^WRK_JSON //p' "$outf" | tail -n 1)
  rm -f "$outf"
  if [[ $rc -ne 0 || -z "$wj" ]]; then DISTURBED=0; emit_error "$peer" "$w" 1 "$rep" "wrk exit status $rc"; return 0; fi
  attempt_args
  emit "$(jq -c --arg p "$peer" --arg w "$w" --argjson rss "$rss" --argjson r "$rep" "${ATT_ARGS[@]}" \
    --arg rid "$RUN_ID" --argjson bg "$BG" --argjson c "$CONNECTIONS" \
    --argjson d "$([[ $w == http_pipelined ]] && echo "$PIPELINE_DEPTH" || echo 1)" \
    --argjson scpu "$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / t}')" \
    --argjson ccpu "$CLIENT_CPU_S" \
    '(.duration_us/1e6) as $secs
     | {peer:$p, workload:$w, workers:1, ops:.requests, seconds:$secs,
        ops_per_sec:((.requests/$secs*10|round)/10), peak_rss_kb:$rss}
     + (del(.requests, .duration_us))
     + {errors:(.err_connect+.err_read+.err_write+.err_status+.err_timeout),
        connections:$c, pipeline:$d,
        server_cpu_pct:((100*$scpu/$secs*10|round)/10),
        server_cpu_us_per_op:(if .requests > 0 then ((1e6*$scpu/.requests*100|round)/100) else null end),
        client_cpu_pct:((100*$ccpu/$secs*10|round)/10),
        rep:$r, attempt:$att, run_id:$rid, bg_busy_pct:$bg, foreign_cpu_pct:$fg, disturbed:$dist,
        pinned:"server cpu0, wrk cpu1"}' <<<"$wj")"
}

run_echo() { # peer rep
  local peer=$1 rep=$2 rc line rss c0 c1 outf
  check_server "$peer" echo || { emit_error "$peer" tcp_echo 1 "$rep" "echo check failed"; return 0; }
  quiet_wait
  next_port
  start_server "$peer" echo "$PORT" || { emit_error "$peer" tcp_echo 1 "$rep" "server start failed"; return 0; }
  outf=$(mktemp "${TMPDIR:-/tmp}/peers-echo.XXXXXX")
  c0=$(server_cpu_ticks)
  foreign_begin
  run_client "$outf" timeout $((DURATION + 20)) taskset -c 1 "$BUILD/echo_client" --port "$PORT" \
    --connections "$CONNECTIONS" --size "$ECHO_MSG_BYTES" --seconds "$DURATION" --peer "$peer"
  rc=$?
  foreign_end
  c1=$(server_cpu_ticks)
  rss=$(server_rss_kb)
  stop_server
  line=$(grep '^{' "$outf" | tail -n 1)
  rm -f "$outf"
  if [[ $rc -ne 0 || -z "$line" ]]; then DISTURBED=0; emit_error "$peer" tcp_echo 1 "$rep" "echo_client exit status $rc"; return 0; fi
  attempt_args
  emit "$(jq -c --argjson rss "$rss" --argjson r "$rep" --arg rid "$RUN_ID" --argjson bg "$BG" "${ATT_ARGS[@]}" \
    --argjson scpu "$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / t}')" \
    --argjson ccpu "$CLIENT_CPU_S" \
    '. + {peak_rss_kb:$rss,
          server_cpu_pct:((100*$scpu/.seconds*10|round)/10),
          server_cpu_us_per_op:(if .ops > 0 then ((1e6*$scpu/.ops*100|round)/100) else null end),
          client_cpu_pct:((100*$ccpu/.seconds*10|round)/10),
          rep:$r, attempt:$att, run_id:$rid, bg_busy_pct:$bg, foreign_cpu_pct:$fg, disturbed:$dist,
          pinned:"server cpu0, client cpu1"}' <<<"$line")"
}

write_meta() {
  local tokio_v="" d
  for d in "$DEB_CARGO_REGISTRY"/tokio-[0-9]*; do [[ -d $d ]] && tokio_v=${d##*/tokio-}; done
  emit "$(jq -cn --arg rid "$RUN_ID" --arg kernel "$(uname -r)" --arg cpus "$(nproc)" \
    --arg cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" \
    --arg gxx "$(g++ --version | head -n 1)" --arg rustc "$(rustc --version)" \
    --arg tokio "${tokio_v:-?}" \
    --arg boost "$(dpkg-query -W -f='${Version}' libboost1.81-dev 2>/dev/null)" \
    --arg liburing "$(dpkg-query -W -f='${Version}' liburing-dev 2>/dev/null)" \
    --arg nginx "$(nginx -v 2>&1 | sed 's/.*: //')" --arg wrk "$(dpkg-query -W -f='${Version}' wrk 2>/dev/null)" \
    '{meta:true, run_id:$rid, kernel:$kernel, cpus:$cpus, cpu:$cpu, gxx:$gxx, rustc:$rustc,
      tokio:$tokio, boost:$boost, liburing:$liburing, nginx:$nginx, wrk:$wrk}')"
}

run_matrix() {
  for tool in jq taskset timeout wrk python3 pgrep; do
    command -v "$tool" >/dev/null || die "$tool missing (./run.sh deps)"
  done
  mkdir -p "$(dirname "$RESULTS")"
  RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
  LOG="$BUILD/run-$RUN_ID.log"
  mkdir -p "$BUILD"; : >"$LOG"
  trap 'stop_server' EXIT
  trap 'stop_server; exit 130' INT TERM
  log "run $RUN_ID -> $RESULTS (stderr of peers: $LOG)"
  write_meta >/dev/null
  local w peer n rep
  for w in $WORKLOADS_SEL; do
    case " $RUNTIME_WORKLOADS " in
      *" $w "*)
        for n in $WORKERS_LIST; do
          for ((rep = 1; rep <= REPS; rep++)); do
            for peer in $RUNTIME_PEERS; do
              peer_selected "$peer" || continue
              with_retries run_runtime "$peer" "$w" "$n" "$rep"
            done
          done
        done
        continue ;;
    esac
    case $w in
      http_plaintext | http_pipelined)
        for ((rep = 1; rep <= REPS; rep++)); do
          for peer in $HTTP_PEERS; do
            peer_selected "$peer" || continue
            with_retries run_http "$peer" "$w" "$rep"
          done
        done ;;
      tcp_echo)
        for ((rep = 1; rep <= REPS; rep++)); do
          for peer in $ECHO_PEERS; do
            peer_selected "$peer" || continue
            with_retries run_echo "$peer" "$rep"
          done
        done ;;
      *) die "unknown workload $w" ;;
    esac
  done
  log "done: $RESULTS"
}

check_all() {
  RUN_ID=check; LOG="$BUILD/check.log"; mkdir -p "$BUILD"; : >"$LOG"
  trap 'stop_server' EXIT
  local peer bad=0
  for peer in $HTTP_PEERS; do peer_selected "$peer" || continue; check_server "$peer" http || bad=1; done
  for peer in $ECHO_PEERS; do peer_selected "$peer" || continue; check_server "$peer" echo || bad=1; done
  return $bad
}

# ---------------------------------------------------------------------------
cmd=all
if [[ $# -gt 0 && $1 != --* ]]; then cmd=$1; shift; fi
if [[ $cmd == summary ]]; then
  [[ $# -gt 0 ]] || set -- "$RESULTS"
  exec python3 "$HERE/tools/summarize.py" "$@"
fi
if [[ $cmd == report ]]; then
  [[ $# -gt 0 ]] || die "report needs an output folder"
  out=$1; shift
  files=0
  for a in "$@"; do [[ $a == --run-id || -f $a ]] && [[ $a != --run-id ]] && files=1; done
  [[ $files -eq 1 ]] || set -- "$@" "$RESULTS"
  exec python3 "$HERE/tools/report.py" "$out" "$@"
fi
while [[ $# -gt 0 ]]; do
  case $1 in
    --peers) PEERS_SEL=$2; shift 2 ;;
    --workloads) WORKLOADS_SEL=$2; shift 2 ;;
    --workers) WORKERS_LIST=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --results) RESULTS=$2; shift 2 ;;
    --report) REPORT_DIR=$2; shift 2 ;;
    *) die "unknown option $1 (see the header of run.sh)" ;;
  esac
done
case $cmd in
  deps) deps ;;
  build) build ;;
  check) build && check_all ;;
  run) run_matrix ;;
  all)
    deps_if_missing
    build && run_matrix && python3 "$HERE/tools/report.py" "${REPORT_DIR:-$BUILD/report-$RUN_ID}" \
      "$RESULTS" --run-id "$RUN_ID" ;;
  *) die "unknown command $cmd (deps|build|check|run|summary|all)" ;;
esac
