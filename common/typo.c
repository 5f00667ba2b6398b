/* typo.c - see typo.h for what a typo match is and how it scores. */
#include "typo.h"

#include <string.h>

/* The bitmap slot of the gram at s (g bytes, folded as t's pattern is). */
static inline uint32_t
typo_gram_hash(const uint8_t *s, size_t g, const uint8_t *fold)
{
	uint32_t h = 0;

	for (size_t i = 0; i < g; i++)
		h = (h << 8) | fold[s[i]];
	return (h * 2654435761u) >> 16;
}

int
typo_budget(size_t len)
{
	if (len <= 3 || len > TYPO_MAX_LEN)
		return 0;
	return len <= 7 ? 1 : 2;
}

/*
 * Length of the longest common subsequence of p and s, bit-parallel
 * (Allison-Dix, as Hyyro writes it): one word of state, four operations
 * a byte of s.
 */
static size_t
typo_lcs(const struct typo *t, const uint8_t *s, size_t n)
{
	uint64_t v = ~0ull;

	for (size_t j = 0; j < n; j++) {
		uint64_t u = v & t->peq[s[j]];

		v = (v + u) | (v - u);
	}
	return (size_t)__builtin_popcountll(~v & t->full);
}

/*
 * The score of a typo match from its shortened pattern's score v: scaled
 * up to the whole pattern's length (a near-perfect "licese" stands where
 * a near-perfect "license" would, not below a scattered clean match of
 * "licnese"), less a share for the bytes left out (half their share of
 * the pattern: a quarter of "lcns" is a bigger change than a seventh of
 * "licnese"), less TYPO_PENALTY for each edit after the first, so
 * one edit beats two.
 */
static int32_t
typo_scale(int32_t v, size_t m, size_t need)
{
	int64_t x = (int64_t)v * (int64_t)m / (int64_t)(m - need);

	x = x * (int64_t)(2 * m - need) / (int64_t)(2 * m);
	return (int32_t)(x - (int64_t)(need - 1) * TYPO_PENALTY) -
	    TYPO_TIER;
}

/*
 * The score of a near word (typo_near_word): the clean score v of the
 * name's first len bytes, the word as it was meant, brought to the
 * pattern's m bytes, less TYPO_PENALTY an edit. In no tier: it competes
 * with clean matches, below a clean match of the same word.
 */
static int32_t
typo_word_scale(int32_t v, size_t m, size_t len, int d)
{
	return (int32_t)((int64_t)v * (int64_t)m / (int64_t)len) -
	    d * TYPO_PENALTY;
}

/* The least v for which typo_scale(v) could reach low. */
static int32_t
typo_unscale(int32_t low, size_t m, size_t need)
{
	int64_t x = (int64_t)low + TYPO_TIER +
	    (int64_t)(need - 1) * TYPO_PENALTY;

	x = x * (int64_t)(2 * m) / (int64_t)(2 * m - need);
	return (int32_t)(x * (int64_t)(m - need) / (int64_t)m) - 1;
}

void
typo_init(struct typo *t, const struct match_pattern *p, int edits)
{
	int budget = typo_budget(p->len);

	memset(t, 0, sizeof(*t));
	t->edits = edits < budget ? edits : budget;
	if (t->edits == 0)
		return;
	t->full = p->len == 64 ? ~0ull : (1ull << p->len) - 1;
	for (size_t i = 0; i < p->len; i++)
		t->utf8 |= (uint8_t)p->text[i] >= 0x80;
	for (size_t i = 0; i < p->len; i++) {
		uint8_t c = (uint8_t)p->text[i];

		t->peq[c] |= 1ull << i;
		if (p->icase && c >= 'a' && c <= 'z')
			t->peq[c - 32] |= 1ull << i;
	}
	t->ub = typo_scale(match_best_possible(p->len - 1), p->len, 1);
	for (size_t len = p->len - (size_t)t->edits;
	    len <= p->len + (size_t)t->edits; len++) {
		int32_t w = typo_word_scale(match_best_possible(len), p->len,
		    len, 1);

		if (w > t->ub)
			t->ub = w;
	}
	/* What is left in edits + 1 pieces: one is at least this long. */
	t->gram = (p->len - (size_t)t->edits + (size_t)t->edits) /
	    (size_t)(t->edits + 1);
	if (t->gram > 3)
		t->gram = 3;
	if (t->gram < 2) {
		t->gram = 0;
		return;
	}
	for (size_t i = 0; i + t->gram <= p->len; i++) {
		uint32_t h = typo_gram_hash((const uint8_t *)p->text + i,
		    t->gram, p->icase ? match_lower : match_ident);

		t->grams[h >> 6] |= 1ull << (h & 63);
	}
}

