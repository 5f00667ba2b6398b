#!/usr/bin/env python3
"""tests/daemon_bounds.py - every bound, hit and reported.

A client that never reads is dropped at --max-output-bytes while a reader
is served; --max-files, --max-projects and --max-clients refuse with
capped and count it; a parked request hears shutting_down on SIGTERM;
--max-index-bytes keeps the live index when a rebuild is cut, and names
the flag; a repository owned by another user is reported. One daemon
per bound.

Run by tests/run.sh, or alone:
    FIDX_BUILD=build/asan python3 tests/daemon_bounds.py
tests/fidxtest.py has the client, the checks and the rules (no sleep and
hope, a clean stderr, cleanup on every exit).
"""

import json
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402
from fidxtest import (  # noqa: E402
    Closed, Conn, Daemon, check, check_clean_stderr, err_code, find_project,
    mkdir_fixture, mkfiles, result_paths, section, short, skip, stats,
    threads_stopped, wait_until)


def t_slow_reader(tmp):
    d = Daemon(tmp, "slow", ["--max-output-bytes", "65536"])
    if not check("slow-reader daemon: answers a ping", d.wait_ready()):
        print(d.stderr())
        return d
    B = os.path.join(tmp, "big")
    tail = "_with_a_rather_long_file_name_for_output_volume_abcdefghijklm.txt"
    rels = ["dir_%02d/subdirectory_%02d/file_%04d%s" % (i // 100, i // 100,
                                                         i, tail)
            for i in range(3000)]
    mkfiles(B, rels)
    B = os.path.realpath(B)
    c = Conn(d.sock)
    r = c.req({"op": "add", "root": B, "wait": True}, timeout=30)
    check("big tree: 3000 files", r.get("files") == 3000, short(r))

    r = c.req({"op": "query", "root": B, "q": "file", "limit": 10000,
               "positions": True})
    check("response over --max-output-bytes: too_large error",
          err_code(r) == "too_large", short(r))
    check("too_large: connection still answers",
          c.req({"op": "ping"}).get("ok") is True)

    # The flood unit is a query whose answer is large but fits the cap:
    # with limit 10000 every answer would be a ~200-byte too_large error,
    # and filling the socket and the queue would take thousands of full
    # searches. Halve the limit until the answer fits.
    q = {"op": "query", "root": B, "q": "file", "positions": True}
    limit = 400
    while limit > 10:
        q["limit"] = limit
        c.send(q)
        line = c.recv_line()
        if json.loads(line).get("ok") is True:
            break
        limit //= 2
    check("a %d-result answer fits the cap (%d bytes)" % (limit, len(line)),
          json.loads(line).get("ok") is True and len(line) > 8000,
          short(line.decode("utf-8", "replace")))

    n = Conn(d.sock)
    check("non-reader: connected", n.req({"op": "ping"}).get("ok") is True)
    n.s.setblocking(False)
    one = json.dumps(q).encode() + b"\n"
    flood_sent = 0
    slow = []
    latencies = []
    dropped = False
    queued_seen = 0
    deadline = time.monotonic() + 30
    # One more unread answer per turn, so the reader is timed while the
    # non-reader's queue grows, and at least 30 turns in all.
    while time.monotonic() < deadline and (not dropped or
                                           len(latencies) < 30):
        if not dropped:
            try:
                n.s.send(one)
                flood_sent += 1
            except OSError:
                pass
        t0 = time.monotonic()
        try:
            r = c.req({"op": "query", "root": B, "q": "f0123",
                       "limit": 20, "positions": True})
        except (Closed, TimeoutError) as e:
            r = {"exception": str(e)}
        dt = time.monotonic() - t0
        latencies.append(dt)
        if r.get("ok") is not True or \
                not any("0123" in x for x in result_paths(r)):
            slow.append((round(dt, 3), short(r, 150)))
        s = stats(c)
        if not dropped:
            queued_seen = max(queued_seen, s.get("usage", {}).get(
                "output_bytes_max_client", 0))
        if s.get("counters", {}).get("clients_dropped", 0) >= 1:
            dropped = True
    print("# flood: %d unread queries sent" % flood_sent)
    # Each request is bounded by Conn's own timeout: an answer at all
    # means the non-reader held nobody up. Latency is printed, not judged.
    print("# reader during the flood: %d queries, slowest %.3fs" %
          (len(latencies), max(latencies or [0])))
    check("reader during the flood: every answer arrives and is right "
          "(%d queries)" % len(latencies), not slow and latencies, slow[:3])
    check("non-reader: its queued output shows in stats before the drop "
          "(max %d bytes)" % queued_seen, 0 < queued_seen <= 65536)
    check("non-reader: counters.clients_dropped >= 1", dropped,
          short(stats(c).get("counters", {})))
    n.s.setblocking(True)
    how, lines = n.wait_closed(15)
    check("non-reader: the daemon closed its socket (%d answers were "
          "queued for it)" % len(lines), how in ("eof", "reset"), how)
    n.close()
    ok_after = wait_until(
        lambda: stats(c).get("usage", {}).get("clients") == 1, 5)
    check("non-reader: gone from usage.clients", ok_after,
          short(stats(c).get("usage", {})))
    check("reader still served after the drop",
          c.req({"op": "query", "root": B, "q": "f0042"}).get("ok") is True)
    r = c.req({"op": "shutdown"})
    check("slow-reader daemon: shutdown answered", r.get("ok") is True,
          short(r))
    rc = d.wait_exit(20)
    check("slow-reader daemon exits 0 after shutdown", rc == 0,
          "exit %r" % rc)
    c.close()
    check_clean_stderr(d, "slow-reader daemon")
    return d


