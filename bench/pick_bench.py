#!/usr/bin/env python3
"""bench/pick_bench.py - keystroke to screen: fidx pick against fzf, in tmux.

Why: a picker is judged by how soon the list follows a key. Both pickers
run in the same private tmux server, on the same file set (fidx pick on a
fidxd project of TREE, fzf on the list of the same paths), typing the
same queries one key at a time. A tmux control-mode client (`tmux -C`)
reports every byte a pane writes as it is written (`%output`), so the
clock needs no screen polling: latency = from the key sent (through the
same control client) to the last output of the redraw it caused, the end
of a burst followed by QUIET_MS of silence. Keys are PAUSE_MS apart, so
each redraw is its own.

Usage: pick_bench.py --fidx BUILD/fidx --fidxd BUILD/fidxd --tree TREE
                     [--queries bench/queries.txt] [--n 12]
Prints a markdown table (median, p90, p99 per tool) and a target line:
fidx pick's median and p99 below fzf's, and its median under 16 ms.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

QUIET_MS = 40
PAUSE_MS = 120


class Control:
    """A tmux control-mode client: commands in, %output events out."""

    def __init__(self, sock, session):
        self.p = subprocess.Popen(["tmux", "-S", sock, "-C", "attach", "-t",
                                   session], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, bufsize=0)
        self.last = {}          # pane -> monotonic time of its last output
        self.lock = threading.Lock()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for raw in iter(self.p.stdout.readline, b""):
            if raw.startswith(b"%output "):
                pane = raw.split(b" ", 2)[1].decode()
                with self.lock:
                    self.last[pane] = time.monotonic()

    def cmd(self, line):
        self.p.stdin.write(line.encode() + b"\n")

    def last_output(self, pane):
        with self.lock:
            return self.last.get(pane, 0.0)

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        self.p.terminate()
        self.p.wait()


def settle(ctl, pane, since, limit=2.0):
    """Waits for QUIET_MS of silence after output that came after since;
    returns the time of that last output, or None if none came."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        last = ctl.last_output(pane)
        if last > since and time.monotonic() - last >= QUIET_MS / 1000:
            return last
        time.sleep(0.002)
    last = ctl.last_output(pane)
    return last if last > since else None


def key_literal(c):
    return "'" + c.replace("'", "'\\''") + "'"


