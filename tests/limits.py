#!/usr/bin/env python3
"""tests/limits.py - common/limits.h names only what exists.

limits.h gives each bound its flag and its `stats` line, in comments that
nothing compiles. So they are checked against a real fidxd and the CLI:

- every `a.b` in backquotes whose first name is a section of `fidx stats`
  must be a field of a detached fidxd's stats (detached, so the `log`
  section is the file's, not "stderr");
- every bare `name` in backquotes must be a field somewhere in stats, a
  protocol error code (common/proto.c) or an op fidxd knows;
- every --flag must be in `fidxd --help`, `fidx --help` or
  `fidx filter --help`.

Python 3 standard library only; FIDX_BUILD as in fidxtest.py.
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402  (Conn, check, the counters)

LIMITS_H = os.path.join(HERE, "..", "common", "limits.h")
PROTO_C = os.path.join(HERE, "..", "common", "proto.c")
FIDX = ft.FIDX


def keys_anywhere(obj, out):
    """Every key of every object in obj, at any depth, into out."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(k)
            keys_anywhere(v, out)
    return out


def resolves(stats, dotted):
    cur = stats
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False
        cur = cur[part]
    return True


def detached_stats(tmp):
    """(stats, the unknown_op message) of a detached fidxd, stopped after."""
    sock = os.path.join(tmp, "limits.sock")
    env = ft.daemon_env()
    env["XDG_STATE_HOME"] = os.path.join(tmp, "state")
    p = subprocess.run([ft.FIDXD, "--socket", sock], env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=15)
    if p.returncode != 0:
        raise SystemExit("limits.py: fidxd did not start: %s" %
                         p.stderr.decode("utf-8", "replace")[-500:])
    c = ft.Conn(sock)
    bg = c.req({"op": "ping"}).get("pid")
    if isinstance(bg, int):
        ft.background_pids.append(bg)
    st = c.req({"op": "stats"})
    unknown = ft.err_msg(c.req({"op": "frobnicate"}))
    c.req({"op": "shutdown"})
    c.close()
    ft.check("limits: the detached fidxd exits",
             isinstance(bg, int) and
             ft.wait_until(lambda: not ft.pid_alive(bg), 15))
    return st, unknown


def helps():
    text = ""
    for argv in ([ft.FIDXD, "--help"], [FIDX, "--help"],
                 [FIDX, "filter", "--help"]):
        p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=15)
        text += p.stdout.decode() + p.stderr.decode()
    return text


def main():
    with open(LIMITS_H) as f:
        text = f.read()
    with open(PROTO_C) as f:
        codes = set(re.findall(r'\[PROTO_E_\w+\] = "(\w+)"', f.read()))
    tmp = ft.setup("limits.py")
    try:
        st, unknown = detached_stats(tmp)
        m = re.search(r"\(ops: ([a-z_, ]+)\)", unknown)
        ops = set(m.group(1).split(", ")) if m else set()
        ft.check("limits: fidxd lists its ops", ops, unknown)
        sections = {k for k, v in st.items() if isinstance(v, dict)}
        ft.check("limits: stats has its sections",
                 {"limits", "usage", "counters", "log"} <= sections,
                 sorted(sections))
        fields = keys_anywhere(st, set())
        names = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)*)`", text))
        for name in sorted(names):
            if "." in name and name.split(".")[0] in sections:
                ft.check("limits: stats has %s" % name, resolves(st, name),
                         ft.short(st.get(name.split(".")[0])))
            elif "." not in name:
                ft.check("limits: `%s` is a stats field, an error code or "
                         "an op" % name,
                         name in fields or name in codes or name in ops,
                         "neither in stats, proto.c nor the ops")
        usage = helps()
        for flag in sorted(set(re.findall(r"(--[a-z][a-z-]*)", text))):
            ft.check("limits: %s is a flag" % flag,
                     re.search(re.escape(flag) + r"\b", usage) is not None)
    finally:
        ft.cleanup(tmp)
    return ft.summary("limits.py")


if __name__ == "__main__":
    sys.exit(main())
