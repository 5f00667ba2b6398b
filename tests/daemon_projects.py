#!/usr/bin/env python3
"""tests/daemon_projects.py - projects: add, reindex, remove, gone roots.

add with and without wait, under another spelling of the root, with
options that change; projects' fields; reindex (a hundred of them leave
the index's bytes as they were, reindex all; a reindex shares what did
not change); a root deleted, re-created
and deleted again; auto-add by a query. One daemon.

Run by tests/run.sh, or alone:
    FIDX_BUILD=build/asan python3 tests/daemon_projects.py
tests/fidxtest.py has the client, the checks and the rules (no sleep and
hope, a clean stderr, cleanup on every exit).
"""

import os
import shutil
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402
from fidxtest import (  # noqa: E402
    MAIN_FILES, check, check_ids_echoed, err_code, err_msg, find_project,
    mkdir_fixture, mkfiles, result_paths, section, short, start_daemon, stats,
    stop_daemon)


def t_add(d, c, R):
    """add with wait, again under another spelling, and projects."""
    r = c.req({"op": "add", "root": R, "wait": True}, timeout=20)
    check("add wait: ok", r.get("ok") is True, short(r))
    check("add wait: state ready", r.get("state") == "ready", short(r))
    check("add wait: files == %d" % len(MAIN_FILES),
          r.get("files") == len(MAIN_FILES), short(r))
    check("add wait: root resolved", r.get("root") == R, short(r))
    check("add wait: added true", r.get("added") is True, short(r))
    check("add wait: generation >= 1", isinstance(r.get("generation"), int)
          and r["generation"] >= 1, short(r))
    gen = r.get("generation")

    r = c.req({"op": "add", "root": R + "/src/..", "wait": False})
    check("add again (unresolved spelling): added false, same root",
          r.get("ok") is True and r.get("added") is False and
          r.get("root") == R, short(r))

    p = find_project(c, R)
    check("projects lists the root", p is not None)
    p = p or {}
    check("projects: files/generation/state",
          p.get("files") == len(MAIN_FILES) and p.get("generation") == gen
          and p.get("state") == "ready", short(p))
    check("projects: bytes/capped/build_ms/built_at present",
          all(k in p for k in ("bytes", "capped", "build_ms", "built_at"))
          and p.get("capped") is False and p.get("bytes", 0) > 0, short(p))
    return gen


def t_reindex(d, c, R, gen):
    mkfiles(R, ["src/new_feature.rs", "assets/logo_wide.svg"])
    os.unlink(os.path.join(R, "docs/guide.md"))
    want = len(MAIN_FILES) + 1
    r = c.req({"op": "reindex", "root": R, "wait": True}, timeout=20)
    check("reindex wait: ok, files == %d" % want,
          r.get("ok") is True and r.get("files") == want, short(r))
    check("reindex wait: generation increased",
          isinstance(r.get("generation"), int) and gen is not None and
          r["generation"] > gen, short(r))
    check("reindex wait: reindexing == 1", r.get("reindexing") == 1,
          short(r))
    r = c.req({"op": "query", "root": R, "q": "newfeat"})
    check("reindex: the new file is found",
          result_paths(r)[:1] == ["src/new_feature.rs"], short(r))
    r = c.req({"op": "query", "root": R, "q": "guide", "mode": "exact"})
    check("reindex: the deleted file is gone",
          r.get("ok") is True and r.get("results") == [], short(r))

    before = stats(c).get("usage", {}).get("index_bytes")
    p0 = find_project(c, R) or {}
    bad = []
    last = p0.get("generation", 0)
    t0 = time.monotonic()
    for i in range(100):
        r = c.req({"op": "reindex", "root": R, "wait": True}, timeout=20)
        if r.get("files") != want or not r.get("generation", 0) > last:
            bad.append((i, short(r, 200)))
        last = r.get("generation", last)
    check("100 reindexes: files stays %d, generation rises each time" %
          want, not bad, bad[:3])
    after = stats(c).get("usage", {}).get("index_bytes")
    check("100 reindexes: usage.index_bytes unchanged",
          before is not None and before == after,
          "before %r after %r" % (before, after))
    p1 = find_project(c, R) or {}
    check("100 reindexes: projects files/bytes unchanged",
          p1.get("files") == want and p1.get("bytes") == p0.get("bytes"),
          "before %s after %s" % (short(p0), short(p1)))
    print("# 100 reindexes took %.2fs" % (time.monotonic() - t0))
    r = c.req({"op": "reindex", "all": True, "wait": True}, timeout=20)
    check("reindex all wait: projects listed",
          r.get("ok") is True and isinstance(r.get("projects"), list) and
          any(p.get("root") == R and p.get("files") == want
              for p in r["projects"]), short(r))
    r = c.req({"op": "reindex", "all": True, "root": R})
    check("reindex all with root: bad_request",
          err_code(r) == "bad_request", short(r))


