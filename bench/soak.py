#!/usr/bin/env python3
"""Soak fidxd: a real daemon under every kind of load at once, for a set time.

Normally called by bench/soak.sh, which makes the tree and passes the
machine/version header. Python 3 standard library only; requests are JSON
lines on persistent connections as in bench/daemon_bench.py (whose helpers
this imports).

One `fidxd --foreground --socket TMP/s.sock --max-git-projects 4
--max-visits 200 --max-visits-per-project 50` (XDG_STATE_HOME in TMP, so
its visit store is private) indexes TREE ("hidden":true) and REPOS small
git repositories made with the `git` command in TMP. Then, for SECONDS,
these threads run at once, each on its own connection(s):

  reindex   {"op":"reindex","root":TREE,"wait":true} back to back, 0.5 s
            apart: a full walk of TREE, a new snapshot swapped in;
  churn     every 10-40 ms one change in TREE under the watcher: a file
            made, renamed (in place or into another directory) or deleted,
            a directory of 1-20 files made, moved or deleted (at most 200
            files and 30 directories of its own alive);
  query xN  CLIENTS connections, each typing a query of bench/queries.txt:
            its prefixes sent 20-40 ms apart with "supersede":true, then
            every answer read; each must be ok or `cancelled`, the last
            one ok, in order (ids);
  abrupt    connections closed without warning: half a request line then
            close; a query for every file ("q":"", "limit":10000, ~1 MB of
            answer) then close without reading; the same after reading
            4 KiB; connect and close at once; 50-150 ms apart;
  git       {"op":"git","root":R} round robin over the REPOS repositories
            (more than the 4 the git cache holds), 20-60 ms apart, while
            their files are written, untracked files made and removed, and
            every 25th change committed;
  visit     {"op":"visit","root":R,"path":ABS} over 3,000 distinct files of
            TREE and every file of the repositories (the store holds 200),
            every 20 ms;
  spot      every 1.5 s a correctness check, the four kinds in turn:
              file    a uniquely named file made in a random directory of
                      TREE, `sync`, an exact query for its name must list
                      it; deleted, `sync`, the query must not;
              rename  made, `sync`, listed; renamed, `sync`, only the new
                      name listed; deleted, `sync`, neither;
              dir     a directory with 3 files made, `sync`, its files
                      listed; moved into another directory, `sync`, listed
                      only at the new place; removed, `sync`, none;
              git     an untracked file made in a repository, {"op":"git",
                      "max_age_ms":0} must list it as `??`; deleted, the
                      same must not;
  rss       VmRSS of fidxd from /proc/PID/status every second;
  stats     {"op":"stats"} every 5 s: heap, malloc's arena and free
            bytes, index, walk transient, client buffer, watcher, git
            cache and visit store bytes, watches and stale watches, and
            their least-squares slopes after warm-up (where growth, if
            any, comes from);
  smaps     /proc/PID/smaps summed by kind of mapping (malloc's main heap,
            its other arenas, other anonymous maps, files) at warm-up and
            every 30 s, the first and last shown: which kind grows.
--skip LOADS (SOAK_SKIP in soak.sh) leaves loads out (reindex, churn,
query, abrupt, git, visit, spot), to tell which one grows memory.

After SECONDS every thread stops; the daemon must be alive and answer
`ping`; a `stats` snapshot is kept; the files left by the churn are
removed, then `sync`, and the project's file count must be the count at
the start again and an exact query for `fidxs-` must match nothing (one
more spot check); then `shutdown`, and fidxd's stderr is searched for
sanitizer reports and lines saying error.

Daemon errors (not the client's fault): an answer {"ok":false} whose code
none of our requests provokes (`cancelled` is expected for a superseded
query; `busy` is counted apart), a connection the daemon closed under a
client that did nothing wrong, an answer out of order, a spot check's
request refused. The abrupt clients provoke nothing visible to them.

RSS: warm-up is the first min(20% of SECONDS, 60 s). "RSS at warm-up" is
the median of the samples in a window of max(10 s, 10% of SECONDS)
centred on that mark, "RSS at the end" the median of the samples in the
last such window (a rebuild holds two snapshots and a walk's arena for a
moment, so single samples saw-tooth by a third); the floors, those
windows' least samples, are shown too; the peak is the largest sample;
the slope is a least-squares line through every sample after warm-up, in
bytes per minute.

Targets, printed as PASS/FAIL (never an exit status): slope after warm-up
under 100 KiB/min; end RSS within 5% of warm-up; every spot check
correct; zero daemon errors; the daemon alive at the end and exit 0 on
shutdown; no sanitizer or error line on its stderr; the visit store and
the git cache within their caps.

Exit status: 0 ran (whatever the targets say), 1 something failed.
"""
import argparse
import collections
import json
import os
import random
import re
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
from daemon_bench import fail, log, verdict   # noqa: E402

KIB = 1024
MIB = 1024 * 1024
PREFIX = "fidxs-"          # every file and directory this benchmark makes
WAIT_MS = b.WAIT_MS
SYNC_MS = 60000
FLAGS = ("--max-git-projects", "4", "--max-visits", "200",
         "--max-visits-per-project", "50")
SLOPE_MAX = 100 * KIB      # bytes per minute
END_WITHIN = 0.05
VISIT_FILES = 3000
MAX_CHURN_FILES = 200
MAX_CHURN_DIRS = 30
SPOT_GAP = 1.5
# What --skip (SOAK_SKIP) can leave out, to tell which load grows memory.
LOADS = ("reindex", "churn", "query", "abrupt", "git", "visit", "spot")
# Lines of fidxd's stderr that fail the check.
BAD_LOG = re.compile(r"sanitizer|runtime error|leak|SUMMARY:|error|abort"
                     r"|assert|segv|double free|heap-use", re.I)


