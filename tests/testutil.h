/*
 * testutil.h - small helpers the unit tests share.
 *
 * Owns: nothing at run time; static inline functions only.
 */
#ifndef FIDX_TESTUTIL_H
#define FIDX_TESTUTIL_H

#include <stdint.h>

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

#endif
