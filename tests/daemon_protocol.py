#!/usr/bin/env python3
"""tests/daemon_protocol.py - the wire protocol, as an editor plugin sees it.

Ids echoed whatever their JSON type; every malformed or out-of-range
request answered with its error code on a connection that stays usable;
the 64 KiB line limit at limit-1, limit and limit+1; blank and CRLF
lines; two clients interleaved and pipelined, each answered in order;
the shape of stats. One daemon, one project (MAIN_FILES).

Run by tests/run.sh, or alone:
    FIDX_BUILD=build/asan python3 tests/daemon_protocol.py
tests/fidxtest.py has the client, the checks and the rules (no sleep and
hope, a clean stderr, cleanup on every exit).
"""

import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402
from fidxtest import (  # noqa: E402
    MAIN_FILES, Closed, Conn, add_ready, check, check_ids_echoed, err_code,
    err_msg, find_project, mkdir_fixture, result_paths, section, short,
    start_daemon, stats, stop_daemon, wait_until)


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


def t_bad_input(d, c, R, tmp):
    plain_dir = os.path.join(tmp, "not_a_project")
    os.makedirs(plain_dir, exist_ok=True)
    a_file = os.path.join(R, "Makefile")
    cases = [
        ("malformed JSON", b'{"op":"ping",', "bad_json"),
        ("unquoted keys", b'{op:ping}', "bad_json"),
        ("trailing garbage", b'{"op":"ping"} x', "bad_json"),
        # README: bad_json is "not valid JSON", bad_request "not an
        # object"; "x" and 3 are valid JSON texts (RFC 8259).
        ("array [1]", b'[1]', "bad_request"),
        ("string \"x\"", b'"x"', "bad_request"),
        ("number 3", b'3', "bad_request"),
        ("missing op", b'{"id":5}', "bad_request"),
        ("op not a string", b'{"op":5}', "bad_request"),
        ("unknown op", b'{"op":"frobnicate"}', "unknown_op"),
        ("query limit \"x\"", {"op": "query", "root": R, "q": "a",
                               "limit": "x"}, "bad_request"),
        ("query positions 1", {"op": "query", "root": R, "q": "a",
                               "positions": 1}, "bad_request"),
        ("query q 5", {"op": "query", "root": R, "q": 5}, "bad_request"),
        ("query without q", {"op": "query", "root": R}, "bad_request"),
        ("query limit 0", {"op": "query", "root": R, "q": "a", "limit": 0},
         "bad_request"),
        ("query limit 10001", {"op": "query", "root": R, "q": "a",
                               "limit": 10001}, "bad_request"),
        ("query limit 2.5", {"op": "query", "root": R, "q": "a",
                             "limit": 2.5}, "bad_request"),
        ("add wait \"yes\"", {"op": "add", "root": R, "wait": "yes"},
         "bad_request"),
        ("add relative root", {"op": "add", "root": "relative/dir"},
         "bad_root"),
        ("add non-existent root", {"op": "add",
                                   "root": os.path.join(tmp, "nope")},
         "bad_root"),
        ("add a file as root", {"op": "add", "root": a_file}, "bad_root"),
        ("add without root", {"op": "add"}, "bad_root"),
        ("add root not a string", {"op": "add", "root": 7}, "bad_request"),
        ("remove a non-project", {"op": "remove", "root": plain_dir},
         "no_project"),
        ("reindex a non-project", {"op": "reindex", "root": plain_dir},
         "no_project"),
        ("query 1025 bytes", {"op": "query", "root": R, "q": "a" * 1025},
         "query_too_long"),
    ]
    for name, line, code in cases:
        if isinstance(line, dict):
            r = c.req(line)
        else:
            c.send_raw(line + b"\n")
            r = c.read()
        check("bad input, %s: %s" % (name, code), err_code(r) == code,
              short(r))
        if isinstance(line, dict):
            check("bad input, %s: id echoed" % name,
                  r.get("id") == Conn.next_id, short(r))
        r = c.req({"op": "ping"})
        check("bad input, %s: same connection answers a ping" % name,
              r.get("ok") is True, short(r))

    r = c.req({"op": "query", "root": R, "q": "\u00e9" * 512 + "a"})
    check("query of 513 characters but 1025 bytes: query_too_long",
          err_code(r) == "query_too_long", short(r))

    # "timeout_ms" (ops.c) is a field like the others: a wrong value is a
    # bad_request, and a rejected request changes nothing.
    r = c.req({"op": "query", "root": R, "q": "mai", "timeout_ms": "x"})
    check("query timeout_ms \"x\" on a ready project: bad_request",
          err_code(r) == "bad_request", short(r))
    fresh = mkdir_fixture(tmp, "rejected_fresh", ["f.txt"])
    r = c.req({"op": "query", "root": fresh, "q": "f", "timeout_ms": 0})
    check("query timeout_ms 0 on a new root: bad_request",
          err_code(r) == "bad_request", short(r))
    check("a rejected query (timeout_ms 0) adds no project",
          find_project(c, fresh) is None, short(find_project(c, fresh)))
    g0 = (find_project(c, R) or {}).get("generation")
    r = c.req({"op": "reindex", "root": R, "wait": True,
               "timeout_ms": "x"})
    check("reindex wait timeout_ms \"x\": bad_request",
          err_code(r) == "bad_request", short(r))
    # Wait for any walk it started, then compare generations.
    wait_until(lambda: (find_project(c, R) or {}).get("indexing") is False,
               5)
    g1 = (find_project(c, R) or {}).get("generation")
    check("a rejected reindex (timeout_ms \"x\") starts no walk",
          g0 is not None and g1 == g0, "generation %r -> %r" % (g0, g1))
    r = c.req({"op": "ping"})
    check("after the timeout_ms checks: connection answers",
          r.get("ok") is True)

    r = c.req({"op": "query", "root": R, "q": "a" * 1024})
    check("query of exactly 1024 bytes: ok", r.get("ok") is True, short(r))
    for lim in (1, 10000):
        r = c.req({"op": "query", "root": R, "q": "a", "limit": lim})
        check("query limit %d: ok" % lim, r.get("ok") is True and
              len(r.get("results", [])) <= lim, short(r))
    c.send_raw(b"\n\r\n")
    r = c.req({"op": "ping"})
    check("blank lines are ignored (next answer is the ping's)",
          r.get("ok") is True, short(r))
    c.send_raw(b'{"op":"ping","id":"crlf"}\r\n')
    r = c.read()
    check("CRLF line ends are accepted", r.get("id") == "crlf" and
          r.get("ok") is True, short(r))

    # Over-long lines: the limit is 65536 bytes without the '\n'.
    other = Conn(d.sock)
    check("second connection answers before the long line",
          other.req({"op": "ping"}).get("ok") is True)
    longc = Conn(d.sock)
    head = b'{"op":"ping","pad":"'
    longc.send_raw(head + b"a" * (65537 - len(head)))
    try:
        r = longc.read(10)
    except (Closed, TimeoutError) as e:
        r = {"exception": str(e)}
    check("65537 bytes without newline: line_too_long",
          err_code(r) == "line_too_long", short(r))
    how, _ = longc.wait_closed(10)
    check("line_too_long: connection closed (recv returns b'')",
          how == "eof", how)
    longc.close()
    r = other.req({"op": "ping"})
    check("line_too_long: another connection unaffected",
          r.get("ok") is True, short(r))

    longc = Conn(d.sock)
    longc.send_raw(b'{"op":"ping","id":"before"}\n{"op":"ping","pad":"' +
                   b"b" * 70000 + b'"}\n')
    try:
        r = longc.read(10)
    except (Closed, TimeoutError) as e:
        r = {"exception": str(e)}
    check("the request before a long line is answered first",
          r.get("id") == "before" and r.get("ok") is True, short(r))
    try:
        r = longc.read(10)
    except (Closed, TimeoutError) as e:
        r = {"exception": str(e)}
    check("70000-byte line with newline: line_too_long",
          err_code(r) == "line_too_long", short(r))
    how, _ = longc.wait_closed(10)
    # The daemon closes with our unread bytes still queued, so the
    # kernel may report a reset rather than an end of file.
    check("70000-byte line: connection closed", how in ("eof", "reset"),
          how)
    longc.close()

    head = b'{"op":"ping","id":"edge","pad":"'
    exact = head + b"c" * (65536 - len(head) - 2) + b'"}'
    longc = Conn(d.sock)
    longc.send_raw(exact + b"\n")
    r = longc.read(10)
    check("a line of exactly 65536 bytes is accepted",
          r.get("ok") is True and r.get("id") == "edge", short(r))
    longc.close()
    r = other.req({"op": "ping"})
    check("after the long lines: the other connection still answers",
          r.get("ok") is True, short(r))
    other.close()


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
    """Whitespace-only lines are blank lines; a NUL is bad_json."""
    c.send_raw(b"   \n\t \r\n")
    r = c.req({"op": "ping"})
    check("whitespace-only lines are blank too (next answer is the ping's)",
          r.get("ok") is True, short(r))
    c.send_raw(b'{"op":"ping","x":"a\\u0000b"}\n')
    r = c.read()
    check("a NUL in a string: bad_json in plain words",
          err_code(r) == "bad_json" and "NUL" in err_msg(r) and
          "JSON_" not in err_msg(r), short(r))


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
    bc = Conn(d.sock)
    section("bad input", t_bad_input, d, bc, R, tmp)
    bc.close()
    section("two clients", t_two_clients, d, R)
    section("blank lines", t_blank_lines, d, c)
    section("stats", t_stats, d, c)
    check_ids_echoed()
    stop_daemon(d, c, "protocol daemon")


if __name__ == "__main__":
    sys.exit(ft.main("daemon_protocol.py", [("protocol", t_protocol)]))
