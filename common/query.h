/*
 * query.h - a compiled query: its syntax, its terms, and running it over a
 * list of candidates.
 *
 * Owns: the parsed terms and their folded text, the compiled PCRE2 code,
 * and per-thread match scratch (query_scratch).
 * Never touches: threads, sockets, the order of results beyond pushing into
 * a caller's topk, the candidates (borrowed, read only).
 *
 * Three files behind this one header: query.c parses and compiles (it
 * builds struct query), query_run.c scores and runs (it only reads one,
 * and owns struct query_scratch), query_narrow.c tests candidate sets
 * (it only reads one). query_impl.h is the layout they share; everyone
 * else sees both structs opaque.
 *
 * Syntax (fuzzy and exact modes; fzf's extended search):
 *   term      fuzzy match (in exact mode: substring)
 *   'term     substring (in exact mode: fuzzy)
 *   ^term     prefix of the path        term$    suffix of the path
 *   ^term$    the whole path
 *   !term     must not contain term (substring; !'term: must not fuzzy-match)
 *   a | b     either a or b; spaces separate terms that must all match
 *   \         escapes the next byte: '\ ' is a space inside a term
 * Each term is case-insensitive unless it has an upper-case letter (smart
 * case). A term of operators only (e.g. "!" or "^") is taken literally.
 * In regex mode the whole query is one PCRE2 pattern, with the same smart
 * case; it runs in UTF mode on valid UTF-8 paths and in byte mode on the
 * others, so "." matches a Latin-1 byte (see regex.h).
 *
 * The score of a path is the sum over the required terms of each term's
 * score (an OR group scores its best alternative); negated terms score 0.
 * When every term is a plain fuzzy one and their best alignments follow
 * one another in the order typed, the path earns QUERY_BONUS_ORDER more.
 */
#ifndef FIDX_QUERY_H
#define FIDX_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "match.h"
#include "topk.h"

/*
 * Bytes after a path that must be readable, and initialised, when it is
 * handed to a regex query: PCRE2's JIT (10.42 on x86-64) looks for the
 * pattern's first characters 16 bytes at a time with aligned SSE2 loads,
 * so it reads up to 15 bytes past the subject's end, where ASan cannot
 * see (JIT code is not instrumented) and valgrind can. Every buffer of
 * paths given to query_run()/query_score()/query_positions() keeps this
 * many zero bytes after its last path: the index arena (index.c, which
 * counts them in its bytes), the filter's input (cli/filter.c).
 */
#define QUERY_PAD 16

/* Half a matched byte: breaks near-ties, never outweighs a word start. */
#define QUERY_BONUS_ORDER (MATCH_SCORE / 2)

enum query_mode {
	QUERY_FUZZY,
	QUERY_EXACT,
	QUERY_REGEX,
};

/* "fuzzy", "exact", "regex" -> mode; returns -1 for anything else. */
int query_mode_parse(const char *name, enum query_mode *mode);
const char *query_mode_name(enum query_mode mode);

struct query;
struct query_scratch;

/*
 * Compiles text (len bytes, any bytes) in mode. On failure returns NULL
 * with the reason in err: too long, too many terms, a bad regex (with
 * PCRE2's message and offset), or out of memory.
 */
struct query *query_compile(const char *text, size_t len, enum query_mode mode,
    struct fidx_err *err);
void query_free(struct query *q);

/*
 * Lets a one-term fuzzy query also match with typos (typo.h): up to
 * edits bytes left out, capped by the term's length (0 up to 3 bytes,
 * 1 up to 7, 2 beyond); 0 turns it off. Queries of several terms, exact
 * and regex ones are left as they are. -1 when out of memory.
 */
int query_set_typos(struct query *q, int edits);

/* True if q matches with typos. */
bool query_has_typos(const struct query *q);

/* True if q matches path only with a typo forgiven. */
bool query_is_typo(const struct query *q, const char *path, size_t len,
    size_t base, struct query_scratch *sc);

/*
 * True if typo matches could enter top: it is not full, or its worst is
 * no better than the best a typo match (plus bonus_max) can score.
 */
bool query_typos_needed(const struct query *q, const struct topk *top,
    int32_t bonus_max);

/* query_run() sets this in a topk_item's extra for a typo match. */
#define QUERY_ITEM_TYPO 1u

/* Per-thread working memory for q; NULL when out of memory. */
struct query_scratch *query_scratch_new(const struct query *q);

/*
 * Makes sc (from query_scratch_new) fit q instead, keeping its large
 * buffers: a thread that runs many queries allocates them once. Returns
 * -1 when out of memory (sc stays valid, to free or bind again).
 */
int query_scratch_bind(struct query_scratch *sc, const struct query *q);

/*
 * Lets callers that split one list among threads (one scratch and one
 * top-k each) prune against each other's k-th best: the threads' scratches
 * share floor, which the caller sets to MATCH_NONE before each run; NULL
 * stops sharing. Plain C11 atomics: query_run.c starts no threads.
 */
