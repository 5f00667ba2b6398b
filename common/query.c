/*
 * query.c - the query syntax of query.h: terms, operators, smart case, OR
 * groups, escapes, and compiling them (or a regex) into a struct query.
 * Running it is query_run.c's.
 */
#include "query_impl.h"
#include "alloc.h"
#include "fold.h"
#include "limits.h"
#include "regex.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

/* The pattern in both modes (regex.h), with smart case. */
static int
query_compile_regex(struct query *q, const char *text, size_t len,
    struct fidx_err *err)
{
	uint32_t opts = 0;

	if (!query_regex_has_upper(text, len))
		opts |= PCRE2_CASELESS;
	if (regex_compile(&q->rx, text, len, opts, "regex", err) == -1)
		return -1;
	q->re = regex_any(&q->rx);
	return 0;
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
	regex_release(&q->rx);
	free(q->typo);
	free(q->terms);
	free(q->buf);
	free(q);
}

int
query_set_typos(struct query *q, int edits)
{
	const struct query_term *t = query_typo_term(q);

	free(q->typo);
	q->typo = NULL;
	/* A '/' asks for a path: typos are forgiven in file names only. */
	if (t == NULL || edits <= 0 || t->pat.path ||
	    typo_budget(t->pat.len) == 0)
		return 0;
	if ((q->typo = fidx_malloc(sizeof(*q->typo))) == NULL)
		return -1;
	typo_init(q->typo, &t->pat, edits);
	return 0;
}

bool
query_has_typos(const struct query *q)
{
	return q->typo != NULL;
}
