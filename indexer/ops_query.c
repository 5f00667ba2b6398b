/*
 * ops_query.c - the query op: a query parsed once, scored on the loop for
 * a small index or on the query worker for a large one, cancelled by a
 * newer one (supersede) or by cancel. See ops_impl.h.
 */
#include "ops_impl.h"
#include "project.h"
#include "search.h"
#include "server.h"
#include "visits.h"
#include "work.h"
#include "../common/alloc.h"
#include "../common/limits.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * The most a file's visits add to its score: a byte's match score, so
 * frecency orders files of about the same match quality and never lifts
 * a poor match over a good one.
 */
#define OPS_FRECENCY_MAX MATCH_SCORE

/* Bytes of best paths a narrowing set keeps for the next floor. */
#define OPS_NARROW_TOP_BYTES (64 * 1024)

/* Room for a decoded "q_b64" of up to FIDX_MAX_QUERY bytes, and a NUL. */
#define OPS_QUERY_B64_MAX ((FIDX_MAX_QUERY + 2) / 3 * 4)
#define OPS_QUERY_BUF (OPS_QUERY_B64_MAX / 4 * 3 + 1)

/*
 * The query's bytes: "q" (a JSON string, so UTF-8), or "q_b64", the same
 * in base64, for a query that is not UTF-8 (a Latin-1 file name); the
 * two are exclusive. A decoded query goes into buf (OPS_QUERY_BUF).
 * Past FIDX_MAX_QUERY, *len says by how much (the caller refuses it).
 */
static int
ops_query_text(struct ops_req *r, char *buf, const char **text,
    size_t *len)
{
	json_t *b64 = json_object_get(r->req, "q_b64");
	const char *enc;
	size_t n;

	if (b64 == NULL || json_is_null(b64))
		return ops_string(r, "q", true, text, len);
	if (json_object_get(r->req, "q") != NULL)
		return ops_fail(r, PROTO_E_BAD_REQUEST,
		    "give \"q\" or \"q_b64\", not both");
	if (ops_string(r, "q_b64", true, &enc, &n) == -1)
		return -1;
	if (n > OPS_QUERY_B64_MAX) {
		*text = enc;
		*len = n / 4 * 3;	/* over FIDX_MAX_QUERY: refused */
		return 0;
	}
	if (proto_base64_decode(enc, n, buf, len) == -1)
		return ops_fail(r, PROTO_E_BAD_REQUEST,
		    "\"q_b64\" is not strict base64");
	if (memchr(buf, '\0', *len) != NULL)
		return ops_fail(r, PROTO_E_BAD_REQUEST,
		    "\"q_b64\" decodes to a NUL byte, which no path has");
	buf[*len] = '\0';
	*text = buf;
	return 0;
}

/*
 * The results array of a finished search, its blocks cut from a pool
 * (alloc.h): it is freed on the loop thread once sent, and would
 * otherwise leave its holes in this worker's arena.
 */
static json_t *ops_results_pooled(const struct query *q,
    const struct topk *top, bool positions);

static json_t *
ops_results(const struct query *q, const struct topk *top, bool positions)
{
	json_t *a;

	alloc_pool_begin();
	a = ops_results_pooled(q, top, positions);
	alloc_pool_end();
	return a;
}

static json_t *
ops_results_pooled(const struct query *q, const struct topk *top,
    bool positions)
{
	struct query_scratch *sc = NULL;
	uint32_t *pos = NULL;
	json_t *a = json_array();

	if (a == NULL)
		return NULL;
	if (positions && ((sc = query_scratch_new(q)) == NULL ||
	    (pos = fidx_big_reallocarray(NULL, FIDX_MAX_PATH_CEILING,
	    sizeof(*pos))) == NULL))
		goto fail;
	for (size_t i = 0; i < top->n; i++) {
		const struct topk_item *it = &top->items[i];
		int n = positions ? query_positions(q, it->path, it->len,
		    match_basename(it->path, it->len), sc, pos) : 0;

		if (json_array_append_new(a, proto_result_new(it->path,
		    it->len, it->score, it->extra & QUERY_ITEM_TYPO,
		    positions ? pos : NULL, n)) == -1)
			goto fail;
	}
	query_scratch_free(sc);
	fidx_big_free(pos);
	return a;
fail:
	query_scratch_free(sc);
	fidx_big_free(pos);
	json_decref(a);
	return NULL;
}

