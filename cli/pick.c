/*
 * pick.c - see pick.h.
 *
 * The layout, top to bottom of the area term.c gives: the prompt and
 * the query; a header (matched/total, marks, the project's state, its
 * watch when not watching, the generation, or the daemon's error); then
 * one result a line, best first, the current one with '>' and in bold,
 * marked ones with '*', matched characters in green. Paths are shown
 * relative to the project root (what the query matched) and printed
 * relative to the current directory, as `fidx QUERY` prints them.
 *
 * The list asks for as many results as it has lines; moving past the
 * last one asks again for twice as many (up to FIDX_RESULTS_CEILING),
 * so memory follows what is looked at, not the project's size.
 */
#include "pick.h"
#include "cli.h"
#include "client.h"
#include "output.h"
#include "term.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

#include "../common/limits.h"
#include "../common/log.h"
#include "../common/proto.h"
#include "../common/query.h"

struct pick_opts {
	const char *sock;
	const char *root;
	const char *query;
	enum query_mode mode;
	bool mode_set;
	bool multi;
	bool nul;
	bool git;
	int height;		/* 0: the whole screen */
	bool height_pct;
};

struct pick {
	struct pick_opts o;
	struct client c;
	struct term t;
	char root[PATH_MAX];
	char q[FIDX_MAX_QUERY + 1];
	size_t qlen;
	size_t qpos;		/* the cursor in q, a character boundary */
	long long next_id;	/* ids of every request sent */
	long long want_id;	/* the last query sent: the only one shown */
	long long projects_id;	/* a `projects` in flight, or 0 */
	int inflight;
	bool dirty;		/* the newest query is not sent yet */
	long long retry_at_ms;	/* send it then (after `busy`), or 0 */
	long long refresh_at_ms;	/* the next `projects` look */
	unsigned limit;		/* results asked for */
	json_t *results;	/* of the last answer shown; never NULL */
	json_t *marks;		/* result objects, in the order marked */
	long long matched, total, generation, known_generation;
	/* Typo matches shown: the daemon's `matched` counts clean ones. */
	size_t typos;
	long long walked;		/* files the first walk has found, or -1 */
	char state[16], watch[16], cap[16];
	char msg[256];		/* the daemon's error for this query */
	int cursor, top;
	bool redraw;		/* something shown changed since the frame */
	bool quit;
	int rc;
};

static long long
pick_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
pick_usage(FILE *f)
{
	fprintf(f,
	    "usage: fidx pick [options]      choose files interactively\n"
	    "  -q, --query Q        start with this query\n"
	    "      --height N[%%]    draw in the bottom N lines (or N%% of the "
	    "screen),\n"
	    "                       leaving the rest alone (default: the "
	    "whole screen)\n"
	    "      --root DIR       project root (default: the git work tree, "
	    "else .)\n"
	    "  -m, --multi          Tab marks several (the default)\n"
	    "      --no-multi       one path only\n"
	    "  -e, --exact          exact match (as --mode exact)\n"
	    "      --regex          regex match (as --mode regex)\n"
	    "      --git            git's status letters before each path\n"
	    "  -0, --null           end each path with NUL, not newline\n"
	    "Keys: type to narrow; Up/Down, Ctrl-P/Ctrl-N move; Tab marks "
	    "(Shift-Tab\n"
	    "back); Enter prints the marked paths, or the current one; "
	    "Backspace,\n"
	    "Delete, Ctrl-W (word), Ctrl-U (all before the cursor) edit; "
	    "Left/Right,\n"
	    "Home/End move in the query; Esc or Ctrl-C quits with status "
	    "130.\n");
}

static int
pick_parse_height(const char *s, struct pick_opts *o)
{
	size_t n = strlen(s);
	unsigned long long v;
	char buf[32];

	o->height_pct = n > 0 && s[n - 1] == '%';
	if (o->height_pct) {
		if (n - 1 >= sizeof(buf))
			goto bad;
		memcpy(buf, s, n - 1);
		buf[n - 1] = '\0';
		s = buf;
	}
	if (cli_parse_num("--height", s, 1, o->height_pct ? 100 : 10000,
	    &v) == -1)
		goto bad;
	o->height = (int)v;
	return 0;
bad:
	log_warnx("--height takes lines (1-10000) or a percentage (1%%-100%%)");
	return -1;
}

