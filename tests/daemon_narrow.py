#!/usr/bin/env python3
"""tests/daemon_narrow.py - narrowing: a picker's keystroke scores only the
last query's candidate set, and answers exactly what a full scan does.

A connection sending queries with "supersede":true keeps the candidate
set of its last finished query (README, "Narrowing"); the next query, if
its every match provably lies inside that set, scores only it. What
must hold: the answer is the one a full scan gives, exactly: the same
results in the same order, scores, typo flags, positions, matched and
regex_errors. So each query is typed on a narrowing connection
(supersede, one keystroke after the other) and asked again on a second
connection without supersede (which never narrows), and the two answers
are compared whole (elapsed_us aside).

The queries are seeded random keystroke sequences typed towards names of
a generated tree: prefixes and abbreviations of real names, with spaces
(several terms), `!`, `^`, `$`, `'`, `|`, upper case (smart case), typos
(a swap, a byte left out, one too many), backspaces, non-ASCII, and whole
sequences in exact and regex modes and at each typo setting, on a small
tree and on one scored on two threads (past SEARCH_SPLIT_MIN, where the
last answer's best paths give the scan its first floor). Checks
that narrowing did happen (counters), that a changed index frees the
set kept for the old one (never narrowed from), that the caps keep nothing over them
(over_cap) and that a closed connection's set is freed. SEED=N picks
another sequence; N_SEQ its length. No timed assertion.
"""

import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the tree
import fidxtest as t  # noqa: E402  (Conn, Daemon, check)

SEED = int(os.environ.get("SEED", "20261202"))
N_SEQ = int(os.environ.get("N_SEQ", "90"))

WORDS = ["std", "stdlib", "string", "strings", "config", "conf", "main",
         "util", "utils", "parse", "parser", "lexer", "make", "file",
         "readme", "license", "test", "spec", "index", "search", "query",
         "typo", "match", "fold", "server", "client", "loop", "watch",
         "walk", "git", "cache", "change", "log", "sock", "path", "proto",
         "ops", "script", "symbol", "warnings", "resume", "arger", "mkfs",
         "doc", "docs", "lib", "bin", "share", "include", "src"]
EXTS = [".c", ".h", ".py", ".md", ".txt", "", ".json", ".rs", ".so.1"]
SEPS = ["", "_", "-", "."]
EXTRA = ["sdtlib.h", "stlib.c", "licnese", "LICENSE", "Makefile",
         "README.md", "scirpt.sh", "résumé.txt", "Ärger.md", "ÄRGER.c",
         "std lib.c", "a|b.txt", "x!y.c", "caf\u00e9/menu.md",
         "KELVIN\u212a.txt", "dollar$.txt", "^caret.c", "'quote.h"]


def case(rng, w):
    k = rng.random()
    if k < 0.6:
        return w
    if k < 0.85:
        return w[:1].upper() + w[1:]
    return w.upper()


def make_tree(rng, n):
    rels = set(EXTRA)
    while len(rels) < n:
        dirs = [case(rng, rng.choice(WORDS))
                for _ in range(rng.randrange(0, 4))]
        name = rng.choice(SEPS).join(case(rng, rng.choice(WORDS))
                                     for _ in range(rng.randrange(1, 4)))
        rels.add("/".join(dirs + [name + rng.choice(EXTS)]))
    # A name that is also a directory of another stays a directory.
    dirs = {r.rsplit("/", 1)[0] for r in rels if "/" in r}
    dirs = {d[:i] for d in dirs for i in range(len(d) + 1)
            if i == len(d) or d[i] == "/"}
    return sorted(r for r in rels if r not in dirs)


def abbreviate(rng, s):
    """A prefix of s, or a subsequence that keeps its first byte."""
    if not s:
        return "x"
    if rng.random() < 0.6:
        return s[:rng.randrange(1, len(s) + 1)]
    keep = [s[0]] + [c for c in s[1:] if rng.random() < 0.5]
    return "".join(keep)


def typo(rng, s):
    if len(s) < 3:
        return s
    i = rng.randrange(1, len(s) - 1)
    k = rng.random()
    if k < 0.4:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    if k < 0.7:
        return s[:i] + s[i + 1:]
    return s[:i] + rng.choice("aeioustx") + s[i:]


