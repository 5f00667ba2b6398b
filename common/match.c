/* match.c - see match.h for the score this file computes. */
#include "match.h"
#include "alloc.h"
#include "limits.h"

#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum match_class {
	CLASS_LOWER,
	CLASS_UPPER,
	CLASS_DIGIT,
	CLASS_SLASH,
	CLASS_WHITE,
	CLASS_DELIM,
	CLASS_HIGH,	/* a byte of a multi-byte character: a letter for us */
	CLASS_COUNT
};

/* Tables built at compile time so the scorer needs no initialisation. */
#define R4(f, b) f(b), f(b + 1), f(b + 2), f(b + 3)
#define R16(f, b) R4(f, b), R4(f, b + 4), R4(f, b + 8), R4(f, b + 12)
#define R64(f, b) R16(f, b), R16(f, b + 16), R16(f, b + 32), R16(f, b + 48)
#define R256(f) R64(f, 0), R64(f, 64), R64(f, 128), R64(f, 192)

/* Both arms in 0..255: clang checks the untaken one's conversion too. */
#define LOWER(c) ((c) + ((c) >= 'A' && (c) <= 'Z' ? 32 : 0))
const uint8_t match_lower[256] = { R256(LOWER) };
#define IDENT(c) (c)
const uint8_t match_ident[256] = { R256(IDENT) };

#define CLASS(c) \
	((c) >= 'a' && (c) <= 'z' ? CLASS_LOWER : \
	 (c) >= 'A' && (c) <= 'Z' ? CLASS_UPPER : \
	 (c) >= '0' && (c) <= '9' ? CLASS_DIGIT : \
	 (c) == '/' ? CLASS_SLASH : \
	 (c) == ' ' || (c) == '\t' ? CLASS_WHITE : \
	 (c) >= 0x80 ? CLASS_HIGH : CLASS_DELIM)
static const uint8_t match_class[256] = { R256(CLASS) };

/*
 * Mask bits: 26 letters (folded), 10 digits, then the punctuation people
 * type in paths, then one bit for everything else ASCII and one for bytes
 * >= 0x80.
 */
#define MASKBIT(c) \
	((c) >= 'a' && (c) <= 'z' ? (c) - 'a' : \
	 (c) >= 'A' && (c) <= 'Z' ? (c) - 'A' : \
	 (c) >= '0' && (c) <= '9' ? 26 + (c) - '0' : \
	 (c) == '.' ? 36 : (c) == '_' ? 37 : (c) == '-' ? 38 : \
	 (c) == '/' ? 39 : (c) == ' ' ? 40 : (c) >= 0x80 ? 63 : \
	 41 + (c) % 22)
static const uint8_t match_maskbit[256] = { R256(MASKBIT) };

/* match_bonus_table[class of previous byte][class of this byte] */
static const int8_t match_bonus_table[CLASS_COUNT][CLASS_COUNT] = {
	/* prev:        lower upper digit slash white delim high (this) */
	[CLASS_LOWER] = { 0, MATCH_BONUS_CAMEL, MATCH_BONUS_CAMEL,
	    MATCH_BONUS_NONWORD, MATCH_BONUS_NONWORD, MATCH_BONUS_NONWORD, 0 },
	[CLASS_UPPER] = { 0, 0, MATCH_BONUS_CAMEL,
	    MATCH_BONUS_NONWORD, MATCH_BONUS_NONWORD, MATCH_BONUS_NONWORD, 0 },
	[CLASS_DIGIT] = { 0, 0, 0,
	    MATCH_BONUS_NONWORD, MATCH_BONUS_NONWORD, MATCH_BONUS_NONWORD, 0 },
	[CLASS_SLASH] = { MATCH_BONUS_SLASH, MATCH_BONUS_SLASH,
	    MATCH_BONUS_SLASH, MATCH_BONUS_NONWORD, MATCH_BONUS_NONWORD,
	    MATCH_BONUS_NONWORD, MATCH_BONUS_SLASH },
	[CLASS_WHITE] = { MATCH_BONUS_WHITE, MATCH_BONUS_WHITE,
	    MATCH_BONUS_WHITE, MATCH_BONUS_NONWORD, MATCH_BONUS_NONWORD,
	    MATCH_BONUS_NONWORD, MATCH_BONUS_WHITE },
	[CLASS_DELIM] = { MATCH_BONUS_BOUNDARY, MATCH_BONUS_BOUNDARY,
	    MATCH_BONUS_BOUNDARY, MATCH_BONUS_NONWORD, MATCH_BONUS_NONWORD,
	    MATCH_BONUS_NONWORD, MATCH_BONUS_BOUNDARY },
	[CLASS_HIGH] = { 0, 0, 0,
	    MATCH_BONUS_NONWORD, MATCH_BONUS_NONWORD, MATCH_BONUS_NONWORD, 0 },
};

/* A score no reachable cell has; adding bonuses to it cannot overflow. */
#define NEG (INT32_MIN / 2)

