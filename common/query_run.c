/*
 * query_run.c - running a compiled query (query.h): scoring one path,
 * pruning against a floor, positions, query_run() over a list, and the
 * per-thread scratch all of it works in. The syntax is query.c's.
 */
#include "query_impl.h"
#include "alloc.h"
#include "fold.h"
#include "limits.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct query_scratch {
	struct match_scratch *ms;
	pcre2_match_data *md;
	_Atomic int32_t *shared_floor;	/* see query_scratch_share_floor */
	query_bonus_fn *bonus;		/* see query_scratch_set_bonus */
	/*
	 * Typo candidates the seed pass met (file name begins with the
	 * query's first byte, no clean match), so the typo pass need not
	 * sweep the list again; past QUERY_TYPO_CANDIDATES it does.
	 */
	uint32_t *cand;
	size_t ncand;
	/* The path with its non-ASCII lowered, for folding terms (fold.h). */
	char *fpath;
	uint32_t *fmap;
	bool cand_over;
	size_t regex_errors;		/* see query_scratch_regex_errors */
	void *bonus_arg;
	int32_t bonus_max;
	uint32_t tmp[FIDX_MAX_QUERY];
};

void
query_scratch_share_floor(struct query_scratch *sc, _Atomic int32_t *floor)
{
	sc->shared_floor = floor;
}

void
query_scratch_set_bonus(struct query_scratch *sc, query_bonus_fn *fn,
    void *arg, int32_t max)
{
	sc->bonus = fn;
	sc->bonus_arg = arg;
	sc->bonus_max = fn != NULL && max > 0 ? max : 0;
}

/*
 * Publishes this part's k-th best into the shared floor (a max) and
 * returns the shared value: every part holds k matches at least that
 * good, so nothing below it can be in the merged top k.
 */
static int32_t
query_floor_exchange(_Atomic int32_t *shared, const struct topk *top)
{
	int32_t cur = atomic_load_explicit(shared, memory_order_relaxed);

	if (top->k > 0 && top->n == top->k) {
		int32_t mine = top->items[0].score;

		while (mine > cur && !atomic_compare_exchange_weak_explicit(
		    shared, &cur, mine, memory_order_relaxed,
		    memory_order_relaxed))
			;
		if (mine > cur)
			cur = mine;
	}
	return cur;
}

/*
 * A path as one term sees it: as it is, or with its non-ASCII characters
 * lowered for a term that folds them, map leading back (fold.h).
 */
struct query_view {
	const char *s;
	size_t n, base;
	const uint32_t *map;	/* NULL: the path as it is */
};

static inline void
query_view_raw(struct query_view *v, const char *path, size_t len,
    size_t base)
{
	v->s = path;
	v->n = len;
	v->base = base;
	v->map = NULL;
}

/* v: path folded for q's folding terms, or as it is if nothing folds. */
static void
query_view_fold(const struct query *q, struct query_scratch *sc,
    const char *path, size_t len, size_t base, uint64_t mask,
    struct query_view *v)
{
	size_t n, b;

	query_view_raw(v, path, len, base);
	if (!q->fold || sc->fpath == NULL || (mask & MATCH_MASK_HIGH) == 0 ||
	    !fold_has_high(path, len))
		return;
	n = fold_lower(path, len, sc->fpath, FIDX_MAX_PATH_CEILING, sc->fmap);
	if (n == SIZE_MAX)
		return;	/* past the longest path scratch takes: bytewise */
	/* base follows a '/', so it starts a character of its own. */
	for (b = n; b > 0 && sc->fmap[b - 1] >= base; b--)
		;
	v->s = sc->fpath;
	v->n = n;
	v->base = b;
	v->map = sc->fmap;
}

bool
query_typos_needed(const struct query *q, const struct topk *top,
    int32_t bonus_max)
{
	return query_typo_term(q) != NULL && q->typo != NULL && top->k > 0 &&
	    !(top->n == top->k && top->items[0].score - bonus_max >
	    q->typo->ub);
}

bool
query_is_typo(const struct query *q, const char *path, size_t len,
    size_t base, struct query_scratch *sc)
{
	const struct query_term *t = query_typo_term(q);
	struct query_view v;

	if (q->typo == NULL || t == NULL)
		return false;
	query_view_fold(q, sc, path, len, base, MATCH_MASK_ANY, &v);
	return match_fuzzy(&t->pat, v.s, v.n, match_base(&t->pat, v.base),
	    sc->ms, NULL) == MATCH_NONE && query_score(q, path, len, base,
	    MATCH_MASK_ANY, sc) != MATCH_NONE;
}

