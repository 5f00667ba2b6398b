#!/usr/bin/env python3
"""tests/daemon_hostile.py - what the world does to a daemon: odd names,
odd roots, other users, connection storms, trees changing under a walk.

Names: a file name with a newline and one that is not UTF-8 round-trip
through a query, a visit (path_b64) and the visit store across a
restart (the second visit of each counts on the first).
Roots: a root given as a symlink, or with `..` and `.`, is the one
project of its real path; a symlink to a file, or dangling, is bad_root.
Another uid: a peer run as `nobody` (setpriv) cannot connect through the
socket's mode (0600); with the socket opened to all (chmod 0666, as a
mistake would), it gets `forbidden` and is closed, counted in
clients_forbidden. Needs root (to become nobody): skipped, saying so.
10,000 connections opened and closed (one in ten pinging): the daemon's
descriptors come back to what they were, and its RSS to within 1 MiB
(the release fidxd: ASan's quarantine keeps freed memory on purpose).
Mid-walk: directories replaced by files, and (run as nobody, since root
reads through any mode) made unreadable, while a rebuild walks them: the
daemon answers on, and a rebuild after finds exactly what is there.

Run by tests/run.sh, or alone:
    FIDX_BUILD=build/asan python3 tests/daemon_hostile.py
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402
from fidxtest import Conn, Daemon, check, err_code, short, stats  # noqa

RELEASE = os.path.abspath(os.path.join(
    os.environ.get("FIDX_VG_BUILD", "build"), "fidxd"))
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup",
             "--clear-groups"]


def can_be_nobody():
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def t_names(tmp):
    sock = os.path.join(tmp, "names.sock")
    state = os.path.join(tmp, "names-state")
    R = os.path.join(tmp, "names")
    os.makedirs(R)
    for raw in (b"a\nb.txt", b"caf\xe9.txt", b"plain.txt"):
        with open(os.path.join(R.encode(), raw), "wb") as f:
            f.write(b"x\n")
    R = os.path.realpath(R)
    d = Daemon(tmp, "names1", sock=sock, state=state)
    if not check("names: daemon answers", d.wait_ready()):
        return
    c = Conn(d.sock)
    r = ft.add_ready(c, R, "names")
    check("names: the three files indexed", r.get("files") == 3, short(r))
    res = c.req({"op": "query", "root": R, "q": "txt", "limit": 50})
    by = {ft.result_bytes(x): x for x in res.get("results") or []}
    nl = by.get(b"a\nb.txt") or {}
    check("names: a newline in a name comes back as \\n in the path",
          nl.get("path") == "a\nb.txt" and "path_b64" not in nl, short(res))
    lat = by.get(b"caf\xe9.txt") or {}
    check("names: a Latin-1 name comes back as path_b64",
          base64.b64decode(lat.get("path_b64", "")) == b"caf\xe9.txt",
          short(res))
    r1 = c.req({"op": "visit", "root": R, "path": "a\nb.txt"})
    check("names: the newline name visited, its path as sent",
          r1.get("ok") is True and r1.get("path") == "a\nb.txt", short(r1))
    r2 = c.req({"op": "visit", "root": R, "path_b64": lat.get("path_b64")})
    check("names: the Latin-1 name visited by path_b64, given back",
          r2.get("ok") is True and
          r2.get("path_b64") == lat.get("path_b64"), short(r2))
    ft.stop_daemon(d, c, "names: first daemon")
    store = os.path.join(state, "fidx", "visits.json")
    with open(store, "rb") as f:
        lines = f.read().split(b"\n")
    check("names: the store holds one line per entry (the newline "
          "escaped)", len([x for x in lines if x]) == 3, lines)
    d = Daemon(tmp, "names2", sock=sock, state=state)
    if not check("names: daemon answers again", d.wait_ready()):
        return
    c = Conn(d.sock)
    v = stats(c).get("visits", {}).get("load", {})
    check("names: both visits loaded, none bad",
          v.get("loaded") == 2 and v.get("bad_entries") == 0, short(v))
    ft.add_ready(c, R, "names, again")
    r1 = c.req({"op": "visit", "root": R, "path": "a\nb.txt"})
    r2 = c.req({"op": "visit", "root": R, "path_b64": lat.get("path_b64")})
    check("names: a second visit of each adds to the loaded one",
          r1.get("frecency", 0) > 1.5 and r2.get("frecency", 0) > 1.5,
          "%s %s" % (short(r1), short(r2)))
    ft.stop_daemon(d, c, "names: second daemon")


def t_roots(tmp):
    d, c = ft.start_daemon(tmp, "roots")
    if d is None:
        return
    R = ft.mkdir_fixture(tmp, "realroot", ["src/main.c", "README"])
    link = os.path.join(tmp, "link-to-root")
    os.symlink(R, link)
    r = c.req({"op": "add", "root": link, "wait": True})
    check("roots: a symlink root adds its real path",
          r.get("ok") is True and r.get("root") == R and
          r.get("files") == 2, short(r))
    for alias in (R + "/src/..", R + "/./src/../", link + "/src/.."):
        r = c.req({"op": "add", "root": alias})
        check("roots: %s is the same project" % alias.replace(tmp, "T"),
              r.get("ok") is True and r.get("root") == R and
              r.get("added") is False, short(r))
        q = c.req({"op": "query", "root": alias, "q": "main"})
        check("roots: a query through %s answers from it" %
              alias.replace(tmp, "T"),
              ft.result_paths(q) == ["src/main.c"], short(q))
    ps = c.req({"op": "projects"}).get("projects") or []
    check("roots: one project in all", [p.get("root") for p in ps] == [R],
          short(ps))
    flink = os.path.join(tmp, "link-to-file")
    os.symlink(os.path.join(R, "README"), flink)
    dang = os.path.join(tmp, "dangling")
    os.symlink(os.path.join(tmp, "nowhere"), dang)
    for name, root in (("a symlink to a file", flink),
                       ("a dangling symlink", dang)):
        r = c.req({"op": "add", "root": root})
        check("roots: %s is bad_root" % name, err_code(r) == "bad_root",
              short(r))
    r = c.req({"op": "remove", "root": link})
    check("roots: removed through the symlink",
          r.get("ok") is True and r.get("removed") is True, short(r))
    ft.stop_daemon(d, c, "roots daemon")


NOBODY_CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect:%s" % e.errno)
    sys.exit(0)
try:
    s.sendall(b'{"op":"ping"}\n')
except OSError:
    pass
buf = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    print("eof:" + buf.decode())
except OSError as e:
    print("error:%s:%s" % (e.errno, buf.decode()))
"""