def t_rebuild_shares(d, c, tmp):
    """A reindex shares the segments of the index it replaces where the
    tree did not change: nothing made for an unchanged tree of several
    segments, nor after a delta already took a change in (the delta cut
    its segments elsewhere than a build would)."""
    B = os.path.join(tmp, "segs")
    for sub in ("a", "b", "c"):
        os.makedirs(os.path.join(B, sub))
        for i in range(5000):
            open(os.path.join(B, sub, "f%05d" % i), "w").close()
    r = c.req({"op": "add", "root": B, "wait": True}, timeout=30)
    check("segments tree: added, 15000 files",
          r.get("ok") is True and r.get("files") == 15000, short(r))
    w = (find_project(c, B) or {}).get("last_walk") or {}
    check("first walk: made its segments, shared none",
          w.get("segments_made", 0) >= 3 and w.get("segments_shared") == 0
          and w.get("bytes_made", 0) > 0, short(w))
    made = w.get("segments_made")
    r = c.req({"op": "reindex", "root": B, "wait": True}, timeout=30)
    p = find_project(c, B) or {}
    w = p.get("last_walk") or {}
    check("reindex, nothing changed: every segment shared, none made",
          r.get("files") == 15000 and w.get("segments_made") == 0 and
          w.get("bytes_made") == 0 and w.get("segments_shared") == made,
          short(p))
    mkfiles(B, ["b/new_one.txt"])
    os.unlink(os.path.join(B, "a", "f00010"))
    r = c.req({"op": "sync", "root": B, "timeout_ms": 10000}, timeout=20)
    p = find_project(c, B) or {}
    check("a change, synced: a delta made a segment or two",
          r.get("ok") is True and p.get("files") == 15000 and
          1 <= (p.get("last_change") or {}).get("segments_made", 0) <= 2,
          short(p))
    r = c.req({"op": "reindex", "root": B, "wait": True}, timeout=30)
    p = find_project(c, B) or {}
    w = p.get("last_walk") or {}
    check("reindex after the delta: every segment shared, none made",
          r.get("files") == 15000 and w.get("segments_made") == 0 and
          w.get("segments_shared", 0) >= made, short(p))
    r = c.req({"op": "query", "root": B, "q": "new_one", "mode": "exact"})
    check("reindex after the delta: the new file is found",
          result_paths(r) == ["b/new_one.txt"], short(r))
    r = c.req({"op": "query", "root": B, "q": "a/f00010", "mode": "exact"})
    check("reindex after the delta: the deleted file is gone",
          r.get("ok") is True and r.get("results") == [], short(r))
    c.req({"op": "remove", "root": B})