struct query_scratch *
query_scratch_new(const struct query *q)
{
	struct query_scratch *sc;

	if ((sc = fidx_calloc(1, sizeof(*sc))) == NULL)
		return NULL;
	if (query_scratch_bind(sc, q) == -1) {
		query_scratch_free(sc);
		return NULL;
	}
	return sc;
}

int
query_scratch_bind(struct query_scratch *sc, const struct query *q)
{
	pcre2_match_data_free(sc->md);
	sc->md = NULL;
	sc->regex_errors = 0;
	if (q->re != NULL) {
		sc->md = pcre2_match_data_create_from_pattern(q->re, NULL);
		return sc->md != NULL ? 0 : -1;
	}
	if (sc->ms == NULL && (sc->ms = match_scratch_new()) == NULL)
		return -1;
	if (q->fold && sc->fpath == NULL) {
		sc->fpath = fidx_malloc(FIDX_MAX_PATH_CEILING);
		sc->fmap = fidx_reallocarray(NULL, FIDX_MAX_PATH_CEILING + 1,
		    sizeof(*sc->fmap));
		if (sc->fpath == NULL || sc->fmap == NULL) {
			free(sc->fpath);
			free(sc->fmap);
			sc->fpath = NULL;
			sc->fmap = NULL;
			return -1;
		}
	}
	return 0;
}

size_t
query_scratch_regex_errors(const struct query_scratch *sc)
{
	return sc->regex_errors;
}

void
query_scratch_free(struct query_scratch *sc)
{
	if (sc == NULL)
		return;
	match_scratch_free(sc->ms);
	pcre2_match_data_free(sc->md);
	free(sc->cand);
	free(sc->fpath);
	free(sc->fmap);
	free(sc);
}

/* Adds the bonus to a match's score v and offers it to top. */
static void
query_offer(struct topk *top, struct query_scratch *sc, const char *path,
    uint32_t len, size_t i, int32_t v, uint32_t extra)
{
	struct topk_item item;

	if (sc->bonus != NULL)
		v += sc->bonus(sc->bonus_arg, path, len);
	if (!topk_wants(top, v))
		return;
	item.path = path;
	item.len = len;
	item.index = (uint32_t)i;
	item.score = v;
	item.extra = extra;
	topk_push(top, &item);
}

/* True if x has at most n bits set (n <= 2): no popcount instruction. */
static inline bool
query_few_bits(uint64_t x, int n)
{
	for (int i = 0; i < n && x != 0; i++)
		x &= x - 1;
	return x == 0;
}

/*
 * t's score (positions into pos). typo, for the one term of a query that
 * has them, tries a typo match where the clean one fails; *npos is then
 * set to the positions' count (when pos), which is shorter than t's.
 */
static int32_t
query_term_score(const struct query_term *t, const struct typo *typo,
    const struct query_view *view, struct query_scratch *sc, uint32_t *pos,
    int *npos)
{
	size_t base = match_base(&t->pat, view->base);
	int32_t v;

	if (npos != NULL)
		*npos = (int)t->pat.len;
	if (t->kind != TERM_FUZZY)
		return match_literal(&t->pat, t->anchor, view->s, view->n,
		    base, pos);
	v = match_fuzzy(&t->pat, view->s, view->n, base, sc->ms, pos);
	if (v == MATCH_NONE && typo != NULL)
		v = typo_match(&t->pat, typo, view->s, view->n, base,
		    sc->ms, MATCH_NONE, pos, npos);
	else if (typo != NULL) {
		/* A word mistyped may read better than a clean smear. */
		int32_t w = typo_word(&t->pat, typo, view->s, view->n, base,
		    NULL, NULL);

		if (w > v) {
			v = w;
			if (pos != NULL)
				typo_word(&t->pat, typo, view->s, view->n,
				    base, pos, npos);
		}
	}
	return v;
}

