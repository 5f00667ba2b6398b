#!/usr/bin/env python3
"""tests/daemon_fsmonitor.py - fidx as git's file-system monitor hook.

A real repository made with `git` (with the untracked cache on, as
fsmonitor users have it), added to a real fidxd, and core.fsmonitor set
to the sanitizer-built `fidx --socket S fsmonitor`. After each change
(a file written, one written and kept open, made, deleted, renamed, its
mode changed; a directory made, deleted, renamed; a tracked file in a
hidden directory and in an ignored one, neither of which the watcher
sees into) `git status` with the hook must print what git prints
without it (`--no-optional-locks`, so the reference run leaves the
index and its token alone), and git's trace must show the hook answered
with paths, not "everything". Then the changes op and the hook directly:
a token round trip gives exactly the paths changed; a stale, foreign or
malformed token, an overflowed log and a restarted daemon answer
everything; a daemon that cannot be reached answers everything and exit
0; another protocol version exits 1. Nothing sleeps and hopes: the hook
itself syncs with the watcher. Python 3 standard library only.
"""

import json
import os
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as t  # noqa: E402  (the client library)


def git(cwd, *args, env=None):
    return subprocess.run(["git"] + list(args), cwd=cwd, check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env)


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def set_env(tmp):
    home = os.path.join(tmp, "home")
    os.makedirs(home)
    with open(os.path.join(home, ".gitconfig"), "w") as f:
        f.write("[user]\n\tname = t\n\temail = t@example.com\n"
                "[init]\n\tdefaultBranch = main\n")
    os.environ["HOME"] = home
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    for v in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE",
              "XDG_CONFIG_HOME", "GIT_TRACE_FSMONITOR", "GIT_TRACE2_EVENT"):
        os.environ.pop(v, None)


def make_repo(tmp, name):
    R = os.path.join(tmp, name)
    os.makedirs(R)
    git(R, "init", "-q")
    for rel in ("a.txt", "b.txt", "c.txt", "src/main.c", "src/util.c",
                "src/sub/deep.c", "docs/guide.md", "docs/api.md",
                ".github/workflows/ci.yml", "tools/run.sh"):
        write(R, rel, "the first text of %s\n" % rel)
    write(R, ".gitignore", "build/\n*.o\n")
    write(R, "build/keep.txt", "tracked though ignored\n")
    git(R, "add", ".")
    git(R, "add", "-f", "build/keep.txt")
    git(R, "commit", "-qm", "base")
    git(R, "config", "core.untrackedCache", "true")
    return R


def hook_cmd(sock):
    return "%s --socket %s fsmonitor" % (shlex.quote(t.FIDX),
                                         shlex.quote(sock))


