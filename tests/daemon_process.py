#!/usr/bin/env python3
"""tests/daemon_process.py - fidxd as a process: socket, start, log.

A stale socket left by a killed daemon is taken over, a live one is not
(exit 2, "already running"); without --foreground the first process
exits 0 once the socket accepts; a detached daemon logs to its state
directory and moves the log aside at --max-log-bytes.

Run by tests/run.sh, or alone:
    FIDX_BUILD=build/asan python3 tests/daemon_process.py
tests/fidxtest.py has the client, the checks and the rules (no sleep and
hope, a clean stderr, cleanup on every exit).
"""

import os
import signal
import stat
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402
from fidxtest import (  # noqa: E402
    FIDXD, SANITIZER_MARKS, Closed, Conn, Daemon, background_pids, check,
    check_clean_stderr, daemon_env, mkdir_fixture, pid_alive, short, stats,
    wait_until)


def t_stale_socket(tmp):
    sock = os.path.join(tmp, "stale.sock")
    d1 = Daemon(tmp, "stale1", sock=sock)
    if not check("stale: first daemon answers", d1.wait_ready()):
        print(d1.stderr())
        return
    d1.p.send_signal(signal.SIGKILL)
    rc = d1.wait_exit(10)
    check("stale: first daemon killed by SIGKILL", rc == -signal.SIGKILL,
          "exit %r" % rc)
    check("stale: its socket file is left behind",
          os.path.exists(sock) and stat.S_ISSOCK(os.lstat(sock).st_mode))
    d2 = Daemon(tmp, "stale2", sock=sock)
    ok = d2.wait_ready()
    check("stale: a new daemon starts on the same socket and answers", ok,
          d2.stderr()[-2000:])
    if not ok:
        return
    rc = None
    try:
        p3 = subprocess.run([FIDXD, "--foreground", "--socket", sock],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=daemon_env(), timeout=15)
        rc, err = p3.returncode, p3.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        err = "did not exit within 15s"
    check("stale: a second daemon exits with status 2", rc == 2,
          "exit %r; %s" % (rc, err[-500:]))
    check("stale: it says already running", "already running" in err,
          err[-500:])
    check("stale: the refused daemon has no sanitizer report",
          not any(m in err for m in SANITIZER_MARKS), err[-2000:])
    r = d2.ping()
    check("stale: the running daemon still answers after the refusal",
          r is not None and r.get("pid") == d2.p.pid, short(r or {}))
    c = Conn(sock)
    r = c.req({"op": "shutdown"})
    check("stale: shutdown answered", r.get("ok") is True, short(r))
    rc = d2.wait_exit(20)
    check("stale: second daemon exits 0 after shutdown", rc == 0,
          "exit %r" % rc)
    c.close()
    check_clean_stderr(d1, "stale: killed daemon (before the kill)")
    check_clean_stderr(d2, "stale: second daemon")

    # Once more, stale, then started without --foreground: the first
    # process exits 0 once the socket accepts connections.
    d3 = Daemon(tmp, "stale3", sock=sock)
    if not check("stale: third daemon answers", d3.wait_ready()):
        return
    d3.kill()
    check("stale: socket left behind again", os.path.exists(sock))
    try:
        p4 = subprocess.run([FIDXD, "--socket", sock],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=daemon_env(),
                            timeout=15)
        rc, err = p4.returncode, p4.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        rc, err = None, "the first process did not exit within 15s"
    check("stale: fidxd without --foreground: first process exits 0",
          rc == 0, "exit %r; %s" % (rc, err[-500:]))
    c = None
    try:
        c = Conn(sock)
        r = c.req({"op": "ping"})
    except (OSError, Closed, TimeoutError) as e:
        r = {"exception": str(e)}
    bg = r.get("pid")
    if isinstance(bg, int):
        background_pids.append(bg)
    check("stale: the background daemon answers at once (no retry)",
          r.get("ok") is True and isinstance(bg, int), short(r))
    if c is not None and isinstance(bg, int):
        r = c.req({"op": "shutdown"})
        check("stale: background daemon: shutdown answered",
              r.get("ok") is True, short(r))
        check("stale: background daemon exits after shutdown",
              wait_until(lambda: not pid_alive(bg), 15))
        c.close()


