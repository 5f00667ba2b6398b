/* query.c - see query.h for the syntax. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "query.h"
#include "alloc.h"
#include "fold.h"
#include "limits.h"

#include <pcre2.h>
#include <stdatomic.h>
#include <utf8proc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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
	struct match_typo *typo;	/* one-term fuzzy queries only, or NULL */
	bool fold;		/* some term ignores non-ASCII case */
	char *buf;		/* the terms' unescaped, folded bytes */
	size_t buf_used, buf_size;
	/*
	 * Regex mode: the pattern compiled in UTF mode (re_utf) and in byte
	 * mode (re_bytes), either NULL where the pattern does not compile
	 * so; re is the first that exists (see query_regex_code).
	 */
	pcre2_code *re, *re_utf, *re_bytes;
};

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

int
query_mode_parse(const char *name, enum query_mode *mode)
{
	if (strcmp(name, "fuzzy") == 0)
		*mode = QUERY_FUZZY;
	else if (strcmp(name, "exact") == 0)
		*mode = QUERY_EXACT;
	else if (strcmp(name, "regex") == 0)
		*mode = QUERY_REGEX;
	else
		return -1;
	return 0;
}

const char *
query_mode_name(enum query_mode mode)
{
	switch (mode) {
	case QUERY_FUZZY:
		return "fuzzy";
	case QUERY_EXACT:
		return "exact";
	case QUERY_REGEX:
		return "regex";
	}
	return "?";
}

/* Smart case for a regex: upper-case letters outside escapes (\S, \W). */
static bool
query_regex_has_upper(const char *s, size_t n)
{
	size_t len;

	for (size_t i = 0; i < n; i += len) {
		if (s[i] == '\\') {
			len = 2;	/* the escape and the byte it escapes */
			continue;
		}
		if (fold_upper_at(s + i, n - i, &len))
			return true;
	}
	return false;
}

/* Compiles text with opts (JIT too when it can); NULL with err's reason. */
static pcre2_code *
query_regex_compile(const char *text, size_t len, uint32_t opts,
    struct fidx_err *err)
{
	PCRE2_UCHAR msg[128];
	PCRE2_SIZE erroff;
	pcre2_code *re;
	int errcode;

	re = pcre2_compile((PCRE2_SPTR)text, len, opts, &errcode, &erroff,
	    NULL);
	if (re == NULL) {
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		fidx_error(err, "bad regex at offset %zu: %s", (size_t)erroff,
		    (char *)msg);
		return NULL;
	}
	/* Without JIT (unsupported CPU, no memory) the interpreter still works. */
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}

/* True if s (n bytes) is valid UTF-8 (utf8proc's reading of it). */
static bool
query_utf8_valid(const char *s, size_t n)
{
	const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
	utf8proc_int32_t cp;

	while (n > 0) {
		utf8proc_ssize_t k;

		if (*u < 0x80) {
			u++, n--;
			continue;
		}
		if ((k = utf8proc_iterate(u, (utf8proc_ssize_t)n, &cp)) <= 0)
			return false;
		u += k;
		n -= (size_t)k;
	}
	return true;
}

/*
 * Two compilations of one pattern. UTF mode reads a valid UTF-8 path a
 * character at a time ("." is "é"); PCRE2_MATCH_INVALID_UTF lets it run
 * on any bytes, but (PCRE2 10.42, checked) no item matches an invalid
 * byte there, not ".", "[^e]" or "\C", so "caf." could never find a
 * Latin-1 "caf\xe9". A path that is not valid UTF-8 is therefore matched
 * in byte mode, where every byte is one character, as the fuzzy and
 * exact modes see it. A pattern that needs UTF mode (\x{100}) keeps it
 * for every path; one that is not UTF-8 itself (a Latin-1 byte) has only
 * byte mode. Only when neither compiles is the regex bad.
 */
static int
query_compile_regex(struct query *q, const char *text, size_t len,
    struct fidx_err *err)
{
	uint32_t opts = 0;
	struct fidx_err byte_err;