/* Regex: returns the score and sets [*start, *end) of the first match. */
static int32_t
query_regex_score(const struct query *q, const char *path, size_t len,
    size_t base, struct query_scratch *sc, size_t *start, size_t *end)
{
	PCRE2_SIZE *ov;
	uint32_t at;
	int rc;

	rc = pcre2_match(regex_code(&q->rx, path, len), (PCRE2_SPTR)path, len,
	    0, 0, sc->md, NULL);
	if (rc < 0) {
		/*
		 * Anything but "no match" (a match, depth or heap limit) is
		 * PCRE2 giving up: not known to be a miss, so it is counted
		 * for the caller to report.
		 */
		if (rc != PCRE2_ERROR_NOMATCH)
			sc->regex_errors++;
		return MATCH_NONE;
	}
	ov = pcre2_get_ovector_pointer(sc->md);
	*start = ov[0];
	*end = ov[1] >= ov[0] ? ov[1] : ov[0];
	if (*start >= len)
		return 0;
	/* Scored by where it starts; length and bytes break ties. */
	at = (uint32_t)*start;
	return match_score_positions(path, len, base, &at, 1);
}

/*
 * True if the terms' best alignments follow one another in the path in
 * the order they were typed: each ends before the next begins. People
 * name a path from its top down ("ssh config": /etc/ssh/ssh_config over
 * config_ssh.py), so that reading earns QUERY_BONUS_ORDER.
 */
static bool
query_in_order(const struct query *q, const struct query_view *raw,
    const struct query_view *folded, struct query_scratch *sc)
{
	uint32_t last = 0;

	for (size_t i = 0; i < q->nterms; i++) {
		const struct query_term *t = &q->terms[i];
		const struct query_view *w = t->fold ? folded : raw;
		uint32_t first, end;
		int n;

		if (t->pat.len == 0)
			continue;
		if (query_term_score(t, NULL, w, sc, sc->tmp, &n) == MATCH_NONE ||
		    n == 0)
			return false;
		first = sc->tmp[0];
		end = sc->tmp[n - 1] + 1;
		if (w->map != NULL) {
			uint32_t unused;

			/* In the path's own bytes: where each character is. */
			first = fold_source(w->map, first, &unused);
			(void)fold_source(w->map, sc->tmp[n - 1], &end);
		}
		if (i > 0 && first < last)
			return false;
		last = end;
	}
	return true;
}

int32_t
query_score(const struct query *q, const char *path, size_t len, size_t base,
    uint64_t mask, struct query_scratch *sc)
{
	return query_score_above(q, path, len, base, mask, sc, MATCH_NONE);
}

static int32_t query_score_clean_above(const struct query *q,
    const char *path, size_t len, size_t base, uint64_t mask,
    struct query_scratch *sc, int32_t floor);

/*
 * A path's score is its best reading: with typos on, the near-word one
 * (typo_word) where it beats a clean match, so "sdtlib.h" finds
 * /usr/include/stdlib.h as the word it is, not the smear of s, d and t
 * over usr/include/ that also matches.
 */
int32_t
query_score_above(const struct query *q, const char *path, size_t len,
    size_t base, uint64_t mask, struct query_scratch *sc, int32_t floor)
{
	const struct query_term *t = query_typo_term(q);
	struct query_view v;
	int32_t w, c;

	if (q->typo == NULL || t == NULL)
		return query_score_clean_above(q, path, len, base, mask, sc,
		    floor);
	query_view_fold(q, sc, path, len, base, mask, &v);
	w = typo_word(&t->pat, q->typo, v.s, v.n, match_base(&t->pat, v.base),
	    NULL, NULL);
	if (w == MATCH_NONE || w < floor)
		return query_score_clean_above(q, path, len, base, mask, sc,
		    floor);
	/* Only a clean score above the word's can change the answer. */
	c = query_score_clean_above(q, path, len, base, mask, sc, w + 1);
	return c == MATCH_NONE || c == MATCH_BELOW ? w : c;
}

