#!/usr/bin/env python3
"""Two fidxd builds' query latency on one tree, interleaved (stdlib only).

Why: this machine's speed drifts by up to 40% over minutes and its 2 cores
are shared, so the medians of two builds compare only when measured in the
same minutes. Both daemons run at once (each `--foreground` on a socket of
its own, started with daemon_bench.LARGE_FLAGS so the large tree fits) and
index TREE; after a warm-up pass on each, the passes alternate old, new,
new, old, ...; a pass is every query of the query file once over one
persistent connection, `limit` 50, as part 2 of bench/daemon_bench.py.

Reproduce (from the repo root, after `make all` and one `make
bench-daemon`, which makes the trees), the old build in a scratch worktree:
    git worktree add /tmp/fidx-old HEAD~1 && make -C /tmp/fidx-old all
    python3 bench/daemon_ab.py --old /tmp/fidx-old/build/fidxd \\
        --new build/fidxd --root build/bench/daemon-tree/usr
    (--root build/bench/daemon-large for the large tree; --reps N passes
    per build, default 40; --reindexes N adds N full rebuilds per build,
    interleaved too, and reports their `build_ms` and each daemon's peak
    RSS, VmHWM, after them; --reps 0 leaves the queries out)
Prints a markdown table on stdout: per query the median round trip of
each build and new / old; then the medians over the queries, the median of
the per-query ratios and the same for the daemons' own elapsed_us, and the
target line (median over queries, new / old <= 1.05).
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.dont_write_bytecode = True   # no bench/__pycache__ in the work tree
import daemon_bench as b         # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", required=True, help="the fidxd to compare with")
    ap.add_argument("--new", required=True)
    ap.add_argument("--root", required=True, help="tree to index")
    ap.add_argument("--queries", default="bench/queries.txt")
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--reindexes", type=int, default=0)
    a = ap.parse_args()
    root = os.path.realpath(a.root)
    queries = b.read_queries(a.queries)
    tmp = tempfile.mkdtemp(prefix="fidx-ab-")
    ds = {}
    try:
        for name in ("old", "new"):
            ds[name] = b.Daemon(getattr(a, name),
                                os.path.join(tmp, name + ".sock"),
                                "/dev/null", b.LARGE_FLAGS)
            _, r = ds[name].request({"op": "add", "root": root,
                                     "wait": True, "hidden": True,
                                     "timeout_ms": b.WAIT_MS})
            b.log(f"{name}: {r['files']} files")
        sock = {n: {q: [] for q in queries} for n in ds}
        server = {n: {q: [] for q in queries} for n in ds}
        for rep in range(-1, a.reps):          # -1: the warm-up pass
            for name in ("old", "new") if rep % 2 else ("new", "old"):
                for q in queries:
                    dt, r = ds[name].request({"op": "query", "root": root,
                                              "q": q, "limit": a.limit})
                    if rep >= 0:
                        sock[name][q].append(dt)
                        server[name][q].append(r["elapsed_us"] / 1e6)
            b.log(f"pass {rep + 1}/{a.reps} done")
        builds = {n: [] for n in ds}
        reindex = {"op": "reindex", "root": root, "wait": True,
                   "timeout_ms": b.WAIT_MS}
        for rep in range(a.reindexes):
            for name in ("old", "new") if rep % 2 else ("new", "old"):
                _, r = ds[name].request(reindex)
                builds[name].append(r["build_ms"])
        mem = {n: ds[n].request({"op": "stats"})[1]["memory"] for n in ds}
        peak = {n: (mem[n]["rss_peak_bytes"], mem[n]["walk_bytes_peak"])
                for n in ds}
    finally:
        for d in ds.values():
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if a.reps > 0:
        print(report(a, root, queries, sock, server))
    if a.reindexes > 0:
        print(report_builds(a, root, builds, peak))


def report_builds(a, root, builds, peak):
    med = {n: statistics.median(v) for n, v in builds.items()}
    return "\n".join([
        "", f"Full rebuilds of `{root}`: {a.reindexes} interleaved per "
        "build.", "",
        "| | old | new | new / old |", "|---|---:|---:|---:|",
        f"| `build_ms` median | {med['old']:.0f} | {med['new']:.0f} "
        f"| {med['new'] / med['old']:.3f} |",
        f"| peak RSS (VmHWM) after them, MiB | {peak['old'][0] / 2**20:.1f} "
        f"| {peak['new'][0] / 2**20:.1f} | "
        f"{peak['new'][0] / peak['old'][0]:.3f} |",
        f"| `walk_bytes_peak` (builders' arrays, as allocated), MiB | "
        f"{peak['old'][1] / 2**20:.1f} | {peak['new'][1] / 2**20:.1f} | "
        f"{peak['new'][1] / peak['old'][1]:.3f} |"])


def report(a, root, queries, sock, server):
    med = {n: {q: statistics.median(v[q]) for q in queries}
           for n, v in sock.items()}
    out = [f"A/B on `{root}`: {a.reps} interleaved passes of "
           f"{len(queries)} queries per build; old `{a.old}`, new "
           f"`{a.new}`.", "",
           "| query | old ms | new ms | new / old |", "|---|---:|---:|---:|"]
    for q in queries:
        out.append(f"| {b.md_code(q)} | {b.ms(med['old'][q], 3)} "
                   f"| {b.ms(med['new'][q], 3)} "
                   f"| {med['new'][q] / med['old'][q]:.3f} |")
    col = {n: statistics.median(med[n].values()) for n in med}
    ratio = col["new"] / col["old"]

    def per_query(t):
        return statistics.median(
            statistics.median(t["new"][q]) / statistics.median(t["old"][q])
            for q in queries)

    out += [f"| **median over {len(queries)} queries** "
            f"| **{b.ms(col['old'], 3)}** | **{b.ms(col['new'], 3)}** "
            f"| **{ratio:.3f}** |", "",
            f"- Median of per-query ratios new / old: round trip "
            f"{per_query(sock):.3f}, server (`elapsed_us`) "
            f"{per_query(server):.3f}.", "",
            f"{b.verdict(ratio <= 1.05)}  median query new / old <= 1.05: "
            f"{ratio:.3f}"]
    return "\n".join(out)


if __name__ == "__main__":
    main()
