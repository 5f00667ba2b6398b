/*
 * typo.h - matching a pattern with a byte or two typed by mistake.
 *
 * Owns: the edit budget, the prepared typo state of one pattern (struct
 * typo: its LCS table and gram filter), and the typo tier of the score.
 * Never touches: clean scoring (match.h: what is left of the pattern is
 * scored by match_fuzzy() there), query syntax (query.h), memory (the
 * caller holds the struct typo), I/O, threads. Pure given its scratch,
 * as match.h is.
 *
 * A pattern with a byte typed by mistake (extra, wrong, or one of a swapped
 * pair) still matches once that byte is left out; one left out already
 * matches, as a gap. So a typo match is p less up to `edits` of its bytes,
 * in the file name, found as a longest common subsequence (bit-parallel,
 * one 64-bit word: patterns up to 64 bytes) and scored as the best
 * alignment of what is left, scaled to the whole pattern's length and
 * discounted for what was left out (see typo_scale). Only a good alignment
 * counts (seven eighths of the best a pattern that long can score, all of
 * it for 3 bytes or fewer: word starts, runs), so a random string finds no
 * junk. Which typo matches compete with clean ones is judged from the
 * name itself, not from the pattern's letters: a name whose start, up to
 * the end of a word, is one edit from the pattern (two from 8 bytes on; a
 * swapped pair is one edit, and all 4 bytes allow) is the word the pattern
 * was meant to be ("licnese": LICENSE, "scirpt": script, "sdtlib.h":
 * stdlib.h), scored as that word typed right less TYPO_PENALTY an edit
 * (two for an edit other than a swap), in no tier: below a clean match of
 * the same word, above a scattered one (typo_word). Every other typo match
 * ("dkrfl" in "drop-flags") keeps to a tier of its own, TYPO_TIER below
 * every clean match, so the clean matches of an abbreviation never give
 * way to it. The file name must begin with the pattern's first byte
 * (people rarely mistype a name's first letter), and share a piece of it as
 * long as what is left split in edits + 1 pieces (see struct typo). Typo
 * matches are not counted as matched.
 */
#ifndef FIDX_TYPO_H
#define FIDX_TYPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "match.h"

#define TYPO_PENALTY MATCH_SCORE

#define TYPO_MAX_LEN 64

struct typo {
	uint64_t peq[256];	/* bit i set where p's byte i matches */
	uint64_t full;		/* the low p->len bits */
	int edits;		/* bytes that may be left out; 0: off */
	bool utf8;		/* p has bytes >= 0x80: characters go whole */
	int32_t ub;		/* the best a one-edit typo match can score */
	/*
	 * The pattern's substrings of `gram` bytes, hashed into a bitmap: a
	 * typo leaves a word in at most edits + 1 pieces, so a file name
	 * sharing none of them is no typo match (0: no such check).
	 */
	size_t gram;
	uint64_t grams[1024];
};

/* Edits p may have: 0 up to 3 bytes, 1 up to 7, 2 beyond (64 at most). */
int typo_budget(size_t len);

/* Prepares t for p with up to edits (capped by typo_budget). */
void typo_init(struct typo *t, const struct match_pattern *p, int edits);

/*
 * The typo score of s, for an s that p does not match cleanly: MATCH_NONE
 * when no t->edits bytes left out make it match, MATCH_BELOW when it
 * provably scores under floor. With pos, the matched positions go there
 * and their count to *npos.
 */
int32_t typo_match(const struct match_pattern *p, const struct typo *t,
    const char *s, size_t n, size_t base, struct match_scratch *sc,
    int32_t floor, uint32_t *pos, int *npos);

/*
 * The near-word reading of s alone: the file name, begun with p's first
 * byte, whose start up to the end of a word is within t->edits edits of p
 * (a swapped pair is one; 4 bytes allow only a swap), scored as that word
 * typed right (its clean score brought to p's length), less TYPO_PENALTY
 * an edit, in no tier. MATCH_NONE if there is none. typo_match() tries it
 * first; a caller with a clean match of s takes the better of the two, so
 * a clean alignment smeared over a path ("sdtlib.h" in /usr/include/
 * stdlib.h) does not hide the word. pos/npos as typo_match's (npos is the
 * word's length).
 */
int32_t typo_word(const struct match_pattern *p, const struct typo *t,
    const char *s, size_t n, size_t base, uint32_t *pos, int *npos);

/* Typo matches score this far below every clean one (see struct typo). */
#define TYPO_TIER (1 << 24)

/* True for a score in the typo tier. */
static inline bool
typo_in_tier(int32_t score)
{
	return score > MATCH_BELOW && score < -(TYPO_TIER / 2);
}

#endif