/*
 * True if the nd bytes of p at drop (increasing) are whole UTF-8
 * characters: a lead byte goes with its continuation bytes, and a
 * continuation byte with its lead. Bytes that are not UTF-8 stand alone.
 */
static bool
typo_drop_whole(const struct match_pattern *p, const size_t *drop,
    size_t nd)
{
	const uint8_t *q = (const uint8_t *)p->text;

	for (size_t d = 0; d < nd; d++) {
		size_t i = drop[d], from = i, len = 1;

		/* Back to the lead byte whose declared length covers i. */
		while (from > 0 && i - from < 3 && (q[from] & 0xc0) == 0x80)
			from--;
		len = q[from] >= 0xf0 && q[from] < 0xf8 ? 4 :
		    q[from] >= 0xe0 && q[from] < 0xf0 ? 3 :
		    q[from] >= 0xc0 && q[from] < 0xe0 ? 2 : 1;
		if (from + len <= i || from + len > p->len)
			continue;	/* a stray byte: it stands alone */
		for (size_t k = from + 1; k < from + len; k++)
			if ((q[k] & 0xc0) != 0x80)
				len = 1;	/* a cut sequence: not UTF-8 */
		if (len == 1)
			continue;
		for (size_t k = from; k < from + len; k++) {
			bool dropped = false;

			for (size_t e = 0; e < nd; e++)
				dropped |= drop[e] == k;
			if (!dropped)
				return false;
		}
	}
	return true;
}

/* True if s (n bytes) holds one of t's grams. */
static bool
typo_shares_gram(const struct typo *t, const uint8_t *s, size_t n,
    const uint8_t *fold)
{
	if (t->gram == 0)
		return true;
	for (size_t j = 0; j + t->gram <= n; j++) {
		uint32_t h = typo_gram_hash(s + j, t->gram, fold);

		if (t->grams[h >> 6] & (1ull << (h & 63)))
			return true;
	}
	return false;
}

/* True if s's first m bytes are q with one adjacent pair swapped. */
static bool
typo_swapped(const uint8_t *q, const uint8_t *s, size_t m,
    const uint8_t *fold)
{
	size_t i = 0;

	while (i < m && fold[s[i]] == q[i])
		i++;
	if (i + 1 >= m || fold[s[i]] != q[i + 1] || fold[s[i + 1]] != q[i])
		return false;
	for (i += 2; i < m; i++)
		if (fold[s[i]] != q[i])
			return false;
	return true;
}

/*
 * Is the file name s (n bytes) a word p was meant to be? True when a start
 * of s that ends a word of it (its end, punctuation, a camelCase hump, a
 * digit after letters: where match_bonus_at() sees a word begin) is at
 * most t->edits edits from p, a swapped pair counting one (the optimal
 * string alignment distance); 4 bytes allow a swap only, as one wrong
 * byte in four makes another word of most abbreviations ("mkfl", "mkfs").
 * The distance goes to *dist and the length of that start to *len, the
 * shortest distance first, then the length nearest p's.
 */
