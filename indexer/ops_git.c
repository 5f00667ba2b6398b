/*
 * ops_git.c - the git op: a project's status from the git cache, or
 * computed once on a git worker for everyone asking. See ops_impl.h.
 */
#include "ops_impl.h"
#include "changelog.h"
#include "gitcache.h"
#include "repo.h"
#include "work.h"
#include "../common/alloc.h"
#include "../common/limits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* The git cache: its limits in `limits`, the rest in `git`. */
json_t *
ops_stats_git(struct fidxd *d, json_t *o)
{
	struct gitcache_limits gl;
	struct gitcache_stats gs;
	struct repo_lib_stats rl;

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
	repo_lib_stats(&rl);
	o = ops_set_in(o, "limits", "git_object_cache_bytes",
	    json_integer((json_int_t)rl.cache_max_bytes));
	o = ops_set_in(o, "limits", "git_mapped_bytes",
	    json_integer((json_int_t)rl.mapped_limit_bytes));
	o = ops_set(o, "git", json_pack("{s:{s:I,s:I,s:I,s:I},"
	    "s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}}",
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
	    "waits_next", (json_int_t)gs.waits_next,
	    "rounds", (json_int_t)gs.rounds,
	    "waiters_refused", (json_int_t)gs.waiters_refused,
	    "invalidated", (json_int_t)gs.invalidated,
	    "staled", (json_int_t)gs.staled));
	if (o != NULL && json_object_set_new(json_object_get(json_object_get(o,
	    "git"), "usage"), "object_cache_bytes",
	    json_integer((json_int_t)rl.cached_bytes)) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
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
	uint64_t round;			/* of its flight (gitcache.h) */
	size_t limit;			/* files in its own answer */
	struct repo_status *st;		/* run()'s result, owned until put */
	int err_no;			/* run()'s errno when st is NULL */
	struct fidx_err err;
	json_int_t ms;			/* its client's bound ("timeout_ms") */
	struct loop_timer deadline;	/* armed while its client waits */
};

struct ops_gitwait {
	struct ops_parked kind;		/* first: what server_parked() is */
	struct ops *o;
	struct client *c;
	json_t *id;			/* owned reference, may be NULL */
	char *root;			/* owned: the cache key */
	uint64_t round;			/* the computation it waits for */
	size_t limit;			/* files in its answer */
	json_int_t ms;			/* its bound ("timeout_ms") */
	struct loop_timer deadline;
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

void
ops_git_changed(struct ops *o, const char *root, bool gitdir)
{
	char key[PATH_MAX + 1];
	size_t len = strlen(root);

	struct project *p = project_find(o->reg, root);

	/* A .git made: a repository now, perhaps. */
	if (p != NULL && gitdir)
		p->git_none = false;
	/* Both keys of root: as git lists it, and with every untracked file. */
	gitcache_changed(o->d->git, root, gitdir);
	if (len + 1 < sizeof(key)) {
		key[0] = OPS_GIT_ALL;
		memcpy(key + 1, root, len + 1);
		gitcache_changed(o->d->git, key, gitdir);
	}
}

static void ops_git_background(struct ops *o, const char *key,
    uint64_t round);
static struct ops_gitjob *ops_git_start(struct ops *o, const char *key,
    struct client *c, json_t *id, size_t limit, uint64_t round);

/*
 * The entry of files (n, in strcmp order of path, as repo.c sorts them)
 * for path, or the one of an untracked directory above it ("dir/").
 */
static const struct repo_status_file *
ops_git_find(const struct repo_status_file *files, size_t n,
    const char *path, size_t len)
{
	size_t lo = 0, hi = n;

	/* The first entry not before path. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct repo_status_file *f = &files[mid];
		size_t k = f->path_len < len ? f->path_len : len;
		int c = memcmp(f->path, path, k);

		if (c == 0)
			c = f->path_len < len ? -1 : f->path_len > len;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && files[lo].path_len == len &&
	    memcmp(files[lo].path, path, len) == 0)
		return &files[lo];
	/* "dir/" sorts before "dir/x": the one before, if a prefix. */
	if (lo > 0) {
		const struct repo_status_file *f = &files[lo - 1];

		if (f->path_len > 0 && f->path_len < len &&
		    f->path[f->path_len - 1] == '/' &&
		    memcmp(f->path, path, f->path_len) == 0)
			return f;
	}
	return NULL;
}

/*
 * What a "boost":"git" query ranks up: a copy of the changed files of a
 * cached status, so scoring threads read it while the cache may drop
 * the original. One block: this header, the entries, their paths.
 */
struct ops_gitboost {
	size_t n;
	struct repo_status_file files[];
};

struct ops_gitboost *
ops_git_boost_new(struct ops *o, const char *root)
{
	const struct repo_status *st;
	struct ops_gitboost *b;
	uint64_t age, round;
	size_t bytes = 0;
	char *at;

	struct project *p = project_find(o->reg, root);

	if (p != NULL && p->git_unsafe)
		return NULL;
	/* Any cached status, even a stale one: a nudge, not an answer. */
	switch (gitcache_lookup(o->d->git, root, FIDX_GIT_TTL_MS_CEILING,
	    loop_now_ms(o->d->loop), &st, &age, &round)) {
	case GITCACHE_HIT:
		break;
	case GITCACHE_COMPUTE:
		ops_git_background(o, root, round);
		return NULL;
	case GITCACHE_WAIT:
		gitcache_unwait(o->d->git, root, round);
		return NULL;
	default:
		return NULL;
	}
	/* With thousands changed, none stands out: no boost. */
	if (st->nfiles == 0 || st->nfiles > OPS_GIT_BOOST_MAX)
		return NULL;
	for (size_t i = 0; i < st->nfiles; i++)
		bytes += st->files[i].path_len;
	if ((b = fidx_malloc(sizeof(*b) + st->nfiles * sizeof(b->files[0]) +
	    bytes)) == NULL)
		return NULL;
	b->n = st->nfiles;
	at = (char *)(b->files + b->n);
	for (size_t i = 0; i < b->n; i++) {
		b->files[i] = st->files[i];
		b->files[i].orig = NULL;
		memcpy(at, st->files[i].path, st->files[i].path_len);
		b->files[i].path = at;
		at += st->files[i].path_len;
	}
	return b;
}

bool
ops_git_boost_has(const struct ops_gitboost *b, const char *path, size_t len)
{
	const struct repo_status_file *f = ops_git_find(b->files, b->n, path,
	    len);

	/* Changed or untracked; an ignored file is no work in progress. */
	return f != NULL && f->index != '!';
}

void
ops_git_boost_free(struct ops_gitboost *b)
{
	free(b);
}

/* The first limit files of st. */
static json_t *
ops_git_files(const struct repo_status *st, size_t limit)
{
	json_t *a = json_array(), *f, *tmp;
	char x[2] = "", y[2] = "";

	for (size_t i = 0; a != NULL && i < st->nfiles && i < limit; i++) {
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

/*
 * The answer: at most limit files, so one answer fits the output cap
 * ("truncated" says when the cache's path cap or limit cut the list).
 * Names that are not UTF-8 (git allows such refs) display with U+FFFD.
 */
static void
ops_git_answer(struct ops_req *r, const char *root,
    const struct repo_status *st, uint64_t age_ms, size_t limit)
{
	const char *state = repo_state_name(st->state);
	json_t *o = ops_ok(r);

	o = ops_set(o, "root", proto_text(root, strlen(root)));
	o = ops_set(o, "branch", proto_text(st->branch, strlen(st->branch)));
	o = ops_set(o, "detached", json_boolean(st->detached));
	o = ops_set(o, "upstream", st->upstream != NULL ?
	    proto_text(st->upstream, strlen(st->upstream)) : json_null());
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
	o = ops_set(o, "files", ops_git_files(st, limit));
	o = ops_set(o, "total", json_integer((json_int_t)st->total));
	o = ops_set(o, "truncated", json_boolean(st->truncated ||
	    st->nfiles > limit));
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
ops_git_reply(struct ops_req *r, const struct ops_gitjob *j, size_t limit,
    bool cancelled)
{
	if (j->st != NULL)
		ops_git_answer(r, ops_git_root(j->root), j->st, 0, limit);
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
	loop_timer_stop(g->o->d->loop, &g->deadline);
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

	uint64_t again;

	if (j->st != NULL)
		kept = gitcache_put(d->git, j->root, j->st,
		    loop_now_ms(d->loop), NULL) == 0;
	else
		gitcache_fail(d->git, j->root, NULL);
	again = cancelled ? 0 : gitcache_again(d->git, j->root);
	/*
	 * Waiters that need a status begun after they asked: computed
	 * again for them. If it cannot start, they take this one, as the
	 * waiters of this round do (the flight ended: nobody waits on it).
	 */
	if (again != 0 && ops_git_start(o, j->root, NULL, NULL, 0,
	    again) == NULL)
		again = 0;
	/* A project that is no repository: its queries stop asking. */
	struct project *p = project_find(o->reg, ops_git_root(j->root));

	if (p != NULL && !cancelled)
		p->git_none = j->st == NULL && j->err_no == ENOENT;
	loop_timer_stop(d->loop, &j->deadline);
	if (j->c != NULL) {
		server_unpark(d->server, j->c);
		ops_git_reply(&r, j, j->limit, cancelled && j->st == NULL);
	}
	for (g = o->gitwaits; g != NULL; g = next) {
		struct ops_req wr = { .o = o, .c = g->c, .id = g->id };

		next = g->next;
		if (strcmp(g->root, j->root) != 0 ||
		    (again != 0 && g->round >= again))
			continue;
		ops_gitwait_unlink(g);
		server_unpark(d->server, g->c);
		ops_git_reply(&wr, j, g->limit, cancelled && j->st == NULL);
		ops_gitwait_free(g);
	}
	if (!kept)
		repo_status_free(j->st);
	loop_timer_stop(d->loop, &j->deadline);
	json_decref(j->id);
	free(j->root);
	free(j);
}

/*
 * A git status that takes longer than its client will wait (libgit2
 * stuck on a slow disk, or on a FIFO named .gitignore: repo.h) answers
 * timeout; the computation runs on and is kept for the next asker.
 */
static void
ops_git_timeout(struct ops *o, struct client *c, json_t *id, const char *key,
    json_int_t ms)
{
	struct ops_req r = { .o = o, .c = c, .id = id };

	o->count.waits_timed_out++;
	server_unpark(o->d->server, c);
	ops_fail(&r, PROTO_E_TIMEOUT, "the git status of %s was not ready in "
	    "%lld ms; it is still being computed (try again%s)",
	    ops_git_root(key), (long long)ms,
	    ms < OPS_WAIT_CEILING_MS ? ", or raise \"timeout_ms\"" : "");
}

static void
ops_gitjob_expired(struct loop *l, struct loop_timer *t)
{
	struct ops_gitjob *j = t->arg;

	(void)l;
	if (j->c == NULL)
		return;
	ops_git_timeout(j->o, j->c, j->id, j->root, j->ms);
	j->c = NULL;
}

static void
ops_gitwait_expired(struct loop *l, struct loop_timer *t)
{
	struct ops_gitwait *g = t->arg;

	(void)l;
	gitcache_unwait(g->o->d->git, g->root, g->round);
	ops_gitwait_unlink(g);
	ops_git_timeout(g->o, g->c, g->id, g->root, g->ms);
	ops_gitwait_free(g);
}

/*
 * Starts key's computation on a git worker for client c (NULL: nobody
 * parked on it, for a query's letters). NULL with errno ENOMEM, or
 * EBUSY when the git queue is full; the computation is then ended.
 */
static struct ops_gitjob *
ops_git_start(struct ops *o, const char *key, struct client *c, json_t *id,
    size_t limit, uint64_t round)
{
	struct gitcache_limits gl;
	struct ops_gitjob *j;

	gitcache_limits(o->d->git, &gl);
	if ((j = fidx_calloc(1, sizeof(*j))) == NULL ||
	    (j->root = fidx_strdup(key)) == NULL) {
		free(j);
		gitcache_fail(o->d->git, key, NULL);
		errno = ENOMEM;
		return NULL;
	}
	j->kind.kind = OPS_PARKED_GIT;
	j->o = o;
	j->c = c;
	j->id = id != NULL ? json_incref(id) : NULL;
	j->limit = limit;
	j->round = round;
	j->opts.max_paths = gl.max_paths;
	j->opts.untracked_all = key[0] == OPS_GIT_ALL;
	if (work_submit(o->d->gitwork, &j->w, ops_git_run, ops_git_done,
	    j) == -1) {
		/* Nobody waits yet: the computation was only just begun. */
		gitcache_fail(o->d->git, key, NULL);
		json_decref(j->id);
		free(j->root);
		free(j);
		errno = EBUSY;
		return NULL;
	}
	return j;
}

/* Starts key's computation, r's client parked on it for at most ms. */
static void
ops_git_compute(struct ops_req *r, const char *key, size_t limit,
    json_int_t ms, uint64_t round)
{
	struct gitcache_limits gl;
	struct ops_gitjob *j;

	if ((j = ops_git_start(r->o, key, r->c, r->id, limit, round)) !=
	    NULL) {
		j->ms = ms;
		loop_timer_start(r->o->d->loop, &j->deadline, (uint64_t)ms, 0,
		    ops_gitjob_expired, j);
		server_park(r->o->d->server, r->c, j);
		return;
	}
	gitcache_limits(r->o->d->git, &gl);
	if (errno == ENOMEM)
		ops_fail(r, PROTO_E_NO_MEMORY, "out of memory");
	else
		ops_fail(r, PROTO_E_BUSY, "%zu git statuses are being computed "
		    "already (one per project, as many as --max-git-projects); "
		    "try again", gl.max_projects);
}

/* Starts key's computation with nobody parked on it (a query's letters). */
static void
ops_git_background(struct ops *o, const char *key, uint64_t round)
{
	(void)ops_git_start(o, key, NULL, NULL, 0, round);
}

const char *
ops_git_annotate(struct ops *o, const char *root, json_t *results,
    uint64_t *age_ms)
{
	struct project *p = project_find(o->reg, root);
	const struct repo_status *st;
	char buf[FIDX_MAX_PATH_CEILING + 1];
	const char *what = NULL;
	uint64_t round;
	size_t i;
	json_t *res;

	if (p != NULL && (p->git_none || p->git_unsafe))
		return "none";
	switch (gitcache_lookup(o->d->git, root, UINT64_MAX,
	    loop_now_ms(o->d->loop), &st, age_ms, &round)) {
	case GITCACHE_HIT:
		what = "fresh";
		break;
	case GITCACHE_COMPUTE:
		ops_git_background(o, root, round);
		break;
	case GITCACHE_WAIT:
		/* Counted as a waiter, but a query does not wait. */
		gitcache_unwait(o->d->git, root, round);
		break;
	case GITCACHE_BUSY:
		break;
	}
	/* Letters the tree changed under beat none, while new ones come. */
	if (what == NULL) {
		switch (gitcache_lookup(o->d->git, root,
		    FIDX_GIT_TTL_MS_CEILING, loop_now_ms(o->d->loop), &st,
		    age_ms, &round)) {
		case GITCACHE_HIT:
			what = "stale";
			break;
		case GITCACHE_COMPUTE:
			/* The background one could not start: no flight. */
			gitcache_fail(o->d->git, root, NULL);
			return "pending";
		case GITCACHE_WAIT:
			gitcache_unwait(o->d->git, root, round);
			return "pending";
		case GITCACHE_BUSY:
			return "pending";
		}
	}
	json_array_foreach(results, i, res) {
		const char *path = json_string_value(json_object_get(res,
		    "path"));
		const char *b64 = json_string_value(json_object_get(res,
		    "path_b64"));
		const struct repo_status_file *f;
		size_t len;
		char xy[3];

		if (b64 != NULL && proto_base64_decode(b64, strlen(b64), buf,
		    &len) == 0)
			path = buf;
		else if (path != NULL)
			len = strlen(path);
		else
			continue;
		if ((f = ops_git_find(st->files, st->nfiles, path, len)) ==
		    NULL)
			continue;
		xy[0] = f->index;
		xy[1] = f->worktree;
		xy[2] = '\0';
		if (json_object_set_new(res, "git", json_string(xy)) == -1)
			break;
	}
	return what;
}

/* Parks r on key's computation, which another request started. */
static void
ops_git_wait(struct ops_req *r, const char *key, size_t limit, json_int_t ms,
    uint64_t round)
{
	struct ops *o = r->o;
	struct ops_gitwait *g;

	if ((g = fidx_calloc(1, sizeof(*g))) == NULL ||
	    (g->root = fidx_strdup(key)) == NULL) {
		free(g);
		gitcache_unwait(o->d->git, key, round);
		ops_fail(r, PROTO_E_NO_MEMORY, "out of memory");
		return;
	}
	g->kind.kind = OPS_PARKED_GITWAIT;
	g->limit = limit;
	g->round = round;
	g->ms = ms;
	g->o = o;
	g->c = r->c;
	g->id = r->id != NULL ? json_incref(r->id) : NULL;
	if ((g->next = o->gitwaits) != NULL)
		g->next->prev = g;
	o->gitwaits = g;
	loop_timer_start(o->d->loop, &g->deadline, (uint64_t)ms, 0,
	    ops_gitwait_expired, g);
	server_park(o->d->server, r->c, g);
}

/*
 * {"op":"git","root":R,"max_age_ms":N,"untracked":"normal"|"all"}: R's
 * git status, at most N ms old (default: any age the TTL keeps). R need
 * not be a project.
 */
int
op_git(struct ops_req *r)
{
	struct ops *o = r->o;
	const struct repo_status *st;
	struct gitcache_limits gl;
	char key[PATH_MAX + 1], *root = key + 1;
	const char *untracked;
	struct project *p;
	json_int_t max_age, limit, ms;
	uint64_t age, round;

	if (ops_timeout(r, &ms) == -1 || ops_root(r, root, &p) == -1 ||
	    ops_int(r, "max_age_ms", 0, FIDX_GIT_TTL_MS_CEILING, -1,
	    &max_age) == -1 ||
	    ops_string(r, "untracked", false, &untracked, NULL) == -1 ||
	    ops_int(r, "limit", 1, FIDX_MAX_GIT_PATHS_CEILING,
	    FIDX_RESULTS_CEILING, &limit) == -1)
		return -1;
	if (untracked != NULL && strcmp(untracked, "normal") != 0 &&
	    strcmp(untracked, "all") != 0)
		return ops_fail(r, PROTO_E_BAD_REQUEST, "\"untracked\" must be "
		    "normal or all, not '%s'", untracked);
	/* A git worker blocked for good helps nobody: say why instead. */
	if (p != NULL && p->git_unsafe)
		return ops_fail(r, PROTO_E_GIT_FAILED, "%s has a .gitignore that "
		    "is not a regular file (a fifo?): libgit2, like git status, "
		    "would wait on it for good (the project's message says "
		    "where)", root);
	key[0] = OPS_GIT_ALL;
	if (untracked == NULL || strcmp(untracked, "all") != 0)
		memmove(key, root, strlen(root) + 1);
	root = (char *)ops_git_root(key);
	/* Not given: any age the TTL keeps, unless the tree changed since. */
	switch (gitcache_lookup(o->d->git, key, max_age < 0 ? UINT64_MAX :
	    (uint64_t)max_age, loop_now_ms(o->d->loop), &st, &age, &round)) {
	case GITCACHE_HIT:
		ops_git_answer(r, root, st, age, (size_t)limit);
		break;
	case GITCACHE_COMPUTE:
		ops_git_compute(r, key, (size_t)limit, ms, round);
		break;
	case GITCACHE_WAIT:
		ops_git_wait(r, key, (size_t)limit, ms, round);
		break;
	case GITCACHE_BUSY:
		gitcache_limits(o->d->git, &gl);
		return ops_fail(r, PROTO_E_BUSY, "%zu requests wait for the "
		    "git status of %s already (the limit); try again",
		    gl.max_waiters, root);
	}
	return 0;
}


void
ops_git_gone(struct ops *o, struct ops_parked *k)
{
	if (k->kind == OPS_PARKED_GIT) {
		struct ops_gitjob *j = (struct ops_gitjob *)k;

		/* It runs on: the status is kept for the next asker. */
		j->c = NULL;
		loop_timer_stop(o->d->loop, &j->deadline);
	} else {
		struct ops_gitwait *g = (struct ops_gitwait *)k;

		gitcache_unwait(o->d->git, g->root, g->round);
		ops_gitwait_unlink(g);
		ops_gitwait_free(g);
	}
}

void
ops_git_stop(struct ops *o)
{
	struct ops_gitwait *g;

	/* Computations still running answer their own clients when done. */
	while ((g = o->gitwaits) != NULL) {
		struct ops_req r = { .o = o, .c = g->c, .id = g->id };

		gitcache_unwait(o->d->git, g->root, g->round);
		ops_gitwait_unlink(g);
		server_unpark(o->d->server, g->c);
		ops_fail(&r, PROTO_E_SHUTTING_DOWN, "fidxd is stopping");
		ops_gitwait_free(g);
	}
}


/*
 * The changes op (git's file-system monitor hook). A token is
 * "fidx:<this run's instance>:<a change-log number>"; anything else, one
 * of another run, or one the log can no longer answer for this project
 * gets "everything" ("all":true), as git's protocol allows.
 */

/* Paths in one answer; past it, "everything" (git looks at each file). */
#define OPS_CHANGES_MAX_BYTES (1024 * 1024)

struct ops_changes {
	const char **v;			/* borrowed from the log or project */
	size_t *len;
	size_t n, cap, bytes;
	bool over;			/* past OPS_CHANGES_MAX_BYTES, or
					   out of memory */
};

static int
ops_changes_add(void *arg, const char *path, size_t len)
{
	struct ops_changes *ch = arg;

	if (ch->n == ch->cap) {
		size_t ncap = ch->cap ? ch->cap * 2 : 64;
		const char **v = fidx_reallocarray(ch->v, ncap,
		    sizeof(*v));
		size_t *l;

		if (v == NULL)
			goto over;
		ch->v = v;
		if ((l = fidx_reallocarray(ch->len, ncap, sizeof(*l))) ==
		    NULL)
			goto over;
		ch->len = l;
		ch->cap = ncap;
	}
	if ((ch->bytes += len + 1) > OPS_CHANGES_MAX_BYTES)
		goto over;
	ch->v[ch->n] = path;
	ch->len[ch->n++] = len;
	return 0;
over:
	ch->over = true;
	return 1;
}

static int
ops_changes_cmp(const void *a, const void *b, void *arg)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct ops_changes *ch = arg;
	size_t k = ch->len[i] < ch->len[j] ? ch->len[i] : ch->len[j];
	int c = memcmp(ch->v[i], ch->v[j], k);

	if (c != 0)
		return c;
	return ch->len[i] < ch->len[j] ? -1 : ch->len[i] > ch->len[j];
}

/* The number in since if it is a token of this run, else -1. */
static int
ops_changes_token(const struct fidxd *d, const char *since, uint64_t *seq)
{
	size_t il = strlen(d->instance);
	char *end;

	if (since == NULL || strncmp(since, "fidx:", 5) != 0 ||
	    strncmp(since + 5, d->instance, il) != 0 || since[5 + il] != ':' ||
	    since[6 + il] < '0' || since[6 + il] > '9')
		return -1;
	errno = 0;
	*seq = strtoull(since + 6 + il, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

void
ops_changes_answer(struct ops_req *r, const struct project *p,
    const char *since)
{
	struct fidxd *d = r->o->d;
	struct ops_changes ch = { 0 };
	size_t *order = NULL;
	char token[96];
	uint64_t seq = 0, now = d->changes != NULL ? changelog_seq(d->changes) :
	    0, floor;
	bool all;
	json_t *o, *a;

	snprintf(token, sizeof(token), "fidx:%s:%" PRIu64, d->instance, now);
	floor = d->changes != NULL ? changelog_floor(d->changes) : UINT64_MAX;
	if (p != NULL && p->log_floor > floor)
		floor = p->log_floor;
	/* Only a project watched whole, with every change heard since. */
	all = p == NULL || d->changes == NULL ||
	    p->watch != PROJECT_WATCHING || p->state != PROJECT_READY ||
	    p->snap == NULL || p->kept_old || p->unwatched_over ||
	    ops_changes_token(d, since, &seq) == -1 || seq < floor ||
	    seq > now;
	if (!all) {
		changelog_since(d->changes, p->id, seq, ops_changes_add, &ch);
		/* What the watcher cannot see into, every time. */
		for (size_t i = 0; i < p->nunwatched && !ch.over; i++)
			ops_changes_add(&ch, p->unwatched[i],
			    strlen(p->unwatched[i]));
		all = ch.over;
	}
	/* Each path once, sorted (git looks each up in its index). */
	if (!all && ch.n > 0 &&
	    (order = fidx_reallocarray(NULL, ch.n, sizeof(*order))) == NULL)
		all = true;
	o = ops_ok(r);
	o = ops_set(o, "root", p != NULL ? proto_text(p->root,
	    strlen(p->root)) : json_null());
	o = ops_set(o, "token", json_string(token));
	o = ops_set(o, "all", json_boolean(all));
	a = json_array();
	if (!all && ch.n > 0) {
		for (size_t i = 0; i < ch.n; i++)
			order[i] = i;
		qsort_r(order, ch.n, sizeof(*order), ops_changes_cmp, &ch);
		for (size_t i = 0; a != NULL && i < ch.n; i++) {
			size_t k = order[i];
			json_t *f;

			if (i > 0 && ops_changes_cmp(&order[i - 1], &order[i],
			    &ch) == 0)
				continue;
			if ((f = json_object()) == NULL ||
			    json_array_append_new(a, f) == -1 ||
			    proto_path_set(f, ch.v[k], ch.len[k]) == -1) {
				json_decref(a);
				a = NULL;
			}
		}
	}
	/* A directory ends in '/': git then looks at all it holds. */
	o = ops_set(o, "paths", a);
	r->o->changes_answers++;
	r->o->changes_all += all;
	free(order);
	free(ch.v);
	free(ch.len);
	if (o == NULL) {
		ops_fail(r, PROTO_E_NO_MEMORY, "out of memory for the changes "
		    "of %s", p != NULL ? p->root : "a root");
		return;
	}
	ops_send(r, o);
}

/* The change log: its limits in `limits`, the rest in `changes`. */
json_t *
ops_stats_changes(struct fidxd *d, json_t *o)
{
	struct changelog_stats cs = { 0 };
	size_t unwatched = 0, over = 0, logged = 0;
	const struct project_registry *reg = &d->reg;

	if (d->changes != NULL)
		changelog_get_stats(d->changes, &cs);
	for (size_t i = 0; i < reg->n; i++) {
		unwatched += reg->v[i]->nunwatched;
		over += reg->v[i]->unwatched_over;
		logged += reg->v[i]->log_wanted;
	}
	o = ops_set_in(o, "limits", "changes",
	    json_integer((json_int_t)cs.max_entries));
	o = ops_set_in(o, "limits", "changes_bytes",
	    json_integer((json_int_t)cs.max_bytes));
	return ops_set(o, "changes", json_pack("{s:{s:I,s:I,s:I,s:I,s:I,s:I},"
	    "s:{s:I,s:I,s:I,s:I,s:I,s:I}}",
	    "usage",
	    "entries", (json_int_t)cs.entries,
	    "bytes", (json_int_t)cs.bytes,
	    "seq", (json_int_t)cs.seq,
	    "floor", (json_int_t)cs.floor,
	    "unwatched_dirs", (json_int_t)unwatched,
	    "projects", (json_int_t)logged,
	    "counters",
	    "added", (json_int_t)cs.added,
	    "repeats", (json_int_t)cs.repeats,
	    "dropped", (json_int_t)cs.dropped,
	    "answers", (json_int_t)d->ops->changes_answers,
	    "answers_all", (json_int_t)d->ops->changes_all,
	    "unwatched_over", (json_int_t)over));
}
