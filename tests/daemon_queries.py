#!/usr/bin/env python3
"""tests/daemon_queries.py - queries: modes, positions, limits, typos.

fuzzy, exact and regex on MAIN_FILES, with positions that point at the
query's letters and scores best first; limit and matched; a query that
is not UTF-8 as q_b64; typo matches flagged and not counted; a regex
PCRE2 gives up on counted as regex_errors, and the CLI's exit status for
it. One daemon.

Run by tests/run.sh, or alone:
    FIDX_BUILD=build/asan python3 tests/daemon_queries.py
tests/fidxtest.py has the client, the checks and the rules (no sleep and
hope, a clean stderr, cleanup on every exit).
"""

import base64
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402
from fidxtest import (  # noqa: E402
    FIDX, MAIN_FILES, add_ready, check, check_ids_echoed, daemon_env,
    err_code, err_msg, mkdir_fixture, positions_point_at, result_paths,
    section, short, start_daemon, stop_daemon)


def t_query(d, c, R, gen):
    """The three modes, positions, limits and scores on MAIN_FILES."""
    r = c.req({"op": "query", "root": R, "q": "dkrfl", "positions": True})
    check("query dkrfl: Dockerfile first",
          r.get("ok") is True and result_paths(r)[:1] == ["Dockerfile"],
          short(r))
    check("query dkrfl: positions point at the letters",
          positions_point_at(r, "dkrfl") == "",
          positions_point_at(r, "dkrfl"))
    check("query: generation/state/capped/elapsed_us fields",
          r.get("generation") == gen and r.get("state") == "ready" and
          r.get("capped") is False and isinstance(r.get("elapsed_us"), int),
          short(r))
    check("query without positions has none",
          all("positions" not in x for x in c.req(
              {"op": "query", "root": R, "q": "dkrfl"}).get("results", [1])))

    r = c.req({"op": "query", "root": R, "q": "mai", "positions": True})
    check("query mai finds src/main.c", "src/main.c" in result_paths(r),
          short(r))
    check("query mai: positions point at the letters",
          positions_point_at(r, "mai") == "", positions_point_at(r, "mai"))
    check("query mai: matched == number of results (under the limit)",
          r.get("matched") == len(r.get("results") or []), short(r))
    check("query: scores are integers, best first",
          all(isinstance(x.get("score"), int) for x in r["results"]) and
          [x["score"] for x in r["results"]] ==
          sorted((x["score"] for x in r["results"]), reverse=True), short(r))

    r = c.req({"op": "query", "root": R, "q": "util", "mode": "exact",
               "positions": True})
    check("exact mode: util finds exactly src/util.c and src/util.h",
          sorted(result_paths(r)) == ["src/util.c", "src/util.h"], short(r))
    check("exact mode: positions are the substring",
          positions_point_at(r, "util", exact=True) == "",
          positions_point_at(r, "util", exact=True))
    r = c.req({"op": "query", "root": R, "q": "ukl", "mode": "exact"})
    check("exact mode: a fuzzy-only query finds nothing",
          r.get("ok") is True and r.get("results") == [] and
          r.get("matched") == 0, short(r))

    r = c.req({"op": "query", "root": R, "q": r"\.c$", "mode": "regex"})
    check("regex mode: \\.c$ finds exactly the .c files",
          sorted(result_paths(r)) ==
          ["src/lib/parse.c", "src/main.c", "src/util.c"], short(r))
    check("regex mode: matched == 3", r.get("matched") == 3, short(r))
    r = c.req({"op": "query", "root": R, "q": "a(", "mode": "regex"})
    check("bad regex: bad_query", err_code(r) == "bad_query", short(r))
    check("bad regex: message has the offset", "offset" in err_msg(r),
          short(r))
    r = c.req({"op": "ping"})
    check("bad regex: connection still answers", r.get("ok") is True)
    r = c.req({"op": "query", "root": R, "q": "x", "mode": "glob"})
    check("unknown mode: bad_request", err_code(r) == "bad_request",
          short(r))

    r = c.req({"op": "query", "root": R, "q": ".", "mode": "regex",
               "limit": 2})
    check("limit 2: two results", len(r.get("results") or []) == 2,
          short(r))
    check("limit 2: matched counts all %d" % len(MAIN_FILES),
          r.get("matched") == len(MAIN_FILES), short(r))
    r = c.req({"op": "query", "root": R, "q": ".", "mode": "regex"})
    check("default limit covers all %d files" % len(MAIN_FILES),
          len(r.get("results") or []) == len(MAIN_FILES), short(r))