/* query_score_above(), the near-word reading aside. */
static int32_t
query_score_clean_above(const struct query *q, const char *path, size_t len,
    size_t base, uint64_t mask, struct query_scratch *sc, int32_t floor)
{
	int32_t total = 0, group_best = MATCH_NONE;
	/* Every term required: their order counts (query_in_order). */
	int32_t order = q->all_required && q->nterms > 1 ?
	    QUERY_BONUS_ORDER : 0;
	struct query_view raw, folded;
	size_t start, end;

	if (q->re != NULL)
		return query_regex_score(q, path, len, base, sc, &start, &end);
	/* A typo may leave out up to `edits` bytes' worth of the mask. */
	if ((mask & q->need) != q->need && (q->typo == NULL ||
	    !query_few_bits(q->need & ~mask, q->typo->edits)))
		return MATCH_NONE;
	query_view_raw(&raw, path, len, base);
	query_view_fold(q, sc, path, len, base, mask, &folded);
#define VIEW(t) ((t)->fold ? &folded : &raw)
	/*
	 * With a floor, and every term a required fuzzy one, each term's
	 * bound is computed first; then each term is scored against what
	 * the floor leaves it after the others' (exact or best) scores, so
	 * a hopeless candidate stops at its first weak term, DP unpaid.
	 */
	if (floor > MATCH_NONE && q->all_required) {
		int32_t ub[FIDX_MAX_TERMS], rest = order, unseen = 0;

		/* Terms not bounded yet count as the best any could score. */
		for (size_t i = 0; i < q->nterms; i++)
			unseen += match_best_possible(q->terms[i].pat.len);
		for (size_t i = 0; i < q->nterms; i++) {
			const struct query_view *v = VIEW(&q->terms[i]);

			ub[i] = match_fuzzy_bound(&q->terms[i].pat, v->s, v->n,
			    match_base(&q->terms[i].pat, v->base), sc->ms);
			/*
			 * No clean match: the typo reading query_score()
			 * tries (only a one-term query has typos, so it is
			 * the whole score), pruned by the same floor.
			 */
			if (ub[i] == MATCH_NONE)
				return q->typo == NULL ? MATCH_NONE :
				    typo_match(&q->terms[i].pat, q->typo,
				    v->s, v->n, match_base(&q->terms[i].pat,
				    v->base), sc->ms, floor, NULL, NULL);
			rest += ub[i];
			unseen -= match_best_possible(q->terms[i].pat.len);
			if (rest + unseen < floor) {
				/* Below, if a match at all: count it right. */
				for (size_t k = i + 1; k < q->nterms; k++)
					if (!match_fuzzy_possible(
					    &q->terms[k].pat,
					    VIEW(&q->terms[k])->s,
					    VIEW(&q->terms[k])->n))
						return MATCH_NONE;
				return MATCH_BELOW;
			}
		}
		for (size_t i = 0; i < q->nterms; i++) {
			const struct query_view *w = VIEW(&q->terms[i]);
			/*
			 * What this term must reach; in 64 bits, since a
			 * floor near MATCH_NONE minus the others' scores
			 * passes INT32_MIN (then nothing is pruned).
			 */
			int64_t need;
			int32_t v;

			rest -= ub[i];
			need = (int64_t)floor - total - rest;
			v = match_fuzzy_above(&q->terms[i].pat, w->s, w->n,
			    match_base(&q->terms[i].pat, w->base), sc->ms,
			    need <= MATCH_NONE ? MATCH_NONE : (int32_t)need,
			    NULL);
			if (v == MATCH_NONE || v == MATCH_BELOW)
				return v;
			total += v;
		}
		/* The order is worth its DP only where it can count. */
		if (order > 0 && total + order >= floor &&
		    query_in_order(q, &raw, &folded, sc))
			total += order;
		return total < floor ? MATCH_BELOW : total;
	}
	/* Reject on any required fuzzy term before paying for a DP. */
	if (q->nterms > 1)
		for (size_t i = 0; i < q->nterms; i++)
			if (q->terms[i].required &&
			    !match_fuzzy_possible(&q->terms[i].pat,
			    VIEW(&q->terms[i])->s, VIEW(&q->terms[i])->n))
				return MATCH_NONE;
	for (size_t i = 0; i < q->nterms; i++) {
		const struct query_term *t = &q->terms[i];
		int32_t v = query_term_score(t, q->typo, VIEW(t), sc, NULL,
		    NULL);

		if (t->negate)
			v = v == MATCH_NONE ? 0 : MATCH_NONE;
		if (v > group_best)
			group_best = v;
		if (i + 1 == q->nterms || q->terms[i + 1].group != t->group) {
			if (group_best == MATCH_NONE)
				return MATCH_NONE;
			total += group_best;
			group_best = MATCH_NONE;
		}
	}
	if (order > 0 && query_in_order(q, &raw, &folded, sc))
		total += order;
	return total;
#undef VIEW
}

