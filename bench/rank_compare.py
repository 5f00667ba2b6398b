#!/usr/bin/env python3
"""Ranking quality of `fidx filter` vs fzf and fzy on labelled queries (stdlib only).

Normally called by bench/rank.sh, which builds the path lists first.

Input: one query file per part of the set (--queries tuning=FILE
--queries held-out=FILE; each line: list, class, query, intended regex,
note) and one path list per list name (--list fs=FILE --list src=FILE).
The parts are scored separately and together: the held-out part
(bench/rank_heldout.tsv) is the one ranking rules were not tuned on.

Validation, before anything runs: a query is dropped, and listed in the
report, if its regex does not compile, if its list was not given, if its
intended regex matches no path of its list, or (class no-match) if every
term's letters occur in order, ignoring case, in one path of the list - then
it is not a no-match query for a fuzzy finder. Drops are not silent: the
report opens with a warning that counts them per part and reason (a list
not given names the list), stderr says the same, and a table lists each.
--check stops after validation: every query with the paths its regex
matches, exit status 1 if any query is dropped.

Pass 1, ranking: every tool runs once per query with the list on stdin and
its output captured:
    fidx filter --limit 100 QUERY     fzf --filter QUERY     fzy -e QUERY
(plus `fidx filter --limit 100 --typos=0 QUERY` when --typos is given). The
rank is the 1-based position of the first of the first 100 output lines that
the intended regex matches (re.search); beyond 100 or absent is a miss.
Reciprocal rank = 1/rank (0 for a miss); hit@10 = rank <= 10. For no-match
queries both scores are 1 if the tool prints nothing, else 0. MRR is the mean
reciprocal rank over the queries of a class, of a list, or of all.

Pass 2, timing: REPS repetitions; in each, every query runs once per tool,
tools back to back in an order rotating per repetition, stdout to /dev/null
(wall time: start-up + reading the list + matching + output). Per query the
median over repetitions; per list and tool the median (and the sum) of those.

Exit status: 0 ok, 1 a tool failed (exit status other than 0/1, or timeout)
or, with --check, a query was dropped, 2 bad input.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

CLASSES = ("short", "abbreviation", "path-fragment", "typo", "exact-name",
           "long", "no-match", "multi-term")
MAIN_TOOLS = ("fidx", "fzf", "fzy")
TYPO_OFF = "fidx --typos=0"


def die(msg, status=2):
    print("rank_compare: " + msg, file=sys.stderr)
    sys.exit(status)


class Query:
    def __init__(self, lineno, lst, cls, text, intended, note, part=""):
        self.lineno, self.list, self.cls = lineno, lst, cls
        self.part = part        # the query file's name in --queries NAME=FILE
        self.text, self.intended, self.note = text, intended, note
        self.rx = None          # compiled intended regex (None: no-match)
        self.in_list = 0        # paths of the list the regex matches
        self.rank = {}          # tool -> rank (int) or None (miss)
        self.nout = {}          # tool -> output lines
        self.top = {}           # tool -> first output line or None
        self.times = {}         # tool -> [seconds]

    @property
    def nomatch(self):
        return self.cls == "no-match"

    def rr(self, tool):
        if self.nomatch:
            return 1.0 if self.nout[tool] == 0 else 0.0
        r = self.rank[tool]
        return 1.0 / r if r else 0.0

    def hit10(self, tool):
        if self.nomatch:
            return self.nout[tool] == 0
        r = self.rank[tool]
        return r is not None and r <= 10


def read_queries(path, part=""):
    queries = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) == 4:
                cols.append("")
            if len(cols) != 5:
                die(f"{path}:{n}: want 5 TAB-separated columns, got {len(cols)}")
            lst, cls, text, intended, note = (c.strip() for c in cols)
            if cls not in CLASSES:
                die(f"{path}:{n}: unknown class {cls!r} (one of {', '.join(CLASSES)})")
            if not text:
                die(f"{path}:{n}: empty query")
            if (cls == "no-match") != (intended == "-"):
                die(f"{path}:{n}: intended is '-' exactly for class no-match")
            queries.append(Query(n, lst, cls, text, intended, note, part))
    return queries


def load_list(path):
    with open(path, "rb") as f:
        data = f.read().decode("utf-8", "surrogateescape")
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines, data


def subseq_rx(term):
    return re.compile("[^\n]*?".join(re.escape(c) for c in term), re.I)


def validate(queries, lists):
    """Return (kept, dropped as [(query, reason)])."""
    kept, dropped = [], []
    for q in queries:
        if q.list not in lists:
            dropped.append((q, f"list {q.list!r} not available"))
            continue
        lines, text = lists[q.list]
        if q.nomatch:
            terms = q.text.split()
            if len(terms) == 1:
                m = subseq_rx(terms[0]).search(text)
                found = None
                if m:  # the whole line holding the match
                    end = text.find("\n", m.end())
                    found = text[text.rfind("\n", 0, m.start()) + 1:
                                 end if end >= 0 else len(text)]
            else:
                rxs = [subseq_rx(t) for t in terms]
                found = next((p for p in lines
                              if all(r.search(p) for r in rxs)), None)
            if found is not None:
                dropped.append((q, "its letters occur in order in a path, "
                                   "e.g. " + md_code(found[-80:])))
            else:
                kept.append(q)
            continue
        try:
            q.rx = re.compile(q.intended)
        except re.error as e:
            dropped.append((q, f"bad regex: {e}"))
            continue
        q.in_list = len(list(filter(q.rx.search, lines)))
        if q.in_list == 0:
            dropped.append((q, "intended regex matches no path of the list"))
        else:
            kept.append(q)
    return kept, dropped


def commands(fidx, query, limit):
    return {
        "fidx": [fidx, "filter", "--limit", str(limit), query],
        TYPO_OFF: [fidx, "filter", "--limit", str(limit), "--typos=0", query],
        "fzf": ["fzf", "--filter", query],
        "fzy": ["fzy", "-e", query],
    }


def run(cmd, paths, timeout, capture, env):
    """Run cmd with stdin from the paths file; return (seconds, stdout)."""
    with open(paths, "rb") as stdin:
        t0 = time.perf_counter()
        try:
            p = subprocess.run(
                cmd, stdin=stdin, env=env,
                stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            die(f"FAIL: timeout after {timeout}s: {cmd}", 1)
        except OSError as e:
            die(f"FAIL: cannot run {cmd}: {e}", 1)
        dt = time.perf_counter() - t0
    if p.returncode not in (0, 1):  # 0 = matches, 1 = no match
        err = p.stderr.decode(errors="replace").strip()
        die(f"FAIL: exit {p.returncode}: {cmd}\n{err}", 1)
    return dt, p.stdout


def md_code(s):
    if s is None or s == "":
        return "(none)"
    s = s.replace("|", "\\|")
    tick = "``" if "`" in s else "`"
    pad = " " if tick == "``" else ""
    return f"{tick}{pad}{s}{pad}{tick}"


def fmt_rank(q, tool):
    if q.nomatch:
        n = q.nout[tool]
        return "empty" if n == 0 else f"{n} lines"
    r = q.rank[tool]
    return str(r) if r else "miss"


def score_rows(groups, tools):
    """groups: [(label, [queries])] -> markdown rows of MRR and hits@10."""
    rows = []
    for label, qs in groups:
        if not qs:
            continue
        n = len(qs)
        mrr = [sum(q.rr(t) for q in qs) / n for t in tools]
        hit = [sum(q.hit10(t) for q in qs) for t in tools]
        best = max(mrr)
        cells = [f"**{m:.3f}**" if m == best else f"{m:.3f}" for m in mrr]
        besth = max(hit)
        cells += [f"**{h}/{n}**" if h == besth else f"{h}/{n}" for h in hit]
        rows.append(f"| {label} | {n} | " + " | ".join(cells) + " |")
    return rows


def score_table(groups, tools):
    head = ("| | queries | " + " | ".join(f"MRR {t}" for t in tools) + " | "
            + " | ".join(f"hits@10 {t}" for t in tools) + " |")
    sep = "|---|---:|" + "---:|" * (2 * len(tools))
    return [head, sep] + score_rows(groups, tools)


def drop_reason_kind(why):
    """A dropped query's reason without its example, to count alike ones."""
    return why.split(", e.g.")[0].split(": ")[0]


