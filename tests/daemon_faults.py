#!/usr/bin/env python3
"""tests/daemon_faults.py - system calls that fail, made to fail on
purpose (LD_PRELOAD shims in tests/fault/, built by make test-build).

inotify that cannot be had (max_user_instances used up): fidxd runs on,
every project degraded, saying why, in answers and stats.

accept() failing for want of memory: the listen socket stays readable,
so a daemon that tried again at once would spin the loop (and fill the
log) until the shortage passed. fidxd pauses accepting instead (100 ms,
counted in accept_pauses), and serves once it passes.

The shims wrap the release fidxd (FIDX_VG_BUILD, default build): an ASan
binary wants its runtime first among the loaded libraries.
"""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402
from fidxtest import Daemon, check, short, stats  # noqa: E402

BUILD = os.environ.get("FIDX_VG_BUILD", "build")
SHIM = os.path.abspath(os.path.join(BUILD, "fault", "accept_fail.so"))
RELEASE = os.path.abspath(os.path.join(BUILD, "fidxd"))


def t_accept_enomem(tmp):
    if not (os.path.exists(SHIM) and os.path.exists(RELEASE)):
        check("accept: the shim and the release fidxd are built", False,
              "%s %s (make test-build)" % (SHIM, RELEASE))
        return
    d = Daemon(tmp, "accept", binary=RELEASE,
               env_extra={"LD_PRELOAD": SHIM, "FIDX_FAULT_ACCEPT_MS": "400"})
    check("accept: served once accept() works again", d.wait_ready(15))
    c = ft.Conn(d.sock)
    st = stats(c).get("counters", {})
    check("accept: it paused rather than spun (a few failed accepts, "
          "not thousands)", 1 <= st.get("accept_errors", 0) <= 20 and
          st.get("accept_pauses", 0) >= 1, short(st))
    err = d.stderr()
    check("accept: each pause said once, with its reason",
          0 < err.count("accepting again in") <= 20 and
          "Cannot allocate memory" in err, err[-2000:])
    ft.stop_daemon(d, c, "accept daemon")


def t_no_inotify(tmp):
    shim = os.path.abspath(os.path.join(BUILD, "fault", "inotify_fail.so"))
    if not os.path.exists(shim):
        check("no inotify: the shim is built", False, shim)
        return
    d = Daemon(tmp, "noino", binary=RELEASE, env_extra={"LD_PRELOAD": shim})
    check("no inotify: fidxd still starts", d.wait_ready(15), d.stderr())
    c = ft.Conn(d.sock)
    R = ft.mkdir_fixture(tmp, "noino-tree", ["a.txt", "src/b.c"])
    r = c.req({"op": "add", "root": R, "wait": True})
    check("no inotify: a project still indexes, degraded, saying why",
          r.get("ok") is True and r.get("files") == 2 and
          r.get("watch") == "degraded" and
          "inotify" in (r.get("watch_message") or ""), short(r))
    w = stats(c).get("watch", {})
    check("no inotify: stats say the watcher is not running, and why",
          w.get("running") is False and "inotify" in w.get("error", ""),
          short(w))
    s = c.req({"op": "sync", "root": R})
    check("no inotify: sync answers at once, saying it is not watched",
          s.get("ok") is True and s.get("watch") == "degraded", short(s))
    ft.stop_daemon(d, c, "no-inotify daemon")


if __name__ == "__main__":
    sys.exit(ft.main("daemon_faults.py", [
        ("accept ENOMEM", t_accept_enomem), ("no inotify", t_no_inotify)]))