/* Returns -1 (reported) on a bad command line, 1 after --help. */
static int
pick_parse(int argc, char **argv, struct pick_opts *o)
{
	enum { OPT_HEIGHT = 256, OPT_ROOT, OPT_NO_MULTI, OPT_REGEX, OPT_GIT,
	    OPT_SOCKET };
	static const struct option longopts[] = {
		{ "query", required_argument, NULL, 'q' },
		{ "height", required_argument, NULL, OPT_HEIGHT },
		{ "root", required_argument, NULL, OPT_ROOT },
		{ "multi", no_argument, NULL, 'm' },
		{ "no-multi", no_argument, NULL, OPT_NO_MULTI },
		{ "exact", no_argument, NULL, 'e' },
		{ "regex", no_argument, NULL, OPT_REGEX },
		{ "git", no_argument, NULL, OPT_GIT },
		{ "null", no_argument, NULL, '0' },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char prog[] = "fidx";
	int ch;

	argv[0] = prog;
	while ((ch = getopt_long(argc, argv, "q:me0h", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'q':
			o->query = optarg;
			break;
		case OPT_HEIGHT:
			if (pick_parse_height(optarg, o) == -1)
				return -1;
			break;
		case OPT_ROOT:
			o->root = optarg;
			break;
		case 'm':
			o->multi = true;
			break;
		case OPT_NO_MULTI:
			o->multi = false;
			break;
		case 'e':
			o->mode = QUERY_EXACT;
			o->mode_set = true;
			break;
		case OPT_REGEX:
			o->mode = QUERY_REGEX;
			o->mode_set = true;
			break;
		case OPT_GIT:
			o->git = true;
			break;
		case '0':
			o->nul = true;
			break;
		case OPT_SOCKET:
			o->sock = optarg;
			break;
		case 'h':
			pick_usage(stdout);
			return 1;
		default:
			log_warnx("see fidx pick --help");
			return -1;
		}
	}
	if (optind < argc) {
		log_warnx("fidx pick takes no operand ('%s'); the first query "
		    "is --query Q", argv[optind]);
		return -1;
	}
	if (o->query != NULL && strlen(o->query) > FIDX_MAX_QUERY) {
		log_warnx("--query is longer than %d bytes", FIDX_MAX_QUERY);
		return -1;
	}
	return 0;
}

/* Lines of the list: the area less the prompt and the header. */
static int
pick_list_rows(const struct pick *p)
{
	return p->t.height > 2 ? p->t.height - 2 : 1;
}

static int
pick_send(struct pick *p, json_t *req, long long id, struct fidx_err *err)
{
	int rc;

	if (req == NULL || json_object_set_new(req, "id",
	    json_integer(id)) == -1) {
		json_decref(req);
		return fidx_error(err, "out of memory building a request");
	}
	rc = client_send(&p->c, req, err);
	json_decref(req);
	if (rc == 0)
		p->inflight++;
	return rc;
}

static json_t *
pick_query_request(const struct pick *p)
{
	size_t elen;
	char *b64;
	json_t *req;

	req = json_pack("{s:s, s:s, s:I, s:b, s:b, s:I}", "op", "query",
	    "root", p->root, "limit", (json_int_t)p->limit, "positions", 1,
	    "supersede", 1, "timeout_ms", (json_int_t)PICK_INDEXING_POLL_MS);
	if (req == NULL)
		return NULL;
	/* A JSON string is UTF-8: other bytes (Latin-1 names) in base64. */
	if (proto_utf8_valid(p->q, p->qlen)) {
		if (json_object_set_new(req, "q", json_stringn(p->q,
		    p->qlen)) == -1)
			goto oom;
	} else {
		if ((b64 = proto_base64_encode(p->q, p->qlen, &elen)) ==
		    NULL)
			goto oom;
		if (json_object_set_new(req, "q_b64", json_stringn(b64,
		    elen)) == -1) {
			free(b64);
			goto oom;
		}
		free(b64);
	}
	if (p->o.mode_set && json_object_set_new(req, "mode",
	    json_string(query_mode_name(p->o.mode))) == -1)
		goto oom;
	if (p->o.git && json_object_set_new(req, "git", json_true()) == -1)
		goto oom;
	return req;
oom:
	json_decref(req);
	return NULL;
}

/*
 * Sends the query as it stands now, or leaves it for later (dirty)
 * while PICK_MAX_INFLIGHT requests are unanswered.
 */
static int
pick_query(struct pick *p, struct fidx_err *err)
{
	long long id;

	p->dirty = true;
	if (p->inflight >= PICK_MAX_INFLIGHT || p->retry_at_ms != 0)
		return 0;
	id = ++p->next_id;
	if (pick_send(p, pick_query_request(p), id, err) == -1)
		return -1;
	p->want_id = id;
	p->dirty = false;
	return 0;
}

static int
pick_projects(struct pick *p, struct fidx_err *err)
{
	long long id;

	if (p->projects_id != 0 || p->inflight >= PICK_MAX_INFLIGHT)
		return 0;
	id = ++p->next_id;
	if (pick_send(p, json_pack("{s:s}", "op", "projects"), id, err) ==
	    -1)
		return -1;
	p->projects_id = id;
	return 0;
}

static const char *
pick_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

static void
pick_copy(char *dst, size_t size, json_t *v)
{
	snprintf(dst, size, "%s", json_is_string(v) ? json_string_value(v) :
	    "");
}

/*
 * The total: the project's files, from a `projects` answer. A new
 * generation (the watcher applied a change, a reindex finished) or a
 * root gone since the list was drawn asks the query again, so the list
 * does not go stale while no key is pressed.
 */
static int
pick_on_projects(struct pick *p, json_t *resp, struct fidx_err *err)
{
	bool again = false;
	json_t *prj;
	size_t i;

	json_array_foreach(json_object_get(resp, "projects"), i, prj) {
		if (strcmp(pick_str(prj, "root"), p->root) != 0)
			continue;
		p->total = json_integer_value(json_object_get(prj, "files"));
		p->walked = json_is_integer(json_object_get(prj, "walked")) ?
		    json_integer_value(json_object_get(prj, "walked")) : -1;
		p->known_generation = json_integer_value(json_object_get(prj,
		    "generation"));
		again = (p->known_generation != p->generation &&
		    p->generation > 0) || (strcmp(pick_str(prj, "state"),
		    "gone") == 0 && strcmp(p->state, "gone") != 0);
	}
	return again && !p->dirty ? pick_query(p, err) : 0;
}

/* Results marked "typo": shown, but not in the daemon's `matched`. */
static size_t
pick_count_typos(json_t *results)
{
	size_t i, n = 0;
	json_t *r;

	json_array_foreach(results, i, r)
		if (json_is_true(json_object_get(r, "typo")))
			n++;
	return n;
}

static void
pick_clamp(struct pick *p)
{
	int n = (int)json_array_size(p->results), rows = pick_list_rows(p);

	if (p->cursor >= n)
		p->cursor = n > 0 ? n - 1 : 0;
	if (p->cursor < 0)
		p->cursor = 0;
	if (p->cursor < p->top)
		p->top = p->cursor;
	if (p->cursor >= p->top + rows)
		p->top = p->cursor - rows + 1;
	if (p->top < 0)
		p->top = 0;
}

/* The answer to the newest query: what the list shows from now on. */
static int
pick_on_query(struct pick *p, json_t *resp, struct fidx_err *err)
{
	json_t *e = json_object_get(resp, "error");
	const char *code = json_string_value(json_object_get(e, "code"));

	if (!json_is_true(json_object_get(resp, "ok"))) {
		if (code != NULL && strcmp(code, "timeout") == 0) {
			/* No index yet: say so, and ask again. */
			snprintf(p->state, sizeof(p->state), "indexing");
			if (pick_projects(p, err) == -1)
				return -1;
			return pick_query(p, err);
		}
		if (code != NULL && strcmp(code, "busy") == 0) {
			p->dirty = true;
			p->retry_at_ms = pick_now_ms() + PICK_BUSY_RETRY_MS;
			return 0;
		}
		/* A regex being typed ("(") and the like: shown, not fatal. */
		pick_copy(p->msg, sizeof(p->msg), json_object_get(e,
		    "message"));
		json_array_clear(p->results);
		p->matched = 0;
		p->typos = 0;
		pick_clamp(p);
		return 0;
	}
	p->msg[0] = '\0';
	json_decref(p->results);
	p->results = json_incref(json_object_get(resp, "results"));
	if (p->results == NULL)
		p->results = json_array();
	p->matched = json_integer_value(json_object_get(resp, "matched"));
	p->typos = pick_count_typos(p->results);
	p->generation = json_integer_value(json_object_get(resp,
	    "generation"));
	pick_copy(p->state, sizeof(p->state), json_object_get(resp, "state"));
	pick_copy(p->watch, sizeof(p->watch), json_object_get(resp, "watch"));
	pick_copy(p->cap, sizeof(p->cap), json_object_get(resp, "cap"));
	pick_clamp(p);
	/* git's letters are being computed: ask again shortly. */
	if (p->o.git && strcmp(pick_str(resp, "git_status"), "pending") == 0) {
		p->dirty = true;
		p->retry_at_ms = pick_now_ms() + PICK_GIT_RETRY_MS;
	}
	/* A new index: its size is the total. */
	if (p->generation != p->known_generation)
		return pick_projects(p, err);
	return 0;
}

static int
pick_on_answer(struct pick *p, json_t *resp, struct fidx_err *err)
{
	json_int_t id = json_integer_value(json_object_get(resp, "id"));

	if (p->inflight > 0)
		p->inflight--;
	if (id == p->projects_id && id != 0) {
		p->projects_id = 0;
		p->redraw = true;
		if (json_is_true(json_object_get(resp, "ok")) &&
		    pick_on_projects(p, resp, err) == -1)
			return -1;
	} else if (id == p->want_id) {
		p->redraw = true;
		if (pick_on_query(p, resp, err) == -1)
			return -1;
	}
	/* Anything else answers an older keystroke (or was cancelled). */
	if (p->dirty && p->retry_at_ms == 0)
		return pick_query(p, err);
	return 0;
}

static const char *
pick_key_of(json_t *r)
{
	const char *b64 = json_string_value(json_object_get(r, "path_b64"));

	return b64 != NULL ? b64 : json_string_value(json_object_get(r,
	    "path"));
}

/* The index of r's path among the marks, or -1. */
static long
pick_marked(const struct pick *p, json_t *r)
{
	const char *key = pick_key_of(r);
	json_t *m;
	size_t i;

	if (key == NULL)
		return -1;
	json_array_foreach(p->marks, i, m) {
		const char *mk = pick_key_of(m);

		if (mk != NULL && strcmp(mk, key) == 0)
			return (long)i;
	}
	return -1;
}

static void
pick_toggle(struct pick *p)
{
	json_t *r = json_array_get(p->results, (size_t)p->cursor);
	long at;

	if (r == NULL)
		return;
	if ((at = pick_marked(p, r)) >= 0)
		json_array_remove(p->marks, (size_t)at);
	else if (json_array_size(p->marks) < PICK_MAX_MARKS)
		json_array_append(p->marks, r);
	else
		snprintf(p->msg, sizeof(p->msg), "at most %d marks",
		    PICK_MAX_MARKS);
}

/* Moves by delta; past the last result, asks for more if there are. */
static int
pick_move(struct pick *p, int delta, struct fidx_err *err)
{
	int n = (int)json_array_size(p->results);

	p->cursor += delta;
	if (p->cursor >= n && p->matched > n && p->limit <
	    FIDX_RESULTS_CEILING) {
		p->limit = p->limit * 2 > FIDX_RESULTS_CEILING ?
		    FIDX_RESULTS_CEILING : p->limit * 2;
		pick_clamp(p);
		return pick_query(p, err);
	}
	pick_clamp(p);
	return 0;
}

/* Starts the list again for a changed query. */
static int
pick_edited(struct pick *p, struct fidx_err *err)
{
	p->cursor = p->top = 0;
	p->limit = (unsigned)pick_list_rows(p);
	return pick_query(p, err);
}

/* The start of the UTF-8 character before at, or 0. */
static size_t
pick_prev_char(const struct pick *p, size_t at)
{
	if (at > 0)
		at--;
	while (at > 0 && ((unsigned char)p->q[at] & 0xc0) == 0x80)
		at--;
	return at;
}

/* The end of the UTF-8 character at at, or qlen. */
static size_t
pick_next_char(const struct pick *p, size_t at)
{
	if (at < p->qlen)
		at++;
	while (at < p->qlen && ((unsigned char)p->q[at] & 0xc0) == 0x80)
		at++;
	return at;
}

/* Cuts the query's bytes [from, to); the cursor goes to from. */
static void
pick_cut(struct pick *p, size_t from, size_t to)
{
	memmove(p->q + from, p->q + to, p->qlen - to + 1);
	p->qlen -= to - from;
	p->qpos = from;
}

static void
pick_insert(struct pick *p, const char *text, size_t n)
{
	memmove(p->q + p->qpos + n, p->q + p->qpos, p->qlen - p->qpos + 1);
	memcpy(p->q + p->qpos, text, n);
	p->qlen += n;
	p->qpos += n;
}

/* The word before the cursor and the blanks after it, as readline's ^W. */
static size_t
pick_word_start(const struct pick *p)
{
	size_t at = p->qpos;

	while (at > 0 && p->q[at - 1] == ' ')
		at--;
	while (at > 0 && p->q[at - 1] != ' ')
		at--;
	return at;
}

/* Keys that edit the query: 1 if it changed, 0 if not, -1 not one. */
static int
pick_edit(struct pick *p, const struct term_keypress *k)
{
	size_t to;

	switch (k->key) {
	case TERM_KEY_CHAR:
		if (p->qlen + k->len > FIDX_MAX_QUERY)
			return 0;
		pick_insert(p, k->text, k->len);
		return 1;
	case TERM_KEY_BACKSPACE:
		if (p->qpos == 0)
			return 0;
		pick_cut(p, pick_prev_char(p, p->qpos), p->qpos);
		return 1;
	case TERM_KEY_DELETE:
		if (p->qpos == p->qlen)
			return 0;
		pick_cut(p, p->qpos, pick_next_char(p, p->qpos));
		return 1;
	case TERM_KEY_CTRL_W:
		if (p->qpos == 0)
			return 0;
		pick_cut(p, pick_word_start(p), p->qpos);
		return 1;
	case TERM_KEY_CTRL_U:
		/* readline's: what is before the cursor. */
		if ((to = p->qpos) == 0)
			return 0;
		pick_cut(p, 0, to);
		return 1;
	case TERM_KEY_LEFT:
		p->qpos = pick_prev_char(p, p->qpos);
		return 0;
	case TERM_KEY_RIGHT:
		p->qpos = pick_next_char(p, p->qpos);
		return 0;
	case TERM_KEY_HOME:
		p->qpos = 0;
		return 0;
	case TERM_KEY_END:
		p->qpos = p->qlen;
		return 0;
	default:
		return -1;
	}
}

static int
pick_key(struct pick *p, const struct term_keypress *k, struct fidx_err *err)
{
	int rows = pick_list_rows(p);

	p->redraw = true;
	switch (pick_edit(p, k)) {
	case 1:
		return pick_edited(p, err);
	case 0:
		return 0;
	}
	switch (k->key) {
	case TERM_KEY_UP:
		return pick_move(p, -1, err);
	case TERM_KEY_DOWN:
		return pick_move(p, 1, err);
	case TERM_KEY_PGUP:
		return pick_move(p, -rows, err);
	case TERM_KEY_PGDN:
		return pick_move(p, rows, err);
	case TERM_KEY_TAB:
		if (!p->o.multi)
			return 0;
		pick_toggle(p);
		return pick_move(p, 1, err);
	case TERM_KEY_BTAB:
		if (!p->o.multi)
			return 0;
		pick_toggle(p);
		return pick_move(p, -1, err);
	case TERM_KEY_ENTER:
		p->quit = true;
		p->rc = 0;
		return 0;
	case TERM_KEY_ESC:
	case TERM_KEY_CTRL_C:
		p->quit = true;
		p->rc = 130;
		return 0;
	default:
		return 0;
	}
}

/*
 * Draws s (len bytes, UTF-8) in at most width columns: wide characters
 * count two, control bytes show as '?'. Bytes at the sorted positions
 * pos are green. Returns the columns used.
 */
static int
pick_draw_text(struct term *t, const char *s, size_t len, json_t *pos,
    int width)
{
	size_t at = 0, k = 0, npos = json_array_size(pos);
	int col = 0;

	while (at < len) {
		utf8proc_int32_t cp;
		utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)
		    s + at, (utf8proc_ssize_t)(len - at), &cp);
		bool hit = false;
		int w;
		bool bad = n <= 0;

		if (bad) {
			n = 1;
			cp = '?';
		}
		w = cp < 0x20 || cp == 0x7f ? 1 : utf8proc_charwidth(cp);
		if (col + w > width)
			break;
		while (k < npos && (size_t)json_integer_value(
		    json_array_get(pos, k)) < at)
			k++;
		if (k < npos && (size_t)json_integer_value(json_array_get(pos,
		    k)) < at + (size_t)n)
			hit = true;
		if (hit)
			term_puts(t, "\033[32m");
		if (bad || cp < 0x20 || cp == 0x7f)
			term_put(t, "?", 1);
		else
			term_put(t, s + at, (size_t)n);
		if (hit)
			term_puts(t, "\033[39m");
		at += (size_t)n;
		col += w;
	}
	return col;
}

