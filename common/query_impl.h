/*
 * query_impl.h - what query.c and query_run.c share, and no one else.
 *
 * Owns: the layout of a compiled query (struct query, struct query_term),
 * which query.c builds and query_run.c and query_narrow.c only read
 * (const everywhere).
 * Never touches: any state of its own. Callers outside query.c and
 * query_run.c include query.h, where a struct query stays opaque.
 */
#ifndef FIDX_QUERY_IMPL_H
#define FIDX_QUERY_IMPL_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "match.h"
#include "query.h"
#include "regex.h"
#include "typo.h"

enum term_kind {
	TERM_FUZZY,
	TERM_LITERAL,
};

struct query_term {
	enum term_kind kind;
	enum match_anchor anchor;	/* TERM_LITERAL only */
	bool negate;
	bool required;			/* a positive fuzzy term alone in its group */
	bool fold;			/* ignores non-ASCII case (fold.h) */
	unsigned group;			/* terms sharing a group are ORed */
	struct match_pattern pat;	/* text points into query->buf */
};

struct query {
	enum query_mode mode;
	struct query_term *terms;
	size_t nterms;
	unsigned ngroups;
	uint64_t need;		/* mask every matching path must contain */
	bool all_required;	/* every term is required (see query_term) */
	struct typo *typo;	/* one-term fuzzy queries only, or NULL */
	bool fold;		/* some term ignores non-ASCII case */
	char *buf;		/* the terms' unescaped, folded bytes */
	size_t buf_used, buf_size;
	/*
	 * Regex mode: the pattern in UTF and in byte mode (regex.h); re is
	 * the first that exists, NULL in the other modes.
	 */
	struct regex rx;
	const pcre2_code *re;
};

/* The one fuzzy term a typo may be forgiven in, or NULL. */
static inline const struct query_term *
query_typo_term(const struct query *q)
{
	const struct query_term *t = q->nterms == 1 ? &q->terms[0] : NULL;

	if (q->re != NULL || t == NULL || t->kind != TERM_FUZZY || t->negate)
		return NULL;
	return t;
}

/*
 * The next entry at or after i whose bit (bit0 + entry) is set in sel,
 * or to; sel NULL: i, every entry (query_run_sel, query_narrow_keep).
 */
static inline size_t
query_sel_next(const uint64_t *sel, size_t bit0, size_t i, size_t to)
{
	size_t b = bit0 + i, lim = bit0 + to;

	if (sel == NULL)
		return i;
	while (b < lim) {
		uint64_t w = sel[b >> 6] >> (b & 63);

		if (w != 0) {
			b += (size_t)__builtin_ctzll(w);
			return b < lim ? b - bit0 : to;
		}
		b = (b | 63) + 1;
	}
	return to;
}

/*
 * The typo half of a candidate test (query.h, "Narrowing"), prepared
 * once per run: the table typo_init() makes, for query_narrow_typo_in().
 * on is false for a query with no typo term (none of it applies).
 */
struct query_narrow_typo {
	bool on, icase;
	uint8_t c0;
	size_t m;
	uint64_t full;
	uint64_t peq[256];
};

void query_narrow_typo_prep(const struct query *q,
    struct query_narrow_typo *nt);

/* True if the file name of path (entry e) passes nt's test. */
bool query_narrow_typo_in(const struct query_narrow_typo *nt,
    const char *path, const struct match_entry *e);

/* True if q's term i is one every match needs (positive, alone). */
bool query_narrow_required(const struct query *q, size_t i);

#endif