def t_detached_log(tmp):
    """A detached fidxd logs to $XDG_STATE_HOME/fidx/fidxd.log, which moves
    to fidxd.log.1 at --max-log-bytes, so the log stays under twice that;
    stats names the file and counts the moves."""
    state = os.path.join(tmp, "dlog-state")
    sock = os.path.join(tmp, "dlog.sock")
    # A .ignore that is a symlink is refused (O_NOFOLLOW) and logged on
    # every walk: a line per reindex, with this long root in it.
    R = mkdir_fixture(tmp, "dlog-" + "r" * 120, ["a.txt"])
    os.symlink("a.txt", os.path.join(R, ".ignore"))
    env = daemon_env()
    env["XDG_STATE_HOME"] = state
    try:
        p = subprocess.run([FIDXD, "--socket", sock, "--max-log-bytes",
                            "4K"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env=env, timeout=15)
        rc, err = p.returncode, p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        rc, err = None, "did not exit within 15s"
    if not check("detached log: fidxd starts detached", rc == 0,
                 "exit %r; %s" % (rc, err[-500:])):
        return
    c = Conn(sock)
    r = c.req({"op": "ping"})
    bg = r.get("pid")
    if isinstance(bg, int):
        background_pids.append(bg)
    log = os.path.join(state, "fidx", "fidxd.log")
    lg = stats(c).get("log", {})
    check("detached log: stats names the log file and its bound",
          lg.get("file") == log and lg.get("max_bytes") == 4096 and
          lg.get("rotations") == 0 and 0 < lg.get("bytes", 0) <= 4096,
          short(lg))
    with open(log, "rb") as f:
        first = f.read().decode("utf-8", "replace")
    check("detached log: it says when and which fidxd started",
          ("fidxd: fidxd " in first) and ("(pid %s)" % bg) in first and
          first[:2] == "20", first[-500:])
    r = c.req({"op": "add", "root": R, "wait": True})
    check("detached log: add", r.get("ok") is True, short(r))

    def rotated(n):
        c.req({"op": "reindex", "root": R, "wait": True})
        return stats(c).get("log", {}).get("rotations", 0) >= n
    check("detached log: walks that log move it to fidxd.log.1",
          wait_until(lambda: rotated(1), 60, 0), short(stats(c).get("log")))
    check("detached log: and again, the log staying bounded",
          wait_until(lambda: rotated(2), 60, 0), short(stats(c).get("log")))
    sizes = [os.path.getsize(x) for x in (log, log + ".1")]
    check("detached log: each file at most --max-log-bytes",
          all(0 < n <= 4096 for n in sizes) and
          not os.path.exists(log + ".2"), sizes)
    with open(log + ".1", "rb") as f:
        old = f.read().decode("utf-8", "replace")
    check("detached log: the moved file holds the walks' warnings",
          ".ignore" in old, old[-400:])
    lg = stats(c).get("log", {})
    check("detached log: stats bytes is the file's size",
          lg.get("bytes") == os.path.getsize(log) and
          lg.get("rotate_errors") == 0, short(lg))
    r = c.req({"op": "shutdown"})
    check("detached log: shutdown answered", r.get("ok") is True, short(r))
    c.close()
    check("detached log: the daemon exits",
          isinstance(bg, int) and wait_until(lambda: not pid_alive(bg), 15))
    text = ""
    for x in (log, log + ".1"):
        with open(x, "rb") as f:
            text += f.read().decode("utf-8", "replace")
    bad = [m for m in SANITIZER_MARKS if m in text]
    check("detached log: no sanitizer report in the log", not bad,
          text[-3000:])


def t_socket_activation(tmp):
    """systemd's socket activation: a listening socket on fd 3 with
    LISTEN_PID and LISTEN_FDS is served as it is, not bound again, and is
    left in place at exit (it is systemd's); a wrong LISTEN_FDS is refused."""
    import socket as sk
    path = os.path.join(tmp, "act.sock")
    ls = sk.socket(sk.AF_UNIX, sk.SOCK_STREAM)
    ls.bind(path)
    ls.listen(16)
    ino = os.stat(path).st_ino
    err = open(os.path.join(tmp, "act.err"), "w")

    def start(nfds):
        return subprocess.Popen(
            ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=%s exec "$0" '
             '--foreground' % nfds, FIDXD],
            pass_fds=(3,), preexec_fn=lambda: os.dup2(ls.fileno(), 3),
            env=daemon_env(), stdout=subprocess.DEVNULL, stderr=err)
    p = start(1)
    c = None
    try:
        c = wait_until(lambda: _try_conn(path), 10)
        r = c.req({"op": "ping"}) if c else {}
        check("activation: the passed socket answers a ping",
              r.get("ok") is True and r.get("pid") == p.pid, short(r))
        R = mkdir_fixture(tmp, "act-tree", ["a.txt"])
        r = c.req({"op": "add", "root": R, "wait": True}) if c else {}
        check("activation: and serves requests", r.get("ok") is True,
              short(r))
        if c:
            c.req({"op": "shutdown"})
        check("activation: exits 0", p.wait(20) == 0)
        check("activation: the socket file is left to systemd",
              os.path.exists(path) and os.stat(path).st_ino == ino)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if c:
            c.close()
    p = start(2)
    check("activation: LISTEN_FDS=2 is refused (exit 2)", p.wait(20) == 2)
    err.close()
    with open(os.path.join(tmp, "act.err")) as f:
        text = f.read()
    check("activation: and says why", "exactly one socket" in text, text)
    check("activation: no sanitizer report",
          not any(m in text for m in SANITIZER_MARKS), text[-2000:])
    ls.close()


def _try_conn(path):
    try:
        return Conn(path)
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(ft.main("daemon_process.py", (
        ("stale socket", t_stale_socket),
        ("socket activation", t_socket_activation),
        ("detached log", t_detached_log))))
