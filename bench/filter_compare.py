#!/usr/bin/env python3
"""Compare `fidx filter` with fzf and fzy on one path list (stdlib only).

Normally called by bench/filter.sh, which builds the path list first.

What it measures, per query of the query file:
  * wall time of each whole command, including process start-up and reading
    the whole list from stdin, stdout sent to /dev/null:
        fidx filter --limit 50 QUERY < paths      (top 50 only)
        fzf --filter QUERY < paths                 (all matches, sorted)
        fzy -e QUERY < paths                       (all matches, sorted)
    REPS repetitions; in each repetition every query is run once per tool,
    tools back to back (their order rotating per repetition), so machine noise
    hits all tools alike. The per-query figure is the median over repetitions.
  * top-result agreement: the first output line of `fidx filter --limit 1`,
    of fzf and of fzy (full output captured, first line taken). A query with
    no match on both sides counts as agreement.

Exit status: 0 ok, 1 a tool failed (exit status other than 0/1, or timeout).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

TOOLS = ("fidx", "fzy", "fzf")


def read_queries(path):
    with open(path, encoding="utf-8") as f:
        lines = (line.strip() for line in f)
        return [q for q in lines if q and not q.startswith("#")]


def commands(fidx, query, limit):
    return {
        "fidx": [fidx, "filter", "--limit", str(limit), query],
        "fzy": ["fzy", "-e", query],
        "fzf": ["fzf", "--filter", query],
    }


def run(cmd, paths, timeout, capture):
    """Run cmd with stdin from the paths file; return (seconds, stdout, rc)."""
    with open(paths, "rb") as stdin:
        t0 = time.perf_counter()
        try:
            p = subprocess.run(
                cmd, stdin=stdin,
                stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            sys.exit(f"FAIL: timeout after {timeout}s: {cmd}")
        except OSError as e:
            sys.exit(f"FAIL: cannot run {cmd}: {e}")
        dt = time.perf_counter() - t0
    if p.returncode not in (0, 1):  # 0 = matches, 1 = no match
        err = p.stderr.decode(errors="replace").strip()
        sys.exit(f"FAIL: exit {p.returncode}: {cmd}\n{err}")
    return dt, p.stdout, p.returncode


def first_line(out):
    line = out.split(b"\n", 1)[0]
    return line.decode("utf-8", errors="replace") if line else None


def fmt_ms(sec):
    return f"{sec * 1000:.1f}"


def md_code(s):
    return "`" + s.replace("|", "\\|") + "`" if s else "(none)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--fidx", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--out", help="also write the markdown report here")
    ap.add_argument("--header", default="", help="markdown put before table")
    a = ap.parse_args()

    queries = read_queries(a.queries)
    if not queries:
        sys.exit("no queries in " + a.queries)

    # Pass 1: top results and match counts (also warms the page cache).
    top, hits = {}, {}
    for q in queries:
        cmds = commands(a.fidx, q, 1)
        for tool in TOOLS:
            _, out, rc = run(cmds[tool], a.paths, a.timeout, capture=True)
            if tool == "fidx" and (rc == 0) != bool(out):
                print(f"WARNING: {tool} exit {rc} but {len(out)} bytes of "
                      f"output for query {q!r}", file=sys.stderr)
            top[q, tool] = first_line(out)
            if tool != "fidx":
                hits[q, tool] = out.count(b"\n")
    print(f"top results collected for {len(queries)} queries", file=sys.stderr)

    # Pass 2: timing, interleaved.
    times = {(q, t): [] for q in queries for t in TOOLS}
    for rep in range(a.reps):
        order = TOOLS[rep % 3:] + TOOLS[:rep % 3]
        for q in queries:
            cmds = commands(a.fidx, q, a.limit)
            for tool in order:
                dt, _, _ = run(cmds[tool], a.paths, a.timeout, capture=False)
                times[q, tool].append(dt)
        print(f"rep {rep + 1}/{a.reps} done", file=sys.stderr)

    med = {k: statistics.median(v) for k, v in times.items()}

    # Report.
    out = [a.header] if a.header else []
    out += ["| query | matches fzy / fzf | fidx ms | fzy ms | fzf ms "
            "| fidx top = fzy | fidx top = fzf |",
            "|---|---:|---:|---:|---:|:-:|:-:|"]
    agree = {"fzy": 0, "fzf": 0, "either": 0}
    disagree = []
    for q in queries:
        same = {t: top[q, "fidx"] == top[q, t] for t in ("fzy", "fzf")}
        agree["fzy"] += same["fzy"]
        agree["fzf"] += same["fzf"]
        agree["either"] += same["fzy"] or same["fzf"]
        if not (same["fzy"] and same["fzf"]):
            disagree.append(q)
        out.append(
            f"| {md_code(q)} | {hits[q, 'fzy']} / {hits[q, 'fzf']} "
            f"| {fmt_ms(med[q, 'fidx'])} | {fmt_ms(med[q, 'fzy'])} "
            f"| {fmt_ms(med[q, 'fzf'])} "
            f"| {'yes' if same['fzy'] else 'no'} "
            f"| {'yes' if same['fzf'] else 'no'} |")

    n = len(queries)
    col = {t: statistics.median(med[q, t] for q in queries) for t in TOOLS}
    out.append(f"| **median over {n} queries** | | **{fmt_ms(col['fidx'])}** "
               f"| **{fmt_ms(col['fzy'])}** | **{fmt_ms(col['fzf'])}** "
               f"| **{100 * agree['fzy'] / n:.0f}%** "
               f"| **{100 * agree['fzf'] / n:.0f}%** |")
    out.append("")
    out.append("Speed-up of fidx (> 1 means fidx is faster):")
    out.append("")
    out.append("| | fzy / fidx | fzf / fidx |")
    out.append("|---|---:|---:|")
    for label, f in (
        ("median of per-query ratios",
         lambda t: statistics.median(med[q, t] / med[q, "fidx"]
                                     for q in queries)),
        ("ratio of the per-tool medians above",
         lambda t: col[t] / col["fidx"])):
        out.append(f"| {label} | {f('fzy'):.2f}x | {f('fzf'):.2f}x |")
    out.append("")
    out.append(f"Top-result agreement over {n} queries: fidx = fzy "
               f"{agree['fzy']}/{n} ({100 * agree['fzy'] / n:.0f}%), "
               f"fidx = fzf {agree['fzf']}/{n} "
               f"({100 * agree['fzf'] / n:.0f}%), fidx = fzy or fzf "
               f"{agree['either']}/{n} ({100 * agree['either'] / n:.0f}%).")
    if disagree:
        out += ["", "Queries where the top results differ:", ""]
        for q in disagree:
            out.append(f"- {md_code(q)}")
            for t in TOOLS:
                out.append(f"  - {t}: {md_code(top[q, t])}")
    report = "\n".join(out) + "\n"
    sys.stdout.write(report)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(report)


if __name__ == "__main__":
    main()
