#!/usr/bin/env python3
"""tests/daemon_protocol.py - the wire protocol, as an editor plugin sees it.

Ids echoed whatever their JSON type; blank and CRLF lines; two clients
interleaved and pipelined, each answered in order; the shape of stats.
One daemon, one project (MAIN_FILES). Malformed and out-of-range
requests, and the line limit, are tests/daemon_badinput.py's catalog.

Run by tests/run.sh, or alone:
    FIDX_BUILD=build/asan python3 tests/daemon_protocol.py
tests/fidxtest.py has the client, the checks and the rules (no sleep and
hope, a clean stderr, cleanup on every exit).
"""

import json
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402
from fidxtest import (  # noqa: E402
    MAIN_FILES, Closed, Conn, add_ready, check, check_ids_echoed, err_code,
    mkdir_fixture, result_paths, section, short, start_daemon, stats,
    stop_daemon)


def t_ping_ids(d, c):
    r = c.req({"op": "ping", "id": 1})
    check("ping answers ok", r.get("ok") is True, short(r))
    check("ping has a version string",
          isinstance(r.get("version"), str) and r["version"] != "", short(r))
    check("ping pid is the daemon's", r.get("pid") == d.p.pid,
          "pid %r, daemon %d" % (r.get("pid"), d.p.pid))
    ids = [0, 7, -3, 2 ** 53, 2.5, "abc", "", "ü\u2603",
           {"k": [1, 2, {"x": None}]}, [1, "two"], True, None]
    for idv in ids:
        r = c.req({"op": "ping", "id": idv})
        check("id %s is echoed" % json.dumps(idv),
              "id" in r and r["id"] == idv and
              type(r["id"]) is type(idv), short(r))
    r = c.req({"op": "frobnicate", "id": {"plugin": "vim", "n": 3}})
    check("id echoed on an error response",
          r.get("id") == {"plugin": "vim", "n": 3} and
          err_code(r) == "unknown_op", short(r))
    c.send_raw(b'{"op":"ping"}\n')
    r = c.read()
    check("a request without id gets no id", r.get("ok") is True and
          "id" not in r, short(r))


def t_two_clients(d, R):
    a = Conn(d.sock)
    b = Conn(d.sock)
    bad = []
    for i in range(10):
        a.send({"op": "ping", "id": "a%d" % i})
        b.send({"op": "query", "root": R, "q": "mai", "id": "b%d" % i})
        a.send({"op": "query", "root": R, "q": "dkr", "id": "a%dq" % i})
        if i % 2:
            rb, ra, ra2 = b.read(), a.read(), a.read()
        else:
            ra, rb, ra2 = a.read(), b.read(), a.read()
        if ra.get("id") != "a%d" % i or ra.get("pid") != d.p.pid:
            bad.append(("a", i, short(ra, 150)))
        if ra2.get("id") != "a%dq" % i or \
                result_paths(ra2)[:1] != ["Dockerfile"]:
            bad.append(("a", i, short(ra2, 150)))
        if rb.get("id") != "b%d" % i or \
                "src/main.c" not in result_paths(rb):
            bad.append(("b", i, short(rb, 150)))
    check("two clients interleaved: each gets its own answers in order",
          not bad, bad[:3])

    ops = [{"op": "ping"}, {"op": "query", "root": R, "q": "util"},
           {"op": "projects"}, {"op": "stats"},
           {"op": "query", "root": R, "q": "nosuchthingzz"},
           {"op": "frobnicate"}]
    batch = {}
    for who in ("A", "B"):
        lines = []
        for i in range(50):
            o = dict(ops[i % len(ops)])
            o["id"] = "%s-%d" % (who, i)
            lines.append(json.dumps(o).encode())
        batch[who] = b"\n".join(lines) + b"\n"
    a.send_raw(batch["A"])
    b.send_raw(batch["B"])
    for who, conn in (("B", b), ("A", a)):
        got = []
        try:
            for i in range(50):
                got.append(conn.read(15))
        except (Closed, TimeoutError) as e:
            got.append({"exception": str(e)})
        ids = [g.get("id") for g in got]
        want = ["%s-%d" % (who, i) for i in range(50)]
        check("pipelining client %s: 50 answers, ids in order" % who,
              ids == want, "got %s" % ids[:60])
        kinds_ok = all(
            (g.get("ok") is True) == (ops[i % len(ops)]["op"] !=
                                      "frobnicate")
            for i, g in enumerate(got[:50]))
        check("pipelining client %s: each answer fits its request" % who,
              kinds_ok and len(got) == 50)
    a.close()
    b.close()


def t_blank_lines(d, c):
    """Blank and whitespace-only lines are keep-alives, never answered;
    CRLF line ends are accepted."""
    c.send_raw(b"\n\r\n")
    r = c.req({"op": "ping"})
    check("blank lines are ignored (next answer is the ping's)",
          r.get("ok") is True, short(r))
    c.send_raw(b"   \n\t \r\n")
    r = c.req({"op": "ping"})
    check("whitespace-only lines are blank too (next answer is the ping's)",
          r.get("ok") is True, short(r))
    c.send_raw(b'{"op":"ping","id":"crlf"}\r\n')
    r = c.read()
    check("CRLF line ends are accepted", r.get("id") == "crlf" and
          r.get("ok") is True, short(r))


def t_stats(d, c):
    s = stats(c)
    check("stats: ok with limits/usage/counters/memory",
          s.get("ok") is True and
          all(isinstance(s.get(k), dict)
              for k in ("limits", "usage", "counters", "memory")), short(s))
    lim, use = s.get("limits", {}), s.get("usage", {})
    for k in ("projects", "clients", "index_bytes"):
        check("stats: usage.%s <= limits.%s" % (k, k),
              isinstance(use.get(k), int) and isinstance(lim.get(k), int)
              and 0 <= use[k] <= lim[k], "%r vs %r" % (use.get(k),
                                                       lim.get(k)))
    check("stats: usage.clients counts us", use.get("clients", 0) >= 1,
          short(use))
    check("stats: counters.requests and queries grew",
          s.get("counters", {}).get("requests", 0) > 100 and
          s.get("counters", {}).get("queries", 0) > 10, short(s))
    check("stats: limits echo the defaults",
          lim.get("line_bytes") == 65536 and lim.get("results") == 10000 and
          lim.get("query_bytes") == 1024, short(lim))


def t_protocol(tmp):
    d, c = start_daemon(tmp, "protocol")
    if d is None:
        return
    R = mkdir_fixture(tmp, "proj", MAIN_FILES)
    add_ready(c, R, "protocol")
    section("ping", t_ping_ids, d, c)
    section("two clients", t_two_clients, d, R)
    section("blank lines", t_blank_lines, d, c)
    section("stats", t_stats, d, c)
    check_ids_echoed()
    stop_daemon(d, c, "protocol daemon")


if __name__ == "__main__":
    sys.exit(ft.main("daemon_protocol.py", [("protocol", t_protocol)]))
