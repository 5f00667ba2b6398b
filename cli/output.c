/* output.c - see output.h. */
#include "output.h"
#include "cli.h"

#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/alloc.h"
#include "../common/log.h"
#include "../common/proto.h"
#include "../common/shquote.h"

/* Scratch reused from one result to the next, grown as needed. */
struct output_scratch {
	char *raw, *full, *out;
	size_t raw_cap, full_cap, out_cap;
	uint32_t *pos;
	size_t pos_cap;
};

static int
output_grow(void *pp, size_t *cap, size_t need, size_t elem)
{
	void **p = pp, *np;

	if (need <= *cap)
		return 0;
	if ((np = fidx_reallocarray(*p, need, elem)) == NULL) {
		log_warn("printing results");
		return -1;
	}
	*p = np;
	*cap = need;
	return 0;
}

/*
 * Where full (the file's absolute path) parts from cwd, at a directory
 * boundary: returns the offset in full of the shared prefix's end, and
 * sets *up to the number of cwd's components below it.
 */
static size_t
output_common(const char *cwd, const char *full, size_t flen, size_t *up)
{
	size_t common = 0, i;

	for (i = 0; cwd[i] != '\0' && i < flen && cwd[i] == full[i]; i++)
		if (cwd[i] == '/')
			common = i;
	if (cwd[i] == '\0' && i < flen && full[i] == '/')
		common = i;
	*up = 0;
	for (const char *p = cwd + common; *p != '\0'; p++)
		if (*p == '/' && p[1] != '\0')
			(*up)++;
	return common;
}

/* The result's path bytes: path_b64 decoded when present, else path. */
static int
output_result_path(json_t *r, struct output_scratch *s, const char **path,
    size_t *len)
{
	json_t *b64 = json_object_get(r, "path_b64");
	json_t *p = json_object_get(r, "path");

	if (json_is_string(b64)) {
		size_t n = json_string_length(b64);

		if (output_grow(&s->raw, &s->raw_cap, n / 4 * 3 + 3, 1) == -1)
			return -1;
		if (proto_base64_decode(json_string_value(b64), n, s->raw,
		    len) == -1) {
			log_warnx("fidxd sent a path_b64 that is not base64");
			return -1;
		}
		*path = s->raw;
		return 0;
	}
	if (!json_is_string(p)) {
		log_warnx("fidxd sent a result without a path");
		return -1;
	}
	*path = json_string_value(p);
	*len = json_string_length(p);
	return 0;
}

/*
 * Keeps the positions that are in range and increasing, moved from the
 * root-relative path (offset base in full) to the printed path, which is
 * up "../" then full from tail on. Returns how many were kept.
 */
static long
output_map_positions(json_t *arr, size_t plen, size_t base, size_t tail,
    size_t up, struct output_scratch *s)
{
	long n = 0, last = -1;
	size_t i;
	json_t *v;

	if (output_grow(&s->pos, &s->pos_cap, json_array_size(arr) + 1,
	    sizeof(*s->pos)) == -1)
		return -1;
	json_array_foreach(arr, i, v) {
		json_int_t p = json_integer_value(v);

		if (!json_is_integer(v) || p < 0 || (size_t)p >= plen ||
		    p <= last)
			continue;
		last = (long)p;
		if (base + (size_t)p >= tail)
			s->pos[n++] = (uint32_t)(3 * up + base + (size_t)p -
			    tail);
	}
	return n;
}

static int
output_result(json_t *r, const struct output_opts *o,
    struct output_scratch *s)
{
	size_t plen, rlen = strlen(o->root), base, flen, common, up, tail;
	const char *path;
	long npos = 0;

