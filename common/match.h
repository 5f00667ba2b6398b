/*
 * match.h - scoring one pattern against one path.
 *
 * Owns: the character classes, the presence mask, the bonus model, and
 * the per-thread scratch the scorer needs.
 * Never touches: query syntax (query.h), typo matching (typo.h, which
 * scores what is left of a pattern with these functions), result
 * ordering (topk.h), I/O, threads. Every function here is pure given its scratch, so callers may
 * score on as many threads as they like with one scratch per thread.
 *
 * Paths are bytes. Nothing here assumes UTF-8, NUL termination or a
 * maximum path length beyond the 16-bit length of struct match_entry.
 *
 * The score of an alignment (a strictly increasing list of matched byte
 * positions) is one sum, the same whichever way it was found:
 *   - every matched byte earns MATCH_SCORE, plus MATCH_BONUS_BASENAME if it
 *     lies in the file name;
 *   - the first byte earns twice the boundary bonus of its position (after
 *     '/', start, space, '_-.', a camelCase hump, a digit after letters);
 *     in directory names every boundary bonus is halved, so the word
 *     starts of the file name, which people abbreviate, count most; the
 *     byte after a name's leading punctuation (.bashrc, __main__.py)
 *     counts as one after '/'; a first byte inside the file name's first
 *     word earns MATCH_BONUS_INNER (libfoo: a tier below a word start);
 *   - the last byte earns MATCH_BONUS_END if it ends a word of the file
 *     name right after the byte before (or a vowel gap), from 3 bytes on;
 *   - a byte right after the previous one earns the largest of its own
 *     bonus, the best bonus seen in its run, and MATCH_BONUS_CONSECUTIVE;
 *   - a byte after a gap earns its own bonus, minus MATCH_GAP_START and
 *     MATCH_GAP_EXTEND for each skipped byte after the first.
 * Bytes before the first match and after the last cost nothing: the
 * caller breaks ties on path length, which orders them without letting a
 * deep directory outweigh a better-placed match.
 * match_fuzzy() finds the alignment with the best such score (a DP in the
 * manner of fzy and fzf's v2, restricted per query byte to the columns a
 * greedy forward and backward scan leave possible).
 */
#ifndef FIDX_MATCH_H
#define FIDX_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The score of "no match"; every real score is far above it. */
#define MATCH_NONE INT32_MIN

#define MATCH_SCORE 16
#define MATCH_BONUS_BASENAME 8
#define MATCH_BONUS_SLASH 10	/* after '/', or at the start of the path */
#define MATCH_BONUS_WHITE 10	/* after a space or tab */
#define MATCH_BONUS_BOUNDARY 8	/* after '_', '-', '.', or other punctuation */
#define MATCH_BONUS_CAMEL 7	/* aB, or a letter then a digit */
#define MATCH_BONUS_NONWORD 8	/* the matched byte is itself punctuation */
#define MATCH_BONUS_CONSECUTIVE 4
/*
 * The first matched byte inside the file name's first word: a tier below
 * a word start, above the inside of any other word. A name's meaningful
 * part often starts there, after a prefix people leave out: the lib of
 * libfoo.so, the mk of mke2fs.conf, the time of timesyncd.conf.
 */
#define MATCH_BONUS_INNER 4
/*
 * The last matched byte where it ends a word of the file name: an
 * abbreviation typed to its end names that word whole ("cmockaso": the
 * .so of libcmocka.so.0, not the so of cmocka_8h_source.html; "cfgjsn":
 * config.json), as the first byte at a word start names its beginning.
 */
#define MATCH_BONUS_END 8
#define MATCH_FIRST_MULTIPLIER 2
#define MATCH_GAP_START 3
#define MATCH_GAP_EXTEND 1
#define MATCH_DIR_BONUS_DIVISOR 2

/*
 * One candidate in a flat list: its bytes live in a separate arena at
 * [off, off + len). 16 bytes, as DESIGN.md's memory model promises.
 */
struct match_entry {
	uint64_t mask;	/* match_mask() of the path */
	uint32_t off;	/* offset of the path in its arena */
	uint16_t len;	/* path length in bytes */
	uint16_t base;	/* offset of the file name within the path */
};

/* A mask that passes every pattern: for lists scanned once. */
#define MATCH_MASK_ANY UINT64_MAX

/* The mask bit of the bytes >= 0x80 (UTF-8 beyond ASCII). */
#define MATCH_MASK_HIGH (1ull << 63)

/*
 * Fills e for the path at arena + off (len bytes). The mask pays off
 * when a list is queried many times (an index); a list scanned once (a
 * filter) skips it with mask = false, and gets MATCH_MASK_ANY.
 */
