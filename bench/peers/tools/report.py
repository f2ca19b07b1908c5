#!/usr/bin/env python3
"""Report folder (report.md + SVG charts) from the JSON lines that run.sh writes.

usage: report.py OUTDIR RESULTS.jsonl [MORE.jsonl ...] [--run-id ID ...]

OUTDIR/report.md: the runs (meta lines), summarize.py's median tables, weft
divided by the best other peer, every peer's speed-up over 1 worker, and the
charts, linked by relative file name. Charts, plain SVG written here (no
plotting library): throughput-wN.svg (runtime workloads, ops/s relative to
Tokio, one per worker count), speedup.svg, server-cpu.svg, rss.svg; a chart
without data is not written. Medians follow summarize.py: disturbed lines are
left out of a cell that has undisturbed ones, a cell made of disturbed lines
only is marked with a dagger. Prints the path of report.md.
"""
import argparse
import contextlib
import io
import json
import math
import os
import re
import statistics
import sys
from collections import defaultdict
from html import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summarize  # noqa: E402

RUNTIME = summarize.RUNTIME
SERVER = summarize.SERVER
peer_key = summarize.peer_key
fmt_rate = summarize.fmt_rate
# Left out of the throughput-relative-to-Tokio charts: its figure of merit is the speed-up.
SCALING_ONLY = {"parallel_work"}
REFERENCE_PEER = "tokio"
DAGGER = " †"

# weft is the subject: one strong colour; peers get muted ones so weft stands out.
PEER_COLOURS = {
    "weft": "#d1361f",
    "tokio": "#4f81b0",
    "asio_epoll": "#6aa86a",
    "asio_uring": "#5bb3b0",
    "asio_epoll_postspawn": "#b59a5c",
    "nginx": "#9b84bd",
    "c_epoll": "#8c8c8c",
}
EXTRA_COLOURS = ["#c98fab", "#8aa0c2", "#a3a86b", "#c2a08a"]

META_LABELS = {
    "cpus": "CPUs", "cpu": "CPU", "kernel": "kernel", "gxx": "C++ compiler", "rustc": "Rust compiler",
    "tokio": "tokio", "boost": "boost", "liburing": "liburing", "nginx": "nginx", "wrk": "wrk",
}


# ---------------------------------------------------------------------------
# data


class Results:
    """Measurement cells keyed (workload, peer, workers), built by summarize.py's rules."""

    def __init__(self, files, run_ids):
        self.rows, self.errors, self.metas = summarize.load(files, run_ids)
        grouped = defaultdict(list)
        for r in self.rows:
            grouped[(r.get("workload"), r.get("peer"), r.get("workers"))].append(r)
        self.cells, self.dagger = {}, set()
        for k, lst in grouped.items():
            clean = [x for x in lst if not x.get("disturbed")]
            self.cells[k] = clean or lst
            if not clean:
                self.dagger.add(k)

    def med(self, w, p, n, key):
        vals = [x[key] for x in self.cells.get((w, p, n), []) if x.get(key) is not None]
        return statistics.median(vals) if vals else None

    def marked(self, *keys):
        return any(k in self.dagger for k in keys)

    def peers(self, workloads):
        return sorted({p for (w, p, n) in self.cells if w in workloads}, key=peer_key)

    def workers(self, workloads):
        return sorted({n for (w, p, n) in self.cells if w in workloads and isinstance(n, int)})

    def workloads(self, order):
        present = {w for (w, p, n) in self.cells}
        return [w for w in order if w in present]


def speedup(res, w, p, n):
    """(median ops/s at n workers / median at 1, dagger) or None."""
    one, many = res.med(w, p, 1, "ops_per_sec"), res.med(w, p, n, "ops_per_sec")
    if not one or many is None:
        return None
    return many / one, res.marked((w, p, 1), (w, p, n))


# ---------------------------------------------------------------------------
# formatting


def fmt_ratio(v):
    return f"{v:.2f}×" if v < 10 else f"{v:.1f}×"


def fmt_mib_unit(kb):
    mib = kb / 1024
    if mib >= 1024:
        return f"{mib / 1024:.2f} GiB"
    return f"{mib:.1f} MiB" if mib < 10 else f"{mib:.0f} MiB"