def t_caps(tmp):
    d = Daemon(tmp, "caps", ["--max-files", "10", "--max-projects", "2",
                             "--max-clients", "3"])
    if not check("caps daemon: answers a ping", d.wait_ready()):
        print(d.stderr())
        return d
    c = Conn(d.sock)
    # The ready-check's connection may not be reaped yet.
    check("caps: only our connection is counted", wait_until(
        lambda: stats(c).get("usage", {}).get("clients") == 1, 5))
    C = mkdir_fixture(tmp, "hundred", ["f%03d.txt" % i for i in range(100)])
    r = c.req({"op": "add", "root": C, "wait": True}, timeout=20)
    check("--max-files 10: add wait state capped", r.get("state") ==
          "capped", short(r))
    check("--max-files 10: files == 10", r.get("files") == 10, short(r))
    r = c.req({"op": "query", "root": C, "q": "txt"})
    check("--max-files 10: query says capped true",
          r.get("ok") is True and r.get("capped") is True and
          r.get("state") == "capped" and len(r.get("results", [])) == 10,
          short(r))
    p = find_project(c, C) or {}
    check("--max-files 10: projects capped with a message",
          p.get("capped") is True and p.get("state") == "capped" and
          p.get("message"), short(p))
    section("cap messages", t_cap_messages, c, C)

    S = mkdir_fixture(tmp, "second", ["s.txt"])
    T = mkdir_fixture(tmp, "third", ["t.txt"])
    r = c.req({"op": "add", "root": S, "wait": True}, timeout=20)
    check("--max-projects 2: second add ok", r.get("ok") is True and
          r.get("state") == "ready", short(r))
    r = c.req({"op": "add", "root": T})
    check("--max-projects 2: third add refused with capped",
          err_code(r) == "capped", short(r))
    r = c.req({"op": "query", "root": T, "q": "t"})
    check("--max-projects 2: query auto-add refused with capped",
          err_code(r) == "capped", short(r))
    s = stats(c)
    check("--max-projects 2: counters.projects_refused >= 1",
          s.get("counters", {}).get("projects_refused", 0) >= 1, short(s))

    c2, c3 = Conn(d.sock), Conn(d.sock)
    check("--max-clients 3: second and third clients served",
          c2.req({"op": "ping"}).get("ok") is True and
          c3.req({"op": "ping"}).get("ok") is True)
    c4 = Conn(d.sock)
    try:
        r = c4.read(10)
    except (Closed, TimeoutError) as e:
        r = {"exception": str(e)}
    check("--max-clients 3: 4th connection gets an error line, capped",
          err_code(r) == "capped", short(r))
    how, _ = c4.wait_closed(10)
    check("--max-clients 3: 4th connection closed", how == "eof", how)
    c4.close()
    s = stats(c)
    check("--max-clients 3: counters.clients_refused >= 1",
          s.get("counters", {}).get("clients_refused", 0) >= 1, short(s))
    c3.close()

    def fifth():
        try:
            c5 = Conn(d.sock)
            try:
                return c5.req({"op": "ping"}, timeout=3).get("ok") is True
            finally:
                c5.close()
        except (Closed, TimeoutError, OSError, ValueError):
            return False
    check("--max-clients 3: a slot frees when a client leaves",
          wait_until(fifth, 5, 0.05))

    # A request parked on a walk, then SIGTERM: it hears shutting_down.
    # The daemon is stopped (every thread, so no walk ends) while both
    # arrive, so it parks the request and sees the signal in one turn,
    # before any walk can end.
    d.p.send_signal(signal.SIGSTOP)
    check("SIGSTOP: every thread of the daemon stopped",
          wait_until(lambda: threads_stopped(d.p.pid), 5))
    c2.send({"op": "reindex", "root": S, "wait": True, "id": "parked",
             "timeout_ms": 60000})
    d.p.send_signal(signal.SIGTERM)
    d.p.send_signal(signal.SIGCONT)
    try:
        r = c2.read(10)
    except (Closed, TimeoutError) as e:
        r = {"exception": str(e)}
    check("SIGTERM: the parked request hears shutting_down",
          err_code(r) == "shutting_down" and r.get("id") == "parked",
          short(r))
    rc = d.wait_exit(20)
    check("caps daemon exits 0 after SIGTERM", rc == 0, "exit %r" % rc)
    c.close()
    c2.close()
    check_clean_stderr(d, "caps daemon (SIGTERM)")
    return d