/* The columns of s's first len bytes as drawn, at most width. */
static int
pick_width(const char *s, size_t len, int width)
{
	size_t at = 0;
	int col = 0;

	while (at < len) {
		utf8proc_int32_t cp;
		utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)
		    s + at, (utf8proc_ssize_t)(len - at), &cp);
		int w = n <= 0 || cp < 0x20 || cp == 0x7f ? 1 :
		    utf8proc_charwidth(cp);

		if (col + w > width)
			break;
		at += n <= 0 ? 1 : (size_t)n;
		col += w;
	}
	return col;
}

static void
pick_draw_git(struct term *t, const char *xy)
{
	char x = xy != NULL && xy[0] ? xy[0] : ' ';
	char y = xy != NULL && xy[0] && xy[1] ? xy[1] : ' ';

	/* git's colours, as output_git_letters(): staged green, else red. */
	if (x == '?') {
		term_puts(t, "\033[31m??\033[39m ");
		return;
	}
	term_printf(t, "%s%c\033[39m%s%c\033[39m ", x != ' ' ? "\033[32m" :
	    "", x, y != ' ' ? "\033[31m" : "", y);
}

static void
pick_draw_row(struct pick *p, int i)
{
	json_t *r = json_array_get(p->results, (size_t)i);
	const char *path = json_string_value(json_object_get(r, "path"));
	bool cur = i == p->cursor;
	int width = p->t.cols - 1 - 2;

	if (path == NULL)
		return;
	term_puts(&p->t, cur ? "\033[1m>" : " ");
	term_puts(&p->t, pick_marked(p, r) >= 0 ? "*" : " ");
	if (p->o.git && width > 3) {
		pick_draw_git(&p->t, json_string_value(json_object_get(r,
		    "git")));
		width -= 3;
	}
	/* Positions are of the path's bytes: none for a path_b64's "path". */
	pick_draw_text(&p->t, path, strlen(path), json_object_get(r,
	    "path_b64") != NULL ? NULL : json_object_get(r, "positions"),
	    width);
	if (cur)
		term_puts(&p->t, "\033[0m");
}