def t_q_b64(d, c, tmp):
    # A query that is not UTF-8 travels as "q_b64" (exclusive with "q").
    N = mkdir_fixture(tmp, "latin1", ["cafe.txt"])
    raw = b"caf\xe9.txt"
    with open(os.path.join(os.fsencode(N), raw), "wb") as f:
        f.write(b"x")
    r = c.req({"op": "add", "root": N, "wait": True}, timeout=20)
    check("q_b64: add ready", r.get("state") == "ready", short(r))
    q = base64.b64encode(b"caf\xe9").decode()
    r = c.req({"op": "query", "root": N, "q_b64": q, "mode": "exact"})
    res = r.get("results") or [{}]
    dec = base64.b64decode(res[0].get("path_b64", "")) if res[0] else b""
    check("q_b64: the Latin-1 bytes find the Latin-1 name only",
          len(res) == 1 and dec == raw, short(r))
    r = c.req({"op": "query", "root": N, "q_b64": base64.b64encode(
        b"cafe").decode(), "mode": "exact"})
    check("q_b64: a UTF-8 query in base64 works too",
          result_paths(r) == ["cafe.txt"], short(r))
    r = c.req({"op": "query", "root": N, "q": "caf", "q_b64": q})
    check("q_b64: with q is a bad_request",
          err_code(r) == "bad_request" and "not both" in err_msg(r),
          short(r))
    r = c.req({"op": "query", "root": N, "q_b64": "Y2Fm6Q"})
    check("q_b64: unpadded is a bad_request", err_code(r) == "bad_request",
          short(r))
    r = c.req({"op": "query", "root": N, "q_b64": 5})
    check("q_b64: not a string is a bad_request",
          err_code(r) == "bad_request", short(r))
    r = c.req({"op": "query", "root": N,
               "q_b64": base64.b64encode(b"a\0b").decode()})
    check("q_b64: a NUL byte is a bad_request",
          err_code(r) == "bad_request", short(r))
    for n, code in ((1024, None), (1025, "query_too_long"),
                    (5000, "query_too_long")):
        r = c.req({"op": "query", "root": N, "q_b64": base64.b64encode(
            b"\xe9" * n).decode(), "mode": "exact"})
        check("q_b64: %d bytes decoded: %s" % (n, code or "answered"),
              (err_code(r) == code) if code else r.get("ok") is True,
              short(r))


def t_typos(d, c, tmp):
    """Typo matching over the socket: found, flagged, uncounted, off."""
    R = mkdir_fixture(tmp, "typo-tree", ["LICENSE", "Dockerfile",
                                         "src/config.h", "src/conf.h"])
    r = c.req({"op": "add", "root": R, "wait": True})
    check("typos: add", r.get("ok") is True and r.get("files") == 4,
          short(r))
    r = c.req({"op": "query", "root": R, "q": "licnese", "positions": True})
    res = r.get("results", [])
    check("typos: licnese finds LICENSE, flagged as a typo",
          res and res[0].get("path") == "LICENSE" and
          res[0].get("typo") is True, short(r))
    check("typos: typo matches are not counted as matched",
          r.get("matched") == 0, short(r))
    # The word it was meant to be is lit whole: LICENSE's 7 bytes.
    check("typos: positions point into LICENSE",
          res and all(0 <= p < 7 for p in res[0].get("positions", [99])) and
          len(res[0].get("positions", [])) == 7, short(res))
    r = c.req({"op": "query", "root": R, "q": "conifg.h"})
    check("typos: one edit (config.h) above two (conf.h)",
          result_paths(r)[:2] == ["src/config.h", "src/conf.h"], short(r))
    r = c.req({"op": "query", "root": R, "q": "licnese", "typos": 0})
    check("typos: \"typos\":0 turns them off",
          r.get("ok") is True and r.get("results") == [], short(r))
    r = c.req({"op": "query", "root": R, "q": "licnese", "typos": 3})
    check("typos: typos out of range is bad_request",
          err_code(r) == "bad_request", short(r))
    r = c.req({"op": "query", "root": R, "q": "Dockerfile"})
    res = r.get("results", [])
    check("typos: a clean match carries no typo flag",
          res and res[0].get("path") == "Dockerfile" and
          "typo" not in res[0] and r.get("matched") == 1, short(r))
    c.req({"op": "remove", "root": R})