/*
 * A connection's narrowing set (query.h, "Narrowing"): the candidate set
 * of its last finished query, one bit per entry of the snapshot it was
 * scored on. Held by the client (server_set_data) between queries, by
 * the query's ops_run while one runs (taken from the client on the loop,
 * given back on the loop when it is done), so it has one owner at a
 * time and the worker only reads or fills it. No snapshot reference is
 * kept: the serial says which snapshot the bits speak of, and a set
 * whose snapshot is no longer live is freed (ops_narrow_sweep).
 */
struct ops_narrow {
	struct ops *o;
	struct query *q;		/* owned: whose candidate set it is;
					   NULL until that query finished */
	uint64_t serial;		/* index_snapshot.serial */
	size_t n;			/* the snapshot's entries */
	uint64_t *bits;			/* owned, (n + 63) / 64 words */
	/*
	 * The answer's best paths (search_narrow.top), owned, back to back:
	 * the next query's first floor. Charged once on the loop (top_bytes
	 * in bytes, when the query is done).
	 */
	char *top;
	uint32_t *top_len;
	size_t ntop, top_bytes;
	size_t bytes;			/* charged to o->narrow_bytes */
	char *root;			/* owned: the project, for the sweep */
	struct client *c;		/* its holder, while linked */
	struct ops_narrow *prev, *next;	/* o->narrows, while a client holds
					   it */
};

static void
ops_narrow_free(struct ops_narrow *nw)
{
	if (nw == NULL)
		return;
	nw->o->narrow_bytes -= nw->bytes;
	nw->o->narrow_sets--;
	query_free(nw->q);
	free(nw->bits);
	free(nw->top);
	free(nw->top_len);
	free(nw->root);
	free(nw);
}

/* Takes c's set from it, or NULL. */
static struct ops_narrow *
ops_narrow_take(struct ops *o, struct client *c)
{
	struct ops_narrow *nw = c != NULL ? server_data(c) : NULL;

	if (nw == NULL)
		return NULL;
	server_set_data(c, NULL);
	if (nw->prev != NULL)
		nw->prev->next = nw->next;
	else
		o->narrows = nw->next;
	if (nw->next != NULL)
		nw->next->prev = nw->prev;
	nw->prev = nw->next = NULL;
	nw->c = NULL;
	return nw;
}

/* Gives nw to c to hold, freeing what c held before (nothing, as c's
 * queries run one at a time; to be sure). */
static void
ops_narrow_give(struct ops *o, struct client *c, struct ops_narrow *nw)
{
	ops_narrow_free(ops_narrow_take(o, c));
	nw->c = c;
	nw->next = o->narrows;
	if (o->narrows != NULL)
		o->narrows->prev = nw;
	o->narrows = nw;
	server_set_data(c, nw);
}

void
ops_closed(void *arg, struct client *c, void *data)
{
	struct ops *o = arg;

	(void)data;
	ops_narrow_free(ops_narrow_take(o, c));
}

void
ops_narrow_sweep(struct ops *o)
{
	struct ops_narrow *nw, *next;

	for (nw = o->narrows; nw != NULL; nw = next) {
		const struct project *p = project_find(o->reg, nw->root);

		next = nw->next;
		if (p == NULL || p->snap == NULL || p->snap->serial !=
		    nw->serial)
			ops_narrow_free(ops_narrow_take(o, nw->c));
	}
}

