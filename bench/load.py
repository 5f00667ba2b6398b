#!/usr/bin/env python3
"""bench/load.py - many clients at once against one fidxd, and one that
never reads (run by bench/load.sh, which makes the tree and the header).

One `fidxd --foreground --socket TMP/s.sock --max-queued-queries 2xCLIENTS`
(the default queue, 64, is what 64 clients with one query each fill to
the brim: a `busy` there would be the cap working, not an error, so it
is raised to keep the count of errors about the daemon) indexes the
tree ("wait":true); a small git repository (40 files, one commit, a few
changed and untracked) is made with `git` for the `git` requests.

Each phase forks CLIENTS processes that start together (a barrier); each
opens one connection and sends REQUESTS/(2 x ROUNDS) requests one at a
time (the
next once the answer is in, as an editor plugin does), the kind of each
drawn from a random.Random(SEED, client, phase) among nine, equally:
  fuzzy   {"op":"query","q":<one of FUZZY>,"limit":50}
  exact   the same with "mode":"exact"
  regex   "mode":"regex"
  typo    a misspelled name (typos default, 2)
  multi   several terms ("share doc copyright")
  projects, stats
  git     {"op":"git","root":REPO} (the cache's TTL, 5 s, serves most)
  visit   {"op":"visit","root":TREE,"path":<one of 2,000 listed paths>}
timing each round trip (time.perf_counter, send to the answer's line).
An error is an answer with "ok":false, a wrong id, or a connection that
closed or gave no answer within --client-timeout (600 s; a run at 60 s on
a machine at load 17 had 9 clients give up, fidxd counting no error).
Phase A: those clients alone. Phase B: the same, and meanwhile a thread
of this process is the stalled client: it connects, pipelines 8 queries
of 10,000 results with positions (each answer ~1 MB), never reads, and
watches `stats` on a connection of its own until clients_dropped grows
(and usage.output_bytes_max_client with it: how full the cap got); it
then closes and connects again, until the phase ends. The phases
alternate, A then B, ROUNDS times (default 2), so that what else the
machine runs meanwhile weighs on both alike; each client sends REQUESTS
in all.
Reported: a table per kind (count, median, p99 in ms, per phase), all
requests' median and p99 per phase, errors, the stalled client's
connections against the counter, and the targets (PASS/FAIL): zero
errors, every stalled connection dropped, p99 B <= 1.5 x p99 A.
"""

import argparse
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

FUZZY = ["mkfl", "rdme", "pyinit", "stdioh", "cfgh", "libgitso", "mnpg",
         "icnpng", "utf8", "sslcnf"]
EXACT = ["libgit", "README", "python3", "locale", "include/linux",
         "Makefile", ".so.1"]
REGEX = [r"\.so\.[0-9]+$", r"^usr-1/share/doc/[^/]+/copyright$",
         r"include/.*\.h$", r"(png|svg)$", r"/bin/[a-z]+$"]
TYPO = ["lcnse", "makfile", "cnofig", "pyhton", "redame", "copyrihgt"]
MULTI = ["share doc copyright", "lib python init", "include linux h",
         "man1 gz", "usr-3 lib so"]
KINDS = ["fuzzy", "exact", "regex", "typo", "multi", "projects", "stats",
         "git", "visit"]
STALL_PIPELINE = 8


