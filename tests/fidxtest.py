"""tests/fidxtest.py - the shared client library of the daemon tests.

An independent client of fidxd's newline-delimited JSON protocol (README,
"The daemon protocol"; indexer/ops.c has the field names), and what every
test file around it needs, so that each file (tests/daemon_*.py,
readme.py, limits.py) runs alone, in its own process, under tests/run.sh's
timeout or by hand:

    FIDX_BUILD=build/asan python3 tests/daemon_queries.py

Owns: the check counters and the summary line with the exit status; Conn
(one connection, lines with deadlines, ids checked); Daemon (a foreground
fidxd on its own socket, stderr kept in a file); the private temp dir and
the cleanup that stops every daemon a file started and removes that dir on
any exit, SIGTERM from run.sh's timeout included.
FIDX_DAEMON_WRAP (make valgrind sets it): a command line, split on
blanks, put before every fidxd this library starts from FIDX_BUILD
(`valgrind --leak-check=full ...`); each such daemon's tool log goes to
tmp/NAME.wrap.log (the wrapper's --log-file=%s is filled in), the
daemon is stopped with SIGTERM instead of the shutdown request, and one
still running at the end is sent SIGTERM too; each must exit 0 (the
wrapper's --error-exitcode says otherwise) and its log is printed when
it does not. FIDX_WAIT_SCALE multiplies the time a daemon gets to start
and to exit (a wrapped one is slow).
Never touches: the user's own socket, state or visit store (XDG_STATE_HOME
points into the temp dir), anything outside the temp dir.

The rules of the suite: every check can fail and says why when it does;
nothing sleeps and hopes, every wait polls a condition until it holds or
a deadline passes (wait_until); a daemon's stderr is searched for
sanitizer reports once it has exited (check_clean_stderr). Python 3
standard library only.

A test file is a list of sections, each a function of the temp dir:

    import sys
    sys.dont_write_bytecode = True  # no __pycache__ in the tree
    import fidxtest as ft

    def t_ping(tmp):
        d, c = ft.start_daemon(tmp, "ping")
        if d is None:
            return
        ft.check("ping answers ok", c.req({"op": "ping"}).get("ok") is True)
        ft.stop_daemon(d, c, "ping daemon")

    if __name__ == "__main__":
        sys.exit(ft.main("daemon_ping.py", [("ping", t_ping)]))
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

BUILD = os.environ.get("FIDX_BUILD", "build/asan")
FIDXD = os.path.abspath(os.path.join(BUILD, "fidxd"))
FIDX = os.path.abspath(os.path.join(BUILD, "fidx"))

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "LeakSanitizer",
                   "runtime error")
WRAP = os.environ.get("FIDX_DAEMON_WRAP", "").split()
WAIT_SCALE = float(os.environ.get("FIDX_WAIT_SCALE", "1"))

passed = 0
failed = 0
skipped = 0
failed_names = []


# ---------------------------------------------------------------- checks

def check(name, cond, detail=""):
    """One named check; returns cond so callers can chain."""
    global passed, failed
    if cond:
        passed += 1
        print("ok - " + name, flush=True)
    else:
        failed += 1
        failed_names.append(name)
        msg = "not ok - " + name
        if detail:
            msg += ": " + str(detail)[:1500]
        print(msg, flush=True)
    return bool(cond)


def skip(name, why):
    """A check this machine cannot make (say why); counted, never passed."""
    global skipped
    skipped += 1
    print("skip - %s: %s" % (name, why), flush=True)


def short(obj, n=400):
    s = obj if isinstance(obj, str) else json.dumps(obj)
    return s if len(s) <= n else s[:n] + "...(%d bytes)" % len(s)


def wait_until(pred, timeout, step=0.02):
    """Polls pred() until it is truthy or timeout passes; returns its last
    value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def section(name, fn, *args):
    """Runs one section; an exception is a failed check, not an abort."""
    try:
        return fn(*args)
    except Exception as e:
        check("%s: ran without an exception" % name, False,
              "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc()))
        return None


# ---------------------------------------------------------------- clients

class Closed(Exception):
    pass


class Conn:
    """One client connection: lines out, lines in, with deadlines."""

    next_id = 1000
    sent_ids = 0
    id_mismatches = []

    def __init__(self, path, timeout=10.0, euid=None):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        if euid is None:
            self.s.connect(path)
        else:
            # The kernel keeps the connecting credentials (SO_PEERCRED):
            # a root test becomes euid for the connect only.
            os.seteuid(euid)
            try:
                self.s.connect(path)
            finally:
                os.seteuid(0)
        self.buf = b""

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def send_raw(self, data):
        self.s.settimeout(10.0)
        self.s.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def recv_line(self, timeout=15.0):
        """The next line (bytes, without '\\n'). Raises Closed on EOF or
        reset, TimeoutError when nothing complete came in time."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete line in %.1fs (have %d "
                                   "bytes)" % (timeout, len(self.buf)))
            self.s.settimeout(left)
            try:
                data = self.s.recv(1 << 16)
            except socket.timeout:
                continue
            except ConnectionResetError:
                raise Closed("reset")
            if not data:
                raise Closed("eof")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def read(self, timeout=15.0):
        return json.loads(self.recv_line(timeout))

    def req(self, obj, timeout=15.0):
        """Sends obj (with an id of our own unless it has one) and returns
        the answer; a wrong echoed id is remembered for check_ids_echoed."""
        obj = dict(obj)
        if "id" not in obj:
            Conn.next_id += 1
            obj["id"] = Conn.next_id
        self.send(obj)
        r = self.read(timeout)
        Conn.sent_ids += 1
        if r.get("id") != obj["id"]:
            Conn.id_mismatches.append((obj, r))
        return r

    def wait_closed(self, timeout=10.0):
        """Reads until the daemon closes; returns ("eof"|"reset"|"open",
        lines read meanwhile)."""
        lines = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                lines.append(self.recv_line(max(0.0, deadline -
                                                time.monotonic())))
            except Closed as e:
                return str(e), lines
            except TimeoutError:
                return "open", lines


def check_ids_echoed():
    """One check over every Conn.req of this process: each answer carried
    its request's id."""
    check("every response echoed its request's id (%d requests)" %
          Conn.sent_ids, not Conn.id_mismatches,
          [(short(a, 120), short(b, 200)) for a, b in
           Conn.id_mismatches[:3]])


def err_code(r):
    if not isinstance(r, dict) or r.get("ok") is not False:
        return None
    return (r.get("error") or {}).get("code")


def err_msg(r):
    return ((r or {}).get("error") or {}).get("message", "")


# ---------------------------------------------------------------- daemons

running = []
background_pids = []	# daemons that left us: stopped by pid if still up


def daemon_env():
    env = dict(os.environ)
    asan = env.get("ASAN_OPTIONS", "")
    if "detect_leaks=" not in asan:
        asan = (asan + ":" if asan else "") + "detect_leaks=1"
    env["ASAN_OPTIONS"] = asan
    return env


class Daemon:
    """fidxd --foreground on tmp/NAME.sock (or sock), stderr and stdout in
    tmp/NAME.stderr; stopped by cleanup() if still running. wrapper: a
    command that execs the rest in the same process (setpriv), so the
    pid a ping answers is still ours."""

    def __init__(self, tmp, name, args=(), sock=None, state=None,
                 binary=None, env_extra=None, wrapper=()):
        self.name = name
        # A daemon run as another user serves only that user's peers:
        # its pings connect with that effective uid (see Conn).
        self.peer_euid = None
        env = daemon_env()
        if state is not None:
            env["XDG_STATE_HOME"] = state
        env.update(env_extra or {})
        self.sock = sock or os.path.join(tmp, name + ".sock")
        self.errpath = os.path.join(tmp, name + ".stderr")
        self.errf = open(self.errpath, "wb")
        # Only our own build is wrapped: a release binary with an
        # LD_PRELOAD shim (daemon_faults.py) is run as it is.
        self.wrap_log = None
        prefix = []
        if WRAP and binary is None and not wrapper:
            self.wrap_log = os.path.join(tmp, name + ".wrap.log")
            prefix = [w.replace("%s", self.wrap_log) for w in WRAP]
        self.p = subprocess.Popen(
            list(wrapper) + prefix +
            [binary or FIDXD, "--foreground", "--socket", self.sock] +
            list(args),
            stdin=subprocess.DEVNULL, stdout=self.errf, stderr=self.errf,
            env=env)
        running.append(self)

    def wrap_report(self, rc):
        """A check that a wrapped daemon's tool found nothing (exit 0);
        its log printed when it did."""
        if self.wrap_log is None:
            return
        try:
            with open(self.wrap_log, errors="replace") as f:
                text = f.read()
        except OSError as e:
            text = str(e)
        ok = check("%s daemon: %s found nothing (exit %r)" % (
            self.name, os.path.basename(WRAP[0]), rc), rc == 0,
            "exit %r" % rc)
        if not ok:
            print(text[-20000:])
        self.wrap_log = None

    def ping(self):
        try:
            c = Conn(self.sock, timeout=2, euid=self.peer_euid)
        except OSError:
            return None
        try:
            return c.req({"op": "ping"}, timeout=2)
        except (OSError, Closed, TimeoutError, ValueError):
            return None
        finally:
            c.close()

    def wait_ready(self, timeout=15.0):
        """True once it answers a ping with its own pid."""
        timeout *= WAIT_SCALE
        def up():
            if self.p.poll() is not None:
                return "dead"
            r = self.ping()
            return r is not None and r.get("pid") == self.p.pid
        return wait_until(up, timeout, 0.05) is True

    def wait_exit(self, timeout=20.0):
        try:
            rc = self.p.wait(timeout * WAIT_SCALE)
        except subprocess.TimeoutExpired:
            return None
        self.wrap_report(rc)
        return rc

    def stderr(self):
        self.errf.flush()
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def stop_at_end(self):
        """cleanup()'s stop: SIGKILL, but a wrapped daemon gets SIGTERM
        first, so that its tool sees a clean exit and says what it
        found (a check)."""
        if self.p.poll() is None and self.wrap_log is not None:
            self.p.terminate()
            if self.wait_exit(60) is not None:
                return
        self.kill()


def sanitizer_reports(text):
    """The sanitizer marks found in text (a stderr or a log)."""
    return [m for m in SANITIZER_MARKS if m in text]


def check_clean_stderr(d, what):
    text = d.stderr()
    bad = sanitizer_reports(text)
    check("%s: no sanitizer report on stderr" % what, not bad,
          "found %s; stderr:\n%s" % (bad, text[-3000:]))


def start_daemon(tmp, name, args=()):
    """A Daemon NAME and a connection to it, once it answers a ping (a
    check); (None, None) if it does not."""
    d = Daemon(tmp, name, args)
    if not check("%s daemon: answers a ping" % name, d.wait_ready()):
        print(d.stderr())
        return None, None
    return d, Conn(d.sock)


def stop_daemon(d, c, what):
    """Asks d to shut down on c (a wrapped daemon: SIGTERM), and checks
    that it answers, exits 0, removes its socket file and left no
    sanitizer report."""
    if d.wrap_log is not None:
        d.p.terminate()
    else:
        try:
            r = c.req({"op": "shutdown"})
        except (Closed, TimeoutError, OSError) as e:
            r = {"exception": str(e)}
        check("%s: shutdown answered ok" % what, r.get("ok") is True,
              short(r))
    rc = d.wait_exit(20)
    check("%s exits 0 after %s" % (what, "shutdown" if d.wrap_log is None
                                   and not WRAP else "SIGTERM"), rc == 0,
          "exit %r" % rc)
    c.close()
    check("%s: socket file removed on exit" % what,
          not os.path.exists(d.sock))
    check_clean_stderr(d, what)


def threads_stopped(pid):
    """True when every thread of pid is stopped (state T)."""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
        for t in tids:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                if f.read().split(") ")[-1][:1] != "T":
                    return False
        return bool(tids)
    except OSError:
        return False


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[-1][:1] not in ("Z", "X")
    except OSError:
        return False


# ---------------------------------------------------------------- fixtures

def mkfiles(root, rels, content=b"x\n"):
    """The files rels under root, each holding content."""
    made = set()	# one makedirs per directory: fixtures have thousands
    for rel in rels:
        path = os.path.join(root, rel)
        parent = os.path.dirname(path)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, content)
        finally:
            os.close(fd)