struct match_scratch {
	/* Rolling rows: [2][ROW + 2] each (see match_dp_score). */
	int32_t *d, *m;
	uint8_t *r;		/* best bonus seen in the run ending here */
	int8_t *bonus;		/* bonus of each path byte */
	/* Full tables for positions, FIDX_MATCH_DP_CELLS each. */
	int32_t *fd, *fm;
	uint8_t *fflag;
	uint32_t lo[FIDX_MAX_QUERY], hi[FIDX_MAX_QUERY];
	size_t fw_from, fw_to;	/* match_first_word() of the path */
};

#define FLAG_CONSEC 1	/* D came from the previous byte's D */
#define FLAG_FROM_D 2	/* M equals this column's D */
#define FLAG_VOWEL1 4	/* D came over one vowel (see match_vowel_gap) */
#define FLAG_VOWEL2 8	/* ... over two */

/*
 * Abbreviations drop vowels: "mkfl" is Makefile's consonants, "lcns"
 * LICENSE's, "rdme" README's. So the byte after a gap of one or two
 * vowels earns at least MATCH_VOWEL_GAP_FLOOR instead of a gap's
 * penalty: enough for Makefile to beat mkfifo on "mkfl", less than a word
 * start after a short gap (foo_bar over fobbed on "fb").
 */
#define MATCH_VOWEL_GAP_FLOOR 2
static const uint8_t match_vowel[256] = {
	['a'] = 1, ['e'] = 1, ['i'] = 1, ['o'] = 1, ['u'] = 1,
	['A'] = 1, ['E'] = 1, ['I'] = 1, ['O'] = 1, ['U'] = 1,
};

/* True if s[from, to) is one or two vowels. */
static inline bool
match_vowel_gap(const uint8_t *s, size_t from, size_t to)
{
	return (to == from + 1 && match_vowel[s[from]]) ||
	    (to == from + 2 && match_vowel[s[from]] && match_vowel[s[from + 1]]);
}
#define ROW (FIDX_MAX_PATH_CEILING + 1)

struct match_scratch *
match_scratch_new(void)
{
	struct match_scratch *sc;

	if ((sc = fidx_calloc(1, sizeof(*sc))) == NULL)
		return NULL;
	sc->d = fidx_reallocarray(NULL, 2 * (ROW + 2), sizeof(*sc->d));
	sc->m = fidx_reallocarray(NULL, 2 * (ROW + 2), sizeof(*sc->m));
	sc->r = fidx_malloc(2 * (ROW + 2));
	sc->bonus = fidx_malloc(ROW);
	sc->fd = fidx_reallocarray(NULL, FIDX_MATCH_DP_CELLS, sizeof(*sc->fd));
	sc->fm = fidx_reallocarray(NULL, FIDX_MATCH_DP_CELLS, sizeof(*sc->fm));
	sc->fflag = fidx_malloc(FIDX_MATCH_DP_CELLS);
	if (sc->d == NULL || sc->m == NULL || sc->r == NULL ||
	    sc->bonus == NULL || sc->fd == NULL || sc->fm == NULL ||
	    sc->fflag == NULL) {
		match_scratch_free(sc);
		return NULL;
	}
	return sc;
}

void
match_scratch_free(struct match_scratch *sc)
{
	if (sc == NULL)
		return;
	free(sc->d);
	free(sc->m);
	free(sc->r);
	free(sc->bonus);
	free(sc->fd);
	free(sc->fm);
	free(sc->fflag);
	free(sc);
}

uint64_t
match_mask(const char *s, size_t n)
{
	const uint8_t *u = (const uint8_t *)s;
	uint64_t m0 = 0, m1 = 0, m2 = 0, m3 = 0;
	size_t i = 0;

	/* Four accumulators break the dependency chain of one. */
	for (; i + 4 <= n; i += 4) {
		m0 |= 1ull << match_maskbit[u[i]];
		m1 |= 1ull << match_maskbit[u[i + 1]];
		m2 |= 1ull << match_maskbit[u[i + 2]];
		m3 |= 1ull << match_maskbit[u[i + 3]];
	}
	for (; i < n; i++)
		m0 |= 1ull << match_maskbit[u[i]];
	return m0 | m1 | m2 | m3;
}

size_t
match_basename(const char *s, size_t n)
{
	const char *slash;

	/* "dir/sub/" names the directory "sub": skip one trailing slash. */
	if (n > 0 && s[n - 1] == '/')
		n--;
	slash = memrchr(s, '/', n);
	return slash ? (size_t)(slash - s) + 1 : 0;
}

void
match_entry_init(struct match_entry *e, const char *arena, uint32_t off,
    uint16_t len, bool mask)
{
	const char *s = arena + off;

	e->mask = mask ? match_mask(s, len) : MATCH_MASK_ANY;
	e->off = off;
	e->len = len;
	e->base = (uint16_t)match_basename(s, len);
}

