#!/usr/bin/env python3
"""tests/daemon_cancel.py - queries on the worker: supersede, cancel, busy,
a client that leaves mid-query, shutdown mid-query.

Each daemon runs with --inline-max-files 0, so every query goes to the
query worker however small its project. What must hold whatever the
timing: a connection's answers come in request order; a query marked
"supersede" whose successor arrives in the same read is answered
`cancelled` (its done() is handled in a later loop turn than the line
that cancels it); a full queue answers `busy`, counted in stats, and
never grows. No timed assertion: speed is bench/'s.
"""

import json
import os
import signal
import sys
import tempfile
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as t  # noqa: E402  (the client library: Conn, Daemon, check)


def send_lines(c, objs):
    """Every request in one write, so the daemon reads them in one go."""
    c.send_raw(b"".join(json.dumps(o).encode() + b"\n" for o in objs))


def thread_nices(pid):
    """{tid: nice} of every thread of pid, from /proc (field 19)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            out[int(tid)] = int(f.read().rsplit(") ", 1)[1].split()[16])
    return out


def stats(c):
    return c.req({"op": "stats"})


def t_supersede(tmp):
    R = t.mkdir_fixture(tmp, "sup-tree", ["src/main.c", "src/util.c",
                                          "README.md"])
    d = t.Daemon(tmp, "sup", ["--inline-max-files", "0",
                              "--worker-nice", "3"])
    if not t.check("supersede: daemon up", d.wait_ready()):
        return
    t.check("--worker-nice 3: the workers are niced, the loop is not",
            thread_nices(d.p.pid).get(d.p.pid) == 0 and
            3 in thread_nices(d.p.pid).values(), thread_nices(d.p.pid))
    c = t.Conn(d.sock)
    r = c.req({"op": "add", "root": R, "wait": True}, timeout=20)
    t.check("supersede: add ready", r.get("state") == "ready", t.short(r))

    q = {"op": "query", "root": R, "limit": 5}
    send_lines(c, [dict(q, id=1, q="s", supersede=True),
                   dict(q, id=2, q="sr", supersede=True),
                   dict(q, id=3, q="src")])
    a = [c.read() for _ in range(3)]
    t.check("supersede: answers in request order",
            [x.get("id") for x in a] == [1, 2, 3], t.short(a))
    t.check("supersede: each superseded query is cancelled",
            t.err_code(a[0]) == "cancelled" and
            t.err_code(a[1]) == "cancelled", t.short(a))
    t.check("supersede: the last one answers",
            a[2].get("ok") is True and
            "src/main.c" in t.result_paths(a[2]), t.short(a[2]))

    # Without supersede nothing is cancelled.
    send_lines(c, [dict(q, id=4, q="main"), dict(q, id=5, q="util")])
    a = [c.read() for _ in range(2)]
    t.check("no supersede: both answer, in order",
            [x.get("id") for x in a] == [4, 5] and
            all(x.get("ok") is True for x in a), t.short(a))

    # A supersede query is cancelled by a query only, not by a ping.
    send_lines(c, [dict(q, id=6, q="main", supersede=True),
                   {"id": 7, "op": "ping"}])
    a = [c.read() for _ in range(2)]
    t.check("supersede: a ping behind it does not cancel it",
            a[0].get("id") == 6 and a[0].get("ok") is True and
            a[1].get("id") == 7, t.short(a))

    # An explicit cancel names the target by its id.
    send_lines(c, [dict(q, id=8, q="main"),
                   {"id": 9, "op": "cancel", "target": 8}])
    a = [c.read() for _ in range(2)]
    t.check("cancel: the target is cancelled, then cancel answers",
            a[0].get("id") == 8 and t.err_code(a[0]) == "cancelled" and
            a[1].get("id") == 9 and a[1].get("ok") is True and
            a[1].get("target") == 8, t.short(a))
    send_lines(c, [dict(q, id=10, q="main"),
                   {"id": 11, "op": "cancel", "target": 99}])
    a = [c.read() for _ in range(2)]
    t.check("cancel: another id leaves the query alone",
            a[0].get("ok") is True and a[1].get("ok") is True, t.short(a))
    r = c.req({"op": "cancel"})
    t.check("cancel: without target is a bad_request",
            t.err_code(r) == "bad_request", t.short(r))

    s = stats(c)
    t.check("stats: queries_cancelled counts the three",
            s.get("counters", {}).get("queries_cancelled") == 3,
            t.short(s.get("counters")))
    t.check("stats: the query queue and its limit",
            s.get("limits", {}).get("query_queue") == 64 and
            s.get("usage", {}).get("query_queue") == 0 and
            s.get("limits", {}).get("inline_max_files") == 0,
            t.short(s))
    c.req({"op": "shutdown"})
    c.close()
    t.check("supersede: daemon exits 0", d.wait_exit() == 0)
    t.check_clean_stderr(d, "supersede daemon")


def t_busy_and_leaving(tmp):
    # Enough files that one query outlasts the loop's reading four lines.
    R = os.path.join(tmp, "busy-tree")
    for i in range(40):
        os.makedirs(os.path.join(R, "d%02d" % i))
        for k in range(500):
            open(os.path.join(R, "d%02d" % i, "file_%03d.txt" % k),
                 "wb").close()
    d = t.Daemon(tmp, "busy", ["--inline-max-files", "0",
                               "--max-queued-queries", "1"])
    if not t.check("busy: daemon up", d.wait_ready()):
        return
    c = t.Conn(d.sock)
    r = c.req({"op": "add", "root": R, "wait": True}, timeout=60)
    t.check("busy: add ready", r.get("files") == 20000, t.short(r))

    # Four connections' queries read in one loop turn: one runs, one
    # may wait, the rest are refused.
    conns = [t.Conn(d.sock) for _ in range(4)]
    q = {"op": "query", "root": R, "q": "d1 file 9 txt", "limit": 10,
         "positions": True}
    os.kill(d.p.pid, signal.SIGSTOP)
    try:
        for i, k in enumerate(conns):
            k.send(dict(q, id=i))
    finally:
        os.kill(d.p.pid, signal.SIGCONT)
    a = [k.read(timeout=30) for k in conns]
    busy = [x for x in a if t.err_code(x) == "busy"]
    ok = [x for x in a if x.get("ok") is True]
    t.check("busy: each connection gets one answer, its own",
            [x.get("id") for x in a] == [0, 1, 2, 3], t.short(a))
    # The first runs; the second waits or, if the worker has not taken
    # the first off the queue yet, is refused too.
    t.check("busy: a full queue refuses (one to three of four)",
            1 <= len(busy) <= 3 and len(ok) >= 1 and
            len(busy) + len(ok) == 4, t.short(a))
    t.check("busy: the message names the flag",
            all("--max-queued-queries" in t.err_msg(x) for x in busy),
            t.short(busy))
    s = stats(c)
    t.check("busy: counted in stats",
            s.get("counters", {}).get("queries_busy") == len(busy),
            t.short(s.get("counters")))
    for k in conns:
        k.close()

    # A client that leaves while its query runs: nobody else notices.
    k = t.Conn(d.sock)
    k.send(dict(q, id=50))
    k.close()
    r = c.req({"op": "ping"})
    t.check("a client gone mid-query: the daemon answers others",
            r.get("ok") is True, t.short(r))

    # Shutdown while a query runs (or just after): its client hears one
    # answer. Shut down only once the query is on the worker.
    before = stats(c).get("counters", {}).get("queries_on_worker", 0)
    k = t.Conn(d.sock)
    k.send(dict(q, id=60))
    t.check("shutdown mid-query: the query reached the worker",
            t.wait_until(lambda: stats(c).get("counters", {}).get(
                "queries_on_worker", 0) > before, 20))
    c.send({"op": "shutdown"})
    try:
        r = k.read(timeout=30)
    except (t.Closed, TimeoutError) as e:
        r = {"closed": str(e)}
    t.check("shutdown mid-query: the query is answered or stopped",
            r.get("id") == 60 and (r.get("ok") is True or
                                   t.err_code(r) == "shutting_down"),
            t.short(r))
    k.close()
    c.close()
    t.check("busy: daemon exits 0", d.wait_exit() == 0)
    t.check_clean_stderr(d, "busy daemon")


def main():
    if not os.access(t.FIDXD, os.X_OK):
        print("daemon_cancel.py: no %s; build it first" % t.FIDXD,
              file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="fidx-cancel.")
    os.chmod(tmp, 0o700)
    os.environ["XDG_STATE_HOME"] = os.path.join(tmp, "state")
    try:
        for name, fn in (("supersede", t_supersede),
                         ("busy and leaving", t_busy_and_leaving)):
            t.section(name, fn, tmp)
    finally:
        for dm in t.running:
            dm.kill()
            dm.errf.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print("daemon_cancel.py: %d passed, %d failed" % (t.passed, t.failed))
    if t.failed:
        print("failed checks:")
        for n in t.failed_names:
            print("  " + n)
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
