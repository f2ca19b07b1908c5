#!/usr/bin/env python3
"""Median tables (Markdown) from the JSON lines that run.sh writes.

usage: summarize.py RESULTS.jsonl [MORE.jsonl ...] [--run-id ID ...]

Lines with "meta" or "error" are not measurements; errors are listed at the
end. Every cell is the median over its repetitions (n = how many, shown when
not 3). Lines marked "disturbed" (other processes used the CPU during the
timed window, see run.sh) are left out whenever the cell has undisturbed
lines; a cell built from disturbed lines only is marked with a dagger.
"""
import json
import statistics
import sys
from collections import defaultdict

RUNTIME = ["spawn_many", "yield_many", "ping_pong", "chained_spawn", "fork_join_fib", "timers", "parallel_work"]
SERVER = ["http_plaintext", "http_pipelined", "tcp_echo"]
PEER_ORDER = ["weft", "tokio", "asio_epoll", "asio_uring", "asio_epoll_postspawn", "nginx", "c_epoll"]


def peer_key(p):
    return (PEER_ORDER.index(p) if p in PEER_ORDER else len(PEER_ORDER), p)


def fmt_rate(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f} M/s"
    if v >= 1e3:
        return f"{v / 1e3:.1f} k/s"
    return f"{v:.0f} /s"


def fmt_secs(v):
    return f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.2f} s"


def fmt_mib(kb):
    return f"{kb / 1024:.1f}" if kb < 10 * 1024 else f"{kb / 1024:.0f}"


def fmt_us(v):
    return f"{v / 1e3:.2f} ms" if v >= 1000 else f"{v:.0f} µs"


def load(files, run_ids):
    """The lines of `files` (of the given run ids, or all): (measurements, errors, metas)."""
    rows, errors, metas = [], [], []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                if run_ids and r.get("run_id") not in run_ids:
                    continue
                if r.get("meta"):
                    metas.append(r)
                elif "error" in r:
                    errors.append(r)
                else:
                    rows.append(r)
    return rows, errors, metas


def main(argv):
    files, run_ids = [], set()
    i = 0
    while i < len(argv):
        if argv[i] == "--run-id":
            run_ids.add(argv[i + 1])
            i += 2
        else:
            files.append(argv[i])
            i += 1
    rows, errors, metas = load(files, run_ids)

    allcells = defaultdict(list)
    for r in rows:
        allcells[(r["workload"], r["peer"], r["workers"])].append(r)
    cells, dagger = {}, set()
    for k, lst in allcells.items():
        clean = [x for x in lst if not x.get("disturbed")]
        cells[k] = clean or lst
        if not clean:
            dagger.add(k)
    n_disturbed = sum(1 for r in rows if r.get("disturbed"))

    def med(lst, key):
        vals = [x[key] for x in lst if key in x and x[key] is not None]
        return statistics.median(vals) if vals else None

    out = []
    if metas:
        m = metas[-1]
        out.append(
            f"Machine: {m.get('cpus')} CPUs ({m.get('cpu')}), kernel {m.get('kernel')}; "
            f"{m.get('gxx')}; {m.get('rustc')}; tokio {m.get('tokio')}; boost {m.get('boost')}; "
            f"liburing {m.get('liburing')}; nginx {m.get('nginx')}; wrk {m.get('wrk')}. "
            f"Run ids: {', '.join(sorted({x['run_id'] for x in metas}))}.\n"
        )

    rt_peers = sorted({p for (w, p, n) in cells if w in RUNTIME}, key=peer_key)
    rt_keys = sorted({(w, n) for (w, p, n) in cells if w in RUNTIME}, key=lambda k: (RUNTIME.index(k[0]), k[1]))
    if rt_keys:
        for title, key, fmt in (
            ("Runtime workloads: throughput, median ops/s (higher is better)", "ops_per_sec", fmt_rate),
            ("Runtime workloads: wall time, median (lower is better)", "seconds", fmt_secs),
            ("Runtime workloads: peak RSS, median MiB (lower is better)", "peak_rss_kb", fmt_mib),
        ):
            out.append(f"### {title}\n")
            out.append("| workload | workers | " + " | ".join(rt_peers) + " |")
            out.append("|---|---:|" + "---:|" * len(rt_peers))
            for (w, n) in rt_keys:
                vals = []
                for p in rt_peers:
                    lst = cells.get((w, p, n), [])
                    v = med(lst, key)
                    mark = " †" if (w, p, n) in dagger else ""
                    vals.append("–" if v is None else f"{fmt(v)}{mark}" + ("" if len(lst) == 3 else f" (n={len(lst)})"))
                out.append(f"| {w} | {n} | " + " | ".join(vals) + " |")
            out.append("")
        out.append("### Runtime workloads: run-to-run spread, max/min of ops/s over the repetitions\n")
        out.append("| workload | workers | " + " | ".join(rt_peers) + " |")
        out.append("|---|---:|" + "---:|" * len(rt_peers))
        for (w, n) in rt_keys:
            vals = []
            for p in rt_peers:
                xs = [x["ops_per_sec"] for x in cells.get((w, p, n), [])]
                vals.append(f"{max(xs) / min(xs):.2f}" if len(xs) > 1 and min(xs) > 0 else "–")
            out.append(f"| {w} | {n} | " + " | ".join(vals) + " |")
        out.append("")

    for w in SERVER:
        peers = sorted({p for (ww, p, n) in cells if ww == w}, key=peer_key)
        if not peers:
            continue
        unit = "round trips/s" if w == "tcp_echo" else "requests/s"
        out.append(f"### {w}: median of runs (server on CPU 0, load generator on CPU 1)\n")
        out.append(f"| peer | {unit} | p50 | p90 | p99 | p99.9 | server CPU % | server CPU µs/op "
                   f"| load-gen CPU % | server peak RSS MiB | errors | n |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for p in peers:
            lst = cells[(w, p, 1)]
            lat = lambda k: "–" if med(lst, k) is None else fmt_us(med(lst, k))  # noqa: E731
            errs = sum(x.get("errors", 0) for x in lst)
            num = lambda k, f: "–" if med(lst, k) is None else f.format(med(lst, k))  # noqa: E731
            mark = " †" if (w, p, 1) in dagger else ""
            out.append(
                f"| {p} | {fmt_rate(med(lst, 'ops_per_sec'))}{mark} | {lat('lat_p50_us')} | {lat('lat_p90_us')} | "
                f"{lat('lat_p99_us')} | {lat('lat_p999_us')} | {num('server_cpu_pct', '{:.0f}')} | "
                f"{num('server_cpu_us_per_op', '{:.2f}')} | {num('client_cpu_pct', '{:.0f}')} | "
                f"{fmt_mib(med(lst, 'peak_rss_kb'))} | {errs} | {len(lst)} |"
            )
        out.append("")

    if rows:
        out.append(
            f"{len(rows)} measured runs; {n_disturbed} of them marked disturbed (other processes used more "
            f"than FOREIGN_MAX % of a CPU during the timed window) and left out"
            + (f"; † = only disturbed runs available for that cell" if dagger else "") + ".\n"
        )
    if errors:
        out.append("### Failed runs\n")
        for e in errors:
            out.append(f"- {e['peer']} {e['workload']} workers={e['workers']} rep={e.get('rep')}: {e['error']}")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    main(sys.argv[1:])