def measure(ctl, pane, queries):
    out = []
    for q in queries:
        for c in q:
            t0 = time.monotonic()
            ctl.cmd("send-keys -t %s -l %s" % (pane, key_literal(c)))
            t1 = settle(ctl, pane, t0)
            if t1 is not None:
                out.append((t1 - t0) * 1000)
            time.sleep(PAUSE_MS / 1000)
        t0 = time.monotonic()
        ctl.cmd("send-keys -t %s C-u" % pane)
        settle(ctl, pane, t0)
        time.sleep(PAUSE_MS / 1000)
    return out


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fidx", required=True)
    ap.add_argument("--fidxd", required=True)
    ap.add_argument("--tree", required=True)
    ap.add_argument("--queries", default="bench/queries.txt")
    ap.add_argument("--n", type=int, default=12, help="queries typed")
    a = ap.parse_args()
    a.fidx, a.fidxd = os.path.abspath(a.fidx), os.path.abspath(a.fidxd)
    tree = os.path.realpath(a.tree)
    with open(a.queries) as f:
        queries = [ln.strip() for ln in f if ln.strip() and
                   not ln.startswith("#")][:a.n]
    tmp = tempfile.mkdtemp(prefix="fidx-pickbench.")
    sock, tsock = os.path.join(tmp, "s.sock"), os.path.join(tmp, "tmux")
    env = dict(os.environ, TERM="xterm-256color", FZF_DEFAULT_OPTS="",
               FZF_DEFAULT_COMMAND="")
    d = subprocess.Popen([a.fidxd, "--foreground", "--socket", sock],
                         stderr=open(os.path.join(tmp, "fidxd.log"), "w"))
    ctl = None
    try:
        while not os.path.exists(sock):
            time.sleep(0.02)
        c = socket.socket(socket.AF_UNIX)
        c.connect(sock)
        f = c.makefile("rwb")
        f.write((json.dumps({"op": "add", "root": tree, "wait": True,
                             "timeout_ms": 600000}) + "\n").encode())
        f.flush()
        files = json.loads(f.readline()).get("files")
        paths = os.path.join(tmp, "paths.txt")
        with open(paths, "w") as out:
            subprocess.run(["find", ".", "-name", ".git", "-prune", "-o",
                            "(", "-type", "f", "-o", "-type", "l", ")",
                            "-printf", "%P\\n"], cwd=tree, stdout=out,
                           check=True)
        nlist = sum(1 for _ in open(paths))
        subprocess.run(["tmux", "-S", tsock, "-f", "/dev/null", "new-session",
                        "-d", "-s", "b", "-x", "120", "-y", "40", "-n", "fidx",
                        "cd %s && exec %s --socket %s pick --root %s" % (
                            tree, a.fidx, sock, tree)], env=env, check=True)
        subprocess.run(["tmux", "-S", tsock, "new-window", "-t", "b", "-n",
                        "fzf", "cd %s && exec fzf < %s" % (tree, paths)],
                       env=env, check=True)
        panes = subprocess.run(["tmux", "-S", tsock, "list-panes", "-s", "-t",
                                "b", "-F", "#{window_index} #{pane_id}"],
                               capture_output=True, text=True,
                               check=True).stdout.split("\n")
        ids = dict(ln.split() for ln in panes if ln.strip())
        first = min(ids, key=int)
        pane = {"fidx": ids[first], "fzf": ids[max(ids, key=int)]}
        win = {"fidx": first, "fzf": max(ids, key=int)}
        ctl = Control(tsock, "b")
        time.sleep(1.5)     # both drawn their first screen, fzf read its list
        res = {}
        for rnd in range(2):
            for tool in (("fidx", "fzf") if rnd == 0 else ("fzf", "fidx")):
                ctl.cmd("select-window -t b:%s" % win[tool])
                time.sleep(0.3)
                res.setdefault(tool, []).extend(measure(ctl, pane[tool],
                                                        queries))
        keys = sum(len(q) for q in queries)
        print("## `fidx pick` against fzf: keystroke to screen\n")
        print("- Tree: `%s`, fidxd project of %s files; fzf on the %d paths "
              "of `find` (the same set); tmux 120x40" % (tree, files, nlist))
        print("- Typed: the first %d queries of %s, %d keys, twice per tool "
              "(order alternating), %d ms between keys; latency = key sent "
              "to the end of the redraw (the last output before %d ms of "
              "quiet), from a tmux control-mode client" % (
                  len(queries), a.queries, keys, PAUSE_MS, QUIET_MS))
        print("- Versions: %s; %s" % (
            subprocess.run([a.fidx, "--version"], capture_output=True,
                           text=True).stdout.strip(),
            "fzf " + subprocess.run(["fzf", "--version"], capture_output=True,
                                    text=True).stdout.strip()))
        print()
        print("| tool | keys measured | median ms | p90 ms | p99 ms |")
        print("|---|---:|---:|---:|---:|")
        for tool in ("fidx", "fzf"):
            v = res[tool]
            print("| %s | %d | %.2f | %.2f | %.2f |" % (
                "fidx pick" if tool == "fidx" else "fzf", len(v),
                statistics.median(v), pct(v, 90), pct(v, 99)))
        fm, f99 = statistics.median(res["fidx"]), pct(res["fidx"], 99)
        zm, z99 = statistics.median(res["fzf"]), pct(res["fzf"], 99)
        ok = fm < zm and f99 < z99 and fm < 16
        print("\n%s  fidx pick below fzf (median %.2f vs %.2f ms, p99 %.2f "
              "vs %.2f ms) and under one frame (16 ms) at the median" % (
                  "PASS" if ok else "FAIL", fm, zm, f99, z99))
    finally:
        if ctl is not None:
            ctl.close()
        subprocess.run(["tmux", "-S", tsock, "kill-server"],
                       stderr=subprocess.DEVNULL)
        d.terminate()
        d.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