static int
query_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int
query_positions(const struct query *q, const char *path, size_t len,
    size_t base, struct query_scratch *sc, uint32_t *pos)
{
	struct query_view raw, folded;
	size_t n = 0, start, end;

	if (q->re != NULL) {
		if (query_regex_score(q, path, len, base, sc, &start,
		    &end) == MATCH_NONE)
			return -1;
		for (size_t j = start; j < end && j < len; j++)
			pos[n++] = (uint32_t)j;
		return (int)n;
	}
	query_view_raw(&raw, path, len, base);
	query_view_fold(q, sc, path, len, base, MATCH_MASK_ANY, &folded);
	for (size_t i = 0; i < q->nterms; i++) {
		const struct query_term *t = &q->terms[i];
		int32_t best = MATCH_NONE, v;
		size_t g = i, pick = i;

		/* Highlight the best alternative of each group. */
		for (; g < q->nterms && q->terms[g].group == t->group; g++) {
			v = query_term_score(&q->terms[g], q->typo,
			    q->terms[g].fold ? &folded : &raw, sc, NULL, NULL);
			if (q->terms[g].negate)
				v = v == MATCH_NONE ? 0 : MATCH_NONE;
			if (v > best) {
				best = v;
				pick = g;
			}
		}
		i = g - 1;
		if (best == MATCH_NONE)
			return -1;
		if (q->terms[pick].negate || q->terms[pick].pat.len == 0)
			continue;
		const struct query_view *w = q->terms[pick].fold ? &folded :
		    &raw;
		int got;

		query_term_score(&q->terms[pick], q->typo, w, sc, sc->tmp,
		    &got);
		/*
		 * Terms may overlap: merge each one in, deduplicated, so pos
		 * never needs more than len entries (one per byte). A folded
		 * position names every byte of its character in the path.
		 */
		for (size_t k = 0; k < (size_t)got; k++) {
			uint32_t at = sc->tmp[k], to = at + 1;

			if (w->map != NULL)
				at = fold_source(w->map, at, &to);
			for (; at < to; at++) {
				bool seen = false;

				for (size_t e = 0; e < n && !seen; e++)
					seen = pos[e] == at;
				if (!seen && n < len)
					pos[n++] = at;
			}
		}
	}
	qsort(pos, n, sizeof(*pos), query_cmp_u32);
	return (int)n;
}

/* Entries between two looks at the shared floor. */
#define QUERY_FLOOR_EVERY 1024

/* Typo candidates remembered per query_run() (64 KiB of indices). */
#define QUERY_TYPO_CANDIDATES 16384

/* Remembers entry i for the typo pass; on overflow the pass sweeps. */
static void
query_cand_add(struct query_scratch *sc, size_t i)
{
	if (sc->cand_over)
		return;
	if (sc->cand == NULL && (sc->cand = fidx_reallocarray(NULL,
	    QUERY_TYPO_CANDIDATES, sizeof(*sc->cand))) == NULL) {
		sc->cand_over = true;
		return;
	}
	if (sc->ncand == QUERY_TYPO_CANDIDATES) {
		sc->cand_over = true;
		return;
	}
	sc->cand[sc->ncand++] = (uint32_t)i;
}

/* Which entries one pass of query_run() takes. */
enum query_pass {
	QUERY_PASS_ALL,
	QUERY_PASS_SEED,	/* file name starts with the query's first byte */
	QUERY_PASS_REST,	/* the others */
	QUERY_PASS_TYPO,	/* typo matches of those with no clean one */
};