/* A clear set for the n entries of snapshot serial, or NULL. */
static struct ops_narrow *
ops_narrow_new(struct ops *o, const char *root, uint64_t serial, size_t n,
    size_t bytes)
{
	struct ops_narrow *nw = fidx_calloc(1, sizeof(*nw));

	if (nw == NULL)
		return NULL;
	if ((nw->bits = fidx_calloc((n + 63) / 64 + 1,
	    sizeof(*nw->bits))) == NULL ||
	    (nw->root = fidx_strdup(root)) == NULL) {
		free(nw->bits);
		free(nw);
		return NULL;
	}
	nw->o = o;
	nw->serial = serial;
	nw->n = n;
	nw->bytes = bytes;
	o->narrow_bytes += bytes;
	o->narrow_sets++;
	return nw;
}

struct ops_run;
static int32_t ops_bonus(void *arg, const char *path, size_t len);

/*
 * One query's scoring, the same on the loop and on a worker: what it
 * reads is its own (the query, a snapshot reference, a frecency view),
 * so nothing the loop changes meanwhile is touched.
 */
struct ops_run {
	struct search_pool *pool;
	struct query *q;		/* owned */
	struct index_snapshot *sn;	/* one reference, or NULL */
	struct visits_view *vv;		/* owned, or NULL */
	struct ops_gitboost *gb;	/* owned, or NULL */
	const atomic_bool *cancel;	/* or NULL */
	struct ops_narrow *nin;		/* owned: score within it, or NULL */
	struct ops_narrow *nout;	/* owned: this query's set, or NULL */
	size_t limit;
	bool positions;
	bool git;			/* annotate on the loop, after */
	/* What it found: */
	json_t *results;		/* owned until the answer takes it */
	ssize_t matched;
	size_t regex_errors;
	int err;			/* 0, ENOMEM or ECANCELED */
};

/*
 * The score bonus: the files you use (their visits' frecency), and with
 * "boost":"git" the files you are changing.
 */
static int32_t
ops_bonus(void *arg, const char *path, size_t len)
{
	const struct ops_run *run = arg;
	double f = run->vv != NULL ? visits_view_score(run->vv, path, len) : 0;
	/* One fresh visit earns half the most, more visits approach it. */
	int32_t b = f > 0 ? (int32_t)lround(OPS_FRECENCY_MAX * (1 - exp2(-f))) :
	    0;

	if (run->gb != NULL && ops_git_boost_has(run->gb, path, len))
		b += OPS_GIT_BOOST;
	return b;
}

static void
ops_run_release(struct ops_run *run)
{
	json_decref(run->results);
	visits_view_free(run->vv);
	ops_git_boost_free(run->gb);
	index_snapshot_unref(run->sn);
	query_free(run->q);
	ops_narrow_free(run->nin);
	ops_narrow_free(run->nout);
	memset(run, 0, sizeof(*run));
}

/*
 * Keeps the best of top in nw, on the worker (nw is the run's), up to
 * SEARCH_NARROW_TOP paths and OPS_NARROW_TOP_BYTES bytes; none when out
 * of memory (the next query just starts with no floor).
 */
static void
ops_narrow_top(struct ops_narrow *nw, const struct topk *top)
{
	size_t n = 0, bytes = 0;

	while (n < top->n && n < SEARCH_NARROW_TOP &&
	    bytes + top->items[n].len <= OPS_NARROW_TOP_BYTES)
		bytes += top->items[n++].len;
	if (n == 0 || (nw->top = fidx_malloc(bytes)) == NULL ||
	    (nw->top_len = fidx_reallocarray(NULL, n,
	    sizeof(*nw->top_len))) == NULL) {
		free(nw->top);
		nw->top = NULL;
		return;
	}
	bytes = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(nw->top + bytes, top->items[i].path, top->items[i].len);
		nw->top_len[i] = top->items[i].len;
		bytes += top->items[i].len;
	}
	nw->ntop = n;
	nw->top_bytes = bytes + n * sizeof(*nw->top_len);
}