def mkdir_fixture(tmp, name, rels):
    """tmp/NAME holding the files rels (each "x\\n"); its real path."""
    root = os.path.join(tmp, name)
    os.makedirs(root)
    mkfiles(root, rels)
    return os.path.realpath(root)


# The main fixture project: most sections query it.
MAIN_FILES = [
    "Dockerfile", "Makefile", "README.md", "src/main.c", "src/util.c",
    "src/util.h", "src/lib/parse.c", "docs/guide.md", "tests/test_main.py",
]


# ---------------------------------------------------------------- results

def result_paths(r):
    return [x.get("path") for x in (r.get("results") or [])]


def result_bytes(x):
    if "path_b64" in x:
        return base64.b64decode(x["path_b64"])
    return x["path"].encode("utf-8")


def positions_point_at(r, q, exact=False):
    """Every result's positions are byte offsets of q's letters (smart
    case: q here is lower-case). Returns an error string or ""."""
    ql = q.lower().encode()
    for x in r.get("results") or []:
        p = result_bytes(x)
        pos = x.get("positions")
        if not isinstance(pos, list) or len(pos) != len(ql):
            return "%s: positions %r for %r" % (x.get("path"), pos, q)
        if pos != sorted(pos) or len(set(pos)) != len(pos):
            return "%s: positions not increasing %r" % (x.get("path"), pos)
        for i, off in enumerate(pos):
            if not (0 <= off < len(p)) or p[off:off + 1].lower() != \
                    ql[i:i + 1]:
                return "%s: position %d (%r) is not %r" % (
                    x.get("path"), off, p[off:off + 1], ql[i:i + 1])
        if exact and pos != list(range(pos[0], pos[0] + len(ql))):
            return "%s: exact positions not contiguous %r" % (
                x.get("path"), pos)
    return ""