def t_cap_messages(c, C):
    """The files cap: the message names --max-files alone."""
    r = c.req({"op": "reindex", "root": C, "wait": True}, timeout=20)
    check("files cap: reindex answer says capped, cap files",
          r.get("capped") is True and r.get("cap") == "files" and
          r.get("state") == "capped", short(r))
    m = r.get("message", "")
    check("files cap: the message names --max-files and not "
          "--max-index-bytes", "--max-files" in m and
          "--max-index-bytes" not in m, m)


def t_byte_cap(tmp):
    """--max-index-bytes: a rebuild cut only because the live index is
    counted keeps the live one (issue 10, item 1), and a repository owned
    by another user is reported (item 12)."""
    home = os.path.join(tmp, "bytecap-home")
    os.makedirs(home)
    saved = os.environ.get("HOME")
    os.environ["HOME"] = home	# no one's safe.directory applies
    try:
        d = Daemon(tmp, "bytecap", ["--max-index-bytes", "64K"])
    finally:
        if saved is None:
            del os.environ["HOME"]
        else:
            os.environ["HOME"] = saved
    if not check("bytecap daemon: answers a ping", d.wait_ready()):
        print(d.stderr())
        return
    c = Conn(d.sock)
    B = mkdir_fixture(tmp, "bytes800", ["some_fairly_long_file_name_%d.txt" %
                                        i for i in range(800)])
    r = c.req({"op": "add", "root": B, "wait": True}, timeout=30)
    check("byte cap: 800 files fit once: add gives 800, ready",
          r.get("files") == 800 and r.get("state") == "ready" and
          r.get("capped") is False, short(r))
    gen = r.get("generation")
    got = []
    for _ in range(4):
        r = c.req({"op": "reindex", "root": B, "wait": True}, timeout=30)
        got.append(r)
    check("byte cap: four reindexes keep all 800 files, ready",
          [g.get("files") for g in got] == [800] * 4 and
          all(g.get("state") == "ready" for g in got), short(got))
    check("byte cap: each says the old index was kept and names "
          "--max-index-bytes alone",
          all(g.get("kept_old") is True and
              "--max-index-bytes" in g.get("message", "") and
              "--max-files" not in g.get("message", "") for g in got),
          short(got))
    check("byte cap: the kept index is the first one",
          all(g.get("generation") == gen for g in got), short(got))
    r = c.req({"op": "query", "root": B, "q": "txt", "limit": 1})
    check("byte cap: a query matches all 800 and carries the message",
          r.get("matched") == 800 and r.get("kept_old") is True and
          "--max-index-bytes" in r.get("message", ""), short(r))
    s = stats(c).get("counters", {})
    check("byte cap: stats counts rebuilds_kept_old",
          s.get("rebuilds_kept_old") == 4, short(s))
    # A first index cut by the byte cap: a rebuild never swaps in fewer.
    P = mkdir_fixture(tmp, "bytes1500", ["another_fairly_long_name_%d.txt" %
                                         i for i in range(1500)])
    c.req({"op": "remove", "root": B})
    r = c.req({"op": "add", "root": P, "wait": True}, timeout=30)
    n0 = r.get("files", 0)
    check("byte cap: 1500 files do not fit: capped, cap bytes",
          r.get("state") == "capped" and r.get("cap") == "bytes" and
          0 < n0 < 1500 and "--max-index-bytes" in r.get("message", "") and
          "--max-files" not in r.get("message", ""), short(r))
    r = c.req({"op": "reindex", "root": P, "wait": True}, timeout=30)
    check("byte cap: a partial index is not replaced by a smaller one",
          r.get("files") == n0 and r.get("kept_old") is True and
          r.get("state") == "capped", short(r))
    c.req({"op": "remove", "root": P})
    t_git_not_owned(d, c, tmp)
    r = c.req({"op": "shutdown"})
    check("bytecap daemon: shutdown", r.get("ok") is True, short(r))
    check("bytecap daemon exits 0", d.wait_exit(20) == 0)
    c.close()
    check_clean_stderr(d, "bytecap daemon")