static void
ops_run_score(struct ops_run *run)
{
	struct search_bonus bonus = { ops_bonus, run,
	    (run->vv != NULL ? OPS_FRECENCY_MAX : 0) +
	    (run->gb != NULL ? OPS_GIT_BOOST : 0) };
	struct search_narrow nw = {
		run->nin != NULL ? run->nin->bits : NULL,
		run->nout != NULL ? run->nout->bits : NULL,
		run->nin != NULL ? run->nin->top : NULL,
		run->nin != NULL ? run->nin->top_len : NULL,
		run->nin != NULL ? run->nin->ntop : 0 };
	struct topk top = { 0 };

	run->err = 0;
	if (topk_init(&top, run->limit) == -1) {
		run->err = ENOMEM;
		return;
	}
	if (run->sn != NULL) {
		if ((run->matched = search_run(run->pool, run->q, run->sn, &top,
		    bonus.max > 0 ? &bonus : NULL, run->cancel,
		    &run->regex_errors, nw.in != NULL || nw.out != NULL ?
		    &nw : NULL)) == -1) {
			run->err = errno;
			goto out;
		}
		topk_sort(&top);
		if (run->nout != NULL)
			ops_narrow_top(run->nout, &top);
		run->results = ops_results(run->q, &top,
		    run->positions);
	} else {
		run->results = json_array();
	}
	if (run->results == NULL)
		run->err = ENOMEM;
out:
	topk_release(&top);
}

/*
 * Compiles qa and takes what scoring it over p needs into run. -1 when
 * the query does not compile or memory ran out: r has its answer.
 */
static int
ops_run_prepare(struct ops_req *r, const struct project *p,
    const struct ops_query_args *qa, struct ops_run *run)
{
	struct fidx_err err = { "" };

	memset(run, 0, sizeof(*run));
	run->limit = (size_t)qa->limit;
	run->positions = qa->positions;
	run->git = qa->git;
	if ((run->q = query_compile(qa->text, qa->len, qa->mode,
	    &err)) == NULL)
		return ops_fail(r, errno == ENOMEM ? PROTO_E_NO_MEMORY :
		    PROTO_E_BAD_QUERY, "%s", err.msg);
	if (query_set_typos(run->q, (int)qa->typos) == -1)
		goto nomem;
	if (qa->frecency && r->o->d->visits != NULL &&
	    (run->vv = visits_view_new(visits_project(r->o->d->visits,
	    p->root), time(NULL))) == NULL && errno == ENOMEM)
		goto nomem;
	if (qa->boost_git)
		run->gb = ops_git_boost_new(r->o, p->root);
	if (p->snap != NULL)
		run->sn = index_snapshot_ref(p->snap);
	return 0;
nomem:
	ops_run_release(run);
	return ops_fail(r, PROTO_E_NO_MEMORY, "out of memory for the query");
}

/* The answer to a query that ran: its results and p's state. */
static void
ops_run_answer(struct ops_req *r, const struct project *p,
    struct ops_run *run, const struct timespec *t0)
{
	struct timespec t1;
	json_t *o;

