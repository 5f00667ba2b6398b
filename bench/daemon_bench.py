#!/usr/bin/env python3
"""Benchmark fidxd over its socket against fd, find, fzy and fzf (stdlib only).

Normally called by bench/daemon.sh, which checks the tools, copies /usr once
and passes the machine/version header.

It talks to the daemon the way an editor plugin would: one persistent
connection to `fidxd --foreground --socket TMP/s.sock`, one JSON request per
line, one response per line (README "The daemon protocol"). All times are
wall clock from the client's side (time.perf_counter), request bytes built
before the clock starts and the response parsed after it stops.

Three parts on one tree (DIR):

1. Index build. A discarded warm-up round first (find, fdfind, and the
   daemon's very first `add`), so the dentry/inode caches are warm and every
   tool reads the same cached tree. Then REPS rounds, the four commands of a
   round in an order that rotates per round:
     fidx add      `remove` (not timed), then {"op":"add","root":DIR,
                   "wait":true,"hidden":true}: request to response, i.e. a
                   whole first walk of a new project until its index is live
     fidx reindex  {"op":"reindex","root":DIR,"wait":true}: a full rebuild
     fdfind        `fdfind -t f -u . DIR > /dev/null` (no ignore rules,
                   hidden files included)
     find          `find DIR -type f > /dev/null`
   Median per command; what the machine read from disk meanwhile is shown
   (a VM may drop cached directory blocks). File counts come from the
   warm-up round: fd and find list regular files only, fidx also lists
   symlinks to regular files and never enters `.git`, so counts differ by
   the tree's file symlinks.
2. Query latency. paths.txt is the daemon's file set built independently
   (`find DIR -name .git -prune -o -xtype f`, same rules as indexer/walk.c,
   relative, LC_ALL=C order); its count is checked against the daemon's.
   Each query of the query file is sent as {"op":"query","root":DIR,"q":Q,
   "limit":50} on the one connection: a warm-up pass, then QREPS passes
   (every query once per pass) -> median and p99 (nearest rank) per query
   and over all samples; the daemon's own elapsed_us is kept too. Then
   `fzy -e Q`, `fzf --filter Q` (FZF_DEFAULT_OPTS empty) with stdin
   paths.txt and `fidx --socket S --root DIR --limit 50 -- Q` (process start
   + connect + query, daemon running), stdout to /dev/null: one warm-up run
   that also counts matches, then PREPS timed runs each, interleaved.
3. Memory. A second, fresh daemon indexes DIR once and answers every query
   once; then VmRSS/VmHWM from /proc/PID/status and memory.rss_bytes from
   `stats`, against the bytes of the indexed relative paths (sum of
   lengths). The first daemon's figures after all the rebuilds of parts 1-2
   are shown too (a long-running daemon's view).

Three more on a large tree (LARGE: copies of DIR, ~1.1 M files), in a third,
fresh daemon started with LARGE_FLAGS:

4. Large tree. The first `add`, then the queries as in part 2 (LQREPS
   passes), and the memory as in part 3.
5. Responsiveness. `ping` from a connection of its own, PINGS times, each
   after a random pause of up to PING_GAP, idle; then again while another
   process sends the HEAVY slowest queries of part 4 back to back on its
   own connection -> median, p99, max.
6. Typing. A new connection sends the prefixes of TYPED (12 letters)
   TYPE_GAP apart without waiting, each {"op":"query",...,"id":i}, with
   "supersede":true on each or not; time from the last prefix sent to its
   answer, against the word sent alone the same way. TRIALS per mode,
   interleaved. A prefix answered {"ok":false,"error":{"code":"cancelled"}}
   is counted; any other error, or a cancelled last prefix, fails the run.
   A daemon that does not know `supersede` ignores it.

Targets, printed as PASS/FAIL lines: index build (fidx add median) no slower
than fdfind; median over queries of (fzy -e time / socket time) >= 10;
RSS <= 1.5 x path bytes + 8 MiB; ping p99 under load <= 5 x idle p99; the
last prefix's answer with supersede <= 1.5 x the lone query's (medians).

Exit status: 0 ran (whatever the targets say), 1 something failed.
"""
import argparse
import itertools
import json
import math
import multiprocessing
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

MIB = 1024 * 1024
MAX_PATH = 4096            # FIDX_MAX_PATH_DEFAULT: longer paths are skipped
WAIT_MS = 600000           # "timeout_ms" for add/reindex with wait
# The large tree's daemon: 8 /usr copies are ~1.12 M files, over the default
# 1 M files per project; its ~100 MiB of index fit the default 512 MiB.
# LARGE_FIDXD_FLAGS adds flags of your own, e.g. "--worker-nice 19".
LARGE_FLAGS = ("--max-files", "2M") + tuple(
    os.environ.get("LARGE_FIDXD_FLAGS", "").split())
HEAVY = 4                  # the slowest queries on the large tree: the load
PING_GAP = 0.050           # at most, seconds between an answer and a ping
TYPED = "includestdio"     # 12 letters, typed one a keystroke
TYPE_GAP = 0.030           # seconds between keystrokes


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fail(msg):
    sys.exit("FAIL: " + msg)


def read_queries(path):
    with open(path, encoding="utf-8") as f:
        lines = (line.strip() for line in f)
        return [q for q in lines if q and not q.startswith("#")]


def pct(values, p):
    """Nearest-rank percentile (p in 0..100)."""
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def ms(sec, digits=2):
    return f"{sec * 1000:.{digits}f}"