static bool
typo_near_word(const struct match_pattern *p, const struct typo *t,
    const uint8_t *s, size_t n, int *dist, size_t *len)
{
	const uint8_t *fold = p->icase ? match_lower : match_ident;
	const uint8_t *q = (const uint8_t *)p->text;
	size_t m = p->len, e = (size_t)t->edits, last = m + e;
	/* Three rows of the distance table: i - 2, i - 1, i. */
	uint8_t rows[3][TYPO_MAX_LEN + 4];
	uint8_t *r2 = rows[0], *r1 = rows[1], *r0 = rows[2], *tmp;
	int best = (int)e + 1;

	*len = 0;
	if (last > n)
		last = n;
	for (size_t j = 0; j <= last; j++)
		r1[j] = (uint8_t)(j < 255 ? j : 255);
	for (size_t i = 1; i <= m; i++) {
		uint8_t lo = 255;

		r0[0] = (uint8_t)i;
		for (size_t j = 1; j <= last; j++) {
			int c = fold[s[j - 1]] != q[i - 1];
			int v = r1[j - 1] + c;

			if (r1[j] + 1 < v)
				v = r1[j] + 1;
			if (r0[j - 1] + 1 < v)
				v = r0[j - 1] + 1;
			/* A swapped pair: one edit. */
			if (i > 1 && j > 1 && fold[s[j - 1]] == q[i - 2] &&
			    fold[s[j - 2]] == q[i - 1] && r2[j - 2] + 1 < v)
				v = r2[j - 2] + 1;
			r0[j] = (uint8_t)(v < 255 ? v : 255);
			if (r0[j] < lo)
				lo = r0[j];
		}
		if (lo > e && r0[0] > e)
			return false;	/* every cell already too far */
		tmp = r2, r2 = r1, r1 = r0, r0 = tmp;
	}
	/* r1 is now row m. */
	for (size_t l = m > e ? m - e : 1; l <= last; l++) {
		int d = r1[l];

		if (d > (int)e || (l < n && match_bonus_at((const char *)s, l,
		    0) <= 0))
			continue;
		if (d < best || (d == best && (l > m ? l - m : m - l) <
		    (*len > m ? *len - m : m - *len))) {
			best = d;
			*len = l;
		}
	}
	if (best > (int)e || best == 0)
		return false;
	/* Four bytes: only a swap (the lengths equal, and no clean match). */
	if (m <= 4 && (*len != m || best != 1 || !typo_swapped(q, s, m, fold)))
		return false;
	*dist = best;
	return true;
}

/* Scores p without the bytes at drop[0..nd) (sorted), as a clean match. */
static int32_t
typo_dropped(const struct match_pattern *p, const size_t *drop, size_t nd,
    const char *s, size_t n, size_t base, struct match_scratch *sc,
    int32_t floor, uint32_t *pos)
{
	char text[TYPO_MAX_LEN];
	struct match_pattern r;
	size_t k = 0, d = 0;

	for (size_t i = 0; i < p->len; i++) {
		if (d < nd && drop[d] == i) {
			d++;
			continue;
		}
		text[k++] = p->text[i];
	}
	match_pattern_init(&r, text, k, p->icase);
	r.path = p->path;
	if (pos != NULL)
		return match_fuzzy(&r, s, n, base, sc, pos);
	return match_fuzzy_above(&r, s, n, base, sc, floor, NULL);
}

int32_t
typo_word(const struct match_pattern *p, const struct typo *t,
    const char *s, size_t n, size_t base, uint32_t *pos, int *npos)
{
	uint32_t run[TYPO_MAX_LEN + 2];
	size_t len;
	int dist;
	int32_t v;

	/*
	 * Edits count bytes; a pattern with letters of several bytes keeps
	 * to typo_match(), which leaves a letter out whole.
	 */
	if (t->edits == 0 || t->utf8 || p->path || base >= n ||
	    p->len > TYPO_MAX_LEN)
		return MATCH_NONE;
	s += base;
	n -= base;
	/* The name begins with the pattern's first byte, as in typo_match. */
	if ((p->icase ? match_lower[(uint8_t)s[0]] : (uint8_t)s[0]) !=
	    (uint8_t)p->text[0] ||
	    !typo_near_word(p, t, (const uint8_t *)s, n, &dist, &len))
		return MATCH_NONE;
	for (size_t k = 0; k < len; k++)
		run[k] = (uint32_t)k;
	/* A swapped pair, the commonest slip, costs one edit; others two. */
	if (!(dist == 1 && len == p->len && typo_swapped(
	    (const uint8_t *)p->text, (const uint8_t *)s, len,
	    p->icase ? match_lower : match_ident)))
		dist++;
	v = typo_word_scale(match_score_positions(s, n, 0, run, len), p->len,
	    len, dist);
	/* Lit: the word's bytes the pattern has (not a wrong one). */
	if (pos != NULL) {
		const uint8_t *fold = p->icase ? match_lower : match_ident;

		*npos = 0;
		for (size_t k = 0; k < len; k++)
			if (memchr(p->text, fold[(uint8_t)s[k]], p->len))
				pos[(*npos)++] = (uint32_t)(k + base);
	}
	return v;
}