	if (run->err == ECANCELED && r->o->d->stopping) {
		ops_fail(r, PROTO_E_SHUTTING_DOWN, "fidxd is stopping");
		return;
	}
	if (run->err == ECANCELED) {
		r->o->count.queries_cancelled++;
		ops_fail(r, PROTO_E_CANCELLED, "a newer request on this "
		    "connection cancelled the query");
		return;
	}
	if (run->err != 0) {
		ops_fail(r, PROTO_E_NO_MEMORY, "out of memory running the "
		    "query");
		return;
	}
	o = ops_ok(r);
	o = ops_set(o, "results", run->results);
	run->results = NULL;
	o = ops_set(o, "matched", json_integer(run->matched));
	/* Paths PCRE2 gave up on: counted as no match, never silently. */
	o = ops_set(o, "regex_errors",
	    json_integer((json_int_t)run->regex_errors));
	o = ops_set(o, "generation", json_integer(run->sn ?
	    (json_int_t)run->sn->generation : 0));
	o = ops_set(o, "state", json_string(project_state_name(p->state)));
	o = ops_index_fields(o, p);
	if (o != NULL && run->git) {
		uint64_t age = 0;
		const char *gs = ops_git_annotate(r->o, p->root,
		    json_object_get(o, "results"), &age);

		o = ops_set(o, "git_status", json_string(gs));
		if (o != NULL && strcmp(gs, "fresh") == 0)
			o = ops_set(o, "git_age_ms", json_integer(
			    (json_int_t)age));
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	o = ops_set(o, "elapsed_us", json_integer((t1.tv_sec - t0->tv_sec) *
	    1000000 + (t1.tv_nsec - t0->tv_nsec) / 1000));
	ops_send(r, o);
}

/*
 * Before a query runs: whether it may score only the candidate set its
 * client kept (the last finished query's), and where its own goes. Only
 * queries sent with supersede, the picker's stream, and only for a large
 * index (the worker's): a small one costs less than keeping a set.
 */
static void
ops_narrow_begin(struct ops_req *r, const struct project *p,
    const struct ops_query_args *qa, struct ops_run *run)
{
	struct ops *o = r->o;
	struct ops_narrow *old;
	size_t bytes;

	if (!qa->supersede || r->c == NULL || run->sn == NULL ||
	    o->d->narrow_bytes == 0 || o->d->narrow_total_bytes == 0)
		return;
	old = ops_narrow_take(o, r->c);
	if (old != NULL && (old->serial != run->sn->serial ||
	    old->n != run->sn->n)) {
		o->count.narrow_refused_snapshot++;
		ops_narrow_free(old);
		old = NULL;
	} else if (old != NULL && !query_narrows(old->q, run->q)) {
		o->count.narrow_refused_query++;
		ops_narrow_free(old);
		old = NULL;
	}
	run->nin = old;
	if (old != NULL)
		o->count.narrowed++;
	else
		o->count.narrow_full++;
	if (!query_narrowable(run->q)) {
		o->count.narrow_not_kept++;
		return;
	}
	bytes = ((run->sn->n + 63) / 64 + 1) * sizeof(uint64_t);
	if (bytes > o->d->narrow_bytes ||
	    bytes > o->d->narrow_total_bytes - (o->narrow_bytes <
	    o->d->narrow_total_bytes ? o->narrow_bytes :
	    o->d->narrow_total_bytes)) {
		o->count.narrow_over_cap++;
		return;
	}
	/* Out of memory: no set kept, the query runs whole as it would. */
	run->nout = ops_narrow_new(o, p->root, run->sn->serial, run->sn->n,
	    bytes);
}

/*
 * After: a finished query's set goes to its client (c, NULL if gone),
 * if its snapshot is still p's live one; a cancelled query's client gets
 * back the set it started from, still the candidates of the query that
 * made it. What is not given is freed with run.
 */
static void
ops_narrow_end(struct ops *o, struct client *c, const struct project *p,
    struct ops_run *run)
{
	struct ops_narrow **give = NULL;

