#!/usr/bin/env python3
"""tests/daemon_watch.py - inotify keeps the index fresh: files and whole
trees made, renamed, moved in and out and deleted; a burst; ignored
directories unwatched; lost events end in a full rebuild; a watch limit
degrades a project, whose periodic rebuild still catches changes; a
deleted root is gone and comes back with reindex; sync.

Real files, real inotify, a real daemon. Every wait polls a condition
until a deadline (wait_until), or is a `sync`, whose answer must already
hold the change: both are checked, so a sync that answered early fails.
"""

import os
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as t  # noqa: E402  (the client library: Conn, Daemon, check)

DEADLINE = 10.0


def paths(c, root, regex, limit=10000):
    """Every indexed path matching regex (a set), and the matched count."""
    r = c.req({"op": "query", "root": root, "q": regex, "mode": "regex",
               "limit": limit})
    return set(t.result_paths(r)), r.get("matched")


def nfiles(c, root):
    p = t.find_project(c, root)
    return p.get("files") if p else None


def sync(c, root):
    r = c.req({"op": "sync", "root": root}, timeout=30)
    t.check("sync %s answers ok" % os.path.basename(root),
            r.get("ok") is True and isinstance(r.get("generation"), int),
            t.short(r))
    return r


def has(c, root, rel):
    return rel in paths(c, root, "^" + rel.replace(".", "[.]") + "$")[0]


def t_files(tmp):
    R = t.mkdir_fixture(tmp, "files", ["src/main.c", "README.md"])
    d, c = t.start_daemon(tmp, "files")
    if d is None:
        return
    r = t.add_ready(c, R, "files")
    t.check("files: the add says it is watched", r.get("watch") == "watching",
            t.short(r))
    g0 = r.get("generation")

    # A save: found by polling, and by sync at once.
    t.mkfiles(R, ["src/new_file.c"])
    t.check("files: a new file appears",
            t.wait_until(lambda: has(c, R, "src/new_file.c"), DEADLINE))
    t.mkfiles(R, ["src/second.c"])
    s = sync(c, R)
    t.check("files: after sync, the file just made is there",
            has(c, R, "src/second.c"))
    t.check("files: each applied change raised the generation",
            s.get("generation", 0) > g0, t.short(s))
    q = c.req({"op": "query", "root": R, "q": "second"})
    t.check("files: a query says the project is watched",
            q.get("watch") == "watching", t.short(q))

    os.rename(os.path.join(R, "src/second.c"), os.path.join(R, "src/third.c"))
    sync(c, R)
    t.check("files: a renamed file has its new name only",
            has(c, R, "src/third.c") and not has(c, R, "src/second.c"))
    os.unlink(os.path.join(R, "src/third.c"))
    sync(c, R)
    t.check("files: a deleted file is gone", not has(c, R, "src/third.c"))
    t.check("files: the count is exact", nfiles(c, R) == 3, nfiles(c, R))
    # Hidden names and .git are not listed by a change either.
    t.mkfiles(R, [".hidden", ".git/HEAD"])
    sync(c, R)
    t.check("files: hidden and .git files made later stay out",
            nfiles(c, R) == 3, nfiles(c, R))
    st = t.stats(c).get("watch", {})
    t.check("files: stats counts batches and watches",
            st.get("counters", {}).get("batches", 0) >= 3 and
            st.get("usage", {}).get("watches", 0) >= 2, t.short(st))
    t.stop_daemon(d, c, "files daemon")


def tree(root, top, n):
    """n files under root/top, in a few levels of directories."""
    rels = ["%s/d%d/e%d/f%04d.txt" % (top, i % 7, i % 3, i) for i in range(n)]
    t.mkfiles(root, rels)
    return rels