static void
pick_draw_header(struct pick *p)
{
	char line[512];
	size_t at = 0;

#define PICK_ADD(...) do { \
	int n_ = snprintf(line + at, sizeof(line) - at, __VA_ARGS__); \
	if (n_ > 0) \
		at = at + (size_t)n_ >= sizeof(line) ? sizeof(line) - 1 : \
		    at + (size_t)n_; \
} while (0)
	if (p->total >= 0)
		PICK_ADD("  %lld/%lld", p->matched, p->total);
	else
		PICK_ADD("  %lld/?", p->matched);
	if (p->typos > 0)
		PICK_ADD(" +%zu typo%s", p->typos, p->typos == 1 ? "" : "s");
	if (json_array_size(p->marks) > 0)
		PICK_ADD(" (%zu marked)", json_array_size(p->marks));
	if (p->state[0] != '\0')
		PICK_ADD("  %s%s%s%s", p->state, p->cap[0] ? " (" : "",
		    p->cap, p->cap[0] ? ")" : "");
	if (strcmp(p->state, "indexing") == 0 && p->walked > 0)
		PICK_ADD("... %lld files so far", p->walked);
	else if (strcmp(p->state, "indexing") == 0)
		PICK_ADD("...");
	if (p->watch[0] != '\0' && strcmp(p->watch, "watching") != 0)
		PICK_ADD("  watch %s", p->watch);
	if (p->generation > 0)
		PICK_ADD("  gen %lld", p->generation);
	if (p->msg[0] != '\0')
		PICK_ADD("  %s", p->msg);
