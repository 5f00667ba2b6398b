#!/usr/bin/env python3
"""tests/daemon_waits.py - requests that wait: parked on a walk.

min_generation reached, refused when it cannot come, and counted;
pipelined batches with parked requests answered in order; a half-closed
client's answers; a parked query whose project is removed under it; a
parked client that goes away. One daemon.

Run by tests/run.sh, or alone:
    FIDX_BUILD=build/asan python3 tests/daemon_waits.py
tests/fidxtest.py has the client, the checks and the rules (no sleep and
hope, a clean stderr, cleanup on every exit).
"""

import json
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402
from fidxtest import (  # noqa: E402
    MAIN_FILES, Closed, Conn, add_ready, check, check_ids_echoed, err_code,
    err_msg, find_project, mkdir_fixture, result_paths, section, short,
    start_daemon, stats, stop_daemon, threads_stopped, wait_until)


def t_min_generation(d, c, R):
    p = find_project(c, R) or {}
    gen = p.get("generation", 0)
    r = c.req({"op": "reindex", "root": R})
    check("reindex without wait: reindexing 1", r.get("ok") is True and
          r.get("reindexing") == 1 and "files" not in r, short(r))
    r = c.req({"op": "query", "root": R, "q": "mai",
               "min_generation": gen + 1}, timeout=20)
    check("min_generation current+1: generation >= it",
          r.get("ok") is True and r.get("generation", 0) >= gen + 1,
          "before %d: %s" % (gen, short(r)))
    check("min_generation: still finds src/main.c",
          "src/main.c" in result_paths(r), short(r))
    # Nothing is walking and no watcher starts a walk: it cannot come.
    r = c.req({"op": "query", "root": R, "q": "mai",
               "min_generation": gen + 1000, "timeout_ms": 300}, timeout=10)
    check("min_generation never reached: bad_request at once",
          err_code(r) == "bad_request", short(r))
    r = c.req({"op": "query", "root": R, "q": "mai", "min_generation": -1})
    check("min_generation -1: bad_request", err_code(r) == "bad_request",
          short(r))


def t_messages_waits(d, c, R, tmp):
    """min_generation that cannot come says so at once; a wait is counted."""
    N = mkdir_fixture(tmp, "never_gen5", ["n.txt"])
    r = c.req({"op": "query", "root": N, "q": "n", "min_generation": 5})
    check("min_generation 5 on a new root: refused, and no project added",
          err_code(r) == "bad_request" and "cannot come" in err_msg(r) and
          find_project(c, N) is None, short(r))
    p = find_project(c, R) or {}
    gen = p.get("generation", 0)
    t0 = time.monotonic()
    r = c.req({"op": "query", "root": R, "q": "mai",
               "min_generation": gen + 5, "timeout_ms": 60000}, timeout=30)
    check("min_generation ahead of every walk: refused at once",
          err_code(r) == "bad_request" and "cannot come" in err_msg(r) and
          "nothing is being built" in err_msg(r) and
          time.monotonic() - t0 < 20, short(r))
    waits = stats(c).get("counters", {}).get("waits", 0)
    c.req({"op": "reindex", "root": R, "wait": True}, timeout=20)
    check("a parked request is counted in stats.counters.waits",
          stats(c).get("counters", {}).get("waits", 0) == waits + 1)