int
match_bonus_at(const char *s, size_t j, size_t base)
{
	const uint8_t *u = (const uint8_t *)s;
	int prev = j == 0 ? CLASS_SLASH : match_class[u[j - 1]];
	int b;

	/*
	 * A name's leading punctuation is free to skip: people do not type
	 * the '.' of .bashrc or the "__" of __main__.py, so what follows it
	 * starts the name as a byte after '/' does.
	 */
	if (prev == CLASS_DELIM && j >= base) {
		size_t k = base;

		while (k < j && match_class[u[k]] == CLASS_DELIM)
			k++;
		if (k == j)
			prev = CLASS_SLASH;
	}
	b = match_bonus_table[prev][match_class[u[j]]];
	return j >= base ? b : b / MATCH_DIR_BONUS_DIVISOR;
}

void
match_first_word(const char *s, size_t n, size_t base, size_t *from,
    size_t *to)
{
	const uint8_t *u = (const uint8_t *)s;
	size_t j = base;

	while (j < n && match_class[u[j]] == CLASS_DELIM)
		j++;
	*from = j + 1;
	for (j++; j < n && match_bonus_table[match_class[u[j - 1]]]
	    [match_class[u[j]]] == 0; j++)
		;
	*to = j < n ? j : n;
	if (*from > *to)
		*from = *to;
}

/*
 * The bonus of the last matched byte at j: MATCH_BONUS_END where it ends a
 * word of the file name (the name's end, or a word start next).
 */
/*
 * Patterns shorter than this earn no MATCH_BONUS_END: two bytes end a word
 * in every name with that extension ("py": each .py), which says nothing.
 */
#define MATCH_END_MIN 3

static inline int
match_end_bonus(const uint8_t *u, size_t n, size_t j, size_t base)
{
	return j >= base && (j + 1 >= n || match_bonus_table[match_class[u[j]]]
	    [match_class[u[j + 1]]] > 0) ? MATCH_BONUS_END : 0;
}

/* The bonus of the first matched byte at j: MATCH_BONUS_INNER inside [from, to). */
static inline int
match_first_bonus(int b, size_t j, size_t from, size_t to)
{
	return j >= from && j < to && b < MATCH_BONUS_INNER ?
	    MATCH_BONUS_INNER : b;
}

void
match_pattern_init(struct match_pattern *p, const char *text, size_t len,
    bool icase)
{
	p->text = text;
	p->len = len;
	p->icase = icase;
	p->path = memchr(text, '/', len) != NULL;
	p->mask = match_mask(text, len);
}

static inline int32_t
match_at(size_t j, size_t base)
{
	return MATCH_SCORE + (j >= base ? MATCH_BONUS_BASENAME : 0);
}

/* The best bonus any byte can earn. */
#define MATCH_BONUS_MAX MATCH_BONUS_SLASH
_Static_assert(MATCH_BONUS_WHITE <= MATCH_BONUS_MAX &&
    MATCH_BONUS_BOUNDARY <= MATCH_BONUS_MAX &&
    MATCH_BONUS_CAMEL <= MATCH_BONUS_MAX &&
    MATCH_BONUS_NONWORD <= MATCH_BONUS_MAX &&
    MATCH_BONUS_CONSECUTIVE <= MATCH_BONUS_MAX, "MATCH_BONUS_MAX is the max");

static inline int
imax(int a, int b)
{
	return a > b ? a : b;
}

int32_t
match_score_positions(const char *s, size_t n, size_t base,
    const uint32_t *pos, size_t npos)
{
	int32_t score;
	int run;

	size_t from, to;

	match_first_word(s, n, base, &from, &to);
	run = match_bonus_at(s, pos[0], base);
	score = match_at(pos[0], base) + MATCH_FIRST_MULTIPLIER *
	    match_first_bonus(run, pos[0], from, to);
	for (size_t i = 1; i < npos; i++) {
		int b = match_bonus_at(s, pos[i], base);
		uint32_t gap = pos[i] - pos[i - 1] - 1;

		if (gap == 0) {
			score += imax(imax(b, run), MATCH_BONUS_CONSECUTIVE);
			run = imax(run, b);
		} else if (match_vowel_gap((const uint8_t *)s, pos[i - 1] + 1,
		    pos[i])) {
			score += imax(b - MATCH_GAP_START,
			    MATCH_VOWEL_GAP_FLOOR);
			run = b;
		} else {
			score += b - MATCH_GAP_START -
			    (int32_t)(gap - 1) * MATCH_GAP_EXTEND;
			run = b;
		}
		score += match_at(pos[i], base);
	}
	/* The last byte right after the one before (or a vowel or two). */
	if (npos >= MATCH_END_MIN && (pos[npos - 1] == pos[npos - 2] + 1 ||
	    match_vowel_gap((const uint8_t *)s, pos[npos - 2] + 1,
	    pos[npos - 1])))
		score += match_end_bonus((const uint8_t *)s, n,
		    pos[npos - 1], base);
	return score;
}

/*
 * Next j in [from, n) where s[j] is c (either case if icase and c is a
 * lower-case letter). Sixteen bytes a step with SSE2, which every x86-64
 * has: a letter is found in either case by setting bit 0x20 first (no
 * other byte becomes a lower-case letter that way), so one scan does what
 * took two memchr calls, without their call overhead on short paths.
 */
