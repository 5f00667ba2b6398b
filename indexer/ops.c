/* ops.c - see ops.h. */
#include "ops_impl.h"
#include "watch.h"
#include "search.h"
#include "work.h"
#include "../common/alloc.h"
#include "../common/limits.h"
#include "../common/proto.h"
#include "visits.h"
#include "index.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>


static void ops_resume(struct ops_wait *w, enum ops_why why);

void
ops_send(struct ops_req *r, json_t *resp)
{
	server_send(r->o->d->server, r->c, resp);
}

/* Sends an error for r; returns -1 so handlers can `return ops_fail(...)`. */
int
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
json_t *
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

/*
 * Sets key to a new value; on failure frees o and returns NULL. v is
 * taken on every path: json_object_set_new() frees it when it fails (a
 * second json_decref(v) there was a use after free, found by
 * tests/test_oom.c).
 */
json_t *
ops_set(json_t *o, const char *key, json_t *v)
{
	if (o == NULL || v == NULL) {
		json_decref(v);
		json_decref(o);
		return NULL;
	}
	if (json_object_set_new(o, key, v) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Sets o[obj][key]; on failure frees o and returns NULL. */
json_t *
ops_set_in(json_t *o, const char *obj, const char *key, json_t *v)
{
	json_t *in = o != NULL ? json_object_get(o, obj) : NULL;

	if (in == NULL || v == NULL) {
		json_decref(v);
		json_decref(o);
		return NULL;
	}
	if (json_object_set_new(in, key, v) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Field readers: absent gives def; the wrong type is a bad_request. */
int
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

int
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
int
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

/*
 * The request's root, resolved into buf (PATH_MAX). With *p not NULL on
 * return, it names a project: found by the root as sent first, so a
 * project whose root is gone can still be named.
 */
int
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
json_t *
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
	if (o != NULL)
		o = ops_set(o, "watch", json_string(project_watch_name(
		    p->watch)));
	/* A walk under way: how far, so a picker can show it growing. */
	if (o != NULL && p->walking && !p->delta)
		o = ops_set(o, "walked", json_integer((json_int_t)atomic_load(
		    &p->walked)));
	if (o != NULL && p->watch == PROJECT_DEGRADED)
		o = ops_set(o, "watch_message", json_string(p->watch_why));
	return o;
}

bool
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
	/* What the last change from the watcher cost. */
	if (o != NULL && p->delta_paths > 0)
		o = ops_set(o, "last_change", json_pack("{s:I,s:I,s:I,s:I,s:I,"
		    "s:I,s:I}",
		    "paths", (json_int_t)p->delta_paths,
		    "us", (json_int_t)p->delta_us,
		    "removed", (json_int_t)p->dstats.removed,
		    "added", (json_int_t)p->dstats.added,
		    "segments_made", (json_int_t)p->dstats.segments_made,
		    "segments_shared", (json_int_t)p->dstats.segments_shared,
		    "bytes_made", (json_int_t)p->dstats.bytes_made));
	/*
	 * What the last walk made: segments of the index it replaced that
	 * did not change are shared, not copied.
	 */
	if (o != NULL && p->built_at > 0)
		o = ops_set(o, "last_walk", json_pack("{s:I,s:I,s:I}",
		    "segments_made", (json_int_t)p->bstats.segments_made,
		    "segments_shared", (json_int_t)p->bstats.segments_shared,
		    "bytes_made", (json_int_t)p->bstats.bytes_made));
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
int
ops_timeout(struct ops_req *r, json_int_t *ms)
{
	return ops_int(r, "timeout_ms", 1, OPS_WAIT_CEILING_MS,
	    r->o->d->wait_ms, ms);
}

/* Parks r on one project reaching gen. */
void
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
	/* Its cached git status goes with it (the cache's bounds aside). */
	ops_git_changed(r->o, root, true);
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

/*
 * VmRSS and VmHWM (the peak resident set) from /proc, in bytes; 0 for
 * what cannot be read.
 */
static void
ops_rss_bytes(size_t *rss, size_t *peak)
{
	char line[128];
	unsigned long kb;
	FILE *f = fopen("/proc/self/status", "re");

	*rss = *peak = 0;
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %lu kB", &kb) == 1)
			*rss = kb * 1024;
		else if (sscanf(line, "VmHWM: %lu kB", &kb) == 1)
			*peak = kb * 1024;
	}
	fclose(f);
}

/* The address-space limit (RLIMIT_AS), or -1 when there is none. */
static json_int_t
ops_rlimit_as(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_AS, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return -1;
	return (json_int_t)rl.rlim_cur;
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
	if (o != NULL && (json_object_set_new(json_object_get(o, "counters"),
	    "socket_rebinds", json_integer((json_int_t)
	    ss.count.socket_rebinds)) == -1 ||
	    json_object_set_new(json_object_get(o, "counters"),
	    "accept_pauses", json_integer((json_int_t)
	    ss.count.accept_pauses)) == -1 ||
	    json_object_set_new(json_object_get(o, "counters"),
	    "clients_refused_fds", json_integer((json_int_t)
	    ss.count.clients_refused_fds)) == -1)) {
		json_decref(o);
		o = NULL;
	}
	{
		struct watch_stats wst = { 0 };
		const struct project_counters *pc = &reg->count;

		if (reg->watch != NULL)
			watch_stats_get(reg->watch, &wst);
		o = ops_set(o, "watch", json_pack("{s:b,s:s,s:{s:I,s:I,s:I,"
		    "s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},"
		    "s:{s:I,s:I,s:I,s:I,"
		    "s:I,s:I,s:I,s:I,s:I,s:I,s:I}}",
		    "running", reg->watch != NULL,
		    "error", reg->watch_err,
		    "limits",
		    "watches", (json_int_t)wst.max_watches,
		    "queue", (json_int_t)wst.max_events,
		    "pending", (json_int_t)reg->lim.max_pending,
		    "settle_max_ms", (json_int_t)reg->lim.settle_max_ms,
		    "degraded_rebuild_ms",
		    (json_int_t)reg->lim.degraded_rebuild_ms,
		    "usage",
		    "watches", (json_int_t)wst.watches,
		    "max_user_watches", (json_int_t)wst.max_user_watches,
		    "queued", (json_int_t)wst.queued,
		    "queued_peak", (json_int_t)wst.queued_peak,
		    "queue_slots", (json_int_t)wst.queue_slots,
		    "pending", (json_int_t)reg->npending,
		    "pending_peak", (json_int_t)reg->pending_peak,
		    "bytes", (json_int_t)wst.bytes,
		    "counters",
		    "events", (json_int_t)wst.events,
		    "overflows", (json_int_t)wst.overflows,
		    "nospace", (json_int_t)wst.nospace,
		    "stale", (json_int_t)wst.stale,
		    "restarts", (json_int_t)wst.restarts,
		    "batches", (json_int_t)pc->deltas,
		    "batch_paths", (json_int_t)pc->delta_paths,
		    "batches_failed", (json_int_t)pc->delta_failed,
		    "coalesced", (json_int_t)pc->events_coalesced,
		    "overflow_rebuilds", (json_int_t)pc->overflow_rebuilds,
		    "degraded_rebuilds", (json_int_t)pc->degraded_rebuilds));
		o = ops_set_in(o, "watch", "roots_gone",
		    json_integer((json_int_t)pc->roots_gone));
		o = ops_set_in(o, "watch", "rescans",
		    json_integer((json_int_t)pc->rescans));
		o = ops_set_in(o, "watch", "shared_rewalks",
		    json_integer((json_int_t)pc->shared_rewalks));
		o = ops_set_in(o, "watch", "walk_waits",
		    json_integer((json_int_t)atomic_load(&reg->walk_waits)));
		/* Written paths: their own ring (watch.h). */
		json_t *wu = json_object_get(json_object_get(o, "watch"),
		    "usage");
		json_t *wc = json_object_get(json_object_get(o, "watch"),
		    "counters");

		if (wu != NULL && wc != NULL && (json_object_set_new(wu,
		    "written", json_integer((json_int_t)wst.written)) == -1 ||
		    json_object_set_new(wu, "written_peak",
		    json_integer((json_int_t)wst.written_peak)) == -1 ||
		    json_object_set_new(wc, "written_lost",
		    json_integer((json_int_t)wst.written_lost)) == -1)) {
			json_decref(o);
			o = NULL;
		}
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
	/* Narrowing sets (ops_query.c): what they hold, what they saved. */
	o = ops_set(o, "narrow", json_pack("{s:{s:I,s:I},s:{s:I,s:I},"
	    "s:{s:I,s:I,s:I,s:I,s:I,s:I}}",
	    "limits",
	    "bytes", (json_int_t)d->narrow_bytes,
	    "total_bytes", (json_int_t)d->narrow_total_bytes,
	    "usage",
	    "bytes", (json_int_t)d->ops->narrow_bytes,
	    "sets", (json_int_t)d->ops->narrow_sets,
	    "counters",
	    "narrowed", (json_int_t)oc->narrowed,
	    "full", (json_int_t)oc->narrow_full,
	    "refused_snapshot", (json_int_t)oc->narrow_refused_snapshot,
	    "refused_query", (json_int_t)oc->narrow_refused_query,
	    "over_cap", (json_int_t)oc->narrow_over_cap,
	    "not_kept", (json_int_t)oc->narrow_not_kept));
	o = ops_stats_git(d, o);
	o = ops_stats_changes(d, o);
	/*
	 * What the process holds (RSS and its peak, from /proc) beside what
	 * it knows it holds: malloc's counts (in use; obtained from the
	 * system by its arenas, free inside them, mmapped blocks), the
	 * index, the walks' transient heap (index_scratch_get) and the
	 * client buffers; the address-space limit, if any, as its bound.
	 */
	{
		size_t rss, rss_peak, walk_now, walk_peak;

		ops_rss_bytes(&rss, &rss_peak);
		index_scratch_get(&walk_now, &walk_peak);
		o = ops_set(o, "memory", json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,"
		    "s:I,s:I,s:I,s:I,s:I,s:I}",
		    "rss_bytes", (json_int_t)rss,
		    "rss_peak_bytes", (json_int_t)rss_peak,
		    "heap_bytes", (json_int_t)(mi.uordblks + mi.hblkhd +
		    alloc_big_bytes()),
		    "malloc_arena_bytes", (json_int_t)mi.arena,
		    "malloc_free_bytes", (json_int_t)mi.fordblks,
		    "malloc_mmap_bytes", (json_int_t)mi.hblkhd,
		    "big_bytes", (json_int_t)alloc_big_bytes(),
		    "index_bytes", (json_int_t)index_bytes,
		    "walk_bytes", (json_int_t)walk_now,
		    "walk_bytes_peak", (json_int_t)walk_peak,
		    "client_input_bytes", (json_int_t)ss.input_bytes,
		    "client_output_bytes", (json_int_t)ss.output_bytes));
		o = ops_set_in(o, "memory", "address_space_limit_bytes",
		    json_integer(ops_rlimit_as()));
		o = ops_set_in(o, "memory", "malloc_trims",
		    json_integer((json_int_t)d->trims));
		o = ops_set_in(o, "memory", "malloc_trim_us",
		    json_integer((json_int_t)d->trim_us));
		/*
		 * Snapshots alive beyond one per ready project are being
		 * replaced or held by a reader (a query still running on
		 * an older one): each keeps its segments that no newer
		 * snapshot shares.
		 */
		size_t snaps, segs, current = 0;

		index_live_get(&snaps, &segs);
		for (size_t i = 0; i < d->reg.n; i++)
			current += d->reg.v[i]->snap != NULL;
		o = ops_set_in(o, "memory", "snapshots",
		    json_integer((json_int_t)snaps));
		o = ops_set_in(o, "memory", "snapshots_old",
		    json_integer((json_int_t)(snaps > current ?
		    snaps - current : 0)));
		o = ops_set_in(o, "memory", "segments",
		    json_integer((json_int_t)segs));
	}
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

static int
op_shutdown(struct ops_req *r)
{
	ops_send(r, ops_set(ops_ok(r), "stopping", json_true()));
	fidxd_stop(r->o->d);
	return 0;
}

/* What sync answers: the generation that holds every change before it. */
static void
ops_sync_answer(struct ops_req *r, const struct project *p)
{
	json_t *o = ops_ok(r);

	o = ops_set(o, "root", json_string(p->root));
	o = ops_set(o, "state", json_string(project_state_name(p->state)));
	o = ops_set(o, "generation", json_integer((json_int_t)(p->snap ?
	    p->snap->generation : 0)));
	o = ops_set(o, "files", json_integer((json_int_t)(p->snap ?
	    p->snap->n : 0)));
	ops_send(r, ops_index_fields(o, p));
}

/*
 * {"op":"sync","root":R}: answered once every change made to R's tree
 * before the request is in the index (watchman's cookies: a file made in
 * the watcher's own directory comes out of inotify after every event
 * queued before it; then the delta those events start must be applied).
 * A project not watched answers at once: it says "watch" and why.
 */
static int
op_sync(struct ops_req *r)
{
	struct watch *w = r->o->reg->watch;
	char root[PATH_MAX];
	struct project *p;
	json_int_t ms;
	uint64_t c;

	if (ops_timeout(r, &ms) == -1 || ops_root(r, root, &p) == -1)
		return -1;
	if (p == NULL)
		return ops_fail(r, PROTO_E_NO_PROJECT, "%s is not a project "
		    "(fidx add adds it)", root);
	if (w == NULL || p->watch != PROJECT_WATCHING) {
		ops_sync_answer(r, p);
		return 0;
	}
	if ((c = watch_sync(w)) == 0)
		return ops_fail(r, PROTO_E_BUSY, "the watcher's cookie "
		    "could not be made (%s): try again", strerror(errno));
	/* Reachable only once the cookie is back: until then, unreachable. */
	ops_park_one(r, OP_SYNC, p, UINT64_MAX, 0, ms, NULL);
	if (r->o->waits != NULL && r->o->waits->op == OP_SYNC &&
	    r->o->waits->c == r->c)
		r->o->waits->cookie = c;
	return 0;
}

void
ops_sync_arrived(struct ops *o, uint64_t c)
{
	for (struct ops_wait *w = o->waits; w != NULL; w = w->next) {
		const struct project *p;

		if ((w->op != OP_SYNC && w->op != OP_CHANGES) ||
		    w->cookie == 0 || w->cookie > c)
			continue;
		w->cookie = 0;
		/* The log has every change before the cookie: answer now. */
		if (w->op == OP_CHANGES) {
			w->t[0].gen = 0;
			continue;
		}
		/* Every event before the cookie is in: what they lead to. */
		if ((p = project_find(o->reg, w->t[0].root)) != NULL)
			w->t[0].gen = project_reachable_gen(p);
	}
}

/*
 * {"op":"changes","root":R,"since":TOKEN}: the paths changed in R since
 * the token, and a new one (git's monitor hook, `fidx fsmonitor`). Like
 * sync, it waits for the watcher's cookie, so every change made before
 * the request is in the log (but not for the index: no delta waited
 * for). A root that is no project yet is added, and like one not
 * watched answers "everything" at once.
 */
static int
op_changes(struct ops_req *r)
{
	struct watch *w = r->o->reg->watch;
	struct project_add_opts opts = { 0 };
	struct ops_query_args qa = { .mode = QUERY_FUZZY };
	struct fidx_err err = { "" };
	char root[PATH_MAX];
	const char *since;
	struct project *p;
	json_int_t ms;
	size_t len;
	bool added;
	uint64_t c;

	if (ops_timeout(r, &ms) == -1 || ops_root(r, root, &p) == -1 ||
	    ops_string(r, "since", false, &since, &len) == -1)
		return -1;
	if (since != NULL && strlen(since) != len)
		since = NULL;		/* a NUL in it: no token of ours */
	if (p == NULL && (p = project_add(r->o->reg, root, &opts, &added,
	    &err)) == NULL) {
		/* Not added (the project cap): still an answer for git. */
		log_warnx("changes: %s", err.msg);
		ops_changes_answer(r, NULL, since);
		return 0;
	}
	project_log_want(r->o->reg, p);
	if (w == NULL || p->watch != PROJECT_WATCHING || p->snap == NULL ||
	    (c = watch_sync(w)) == 0) {
		ops_changes_answer(r, p, since);
		return 0;
	}
	if (since != NULL && (qa.text = fidx_strdup(since)) == NULL)
		return ops_fail(r, PROTO_E_NO_MEMORY, "out of memory");
	qa.len = since != NULL ? len : 0;
	/* Unreachable until the cookie is back; then at once. A parked
	 * wait takes the token (qa.text NULL); one that failed leaves it. */
	ops_park_one(r, OP_CHANGES, p, UINT64_MAX, 0, ms, &qa);
	free(qa.text);
	if (r->o->waits != NULL && r->o->waits->op == OP_CHANGES &&
	    r->o->waits->c == r->c)
		r->o->waits->cookie = c;
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
	[OP_SYNC] = { "sync", op_sync },
	[OP_CHANGES] = { "changes", op_changes },
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
		/* Not the client's mistake: no_memory, not bad_json. */
		if (proto_json_oom(&je)) {
			ops_send(&r, NULL);
			return;
		}
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
	} else if (w->op == OP_SYNC) {
		ops_sync_answer(&r, p);
	} else if (w->op == OP_CHANGES) {
		ops_changes_answer(&r, p, w->q.text);
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
	ops_narrow_sweep(o);
	ops_resume_all(o, OPS_CHECK);
}

void
ops_stop(struct ops *o)
{
	ops_resume_all(o, OPS_STOPPING);
	ops_git_stop(o);
}

/*
 * What a line waiting behind a parked request asks of it: true if it is
 * a query and the parked one said "supersede", or a cancel naming the
 * parked one's id. Parsed here only to look; it is handled in its turn.
 */
bool
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
		ops_job_waiting(o, parked, line, len);
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
	if (k->kind == OPS_PARKED_GIT || k->kind == OPS_PARKED_GITWAIT) {
		ops_git_gone(o, k);
	} else if (k->kind == OPS_PARKED_JOB) {
		ops_job_gone(o, parked);
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