	if (output_result_path(r, s, &path, &plen) == -1)
		return -1;
	base = rlen + (strcmp(o->root, "/") != 0);
	flen = base + plen;
	if (output_grow(&s->full, &s->full_cap, flen + 1, 1) == -1)
		return -1;
	memcpy(s->full, o->root, rlen);
	s->full[rlen] = '/';
	memcpy(s->full + base, path, plen);
	common = output_common(o->cwd, s->full, flen, &up);
	tail = common + 1;
	if (common == 0 && up > 0)
		tail = up = 0;	/* only "/" in common: print it absolute */
	if (output_grow(&s->out, &s->out_cap, 3 * up + flen - tail + 1,
	    1) == -1)
		return -1;
	for (size_t k = 0; k < up; k++)
		memcpy(s->out + 3 * k, "../", 3);
	memcpy(s->out + 3 * up, s->full + tail, flen - tail);
	if ((o->color || o->positions) &&
	    (npos = output_map_positions(json_object_get(r, "positions"),
	    plen, base, tail, up, s)) == -1)
		return -1;
	if (o->git)
		output_git_letters(json_string_value(json_object_get(r, "git")),
		    o->color);
	if (o->positions) {
		for (long k = 0; k < npos; k++)
			printf(k ? ",%" PRIu32 : "%" PRIu32, s->pos[k]);
		putchar('\t');
	}
	cli_print_highlighted(stdout, s->out, 3 * up + flen - tail,
	    o->color ? s->pos : NULL, (int)npos);
	putchar(o->nul ? '\0' : '\n');
	return 0;
}

void
output_git_letters(const char *xy, bool color)
{
	char x = xy != NULL && xy[0] ? xy[0] : ' ';
	char y = xy != NULL && xy[0] && xy[1] ? xy[1] : ' ';

	if (!color) {
		printf("%c%c ", x, y);
		return;
	}
	/* git's colours: staged green, the rest (and untracked) red. */
	if (x == '?')
		printf("\033[31m??\033[0m ");
	else
		printf("%s%c%s%s%c%s ", x != ' ' ? "\033[32m" : "", x,
		    x != ' ' ? "\033[0m" : "", y != ' ' ? "\033[31m" : "", y,
		    y != ' ' ? "\033[0m" : "");
}

long
output_results(json_t *results, const struct output_opts *o)
{
	struct output_scratch s = { 0 };
	long n = 0;
	size_t i;
	json_t *r;

	json_array_foreach(results, i, r) {
		if (output_result(r, o, &s) == -1) {
			n = -1;
			break;
		}
		n++;
	}
	free(s.raw);
	free(s.full);
	free(s.out);
	free(s.pos);
	return n;
}

/* "2024-11-23 15:02:01" from seconds (or milliseconds) since the epoch. */
static void
output_when(json_t *v, char *buf, size_t size)
{
	struct tm tm;
	time_t t;

	if (json_is_string(v)) {
		snprintf(buf, size, "%s", json_string_value(v));
		return;
	}
	if (!json_is_number(v) || json_number_value(v) <= 0) {
		snprintf(buf, size, "-");
		return;
	}
	t = (time_t)json_number_value(v);
	if (t > 100000000000)	/* year 5138 in seconds: these are ms */
		t /= 1000;
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, size, "%lld", (long long)t);
}

static void
output_duration(json_t *ms, char *buf, size_t size)
{
	double v = json_number_value(ms);

	if (!json_is_number(ms))
		snprintf(buf, size, "-");
	else if (v < 1000)
		snprintf(buf, size, "%.0f ms", v);
	else
		snprintf(buf, size, "%.1f s", v / 1000);
}

static void
output_count(json_t *v, char *buf, size_t size)
{
	if (json_is_integer(v))
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	else
		snprintf(buf, size, "-");
}

void
output_projects(json_t *projects, const char *cmd)
{
	char files[24], gen[24], when[64], took[32];
	size_t i;
	json_t *p;

	if (json_array_size(projects) == 0) {
		printf("no projects (`%s add DIR` adds one)\n", cmd);
		return;
	}
	printf("%-8s %-8s %9s %5s %-19s %8s  %s\n", "STATE", "WATCH", "FILES",
	    "GEN", "BUILT", "TOOK", "ROOT");
	json_array_foreach(projects, i, p) {
		const char *state = json_string_value(json_object_get(p,
		    "state"));
		const char *root = json_string_value(json_object_get(p,
		    "root"));
		const char *msg = json_string_value(json_object_get(p,
		    "message"));
		const char *watch = json_string_value(json_object_get(p,
		    "watch"));
		const char *wmsg = json_string_value(json_object_get(p,
		    "watch_message"));

		output_count(json_object_get(p, "files"), files,
		    sizeof(files));
		output_count(json_object_get(p, "generation"), gen,
		    sizeof(gen));
		output_when(json_object_get(p, "built_at"), when,
		    sizeof(when));
		output_duration(json_object_get(p, "build_ms"), took,
		    sizeof(took));
		printf("%-8s %-8s %9s %5s %-19s %8s  %s", state ? state : "?",
		    watch ? watch : "-", files, gen, when, took,
		    root ? root : "?");
		if (msg != NULL)
			printf("  (%s)", msg);
		if (wmsg != NULL)
			printf("  (%s)", wmsg);
		putchar('\n');
	}
}