class Lost(Exception):
    """The daemon closed a connection under us."""


class Client:
    """One connection: JSON lines out, JSON lines in, EOF raises Lost."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(900)
        self.s.connect(path)
        self.rf = self.s.makefile("rb")

    def send(self, obj):
        self.s.sendall(b.encode(obj))

    def recv(self):
        line = self.rf.readline()
        if not line:
            raise Lost("connection closed by fidxd")
        return json.loads(line)

    def request(self, obj):
        self.send(obj)
        return self.recv()

    def close(self):
        try:
            self.rf.close()
            self.s.close()
        except OSError:
            pass


class Soak:
    """What every thread shares: counters, errors, spot results."""

    def __init__(self, a, tree, repos):
        self.a, self.tree, self.repos = a, tree, repos
        self.sock = a.sock
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.n = collections.Counter()
        self.errors = []            # (seconds, where, what): daemon's fault
        self.n_errors = 0
        self.spots = collections.Counter()   # kind -> checks passed
        self.spot_fail = []         # (seconds, kind, what)
        self.busy = collections.Counter()
        self.reindex_ms = []
        self.smaps = []             # (seconds, smaps_sum())
        self.t0 = time.monotonic()

    def now(self):
        return time.monotonic() - self.t0

    def count(self, key, n=1):
        with self.lock:
            self.n[key] += n

    def error(self, where, what):
        with self.lock:
            self.n_errors += 1
            if len(self.errors) < 40:
                self.errors.append((self.now(), where, str(what)[:300]))
        log(f"DAEMON ERROR at {self.now():.1f} s in {where}: "
            f"{str(what)[:300]}")

    def answer(self, where, req, r, expect=()):
        """Classifies an answer: None if ok, else its code (counted)."""
        if r.get("ok"):
            return None
        code = (r.get("error") or {}).get("code", "?")
        if code in expect:
            self.count(f"{where}: {code}")
        elif code == "busy":
            with self.lock:
                self.busy[where] += 1
        else:
            self.error(where, f"{code} for {json.dumps(req)[:150]}: "
                       f"{r.get('error')}")
        return code

    def spot(self, kind, ok, what=""):
        with self.lock:
            if ok:
                self.spots[kind] += 1
            else:
                self.spot_fail.append((self.now(), kind, what))
        if not ok:
            log(f"SPOT CHECK FAILED at {self.now():.1f} s ({kind}): {what}")


def worker(s, name, body):
    """Runs body(s, client) until stop; a lost connection is the daemon's
    error, then a new connection is made (if the daemon still listens)."""
    def run():
        while not s.stop.is_set():
            try:
                c = Client(s.sock)
            except OSError as e:
                s.error(name, f"cannot connect: {e}")
                s.stop.wait(1.0)
                continue
            try:
                body(s, c)
                return
            except (Lost, OSError, ValueError) as e:
                if not s.stop.is_set():
                    s.error(name, f"{type(e).__name__}: {e}")
                    s.stop.wait(0.2)
            finally:
                c.close()
    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    return t


# ---------------------------------------------------------------- workers

def reindexer(s, c):
    while not s.stop.is_set():
        req = {"op": "reindex", "root": s.tree, "wait": True,
               "timeout_ms": WAIT_MS}
        r = c.request(req)
        if s.answer("reindex", req, r) is None:
            s.count("reindexes")
            if isinstance(r.get("build_ms"), (int, float)):
                with s.lock:
                    s.reindex_ms.append(r["build_ms"])
        s.stop.wait(0.5)


class Churn:
    """Files and directories of our own made, moved and deleted in TREE."""

    def __init__(self, s, dirs, rng):
        self.s, self.dirs, self.rng = s, dirs, rng
        self.files, self.mydirs, self.seq = [], [], 0

    def name(self, kind):
        self.seq += 1
        return f"{PREFIX}{kind}{os.getpid()}-{self.seq}"

    def step(self):
        rng, s = self.rng, self.s
        r = rng.random()
        try:
            if r < 0.30 and len(self.files) < MAX_CHURN_FILES:
                p = os.path.join(rng.choice(self.dirs), self.name("f"))
                with open(p, "w") as f:
                    f.write("soak\n")
                self.files.append(p)
                s.count("churn: file made")
            elif r < 0.50 and self.files:
                i = rng.randrange(len(self.files))
                old = self.files[i]
                d = (os.path.dirname(old) if rng.random() < 0.5
                     else rng.choice(self.dirs))
                new = os.path.join(d, self.name("f"))
                os.rename(old, new)
                self.files[i] = new
                s.count("churn: file renamed")
            elif r < 0.75 and self.files:
                os.unlink(self.files.pop(rng.randrange(len(self.files))))
                s.count("churn: file deleted")
            elif r < 0.85 and len(self.mydirs) < MAX_CHURN_DIRS:
                d = os.path.join(rng.choice(self.dirs), self.name("d"))
                os.mkdir(d)
                for k in range(rng.randint(1, 20)):
                    with open(os.path.join(d, f"{PREFIX}{k}.txt"), "w") as f:
                        f.write("soak\n")
                self.mydirs.append(d)
                s.count("churn: directory made")
            elif r < 0.92 and self.mydirs:
                i = rng.randrange(len(self.mydirs))
                new = os.path.join(rng.choice(self.dirs), self.name("d"))
                os.rename(self.mydirs[i], new)
                self.mydirs[i] = new
                s.count("churn: directory moved")
            elif self.mydirs:
                shutil.rmtree(self.mydirs.pop(
                    rng.randrange(len(self.mydirs))))
                s.count("churn: directory deleted")
        except OSError as e:
            s.count("churn: filesystem error")
            log(f"churn: {e}")

    def run(self):
        while not self.s.stop.is_set():
            self.step()
            self.s.stop.wait(self.rng.uniform(0.010, 0.040))


def querier(words, seed):
    def body(s, c):
        rng = random.Random(seed)
        seq = 0
        while not s.stop.is_set():
            w = rng.choice(words)
            n = rng.randint(2, min(len(w), 12)) if len(w) > 2 else len(w)
            sent = []
            for k in range(1, n + 1):
                seq += 1
                req = {"id": seq, "op": "query", "root": s.tree,
                       "q": w[:k], "limit": 20, "supersede": True}
                c.send(req)
                sent.append(req)
                s.count("queries sent")
                if k < n:
                    time.sleep(rng.uniform(0.020, 0.040))
            for i, req in enumerate(sent):
                r = c.recv()
                if r.get("id") != req["id"]:
                    s.error("query", f"answer id {r.get('id')} for request "
                            f"{req['id']} (out of order)")
                    raise Lost("out of order")
                last = i == len(sent) - 1
                code = s.answer("query", req, r,
                                () if last else ("cancelled",))
                if code is None:
                    s.count("queries answered")
            s.stop.wait(rng.uniform(0.0, 0.1))
    return body


def abrupt(s, rng):
    big = b.encode({"op": "query", "root": s.tree, "q": "", "limit": 10000})
    half = b.encode({"op": "query", "root": s.tree, "q": "lib",
                     "limit": 20})
    kinds = ("half line", "no read", "partial read", "connect only")
    i = 0
    while not s.stop.is_set():
        kind = kinds[i % len(kinds)]
        i += 1
        try:
            x = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            x.settimeout(30)
            x.connect(s.sock)
            if kind == "half line":
                x.sendall(half[:rng.randint(1, len(half) - 2)])
            elif kind == "no read":
                x.sendall(big)
            elif kind == "partial read":
                x.sendall(big)
                got = 0
                while got < 4096:
                    chunk = x.recv(4096 - got)
                    if not chunk:
                        s.error("abrupt", "closed before 4 KiB of answer")
                        break
                    got += len(chunk)
            x.close()
            s.count(f"abrupt: {kind}")
        except OSError as e:
            s.error("abrupt", f"{kind}: {e}")
        s.stop.wait(rng.uniform(0.050, 0.150))


def git(args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_repos(tmp, n):
    out = []
    for i in range(n):
        r = os.path.join(tmp, "git", f"repo{i}")
        os.makedirs(os.path.join(r, "src"))
        os.makedirs(os.path.join(r, "doc"))
        git(["init", "-q", "-b", "main"], r)
        for k in range(12):
            sub = ("src", "doc")[k % 2]
            with open(os.path.join(r, sub, f"file{k}.txt"), "w") as f:
                f.write(f"repo {i} file {k}\n")
        git(["add", "-A"], r)
        git(["-c", "user.name=soak", "-c", "user.email=soak@example.invalid",
             "commit", "-q", "-m", "init"], r)
        out.append(r)
    return out


def tracked(repo):
    return [os.path.join(repo, sub, f"file{k}.txt")
            for k, sub in ((k, ("src", "doc")[k % 2]) for k in range(12))]


def gitter(seed):
    def body(s, c):
        rng = random.Random(seed)
        untracked = collections.defaultdict(list)
        i = 0
        while not s.stop.is_set():
            root = s.repos[i % len(s.repos)]
            i += 1
            req = {"op": "git", "root": root}
            r = c.request(req)
            if s.answer("git", req, r) is None:
                s.count("git answered")
                if "counts" not in r or "files" not in r:
                    s.error("git", f"answer without counts/files: {r}")
            # One change in a random repository.
            repo = rng.choice(s.repos)
            x = rng.random()
            try:
                if i % 25 == 0:
                    for p in untracked[repo]:
                        git(["add", "--", p], repo)
                    untracked[repo] = []
                    git(["-c", "user.name=soak",
                         "-c", "user.email=soak@example.invalid",
                         "commit", "-q", "-a", "--allow-empty",
                         "-m", f"soak {i}"], repo)
                    s.count("git: commits")
                elif x < 0.5:
                    with open(rng.choice(tracked(repo)), "a") as f:
                        f.write(f"change {i}\n")
                    s.count("git: tracked file written")
                elif x < 0.8 or not untracked[repo]:
                    p = os.path.join(repo, "src", f"{PREFIX}u{i}.txt")
                    with open(p, "w") as f:
                        f.write("untracked\n")
                    untracked[repo].append(p)
                    s.count("git: untracked file made")
                else:
                    lst = untracked[repo]
                    os.unlink(lst.pop(rng.randrange(len(lst))))
                    s.count("git: untracked file deleted")
            except (OSError, subprocess.CalledProcessError) as e:
                s.count("git: change failed")
                log(f"git churn: {e}")
            s.stop.wait(rng.uniform(0.020, 0.060))
    return body


def visiter(targets, seed):
    def body(s, c):
        rng = random.Random(seed)
        order = list(targets)
        rng.shuffle(order)
        i = 0
        while not s.stop.is_set():
            root, path = order[i % len(order)]
            i += 1
            req = {"op": "visit", "root": root, "path": path}
            r = c.request(req)
            if s.answer("visit", req, r) is None:
                s.count("visits answered")
                if not isinstance(r.get("frecency"), (int, float)):
                    s.error("visit", f"answer without frecency: {r}")
            s.stop.wait(0.020)
    return body


# ---------------------------------------------------------------- spot

class Spot:
    def __init__(self, s, c, dirs, rng):
        self.s, self.c, self.dirs, self.rng = s, c, dirs, rng
        self.seq = 0

    def req(self, obj, where):
        """A request that must succeed (busy: tried again)."""
        while True:
            r = self.c.request(obj)
            code = self.s.answer(where, obj, r)
            if code is None:
                return r
            if code != "busy":
                return None
            time.sleep(0.05)

    def sync(self):
        return self.req({"op": "sync", "root": self.s.tree,
                         "timeout_ms": SYNC_MS}, "spot sync") is not None

    def listed(self, name):
        """Paths (relative) an exact query for name returns, or None."""
        r = self.req({"op": "query", "root": self.s.tree, "q": name,
                      "mode": "exact", "limit": 50}, "spot query")
        if r is None:
            return None
        return {x.get("path") for x in r.get("results", [])}

    def uniq(self, kind):
        self.seq += 1
        return (f"{PREFIX}spot{kind}{os.getpid()}x{self.seq:06d}"
                f"q{self.rng.randrange(16 ** 6):06x}")

    def rel(self, p):
        return os.path.relpath(p, self.s.tree)

    def expect(self, kind, step, name, want, absent=()):
        """After a sync: the exact query for name lists every path of
        want and none of absent."""
        if not self.sync():
            self.s.spot(kind, False, f"{step}: sync refused")
            return False
        got = self.listed(name)
        if got is None:
            self.s.spot(kind, False, f"{step}: query refused")
            return False
        miss = [p for p in want if p not in got]
        extra = [p for p in absent if p in got]
        if miss or extra:
            self.s.spot(kind, False, f"{step}: missing {miss}, still "
                        f"listed {extra} (query {name!r} gave "
                        f"{sorted(got)[:5]})")
            return False
        return True

    def check_file(self):
        name = self.uniq("f")
        p = os.path.join(self.rng.choice(self.dirs), name)
        with open(p, "w") as f:
            f.write("spot\n")
        ok = self.expect("file", "made", name, [self.rel(p)])
        os.unlink(p)
        ok = self.expect("file", "deleted", name, [], [self.rel(p)]) and ok
        if ok:
            self.s.spot("file", True)

    def check_rename(self):
        name = self.uniq("r")
        p = os.path.join(self.rng.choice(self.dirs), name)
        with open(p, "w") as f:
            f.write("spot\n")
        ok = self.expect("rename", "made", name, [self.rel(p)])
        q = os.path.join(self.rng.choice(self.dirs), name + "moved")
        os.rename(p, q)
        ok = self.expect("rename", "renamed", name, [self.rel(q)],
                         [self.rel(p)]) and ok
        os.unlink(q)
        ok = self.expect("rename", "deleted", name, [],
                         [self.rel(p), self.rel(q)]) and ok
        if ok:
            self.s.spot("rename", True)

    def check_dir(self):
        name = self.uniq("d")
        d = os.path.join(self.rng.choice(self.dirs), name)
        os.mkdir(d)
        files = [f"{name}-{k}.c" for k in range(3)]
        for f in files:
            with open(os.path.join(d, f), "w") as fh:
                fh.write("spot\n")
        at = [self.rel(os.path.join(d, f)) for f in files]
        ok = self.expect("dir", "made", name, at)
        e = os.path.join(self.rng.choice(self.dirs), name + "moved")
        os.rename(d, e)
        at2 = [self.rel(os.path.join(e, f)) for f in files]
        ok = self.expect("dir", "moved", name, at2, at) and ok
        shutil.rmtree(e)
        ok = self.expect("dir", "removed", name, [], at + at2) and ok
        if ok:
            self.s.spot("dir", True)

    def git_files(self, repo):
        r = self.req({"op": "git", "root": repo, "max_age_ms": 0},
                     "spot git")
        if r is None:
            return None, None
        return ({(x.get("path"), x.get("index"), x.get("worktree"))
                 for x in r.get("files", [])}, r.get("age_ms"))

    def check_git(self):
        repo = self.rng.choice(self.s.repos)
        name = self.uniq("g") + ".txt"
        p = os.path.join(repo, name)
        with open(p, "w") as f:
            f.write("spot\n")
        got, age = self.git_files(repo)
        ok = True
        if got is None or (name, "?", "?") not in got:
            self.s.spot("git", False, f"made: {name} not untracked in "
                        f"{repo} (max_age_ms 0, answered age_ms {age}): "
                        f"{sorted(got or [])[:6]}")
            ok = False
        os.unlink(p)
        got, age = self.git_files(repo)
        if got is None or any(x[0] == name for x in got):
            self.s.spot("git", False, f"deleted: {name} still listed in "
                        f"{repo} (max_age_ms 0, answered age_ms {age})")
            ok = False
        if ok:
            self.s.spot("git", True)

    def run(self):
        kinds = (self.check_file, self.check_rename, self.check_dir,
                 self.check_git)
        i = 0
        while not self.s.stop.is_set():
            kinds[i % len(kinds)]()
            i += 1
            self.s.stop.wait(SPOT_GAP)


def spotter(dirs, seed):
    def body(s, c):
        Spot(s, c, dirs, random.Random(seed)).run()
    return body


# ---------------------------------------------------------------- rss

def proc_rss(pid):
    """VmRSS, RssAnon, RssFile of pid in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0]) * 1024
    return out