void match_entry_init(struct match_entry *e, const char *arena, uint32_t off,
    uint16_t len, bool mask);

/*
 * A case-folded character-presence set of s: a pattern can only match a
 * path whose mask contains the pattern's mask. Letters fold to one bit,
 * so the mask is a valid filter for case-sensitive patterns too.
 */
uint64_t match_mask(const char *s, size_t n);

/* Offset of the file name: one past the last '/' that is not the final byte. */
size_t match_basename(const char *s, size_t n);

/*
 * The bonus for matching s[j], from the classes of s[j - 1] and s[j],
 * divided by MATCH_DIR_BONUS_DIVISOR in directory names (before base).
 */
int match_bonus_at(const char *s, size_t j, size_t base);

/*
 * [*from, *to): the bytes inside the first word of the file name at base
 * (after its leading punctuation and its first byte, up to the next word
 * start), where a first matched byte earns MATCH_BONUS_INNER.
 */
void match_first_word(const char *s, size_t n, size_t base, size_t *from,
    size_t *to);

/*
 * A prepared pattern: the needle bytes (folded to lower case when the
 * pattern is case-insensitive) and their mask. text is borrowed: it must
 * outlive the pattern.
 */
struct match_pattern {
	const char *text;
	size_t len;
	bool icase;
	bool path;		/* has a '/': asks for a path, see match_base */
	uint64_t mask;
};

/*
 * The file-name offset to score p with. A pattern with a '/' in it asks
 * for a path ("src/mai", "lib/py/site"), not a file name, so the whole
 * path counts as one: no byte earns more for being in the file name, and
 * word starts in directories count in full.
 */
static inline size_t
match_base(const struct match_pattern *p, size_t base)
{
	return p->path ? 0 : base;
}

/*
 * Prepares p over text, which the caller has already folded if icase
 * (smart case is the query's to decide: fold_has_upper()).
 */
void match_pattern_init(struct match_pattern *p, const char *text, size_t len,
    bool icase);


/* Per-thread working memory of the scorer. */
struct match_scratch;

/* NULL when out of memory. */
struct match_scratch *match_scratch_new(void);
void match_scratch_free(struct match_scratch *sc);

/*
 * Best fuzzy alignment of p within s (n bytes, file name at base).
 * Returns its score, or MATCH_NONE. If pos is not NULL it receives the
 * p->len matched positions in increasing order.
 */
int32_t match_fuzzy(const struct match_pattern *p, const char *s, size_t n,
    size_t base, struct match_scratch *sc, uint32_t *pos);

/* True if p is a subsequence of s: the cheap half of match_fuzzy(). */
bool match_fuzzy_possible(const struct match_pattern *p, const char *s,
    size_t n);

/* A match known to score below the caller's floor; its score unknown. */
#define MATCH_BELOW (INT32_MIN + 1)

/*
 * match_fuzzy() for a caller that keeps only scores >= floor (a full
 * top-k heap): a match that provably scores less returns MATCH_BELOW
 * without the DP. floor = MATCH_NONE keeps everything.
 */
int32_t match_fuzzy_above(const struct match_pattern *p, const char *s,
    size_t n, size_t base, struct match_scratch *sc, int32_t floor,
    uint32_t *pos);

/*
 * A score match_fuzzy() cannot exceed for this path (exact when the
 * table would pass its cap), or MATCH_NONE: cheap, for pruning sums.
 */
int32_t match_fuzzy_bound(const struct match_pattern *p, const char *s,
    size_t n, size_t base, struct match_scratch *sc);

/* Where a literal pattern must sit. */
enum match_anchor {
	MATCH_ANYWHERE,	/* substring */
	MATCH_PREFIX,
	MATCH_SUFFIX,
	MATCH_WHOLE,
};

/*
 * Best occurrence of p as a literal run in s under anchor, scored as the
 * alignment of that run. Returns the score or MATCH_NONE; pos as above.
 */
int32_t match_literal(const struct match_pattern *p, enum match_anchor anchor,
    const char *s, size_t n, size_t base, uint32_t *pos);

/* The best score any pattern of k bytes can reach, anywhere. */
int32_t match_best_possible(size_t k);

/* Score of a given alignment (npos >= 1 strictly increasing positions). */
int32_t match_score_positions(const char *s, size_t n, size_t base,
    const uint32_t *pos, size_t npos);

/* ASCII fold of one byte; bytes >= 0x80 are left alone. */
extern const uint8_t match_lower[256];

/* Every byte as it is: the fold table of a case-sensitive pattern. */
extern const uint8_t match_ident[256];

#endif