	if (c == NULL)
		return;
	if (run->err == 0 && run->nout != NULL && p != NULL &&
	    p->snap != NULL && p->snap->serial == run->nout->serial) {
		struct ops_narrow *nw = run->nout;

		nw->q = run->q;	/* the answer is sent: q is done */
		run->q = NULL;
		/* Its best paths, if the caps leave room for them too. */
		if (nw->bytes + nw->top_bytes <= o->d->narrow_bytes &&
		    o->narrow_bytes + nw->top_bytes <=
		    o->d->narrow_total_bytes) {
			nw->bytes += nw->top_bytes;
			o->narrow_bytes += nw->top_bytes;
		} else {
			free(nw->top);
			free(nw->top_len);
			nw->top = NULL;
			nw->top_len = NULL;
			nw->ntop = 0;
		}
		give = &run->nout;
	} else if (run->err == ECANCELED && run->nin != NULL) {
		give = &run->nin;
	}
	if (give != NULL) {
		ops_narrow_give(o, c, *give);
		*give = NULL;
	}
}

/* A query scored on the worker; parked on its client meanwhile. */
struct ops_job {
	struct ops_parked kind;		/* first: what server_parked() is */
	struct work w;
	struct ops *o;
	struct client *c;		/* NULL once the client is gone */
	json_t *id;			/* owned reference, may be NULL */
	char *root;			/* owned: the project, found again */
	bool supersede;
	struct timespec t0;
	struct ops_run run;
};

static void
ops_job_run(struct work *w)
{
	struct ops_job *j = w->arg;

	ops_run_score(&j->run);
}

static void
ops_job_done(struct work *w, bool cancelled)
{
	struct ops_job *j = w->arg;
	struct ops *o = j->o;
	struct ops_req r = { .o = o, .c = j->c, .id = j->id };
	const struct project *p;

	o->jobs--;
	if (j->c != NULL) {
		server_unpark(o->d->server, j->c);
		if (cancelled)
			j->run.err = ECANCELED;
		if ((p = project_find(o->reg, j->root)) == NULL)
			ops_fail(&r, PROTO_E_NO_PROJECT, "%s was removed "
			    "while the query ran", j->root);
		else
			ops_run_answer(&r, p, &j->run, &j->t0);
		ops_narrow_end(o, j->c, p, &j->run);
	}
	ops_run_release(&j->run);
	json_decref(j->id);
	free(j->root);
	free(j);
}

/*
 * Runs the query qa on p's live snapshot and answers r: on the loop for
 * a small index, on the worker for a large one (r's client waits for
 * it; other clients do not).
 */
void
ops_query_answer(struct ops_req *r, const struct project *p,
    const struct ops_query_args *qa)
{
	struct ops *o = r->o;
	struct timespec t0;
	struct ops_run run;
	struct ops_job *j;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ops_run_prepare(r, p, qa, &run) == -1)
		return;
	o->count.queries++;
	if (run.sn == NULL || run.sn->n < o->d->inline_max_files) {
		run.pool = o->d->loop_pool;
		ops_run_score(&run);
		ops_run_answer(r, p, &run, &t0);
		ops_run_release(&run);
		return;
	}
	ops_narrow_begin(r, p, qa, &run);
	if ((j = fidx_calloc(1, sizeof(*j))) == NULL ||
	    (j->root = fidx_strdup(p->root)) == NULL) {
		free(j);
		ops_run_release(&run);
		ops_fail(r, PROTO_E_NO_MEMORY, "out of memory for the query");
		return;
	}
	j->kind.kind = OPS_PARKED_JOB;
	j->o = o;
	j->c = r->c;
	j->id = r->id != NULL ? json_incref(r->id) : NULL;
	j->supersede = qa->supersede;
	j->t0 = t0;
	j->run = run;
	j->run.pool = o->d->pool;
	j->run.cancel = &j->w.cancel;
	if (work_submit(o->d->work, &j->w, ops_job_run, ops_job_done,
	    j) == -1) {
		struct work_stats ws;

		work_get_stats(o->d->work, &ws);
		o->count.queries_busy++;
		ops_fail(r, PROTO_E_BUSY, "%zu queries are waiting for the "
		    "query worker already (the limit%s); try again", ws.queued,
		    ws.max_queued < FIDX_MAX_QUEUED_QUERIES_CEILING ?
		    "; fidxd --max-queued-queries raises it" : "");
		j->c = NULL;
		ops_run_release(&j->run);
		json_decref(j->id);
		free(j->root);
		free(j);
		return;
	}
	o->jobs++;
	server_park(o->d->server, r->c, j);
}