def md_cell(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------------------
# SVG


def peer_colours(peers):
    out, extra = {}, iter(EXTRA_COLOURS * (1 + len(peers) // len(EXTRA_COLOURS)))
    for p in peers:
        out[p] = PEER_COLOURS.get(p) or next(extra)
    return out


def text_width(s, size):
    # No font metrics without a renderer; 0.6 em per character is close for sans-serif.
    return len(s) * size * 0.6


def wrap(s, size, max_width):
    lines = []
    for word in (s or "").split(" "):
        if lines and text_width(lines[-1] + " " + word, size) <= max_width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return [x for x in lines if x]


class Scale:
    def __init__(self, lo, hi, log):
        self.lo, self.hi, self.log = lo, hi, log

    @classmethod
    def for_values(cls, values, log, include=()):
        vals = [v for v in list(values) + list(include) if v is not None and (v > 0 or not log)]
        if not vals:
            vals = [1.0]
        if log:
            lo, hi = nice_log_floor(min(vals)), nice_log_ceiling(max(vals))
            return cls(lo, hi if hi > lo else lo * 10, True)
        return cls(0.0, nice_ceiling(max(max(vals), 1e-12)), False)

    def frac(self, v):
        if self.log:
            v = max(v, self.lo)
            return (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        return max(v, 0.0) / self.hi

    def ticks(self):
        if self.log:
            steps = (1,) if math.log10(self.hi / self.lo) > 2 else (1, 2, 5)
            d = 10 ** math.floor(math.log10(self.lo) + 1e-9)
            out = []
            while d <= self.hi * 1.0001:
                out += [d * s for s in steps if self.lo * 0.9999 <= d * s <= self.hi * 1.0001]
                d *= 10
            return sorted(set(out) | {self.lo, self.hi})
        step = nice_step(self.hi / 6)
        return [i * step for i in range(int(round(self.hi / step)) + 1)]


def nice_step(raw):
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def nice_log_floor(v):
    d = 10 ** math.floor(math.log10(v) + 1e-9)
    return max(m * d for m in (1, 2, 5) if m * d <= v * 1.0001)


def nice_log_ceiling(v):
    d = 10 ** math.floor(math.log10(v) + 1e-9)
    return min(m * d for m in (1, 2, 5, 10) if m * d >= v * 0.9999)


def nice_ceiling(v):
    step = nice_step(v / 6)
    return math.ceil(v * 1.0001 / step) * step


def fmt_tick(v):
    return f"{v:.0f}" if v >= 1 and abs(v - round(v)) < 1e-9 else f"{v:g}"


def hbar_svg(title, subtitle, groups, scale, tick_fmt, axis_label, refs=(), notes=()):
    """Grouped horizontal bars.

    groups: [(label, sublabel or None, [(peer, value, text)])]; refs: [(value, label)]
    drawn as dashed vertical lines; notes: lines of small print under the axis.
    """
    width, left, right = 860, 150, 170
    plot_w = width - left - right
    bar_h, bar_gap, group_gap = 15, 3, 16
    peers = sorted({b[0] for g in groups for b in g[2]}, key=peer_key)
    colours = peer_colours(peers)
    out = []

    def t(x, y, s, size=12, anchor="start", weight="normal", fill="#222", halo=False):
        # The white halo keeps a value readable where it crosses a grid or reference line.
        extra = ' stroke="#fff" stroke-width="3" paint-order="stroke"' if halo else ""
        out.append(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}"{extra}>{escape(s)}</text>'
        )

    t(width / 2, 26, title, size=16, anchor="middle", weight="bold")
    y = 46
    for line in wrap(subtitle, 12, width - 40):
        t(width / 2, y, line, size=12, anchor="middle", fill="#555")
        y += 16
    y += 4
    # legend, wrapped over as many rows as needed
    x = left
    for p in peers:
        w = 14 + 6 + text_width(p, 12) + 18
        if x + w > width - 20 and x > left:
            x, y = left, y + 20
        out.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="14" height="12" fill="{colours[p]}"/>')
        t(x + 20, y, p, weight="bold" if p == "weft" else "normal")
        x += w
    top = y + (34 if refs else 16)
    y = top
    rows = []
    for label, sub, bars in groups:
        g_top = y
        for peer, value, text in bars:
            rows.append((y, peer, value, text))
            y += bar_h + bar_gap
        g_mid = (g_top + y - bar_gap) / 2
        t(left - 10, g_mid + (0 if sub else 4), label, size=13, anchor="end", weight="bold")
        if sub:
            t(left - 10, g_mid + 14, sub, size=10, anchor="end", fill="#666")
        y += group_gap
        out.append(f'<line x1="20" x2="{width - 20}" y1="{y - group_gap / 2:.1f}" '
                   f'y2="{y - group_gap / 2:.1f}" stroke="#e4e4e4"/>')
    bottom = y - group_gap / 2
    grid = []
    for v in scale.ticks():
        gx = left + scale.frac(v) * plot_w
        grid.append(f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="{top - 4:.1f}" y2="{bottom:.1f}" stroke="#ececec"/>')
        t(gx, bottom + 16, tick_fmt(v), size=11, anchor="middle", fill="#444")
    for v, label in refs:
        rx = left + scale.frac(v) * plot_w
        grid.append(f'<line x1="{rx:.1f}" x2="{rx:.1f}" y1="{top - 6:.1f}" y2="{bottom:.1f}" stroke="#333" '
                    f'stroke-dasharray="4 3"/>')
        t(rx, top - 10, label, size=10, anchor="middle", fill="#333")
    out[:0] = grid  # grid and reference lines under the bars
    for ry, peer, value, text in rows:
        bw = max(scale.frac(value) * plot_w, 0.0) if value is not None else 0.0
        out.append(f'<rect x="{left}" y="{ry:.1f}" width="{bw:.1f}" height="{bar_h}" fill="{colours[peer]}">'
                   f'<title>{escape(peer)}: {escape(text)}</title></rect>')
        t(left + bw + 5, ry + bar_h - 3.5, text, size=11, weight="bold" if peer == "weft" else "normal", halo=True)
    out.append(f'<line x1="{left}" x2="{left}" y1="{top - 4:.1f}" y2="{bottom:.1f}" stroke="#888"/>')
    out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{bottom:.1f}" y2="{bottom:.1f}" stroke="#888"/>')
    y = bottom + 34
    t(left + plot_w / 2, y, axis_label, size=12, anchor="middle")
    y += 6
    for n in notes:
        y += 15
        t(20, y, n, size=10, fill="#555")
    height = math.ceil(y + 14)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">\n'
        f"<title>{escape(title)}</title>\n"
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>\n'
    )
    return head + "\n".join(out) + "\n</svg>\n"


def dagger_note(used_dagger):
    if not used_dagger:
        return []
    return ["† only disturbed runs for that cell (other processes used the CPU in the timed window)"]


# ---------------------------------------------------------------------------
# charts: each returns SVG text, or None when there is nothing to draw


def chart_throughput(res, n):
    workloads = [w for w in res.workloads(RUNTIME) if w not in SCALING_ONLY]
    groups, values, daggers = [], [], False
    for w in workloads:
        peers = [p for p in res.peers([w]) if res.med(w, p, n, "ops_per_sec") is not None]
        if not peers:
            continue
        # Without Tokio in this group, the first peer present is 1.0 and the group says so.
        ref = REFERENCE_PEER if REFERENCE_PEER in peers else peers[0]
        ref_v = res.med(w, ref, n, "ops_per_sec")
        bars = []
        for p in peers:
            v = res.med(w, p, n, "ops_per_sec")
            rel = v / ref_v if ref_v else None
            mark = DAGGER if res.marked((w, p, n)) else ""
            daggers |= bool(mark)
            shown = rel is not None and p != ref
            text = fmt_rate(v) + (f" · {fmt_ratio(rel)}" if shown else "") + mark
            bars.append((p, rel if rel is not None else 0.0, text))
            if rel:
                values.append(rel)
        groups.append((w, None if ref == REFERENCE_PEER else f"1× = {ref}", bars))
    if not groups:
        return None
    log = bool(values) and max(values) / min(values) > 20
    scale = Scale.for_values(values, log, include=[1.0])
    return hbar_svg(
        f"Runtime workloads, {n} worker{'s' if n != 1 else ''}: throughput relative to Tokio",
        "bar = median ops/s ÷ Tokio's median ops/s in the same workload (higher is better); "
        "text = median ops/s · ratio",
        groups, scale, lambda v: f"{fmt_tick(v)}×",
        f"ops/s relative to Tokio (1×){', log scale' if log else ''}",
        refs=[(1.0, "Tokio = 1×")],
        notes=dagger_note(daggers) + [f"median of the repetitions; run ids: {run_id_list(res)}"],
    )


def chart_speedup(res):
    many = [n for n in res.workers(RUNTIME) if n > 1]
    if 1 not in res.workers(RUNTIME) or not many:
        return None
    groups, values, daggers = [], [], False
    for w in res.workloads(RUNTIME):
        bars = []
        for p in res.peers([w]):
            for n in many:
                s = speedup(res, w, p, n)
                if s is None:
                    continue
                v, marked = s
                daggers |= marked
                at = f" at {n} workers" if len(many) > 1 else ""
                bars.append((p, v, fmt_ratio(v) + at + (DAGGER if marked else "")))
                values.append(v)
        if bars:
            groups.append((w, "figure of merit" if w in SCALING_ONLY else None, bars))
    if not groups:
        return None
    refs = [(1.0, "1 worker")]
    if len(many) == 1:
        refs.append((float(many[0]), f"ideal {many[0]}×"))
    scale = Scale.for_values(values, False, include=[r[0] for r in refs])
    counts = ", ".join(str(n) for n in many)
    return hbar_svg(
        f"Speed-up over 1 worker, at {counts} workers (higher is better)",
        "bar = the peer's median ops/s at N workers ÷ its own median ops/s at 1 worker",
        groups, scale, lambda v: f"{fmt_tick(v)}×", "speed-up over 1 worker",
        refs=refs,
        notes=dagger_note(daggers) + [f"run ids: {run_id_list(res)}"],
    )


def chart_server_cpu(res):
    groups, values, daggers = [], [], False
    for w in res.workloads(SERVER):
        bars = []
        for p in res.peers([w]):
            us = res.med(w, p, 1, "server_cpu_us_per_op")
            if us is None:
                continue
            rate = res.med(w, p, 1, "ops_per_sec")
            mark = DAGGER if res.marked((w, p, 1)) else ""
            daggers |= bool(mark)
            bars.append((p, us, f"{us:.2f} µs · {fmt_rate(rate) if rate is not None else '–'}{mark}"))
            values.append(us)
        if bars:
            groups.append((w, "per round trip" if w == "tcp_echo" else "per request", bars))
    if not groups:
        return None
    return hbar_svg(
        "Server CPU time per request / round trip (lower is better)",
        "bar = median server CPU µs per op; text = that · median requests/s (HTTP) or round trips/s (echo)",
        groups, Scale.for_values(values, False), fmt_tick, "server CPU µs per request / round trip",
        notes=dagger_note(daggers) + ["server: 1 worker on CPU 0; load generator on CPU 1",
                                      f"run ids: {run_id_list(res)}"],
    )


def chart_rss(res):
    ns = res.workers(RUNTIME)
    if not ns:
        return None
    n = 1 if 1 in ns else ns[0]
    groups, values, daggers = [], [], False
    for w in res.workloads(RUNTIME):
        bars = []
        for p in res.peers([w]):
            kb = res.med(w, p, n, "peak_rss_kb")
            if kb is None:
                continue
            mark = DAGGER if res.marked((w, p, n)) else ""
            daggers |= bool(mark)
            bars.append((p, kb / 1024, fmt_mib_unit(kb) + mark))
            values.append(kb / 1024)
        if bars:
            groups.append((w, None, bars))
    if not groups:
        return None
    return hbar_svg(
        f"Peak RSS, runtime workloads, {n} worker{'s' if n != 1 else ''} (lower is better)",
        "median VmHWM of the whole process, runtime start-up included",
        groups, Scale.for_values(values, True), fmt_tick, "peak RSS, MiB, log scale",
        notes=dagger_note(daggers) + [f"run ids: {run_id_list(res)}"],
    )


# ---------------------------------------------------------------------------
# report.md


def run_id_list(res):
    ids = sorted({str(r.get("run_id")) for r in res.rows})
    return ", ".join(ids) if len(ids) <= 4 else f"{len(ids)} runs, {ids[0]} … {ids[-1]}"


def runs_section(res):
    metas = {m.get("run_id"): m for m in res.metas}  # the last meta line of a run id wins
    ids = sorted(set(metas) | {r.get("run_id") for r in res.rows} | {e.get("run_id") for e in res.errors},
                 key=str)
    if not ids:
        return []
    keys = []
    for m in metas.values():
        keys += [k for k in m if k not in ("meta", "run_id") and k not in keys]
    common = [k for k in keys if all(k in m for m in metas.values())
              and len({str(m[k]) for m in metas.values()}) == 1]
    varying = [k for k in keys if k not in common]
    out = ["## Runs\n"]
    if common:
        m = next(iter(metas.values()))
        parts, rest = [], common
        if "cpus" in common:
            parts.append(f"{m['cpus']} CPUs" + (f" ({m['cpu']})" if "cpu" in common else ""))
            rest = [k for k in common if k not in ("cpus", "cpu")]
        parts += [f"{META_LABELS.get(k, k)} {m[k]}" for k in rest]
        lead = "Same in every run: " if len(metas) > 1 else "Machine and versions: "
        out.append(lead + "; ".join(md_cell(x) for x in parts) + ".\n")
    per_run = defaultdict(lambda: [0, 0, 0])
    for r in res.rows:
        per_run[r.get("run_id")][0] += 1
        per_run[r.get("run_id")][1] += bool(r.get("disturbed"))
    for e in res.errors:
        per_run[e.get("run_id")][2] += 1
    head = ["run id", "measured", "disturbed", "failed"] + [META_LABELS.get(k, k) for k in varying]
    out.append("| " + " | ".join(head) + " |")
    out.append("|---|---:|---:|---:|" + "---|" * len(varying))
    for rid in ids:
        m = metas.get(rid, {})
        c = per_run[rid]
        row = [md_cell(rid), str(c[0]), str(c[1]), str(c[2])] + [md_cell(m.get(k, "–")) for k in varying]
        out.append("| " + " | ".join(row) + " |")
    if len(ids) > 1:
        out.append("\nEvery median below pools the lines of all these runs; pass --run-id to report one run.")
    missing = [str(rid) for rid in ids if rid not in metas]
    if missing:
        out.append(f"\nNo meta line (machine and versions unknown) for: {', '.join(missing)}.")
    out.append("")
    return out


def summarize_tables(files, run_ids):
    argv = list(files)
    for rid in run_ids:
        argv += ["--run-id", rid]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        summarize.main(argv)
    text = buf.getvalue()
    # Its one-line "Machine:" paragraph shows the last run only; "## Runs" covers every run.
    if text.startswith("Machine:"):
        text = text.split("\n\n", 1)[1] if "\n\n" in text else ""
    return text.rstrip("\n").split("\n") + [""]


def ratio_section(res):
    if not res.cells:
        return []
    out = ["## weft ÷ best other peer\n"]
    if "weft" not in {p for (w, p, n) in res.cells}:
        return out + ["No weft lines in these results, so no ratios.\n"]
    out.append("### Runtime workloads: median ops/s, weft ÷ the fastest other peer (above 1: weft is faster)\n")
    out.append("| workload | workers | weft | fastest other peer | weft ÷ fastest |")
    out.append("|---|---:|---:|---|---:|")
    for w in res.workloads(RUNTIME):
        for n in res.workers([w]):
            wv = res.med(w, "weft", n, "ops_per_sec")
            others = [(res.med(w, p, n, "ops_per_sec"), p) for p in res.peers([w]) if p != "weft"]
            others = [o for o in others if o[0] is not None]
            best = max(others) if others else None
            wmark = DAGGER if res.marked((w, "weft", n)) else ""
            bmark = DAGGER if best and res.marked((w, best[1], n)) else ""
            cells = [
                fmt_rate(wv) + wmark if wv is not None else "not run",
                f"{best[1]} {fmt_rate(best[0])}{bmark}" if best else "none",
                fmt_ratio(wv / best[0]) + (DAGGER if wmark or bmark else "") if wv is not None and best and best[0]
                else "–",
            ]
            out.append(f"| {w} | {n} | " + " | ".join(cells) + " |")
    out.append("")
    servers = res.workloads(SERVER)
    if servers:
        out.append("### Server workloads: weft ÷ the best other peer\n")
        out.append("CPU: server CPU µs per request / round trip, divided by the lowest other peer's "
                   "(below 1: weft uses less CPU). Throughput: requests or round trips per second, "
                   "divided by the highest other peer's (above 1: weft serves more).\n")
        out.append("| workload | weft CPU µs/op | lowest other | CPU ratio | weft ops/s | highest other | "
                   "throughput ratio |")
        out.append("|---|---:|---|---:|---:|---|---:|")
        for w in servers:
            row = [w]
            for key, pick, fmt in (("server_cpu_us_per_op", min, lambda v: f"{v:.2f}"),
                                   ("ops_per_sec", max, fmt_rate)):
                wv = res.med(w, "weft", 1, key)
                others = [(res.med(w, p, 1, key), p) for p in res.peers([w]) if p != "weft"]
                others = [o for o in others if o[0] is not None]
                best = pick(others) if others else None
                mark = DAGGER if res.marked((w, "weft", 1)) or (best and res.marked((w, best[1], 1))) else ""
                row += [
                    fmt(wv) if wv is not None else "not run",
                    f"{best[1]} {fmt(best[0])}" if best else "none",
                    fmt_ratio(wv / best[0]) + mark if wv is not None and best and best[0] else "–",
                ]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    return out


def speedup_section(res):
    many = [n for n in res.workers(RUNTIME) if n > 1]
    if 1 not in res.workers(RUNTIME) or not many:
        return []
    peers = res.peers(RUNTIME)
    out = ["## Speed-up over 1 worker\n",
           "Each peer's median ops/s at N workers ÷ its own median at 1 worker (parallel_work: "
           "the figure of merit).\n",
           "| workload | workers | " + " | ".join(peers) + " |",
           "|---|---:|" + "---:|" * len(peers)]
    for w in res.workloads(RUNTIME):
        for n in many:
            vals = []
            for p in peers:
                s = speedup(res, w, p, n)
                vals.append("–" if s is None else fmt_ratio(s[0]) + (DAGGER if s[1] else ""))
            if any(v != "–" for v in vals):
                out.append(f"| {w} | {n} | " + " | ".join(vals) + " |")
    out.append("")
    return out


CHART_TITLES = {
    "speedup.svg": "Speed-up over 1 worker",
    "server-cpu.svg": "Server CPU per request / round trip",
    "rss.svg": "Peak RSS, runtime workloads",
}


def write_report(outdir, files, run_ids):
    res = Results(files, set(run_ids))
    os.makedirs(outdir, exist_ok=True)
    charts = {}
    for n in res.workers([w for w in RUNTIME if w not in SCALING_ONLY]):
        charts[f"throughput-w{n}.svg"] = chart_throughput(res, n)
    charts["speedup.svg"] = chart_speedup(res)
    charts["server-cpu.svg"] = chart_server_cpu(res)
    charts["rss.svg"] = chart_rss(res)
    # A chart left over from an earlier report in the same folder would contradict this one.
    for name in os.listdir(outdir):
        if (re.fullmatch(r"throughput-w\d+\.svg", name) or name in CHART_TITLES) and not charts.get(name):
            os.remove(os.path.join(outdir, name))
    written = []
    for name, svg in charts.items():
        if svg:
            with open(os.path.join(outdir, name), "w", encoding="utf-8") as fh:
                fh.write(svg)
            written.append(name)

    md = ["# weft and its peers: benchmark report\n",
          f"Sources: {', '.join(md_cell(f) for f in files)}"
          + (f"; run ids selected: {', '.join(run_ids)}" if run_ids else "") + ".\n"]
    if not res.rows:
        md.append("No measurement lines" + (" for the selected run ids" if run_ids else "") + ".\n")
    md += runs_section(res)
    other = sorted({str(w) for (w, p, n) in res.cells} - set(RUNTIME) - set(SERVER))
    if other:
        md.append(f"Workloads not in these tables: {', '.join(other)}.\n")
    if res.rows or res.errors:
        md += ["## Median tables\n"] + summarize_tables(files, run_ids)
    md += ratio_section(res)
    md += speedup_section(res)
    if written:
        md.append("## Charts\n")
        for name in written:
            m = re.fullmatch(r"throughput-w(\d+)\.svg", name)
            alt = (f"Runtime throughput relative to Tokio, {m.group(1)} worker{'' if m.group(1) == '1' else 's'}"
                   if m else CHART_TITLES[name])
            md.append(f"![{alt}]({name})\n")
    path = os.path.join(outdir, "report.md")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(md).rstrip("\n") + "\n")
    return path


def main(argv):
    ap = argparse.ArgumentParser(usage="report.py OUTDIR RESULTS.jsonl [MORE.jsonl ...] [--run-id ID ...]",
                                 description="Markdown report with SVG charts from run.sh results.")
    ap.add_argument("outdir")
    ap.add_argument("results", nargs="+")
    ap.add_argument("--run-id", action="append", default=[], dest="run_ids",
                    help="only lines of this run (repeat for several)")
    args = ap.parse_intermixed_args(argv)
    try:
        print(write_report(args.outdir, args.results, args.run_ids))
    except OSError as e:
        ap.error(str(e))


if __name__ == "__main__":
    main(sys.argv[1:])
