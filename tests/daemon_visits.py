#!/usr/bin/env python3
"""tests/daemon_visits.py - the visit store: ranking, paths, persistence.

visit ranks a file higher at equal quality, a restart keeps it, a corrupt
store is reported and ignored, or kept aside with its good lines loaded;
visit paths are cleaned lexically and never leave the root.

Run by tests/run.sh, or alone:
    FIDX_BUILD=build/asan python3 tests/daemon_visits.py
tests/fidxtest.py has the client, the checks and the rules (no sleep and
hope, a clean stderr, cleanup on every exit).
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402
from fidxtest import (  # noqa: E402
    Conn, Daemon, check, check_clean_stderr, err_code, err_msg, mkdir_fixture,
    result_paths, short, stats)


def t_visits(tmp):
    """visit ranks a file higher at equal quality; a restart keeps it; a
    corrupt store is reported and ignored."""
    R = mkdir_fixture(tmp, "visits-tree", ["lib/main.c", "src/main.c",
                                           "docs/readme.txt"])
    store = os.path.join(os.environ["XDG_STATE_HOME"], "fidx",
                         "visits.json")
    d = Daemon(tmp, "visits")
    check("visits: daemon up", d.wait_ready())
    c = Conn(d.sock)
    r = c.req({"op": "add", "root": R, "wait": True})
    check("visits: add", r.get("ok") is True and r.get("files") == 3,
          short(r))
    before = result_paths(c.req({"op": "query", "root": R, "q": "main.c"}))
    check("visits: equal matches tie-break by bytes first",
          before == ["lib/main.c", "src/main.c"], before)
    r = c.req({"op": "visit", "root": R, "path": "src/main.c"})
    check("visits: visit ok with its frecency",
          r.get("ok") is True and abs(r.get("frecency", 0) - 1.0) < 1e-6,
          short(r))
    q = c.req({"op": "query", "root": R, "q": "main.c"})
    after = result_paths(q)
    check("visits: the visited file now ranks first",
          after == ["src/main.c", "lib/main.c"], after)
    sc = [x["score"] for x in q.get("results", [])]
    check("visits: the bonus is small (at most 16)",
          len(sc) == 2 and 0 < sc[0] - sc[1] <= 16, sc)
    off = result_paths(c.req({"op": "query", "root": R, "q": "main.c",
                              "frecency": False}))
    check("visits: frecency:false keeps the plain order", off == before, off)
    r = c.req({"op": "visit", "root": R,
               "path": os.path.join(R, "lib/main.c")})
    check("visits: an absolute path under the root is accepted",
          r.get("ok") is True and r.get("path") == "lib/main.c", short(r))
    for req, code in (({"op": "visit", "root": R}, "bad_request"),
                      ({"op": "visit", "root": R, "path": "/etc/passwd"},
                       "bad_request"),
                      ({"op": "visit", "root": R, "path": 5}, "bad_request"),
                      ({"op": "visit", "root": "rel", "path": "x"},
                       "bad_root"),
                      ({"op": "query", "root": R, "q": "x", "frecency": 1},
                       "bad_request")):
        r = c.req(req)
        check("visits: %s -> %s" % (short(req, 60), code),
              err_code(r) == code, short(r))
    s = stats(c)
    v = s.get("visits", {})
    check("visits: stats has the store's use and limits",
          v.get("usage", {}).get("entries") == 2 and
          v.get("limits", {}).get("total") == 20000 and
          v.get("file") == store, short(v))
    r = c.req({"op": "shutdown"})
    check("visits: shutdown", r.get("ok") is True, short(r))
    check("visits: daemon exits 0", d.wait_exit() == 0)
    check("visits: the store was saved", os.path.isfile(store))
    check_clean_stderr(d, "visits daemon")
    c.close()

    # A restart loads it: the last visit (lib/main.c) leads now.
    d = Daemon(tmp, "visits2")
    check("visits: restarted", d.wait_ready())
    c = Conn(d.sock)
    again = result_paths(c.req({"op": "query", "root": R, "q": "main.c"}))
    check("visits: the order survives a restart",
          again == ["lib/main.c", "src/main.c"], again)
    c.req({"op": "shutdown"})
    d.wait_exit()
    check_clean_stderr(d, "visits2 daemon")
    c.close()

    # A corrupt store: reported, ignored, never a crash.
    with open(store, "wb") as f:
        f.write(b'{"fidx_visits":1}\n{"root": 5}\nnot json\n')
    d = Daemon(tmp, "visits3")
    check("visits: starts over a corrupt store", d.wait_ready())
    c = Conn(d.sock)
    s = stats(c)
    check("visits: the corrupt store is counted as a load error",
          s.get("visits", {}).get("counters", {}).get("load_errors") == 1 and
          s.get("visits", {}).get("usage", {}).get("entries") == 0,
          short(s.get("visits")))
    plain = result_paths(c.req({"op": "query", "root": R, "q": "main.c"}))
    check("visits: with the store ignored, the plain order",
          plain == before, plain)
    c.req({"op": "shutdown"})
    d.wait_exit()
    check("visits: the corrupt store is named on stderr",
          "visits.json" in d.stderr(), d.stderr()[-500:])
    check_clean_stderr(d, "visits3 daemon")
    c.close()


def t_visit_paths(tmp):
    """visit cleans "." "//" ".." lexically and refuses any path that
    leaves the root, however it is spelled; the store never holds one."""
    R = mkdir_fixture(tmp, "vpaths-tree", ["src/main.c", "lib/util.c"])
    state = os.path.join(tmp, "vpaths-state")
    d = Daemon(tmp, "vpaths", state=state)
    if not check("visit paths: daemon up", d.wait_ready()):
        return
    c = Conn(d.sock)
    outside = ["../../etc/passwd", "..", "../vpaths-tree/src/main.c",
               "src/../../x", "src/../..", "/etc/passwd",
               R + "/../etc/passwd", R + "/src/../../x",
               R + "x/main.c", "", ".", "src/..", R, R + "/"]
    for path in outside:
        r = c.req({"op": "visit", "root": R, "path": path})
        check("visit paths: %r refused as bad_request" % path,
              err_code(r) == "bad_request" and "root" in err_msg(r),
              short(r))
    for path, want in (("src/main.c", "src/main.c"),
                       ("./src//main.c", "src/main.c"),
                       ("lib/../src/./main.c", "src/main.c"),
                       ("src/main.c/", "src/main.c"),
                       (R + "/lib/../lib//util.c", "lib/util.c"),
                       (R + "//src/x/../main.c", "src/main.c")):
        r = c.req({"op": "visit", "root": R, "path": path})
        check("visit paths: %r is recorded as %r" % (path, want),
              r.get("ok") is True and r.get("path") == want, short(r))
    s = stats(c).get("visits", {})
    check("visit paths: one entry per file, none outside",
          s.get("usage", {}).get("entries") == 2, short(s))
    q = c.req({"op": "query", "root": R, "q": "main"})
    check("visit paths: the spellings added up to one file's visits",
          r.get("frecency", 0) > 4.9 and
          result_paths(q)[:1] == ["src/main.c"], short(r))
    c.req({"op": "shutdown"})
    check("visit paths: daemon exits 0", d.wait_exit() == 0)
    c.close()
    with open(os.path.join(state, "fidx", "visits.json"), "rb") as f:
        text = f.read().decode("utf-8", "replace")
    check("visit paths: the saved store holds no '..' and no '//'",
          "\"path\":\"src/main.c\"" in text and ".." not in text and
          "//" not in text.replace("\\/", "/"), text[-600:])
    check_clean_stderr(d, "visit paths daemon")


def t_visits_corrupt_kept(tmp):
    """A store with one bad line keeps its good entries, and the damaged
    file is kept aside, byte for byte, before the next save replaces it;
    stats and the log say so."""
    R = mkdir_fixture(tmp, "vkept-tree", ["src/main.c", "lib/main.c"])
    state = os.path.join(tmp, "vkept-state")
    os.makedirs(os.path.join(state, "fidx"))
    store = os.path.join(state, "fidx", "visits.json")
    good = json.dumps({"root": R, "path": "src/main.c", "w": 3.0,
                       "t": int(time.time()), "seen": int(time.time())})
    text = ('{"fidx_visits":1}\n' + good + '\nGARBAGE\n').encode()
    with open(store, "wb") as f:
        f.write(text)
    d = Daemon(tmp, "vkept", state=state)
    if not check("visits kept: daemon up", d.wait_ready()):
        return
    c = Conn(d.sock)
    v = stats(c).get("visits", {})
    load = v.get("load", {})
    aside = load.get("moved_aside_to") or ""
    check("visits kept: stats: 1 loaded, 1 bad entry, to be moved aside",
          load.get("loaded") == 1 and load.get("bad_entries") == 1 and
          load.get("moved_aside") is False and
          aside.startswith(store + ".corrupt-") and
          v.get("usage", {}).get("entries") == 1 and
          v.get("counters", {}).get("load_errors") == 1, short(v))
    r = c.req({"op": "visit", "root": R, "path": "lib/main.c"})
    check("visits kept: visit ok", r.get("ok") is True, short(r))
    c.req({"op": "shutdown"})
    check("visits kept: daemon exits 0", d.wait_exit() == 0)
    c.close()
    with open(store, "rb") as f:
        now = f.read().decode()
    check("visits kept: the saved store has the old entry and the new",
          '"path":"src/main.c"' in now and '"path":"lib/main.c"' in now and
          "GARBAGE" not in now, now)
    try:
        with open(aside, "rb") as f:
            kept = f.read()
    except OSError as e:
        kept = str(e).encode()
    check("visits kept: the damaged file is kept aside, byte for byte",
          kept == text, kept[:300])
    err = d.stderr()
    check("visits kept: the log names the line, the count and the copy",
          "line 3" in err and "1 bad line skipped" in err and
          os.path.basename(aside) in err, err[-800:])
    check_clean_stderr(d, "visits kept daemon")

    # Restarted over the clean file: nothing skipped, nothing to move.
    d = Daemon(tmp, "vkept2", state=state)
    if not check("visits kept: restarted", d.wait_ready()):
        return
    c = Conn(d.sock)
    v = stats(c).get("visits", {})
    check("visits kept: after a clean load, stats shows no damage",
          v.get("load") == {"loaded": 2, "bad_entries": 0,
                            "moved_aside_to": None, "moved_aside": False},
          short(v))
    c.req({"op": "shutdown"})
    d.wait_exit()
    c.close()
    check("visits kept: one copy, not one per save",
          len([n for n in os.listdir(os.path.dirname(store))
               if ".corrupt-" in n]) == 1, os.listdir(os.path.dirname(store)))
    check_clean_stderr(d, "visits kept daemon 2")


if __name__ == "__main__":
    sys.exit(ft.main("daemon_visits.py", (
        ("visits", t_visits),
        ("visit paths", t_visit_paths),
        ("visits kept", t_visits_corrupt_kept))))
