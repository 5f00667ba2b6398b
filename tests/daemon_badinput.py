#!/usr/bin/env python3
"""tests/daemon_badinput.py - the bad-input catalog: every malformed
request we could think of, each answered with its documented error code.

For every entry of the catalog (CATALOG, WRONG_TYPES, RANGES, and the
scenarios after them: truncations, pipelined garbage, one byte at a
time, over-long lines), the checks are the same:
  - the answer's code is the one the README's error table documents for
    it (and every code the daemon can send, common/proto.c's names, has
    a row there; every code seen here too);
  - the connection stays usable (a ping on it answers) where the README
    says it does, and is closed where it says so (`line_too_long`);
  - the daemon stays up, and an observer connection, open from the start
    to the end, has a ping answered after every entry (and between the
    bytes of a request sent one at a time);
  - a rejected request changes nothing (no project added, no walk
    started), and the daemon exits 0 with a clean stderr at the end.

Run by tests/run.sh, or alone:
    FIDX_BUILD=build/asan python3 tests/daemon_badinput.py
tests/fidxtest.py has the client, the checks and the rules.
"""

import base64
import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402
from fidxtest import (  # noqa: E402
    MAIN_FILES, Closed, Conn, check, err_code, err_msg, find_project,
    mkdir_fixture, short, wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, "..", "README.md")
PROTO_C = os.path.join(HERE, "..", "common", "proto.c")

# Stand-ins the cases name, filled in once the fixtures exist.
R = "@R@"		# a ready project (MAIN_FILES)
G = "@G@"		# a git work tree, not a project
LINE_MAX = 65536	# the default --max-line-bytes