def porcelain(R, hook):
    """git status -z as a sorted list, with or without the hook (without:
    no optional locks, so the index and its token are left alone).
    Returns (entries, trace text, stderr)."""
    env = dict(os.environ)
    trace = os.path.join(R, ".git", "trace.json")
    if hook:
        env["GIT_TRACE2_EVENT"] = trace
        env["GIT_TRACE_FSMONITOR"] = "1"
        args = ["status", "--porcelain=v1", "-z", "-uall"]
    else:
        args = ["--no-optional-locks", "-c", "core.fsmonitor=false",
                "status", "--porcelain=v1", "-z", "-uall"]
    p = subprocess.run(["git"] + args, cwd=R, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    text = ""
    if hook and os.path.exists(trace):
        with open(trace) as f:
            text = f.read()
        os.unlink(trace)
    return (sorted(x for x in p.stdout.decode("utf-8", "replace")
                   .split("\0") if x),
            text, p.stderr.decode("utf-8", "replace"))


def hook_events(trace):
    """git's trace2 data about the hook: {key: value}."""
    out = {}
    for line in trace.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("category") == "fsm_hook" and e.get("event") == "data":
            out[e.get("key")] = e.get("value")
    return out


def run_hook(R, sock, token, version="2"):
    """The hook as git runs it: (exit status, token, [paths], stderr)."""
    p = subprocess.run([t.FIDX, "--socket", sock, "fsmonitor", version,
                        token], cwd=R, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    parts = p.stdout.split(b"\0")
    tok = parts[0].decode() if parts else ""
    paths = [x.decode("utf-8", "surrogateescape") for x in parts[1:] if x]
    return p.returncode, tok, paths, p.stderr.decode("utf-8", "replace")


def changes(c, R, since):
    return c.req({"op": "changes", "root": R, "since": since}, timeout=30)


def t_git(tmp):
    set_env(tmp)
    d, c = t.start_daemon(tmp, "fsm")
    if d is None:
        return
    R = make_repo(tmp, "repo")
    t.add_ready(c, R, "fsmonitor")
    git(R, "config", "core.fsmonitor", hook_cmd(d.sock))

    first = True

    def same(what):
        nonlocal first
        want, _, _ = porcelain(R, False)
        got, trace, err = porcelain(R, True)
        ev = hook_events(trace)
        ok = t.check("fsmonitor: %s: git status with the hook is git's"
                     % what, got == want,
                     "with %s, without %s" % (got, want))
        t.check("fsmonitor: %s: no sanitizer report from the hook" % what,
                not t.sanitizer_reports(err), err[-2000:])
        if first:
            first = False
            return ok
        # The hook ran, succeeded and named paths (not "everything").
        t.check("fsmonitor: %s: the hook answered with paths" % what,
                "query/response-length" in ev and "query/failed" not in ev
                and "query/trivial-response" not in ev and
                "returned success" in err, t.short(ev) + err[-1500:])
        return ok

    same("first run (a token git made up: everything)")
    same("nothing changed")
    write(R, "a.txt", "a changed\n")
    same("a file written")
    with open(os.path.join(R, "b.txt"), "a") as held:
        held.write("more, and the file is still open\n")
        held.flush()
        same("a file written and still open")
    write(R, "new.txt", "new\n")
    write(R, "newdir/one.txt", "1\n")
    write(R, "newdir/deeper/two.txt", "2\n")
    same("files and directories made")
    os.unlink(os.path.join(R, "c.txt"))
    same("a file deleted")
    os.rename(os.path.join(R, "docs/guide.md"),
              os.path.join(R, "docs/handbook.md"))
    same("a file renamed")
    os.chmod(os.path.join(R, "tools/run.sh"), 0o755)
    same("a file's mode changed")
    write(R, ".github/workflows/ci.yml", "changed where nobody watches\n")
    same("a tracked file in a hidden directory written")
    write(R, "build/keep.txt", "changed in an ignored directory\n")
    same("a tracked file in an ignored directory written")
    subprocess.run(["rm", "-r", os.path.join(R, "src/sub")], check=True)
    same("a tracked directory deleted")
    os.rename(os.path.join(R, "src"), os.path.join(R, "source"))
    same("a tracked directory renamed")
    git(R, "add", "-A")
    same("everything staged")
    git(R, "commit", "-qm", "second")
    same("committed")
    write(R, "docs/api.md", "after the commit\n")
    same("a file written after the commit")

    # The hook itself, as git calls it. A token round trip: exactly what
    # changed, plus the directories the watcher cannot see into.
    rc, tok0, paths, err = run_hook(R, d.sock, "fidx:made-up:1")
    t.check("fsmonitor hook: a token not ours: everything, exit 0",
            rc == 0 and paths == ["/"] and tok0.startswith("fidx:"),
            "%r %r %r" % (rc, paths, err))
    unwatched = {".github/", "build/"}
    rc, tok1, paths, err = run_hook(R, d.sock, tok0)
    t.check("fsmonitor hook: nothing since: only what is not watched",
            rc == 0 and set(paths) == unwatched, "%r %r" % (paths, err))
    write(R, "a.txt", "round trip\n")
    write(R, "fresh/file.txt", "x\n")
    os.unlink(os.path.join(R, "new.txt"))
    os.rename(os.path.join(R, "docs/api.md"),
              os.path.join(R, "docs/API.md"))
    rc, tok2, paths, err = run_hook(R, d.sock, tok1)
    # A directory just made is named with its '/' (git then looks at
    # all it holds); its files are named too once it is watched.
    want = unwatched | {"a.txt", "fresh/", "new.txt", "docs/api.md",
                        "docs/API.md"}
    t.check("fsmonitor hook: a round trip names exactly what changed",
            rc == 0 and set(paths) - {"fresh/file.txt"} == want and
            len(paths) == len(set(paths)),
            "got %r want %r" % (sorted(paths), sorted(want)))
    t.check("fsmonitor: sync: the new directory is watched",
            c.req({"op": "sync", "root": R}, timeout=30).get("ok") is True)
    rc, tok2, paths, _ = run_hook(R, d.sock, tok2)
    write(R, "fresh/later.txt", "x\n")
    rc, tok3, paths, _ = run_hook(R, d.sock, tok2)
    t.check("fsmonitor hook: a file made in the new directory, once it "
            "is watched", rc == 0 and
            set(paths) - {"fresh/"} == unwatched | {"fresh/later.txt"},
            repr(paths))
    rc, _, paths, _ = run_hook(R, d.sock, tok3)
    t.check("fsmonitor hook: the newest token: nothing new",
            rc == 0 and set(paths) == unwatched, repr(paths))
    rc, _, paths, _ = run_hook(R, d.sock, tok1)
    t.check("fsmonitor hook: an older token still answers (the log has it)",
            rc == 0 and want | {"fresh/later.txt"} <= set(paths),
            repr(paths))
    inst = tok2.split(":")[1]
    r = changes(c, R, "fidx:%s:0" % inst)
    t.check("changes: a token below the project's floor: everything",
            r.get("ok") is True and r.get("all") is True, t.short(r))
    r = changes(c, R, "fidx:%s:99999999999" % inst)
    t.check("changes: a token from the future: everything",
            r.get("all") is True, t.short(r))
    r = changes(c, R, "1700000000000000000")
    t.check("changes: git's own first token (a time): everything",
            r.get("all") is True, t.short(r))
    r = changes(c, R, None)
    t.check("changes: no token: everything, and a token",
            r.get("all") is True and r.get("token", "").startswith("fidx:"),
            t.short(r))
    # A path that is not UTF-8 comes back as its bytes.
    raw = os.path.join(R.encode(), b"caf\xe9.txt")
    with open(raw, "wb") as f:
        f.write(b"latin-1 name\n")
    r = changes(c, R, tok2)
    t.check("changes: a name that is not UTF-8 comes in path_b64",
            any(p.get("path_b64") == "Y2Fm6S50eHQ="
                for p in r.get("paths", [])), t.short(r))
    rc, _, paths, _ = run_hook(R, d.sock, tok2)
    t.check("fsmonitor hook: ... and the hook prints its bytes",
            "caf\udce9.txt" in paths, repr(paths))
    same("a file whose name is not UTF-8")
    # .git is git's: never named.
    r = changes(c, R, tok0)
    t.check("changes: nothing under .git is named",
            r.get("ok") is True and not any(
                p.get("path", "").startswith(".git/")
                for p in r.get("paths", [])), t.short(r))
    s = t.stats(c)
    ch = s.get("changes", {})
    t.check("stats: the change log within its limits",
            0 < ch.get("usage", {}).get("entries", 0) <=
            s["limits"]["changes"] and
            ch["usage"]["bytes"] <= s["limits"]["changes_bytes"] and
            ch["usage"]["unwatched_dirs"] == 2 and
            ch["counters"]["answers"] > ch["counters"]["answers_all"] > 0,
            t.short(ch))

    # Other protocol versions: exit 1, git does without the hook.
    rc, _, _, err = run_hook(R, d.sock, "1", version="1")
    t.check("fsmonitor hook: version 1 exits 1 and says why",
            rc == 1 and "version 2" in err, err)
    # A daemon that cannot be reached (its socket's directory is not
    # ours alone, so fidx will not start one there): everything, exit 0.
    bad = os.path.join(tmp, "open")
    os.makedirs(bad)
    os.chmod(bad, 0o755)
    rc, tok, paths, err = run_hook(R, os.path.join(bad, "sock"), tok2)
    t.check("fsmonitor hook: no daemon: everything, exit 0, said why",
            rc == 0 and paths == ["/"] and tok != "" and err != "",
            "%r %r %r" % (rc, paths, err))

    # A restarted daemon does not honour the old one's token.
    t.stop_daemon(d, c, "fsmonitor daemon")
    d2, c2 = t.start_daemon(tmp, "fsm")
    if d2 is None:
        return
    t.add_ready(c2, R, "fsmonitor again")
    rc, _, paths, _ = run_hook(R, d2.sock, tok2)
    t.check("fsmonitor hook: a restarted daemon: the old token gets "
            "everything", rc == 0 and paths == ["/"], repr(paths))
    first = True
    same("after a restart (everything once)")
    write(R, "a.txt", "after the restart\n")
    same("a file written after the restart")
    t.stop_daemon(d2, c2, "fsmonitor daemon again")


def t_overflow(tmp):
    """A log of 8 entries: 20 changes drop the oldest, and a token from
    before them is answered everything, said in stats."""
    R = make_repo(tmp, "small")
    d, c = t.start_daemon(tmp, "fsmsmall", ["--max-changes", "8"])
    if d is None:
        return
    t.add_ready(c, R, "fsmonitor overflow")
    tok = changes(c, R, None).get("token")
    r = changes(c, R, tok)
    t.check("changes: a fresh token: not everything",
            r.get("all") is False, t.short(r))
    os.makedirs(os.path.join(R, "many"))
    t.check("changes: sync: the new directory is watched",
            c.req({"op": "sync", "root": R}, timeout=30).get("ok") is True)
    for i in range(20):
        write(R, "many/f%02d.txt" % i, "x\n")
    r = changes(c, R, tok)
    ch = t.stats(c).get("changes", {})
    t.check("changes: an overflowed log: everything",
            r.get("all") is True, t.short(r))
    t.check("stats: the log held 8 and dropped the rest",
            ch["usage"]["entries"] == 8 and ch["counters"]["dropped"] >= 13
            and ch["usage"]["floor"] > 0, t.short(ch))
    tok = r.get("token")
    write(R, "after.txt", "x\n")
    r = changes(c, R, tok)
    t.check("changes: a token after the overflow answers exactly",
            r.get("all") is False and
            [p.get("path") for p in r.get("paths", [])] ==
            [".github/", "after.txt", "build/"], t.short(r))
    t.stop_daemon(d, c, "fsmonitor overflow daemon")


def t_unasked(tmp):
    """Only a project a hook asked about is logged: changes before the
    first `changes` request keep nothing; after it, each is logged."""
    R = make_repo(tmp, "unasked")
    O = make_repo(tmp, "other")
    d, c = t.start_daemon(tmp, "fsmunasked")
    if d is None:
        return
    t.add_ready(c, R, "fsmonitor unasked")
    t.add_ready(c, O, "fsmonitor other")
    for i in range(10):
        write(R, "u%02d.txt" % i, "x\n")
    t.check("unasked: sync", c.req({"op": "sync", "root": R},
                                   timeout=30).get("ok") is True)
    ch = t.stats(c).get("changes", {})
    t.check("unasked: ten files written, none logged, no project logged",
            ch["usage"]["entries"] == 0 and ch["usage"]["projects"] == 0 and
            ch["counters"]["added"] == 0, t.short(ch))
    r = changes(c, R, None)
    t.check("unasked: the first request is answered everything",
            r.get("all") is True and r.get("token"), t.short(r))
    tok = r.get("token")
    write(R, "later.txt", "x\n")
    write(O, "elsewhere.txt", "x\n")
    r = changes(c, R, tok)
    ch = t.stats(c).get("changes", {})
    t.check("unasked: after it, a change is logged and answered",
            r.get("all") is False and "later.txt" in
            [p.get("path") for p in r.get("paths", [])], t.short(r))
    t.check("unasked: one project logged, the other's change not kept",
            ch["usage"]["projects"] == 1 and ch["usage"]["entries"] >= 1 and
            c.req({"op": "sync", "root": O}, timeout=30).get("ok") is True and
            t.stats(c)["changes"]["usage"]["entries"] ==
            ch["usage"]["entries"], t.short(ch))
    t.stop_daemon(d, c, "fsmonitor unasked daemon")


if __name__ == "__main__":
    sys.exit(t.main("daemon_fsmonitor.py", [("git", t_git),
                                            ("overflow", t_overflow),
                                            ("unasked", t_unasked)]))