static inline size_t
match_find(const uint8_t *s, size_t from, size_t n, uint8_t c, bool icase)
{
	uint8_t set = icase && c >= 'a' && c <= 'z' ? 0x20 : 0;
	size_t j = from;

#ifdef __SSE2__
	const __m128i vc = _mm_set1_epi8((char)c);
	const __m128i vs = _mm_set1_epi8((char)set);
	unsigned hit;

	if (n >= 16) {
		for (; j + 16 <= n; j += 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(s + j));

			hit = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(
			    _mm_or_si128(v, vs), vc));
			if (hit != 0)
				return j + (size_t)__builtin_ctz(hit);
		}
		if (j >= n)
			return n;
		/* The tail: the last 16 bytes, less those before j. */
		hit = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_or_si128(
		    _mm_loadu_si128((const __m128i *)(s + n - 16)), vs), vc));
		hit >>= j - (n - 16);
		return hit != 0 ? j + (size_t)__builtin_ctz(hit) : n;
	}
#endif
	for (; j < n; j++)
		if ((s[j] | set) == c)
			return j;
	return n;
}

/* Last j < end where s[j] is c as above, or (size_t)-1. */
static inline size_t
match_rfind(const uint8_t *s, size_t end, uint8_t c, bool icase)
{
	uint8_t set = icase && c >= 'a' && c <= 'z' ? 0x20 : 0;
	size_t j = end;

#ifdef __SSE2__
	const __m128i vc = _mm_set1_epi8((char)c);
	const __m128i vs = _mm_set1_epi8((char)set);
	unsigned hit;

	/* A path is never shorter than end, so end >= 16 allows s[0..16). */
	if (end >= 16) {
		for (; j >= 16; j -= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(s + j -
			    16));

			hit = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(
			    _mm_or_si128(v, vs), vc));
			if (hit != 0)
				return j - 16 + 31 - (size_t)__builtin_clz(hit);
		}
		if (j == 0)
			return (size_t)-1;
		/* The head: the first 16 bytes, less those from j on. */
		hit = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_or_si128(
		    _mm_loadu_si128((const __m128i *)s), vs), vc));
		hit &= (1u << j) - 1;
		return hit != 0 ? 31 - (size_t)__builtin_clz(hit) : (size_t)-1;
	}
#endif
	while (j-- > 0)
		if ((s[j] | set) == c)
			return j;
	return (size_t)-1;
}

/*
 * The earliest column of each query byte from q[i] on, starting the scan
 * at column j: a greedy scan left to right. False if they do not fit,
 * which is also the cheap rejection of most candidates.
 */
static bool
match_forward(const struct match_pattern *p, const uint8_t *s, size_t n,
    size_t i, size_t j, uint32_t *lo)
{
	const uint8_t *q = (const uint8_t *)p->text;

	for (; i < p->len; i++, j++) {
		j = match_find(s, j, n, q[i], p->icase);
		if (j == n)
			return false;
		lo[i] = (uint32_t)j;
	}
	return true;
}

/* The latest column of each query byte: a greedy scan right to left. */
static void
match_backward(const struct match_pattern *p, const uint8_t *s, size_t n,
    uint32_t *hi)
{
	const uint8_t *q = (const uint8_t *)p->text;
	size_t j = n;

	for (size_t i = p->len; i-- > 0;) {
		j = match_rfind(s, j, q[i], p->icase);
		hi[i] = (uint32_t)j;
	}
}

bool
match_fuzzy_possible(const struct match_pattern *p, const char *str, size_t n)
{
	const uint8_t *s = (const uint8_t *)str;
	const uint8_t *q = (const uint8_t *)p->text;
	size_t j = 0;

	for (size_t i = 0; i < p->len; i++, j++)
		if ((j = match_find(s, j, n, q[i], p->icase)) == n)
			return false;
	return true;
}

/*
 * Greedy alignment for tables too large to fill: the forward scan's end,
 * then a backward scan from there for the tightest start (fzf's v1).
 */
static int32_t
match_greedy(const struct match_pattern *p, const uint8_t *s, size_t n,
    size_t base, const uint32_t *lo, uint32_t *pos)
{
	const uint8_t *fold = p->icase ? match_lower : NULL;
	const uint8_t *q = (const uint8_t *)p->text;
	uint32_t local[FIDX_MAX_QUERY];
	uint32_t *out = pos != NULL ? pos : local;
	size_t m = p->len, j = lo[m - 1] + 1;

	for (size_t i = m; i-- > 0;) {
		while (j-- > 0)
			if ((fold ? fold[s[j]] : s[j]) == q[i])
				break;
		out[i] = (uint32_t)j;
	}
	return match_score_positions((const char *)s, n, base, out, m);
}

/*
 * One row of the DP. Row i covers columns [lo[i], last]; D is NEG beyond
 * hi[i], where q[i] cannot sit, but M runs on to `last` because the next
 * row reads it up to hi[i + 1] - 2. pd/pm are the previous row (indexed by
 * column), or NULL for row 0.
 */
