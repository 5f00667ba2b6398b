#!/usr/bin/env python3
"""Benchmark fidxd's git status cache and `fidx fsmonitor` against git.

Normally called by bench/git.sh (see there for what and why), which makes
the repository once (`--make DIR --files N`: the regular files of
/usr/include, /usr/share and /usr/lib in walk order, each cut to its
first 4 KiB) and passes the machine/version header. Python 3 standard
library only; the daemon is driven as in bench/daemon_bench.py (whose
helpers this imports): one persistent connection, one JSON line each way,
wall clock from the client's side (time.perf_counter).
"""

import argparse
import base64
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True   # no bench/__pycache__ in the work tree
import daemon_bench as b         # noqa: E402
from daemon_bench import fail, log, ms, pct, verdict   # noqa: E402

SOURCES = ("/usr/include", "/usr/share", "/usr/lib")
CUT = 4096
MARK = "fidxg"                   # what each run writes is named or says so


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def make_repo(dest, files):
    """files regular files of SOURCES under dest, each cut to CUT bytes."""
    n = 0
    for src in SOURCES:
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames.sort()
            dirnames[:] = [d for d in dirnames if d != ".git"]
            for name in sorted(filenames):
                if n >= files:
                    return n
                path = os.path.join(dirpath, name)
                try:
                    if not os.path.isfile(path) or os.path.islink(path):
                        continue
                    with open(path, "rb") as f:
                        data = f.read(CUT)
                except OSError:
                    continue
                rel = os.path.relpath(path, "/")
                out = os.path.join(dest, rel)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with open(out, "wb") as f:
                    f.write(data)
                n += 1
    return n