def term_for(rng, rel):
    parts = rel.split("/")
    base = parts[-1]
    src = base if rng.random() < 0.75 or len(parts) == 1 else \
        rng.choice(parts[:-1])
    w = abbreviate(rng, src)
    if rng.random() < 0.7:
        w = w.lower()
    if rng.random() < 0.25:
        w = typo(rng, w)
    k = rng.random()
    if k < 0.08:
        w = "^" + (rel[:rng.randrange(1, len(rel) + 1)])
    elif k < 0.16:
        w = "'" + w
    elif k < 0.22:
        w = "!" + w
    if rng.random() < 0.1:
        w = w + "$"
    return w.replace(" ", "\\ ")


def target_query(rng, rels):
    rel = rng.choice(rels)
    q = term_for(rng, rel)
    r = rng.random()
    if r < 0.35:
        q += " " + term_for(rng, rng.choice(rels) if rng.random() < 0.3
                            else rel)
    if r < 0.12:
        q += " " + term_for(rng, rel)
    if rng.random() < 0.08:
        q += " | " + term_for(rng, rng.choice(rels))
    if rng.random() < 0.08:
        q += " !" + rng.choice(WORDS)[:rng.randrange(1, 4)]
    if rng.random() < 0.05:
        q = q[:1].upper() + q[1:]
    return q


def mutate(rng, s):
    """The box after an edit away from its end (the cursor moved): a byte
    put in, taken out or changed in case, anywhere."""
    i = rng.randrange(0, len(s) + 1)
    k = rng.random()
    if k < 0.4:
        return s[:i] + rng.choice("sStTdD _.!^$'|x") + s[i:]
    if k < 0.7 and i < len(s):
        return s[:i] + s[i + 1:]
    if i < len(s):
        return s[:i] + s[i].swapcase() + s[i + 1:]
    return s


def keystrokes(rng, q):
    """Each state of the box typing q, with a backspace now and then, and
    now and then an edit elsewhere in it."""
    out, cur = [], ""
    for ch in q:
        cur += ch
        out.append(cur)
        if rng.random() < 0.06 and len(cur) > 1:
            for _ in range(rng.randrange(1, min(3, len(cur)) + 1)):
                cur = cur[:-1]
                out.append(cur)
            # and typed again
        if rng.random() < 0.06 and cur:
            cur = mutate(rng, cur)
            out.append(cur)
    if not q.startswith(cur):
        return [x for x in out if x]
    for ch in q[len(cur):]:
        cur += ch
        out.append(cur)
    return [s for s in out if s]


def strip(r):
    r = dict(r)
    r.pop("elapsed_us", None)
    r.pop("id", None)
    return r


def first_diff(a, b):
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            if k == "results":
                ra, rb = a.get(k) or [], b.get(k) or []
                for i in range(max(len(ra), len(rb))):
                    x = ra[i] if i < len(ra) else None
                    y = rb[i] if i < len(rb) else None
                    if x != y:
                        return "results[%d] (of %d/%d): narrowed %s, " \
                               "full %s" % (i, len(ra), len(rb), x, y)
            return "%s: narrowed %s, full %s" % (k, t.short(a.get(k), 200),
                                                  t.short(b.get(k), 200))
    return ""


def narrow_stats(c):
    return c.req({"op": "stats"}).get("narrow", {})


def compare_sequences(c_n, c_f, root, rng, rels, nseq, what, bad):
    """Types nseq random sequences on c_n (supersede) and c_f (a full
    scan each); counts into bad[0] the answers that differ, the first
    few described in bad[1]."""
    asked = 0
    for _ in range(nseq):
        mode = rng.choices(["fuzzy", "exact", "regex"], [85, 12, 3])[0]
        opts = {"mode": mode, "typos": rng.choice([2, 2, 2, 1, 0]),
                "limit": rng.choice([5, 20, 50, 300]),
                "positions": rng.random() < 0.7}
        for q in keystrokes(rng, target_query(rng, rels)):
            req = dict({"op": "query", "root": root, "q": q}, **opts)
            a = c_n.req(dict(req, supersede=True))
            b = c_f.req(req)
            asked += 1
            if a.get("ok") is not True and b.get("ok") is not True:
                if t.err_code(a) == t.err_code(b):
                    continue
            if strip(a) != strip(b):
                bad[0] += 1
                if len(bad[1]) < 5:
                    bad[1].append("%s: %r (%s): %s" % (
                        what, q, opts, first_diff(strip(a), strip(b))))
    return asked


