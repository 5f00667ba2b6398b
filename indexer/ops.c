/* ops.c - see ops.h. */
#include "ops.h"
#include "search.h"
#include "work.h"
#include "../common/alloc.h"
#include "../common/limits.h"
#include "../common/proto.h"
#include "../common/query.h"
#include "gitcache.h"
#include "repo.h"
#include "visits.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest wait a request may ask for with "timeout_ms". */
#define OPS_WAIT_CEILING_MS 3600000

/*
 * The most a file's visits add to its score: a byte's match score, so
 * frecency orders files of about the same match quality and never lifts
 * a poor match over a good one.
 */
#define OPS_FRECENCY_MAX MATCH_SCORE

enum ops_id {
	OP_PING, OP_ADD, OP_REMOVE, OP_PROJECTS, OP_QUERY, OP_REINDEX,
	OP_STATS, OP_SHUTDOWN, OP_VISIT, OP_CANCEL, OP_GIT,
};

/* ops_wait.flags: what a parked request's answer must say. */
#define OPS_ADD_NEW		0x1	/* add: the root was not a project */
#define OPS_ADD_OPTIONS		0x2	/* add: its options changed */
#define OPS_ADD_REINDEXING	0x4	/* add: a new walk was started */
#define OPS_REINDEX_ALL		0x8	/* reindex: "all":true */

struct ops {
	struct fidxd *d;
	struct project_registry *reg;
	struct ops_wait *waits;		/* parked, one per client at most */
	struct ops_gitwait *gitwaits;	/* parked on a git computation */
	size_t jobs;			/* queries submitted, not yet done */
	struct ops_counters count;
};

/*
 * What ops parks on a client (server_parked): a request waiting for an
 * index, or a query on the worker. Both structs start with this.
 */
struct ops_parked {
	enum { OPS_PARKED_WAIT, OPS_PARKED_JOB, OPS_PARKED_GIT,
	    OPS_PARKED_GITWAIT } kind;
};

/* One request being handled: what every op needs to answer it. */
struct ops_req {
	struct ops *o;
	struct client *c;
	json_t *req;			/* borrowed; NULL once parked */
	json_t *id;			/* borrowed, may be NULL */
};

/* A query as parsed, kept as such while it waits for an index. */
struct ops_query_args {
	char *text;			/* owned, len bytes and a NUL */
	size_t len;
	enum query_mode mode;
	json_int_t limit, typos;
	bool positions, frecency;
	bool supersede;			/* a newer query cancels this one */
};

/* A project and the generation a parked request waits for. */
struct ops_wait_target {
	char *root;
	uint64_t gen;
};

/* A request parked on its client until its projects are built. */
struct ops_wait {
	struct ops_parked kind;		/* first: what server_parked() is */
	struct ops *o;
	struct client *c;
	json_t *id;			/* owned reference, may be NULL */
	enum ops_id op;
	struct ops_wait_target *t;	/* owned, n entries */
	size_t n;
	unsigned flags;
	json_int_t ms;			/* its bound, for the timeout message */
	struct ops_query_args q;	/* OP_QUERY */
	struct loop_timer deadline;
	struct ops_wait *prev, *next;
};

/* Why a parked request is looked at again. */
enum ops_why { OPS_CHECK, OPS_EXPIRED, OPS_STOPPING };

static void ops_resume(struct ops_wait *w, enum ops_why why);

static void
ops_send(struct ops_req *r, json_t *resp)
{
	server_send(r->o->d->server, r->c, resp);
}

/* Sends an error for r; returns -1 so handlers can `return ops_fail(...)`. */
__attribute__((format(printf, 3, 4)))
static int
ops_fail(struct ops_req *r, enum proto_err code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ops_send(r, proto_error(r->id, code, "%s", msg));
	return -1;
}

