#!/usr/bin/env python3
"""tests/daemon_trees.py - what the walk makes of real trees.

Symlink loops (never followed), an unreadable directory, a git
repository's ignored files, names that are not UTF-8 (path_b64) and
Unicode case, hidden names and exclude (a regex, matched in byte mode on
a Latin-1 name, its PCRE2 give-ups counted), an .ignore over its cap.
One daemon.

Run by tests/run.sh, or alone:
    FIDX_BUILD=build/asan python3 tests/daemon_trees.py
tests/fidxtest.py has the client, the checks and the rules (no sleep and
hope, a clean stderr, cleanup on every exit).
"""

import base64
import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402
from fidxtest import (  # noqa: E402
    check, check_ids_echoed, err_code, err_msg, find_project, mkdir_fixture,
    positions_point_at, result_paths, section, short, skip, start_daemon,
    stats, stop_daemon, wait_until)


def t_tree_kinds(d, c, tmp):
    # A symlink loop: directory symlinks are never followed.
    L = mkdir_fixture(tmp, "looptree", ["a.txt", "sub/b.txt",
                                        "sub/deep/c.txt"])
    os.symlink("..", os.path.join(L, "sub", "loop"))
    os.symlink(".", os.path.join(L, "sub", "deep", "self"))
    os.symlink(L, os.path.join(L, "root_again"))
    os.symlink("a.txt", os.path.join(L, "link_to_a"))
    os.symlink("nowhere", os.path.join(L, "dangling"))
    s0 = stats(c).get("counters", {})
    t0 = time.monotonic()
    r = c.req({"op": "add", "root": L, "wait": True}, timeout=20)
    check("symlink loop: add completes", r.get("ok") is True and
          r.get("state") == "ready", short(r))
    check("symlink loop: files counted once (3 + a file symlink)",
          r.get("files") == 4, short(r))
    print("# symlink loop: add took %.2fs" % (time.monotonic() - t0))
    s1 = stats(c).get("counters", {})
    check("symlink loop: walk_symlinks_skipped grew by >= 4 (3 directory "
          "links, 1 dangling)",
          s1.get("walk_symlinks_skipped", 0) -
          s0.get("walk_symlinks_skipped", 0) >= 4,
          "%r -> %r" % (s0.get("walk_symlinks_skipped"),
                        s1.get("walk_symlinks_skipped")))
    r = c.req({"op": "query", "root": L, "q": ".", "mode": "regex"})
    check("symlink loop: results are the 3 files and the file symlink",
          sorted(result_paths(r)) == ["a.txt", "link_to_a", "sub/b.txt",
                                      "sub/deep/c.txt"], short(r))

    # An unreadable directory.
    if os.geteuid() == 0:
        skip("unreadable directory skipped, walk_unreadable >= 1",
             "running as root: chmod 000 does not stop reads")
    else:
        U = mkdir_fixture(tmp, "unreadable", ["ok.txt", "locked/secret.txt"])
        os.chmod(os.path.join(U, "locked"), 0)
        r = c.req({"op": "add", "root": U, "wait": True}, timeout=20)
        check("unreadable dir: add ready with 1 file",
              r.get("state") == "ready" and r.get("files") == 1, short(r))
        s2 = stats(c).get("counters", {})
        check("unreadable dir: counters.walk_unreadable >= 1",
              s2.get("walk_unreadable", 0) >= 1, short(s2))
        os.chmod(os.path.join(U, "locked"), 0o700)

    # A git repository with ignored files.
    git = shutil.which("git")
    if git is None:
        skip("gitignored files absent", "no git command")
    else:
        G = mkdir_fixture(tmp, "gitrepo", [
            "keep.c", "src/keep2.c", "debug.log", "src/trace.log",
            "build/out.o", "build/sub/x.c"])
        with open(os.path.join(G, ".gitignore"), "w") as f:
            f.write("*.log\nbuild/\n")
        genv = dict(os.environ, GIT_CONFIG_NOSYSTEM="1",
                    HOME=tmp, GIT_CONFIG_GLOBAL=os.devnull)
        for cmd in (["init", "-q"], ["add", "-A"],
                    ["-c", "user.email=a@b", "-c", "user.name=t", "commit",
                     "-q", "-m", "fixture"]):
            subprocess.run([git] + cmd, cwd=G, env=genv, check=True,
                           stdout=subprocess.DEVNULL)
        r = c.req({"op": "add", "root": G, "wait": True}, timeout=20)
        check("git repo: add ready, 2 files (ignored ones out)",
              r.get("state") == "ready" and r.get("files") == 2, short(r))
        r = c.req({"op": "query", "root": G, "q": ".", "mode": "regex"})
        check("git repo: results are keep.c and src/keep2.c",
              sorted(result_paths(r)) == ["keep.c", "src/keep2.c"], short(r))
        r = c.req({"op": "query", "root": G, "q": "log", "mode": "exact"})
        check("git repo: *.log files absent", r.get("ok") is True and
              r.get("results") == [], short(r))
        r = c.req({"op": "query", "root": G, "q": "^build/",
                   "mode": "regex"})
        check("git repo: build/ absent", r.get("ok") is True and
              r.get("results") == [], short(r))

    # A file name that is not UTF-8.
    N = mkdir_fixture(tmp, "nonutf8", ["plain.txt"])
    raw = b"caf\xe9.txt"
    with open(os.path.join(os.fsencode(N), raw), "wb") as f:
        f.write(b"x")
    r = c.req({"op": "add", "root": N, "wait": True}, timeout=20)
    check("non-UTF-8 name: add ready, 2 files",
          r.get("state") == "ready" and r.get("files") == 2, short(r))
    r = c.req({"op": "query", "root": N, "q": "caf", "positions": True})
    res = (r.get("results") or [{}])[0]
    check("non-UTF-8 name: found, path has U+FFFD",
          res.get("path") == "caf\ufffd.txt", short(r))
    b64 = res.get("path_b64")
    try:
        dec = base64.b64decode(b64, validate=True) if b64 else None
    except ValueError:
        dec = None
    check("non-UTF-8 name: path_b64 decodes to the exact bytes",
          dec == raw, "path_b64 %r -> %r" % (b64, dec))
    check("non-UTF-8 name: positions are byte offsets of c,a,f",
          positions_point_at(r, "caf") == "", positions_point_at(r, "caf"))
    r = c.req({"op": "query", "root": N, "q": "plain"})
    res = (r.get("results") or [{}])[0]
    check("UTF-8 name: no path_b64", res.get("path") == "plain.txt" and
          "path_b64" not in res, short(r))

    # Unicode case: "ärger" finds Ärger, positions are the path's bytes.
    U = mkdir_fixture(tmp, "unicode", ["Ärger.txt", "ДОКУМЕНТ.md",
                                       "ärgerlich/x.c", "arger.txt"])
    r = c.req({"op": "add", "root": U, "wait": True}, timeout=20)
    check("unicode names: add ready, 4 files", r.get("files") == 4, short(r))
    r = c.req({"op": "query", "root": U, "q": "ärger.txt",
               "positions": True})
    res = r.get("results") or [{}]
    want = len("Ärger.txt".encode())
    check("unicode case: ärger.txt finds Ärger.txt, all bytes lit",
          res[0].get("path") == "Ärger.txt" and
          res[0].get("positions") == list(range(want)) and
          r.get("matched") == 1, short(r))
    r = c.req({"op": "query", "root": U, "q": "документ"})
    check("unicode case: документ finds ДОКУМЕНТ.md",
          result_paths(r) == ["ДОКУМЕНТ.md"], short(r))
    r = c.req({"op": "query", "root": U, "q": "Ärger"})
    check("unicode smart case: Ärger misses ärgerlich/",
          result_paths(r) == ["Ärger.txt"], short(r))
    r = c.req({"op": "query", "root": U, "q": "ärger", "mode": "exact"})
    check("unicode case, exact mode: both",
          sorted(result_paths(r)) == ["Ärger.txt", "ärgerlich/x.c"],
          short(r))

    # Hidden names are skipped unless "hidden"; "exclude" is a regex.
    H = mkdir_fixture(tmp, "hiddentree", [".env", ".config/x.txt",
                                          "visible.txt", "vendor/lib.js"])
    H2 = mkdir_fixture(tmp, "hiddentree2", [".env", "visible.txt"])
    r = c.req({"op": "add", "root": H2, "wait": True}, timeout=20)
    check("hidden names skipped by default (1 file)", r.get("files") == 1,
          short(r))
    r = c.req({"op": "add", "root": H, "wait": True, "hidden": True,
               "exclude": "^vendor/"}, timeout=20)
    check("add hidden:true exclude:^vendor/ -> 3 files",
          r.get("files") == 3, short(r))
    r = c.req({"op": "query", "root": H, "q": ".", "mode": "regex"})
    check("hidden/exclude: results are .config/x.txt, .env, visible.txt",
          sorted(result_paths(r)) == [".config/x.txt", ".env",
                                      "visible.txt"], short(r))
    p = find_project(c, H) or {}
    check("projects shows hidden and exclude",
          p.get("hidden") is True and p.get("exclude") == "^vendor/",
          short(p))
    r = c.req({"op": "add", "root": N + "/..", "exclude": "a("})
    check("add with a bad exclude regex: bad_request",
          err_code(r) == "bad_request" and "offset" in err_msg(r), short(r))