def sampler(s, pid, samples, parts):
    def run():
        nxt = time.monotonic()
        while not s.stop.is_set():
            try:
                st = proc_rss(pid)
                samples.append((s.now(), st["VmRSS"]))
                parts.append((s.now(), st.get("RssAnon", 0),
                              st.get("RssFile", 0)))
            except (OSError, KeyError):
                s.error("rss", f"fidxd (pid {pid}) is gone")
                s.stop.set()
                return
            nxt += 1.0
            s.stop.wait(max(0.0, nxt - time.monotonic()))
    t = threading.Thread(target=run, name="rss", daemon=True)
    t.start()
    return t


def smaps_sum(pid):
    """/proc/PID/smaps summed by kind of mapping: kind -> [Rss, Private
    dirty, mappings] in bytes. Kinds: heap (brk, malloc's main arena),
    arena (anonymous mappings of 64 MiB reserved: the other malloc
    arenas), stack, anon (other anonymous: mmapped blocks, thread
    stacks), file (mapped files and libraries)."""
    out = collections.defaultdict(lambda: [0, 0, 0])
    kind = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if not head:
                continue
            if "-" in head[0] and not head[0].endswith(":"):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                name = head[5] if len(head) > 5 else ""
                if name == "[heap]":
                    kind = "heap"
                elif name.startswith("[stack"):
                    kind = "stack"
                elif name.startswith("["):
                    kind = "other"
                elif name:
                    kind = "file"
                else:
                    # glibc's non-main arenas reserve HEAP_MAX_SIZE (64 MiB)
                    # aligned to it; what is in use is the readable part,
                    # the rest is a PROT_NONE neighbour in the same 64 MiB.
                    kind = "arena" if lo % (64 * MIB) == 0 or \
                        hi % (64 * MIB) == 0 else "anon"
                out[kind][2] += 1
            elif head[0] == "Rss:":
                out[kind][0] += int(head[1]) * KIB
            elif head[0] == "Private_Dirty:":
                out[kind][1] += int(head[1]) * KIB
    return dict(out)