def t_other_uid(tmp):
    if not can_be_nobody():
        ft.skip("another uid refused", "needs root and setpriv to run a "
                "client as nobody")
        return
    # The socket's directory must let nobody reach the socket: a
    # directory of its own beside our private one, 0711.
    sdir = tempfile.mkdtemp(prefix="fidx-uid.")
    try:
        os.chmod(sdir, 0o711)
        d = Daemon(tmp, "uid", sock=os.path.join(sdir, "s.sock"))
        if not check("uid: daemon answers", d.wait_ready()):
            return
        c = Conn(d.sock)

        def as_nobody():
            p = subprocess.run(AS_NOBODY + ["/usr/bin/python3", "-c",
                                            NOBODY_CLIENT, d.sock],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30,
                               env={"PATH": "/usr/bin:/bin"})
            return p.stdout.decode(errors="replace").strip()
        out = as_nobody()
        check("uid: nobody cannot connect through the socket's mode 0600",
              out == "connect:13", out)
        os.chmod(d.sock, 0o666)
        out = as_nobody()
        # The daemon closes with nobody's request unread: the kernel may
        # say reset (104) rather than end of file, after the line.
        r = {}
        for how in ("eof:", "error:104:"):
            if out.startswith(how) and out[len(how):].strip():
                r = json.loads(out[len(how):].splitlines()[0])
        check("uid: with the socket open to all, nobody gets forbidden, "
              "then the connection closes", err_code(r) == "forbidden",
              out)
        st = stats(c).get("counters", {})
        check("uid: counted in clients_forbidden",
              st.get("clients_forbidden") == 1, short(st))
        r = c.req({"op": "ping"})
        check("uid: our own connection still answers",
              r.get("ok") is True, short(r))
        ft.stop_daemon(d, c, "uid daemon")
    finally:
        shutil.rmtree(sdir, ignore_errors=True)


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def churn(sock, n):
    for i in range(n):
        k = Conn(sock)
        if i % 10 == 0:
            k.req({"op": "ping"})
        k.close()


def t_many_connections(tmp):
    d = Daemon(tmp, "churn", binary=RELEASE)
    if not check("churn: the release fidxd answers", d.wait_ready()):
        return
    c = Conn(d.sock)

    def settled():
        return stats(c).get("usage", {}).get("clients") == 1
    churn(d.sock, 1000)	# warm-up: malloc's arenas and the loop's tables
    check("churn: warm-up connections all gone", ft.wait_until(settled, 10))
    fd0 = len(os.listdir("/proc/%d/fd" % d.p.pid))
    rss0 = proc_status(d.p.pid, "VmRSS")
    churn(d.sock, 10000)
    check("churn: the 10,000 connections all gone",
          ft.wait_until(settled, 20))
    fd1 = len(os.listdir("/proc/%d/fd" % d.p.pid))
    rss1 = proc_status(d.p.pid, "VmRSS")
    print("# churn: fds %d -> %d, VmRSS %d -> %d KiB" % (
        fd0, fd1, rss0 >> 10, rss1 >> 10))
    check("churn: descriptors back to what they were", fd1 == fd0,
          "%d -> %d" % (fd0, fd1))
    check("churn: RSS back within 1 MiB", rss1 - rss0 <= (1 << 20),
          "%d -> %d KiB" % (rss0 >> 10, rss1 >> 10))
    st = stats(c).get("counters", {})
    check("churn: every connection accepted, none refused",
          st.get("clients_accepted", 0) >= 11001 and
          st.get("clients_refused") == 0, short(st))
    ft.stop_daemon(d, c, "churn daemon")


