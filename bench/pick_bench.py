#!/usr/bin/env python3
"""bench/pick_bench.py - keystroke to screen: fidx pick against fzf, in tmux
(and, with --nvim, the Neovim plugin's :Fidx picker beside them).

Why: a picker is judged by how soon the list follows a key. Both pickers
run in the same private tmux server, on the same file set (fidx pick on a
fidxd project of TREE, fzf on the list of the same paths), typing the
same queries one key at a time. A tmux control-mode client (`tmux -C`)
reports every byte a pane writes as it is written (`%output`), so the
clock needs no screen polling: latency = from the key sent (through the
same control client) to the last output of the redraw it caused: the
last output before the next key, PAUSE_MS after QUIET_MS of silence (so
a list drawn well after the key's echo is still counted). Keys are
PAUSE_MS apart, so each redraw is its own.

Usage: pick_bench.py --fidx BUILD/fidx --fidxd BUILD/fidxd --tree TREE
                     [--queries bench/queries.txt] [--n 12]
                     [--nvim cli/nvim]
Prints a markdown table (median, p90, p99 per tool) and a target line:
fidx pick's median and p99 below fzf's, and its median under 16 ms.
With --nvim PLUGIN_DIR, a third window runs Neovim (-u NORC, PLUGIN_DIR
first in 'runtimepath') with the :Fidx picker open on the same fidxd
project, typed the same way (Ctrl-U clears its prompt as it clears the
others' query), and a second target line: its median under 16 ms, its
p99 under 50 ms, and its median no worse than fidx pick's.
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


def measure(ctl, pane, queries, late):
    """Latencies (ms) of each key of queries typed into pane. The end of a
    key's redraw is the last output before the next key is sent: a
    picker that echoes the key at once and draws the list more than
    QUIET_MS later has that later output counted (late[0] counts such
    keys), so the clock never stops at the echo."""
    out = []
    for q in queries:
        for c in q:
            t0 = time.monotonic()
            ctl.cmd("send-keys -t %s -l %s" % (pane, key_literal(c)))
            t1 = settle(ctl, pane, t0)
            time.sleep(PAUSE_MS / 1000)
            last = ctl.last_output(pane)
            if last > t0 and (t1 is None or last > t1):
                if t1 is not None:
                    late[0] += 1
                t1 = last
            if t1 is not None:
                out.append((t1 - t0) * 1000)
        t0 = time.monotonic()
        ctl.cmd("send-keys -t %s C-u" % pane)
        settle(ctl, pane, t0)
        time.sleep(PAUSE_MS / 1000)
    return out


def lua_str(s):
    """s as a Lua string literal (json's escapes are Lua's for these)."""
    return json.dumps(s)


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
    ap.add_argument("--nvim", metavar="PLUGIN_DIR",
                    help="also Neovim's :Fidx picker from this plugin dir")
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
        tools = ["fidx", "fzf"]
        if a.nvim:
            # The picker on the same project as fidx pick's (--root TREE),
            # without the git column fidx pick is not asked for either,
            # its list as tall as the screen allows (32 rows of 40; fidx
            # pick's has 38), so both ask for about as many results.
            init = os.path.join(tmp, "init.lua")
            with open(init, "w") as f_init:
                f_init.write("require('fidx').setup({socket=%s, fidx=%s, "
                             "git=false, picker={height=1, width=0.8, "
                             "border='rounded', prompt='> '}})\n"
                             "require('fidx').pick({root=%s})\n"
                             % (lua_str(sock), lua_str(a.fidx),
                                lua_str(tree)))
            subprocess.run(["tmux", "-S", tsock, "new-window", "-t", "b",
                            "-n", "nvim",
                            "cd %s && exec env XDG_CONFIG_HOME=%s/xc "
                            "XDG_DATA_HOME=%s/xd nvim -u NORC -i NONE -n "
                            "--cmd 'set rtp^=%s' -c 'luafile %s'" % (
                                tree, tmp, tmp, os.path.abspath(a.nvim),
                                init)],
                           env=env, check=True)
            tools.append("nvim")
        panes = subprocess.run(["tmux", "-S", tsock, "list-panes", "-s", "-t",
                                "b", "-F", "#{window_index} #{pane_id}"],
                               capture_output=True, text=True,
                               check=True).stdout.split("\n")
        ids = dict(ln.split() for ln in panes if ln.strip())
        order = sorted(ids, key=int)      # windows in the order made
        pane = {t: ids[w] for t, w in zip(tools, order)}
        win = {t: w for t, w in zip(tools, order)}
        ctl = Control(tsock, "b")
        # Every tool drew its first screen, fzf read its list, Neovim
        # started and got its first answer.
        time.sleep(3 if a.nvim else 1.5)
        res, late = {}, {}
        for rnd in range(2):
            for tool in (tools if rnd == 0 else tools[::-1]):
                ctl.cmd("select-window -t b:%s" % win[tool])
                time.sleep(0.3)
                late.setdefault(tool, [0])
                res.setdefault(tool, []).extend(measure(ctl, pane[tool],
                                                        queries, late[tool]))
        keys = sum(len(q) for q in queries)
        print("## `fidx pick`%s against fzf: keystroke to screen\n" % (
            " and Neovim's `:Fidx`" if a.nvim else ""))
        print("- Tree: `%s`, fidxd project of %s files; fzf on the %d paths "
              "of `find` (the same set); tmux 120x40" % (tree, files, nlist))
        print("- Typed: the first %d queries of %s, %d keys, twice per tool "
              "(order alternating), %d ms between keys; latency = key sent "
              "to the end of the redraw (the last output before the next "
              "key; late redraws: keys whose output went on after %d ms "
              "of quiet), from a tmux control-mode client" % (
                  len(queries), a.queries, keys, PAUSE_MS, QUIET_MS))
        versions = [subprocess.run([a.fidx, "--version"], capture_output=True,
                                   text=True).stdout.strip(),
                    "fzf " + subprocess.run(["fzf", "--version"],
                                            capture_output=True,
                                            text=True).stdout.strip()]
        if a.nvim:
            versions.append(subprocess.run(
                ["nvim", "--version"], capture_output=True,
                text=True).stdout.split("\n")[0])
        print("- Versions: %s" % "; ".join(versions))
        print()
        names = {"fidx": "fidx pick", "fzf": "fzf", "nvim": "nvim :Fidx"}
        print("| tool | keys measured | median ms | p90 ms | p99 ms | "
              "late redraws |")
        print("|---|---:|---:|---:|---:|---:|")
        for tool in tools:
            v = res[tool]
            print("| %s | %d | %.2f | %.2f | %.2f | %d |" % (
                names[tool], len(v), statistics.median(v), pct(v, 90),
                pct(v, 99), late[tool][0]))
        fm, f99 = statistics.median(res["fidx"]), pct(res["fidx"], 99)
        zm, z99 = statistics.median(res["fzf"]), pct(res["fzf"], 99)
        ok = fm < zm and f99 < z99 and fm < 16
        print("\n%s  fidx pick below fzf (median %.2f vs %.2f ms, p99 %.2f "
              "vs %.2f ms) and under one frame (16 ms) at the median" % (
                  "PASS" if ok else "FAIL", fm, zm, f99, z99))
        if a.nvim:
            nm, n99 = statistics.median(res["nvim"]), pct(res["nvim"], 99)
            ok = nm < 16 and n99 < 50 and nm <= fm
            print("%s  nvim :Fidx median %.2f ms (< 16), p99 %.2f ms (< 50), "
                  "median no worse than fidx pick's %.2f ms (ratio %.2f); "
                  "against fzf: median %.2fx, p99 %.2fx faster" % (
                      "PASS" if ok else "FAIL", nm, n99, fm, nm / fm,
                      zm / nm, z99 / n99))
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