def smaps_sampler(s, pid, a):
    """smaps summed by kind at warm-up and every 30 s after: which kind
    of mapping grows (the RSS sampler cannot tell)."""
    def run():
        warm = min(0.2 * a.seconds, 60.0)
        nxt = warm
        while not s.stop.is_set():
            s.stop.wait(max(0.0, nxt - s.now()))
            if s.stop.is_set():
                break
            try:
                s.smaps.append((s.now(), smaps_sum(pid)))
            except OSError:
                return
            nxt += 30.0
    t = threading.Thread(target=run, name="smaps", daemon=True)
    t.start()
    return t


# What the stats sampler keeps: name -> path in the `stats` answer.
STAT_SERIES = (
    ("memory.heap_bytes", ("memory", "heap_bytes")),
    ("memory.malloc_free_bytes", ("memory", "malloc_free_bytes")),
    ("memory.malloc_arena_bytes", ("memory", "malloc_arena_bytes")),
    ("memory.index_bytes", ("memory", "index_bytes")),
    ("memory.walk_bytes", ("memory", "walk_bytes")),
    ("memory.client_input_bytes", ("memory", "client_input_bytes")),
    ("memory.client_output_bytes", ("memory", "client_output_bytes")),
    ("watch.usage.bytes", ("watch", "usage", "bytes")),
    ("watch.usage.watches", ("watch", "usage", "watches")),
    ("watch.counters.stale", ("watch", "counters", "stale")),
    ("git.usage.bytes", ("git", "usage", "bytes")),
    ("visits.usage.bytes", ("visits", "usage", "bytes")),
    ("usage.clients", ("usage", "clients")),
)
STATS_GAP = 5.0