/* {"id":…,"ok":true}, to which the op adds its fields. */
static json_t *
ops_ok(struct ops_req *r)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	if ((r->id != NULL && json_object_set(o, "id", r->id) == -1) ||
	    json_object_set_new(o, "ok", json_true()) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Sets key to a new value; on failure frees o and returns NULL. */
static json_t *
ops_set(json_t *o, const char *key, json_t *v)
{
	if (o == NULL || v == NULL || json_object_set_new(o, key, v) == -1) {
		json_decref(v);
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Sets o[obj][key]; on failure frees o and returns NULL. */
static json_t *
ops_set_in(json_t *o, const char *obj, const char *key, json_t *v)
{
	json_t *in = o != NULL ? json_object_get(o, obj) : NULL;

	if (in == NULL || v == NULL || json_object_set_new(in, key, v) == -1) {
		json_decref(v);
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Field readers: absent gives def; the wrong type is a bad_request. */
static int
ops_bool(struct ops_req *r, const char *key, bool def, bool *out)
{
	json_t *v = json_object_get(r->req, key);

	*out = def;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return ops_fail(r, PROTO_E_BAD_REQUEST,
		    "\"%s\" must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

static int
ops_int(struct ops_req *r, const char *key, json_int_t min, json_int_t max,
    json_int_t def, json_int_t *out)
{
	json_t *v = json_object_get(r->req, key);

	*out = def;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return ops_fail(r, PROTO_E_BAD_REQUEST,
		    "\"%s\" must be an integer from %lld to %lld", key,
		    (long long)min, (long long)max);
	*out = json_integer_value(v);
	return 0;
}

/* A string field; *out NULL when absent and not required. */
static int
ops_string(struct ops_req *r, const char *key, bool required,
    const char **out, size_t *len)
{
	json_t *v = json_object_get(r->req, key);

	*out = NULL;
	if (len != NULL)
		*len = 0;
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		return ops_fail(r, PROTO_E_BAD_REQUEST,
		    "\"%s\" is missing (a string)", key);
	}
	if (!json_is_string(v))
		return ops_fail(r, PROTO_E_BAD_REQUEST,
		    "\"%s\" must be a string", key);
	*out = json_string_value(v);
	if (len != NULL)
		*len = json_string_length(v);
	return 0;
}

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
 * The request's root, resolved into buf (PATH_MAX). With *p not NULL on
 * return, it names a project: found by the root as sent first, so a
 * project whose root is gone can still be named.
 */
static int
ops_root(struct ops_req *r, char *buf, struct project **p)
{
	const char *root;
	size_t len;
	struct stat st;

	*p = NULL;
	if (ops_string(r, "root", false, &root, &len) == -1)
		return -1;
	if (root == NULL)
		return ops_fail(r, PROTO_E_BAD_ROOT,
		    "\"root\" is missing (an absolute directory)");
	if (root[0] != '/')
		return ops_fail(r, PROTO_E_BAD_ROOT,
		    "root must be an absolute path: %s", root);
	if (len >= PATH_MAX || strlen(root) != len)
		return ops_fail(r, PROTO_E_BAD_ROOT, "root is not a path");
	if ((*p = project_find(r->o->reg, root)) != NULL) {
		memcpy(buf, root, len + 1);
		return 0;
	}
	if (realpath(root, buf) == NULL)
		return ops_fail(r, PROTO_E_BAD_ROOT, "cannot use root %s: %s",
		    root, strerror(errno));
	if ((*p = project_find(r->o->reg, buf)) != NULL)
		return 0;
	if (stat(buf, &st) == -1)
		return ops_fail(r, PROTO_E_BAD_ROOT, "cannot use root %s: %s",
		    root, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return ops_fail(r, PROTO_E_BAD_ROOT,
		    "root is not a directory: %s", root);
	return 0;
}

/*
 * The fields that say what the live index covers: "capped", and with it
 * "cap" (which one cut it), "kept_old" (a rebuild cut by the byte cap
 * was dropped for it) and "message" (why, and what to raise).
 */
static json_t *
ops_index_fields(json_t *o, const struct project *p)
{
	const char *cap = project_cap_name(p->cap);

	o = ops_set(o, "capped", json_boolean(p->snap ? p->snap->capped :
	    false));
	if (o != NULL && p->snap != NULL && p->snap->capped && cap != NULL)
		o = ops_set(o, "cap", json_string(cap));
	if (o != NULL && p->kept_old)
		o = ops_set(o, "kept_old", json_true());
	if (o != NULL && p->message[0] != '\0')
		o = ops_set(o, "message", json_string(p->message));
	return o;
}

static bool
ops_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static json_t *
ops_project_json(const struct project *p)
{
	const struct index_snapshot *sn = p->snap;
	const struct project_opts *po = project_opts_get(p);
	json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:b,s:I,s:I,s:b}",
	    "root", p->root,
	    "state", project_state_name(p->state),
	    "files", (json_int_t)(sn ? sn->n : 0),
	    "generation", (json_int_t)(sn ? sn->generation : 0),
	    "bytes", (json_int_t)(sn ? index_snapshot_bytes(sn) : 0),
	    "indexing", p->walking,
	    "build_ms", (json_int_t)p->build_ms,
	    "built_at", (json_int_t)p->built_at,
	    "hidden", po->hidden);

	if (o != NULL && po->exclude_src != NULL)
		o = ops_set(o, "exclude", json_string(po->exclude_src));
	return ops_index_fields(o, p);
}

static void
ops_wait_free(struct ops_wait *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->n; i++)
		free(w->t[i].root);
	free(w->t);
	free(w->q.text);
	json_decref(w->id);
	free(w);
}

/* Takes w off its client and out of the list; its timer stops. */
static void
ops_wait_unlink(struct ops_wait *w)
{
	struct ops *o = w->o;

	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		o->waits = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	loop_timer_stop(o->d->loop, &w->deadline);
}

static void
ops_wait_expired(struct loop *l, struct loop_timer *t)
{
	(void)l;
	ops_resume(t->arg, OPS_EXPIRED);
}

/*
 * Parks r until every project in t reaches its generation; t (n entries,
 * roots owned) and, for a query, q->text pass to the wait.
 */
static void
ops_park(struct ops_req *r, enum ops_id op, struct ops_wait_target *t,
    size_t n, unsigned flags, json_int_t ms, struct ops_query_args *q)
{
	struct ops *o = r->o;
	struct ops_wait *w;

	if ((w = fidx_calloc(1, sizeof(*w))) == NULL) {
		ops_fail(r, PROTO_E_NO_MEMORY, "out of memory");
		goto fail;
	}
	w->kind.kind = OPS_PARKED_WAIT;
	w->o = o;
	w->c = r->c;
	w->id = r->id != NULL ? json_incref(r->id) : NULL;
	w->op = op;
	w->t = t;
	w->n = n;
	w->flags = flags;
	w->ms = ms;
	if (q != NULL) {
		w->q = *q;
		q->text = NULL;
	}
	if ((w->next = o->waits) != NULL)
		w->next->prev = w;
	o->waits = w;
	loop_timer_start(o->d->loop, &w->deadline, (uint64_t)ms, 0,
	    ops_wait_expired, w);
	server_park(o->d->server, r->c, w);
	o->count.waits++;
	/* It may already be satisfied (a walk that finished meanwhile). */
	ops_resume(w, OPS_CHECK);
	return;
fail:
	for (size_t i = 0; i < n; i++)
		free(t[i].root);
	free(t);
}

/* "timeout_ms": read before anything is done, so a bad one changes nothing. */
static int
ops_timeout(struct ops_req *r, json_int_t *ms)
{
	return ops_int(r, "timeout_ms", 1, OPS_WAIT_CEILING_MS,
	    r->o->d->wait_ms, ms);
}

/* Parks r on one project reaching gen. */
static void
ops_park_one(struct ops_req *r, enum ops_id op, const struct project *p,
    uint64_t gen, unsigned flags, json_int_t ms, struct ops_query_args *q)
{
	struct ops_wait_target *t = fidx_calloc(1, sizeof(*t));

	if (t == NULL || (t->root = fidx_strdup(p->root)) == NULL) {
		free(t);
		ops_fail(r, PROTO_E_NO_MEMORY, "out of memory");
		return;
	}
	t->gen = gen;
	ops_park(r, op, t, 1, flags, ms, q);
}

static int
op_ping(struct ops_req *r)
{
	json_t *o = ops_ok(r);

	o = ops_set(o, "version", json_string(FIDX_VERSION));
	o = ops_set(o, "pid", json_integer(getpid()));
	ops_send(r, o);
	return 0;
}

/* add's answer, now or once the walk it waits for is done. */
static void
ops_add_answer(struct ops_req *r, const struct project *p, unsigned flags,
    bool waited)
{
	json_t *o = ops_ok(r);

	o = ops_set(o, "root", json_string(p->root));
	o = ops_set(o, "state", json_string(project_state_name(p->state)));
	o = ops_set(o, "added", json_boolean(flags & OPS_ADD_NEW));
	if (flags & OPS_ADD_OPTIONS)
		o = ops_set(o, "options_changed", json_true());
	if (flags & OPS_ADD_REINDEXING)
		o = ops_set(o, "reindexing", json_true());
	if (waited) {
		o = ops_set(o, "files", json_integer(p->snap ?
		    (json_int_t)p->snap->n : 0));
		o = ops_set(o, "generation", json_integer(p->snap ?
		    (json_int_t)p->snap->generation : 0));
		o = ops_index_fields(o, p);
	} else if (p->message[0] != '\0') {
		o = ops_set(o, "message", json_string(p->message));
	}
	ops_send(r, o);
}

/*
 * add's walk options: the request's, and for an existing project its
 * own where the request says nothing, so `add` with no options changes
 * none. "exclude": null or "" is no exclude.
 */
static int
ops_add_opts(struct ops_req *r, const struct project *p,
    struct project_add_opts *o)
{
	const struct project_opts *cur = p ? project_opts_get(p) : NULL;
	json_t *ex = json_object_get(r->req, "exclude");

	if (ops_bool(r, "hidden", cur ? cur->hidden : false, &o->hidden) ==
	    -1 || ops_string(r, "exclude", false, &o->exclude, NULL) == -1)
		return -1;
	if (ex == NULL && cur != NULL)
		o->exclude = cur->exclude_src;
	return 0;
}

static int
op_add(struct ops_req *r)
{
	struct project_add_opts opts = { 0 };
	struct fidx_err err = { "" };
	char root[PATH_MAX];
	struct project *p;
	bool wait, added = false;
	unsigned flags = 0;
	uint64_t gen = 0;
	json_int_t ms;
	int changed;

	if (ops_root(r, root, &p) == -1 ||
	    ops_timeout(r, &ms) == -1 ||
	    ops_bool(r, "wait", false, &wait) == -1 ||
	    ops_add_opts(r, p, &opts) == -1)
		return -1;
	if (p == NULL) {
		if ((p = project_add(r->o->reg, root, &opts, &added,
		    &err)) == NULL)
			return ops_fail(r, errno == ENOSPC ? PROTO_E_CAPPED :
			    errno == EINVAL ? PROTO_E_BAD_REQUEST :
			    PROTO_E_NO_MEMORY, "%s", err.msg);
		gen = p->last_gen;
		if (added)
			flags |= OPS_ADD_NEW;
	} else if ((changed = project_set_opts(r->o->reg, p, &opts, &gen,
	    &err)) == -1) {
		/* Checked as for a new root: a bad exclude changes nothing. */
		return ops_fail(r, errno == EINVAL ? PROTO_E_BAD_REQUEST :
		    PROTO_E_NO_MEMORY, "%s", err.msg);
	} else if (changed == 1) {
		flags |= OPS_ADD_OPTIONS | OPS_ADD_REINDEXING;
	} else if ((p->state == PROJECT_GONE || p->state == PROJECT_ERROR) &&
	    !p->walking) {
		/*
		 * Adding a root again is asking for it to be indexed: one
		 * deleted and made again, or fixed, is walked once more
		 * (a walk already running will tell).
		 */
		gen = project_reindex(r->o->reg, p);
		flags |= OPS_ADD_REINDEXING;
	} else {
		/* Waits for the first walk, or the one running if it had none. */
		gen = p->done_gen > 0 ? p->done_gen : p->last_gen;
	}
	if (!wait) {
		ops_add_answer(r, p, flags, false);
		return 0;
	}
	ops_park_one(r, OP_ADD, p, gen, flags, ms, NULL);
	return 0;
}

static int
op_remove(struct ops_req *r)
{
	char root[PATH_MAX];
	struct project *p;
	json_t *o;

	if (ops_root(r, root, &p) == -1)
		return -1;
	if (p == NULL)
		return ops_fail(r, PROTO_E_NO_PROJECT,
		    "%s is not a project (fidx ls lists them)", root);
	o = ops_set(ops_ok(r), "root", json_string(p->root));
	project_remove(r->o->reg, p);
	/* Requests parked on it hear at once. */
	ops_walks_done(r->o);
	ops_send(r, ops_set(o, "removed", json_true()));
	return 0;
}

static int
op_projects(struct ops_req *r)
{
	struct project_registry *reg = r->o->reg;
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < reg->n; i++)
		if (json_array_append_new(a, ops_project_json(reg->v[i])) ==
		    -1) {
			json_decref(a);
			a = NULL;
		}
	ops_send(r, ops_set(ops_ok(r), "projects", a));
	return 0;
}

/* The results array of a finished search. */
static json_t *
ops_results(const struct query *q, const struct index_snapshot *sn,
    const struct topk *top, bool positions)
{
	struct query_scratch *sc = NULL;
	uint32_t *pos = NULL;
	json_t *a = json_array();

	if (a == NULL)
		return NULL;
	if (positions && ((sc = query_scratch_new(q)) == NULL ||
	    (pos = fidx_reallocarray(NULL, FIDX_MAX_PATH_CEILING,
	    sizeof(*pos))) == NULL))
		goto fail;
	for (size_t i = 0; i < top->n; i++) {
		const struct topk_item *it = &top->items[i];
		const struct match_entry *e = &sn->entries[it->index];
		int n = positions ? query_positions(q, it->path, it->len,
		    e->base, sc, pos) : 0;

		if (json_array_append_new(a, proto_result_new(it->path,
		    it->len, it->score, it->extra & QUERY_ITEM_TYPO,
		    positions ? pos : NULL, n)) == -1)
			goto fail;
	}
	query_scratch_free(sc);
	free(pos);
	return a;
fail:
	query_scratch_free(sc);
	free(pos);
	json_decref(a);
	return NULL;
}

/* The files you use: their visits' frecency, as a score bonus. */
static int32_t
ops_frecency_bonus(void *arg, const char *path, size_t len)
{
	double f = visits_view_score(arg, path, len);

	/* One fresh visit earns half the most, more visits approach it. */
	return f > 0 ? (int32_t)lround(OPS_FRECENCY_MAX * (1 - exp2(-f))) : 0;
}

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
	const atomic_bool *cancel;	/* or NULL */
	size_t limit;
	bool positions;
	/* What it found: */
	json_t *results;		/* owned until the answer takes it */
	ssize_t matched;
	size_t regex_errors;
	int err;			/* 0, ENOMEM or ECANCELED */
};

static void
ops_run_release(struct ops_run *run)
{
	json_decref(run->results);
	visits_view_free(run->vv);
	index_snapshot_unref(run->sn);
	query_free(run->q);
	memset(run, 0, sizeof(*run));
}

static void
ops_run_score(struct ops_run *run)
{
	struct search_bonus bonus = { ops_frecency_bonus, run->vv,
	    OPS_FRECENCY_MAX };
	struct topk top = { 0 };

	run->err = 0;
	if (topk_init(&top, run->limit) == -1) {
		run->err = ENOMEM;
		return;
	}
	if (run->sn != NULL) {
		if ((run->matched = search_run(run->pool, run->q, run->sn, &top,
		    run->vv != NULL ? &bonus : NULL, run->cancel,
		    &run->regex_errors)) == -1) {
			run->err = errno;
			goto out;
		}
		topk_sort(&top);
		run->results = ops_results(run->q, run->sn, &top,
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
	clock_gettime(CLOCK_MONOTONIC, &t1);
	o = ops_set(o, "elapsed_us", json_integer((t1.tv_sec - t0->tv_sec) *
	    1000000 + (t1.tv_nsec - t0->tv_nsec) / 1000));
	ops_send(r, o);
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
static void
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

static int
op_query(struct ops_req *r)
{
	struct project_add_opts opts = { 0 };
	struct fidx_err err = { "" };
	struct ops_query_args qa = { .mode = QUERY_FUZZY };
	char root[PATH_MAX];
	struct project *p;
	const char *text, *mname;
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
	    ops_bool(r, "supersede", false, &qa.supersede) == -1 ||
	    ops_timeout(r, &ms) == -1)
		return -1;
	if (mname != NULL && query_mode_parse(mname, &qa.mode) == -1)
		return ops_fail(r, PROTO_E_BAD_REQUEST, "\"mode\" must be "
		    "fuzzy, exact or regex, not '%s'", mname);
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
	 * Only a walk raises the generation, and no watcher starts one yet:
	 * one ahead of every walk asked for (or about to be, for a new root
	 * or one back) cannot come by waiting.
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

/* reindex's answer: one project, or (all) every project in w. */
static void
ops_reindex_answer(struct ops_req *r, const struct ops_wait *w, bool all)
{
	json_t *o = ops_ok(r), *a;
	const struct project *p;

	o = ops_set(o, "reindexing", json_integer((json_int_t)w->n));
	if (!all) {
		if ((p = project_find(r->o->reg, w->t[0].root)) == NULL) {
			json_decref(o);
			ops_fail(r, PROTO_E_NO_PROJECT, "%s was removed",
			    w->t[0].root);
			return;
		}
		json_decref(o);
		o = ops_project_json(p);
		if (o != NULL && r->id != NULL)
			json_object_set(o, "id", r->id);
		o = ops_set(o, "ok", json_true());
		o = ops_set(o, "reindexing", json_integer(1));
		ops_send(r, o);
		return;
	}
	a = json_array();
	for (size_t i = 0; a != NULL && i < w->n; i++)
		if ((p = project_find(r->o->reg, w->t[i].root)) != NULL &&
		    json_array_append_new(a, ops_project_json(p)) == -1) {
			json_decref(a);
			a = NULL;
		}
	ops_send(r, ops_set(o, "projects", a));
}

static int
op_reindex(struct ops_req *r)
{
	struct project_registry *reg = r->o->reg;
	struct ops_wait_target *t;
	char root[PATH_MAX];
	struct project *p = NULL;
	bool all, wait;
	json_int_t ms;
	size_t n;

	if (ops_bool(r, "all", false, &all) == -1 ||
	    ops_bool(r, "wait", false, &wait) == -1 ||
	    ops_timeout(r, &ms) == -1)
		return -1;
	if (!all) {
		if (ops_root(r, root, &p) == -1)
			return -1;
		if (p == NULL)
			return ops_fail(r, PROTO_E_NO_PROJECT, "%s is not a "
			    "project (fidx add adds it)", root);
	} else if (json_object_get(r->req, "root") != NULL) {
		return ops_fail(r, PROTO_E_BAD_REQUEST,
		    "give \"root\" or \"all\":true, not both");
	}
	n = all ? reg->n : 1;
	if ((t = fidx_calloc(n ? n : 1, sizeof(*t))) == NULL)
		return ops_fail(r, PROTO_E_NO_MEMORY, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct project *q = all ? reg->v[i] : p;

		if ((t[i].root = fidx_strdup(q->root)) == NULL) {
			for (size_t k = 0; k < i; k++)
				free(t[k].root);
			free(t);
			return ops_fail(r, PROTO_E_NO_MEMORY, "out of memory");
		}
		t[i].gen = project_reindex(reg, q);
	}
	if (wait) {
		ops_park(r, OP_REINDEX, t, n, all ? OPS_REINDEX_ALL : 0, ms,
		    NULL);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		free(t[i].root);
	free(t);
	ops_send(r, ops_set(ops_ok(r), "reindexing",
	    json_integer((json_int_t)n)));
	return 0;
}

/* Resident set size from /proc, in bytes; 0 if it cannot be read. */
static size_t
ops_rss_bytes(void)
{
	unsigned long size, resident;
	FILE *f = fopen("/proc/self/statm", "re");
	int n;

	if (f == NULL)
		return 0;
	n = fscanf(f, "%lu %lu", &size, &resident);
	fclose(f);
	return n == 2 ? resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* The git cache: its limits in `limits`, the rest in `git`. */
static json_t *
ops_stats_git(struct fidxd *d, json_t *o)
{
	struct gitcache_limits gl;
	struct gitcache_stats gs;

	gitcache_limits(d->git, &gl);
	gitcache_get_stats(d->git, &gs);
	o = ops_set_in(o, "limits", "git_ttl_ms",
	    json_integer((json_int_t)gl.ttl_ms));
	o = ops_set_in(o, "limits", "git_projects",
	    json_integer((json_int_t)gl.max_projects));
	o = ops_set_in(o, "limits", "git_bytes",
	    json_integer((json_int_t)gl.max_bytes));
	o = ops_set_in(o, "limits", "git_paths",
	    json_integer((json_int_t)gl.max_paths));
	o = ops_set_in(o, "limits", "git_waiters",
	    json_integer((json_int_t)gl.max_waiters));
	return ops_set(o, "git", json_pack("{s:{s:I,s:I,s:I,s:I},"
	    "s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}}",
	    "usage",
	    "entries", (json_int_t)gs.entries,
	    "bytes", (json_int_t)gs.bytes,
	    "computing", (json_int_t)gs.computing,
	    "waiting", (json_int_t)gs.waiting,
	    "counters",
	    "hits", (json_int_t)gs.hits,
	    "misses", (json_int_t)gs.misses,
	    "expired", (json_int_t)gs.expired,
	    "evicted_lru", (json_int_t)gs.evicted_lru,
	    "evicted_bytes", (json_int_t)gs.evicted_bytes,
	    "too_big", (json_int_t)gs.too_big,
	    "truncated", (json_int_t)gs.truncated,
	    "waits", (json_int_t)gs.waits,
	    "waiters_refused", (json_int_t)gs.waiters_refused));
}

static int
op_stats(struct ops_req *r)
{
	struct fidxd *d = r->o->d;
	struct project_registry *reg = r->o->reg;
	struct mallinfo2 mi = mallinfo2();
	struct server_stats ss;
	const struct ops_counters *oc = &r->o->count;
	size_t index_bytes = atomic_load(&reg->budget.used);
	struct log_file_counts lc;
	struct timespec now;
	json_t *o;

	struct work_stats ws;

	server_get_stats(d->server, &ss);
	work_get_stats(d->work, &ws);
	clock_gettime(CLOCK_MONOTONIC, &now);
	o = ops_ok(r);
	o = ops_set(o, "version", json_string(FIDX_VERSION));
	o = ops_set(o, "pid", json_integer(getpid()));
	o = ops_set(o, "uptime_s", json_integer(now.tv_sec -
	    d->started.tv_sec));
	o = ops_set(o, "limits", json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
	    "s:I,s:i,s:i}",
	    "projects", (json_int_t)reg->lim.max_projects,
	    "files_per_project", (json_int_t)reg->lim.max_files,
	    "index_bytes", (json_int_t)reg->lim.max_index_bytes,
	    "clients", (json_int_t)ss.lim.max_clients,
	    "line_bytes", (json_int_t)ss.lim.max_line,
	    "output_bytes_per_client", (json_int_t)ss.lim.max_output,
	    "results", (json_int_t)FIDX_RESULTS_CEILING,
	    "query_bytes", (json_int_t)FIDX_MAX_QUERY,
	    "wait_ms", (json_int_t)d->wait_ms,
	    "walkers", reg->lim.walkers,
	    "search_threads", search_pool_threads(d->pool)));
	o = ops_set(o, "usage", json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}",
	    "projects", (json_int_t)reg->n,
	    "index_bytes", (json_int_t)index_bytes,
	    "clients", (json_int_t)ss.clients,
	    "output_bytes", (json_int_t)ss.output_bytes,
	    "output_bytes_max_client", (json_int_t)ss.output_bytes_max,
	    "walks", (json_int_t)project_walks(reg)));
	o = ops_set(o, "counters", json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
	    "s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
	    "s:I}",
	    "requests", (json_int_t)ss.count.requests,
	    "errors", (json_int_t)ss.count.errors,
	    "queries", (json_int_t)oc->queries,
	    "clients_accepted", (json_int_t)ss.count.clients_accepted,
	    "clients_refused", (json_int_t)ss.count.clients_refused,
	    "clients_forbidden", (json_int_t)ss.count.clients_forbidden,
	    "clients_dropped", (json_int_t)ss.count.clients_dropped,
	    "lines_too_long", (json_int_t)ss.count.lines_too_long,
	    "responses_too_large", (json_int_t)ss.count.responses_too_large,
	    "waits", (json_int_t)oc->waits,
	    "waits_timed_out", (json_int_t)oc->waits_timed_out,
	    "accept_errors", (json_int_t)ss.count.accept_errors,
	    "rebuilds", (json_int_t)reg->count.rebuilds,
	    "rebuilds_capped", (json_int_t)reg->count.rebuilds_capped,
	    "rebuilds_failed", (json_int_t)reg->count.rebuilds_failed,
	    "rebuilds_kept_old", (json_int_t)reg->count.rebuilds_kept_old,
	    "projects_refused", (json_int_t)reg->count.projects_refused,
	    "walk_unreadable", (json_int_t)reg->count.walk_unreadable,
	    "walk_vanished", (json_int_t)reg->count.walk_vanished,
	    "walk_symlinks_skipped",
	    (json_int_t)reg->count.walk_symlinks_skipped,
	    "walk_too_long", (json_int_t)reg->count.walk_too_long,
	    "walk_git_refused", (json_int_t)reg->count.walk_git_refused,
	    "walk_exclude_errors",
	    (json_int_t)reg->count.walk_exclude_errors));
	if (o != NULL && json_object_set_new(json_object_get(o, "counters"),
	    "socket_rebinds", json_integer((json_int_t)
	    ss.count.socket_rebinds)) == -1) {
		json_decref(o);
		o = NULL;
	}
	if (d->visits != NULL) {
		struct visits_counts vc;
		struct visits_limits vl;
		const char *aside;
		bool aside_done;

		visits_counts(d->visits, &vc);
		visits_limits(d->visits, &vl);
		o = ops_set(o, "visits", json_pack("{s:s,s:{s:I,s:I},"
		    "s:{s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I}}",
		    "file", d->visits_file,
		    "limits",
		    "per_project", (json_int_t)vl.per_project,
		    "total", (json_int_t)vl.total,
		    "usage",
		    "entries", (json_int_t)vc.entries,
		    "projects", (json_int_t)vc.projects,
		    "bytes", (json_int_t)vc.bytes,
		    "counters",
		    "evicted", (json_int_t)vc.evicted,
		    "refused", (json_int_t)vc.refused,
		    "load_errors", (json_int_t)vc.load_errors,
		    "saves", (json_int_t)vc.saves,
		    "save_errors", (json_int_t)vc.save_errors));
		/* What the last load skipped, and where the file is kept. */
		aside = visits_aside(d->visits, &aside_done);
		o = ops_set_in(o, "visits", "load", json_pack("{s:I,s:I,s:o,"
		    "s:b}",
		    "loaded", (json_int_t)vc.loaded,
		    "bad_entries", (json_int_t)vc.bad_entries,
		    "moved_aside_to", aside != NULL ? json_string(aside) :
		    json_null(),
		    "moved_aside", aside_done));
	}
	/* Where a detached daemon's messages went (else: its stderr). */
	if (log_file_counts(&lc))
		o = ops_set(o, "log", json_pack("{s:s,s:I,s:I,s:I,s:I}",
		    "file", lc.file,
		    "bytes", (json_int_t)lc.bytes,
		    "max_bytes", (json_int_t)lc.max_bytes,
		    "rotations", (json_int_t)lc.rotations,
		    "rotate_errors", (json_int_t)lc.rotate_errors));
	else
		o = ops_set(o, "log", json_pack("{s:s}", "file", "stderr"));
	/* The query worker: its queue against its limit, what it refused. */
	o = ops_set_in(o, "limits", "query_queue",
	    json_integer((json_int_t)ws.max_queued));
	o = ops_set_in(o, "limits", "inline_max_files",
	    json_integer((json_int_t)d->inline_max_files));
	o = ops_set_in(o, "usage", "query_queue",
	    json_integer((json_int_t)ws.queued));
	o = ops_set_in(o, "usage", "queries_running",
	    json_integer((json_int_t)ws.running));
	o = ops_set_in(o, "counters", "queries_busy",
	    json_integer((json_int_t)oc->queries_busy));
	o = ops_set_in(o, "counters", "queries_cancelled",
	    json_integer((json_int_t)oc->queries_cancelled));
	o = ops_set_in(o, "counters", "queries_on_worker",
	    json_integer((json_int_t)ws.count.submitted));
	o = ops_stats_git(d, o);
	o = ops_set(o, "memory", json_pack("{s:I,s:I,s:I,s:I,s:I}",
	    "rss_bytes", (json_int_t)ops_rss_bytes(),
	    "heap_bytes", (json_int_t)(mi.uordblks + mi.hblkhd),
	    "index_bytes", (json_int_t)index_bytes,
	    "client_input_bytes", (json_int_t)ss.input_bytes,
	    "client_output_bytes", (json_int_t)ss.output_bytes));
	ops_send(r, o);
	return 0;
}

/*
 * Records that a file was opened: {"op":"visit","root":R,"path":P}, P
 * relative to R (or absolute under it). "path" is a JSON string, so
 * UTF-8; "path_b64" (exclusive with it) is the path's exact bytes in
 * strict base64, as answers write them, for a name that is not (a
 * Latin-1 one). The root need not be a project: visits outlive indexes,
 * and fade on their own.
 */
static int
op_visit(struct ops_req *r)
{
	struct fidxd *d = r->o->d;
	char root[PATH_MAX], clean[VISITS_MAX_PATH];
	/* A decoded "path_b64" of up to VISITS_MAX_PATH bytes (and room
	 * for proto_base64_decode's last group). */
	char raw[VISITS_MAX_PATH + 2];
	json_t *b64 = json_object_get(r->req, "path_b64");
	const char *path, *key = "path";
	struct fidx_err err;
	struct project *p;
	size_t len;
	int64_t now = time(NULL);
	json_t *o;

	if (ops_root(r, root, &p) == -1)
		return -1;
	if (b64 == NULL || json_is_null(b64)) {
		if (ops_string(r, "path", true, &path, &len) == -1)
			return -1;
	} else {
		key = "path_b64";
		if (json_object_get(r->req, "path") != NULL)
			return ops_fail(r, PROTO_E_BAD_REQUEST,
			    "give \"path\" or \"path_b64\", not both");
		if (ops_string(r, "path_b64", true, &path, &len) == -1)
			return -1;
		if (len > (sizeof(clean) + 2) / 3 * 4)
			return ops_fail(r, PROTO_E_BAD_REQUEST, "\"path_b64\" "
			    "decodes to more than %zu bytes", sizeof(clean));
		if (proto_base64_decode(path, len, raw, &len) == -1)
			return ops_fail(r, PROTO_E_BAD_REQUEST,
			    "\"path_b64\" is not strict base64");
		if (memchr(raw, '\0', len) != NULL)
			return ops_fail(r, PROTO_E_BAD_REQUEST, "\"path_b64\" "
			    "decodes to a NUL byte, which no path has");
		path = raw;
	}
	/*
	 * One lexical rule for every path the store takes, however it is
	 * spelled: "../x" would remember a file outside the project,
	 * "a/./b" a second entry for "a/b". An absolute path under the
	 * root is taken relative to it.
	 */
	if (len > sizeof(clean))
		return ops_fail(r, PROTO_E_BAD_REQUEST, "\"%s\" is longer "
		    "than %zu bytes", key, sizeof(clean));
	if (visits_path_clean(root, path, len, clean, &len, &err) == -1)
		return ops_fail(r, PROTO_E_BAD_REQUEST, "\"%s\" must name "
		    "a file under the root: %s", key, err.msg);
	path = clean;
	if (d->visits == NULL)
		return ops_fail(r, PROTO_E_NO_MEMORY, "no visit store");
	if (visits_add(d->visits, root, path, len, now) == -1)
		return ops_fail(r, errno == ENOMEM ? PROTO_E_NO_MEMORY :
		    PROTO_E_BAD_REQUEST, "cannot record the visit of %.*s: %s",
		    (int)len, path, strerror(errno));
	fidxd_visits_touched(d);
	o = ops_set(ops_ok(r), "root", json_string(root));
	/* "path", and "path_b64" for a name that is not UTF-8. */
	if (o != NULL && proto_path_set(o, path, len) == -1) {
		json_decref(o);
		o = NULL;
	}
	o = ops_set(o, "frecency", json_real(visits_score(d->visits, root,
	    path, len, now)));
	ops_send(r, o);
	return 0;
}

/*
 * {"op":"cancel","target":ID}: the request of this connection with that
 * id stops if it is still running or waiting, and is answered cancelled.
 * Its answer comes first (answers keep request order), so by the time
 * this one is answered the target is done either way.
 */
static int
op_cancel(struct ops_req *r)
{
	json_t *t = json_object_get(r->req, "target");

	if (t == NULL)
		return ops_fail(r, PROTO_E_BAD_REQUEST, "\"target\" is "
		    "missing: the id of the request to cancel");
	ops_send(r, ops_set(ops_ok(r), "target", json_incref(t)));
	return 0;
}

/*
 * The git op. A project's status comes from the cache when it is fresh
 * enough; otherwise one request computes it on a git worker (an
 * ops_gitjob, parked on its client) and every other request for that
 * root meanwhile waits for the same computation (an ops_gitwait, parked
 * on its own client; the cache counts and bounds them), so a burst of
 * editors asking costs one status. The loop never calls libgit2.
 */
struct ops_gitjob {
	struct ops_parked kind;		/* first: what server_parked() is */
	struct work w;
	struct ops *o;
	struct client *c;		/* NULL once the client is gone */
	json_t *id;			/* owned reference, may be NULL */
	char *root;			/* owned: the cache key (ops_git_root) */
	struct repo_status_opts opts;
	struct repo_status *st;		/* run()'s result, owned until put */
	int err_no;			/* run()'s errno when st is NULL */
	struct fidx_err err;
};

struct ops_gitwait {
	struct ops_parked kind;		/* first: what server_parked() is */
	struct ops *o;
	struct client *c;
	json_t *id;			/* owned reference, may be NULL */
	char *root;			/* owned: the cache key */
	struct ops_gitwait *prev, *next;
};

/*
 * The cache key of a status: the root for git's default listing of
 * untracked files, OPS_GIT_ALL and the root for "untracked":"all" (each
 * file in an untracked directory). A root starts with '/', so the two
 * keys of one root never meet.
 */
#define OPS_GIT_ALL '+'

static const char *
ops_git_root(const char *key)
{
	return key[0] == OPS_GIT_ALL ? key + 1 : key;
}

static json_t *
ops_git_files(const struct repo_status *st)
{
	json_t *a = json_array(), *f, *tmp;
	char x[2] = "", y[2] = "";

	for (size_t i = 0; a != NULL && i < st->nfiles; i++) {
		const struct repo_status_file *e = &st->files[i];

		x[0] = e->index;
		y[0] = e->worktree;
		if ((f = json_object()) == NULL ||
		    json_array_append_new(a, f) == -1 ||
		    proto_path_set(f, e->path, e->path_len) == -1 ||
		    json_object_set_new(f, "index", json_string(x)) == -1 ||
		    json_object_set_new(f, "worktree", json_string(y)) == -1)
			goto fail;
		if (e->orig == NULL)
			continue;
		/* The same encoding as "path", under orig_ names. */
		if ((tmp = json_object()) == NULL ||
		    proto_path_set(tmp, e->orig, strlen(e->orig)) == -1 ||
		    json_object_set(f, "orig_path", json_object_get(tmp,
		    "path")) == -1 || (json_object_get(tmp, "path_b64") !=
		    NULL && json_object_set(f, "orig_path_b64",
		    json_object_get(tmp, "path_b64")) == -1)) {
			json_decref(tmp);
			goto fail;
		}
		json_decref(tmp);
	}
	return a;
fail:
	json_decref(a);
	return NULL;
}

static void
ops_git_answer(struct ops_req *r, const char *root,
    const struct repo_status *st, uint64_t age_ms)
{
	const char *state = repo_state_name(st->state);
	json_t *o = ops_ok(r);

	o = ops_set(o, "root", json_string(root));
	o = ops_set(o, "branch", json_string(st->branch));
	o = ops_set(o, "detached", json_boolean(st->detached));
	o = ops_set(o, "upstream", st->upstream != NULL ?
	    json_string(st->upstream) : json_null());
	o = ops_set(o, "ahead", json_integer((json_int_t)st->ahead));
	o = ops_set(o, "behind", json_integer((json_int_t)st->behind));
	o = ops_set(o, "state", state != NULL ? json_string(state) :
	    json_null());
	o = ops_set(o, "stash", json_integer((json_int_t)st->stash));
	o = ops_set(o, "counts", json_pack("{s:I,s:I,s:I,s:I,s:I}",
	    "staged", (json_int_t)st->counts[REPO_COUNT_STAGED],
	    "modified", (json_int_t)st->counts[REPO_COUNT_MODIFIED],
	    "untracked", (json_int_t)st->counts[REPO_COUNT_UNTRACKED],
	    "ignored", (json_int_t)st->counts[REPO_COUNT_IGNORED],
	    "conflicted", (json_int_t)st->counts[REPO_COUNT_CONFLICTED]));
	o = ops_set(o, "files", ops_git_files(st));
	o = ops_set(o, "total", json_integer((json_int_t)st->total));
	o = ops_set(o, "truncated", json_boolean(st->truncated));
	o = ops_set(o, "age_ms", json_integer((json_int_t)age_ms));
	if (o == NULL) {
		ops_fail(r, PROTO_E_NO_MEMORY, "out of memory for the git "
		    "status of %s", root);
		return;
	}
	ops_send(r, o);
}

/* The answer to a computation, to its own client or a waiter's. */
static void
ops_git_reply(struct ops_req *r, const struct ops_gitjob *j, bool cancelled)
{
	if (j->st != NULL)
		ops_git_answer(r, ops_git_root(j->root), j->st, 0);
	else if (cancelled)
		ops_fail(r, PROTO_E_SHUTTING_DOWN, "fidxd is stopping");
	else if (j->err_no == ENOENT)
		ops_fail(r, PROTO_E_NOT_A_REPOSITORY, "%s", j->err.msg);
	else if (j->err_no == ENOMEM)
		ops_fail(r, PROTO_E_NO_MEMORY, "%s", j->err.msg);
	else
		ops_fail(r, PROTO_E_GIT_FAILED, "%s", j->err.msg);
}

static void
ops_gitwait_unlink(struct ops_gitwait *g)
{
	struct ops *o = g->o;

	if (g->prev != NULL)
		g->prev->next = g->next;
	else
		o->gitwaits = g->next;
	if (g->next != NULL)
		g->next->prev = g->prev;
	g->prev = g->next = NULL;
}

static void
ops_gitwait_free(struct ops_gitwait *g)
{
	json_decref(g->id);
	free(g->root);
	free(g);
}

static void
ops_git_run(struct work *w)
{
	struct ops_gitjob *j = w->arg;

	if (repo_status(&j->st, ops_git_root(j->root), &j->opts,
	    &j->err) == -1)
		j->err_no = errno;
}

static void
ops_git_done(struct work *w, bool cancelled)
{
	struct ops_gitjob *j = w->arg;
	struct ops *o = j->o;
	struct fidxd *d = o->d;
	struct ops_gitwait *g, *next;
	struct ops_req r = { .o = o, .c = j->c, .id = j->id };
	bool kept = false;

	if (j->st != NULL)
		kept = gitcache_put(d->git, j->root, j->st,
		    loop_now_ms(d->loop), NULL) == 0;
	else
		gitcache_fail(d->git, j->root, NULL);
	if (j->c != NULL) {
		server_unpark(d->server, j->c);
		ops_git_reply(&r, j, cancelled && j->st == NULL);
	}
	for (g = o->gitwaits; g != NULL; g = next) {
		struct ops_req wr = { .o = o, .c = g->c, .id = g->id };

		next = g->next;
		if (strcmp(g->root, j->root) != 0)
			continue;
		ops_gitwait_unlink(g);
		server_unpark(d->server, g->c);
		ops_git_reply(&wr, j, cancelled && j->st == NULL);
		ops_gitwait_free(g);
	}
	if (!kept)
		repo_status_free(j->st);
	json_decref(j->id);
	free(j->root);
	free(j);
}

/* Starts key's computation on a git worker, r's client parked on it. */
static void
ops_git_compute(struct ops_req *r, const char *key)
{
	struct ops *o = r->o;
	struct gitcache_limits gl;
	struct ops_gitjob *j;

	gitcache_limits(o->d->git, &gl);
	if ((j = fidx_calloc(1, sizeof(*j))) == NULL ||
	    (j->root = fidx_strdup(key)) == NULL) {
		free(j);
		gitcache_fail(o->d->git, key, NULL);
		ops_fail(r, PROTO_E_NO_MEMORY, "out of memory");
		return;
	}
	j->kind.kind = OPS_PARKED_GIT;
	j->o = o;
	j->c = r->c;
	j->id = r->id != NULL ? json_incref(r->id) : NULL;
	j->opts.max_paths = gl.max_paths;
	j->opts.untracked_all = key[0] == OPS_GIT_ALL;
	if (work_submit(o->d->gitwork, &j->w, ops_git_run, ops_git_done,
	    j) == -1) {
		/* Nobody waits yet: the computation was only just begun. */
		gitcache_fail(o->d->git, key, NULL);
		ops_fail(r, PROTO_E_BUSY, "%zu git statuses are being computed "
		    "already (one per project, as many as --max-git-projects); "
		    "try again", gl.max_projects);
		json_decref(j->id);
		free(j->root);
		free(j);
		return;
	}
	server_park(o->d->server, r->c, j);
}

/* Parks r on key's computation, which another request started. */
static void
ops_git_wait(struct ops_req *r, const char *key)
{
	struct ops *o = r->o;
	struct ops_gitwait *g;

	if ((g = fidx_calloc(1, sizeof(*g))) == NULL ||
	    (g->root = fidx_strdup(key)) == NULL) {
		free(g);
		gitcache_unwait(o->d->git, key);
		ops_fail(r, PROTO_E_NO_MEMORY, "out of memory");
		return;
	}
	g->kind.kind = OPS_PARKED_GITWAIT;
	g->o = o;
	g->c = r->c;
	g->id = r->id != NULL ? json_incref(r->id) : NULL;
	if ((g->next = o->gitwaits) != NULL)
		g->next->prev = g;
	o->gitwaits = g;
	server_park(o->d->server, r->c, g);
}

/*
 * {"op":"git","root":R,"max_age_ms":N,"untracked":"normal"|"all"}: R's
 * git status, at most N ms old (default: any age the TTL keeps). R need
 * not be a project.
 */
static int
op_git(struct ops_req *r)
{
	struct ops *o = r->o;
	const struct repo_status *st;
	struct gitcache_limits gl;
	char key[PATH_MAX + 1], *root = key + 1;
	const char *untracked;
	struct project *p;
	json_int_t max_age;
	uint64_t age;

	if (ops_root(r, root, &p) == -1 ||
	    ops_int(r, "max_age_ms", 0, FIDX_GIT_TTL_MS_CEILING,
	    FIDX_GIT_TTL_MS_CEILING, &max_age) == -1 ||
	    ops_string(r, "untracked", false, &untracked, NULL) == -1)
		return -1;
	if (untracked != NULL && strcmp(untracked, "normal") != 0 &&
	    strcmp(untracked, "all") != 0)
		return ops_fail(r, PROTO_E_BAD_REQUEST, "\"untracked\" must be "
		    "normal or all, not '%s'", untracked);
	key[0] = OPS_GIT_ALL;
	if (untracked == NULL || strcmp(untracked, "all") != 0)
		memmove(key, root, strlen(root) + 1);
	root = (char *)ops_git_root(key);
	switch (gitcache_lookup(o->d->git, key, (uint64_t)max_age,
	    loop_now_ms(o->d->loop), &st, &age)) {
	case GITCACHE_HIT:
		ops_git_answer(r, root, st, age);
		break;
	case GITCACHE_COMPUTE:
		ops_git_compute(r, key);
		break;
	case GITCACHE_WAIT:
		ops_git_wait(r, key);
		break;
	case GITCACHE_BUSY:
		gitcache_limits(o->d->git, &gl);
		return ops_fail(r, PROTO_E_BUSY, "%zu requests wait for the "
		    "git status of %s already (the limit); try again",
		    gl.max_waiters, root);
	}
	return 0;
}

static int
op_shutdown(struct ops_req *r)
{
	ops_send(r, ops_set(ops_ok(r), "stopping", json_true()));
	fidxd_stop(r->o->d);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(struct ops_req *);
} ops_table[] = {
	[OP_PING] = { "ping", op_ping },
	[OP_ADD] = { "add", op_add },
	[OP_REMOVE] = { "remove", op_remove },
	[OP_PROJECTS] = { "projects", op_projects },
	[OP_QUERY] = { "query", op_query },
	[OP_REINDEX] = { "reindex", op_reindex },
	[OP_STATS] = { "stats", op_stats },
	[OP_SHUTDOWN] = { "shutdown", op_shutdown },
	[OP_VISIT] = { "visit", op_visit },
	[OP_CANCEL] = { "cancel", op_cancel },
	[OP_GIT] = { "git", op_git },
};

/* The list of ops comes from the table, so it cannot go stale. */
static void
ops_unknown(struct ops_req *r, const char *op)
{
	char names[256];
	size_t off = 0;

	names[0] = '\0';
	for (size_t i = 0; i < sizeof(ops_table) / sizeof(ops_table[0]);
	    i++) {
		int n = snprintf(names + off, sizeof(names) - off, "%s%s",
		    i ? ", " : "", ops_table[i].name);

		if (n < 0 || (size_t)n >= sizeof(names) - off)
			break;
		off += (size_t)n;
	}
	ops_fail(r, PROTO_E_UNKNOWN_OP, "unknown op '%s' (ops: %s)", op,
	    names);
}

void
ops_line(void *arg, struct client *c, const char *line, size_t len)
{
	struct ops_req r = { .o = arg, .c = c };
	json_error_t je;
	const char *op;

	/* DECODE_ANY: "x" is JSON, just not a request (bad_request). */
	if ((r.req = json_loadb(line, len, JSON_REJECT_DUPLICATES |
	    JSON_DECODE_ANY, &je)) == NULL) {
		/* jansson's own words for this one name its flag. */
		ops_fail(&r, PROTO_E_BAD_JSON, "not valid JSON at column %d: "
		    "%s", je.column, json_error_code(&je) ==
		    json_error_null_character ? "strings may not contain NUL "
		    "(\\u0000)" : je.text);
		return;
	}
	if (!json_is_object(r.req)) {
		ops_fail(&r, PROTO_E_BAD_REQUEST,
		    "a request must be a JSON object");
		goto out;
	}
	r.id = json_object_get(r.req, "id");
	if (ops_string(&r, "op", true, &op, NULL) == -1)
		goto out;
	for (size_t i = 0; i < sizeof(ops_table) / sizeof(ops_table[0]);
	    i++) {
		if (strcmp(ops_table[i].name, op) == 0) {
			ops_table[i].fn(&r);
			goto out;
		}
	}
	ops_unknown(&r, op);
out:
	json_decref(r.req);
}

/*
 * Answers w if its projects are ready, or with an error if it expired or
 * the daemon stops; leaves it parked otherwise. An answered w is freed
 * and its client's later lines go on.
 */
static void
ops_resume(struct ops_wait *w, enum ops_why why)
{
	struct ops *o = w->o;
	struct ops_req r = { .o = o, .c = w->c, .id = w->id };
	const struct project *p = NULL;
	const char *late = NULL;	/* the first root not ready */
	bool done = true;

	for (size_t i = 0; i < w->n; i++) {
		const struct project *q = project_find(o->reg, w->t[i].root);

		if (q != NULL && q->done_gen < w->t[i].gen && done) {
			done = false;
			late = q->root;
		}
		if (i == 0)
			p = q;
	}
	if (!done && why == OPS_CHECK)
		return;
	ops_wait_unlink(w);
	server_unpark(o->d->server, w->c);
	if (!done && why == OPS_STOPPING) {
		ops_fail(&r, PROTO_E_SHUTTING_DOWN, "fidxd is stopping");
	} else if (!done) {
		o->count.waits_timed_out++;
		ops_fail(&r, PROTO_E_TIMEOUT, "the index of %s was not ready "
		    "in %lld ms; it is still being built (try again%s)",
		    late, (long long)w->ms,
		    w->ms < OPS_WAIT_CEILING_MS ? ", or raise \"timeout_ms\"" :
		    "");
	} else if (w->op == OP_REINDEX) {
		ops_reindex_answer(&r, w, w->flags & OPS_REINDEX_ALL);
	} else if (p == NULL) {
		ops_fail(&r, PROTO_E_NO_PROJECT, "%s was removed",
		    w->t[0].root);
	} else if (w->op == OP_ADD) {
		ops_add_answer(&r, p, w->flags, true);
	} else {
		ops_query_answer(&r, p, &w->q);
	}
	ops_wait_free(w);
}

/* Every parked request, looked at again for why. */
static void
ops_resume_all(struct ops *o, enum ops_why why)
{
	struct ops_wait *w, *next;

	for (w = o->waits; w != NULL; w = next) {
		next = w->next;
		ops_resume(w, why);
	}
}

void
ops_walks_done(struct ops *o)
{
	ops_resume_all(o, OPS_CHECK);
}

void
ops_stop(struct ops *o)
{
	struct ops_gitwait *g;

	ops_resume_all(o, OPS_STOPPING);
	/* Computations still running answer their own clients when done. */
	while ((g = o->gitwaits) != NULL) {
		struct ops_req r = { .o = o, .c = g->c, .id = g->id };

		gitcache_unwait(o->d->git, g->root);
		ops_gitwait_unlink(g);
		server_unpark(o->d->server, g->c);
		ops_fail(&r, PROTO_E_SHUTTING_DOWN, "fidxd is stopping");
		ops_gitwait_free(g);
	}
}

/*
 * What a line waiting behind a parked request asks of it: true if it is
 * a query and the parked one said "supersede", or a cancel naming the
 * parked one's id. Parsed here only to look; it is handled in its turn.
 */
static bool
ops_cancels(const char *line, size_t len, bool supersede, json_t *id)
{
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *op = req != NULL ? json_object_get(req, "op") : NULL;
	bool yes = false;

	if (json_is_string(op)) {
		if (strcmp(json_string_value(op), "query") == 0)
			yes = supersede;
		else if (strcmp(json_string_value(op), "cancel") == 0)
			yes = id != NULL && json_equal(id,
			    json_object_get(req, "target"));
	}
	json_decref(req);
	return yes;
}

void
ops_waiting(void *arg, struct client *c, void *parked, const char *line,
    size_t len)
{
	struct ops *o = arg;
	struct ops_parked *k = parked;

	if (k->kind == OPS_PARKED_GIT || k->kind == OPS_PARKED_GITWAIT) {
		/* A git status is short and shared: later lines wait for it. */
		return;
	} else if (k->kind == OPS_PARKED_JOB) {
		struct ops_job *j = parked;

		if (ops_cancels(line, len, j->supersede, j->id))
			work_cancel(o->d->work, &j->w);
	} else {
		struct ops_wait *w = parked;
		struct ops_req r = { .o = o, .c = c, .id = w->id };

		if (w->op != OP_QUERY ||
		    !ops_cancels(line, len, w->q.supersede, w->id))
			return;
		/* Waiting for an index: it has nothing to stop, it goes. */
		ops_wait_unlink(w);
		server_unpark(o->d->server, c);
		o->count.queries_cancelled++;
		ops_fail(&r, PROTO_E_CANCELLED, "a newer request on this "
		    "connection cancelled the query");
		ops_wait_free(w);
	}
}

void
ops_gone(void *arg, struct client *c, void *parked)
{
	struct ops *o = arg;
	struct ops_parked *k = parked;

	(void)c;
	if (k->kind == OPS_PARKED_GIT) {
		/* It runs on: the status is kept for the next asker. */
		((struct ops_gitjob *)parked)->c = NULL;
	} else if (k->kind == OPS_PARKED_GITWAIT) {
		struct ops_gitwait *g = parked;

		gitcache_unwait(o->d->git, g->root);
		ops_gitwait_unlink(g);
		ops_gitwait_free(g);
	} else if (k->kind == OPS_PARKED_JOB) {
		struct ops_job *j = parked;

		/* Its done() still comes, and frees it without a word. */
		j->c = NULL;
		work_cancel(o->d->work, &j->w);
	} else {
		ops_wait_unlink(parked);
		ops_wait_free(parked);
	}
}

struct ops *
ops_new(struct fidxd *d)
{
	struct ops *o = fidx_calloc(1, sizeof(*o));

	if (o == NULL)
		return NULL;
	o->d = d;
	o->reg = &d->reg;
	return o;
}

void
ops_free(struct ops *o)
{
	free(o);
}

void
ops_get_counters(const struct ops *o, struct ops_counters *c)
{
	*c = o->count;
}