#undef PICK_ADD
	term_puts(&p->t, "\033[2m");
	pick_draw_text(&p->t, line, at, NULL, p->t.cols - 1);
	term_puts(&p->t, "\033[0m");
}

static void
pick_draw(struct pick *p)
{
	int rows = pick_list_rows(p), n = (int)json_array_size(p->results);
	int col;

	pick_clamp(p);
	term_frame_begin(&p->t);
	term_line_start(&p->t, 0);
	term_puts(&p->t, "> ");
	pick_draw_text(&p->t, p->q, p->qlen, NULL, p->t.cols - 3);
	col = 2 + pick_width(p->q, p->qpos, p->t.cols - 3);
	if (p->t.height > 1) {
		term_line_start(&p->t, 1);
		pick_draw_header(p);
	}
	for (int r = 0; r < rows && 2 + r < p->t.height; r++) {
		term_line_start(&p->t, 2 + r);
		if (p->top + r < n)
			pick_draw_row(p, p->top + r);
	}
	term_frame_end(&p->t, col);
}

/* Prints the marked paths, or the current one; the exit status. */
static int
pick_print(struct pick *p)
{
	struct output_opts oo = { .root = p->root, .nul = p->o.nul };
	json_t *sel = json_array(), *cur;
	char cwd[PATH_MAX];
	int rc = 1;

	if (sel == NULL) {
		log_warnx("out of memory");
		return 2;
	}
	if (json_array_size(p->marks) > 0)
		json_array_extend(sel, p->marks);
	else if ((cur = json_array_get(p->results, (size_t)p->cursor)) !=
	    NULL)
		json_array_append(sel, cur);
	if (json_array_size(sel) == 0)
		goto out;
	if (realpath(".", cwd) == NULL) {
		log_warn("the current directory");
		rc = 2;
		goto out;
	}
	oo.cwd = cwd;
	rc = output_results(sel, &oo) == -1 ? 2 : 0;
	if (fflush(stdout) == EOF && errno != EPIPE) {
		log_warn("stdout");
		rc = 2;
	}
out:
	json_decref(sel);
	return rc;
}