def stats_sampler(s, series):
    """`stats` every STATS_GAP s on a connection of its own: what the
    daemon says it holds, beside the RSS."""
    def body(_, c):
        while not s.stop.is_set():
            req = {"op": "stats"}
            r = c.request(req)
            if s.answer("stats", req, r) is None:
                row = {}
                for name, path in STAT_SERIES:
                    v = r
                    for k in path:
                        v = v.get(k, {}) if isinstance(v, dict) else {}
                    if isinstance(v, (int, float)):
                        row[name] = v
                series.append((s.now(), row))
                if s.a.stats_out:
                    with open(s.a.stats_out, "a") as f:
                        f.write(json.dumps({"t": round(s.now(), 1),
                                            "memory": r.get("memory")})
                                + "\n")
            s.stop.wait(STATS_GAP)
    return body


def lsq_slope(pts):
    """Least-squares slope of (t seconds, y) in y per minute."""
    if len(pts) < 2:
        return float("nan")
    mt = statistics.fmean(t for t, _ in pts)
    my = statistics.fmean(y for _, y in pts)
    sxx = sum((t - mt) ** 2 for t, _ in pts)
    sxy = sum((t - mt) * (y - my) for t, y in pts)
    return sxy / sxx * 60 if sxx else float("nan")


def rss_summary(samples, seconds):
    """Warm-up is the first min(20% of the run, 60 s); "at warm-up" is the
    median of the samples in a window of max(10 s, 10% of the run) centred
    on that mark, "at the end" the median of the samples in the last such
    window (a rebuild holds two snapshots and a walk's arena for a moment,
    so single samples saw-tooth); the floors are those windows' minima."""
    warm = min(0.2 * seconds, 60.0)
    win = max(10.0, 0.1 * seconds)
    end_t = samples[-1][0]
    near = [y for t, y in samples if abs(t - warm) <= win / 2]
    last = [y for t, y in samples if t > end_t - win]
    post = [(t, y) for t, y in samples if t >= warm]
    return {
        "warm_s": warm, "win_s": win,
        "warm": statistics.median(near),
        "warm_floor": min(near),
        "end": statistics.median(last),
        "end_floor": min(last),
        "end_at": samples[-1][1],
        "peak": max(y for _, y in samples),
        "post_min": min(y for _, y in post),
        "post_max": max(y for _, y in post),
        "slope": lsq_slope(post),
        "n": len(samples), "n_post": len(post),
        "first": samples[0][1],
    }