def t_exclude_errors(d, c, tmp):
    """A path the exclude regex gives up on (PCRE2's match limit) is listed
    and counted (walk_exclude_errors), and the project's message says so
    once, not silently kept or dropped."""
    hard = "a" * 30 + "!b"
    R = mkdir_fixture(tmp, "exclude-err-tree", [hard, "bx", "plain.txt"])
    s0 = stats(c).get("counters", {}).get("walk_exclude_errors", 0)
    r = c.req({"op": "add", "root": R, "wait": True,
               "exclude": "^(a|a)*b"}, timeout=30)
    m = r.get("message", "")
    check("exclude errors: the undecided path is listed, bx excluded",
          r.get("ok") is True and r.get("files") == 2, short(r))
    check("exclude errors: the add answer says so, once",
          m.count("exclude regex gave up on 1 path") == 1, short(r))
    q = c.req({"op": "query", "root": R, "q": "aaa!"})
    check("exclude errors: a query finds the undecided path",
          result_paths(q) == [hard], short(q))
    s = stats(c).get("counters", {})
    check("exclude errors: stats counts walk_exclude_errors",
          s.get("walk_exclude_errors") == s0 + 1, short(s))
    r = c.req({"op": "reindex", "root": R, "wait": True}, timeout=30)
    s = stats(c).get("counters", {})
    check("exclude errors: summed over walks",
          s.get("walk_exclude_errors") == s0 + 2, short(s))
    c.req({"op": "remove", "root": R})


