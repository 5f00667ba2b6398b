#!/usr/bin/env python3
"""tests/daemon_faults.py - system calls that fail, made to fail on
purpose (LD_PRELOAD shims in tests/fault/, built by make test-build).

inotify that cannot be had (max_user_instances used up): fidxd runs on,
every project degraded, saying why, in answers and stats.

accept() failing for want of memory: the listen socket stays readable,
so a daemon that tried again at once would spin the loop (and fill the
log) until the shortage passed. fidxd pauses accepting instead (100 ms,
counted in accept_pauses), and serves once it passes.

kill -9 in the middle of a rebuild, and in the middle of a save of the
visit store (fsync_hang.so stops the save at a known point: the
temporary file written, not yet renamed): a new daemon replaces the stale
socket, loads the visit store whole (the old file: a save is a rename),
removes the unfinished save's temporary file (once it is a minute old),
and the client adds its projects again.

Out of file descriptors (RLIMIT_NOFILE lowered on the running daemon):
the client over it gets a `capped` line and is counted
(clients_refused_fds); once descriptors are free again, clients are
served. Out of address space (RLIMIT_AS a little over what the daemon
maps at rest, then a project too big for it): the walk fails, is
reported, the daemon answers on; with the limit raised, a reindex builds
the index.

The visit store's directory full (a 256 KiB tmpfs, filled) and then
read-only (remounted): each save fails, is counted and logged, and the
old file stays as it was; freed, the next save writes every visit. It
needs mount(2) (root): without it, skipped, saying so.

The shims wrap the release fidxd (FIDX_VG_BUILD, default build): an ASan
binary wants its runtime first among the loaded libraries; the address
space test runs it too (ASan's shadow maps terabytes).
"""

import json
import os
import resource
import signal
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as ft  # noqa: E402
from fidxtest import Daemon, check, err_code, short, stats  # noqa: E402

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


def vstats(c):
    return stats(c).get("visits", {})


def store_entries(path):
    """The visit store file's entries (header checked), or None."""
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines()
        if not lines or json.loads(lines[0]) != {"fidx_visits": 1}:
            return None
        return [json.loads(x) for x in lines[1:]]
    except (OSError, ValueError):
        return None


def visit(c, root, rel):
    r = c.req({"op": "visit", "root": root, "path": rel})
    return r.get("ok") is True


def t_kill_mid_rebuild(tmp):
    sock = os.path.join(tmp, "k.sock")
    state = os.path.join(tmp, "kstate")
    rels = ["d%03d/f%04d.txt" % (i % 200, i) for i in range(20000)]
    R = ft.mkdir_fixture(tmp, "ktree", rels)
    d1 = Daemon(tmp, "kill1", sock=sock, state=state)
    if not check("kill -9 mid-rebuild: first daemon answers",
                 d1.wait_ready()):
        return
    c = ft.Conn(d1.sock)
    ft.add_ready(c, R, "kill -9 mid-rebuild")
    for rel in rels[:3]:
        visit(c, R, rel)
    check("kill -9 mid-rebuild: the visits saved once",
          ft.wait_until(lambda: vstats(c).get("counters", {}).get(
              "saves", 0) >= 1, 15))
    mid = False
    for _ in range(20):
        c.send({"op": "reindex", "root": R, "id": "re"})
        c.send({"op": "projects", "id": "pr"})
        c.read()
        ps = c.read().get("projects") or []
        if ps and ps[0].get("indexing") is True:
            d1.p.send_signal(signal.SIGKILL)
            mid = True
            break
        ft.wait_until(lambda: (ft.find_project(c, R) or {}).get(
            "indexing") is False, 10)
    c.close()
    check("kill -9 mid-rebuild: killed while the walk ran", mid)
    rc = d1.wait_exit(10)
    check("kill -9 mid-rebuild: killed by SIGKILL", rc == -signal.SIGKILL,
          "exit %r" % rc)
    d2 = Daemon(tmp, "kill2", sock=sock, state=state)
    check("kill -9 mid-rebuild: a new daemon replaces the stale socket",
          d2.wait_ready(), d2.stderr()[-2000:])
    c = ft.Conn(d2.sock)
    v = vstats(c)
    check("kill -9 mid-rebuild: the visit store loads whole",
          v.get("load", {}).get("loaded") == 3 and
          v.get("load", {}).get("bad_entries") == 0 and
          v.get("counters", {}).get("load_errors") == 0, short(v))
    check("kill -9 mid-rebuild: no project survives (the client adds "
          "them)", c.req({"op": "projects"}).get("projects") == [])
    r = ft.add_ready(c, R, "kill -9 mid-rebuild, added again")
    check("kill -9 mid-rebuild: added again, every file",
          r.get("files") == len(rels), short(r))
    ft.stop_daemon(d2, c, "kill -9 mid-rebuild: second daemon")


