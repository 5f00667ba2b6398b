/*
 * filter.c - `fidx filter`: rank lines from stdin, no daemon.
 *
 * Reads every candidate into one arena (bounded by --max-input-bytes and
 * --max-lines), builds 16-byte entries, scores them on all cores into one
 * top-k heap per thread, merges, and prints the best first. Lines longer
 * than --max-line-bytes are skipped and counted; every cut is reported on
 * stderr, and the exit status stays grep's: 0 matches, 1 none, 2 error
 * (a line the regex engine gave up on is an error unless a line matched).
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/alloc.h"
#include "../common/limits.h"
#include "../common/log.h"
#include "../common/proto.h"
#include "../common/query.h"
#include "../common/regex.h"
#include "../common/thread.h"

/* Below this many candidates a second thread costs more than it saves. */
#define FILTER_THREAD_MIN_BYTES (1 << 20)
#define FILTER_MAX_THREADS 16

struct filter_opts {
	size_t limit;
	enum query_mode mode;
	bool positions;
	bool nul;
	bool json;
	int color;
	size_t max_lines;
	size_t max_line_bytes;
	size_t max_input;
	int threads;
	int typos;		/* edits forgiven at most (see query_set_typos) */
};

struct filter_input {
	char *arena;		/* the whole input: read or mapped */
	size_t size;
	size_t mapped;		/* bytes mapped (0: arena is malloc'd) */
	size_t skew;		/* arena - start of the mapping */
	size_t lines;		/* candidate lines kept, over all chunks */
	size_t skipped_long;	/* lines over max_line_bytes */
	size_t regex_errors;	/* lines PCRE2 gave up on (query.h) */
	bool cut_bytes;		/* stopped at max_input */
	bool cut_lines;		/* stopped at max_lines */
};

/*
 * One thread's share: a byte range of the input, split into its own
 * entries, then scored into its own heap. Chunks in input order give the
 * global line order, which --max-lines and the final tie-break need.
 */
struct filter_chunk {
	const struct query *q;
	const struct filter_input *in;
	const struct filter_opts *o;
	size_t from, to;	/* byte range, ending at a separator */
	struct match_entry *ents;
	size_t n, cap;		/* entries stored (at most max_lines) */
	size_t lines;		/* candidate lines seen, stored or not */
	size_t skipped_long;
	size_t first;		/* global index of ents[0] */
	struct topk top;
	_Atomic int32_t *floor;	/* shared by the chunks of one search */
	size_t matched;
	size_t regex_errors;
	int failed;
};

static void
filter_usage(FILE *f)
{
	fprintf(f,
	    "usage: fidx filter [options] QUERY... < candidates\n"
	    "Ranks lines from stdin by QUERY (its words joined by spaces), "
	    "best first.\n"
	    "  -n, --limit N           results to print (default %d, at most "
	    "%d)\n"
	    "  -m, --mode MODE         fuzzy (default), exact or regex\n"
	    "  -p, --positions         show matched byte offsets\n"
	    "  -0, --null              NUL-separated input and output\n"
	    "  -j, --json              one JSON object: results, matched, ...\n"
	    "      --color=WHEN        highlight matches: auto, always, never\n"
	    "      --max-lines N       candidate lines read (default %u)\n"
	    "      --max-line-bytes N  longer lines are skipped (default %d)\n"
	    "      --max-input-bytes N bytes read from stdin (default %llu)\n"
	    "      --threads N         scoring threads (default: all cores)\n"
	    "      --typos N           bytes a one-term query may have wrong,\n"
	    "                          0 to 2 (default 2: 1 for 4-7 bytes, 2\n"
	    "                          beyond; 0 turns typo matching off)\n"
	    "Exit status: 0 if something matched or was printed, 1 if "
	    "nothing, 2 on\n"
	    "error or when nothing matched and the regex could not be "
	    "decided on a line.\n",
	    FIDX_RESULTS_DEFAULT, FIDX_RESULTS_CEILING,
	    FIDX_FILTER_MAX_LINES_DEFAULT, FIDX_MAX_PATH_DEFAULT,
	    FIDX_FILTER_MAX_INPUT_DEFAULT);
}