class Conn:
    def __init__(self, path, timeout=60.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.n = 0

    def req(self, obj):
        self.n += 1
        obj = dict(obj, id=self.n)
        self.s.sendall(json.dumps(obj).encode() + b"\n")
        while b"\n" not in self.buf:
            data = self.s.recv(1 << 16)
            if not data:
                raise ConnectionError("closed by fidxd")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        r = json.loads(line)
        if r.get("id") != self.n:
            raise ConnectionError("answer id %r for request %d" %
                                  (r.get("id"), self.n))
        return r

    def close(self):
        self.s.close()


def request(kind, rng, tree, repo, visit_paths):
    if kind in ("fuzzy", "exact", "regex", "typo", "multi"):
        q = rng.choice({"fuzzy": FUZZY, "exact": EXACT, "regex": REGEX,
                        "typo": TYPO, "multi": MULTI}[kind])
        o = {"op": "query", "root": tree, "q": q, "limit": 50}
        if kind in ("exact", "regex"):
            o["mode"] = kind
        return o
    if kind == "git":
        return {"op": "git", "root": repo}
    if kind == "visit":
        return {"op": "visit", "root": tree, "path": rng.choice(visit_paths)}
    return {"op": kind}


def client_main(sock, idx, phase, n, seed, tree, repo, visit_paths,
                barrier, out, timeout):
    rng = random.Random("%d/%d/%s" % (seed, idx, phase))
    lat = {k: [] for k in KINDS}
    errors = []
    try:
        c = Conn(sock, timeout=timeout)
        barrier.wait(120)
        for _ in range(n):
            kind = rng.choice(KINDS)
            o = request(kind, rng, tree, repo, visit_paths)
            t0 = time.perf_counter()
            r = c.req(o)
            dt = time.perf_counter() - t0
            lat[kind].append(dt)
            if r.get("ok") is not True:
                errors.append("%s: %s" % (kind, json.dumps(r)[:300]))
        c.close()
    except Exception as e:  # one client's failure is reported, not fatal
        errors.append("client %d: %s: %s" % (idx, type(e).__name__, e))
    out.put((idx, lat, errors))


def stats(c):
    return c.req({"op": "stats"})


class Staller(threading.Thread):
    """Phase B's client that never reads, again and again."""

    def __init__(self, sock, tree):
        super().__init__(daemon=True)
        self.sock, self.tree = sock, tree
        self.stop = threading.Event()
        self.connections = 0
        self.dropped = 0
        self.max_client_bytes = 0
        self.drop_s = []
        self.error = None

    def run(self):
        try:
            ctl = Conn(self.sock)
            while not self.stop.is_set():
                before = stats(ctl)["counters"]["clients_dropped"]
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock)
                self.connections += 1
                t0 = time.monotonic()
                line = json.dumps({"op": "query", "root": self.tree,
                                   "q": "lib", "limit": 10000,
                                   "positions": True}).encode() + b"\n"
                s.sendall(line * STALL_PIPELINE)
                while not self.stop.is_set():
                    st = stats(ctl)
                    self.max_client_bytes = max(
                        self.max_client_bytes,
                        st["usage"]["output_bytes_max_client"])
                    if st["counters"]["clients_dropped"] > before:
                        self.dropped += 1
                        self.drop_s.append(time.monotonic() - t0)
                        break
                    time.sleep(0.05)
                s.close()
            ctl.close()
        except Exception as e:
            self.error = "%s: %s" % (type(e).__name__, e)


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def run_phase(args, phase, rnd, sock, tree, repo, visit_paths):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(args.clients + 1)
    out = ctx.Queue()
    n = args.requests // (2 * args.rounds)
    procs = [ctx.Process(target=client_main, args=(
        sock, i, "%s%d" % (phase, rnd), n, args.seed, tree, repo,
        visit_paths, barrier, out, args.client_timeout))
        for i in range(args.clients)]
    for p in procs:
        p.start()
    staller = Staller(sock, tree) if phase == "B" else None
    barrier.wait(120)
    t0 = time.monotonic()
    if staller:
        staller.start()
    lat = {k: [] for k in KINDS}
    errors = []
    for _ in procs:
        _, l, e = out.get(timeout=3600)
        for k in KINDS:
            lat[k].extend(l[k])
        errors.extend(e)
    wall = time.monotonic() - t0
    if staller:
        staller.stop.set()
        staller.join(30)
        if staller.error:
            errors.append("stalled client: " + staller.error)
    for p in procs:
        p.join(30)
    return {"lat": lat, "errors": errors, "wall": wall, "staller": staller}


