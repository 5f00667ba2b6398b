/*
 * query_narrow.c - a query's candidate set and when one query's lies
 * inside another's (query.h, "Narrowing"). It reads struct query as
 * query_run.c does (query_impl.h) and keeps no state of its own.
 *
 * Why these tests and no finer ones: each must be implied by every way
 * query_run() can match a path, and each must shrink as a term grows, so
 * that a set narrowed keystroke after keystroke is the last query's own.
 * A clean match of a term (fuzzy, or literal with any anchor) places its
 * bytes in order in the path: a subsequence. A typo match (typo_match())
 * needs the file name to begin with the term's first byte and a longest
 * common subsequence of all but `edits` (at most 2) of its bytes; a term
 * t2 holding t1 as a subsequence loses at most |t2| - |t1| of that
 * common subsequence when cut to t1, so the test of t2 implies t1's.
 */
#include "query_impl.h"

#include <string.h>

/* Bytes of a typo term's common subsequence its candidates may lack. */
#define QUERY_NARROW_EDITS 2

/* True if term i is positive and alone in its group: a path needs it. */
bool
query_narrow_required(const struct query *q, size_t i)
{
	const struct query_term *t = &q->terms[i];

	return !t->negate && (i == 0 || q->terms[i - 1].group != t->group) &&
	    (i + 1 == q->nterms || q->terms[i + 1].group != t->group);
}

/*
 * The term a typo match could be found for, whatever the request's typo
 * setting (a later query may ask for them): query_typo_term()'s, and no
 * '/' (query_set_typos() gives those none), within TYPO_MAX_LEN.
 */
static const struct query_term *
query_narrow_typo_term(const struct query *q)
{
	const struct query_term *t = query_typo_term(q);

	if (t == NULL || t->pat.path || t->pat.len == 0 ||
	    t->pat.len > TYPO_MAX_LEN)
		return NULL;
	return t;
}

bool
query_narrowable(const struct query *q)
{
	if (q->re != NULL || q->fold)
		return false;
	for (size_t i = 0; i < q->nterms; i++)
		if (query_narrow_required(q, i))
			return true;
	return false;	/* nothing required: every path is a candidate */
}

/* True if a path holding byte b where t2 has it holds t1's byte a. */
static inline bool
query_narrow_byte(const struct match_pattern *t1,
    const struct match_pattern *t2, uint8_t a, uint8_t b)
{
	if (t1->icase)
		return a == match_lower[b];
	return !t2->icase && a == b;
}

/* True if t1's bytes are a subsequence of t2's, in a case t2 implies. */
static bool
query_narrow_holds(const struct match_pattern *t1,
    const struct match_pattern *t2)
{
	size_t j = 0;

	if (!t1->icase && t2->icase)
		return false;	/* t2 matches cases t1 does not */
	for (size_t i = 0; i < t1->len; i++, j++) {
		while (j < t2->len && !query_narrow_byte(t1, t2,
		    (uint8_t)t1->text[i], (uint8_t)t2->text[j]))
			j++;
		if (j == t2->len)
			return false;
	}
	return true;
}

bool
query_narrows(const struct query *old, const struct query *q)
{
	const struct query_term *nt = query_narrow_typo_term(q);
	const struct query_term *ot = query_narrow_typo_term(old);

	if (!query_narrowable(old) || !query_narrowable(q))
		return false;
	/* Each path q matches holds every term old requires. */
	for (size_t i = 0; i < old->nterms; i++) {
		bool held = false;

		if (!query_narrow_required(old, i))
			continue;
		for (size_t k = 0; k < q->nterms && !held; k++)
			held = query_narrow_required(q, k) && query_narrow_holds(
			    &old->terms[i].pat, &q->terms[k].pat);
		if (!held)
			return false;
	}
	/*
	 * A typo reading of q needs old's typo test to hold too: the same
	 * first byte (the term above holds old's as a subsequence already).
	 */
	if (nt != NULL && (ot == NULL || !query_narrow_byte(&ot->pat,
	    &nt->pat, (uint8_t)ot->pat.text[0], (uint8_t)nt->pat.text[0])))
		return false;
	return true;
}

/*
 * The length of the longest common subsequence of p and s, as typo.c's
 * typo_lcs() computes it (the same table, from the same pattern), so the
 * bound here is the one typo_match() tests.
 */
static size_t
query_narrow_lcs(const uint64_t *peq, uint64_t full, const uint8_t *s,
    size_t n)
{
	uint64_t v = ~0ull;

	for (size_t j = 0; j < n; j++) {
		uint64_t u = v & peq[s[j]];

		v = (v + u) | (v - u);
	}
	return (size_t)__builtin_popcountll(~v & full);
}

void
query_narrow_typo_prep(const struct query *q, struct query_narrow_typo *nt)
{
	const struct query_term *tt = query_narrow_typo_term(q);
	const struct match_pattern *p;

	nt->on = false;
	if (tt == NULL || q->fold)
		return;
	p = &tt->pat;
	/* typo_init()'s table: both cases of a letter if icase. */
	memset(nt->peq, 0, sizeof(nt->peq));
	nt->m = p->len;
	nt->full = p->len == 64 ? ~0ull : (1ull << p->len) - 1;
	for (size_t i = 0; i < p->len; i++) {
		uint8_t c = (uint8_t)p->text[i];

		nt->peq[c] |= 1ull << i;
		if (p->icase && c >= 'a' && c <= 'z')
			nt->peq[c - 32] |= 1ull << i;
	}
	nt->c0 = (uint8_t)p->text[0];
	nt->icase = p->icase;
	nt->on = true;
}

bool
query_narrow_typo_in(const struct query_narrow_typo *nt, const char *path,
    const struct match_entry *e)
{
	const uint8_t *s = (const uint8_t *)path + e->base;

	if (!nt->on || e->base >= e->len ||
	    (nt->icase ? match_lower[s[0]] : s[0]) != nt->c0)
		return false;
	return query_narrow_lcs(nt->peq, nt->full, s, e->len - e->base) +
	    QUERY_NARROW_EDITS >= nt->m;
}

size_t
query_narrow_keep(const struct query *q, const char *arena,
    const struct match_entry *entries, size_t from, size_t to,
    const uint64_t *sel, uint64_t *out, size_t bit0)
{
	struct query_narrow_typo nt;
	size_t kept = 0;

	query_narrow_typo_prep(q, &nt);
	for (size_t i = query_sel_next(sel, bit0, from, to); i < to;
	    i = query_sel_next(sel, bit0, i + 1, to)) {
		const struct match_entry *e = &entries[i];
		const char *path = arena + e->off;
		bool in = (e->mask & q->need) == q->need;

		for (size_t k = 0; in && k < q->nterms; k++)
			if (query_narrow_required(q, k))
				in = match_fuzzy_possible(&q->terms[k].pat,
				    path, e->len);
		if (in || query_narrow_typo_in(&nt, path, e)) {
			out[(bit0 + i) >> 6] |= 1ull << ((bit0 + i) & 63);
			kept++;
		}
	}
	return kept;
}