/*
 * Maps a regular file (no copy, no growth); reads anything else (a pipe)
 * into one buffer of at most max bytes. Either way QUERY_PAD readable,
 * defined bytes follow the input, for PCRE2's JIT (query.h): a file
 * whose mapping would leave fewer is read instead.
 */
static int
filter_read_all(int fd, size_t max, struct filter_input *in)
{
	size_t cap = 1 << 20, len = 0;
	char *buf, *nbuf;
	struct stat st;

	/* Map from the current offset: stdin may be partly read already. */
	off_t at = lseek(fd, 0, SEEK_CUR);
	if (at >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size > at) {
		size_t want = (size_t)(st.st_size - at);
		size_t page = (size_t)sysconf(_SC_PAGESIZE);
		size_t skew = (size_t)at % page, after, mlen;

		if (want > max) {
			want = max;
			in->cut_bytes = true;
		}
		/*
		 * Past the data the mapping holds the file's next bytes (up
		 * to QUERY_PAD of them), then zeros to the end of its page.
		 */
		after = (size_t)(st.st_size - at) - want;
		mlen = skew + want + (after < QUERY_PAD ? after : QUERY_PAD);
		buf = (mlen + page - 1) / page * page - (skew + want) >=
		    QUERY_PAD ? mmap(NULL, mlen, PROT_READ, MAP_PRIVATE |
		    MAP_POPULATE, fd, at - (off_t)skew) : MAP_FAILED;
		if (buf != MAP_FAILED) {
			(void)lseek(fd, at + (off_t)want, SEEK_SET);
			in->arena = buf + skew;
			in->size = want;
			in->mapped = mlen;
			in->skew = skew;
			return 0;
		}
		in->cut_bytes = false;	/* fall back to reading */
	}
	if (cap > max + 1)
		cap = max + 1;
	/* cap counts the data; QUERY_PAD more bytes follow it, zeroed at the end. */
	if ((buf = fidx_malloc(cap + QUERY_PAD)) == NULL)
		return -1;
	for (;;) {
		ssize_t r;

		if (len == cap) {
			if (cap > max) {
				/* One byte past the cap proves there is more. */
				in->cut_bytes = true;
				len = max;
				break;
			}
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			if ((nbuf = fidx_reallocarray(buf, ncap + QUERY_PAD,
			    1)) == NULL)
				goto fail;
			buf = nbuf;
			cap = ncap;
		}
		r = read(fd, buf + len, cap - len);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	memset(buf + len, 0, QUERY_PAD);
	in->arena = buf;
	in->size = len;
	return 0;
fail:
	free(buf);
	return -1;
}

static void
filter_input_release(struct filter_input *in)
{
	if (in->mapped)
		munmap(in->arena - in->skew, in->mapped);
	else
		free(in->arena);
}

/*
 * Lines in the n bytes at s, estimated from the first 64 KiB, a quarter
 * over: entries sized once are written once, where doubling copied them
 * and faulted in every new copy (a fifth of the split's time).
 */
static size_t
filter_estimate_lines(const char *s, size_t n, char sep)
{
	size_t sample = n < 65536 ? n : 65536, lines = 1, est;
	const char *p = s, *end = s + sample;

	while ((p = memchr(p, sep, (size_t)(end - p))) != NULL) {
		lines++;
		p++;
	}
	est = lines * n / sample / 4 * 5 + 64;
	/* No more than the chunk can hold: a byte and a separator each. */
	return est < n / 2 + 1 ? est : n / 2 + 1;
}

/* Splits a chunk into entries, skipping empty and over-long lines. */
static void
filter_chunk_split(struct filter_chunk *c)
{
	const char *arena = c->in->arena;
	char sep = c->o->nul ? '\0' : '\n';
	size_t pos = c->from;

	if (c->to > c->from) {
		size_t est = filter_estimate_lines(arena + c->from,
		    c->to - c->from, sep);

		if (est > c->o->max_lines)
			est = c->o->max_lines;
		if ((c->ents = fidx_reallocarray(NULL, est,
		    sizeof(*c->ents))) != NULL)
			c->cap = est;
	}

	while (pos < c->to) {
		const char *nl = memchr(arena + pos, sep, c->to - pos);
		size_t len = (nl ? (size_t)(nl - arena) : c->to) - pos;
		size_t next = pos + len + 1;

		/*
		 * A list written on Windows ends its lines in CRLF: the '\r'
		 * is not part of the name. (A name that truly ends in '\r'
		 * comes through -0, which keeps every byte.)
		 */
		if (sep == '\n' && len > 0 && arena[pos + len - 1] == '\r')
			len--;
		if (len > c->o->max_line_bytes) {
			c->skipped_long++;
		} else if (len > 0 && c->lines++ < c->o->max_lines) {
			if (c->n == c->cap) {
				size_t ncap = c->cap ? c->cap * 2 : 4096;
				struct match_entry *e;

				e = fidx_reallocarray(c->ents, ncap,
				    sizeof(*e));
				if (e == NULL) {
					c->failed = 1;
					return;
				}
				c->ents = e;
				c->cap = ncap;
			}
			match_entry_init(&c->ents[c->n++], arena,
			    (uint32_t)pos, (uint16_t)len, false);
		}
		pos = next;
	}
}

static void
filter_chunk_search(struct filter_chunk *c)
{
	struct query_scratch *sc;

	if ((sc = query_scratch_new(c->q)) == NULL) {
		c->failed = 1;
		return;
	}
	query_scratch_share_floor(sc, c->floor);
	c->matched = query_run(c->q, c->in->arena, c->ents, 0, c->n, &c->top,
	    sc);
	c->regex_errors = query_scratch_regex_errors(sc);
	/* Heap order is unchanged by adding one constant to every index. */
	for (size_t i = 0; i < c->top.n; i++)
		c->top.items[i].index += (uint32_t)c->first;
	query_scratch_free(sc);
}

static void *
filter_chunk_split_thread(void *arg)
{
	thread_settle();
	filter_chunk_split(arg);
	return NULL;
}

static void *
filter_chunk_search_thread(void *arg)
{
	thread_settle();
	filter_chunk_search(arg);
	return NULL;
}

/* Runs fn over every chunk, chunk 0 on this thread, the rest on helpers. */
static void
filter_parallel(void *(*fn)(void *), struct filter_chunk *c, int n)
{
	pthread_t tids[FILTER_MAX_THREADS];
	pthread_attr_t attr;	/* helpers start off this CPU: thread.h */
	pthread_attr_t *ap = n > 1 && thread_attr_elsewhere(&attr) ? &attr :
	    NULL;
	int spawned = 1;

	for (; spawned < n; spawned++)
		if (pthread_create(&tids[spawned], ap, fn, &c[spawned]) != 0)
			break;
	if (ap != NULL)
		pthread_attr_destroy(ap);
	fn(&c[0]);
	for (int t = 1; t < spawned; t++)
		pthread_join(tids[t], NULL);
	/* Chunks whose thread could not start run here. */
	for (int t = spawned; t < n; t++)
		fn(&c[t]);
}

/*
 * Splits and scores the input on up to nthreads threads into top.
 * Returns the number of matches, or -1 when out of memory.
 */
static ssize_t
filter_search(const struct query *q, struct filter_input *in,
    const struct filter_opts *o, struct topk *top)
{
	struct filter_chunk c[FILTER_MAX_THREADS];
	_Atomic int32_t floor = MATCH_NONE;
	char sep = o->nul ? '\0' : '\n';
	size_t end = in->size, at = 0, lines = 0;
	ssize_t matched = 0;
	int n = o->threads, failed = 0, ready = 0;

	/* A line cut off by --max-input-bytes names no file: drop it. */
	if (in->cut_bytes)
		while (end > 0 && in->arena[end - 1] != sep)
			end--;
	if (end < FILTER_THREAD_MIN_BYTES)
		n = 1;
	memset(c, 0, sizeof(c));
	for (int t = 0; t < n; t++) {
		size_t to = end * (size_t)(t + 1) / (size_t)n;
		const char *nl;

		/* Each chunk ends just after a separator. */
		if (to < at)
			to = at;
		if (t + 1 < n && to < end &&
		    (nl = memchr(in->arena + to, sep, end - to)) != NULL)
			to = (size_t)(nl - in->arena) + 1;
		else if (t + 1 < n && to < end)
			to = end;
		c[t].q = q;
		c[t].floor = &floor;
		c[t].in = in;
		c[t].o = o;
		c[t].from = at;
		c[t].to = t + 1 == n ? end : to;
		at = c[t].to;
		if (topk_init(&c[t].top, top->k) == -1) {
			failed = 1;
			break;
		}
		ready++;
	}
	if (failed)
		goto out;
	filter_parallel(filter_chunk_split_thread, c, n);
	for (int t = 0; t < n; t++) {
		size_t room = o->max_lines - lines;

		failed |= c[t].failed;
		in->skipped_long += c[t].skipped_long;
		if (c[t].lines > room)
			in->cut_lines = true;
		if (c[t].n > room)
			c[t].n = room;
		c[t].first = lines;
		lines += c[t].n;
	}
	in->lines = lines;
	if (failed)
		goto out;
	filter_parallel(filter_chunk_search_thread, c, n);
	for (int t = 0; t < n; t++) {
		failed |= c[t].failed;
		matched += (ssize_t)c[t].matched;
		in->regex_errors += c[t].regex_errors;
		topk_merge(top, &c[t].top);
	}
out:
	/* Results point into the arena, never into the chunks' entries. */
	for (int t = 0; t < ready; t++) {
		topk_release(&c[t].top);
		free(c[t].ents);
	}
	return failed ? -1 : matched;
}

static void
filter_print_plain(const struct topk_item *it, const uint32_t *pos, int npos,
    const struct filter_opts *o)
{
	if (o->positions) {
		for (int k = 0; k < npos; k++)
			printf(k ? ",%u" : "%u", pos[k]);
		putchar('\t');
	}
	cli_print_highlighted(stdout, it->path, it->len, o->color ? pos : NULL,
	    npos);
	putchar(o->nul ? '\0' : '\n');
}

static int
filter_print_json(const struct topk *top, uint32_t **allpos, int *npos,
    size_t matched, const struct filter_input *in,
    const struct filter_opts *o)
{
	json_t *root = json_object(), *results = json_array();
	int rc = -1;

	if (root == NULL || results == NULL)
		goto out;
	for (size_t i = 0; i < top->n; i++) {
		const struct topk_item *it = &top->items[i];

		if (json_array_append_new(results, proto_result_new(it->path,
		    it->len, it->score, it->extra & QUERY_ITEM_TYPO,
		    o->positions ? allpos[i] : NULL,
		    o->positions ? npos[i] : 0)) == -1)
			goto out;
	}
	if (json_object_set(root, "results", results) == -1 ||
	    json_object_set_new(root, "matched", json_integer(
	    (json_int_t)matched)) == -1 ||
	    json_object_set_new(root, "candidates", json_integer(
	    (json_int_t)in->lines)) == -1 ||
	    json_object_set_new(root, "skipped_long", json_integer(
	    (json_int_t)in->skipped_long)) == -1 ||
	    json_object_set_new(root, "regex_errors", json_integer(
	    (json_int_t)in->regex_errors)) == -1 ||
	    json_object_set_new(root, "truncated",
	    json_boolean(in->cut_bytes || in->cut_lines)) == -1)
		goto out;
	if (json_dumpf(root, stdout, JSON_COMPACT) == -1)
		goto out;
	putchar('\n');
	rc = 0;
out:
	json_decref(results);
	json_decref(root);
	return rc;
}

static int
filter_output(const struct query *q, const struct topk *top, size_t matched,
    const struct filter_input *in, const struct filter_opts *o)
{
	bool want_pos = o->positions || o->color;
	uint32_t **allpos = NULL;
	int *npos = NULL, rc = -1;
	struct query_scratch *sc = NULL;

	if (want_pos) {
		allpos = fidx_calloc(top->n, sizeof(*allpos));
		npos = fidx_calloc(top->n, sizeof(*npos));
		sc = query_scratch_new(q);
		if (allpos == NULL || npos == NULL || sc == NULL)
			goto out;
		for (size_t i = 0; i < top->n; i++) {
			const struct topk_item *it = &top->items[i];

			allpos[i] = fidx_calloc(it->len, sizeof(uint32_t));
			if (allpos[i] == NULL)
				goto out;
			npos[i] = query_positions(q, it->path, it->len,
			    match_basename(it->path, it->len), sc, allpos[i]);
			if (npos[i] < 0)
				npos[i] = 0;
		}
	}
	if (o->json) {
		if (filter_print_json(top, allpos, npos, matched, in, o) == -1)
			goto out;
	} else {
		for (size_t i = 0; i < top->n; i++)
			filter_print_plain(&top->items[i],
			    want_pos ? allpos[i] : NULL,
			    want_pos ? npos[i] : 0, o);
	}
	rc = 0;
out:
	if (allpos != NULL)
		for (size_t i = 0; i < top->n; i++)
			free(allpos[i]);
	free(allpos);
	free(npos);
	query_scratch_free(sc);
	return rc;
}

/* Parses argv into o; *query is the words joined (the caller frees it). */
static int
filter_parse(int argc, char **argv, struct filter_opts *o, char **query)
{
	enum { OPT_COLOR = 256, OPT_MAX_LINES, OPT_MAX_LINE_BYTES,
	    OPT_MAX_INPUT, OPT_THREADS, OPT_TYPOS };
	static const struct option longopts[] = {
		{ "limit", required_argument, NULL, 'n' },
		{ "mode", required_argument, NULL, 'm' },
		{ "positions", no_argument, NULL, 'p' },
		{ "null", no_argument, NULL, '0' },
		{ "json", no_argument, NULL, 'j' },
		{ "color", required_argument, NULL, OPT_COLOR },
		{ "max-lines", required_argument, NULL, OPT_MAX_LINES },
		{ "max-line-bytes", required_argument, NULL,
		    OPT_MAX_LINE_BYTES },
		{ "max-input-bytes", required_argument, NULL, OPT_MAX_INPUT },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "typos", required_argument, NULL, OPT_TYPOS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char prog[] = "fidx";
	unsigned long long v;
	int ch;

	argv[0] = prog;		/* getopt's messages: "fidx: ...", as ours */
	while ((ch = getopt_long(argc, argv, "+n:m:p0jh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'n':
			if (cli_parse_limit(optarg, &v) == -1)
				return -1;
			o->limit = v;
			break;
		case 'm':
			if (cli_parse_mode(optarg, &o->mode) == -1)
				return -1;
			break;
		case 'p':
			o->positions = true;
			break;
		case '0':
			o->nul = true;
			break;
		case 'j':
			o->json = true;
			break;
		case OPT_COLOR:
			if ((o->color = cli_parse_color(optarg)) == -1)
				return -1;
			break;
		case OPT_MAX_LINES:
			if (cli_parse_num("--max-lines", optarg, 1,
			    FIDX_FILTER_MAX_LINES_CEILING, &v) == -1)
				return -1;
			o->max_lines = v;
			break;
		case OPT_MAX_LINE_BYTES:
			if (cli_parse_num("--max-line-bytes", optarg, 1,
			    FIDX_MAX_PATH_CEILING, &v) == -1)
				return -1;
			o->max_line_bytes = v;
			break;
		case OPT_MAX_INPUT:
			if (cli_parse_num("--max-input-bytes", optarg, 1,
			    FIDX_FILTER_MAX_INPUT_CEILING, &v) == -1)
				return -1;
			o->max_input = v;
			break;
		case OPT_THREADS:
			if (cli_parse_num("--threads", optarg, 1,
			    FILTER_MAX_THREADS, &v) == -1)
				return -1;
			o->threads = (int)v;
			break;
		case OPT_TYPOS:
			if (cli_parse_num("--typos", optarg, 0, 2, &v) == -1)
				return -1;
			o->typos = (int)v;
			break;
		case 'h':
			filter_usage(stdout);
			exit(0);
		default:
			log_warnx("see fidx filter --help");
			return -1;
		}
	}
	if (optind == argc) {
		log_warnx("no query; see fidx filter --help");
		return -1;
	}
	/* Words join as `fidx a b` joins them: one query of two terms. */
	if ((*query = cli_join(argc - optind, argv + optind)) == NULL)
		return -1;
	return 0;
}

int
filter_main(int argc, char **argv)
{
	struct filter_opts o = {
		.limit = FIDX_RESULTS_DEFAULT,
		.mode = QUERY_FUZZY,
		.color = -1,
		.max_lines = FIDX_FILTER_MAX_LINES_DEFAULT,
		.max_line_bytes = FIDX_MAX_PATH_DEFAULT,
		.max_input = FIDX_FILTER_MAX_INPUT_DEFAULT,
		.typos = 2,
	};
	struct filter_input in = { 0 };
	struct topk top = { 0 };
	struct query *q = NULL;
	struct fidx_err err;
	char *text = NULL;
	ssize_t matched;
	int rc = 2;

	if (filter_parse(argc, argv, &o, &text) == -1)
		goto out;
	if (o.color == -1)
		o.color = !o.json && !o.nul && cli_color_auto();
	if (o.json)
		o.color = 0;
	if (o.threads == 0) {
		long nproc = sysconf(_SC_NPROCESSORS_ONLN);

		o.threads = nproc < 1 ? 1 : nproc > FILTER_MAX_THREADS ?
		    FILTER_MAX_THREADS : (int)nproc;
	}
	if ((q = query_compile(text, strlen(text), o.mode, &err)) == NULL) {
		log_warnx("%s", err.msg);
		goto out;
	}
	if (query_set_typos(q, o.typos) == -1) {
		log_warn("compiling the query");
		goto out;
	}
	if (filter_read_all(STDIN_FILENO, o.max_input, &in) == -1) {
		log_warn("reading stdin");
		goto out;
	}
	if (topk_init(&top, o.limit) == -1 ||
	    (matched = filter_search(q, &in, &o, &top)) == -1) {
		log_warn("indexing %zu bytes of input", in.size);
		goto out;
	}
	if (in.skipped_long > 0 && o.max_line_bytes < FIDX_MAX_PATH_CEILING)
		log_warnx("skipped %zu lines longer than %zu bytes (raise "
		    "--max-line-bytes)", in.skipped_long, o.max_line_bytes);
	else if (in.skipped_long > 0)
		log_warnx("skipped %zu lines longer than %zu bytes, the most "
		    "--max-line-bytes allows", in.skipped_long,
		    o.max_line_bytes);
	if (in.cut_bytes)
		log_warnx("input cut at %zu bytes (raise --max-input-bytes)",
		    o.max_input);
	if (in.cut_lines)
		log_warnx("input cut at %zu lines (raise --max-lines)",
		    o.max_lines);
	cli_warn_regex_errors(in.regex_errors, in.lines, "lines");
	topk_sort(&top);
	if (filter_output(q, &top, (size_t)matched, &in, &o) == -1) {
		log_warn("writing results");
		goto out;
	}
	if (fflush(stdout) == EOF && errno != EPIPE) {
		log_warn("stdout");
		goto out;
	}
	/*
	 * grep's status: 0 when a line matched or was printed (typo matches
	 * are printed but not counted as matched), else 2 if some line could
	 * not be decided (its "no match" is not known), else 1.
	 */
	rc = matched > 0 || top.n > 0 ? 0 : in.regex_errors > 0 ? 2 : 1;
out:
	topk_release(&top);
	filter_input_release(&in);
	query_free(q);
	/* PCRE2's compile context: exit leaves nothing allocated. */
	regex_shutdown();
	free(text);
	return rc;
}