static inline void
match_row(const struct match_pattern *p, const uint8_t *s, size_t n,
    size_t base,
    const int8_t *bonus, size_t i, uint32_t lo, uint32_t hi, uint32_t last,
    uint32_t plo, const int32_t *pd, const int32_t *pm, const uint8_t *pr,
    int32_t *d, int32_t *m, uint8_t *r, uint8_t *flag, size_t fw_from,
    size_t fw_to)
{
	const uint8_t *fold = p->icase ? match_lower : NULL;
	uint8_t qc = (uint8_t)p->text[i];
	int32_t prev_m = NEG;

	for (uint32_t j = lo; j <= last; j++) {
		int32_t dv = NEG;
		uint8_t f = 0, run = 0;

		if (j <= hi && (fold ? fold[s[j]] : s[j]) == qc) {
			int b = bonus[j];

			if (pd == NULL) {
				dv = MATCH_FIRST_MULTIPLIER * match_first_bonus(
				    b, j, fw_from, fw_to);
				run = (uint8_t)b;
			} else {
				int32_t consec = NEG, gap = NEG, vow = NEG;
				int vb = imax(b - MATCH_GAP_START,
				    MATCH_VOWEL_GAP_FLOOR);
				uint8_t vf = 0;

				if (pd[j - 1] > NEG) {
					int rb = pr[j - 1];

					consec = pd[j - 1] + imax(imax(b, rb),
					    MATCH_BONUS_CONSECUTIVE);
				}
				if (j >= plo + 2 && pm[j - 2] > NEG)
					gap = pm[j - 2] - MATCH_GAP_START + b;
				if (j >= plo + 2 && match_vowel[s[j - 1]] &&
				    pd[j - 2] > NEG) {
					vow = pd[j - 2] + vb;
					vf = FLAG_VOWEL1;
				}
				if (j >= plo + 3 && match_vowel[s[j - 1]] &&
				    match_vowel[s[j - 2]] && pd[j - 3] > NEG &&
				    pd[j - 3] + vb > vow) {
					vow = pd[j - 3] + vb;
					vf = FLAG_VOWEL2;
				}
				/* As match_dp_score: a tight last byte ending a word. */
				if (i + 1 == p->len && p->len >= MATCH_END_MIN) {
					int eb = match_end_bonus(s, n, j, base);

					if (consec > NEG)
						consec += eb;
					if (vow > NEG)
						vow += eb;
				}
				if (consec >= gap && consec >= vow &&
				    consec > NEG) {
					dv = consec;
					f = FLAG_CONSEC;
					run = (uint8_t)imax(pr[j - 1], b);
				} else if (vow >= gap && vow > NEG) {
					dv = vow;
					f = vf;
					run = (uint8_t)b;
				} else if (gap > NEG) {
					dv = gap;
					run = (uint8_t)b;
				}
			}
			if (dv > NEG)
				dv += match_at(j, base);
		}
		d[j] = dv;
		r[j] = run;
		if (prev_m > NEG)
			prev_m -= MATCH_GAP_EXTEND;
		if (dv >= prev_m && dv > NEG) {
			prev_m = dv;
			f |= FLAG_FROM_D;
		}
		m[j] = prev_m;
		if (flag != NULL)
			flag[j] = f;
	}
}

/*
 * A score no alignment can beat, for pruning: q[i] earns at most the best
 * bonus among the columns in [lo[i], hi[i]] where it matches (computed
 * there only, so a pruned candidate never pays for its whole window), or
 * inside a run the best such bonus of the bytes before it; and at most
 * the file-name bonus of its latest column. It starts from the bound
 * that takes MATCH_BONUS_MAX for every byte and tightens it byte by byte,
 * the doubled first byte first, so it can stop once below floor.
 */
static int32_t
match_upper_bound(const struct match_pattern *p, const char *str,
    size_t base, const uint32_t *lo, const uint32_t *hi, int32_t floor,
    size_t fw_from, size_t fw_to)
{
	const uint8_t *fold = p->icase ? match_lower : match_ident;
	const uint8_t *s = (const uint8_t *)str;
	const uint8_t *q = (const uint8_t *)p->text;
	size_t m = p->len;
	int32_t ub = (int32_t)(MATCH_FIRST_MULTIPLIER + m - 1) *
	    MATCH_BONUS_MAX + MATCH_BONUS_END;
	int run = 0;

	for (size_t i = 0; i < m; i++)
		ub += match_at(hi[i], base);
	for (size_t i = 0; i < m && ub >= floor; i++) {
		int bi = 0;

		for (uint32_t j = lo[i]; j <= hi[i] && bi < MATCH_BONUS_MAX;
		    j++)
			if (fold[s[j]] == q[i])
				bi = imax(bi, match_bonus_at(str, j, base));
		if (i == 0) {
			int fb = bi;

			/* The first byte may earn MATCH_BONUS_INNER too. */
			for (uint32_t j = lo[0] > fw_from ? lo[0] : (uint32_t)
			    fw_from; j <= hi[0] && j < fw_to && fb <
			    MATCH_BONUS_INNER; j++)
				if (fold[s[j]] == q[0])
					fb = MATCH_BONUS_INNER;
			ub -= MATCH_FIRST_MULTIPLIER * (MATCH_BONUS_MAX - fb);
		} else

			ub -= MATCH_BONUS_MAX - imax(imax(bi, run),
			    MATCH_BONUS_CONSECUTIVE);
		run = imax(run, bi);
	}
	return ub;
}