/* Takes every answer the socket has; -1 with err when it is gone. */
static int
pick_drain_socket(struct pick *p, struct fidx_err *err)
{
	json_t *resp;
	int r;

	while ((r = client_receive(&p->c, &resp, err)) == 1) {
		r = pick_on_answer(p, resp, err);
		json_decref(resp);
		if (r == -1)
			return -1;
	}
	return r;
}

static int
pick_drain_keys(struct pick *p, struct fidx_err *err)
{
	struct term_keypress k;

	while (!p->quit && term_next_key(&p->t, &k))
		if (pick_key(p, &k, err) == -1)
			return -1;
	return 0;
}

/* The poll timeout that also wakes at at_ms (0: no such time). */
static int
pick_timeout(int timeout, long long at_ms)
{
	long long left;

	if (at_ms == 0)
		return timeout;
	left = at_ms - pick_now_ms();
	if (left < 0)
		left = 0;
	return timeout == -1 || left < timeout ? (int)left : timeout;
}

/*
 * The loop: the tty, the socket and the signals in one poll. Returns 0
 * when a key ended it (p->rc says how), a signal number when a signal
 * did, -1 with err on a failure (the daemon went away).
 */
static int
pick_loop(struct pick *p, struct fidx_err *err)
{
	if (pick_edited(p, err) == -1)
		return -1;
	p->refresh_at_ms = pick_now_ms() + PICK_REFRESH_MS;
	pick_draw(p);
	while (!p->quit) {
		struct pollfd fds[3] = {
			{ .fd = p->t.fd, .events = POLLIN },
			{ .fd = p->c.fd, .events = POLLIN },
			{ .fd = term_signal_fd(&p->t), .events = POLLIN },
		};
		struct term_keypress k;
		int timeout = -1, n;

		if (term_pending_esc(&p->t))
			timeout = TERM_ESC_WAIT_MS;
		timeout = pick_timeout(timeout, p->retry_at_ms);
		timeout = pick_timeout(timeout, p->refresh_at_ms);
		n = poll(fds, 3, timeout);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return fidx_error(err, "poll: %s", strerror(errno));
		if (fds[2].revents & POLLIN) {
			int sig = term_signal_take(&p->t);

			if (sig == SIGWINCH) {
				term_resize(&p->t);
				p->redraw = true;
				/* More lines may show more results. */
				if ((unsigned)pick_list_rows(p) > p->limit) {
					p->limit = (unsigned)pick_list_rows(p);
					if (pick_query(p, err) == -1)
						return -1;
				}
			} else if (sig != 0) {
				return sig;
			}
		}
		if (fds[1].revents & (POLLIN | POLLHUP | POLLERR) &&
		    pick_drain_socket(p, err) == -1)
			return -1;
		if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (term_read(&p->t, err) == -1)
				return -1;
		} else if (n == 0 && term_flush_esc(&p->t, &k) &&
		    pick_key(p, &k, err) == -1) {
			return -1;
		}
		if (pick_drain_keys(p, err) == -1)
			return -1;
		if (pick_now_ms() >= p->refresh_at_ms) {
			p->refresh_at_ms = pick_now_ms() + PICK_REFRESH_MS;
			if (pick_projects(p, err) == -1)
				return -1;
		}
		if (p->retry_at_ms != 0 && pick_now_ms() >= p->retry_at_ms) {
			p->retry_at_ms = 0;
			if (p->dirty && pick_query(p, err) == -1)
				return -1;
		}
		/* A stale answer changes nothing: no frame for it. */
		if (!p->quit && p->redraw) {
			pick_draw(p);
			p->redraw = false;
		}
	}
	return 0;
}