def t_kill_mid_save(tmp):
    shim = os.path.abspath(os.path.join(BUILD, "fault", "fsync_hang.so"))
    if not os.path.exists(shim):
        check("kill -9 mid-save: the shim is built", False, shim)
        return
    sock = os.path.join(tmp, "ks.sock")
    state = os.path.join(tmp, "ksstate")
    mark = os.path.join(tmp, "ks.hung")
    store = os.path.join(state, "fidx", "visits.json")
    R = ft.mkdir_fixture(tmp, "kstree", ["a.txt", "b.txt", "c.txt"])
    d1 = Daemon(tmp, "ksave1", sock=sock, state=state, binary=RELEASE,
                env_extra={"LD_PRELOAD": shim,
                           "FIDX_FAULT_FSYNC_PATH": "visits.json.",
                           "FIDX_FAULT_FSYNC_SKIP": "1",
                           "FIDX_FAULT_FSYNC_MARK": mark})
    if not check("kill -9 mid-save: first daemon answers", d1.wait_ready()):
        return
    c = ft.Conn(d1.sock)
    ft.add_ready(c, R, "kill -9 mid-save")
    visit(c, R, "a.txt")
    check("kill -9 mid-save: the first save done",
          ft.wait_until(lambda: vstats(c).get("counters", {}).get(
              "saves", 0) >= 1, 15))
    old = store_entries(store)
    visit(c, R, "b.txt")
    check("kill -9 mid-save: the second save stopped in fsync",
          ft.wait_until(lambda: os.path.exists(mark), 15))
    tmps = [n for n in os.listdir(os.path.dirname(store))
            if n.startswith("visits.json.")]
    check("kill -9 mid-save: its temporary file is there", len(tmps) == 1,
          tmps)
    d1.p.send_signal(signal.SIGKILL)
    c.close()
    rc = d1.wait_exit(10)
    check("kill -9 mid-save: killed by SIGKILL", rc == -signal.SIGKILL,
          "exit %r" % rc)
    check("kill -9 mid-save: the store file is the old one, whole",
          old is not None and store_entries(store) == old and
          [e.get("path") for e in old] == ["a.txt"], short(old or []))
    # As if the crash were a while ago: a younger one could be another
    # daemon's save under way, and is left alone.
    sdir = os.path.dirname(store)
    for n in tmps:
        os.utime(os.path.join(sdir, n), (1e9, 1e9))
    d2 = Daemon(tmp, "ksave2", sock=sock, state=state)
    check("kill -9 mid-save: a new daemon replaces the stale socket",
          d2.wait_ready(), d2.stderr()[-2000:])
    left = [n for n in os.listdir(sdir) if n.startswith("visits.json.")]
    check("kill -9 mid-save: the unfinished save's file removed at start, "
          "and said", left == [] and "removed 1 temporary file" in
          d2.stderr(), "%s; %s" % (left, d2.stderr()[-1000:]))
    c = ft.Conn(d2.sock)
    v = vstats(c)
    check("kill -9 mid-save: the store loads whole (the save before)",
          v.get("load", {}).get("loaded") == 1 and
          v.get("load", {}).get("bad_entries") == 0 and
          v.get("counters", {}).get("load_errors") == 0 and
          v.get("load", {}).get("moved_aside_to") is None, short(v))
    ft.add_ready(c, R, "kill -9 mid-save, added again")
    visit(c, R, "c.txt")
    check("kill -9 mid-save: the next save works",
          ft.wait_until(lambda: vstats(c).get("counters", {}).get(
              "saves", 0) >= 1, 15))
    check("kill -9 mid-save: and holds what was saved and the new visit",
          [e.get("path") for e in store_entries(store) or []] ==
          ["a.txt", "c.txt"], short(store_entries(store) or []))
    ft.stop_daemon(d2, c, "kill -9 mid-save: second daemon")


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def t_no_fds(tmp):
    d, c = ft.start_daemon(tmp, "nofds")
    if d is None:
        return
    R = ft.mkdir_fixture(tmp, "nofds-tree", ["a.txt"])
    ft.add_ready(c, R, "out of fds")
    old = resource.prlimit(d.p.pid, resource.RLIMIT_NOFILE)
    base = nfds(d.p.pid)
    # Room for three more clients; the spare one is already open.
    resource.prlimit(d.p.pid, resource.RLIMIT_NOFILE, (base + 3, old[1]))
    held, answers = [], []
    for i in range(8):
        k = ft.Conn(d.sock)
        held.append(k)
        try:
            k.send({"op": "ping"})
        except OSError:
            pass	# refused and closed before we wrote: read why
        try:
            answers.append(k.read(10))
        except (ft.Closed, TimeoutError, OSError) as e:
            answers.append({"exception": str(e)})
    served = [a for a in answers if a.get("ok") is True]
    refused = [a for a in answers if err_code(a) == "capped" and
               "file descriptors" in ft.err_msg(a)]
    check("out of fds: three more served, the rest refused in words",
          len(served) == 3 and len(refused) == 5,
          [short(a, 120) for a in answers])
    st = stats(c).get("counters", {})
    check("out of fds: each refusal counted (clients_refused_fds)",
          st.get("clients_refused_fds") == 5 and
          st.get("accept_errors", 0) >= 5, short(st))
    for k in held:
        k.close()
    check("out of fds: served again once descriptors are free",
          ft.wait_until(lambda: d.ping() is not None, 10))
    resource.prlimit(d.p.pid, resource.RLIMIT_NOFILE, old)
    r = c.req({"op": "query", "root": R, "q": "a"})
    check("out of fds: the old connection answers queries",
          ft.result_paths(r) == ["a.txt"], short(r))
    ft.stop_daemon(d, c, "out-of-fds daemon")


