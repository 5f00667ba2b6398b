#!/usr/bin/env python3
"""bench/narrow_bench.py - a picker's keystrokes against fidxd, narrowed
or not: the round trip of each query typed, prefix after prefix.

Why: a picker sends one query a keystroke with "supersede":true, and
fidxd narrows each one that extends the last to the last one's candidate
set (README, "Narrowing"); this measures what that saves, with no
terminal in the way (bench/pick.sh and bench/nvim.sh measure the screen).

What: one fidxd per configuration (--daemon LABEL=BINARY[,ARG...], at
least one; e.g. narrowed=build/fidxd and
whole=build/fidxd,--max-narrow-bytes,0, or an older binary), each on a
private socket and indexing the same tree, all running at once. Then for
each of the first N queries of bench/queries.txt, and for each daemon in
turn (the order rotating from query to query, so load on a shared
machine falls on all alike): one connection types the query's prefixes,
one request each (limit 40, positions, supersede: what `fidx pick`
sends), waiting for each answer, as a person typing faster than the
answers come would not (that is the picker's stream with no
cancellations: every keystroke's cost is counted whole). ROUNDS repeats
the whole pass.
Reported: per daemon, the median, p90 and p99 of the per-keystroke round
trip, over every keystroke, and over keystrokes after the first of
each query (the first is a full scan in every configuration); the
median and p90 of fidxd's own elapsed_us (the query's time inside the
daemon, which a busy machine's scheduling adds less to); the median over
keystrokes of each one's least elapsed_us over the rounds (what a quiet
machine would show, near enough, on a shared one); the
narrowing counters of its stats; ratios of each median to the first
daemon's. The load average is printed at the start and the end.

Run: python3 bench/narrow_bench.py --tree build/bench/load-tree \\
         --daemon narrowed=build/fidxd \\
         --daemon whole=build/fidxd,--max-narrow-bytes,0
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


class Daemon:
    def __init__(self, label, spec, tmp):
        parts = spec.split(",")
        self.label = label
        self.sock = os.path.join(tmp, label + ".sock")
        self.log = open(os.path.join(tmp, label + ".log"), "w")
        self.p = subprocess.Popen([os.path.abspath(parts[0]), "--foreground",
                                   "--socket", self.sock] + parts[1:],
                                  stderr=self.log, stdout=self.log)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if time.monotonic() > deadline or self.p.poll() is not None:
                raise SystemExit("%s: fidxd did not start" % label)
            time.sleep(0.02)
        self.c = socket.socket(socket.AF_UNIX)
        self.c.connect(self.sock)
        self.f = self.c.makefile("rwb")

    def req(self, obj):
        self.f.write((json.dumps(obj) + "\n").encode())
        self.f.flush()
        return json.loads(self.f.readline())

    def stop(self):
        try:
            self.req({"op": "shutdown"})
        except (OSError, ValueError):
            pass
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", required=True)
    ap.add_argument("--daemon", action="append", required=True,
                    metavar="LABEL=BINARY[,ARG...]")
    ap.add_argument("--queries", default="bench/queries.txt")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=int(os.environ.get(
        "ROUNDS", "2")))
    ap.add_argument("--keys", action="store_true",
                    help="also each keystroke's least elapsed_us per daemon")
    a = ap.parse_args()
    tree = os.path.realpath(a.tree)
    with open(a.queries) as f:
        queries = [ln.strip() for ln in f if ln.strip() and
                   not ln.startswith("#")][:a.n]
    tmp = tempfile.mkdtemp(prefix="fidx-narrowbench.")
    daemons = []
    try:
        for spec in a.daemon:
            label, binary = spec.split("=", 1)
            daemons.append(Daemon(label, binary, tmp))
        for d in daemons:
            r = d.req({"op": "add", "root": tree, "wait": True,
                       "timeout_ms": 900000})
            if r.get("ok") is not True:
                raise SystemExit("%s: add: %s" % (d.label, r))
            files = r.get("files")
        print("## narrowing: per-keystroke round trip, %d queries of %s "
              "typed prefix by prefix, %d rounds" % (len(queries),
                                                     a.queries, a.rounds))
        print()
        print("- Tree: `%s`, %s files indexed" % (tree, files))
        print("- Load average at the start: %s" %
              open("/proc/loadavg").read().split()[:3])
        times = {d.label: [] for d in daemons}
        later = {d.label: [] for d in daemons}
        served = {d.label: [] for d in daemons}
        best = {d.label: {} for d in daemons}	# (query, i): least elapsed
        for rnd in range(a.rounds):
            for qi, q in enumerate(queries):
                k = (qi + rnd) % len(daemons)
                for d in daemons[k:] + daemons[:k]:
                    for i in range(1, len(q) + 1):
                        t0 = time.perf_counter()
                        r = d.req({"op": "query", "root": tree, "q": q[:i],
                                   "limit": 40, "positions": True,
                                   "supersede": True})
                        dt = (time.perf_counter() - t0) * 1000
                        if r.get("ok") is not True:
                            raise SystemExit("%s: %r: %s" % (d.label, q[:i],
                                                             r))
                        times[d.label].append(dt)
                        served[d.label].append(r["elapsed_us"] / 1000)
                        key = (q, i)
                        best[d.label][key] = min(best[d.label].get(
                            key, 1e9), r["elapsed_us"] / 1000)
                        if i > 1:
                            later[d.label].append(dt)
        print("- Load average at the end: %s" %
              open("/proc/loadavg").read().split()[:3])
        print()
        print("| daemon | keystrokes | median ms | p90 | p99 | median after "
              "the first key | fidxd's elapsed_us: median, p90 ms | "
              "median of each key's least elapsed_us over rounds | "
              "narrowed / full (stats) |")
        print("|---|---|---|---|---|---|---|---|---|")
        base = None
        for d in daemons:
            xs, ys = times[d.label], later[d.label]
            cn = d.req({"op": "stats"}).get("narrow", {}).get("counters", {})
            zs = served[d.label]
            ms = list(best[d.label].values())
            print("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f, %.2f | "
                  "%.2f | %s / %s |" % (
                      d.label, len(xs), statistics.median(xs), pct(xs, 0.9),
                      pct(xs, 0.99), statistics.median(ys),
                      statistics.median(zs), pct(zs, 0.9),
                      statistics.median(ms),
                      cn.get("narrowed", "-"), cn.get("full", "-")))
            if base is None:
                base = (statistics.median(xs), statistics.median(ys),
                        statistics.median(zs), statistics.median(ms))
        print()
        for d in daemons[1:]:
            xs, ys = times[d.label], later[d.label]
            zs = served[d.label]
            ms = list(best[d.label].values())
            print("- %s / %s: median %.2fx, after the first key %.2fx, "
                  "fidxd's elapsed %.2fx, least elapsed %.2fx" % (
                      d.label, daemons[0].label,
                      statistics.median(xs) / base[0],
                      statistics.median(ys) / base[1],
                      statistics.median(zs) / base[2],
                      statistics.median(ms) / base[3]))
        if a.keys:
            print()
            print("| keys | " + " | ".join(d.label for d in daemons) +
                  " |")
            print("|---|" + "---|" * len(daemons))
            for q in queries:
                for i in range(1, len(q) + 1):
                    print("| `%s` | %s |" % (q[:i], " | ".join(
                        "%.2f" % best[d.label][(q, i)] for d in daemons)))
    finally:
        for d in daemons:
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