/*
 * The score half of match_fuzzy(): the same recurrence as match_row(),
 * on two rolling rows and without branches on validity. It relies on two
 * facts: NEG plus any sum of bonuses and penalties stays far below every
 * real score, and for every column in [lo[i], hi[i]] some alignment of
 * the row above ends before it, so a matching byte there always has a
 * real predecessor. Rows are offset by 2 so column j - 2 is addressable.
 */
static int32_t
match_dp_score(const struct match_pattern *p, const uint8_t *s, size_t n,
    size_t base, struct match_scratch *sc)
{
	const uint8_t *fold = p->icase ? match_lower : match_ident;
	const uint8_t *q = (const uint8_t *)p->text;
	const uint32_t *lo = sc->lo, *hi = sc->hi;
	const int8_t *bonus = sc->bonus;
	int32_t *pd = sc->d + 2, *pm = sc->m + 2;
	int32_t *cd = pd + ROW + 2, *cm = pm + ROW + 2, *t32;
	uint8_t *pr = sc->r + 2, *cr = pr + ROW + 2, *t8;
	size_t m = p->len;
	int32_t prev_m = NEG, best = NEG;
	uint32_t last = m > 1 ? hi[1] - 1 : hi[0];

	for (uint32_t j = lo[0]; j <= last; j++) {
		int32_t dv = NEG;

		if (j <= hi[0] && fold[s[j]] == q[0])
			dv = match_at(j, base) + MATCH_FIRST_MULTIPLIER *
			    match_first_bonus(bonus[j], j, sc->fw_from,
			    sc->fw_to);
		pd[j] = dv;
		pr[j] = (uint8_t)bonus[j];
		prev_m = imax(dv, prev_m - MATCH_GAP_EXTEND);
		pm[j] = prev_m;
	}
	for (size_t i = 1; i < m; i++) {
		uint8_t qc = q[i];

		last = i + 1 < m ? hi[i + 1] - 1 : hi[i];
		/* Row i reads pm from column lo[i] - 2 >= lo[i - 1] - 1. */
		pm[(ptrdiff_t)lo[i - 1] - 1] = NEG;
		prev_m = NEG;
		uint32_t j = lo[i];
		for (; j <= hi[i]; j++) {
			int b = bonus[j], rb = pr[j - 1];
			int32_t consec = pd[j - 1] +
			    imax(imax(b, rb), MATCH_BONUS_CONSECUTIVE);
			int32_t gap = pm[(ptrdiff_t)j - 2] - MATCH_GAP_START + b;
			int32_t dv = NEG;
			bool isc;

			int32_t vow = NEG;

			/* Over one or two vowels (match_vowel_gap). */
			if (match_vowel[s[j - 1]]) {
				int vb = imax(b - MATCH_GAP_START,
				    MATCH_VOWEL_GAP_FLOOR);

				if ((ptrdiff_t)j - 2 >= (ptrdiff_t)lo[i - 1])
					vow = pd[j - 2] + vb;
				if ((ptrdiff_t)j - 3 >= (ptrdiff_t)lo[i - 1] &&
				    match_vowel[s[j - 2]])
					vow = imax(vow, pd[j - 3] + vb);
			}
			/* The last byte, tight after the one before, may end a word. */
			if (i + 1 == m && m >= MATCH_END_MIN) {
				int eb = match_end_bonus(s, n, j, base);

				consec += eb;
				vow += eb;
			}
			gap = imax(gap, vow);
			isc = consec >= gap;
			if (fold[s[j]] == qc)
				dv = (isc ? consec : gap) + match_at(j, base);
			cd[j] = dv;
			cr[j] = (uint8_t)(isc ? imax(rb, b) : b);
			prev_m = imax(dv, prev_m - MATCH_GAP_EXTEND);
			cm[j] = prev_m;
		}
		/*
		 * q[i] cannot sit here, but the next row reads all three rows
		 * here: D and M, and the run R (its consecutive case), so each
		 * gets a value, as match_row() gives them.
		 */
		for (; j <= last; j++) {
			prev_m -= MATCH_GAP_EXTEND;
			cd[j] = NEG;
			cr[j] = 0;
			cm[j] = prev_m;
		}
		t32 = pd, pd = cd, cd = t32;
		t32 = pm, pm = cm, cm = t32;
		t8 = pr, pr = cr, cr = t8;
	}
	for (uint32_t j = lo[m - 1]; j <= hi[m - 1]; j++)
		best = imax(best, pd[j]);
	return best > NEG / 2 ? best : MATCH_NONE;
}

int32_t
match_fuzzy(const struct match_pattern *p, const char *str, size_t n,
    size_t base, struct match_scratch *sc, uint32_t *pos)
{
	return match_fuzzy_above(p, str, n, base, sc, MATCH_NONE, pos);
}


enum match_prep {
	MATCH_PREP_NONE,	/* p is not a subsequence */
	MATCH_PREP_PRUNED,	/* it is, but cannot score floor */
	MATCH_PREP_GREEDY,	/* the table would pass its cap */
	MATCH_PREP_OK,		/* bounds and bonuses are in sc */
};