def vm_size(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def t_address_space(tmp):
    # Long names: ~200 bytes a path, 40,000 files, so the walk needs some
    # 20 MiB it cannot have.
    rels = ["%s/%05d-%s.txt" % ("d%02d" % (i % 50), i, "n" * 170)
            for i in range(40000)]
    R = ft.mkdir_fixture(tmp, "as-tree", rels)
    # One malloc arena: a thread's arena reserves 64 MiB of address space
    # up front and grows inside it without asking the kernel, so with
    # several arenas the walk may fit in space reserved before the limit
    # and never meet it (this check then failed now and then). With one,
    # every growth is a brk or mmap the limit sees.
    d = Daemon(tmp, "aslimit", binary=RELEASE, args=["--walkers", "1",
                                                     "--threads", "1"],
               env_extra={"MALLOC_ARENA_MAX": "1"})
    if not check("address space: fidxd answers", d.wait_ready()):
        return
    c = ft.Conn(d.sock)
    small = ft.mkdir_fixture(tmp, "as-small", ["a.txt"])
    ft.add_ready(c, small, "address space: a small project first")
    old = resource.prlimit(d.p.pid, resource.RLIMIT_AS)
    # Where the limit bites depends on what malloc has reserved already
    # (an arena's 64 MiB count in VmSize before they are used): every
    # request after it must be answered, ok or failed saying why, and one
    # at least must fail.
    resource.prlimit(d.p.pid, resource.RLIMIT_AS,
                     (vm_size(d.p.pid) + (1 << 20), old[1]))
    answers = [c.req({"op": "add", "root": R, "wait": True}, timeout=60),
               c.req({"op": "query", "root": R, "q": "nnn", "limit": 10000},
                     timeout=60),
               c.req({"op": "query", "root": small, "q": "a"}),
               stats(c)]
    for r in answers:
        print("# address space: answered %s" % short(r, 300))

    def reported(r):
        return (r.get("ok") is False and err_code(r) == "no_memory") or \
            (r.get("state") in ("error", "capped") and r.get("message")) or \
            r.get("counters", {}).get("rebuilds_failed", 0) > 0
    check("address space: every request answered, ok or failing in words",
          all(r.get("ok") is True or (err_code(r) and ft.err_msg(r))
              for r in answers), [short(r, 200) for r in answers])
    check("address space: the limit was hit and reported",
          any(reported(r) for r in answers),
          [short(r, 200) for r in answers])
    check("address space: fidxd is alive and answers",
          d.p.poll() is None and d.ping() is not None)
    resource.prlimit(d.p.pid, resource.RLIMIT_AS, old)
    r = c.req({"op": "reindex", "root": R, "wait": True}, timeout=60)
    p = ft.find_project(c, R) or {}
    check("address space: with the limit raised, a reindex builds it all",
          p.get("state") == "ready" and p.get("files") == len(rels),
          short(p))
    r = c.req({"op": "query", "root": small, "q": "a"})
    check("address space: and the small project answers again",
          ft.result_paths(r) == ["a.txt"], short(r))
    ft.stop_daemon(d, c, "address-space daemon")


def t_store_unwritable(tmp):
    mnt = os.path.join(tmp, "smnt")
    os.makedirs(mnt)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700",
                        "fidx-test", mnt], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if p.returncode != 0:
        ft.skip("visit store on a full or read-only file system",
                "cannot mount a tmpfs here (%s); as root a read-only "
                "directory is still writable, so nothing else can stand "
                "in" % p.stdout.decode(errors="replace").strip())
        return
    try:
        store_full_ro(tmp, mnt)
    finally:
        subprocess.run(["umount", "-l", mnt])