int
op_query(struct ops_req *r)
{
	struct project_add_opts opts = { 0 };
	struct fidx_err err = { "" };
	struct ops_query_args qa = { .mode = QUERY_FUZZY };
	char root[PATH_MAX];
	struct project *p;
	const char *text, *mname, *boost;
	char qbuf[OPS_QUERY_BUF];
	json_int_t min_gen, ms;
	size_t len;
	bool added = false, rewalk;
	uint64_t want;
	int rc = -1;

	/* Check everything before adding or parking anything. */
	if (ops_root(r, root, &p) == -1 ||
	    ops_query_text(r, qbuf, &text, &len) == -1 ||
	    ops_string(r, "mode", false, &mname, NULL) == -1 ||
	    ops_int(r, "limit", 1, FIDX_RESULTS_CEILING, FIDX_RESULTS_DEFAULT,
	    &qa.limit) == -1 ||
	    ops_bool(r, "positions", false, &qa.positions) == -1 ||
	    ops_int(r, "min_generation", 0, INT64_MAX, 0, &min_gen) == -1 ||
	    ops_int(r, "typos", 0, 2, 2, &qa.typos) == -1 ||
	    ops_bool(r, "frecency", true, &qa.frecency) == -1 ||
	    ops_bool(r, "git", false, &qa.git) == -1 ||
	    ops_string(r, "boost", false, &boost, NULL) == -1 ||
	    ops_bool(r, "supersede", false, &qa.supersede) == -1 ||
	    ops_timeout(r, &ms) == -1)
		return -1;
	if (mname != NULL && query_mode_parse(mname, &qa.mode) == -1)
		return ops_fail(r, PROTO_E_BAD_REQUEST, "\"mode\" must be "
		    "fuzzy, exact or regex, not '%s'", mname);
	if (boost != NULL && strcmp(boost, "git") != 0)
		return ops_fail(r, PROTO_E_BAD_REQUEST, "\"boost\" can only be "
		    "\"git\", not '%s'", boost);
	qa.boost_git = boost != NULL;
	if (len > FIDX_MAX_QUERY)
		return ops_fail(r, PROTO_E_QUERY_TOO_LONG, "the query is %zu "
		    "bytes; the limit is %d", len, FIDX_MAX_QUERY);
	/* Parsed once: a query that waits keeps these, not the JSON. */
	if ((qa.text = fidx_strndup(text, len)) == NULL)
		return ops_fail(r, PROTO_E_NO_MEMORY, "out of memory");
	qa.len = len;
	/* A gone root that is back is a root to index, as a new one is. */
	rewalk = p != NULL && p->state == PROJECT_GONE && !p->walking &&
	    ops_is_dir(p->root);
	/*
	 * A walk or a watcher's batch raises the generation, and a batch
	 * comes only of changes already seen: one ahead of every walk asked
	 * for and every batch pending (or about to be, for a new root or one
	 * back) cannot come by waiting. (After a change of its own, a client
	 * asks `sync` for the generation that holds it.)
	 */
	want = (uint64_t)min_gen;
	if (want > (p == NULL ? 1 : rewalk ? p->last_gen + 1 :
	    project_reachable_gen(p))) {
		ops_fail(r, PROTO_E_BAD_REQUEST, "min_generation "
		    "%llu cannot come: the walks of %s have reached generation "
		    "%llu and %s (a reindex starts a new one)",
		    (unsigned long long)want, p ? p->root : root,
		    (unsigned long long)(p ? p->done_gen : 0),
		    p == NULL || rewalk || p->walking ?
		    "the walk asked for makes only the next" :
		    "nothing is being built");
		goto out;
	}
	if (p == NULL && (p = project_add(r->o->reg, root, &opts, &added,
	    &err)) == NULL) {
		ops_fail(r, errno == ENOSPC ? PROTO_E_CAPPED :
		    PROTO_E_NO_MEMORY, "%s", err.msg);
		goto out;
	}
	if (rewalk)
		project_reindex(r->o->reg, p);
	if (p->snap == NULL && p->walking && want < p->last_gen)
		want = p->last_gen;	/* no index yet: wait for the walk */
	rc = 0;
	if (p->done_gen >= want)
		ops_query_answer(r, p, &qa);
	else
		ops_park_one(r, OP_QUERY, p, want, 0, ms, &qa);
out:
	free(qa.text);
	return rc;
}


void
ops_job_waiting(struct ops *o, struct ops_job *j, const char *line,
    size_t len)
{
	if (ops_cancels(line, len, j->supersede, j->id))
		work_cancel(o->d->work, &j->w);
}

void
ops_job_gone(struct ops *o, struct ops_job *j)
{
	/* Its done() still comes, and frees it without a word. */
	j->c = NULL;
	work_cancel(o->d->work, &j->w);
}