def git(repo, *args, env=None, capture=True):
    p = subprocess.run(["git", *args], cwd=repo, env=env,
                       stdout=subprocess.PIPE if capture else
                       subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode != 0:
        fail(f"git {' '.join(args)}: {p.stderr.decode(errors='replace')}")
    return p.stdout


def prepare(repo, a):
    """Resets repo to its commit, then changes it the same way each run;
    returns the tracked files it appended to (modified and staged)."""
    git(repo, "-c", "core.fsmonitor=false", "reset", "-q", "--hard")
    git(repo, "-c", "core.fsmonitor=false", "clean", "-fdq")
    for f in os.listdir(os.path.join(repo, ".git")):
        if f.startswith("index.") and f != "index.lock":
            os.unlink(os.path.join(repo, ".git", f))
    tracked = sorted(git(repo, "ls-files", "-z").decode(
        "utf-8", "surrogateescape").split("\0")[:-1])
    rnd = random.Random(13)
    picked = rnd.sample(tracked, a.modified + a.staged + a.changes)
    mod, staged = picked[:a.modified], picked[a.modified:a.modified +
                                                a.staged]
    later = picked[a.modified + a.staged:]
    for rel in mod + staged:
        with open(os.path.join(repo, rel), "a") as f:
            f.write(f"{MARK}: changed\n")
    for i in range(0, len(staged), 50):
        git(repo, "add", "--", *staged[i:i + 50])
    dirs = sorted({os.path.dirname(t) for t in tracked})
    for i, d in enumerate(rnd.sample(dirs, a.untracked)):
        with open(os.path.join(repo, d, f"{MARK}-new-{i}.txt"), "w") as f:
            f.write("untracked\n")
    for i in range(5):
        d = os.path.join(repo, rnd.choice(dirs), f"{MARK}-dir-{i}")
        os.makedirs(d, exist_ok=True)
        for k in range(10):
            with open(os.path.join(d, f"f{k}.txt"), "w") as f:
                f.write("untracked\n")
    return later


def status_env(repo, index):
    env = dict(os.environ)
    env["GIT_INDEX_FILE"] = os.path.join(repo, ".git", index)
    return env


STATUS = ["status", "--porcelain=v2", "--branch"]


def git_status(repo, index, cfg, trace=None):
    """One `git status --porcelain=v2 --branch` on its own index copy with
    the -c settings cfg: (seconds, stdout)."""
    env = status_env(repo, index)
    if trace:
        env["GIT_TRACE2_EVENT"] = trace
    args = ["git"]
    for c in cfg:
        args += ["-c", c]
    t0 = time.perf_counter()
    p = subprocess.run(args + STATUS, cwd=repo, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        fail(f"git status: {p.stderr.decode(errors='replace')}")
    return dt, p.stdout


def path_bytes(files):
    n = 0
    for f in files:
        for k in ("path", "orig_path"):
            if k + "_b64" in f:
                n += len(base64.b64decode(f[k + "_b64"]))
            elif k in f:
                n += len(f[k].encode())
    return n


def porcelain_v1(repo, index):
    out = subprocess.run(["git", "-c", "core.fsmonitor=false",
                          "--no-optional-locks", "status",
                          "--porcelain=v1", "-z"], cwd=repo,
                         env=status_env(repo, index),
                         stdout=subprocess.PIPE).stdout.decode(
                             "utf-8", "surrogateescape").split("\0")
    got, i = set(), 0
    while i < len(out) and out[i]:
        f = out[i]
        orig = None
        if f[0] in "RC":
            i += 1
            orig = out[i]
        got.add((f[0], f[1], f[3:], orig))
        i += 1
    return got


def answered(r):
    return {(f["index"], f["worktree"], f["path"], f.get("orig_path"))
            for f in r.get("files", [])}


def hook_trace(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                e = json.loads(line)
                if e.get("category") == "fsm_hook" and \
                        e.get("event") == "data":
                    out[e.get("key")] = e.get("value")
    except (OSError, ValueError):
        pass
    return out


def run(a):
    repo = a.repo
    later = prepare(repo, a)
    plain_cfg = ["core.fsmonitor=false", "core.untrackedCache=false"]
    uc_cfg = ["core.fsmonitor=false", "core.untrackedCache=true"]
    tmp = tempfile.mkdtemp(prefix="fidx-gitbench-")
    os.chmod(tmp, 0o700)
    sock = os.path.join(tmp, "sock")
    hook = f"{os.path.abspath(a.fidx)} --socket {sock} fsmonitor"
    hook_cfg = [f"core.fsmonitor={hook}", "core.untrackedCache=true"]
    idx = os.path.join(repo, ".git", "index")
    for name in ("index.plain", "index.uc", "index.hook"):
        shutil.copyfile(idx, os.path.join(repo, ".git", name))
    res = {}
    # The TTL outlives the warm series (default 5 s from the computation).
    d = b.Daemon(a.fidxd, sock, a.log, flags=("--git-ttl-ms", "600000"))
    try:
        t_add, r = d.request({"op": "add", "root": repo, "wait": True,
                              "timeout_ms": 600000})
        res["add_s"] = t_add
        res["files"] = r.get("files")
        # 1. Cold: computed for the request, against git status.
        cold, gits = [], []
        git_status(repo, "index.plain", plain_cfg)      # warm-up, not kept
        d.request({"op": "git", "root": repo, "max_age_ms": 0,
                   "limit": 100000, "timeout_ms": 600000})
        for i in range(a.rounds):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            for k in order:
                if k == 0:
                    dt, _ = git_status(repo, "index.plain", plain_cfg)
                    gits.append(dt)
                else:
                    dt, r = d.request({"op": "git", "root": repo,
                                       "max_age_ms": 0, "limit": 100000,
                                       "timeout_ms": 600000})
                    cold.append(dt)
        want = porcelain_v1(repo, "index.plain")
        res["correct"] = answered(r) == want
        res["entries"] = len(r.get("files", []))
        res["cold"], res["git"] = cold, gits
        # 4. Memory of the one entry against its paths.
        _, s = d.request({"op": "stats"})
        res["cache_bytes"] = s["git"]["usage"]["bytes"]
        res["cache_entries"] = s["git"]["usage"]["entries"]
        res["path_bytes"] = path_bytes(r.get("files", []))
        # 2. Warm: answered from the cache.
        warm = []
        for _ in range(a.warm):
            dt, r = d.request({"op": "git", "root": repo,
                               "limit": 100000})
            if r.get("age_ms", 0) == 0 and warm:
                log("a warm request was computed again (age 0)")
            warm.append(dt)
        res["warm"] = warm
        # 3. One change: until the answer lists the file.
        after = []
        for rel in later:
            with open(os.path.join(repo, rel), "a") as f:
                f.write(f"{MARK}: one change\n")
            t0 = time.perf_counter()
            while True:
                _, r = d.request({"op": "git", "root": repo,
                                  "limit": 100000, "timeout_ms": 600000})
                if any(f["path"] == rel for f in r.get("files", [])):
                    break
                if time.perf_counter() - t0 > 60:
                    fail(f"the change to {rel} was not seen in 60 s")
            after.append(time.perf_counter() - t0)
        res["after"] = after
        # 5. git status with the hook, the untracked cache alone, neither.
        for name, cfg in (("index.plain", plain_cfg), ("index.uc", uc_cfg),
                          ("index.hook", hook_cfg)):
            for _ in range(2):                  # each its index's warm-up
                git_status(repo, name, cfg)
        rows = {"plain": [], "uc": [], "hook": []}
        outs = {}
        variants = [("plain", "index.plain", plain_cfg),
                    ("uc", "index.uc", uc_cfg),
                    ("hook", "index.hook", hook_cfg)]
        for i in range(a.rounds):
            for k, name, cfg in variants[i % 3:] + variants[:i % 3]:
                dt, out = git_status(repo, name, cfg)
                rows[k].append(dt)
                outs[k] = out
        trace = os.path.join(tmp, "trace.json")
        git_status(repo, "index.hook", hook_cfg, trace=trace)
        res["hook_trace"] = hook_trace(trace)
        res["status_same"] = outs["plain"] == outs["uc"] == outs["hook"]
        res["status"] = rows
        _, s = d.request({"op": "stats"})
        res["changes"] = s.get("changes", {})
        p = subprocess.run(["git", "fsmonitor--daemon", "status"],
                           cwd=repo, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        res["builtin"] = p.stdout.decode(errors="replace").strip()
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def report(a, res):
    cold, gits = median(res["cold"]), median(res["git"])
    warm = median(res["warm"])
    after = median(res["after"])
    st = res["status"]
    plain, uc, hook = median(st["plain"]), median(st["uc"]), median(st["hook"])
    ev = res["hook_trace"]
    used = "query/response-length" in ev and "query/failed" not in ev
    trivial = "query/trivial-response" in ev
    mem = res["cache_bytes"] / res["path_bytes"] if res["path_bytes"] else 0
    lines = [a.header, "",
             f"- Changes each run: {a.modified} modified, {a.staged} staged, "
             f"{a.untracked} untracked files and 5 untracked directories "
             f"of 10; `git` op answer: {res['entries']} entries, equal to "
             f"`git status --porcelain=v1`: "
             f"{'yes' if res['correct'] else 'NO'}",
             "- fidxd runs with `--git-ttl-ms 600000`, so the cached entry "
             "outlives the warm series (the default TTL is 5 s).",
             f"- fidx add (walk and index, {res['files']} files): "
             f"{res['add_s']:.2f} s; rounds: {a.rounds}, order alternating",
             "- Measured while other jobs load the machine: compare the "
             "ratios, which come from the same run, not the times.",
             "",
             "| what | fidx | git | ratio |",
             "|---|---|---|---|",
             f"| cold status: `git` op (`max_age_ms` 0) vs `git status "
             f"--porcelain=v2 --branch`, median | {ms(cold)} ms | "
             f"{ms(gits)} ms | {cold / gits:.2f}x |",
             f"| warm: the cached answer over the socket, median / p99 of "
             f"{a.warm} | {ms(warm, 3)} / {ms(pct(res['warm'], 99), 3)} ms "
             f"| | cold / warm {cold / warm:.0f}x |",
             f"| one file changed, to the answer that lists it (the watcher "
             f"marks it stale; computed again), median of {a.changes} | "
             f"{ms(after)} ms | | cold / this {cold / after:.2f}x |",
             f"| memory: the cached entry (`git.usage.bytes`) against the "
             f"bytes of its paths | {res['cache_bytes']:,} B | "
             f"{res['path_bytes']:,} B of paths | {mem:.2f}x |",
             f"| `git status` with `core.fsmonitor=\"fidx fsmonitor\"` and "
             f"`core.untrackedCache`, vs neither, median | {ms(hook)} ms | "
             f"{ms(plain)} ms | {hook / plain:.2f}x ({plain / hook:.2f}x "
             f"faster) |",
             f"| `git status` with the untracked cache alone, vs neither | "
             f"{ms(uc)} ms | {ms(plain)} ms | {uc / plain:.2f}x |",
             "",
             f"- The three `git status` outputs identical: "
             f"{'yes' if res['status_same'] else 'NO'}; git's trace: the "
             f"hook {'answered' if used else 'was NOT used or failed'}"
             f"{' everything (trivial)' if trivial else ' with paths'}"
             f" ({ev.get('query/response-length', '?')} bytes)",
             f"- git's own `core.fsmonitor=true` daemon: "
             f"`git fsmonitor--daemon status` says \"{res['builtin']}\"",
             f"- The change log at the end: {json.dumps(res['changes'])}",
             "",
             "Targets:",
             f"- {verdict(cold <= gits)} cold status no slower than git "
             f"status ({cold / gits:.2f}x)",
             f"- {verdict(cold / warm >= 100)} cached answer at least 100x "
             f"faster than cold ({cold / warm:.0f}x)",
             f"- {verdict(cold / after >= 10)} after one change at least 10x "
             f"faster than cold ({cold / after:.2f}x)",
             f"- {verdict(mem <= 2)} cache memory at most 2x its path bytes "
             f"({mem:.2f}x)",
             f"- {verdict(plain / hook >= 2)} git status with fidx as its "
             f"fsmonitor at least 2x faster than without "
             f"({plain / hook:.2f}x)",
             ""]
    text = "\n".join(lines)
    print(text)
    with open(a.out, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--make")
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--repo")
    ap.add_argument("--fidxd", default="./build/fidxd")
    ap.add_argument("--fidx", default="./build/fidx")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warm", type=int, default=200)
    ap.add_argument("--changes", type=int, default=10)
    ap.add_argument("--modified", type=int, default=300)
    ap.add_argument("--staged", type=int, default=100)
    ap.add_argument("--untracked", type=int, default=100)
    ap.add_argument("--log", default="build/bench/git-fidxd.log")
    ap.add_argument("--out", default="build/bench/git.md")
    ap.add_argument("--header", default="")
    a = ap.parse_args()
    if a.make:
        n = make_repo(a.make, a.files)
        log(f"{n} files in {a.make}")
        return
    if not a.repo:
        fail("--repo or --make")
    report(a, run(a))


if __name__ == "__main__":
    main()