def t_git_not_owned(d, c, tmp):
    name = "git repository owned by another user is reported"
    if os.getuid() != 0:
        skip(name, "making a repository owned by another user needs root")
        return
    G = mkdir_fixture(tmp, "notmine", ["kept.txt", "ignored.txt"])
    with open(os.path.join(G, ".gitignore"), "w") as f:
        f.write("ignored.txt\n")
    subprocess.run(["git", "init", "-q", G], check=True,
                   stdout=subprocess.DEVNULL)
    for dirpath, dirnames, filenames in os.walk(G):
        for n in dirnames + filenames + ["."]:
            os.lchown(os.path.join(dirpath, n), 65534, 65534)
    r = c.req({"op": "add", "root": G, "wait": True}, timeout=20)
    m = r.get("message", "")
    check("%s: in the add answer, naming safe.directory" % name,
          r.get("ok") is True and "safe.directory" in m and
          "owned by another user" in m, short(r))
    check("%s: its ignore rules are not applied, as git refuses it" % name,
          r.get("files") == 2, short(r))
    s = stats(c).get("counters", {})
    check("%s: stats counts walk_git_refused" % name,
          s.get("walk_git_refused", 0) >= 1, short(s))
    check("%s: in the log" % name, wait_until(
        lambda: "safe.directory" in d.stderr(), 5))
    os.chown(G, 0, 0)
    for dirpath, dirnames, filenames in os.walk(G):
        for n in dirnames + filenames:
            os.lchown(os.path.join(dirpath, n), 0, 0)
    r = c.req({"op": "reindex", "root": G, "wait": True}, timeout=20)
    check("%s: once it is ours the rules apply and the message goes" % name,
          r.get("files") == 1 and "message" not in r, short(r))


def t_trim(tmp):
    """malloc's free pages go back after work, on the trim worker: a
    rebuild is followed by a trim, counted with its time."""
    R = ft.mkdir_fixture(tmp, "trim-tree",
                         ["d%02d/f%04d.txt" % (i % 20, i) for i in range(2000)])
    d, c = ft.start_daemon(tmp, "trim")
    if d is None:
        return
    before = ft.stats(c)["memory"]["malloc_trims"]
    ft.add_ready(c, R, "trim")
    r = c.req({"op": "reindex", "root": R, "wait": True}, timeout=30)
    check("trim: reindexed", r.get("ok") is True, short(r))
    m = ft.wait_until(lambda: (lambda s: s if s["malloc_trims"] > before
                                         else None)(ft.stats(c)["memory"]),
                      10)
    check("trim: a rebuild is followed by a trim, timed",
          m is not None and m["malloc_trims"] > before and
          m["malloc_trim_us"] >= 0, short(m))
    # Snapshots are replaced, never piled up: one alive per project
    # after every rebuild, none old once nobody reads them.
    S = ft.mkdir_fixture(tmp, "trim-small", ["a.txt", "b/c.txt"])
    ft.add_ready(c, S, "trim small")
    for _ in range(5):
        c.req({"op": "reindex", "root": R, "wait": True}, timeout=30)
        c.req({"op": "query", "root": R, "q": "f01"})
    m = ft.stats(c)["memory"]
    check("memory: two projects after five rebuilds: two snapshots alive, "
          "none old", m["snapshots"] == 2 and m["snapshots_old"] == 0 and
          m["segments"] >= 2, short(m))
    c.req({"op": "remove", "root": S})
    m = ft.stats(c)["memory"]
    check("memory: a project removed takes its snapshot and segments",
          m["snapshots"] == 1 and m["snapshots_old"] == 0, short(m))
    ft.stop_daemon(d, c, "trim daemon")


if __name__ == "__main__":
    sys.exit(ft.main("daemon_bounds.py", (
        ("slow reader", t_slow_reader),
        ("caps", t_caps),
        ("byte cap", t_byte_cap),
        ("trim", t_trim))))
