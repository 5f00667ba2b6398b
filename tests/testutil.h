/*
 * testutil.h - small helpers the unit tests share.
 *
 * Owns: nothing at run time; static inline functions only.
 * Include cmocka.h first: a helper that cannot go on fails the test.
 */
#ifndef FIDX_TESTUTIL_H
#define FIDX_TESTUTIL_H

#include <stdint.h>
#include <string.h>

#include "../common/match.h"
#include "../common/query.h"
#include "../common/topk.h"

/* splitmix64: a fixed seed gives the same run everywhere. */
static inline uint64_t
rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* qsort comparator: best topk item first. */
static inline int
cmp_items(const void *a, const void *b)
{
	if (topk_better(a, b))
		return -1;
	return topk_better(b, a) ? 1 : 0;
}

/*
 * The fuzzy score of path (len bytes) under a query compiled for this
 * one call, with up to typos bytes forgiven (query_set_typos; 0: none).
 */
static inline int32_t
score_once(const char *query, const char *path, size_t len, int typos)
{
	struct fidx_err err;
	struct query *q = query_compile(query, strlen(query), QUERY_FUZZY,
	    &err);
	struct query_scratch *sc;
	int32_t v;

	assert_non_null(q);
	assert_int_equal(query_set_typos(q, typos), 0);
	sc = query_scratch_new(q);
	assert_non_null(sc);
	v = query_score(q, path, len, match_basename(path, len),
	    match_mask(path, len), sc);
	query_scratch_free(sc);
	query_free(q);
	return v;
}

#endif