def t_trees(tmp):
    R = t.mkdir_fixture(tmp, "trees", ["keep.txt"])
    outside = os.path.join(tmp, "outside")
    os.makedirs(outside)
    d, c = t.start_daemon(tmp, "trees")
    if d is None:
        return
    t.add_ready(c, R, "trees")

    # Made in place: mkdir -p and files at once, racing the watch.
    tree(R, "made", 3000)
    sync(c, R)
    got, n = paths(c, R, "^made/")
    t.check("trees: a tree made in place is all there", n == 3000, n)

    # Moved in from outside the project.
    tree(outside, "bulk", 2000)
    os.rename(os.path.join(outside, "bulk"), os.path.join(R, "bulk"))
    sync(c, R)
    t.check("trees: a tree moved in is all there",
            paths(c, R, "^bulk/")[1] == 2000)

    # Renamed within: old names gone, new ones there, and the watches
    # follow (a file made under the new name afterwards is seen).
    os.rename(os.path.join(R, "bulk"), os.path.join(R, "renamed"))
    sync(c, R)
    t.check("trees: a renamed tree has only its new names",
            paths(c, R, "^renamed/")[1] == 2000 and
            paths(c, R, "^bulk/")[1] == 0)
    t.mkfiles(R, ["renamed/d1/e1/later.txt"])
    sync(c, R)
    t.check("trees: a file made in a renamed tree is seen",
            has(c, R, "renamed/d1/e1/later.txt"))

    # Moved out: gone, and what happens to it outside is not ours.
    os.rename(os.path.join(R, "renamed"), os.path.join(outside, "away"))
    sync(c, R)
    t.check("trees: a tree moved out is gone",
            paths(c, R, "^renamed/")[1] == 0)
    t.mkfiles(outside, ["away/d1/e1/outside.txt"])
    sync(c, R)
    t.check("trees: a file made in a moved-out tree is not listed",
            paths(c, R, "outside[.]txt")[1] == 0)

    shutil.rmtree(os.path.join(R, "made"))
    sync(c, R)
    t.check("trees: a deleted tree is gone, the rest stays",
            nfiles(c, R) == 1, nfiles(c, R))
    w = t.stats(c).get("watch", {}).get("usage", {}).get("watches")
    t.check("trees: deleted and moved-out directories lose their watches",
            w == 1, w)
    t.stop_daemon(d, c, "trees daemon")


def t_gap(tmp):
    """A directory whose mtime cannot tell a change right after its
    listing (here in the future: always "just changed") is watched before
    the walk lists it."""
    R = t.mkdir_fixture(tmp, "gap", ["src/a.c", "doc/b.md"])
    future = os.stat(R).st_mtime + 3600
    os.utime(os.path.join(R, "src"), (future, future))
    d, c = t.start_daemon(tmp, "gap")
    if d is None:
        return
    t.add_ready(c, R, "gap")
    sync(c, R)
    w = t.stats(c).get("watch", {})
    t.check("gap: the walk waited for that directory's watch",
            w.get("walk_waits", 0) >= 1, t.short(w))
    t.check("gap: and the index is exact", nfiles(c, R) == 2, nfiles(c, R))
    t.check("gap: no directory had to be read again",
            w.get("rescans") == 0, t.short(w))
    t.stop_daemon(d, c, "gap daemon")


def t_burst(tmp):
    R = t.mkdir_fixture(tmp, "burst", ["base.txt"])
    d, c = t.start_daemon(tmp, "burst")
    if d is None:
        return
    t.add_ready(c, R, "burst")
    rels = ["b/%02d/f%05d" % (i % 50, i) for i in range(20000)]
    t.mkfiles(R, rels, b"")
    sync(c, R)
    t.check("burst: 20,000 creations, each listed once",
            nfiles(c, R) == 20001, nfiles(c, R))
    st = t.stats(c).get("watch", {}).get("counters", {})
    t.check("burst: they were applied in batches, not one by one",
            0 < st.get("batches", 0) < 5000, t.short(st))
    for rel in rels:
        os.unlink(os.path.join(R, rel))
    sync(c, R)
    t.check("burst: and after deleting them, exactly the one left",
            nfiles(c, R) == 1, nfiles(c, R))
    t.stop_daemon(d, c, "burst daemon")