def mid_walk(c, R, change, what, tries=20):
    """Starts a rebuild of R and runs change() once the daemon says it
    is walking (reindex and projects pipelined); True if it did."""
    for _ in range(tries):
        c.send({"op": "reindex", "root": R, "id": "re"})
        c.send({"op": "projects", "id": "pr"})
        c.read()
        ps = [p for p in c.read().get("projects") or []
              if p.get("root") == R]
        if ps and ps[0].get("indexing") is True:
            change()
            return True
        ft.wait_until(lambda: (ft.find_project(c, R) or {}).get(
            "indexing") is False, 10)
    print("# %s: the walk was never caught running" % what)
    return False


def t_replaced_mid_walk(tmp):
    rels = ["d%03d/f%03d.txt" % (i, j) for i in range(100) for j in
            range(100)]
    R = ft.mkdir_fixture(tmp, "replace", rels)
    aside = os.path.join(tmp, "replace-aside")
    os.makedirs(aside)
    d, c = ft.start_daemon(tmp, "replace")
    if d is None:
        return
    ft.add_ready(c, R, "replaced mid-walk")

    def change():
        for i in range(0, 100, 2):
            n = "d%03d" % i
            os.rename(os.path.join(R, n), os.path.join(aside, n))
            with open(os.path.join(R, n), "w") as f:
                f.write("now a file\n")
    check("replaced mid-walk: directories became files while it walked",
          mid_walk(c, R, change, "replaced mid-walk"))
    ft.wait_until(lambda: (ft.find_project(c, R) or {}).get("indexing")
                  is False, 30)
    check("replaced mid-walk: the daemon answers", d.ping() is not None)
    r = c.req({"op": "reindex", "root": R, "wait": True}, timeout=30)
    p = ft.find_project(c, R) or {}
    check("replaced mid-walk: a rebuild after finds what is there",
          p.get("state") == "ready" and p.get("files") == 50 * 100 + 50,
          short(p))
    ft.stop_daemon(d, c, "replace daemon")


def t_unreadable_mid_walk(tmp):
    if not can_be_nobody():
        ft.skip("permissions removed mid-walk", "needs root and setpriv to "
                "run fidxd as nobody (root reads through any mode)")
        return
    base = tempfile.mkdtemp(prefix="fidx-perm.")
    try:
        os.chmod(base, 0o755)
        rels = ["d%03d/f%03d.txt" % (i, j) for i in range(100) for j in
                range(100)]
        R = os.path.join(base, "tree")
        ft.mkfiles(R, rels)
        state = os.path.join(base, "state")
        os.makedirs(state)
        for dp, dns, fns in os.walk(base):
            for n in [dp] + [os.path.join(dp, x) for x in dns + fns]:
                os.chown(n, 65534, 65534)
        d = Daemon(tmp, "perm", sock=os.path.join(base, "s.sock"),
                   state=state, wrapper=AS_NOBODY)
        d.peer_euid = 65534
        if not check("unreadable: fidxd answers, run as nobody",
                     d.wait_ready()):
            print(d.stderr()[-2000:])
            return
        c = Conn(d.sock, euid=65534)
        ft.add_ready(c, R, "unreadable")
        s0 = stats(c).get("counters", {}).get("walk_unreadable", 0)
        for i in range(10):
            os.chmod(os.path.join(R, "d%03d" % i), 0)
        r = c.req({"op": "reindex", "root": R, "wait": True}, timeout=30)
        p = ft.find_project(c, R) or {}
        s1 = stats(c).get("counters", {}).get("walk_unreadable", 0)
        check("unreadable: 10 directories unreadable before the walk: "
              "their files left out, each counted",
              p.get("files") == 9000 and s1 - s0 >= 10,
              "%s; walk_unreadable %d -> %d" % (short(p), s0, s1))

        def change():
            for i in range(10, 100, 2):
                os.chmod(os.path.join(R, "d%03d" % i), 0)
        check("unreadable: modes removed while it walked",
              mid_walk(c, R, change, "unreadable"))
        ft.wait_until(lambda: (ft.find_project(c, R) or {}).get(
            "indexing") is False, 30)
        check("unreadable: the daemon answers", d.ping() is not None)
        c.req({"op": "reindex", "root": R, "wait": True}, timeout=30)
        p = ft.find_project(c, R) or {}
        check("unreadable: a rebuild after finds what can be read",
              p.get("state") == "ready" and p.get("files") == 4500,
              short(p))
        ft.stop_daemon(d, c, "perm daemon")
    finally:
        for dp, dns, _ in os.walk(base):
            for n in dns:
                try:
                    os.chmod(os.path.join(dp, n), 0o755)
                except OSError:
                    pass
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(ft.main("daemon_hostile.py", [
        ("names", t_names), ("roots", t_roots),
        ("another uid", t_other_uid),
        ("10,000 connections", t_many_connections),
        ("replaced mid-walk", t_replaced_mid_walk),
        ("unreadable mid-walk", t_unreadable_mid_walk)]))