def add_ready(c, root, what, **opts):
    """add root (with opts) and wait; checks that it is ready; returns
    the answer."""
    r = c.req(dict({"op": "add", "root": root, "wait": True}, **opts),
              timeout=20)
    check("%s: add %s: ready" % (what, os.path.basename(root)),
          r.get("ok") is True and r.get("state") == "ready", short(r))
    return r


def find_project(c, root):
    r = c.req({"op": "projects"})
    for p in r.get("projects") or []:
        if p.get("root") == root:
            return p
    return None


def stats(c):
    return c.req({"op": "stats"})


# ---------------------------------------------------------------- running

def _on_signal(signum, frame):
    # SystemExit unwinds through main()'s finally, so a file stopped by
    # run.sh's timeout (SIGTERM) still stops its daemons.
    sys.exit(128 + signum)


def setup(name):
    """A private temp dir (0700) for one test file; visit stores and logs
    go under it, never into the user's own. Pair with cleanup()."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _on_signal)
    tmp = tempfile.mkdtemp(prefix="fidx-%s." % name.split(".")[0])
    os.chmod(tmp, 0o700)
    os.environ["XDG_STATE_HOME"] = os.path.join(tmp, "state")
    return tmp


def cleanup(tmp):
    """Stops every daemon this process started (foreground ones and the
    background pids it learned) and removes tmp, whatever mode a test left
    its directories in."""
    for d in running:
        d.stop_at_end()
        d.errf.close()
    for pid in background_pids:
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    for dirpath, dirnames, _ in os.walk(tmp):
        for dn in dirnames:
            p = os.path.join(dirpath, dn)
            if not os.path.islink(p):
                try:
                    os.chmod(p, 0o700)
                except OSError:
                    pass
    shutil.rmtree(tmp, ignore_errors=True)


def summary(name):
    """Prints NAME: N passed, N failed, N skipped (and the failed checks);
    returns the exit status: 1 if any check failed, else 0."""
    print("%s: %d passed, %d failed, %d skipped" %
          (name, passed, failed, skipped))
    if failed:
        print("failed checks:")
        for n in failed_names:
            print("  " + n)
    return 1 if failed else 0


def main(name, sections):
    """Runs sections, a list of (title, fn), each fn(tmp) in one private
    temp dir, timing each; cleans up on any exit; returns the exit status
    (2 if fidxd is not built)."""
    if not os.access(FIDXD, os.X_OK):
        print("%s: no %s; build it first (make test-build)" % (name, FIDXD),
              file=sys.stderr)
        return 2
    t_start = time.monotonic()
    tmp = setup(name)
    try:
        for title, fn in sections:
            t0 = time.monotonic()
            section(title, fn, tmp)
            print("# %s: %.2fs" % (title, time.monotonic() - t0), flush=True)
    finally:
        cleanup(tmp)
    print("# total %.2fs" % (time.monotonic() - t_start))
    return summary(name)
