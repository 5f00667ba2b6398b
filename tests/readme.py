#!/usr/bin/env python3
"""tests/readme.py - the README's protocol section, checked against the code.

What a reader copies from the README must be what fidxd does, so nothing
in "The daemon protocol" is written by hand and left to drift:

- The example session is replayed against a real fidxd on the project its
  first line describes ("# a project at ROOT holding: FILE ..."), made
  here under a temporary directory that stands in for ROOT. Each answer
  must equal the README's line, key for key and value for value, except
  the fields that differ from run to run (VOLATILE), which must only be
  present and of the same JSON type.
- The error-code table lists exactly the codes of common/proto.c.
- The op table lists exactly the ops fidxd names in its unknown_op error.

`python3 tests/readme.py --write` replays the session and rewrites the
README's answer lines with what fidxd said, for when the protocol changes
on purpose. Python 3 standard library only; FIDX_BUILD as in fidxtest.py.
"""

import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402  (Conn, Daemon, check, the counters)

README = os.path.join(HERE, "..", "README.md")
PROTO_C = os.path.join(HERE, "..", "common", "proto.c")

# Values that change from run to run: compared by JSON type only.
VOLATILE = {"elapsed_us", "pid", "built_at", "build_ms", "uptime_s"}


def section(text, title):
    """The lines of the README section headed `## title`."""
    m = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(title), text,
                  re.S | re.M)
    if not m:
        raise SystemExit("readme.py: no section '## %s' in README" % title)
    return m.group(1)


def table_keys(text, first):
    """The `names` in the first column of the table headed `| first |`."""
    m = re.search(r"^\| %s \|.*\n\|[-|]+\|\n((?:\|.*\n)*)" % first, text,
                  re.M)
    if not m:
        raise SystemExit("readme.py: no table headed '| %s |'" % first)
    return set(re.findall(r"^\| `(\w+)` \|", m.group(1), re.M))


def example_block(text):
    """(start, end, lines) of the fenced block holding the session."""
    m = re.search(r"^```\n(# a project at .*?)^```$", text, re.S | re.M)
    if not m:
        raise SystemExit("readme.py: no example session ('```' block "
                         "starting '# a project at') in README")
    return m.start(1), m.end(1), m.group(1).splitlines()


def same_shape(want, got, path="$"):
    """None if got matches want (VOLATILE keys by type), else why not."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return "%s: want an object, got %s" % (path, json.dumps(got))
        if set(want) != set(got):
            return "%s: keys differ: README has %s, fidxd %s" % (
                path, sorted(set(want) - set(got)),
                sorted(set(got) - set(want)))
        for k in want:
            if k in VOLATILE:
                if type(want[k]) is not type(got[k]):
                    return "%s.%s: type %s, README shows %s" % (
                        path, k, type(got[k]).__name__,
                        type(want[k]).__name__)
                continue
            why = same_shape(want[k], got[k], path + "." + k)
            if why:
                return why
        return None
    if isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            return "%s: want %s, got %s" % (path, json.dumps(want),
                                            json.dumps(got))
        for i, (w, g) in enumerate(zip(want, got)):
            why = same_shape(w, g, "%s[%d]" % (path, i))
            if why:
                return why
        return None
    if want != got or type(want) is not type(got):
        return "%s: want %s, got %s" % (path, json.dumps(want),
                                        json.dumps(got))
    return None


def replay(tmp, lines):
    """Runs the session; returns [(request, README answer, fidxd answer)]."""
    head = re.match(r"# a project at (\S+) holding: (.*)$", lines[0])
    if not head:
        raise SystemExit("readme.py: bad first line: " + lines[0])
    root_doc, files = head.group(1), head.group(2).split()
    root = os.path.join(tmp, "proj")
    ft.mkfiles(root, files)
    dm = ft.Daemon(tmp, "readme")
    if not dm.wait_ready():
        raise SystemExit("readme.py: fidxd did not start:\n" + dm.stderr())
    c = ft.Conn(dm.sock)
    out = []
    req = None
    for ln in lines[1:]:
        if ln.startswith("> "):
            req = ln[2:]
            c.send_raw(req.replace(root_doc, root).encode() + b"\n")
        elif ln.startswith("< "):
            got = c.recv_line().decode().replace(root, root_doc)
            out.append((req, ln[2:], got))
    c.close()
    c = ft.Conn(dm.sock)
    c.req({"op": "shutdown"})
    c.close()
    dm.wait_exit()
    ft.check_clean_stderr(dm, "readme daemon")
    return out


def t_session(tmp, text, write):
    start, end, lines = example_block(text)
    pairs = replay(tmp, lines)
    if write:
        answers = iter(got for _, _, got in pairs)
        new = ["< " + next(answers) if ln.startswith("< ") else ln
               for ln in lines]
        text = text[:start] + "\n".join(new) + "\n" + text[end:]
        with open(README, "w") as f:
            f.write(text)
        print("readme.py: rewrote %d answers" % len(pairs))
        return
    ft.check("readme: the session has requests and answers", len(pairs) >= 3,
             len(pairs))
    for req, want, got in pairs:
        why = same_shape(json.loads(want), json.loads(got))
        ft.check("readme: answer to %s" % req[:70], why is None,
                 "%s\n  README: %s\n  fidxd:  %s" % (why, want, got))


def t_tables(text, unknown_op_msg):
    proto = section(text, "The daemon protocol")
    with open(PROTO_C) as f:
        code_names = set(re.findall(r'\[PROTO_E_\w+\] = "(\w+)"', f.read()))
    doc_codes = table_keys(proto, "code")
    ops_doc = table_keys(proto, "op")
    ft.check("readme: error table = common/proto.c's codes",
             doc_codes == code_names,
             "only README: %s, only code: %s" % (
                 sorted(doc_codes - code_names),
                 sorted(code_names - doc_codes)))
    m = re.search(r"\(ops: ([a-z_, ]+)\)", unknown_op_msg)
    ops_code = set(m.group(1).split(", ")) if m else set()
    ft.check("readme: op table = the ops fidxd knows", ops_doc == ops_code,
             "only README: %s, only fidxd: %s" % (
                 sorted(ops_doc - ops_code), sorted(ops_code - ops_doc)))


def main():
    write = "--write" in sys.argv[1:]
    with open(README) as f:
        text = f.read()
    tmp = ft.setup("readme.py")
    try:
        t_session(tmp, text, write)
        if write:
            return 0
        dm = ft.Daemon(tmp, "ops")
        if not dm.wait_ready():
            raise SystemExit("readme.py: fidxd did not start")
        c = ft.Conn(dm.sock)
        r = c.req({"op": "frobnicate"})
        c.req({"op": "shutdown"})
        c.close()
        dm.wait_exit()
        t_tables(text, ft.err_msg(r))
    finally:
        ft.cleanup(tmp)
    return ft.summary("readme.py")


if __name__ == "__main__":
    sys.exit(main())