# ---------------------------------------------------------------- main

def list_dirs(root):
    out = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = [n for n in dirnames if not n.startswith(PREFIX)
                       and n != ".git"]
        out.append(dirpath)
    return out


def list_files(root, n, rng):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [x for x in dirnames if not x.startswith(PREFIX)]
        out.extend(os.path.join(dirpath, f) for f in filenames
                   if not f.startswith(PREFIX))
    rng.shuffle(out)
    return out[:n]


def remove_ours(tree):
    """Every fidxs- name in tree (what the churn left); count removed."""
    n = 0
    for dirpath, dirnames, filenames in os.walk(tree):
        for x in [d for d in dirnames if d.startswith(PREFIX)]:
            shutil.rmtree(os.path.join(dirpath, x), ignore_errors=True)
            n += 1
        dirnames[:] = [d for d in dirnames if not d.startswith(PREFIX)]
        for f in filenames:
            if f.startswith(PREFIX):
                os.unlink(os.path.join(dirpath, f))
                n += 1
    return n


def log_check(path):
    bad = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if BAD_LOG.search(line):
                bad.append(line.rstrip("\n"))
    return bad


def run(a, tmp):
    rng = random.Random(a.seed)
    a.sock = os.path.join(tmp, "s.sock")
    os.environ["XDG_STATE_HOME"] = os.path.join(tmp, "state")
    log("soak: making the git repositories")
    repos = make_repos(tmp, a.repos)
    log("soak: listing the tree")
    dirs = list_dirs(a.tree)
    visit_files = [(a.tree, p) for p in list_files(a.tree, VISIT_FILES, rng)]
    for r in repos:
        visit_files += [(r, p) for p in tracked(r)]
    d = b.Daemon(a.fidxd, a.sock, a.log, FLAGS)
    res = {"pid": d.pid, "dirs": len(dirs), "visit_targets": len(visit_files)}
    try:
        _, r = d.request({"op": "add", "root": a.tree, "wait": True,
                          "hidden": True, "timeout_ms": WAIT_MS})
        d.request({"op": "sync", "root": a.tree, "timeout_ms": SYNC_MS})
        _, p = d.request({"op": "projects"})
        files0 = [x for x in p["projects"] if x["root"] == a.tree][0]["files"]
        res["files0"] = files0
        log(f"soak: {files0} files in {a.tree}, {len(dirs)} directories")
        for repo in repos:
            d.request({"op": "add", "root": repo, "wait": True,
                       "timeout_ms": WAIT_MS})
        _, st0 = d.request({"op": "stats"})
        res["stats0"] = st0

        s = Soak(a, a.tree, repos)
        samples = []
        words = b.read_queries(a.queries)
        parts = []
        threads = [sampler(s, d.pid, samples, parts)]
        threads.append(smaps_sampler(s, d.pid, a))
        on = lambda what: what not in a.skip   # noqa: E731
        if on("reindex"):
            threads.append(worker(s, "reindex", reindexer))
        ch = Churn(s, dirs, random.Random(a.seed + 1))
        if on("churn"):
            t = threading.Thread(target=ch.run, name="churn", daemon=True)
            t.start()
            threads.append(t)
        for k in range(a.clients if on("query") else 0):
            threads.append(worker(s, f"query{k}",
                                  querier(words, a.seed + 10 + k)))
        if on("abrupt"):
            t = threading.Thread(target=abrupt,
                                 args=(s, random.Random(a.seed + 2)),
                                 name="abrupt", daemon=True)
            t.start()
            threads.append(t)
        if on("git"):
            threads.append(worker(s, "git", gitter(a.seed + 3)))
        if on("visit"):
            threads.append(worker(s, "visit",
                                  visiter(visit_files, a.seed + 4)))
        if on("spot"):
            threads.append(worker(s, "spot", spotter(dirs, a.seed + 5)))
        series = []
        threads.append(worker(s, "stats", stats_sampler(s, series)))
        log(f"soak: {len(threads)} threads for {a.seconds} s")
        end = s.t0 + a.seconds
        nxt = s.t0 + 10
        while not s.stop.is_set() and time.monotonic() < end:
            s.stop.wait(min(1.0, max(0.0, end - time.monotonic())))
            if time.monotonic() >= nxt and samples:
                nxt += 10
                log(f"soak: {s.now():.0f} s, RSS "
                    f"{samples[-1][1] / MIB:.1f} MiB, reindexes "
                    f"{s.n['reindexes']}, queries {s.n['queries sent']}, "
                    f"spot checks {sum(s.spots.values())}, daemon errors "
                    f"{s.n_errors}")
        res["ran_s"] = s.now()
        s.stop.set()
        stuck = []
        for t in threads:
            t.join(timeout=120)
            if t.is_alive():
                stuck.append(t.name)
        res["stuck"] = stuck
        res["soak"] = s
        res["samples"] = samples
        res["series"] = series
        res["parts"] = parts
        res["churn_alive"] = (len(ch.files), len(ch.mydirs))

        # The end: alive, stats, cleanup back to the start's count.
        res["alive"] = d.proc.poll() is None
        if res["alive"]:
            try:
                _, r = d.request({"op": "ping"}, check=False)
                res["alive"] = bool(r.get("ok"))
            except (OSError, SystemExit):
                res["alive"] = False
        if res["alive"]:
            _, res["stats"] = d.request({"op": "stats"})
            removed = remove_ours(a.tree)
            d.request({"op": "sync", "root": a.tree, "timeout_ms": SYNC_MS})
            _, p = d.request({"op": "projects"})
            files1 = [x for x in p["projects"]
                      if x["root"] == a.tree][0]["files"]
            _, q = d.request({"op": "query", "root": a.tree, "q": PREFIX,
                              "mode": "exact", "limit": 5})
            res["final"] = {"removed": removed, "files": files1,
                            "matched": q.get("matched"),
                            "sample": [x["path"] for x in q["results"]]}
            ok = files1 == files0 and q.get("matched") == 0
            s.spot("final", ok, f"after cleanup {files1} files (start "
                   f"{files0}), exact {PREFIX!r} matched "
                   f"{q.get('matched')}: {res['final']['sample']}")
            res["rss_after"] = b.proc_status(d.pid)["VmRSS"]
            d.stop()
            res["exit"] = d.proc.returncode
        else:
            res["exit"] = d.proc.poll()
            d.kill()
    except BaseException:
        d.kill()
        raise
    finally:
        remove_ours(a.tree)
    res["log_bad"] = log_check(a.log)
    return res