def store_full_ro(tmp, mnt):
    store = os.path.join(mnt, "fidx", "visits.json")
    R = ft.mkdir_fixture(tmp, "stree", ["a.txt", "b.txt", "c.txt", "d.txt"])
    d = Daemon(tmp, "store", state=mnt)
    if not check("store: fidxd answers", d.wait_ready()):
        return
    c = ft.Conn(d.sock)
    ft.add_ready(c, R, "store")

    def counters():
        return vstats(c).get("counters", {})
    visit(c, R, "a.txt")
    check("store: the first save done",
          ft.wait_until(lambda: counters().get("saves") == 1, 15))
    old = store_entries(store)
    # Full: a filler takes every block left.
    fd = os.open(os.path.join(mnt, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    visit(c, R, "b.txt")
    check("store full: the save fails and is counted",
          ft.wait_until(lambda: counters().get("save_errors") == 1, 15),
          short(counters()))
    check("store full: the old file stays, whole",
          store_entries(store) == old and old is not None, short(old))
    check("store full: no temporary file left behind",
          sorted(os.listdir(os.path.dirname(store))) == ["visits.json"],
          os.listdir(os.path.dirname(store)))
    check("store full: the log says why",
          "cannot save visits" in d.stderr() and
          "No space left" in d.stderr(), d.stderr()[-1500:])
    os.unlink(os.path.join(mnt, "filler"))
    visit(c, R, "c.txt")
    check("store freed: the next save writes every visit",
          ft.wait_until(lambda: counters().get("saves") == 2, 15) and
          [e.get("path") for e in store_entries(store) or []] ==
          ["a.txt", "b.txt", "c.txt"], short(store_entries(store) or []))
    old = store_entries(store)
    p = subprocess.run(["mount", "-o", "remount,ro", mnt],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if not check("store read-only: remounted ro", p.returncode == 0,
                 p.stdout):
        ft.stop_daemon(d, c, "store daemon")
        return
    visit(c, R, "d.txt")
    check("store read-only: the save fails and is counted",
          ft.wait_until(lambda: counters().get("save_errors") == 2, 15),
          short(counters()))
    check("store read-only: the old file stays, whole",
          store_entries(store) == old, short(store_entries(store)))
    check("store read-only: the log says why",
          "Read-only file system" in d.stderr(), d.stderr()[-1500:])
    r = c.req({"op": "query", "root": R, "q": "txt"})
    check("store read-only: queries still answer, visits ranked",
          r.get("ok") is True and len(ft.result_paths(r)) == 4, short(r))
    subprocess.run(["mount", "-o", "remount,rw", mnt])
    ft.stop_daemon(d, c, "store daemon")
    check("store: the exit's save writes the visit it could not",
          [e.get("path") for e in store_entries(store) or []] ==
          ["a.txt", "b.txt", "c.txt", "d.txt"],
          short(store_entries(store) or []))


if __name__ == "__main__":
    sys.exit(ft.main("daemon_faults.py", [
        ("accept ENOMEM", t_accept_enomem), ("no inotify", t_no_inotify),
        ("kill -9 mid-rebuild", t_kill_mid_rebuild),
        ("kill -9 mid-save", t_kill_mid_save), ("out of fds", t_no_fds),
        ("address space", t_address_space),
        ("visit store full, read-only", t_store_unwritable)]))