int
pick_main(int argc, char **argv, const char *sock)
{
	struct pick *p;
	struct fidx_err err;
	int rc = 2, r;

	/* Big (a path and a query buffer): on the heap, not the stack. */
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		log_warnx("out of memory");
		return 2;
	}
	p->c.fd = -1;
	p->t.fd = -1;
	p->t.sigfd = -1;
	p->o.sock = sock;
	p->o.multi = true;
	p->total = -1;
	p->walked = -1;
	p->known_generation = -1;
	p->results = json_array();
	p->marks = json_array();
	if (p->results == NULL || p->marks == NULL) {
		log_warnx("out of memory");
		goto out;
	}
	if ((r = pick_parse(argc, argv, &p->o)) != 0) {
		rc = r == 1 ? 0 : 2;
		goto out;
	}
	if (p->o.query != NULL) {
		p->qlen = p->qpos = strlen(p->o.query);
		memcpy(p->q, p->o.query, p->qlen + 1);
	}
	if ((p->o.root != NULL ? client_named_root(p->o.root, p->root,
	    sizeof(p->root), &err) : client_project_root(NULL, p->root,
	    sizeof(p->root), &err)) == -1) {
		log_warnx("%s", err.msg);
		goto out;
	}
	/* Before the terminal is raw: starting fidxd may print. */
	if (client_init(&p->c, p->o.sock, &err) == -1 ||
	    client_connect_or_start(&p->c, NULL, &err) == -1) {
		log_warnx("%s", err.msg);
		goto out;
	}
	if (term_open(&p->t, p->o.height, p->o.height_pct, &err) == -1) {
		log_warnx("%s", err.msg);
		goto out;
	}
	r = pick_loop(p, &err);
	term_close(&p->t);
	if (r == -1) {
		log_warnx("%s; the picker stopped", err.msg);
		goto out;
	}
	if (r > 0) {
		/* Freed first, so that dying of sig leaves nothing behind. */
		json_decref(p->results);
		json_decref(p->marks);
		client_release(&p->c);
		free(p);
		term_reraise(r);
	}
	rc = p->rc == 0 ? pick_print(p) : p->rc;
out:
	term_close(&p->t);
	json_decref(p->results);
	json_decref(p->marks);
	client_release(&p->c);
	free(p);
	return rc;
}