def t_lifecycle(d, c, R, tmp):
    """Parked requests: pipelined around, removed under, client gone."""
    base = stats(c).get("usage", {}).get("clients")
    P = mkdir_fixture(tmp, "pipeparked", ["pp/one.txt", "pp/two.txt"])
    gen = (find_project(c, R) or {}).get("generation", 0)
    reqs = [{"op": "ping"},
            {"op": "add", "root": P, "wait": True},
            {"op": "query", "root": P, "q": "two"},
            {"op": "reindex", "root": R, "wait": True},
            {"op": "query", "root": R, "q": "mai",
             "min_generation": gen + 1},
            {"op": "ping"}]
    x = Conn(d.sock)
    lines = []
    for i, q in enumerate(reqs):
        q = dict(q, id="p%d" % i)
        lines.append(json.dumps(q).encode())
    x.send_raw(b"\n".join(lines) + b"\n")
    got = []
    try:
        for _ in reqs:
            got.append(x.read(20))
    except (Closed, TimeoutError) as e:
        got.append({"exception": str(e)})
    check("pipelined batch with parked requests: answers in order",
          [g.get("id") for g in got] == ["p%d" % i for i in range(6)],
          short(got))
    check("pipelined batch with parked requests: each ok and right",
          len(got) == 6 and all(g.get("ok") is True for g in got) and
          got[1].get("files") == 2 and
          result_paths(got[2]) == ["pp/two.txt"] and
          got[4].get("generation", 0) >= gen + 1, short(got))

    # Half-close: the answers still come, the last line needs no '\n'.
    x.send_raw(b'{"op":"ping","id":"h1"}\n{"op":"ping","id":"h2"}')
    x.s.shutdown(socket.SHUT_WR)
    how, got = x.wait_closed(10)
    ids = [json.loads(g).get("id") for g in got]
    check("half-closed client: both answers (last line without newline), "
          "then EOF", ids == ["h1", "h2"] and how == "eof",
          "%s %s" % (how, ids))
    x.close()

    # A query parked on a walk whose project is removed hears no_project.
    # Both requests reach a stopped daemon (so no walk ends), which takes
    # them in one turn, in epoll's ready-list order: the query parks on
    # the reindex's walk, then the remove comes. That order holds when y
    # is accepted before the stop and is the connection answered last:
    # level-triggered epoll keeps the last one reported on its ready list
    # until the next epoll_wait, ahead of any that become readable.
    gen = (find_project(c, P) or {}).get("generation", 0)
    waits = stats(c).get("counters", {}).get("waits", 0)
    y = Conn(d.sock)
    check("the parking connection is accepted",
          y.req({"op": "ping"}).get("ok") is True)
    d.p.send_signal(signal.SIGSTOP)
    check("SIGSTOP: every thread of the daemon stopped",
          wait_until(lambda: threads_stopped(d.p.pid), 5))
    y.send({"op": "reindex", "root": P, "id": "rx"})
    y.send({"op": "query", "root": P, "q": "one", "id": "rm",
            "min_generation": gen + 1, "timeout_ms": 60000})
    c.send({"op": "remove", "root": P, "id": "rmp"})
    d.p.send_signal(signal.SIGCONT)
    r = c.read(10)
    check("remove of a project with a parked query: removed",
          r.get("removed") is True, short(r))
    try:
        rs = [y.read(5), y.read(5)]
    except (Closed, TimeoutError) as e:
        rs = [{"exception": str(e)}] * 2
    check("the parked query hears no_project at once",
          rs[0].get("ok") is True and err_code(rs[1]) == "no_project" and
          rs[1].get("id") == "rm", short(rs))
    check("the query was parked", stats(c).get("counters", {}).get(
        "waits", 0) == waits + 1)
    r = y.req({"op": "ping"})
    check("that connection still answers", r.get("ok") is True, short(r))

    # A parked client that goes away is dropped, its wait freed.
    gen = (find_project(c, R) or {}).get("generation", 0)
    y.send({"op": "query", "root": R, "q": "x", "id": "gone",
            "min_generation": gen + 1000, "timeout_ms": 60000})
    check("a parked client is counted",
          wait_until(lambda: stats(c).get("usage", {}).get("clients") ==
                     base + 1, 5), short(stats(c).get("usage")))
    y.close()
    check("a parked client that closes is dropped at once",
          wait_until(lambda: stats(c).get("usage", {}).get("clients") ==
                     base, 5), short(stats(c).get("usage")))
    r = c.req({"op": "query", "root": R, "q": "mai"})
    check("the daemon still answers after that", r.get("ok") is True,
          short(r))


def t_waits(tmp):
    d, c = start_daemon(tmp, "waits")
    if d is None:
        return
    R = mkdir_fixture(tmp, "proj", MAIN_FILES)
    add_ready(c, R, "waits")
    section("min_generation", t_min_generation, d, c, R)
    section("messages", t_messages_waits, d, c, R, tmp)
    section("lifecycle", t_lifecycle, d, c, R, tmp)
    check_ids_echoed()
    stop_daemon(d, c, "waits daemon")


if __name__ == "__main__":
    sys.exit(ft.main("daemon_waits.py", [("waits", t_waits)]))
