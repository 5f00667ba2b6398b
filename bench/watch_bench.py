#!/usr/bin/env python3
"""Benchmark fidxd's inotify watcher against inotifywait and watchman.

Normally called by bench/watch.sh, which makes the trees, builds the older
fidxd and passes the machine/version header. Python 3 standard library
only; the daemon is driven as in bench/daemon_bench.py (whose helpers this
imports): one persistent connection, one JSON line each way, wall clock
from the client's side (time.perf_counter).

On the small tree TREE (a copy of /usr, ~140,000 files), one fidxd:

1. Watch set-up. ROUNDS rounds after a discarded warm-up, the two
   commands' order alternating per round:
     fidx       `remove` (not timed), then {"op":"add","wait":true,
                "hidden":true} and {"op":"sync"}: request to the sync's
                answer, i.e. a whole first walk with every directory
                watched (the walk adds the watches; the sync is answered
                once they are all in place and the index is live)
     inotifywait `inotifywait -r -m TREE` (stdout to /dev/null) from the
                spawn to "Watches established." on its stderr
   Median per command.
2. Creation to queryable. A private watchman (`--foreground`, its own
   socket, state, log and pid files, `--no-save-state`) watches TREE too
   (`watch`: `watch-project` would climb to an enclosing `.git` and watch
   the whole repository). CREATES times each of four kinds, interleaved (the
   order rotating), each after a random pause of 20-50 ms: a new uniquely
   named file (O_CREAT|O_EXCL, one line written) in a random existing
   directory of TREE; the clock starts after close() and stops at:
     fidx query     the first answer to back-to-back {"op":"query",
                    "q":NAME,"mode":"exact"} that lists the file
     fidx sync      the answer to one {"op":"sync"} (then a query must list
                    the file, else the run fails)
     watchman       the first answer to back-to-back ["query",TREE,
                    {"expression":["name",NAME],"fields":["name"]}] that
                    lists it, sent as JSON lines on one persistent
                    connection to watchman's socket (no process per
                    query); watchman's default sync_timeout, so each query
                    first waits for its own cookie file (watchman's way of
                    answering fresh)
     watchman nosync the same with "sync_timeout":0 (plain polling, as the
                    fidx query)
   Then QUIET more per kind of the first and the third, each after 150-250
   ms of quiet instead (fidx applies the first change after 100 ms of
   quiet at once; a burst's changes wait a settle time that doubles from
   5 ms up to 200 ms while events keep coming less than 100 ms apart, as
   they do at 20-50 ms). Median, p99 (nearest rank), max per kind; plus
   each tool's round trip for a name that exists (the polling
   granularity). Both daemons watch
   TREE throughout, so each also sees the other's creations.
4. Burst. watchman stopped, a fresh directory in TREE gets BURST_DIRS
   directories of BURST_FILES empty files each (os.open/close). From the
   first creation, {"op":"sync"} then {"op":"projects"} back to back until
   the project's files equal the count before plus the burst (exact), and
   a regex query for the burst's directory matches exactly that many;
   then the whole directory is removed and timed the same way back to the
   count before. fidxd's peak RSS during each (VmHWM after resetting it
   with /proc/PID/clear_refs, and VmRSS sampled every 10 ms) and the
   `stats` watch counters' change (batches, coalesced, overflows, ...).

On the large tree LARGE (COPIES hard-linked copies of it, ~1.1 M files), a
fresh fidxd with LARGE_FLAGS:

3. One-file change. CHANGES changes, each after a pause of 150-250 ms
   (the watcher applies a change after 100 ms of quiet at once): a file
   created in a random directory, then deleted, alternately; after each,
   {"op":"sync"} (timed from the change) and the project's "last_change"
   from {"op":"projects"}: its "us" (the delta's time in the daemon),
   "bytes_made", "segments_made", "segments_shared". Against REINDEX_REPS
   {"op":"reindex","wait":true}: its build_ms (the fastest of them and of
   the first add's is the reference), and the project's "bytes". Then, for
   the record, the OLD fidxd's (part 5) add and two reindexes of LARGE.

5. Queries against the previous commit: bench/daemon_ab.py --old OLD
   --new FIDXD --root TREE --reps AB_REPS (both daemons at once,
   interleaved passes); its summary.

Targets, printed as PASS/FAIL lines (never an exit status): fidx set-up
(add + sync) no slower than inotifywait -r; fidx creation-to-queryable at
most half of watchman's, median and p99 (against each watchman mode); a
one-file change's median "us" at most 1% of the full rebuild's build_ms
and its median bytes_made at most 1% of the index bytes; query medians
new / old at most 1.05.

Exit status: 0 ran (whatever the targets say), 1 something failed.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True   # no bench/__pycache__ in the work tree
import daemon_bench as b         # noqa: E402
from daemon_bench import fail, log, ms, pct, verdict   # noqa: E402

MIB = 1024 * 1024
WAIT_MS = b.WAIT_MS
LARGE_FLAGS = ("--max-files", "2M", "--max-index-bytes", "2G")
POLL_DEADLINE = 10.0       # seconds a creation may take to show, else fail
PREFIX = "fidxw-"          # every file and directory this benchmark makes
KINDS = ("fidx query", "fidx sync", "watchman", "watchman nosync")


def median(v):
    return statistics.median(v) if v else float("nan")


# ---------------------------------------------------------------- watchman

class Watchman:
    """A private watchman server and one JSON-protocol connection to it."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "wm")
        os.makedirs(self.dir)
        self.sock_path = os.path.join(self.dir, "sock")
        self.logpath = os.path.join(self.dir, "log")
        self.out = open(os.path.join(self.dir, "out"), "ab")
        self.proc = subprocess.Popen(
            ["watchman", "--foreground", "--no-save-state",
             "--sockname=" + self.sock_path,
             "--statefile=" + os.path.join(self.dir, "state"),
             "--logfile=" + self.logpath,
             "--pidfile=" + os.path.join(self.dir, "pid")],
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.out)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                fail(f"watchman exited with {self.proc.returncode} at start")
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(self.sock_path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > deadline:
                    self.kill()
                    fail("watchman did not listen within 10 s")
                time.sleep(0.02)
        self.rf = self.s.makefile("rb")

    def request(self, obj):
        """Sends obj as one JSON line; returns (seconds, response)."""
        line = b.encode(obj)
        t0 = time.perf_counter()
        self.s.sendall(line)
        while True:
            resp = self.rf.readline()
            if not resp:
                fail(f"watchman closed the connection on {obj}")
            r = json.loads(resp)
            if not r.get("unilateral"):
                break
        dt = time.perf_counter() - t0
        if "error" in r:
            fail(f"watchman refused {obj}: {r['error']}")
        return dt, r

    def stop(self):
        try:
            self.request(["shutdown-server"])
        except (OSError, SystemExit):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        self.rf.close()
        self.s.close()
        self.out.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------- helpers

def stats_watch(d):
    _, r = d.request({"op": "stats"})
    return r["watch"]


def project(d, root):
    _, r = d.request({"op": "projects"})
    for p in r["projects"]:
        if p["root"] == root:
            return p
    fail(f"no project {root} in {r}")


def sync(d, root):
    return d.request({"op": "sync", "root": root, "timeout_ms": WAIT_MS})


def list_dirs(root):
    """Every directory under root (os.walk, symlinks not followed), absolute;
    none of this benchmark's own."""
    out = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = [n for n in dirnames if not n.startswith(PREFIX)
                       and n != ".git"]
        out.append(dirpath)
    return out


def create(path):
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.write(fd, b"fidx watch bench\n")
    os.close(fd)


def inotifywait_setup(tree, timeout):
    """Seconds from spawning `inotifywait -r -m tree` to its "Watches
    established." line; the process is then stopped."""
    t0 = time.perf_counter()
    p = subprocess.Popen(["inotifywait", "-r", "-m", tree],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    try:
        seen = []
        for line in p.stderr:
            if b"Watches established." in line:
                dt = time.perf_counter() - t0
                break
            seen.append(line)
        else:
            fail("inotifywait ended before \"Watches established.\": "
                 + b"".join(seen).decode(errors="replace"))
    finally:
        timer.cancel()
        p.terminate()
        p.wait()
        p.stderr.close()
    return dt


def max_queued():
    with open("/proc/sys/fs/inotify/max_queued_events") as f:
        return f.read().strip()


def summary(v):
    return {"n": len(v), "med": median(v), "p99": pct(v, 99) if v else 0,
            "max": max(v) if v else 0, "min": min(v) if v else 0}


# ---------------------------------------------------------------- part 1

def fidx_setup(fidxd, sock, logpath, tree):
    """A fresh fidxd (its start not timed): seconds of add (wait) and of
    add + sync, files, watches and watch counters after."""
    d = b.Daemon(fidxd, sock, logpath)
    try:
        t0 = time.perf_counter()
        _, r = d.request({"op": "add", "root": tree, "wait": True,
                          "hidden": True, "timeout_ms": WAIT_MS})
        t1 = time.perf_counter()
        _, s = sync(d, tree)
        t2 = time.perf_counter()
        if s.get("watch") != "watching":
            fail(f"not watching after add + sync: {s}")
        w = stats_watch(d)
    except BaseException:
        d.kill()
        raise
    d.stop()
    b.unlink_quiet(sock)
    return t1 - t0, t2 - t0, r["files"], w


def bench_setup(fidxd, sock, logpath, tree, rounds, timeout):
    log("set-up: warm-up (inotifywait, a fresh fidxd's add)")
    inotifywait_setup(tree, timeout)
    _, _, n_files, _ = fidx_setup(fidxd, sock, logpath, tree)
    times = {"fidx add + sync": [], "fidx add": [], "inotifywait -r": []}
    watches, overflows = [], 0
    for rnd in range(rounds):
        order = ("fidx", "inotifywait")
        for tool in order if rnd % 2 == 0 else order[::-1]:
            if tool == "fidx":
                t_add, t_sync, n, w = fidx_setup(fidxd, sock, logpath, tree)
                if n != n_files:
                    fail(f"add found {n} files, the first {n_files}")
                times["fidx add"].append(t_add)
                times["fidx add + sync"].append(t_sync)
                watches.append(w["usage"]["watches"])
                overflows += w["counters"]["overflows"]
            else:
                times["inotifywait -r"].append(
                    inotifywait_setup(tree, timeout))
        log(f"set-up: round {rnd + 1}/{rounds} done")
    return {"times": times, "files": n_files, "watches": watches,
            "overflows": overflows}


def bench_readd(d, tree):
    """On a daemon that has tree: remove, add (wait), sync, timed once,
    with the watch counters' change."""
    c0 = stats_watch(d)["counters"]
    d.request({"op": "remove", "root": tree})
    t0 = time.perf_counter()
    d.request({"op": "add", "root": tree, "wait": True, "hidden": True,
               "timeout_ms": WAIT_MS})
    t1 = time.perf_counter()
    sync(d, tree)
    t2 = time.perf_counter()
    c1 = stats_watch(d)["counters"]
    return {"add": t1 - t0, "sync": t2 - t1, "counters": counters_diff(c0, c1)}


# ---------------------------------------------------------------- part 2

def fidx_has(d, tree, name, rel):
    _, r = d.request({"op": "query", "root": tree, "q": name,
                      "mode": "exact", "limit": 10, "frecency": False})
    return any(x.get("path") == rel for x in r["results"])


def bench_latency(d, wm, tree, creates, quiet, rng):
    dirs = list_dirs(tree)
    log(f"latency: {len(dirs)} directories; {creates} creations per kind")
    # Idle round trips for a name that exists (the polling granularity).
    probe_rel = None
    for dirpath in dirs[1:]:
        for n in sorted(os.listdir(dirpath)):
            p = os.path.join(dirpath, n)
            if os.path.isfile(p) and not os.path.islink(p):
                probe_rel = os.path.relpath(p, tree)
                break
        if probe_rel:
            break
    probe = os.path.basename(probe_rel)
    idle = {"fidx query": [], "watchman": [], "watchman nosync": []}
    for _ in range(20):
        dt, _ = d.request({"op": "query", "root": tree, "q": probe,
                           "mode": "exact", "limit": 10, "frecency": False})
        idle["fidx query"].append(dt)
        dt, _ = wm.request(["query", tree, {"expression": ["name", probe],
                                            "fields": ["name"]}])
        idle["watchman"].append(dt)
        dt, _ = wm.request(["query", tree, {"expression": ["name", probe],
                                            "fields": ["name"],
                                            "sync_timeout": 0}])
        idle["watchman nosync"].append(dt)

    lat, polls = {}, {}
    made = []
    series(d, wm, tree, dirs, KINDS, creates, (0.020, 0.050), rng, lat,
           polls, made, "")
    if quiet > 0:
        series(d, wm, tree, dirs, ("fidx query", "watchman"), quiet,
               (0.150, 0.250), rng, lat, polls, made, " quiet")
    for p in made:
        os.unlink(p)
    sync(d, tree)
    return {"lat": lat, "polls": polls, "idle": idle, "dirs": len(dirs),
            "probe": probe}


def series(d, wm, tree, dirs, kinds, creates, pause, rng, lat, polls, made,
           suffix):
    """creates creations per kind, interleaved (the order rotating), each
    after a random pause in pause (seconds); lat[kind + suffix] gets the
    seconds from close() to the answer that shows the file."""
    pid = os.getpid()
    for k in kinds:
        lat[k + suffix], polls[k + suffix] = [], []
    for i in range(creates):
        for j in range(len(kinds)):
            kind = kinds[(i + j) % len(kinds)]
            time.sleep(rng.uniform(*pause))
            dirpath = rng.choice(dirs)
            tag = (kind + suffix).replace(" ", "-")
            name = f"{PREFIX}{pid}-{i:04d}-{tag}.txt"
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, tree)
            create(path)
            t0 = time.perf_counter()
            made.append(path)
            n = 0
            if kind == "fidx sync":
                sync(d, tree)
                dt = time.perf_counter() - t0
                n = 1
                if not fidx_has(d, tree, name, rel):
                    fail(f"{rel}: not in a query after its sync")
            elif kind == "fidx query":
                while True:
                    n += 1
                    found = fidx_has(d, tree, name, rel)
                    dt = time.perf_counter() - t0
                    if found:
                        break
                    if dt > POLL_DEADLINE:
                        fail(f"fidx: {rel} not found after {dt:.1f} s")
            else:
                q = {"expression": ["name", name], "fields": ["name"]}
                if kind == "watchman nosync":
                    q["sync_timeout"] = 0
                req = ["query", tree, q]
                while True:
                    n += 1
                    _, r = wm.request(req)
                    dt = time.perf_counter() - t0
                    if rel in r.get("files", ()):
                        break
                    if dt > POLL_DEADLINE:
                        fail(f"watchman: {rel} not found after {dt:.1f} s")
            lat[kind + suffix].append(dt)
            polls[kind + suffix].append(n)
        if (i + 1) % 50 == 0 or i + 1 == creates:
            log(f"latency{suffix}: {i + 1}/{creates} creations per kind")


# ---------------------------------------------------------------- part 4

class RssSampler:
    """Samples a process's VmRSS every 10 ms in a thread; max kept."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop_ev = pid, 0, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                self.peak = max(self.peak, b.proc_status(self.pid)["VmRSS"])
            except (OSError, KeyError):
                pass
            self.stop_ev.wait(0.010)

    def stop(self):
        self.stop_ev.set()
        self.t.join()
        return self.peak


def cpu_marks(pid):
    """(machine busy seconds, this process's, fidxd's CPU seconds)."""
    hz = os.sysconf("SC_CLK_TCK")
    t = os.times()
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (b.busy_jiffies() / hz, t.user + t.system,
            (int(v[11]) + int(v[12])) / hz)


def cpu_others(m0, m1):
    """CPU seconds other processes used between two cpu_marks()."""
    return max(0.0, (m1[0] - m0[0]) - (m1[1] - m0[1]) - (m1[2] - m0[2]))


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (Linux: clear_refs 5)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def wait_exact(d, tree, want, deadline_s):
    """sync + projects back to back until the project has want files;
    returns (seconds from now, syncs sent, files seen at the end)."""
    t0 = time.perf_counter()
    n = 0
    while True:
        n += 1
        sync(d, tree)
        files = project(d, tree)["files"]
        if files == want:
            return time.perf_counter() - t0, n, files
        if time.perf_counter() - t0 > deadline_s:
            return None, n, files


def counters_diff(a, b_):
    return {k: b_[k] - a[k] for k in a if isinstance(a[k], int)}


def bench_burst(d, tree, ndirs, nfiles, deadline_s):
    pid = d.pid
    sync(d, tree)
    base = project(d, tree)["files"]
    top = os.path.join(tree, f"{PREFIX}burst-{os.getpid()}")
    total = ndirs * nfiles
    res = {"base": base, "total": total, "top": os.path.relpath(top, tree)}
    for phase in ("create", "delete"):
        c0 = stats_watch(d)["counters"]
        rss0 = b.proc_status(pid)["VmRSS"]
        hwm_ok = reset_hwm(pid)
        sampler = RssSampler(pid)
        cpu0 = cpu_marks(pid)
        t0 = time.perf_counter()
        if phase == "create":
            os.mkdir(top)
            for i in range(ndirs):
                sub = os.path.join(top, f"d{i:03d}")
                os.mkdir(sub)
                for j in range(nfiles):
                    os.close(os.open(os.path.join(sub, f"f{j:04d}.c"),
                                     os.O_CREAT | os.O_WRONLY, 0o644))
            want = base + total
        else:
            shutil.rmtree(top)
            want = base
        t_made = time.perf_counter() - t0
        dt, n_sync, files = wait_exact(d, tree, want, deadline_s)
        t_exact = None if dt is None else t_made + dt
        peak = sampler.stop()
        others = cpu_others(cpu0, cpu_marks(pid))
        st = b.proc_status(pid)
        c1 = stats_watch(d)["counters"]
        _, r = d.request({"op": "query", "root": tree,
                          "q": "^" + res["top"] + "/", "mode": "regex",
                          "limit": 1})
        matched = r["matched"]
        ok_match = matched == (total if phase == "create" else 0)
        if t_exact is None:
            log(f"WARNING: burst {phase}: {files} files after "
                f"{deadline_s} s, want {want}")
        if not ok_match:
            log(f"WARNING: burst {phase}: regex matched {matched}")
        res[phase] = {"fs_s": t_made, "exact_s": t_exact, "syncs": n_sync,
                      "after_s": dt, "others_cpu": others,
                      "files": files, "want": want, "matched": matched,
                      "ok_match": ok_match, "rss0": rss0,
                      "hwm": st["VmHWM"] if hwm_ok else None,
                      "sampled": peak, "rss1": st["VmRSS"],
                      "counters": counters_diff(c0, c1)}
        log(f"burst: {phase} exact after "
            f"{'-' if t_exact is None else f'{t_exact:.2f}'} s")
    if os.path.exists(top):
        shutil.rmtree(top, ignore_errors=True)
    return res


# ---------------------------------------------------------------- part 3

def bench_change(d, large, changes, reindex_reps, rng):
    dirs = list_dirs(large)
    log(f"change: {len(dirs)} directories, {changes} changes")
    base = project(d, large)
    rows = []
    pid = os.getpid()
    path = None
    for i in range(changes):
        time.sleep(rng.uniform(0.150, 0.250))
        if path is None:
            path = os.path.join(rng.choice(dirs), f"{PREFIX}{pid}-c{i}.txt")
            create(path)
            op = "create"
        else:
            os.unlink(path)
            path = None
            op = "delete"
        t0 = time.perf_counter()
        sync(d, large)
        dt = time.perf_counter() - t0
        p = project(d, large)
        lc = p.get("last_change")
        if not lc:
            fail(f"no last_change in {p}")
        if lc["paths"] != 1:
            log(f"WARNING: change {i}: last_change has {lc['paths']} paths")
        rows.append({"op": op, "sync_s": dt, **lc})
    if path:
        os.unlink(path)
        sync(d, large)
    rebuild = []
    for i in range(reindex_reps):
        _, r = d.request({"op": "reindex", "root": large, "wait": True,
                          "timeout_ms": WAIT_MS})
        rebuild.append(r["build_ms"])
        log(f"change: reindex {i + 1}/{reindex_reps}: {r['build_ms']} ms")
    p = project(d, large)
    return {"rows": rows, "rebuild_ms": rebuild, "bytes": p["bytes"],
            "files": p["files"], "add_build_ms": base["build_ms"],
            "dirs": len(dirs)}


# ---------------------------------------------------------------- part 5

def bench_ab(old, new, tree, reps):
    here = os.path.dirname(os.path.abspath(__file__))
    cmd = [sys.executable, os.path.join(here, "daemon_ab.py"), "--old", old,
           "--new", new, "--root", tree, "--reps", str(reps),
           "--queries", os.path.join(here, "queries.txt")]
    log("a/b: " + " ".join(cmd))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if p.returncode != 0:
        return {"error": p.stderr.strip()[-2000:], "cmd": cmd}
    return {"out": p.stdout, "cmd": cmd}


# ---------------------------------------------------------------- report

def lat_row(label, s, idle=None):
    i = f"{ms(median(idle), 3)}" if idle else "—"
    return (f"| {label} | {s['n']} | {ms(s['med'], 3)} | {ms(s['p99'], 3)} "
            f"| {ms(s['max'], 3)} | {i} |")


def report(a, su, la, bu, ch, ab, noise):
    out = [a.header] if a.header else []
    targets = []
    # 1.
    t = su["times"]
    med = {k: median(v) for k, v in t.items()}
    out += ["### 1. Watch set-up", "",
            f"Tree: `{a.tree}`, {su['files']} files (`\"hidden\":true`), "
            f"{median(su['watches']):.0f} watches in fidxd. Median of "
            f"{a.rounds} rounds, order alternating, after a discarded "
            f"warm-up round; caches warm. Each fidx round is a fresh "
            f"`fidxd` (its start not timed), as each inotifywait round is "
            f"a fresh process (its start timed).", "",
            "| command | median s | min s | max s | inotifywait / this |",
            "|---|---:|---:|---:|---:|"]
    for k in ("fidx add + sync", "fidx add", "inotifywait -r"):
        label = {"fidx add + sync": "fidx `add` (`wait`) + `sync`",
                 "fidx add": "fidx `add` (`wait`) alone",
                 "inotifywait -r": "`inotifywait -r -m TREE` to "
                                   "\"Watches established.\""}[k]
        out.append(f"| {label} | {med[k]:.3f} | {min(t[k]):.3f} "
                   f"| {max(t[k]):.3f} "
                   f"| {med['inotifywait -r'] / med[k]:.2f}x |")
    ra = su["readd"]
    rc = ra["counters"]
    out += ["", "fidx's time includes what inotifywait does not do: the "
            "walk lists every file and builds the index (its `add` answers "
            "once the index is live). Kernel queue overflows during these "
            f"rounds: {su['overflows']}.", "",
            f"- The same on a daemon that had the project: `remove`, then "
            f"`add` {ra['add']:.3f} s + `sync` {ra['sync']:.3f} s (once); "
            f"meanwhile watch.counters events +{rc.get('events')}, "
            f"overflows +{rc.get('overflows')}, overflow_rebuilds "
            f"+{rc.get('overflow_rebuilds')} (the removed project's "
            f"watches each send the kernel an IN_IGNORED event, "
            f"max_queued_events is {max_queued()}; an overflow walks every project whole).", ""]
    r1 = med["fidx add + sync"] / med["inotifywait -r"]
    targets.append(
        f"{verdict(r1 <= 1.0)}  watch set-up no slower than inotifywait -r: "
        f"fidx add + sync {med['fidx add + sync']:.3f} s, inotifywait "
        f"{med['inotifywait -r']:.3f} s (fidx / inotifywait = {r1:.2f}x)")

    # 2.
    if la:
        s = {k: summary(v) for k, v in la["lat"].items()}
        idle = la["idle"]
        out += ["### 2. Creation to queryable", "",
                f"{a.creates} creations per kind, interleaved, each a new "
                f"file in a random one of the tree's {la['dirs']} "
                f"directories after a random 20-50 ms pause (quiet: "
                f"{a.quiet} more per kind after 150-250 ms); clock from "
                f"close() to the first answer that lists the file. Both "
                f"tools polled back to back over one persistent socket "
                f"each. Idle = the round trip of the same query for a "
                f"name that exists (`{la['probe']}`), median of 20.", "",
                "| kind | n | median ms | p99 ms | max ms | idle query ms |",
                "|---|---:|---:|---:|---:|---:|",
                lat_row("fidx `query` (`exact`), polled", s["fidx query"],
                        idle["fidx query"]),
                lat_row("fidx `sync` (one round trip)", s["fidx sync"]),
                lat_row("watchman `query` (`name`), polled",
                        s["watchman"], idle["watchman"]),
                lat_row("watchman `query`, `sync_timeout` 0, polled",
                        s["watchman nosync"], idle["watchman nosync"])]
        if "fidx query quiet" in s:
            out += [lat_row("quiet: fidx `query`, polled",
                            s["fidx query quiet"], idle["fidx query"]),
                    lat_row("quiet: watchman `query`, polled",
                            s["watchman quiet"], idle["watchman"])]
        out += [""]
        pm = {k: median(v) for k, v in la["polls"].items()}
        out += [f"- Queries sent per creation (median): fidx "
                f"{pm['fidx query']:.0f}, watchman {pm['watchman']:.0f}, "
                f"watchman nosync {pm['watchman nosync']:.0f}; max "
                f"{max(la['polls']['fidx query'])}, "
                f"{max(la['polls']['watchman'])}, "
                f"{max(la['polls']['watchman nosync'])}.",
                "- watchman's default query first waits for its own "
                "cookie file to come back through inotify (`sync_timeout`), "
                "so it is fresh on its first try but each try costs a "
                "cookie round trip; with `sync_timeout` 0 it answers from "
                "what it has.", ""]
        f = s["fidx query"]
        for wk in ("watchman", "watchman nosync"):
            w = s[wk]
            ok = f["med"] <= w["med"] / 2 and f["p99"] <= w["p99"] / 2
            targets.append(
                f"{verdict(ok)}  creation to queryable <= half of {wk}'s "
                f"(median and p99): fidx {ms(f['med'], 2)} / "
                f"{ms(f['p99'], 2)} ms, {wk} {ms(w['med'], 2)} / "
                f"{ms(w['p99'], 2)} ms (fidx / {wk} = "
                f"{f['med'] / w['med']:.2f}x / {f['p99'] / w['p99']:.2f}x)")
        if "fidx query quiet" in s:
            fq, wq = s["fidx query quiet"], s["watchman quiet"]
            targets.append(
                f"info  after 150-250 ms of quiet: fidx {ms(fq['med'], 2)} "
                f"/ {ms(fq['p99'], 2)} ms, watchman {ms(wq['med'], 2)} / "
                f"{ms(wq['p99'], 2)} ms (median / p99; fidx / watchman = "
                f"{fq['med'] / wq['med']:.2f}x / "
                f"{fq['p99'] / wq['p99']:.2f}x)")
        targets.append(
            f"info  fidx sync after a creation: median "
            f"{ms(s['fidx sync']['med'], 2)} ms, p99 "
            f"{ms(s['fidx sync']['p99'], 2)} ms")

    # 3.
    if ch:
        rows = ch["rows"]
        us = [r["us"] for r in rows]
        bm = [r["bytes_made"] for r in rows]
        # The reference: the fastest full build seen (reindex or the add).
        rb = min(ch["rebuild_ms"] + [ch["add_build_ms"]])
        out += ["### 3. A one-file change on a large project", "",
                f"Large tree: `{a.large}` ({a.copies} hard-linked copies, "
                f"{ch['files']} files, {ch['dirs']} directories, index "
                f"{ch['bytes']} bytes = {ch['bytes'] / MIB:.1f} MiB), fidxd "
                f"`{' '.join(LARGE_FLAGS)}`. {len(rows)} changes (a file "
                f"created, then deleted, alternately, each in a random "
                f"directory after 150-250 ms of quiet); per change the "
                f"project's `last_change` after a `sync`. Full rebuild: "
                f"`reindex` (`wait`), {len(ch['rebuild_ms'])} times "
                f"(build_ms {', '.join(str(x) for x in ch['rebuild_ms'])}; "
                f"the first `add`: {ch['add_build_ms']} ms); the reference "
                f"is the fastest of these, {rb} ms.", "",
                "| measure | one-file change, median | max | full rebuild "
                "| change / rebuild |",
                "|---|---:|---:|---:|---:|",
                f"| time in the daemon (`us` vs `build_ms`) | "
                f"{median(us):.0f} µs | {max(us)} µs | {rb * 1000:.0f} µs "
                f"| {100 * median(us) / (rb * 1000):.3f}% |",
                f"| bytes made (`bytes_made` vs index `bytes`) | "
                f"{median(bm):.0f} | {max(bm)} | {ch['bytes']} "
                f"| {100 * median(bm) / ch['bytes']:.3f}% |",
                f"| segments made / shared | "
                f"{median([r['segments_made'] for r in rows]):.0f} / "
                f"{median([r['segments_shared'] for r in rows]):.0f} | | | |",
                f"| `sync` round trip from the change (client) | "
                f"{ms(median([r['sync_s'] for r in rows]), 2)} ms | "
                f"{ms(max(r['sync_s'] for r in rows), 2)} ms | | |", ""]
        if "old_rebuild_ms" in ch:
            out += [f"- The same tree in {a.old_label}'s fidxd (no "
                    f"watcher): first `add` build_ms {ch['old_add_ms']}, "
                    f"`reindex` build_ms "
                    f"{', '.join(str(x) for x in ch['old_rebuild_ms'])} "
                    f"({ch['old_files']} files). This build's full "
                    f"rebuild is {rb / min(ch['old_rebuild_ms'] + [ch['old_add_ms']]):.1f}x "
                    f"that (fastest against fastest).", ""]
            targets.append(
                f"info  full build of the large tree: {rb} ms here, "
                f"{min(ch['old_rebuild_ms'] + [ch['old_add_ms']])} ms in "
                f"{a.old_label} (fastest of add and reindexes)")
        targets.append(
            f"{verdict(median(us) <= rb * 10)}  one-file change time <= 1% "
            f"of a full rebuild: {median(us):.0f} µs vs {rb:.0f} ms "
            f"({100 * median(us) / (rb * 1000):.3f}%)")
        targets.append(
            f"{verdict(median(bm) <= ch['bytes'] / 100)}  one-file change "
            f"bytes_made <= 1% of the index bytes: {median(bm):.0f} vs "
            f"{ch['bytes']} ({100 * median(bm) / ch['bytes']:.3f}%)")
    else:
        out += ["### 3. A one-file change on a large project", "",
                f"Skipped: {a.large_skip}", ""]
        targets.append(f"SKIP  one-file change on the large tree: "
                       f"{a.large_skip}")

    # 4.
    if bu:
        out += ["### 4. A burst of creations, then their deletion", "",
                f"{a.burst_dirs} directories x {a.burst_files} empty files "
                f"= {bu['total']} files made in a new directory "
                f"`{bu['top']}` of the small tree's project "
                f"({bu['base']} files before), os.open/close from Python; "
                f"then `rm -r` of it (shutil.rmtree). Exact = `sync` + "
                f"`projects` back to back until the project's files equal "
                f"the count wanted; then a regex query for the directory "
                f"must match the burst's count (0 after the deletion). "
                f"Others' CPU = CPU seconds the rest of the machine used "
                f"meanwhile (not this script, not fidxd).", "",
                "| phase | on disk s | exact s | after the last s | syncs "
                "| files / wanted | regex matched | RSS before MiB "
                "| peak MiB (VmHWM) | peak MiB (sampled) | RSS after MiB "
                "| others' CPU s |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for ph in ("create", "delete"):
            x = bu[ph]
            ex = "not exact" if x["exact_s"] is None else \
                f"{x['exact_s']:.2f}"
            hwm = "—" if x["hwm"] is None else f"{x['hwm'] / MIB:.1f}"
            af = "—" if x["after_s"] is None else f"{x['after_s']:.3f}"
            out.append(f"| {ph} | {x['fs_s']:.2f} | {ex} | {af} "
                       f"| {x['syncs']} "
                       f"| {x['files']} / {x['want']} | {x['matched']} "
                       f"| {x['rss0'] / MIB:.1f} | {hwm} "
                       f"| {x['sampled'] / MIB:.1f} | {x['rss1'] / MIB:.1f} "
                       f"| {x['others_cpu']:.1f} |")
        keys = ("events", "batches", "batch_paths", "coalesced",
                "overflows", "overflow_rebuilds", "batches_failed",
                "restarts", "stale")
        out += ["", "Watch counters (`stats` watch.counters), change during "
                "each phase:", "",
                "| phase | " + " | ".join(keys) + " |",
                "|---|" + "---:|" * len(keys)]
        for ph in ("create", "delete"):
            c = bu[ph]["counters"]
            out.append(f"| {ph} | " + " | ".join(str(c.get(k, "—"))
                                                 for k in keys) + " |")
        out.append("")
        for ph in ("create", "delete"):
            x = bu[ph]
            ok = x["exact_s"] is not None and x["ok_match"]
            ex = "-" if x["exact_s"] is None else f"{x['exact_s']:.2f}"
            peak = (x["hwm"] or x["sampled"]) / MIB
            targets.append(
                f"{'info' if ok else 'FAIL'}  burst {ph} of {bu['total']} "
                f"files: exact after {ex} s, peak RSS {peak:.1f} MiB")

    # 5.
    if ab is None:
        out += ["### 5. Queries against the previous commit", "",
                f"Skipped: {a.old_skip}", ""]
        targets.append(f"SKIP  query medians against {a.old_label}: "
                       f"{a.old_skip}")
    elif "error" in ab:
        out += ["### 5. Queries against the previous commit", "",
                "daemon_ab.py failed:", "", "```", ab["error"], "```", ""]
        targets.append("FAIL  query medians: daemon_ab.py failed")
    else:
        lines = ab["out"].strip().split("\n")
        summ = [x for x in lines if x.startswith("| **median")]
        per = [x for x in lines if x.startswith("- Median of per-query")]
        tline = [x for x in lines if x.startswith(("PASS", "FAIL"))]
        out += ["### 5. Queries against the previous commit", "",
                f"`bench/daemon_ab.py` (both daemons at once, {a.ab_reps} "
                f"interleaved passes of bench/queries.txt each), old = "
                f"{a.old_label} (`{a.old}`), new = `{a.fidxd}`, on "
                f"`{a.tree}`:", "",
                "| query | old ms | new ms | new / old |",
                "|---|---:|---:|---:|", *summ, "", *per, ""]
        targets += [x.replace("median query new / old",
                              f"query medians new / old ({a.old_label})")
                    for x in tline]

    out += ["### Targets", "", "```", *targets, "```", ""]
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    cpus = os.cpu_count() or 1
    out.append(f"Run: {noise['wall']:.0f} s wall. Noise: other processes "
               f"used {noise['other_cpu']:.1f} CPU-seconds during the run "
               f"({100 * noise['other_cpu'] / (noise['wall'] * cpus):.0f}% "
               f"of the machine's {cpus} CPUs); load average at the end "
               f"{load}.")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- main

def run_all(a, tmp):
    rng = random.Random(a.seed)
    sock = os.path.join(tmp, "s.sock")
    su = la = bu = ch = ab = None
    su = bench_setup(a.fidxd, sock, a.log, a.tree, a.rounds, a.timeout)
    d = b.Daemon(a.fidxd, sock, a.log)
    wm = None
    try:
        d.request({"op": "add", "root": a.tree, "wait": True,
                   "hidden": True, "timeout_ms": WAIT_MS})
        sync(d, a.tree)
        su["readd"] = bench_readd(d, a.tree)
        log(f"set-up: remove + add + sync on one daemon: "
            f"{su['readd']['add'] + su['readd']['sync']:.2f} s")
        if a.creates > 0:
            log("latency: watchman watch")
            wm = Watchman(tmp)
            t0 = time.perf_counter()
            _, r = wm.request(["watch", a.tree])
            if os.path.realpath(r.get("watch", "")) != a.tree:
                fail(f"watchman watches {r} instead of {a.tree}")
            wm.request(["query", a.tree, {"expression": ["name", "x"],
                                          "fields": ["name"]}])
            log(f"latency: watchman crawled in "
                f"{time.perf_counter() - t0:.1f} s")
            la = bench_latency(d, wm, a.tree, a.creates, a.quiet, rng)
            wm.stop()
            wm = None
        if a.burst_dirs * a.burst_files > 0:
            bu = bench_burst(d, a.tree, a.burst_dirs, a.burst_files,
                             a.timeout)
    except BaseException:
        d.kill()
        if wm:
            wm.kill()
        raise
    d.stop()
    b.unlink_quiet(sock)

    if a.large and not a.large_skip:
        log(f"change: a fresh fidxd indexes {a.large}")
        d = b.Daemon(a.fidxd, sock, a.log, LARGE_FLAGS)
        try:
            _, r = d.request({"op": "add", "root": a.large, "wait": True,
                              "hidden": True, "timeout_ms": WAIT_MS})
            log(f"change: {r['files']} files")
            sync(d, a.large)
            ch = bench_change(d, a.large, a.changes, a.reindex_reps, rng)
        except BaseException:
            d.kill()
            raise
        d.stop()
        b.unlink_quiet(sock)

    if ch and a.old and not a.old_skip:
        log(f"change: the old fidxd's full builds of {a.large}")
        d = b.Daemon(a.old, sock, a.log, LARGE_FLAGS)
        try:
            _, r = d.request({"op": "add", "root": a.large, "wait": True,
                              "hidden": True, "timeout_ms": WAIT_MS})
            ch["old_add_ms"] = project(d, a.large)["build_ms"]
            ch["old_files"] = r["files"]
            ch["old_rebuild_ms"] = []
            for _ in range(2):
                _, r = d.request({"op": "reindex", "root": a.large,
                                  "wait": True, "timeout_ms": WAIT_MS})
                ch["old_rebuild_ms"].append(r["build_ms"])
        except BaseException:
            d.kill()
            raise
        d.stop()
        b.unlink_quiet(sock)

    if a.old and not a.old_skip:
        ab = bench_ab(a.old, a.fidxd, a.tree, a.ab_reps)
    return su, la, bu, ch, ab


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", required=True, help="the small tree")
    ap.add_argument("--large", help="the large tree (part 3)")
    ap.add_argument("--large-skip", default="",
                    help="why part 3 is skipped")
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--fidxd", required=True)
    ap.add_argument("--old", help="the previous commit's fidxd (part 5)")
    ap.add_argument("--old-label", default="the previous commit")
    ap.add_argument("--old-skip", default="", help="why part 5 is skipped")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--creates", type=int, default=200)
    ap.add_argument("--quiet", type=int, default=50,
                    help="creations per kind after 150-250 ms of quiet")
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--reindex-reps", type=int, default=3)
    ap.add_argument("--burst-dirs", type=int, default=100)
    ap.add_argument("--burst-files", type=int, default=1000)
    ap.add_argument("--ab-reps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--log", default="/dev/null", help="fidxd's stderr")
    ap.add_argument("--out", help="also write the markdown report here")
    ap.add_argument("--header", default="")
    a = ap.parse_args()
    a.tree = os.path.realpath(a.tree)
    if a.large:
        a.large = os.path.realpath(a.large)
    elif not a.large_skip:
        a.large_skip = "no --large tree"
    if not a.old and not a.old_skip:
        a.old_skip = "no --old fidxd"
    for tool in ("inotifywait", "watchman"):
        if shutil.which(tool) is None:
            fail(f"missing tool: {tool}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signo, _: sys.exit(f"killed by {signo}"))
    wall0, busy0, self0 = time.monotonic(), b.busy_jiffies(), os.times()
    tmp = tempfile.mkdtemp(prefix="fidx-watch-bench-")
    try:
        parts = run_all(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    busy1, self1 = b.busy_jiffies(), os.times()
    hz = os.sysconf("SC_CLK_TCK")
    ours = sum(getattr(self1, k) - getattr(self0, k) for k in
               ("user", "system", "children_user", "children_system"))
    noise = {"other_cpu": max(0.0, (busy1 - busy0) / hz - ours),
             "wall": time.monotonic() - wall0}
    text = report(a, *parts, noise)
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