# --------------------------------------------------------------- catalog
# (name, request, expected): a request is bytes (one line, "\n" added)
# or a dict (sent as JSON with an id of ours, checked to be echoed);
# expected is an error code, or "ok"; a fourth element, words the message
# must hold. A code that closes the connection is in CLOSES (the README
# says which). Messages never leak jansson's flag names (JSON_...).
CATALOG = [
    # Not JSON at all, or not whole.
    ("truncated object", b'{"op":"ping",', "bad_json"),
    ("truncated string", b'{"op":"pi', "bad_json"),
    ("unquoted keys", b'{op:ping}', "bad_json"),
    ("single quotes", b"{'op':'ping'}", "bad_json"),
    ("trailing garbage", b'{"op":"ping"} x', "bad_json"),
    ("two objects on a line", b'{"op":"ping"}{"op":"ping"}', "bad_json"),
    ("trailing comma", b'{"op":"ping",}', "bad_json"),
    ("a lone brace", b'}', "bad_json"),
    ("plain words", b'hello fidxd', "bad_json"),
    ("duplicate key", b'{"op":"ping","op":"ping"}', "bad_json"),
    ("comment", b'{"op":"ping"} // hi', "bad_json"),
    ("NaN", b'{"op":"ping","id":NaN}', "bad_json"),
    ("Infinity", b'{"op":"ping","id":Infinity}', "bad_json"),
    # Numbers past what jansson holds: refused by the parser.
    ("number 1e400", b'{"op":"ping","id":1e400}', "bad_json"),
    ("number -1e400", b'{"op":"ping","id":-1e400}', "bad_json"),
    ("number 2^64", b'{"op":"ping","id":18446744073709551616}',
     "bad_json"),
    ("number 2^63", b'{"op":"ping","id":9223372036854775808}', "bad_json"),
    ("limit 2^64", b'{"op":"query","root":"@R@","q":"a",'
     b'"limit":18446744073709551616}', "bad_json"),
    ("number 01", b'{"op":"ping","id":01}', "bad_json"),
    ("number +1", b'{"op":"ping","id":+1}', "bad_json"),
    ("number .5", b'{"op":"ping","id":.5}', "bad_json"),
    # ... and numbers it holds, which are answered.
    ("id -0", b'{"op":"ping","id":-0}', "ok"),
    ("id -0.0", b'{"op":"ping","id":-0.0}', "ok"),
    ("id 2^63-1", b'{"op":"ping","id":9223372036854775807}', "ok"),
    ("id 1e308", b'{"op":"ping","id":1e308}', "ok"),
    # Nesting: jansson stops at depth 2048.
    ("nesting 3000 '['", b'[' * 3000, "bad_json"),
    ("nesting 60000 '['", b'[' * 60000, "bad_json"),
    ("nesting 3000 '{\"a\":'", b'{"a":' * 3000, "bad_json"),
    ("nested id 500 deep", b'{"op":"ping","id":' + b"[" * 500 +
     b"]" * 500 + b"}", "ok"),
    # Invalid UTF-8, and NUL.
    ("byte 0xff in a string", b'{"op":"ping","x":"\xff"}', "bad_json"),
    ("overlong NUL (C0 80)", b'{"op":"ping","x":"\xc0\x80"}', "bad_json"),
    ("UTF-8 surrogate (ED A0 80)", b'{"op":"ping","x":"\xed\xa0\x80"}',
     "bad_json"),
    ("truncated UTF-8 (E2 82)", b'{"op":"ping","x":"\xe2\x82"}',
     "bad_json"),
    ("byte 0xfe outside strings", b'{"op":"ping"}\xfe', "bad_json"),
    ("invalid UTF-8 in root", b'{"op":"query","root":"/tmp/\xe9","q":"a"}',
     "bad_json"),
    ("lone surrogate \\ud800", b'{"op":"ping","x":"\\ud800"}', "bad_json"),
    ("a BOM first", b'\xef\xbb\xbf{"op":"ping"}', "bad_json"),
    ("NUL byte alone", b'\x00', "bad_json"),
    ("NUL byte after the object", b'{"op":"ping"}\x00', "bad_json"),
    ("NUL byte in a string", b'{"op":"ping","x":"a\x00b"}', "bad_json"),
    ("NUL byte between tokens", b'{"op":\x00"ping"}', "bad_json"),
    ("\\u0000 in a string", b'{"op":"ping","x":"a\\u0000b"}', "bad_json",
     "NUL"),
    ("\\u0000 in op", b'{"op":"ping\\u0000"}', "bad_json"),
    ("control character in a string", b'{"op":"ping","x":"\x01"}',
     "bad_json"),
    # JSON, but not a request (README: bad_request "not an object").
    ("array [1]", b'[1]', "bad_request"),
    ("empty array", b'[]', "bad_request"),
    ("string \"x\"", b'"x"', "bad_request"),
    ("number 3", b'3', "bad_request"),
    ("null", b'null', "bad_request"),
    ("true", b'true', "bad_request"),
    ("empty object", b'{}', "bad_request"),
    # op missing, of the wrong type, or naming nothing.
    ("missing op", {}, "bad_request"),
    ("op null", {"op": None}, "bad_request"),
    ("op 5", {"op": 5}, "bad_request"),
    ("op true", {"op": True}, "bad_request"),
    ("op [\"ping\"]", {"op": ["ping"]}, "bad_request"),
    ("op {}", {"op": {}}, "bad_request"),
    ("unknown op", {"op": "frobnicate"}, "unknown_op"),
    ("op \"\"", {"op": ""}, "unknown_op"),
    ("op in capitals", {"op": "PING"}, "unknown_op"),
    ("op with a space", {"op": "ping "}, "unknown_op"),
    ("op of 10,000 bytes", {"op": "p" * 10000}, "unknown_op"),
    # Missing fields.
    ("add without root", {"op": "add"}, "bad_root"),
    ("remove without root", {"op": "remove"}, "bad_root"),
    ("query without root", {"op": "query", "q": "a"}, "bad_root"),
    ("query without q", {"op": "query", "root": R}, "bad_request"),
    ("reindex without root or all", {"op": "reindex"}, "bad_root"),
    ("reindex all false", {"op": "reindex", "all": False}, "bad_root"),
    ("visit without root", {"op": "visit", "path": "Makefile"},
     "bad_root"),
    ("visit without path", {"op": "visit", "root": R}, "bad_request"),
    ("git without root", {"op": "git"}, "bad_root"),
    ("sync without root", {"op": "sync"}, "bad_root"),
    ("cancel without target", {"op": "cancel"}, "bad_request"),
    # Fields that contradict each other or name nothing.
    ("query q and q_b64", {"op": "query", "root": R, "q": "a",
                           "q_b64": "YQ=="}, "bad_request"),
    ("query q_b64 not base64", {"op": "query", "root": R,
                                "q_b64": "not base64"}, "bad_request"),
    ("query q_b64 unpadded", {"op": "query", "root": R, "q_b64": "YQ"},
     "bad_request"),
    ("query mode glob", {"op": "query", "root": R, "q": "a",
                         "mode": "glob"}, "bad_request"),
    ("query mode \"\"", {"op": "query", "root": R, "q": "a", "mode": ""},
     "bad_request"),
    ("query boost x", {"op": "query", "root": R, "q": "a", "boost": "x"},
     "bad_request"),
    ("query bad regex", {"op": "query", "root": R, "q": "(",
                         "mode": "regex"}, "bad_query"),
    ("query 1025 bytes", {"op": "query", "root": R, "q": "a" * 1025},
     "query_too_long"),
    ("query 513 characters, 1025 bytes",
     {"op": "query", "root": R, "q": "\u00e9" * 512 + "a"},
     "query_too_long"),
    ("query of 1024 bytes", {"op": "query", "root": R, "q": "a" * 1024},
     "ok"),
    ("query min_generation that cannot come",
     {"op": "query", "root": R, "q": "a", "min_generation": 1 << 40},
     "bad_request"),
    ("reindex root and all", {"op": "reindex", "root": R, "all": True},
     "bad_request"),
    ("visit path and path_b64", {"op": "visit", "root": R,
                                 "path": "Makefile",
                                 "path_b64": "TWFrZWZpbGU="},
     "bad_request"),
    ("visit path_b64 not base64", {"op": "visit", "root": R,
                                   "path_b64": "!!"}, "bad_request"),
    ("visit path_b64 with a NUL", {"op": "visit", "root": R,
                                   "path_b64": base64.b64encode(
                                       b"a\x00b").decode()},
     "bad_request"),
    ("visit empty path", {"op": "visit", "root": R, "path": ""},
     "bad_request"),
    ("visit path leaving the root", {"op": "visit", "root": R,
                                     "path": "../x"}, "bad_request"),
    ("visit the root itself", {"op": "visit", "root": R, "path": "."},
     "bad_request"),
    ("git untracked x", {"op": "git", "root": G, "untracked": "x"},
     "bad_request"),
    ("git on no work tree", {"op": "git", "root": R},
     "not_a_repository"),
    ("add exclude bad regex", {"op": "add", "root": R, "exclude": "("},
     "bad_request"),
    # Roots that are not directories we can use.
    ("root \"\"", {"op": "query", "root": "", "q": "a"}, "bad_root"),
    ("root relative", {"op": "add", "root": "relative/dir"}, "bad_root"),
    ("root not found", {"op": "add", "root": "/nonexistent/fidx/x"},
     "bad_root"),
    ("root a file", {"op": "add", "root": "@R@/Makefile"}, "bad_root"),
    ("root of 5000 bytes", {"op": "add", "root": "/" + "a" * 4999},
     "bad_root"),
    ("remove a non-project", {"op": "remove", "root": "@PLAIN@"},
     "no_project"),
    ("reindex a non-project", {"op": "reindex", "root": "@PLAIN@"},
     "no_project"),
    ("sync a non-project", {"op": "sync", "root": "@PLAIN@"},
     "no_project"),
    # Edge values that are fine, so the ranges' edges are pinned.
    ("empty query", {"op": "query", "root": R, "q": ""}, "ok"),
    ("query of blanks", {"op": "query", "root": R, "q": "   "}, "ok"),
    ("empty regex", {"op": "query", "root": R, "q": "", "mode": "regex"},
     "ok"),
    ("query limit 1", {"op": "query", "root": R, "q": "a", "limit": 1},
     "ok"),
    ("query limit 10000", {"op": "query", "root": R, "q": "a",
                           "limit": 10000}, "ok"),
    ("query typos 0", {"op": "query", "root": R, "q": "a", "typos": 0},
     "ok"),
    ("query timeout_ms 0 on a new root", {"op": "query", "root": "@FRESH@",
                                          "q": "f", "timeout_ms": 0},
     "bad_request"),
    ("query timeout_ms 3600000", {"op": "query", "root": R, "q": "a",
                                  "timeout_ms": 3600000}, "ok"),
    ("git limit 1", {"op": "git", "root": G, "limit": 1}, "ok"),
    ("unknown fields are ignored", {"op": "ping", "frob": [1, {}]}, "ok"),
    ("cancel of no such request", {"op": "cancel", "target": 12345}, "ok"),
    ("cancel target null", {"op": "cancel", "target": None}, "ok"),
]

