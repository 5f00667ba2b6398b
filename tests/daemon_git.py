#!/usr/bin/env python3
"""tests/daemon_git.py - the git op over the socket.

Real repositories made with the `git` command in a temporary directory;
each answer's files are compared with what `git status --porcelain=v1 -z`
prints for the same repository. Then the cache seen through `stats`: a
second request is a hit, "max_age_ms":0 computes again, requests at once
for one root share one computation (single flight), the project cap
evicts the least recently used, a status larger than the byte cap is
answered but not kept, the path cap truncates and says so, and expired
entries are freed by the daemon's timer (usage falls to 0 without any
request). Errors: a plain directory and a bare repository are
`not_a_repository`. Nothing sleeps and hopes: waits poll with a deadline.
Python 3 standard library only.
"""

import json
import os
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as t  # noqa: E402  (the client library)


def git(cwd, *args):
    subprocess.run(["git"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def porcelain(root):
    """git's own answer: a set of (X, Y, path, orig or None)."""
    out = subprocess.run(["git", "status", "--porcelain=v1", "-z"],
                         cwd=root, check=True,
                         stdout=subprocess.PIPE).stdout.decode()
    fields = out.split("\0")
    got, i = set(), 0
    while i < len(fields) and fields[i]:
        f = fields[i]
        orig = None
        if f[0] in "RC":
            i += 1
            orig = fields[i]
        got.add((f[0], f[1], f[3:], orig))
        i += 1
    return got


def answered(r):
    return {(f["index"], f["worktree"], f["path"], f.get("orig_path"))
            for f in r.get("files", [])}


def make_repo(tmp, name, files=("a", "b", "c", "d")):
    root = os.path.join(tmp, name)
    os.makedirs(root)
    git(root, "init", "-q")
    for n in files:
        with open(os.path.join(root, n), "w") as f:
            f.write("line one of %s\nline two\nline three\n" % n)
    git(root, "add", ".")
    git(root, "commit", "-qm", "base")
    return root


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def gstats(c):
    s = c.req({"op": "stats"})
    return s.get("git", {}), s.get("limits", {})


def t_status(tmp):
    R = make_repo(tmp, "repo")
    write(R, "a", "changed\n")
    write(R, "b", "staged\n")
    git(R, "add", "b")
    git(R, "mv", "c", "renamed")
    os.remove(os.path.join(R, "d"))
    write(R, "newdir/x", "x\n")
    write(R, "u", "u\n")
    d = t.Daemon(tmp, "git", ["--git-ttl-ms", "600000"])
    if not t.check("git: daemon up", d.wait_ready()):
        return
    c = t.Conn(d.sock)
    r = c.req({"id": 1, "op": "git", "root": R}, timeout=30)
    t.check("git: answers ok", r.get("ok") is True and r.get("id") == 1,
            t.short(r))
    t.check("git: files are what git status --porcelain=v1 says",
            answered(r) == porcelain(R),
            "daemon %s, git %s" % (sorted(answered(r)),
                                   sorted(porcelain(R))))
    t.check("git: branch, no upstream, no state, fresh",
            r.get("branch") == "main" and r.get("upstream") is None and
            r.get("state") is None and r.get("detached") is False and
            r.get("age_ms") == 0 and r.get("truncated") is False,
            t.short(r))
    t.check("git: counts", r.get("counts") == {
        "staged": 2, "modified": 2, "untracked": 2, "ignored": 0,
        "conflicted": 0}, t.short(r.get("counts")))
    g, lim = gstats(c)
    t.check("git: stats shows the limits",
            lim.get("git_ttl_ms") == 600000 and
            lim.get("git_projects") == 32 and
            lim.get("git_bytes") == 64 << 20 and
            lim.get("git_paths") == 100000, t.short(lim))
    t.check("git: one miss, one entry with bytes",
            g["counters"]["misses"] == 1 and g["usage"]["entries"] == 1 and
            g["usage"]["bytes"] > 0, t.short(g))

    r2 = c.req({"op": "git", "root": R})
    g, _ = gstats(c)
    t.check("git: a second request is a hit, the same answer",
            g["counters"]["hits"] == 1 and g["counters"]["misses"] == 1 and
            answered(r2) == answered(r), t.short(g))

    # A change is seen once the client asks for a younger answer.
    write(R, "later", "x\n")
    r3 = c.req({"op": "git", "root": R, "max_age_ms": 0}, timeout=30)
    g, _ = gstats(c)
    t.check("git: max_age_ms 0 computes again and sees the change",
            g["counters"]["misses"] == 2 and
            answered(r3) == porcelain(R) and
            ("?", "?", "later", None) in answered(r3), t.short(r3))

    # "untracked":"all" lists each file of an untracked directory, as
    # git -uall, and is kept apart from the default listing.
    r4 = c.req({"op": "git", "root": R, "untracked": "all"}, timeout=30)
    want = set()
    out = subprocess.run(["git", "status", "--porcelain=v1", "-z",
                          "--untracked-files=all"], cwd=R, check=True,
                         stdout=subprocess.PIPE).stdout.decode()
    fields, i = out.split("\0"), 0
    while i < len(fields) and fields[i]:
        orig = None
        if fields[i][0] in "RC":
            orig = fields[i + 1]
        want.add((fields[i][0], fields[i][1], fields[i][3:], orig))
        i += 2 if orig is not None else 1
    t.check("git: untracked all is git -uall",
            answered(r4) == want and ("?", "?", "newdir/x", None) in want,
            "daemon %s, git %s" % (sorted(answered(r4)), sorted(want)))
    r5 = c.req({"op": "git", "root": R})
    t.check("git: ... and the default listing is still its own entry",
            ("?", "?", "newdir/", None) in answered(r5), t.short(r5))
    r = c.req({"op": "git", "root": R, "untracked": "some"})
    t.check("git: another untracked value is bad_request",
            t.err_code(r) == "bad_request", t.short(r))

    # Requests at once for one root: one computation, the rest wait or
    # hit (it may finish before they arrive), all with the same answer.
    S = make_repo(tmp, "flight")
    write(S, "a", "changed\n")
    conns = [t.Conn(d.sock) for _ in range(6)]
    before, _ = gstats(c)
    for i, k in enumerate(conns):
        k.send({"id": i, "op": "git", "root": S})
    rs = [k.read(timeout=30) for k in conns]
    g, _ = gstats(c)
    t.check("git: single flight: all answered alike",
            all(x.get("ok") is True for x in rs) and
            len({json.dumps(sorted(answered(x))) for x in rs}) == 1,
            t.short(rs))
    t.check("git: single flight: one computation for six requests",
            g["counters"]["misses"] == before["counters"]["misses"] + 1 and
            g["counters"]["hits"] + g["counters"]["waits"] ==
            before["counters"]["hits"] + before["counters"]["waits"] + 5,
            t.short(g))
    for k in conns:
        k.close()

    # Later lines on a connection wait behind its git request, in order.
    c.send_raw((json.dumps({"id": 7, "op": "git", "root": S,
                            "max_age_ms": 0}) + "\n" +
                json.dumps({"id": 8, "op": "ping"}) + "\n").encode())
    a = [c.read(timeout=30), c.read()]
    t.check("git: answers stay in request order",
            [x.get("id") for x in a] == [7, 8], t.short(a))

    # A client that leaves while its status is computed (or just after):
    # the computation ends unanswered and is kept for the next asker.
    L = make_repo(tmp, "leaver")
    write(L, "u", "u\n")
    before, _ = gstats(c)
    k = t.Conn(d.sock)
    k.send({"op": "git", "root": L})
    k.close()

    def kept():
        g, _ = gstats(c)
        return g["usage"]["computing"] == 0 and \
            g["counters"]["misses"] == before["counters"]["misses"] + 1
    t.check("git: a client gone mid-computation: it still ends",
            t.wait_until(kept, 20), t.short(gstats(c)[0]))
    r = c.req({"op": "git", "root": L}, timeout=30)
    g, _ = gstats(c)
    t.check("git: ... and its status is kept for the next asker",
            r.get("ok") is True and answered(r) == porcelain(L) and
            g["counters"]["misses"] == before["counters"]["misses"] + 1,
            t.short(g))

    # Submodules: entries, not recursed, and (the daemon's leak check at
    # exit) no memory lost to libgit2's .gitmodules reader.
    M = make_repo(tmp, "super")
    src = make_repo(tmp, "subsrc")
    for n in ("sm1", "sm2"):
        subprocess.run(["git", "-c", "protocol.file.allow=always",
                        "submodule", "add", "-q", src, n], cwd=M,
                       check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    git(M, "commit", "-qm", "subs")
    write(M, "sm1/a", "changed\n")
    for _ in range(3):
        r = c.req({"op": "git", "root": M, "max_age_ms": 0}, timeout=30)
    t.check("git: submodules as git lists them",
            r.get("ok") is True and answered(r) == porcelain(M) and
            (" ", "M", "sm1", None) in answered(r), t.short(r))

    # Not a repository: a plain directory, a bare repository.
    P = os.path.join(tmp, "plain")
    os.makedirs(P)
    B = os.path.join(tmp, "bare.git")
    git(tmp, "init", "-q", "--bare", B)
    for what, root in (("a plain directory", P), ("a bare repository", B)):
        r = c.req({"op": "git", "root": root}, timeout=30)
        t.check("git: %s is not_a_repository" % what,
                t.err_code(r) == "not_a_repository", t.short(r))
    r = c.req({"op": "git", "root": R, "max_age_ms": -1})
    t.check("git: a negative max_age_ms is bad_request",
            t.err_code(r) == "bad_request", t.short(r))
    r = c.req({"op": "git", "root": "relative"})
    t.check("git: a relative root is bad_root",
            t.err_code(r) == "bad_root", t.short(r))

    # "limit": the answer holds at most that many files, and says so,
    # so a large status fits the output cap.
    L = make_repo(tmp, "limited")
    for i in range(5):
        write(L, "new%d" % i, "x\n")
    r = c.req({"op": "git", "root": L, "untracked": "all", "limit": 2},
              timeout=30)
    t.check("git limit 2: two files, truncated, total 5",
            len(r.get("files", [])) == 2 and r.get("truncated") is True and
            r.get("total") == 5, t.short(r))
    r = c.req({"op": "git", "root": L, "untracked": "all"}, timeout=30)
    t.check("git default limit: all five, not truncated",
            len(r.get("files", [])) == 5 and r.get("truncated") is False,
            t.short(r))
    r = c.req({"op": "git", "root": L, "limit": 0})
    t.check("git limit 0 is bad_request", t.err_code(r) == "bad_request",
            t.short(r))

    # A branch name that is not UTF-8 (git allows it) is shown, not
    # turned into an out-of-memory error.
    N = make_repo(tmp, "latin1-branch")
    subprocess.run(["git", "checkout", "-q", "-b", b"caf\xe9"], cwd=N,
                   check=True)
    r = c.req({"op": "git", "root": N}, timeout=30)
    t.check("git: a Latin-1 branch is shown with U+FFFD",
            r.get("ok") is True and r.get("branch") == "caf\ufffd",
            t.short(r))

    t.stop_daemon(d, c, "git daemon")


def t_caps(tmp):
    repos = [make_repo(tmp, "cap%d" % i) for i in range(3)]
    for R in repos:
        for n in ("u1", "u2", "u3"):
            write(R, n, "u\n")
    d = t.Daemon(tmp, "gitcaps", ["--max-git-projects", "2",
                                  "--max-git-paths", "2",
                                  "--git-ttl-ms", "600000",
                                  "--git-object-cache-bytes", "8M",
                                  "--git-mapped-bytes", "32M"])
    if not t.check("git caps: daemon up", d.wait_ready()):
        return
    c = t.Conn(d.sock)
    rs = [c.req({"op": "git", "root": R}, timeout=30) for R in repos]
    g, lim = gstats(c)
    # libgit2 reads its bounds back: the flags reached the library.
    t.check("git caps: libgit2's object cache and pack windows as flagged",
            lim.get("git_object_cache_bytes") == 8 << 20 and
            lim.get("git_mapped_bytes") == 32 << 20 and
            0 <= g["usage"]["object_cache_bytes"] <= 8 << 20, t.short(lim))
    t.check("git caps: three projects, cap 2: one evicted, two kept",
            g["counters"]["evicted_lru"] == 1 and
            g["usage"]["entries"] == 2, t.short(g))
    r = c.req({"op": "git", "root": repos[0]}, timeout=30)
    g2, _ = gstats(c)
    t.check("git caps: the least recently used went (asked again: a miss)",
            g2["counters"]["misses"] == g["counters"]["misses"] + 1,
            t.short(g2))
    t.check("git caps: past --max-git-paths the answer says truncated",
            all(x.get("truncated") is True and len(x["files"]) == 2 and
                x.get("total") == 3 for x in rs + [r]), t.short(rs))
    t.check("git caps: truncated statuses are counted",
            g2["counters"]["truncated"] == 4, t.short(g2))
    t.stop_daemon(d, c, "git caps daemon")

    # A byte cap no status fits: answered, never kept.
    d = t.Daemon(tmp, "gitbytes", ["--max-git-bytes", "64"])
    if not t.check("git bytes: daemon up", d.wait_ready()):
        return
    c = t.Conn(d.sock)
    r = c.req({"op": "git", "root": repos[0]}, timeout=30)
    g, _ = gstats(c)
    t.check("git bytes: answered though over the byte cap",
            r.get("ok") is True and len(r.get("files", [])) == 3,
            t.short(r))
    t.check("git bytes: not kept, counted",
            g["counters"]["too_big"] == 1 and g["usage"]["entries"] == 0 and
            g["usage"]["bytes"] == 0, t.short(g))
    t.stop_daemon(d, c, "git bytes daemon")


def t_ttl(tmp):
    R = make_repo(tmp, "ttl")
    d = t.Daemon(tmp, "gitttl", ["--git-ttl-ms", "100"])
    if not t.check("git ttl: daemon up", d.wait_ready()):
        return
    c = t.Conn(d.sock)
    # A first status can take long (libgit2 under valgrind: make valgrind).
    r = c.req({"op": "git", "root": R, "timeout_ms": 60000}, timeout=70)
    t.check("git ttl: answered", r.get("ok") is True, t.short(r))

    def freed():
        g, _ = gstats(c)
        return g["usage"]["entries"] == 0 and g["usage"]["bytes"] == 0 \
            and g["counters"]["expired"] == 1
    t.check("git ttl: the timer frees the expired entry, unasked",
            t.wait_until(freed, 20), t.short(gstats(c)[0]))
    t.stop_daemon(d, c, "git ttl daemon")


def t_deadline(tmp):
    """A status that takes longer than its client waits answers timeout
    (here libgit2 blocks opening a FIFO named .gitignore, until a writer
    comes); the computation runs on, and its result serves the next."""
    R = make_repo(tmp, "slow")
    fifo = os.path.join(R, "sub", ".gitignore")
    os.makedirs(os.path.dirname(fifo))
    t.mkfiles(R, ["sub/x.txt"])
    os.mkfifo(fifo)
    d = t.Daemon(tmp, "gitslow")
    if not t.check("git deadline: daemon up", d.wait_ready()):
        return
    c, c2 = t.Conn(d.sock), t.Conn(d.sock)
    c.send({"op": "git", "root": R, "timeout_ms": 300, "id": "first"})
    r2 = c2.req({"op": "git", "root": R, "timeout_ms": 300, "id": "second"},
                timeout=30)
    r1 = c.read(30)
    t.check("git deadline: the one computing answers timeout",
            t.err_code(r1) == "timeout" and r1.get("id") == "first",
            t.short(r1))
    t.check("git deadline: so does one waiting on it",
            t.err_code(r2) == "timeout" and r2.get("id") == "second",
            t.short(r2))
    t.check("git deadline: both connections still answer",
            c.req({"op": "ping"}).get("ok") is True and
            c2.req({"op": "ping"}).get("ok") is True)
    # A writer lets libgit2 read the FIFO (empty): the status completes.
    fd = os.open(fifo, os.O_WRONLY)
    os.close(fd)
    r = t.wait_until(lambda: (lambda x: x if x.get("ok") else None)(
        c.req({"op": "git", "root": R, "timeout_ms": 5000}, timeout=30)),
        20)
    t.check("git deadline: once it completes, the next asker has it",
            r is not None and r.get("ok") is True, t.short(r))
    # A project removed takes its cached status with it.
    t.mkfiles(R, ["top.txt"])
    os.unlink(fifo)
    t.add_ready(c, R, "git remove")
    c.req({"op": "git", "root": R}, timeout=30)
    n0 = gstats(c)[0]["usage"]["entries"]
    c.req({"op": "remove", "root": R})
    g = gstats(c)[0]
    t.check("git remove: the removed project's status is dropped",
            g["usage"]["entries"] == n0 - 1 and n0 >= 1, t.short(g))
    c2.close()
    t.stop_daemon(d, c, "git deadline daemon")


def t_join(tmp):
    """"max_age_ms":0 asks for a status begun after the request: one that
    finds a computation begun before its change waits for the next round
    instead of taking the old one's answer. libgit2 is held mid-status on
    FIFOs named .gitignore (it blocks opening one until a writer comes):
    past s1/ it has compared "a" (it walks in path order), and it waits
    at s2/ while "a" changes and the second request comes."""
    R = make_repo(tmp, "join")
    fifos = [os.path.join(R, n, ".gitignore") for n in ("s1", "s2")]
    for f in fifos:
        os.makedirs(os.path.dirname(f))
        os.mkfifo(f)
    t.mkfiles(R, ["s1/x.txt", "s2/x.txt"])
    d = t.Daemon(tmp, "gitjoin")
    if not t.check("git join: daemon up", d.wait_ready()):
        return
    c, c1, c2 = t.Conn(d.sock), t.Conn(d.sock), t.Conn(d.sock)

    def release(f):
        # A writer opens only while a reader waits in open(): it lets
        # that reader go (it reads nothing: EOF once this one closes).
        try:
            os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
            return True
        except OSError:
            return False
    c1.send({"op": "git", "root": R, "max_age_ms": 0, "id": "first"})
    if not t.check("git join: libgit2 reached s1/ (past a)",
                   t.wait_until(lambda: release(fifos[0]), 20)):
        return
    write(R, "a", "changed while the first status ran\n")
    before, _ = gstats(c)
    c2.send({"op": "git", "root": R, "max_age_ms": 0, "id": "second"})
    t.check("git join: the second request waits on the flight",
            t.wait_until(lambda: gstats(c)[0]["usage"]["waiting"] == 1,
                         20), t.short(gstats(c)[0]))
    done = threading.Event()

    def releaser():
        while not done.is_set():
            if not any([release(f) for f in fifos]):
                done.wait(0.005)
    th = threading.Thread(target=releaser)
    th.start()
    try:
        r1, r2 = c1.read(30), c2.read(30)
    finally:
        done.set()
        th.join()
    for f in fifos:
        os.unlink(f)
    g, _ = gstats(c)
    t.check("git join: the first, begun before the change, missed it",
            r1.get("ok") is True and
            (" ", "M", "a", None) not in answered(r1), t.short(r1))
    t.check("git join: the second got a status begun after it asked",
            r2.get("ok") is True and r2.get("id") == "second" and
            (" ", "M", "a", None) in answered(r2) and
            answered(r2) == porcelain(R), t.short(r2))
    t.check("git join: counted as one more round",
            g["counters"]["rounds"] == before["counters"]["rounds"] + 1 and
            g["counters"]["waits_next"] ==
            before["counters"]["waits_next"] + 1 and
            g["usage"]["computing"] == 0 and g["usage"]["waiting"] == 0,
            t.short(g))
    c1.close()
    c2.close()
    t.stop_daemon(d, c, "git join daemon")


def t_env(tmp):
    """git for the fixtures and for fidxd: a private HOME, no system
    config, so nobody's settings change what is listed."""
    home = os.path.join(tmp, "home")
    os.makedirs(home)
    with open(os.path.join(home, ".gitconfig"), "w") as f:
        f.write("[user]\n\tname = t\n\temail = t@example.com\n"
                "[init]\n\tdefaultBranch = main\n")
    os.environ["HOME"] = home
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    for v in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE",
              "XDG_CONFIG_HOME"):
        os.environ.pop(v, None)


if __name__ == "__main__":
    sys.exit(t.main("daemon_git.py", [("git env", t_env),
                                      ("status", t_status),
                                      ("caps", t_caps), ("ttl", t_ttl),
                                      ("deadline", t_deadline),
                                      ("join", t_join)]))