def t_exact(tmp):
    rng = random.Random(SEED)
    rels = make_tree(rng, 4000)
    root = t.mkdir_fixture(tmp, "narrow-tree", rels)
    d, c = t.start_daemon(tmp, "narrow", ["--inline-max-files", "0"])
    if d is None:
        return
    t.add_ready(c, root, "narrow")
    full = t.Conn(d.sock)
    bad = [0, []]
    asked = compare_sequences(c, full, root, rng, rels, N_SEQ, "narrowing",
                              bad)
    t.check("%d keystrokes narrowed answer as a full scan does, exactly "
            "(seed %d)" % (asked, SEED), bad[0] == 0,
            "%d differ; %s" % (bad[0], "\n".join(bad[1])))
    st = narrow_stats(full)
    cn = st.get("counters", {})
    t.check("narrowing happened: most keystrokes narrowed (%s)" % cn,
            cn.get("narrowed", 0) > asked // 3, t.short(st))
    t.check("some keystrokes were refused (a backspace, a new term that "
            "widens, a regex)", cn.get("refused_query", 0) > 0 and
            cn.get("not_kept", 0) > 0, t.short(st))
    t.check("the non-supersede connection never narrowed: narrowed + full "
            "= the supersede queries", cn.get("narrowed", 0) +
            cn.get("full", 0) == asked, "%s, asked %d" % (cn, asked))
    t.check("one set held (the picker's), charged to usage",
            st.get("usage", {}).get("sets") == 1 and
            0 < st.get("usage", {}).get("bytes", 0) <=
            st.get("limits", {}).get("bytes", 0), t.short(st))

    # A changed index: the set kept speaks of the old one.
    req = {"op": "query", "root": root, "q": "stdl", "supersede": True}
    c.req(dict(req, q="std"))
    t.mkfiles(root, ["new/stdlib_new.h"])
    r = c.req({"op": "sync", "root": root}, timeout=30)
    t.check("sync after a new file", r.get("ok") is True, t.short(r))
    st = narrow_stats(full)
    t.check("the index changed: the set kept for the old one is freed",
            st.get("usage", {}).get("sets") == 0 and
            st.get("usage", {}).get("bytes") == 0, t.short(st))
    before = st.get("counters", {})
    a = c.req(req)
    b = full.req(dict(req, supersede=False))
    after = narrow_stats(full).get("counters", {})
    t.check("after the index changed: scored whole, and the answer has "
            "the new file", after.get("full", 0) == before.get("full", 0) + 1
            and after.get("narrowed") == before.get("narrowed") and
            strip(a) == strip(b) and "new/stdlib_new.h" in
            t.result_paths(a), "%s -> %s; %s" % (before, after,
                                                 first_diff(strip(a),
                                                            strip(b))))
    c.close()
    t.check("the connection closed: its set is freed",
            t.wait_until(lambda: narrow_stats(full).get("usage", {}).get(
                "sets") == 0, 10), t.short(narrow_stats(full)))
    t.stop_daemon(d, full, "narrow daemon")


def t_split(tmp):
    """A tree past SEARCH_SPLIT_MIN (16,384) files: scored on two
    threads, chunk by chunk, sharing a floor, which the last answer's best
    paths start (search_narrow.top)."""
    rng = random.Random(SEED + 3)
    rels = make_tree(rng, 17500)
    root = t.mkdir_fixture(tmp, "split-tree", rels)
    d, c = t.start_daemon(tmp, "split", ["--inline-max-files", "0",
                                         "--threads", "2"])
    if d is None:
        return
    t.add_ready(c, root, "split")
    full = t.Conn(d.sock)
    bad = [0, []]
    asked = compare_sequences(c, full, root, rng, rels, max(N_SEQ // 3, 1),
                              "split", bad)
    cn = narrow_stats(full).get("counters", {})
    t.check("%d keystrokes on %d files, two threads: narrowed answers as "
            "a full scan, exactly (%s)" % (asked, len(rels), cn),
            bad[0] == 0 and cn.get("narrowed", 0) > asked // 3,
            "%d differ; %s" % (bad[0], "\n".join(bad[1])))
    c.close()
    t.stop_daemon(d, full, "split daemon")


# (old, new): each pair typed in turn on the narrowing connection; most
# must be refused, and each answers as a full scan does whatever it is.
PAIRS = [
    ("tdl", "stdl"), ("dtlib", "sdtlib"), ("icnese", "licnese"),
    ("cnese", "licnese"), ("F", "f"), ("LIC", "lic"), ("Lic", "lic"),
    ("LICENS", "licens"), ("std", "Std"), ("std", "stD"), ("lic", "Licnese"),
    ("ab$", "ab$x"), ("lib$", "lib$c"), ("^std", "^stdx"), ("!x", "!xy"),
    ("std !l", "std !li"), ("std", "std lib"), ("std lib", "std | lib"),
    ("std", "std |"), ("std |", "std | lib"), ("stdl", "^stdl"),
    ("'std", "std"), ("std", "'std"), ("std", "std$"), ("std$", "std"),
    ("a", "a/"), ("lib/", "lib/x"), ("resum", "résum"), ("r", "ré"),
    ("std", "s.td"), ("lic", "lic\\ e"), ("l", "lI"), ("li", "lic|"),
    ("stD", "std"), ("liB", "lib"), ("sTd", "std x"), ("coNF", "conf"),
]


def t_pairs(tmp):
    rng = random.Random(SEED + 2)
    rels = make_tree(rng, 1500)
    root = t.mkdir_fixture(tmp, "pair-tree", rels)
    d, c = t.start_daemon(tmp, "pairs", ["--inline-max-files", "0"])
    if d is None:
        return
    t.add_ready(c, root, "pairs")
    full = t.Conn(d.sock)
    bad = []
    for old, new in PAIRS:
        for typos in (2, 0):
            for q in (old, new):
                req = {"op": "query", "root": root, "q": q, "limit": 50,
                       "typos": typos, "positions": True}
                a = strip(c.req(dict(req, supersede=True)))
                b = strip(full.req(req))
                if a != b:
                    bad.append("%r after %r: %s" % (new, old,
                                                     first_diff(a, b)))
    t.check("%d crafted pairs (a first byte, case, anchors, negation, OR, "
            "'/', non-ASCII) answer as a full scan" % len(PAIRS), not bad,
            "\n".join(bad[:5]))
    c.close()
    t.stop_daemon(d, full, "pairs daemon")


def t_caps(tmp):
    rng = random.Random(SEED + 1)
    rels = make_tree(rng, 1500)
    root = t.mkdir_fixture(tmp, "cap-tree", rels)
    for args, what in ((["--max-narrow-bytes", "64"], "per connection"),
                       (["--max-narrow-total-bytes", "64"], "in all"),
                       (["--max-narrow-bytes", "0"], "off")):
        d, c = t.start_daemon(tmp, "cap", ["--inline-max-files", "0"] +
                              args)
        if d is None:
            return
        t.add_ready(c, root, "cap " + what)
        full = t.Conn(d.sock)
        bad = [0, []]
        asked = compare_sequences(c, full, root, rng, rels, 6, what, bad)
        st = narrow_stats(full)
        cn = st.get("counters", {})
        t.check("cap %s (%s): %d keystrokes answered as a full scan, none "
                "narrowed, nothing kept" % (what, " ".join(args), asked),
                bad[0] == 0 and cn.get("narrowed") == 0 and
                st.get("usage", {}).get("sets") == 0 and
                st.get("usage", {}).get("bytes") == 0,
                "%s; %s" % (t.short(st), "\n".join(bad[1])))
        if what != "off":
            t.check("cap %s: counted over_cap" % what,
                    cn.get("over_cap", 0) > 0, t.short(st))
        else:
            t.check("narrowing off: nothing counted",
                    cn.get("full", 0) == 0 and cn.get("over_cap", 0) == 0,
                    t.short(st))
        c.close()
        t.stop_daemon(d, full, "cap daemon (%s)" % what)


if __name__ == "__main__":
    sys.exit(t.main("daemon_narrow.py", [("exact answers", t_exact),
                                         ("crafted pairs", t_pairs),
                                         ("two threads", t_split),
                                         ("caps", t_caps)]))
