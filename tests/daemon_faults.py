#!/usr/bin/env python3
"""tests/daemon_faults.py - system calls that fail, made to fail on
purpose (LD_PRELOAD shims in tests/fault/, built by make test-build).

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


if __name__ == "__main__":
    sys.exit(ft.main("daemon_faults.py", [("accept ENOMEM", t_accept_enomem)]))
