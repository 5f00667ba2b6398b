/*
 * fuzz_query.c - the query syntax (query.c) and its runner (query_run.c)
 * against query.h's contracts.
 *
 * Input: one flag byte (bits 0-1: typos 0..3 for the fuzzy query), the
 * query text up to the first NUL, then one path (up to the next NUL).
 * The text is compiled in every mode and scored over a few fixed paths
 * and the input's, and these must hold:
 *   - query_positions() matches exactly when query_score() does, and
 *     its positions strictly increase and lie inside the path;
 *   - query_score_above() is query_score(), or MATCH_BELOW for a match
 *     under the floor (or, with typos, no match);
 *   - query_run() matches the paths query_score() does, with its scores,
 *     and counts those that match without a typo;
 *   - with no '!' or '\'' in the text, an exact match is a fuzzy match;
 *   - a fuzzy match stays one when typos are turned on.
 */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#include "../../common/limits.h"
#include "../../common/match.h"
#include "../../common/query.h"
#include "../../common/topk.h"

/* Past FIDX_MAX_QUERY, so the too-long refusal is reached too. */
#define FUZZ_MAX_TEXT (FIDX_MAX_QUERY + 64)
#define FUZZ_MAX_PATH 4096

static const char *const fuzz_paths[] = {
	"src/main.c",
	"README.md",
	"a/b/c_d",
	"include/Fidx/QueryRun.h",
	"caf\xc3\xa9/na\xefve.txt",	/* valid, then invalid UTF-8 */
	"x",
	"dir with space/file-name.tar.gz",
	"a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/aaa",
};
#define FUZZ_NFIXED (sizeof(fuzz_paths) / sizeof(fuzz_paths[0]))
#define FUZZ_NPATHS (FUZZ_NFIXED + 1)

struct fuzz_list {
	char arena[4096 + FUZZ_MAX_PATH + QUERY_PAD];
	struct match_entry e[FUZZ_NPATHS];
	size_t n;
};

static uint32_t fuzz_pos[FUZZ_MAX_PATH];

static void
fuzz_list_make(struct fuzz_list *l, const char *path, size_t plen)
{
	uint32_t off = 0;

	l->n = 0;
	for (size_t i = 0; i < FUZZ_NPATHS; i++) {
		const char *p = i < FUZZ_NFIXED ? fuzz_paths[i] : path;
		size_t len = i < FUZZ_NFIXED ? strlen(p) : plen;

		if (len == 0)
			continue;
		memcpy(l->arena + off, p, len);
		match_entry_init(&l->e[l->n++], l->arena, off, (uint16_t)len,
		    true);
		off += (uint32_t)len;
	}
	memset(l->arena + off, 0, QUERY_PAD);
}

static const char *
fuzz_path(const struct fuzz_list *l, size_t i)
{
	return l->arena + l->e[i].off;
}