/*
 * How many leading bytes of p may match outside the file name in an
 * alignment scoring floor or more. A byte there loses the file-name bonus
 * and all but the halved word-start bonus; once floor is near the best
 * possible score, the answer is 0, and only the file name is searched.
 */
static size_t
match_outside_max(size_t m, int32_t floor)
{
	const int32_t dir_max = imax(MATCH_BONUS_MAX / MATCH_DIR_BONUS_DIVISOR,
	    MATCH_BONUS_CONSECUTIVE);
	int32_t ub = (int32_t)m * (MATCH_SCORE + MATCH_BONUS_BASENAME) +
	    (int32_t)(MATCH_FIRST_MULTIPLIER + m - 1) * MATCH_BONUS_MAX +
	    MATCH_BONUS_END;
	size_t k = 0;

	if (floor <= MATCH_NONE)
		return m;
	/* ub is now the best score with k bytes outside; try k + 1. */
	for (; k < m; k++) {
		ub -= MATCH_BONUS_BASENAME;
		if (k == 0)
			ub -= MATCH_FIRST_MULTIPLIER * (MATCH_BONUS_MAX -
			    MATCH_BONUS_MAX / MATCH_DIR_BONUS_DIVISOR);
		else
			ub -= MATCH_BONUS_MAX - dir_max;
		if (ub < floor)
			break;
	}
	return k;
}

/*
 * The common first half of scoring. Bounds (with a floor, only for the
 * alignments match_outside_max() leaves possible: the columns each byte
 * can occupy are then narrower, and the DP searches only those); then,
 * match_upper_bound(): most candidates of a full top-k stop there. Then
 * the cell count, and the bonus of every column in the window for the DP.
 */
static enum match_prep
match_prepare(const struct match_pattern *p, const char *str, size_t n,
    size_t base, struct match_scratch *sc, int32_t floor, bool dp)
{
	const uint8_t *s = (const uint8_t *)str;
	uint32_t *lo = sc->lo, *hi = sc->hi;
	size_t m = p->len, cells = 0, k;

	if (m > n || m > FIDX_MAX_QUERY || n > FIDX_MAX_PATH_CEILING)
		return MATCH_PREP_NONE;
	if (!match_forward(p, s, n, 0, 0, lo))
		return MATCH_PREP_NONE;
	/* A match; but a high floor may want q[k..] in the file name. */
	k = match_outside_max(m, floor);
	if (k < m && lo[k] < base && !match_forward(p, s, n, k, base, lo))
		return MATCH_PREP_PRUNED;
	match_backward(p, s, n, hi);
	match_first_word(str, n, base, &sc->fw_from, &sc->fw_to);
	if (floor > MATCH_NONE &&
	    match_upper_bound(p, str, base, lo, hi, floor, sc->fw_from,
	    sc->fw_to) < floor)
		return MATCH_PREP_PRUNED;
	for (size_t i = 0; i < m; i++)
		cells += (i + 1 < m ? hi[i + 1] - 1 : hi[i]) - lo[i] + 1;
	if (cells > FIDX_MATCH_DP_CELLS)
		return MATCH_PREP_GREEDY;
	if (dp)
		for (uint32_t j = lo[0]; j <= hi[m - 1]; j++)
			sc->bonus[j] = (int8_t)match_bonus_at(str, j, base);
	return MATCH_PREP_OK;
}

int32_t
match_fuzzy_bound(const struct match_pattern *p, const char *str, size_t n,
    size_t base, struct match_scratch *sc)
{
	enum match_prep rc;

	if (p->len == 0)
		return 0;
	rc = match_prepare(p, str, n, base, sc, MATCH_NONE, false);
	if (rc == MATCH_PREP_NONE)
		return MATCH_NONE;
	/* Past the table's cap the greedy score is the score. */
	if (rc == MATCH_PREP_GREEDY)
		return match_greedy(p, (const uint8_t *)str, n, base, sc->lo,
		    NULL);
	return match_upper_bound(p, str, base, sc->lo, sc->hi, MATCH_NONE,
	    sc->fw_from, sc->fw_to);
}