def git(root, *args):
    subprocess.run(["git", "-C", root] + list(args), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def t_stale(tmp):
    """Watches the kernel drops (deleted directories): libinotifytools
    keeps an entry for each unless its removal is told it worked (our
    inotify_rm_watch); so 5,000 deleted directories leave nothing stale,
    need no restart, and the index stays exact."""
    R = t.mkdir_fixture(tmp, "stale", ["keep/k.txt"])
    d, c = t.start_daemon(tmp, "stale")
    if d is None:
        return
    t.add_ready(c, R, "stale")
    for i in range(5000):
        os.makedirs(os.path.join(R, "tmp", "d%04d" % i))
    sync(c, R)
    w = t.stats(c).get("watch", {})
    t.check("stale: 5,000 new directories are watched",
            w.get("usage", {}).get("watches", 0) >= 5003, t.short(w))
    shutil.rmtree(os.path.join(R, "tmp"))
    t.check("stale: once they are deleted, their watches go",
            t.wait_until(lambda: t.stats(c).get("watch", {}).get(
                "usage", {}).get("watches") == 2, DEADLINE),
            t.short(t.stats(c).get("watch")))
    sync(c, R)
    t.mkfiles(R, ["keep/after.txt"])
    sync(c, R)
    w = t.stats(c).get("watch", {})
    t.check("stale: the library forgot every one: none stale, no restart",
            w.get("usage", {}).get("watches") == 2 and
            w.get("counters", {}).get("stale", 99) == 0 and
            w.get("counters", {}).get("restarts", 99) == 0, t.short(w))
    t.check("stale: and the library said nothing on stderr",
            "Failed to remove watch" not in d.stderr(), d.stderr()[-400:])
    t.check("stale: and the index is exact, changes still seen",
            nfiles(c, R) == 2 and has(c, R, "keep/after.txt"), nfiles(c, R))
    t.stop_daemon(d, c, "stale daemon")


def t_ignored(tmp):
    R = t.mkdir_fixture(tmp, "ign", ["src/a.c", ".gitignore",
                                     "node_modules/x/index.js"])
    with open(os.path.join(R, ".gitignore"), "w") as f:
        f.write("node_modules/\n")
    git(R, "init", "-q")
    d, c = t.start_daemon(tmp, "ign")
    if d is None:
        return
    t.add_ready(c, R, "ign")
    # The add answers once the index is live; its watches, after a sync.
    sync(c, R)
    w0 = t.stats(c).get("watch", {}).get("usage", {}).get("watches")
    t.check("ignored: only the root, src, and git's .git and .git/refs/heads "
            "are watched", w0 == 4, w0)
    t.mkfiles(R, ["node_modules/y/z/new.js", "src/b.c"])
    sync(c, R)
    t.check("ignored: a file in an ignored tree is not listed",
            paths(c, R, "node_modules")[1] == 0)
    t.check("ignored: one beside it is", has(c, R, "src/b.c"))
    w1 = t.stats(c).get("watch", {}).get("usage", {}).get("watches")
    t.check("ignored: no watch was added under it", w1 == w0, w1)
    # A .gitignore saved changes what its directory lists: read again.
    with open(os.path.join(R, ".gitignore"), "w") as f:
        f.write("node_modules/\nsrc/b.c\n")
    sync(c, R)
    t.check("ignored: a rule added to .gitignore takes its file out",
            not has(c, R, "src/b.c") and has(c, R, "src/a.c"))
    with open(os.path.join(R, ".gitignore"), "w") as f:
        f.write("node_modules/\n")
    sync(c, R)
    t.check("ignored: and taken away, brings it back", has(c, R, "src/b.c"))
    t.stop_daemon(d, c, "ignored daemon")


def t_git(tmp):
    """The git cache hears the watcher: a branch switch, a commit and an
    edit are in the next git answer, well within the TTL."""
    R = t.mkdir_fixture(tmp, "gitw", ["a.txt", "src/b.c"])
    git(R, "init", "-q", "-b", "main")
    git(R, "-c", "user.name=t", "-c", "user.email=t@e", "add", ".")
    git(R, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "1")
    d, c = t.start_daemon(tmp, "gitw", ["--git-ttl-ms", "3600000"])
    if d is None:
        return
    t.add_ready(c, R, "gitw")
    r = c.req({"op": "git", "root": R})
    t.check("git: first answer, branch main, clean",
            r.get("branch") == "main" and r.get("files") == [], t.short(r))
    git(R, "checkout", "-q", "-b", "feature")
    sync(c, R)
    r = c.req({"op": "git", "root": R})
    t.check("git: a branch switch is in the next answer (TTL an hour)",
            r.get("branch") == "feature", t.short(r))
    with open(os.path.join(R, "src/b.c"), "w") as f:
        f.write("changed\n")
    sync(c, R)
    r = c.req({"op": "git", "root": R})
    t.check("git: an edit in place is in the next answer",
            [(x.get("path"), x.get("worktree")) for x in r.get("files", [])]
            == [("src/b.c", "M")], t.short(r))
    git(R, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam",
        "2")
    sync(c, R)
    r = c.req({"op": "git", "root": R})
    t.check("git: a commit is in the next answer", r.get("files") == [],
            t.short(r))
    # A query's results with their letters.
    t.mkfiles(R, ["src/new.c", "fresh/dir/u.txt"])
    with open(os.path.join(R, "a.txt"), "w") as f:
        f.write("edited\n")
    git(R, "-c", "user.name=t", "-c", "user.email=t@e", "add", "src/new.c")
    sync(c, R)

    def lettered():
        r = c.req({"op": "query", "root": R, "q": "", "mode": "regex",
                   "git": True, "limit": 100})
        return r if r.get("git_status") == "fresh" else None
    r = t.wait_until(lettered, DEADLINE)
    got = {x["path"]: x.get("git") for x in (r or {}).get("results", [])}
    want = {"a.txt": " M", "src/b.c": None, "src/new.c": "A ",
            "fresh/dir/u.txt": "??"}
    t.check("git: query results carry git's letters (as --porcelain)",
            got == want, "%s\nwant %s" % (got, want))
    # "boost":"git": at equal match quality the file being changed first.
    t.mkfiles(R, ["lib/alpha_x.c", "lib/alpha_y.c"])
    git(R, "-c", "user.name=t", "-c", "user.email=t@e", "add", "lib")
    git(R, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "3")
    with open(os.path.join(R, "lib/alpha_y.c"), "w") as f:
        f.write("work in progress\n")
    sync(c, R)

    def order(**kw):
        return t.result_paths(c.req(dict({"op": "query", "root": R,
                                           "q": "alpha"}, **kw)))
    t.check("git: without a boost, equal matches in path order",
            order() == ["lib/alpha_x.c", "lib/alpha_y.c"], order())
    t.check("git: \"boost\":\"git\" puts the file being changed first",
            t.wait_until(lambda: order(boost="git") ==
                         ["lib/alpha_y.c", "lib/alpha_x.c"], DEADLINE),
            order(boost="git"))
    r = c.req({"op": "query", "root": R, "q": "alpha", "boost": "mine"})
    t.check("git: another boost is a bad request",
            t.err_code(r) == "bad_request", t.short(r))
    N = t.mkdir_fixture(tmp, "nogit", ["x.txt"])
    t.add_ready(c, N, "nogit")
    t.check("git: a project that is no repository says none",
            t.wait_until(lambda: c.req({"op": "query", "root": N, "q": "x",
                                        "git": True}).get("git_status") ==
                         "none", DEADLINE))
    g = t.stats(c).get("git", {}).get("counters", {})
    t.check("git: counted as invalidated and staled",
            g.get("invalidated", 0) >= 2 and g.get("staled", 0) >= 1,
            t.short(g))
    t.stop_daemon(d, c, "git daemon")


def t_overflow(tmp):
    # The directories exist and are watched: every creation is an event.
    R = t.mkdir_fixture(tmp, "over", ["o/%d/keep" % i for i in range(9)])
    d, c = t.start_daemon(tmp, "over", ["--watch-queue", "8"])
    if d is None:
        return
    t.add_ready(c, R, "over")
    # Made while fidxd is stopped, 600 creations wait in the kernel and
    # come in one read, faster than the loop takes them (made while it
    # runs, the watcher could keep up with the file system, and did):
    # up to five bursts, until one overflowed.
    made = 9
    for burst in range(5):
        rels = ["o/%d/f%d-%04d" % (i % 9, burst, i) for i in range(600)]
        os.kill(d.p.pid, signal.SIGSTOP)
        try:
            t.mkfiles(R, rels, b"")
        finally:
            os.kill(d.p.pid, signal.SIGCONT)
        made += len(rels)
        sync(c, R)
        if t.stats(c).get("watch", {}).get("counters", {}).get(
                "overflows", 0) > 0:
            break
    t.check("overflow: the index is exact after it",
            t.wait_until(lambda: nfiles(c, R) == made, DEADLINE),
            (nfiles(c, R), made))
    st = t.stats(c).get("watch", {})
    t.check("overflow: counted, and a full rebuild followed",
            st.get("counters", {}).get("overflows", 0) > 0 and
            st.get("counters", {}).get("overflow_rebuilds", 0) > 0,
            t.short(st))
    t.check("overflow: the queue never held more than its bound",
            st.get("usage", {}).get("queued_peak", 99) <= 8 and
            st.get("usage", {}).get("pending_peak", 99) <= 8, t.short(st))
    t.stop_daemon(d, c, "overflow daemon")


def t_rings(tmp):
    # The event rings start over at slot 0 whenever the loop empties
    # them, so what they have touched (resident) is their deepest
    # backlog: 40 rounds of 10 creations, each synced (the rings empty),
    # pass 400 events through rings of 64 slots and touch few of them.
    R = t.mkdir_fixture(tmp, "rings", ["r/keep"])
    d, c = t.start_daemon(tmp, "rings", ["--watch-queue", "64"])
    if d is None:
        return
    t.add_ready(c, R, "rings")
    for burst in range(40):
        t.mkfiles(R, ["r/f%02d-%d" % (burst, i) for i in range(10)], b"x")
        sync(c, R)
    t.check("rings: the index is exact",
            t.wait_until(lambda: nfiles(c, R) == 401, DEADLINE),
            (nfiles(c, R), 401))
    st = t.stats(c).get("watch", {})
    u, k = st.get("usage", {}), st.get("counters", {})
    t.check("rings: 400 events went through, none lost",
            k.get("events", 0) >= 400 and k.get("overflows", 1) == 0,
            t.short(st))
    t.check("rings: they touched their backlog's slots, not all 64",
            0 < u.get("queue_slots", 0) < 64 and
            u.get("queue_slots", 0) <= 2 * max(u.get("queued_peak", 0),
                                               u.get("written_peak", 0)) +
            2, t.short(u))
    t.stop_daemon(d, c, "rings daemon")


def t_degraded(tmp):
    R = t.mkdir_fixture(tmp, "deg", ["a/1", "b/2", "c/3", "d/4", "e/5"])
    d, c = t.start_daemon(tmp, "deg", ["--max-watches", "3",
                                       "--degraded-rebuild-ms", "300"])
    if d is None:
        return
    t.add_ready(c, R, "deg")
    p = t.wait_until(lambda: (t.find_project(c, R) or {}).get("watch") ==
                     "degraded" and t.find_project(c, R), DEADLINE)
    t.check("degraded: past the watch limit the project says degraded, "
            "and why", p and "watch" in (p.get("watch_message") or ""),
            t.short(p))
    q = c.req({"op": "query", "root": R, "q": "x"})
    t.check("degraded: queries still answer, and say so",
            q.get("ok") is True and q.get("watch") == "degraded", t.short(q))
    s = c.req({"op": "sync", "root": R})
    t.check("degraded: sync answers at once, saying it is not watched",
            s.get("ok") is True and s.get("watch") == "degraded", t.short(s))
    t.mkfiles(R, ["a/late.txt"])
    t.check("degraded: the periodic rebuild still finds a new file",
            t.wait_until(lambda: has(c, R, "a/late.txt"), DEADLINE))
    st = t.stats(c).get("watch", {}).get("counters", {})
    t.check("degraded: counted", st.get("nospace", 0) >= 1 and
            st.get("degraded_rebuilds", 0) >= 1, t.short(st))
    t.stop_daemon(d, c, "degraded daemon")


def t_gone(tmp):
    R = t.mkdir_fixture(tmp, "gone", ["x/a.txt", "b.txt"])
    d, c = t.start_daemon(tmp, "gone")
    if d is None:
        return
    t.add_ready(c, R, "gone")
    shutil.rmtree(R)
    p = t.wait_until(lambda: (t.find_project(c, R) or {}).get("state") ==
                     "gone" and t.find_project(c, R), DEADLINE)
    t.check("gone: a deleted root makes the project gone, with no files",
            p and p.get("files") == 0 and p.get("watch") == "off",
            t.short(p))
    t.check("gone: its watches are removed",
            t.wait_until(lambda: t.stats(c).get("watch", {}).get(
                "usage", {}).get("watches") == 0, DEADLINE))
    t.mkfiles(R, ["back.txt", "y/z.txt"])
    r = c.req({"op": "reindex", "root": R, "wait": True}, timeout=20)
    t.check("gone: the root back and reindexed is ready again",
            r.get("ok") is True, t.short(r))
    p = t.find_project(c, R)
    t.check("gone: with its new files, watched again",
            p and p.get("state") == "ready" and p.get("files") == 2 and
            p.get("watch") == "watching", t.short(p))
    t.mkfiles(R, ["y/after.txt"])
    sync(c, R)
    t.check("gone: and changes are seen again", has(c, R, "y/after.txt"))
    r = c.req({"op": "remove", "root": R})
    t.check("gone: remove answers ok", r.get("ok") is True, t.short(r))
    t.check("remove: a removed project's watches go",
            t.wait_until(lambda: t.stats(c).get("watch", {}).get(
                "usage", {}).get("watches") == 0, DEADLINE))
    t.stop_daemon(d, c, "gone daemon")


def t_nested(tmp):
    """Nested projects share the watches of the directories both hold:
    removing one must leave the other seeing changes there, whichever
    was added first."""
    for first in ("outer", "inner"):
        A = t.mkdir_fixture(tmp, "nest-" + first,
                            ["top.txt", "in/a.txt", "in/deep/b.txt"])
        B = os.path.join(A, "in")
        d, c = t.start_daemon(tmp, "nested-" + first)
        if d is None:
            return
        order = [A, B] if first == "outer" else [B, A]
        for R in order:
            t.add_ready(c, R, "nested %s" % os.path.basename(R))
        gone, kept = order[1], order[0]
        r = c.req({"op": "remove", "root": gone})
        t.check("nested (%s first): remove answers ok" % first,
                r.get("ok") is True, t.short(r))
        # The other is walked again, then a change in the shared part.
        t.check("nested (%s first): the kept one is walked again" % first,
                t.wait_until(lambda: t.stats(c).get("watch", {}).get(
                    "shared_rewalks", 0) >= 1, DEADLINE))
        sync(c, kept)
        t.mkfiles(A, ["in/deep/new.txt"])
        sync(c, kept)
        rel = "deep/new.txt" if kept == B else "in/deep/new.txt"
        t.check("nested (%s first): a file made in the shared part after "
                "the other was removed is found" % first, has(c, kept, rel),
                sorted(paths(c, kept, "new")[0]))
        t.stop_daemon(d, c, "nested daemon")


if __name__ == "__main__":
    sys.exit(t.main("daemon_watch.py", [
        ("nested", t_nested),
        ("files", t_files), ("trees", t_trees), ("gap", t_gap),
        ("burst", t_burst),
        ("stale", t_stale), ("ignored", t_ignored), ("git", t_git), ("overflow", t_overflow),
        ("rings", t_rings), ("degraded", t_degraded), ("gone", t_gone)]))