/* Checks one compiled query over l; scores[i] gets path i's score. */
static void
fuzz_check_query(const struct query *q, struct query_scratch *sc,
    const struct fuzz_list *l, int32_t *scores)
{
	struct topk top;
	size_t matched = 0, nmatch = 0, ran;

	if (query_scratch_bind(sc, q) == -1) {
		for (size_t i = 0; i < l->n; i++)
			scores[i] = MATCH_NONE;
		return;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct match_entry *e = &l->e[i];
		const char *p = fuzz_path(l, i);
		int32_t s, floors[3], r;
		int np;

		s = query_score(q, p, e->len, e->base, e->mask, sc);
		scores[i] = s;
		np = query_positions(q, p, e->len, e->base, sc, fuzz_pos);
		FUZZ_CHECK((s == MATCH_NONE) == (np < 0));
		FUZZ_CHECK(np <= (int)e->len);
		for (int j = 0; j < np; j++) {
			FUZZ_CHECK(fuzz_pos[j] < e->len);
			FUZZ_CHECK(j == 0 || fuzz_pos[j] > fuzz_pos[j - 1]);
		}
		floors[0] = MATCH_NONE + 2;
		floors[1] = s == MATCH_NONE ? 0 : s;
		floors[2] = s == MATCH_NONE ? INT32_MAX : s + 1;
		for (int f = 0; f < 3; f++) {
			r = query_score_above(q, p, e->len, e->base, e->mask,
			    sc, floors[f]);
			if (r == MATCH_BELOW)
				FUZZ_CHECK((s != MATCH_NONE && s < floors[f]) ||
				    (s == MATCH_NONE && query_has_typos(q)));
			else
				FUZZ_CHECK(r == s);
		}
		/* query_run() counts clean matches; typo ones fill in. */
		if (s != MATCH_NONE && !query_is_typo(q, p, e->len, e->base,
		    sc))
			matched++;
		if (s != MATCH_NONE)
			nmatch++;
	}
	if (topk_init(&top, l->n) == -1)
		return;
	ran = query_run(q, l->arena, l->e, 0, l->n, &top, sc);
	FUZZ_CHECK(ran == matched);
	FUZZ_CHECK(top.n == nmatch);
	for (size_t i = 0; i < top.n; i++) {
		const struct topk_item *it = &top.items[i];

		FUZZ_CHECK(it->index < l->n);
		FUZZ_CHECK(it->score == scores[it->index]);
		FUZZ_CHECK(it->path == fuzz_path(l, it->index));
	}
	topk_release(&top);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_list l;
	int32_t scores[3][FUZZ_NPATHS], typo_scores[FUZZ_NPATHS];
	bool compiled[3] = { false, false, false };
	struct query_scratch *sc = NULL;
	struct query *q0;
	const char *text, *path, *nul;
	size_t tlen, plen;
	int typos;

	if (size < 1 || size > 1 + FUZZ_MAX_TEXT + 1 + FUZZ_MAX_PATH)
		return 0;
	typos = data[0] & 3;
	text = (const char *)data + 1;
	size--;
	nul = memchr(text, '\0', size);
	tlen = nul != NULL ? (size_t)(nul - text) : size;
	if (tlen > FUZZ_MAX_TEXT)
		return 0;
	path = nul != NULL ? nul + 1 : text + size;
	plen = (size_t)(text + size - path);
	if ((nul = memchr(path, '\0', plen)) != NULL)
		plen = (size_t)(nul - path);
	if (plen > FUZZ_MAX_PATH)
		return 0;
	fuzz_list_make(&l, path, plen);

	/* One scratch for every query: query_scratch_bind() reuses it. */
	if ((q0 = query_compile("a", 1, QUERY_FUZZY, NULL)) == NULL)
		return 0;
	sc = query_scratch_new(q0);
	query_free(q0);
	if (sc == NULL)
		return 0;
	for (int m = QUERY_FUZZY; m <= QUERY_REGEX; m++) {
		struct fidx_err err = { "" };
		struct query *q = query_compile(text, tlen, (enum query_mode)m,
		    &err);

		if (q == NULL) {
			FUZZ_CHECK(err.msg[0] != '\0');
			continue;
		}
		FUZZ_CHECK(tlen <= FIDX_MAX_QUERY);
		compiled[m] = true;
		fuzz_check_query(q, sc, &l, scores[m]);
		if (m == QUERY_FUZZY && typos > 0 &&
		    query_set_typos(q, typos) == 0) {
			fuzz_check_query(q, sc, &l, typo_scores);
			for (size_t i = 0; i < l.n; i++)
				FUZZ_CHECK(scores[m][i] == MATCH_NONE ||
				    typo_scores[i] != MATCH_NONE);
		}
		query_free(q);
	}
	if (compiled[QUERY_FUZZY] && compiled[QUERY_EXACT] &&
	    memchr(text, '!', tlen) == NULL && memchr(text, '\'', tlen) == NULL)
		for (size_t i = 0; i < l.n; i++)
			FUZZ_CHECK(scores[QUERY_EXACT][i] == MATCH_NONE ||
			    scores[QUERY_FUZZY][i] != MATCH_NONE);
	query_scratch_free(sc);
	return 0;
}