# Every field of every op, by its type; each gets every wrong value of
# its type in WRONG_VALUES: a bad_request (a root of the wrong type too).
# BASE is the valid request the field is put into; a field listed in
# DROP replaces the one named (q_b64 is sent instead of q).
FIELDS = {
    "add": {"root": "str", "wait": "bool", "hidden": "bool",
            "exclude": "str", "timeout_ms": "int"},
    "remove": {"root": "str"},
    "query": {"root": "str", "q": "str", "q_b64": "str", "mode": "str",
              "limit": "int", "positions": "bool", "typos": "int",
              "frecency": "bool", "supersede": "bool", "git": "bool",
              "boost": "str", "min_generation": "int",
              "timeout_ms": "int"},
    "reindex": {"root": "str", "all": "bool", "wait": "bool",
                "timeout_ms": "int"},
    "visit": {"root": "str", "path": "str", "path_b64": "str"},
    "git": {"root": "str", "max_age_ms": "int", "untracked": "str",
            "limit": "int", "timeout_ms": "int"},
    "sync": {"root": "str", "timeout_ms": "int"},
}
BASE = {
    "add": {"op": "add", "root": R},
    "remove": {"op": "remove", "root": R},
    "query": {"op": "query", "root": R, "q": "a"},
    "reindex": {"op": "reindex", "root": R},
    "visit": {"op": "visit", "root": R, "path": "Makefile"},
    "git": {"op": "git", "root": G},
    "sync": {"op": "sync", "root": R},
}
DROP = {("query", "q_b64"): "q", ("visit", "path_b64"): "path",
        ("reindex", "all"): "root"}