def t_exclude_latin1(d, c, tmp):
    """An exclude pattern excludes a directory whose name is not UTF-8:
    "caf." takes the Latin-1 byte of caf\\xe9 (matched in byte mode)."""
    R = os.path.join(tmp, "exclude-latin1")
    for rel in (b"caf\xe9/a.txt", b"caf\xe9/sub/b.txt", b"x.txt"):
        path = os.path.join(os.fsencode(R), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"x\n")
    R = os.path.realpath(R)
    r = c.req({"op": "add", "root": R, "wait": True, "exclude": "^caf.$"},
              timeout=30)
    check("exclude: caf. excludes a Latin-1 caf\\xe9 directory",
          r.get("ok") is True and r.get("files") == 1, short(r))
    q = c.req({"op": "query", "root": R, "q": "txt"})
    check("exclude: only x.txt is listed", result_paths(q) == ["x.txt"],
          short(q))
    c.req({"op": "remove", "root": R})


def t_ignore_cap(d, c, tmp):
    """An .ignore over its cap: the rules before the cut apply, and the
    add answer and the log say so."""
    I = mkdir_fixture(tmp, "bigignore", ["a.c", "t.tmp"])
    with open(os.path.join(I, ".ignore"), "w") as f:
        f.write("*.tmp\n" + "# padding\n" * 120000 + "a.c\n")
    r = c.req({"op": "add", "root": I, "wait": True}, timeout=20)
    check("an .ignore cut at its cap: the add answer says so",
          r.get("files") == 1 and "only the first" in r.get("message", ""),
          short(r))
    check("an .ignore cut at its cap: and the log, once",
          wait_until(lambda: d.stderr().count("only the first") == 1, 5),
          d.stderr()[-500:])
    c.req({"op": "remove", "root": I})