void query_scratch_share_floor(struct query_scratch *sc,
    _Atomic int32_t *floor);

/*
 * A bonus query_run() adds to each match's score, in 0..max (checked by
 * the caller's function): how the daemon ranks the files you use higher
 * at equal match quality. Pruning leaves room for it, so the top k is
 * still exact. fn is called from the thread running query_run().
 */
typedef int32_t query_bonus_fn(void *arg, const char *path, size_t len);
void query_scratch_set_bonus(struct query_scratch *sc, query_bonus_fn *fn,
    void *arg, int32_t max);
void query_scratch_free(struct query_scratch *sc);

/*
 * Paths a regex query could not decide since sc was made or last bound:
 * pcre2_match() gave up (match, depth or heap limit) and the path was
 * taken as no match. Never silent: callers report a count above 0.
 */
size_t query_scratch_regex_errors(const struct query_scratch *sc);

/* Score of one path, or MATCH_NONE. mask is match_mask() of the path. */
int32_t query_score(const struct query *q, const char *path, size_t len,
    size_t base, uint64_t mask, struct query_scratch *sc);

/*
 * query_score() for a caller keeping only scores >= floor: a match that
 * provably scores less may return MATCH_BELOW without being scored;
 * any other path gets what query_score() gives it, typo matches included.
 * With typos on, MATCH_BELOW may also stand for no match at all (no
 * reading of the path reaches floor: which one failed is not worked out).
 */
int32_t query_score_above(const struct query *q, const char *path,
    size_t len, size_t base, uint64_t mask, struct query_scratch *sc,
    int32_t floor);

/*
 * The matched byte positions of path, sorted and without duplicates, into
 * pos (room for len entries). Returns their count, or -1 if q does not
 * match path.
 */
int query_positions(const struct query *q, const char *path, size_t len,
    size_t base, struct query_scratch *sc, uint32_t *pos);

/*
 * Scores entries[from, to) (paths in arena) and pushes each match into
 * top, with index = its position in entries. Returns the number matched
 * without a typo: typo matches (QUERY_ITEM_TYPO) fill top, uncounted.
 */
size_t query_run(const struct query *q, const char *arena,
    const struct match_entry *entries, size_t from, size_t to,
    struct topk *top, struct query_scratch *sc);

/*
 * query_run() over the entries i of [from, to) whose bit bit0 + i is set
 * in sel (NULL: all of them): the others are skipped unscored, as if not
 * in the list. How a narrowed query scores only its candidate set. out
 * (NULL: none), for a query_narrowable() q: the bits of those in C(q)
 * are set in it, as query_narrow_keep() sets them (the bits of the range
 * must be clear); for a query of one fuzzy term the scoring's own clean
 * match decides, so keeping the set costs little more than the scan.
 */
size_t query_run_sel(const struct query *q, const char *arena,
    const struct match_entry *entries, size_t from, size_t to,
    struct topk *top, struct query_scratch *sc, const uint64_t *sel,
    uint64_t *out, size_t bit0);

/*
 * Narrowing (query_narrow.c): a picker sends one query a keystroke, each
 * most often the last one grown, and a query whose every match must be a
 * candidate of the last one need only score those.
 *
 * A query's candidate set C(q) is the entries that pass a test cheaper
 * than scoring and true of every entry q matches, cleanly or with a typo
 * (typo.h), at any edits up to 2:
 *   - every required term (a positive term alone in its group, fuzzy or
 *     literal) is a subsequence of the path, in that term's case;
 *   - or, for a query of one positive fuzzy term without a '/' of at
 *     most TYPO_MAX_LEN bytes, the file name begins with the term's first
 *     byte and shares a common subsequence with it of all but 2 of its
 *     bytes (what typo_match() demands, at the most edits it allows).
 * Negated terms and OR groups demand nothing there (they only narrow
 * less). query_narrows(old, new) is true only when C(new) is inside
 * C(old) whatever the paths, so a candidate set narrowed query after
 * query is C of the last one, and scoring new over it gives exactly the
 * full scan's answer: the same results, scores, order, typo flags and
 * matched count (entries outside it match nothing of new). Refused
 * (false): a regex on either side (no test), a term that folds non-ASCII
 * case (fold.h: the path is seen folded), or a required term of old with
 * no required term of new holding it as a subsequence, in a case that
 * implies old's (smart case: a term with an upper-case letter cannot
 * narrow one without).
 */
bool query_narrows(const struct query *old, const struct query *q);

/* True if q has a candidate test at all (not a regex, nothing folds). */
bool query_narrowable(const struct query *q);

/*
 * Sets bit bit0 + i of out for each entry i of [from, to) in C(q) whose
 * bit is set in sel (NULL: every entry); returns how many it set. out's
 * bits for the range must be clear. (query_run_sel() does it as it
 * scores; this is the test on its own.)
 */
size_t query_narrow_keep(const struct query *q, const char *arena,
    const struct match_entry *entries, size_t from, size_t to,
    const uint64_t *sel, uint64_t *out, size_t bit0);

#endif