def mib(v):
    return f"{v / MIB:.1f}"


def report(a, res):
    s, rs = res["soak"], rss_summary(res["samples"], a.seconds)
    st = res.get("stats") or {}
    out = [a.header.rstrip("\n"), ""] if a.header else []
    out += [
        f"- Run: {res['ran_s']:.0f} s (SECONDS={a.seconds}), fidxd "
        f"`{a.fidxd} --foreground --socket TMP/s.sock {' '.join(FLAGS)}`, "
        f"pid {res['pid']}",
        f"- Loads left out (--skip): {', '.join(sorted(a.skip)) or 'none'}",
        f"- Tree: `{a.tree}`, {res['files0']} files indexed, "
        f"{res['dirs']} directories; {a.repos} git repositories; "
        f"{a.clients} query clients; {res['visit_targets']} files visited "
        "round robin",
        f"- Warm-up: the first {rs['warm_s']:.0f} s (min(20% of the run, "
        f"60 s)); RSS at warm-up = the median of the samples in the "
        f"{rs['win_s']:.0f} s (max(10 s, 10% of the run)) centred on that "
        f"mark, at the end = the median of the last {rs['win_s']:.0f} s; "
        "floor = the least sample of the same window (one snapshot, no "
        "walk running)",
        "",
        "### RSS (VmRSS, sampled every second)",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| first sample (indexed, before the load) | {mib(rs['first'])} MiB |",
        f"| at warm-up ({rs['warm_s']:.0f} s) | {mib(rs['warm'])} MiB |",
        f"| at the end | {mib(rs['end'])} MiB (last sample: "
        f"{mib(rs['end_at'])}) |",
        f"| floor at warm-up / at the end | {mib(rs['warm_floor'])} / "
        f"{mib(rs['end_floor'])} MiB |",
        f"| peak | {mib(rs['peak'])} MiB |",
        f"| after warm-up: min / max | {mib(rs['post_min'])} / "
        f"{mib(rs['post_max'])} MiB |",
        f"| slope after warm-up (least squares, {rs['n_post']} samples) | "
        f"{rs['slope'] / KIB:+.1f} KiB/min |",
        f"| end / warm-up | {rs['end'] / rs['warm']:.3f} |",
    ]
    pa = [(t, an, fi) for t, an, fi in res["parts"] if t >= rs["warm_s"]]
    if len(pa) >= 2:
        out.append(f"| RssAnon / RssFile after warm-up: slope | "
                   f"{lsq_slope([(t, an) for t, an, _ in pa]) / KIB:+.1f} / "
                   f"{lsq_slope([(t, fi) for t, _, fi in pa]) / KIB:+.1f} "
                   "KiB/min |")
        out.append(f"| RssAnon / RssFile: least after warm-up, last | "
                   f"{mib(min(x[1] for x in pa))} / "
                   f"{mib(min(x[2] for x in pa))}, {mib(pa[-1][1])} / "
                   f"{mib(pa[-1][2])} MiB |")
    if "rss_after" in res:
        out.append(f"| after the load stopped and the cleanup | "
                   f"{mib(res['rss_after'])} MiB |")
    warm = rs["warm_s"]
    post = [(t, row) for t, row in res["series"] if t >= warm]
    if len(post) >= 2:
        out += ["", f"### What `stats` says it holds (every {STATS_GAP:.0f} "
                f"s, {len(post)} samples after warm-up)", "",
                "| series | at warm-up | at the end | max | slope after "
                "warm-up per minute |", "|---|---:|---:|---:|---:|"]
        for name, _ in STAT_SERIES:
            pts = [(t, row[name]) for t, row in post if name in row]
            if len(pts) < 2:
                continue
            out.append(f"| {name} | {pts[0][1]} | {pts[-1][1]} | "
                       f"{max(y for _, y in pts)} | "
                       f"{lsq_slope(pts):+.0f} |")
    if len(s.smaps) >= 2:
        (t0, m0), (t1, m1) = s.smaps[0], s.smaps[-1]
        out += ["", f"### Mappings by kind (/proc/PID/smaps), {t0:.0f} s "
                f"and {t1:.0f} s", "",
                "| kind | mappings | Rss at warm-up | Rss at the end | "
                "change | Private_Dirty change |", "|---|---:|---:|---:|---:|---:|"]
        for k in sorted(set(m0) | set(m1)):
            a0, a1 = m0.get(k, [0, 0, 0]), m1.get(k, [0, 0, 0])
            out.append(f"| {k} | {a0[2]} / {a1[2]} | {mib(a0[0])} MiB | "
                       f"{mib(a1[0])} MiB | {(a1[0] - a0[0]) / KIB:+.0f} KiB"
                       f" | {(a1[1] - a0[1]) / KIB:+.0f} KiB |")
    out += ["", "### Work done", "", "| what | count |", "|---|---:|"]
    for k in sorted(s.n):
        out.append(f"| {k} | {s.n[k]} |")
    for k in sorted(s.busy):
        out.append(f"| {k}: busy | {s.busy[k]} |")
    if s.reindex_ms:
        out.append(f"| reindex build_ms median / max | "
                   f"{statistics.median(s.reindex_ms):.0f} / "
                   f"{max(s.reindex_ms):.0f} |")
    out += ["", "### Spot checks", "", "| kind | correct | wrong |",
            "|---|---:|---:|"]
    kinds = sorted(set(s.spots) | {k for _, k, _ in s.spot_fail})
    for k in kinds:
        nf = sum(1 for _, kk, _ in s.spot_fail if kk == k)
        out.append(f"| {k} | {s.spots[k]} | {nf} |")
    for t, k, what in s.spot_fail[:20]:
        out.append(f"- wrong at {t:.1f} s ({k}): {what}")
    out += ["", f"### Daemon errors: {s.n_errors}", ""]
    for t, where, what in s.errors:
        out.append(f"- {t:.1f} s, {where}: `{what}`")
    if res["stuck"]:
        out.append(f"- threads still running 120 s after the stop: "
                   f"{', '.join(res['stuck'])}")
    if st:
        snap = {k: st.get(k) for k in ("counters", "usage", "memory")}
        snap["watch.counters"] = st.get("watch", {}).get("counters")
        snap["watch.usage"] = st.get("watch", {}).get("usage")
        snap["git"] = st.get("git")
        snap["visits"] = {k: st.get("visits", {}).get(k)
                          for k in ("limits", "usage", "counters")}
        out += ["", "### `stats` at the end (before the cleanup)", "",
                "```json"]
        for k, v in snap.items():
            out.append(f"{json.dumps(k)}: "
                       f"{json.dumps(v, separators=(',', ':'))}")
        out += ["```"]
    out += ["", "### fidxd's stderr", ""]
    if res["log_bad"]:
        out.append(f"{len(res['log_bad'])} suspicious lines "
                   f"(`{a.log}`), first ones:")
        out += ["", "```"] + res["log_bad"][:10] + ["```"]
    else:
        out.append(f"no line matching `{BAD_LOG.pattern}` (`{a.log}`); "
                   f"exit status {res.get('exit')}")

    spot_total = sum(s.spots.values())
    vis = st.get("visits", {})
    vis_ok = (vis.get("usage", {}).get("entries", 0)
              <= vis.get("limits", {}).get("total", 0))
    git_ok = (st.get("git", {}).get("usage", {}).get("entries", 0)
              <= st.get("limits", {}).get("git_projects", 0))
    targets = [
        (f"slope after warm-up {rs['slope'] / KIB:+.1f} KiB/min "
         f"< 100 KiB/min", rs["slope"] < SLOPE_MAX),
        (f"end RSS {mib(rs['end'])} MiB within 5% of warm-up "
         f"{mib(rs['warm'])} MiB ({(rs['end'] / rs['warm'] - 1) * 100:+.1f}%)",
         abs(rs["end"] / rs["warm"] - 1) <= END_WITHIN),
        (f"(info, not a target) floors: end {mib(rs['end_floor'])} MiB "
         f"against warm-up {mib(rs['warm_floor'])} MiB "
         f"({(rs['end_floor'] / rs['warm_floor'] - 1) * 100:+.1f}%)",
         abs(rs["end_floor"] / rs["warm_floor"] - 1) <= END_WITHIN),
        (f"spot checks: {spot_total} correct, {len(s.spot_fail)} wrong",
         not s.spot_fail and spot_total > 0),
        (f"daemon errors not the client's fault: {s.n_errors}",
         s.n_errors == 0 and not res["stuck"]),
        (f"fidxd alive at the end (ping), exit status {res.get('exit')} "
         "after shutdown", res["alive"] and res.get("exit") == 0),
        (f"fidxd's stderr: {len(res['log_bad'])} sanitizer or error lines",
         not res["log_bad"]),
        (f"visit store {vis.get('usage', {}).get('entries')} entries <= "
         f"{vis.get('limits', {}).get('total')}; git cache "
         f"{st.get('git', {}).get('usage', {}).get('entries')} entries <= "
         f"{st.get('limits', {}).get('git_projects')}", vis_ok and git_ok),
    ]
    out += ["", "### Targets", ""]
    for what, ok in targets:
        out.append(f"- {verdict(ok)}: {what}")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", required=True)
    ap.add_argument("--fidxd", required=True)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--repos", type=int, default=8)
    ap.add_argument("--queries", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "queries.txt"))
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--log", required=True, help="fidxd's stderr")
    ap.add_argument("--rss-out", help="the samples, as t<TAB>bytes")
    ap.add_argument("--stats-out", help="each stats sample's memory "
                    "section, as JSON lines")
    ap.add_argument("--out", help="also write the markdown report here")
    ap.add_argument("--header", default="")
    ap.add_argument("--skip", default="",
                    help="loads left out, comma-separated: " + ",".join(LOADS))
    a = ap.parse_args()
    a.skip = set(x for x in a.skip.split(",") if x)
    if a.skip - set(LOADS):
        fail(f"--skip: unknown {sorted(a.skip - set(LOADS))}; known: "
             + ",".join(LOADS))
    a.tree = os.path.realpath(a.tree)
    if shutil.which("git") is None:
        fail("missing tool: git")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signo, _: sys.exit(f"killed by {signo}"))
    tmp = tempfile.mkdtemp(prefix="fidx-soak-")
    try:
        res = run(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.rss_out:
        with open(a.rss_out, "w") as f:
            for t, y in res["samples"]:
                f.write(f"{t:.1f}\t{y}\n")
    text = report(a, res)
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