enum output_verdict
output_project_verdict(json_t *p, const char *root, const char *cmd,
    bool notes)
{
	const char *state = json_string_value(json_object_get(p, "state"));
	const char *msg = json_string_value(json_object_get(p, "message"));
	json_t *capped = json_object_get(p, "capped");
	/* Which cap cut the walk: "cap", or a "capped" that names it. */
	const char *cap = json_is_true(capped) ? json_string_value(
	    json_object_get(p, "cap")) : json_string_value(capped);

	if (state == NULL)
		state = "?";
	if (strcmp(state, "error") == 0) {
		log_warnx("indexing %s failed: %s (it keeps its last index; "
		    "`%s ls` shows it)", root, msg ? msg : "no reason given",
		    cmd);
		return OUTPUT_FAILED;
	}
	if (strcmp(state, "gone") == 0) {
		char word[SHQUOTE_SIZE(PATH_MAX)];

		shquote(word, sizeof(word), root);
		log_warnx("%s is gone: %s (`%s rm %s` forgets it)", root,
		    msg ? msg : "its root cannot be opened", cmd, word);
		return OUTPUT_FAILED;
	}
	/* The daemon's message names the cap and its flag; else we do. */
	if (cap != NULL && msg == NULL) {
		log_warnx("the index of %s is partial: the walk stopped at the "
		    "%s cap (fidxd %s raises it)", root, cap,
		    strcmp(cap, "files") == 0 ? "--max-files" :
		    strcmp(cap, "bytes") == 0 ? "--max-index-bytes" :
		    "--max-files or --max-index-bytes");
		return OUTPUT_PARTIAL;
	}
	if (json_is_true(capped) || strcmp(state, "capped") == 0) {
		log_warnx("the index of %s is partial: %s", root, msg ? msg :
		    "a cap cut its walk");
		return OUTPUT_PARTIAL;
	}
	if (strcmp(state, "ready") != 0 && strcmp(state, "indexing") != 0) {
		log_warnx("project %s is in state %s%s%s (see `%s ls`)", root,
		    state, msg ? ": " : "", msg ? msg : "", cmd);
		return OUTPUT_FAILED;
	}
	if (notes && msg != NULL)
		log_warnx("%s: %s", root, msg);
	return OUTPUT_COMPLETE;
}

static void
output_scalar(const char *key, json_t *v)
{
	char *text;

	switch (json_typeof(v)) {
	case JSON_STRING:
		printf("%s", json_string_value(v));
		break;
	case JSON_INTEGER:
		printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
		/* Byte counts also read in MiB, the scale they matter at. */
		if (strstr(key, "bytes") != NULL &&
		    json_integer_value(v) >= 1024 * 1024)
			printf(" (%.1f MiB)",
			    (double)json_integer_value(v) / (1024 * 1024));
		break;
	case JSON_REAL:
		printf("%g", json_real_value(v));
		break;
	case JSON_TRUE:
		printf("yes");
		break;
	case JSON_FALSE:
		printf("no");
		break;
	case JSON_NULL:
		printf("-");
		break;
	default:
		if ((text = json_dumps(v, JSON_COMPACT)) != NULL)
			printf("%s", text);
		free(text);
		break;
	}
	putchar('\n');
}

static bool
output_nests(json_t *v)
{
	return json_is_object(v) && json_object_size(v) > 0;
}

void
output_tree(json_t *obj, int indent)
{
	const char *key;
	size_t width = 0;
	json_t *v;

	/* Nested objects get their own lines; the rest align their values. */
	json_object_foreach(obj, key, v)
		if (!output_nests(v) && strlen(key) > width)
			width = strlen(key);
	json_object_foreach(obj, key, v) {
		if (output_nests(v)) {
			printf("%*s%s:\n", indent, "", key);
			output_tree(v, indent + 2);
			continue;
		}
		printf("%*s%s:%*s ", indent, "", key,
		    (int)(width - strlen(key)), "");
		if (json_is_object(v))
			printf("(none)\n");
		else
			output_scalar(key, v);
	}
}