int32_t
match_fuzzy_above(const struct match_pattern *p, const char *str, size_t n,
    size_t base, struct match_scratch *sc, int32_t floor, uint32_t *pos)
{
	const uint8_t *s = (const uint8_t *)str;
	uint32_t *lo = sc->lo, *hi = sc->hi;
	size_t m = p->len;
	int32_t best = NEG;
	enum match_prep rc;
	uint32_t bestj = 0;

	if (m == 0)
		return 0;
	rc = match_prepare(p, str, n, base, sc, pos == NULL ? floor :
	    MATCH_NONE, true);
	if (rc == MATCH_PREP_NONE)
		return MATCH_NONE;
	if (rc == MATCH_PREP_PRUNED)
		return MATCH_BELOW;
	/* Past the table's cap both score and positions are greedy (fzf's v1). */
	if (rc == MATCH_PREP_GREEDY)
		return match_greedy(p, s, n, base, lo, pos);
	if (pos == NULL)
		return match_dp_score(p, s, n, base, sc);

	/*
	 * Full tables, each row stored compactly from its lo; rowbase[i]
	 * is chosen so that row + j addresses column j.
	 */
	ptrdiff_t rowbase[FIDX_MAX_QUERY];
	uint8_t *r[2] = { sc->r, sc->r + ROW };
	size_t at = 0;

	for (size_t i = 0; i < m; i++) {
		uint32_t last = i + 1 < m ? hi[i + 1] - 1 : hi[i];

		rowbase[i] = (ptrdiff_t)at - lo[i];
		at += last - lo[i] + 1;
		match_row(p, s, n, base, sc->bonus, i, lo[i], hi[i], last,
		    i ? lo[i - 1] : 0,
		    i ? sc->fd + rowbase[i - 1] : NULL,
		    i ? sc->fm + rowbase[i - 1] : NULL,
		    i ? r[(i - 1) & 1] : NULL,
		    sc->fd + rowbase[i], sc->fm + rowbase[i], r[i & 1],
		    sc->fflag + rowbase[i], sc->fw_from, sc->fw_to);
	}
	for (uint32_t j = lo[m - 1]; j <= hi[m - 1]; j++) {
		int32_t v = sc->fd[rowbase[m - 1] + j];

		/* >= keeps the rightmost of equal ends: nearer the file name. */
		if (v > NEG && v >= best) {
			best = v;
			bestj = j;
		}
	}
	if (best <= NEG)
		return MATCH_NONE;

	uint32_t j = bestj;
	for (size_t i = m; i-- > 0;) {
		pos[i] = j;
		if (i == 0)
			break;
		uint8_t fl = sc->fflag[rowbase[i] + j];

		if (fl & FLAG_CONSEC) {
			j--;
		} else if (fl & FLAG_VOWEL1) {
			j -= 2;
		} else if (fl & FLAG_VOWEL2) {
			j -= 3;
		} else {
			/* Walk M of the row above back to the D it carried. */
			j -= 2;
			while (!(sc->fflag[rowbase[i - 1] + j] & FLAG_FROM_D))
				j--;
		}
	}
	return best;
}

/* Does the literal needle sit at s[at]? */
static inline bool
match_literal_at(const struct match_pattern *p, const uint8_t *s, size_t at)
{
	const uint8_t *q = (const uint8_t *)p->text;

	if (!p->icase)
		return memcmp(s + at, q, p->len) == 0;
	for (size_t k = 0; k < p->len; k++)
		if (match_lower[s[at + k]] != q[k])
			return false;
	return true;
}

static int32_t
match_run_score(const char *s, size_t n, size_t base, size_t at, size_t len,
    uint32_t *pos)
{
	uint32_t local[FIDX_MAX_QUERY];
	uint32_t *out = pos != NULL ? pos : local;

	for (size_t k = 0; k < len; k++)
		out[k] = (uint32_t)(at + k);
	return match_score_positions(s, n, base, out, len);
}

int32_t
match_literal(const struct match_pattern *p, enum match_anchor anchor,
    const char *str, size_t n, size_t base, uint32_t *pos)
{
	const uint8_t *s = (const uint8_t *)str;
	size_t m = p->len, bestat = 0;
	int32_t best = MATCH_NONE;

	if (m == 0)
		return 0;
	if (m > n || m > FIDX_MAX_QUERY)
		return MATCH_NONE;
	switch (anchor) {
	case MATCH_PREFIX:
		if (!match_literal_at(p, s, 0))
			return MATCH_NONE;
		return match_run_score(str, n, base, 0, m, pos);
	case MATCH_SUFFIX:
		if (!match_literal_at(p, s, n - m))
			return MATCH_NONE;
		return match_run_score(str, n, base, n - m, m, pos);
	case MATCH_WHOLE:
		if (m != n || !match_literal_at(p, s, 0))
			return MATCH_NONE;
		return match_run_score(str, n, base, 0, m, pos);
	case MATCH_ANYWHERE:
		break;
	}
	for (size_t at = 0; at + m <= n; at++) {
		const uint8_t *hit;
		int32_t v;

		/* Jump to the next candidate start with memchr when we can. */
		if (!p->icase || !(p->text[0] >= 'a' && p->text[0] <= 'z')) {
			hit = memchr(s + at, p->text[0], n - m + 1 - at);
			if (hit == NULL)
				break;
			at = (size_t)(hit - s);
		}
		if (!match_literal_at(p, s, at))
			continue;
		v = match_run_score(str, n, base, at, m, NULL);
		if (v >= best) {
			best = v;
			bestat = at;
		}
	}
	if (best == MATCH_NONE)
		return MATCH_NONE;
	if (pos != NULL)
		match_run_score(str, n, base, bestat, m, pos);
	return best;
}

/* The best a clean pattern of k bytes can score. */
int32_t
match_best_possible(size_t k)
{
	return (int32_t)k * (MATCH_SCORE + MATCH_BONUS_BASENAME) +
	    (int32_t)(MATCH_FIRST_MULTIPLIER + k - 1) * MATCH_BONUS_MAX +
	    MATCH_BONUS_END;
}