static size_t
query_run_pass(const struct query *q, const char *arena,
    const struct match_entry *entries, size_t from, size_t to,
    struct topk *top, struct query_scratch *sc, bool single,
    enum query_pass pass, const uint64_t *sel, uint64_t *out,
    const struct query_narrow_typo *nt, size_t bit0)
{
	/* Regex queries have no terms; passes other than ALL need one. */
	const struct match_pattern *p0 = q->nterms ? &q->terms[0].pat : NULL;
	uint8_t c0 = p0 != NULL && p0->len ? (uint8_t)p0->text[0] : 0;
	int32_t shared = MATCH_NONE, floor;
	uint64_t need = q->need;
	const struct typo *typo = pass == QUERY_PASS_TYPO ? q->typo : NULL;
	size_t matched = 0;
	/*
	 * The candidate set (query_run_sel), one term's: its clean matches,
	 * which this pass finds anyway, and file names that pass the typo
	 * test, all begun with c0 (so not the REST pass's).
	 */
	uint64_t *keep = single && pass != QUERY_PASS_TYPO ? out : NULL;
	bool keep_typo = keep != NULL && pass != QUERY_PASS_REST && nt->on;
#define QUERY_KEEP(i) (keep[(bit0 + (i)) >> 6] |= 1ull << ((bit0 + (i)) & 63))

	for (size_t blk = from; blk < to; blk += QUERY_FLOOR_EVERY) {
		size_t end = to - blk > QUERY_FLOOR_EVERY ?
		    blk + QUERY_FLOOR_EVERY : to;

		if (sc->shared_floor != NULL)
			shared = query_floor_exchange(sc->shared_floor, top);
		for (size_t i = query_sel_next(sel, bit0, blk, end); i < end;
		    i = query_sel_next(sel, bit0, i + 1, end)) {
			const struct match_entry *e = &entries[i];
			const char *path = arena + e->off;
			struct query_view w;
			int32_t v;

			/* The one term of a single query sees it folded. */
			if (q->fold && single)
				query_view_fold(q, sc, path, e->len, e->base,
				    e->mask, &w);
			else
				query_view_raw(&w, path, e->len, e->base);
			/* A typo may leave out up to `edits` bytes' worth. */
			if ((e->mask & need) != need) {
				if (keep_typo &&
				    query_narrow_typo_in(nt, path, e))
					QUERY_KEEP(i);
				const struct typo *t = typo != NULL ?
				    typo : pass == QUERY_PASS_SEED ? q->typo :
				    NULL;

				if (t == NULL ||
				    !query_few_bits(need & ~e->mask, t->edits))
					continue;
				if (typo == NULL) {
					/* Seed pass: not a clean match. */
					uint8_t b = (uint8_t)w.s[w.base];

					if ((p0->icase ? match_lower[b] : b) ==
					    c0)
						query_cand_add(sc, i);
					continue;
				}
			}
			if (pass == QUERY_PASS_TYPO) {
				uint8_t b = (uint8_t)w.s[w.base];

				/* The file name must begin with it (typo.h). */
				if ((p0->icase ? match_lower[b] : b) != c0)
					continue;
				/* Clean matches were scored in the passes before. */
				if ((e->mask & need) == need &&
				    match_fuzzy_possible(p0, w.s, w.n))
					continue;
			} else if (pass != QUERY_PASS_ALL) {
				uint8_t b = (uint8_t)w.s[w.base];
				bool seed = (p0->icase ? match_lower[b] : b) ==
				    c0;

				if (seed != (pass == QUERY_PASS_SEED))
					continue;
			}
			floor = top->n == top->k && top->k > 0 ?
			    top->items[0].score : MATCH_NONE;
			if (shared > floor)
				floor = shared;
			/* A bonus to come may lift what scores a little less. */
			if (floor > MATCH_NONE + sc->bonus_max)
				floor -= sc->bonus_max;
			bool typo_hit = false;

			if (!single) {
				v = query_score_above(q, path, e->len, e->base,
				    e->mask, sc, floor);
				matched += v != MATCH_NONE;
			} else {
				size_t base = match_base(p0, w.base);

				if (typo != NULL) {
					/* Typo matches fill the list, uncounted. */
					v = typo_match(p0, typo, w.s,
					    w.n, base, sc->ms, floor, NULL,
					    NULL);
					typo_hit = true;
				} else {
					v = match_fuzzy_above(p0, w.s, w.n,
					    base, sc->ms, floor, NULL);
					matched += v != MATCH_NONE;
					if (keep != NULL && (v != MATCH_NONE ||
					    (keep_typo && query_narrow_typo_in(
					    nt, path, e))))
						QUERY_KEEP(i);
					if (v == MATCH_NONE &&
					    pass == QUERY_PASS_SEED &&
					    q->typo != NULL)
						query_cand_add(sc, i);
					/* Its best reading (query_score_above). */
					if (v != MATCH_NONE &&
					    pass == QUERY_PASS_SEED &&
					    q->typo != NULL) {
						int32_t wv = typo_word(p0,
						    q->typo, w.s, w.n, base,
						    NULL, NULL);

						if (wv != MATCH_NONE &&
						    wv >= floor && (v ==
						    MATCH_BELOW || wv > v))
							v = wv;
					}
				}
			}
			if (v == MATCH_NONE || v == MATCH_BELOW)
				continue;
			query_offer(top, sc, path, e->len, i, v,
			    typo_hit ? QUERY_ITEM_TYPO : 0);
		}
	}
	return matched;
#undef QUERY_KEEP
}