	if (!query_regex_has_upper(text, len))
		opts |= PCRE2_CASELESS;
	q->re_utf = query_regex_compile(text, len, opts | PCRE2_UTF |
	    PCRE2_MATCH_INVALID_UTF, err);
	q->re_bytes = query_regex_compile(text, len, opts, &byte_err);
	q->re = q->re_utf != NULL ? q->re_utf : q->re_bytes;
	if (q->re != NULL)
		return 0;
	/* A pattern that is not UTF-8 was meant for bytes: say why not. */
	if (!query_utf8_valid(text, len))
		*err = byte_err;
	return -1;
}

/* The compilation of q's pattern that path (len bytes) is matched with. */
static const pcre2_code *
query_regex_code(const struct query *q, const char *path, size_t len)
{
	if (q->re_utf == NULL || q->re_bytes == NULL)
		return q->re;
	return fold_has_high(path, len) && !query_utf8_valid(path, len) ?
	    q->re_bytes : q->re_utf;
}

/*
 * Splits text into tokens at unescaped spaces, unescaping into q->buf.
 * Calls back with each token's bytes and whether its first or last byte
 * was escaped (an escaped '!' or '$' is literal).
 */
struct token {
	char *s;
	size_t n;
	const bool *esc;	/* esc[k]: byte k was written with a backslash */
};

static int
query_tokenize(const char *text, size_t len, char *buf, bool *escbuf,
    struct token *tok, size_t *ntok, struct fidx_err *err)
{
	size_t i = 0, out = 0;

	*ntok = 0;
	while (i < len) {
		struct token t;

		while (i < len && text[i] == ' ')
			i++;
		if (i == len)
			break;
		if (*ntok == FIDX_MAX_TERMS * 2)
			return fidx_error(err, "query has too many terms "
			    "(at most %d)", FIDX_MAX_TERMS);
		t.s = buf + out;
		t.esc = escbuf + out;
		t.n = 0;
		while (i < len && text[i] != ' ') {
			bool esc = text[i] == '\\' && i + 1 < len;

			if (esc)
				i++;
			escbuf[out] = esc;
			buf[out++] = text[i++];
			t.n++;
		}
		tok[(*ntok)++] = t;
	}
	return 0;
}

/* True if every byte of tok is an unescaped operator. */
static bool
query_token_all_operators(const struct token *tok)
{
	for (size_t k = 0; k < tok->n; k++)
		if (tok->esc[k] || strchr("!'^$", tok->s[k]) == NULL)
			return false;
	return true;
}