def drop_warning(queries, dropped, parts):
    """One markdown paragraph counting dropped queries, or "" if none."""
    if not dropped:
        return ""
    per = []
    for part in parts:
        n = sum(1 for q in queries if q.part == part)
        kinds = {}
        for q, why in dropped:
            if q.part == part:
                k = drop_reason_kind(why)
                kinds[k] = kinds.get(k, 0) + 1
        if kinds:
            per.append(f"{md_code(part)}: {sum(kinds.values())} of {n} ("
                       + "; ".join(f"{k}: {c}" for k, c in kinds.items())
                       + ")")
    return (f"**{len(dropped)} of {len(queries)} queries dropped**, by part: "
            + ", ".join(per) + ". Scores below are over the kept queries "
            "only, so they are not comparable with a run that kept these; "
            "each is listed under \"Dropped queries\" at the end.")


def check_report(kept, dropped, lists):
    """--check: each kept query with the paths its regex matches."""
    for q in kept:
        if q.nomatch:
            print(f"ok   {q.part}:{q.lineno} {q.list} {q.cls} {q.text!r}: "
                  "no path holds its letters in order")
            continue
        hits = [p for p in lists[q.list][0] if q.rx.search(p)]
        shown = ", ".join(hits[:3]) + (f", ... ({len(hits)})"
                                       if len(hits) > 3 else "")
        print(f"ok   {q.part}:{q.lineno} {q.list} {q.cls} {q.text!r}: {shown}")
    for q, why in dropped:
        print(f"DROP {q.part}:{q.lineno} {q.list} {q.cls} {q.text!r}: {why}")
    print(f"{len(kept)} kept, {len(dropped)} dropped", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", action="append", required=True,
                    metavar="[PART=]FILE",
                    help="a query file, named PART in the report (default: "
                    "its file name); repeat for each part of the set")
    ap.add_argument("--held-out", action="append", default=[], metavar="PART",
                    help="a part not to tune on: scored like the others, "
                    "but left out of the worst-queries list and its queries "
                    "listed apart, last")
    ap.add_argument("--check", action="store_true",
                    help="only validate the queries against the lists")
    ap.add_argument("--list", action="append", default=[], metavar="NAME=FILE",
                    help="a path list; repeat for each list name")
    ap.add_argument("--fidx", required=True)
    ap.add_argument("--typos", action="store_true",
                    help="fidx filter has --typos: also run it with --typos=0")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--worst", type=int, default=15,
                    help="queries listed where fidx does worst")
    ap.add_argument("--out", help="also write the markdown report here")
    ap.add_argument("--header", default="", help="markdown put before tables")
    a = ap.parse_args()
    t_start = time.perf_counter()

    env = dict(os.environ, FZF_DEFAULT_OPTS="")
    env.pop("FZF_DEFAULT_COMMAND", None)

    lists, list_files = {}, {}
    for spec in a.list:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            die(f"--list wants NAME=FILE, got {spec!r}")
        lists[name] = load_list(path)
        list_files[name] = path
    parts, queries = {}, []
    for spec in a.queries:
        name, sep, path = spec.rpartition("=")
        if not sep:
            name = os.path.basename(path)
        if not name or not path or name in parts:
            die(f"--queries wants [PART=]FILE with distinct parts, got {spec!r}")
        parts[name] = path
        queries += read_queries(path, name)
    for p in a.held_out:
        if p not in parts:
            die(f"--held-out {p!r}: no such part (parts: {', '.join(parts)})")
    held = set(a.held_out)
    kept, dropped = validate(queries, lists)
    if a.check:
        check_report(kept, dropped, lists)
        sys.exit(1 if dropped else 0)
    warning = drop_warning(queries, dropped, parts)
    if warning:
        print("rank_compare: WARNING: " + warning.replace("**", ""),
              file=sys.stderr)
    if not kept:
        die("no valid query left")
    print(f"{len(kept)} queries kept, {len(dropped)} dropped "
          f"({time.perf_counter() - t_start:.1f}s)", file=sys.stderr)
    for q, why in dropped:
        print(f"  dropped {parts[q.part]}:{q.lineno} {q.list} {q.text!r}: "
              f"{why}", file=sys.stderr)

    tools = list(MAIN_TOOLS) + ([TYPO_OFF] if a.typos else [])

    # Pass 1: ranks (also warms the page cache for pass 2).
    for i, q in enumerate(kept, 1):
        cmds = commands(a.fidx, q.text, a.limit)
        for t in tools:
            _, out = run(cmds[t], list_files[q.list], a.timeout, True, env)
            lines = out.decode("utf-8", "surrogateescape").split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            q.nout[t] = len(lines)
            q.top[t] = lines[0] if lines else None
            q.rank[t] = None
            if q.rx is not None:
                for r, line in enumerate(lines[:a.limit], 1):
                    if q.rx.search(line):
                        q.rank[t] = r
                        break
        if i % 20 == 0 or i == len(kept):
            print(f"ranked {i}/{len(kept)} "
                  f"({time.perf_counter() - t_start:.0f}s)", file=sys.stderr)

    # Pass 2: timing, tools interleaved, order rotating per repetition.
    for q in kept:
        q.times = {t: [] for t in tools}
    for rep in range(a.reps):
        k = rep % len(tools)
        order = tools[k:] + tools[:k]
        for q in kept:
            cmds = commands(a.fidx, q.text, a.limit)
            for t in order:
                dt, _ = run(cmds[t], list_files[q.list], a.timeout, False, env)
                q.times[t].append(dt)
        print(f"timing rep {rep + 1}/{a.reps} done "
              f"({time.perf_counter() - t_start:.0f}s)", file=sys.stderr)
    med = {(id(q), t): statistics.median(q.times[t]) for q in kept for t in tools}

    list_names = [n for n in lists if any(q.list == n for q in kept)]
    out = [a.header] if a.header else []
    if warning:
        out += ["> **WARNING:** " + warning, ""]
    missing = sorted({q.list for q in queries} - set(lists))
    if missing:
        out += ["> **WARNING:** list(s) not given: "
                + ", ".join(md_code(n) for n in missing)
                + "; none of their queries ran.", ""]

    # Scores per class: the whole set, then each part, all lists together.
    main = list(MAIN_TOOLS)

    def class_groups(qs):
        groups = [(c, [q for q in qs if q.cls == c]) for c in CLASSES]
        groups += [(f"all `{n}`", [q for q in qs if q.list == n])
                   for n in list_names]
        groups.append(("**all**", qs))
        return groups

    sets = [("all queries", kept)]
    if len(parts) > 1:
        sets += [(f"part {md_code(p)} ({md_code(parts[p])})",
                  [q for q in kept if q.part == p]) for p in parts]
    for label, qs in sets:
        out += [f"### Ranking quality, per class: {label}", ""]
        if qs:
            out += score_table(class_groups(qs), main)
        else:
            out.append("**No query of this part was kept.**")
        out.append("")
    out += ["Best value of a row in bold. MRR: mean of 1/rank of the first "
            f"intended file within the first {a.limit} output lines (0 if not "
            "there); hits@10: queries whose intended file is in the first 10. "
            "No-match queries score 1 (for both) if the tool prints nothing, "
            "else 0. fzy takes a space as a literal character, so it matches "
            "nothing for multi-term queries.", ""]

    # Where fidx is behind a peer, class by class, so no table has to be
    # read cell by cell to find it.
    behind = []
    for label, qs in sets:
        for c, cq in class_groups(qs)[:len(CLASSES)] + [("**all**", qs)]:
            if not cq:
                continue
            m = {t: sum(q.rr(t) for q in cq) / len(cq) for t in main}
            worse = [f"{t} {m[t]:.3f}" for t in main[1:] if m[t] > m["fidx"]]
            if worse:
                behind.append(f"- {label}, {c}: fidx {m['fidx']:.3f} < "
                              + ", ".join(worse))
    out += ["### Classes where fidx's MRR is below fzf's or fzy's", ""]
    out += behind or ["None, in any part."]
    out.append("")

    out += ["### Ranking quality, per list and class", ""]
    groups = []
    for n in list_names:
        groups += [(f"`{n}` {c}", [q for q in kept if q.list == n and q.cls == c])
                   for c in CLASSES]
    out += score_table(groups, main)
    out.append("")

    # Timing.
    out += ["### Wall time", "",
            f"Median over {a.reps} interleaved repetitions per query, then the "
            "median (and the sum) over the queries of a list; whole command: "
            "start-up, reading the list from stdin, matching, output to "
            "/dev/null. fidx prints its top "
            f"{a.limit}; fzf and fzy sort and print every match.", ""]
    out.append("| list | paths | queries | "
               + " | ".join(f"{t} median ms" for t in main) + " | "
               + " | ".join(f"{t} sum s" for t in main) + " |")
    out.append("|---|---:|---:|" + "---:|" * (2 * len(main)))
    for n in list_names:
        qs = [q for q in kept if q.list == n]
        meds = [statistics.median(med[id(q), t] for q in qs) for t in main]
        sums = [sum(med[id(q), t] for q in qs) for t in main]
        out.append(f"| `{n}` | {len(lists[n][0])} | {len(qs)} | "
                   + " | ".join(f"{m * 1000:.1f}" for m in meds) + " | "
                   + " | ".join(f"{s:.2f}" for s in sums) + " |")
    out.append("")

    # Typo tolerance on and off.
    out += ["### Typo tolerance", ""]
    if not a.typos:
        out += ["typos: not implemented yet (`fidx filter --help` does not "
                "mention `--typos`; once it does, this section times and "
                "scores `fidx filter` with typos on (the default) and "
                "`--typos=0`)", ""]
    else:
        pair = ["fidx", TYPO_OFF]
        out.append("| list | queries | typos on median ms | `--typos=0` "
                   "median ms | on / off |")
        out.append("|---|---:|---:|---:|---:|")
        for n in list_names:
            qs = [q for q in kept if q.list == n]
            m = [statistics.median(med[id(q), t] for q in qs) for t in pair]
            ratio = m[0] / m[1] if m[1] else float("nan")
            out.append(f"| `{n}` | {len(qs)} | {m[0] * 1000:.1f} | "
                       f"{m[1] * 1000:.1f} | {ratio:.2f}x |")
        out += [""]
        groups = [(c, [q for q in kept if q.cls == c]) for c in CLASSES]
        groups.append(("**all**", kept))
        out += score_table(groups, pair)
        out.append("")

    # Where fidx does worst relative to the others: labelled queries by
    # reciprocal-rank gap; no-match queries summed up apart, as their gap is
    # always 0 or 1. This is the list a tuner reads, so held-out parts stay
    # out of it.
    others = [t for t in main if t != "fidx"]
    porder = {p: i for i, p in enumerate(parts)}
    tunable = [q for q in kept if q.part not in held]
    gaps = sorted(((max(q.rr(t) for t in others) - q.rr("fidx"), q)
                   for q in tunable if not q.nomatch),
                  key=lambda x: (-x[0], porder[x[1].part], x[1].lineno))
    worst = [(d, q) for d, q in gaps if d > 0][:a.worst]
    out += ["### Where fidx does worst relative to fzf and fzy"
            + (" (held-out parts left out)" if held else ""), ""]
    nm = [q for q in tunable if q.nomatch]
    nm_bad = [q for q in nm if q.nout["fidx"] and
              any(q.nout[t] == 0 for t in others)]
    if nm:
        out += [f"No-match queries: fidx printed something for "
                f"{sum(1 for q in nm if q.nout['fidx'])}/{len(nm)}, fzf for "
                f"{sum(1 for q in nm if q.nout['fzf'])}/{len(nm)}, fzy for "
                f"{sum(1 for q in nm if q.nout['fzy'])}/{len(nm)}"
                + (" (fidx's lines: "
                   + ", ".join(f"{md_code(q.text)} {q.nout['fidx']}"
                               for q in nm_bad) + ")" if nm_bad else "")
                + ".", ""]
    if not worst:
        out += ["On labelled queries, fidx's reciprocal rank is never below "
                "fzf's or fzy's.", ""]
    else:
        out += [f"Labelled queries where the better of fzf and fzy has a "
                f"higher reciprocal rank (RR) than fidx, largest gap first "
                f"(at most {a.worst}):", "",
                "| part | list | class | query | intended | fidx | fzf | fzy | "
                "RR gap | fidx's first line |",
                "|---|---|---|---|---|---:|---:|---:|---:|---|"]
        for d, q in worst:
            out.append(f"| {q.part} | `{q.list}` | {q.cls} | {md_code(q.text)} | "
                       f"{md_code(q.intended)} | {fmt_rank(q, 'fidx')} | "
                       f"{fmt_rank(q, 'fzf')} | {fmt_rank(q, 'fzy')} | "
                       f"{d:.2f} | {md_code(q.top['fidx'])} |")
        out.append("")

    # Every query; held-out parts in their own table, last, so that reading
    # the tuning results does not mean reading theirs.
    def query_table(title, intro, qs):
        rows = [title, ""] + ([intro, ""] if intro else []) + [
                f"Rank of the first intended file (miss: not in the first "
                f"{a.limit}); for no-match queries, the number of lines "
                "printed. \"in list\": paths the intended regex matches.", "",
                "| part | list | class | query | intended | in list | "
                + " | ".join(tools) + " | fidx ms | fzf ms | fzy ms |",
                "|---|---|---|---|---|---:|" + "---:|" * len(tools)
                + "---:|---:|---:|"]
        for q in qs:
            rows.append(f"| {q.part} | `{q.list}` | {q.cls} | "
                        f"{md_code(q.text)} | {md_code(q.intended)} | "
                        f"{q.in_list if not q.nomatch else '-'} | "
                        + " | ".join(fmt_rank(q, t) for t in tools) + " | "
                        + " | ".join(f"{med[id(q), t] * 1000:.1f}"
                                     for t in main) + " |")
        return rows + [""]

    out += query_table("### Every query" + (" (tuning parts)" if held else ""),
                       "", tunable)
    for p in parts:
        if p in held:
            out += query_table(
                f"### Held-out part {md_code(p)}: every query",
                "Not to be read while tuning ranking rules: these queries "
                "measure rules on queries they were not tuned to.",
                [q for q in kept if q.part == p])
    if dropped:
        out += [f"### Dropped queries ({len(dropped)})", "",
                "| file:line | list | class | query | intended | why |",
                "|---|---|---|---|---|---|"]
        for q, why in dropped:
            out.append(f"| {parts[q.part]}:{q.lineno} | `{q.list}` | {q.cls} "
                       f"| {md_code(q.text)} "
                       f"| {md_code(q.intended)} | {why} |")
        out.append("")
    out.append(f"Run time: {time.perf_counter() - t_start:.0f} s.")

    report = "\n".join(out) + "\n"
    sys.stdout.write(report)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(report)


if __name__ == "__main__":
    main()