def t_trees(tmp):
    d, c = start_daemon(tmp, "trees")
    if d is None:
        return
    section("tree kinds", t_tree_kinds, d, c, tmp)
    section("exclude errors", t_exclude_errors, d, c, tmp)
    section("exclude, Latin-1", t_exclude_latin1, d, c, tmp)
    section("ignore cap", t_ignore_cap, d, c, tmp)
    check_ids_echoed()
    stop_daemon(d, c, "trees daemon")


def t_fifo_gitignore(tmp):
    """A .gitignore that is a fifo: libgit2 would block opening it for
    good (git status hangs on it too). The walk does not ask git's rules
    there and below, lists what is there, says so, and stays alive; a
    change there later is read the same way."""
    import subprocess
    R = ft.mkdir_fixture(tmp, "fifo-repo", ["a.txt", "a.log", "sub/x.txt",
                                            "sub/y.log", "other/z.txt"])
    with open(os.path.join(R, ".gitignore"), "w") as f:
        f.write("*.log\n")
    os.mkfifo(os.path.join(R, "sub", ".gitignore"))
    subprocess.run(["git", "init", "-q", R], check=True)
    d, c = start_daemon(tmp, "fifo")
    if d is None:
        return
    r = c.req({"op": "add", "root": R, "wait": True, "timeout_ms": 20000},
              timeout=30)
    check("fifo .gitignore: the walk ends, ready",
          r.get("ok") is True and r.get("state") == "ready", short(r))
    check("fifo .gitignore: the answer says where the rules were not applied",
          "sub" in (r.get("message") or "") and
          "not a regular file" in (r.get("message") or ""), short(r))
    got = set(result_paths(c.req({"op": "query", "root": R, "q": "",
                                  "mode": "regex", "limit": 100})))
    check("fifo .gitignore: git's rules still apply elsewhere, not below it",
          got == {"a.txt", "sub/x.txt", "sub/y.log", "other/z.txt"}, got)
    ft.mkfiles(R, ["sub/new.txt"])
    s = c.req({"op": "sync", "root": R}, timeout=30)
    check("fifo .gitignore: a change below it is read too, without hanging",
          s.get("ok") is True and "sub/new.txt" in result_paths(c.req(
              {"op": "query", "root": R, "q": "new", "mode": "exact"})),
          short(s))
    g = c.req({"op": "git", "root": R}, timeout=30)
    check("fifo .gitignore: the git op says why it will not ask libgit2",
          ft.err_code(g) == "git_failed" and "fifo" in ft.err_msg(g),
          short(g))
    q = c.req({"op": "query", "root": R, "q": "x", "git": True})
    check("fifo .gitignore: a query's git letters are none, not a hang",
          q.get("ok") is True and q.get("git_status") == "none", short(q))
    stop_daemon(d, c, "fifo daemon")


if __name__ == "__main__":
    sys.exit(ft.main("daemon_trees.py", [("trees", t_trees),
                                         ("fifo .gitignore", t_fifo_gitignore)]))