def t_gone(d, c, tmp):
    G = mkdir_fixture(tmp, "doomed", ["one.txt", "two/three.txt"])
    r = c.req({"op": "add", "root": G, "wait": True}, timeout=20)
    check("doomed root: add ready, 2 files", r.get("files") == 2, short(r))
    shutil.rmtree(G)
    r = c.req({"op": "reindex", "root": G, "wait": True}, timeout=20)
    check("deleted root: reindex wait answers ok",
          r.get("ok") is True, short(r))
    check("deleted root: state gone", r.get("state") == "gone", short(r))
    check("deleted root: files 0", r.get("files") == 0, short(r))
    p = find_project(c, G) or {}
    check("deleted root: projects says gone with a message",
          p.get("state") == "gone" and p.get("message"), short(p))
    r = c.req({"op": "query", "root": G, "q": "one"})
    check("deleted root: query ok, zero results, state gone",
          r.get("ok") is True and r.get("results") == [] and
          r.get("matched") == 0 and r.get("state") == "gone", short(r))
    r = c.req({"op": "reindex", "root": G, "wait": True}, timeout=20)
    check("deleted root: reindexed again, still gone",
          r.get("state") == "gone" and r.get("files") == 0, short(r))
    mkfiles(G, ["reborn.txt"])
    r = c.req({"op": "reindex", "root": G, "wait": True}, timeout=20)
    check("re-created root: reindex makes it ready, 1 file, no message",
          r.get("state") == "ready" and r.get("files") == 1 and
          "message" not in r, short(r))
    shutil.rmtree(G)
    r = c.req({"op": "reindex", "root": G, "wait": True}, timeout=20)
    check("deleted again: gone", r.get("state") == "gone", short(r))
    r = c.req({"op": "remove", "root": G})
    check("deleted root: remove works", r.get("ok") is True and
          r.get("removed") is True and r.get("root") == G, short(r))
    check("deleted root: no longer listed", find_project(c, G) is None)
    r = c.req({"op": "remove", "root": G})
    check("deleted root: second remove refused",
          err_code(r) in ("bad_root", "no_project"), short(r))


def t_add_nowait(d, c, tmp):
    W = mkdir_fixture(tmp, "nowait", ["w%02d.txt" % i for i in range(20)])
    r = c.req({"op": "add", "root": W})
    check("add without wait: ok, added, state indexing, no files yet",
          r.get("ok") is True and r.get("added") is True and
          r.get("state") == "indexing" and "files" not in r and
          "generation" not in r, short(r))
    r = c.req({"op": "add", "root": W, "wait": True}, timeout=20)
    check("add wait on a project being added: ready, 20 files, added false",
          r.get("state") == "ready" and r.get("files") == 20 and
          r.get("added") is False, short(r))
    # A burst of reindexes while walks run, then one that waits.
    for _ in range(10):
        c.send({"op": "reindex", "root": W})
    burst = [c.read() for _ in range(10)]
    check("reindex burst: 10 answers, each reindexing 1",
          all(b.get("ok") is True and b.get("reindexing") == 1
              for b in burst), short(burst[:2]))
    mkfiles(W, ["late_arrival.txt"])
    r = c.req({"op": "reindex", "root": W, "wait": True}, timeout=20)
    check("reindex burst then wait: 21 files", r.get("files") == 21,
          short(r))
    r = c.req({"op": "query", "root": W, "q": "latearr"})
    check("reindex burst then wait: the late file is found",
          result_paths(r)[:1] == ["late_arrival.txt"], short(r))
    r = c.req({"op": "remove", "root": W})
    check("remove: removed true", r.get("ok") is True and
          r.get("removed") is True, short(r))
    r = c.req({"op": "reindex", "root": W})
    check("reindex after remove: no_project", err_code(r) == "no_project",
          short(r))


def t_auto_add(d, c, tmp):
    A = mkdir_fixture(tmp, "autoadd", ["lib/widget_factory.py", "x.txt"])
    check("auto-add: not a project before", find_project(c, A) is None)
    t0 = time.monotonic()
    r = c.req({"op": "query", "root": A, "q": "wdgtfct"}, timeout=20)
    check("query on a new root: auto-adds and answers with results",
          r.get("ok") is True and
          result_paths(r) == ["lib/widget_factory.py"], short(r))
    print("# auto-add: answered in %.2fs" % (time.monotonic() - t0))
    p = find_project(c, A) or {}
    check("auto-add: now listed, 2 files", p.get("files") == 2, short(p))