/* The typo pass over the candidates the seed pass met (query_cand_add). */
static void
query_run_typo_list(const struct query *q, const char *arena,
    const struct match_entry *entries, struct topk *top,
    struct query_scratch *sc)
{
	const struct match_pattern *p0 = &q->terms[0].pat;
	int32_t shared = MATCH_NONE;

	if (sc->shared_floor != NULL)
		shared = query_floor_exchange(sc->shared_floor, top);
	for (size_t c = 0; c < sc->ncand; c++) {
		size_t i = sc->cand[c];
		const struct match_entry *e = &entries[i];
		const char *path = arena + e->off;
		int32_t v, floor = top->n == top->k ? top->items[0].score :
		    MATCH_NONE;
		struct query_view w;

		if (shared > floor)
			floor = shared;
		if (floor > MATCH_NONE + sc->bonus_max)
			floor -= sc->bonus_max;
		query_view_fold(q, sc, path, e->len, e->base, e->mask, &w);
		v = typo_match(p0, q->typo, w.s, w.n,
		    match_base(p0, w.base), sc->ms, floor, NULL, NULL);
		if (v == MATCH_NONE || v == MATCH_BELOW)
			continue;
		query_offer(top, sc, path, e->len, i, v, QUERY_ITEM_TYPO);
	}
}

size_t
query_run(const struct query *q, const char *arena,
    const struct match_entry *entries, size_t from, size_t to,
    struct topk *top, struct query_scratch *sc)
{
	return query_run_sel(q, arena, entries, from, to, top, sc, NULL, NULL,
	    0);
}

size_t
query_run_sel(const struct query *q, const char *arena,
    const struct match_entry *entries, size_t from, size_t to,
    struct topk *top, struct query_scratch *sc, const uint64_t *sel,
    uint64_t *out, size_t bit0)
{
	/* One fuzzy term, the common case, can skip hopeless candidates. */
	bool single = q->re == NULL && q->nterms == 1 &&
	    q->terms[0].kind == TERM_FUZZY && !q->terms[0].negate;

	/*
	 * Pruning is only as good as the floor, the k-th best so far. File
	 * names starting with the query's first byte hold most of the best
	 * matches, so scoring them first raises the floor early, whatever
	 * order the walk left the entries in; the result is the same either
	 * way. A '/' asks for a path match: no such shortcut.
	 */
	size_t matched = 0;
	bool seeded = single && q->terms[0].pat.len > 1 &&
	    memchr(q->terms[0].pat.text, '/', q->terms[0].pat.len) == NULL;

	struct query_narrow_typo nt = { .on = false };

	sc->ncand = 0;
	sc->cand_over = false;
	if (out != NULL && single)
		query_narrow_typo_prep(q, &nt);
	else if (out != NULL)
		query_narrow_keep(q, arena, entries, from, to, sel, out, bit0);
	if (seeded)
		matched = query_run_pass(q, arena, entries, from, to, top, sc,
		    true, QUERY_PASS_SEED, sel, out, &nt, bit0) +
		    query_run_pass(q, arena, entries, from, to, top, sc, true,
		    QUERY_PASS_REST, sel, out, &nt, bit0);
	else
		matched = query_run_pass(q, arena, entries, from, to, top, sc,
		    single, QUERY_PASS_ALL, sel, out, &nt, bit0);
	/*
	 * Typo matches last, so clean ones set the floor first: with a list
	 * already full of clean matches better than any typo match could
	 * be, the pass is skipped whole.
	 */
	/* Another part's list may already leave typo matches no room. */
	if (single && q->typo != NULL && sc->shared_floor != NULL) {
		int32_t f = atomic_load_explicit(sc->shared_floor,
		    memory_order_relaxed);

		if (f > MATCH_NONE + sc->bonus_max &&
		    f - sc->bonus_max > q->typo->ub)
			return matched;
	}
	if (single && query_typos_needed(q, top, sc->bonus_max)) {
		if (seeded && !sc->cand_over)
			query_run_typo_list(q, arena, entries, top, sc);
		else
			query_run_pass(q, arena, entries, from, to, top, sc,
			    true, QUERY_PASS_TYPO, sel, NULL, &nt, bit0);
	}
	return matched;
}