def xfmt(r):
    """A speed ratio: one decimal below 10, none above."""
    return f"{r:.1f}x" if r < 10 else f"{r:.0f}x"


def md_code(s):
    return "`" + s.replace("|", "\\|") + "`"


def proc_status(pid):
    """VmRSS and VmHWM of pid in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out


def pgpgin_kib():
    """KiB read from block devices since boot (/proc/vmstat pgpgin)."""
    with open("/proc/vmstat") as f:
        for line in f:
            if line.startswith("pgpgin "):
                return int(line.split()[1])
    return 0


def busy_jiffies():
    """CPU time spent by the whole machine (not idle, not iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)


class Conn:
    """One connection to a daemon's socket, one JSON line each way."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.s.connect(path)
        except OSError:
            self.s.close()
            raise
        self.rf = self.s.makefile("rb")

    def send(self, line):
        """Sends a request already encoded with encode()."""
        self.s.sendall(line)

    def recv(self):
        resp = self.rf.readline()
        if not resp:
            fail("fidxd closed the connection")
        return json.loads(resp)

    def request(self, obj, check=True):
        """Sends obj; returns (seconds to the response line, response)."""
        line = encode(obj)
        t0 = time.perf_counter()
        self.s.sendall(line)
        resp = self.rf.readline()
        dt = time.perf_counter() - t0
        if not resp:
            fail(f"fidxd closed the connection on {obj}")
        r = json.loads(resp)
        if check and not r.get("ok"):
            fail(f"fidxd refused {obj}: {r.get('error')}")
        return dt, r

    def close(self):
        self.rf.close()
        self.s.close()


def unlink_quiet(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def encode(obj):
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


class Daemon:
    """One fidxd child process and one persistent connection to it."""

    def __init__(self, fidxd, sock, logpath, flags=()):
        self.sock_path = sock
        self.logf = open(logpath, "ab")
        self.proc = subprocess.Popen(
            [fidxd, "--foreground", "--socket", sock, *flags],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                fail(f"fidxd exited with {self.proc.returncode} at start "
                     f"(log: {logpath})")
            try:
                self.conn = Conn(sock)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    fail(f"fidxd did not listen on {sock} within 10 s")
                time.sleep(0.01)

    def request(self, obj, check=True):
        return self.conn.request(obj, check)

    def stop(self):
        """Asks for shutdown; returns seconds from the request to its exit."""
        t0 = time.perf_counter()
        try:
            self.request({"op": "shutdown"})
        except (OSError, SystemExit):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            fail("fidxd did not exit within 10 s of shutdown")
        dt = time.perf_counter() - t0
        self.conn.close()
        self.logf.close()
        if self.proc.returncode != 0:
            log(f"WARNING: fidxd exited with {self.proc.returncode}")
        return dt

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_timed(cmd, timeout, stdin_path=None, capture=False, env=None,
              ok=(0,)):
    """Runs cmd; returns (seconds, stdout bytes or None)."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        t0 = time.perf_counter()
        try:
            p = subprocess.run(
                cmd, stdin=stdin, env=env,
                stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            fail(f"timeout after {timeout}s: {cmd}")
        except OSError as e:
            fail(f"cannot run {cmd}: {e}")
        dt = time.perf_counter() - t0
    finally:
        if stdin_path:
            stdin.close()
    if p.returncode not in ok:
        fail(f"exit {p.returncode}: {cmd}\n"
             + p.stderr.decode(errors="replace").strip())
    return dt, p.stdout


def daemon_paths(root):
    """The files fidxd indexes under root with "hidden":true (walk.c rules):
    regular files and symlinks to regular files, `.git` never entered, no
    path over MAX_PATH bytes; relative, sorted by bytes (LC_ALL=C)."""
    p = subprocess.run(
        ["find", root, "-mindepth", "1", "-name", ".git", "-prune", "-o",
         "-xtype", "f", "-printf", "%P\\0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if p.returncode not in (0, 1):
        fail(f"find {root} failed with {p.returncode}")
    paths = [x for x in p.stdout.split(b"\0") if x]
    skipped_nl = sum(1 for x in paths if b"\n" in x)
    too_long = sum(1 for x in paths if len(x) > MAX_PATH)
    paths = sorted(x for x in paths if b"\n" not in x and len(x) <= MAX_PATH)
    return paths, skipped_nl, too_long


# ---------------------------------------------------------------- part 1

def bench_index(d, root, reps, timeout):
    add = {"op": "add", "root": root, "wait": True, "hidden": True,
           "timeout_ms": WAIT_MS}
    reindex = {"op": "reindex", "root": root, "wait": True,
               "timeout_ms": WAIT_MS}
    fd_cmd = ["fdfind", "-t", "f", "-u", ".", root]
    find_cmd = ["find", root, "-type", "f"]

    # Warm-up round (discarded), also the file counts.
    log("index: warm-up (find, fdfind, first add)")
    _, out = run_timed(find_cmd, timeout, capture=True, ok=(0, 1))
    n_find = out.count(b"\n")
    _, out = run_timed(fd_cmd, timeout, capture=True, ok=(0, 1))
    n_fd = out.count(b"\n")
    first_add, r = d.request(add)
    n_fidx = r["files"]
    st = proc_status(d.pid)
    mem_first = {"vmrss": st["VmRSS"], "vmhwm": st["VmHWM"]}

    disk0 = pgpgin_kib()
    times = {k: [] for k in ("fidx add", "fidx reindex", "fdfind", "find")}
    build_ms = {"fidx add": [], "fidx reindex": []}
    order = list(times)
    for rep in range(reps):
        for tool in order[rep % 4:] + order[:rep % 4]:
            if tool == "fidx add":
                d.request({"op": "remove", "root": root})
                dt, r = d.request(add)
                if not r.get("added") or r["files"] != n_fidx:
                    fail(f"add after remove: {r}")
                _, pr = d.request({"op": "projects"})
                build_ms[tool].append(pr["projects"][0]["build_ms"])
            elif tool == "fidx reindex":
                dt, r = d.request(reindex)
                if r["files"] != n_fidx:
                    log(f"WARNING: reindex found {r['files']} files, "
                        f"add {n_fidx}")
                build_ms[tool].append(r["build_ms"])
            elif tool == "fdfind":
                dt, _ = run_timed(fd_cmd, timeout, ok=(0, 1))
            else:
                dt, _ = run_timed(find_cmd, timeout, ok=(0, 1))
            times[tool].append(dt)
        log(f"index: round {rep + 1}/{reps} done")
    disk_kib = pgpgin_kib() - disk0

    # The default (no hidden files) count, for the record; then back.
    d.request({"op": "remove", "root": root})
    _, r = d.request({"op": "add", "root": root, "wait": True,
                      "timeout_ms": WAIT_MS})
    n_fidx_default = r["files"]
    d.request({"op": "remove", "root": root})
    _, r = d.request(add)
    if r["files"] != n_fidx:
        fail(f"re-add found {r['files']} files, first add {n_fidx}")
    return {"times": times, "build_ms": build_ms, "first_add": first_add,
            "n_find": n_find, "n_fd": n_fd, "n_fidx": n_fidx,
            "n_fidx_default": n_fidx_default, "mem_first": mem_first,
            "disk_kib": disk_kib}


# ---------------------------------------------------------------- part 2

def socket_latency(d, root, queries, qreps, limit):
    """A warm-up pass, then qreps passes of every query over d's connection:
    the match counts, and per query the round trips and the daemon's own
    elapsed times, in seconds."""
    reqs = {q: {"op": "query", "root": root, "q": q, "limit": limit}
            for q in queries}
    matched = {}
    for q in queries:
        _, r = d.request(reqs[q])
        matched[q] = r["matched"]
    sock_t = {q: [] for q in queries}
    server_t = {q: [] for q in queries}
    for rep in range(qreps):
        for q in queries:
            dt, r = d.request(reqs[q])
            sock_t[q].append(dt)
            server_t[q].append(r["elapsed_us"] / 1e6)
            if r["matched"] != matched[q]:
                log(f"WARNING: {q!r} matched {r['matched']}, "
                    f"before {matched[q]}")
    log(f"queries: {qreps} socket passes done")
    return matched, sock_t, server_t


def bench_queries(d, root, queries, paths_file, fidx, sock, qreps, preps,
                  timeout, limit):
    matched, sock_t, server_t = socket_latency(d, root, queries, qreps,
                                               limit)

    env = dict(os.environ, FZF_DEFAULT_OPTS="")
    env.pop("FZF_DEFAULT_COMMAND", None)

    def cmds(q):
        return {
            "fzy": (["fzy", "-e", q], paths_file),
            "fzf": (["fzf", "--filter", q], paths_file),
            "cli": ([fidx, "--socket", sock, "--root", root, "--limit",
                     str(limit), "--", q], None),
        }

    hits = {}
    for q in queries:        # warm-up run, with the match counts
        for tool, (cmd, stdin) in cmds(q).items():
            _, out = run_timed(cmd, timeout, stdin, capture=True, env=env,
                               ok=(0, 1))
            hits[q, tool] = out.count(b"\n")
    proc_t = {(q, t): [] for q in queries for t in ("fzy", "fzf", "cli")}
    tools = ("fzy", "fzf", "cli")
    for rep in range(preps):
        order = tools[rep % 3:] + tools[:rep % 3]
        for q in queries:
            c = cmds(q)
            for tool in order:
                cmd, stdin = c[tool]
                dt, _ = run_timed(cmd, timeout, stdin, env=env, ok=(0, 1))
                proc_t[q, tool].append(dt)
        log(f"queries: process round {rep + 1}/{preps} done")
    return {"matched": matched, "sock": sock_t, "server": server_t,
            "proc": proc_t, "hits": hits}


# ---------------------------------------------------------------- part 3

def memory_of(d):
    st = proc_status(d.pid)
    _, r = d.request({"op": "stats"})
    m = r["memory"]
    return {"vmrss": st["VmRSS"], "vmhwm": st["VmHWM"],
            "stats_rss": m["rss_bytes"], "heap": m["heap_bytes"],
            "index": m["index_bytes"]}


def bench_memory_fresh(fidxd, sock, logpath, root, queries, limit):
    d = Daemon(fidxd, sock, logpath)
    try:
        after_start = proc_status(d.pid)["VmRSS"]
        dt, r = d.request({"op": "add", "root": root, "wait": True,
                           "hidden": True, "timeout_ms": WAIT_MS})
        after_add = memory_of(d)
        for q in queries:
            d.request({"op": "query", "root": root, "q": q, "limit": limit})
        after_q = memory_of(d)
    except BaseException:
        d.kill()
        raise
    stop_s = d.stop()
    return {"start": after_start, "add": after_add, "queries": after_q,
            "files": r["files"], "add_s": dt, "stop_s": stop_s}


# ---------------------------------------------------------------- parts 4-6

def path_stats(root):
    paths = daemon_paths(root)[0]
    return len(paths), sum(len(p) for p in paths)


def bench_large(d, root, queries, qreps, limit):
    """Part 4: a fresh daemon's first add of the large tree, the queries'
    latency on it, its memory after each."""
    dt, r = d.request({"op": "add", "root": root, "wait": True,
                       "hidden": True, "timeout_ms": WAIT_MS})
    if r.get("capped"):
        fail(f"the large tree was capped ({r.get('cap')}): raise "
             f"LARGE_FLAGS")
    _, pr = d.request({"op": "projects"})
    _, st = d.request({"op": "stats"})
    mem_add = memory_of(d)
    matched, sock_t, server_t = socket_latency(d, root, queries, qreps,
                                               limit)
    n_paths, path_bytes = path_stats(root)
    if n_paths != r["files"]:
        log(f"WARNING: find lists {n_paths} files under {root}, the "
            f"daemon {r['files']}")
    return {"root": root, "files": r["files"], "add_s": dt,
            "build_ms": pr["projects"][0]["build_ms"], "add": mem_add,
            "index_limit": st["limits"]["index_bytes"],
            "queries": memory_of(d), "matched": matched, "sock": sock_t,
            "server": server_t, "n_paths": n_paths, "path_bytes": path_bytes}


def load_loop(sock_path, reqs, started, stop, count):
    """The loaded client: sends reqs back to back until stop is set."""
    c = Conn(sock_path)
    for line in itertools.cycle(reqs):
        if stop.is_set():
            break
        c.send(line)
        r = c.recv()
        if not r.get("ok"):
            fail(f"load query refused: {r.get('error')}")
        count.value += 1
        started.set()
    c.close()


def ping_latency(conn, n):
    """n pings, each after a random pause: a ping sent right after the
    last answer would land at the same point of the load's queries each
    time (a daemon that answers it only between two queries makes it wait
    for a whole one)."""
    rng = random.Random(n)
    out = []
    for _ in range(n):
        time.sleep(rng.uniform(0, PING_GAP))
        dt, _ = conn.request({"op": "ping"})
        out.append(dt)
    return out


def bench_responsiveness(d, root, heavy, pings, limit):
    """Part 5: ping from one connection, idle, then while another sends the
    heavy queries back to back. The loaded client is a process of its own,
    so our GIL cannot delay a ping's reply."""
    conn = Conn(d.sock_path)
    idle = ping_latency(conn, pings)
    mp = multiprocessing.get_context("fork")
    started, stop, count = mp.Event(), mp.Event(), mp.Value("l", 0)
    reqs = [encode({"op": "query", "root": root, "q": q, "limit": limit})
            for q in heavy]
    p = mp.Process(target=load_loop, args=(d.sock_path, reqs, started,
                                           stop, count))
    p.start()
    try:
        if not started.wait(60):
            fail("the loaded client got no answer within 60 s")
        t0 = time.perf_counter()
        loaded = ping_latency(conn, pings)
        wall = time.perf_counter() - t0
        n0 = count.value
    finally:
        stop.set()
        p.join(60)
        if p.exitcode is None:
            p.kill()
    if p.exitcode != 0:
        fail(f"the loaded client exited with {p.exitcode}")
    conn.close()
    log("responsiveness done")
    return {"idle": idle, "loaded": loaded, "load_qps": n0 / wall}


def typing_trial(sock_path, root, texts, supersede, limit):
    """Sends the queries texts TYPE_GAP s apart on a new connection without
    waiting for answers; returns (seconds from the last one sent to its
    answer, queries answered `cancelled`)."""
    c = Conn(sock_path)
    lines = []
    for i, q in enumerate(texts, 1):
        req = {"op": "query", "root": root, "q": q, "limit": limit, "id": i}
        if supersede:
            req["supersede"] = True
        lines.append(encode(req))
    sent = []

    def typist():
        t0 = time.perf_counter()
        for i, line in enumerate(lines):
            time.sleep(max(0.0, t0 + i * TYPE_GAP - time.perf_counter()))
            sent.append(time.perf_counter())
            c.send(line)

    th = threading.Thread(target=typist)
    th.start()
    cancelled = 0
    for i in range(1, len(lines) + 1):
        r = c.recv()
        t = time.perf_counter()
        if r.get("id") != i:
            fail(f"typing: answer {r} out of order (expected id {i})")
        if not r.get("ok"):
            if r["error"]["code"] != "cancelled" or i == len(lines):
                fail(f"typing: {texts[i - 1]!r} refused: {r['error']}")
            cancelled += 1
    th.join()
    c.close()
    return t - sent[-1], cancelled


def bench_typing(d, root, word, trials, limit):
    """Part 6: trials of typing word with and without supersede, the two
    modes interleaved, and of the word sent alone (measured the same way)."""
    prefixes = [word[:i] for i in range(1, len(word) + 1)]
    lone = [typing_trial(d.sock_path, root, [word], False, limit)[0]
            for _ in range(trials * 2)]
    out = {False: [], True: []}
    for t in range(trials):
        for mode in ((False, True) if t % 2 == 0 else (True, False)):
            out[mode].append(typing_trial(d.sock_path, root, prefixes, mode,
                                          limit))
    log("typing done")
    return {"lone": lone, "plain": out[False], "supersede": out[True]}


# ---------------------------------------------------------------- report

def verdict(ok):
    return "PASS" if ok else "FAIL"


MEM_HEAD = ["| daemon | measure | RSS MiB | RSS / path bytes "
            "| (RSS - 8 MiB) / path bytes | target MiB | |",
            "|---|---|---:|---:|---:|---:|:-:|"]


def mem_rows(label, m, path_bytes):
    rows = []
    target = 1.5 * path_bytes + 8 * MIB
    for what, v in (("VmRSS (/proc)", m["vmrss"]),
                    ("`stats` memory.rss_bytes", m["stats_rss"])):
        rows.append(
            f"| {label} | {what} | {v / MIB:.1f} "
            f"| {v / path_bytes:.2f} | {(v - 8 * MIB) / path_bytes:.2f} "
            f"| {target / MIB:.1f} | {verdict(v <= target)} |")
    return rows


def spread(label, v, extra=""):
    """A table row of latencies: samples, median, p99, max (ms)."""
    return (f"| {label} | {len(v)} | {ms(statistics.median(v), 3)} "
            f"| {ms(pct(v, 99), 3)} | {ms(max(v), 3)} |{extra}")


def report_large(a, queries, lg, rs, ty, heavy):
    """Parts 4-6 and their target lines."""
    sock, server = lg["sock"], lg["server"]
    qmed = {q: statistics.median(sock[q]) for q in queries}
    all_sock = [x for q in queries for x in sock[q]]
    out = ["### 4. Large tree", "",
           f"Tree: `{lg['root']}`, {a.copies} hard-linked copies of the "
           f"/usr copy (`cp -al`), {lg['files']} files; a fresh "
           f"`fidxd {' '.join(LARGE_FLAGS)}` (the default `--max-files` "
           f"is 1M). First `add` (`wait`, `hidden`): {lg['add_s']:.2f} s "
           f"(`build_ms` {lg['build_ms']}). Socket: one connection, "
           f"`limit` {a.limit}, {a.lqreps} repetitions per query after a "
           f"warm-up pass.", "",
           "| query | matched | socket ms | socket p99 ms | server ms |",
           "|---|---:|---:|---:|---:|"]
    for q in queries:
        out.append(f"| {md_code(q)} | {lg['matched'][q]} "
                   f"| {ms(qmed[q], 3)} | {ms(pct(sock[q], 99), 3)} "
                   f"| {ms(statistics.median(server[q]), 3)} |")
    med_q = statistics.median(qmed.values())
    med_p99 = statistics.median(pct(sock[q], 99) for q in queries)
    med_server = statistics.median(statistics.median(server[q])
                                   for q in queries)
    out += [f"| **median over {len(queries)} queries** | "
            f"| **{ms(med_q, 3)}** | **{ms(med_p99, 3)}** "
            f"| **{ms(med_server, 3)}** |", "",
            f"- Over all {len(all_sock)} samples: median "
            f"{ms(statistics.median(all_sock), 3)} ms, p99 "
            f"{ms(pct(all_sock, 99), 3)} ms, max {ms(max(all_sock), 3)} ms.",
            "", f"Indexed path bytes: {lg['path_bytes']} "
            f"({lg['path_bytes'] / MIB:.1f} MiB, {lg['n_paths']} paths).",
            ""] + MEM_HEAD
    out += mem_rows("large, after `add`", lg["add"], lg["path_bytes"])
    out += mem_rows(f"large, after `add` + {a.lqreps + 1} passes",
                    lg["queries"], lg["path_bytes"])
    out += ["", f"- Peak (VmHWM) {lg['queries']['vmhwm'] / MIB:.1f} MiB; "
            f"index bytes (stats) {lg['queries']['index'] / MIB:.1f} MiB "
            f"of {lg['index_limit'] / MIB:.0f} MiB (`--max-index-bytes`).",
            ""]

    idle, loaded = rs["idle"], rs["loaded"]
    out += ["### 5. Responsiveness", "",
            f"`ping` from one connection (a random 0-{PING_GAP * 1000:.0f} "
            f"ms pause between an answer and the next ping), on the large tree's daemon: idle, then "
            f"while another connection (another process) sends the "
            f"{len(heavy)} slowest queries of part 4 "
            f"({', '.join(md_code(q) for q in heavy)}) back to back; it "
            f"got {rs['load_qps']:.1f} answers/s meanwhile.", "",
            "| ping | samples | median ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|",
            spread("idle", idle),
            spread("under load", loaded), ""]

    lone = ty["lone"]
    lone_med = statistics.median(lone)
    n_pre = len(TYPED)

    def typed_row(label, trials):
        last = [t for t, _ in trials]
        canc = sum(c for _, c in trials)
        return spread(label, last,
                      f" {statistics.median(last) / lone_med:.2f}x "
                      f"| {canc} of {len(trials) * n_pre} |")

    out += ["### 6. Typing", "",
            f"One connection sends the {n_pre} prefixes of "
            f"{md_code(TYPED)} {TYPE_GAP * 1000:.0f} ms apart, without "
            f"waiting for answers, on the large tree; time from the last "
            f"prefix sent to its answer, {a.trials} trials per mode, the "
            f"modes interleaved, each trial on a new connection. Lone = "
            f"the whole word sent alone, idle. Cancelled = prefixes "
            f"answered `cancelled`.", "",
            "| | samples | median ms | p99 ms | max ms | median / lone "
            "| cancelled |",
            "|---|---:|---:|---:|---:|---:|---:|",
            spread("lone query", lone, " 1.00x | |"),
            typed_row("typed, `supersede` off", ty["plain"]),
            typed_row("typed, `\"supersede\":true`", ty["supersede"]), ""]

    ping_r = pct(loaded, 99) / pct(idle, 99)
    sup = statistics.median(t for t, _ in ty["supersede"])
    plain = statistics.median(t for t, _ in ty["plain"])
    targets = [
        f"{verdict(ping_r <= 5)}  ping p99 under load <= 5x idle p99: "
        f"{ms(pct(loaded, 99), 3)} ms vs {ms(pct(idle, 99), 3)} ms "
        f"({ping_r:.1f}x)",
        f"{verdict(sup <= 1.5 * lone_med)}  last prefix with supersede "
        f"<= 1.5x the lone query: {ms(sup, 1)} ms vs {ms(lone_med, 1)} ms "
        f"({sup / lone_med:.2f}x; without supersede "
        f"{plain / lone_med:.2f}x)",
        f"info  large tree median query {ms(med_q, 3)} ms; against an "
        f"older build (target <= 1.05x), as the small tree's: "
        f"bench/daemon_ab.py"]
    return out, targets


def report(a, root, idx, qr, mem_fresh, mem_churn, n_paths, path_bytes,
           paths_note, queries, noise, large):
    out = [a.header] if a.header else []
    t = idx["times"]
    med = {k: statistics.median(v) for k, v in t.items()}

    out += ["### 1. Index build", "",
            f"Tree: `{root}`, a copy of /usr. Median of {a.reps} runs, "
            "commands interleaved (order rotating per round), after one "
            "discarded warm-up round; caches warm.", "",
            "| command | files listed | median s | min s | max s "
            "| fdfind / this | find / this |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    rows = [
        ("fidx `add` (`wait`, `hidden`)", "fidx add", idx["n_fidx"]),
        ("fidx `reindex` (`wait`)", "fidx reindex", idx["n_fidx"]),
        ("`fdfind -t f -u . DIR`", "fdfind", idx["n_fd"]),
        ("`find DIR -type f`", "find", idx["n_find"]),
    ]
    for label, k, n in rows:
        out.append(f"| {label} | {n} | {med[k]:.3f} | {min(t[k]):.3f} "
                   f"| {max(t[k]):.3f} | {med['fdfind'] / med[k]:.2f}x "
                   f"| {med['find'] / med[k]:.2f}x |")
    bm = {k: statistics.median(v) for k, v in idx["build_ms"].items()}
    out += ["",
            f"- fidx's own `build_ms` (walk + snapshot, no socket): add "
            f"median {bm['fidx add']:.0f} ms, reindex median "
            f"{bm['fidx reindex']:.0f} ms. The very first `add` of a fresh "
            f"daemon (warm-up, not in the table): "
            f"{idx['first_add']:.3f} s.",
            f"- File counts: fidx {idx['n_fidx']} with `\"hidden\":true` "
            f"({idx['n_fidx_default']} by default, hidden names skipped); "
            f"fdfind -u {idx['n_fd']}; find -type f {idx['n_find']}. fd and "
            f"find list regular files only; fidx also lists symlinks to "
            f"regular files ({idx['n_fidx'] - idx['n_find']} more here) and "
            f"never enters `.git`.",
            f"- Read from disk during the timed rounds (/proc/vmstat "
            f"pgpgin, whole machine): {idx['disk_kib'] / 1024:.1f} MiB "
            f"(more than a few MiB means the caches were not all warm: "
            f"some runs waited for the disk).",
            ""]

    # Part 2.
    sock, server, proc, hits = qr["sock"], qr["server"], qr["proc"], \
        qr["hits"]
    qmed = {q: statistics.median(sock[q]) for q in queries}
    qp99 = {q: pct(sock[q], 99) for q in queries}
    smed = {q: statistics.median(server[q]) for q in queries}
    pmed = {k: statistics.median(v) for k, v in proc.items()}
    all_sock = [x for q in queries for x in sock[q]]
    all_server = [x for q in queries for x in server[q]]
    out += ["### 2. Query latency", "",
            f"Candidates: {n_paths} relative paths ({paths_note}). "
            f"Socket: one persistent connection, `limit` 50, "
            f"{a.qreps} repetitions per query after a warm-up pass "
            f"(median, p99 = nearest rank); server = the daemon's own "
            f"`elapsed_us`. Processes (stdout to /dev/null, stdin "
            f"paths.txt for fzy/fzf): median of {a.preps} runs after a "
            f"warm-up run, interleaved. CLI = `fidx --root DIR --limit 50 "
            f"-- Q` with the daemon running.", "",
            "| query | matched fidx / fzy / fzf | socket ms | socket p99 ms "
            "| server ms | CLI ms | fzy ms | fzf ms | fzy / socket "
            "| fzf / socket |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for q in queries:
        out.append(
            f"| {md_code(q)} | {qr['matched'][q]} / {hits[q, 'fzy']} / "
            f"{hits[q, 'fzf']} | {ms(qmed[q], 3)} | {ms(qp99[q], 3)} "
            f"| {ms(smed[q], 3)} | {ms(pmed[q, 'cli'], 1)} "
            f"| {ms(pmed[q, 'fzy'], 1)} | {ms(pmed[q, 'fzf'], 1)} "
            f"| {xfmt(pmed[q, 'fzy'] / qmed[q])} "
            f"| {xfmt(pmed[q, 'fzf'] / qmed[q])} |")
    col = {t_: statistics.median(pmed[q, t_] for q in queries)
           for t_ in ("cli", "fzy", "fzf")}
    ratio = {t_: statistics.median(pmed[q, t_] / qmed[q] for q in queries)
             for t_ in ("fzy", "fzf", "cli")}
    fzy_cli = statistics.median(pmed[q, "fzy"] / pmed[q, "cli"]
                                for q in queries)
    sock_col = statistics.median(qmed.values())
    out.append(f"| **median over {len(queries)} queries** | "
               f"| **{ms(statistics.median(qmed.values()), 3)}** "
               f"| **{ms(statistics.median(qp99.values()), 3)}** "
               f"| **{ms(statistics.median(smed.values()), 3)}** "
               f"| **{ms(col['cli'], 1)}** | **{ms(col['fzy'], 1)}** "
               f"| **{ms(col['fzf'], 1)}** | **{xfmt(ratio['fzy'])}** "
               f"| **{xfmt(ratio['fzf'])}** |")
    out += ["",
            f"- Socket round trip over all {len(all_sock)} samples: median "
            f"{ms(statistics.median(all_sock), 3)} ms, p99 "
            f"{ms(pct(all_sock, 99), 3)} ms, max {ms(max(all_sock), 3)} ms "
            f"(server side: median {ms(statistics.median(all_server), 3)} "
            f"ms, p99 {ms(pct(all_server, 99), 3)} ms).",
            f"- Median of per-query ratios: fzy / socket "
            f"{ratio['fzy']:.1f}x, fzf / socket {ratio['fzf']:.1f}x, "
            f"CLI / socket {ratio['cli']:.1f}x; fzy / CLI "
            f"{fzy_cli:.1f}x. Ratio of the column medians: fzy "
            f"{col['fzy'] / sock_col:.1f}x, fzf {col['fzf'] / sock_col:.1f}x.",
            "- fzy has no multi-term syntax (a space is a literal "
            "character), so it matches nothing on the multi-word queries; "
            "fzf and fzy sort and print every match, fidx returns its top "
            "50.", ""]

    # Part 3.
    target = 1.5 * path_bytes + 8 * MIB
    f_add, f_q = mem_fresh["add"], mem_fresh["queries"]
    out += ["### 3. Memory", "",
            f"Indexed path bytes (sum of the {n_paths} relative path "
            f"lengths): {path_bytes} ({path_bytes / MIB:.1f} MiB). Target: "
            f"RSS <= 1.5 x path bytes + 8 MiB = {target / MIB:.1f} MiB.", "",
            ] + MEM_HEAD
    out += mem_rows("fresh, after `add`", f_add, path_bytes)
    out += mem_rows(f"fresh, after `add` + {len(queries)} queries", f_q,
                    path_bytes)
    out += mem_rows("benchmark daemon, end of parts 1-2", mem_churn,
                    path_bytes)
    out += ["",
            f"- Fresh daemon: {mem_fresh['start'] / MIB:.1f} MiB before "
            f"any project; peak (VmHWM) {f_q['vmhwm'] / MIB:.1f} MiB; "
            f"index bytes (stats) {f_q['index'] / MIB:.1f} MiB; malloc "
            f"heap in use {f_q['heap'] / MIB:.1f} MiB; "
            f"{mem_fresh['files']} files.",
            f"- Benchmark daemon after {a.reps + 3} adds, {a.reps} "
            f"reindexes and {(a.qreps + 1) * len(queries)} socket + "
            f"{(a.preps + 1) * len(queries)} CLI queries: peak (VmHWM) "
            f"{mem_churn['vmhwm'] / MIB:.1f} MiB, malloc heap in use "
            f"{mem_churn['heap'] / MIB:.1f} MiB, index bytes "
            f"{mem_churn['index'] / MIB:.1f} MiB. Right after its first "
            f"add: VmRSS {idx['mem_first']['vmrss'] / MIB:.1f} MiB. "
            f"RSS minus malloc heap in use: fresh "
            f"{(f_q['vmrss'] - f_q['heap']) / MIB:.1f} MiB, benchmark "
            f"daemon {(mem_churn['vmrss'] - mem_churn['heap']) / MIB:.1f} "
            f"MiB (a growth with the same heap in use is memory freed but "
            f"kept by malloc).",
            ""]

    large_out, large_targets = report_large(a, queries, **large)
    out += large_out

    # Targets.
    fd_ratio = med["fdfind"] / med["fidx add"]
    rss = max(f_q["vmrss"], f_q["stats_rss"])
    rss_churn = max(mem_churn["vmrss"], mem_churn["stats_rss"])
    out += ["### Targets", "", "```",
            f"{verdict(fd_ratio >= 1.0)}  index build no slower than fdfind:"
            f" fidx add {med['fidx add']:.3f} s, fdfind "
            f"{med['fdfind']:.3f} s (fdfind / fidx = {fd_ratio:.2f}x)",
            f"{verdict(ratio['fzy'] >= 10)}  median query over the socket "
            f">= 10x faster than fzy -e: {ratio['fzy']:.1f}x (median of "
            f"per-query ratios)",
            f"{verdict(rss <= target)}  RSS <= 1.5 x path bytes + 8 MiB "
            f"(fresh daemon, indexed + queried): {rss / MIB:.1f} MiB vs "
            f"{target / MIB:.1f} MiB",
            f"{verdict(rss_churn <= target)}  the same for the benchmark "
            f"daemon after its rebuilds: {rss_churn / MIB:.1f} MiB vs "
            f"{target / MIB:.1f} MiB",
            *large_targets, "```", ""]
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    cpus = os.cpu_count() or 1
    out.append(f"Run: {noise['wall']:.0f} s wall. Noise: other processes "
               f"used {noise['other_cpu']:.1f} CPU-seconds during the run "
               f"({100 * noise['other_cpu'] / (noise['wall'] * cpus):.0f}% "
               f"of the machine's {cpus} CPUs; anything above a few "
               f"percent means the figures are noisier than usual); load "
               f"average at the end {load}. The fresh fidxd shut down "
               f"{ms(mem_fresh['stop_s'], 1)} ms after `shutdown`.")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True, help="tree to index")
    ap.add_argument("--queries", required=True)
    ap.add_argument("--fidxd", required=True)
    ap.add_argument("--fidx", required=True)
    ap.add_argument("--paths-out", required=True,
                    help="where paths.txt is written")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--qreps", type=int, default=20)
    ap.add_argument("--preps", type=int, default=5)
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--large-root", required=True,
                    help="the large tree (parts 4-6)")
    ap.add_argument("--copies", type=int, default=8,
                    help="/usr copies in it, for the report")
    ap.add_argument("--lqreps", type=int, default=10)
    ap.add_argument("--pings", type=int, default=200)
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--log", default="/dev/null", help="fidxd's stderr")
    ap.add_argument("--out", help="also write the markdown report here")
    ap.add_argument("--header", default="")
    a = ap.parse_args()

    root = os.path.realpath(a.root)
    queries = read_queries(a.queries)
    if not queries:
        fail("no queries in " + a.queries)
    for tool in ("fdfind", "find", "fzf", "fzy"):
        if shutil.which(tool) is None:
            fail(f"missing tool: {tool}")

    # A kill or hang-up ends the run through the clean-up paths below
    # (no daemon left behind).
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signo, _: sys.exit(f"killed by {signo}"))
    wall0, busy0, self0 = time.monotonic(), busy_jiffies(), os.times()
    tmp = tempfile.mkdtemp(prefix="fidx-bench-")   # mode 0700
    try:
        text = run_all(a, root, queries, tmp, wall0, busy0, self0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)


def run_all(a, root, queries, tmp, wall0, busy0, self0):
    sock = os.path.join(tmp, "s.sock")
    d = Daemon(a.fidxd, sock, a.log)
    try:
        idx = bench_index(d, root, a.reps, a.timeout)

        paths, n_nl, n_long = daemon_paths(root)
        with open(a.paths_out, "wb") as f:
            f.writelines(p + b"\n" for p in paths)
        path_bytes = sum(len(p) for p in paths)
        note = ("`find DIR -name .git -prune -o -xtype f`, LC_ALL=C order, "
                "in " + a.paths_out)
        if n_nl or n_long:
            note += (f"; left out: {n_nl} with a newline, {n_long} over "
                     f"{MAX_PATH} bytes")
        if len(paths) == idx["n_fidx"]:
            note += f"; same count as the daemon's {idx['n_fidx']} files"
        else:
            note += (f"; COUNT DIFFERS from the daemon's {idx['n_fidx']} "
                     f"files")
            log(f"WARNING: paths.txt has {len(paths)} paths, the daemon "
                f"{idx['n_fidx']} files")
        log(f"{len(paths)} paths, {path_bytes} bytes in {a.paths_out}")

        qr = bench_queries(d, root, queries, a.paths_out, a.fidx, sock,
                           a.qreps, a.preps, a.timeout, a.limit)
        mem_churn = memory_of(d)
    except BaseException:
        d.kill()
        raise
    d.stop()
    unlink_quiet(sock)

    log("memory: fresh daemon")
    mem_fresh = bench_memory_fresh(a.fidxd, sock, a.log, root, queries,
                                   a.limit)
    unlink_quiet(sock)

    log(f"large tree: a fresh daemon indexes {a.large_root}")
    large_root = os.path.realpath(a.large_root)
    d = Daemon(a.fidxd, sock, a.log, LARGE_FLAGS)
    try:
        lg = bench_large(d, large_root, queries, a.lqreps, a.limit)
        meds = {q: statistics.median(lg["sock"][q]) for q in queries}
        heavy = sorted(queries, key=meds.get)[-HEAVY:]
        rs = bench_responsiveness(d, large_root, heavy, a.pings, a.limit)
        ty = bench_typing(d, large_root, TYPED, a.trials, a.limit)
    except BaseException:
        d.kill()
        raise
    d.stop()
    large = {"lg": lg, "rs": rs, "ty": ty, "heavy": heavy}

    # Other processes' CPU: the machine's busy time minus ours (this
    # script, and its children: the tools and both daemons, all waited).
    busy1, self1 = busy_jiffies(), os.times()
    hz = os.sysconf("SC_CLK_TCK")
    ours = sum(getattr(self1, k) - getattr(self0, k) for k in
               ("user", "system", "children_user", "children_system"))
    noise = {"other_cpu": max(0.0, (busy1 - busy0) / hz - ours),
             "wall": time.monotonic() - wall0}
    return report(a, root, idx, qr, mem_fresh, mem_churn, len(paths),
                  path_bytes, note, queries, noise, large)


if __name__ == "__main__":
    main()