WRONG_VALUES = {
    "bool": ["yes", 1, 0, 1.5, [], {}],
    "int": ["1", 1.5, 1e2, True, [], {}],
    "str": [5, 1.5, True, [], {}, ["a"]],
}

# Numbers out of range, negative and huge: (op, field, values).
RANGES = [
    ("query", "limit", [0, -0, -1, 10001, 2 ** 31, 2 ** 63 - 1,
                        -2 ** 63]),
    ("query", "typos", [-1, 3, 2 ** 40]),
    ("query", "timeout_ms", [0, -1, 3600001, 2 ** 62]),
    ("query", "min_generation", [-1, -2 ** 63]),
    ("add", "timeout_ms", [0, -5, 3600001]),
    ("reindex", "timeout_ms", [-1, 2 ** 63 - 1]),
    ("git", "limit", [0, -5, 100000001, 2 ** 63 - 1]),
    ("git", "max_age_ms", [-1, 3600001, -2 ** 63]),
    ("git", "timeout_ms", [0, -1, 3600001]),
    ("sync", "timeout_ms", [0, -1, 3600001]),
]

CLOSES = {"line_too_long"}


class Run:
    """The subject connection (made again when a case closes it), the
    observer, and what every entry checks."""

    def __init__(self, d, subs):
        self.d, self.subs = d, subs
        self.c = Conn(d.sock)
        self.obs = Conn(d.sock)
        self.codes = set()
        self.n = 0

    def fill(self, v):
        if isinstance(v, bytes):
            for k, s in self.subs.items():
                v = v.replace(k.encode(), s.encode())
            return v
        if isinstance(v, str):
            for k, s in self.subs.items():
                v = v.replace(k, s)
            return v
        if isinstance(v, dict):
            return {k: self.fill(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.fill(x) for x in v]
        return v

    def observer_ok(self, name):
        try:
            r = self.obs.req({"op": "ping"}, timeout=10)
        except (Closed, TimeoutError, OSError) as e:
            r = {"exception": str(e)}
        return check("%s: the observer's ping answered, same daemon" % name,
                     r.get("ok") is True and r.get("pid") == self.d.p.pid,
                     short(r))

    def after(self, name, code):
        """The connection closed or usable as documented; the observer
        served."""
        if code in CLOSES:
            how, _ = self.c.wait_closed(10)
            check("%s: connection closed (%s closes)" % (name, code),
                  how in ("eof", "reset"), how)
            self.c.close()
            self.c = Conn(self.d.sock)
        else:
            try:
                r = self.c.req({"op": "ping"})
            except (Closed, TimeoutError, OSError) as e:
                r = {"exception": str(e)}
            check("%s: same connection answers a ping" % name,
                  r.get("ok") is True, short(r))
        self.observer_ok(name)

    def answer(self, name, r, want, id_sent=None, words=""):
        got = "ok" if r.get("ok") is True else err_code(r)
        if got not in (None, "ok"):
            self.codes.add(got)
        ok = check("%s: %s" % (name, want), got == want, short(r))
        if ok and want != "ok":
            m = err_msg(r)
            check("%s: a message in words%s" % (
                name, " (%s)" % words if words else ""),
                isinstance(m, str) and len(m) > 5 and words in m and
                "JSON_" not in m, short(r))
        if id_sent is not None:
            check("%s: id echoed" % name, r.get("id") == id_sent, short(r))
        return got

    def one(self, name, req, want, words=""):
        """One catalog entry."""
        self.n += 1
        req = self.fill(req)
        sent_id = None
        try:
            if isinstance(req, dict):
                Conn.next_id += 1
                sent_id = Conn.next_id
                self.c.send(dict(req, id=sent_id))
            else:
                self.c.send_raw(req + b"\n")
            r = self.c.read(20)
        except (Closed, TimeoutError, OSError) as e:
            r = {"exception": str(e)}
        self.answer(name, r, want, sent_id, words)
        self.after(name, want)


def t_readme_codes(tmp):
    """Every code the daemon can send has a row in the README's table."""
    with open(README, encoding="utf-8") as f:
        readme = f.read()
    part = readme.split("Error codes:", 1)[-1]
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", part, re.M))
    with open(PROTO_C, encoding="utf-8") as f:
        names = set(re.findall(r'\[PROTO_E_\w+\] = "([a-z_]+)"', f.read()))
    check("README: common/proto.c's codes (%d) are all documented" %
          len(names), names and names <= rows, sorted(names - rows))
    check("README: no documented code the daemon cannot send",
          rows <= names, sorted(rows - names))
    check("README: the error table says line_too_long closes",
          re.search(r"^\| `line_too_long` \|[^\n]*closed", part, re.M)
          is not None)
    check("README: usable after an error, but for line_too_long",
          "connection stays usable — except for `line_too_long`" in readme)
    return rows


def t_catalog(run):
    for entry in CATALOG:
        run.one(*entry)


def t_wrong_types(run):
    for op, fields in FIELDS.items():
        for field, kind in fields.items():
            for v in WRONG_VALUES[kind]:
                req = dict(BASE[op])
                drop = DROP.get((op, field))
                if drop:
                    req.pop(drop, None)
                req[field] = v
                run.one("%s %s %s" % (op, field, json.dumps(v)), req,
                        "bad_request")


def t_ranges(run):
    for op, field, values in RANGES:
        for v in values:
            req = dict(BASE[op])
            if op == "query":
                req["q"] = "a"
            req[field] = v
            run.one("%s %s %d" % (op, field, v), req, "bad_request")


def t_truncations(run):
    """Every prefix of a good request, pipelined: each is bad_json, in
    order, and the whole one after them is answered."""
    whole = run.fill(json.dumps({"op": "query", "root": R, "q": "mai",
                                 "id": "whole"}).encode())
    batch = b"".join(whole[:i] + b"\n" for i in range(1, len(whole)))
    run.c.send_raw(batch + whole + b"\n")
    bad = []
    try:
        for i in range(1, len(whole)):
            r = run.c.read(20)
            if err_code(r) != "bad_json":
                bad.append((i, short(r, 150)))
        r = run.c.read(20)
    except (Closed, TimeoutError) as e:
        r = {"exception": str(e)}
    run.codes.add("bad_json")
    check("truncated at each of %d bytes: bad_json each, in order" %
          (len(whole) - 1), not bad, bad[:3])
    check("truncations: the whole request after them answered",
          r.get("id") == "whole" and "src/main.c" in ft.result_paths(r),
          short(r))
    run.after("truncations", "ok")


def t_pipelined(run):
    """Garbage between good requests, in one write: each answered in
    order, the good ones ok."""
    lines = [(b'{"op":"ping","id":"g1"}', "g1", "ok"),
             (b'garbage!!', None, "bad_json"),
             (b'{"op":"ping","id":"g2"}', "g2", "ok"),
             (b'{"op":', None, "bad_json"),
             (b'  ', None, None),		# blank: not answered
             (b'[]', None, "bad_request"),
             (b'{"op":"nope","id":"g3"}', "g3", "unknown_op"),
             (b'\x00\xff\xfe', None, "bad_json"),
             (b'{"op":"query","root":"@R@","q":"dkr","id":"g4"}', "g4",
              "ok"),
             (b'{"op":"query","root":"@R@","q":5,"id":"g5"}', "g5",
              "bad_request"),
             (b'{"op":"ping","id":"g6"}', "g6", "ok")]
    run.c.send_raw(b"".join(run.fill(x[0]) + b"\n" for x in lines))
    got, want = [], []
    try:
        for _, idv, code in lines:
            if code is None:
                continue
            want.append((idv, code))
            r = run.c.read(20)
            got.append((r.get("id"), "ok" if r.get("ok") is True else
                        err_code(r)))
    except (Closed, TimeoutError) as e:
        got.append(("exception", str(e)))
    check("pipelined garbage: each line answered in order, good ones ok",
          got == want, "got %s" % got)
    run.after("pipelined garbage", "ok")


def t_one_byte(run):
    """A request written one byte at a time (a UTF-8 id split inside its
    letters): the observer is served between the bytes; the request is
    answered whole."""
    line = run.fill(json.dumps({"op": "query", "root": R, "q": "mai",
                                "id": "sl\u00f6w \u2603"},
                               ensure_ascii=False).encode()) + b"\n"
    served = 0
    for i in range(len(line)):
        run.c.send_raw(line[i:i + 1])
        try:
            if run.obs.req({"op": "ping"}, timeout=10).get("ok") is True:
                served += 1
        except (Closed, TimeoutError, OSError):
            pass
    check("one byte at a time: the observer answered between all %d "
          "bytes" % len(line), served == len(line), "%d" % served)
    try:
        r = run.c.read(20)
    except (Closed, TimeoutError) as e:
        r = {"exception": str(e)}
    check("one byte at a time: the query is answered, id whole",
          r.get("id") == "sl\u00f6w \u2603" and
          "src/main.c" in ft.result_paths(r), short(r))
    run.after("one byte at a time", "ok")


def t_abandoned(run):
    """Half a request and a close; a query and a close before its
    answer: the daemon runs on."""
    for what, data in (("half a line", b'{"op":"query","root":"'),
                       ("a query never read",
                        run.fill(b'{"op":"query","root":"@R@","q":"a",'
                                 b'"limit":10000}\n'))):
        c = Conn(run.d.sock)
        c.send_raw(data)
        c.close()
        run.observer_ok("closed after %s" % what)


def t_long_lines(run, d):
    """Lines over --max-line-bytes: line_too_long, then closed; the
    request before one is answered first; the limit itself is fine."""
    head = b'{"op":"ping","pad":"'
    cases = [
        ("65537 bytes, no newline", head + b"a" * (LINE_MAX + 1 -
                                                   len(head)), b""),
        ("70000-byte line", head + b"b" * 70000 + b'"}', b"\n"),
        ("100,000 '['", b"[" * 100000, b"\n"),
        ("a 1 MiB line", head + b"c" * (1 << 20) + b'"}', b"\n"),
    ]
    before = ft.stats(run.obs).get("counters", {}).get("lines_too_long", 0)
    for name, body, end in cases:
        c = Conn(d.sock)
        try:
            c.send_raw(body + end)
        except (BrokenPipeError, ConnectionResetError):
            pass	# closed while we wrote: the answer is queued for us
        try:
            r = c.read(10)
        except (Closed, TimeoutError) as e:
            r = {"exception": str(e)}
        run.answer(name, r, "line_too_long")
        how, _ = c.wait_closed(10)
        check("%s: connection closed" % name, how in ("eof", "reset"), how)
        c.close()
        run.observer_ok(name)
    after = ft.stats(run.obs).get("counters", {}).get("lines_too_long", 0)
    check("lines_too_long counted each (%d)" % len(cases),
          after - before == len(cases), "%d -> %d" % (before, after))

    c = Conn(d.sock)
    try:
        c.send_raw(b'{"op":"ping","id":"before"}\n' + head + b"d" * 70000 +
                   b'"}\n')
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        r = c.read(10)
    except (Closed, TimeoutError) as e:
        r = {"exception": str(e)}
    check("the request before a long line is answered first",
          r.get("id") == "before" and r.get("ok") is True, short(r))
    c.close()
    edge = b'{"op":"ping","id":"edge","pad":"'
    exact = edge + b"e" * (LINE_MAX - len(edge) - 2) + b'"}'
    c = Conn(d.sock)
    c.send_raw(exact + b"\n")
    r = c.read(10)
    check("a line of exactly %d bytes is accepted" % LINE_MAX,
          r.get("ok") is True and r.get("id") == "edge", short(r))
    c.close()
    run.observer_ok("long lines")


def t_nothing_changed(run, R_, before):
    """What the rejected requests left: the same projects, no walk."""
    wait_until(lambda: (find_project(run.obs, R_) or {}).get("indexing")
               is False, 10)
    after = run.obs.req({"op": "projects"}).get("projects") or []
    check("rejected requests added no project and removed none",
          sorted(p.get("root") for p in after) ==
          sorted(p.get("root") for p in before), short(after))
    g0 = [p.get("generation") for p in before if p.get("root") == R_]
    g1 = [p.get("generation") for p in after if p.get("root") == R_]
    # The catalog's own "ok" entries walk nothing either.
    check("rejected requests started no walk of the project",
          g0 and g1 == g0, "generation %r -> %r" % (g0, g1))


def t_badinput(tmp):
    rows = t_readme_codes(tmp)
    d, c = ft.start_daemon(tmp, "badinput")
    if d is None:
        return
    root = mkdir_fixture(tmp, "proj", MAIN_FILES)
    ft.add_ready(c, root, "badinput")
    repo = os.path.join(tmp, "repo")
    os.makedirs(repo)
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m",
                                  "x"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t"]
                       + args, cwd=repo, check=True,
                       stdout=subprocess.DEVNULL)
    plain = os.path.join(tmp, "not_a_project")
    os.makedirs(plain)
    fresh = mkdir_fixture(tmp, "fresh", ["f.txt"])
    run = Run(d, {"@R@": root, "@G@": os.path.realpath(repo),
                  "@PLAIN@": plain, "@FRESH@": fresh})
    before = run.obs.req({"op": "projects"}).get("projects") or []
    for title, fn in (("catalog", t_catalog), ("wrong types", t_wrong_types),
                      ("ranges", t_ranges), ("truncations", t_truncations),
                      ("pipelined", t_pipelined), ("one byte", t_one_byte),
                      ("abandoned", t_abandoned)):
        ft.section(title, fn, run)
    t_nothing_changed(run, root, before)
    ft.section("long lines", t_long_lines, run, d)
    check("every code seen (%d) has a README row" % len(run.codes),
          run.codes <= rows, sorted(run.codes - rows))
    check("the catalog ran %d entries" % run.n, run.n > 250, run.n)
    check("the daemon is the one we started, alive at the end",
          ft.pid_alive(d.p.pid) and d.ping() is not None)
    ft.check_ids_echoed()
    run.c.close()
    run.obs.close()
    ft.stop_daemon(d, c, "badinput daemon")


if __name__ == "__main__":
    sys.exit(ft.main("daemon_badinput.py", [("bad input", t_badinput)]))