def t_gone_readd(d, c, tmp):
    """A root deleted and made again: add (and a query) walk it again."""
    G = mkdir_fixture(tmp, "reborn", ["old.txt"])
    r = c.req({"op": "add", "root": G, "wait": True}, timeout=20)
    check("re-add: first add ready, 1 file", r.get("files") == 1, short(r))
    shutil.rmtree(G)
    r = c.req({"op": "reindex", "root": G, "wait": True}, timeout=20)
    check("re-add: deleted root is gone", r.get("state") == "gone", short(r))
    r = c.req({"op": "add", "root": G, "wait": True}, timeout=20)
    check("re-add: add of a gone root still missing walks it and says gone",
          r.get("ok") is True and r.get("state") == "gone" and
          r.get("reindexing") is True and r.get("message"), short(r))
    mkfiles(G, ["new_one.txt", "new_two.txt"])
    r = c.req({"op": "add", "root": G, "wait": True}, timeout=20)
    check("re-add: add of a re-created root walks it: ready, 2 files",
          r.get("state") == "ready" and r.get("files") == 2 and
          r.get("added") is False and r.get("reindexing") is True and
          "message" not in r, short(r))
    r = c.req({"op": "add", "root": G, "wait": True}, timeout=20)
    check("re-add: add of a ready project starts no walk",
          r.get("state") == "ready" and "reindexing" not in r, short(r))
    shutil.rmtree(G)
    c.req({"op": "reindex", "root": G, "wait": True}, timeout=20)
    mkfiles(G, ["third_life.txt"])
    r = c.req({"op": "query", "root": G, "q": "thirdlife"}, timeout=20)
    check("re-add: a query on a gone root that is back walks it first",
          r.get("state") == "ready" and
          result_paths(r) == ["third_life.txt"], short(r))
    c.req({"op": "remove", "root": G})


def t_add_options(d, c, tmp):
    """add on an existing project applies new hidden/exclude, validated."""
    O = mkdir_fixture(tmp, "opts", ["a.txt", ".dot/h.txt", "build/out.o"])
    r = c.req({"op": "add", "root": O, "wait": True}, timeout=20)
    check("add options: defaults: 2 files (no dot-files)",
          r.get("files") == 2 and "options_changed" not in r, short(r))
    r = c.req({"op": "add", "root": O, "hidden": True, "wait": True},
              timeout=20)
    check("add options: hidden true on an existing project: changed, "
          "rebuilt, 3 files", r.get("options_changed") is True and
          r.get("reindexing") is True and r.get("files") == 3, short(r))
    r = c.req({"op": "add", "root": O, "exclude": "^build/", "wait": True},
              timeout=20)
    check("add options: exclude added, hidden kept: 2 files",
          r.get("options_changed") is True and r.get("files") == 2,
          short(r))
    p = find_project(c, O) or {}
    check("add options: projects shows both options",
          p.get("hidden") is True and p.get("exclude") == "^build/",
          short(p))
    r = c.req({"op": "add", "root": O, "exclude": "(", "wait": True})
    check("add options: a bad exclude on an existing project: bad_request",
          err_code(r) == "bad_request" and "exclude" in err_msg(r),
          short(r))
    p = find_project(c, O) or {}
    check("add options: the bad exclude changed nothing",
          p.get("exclude") == "^build/" and p.get("files") == 2, short(p))
    r = c.req({"op": "add", "root": O, "wait": True}, timeout=20)
    check("add options: add without options changes none",
          "options_changed" not in r and r.get("files") == 2, short(r))
    # Asked for while a walk is queued or running: the next walk has them.
    c.send({"op": "reindex", "root": O, "id": "o1"})
    c.send({"op": "add", "root": O, "exclude": None, "hidden": False,
            "wait": True, "id": "o2"})
    a1, a2 = c.read(20), c.read(20)
    check("add options during a walk: the wait sees the new options",
          a1.get("ok") is True and a2.get("options_changed") is True and
          a2.get("files") == 2, short([a1, a2]))
    p = find_project(c, O) or {}
    check("add options: exclude null clears it",
          "exclude" not in p and p.get("hidden") is False, short(p))
    c.req({"op": "remove", "root": O})


def t_projects(tmp):
    d, c = start_daemon(tmp, "projects")
    if d is None:
        return
    R = mkdir_fixture(tmp, "proj", MAIN_FILES)
    gen = section("add", t_add, d, c, R)
    section("reindex", t_reindex, d, c, R, gen)
    section("rebuild shares", t_rebuild_shares, d, c, tmp)
    section("gone", t_gone, d, c, tmp)
    section("add without wait", t_add_nowait, d, c, tmp)
    section("auto-add", t_auto_add, d, c, tmp)
    section("gone and added again", t_gone_readd, d, c, tmp)
    section("add options", t_add_options, d, c, tmp)
    check_ids_echoed()
    stop_daemon(d, c, "projects daemon")


if __name__ == "__main__":
    sys.exit(ft.main("daemon_projects.py", [("projects", t_projects)]))