int32_t
typo_match(const struct match_pattern *p, const struct typo *t,
    const char *s, size_t n, size_t base, struct match_scratch *sc,
    int32_t floor, uint32_t *pos, int *npos)
{
	size_t m = p->len, need, best_drop[2] = { 0, 0 }, off = base;
	int32_t best = MATCH_NONE, qmin;

	/*
	 * A typo is forgiven in a file name only: that is what people type
	 * words of, and it keeps the search to the short end of each path.
	 * A pattern with a '/' asks for a path: no typo reading.
	 */
	if (t->edits == 0 || p->path || base > n)
		return MATCH_NONE;
	s += off;
	n -= off;
	base = 0;
	if (m > TYPO_MAX_LEN || m > n + (size_t)t->edits)
		return MATCH_NONE;
	/*
	 * The best a one-edit match could score: a floor above it (a list
	 * already full of clean matches) ends here, before any work.
	 */
	if (pos == NULL && floor > MATCH_NONE && t->ub < floor)
		return MATCH_BELOW;
	/*
	 * People rarely mistype the first letter of a name: a typo match
	 * begins the file name with the pattern's first byte. One byte
	 * rejects most paths before any work.
	 */
	if ((p->icase ? match_lower[(uint8_t)s[0]] : (uint8_t)s[0]) !=
	    (uint8_t)p->text[0])
		return MATCH_NONE;
	/* Then the subsequence test, with no lookups. */
	need = m - typo_lcs(t, (const uint8_t *)s, n);
	if (need == 0 || need > (size_t)t->edits)
		return MATCH_NONE;
	/*
	 * A word of the name, mistyped: scored as that word typed right,
	 * with no need for the checks below, which a swap in the middle of
	 * a word fails ("wranings": "wanings" is a poor alignment of
	 * "warnings", and shares no 3-gram with "sybmol").
	 */
	best = typo_word(p, t, s - off, n + off, off, pos, npos);
	if (best != MATCH_NONE)
		return pos == NULL && floor > MATCH_NONE && best < floor ?
		    MATCH_BELOW : best;
	if (!typo_shares_gram(t, (const uint8_t *)s, n,
	    p->icase ? match_lower : match_ident))
		return MATCH_NONE;
	/*
	 * A character of several bytes is left out whole: "докуменп" keeps
	 * no stray lead byte of its last letter to match another letter's.
	 * When no whole-character way of leaving `need` bytes out leaves a
	 * match (good or not: a floor must not change the answer), one more
	 * byte may go.
	 */
	for (bool found = false; !found && need <= (size_t)t->edits; need++) {
		/*
		 * Only a good alignment of what is left is a typo match: 7/8
		 * of the best possible, and all of it for 3 bytes or fewer,
		 * which a random string finds scattered over any long list.
		 */
		qmin = m - need <= 3 ? match_best_possible(m - need) :
		    (7 * match_best_possible(m - need) + 7) / 8;
		/* Every way to leave out `need` bytes; repeats are one way. */
		for (size_t i = 0; i < m; i++) {
			if (i > 0 && p->text[i] == p->text[i - 1])
				continue;
			for (size_t j = need == 2 ? i + 1 : i; j < m; j++) {
				size_t drop[2] = { i, j };
				int32_t low = best > floor ? best : floor, v, f;

				if (need == 2 && j > i + 1 &&
				    p->text[j] == p->text[j - 1])
					continue;
				if (t->utf8 && !typo_drop_whole(p, drop, need)) {
					if (need == 1)
						break;
					continue;
				}
				f = low > MATCH_NONE ? typo_unscale(low, m, need) : qmin;
				v = typo_dropped(p, drop, need, s, n, base, sc,
				    f > qmin ? f : qmin, NULL);
				found |= v != MATCH_NONE;
				if (v >= qmin &&
				    typo_scale(v, m, need) > best) {
					best = typo_scale(v, m, need);
					best_drop[0] = i;
					best_drop[1] = j;
				}
				if (need == 1)
					break;
			}
		}
		if (!t->utf8 || found)
			break;
	}
	if (best == MATCH_NONE)
		return floor > MATCH_NONE ? MATCH_BELOW : MATCH_NONE;
	if (pos != NULL) {
		typo_dropped(p, best_drop, need, s, n, base, sc, MATCH_NONE,
		    pos);
		*npos = (int)(m - need);
		for (int k = 0; k < *npos; k++)
			pos[k] += (uint32_t)off;
	}
	return best;
}