def make_repo(path):
    os.makedirs(path)
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x",
               GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@x")
    subprocess.run(["git", "init", "-q", path], check=True, env=env)
    for i in range(40):
        with open(os.path.join(path, "f%02d.txt" % i), "w") as f:
            f.write("%d\n" % i)
    subprocess.run(["git", "-C", path, "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", path, "commit", "-qm", "init"], check=True,
                   env=env)
    for i in range(5):
        with open(os.path.join(path, "f%02d.txt" % i), "a") as f:
            f.write("changed\n")
        with open(os.path.join(path, "new%d.txt" % i), "w") as f:
            f.write("new\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", required=True)
    ap.add_argument("--fidxd", required=True)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--requests", type=int, default=1000,
                    help="per client, half in each phase")
    ap.add_argument("--rounds", type=int, default=2,
                    help="A then B, this many times")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--client-timeout", type=float, default=600,
                    help="seconds a client waits for one answer")
    ap.add_argument("--log", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--header", default="")
    args = ap.parse_args()

    tree = os.path.realpath(args.tree)
    tmp = tempfile.mkdtemp(prefix="fidx-load.")
    sock = os.path.join(tmp, "s.sock")
    repo = os.path.join(tmp, "repo")
    make_repo(repo)
    logf = open(args.log, "wb")
    env = dict(os.environ, XDG_STATE_HOME=os.path.join(tmp, "state"))
    d = subprocess.Popen([args.fidxd, "--foreground", "--socket", sock,
                          "--max-queued-queries", str(2 * args.clients)],
                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                         env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                c = Conn(sock, timeout=600)
                break
            except OSError:
                if time.monotonic() > deadline or d.poll() is not None:
                    raise SystemExit("fidxd did not start; see " + args.log)
                time.sleep(0.05)
        t0 = time.monotonic()
        r = c.req({"op": "add", "root": tree, "wait": True,
                   "timeout_ms": 600000})
        build_s = time.monotonic() - t0
        if r.get("ok") is not True:
            raise SystemExit("add: %s" % json.dumps(r))
        files = r.get("files")
        r = c.req({"op": "query", "root": tree, "q": "c", "limit": 2000})
        visit_paths = [x["path"] for x in r["results"] if "path" in x]
        # Warm-up: each query once, and the git status computed.
        rng = random.Random(args.seed)
        for k in KINDS:
            c.req(request(k, rng, tree, repo, visit_paths))
        s0 = stats(c)["counters"]
        # Phases A and B alternate, ROUNDS times each, so that what else
        # the machine runs meanwhile weighs on both alike.
        pa = {"lat": {k: [] for k in KINDS}, "errors": [], "wall": 0.0}
        pb = {"lat": {k: [] for k in KINDS}, "errors": [], "wall": 0.0,
              "staller": [], "drops_a": 0, "drops_b": 0}
        for rnd in range(args.rounds):
            for ph, acc in (("A", pa), ("B", pb)):
                before = stats(c)["counters"]["clients_dropped"]
                res = run_phase(args, ph, rnd, sock, tree, repo,
                                visit_paths)
                after = stats(c)["counters"]["clients_dropped"]
                pb["drops_" + ph.lower()] += after - before
                for k in KINDS:
                    acc["lat"][k].extend(res["lat"][k])
                acc["errors"].extend(res["errors"])
                acc["wall"] += res["wall"]
                if res["staller"]:
                    pb["staller"].append(res["staller"])
        s2 = stats(c)
        st2 = s2["counters"]
        alive = c.req({"op": "ping"}).get("ok") is True
        c.req({"op": "shutdown"})
        c.close()
        rc = d.wait(60)
    finally:
        if d.poll() is None:
            d.kill()
            d.wait()
        logf.close()
        shutil.rmtree(tmp, ignore_errors=True)

    def ms(x):
        return "%.1f" % (x * 1000)

    lines = [args.header, "- Index: %d files, built in %.1f s; "
             "`--max-queued-queries %d`" % (files, build_s,
                                            2 * args.clients),
             "- Clients: %d processes, %d requests each, one at a time, in "
             "%d rounds of phase A then B (%d requests a client each); "
             "phase A %.0f s in all, phase B %.0f s" % (
                 args.clients, args.requests, args.rounds,
                 args.requests // (2 * args.rounds), pa["wall"],
                 pb["wall"]), "",
             "| kind | n (A) | median A ms | p99 A ms | median B ms | "
             "p99 B ms |", "|---|---:|---:|---:|---:|---:|"]
    alla, allb = [], []
    for k in KINDS:
        a, b = pa["lat"][k], pb["lat"][k]
        alla += a
        allb += b
        lines.append("| %s | %d | %s | %s | %s | %s |" % (
            k, len(a), ms(pct(a, 50)), ms(pct(a, 99)), ms(pct(b, 50)),
            ms(pct(b, 99))))
    lines.append("| **all** | %d | %s | %s | %s | %s |" % (
        len(alla), ms(pct(alla, 50)), ms(pct(alla, 99)), ms(pct(allb, 50)),
        ms(pct(allb, 99))))
    stls = pb["staller"]
    connections = sum(x.connections for x in stls)
    dropped = sum(x.dropped for x in stls)
    max_client_bytes = max(x.max_client_bytes for x in stls)
    drop_s = [t for x in stls for t in x.drop_s]
    drops_counted = pb["drops_b"]
    errs = pa["errors"] + pb["errors"]
    ratio = pct(allb, 99) / pct(alla, 99)
    lines += ["",
              "- Errors: %d (phase A %d, phase B %d)" % (
                  len(errs), len(pa["errors"]), len(pb["errors"])),
              "- Stalled client: %d connections, %d seen dropped; "
              "clients_dropped +%d in phase B, +%d in phase A; the worst "
              "client's queued output peaked at %d bytes of %d; dropped "
              "after a median %.1f s (its 8 queries wait their turns on "
              "the query worker)" % (
                  connections, dropped, drops_counted, pb["drops_a"],
                  max_client_bytes,
                  s2["limits"]["output_bytes_per_client"],
                  pct(drop_s, 50) if drop_s else float("nan")),
              "- fidxd counters over both phases: requests +%d, errors +%d "
              "(our own none), responses_too_large +%d, clients_refused +%d"
              % (st2["requests"] - s0["requests"], st2["errors"] -
                 s0["errors"], st2["responses_too_large"] -
                 s0["responses_too_large"], st2["clients_refused"] -
                 s0["clients_refused"]),
              "- fidxd alive after the phases: %s; exit status on shutdown "
              "%s" % (alive, rc), "",
              "Targets:", "",
              "- %s zero errors" % ("PASS" if not errs else "FAIL"),
              "- %s the stalled client dropped at its cap each time (%d of "
              "%d connections, counter +%d)" % (
                  "PASS" if dropped and drops_counted >= dropped >=
                  connections - len(stls) and pb["drops_a"] == 0
                  else "FAIL", dropped, connections, drops_counted),
              "- %s p99 with the stalled client %.3f x without it "
              "(target <= 1.5)" % ("PASS" if ratio <= 1.5 else "FAIL",
                                   ratio)]
    if errs:
        lines += ["", "First errors:", ""] + ["    " + e for e in errs[:10]]
    text = "\n".join(lines) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    main()