def t_regex_errors(d, c, tmp):
    """A path PCRE2 gives up on (match limit) is counted, not a silent
    miss: "regex_errors" in the answer, and the CLI's exit status 2."""
    hard = "a" * 30 + "!"
    R = mkdir_fixture(tmp, "regex-err-tree", [hard, "b!", "plain.txt"])
    r = c.req({"op": "add", "root": R, "wait": True})
    check("regex errors: add", r.get("ok") is True and r.get("files") == 3,
          short(r))
    q = "^(a|a)*b|!"
    r = c.req({"op": "query", "root": R, "q": q, "mode": "regex"})
    check("regex errors: the decidable path still matches",
          result_paths(r) == ["b!"] and r.get("matched") == 1, short(r))
    check("regex errors: the undecidable one is counted",
          r.get("regex_errors") == 1, short(r))
    r = c.req({"op": "query", "root": R, "q": r"\.txt$", "mode": "regex"})
    check("regex errors: 0 for a pattern that decides every path",
          r.get("regex_errors") == 0 and r.get("matched") == 1, short(r))
    r = c.req({"op": "query", "root": R, "q": "plain"})
    check("regex errors: 0 in fuzzy mode", r.get("regex_errors") == 0,
          short(r))
    # The CLI: a warning, and 2 (not 1, "no match") when nothing matched.
    only = mkdir_fixture(tmp, "regex-err-only", [hard])
    r = c.req({"op": "add", "root": only, "wait": True})
    p = subprocess.run([FIDX, "--socket", d.sock, "--root", only,
                        "--mode", "regex", q], capture_output=True,
                       timeout=60, env=daemon_env())
    check("regex errors: fidx exits 2 when every path was undecided",
          p.returncode == 2, "exit %d, stderr %r" % (p.returncode,
                                                     p.stderr[:300]))
    check("regex errors: fidx says so on stderr",
          b"could not be decided on 1 file" in p.stderr, p.stderr[:300])
    p = subprocess.run([FIDX, "--socket", d.sock, "--root", R,
                        "--mode", "regex", q], capture_output=True,
                       timeout=60, env=daemon_env())
    check("regex errors: fidx exits 0 when something matched, and warns",
          p.returncode == 0 and b"b!" in p.stdout and
          b"could not be decided" in p.stderr,
          "exit %d, %r %r" % (p.returncode, p.stdout, p.stderr[:300]))
    c.req({"op": "remove", "root": R})
    c.req({"op": "remove", "root": only})


def t_queries(tmp):
    d, c = start_daemon(tmp, "queries")
    if d is None:
        return
    R = mkdir_fixture(tmp, "proj", MAIN_FILES)
    gen = add_ready(c, R, "queries").get("generation")
    section("query", t_query, d, c, R, gen)
    section("q_b64", t_q_b64, d, c, tmp)
    section("typos", t_typos, d, c, tmp)
    section("regex errors", t_regex_errors, d, c, tmp)
    check_ids_echoed()
    stop_daemon(d, c, "queries daemon")


if __name__ == "__main__":
    sys.exit(ft.main("daemon_queries.py", [("queries", t_queries)]))