static void
query_term_init(struct query *q, struct query_term *t, struct token *tok,
    unsigned group)
{
	char *s = tok->s;
	const bool *esc = tok->esc;
	size_t n = tok->n;
	bool literal = q->mode == QUERY_EXACT;
	bool quoted = false;

	t->negate = false;
	t->anchor = MATCH_ANYWHERE;
	t->group = group;
	/* "!", "^$", "!!": nothing left to apply them to, so they are text. */
	if (query_token_all_operators(tok))
		goto done;
	if (n > 1 && s[0] == '!' && !esc[0]) {
		t->negate = true;
		s++, esc++, n--;
		literal = true;	/* fzf: !term is an inverse exact match */
	}
	if (n > 1 && s[0] == '\'' && !esc[0]) {
		quoted = true;
		literal = q->mode == QUERY_EXACT ? false : !t->negate;
		s++, esc++, n--;
	}
	if (!quoted && n > 1 && s[0] == '^' && !esc[0]) {
		t->anchor = MATCH_PREFIX;
		literal = true;
		s++, esc++, n--;
	}
	if (!quoted && n > 1 && s[n - 1] == '$' && !esc[n - 1]) {
		t->anchor = t->anchor == MATCH_PREFIX ? MATCH_WHOLE :
		    MATCH_SUFFIX;
		literal = true;
		n--;
	}
done:
	t->kind = literal ? TERM_LITERAL : TERM_FUZZY;
	bool icase = !fold_has_upper(s, n);
	if (icase)
		for (size_t i = 0; i < n; i++)
			s[i] = (char)match_lower[(uint8_t)s[i]];
	/*
	 * "ä" must match "Ä": the term's non-ASCII characters are lowered
	 * (into the room after the tokens; fold_lower() stops short of
	 * passing it), and so are a path's when this term scores it.
	 */
	if (icase && fold_has_high(s, n)) {
		char *out = q->buf + q->buf_used;
		size_t m = fold_lower(s, n, out, q->buf_size - q->buf_used,
		    NULL);

		if (m != SIZE_MAX) {
			s = out;
			n = m;
			q->buf_used += m;
			t->fold = q->fold = true;
		}
	}
	match_pattern_init(&t->pat, s, n, icase);
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

struct query *
query_compile(const char *text, size_t len, enum query_mode mode,
    struct fidx_err *err)
{
	struct token tok[FIDX_MAX_TERMS * 2];
	struct query *q;
	bool *escbuf = NULL;
	size_t ntok;
	unsigned group = 0;
	bool or_next = false;

	if (len > FIDX_MAX_QUERY) {
		fidx_error(err, "query is %zu bytes, longer than the limit of "
		    "%d", len, FIDX_MAX_QUERY);
		return NULL;
	}
	if ((q = fidx_calloc(1, sizeof(*q))) == NULL)
		goto oom;
	q->mode = mode;
	if (mode == QUERY_REGEX) {
		if (query_compile_regex(q, text, len, err) == -1)
			goto fail;
		return q;
	}
	/* The tokens, then room for their Unicode-folded copies. */
	q->buf_size = 3 * len + 1;
	q->buf_used = len + 1;
	if ((q->buf = fidx_malloc(q->buf_size)) == NULL ||
	    (escbuf = fidx_malloc(len + 1)) == NULL)
		goto oom;
	if (query_tokenize(text, len, q->buf, escbuf, tok, &ntok, err) == -1)
		goto fail;
	if ((q->terms = fidx_calloc(ntok, sizeof(*q->terms))) == NULL)
		goto oom;
	for (size_t i = 0; i < ntok; i++) {
		/* A bare "|" joins its neighbours into one OR group. */
		if (tok[i].n == 1 && tok[i].s[0] == '|' && !tok[i].esc[0] &&
		    q->nterms > 0 && i + 1 < ntok) {
			or_next = true;
			continue;
		}
		if (q->nterms > 0 && !or_next)
			group++;
		or_next = false;
		if (q->nterms == FIDX_MAX_TERMS) {
			fidx_error(err, "query has too many terms (at most %d)",
			    FIDX_MAX_TERMS);
			goto fail;
		}
		query_term_init(q, &q->terms[q->nterms++], &tok[i], group);
	}
	q->ngroups = q->nterms ? group + 1 : 0;
	/*
	 * Several terms describe a path ("bin python", "man1 git"): each is
	 * scored over the whole path, as a term with a '/' is. With the
	 * file-name preference, a term meant for a directory would rather
	 * match inside the file name ("bin" in python_bindings.md).
	 */
	if (q->ngroups > 1)
		for (size_t i = 0; i < q->nterms; i++)
			q->terms[i].pat.path = true;
	q->all_required = q->nterms > 0;
	/*
	 * Lowering turns two characters into ASCII (U+0130 into i, the
	 * Kelvin sign into k): a folding term cannot demand those bits of a
	 * path's mask, which was taken of its raw bytes.
	 */
	const uint64_t fold_ascii = match_mask("ik", 2);

	/* Only a group of one positive term can demand its bytes. */
	for (size_t i = 0; i < q->nterms; i++) {
		struct query_term *t = &q->terms[i];
		bool alone = (i == 0 || q->terms[i - 1].group != t->group) &&
		    (i + 1 == q->nterms || q->terms[i + 1].group != t->group);

		if (alone && !t->negate) {
			q->need |= t->pat.mask & ~(t->fold ? fold_ascii : 0);
			t->required = t->kind == TERM_FUZZY;
		}
		if (!t->required)
			q->all_required = false;
	}
	free(escbuf);
	return q;
oom:
	fidx_error(err, "out of memory compiling the query");
fail:
	free(escbuf);
	query_free(q);
	return NULL;
}

void
query_free(struct query *q)
{
	if (q == NULL)
		return;
	pcre2_code_free(q->re_utf);
	pcre2_code_free(q->re_bytes);
	free(q->typo);
	free(q->terms);
	free(q->buf);
	free(q);
}

/* The one fuzzy term a typo may be forgiven in, or NULL. */
static const struct query_term *
query_typo_term(const struct query *q)
{
	const struct query_term *t = q->nterms == 1 ? &q->terms[0] : NULL;

	if (q->re != NULL || t == NULL || t->kind != TERM_FUZZY || t->negate)
		return NULL;
	return t;
}

bool
query_typos_needed(const struct query *q, const struct topk *top,
    int32_t bonus_max)
{
	return query_typo_term(q) != NULL && q->typo != NULL && top->k > 0 &&
	    !(top->n == top->k && top->items[0].score - bonus_max >
	    q->typo->ub);
}

int
query_set_typos(struct query *q, int edits)
{
	const struct query_term *t = query_typo_term(q);

	free(q->typo);
	q->typo = NULL;
	/* A '/' asks for a path: typos are forgiven in file names only. */
	if (t == NULL || edits <= 0 || t->pat.path ||
	    match_typo_budget(t->pat.len) == 0)
		return 0;
	if ((q->typo = fidx_malloc(sizeof(*q->typo))) == NULL)
		return -1;
	match_typo_init(q->typo, &t->pat, edits);
	return 0;
}

bool
query_has_typos(const struct query *q)
{
	return q->typo != NULL;
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
query_term_score(const struct query_term *t, const struct match_typo *typo,
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
		v = match_fuzzy_typo(&t->pat, typo, view->s, view->n, base,
		    sc->ms, MATCH_NONE, pos, npos);
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

	rc = pcre2_match(query_regex_code(q, path, len), (PCRE2_SPTR)path, len,
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

int32_t
query_score_above(const struct query *q, const char *path, size_t len,
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
				    match_fuzzy_typo(&q->terms[i].pat, q->typo,
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
			int32_t v;

			rest -= ub[i];
			v = match_fuzzy_above(&q->terms[i].pat, w->s, w->n,
			    match_base(&q->terms[i].pat, w->base), sc->ms,
			    floor - total - rest, NULL);
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
    enum query_pass pass)
{
	/* Regex queries have no terms; passes other than ALL need one. */
	const struct match_pattern *p0 = q->nterms ? &q->terms[0].pat : NULL;
	uint8_t c0 = p0 != NULL && p0->len ? (uint8_t)p0->text[0] : 0;
	int32_t shared = MATCH_NONE, floor;
	uint64_t need = q->need;
	const struct match_typo *typo = pass == QUERY_PASS_TYPO ? q->typo : NULL;
	size_t matched = 0;

	for (size_t blk = from; blk < to; blk += QUERY_FLOOR_EVERY) {
		size_t end = to - blk > QUERY_FLOOR_EVERY ?
		    blk + QUERY_FLOOR_EVERY : to;

		if (sc->shared_floor != NULL)
			shared = query_floor_exchange(sc->shared_floor, top);
		for (size_t i = blk; i < end; i++) {
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
				const struct match_typo *t = typo != NULL ?
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

				/* The file name must begin with it (match.h). */
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
					v = match_fuzzy_typo(p0, typo, w.s,
					    w.n, base, sc->ms, floor, NULL,
					    NULL);
					typo_hit = true;
				} else {
					v = match_fuzzy_above(p0, w.s, w.n,
					    base, sc->ms, floor, NULL);
					matched += v != MATCH_NONE;
					if (v == MATCH_NONE &&
					    pass == QUERY_PASS_SEED &&
					    q->typo != NULL)
						query_cand_add(sc, i);
				}
			}
			if (v == MATCH_NONE || v == MATCH_BELOW)
				continue;
			query_offer(top, sc, path, e->len, i, v,
			    typo_hit ? QUERY_ITEM_TYPO : 0);
		}
	}
	return matched;
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
		v = match_fuzzy_typo(p0, q->typo, w.s, w.n,
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

	sc->ncand = 0;
	sc->cand_over = false;
	if (seeded)
		matched = query_run_pass(q, arena, entries, from, to, top, sc,
		    true, QUERY_PASS_SEED) +
		    query_run_pass(q, arena, entries, from, to, top, sc, true,
		    QUERY_PASS_REST);
	else
		matched = query_run_pass(q, arena, entries, from, to, top, sc,
		    single, QUERY_PASS_ALL);
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
			    true, QUERY_PASS_TYPO);
	}
	return matched;
}
