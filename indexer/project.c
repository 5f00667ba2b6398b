/* project.c - see project.h. */
#include "project.h"
#include "changelog.h"
#include "../common/alloc.h"
#include "../common/limits.h"
#include "../common/regex.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void project_watch_set(struct project_registry *r, struct project *p);
static void project_log(struct project_registry *r, struct project *p,
    const char *rel, bool dir);
static void project_entered_log(struct project_registry *r,
    struct project *p);
static void project_pending_drop(struct project_registry *r, struct project *p);
static void project_gone(struct project_registry *r, struct project *p,
    const char *why);

static const char *const project_state_names[] = {
	[PROJECT_INDEXING] = "indexing",
	[PROJECT_READY] = "ready",
	[PROJECT_CAPPED] = "capped",
	[PROJECT_ERROR] = "error",
	[PROJECT_GONE] = "gone",
};

const char *
project_state_name(enum project_state s)
{
	return project_state_names[s];
}

const char *
project_cap_name(enum project_cap c)
{
	return c == PROJECT_CAP_FILES ? "files" : c == PROJECT_CAP_BYTES ?
	    "bytes" : NULL;
}

static void
project_opts_release(struct project_opts *o)
{
	if (o->exclude != NULL)
		regex_release(o->exclude);
	free(o->exclude);
	free(o->exclude_src);
	memset(o, 0, sizeof(*o));
}

/*
 * Compiles what a request asked for into out (released by the caller).
 * An empty exclude is none: it would match, and so drop, every path.
 * On failure out holds nothing.
 */
static int
project_opts_compile(const struct project_add_opts *in,
    struct project_opts *out, struct fidx_err *err)
{
	memset(out, 0, sizeof(*out));
	out->hidden = in->hidden;
	if (in->exclude == NULL || in->exclude[0] == '\0')
		return 0;
	/*
	 * Both modes (regex.h): a name that is not UTF-8 is matched in byte
	 * mode, so "caf." excludes a Latin-1 "caf\xe9". No smart case: the
	 * pattern means what it says.
	 */
	if ((out->exclude = fidx_calloc(1, sizeof(*out->exclude))) == NULL)
		goto nomem;
	if (regex_compile(out->exclude, in->exclude, strlen(in->exclude), 0,
	    "exclude regex", err) == -1) {
		int e = errno == ENOMEM ? ENOMEM : EINVAL;

		project_opts_release(out);
		errno = e;
		return -1;
	}
	if ((out->exclude_src = fidx_strdup(in->exclude)) == NULL)
		goto nomem;
	return 0;
nomem:
	project_opts_release(out);
	fidx_error(err, "out of memory");
	errno = ENOMEM;
	return -1;
}

static void
project_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Changes p could not hear: tokens from before now answer everything. */
static void
project_log_lost(struct project_registry *r, struct project *p)
{
	if (r->log != NULL)
		p->log_floor = changelog_bump(r->log);
}

/*
 * Logging every project's changes from its first walk filled the log
 * toward its cap with paths no hook would ever ask for (a soak without
 * one grew the heap ~600 KiB a minute): so only a project a hook has
 * asked about is logged.
 */
void
project_log_want(struct project_registry *r, struct project *p)
{
	if (p->log_wanted)
		return;
	p->log_wanted = true;
	project_log_lost(r, p);
}

/*
 * Adds rel to v (at most PROJECT_UNWATCHED_MAX, once each); false when
 * it does not fit (over, or out of memory): the caller marks it over.
 */
static bool
project_strv_add(char ***v, size_t *n, const char *rel, size_t len)
{
	char **nv, *s;

	for (size_t i = 0; i < *n; i++)
		if (strlen((*v)[i]) == len && memcmp((*v)[i], rel, len) == 0)
			return true;
	if (*n >= PROJECT_UNWATCHED_MAX)
		return false;
	if ((nv = fidx_reallocarray(*v, *n + 1, sizeof(*nv))) == NULL)
		return false;
	*v = nv;
	if ((s = fidx_strndup(rel, len)) == NULL)
		return false;
	nv[(*n)++] = s;
	return true;
}

/* A directory a delta entered (any walk thread: under the registry's mu). */
static void
project_walk_entered(struct project *p, const char *rel, size_t len)
{
	struct project_registry *r = p->reg;
	char **v, *s;

	pthread_mutex_lock(&r->mu);
	if (!p->entered_over) {
		if (p->nentered >= PROJECT_ENTERED_MAX ||
		    (v = fidx_reallocarray(p->entered, p->nentered + 1,
		    sizeof(*v))) == NULL ||
		    (p->entered = v, s = fidx_strndup(rel, len)) == NULL)
			p->entered_over = true;
		else
			p->entered[p->nentered++] = s;
	}
	pthread_mutex_unlock(&r->mu);
}

/* A directory the walk does not enter (walk.h on_skip; any walk thread). */
static void
project_walk_on_skip(void *arg, const char *rel, size_t len)
{
	struct project *p = arg;
	struct project_registry *r = p->reg;
	char dir[PATH_MAX + 1];

	/* Kept as git wants a directory named: with its trailing '/'. */
	if (len > 0 && len < PATH_MAX) {
		memcpy(dir, rel, len);
		dir[len++] = '/';
	}
	pthread_mutex_lock(&r->mu);
	if (len == 0 || len >= PATH_MAX || (!p->skip_walk_over &&
	    !project_strv_add(&p->skip_walk, &p->nskip_walk, dir, len)))
		p->skip_walk_over = true;
	pthread_mutex_unlock(&r->mu);
}

/*
 * What the job that ended met: a walk's replaces the list, a delta's
 * adds to it (one it met again is there once; one gone stays until the
 * next walk, harmless: git finds nothing there).
 */
static void
project_skips_take(struct project *p, bool walk)
{
	if (walk) {
		project_strv_free(p->unwatched, p->nunwatched);
		p->unwatched = p->skip_walk;
		p->nunwatched = p->nskip_walk;
		p->unwatched_over = p->skip_walk_over;
	} else {
		for (size_t i = 0; i < p->nskip_walk; i++)
			if (!p->unwatched_over && !project_strv_add(
			    &p->unwatched, &p->nunwatched, p->skip_walk[i],
			    strlen(p->skip_walk[i])))
				p->unwatched_over = true;
		p->unwatched_over |= p->skip_walk_over;
		project_strv_free(p->skip_walk, p->nskip_walk);
	}
	p->skip_walk = NULL;
	p->nskip_walk = 0;
	p->skip_walk_over = false;
}

static void
project_free(struct project *p)
{
	if (p == NULL)
		return;
	if (p->reg != NULL) {
		loop_timer_stop(p->reg->loop, &p->settle);
		loop_timer_stop(p->reg->loop, &p->periodic);
	}
	index_snapshot_unref(p->snap);
	index_snapshot_unref(p->result);
	index_snapshot_unref(p->base);
	for (size_t i = 0; i < p->npending; i++)
		free(p->pending[i]);
	free(p->pending);
	for (size_t i = 0; i < p->njob; i++)
		free(p->job[i]);
	free(p->job);
	project_strv_free(p->unwatched, p->nunwatched);
	project_strv_free(p->skip_walk, p->nskip_walk);
	project_strv_free(p->entered, p->nentered);
	project_opts_release(&p->opts);
	project_opts_release(&p->next_opts);
	free(p->root);
	free(p);
}

/* Lets walk_run() stop at the next directory once the project is dropped. */
static void
project_watch_git(struct watch *w, struct project *p, const char *root,
    bool wait)
{
	static const char *const dirs[] = { ".git", ".git/refs/heads" };
	char abs[2 * PATH_MAX + 32];
	struct stat sb;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (snprintf(abs, sizeof(abs), "%s/%s", root, dirs[i]) >=
		    (int)sizeof(abs))
			continue;
		if (lstat(abs, &sb) == 0 && S_ISDIR(sb.st_mode))
			(void)watch_dir(w, p->id, abs, false, wait, NULL);
	}
}

/*
 * Each directory the walk enters is watched (before it is read, for a
 * delta: a directory just made fills up while we look), unless the
 * project is not watched. Then: stop once the project is dropped.
 */
static int
project_walk_on_dir(void *arg, const char *rel, size_t len,
    const struct stat *st)
{
	struct project *p = arg;
	struct watch *w = p->reg->watch;
	char abs[2 * PATH_MAX];

	if (w != NULL && p->job_watches &&
	    !atomic_load_explicit(&p->cancel, memory_order_relaxed)) {
		struct timespec now;
		bool wait = p->delta;

		if (len == 0)
			snprintf(abs, sizeof(abs), "%s", p->root);
		else
			snprintf(abs, sizeof(abs), "%s/%.*s", p->root,
			    (int)len, rel);
		/*
		 * A full walk does not wait for a watch (a round trip per
		 * directory): the watcher checks the mtime instead, which
		 * only works for one not changed just now (watch.h).
		 */
		clock_gettime(CLOCK_REALTIME, &now);
		if (!wait && (now.tv_sec - st->st_mtim.tv_sec) * 1000 +
		    (now.tv_nsec - st->st_mtim.tv_nsec) / 1000000 <
		    WATCH_RECENT_MS) {
			wait = true;
			atomic_fetch_add_explicit(&p->reg->walk_waits, 1,
			    memory_order_relaxed);
		}
		(void)watch_dir(w, p->id, abs, len == 0, wait,
		    wait ? NULL : &st->st_mtim);
		/*
		 * Git's own files are not listed, but HEAD, the index and
		 * the refs tell the git cache when to compute again.
		 */
		if (len == 0)
			project_watch_git(w, p, abs, wait);
		/*
		 * A directory a delta enters (one just made, mostly) was not
		 * watched until now: what changed in it before is logged as
		 * it, once the delta is in (project_delta_apply).
		 */
		if (p->delta && len > 0)
			project_walk_entered(p, rel, len);
	}
	return atomic_load_explicit(&p->cancel, memory_order_relaxed);
}

static uint64_t
project_ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (uint64_t)(t1.tv_sec - t0->tv_sec) * 1000 +
	    (uint64_t)((t1.tv_nsec - t0->tv_nsec) / 1000000);
}

/*
 * A delta, on a walker thread: re-reads the paths the watcher saw change
 * (each a file, a directory's tree, or gone) and applies them to the
 * base snapshot as a new one that shares every segment they miss.
 */
static void
project_delta(struct project_registry *r, struct project *p,
    struct walk_opts *o)
{
	struct index_builder b;
	struct fidx_err err = { "" };
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Each path once, none under another: each read once. */
	size_t n = index_paths_norm((const char **)p->job, p->njob);

	for (size_t i = n; i < p->njob; i++)
		free(p->job[i]);
	p->njob = n;
	o->starts = (const char *const *)p->job;
	o->nstarts = p->njob;
	/* The new segments charge the budget when made, checked. */
	index_builder_init(&b, r->lim.max_files, SIZE_MAX, NULL);
	if (walk_run(p->root, o, &b, &p->wstats, &err) == -1 ||
	    index_builder_sort(&b) == -1) {
		p->result_errno = errno ? errno : EIO;
		snprintf(p->result_msg, sizeof(p->result_msg), "%s",
		    err.msg[0] ? err.msg : "out of memory");
		index_builder_release(&b);
		return;
	}
	struct index_change ch = { o->starts, o->nstarts, &b,
	    r->lim.max_files };

	if ((p->result = index_snapshot_apply(p->base, &ch, p->walk_gen,
	    &p->jstats)) == NULL) {
		p->result_errno = errno;
		snprintf(p->result_msg, sizeof(p->result_msg), "%s",
		    errno == ENOSPC ? "a change would pass the index-bytes "
		    "cap" : "out of memory applying a change");
	}
	index_builder_release(&b);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	p->delta_us = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000 +
	    (uint64_t)((t1.tv_nsec - t0.tv_nsec) / 1000);
}

/* One walk, on a walker thread. Touches only the walk fields of p. */
static void
project_walk(struct project_registry *r, struct project *p)
{
	struct walk_opts o = {
		.hidden = p->opts.hidden,
		.gitignore = true,
		.exclude = p->opts.exclude,
		.on_dir = project_walk_on_dir,
		.on_skip = project_walk_on_skip,
		.arg = p,
		.threads = r->lim.walk_threads,
		.progress = &p->walked,
	};
	struct index_builder b;
	struct fidx_err err = { "" };

	p->result = NULL;
	p->result_errno = 0;
	p->result_msg[0] = '\0';
	if (p->delta) {
		project_delta(r, p, &o);
		return;
	}
	index_builder_init(&b, r->lim.max_files, SIZE_MAX, &r->budget);
	if (walk_run(p->root, &o, &b, &p->wstats, &err) == -1) {
		p->result_errno = errno ? errno : EIO;
		snprintf(p->result_msg, sizeof(p->result_msg), "%s", err.msg);
		index_builder_release(&b);
		return;
	}
	/* Segments of the index it replaces that did not change are shared. */
	if ((p->result = index_builder_finish_like(&b, p->base, p->walk_gen,
	    &p->jstats)) == NULL) {
		p->result_errno = ENOMEM;
		snprintf(p->result_msg, sizeof(p->result_msg),
		    "out of memory building the index");
	}
}

static void *
project_walker_main(void *arg)
{
	struct project_registry *r = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		struct project *p;

		while (!r->stop && r->jobs == NULL)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->stop)
			break;
		p = r->jobs;
		if ((r->jobs = p->next) == NULL)
			r->jobs_tail = NULL;
		pthread_mutex_unlock(&r->mu);

		project_walk(r, p);

		pthread_mutex_lock(&r->mu);
		p->next = r->done;
		r->done = p;
		/* A full eventfd counter still reads as readable: ignore. */
		if (write(r->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
			log_warn("eventfd");
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

int
project_registry_init(struct project_registry *r,
    const struct project_limits *lim, struct loop *loop, struct watch *watch,
    const char *watch_err, struct fidx_err *err)
{
	memset(r, 0, sizeof(*r));
	r->lim = *lim;
	r->loop = loop;
	r->watch = watch;
	snprintf(r->watch_err, sizeof(r->watch_err), "%s",
	    watch_err != NULL ? watch_err : "");
	r->efd = -1;
	if (lim->walkers < 1 || lim->walkers > (int)(sizeof(r->tids) /
	    sizeof(r->tids[0])))
		return fidx_error(err, "walker threads must be 1 to %zu",
		    sizeof(r->tids) / sizeof(r->tids[0]));
	atomic_init(&r->budget.used, 0);
	r->budget.limit = lim->max_index_bytes;
	if ((r->v = fidx_calloc(lim->max_projects ? lim->max_projects : 1,
	    sizeof(*r->v))) == NULL)
		return fidx_error(err, "out of memory");
	if ((r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		fidx_error(err, "eventfd: %s", strerror(errno));
		free(r->v);
		return -1;
	}
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	for (int i = 0; i < lim->walkers; i++) {
		int e = pthread_create(&r->tids[i], NULL, project_walker_main,
		    r);

		if (e != 0) {
			fidx_error(err, "cannot start a walker thread: %s",
			    strerror(e));
			project_registry_release(r);
			return -1;
		}
		r->started++;
	}
	return 0;
}

void
project_registry_release(struct project_registry *r)
{
	struct project *p, *next;

	if (r->v == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	for (size_t i = 0; i < r->n; i++)
		atomic_store(&r->v[i]->cancel, true);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < r->started; i++)
		pthread_join(r->tids[i], NULL);
	/* Walkers are gone: every project is on exactly one list now. */
	for (p = r->done; p != NULL; p = next) {
		next = p->next;
		if (p->removed)
			project_free(p);
	}
	for (p = r->jobs; p != NULL; p = next) {
		next = p->next;
		if (p->removed)
			project_free(p);
	}
	for (size_t i = 0; i < r->n; i++)
		project_free(r->v[i]);
	free(r->v);
	if (r->efd != -1)
		close(r->efd);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	r->v = NULL;
	r->n = 0;
}

int
project_registry_fd(const struct project_registry *r)
{
	return r->efd;
}

struct project *
project_find(struct project_registry *r, const char *root)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i]->root, root) == 0)
			return r->v[i];
	return NULL;
}

/* Queues a walk of p with the next generation. */
/* Hands p's job (a walk or a delta, its fields set) to the walkers. */
static void
project_job_queue(struct project_registry *r, struct project *p)
{
	/* One it stops meanwhile is forgotten again when the job is done. */
	p->job_watches = p->watch == PROJECT_WATCHING;
	atomic_store(&p->cancel, false);
	atomic_store(&p->walked, 0);
	clock_gettime(CLOCK_MONOTONIC, &p->walk_start);
	pthread_mutex_lock(&r->mu);
	p->next = NULL;
	if (r->jobs_tail != NULL)
		r->jobs_tail->next = p;
	else
		r->jobs = p;
	r->jobs_tail = p;
	r->running++;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void
project_walk_start(struct project_registry *r, struct project *p)
{
	/* No walk reads p->opts now: the new ones may go in. */
	if (p->has_next) {
		project_opts_release(&p->opts);
		p->opts = p->next_opts;
		memset(&p->next_opts, 0, sizeof(p->next_opts));
		p->has_next = false;
	}
	if (p->watch == PROJECT_UNWATCHED && !p->removed)
		project_watch_set(r, p);
	p->walking = true;
	p->dirty = false;
	p->delta = false;
	p->base = p->snap != NULL ? index_snapshot_ref(p->snap) : NULL;
	/* The walk reads the whole tree: what waited is covered. */
	project_pending_drop(r, p);
	p->walk_gen = ++p->last_gen;
	project_job_queue(r, p);
}

const char *
project_watch_name(enum project_watch w)
{
	switch (w) {
	case PROJECT_WATCHING:
		return "watching";
	case PROJECT_DEGRADED:
		return "degraded";
	case PROJECT_UNWATCHED:
		break;
	}
	return "off";
}

static void
project_periodic_fire(struct loop *l, struct loop_timer *t)
{
	struct project *p = t->arg;

	(void)l;
	p->reg->count.degraded_rebuilds++;
	project_reindex(p->reg, p);
}

/* True when dir is root or lies below it (both canonical, absolute). */
static bool
project_root_holds(const char *root, const char *dir)
{
	size_t n = strlen(root);

	if (n == 1)		/* "/" */
		return true;
	return strncmp(root, dir, n) == 0 && (dir[n] == '\0' || dir[n] == '/');
}

/*
 * Drops p's watches. A directory has one watch however many projects
 * hold it (nested roots share it), under the project that asked last,
 * so dropping p's may drop watches a project around it or inside it
 * still needs: each such project is walked again, which watches what it
 * lacks (what it still has is kept as it is).
 */
static void
project_watch_forget(struct project_registry *r, struct project *p)
{
	if (r->watch == NULL)
		return;
	watch_forget(r->watch, p->id);
	for (size_t i = 0; i < r->n; i++) {
		struct project *q = r->v[i];

		if (q == p || q->watch != PROJECT_WATCHING || q->removed ||
		    (!project_root_holds(q->root, p->root) &&
		    !project_root_holds(p->root, q->root)))
			continue;
		r->count.shared_rewalks++;
		project_reindex(r, q);
	}
}

/* Degrades p: rebuilt every degraded_rebuild_ms instead of watched. */
static void
project_degrade(struct project_registry *r, struct project *p,
    const char *why)
{
	p->watch = PROJECT_DEGRADED;
	project_log_lost(r, p);
	snprintf(p->watch_why, sizeof(p->watch_why), "%s; rebuilt every %u "
	    "s instead (--degraded-rebuild-ms)", why,
	    r->lim.degraded_rebuild_ms / 1000);
	log_warnx("%s: %s", p->root, p->watch_why);
	project_watch_forget(r, p);
	loop_timer_start(r->loop, &p->periodic, r->lim.degraded_rebuild_ms,
	    r->lim.degraded_rebuild_ms, project_periodic_fire, p);
}

/* A new or returning project: watched if the watcher runs. */
static void
project_watch_set(struct project_registry *r, struct project *p)
{
	p->watch = PROJECT_WATCHING;
	p->watch_why[0] = '\0';
	loop_timer_stop(r->loop, &p->periodic);
	if (r->watch == NULL)
		project_degrade(r, p, r->watch_err);
}

struct project *
project_add(struct project_registry *r, const char *root,
    const struct project_add_opts *opts, bool *added, struct fidx_err *err)
{
	struct project *p;

	*added = false;
	if ((p = project_find(r, root)) != NULL)
		return p;
	if (r->n >= r->lim.max_projects) {
		r->count.projects_refused++;
		errno = ENOSPC;
		fidx_error(err, "too many projects (the limit is %zu; "
		    "remove one%s)", r->lim.max_projects,
		    r->lim.max_projects < FIDX_MAX_PROJECTS_CEILING ?
		    ", or start fidxd with a larger --max-projects" : "");
		return NULL;
	}
	if ((p = fidx_calloc(1, sizeof(*p))) == NULL ||
	    (p->root = fidx_strdup(root)) == NULL)
		goto nomem;
	if (project_opts_compile(opts, &p->opts, err) == -1) {
		int e = errno;

		project_free(p);
		errno = e;
		return NULL;
	}
	atomic_init(&p->cancel, false);
	p->state = PROJECT_INDEXING;
	p->reg = r;
	p->id = ++r->next_id;
	project_log_lost(r, p);
	project_watch_set(r, p);
	r->v[r->n++] = p;
	*added = true;
	project_walk_start(r, p);
	return p;
nomem:
	project_free(p);
	errno = ENOMEM;
	fidx_error(err, "out of memory");
	return NULL;
}

const struct project_opts *
project_opts_get(const struct project *p)
{
	return p->has_next ? &p->next_opts : &p->opts;
}

static bool
project_opts_same(const struct project_opts *a, const struct project_opts *b)
{
	if (a->hidden != b->hidden)
		return false;
	if (a->exclude_src == NULL || b->exclude_src == NULL)
		return a->exclude_src == b->exclude_src;
	return strcmp(a->exclude_src, b->exclude_src) == 0;
}

int
project_set_opts(struct project_registry *r, struct project *p,
    const struct project_add_opts *opts, uint64_t *gen,
    struct fidx_err *err)
{
	struct project_opts o;

	if (project_opts_compile(opts, &o, err) == -1)
		return -1;
	if (project_opts_same(&o, project_opts_get(p))) {
		project_opts_release(&o);
		return 0;
	}
	/*
	 * A queued or running walk reads p->opts without a lock, so they
	 * wait in next; project_walk_start() takes them in once no walk
	 * does, which is at once when none runs.
	 */
	project_opts_release(&p->next_opts);
	p->next_opts = o;
	p->has_next = true;
	*gen = project_reindex(r, p);
	return 1;
}

/* Drops p's pending paths (a full walk covers them). */
static void
project_pending_drop(struct project_registry *r, struct project *p)
{
	for (size_t i = 0; i < p->npending; i++)
		free(p->pending[i]);
	r->npending -= p->npending;
	p->npending = 0;
}

void
project_remove(struct project_registry *r, struct project *p)
{
	loop_timer_stop(r->loop, &p->settle);
	loop_timer_stop(r->loop, &p->periodic);
	project_pending_drop(r, p);
	project_watch_forget(r, p);
	p->watch = PROJECT_UNWATCHED;
	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i] != p)
			continue;
		r->v[i] = r->v[--r->n];
		break;
	}
	if (p->walking) {
		/* The walker owns it until project_collect() sees it done. */
		p->removed = true;
		atomic_store(&p->cancel, true);
		return;
	}
	project_free(p);
}

uint64_t
project_reindex(struct project_registry *r, struct project *p)
{
	if (!p->walking) {
		project_walk_start(r, p);
		return p->last_gen;
	}
	/* The walk in progress may have passed changed directories. */
	p->dirty = true;
	return p->last_gen + 1;
}

/* n bytes as a --max-index-bytes value: "64K", "512M", or the number. */
static const char *
project_size(char *buf, size_t size, size_t n)
{
	if (n >= 1 << 30 && n % (1 << 30) == 0)
		snprintf(buf, size, "%zuG", n >> 30);
	else if (n >= 1 << 20 && n % (1 << 20) == 0)
		snprintf(buf, size, "%zuM", n >> 20);
	else if (n >= 1 << 10 && n % (1 << 10) == 0)
		snprintf(buf, size, "%zuK", n >> 10);
	else
		snprintf(buf, size, "%zu", n);
	return buf;
}

/*
 * Which cap cut sn. The files cap counts this index alone, and a walk
 * stops at it with exactly max_files files; short of that, the byte
 * budget (every project's, this one's live index included) stopped it.
 */
static enum project_cap
project_snap_cap(const struct project_registry *r,
    const struct index_snapshot *sn)
{
	if (sn == NULL || !sn->capped)
		return PROJECT_CAP_NONE;
	return sn->n >= r->lim.max_files ? PROJECT_CAP_FILES :
	    PROJECT_CAP_BYTES;
}

/* What to do about cap c: raise its flag, unless it is at its ceiling. */
static void
project_cap_hint(const struct project_registry *r, enum project_cap c,
    char *buf, size_t size)
{
	char n[32];

	if (c == PROJECT_CAP_FILES && r->lim.max_files <
	    FIDX_MAX_FILES_CEILING)
		snprintf(buf, size, "raise --max-files, now %zu",
		    r->lim.max_files);
	else if (c == PROJECT_CAP_FILES)
		snprintf(buf, size, "--max-files is at its ceiling, %zu",
		    r->lim.max_files);
	else if (r->lim.max_index_bytes < FIDX_MAX_INDEX_BYTES_CEILING)
		snprintf(buf, size, "raise --max-index-bytes, now %s",
		    project_size(n, sizeof(n), r->lim.max_index_bytes));
	else
		snprintf(buf, size, "--max-index-bytes is at its ceiling");
}

/* Adds "; text" to p->message (or text, when it is empty). */
static void
project_message_add(struct project *p, const char *text)
{
	size_t len = strlen(p->message);

	snprintf(p->message + len, sizeof(p->message) - len, "%s%s",
	    len > 0 ? "; " : "", text);
}

/*
 * True when the finished walk's index, cut by the byte cap, must not
 * replace the live one. A rebuild walks while the live index is still
 * held, and the cap counts both (two snapshots exist during a rebuild,
 * and memory is what the cap bounds), so a tree that fits the cap once
 * but not twice is cut on every rebuild. Swapping the cut index in would
 * free room, so the next rebuild would be whole again: an unchanged tree
 * would flip between complete and partial. A walk cannot know, when it
 * stops, whether the tree alone would have fit. So the rule is: an index
 * cut by the byte cap never replaces a live index that holds more files.
 * The live one may miss changes since it was built, and the message says
 * so; one cut with more files than the live one goes in (the tree grew:
 * it lists more of what is there now). The files cap counts one index
 * alone, so a walk cut by it replaces the live one as ever.
 */
static bool
project_keep_old(const struct project_registry *r, const struct project *p)
{
	return p->snap != NULL &&
	    project_snap_cap(r, p->result) == PROJECT_CAP_BYTES &&
	    p->result->n < p->snap->n;
}

static void
project_apply(struct project_registry *r, struct project *p)
{
	struct project_counters *c = &r->count;
	int e = p->result_errno;
	bool rebuild = p->snap != NULL;
	char hint[96];

	p->done_gen = p->walk_gen;
	c->walk_unreadable += p->wstats.unreadable;
	c->walk_vanished += p->wstats.vanished;
	c->walk_symlinks_skipped += p->wstats.symlinks_skipped;
	c->walk_too_long += p->wstats.too_long;
	c->walk_exclude_errors += p->wstats.exclude_errors;
	p->kept_old = false;
	p->message[0] = '\0';
	if (p->result != NULL && project_keep_old(r, p)) {
		c->rebuilds_kept_old++;
		project_cap_hint(r, PROJECT_CAP_BYTES, hint, sizeof(hint));
		snprintf(p->message, sizeof(p->message), "the rebuild stopped "
		    "at the index-bytes cap after %zu files, fewer than the "
		    "%zu of the index of generation %llu, which is kept and "
		    "may miss changes since: a rebuild holds the old and the "
		    "new index at once (%s)", p->result->n, p->snap->n,
		    (unsigned long long)p->snap->generation, hint);
		index_snapshot_unref(p->result);
		p->result = NULL;
		p->kept_old = true;
		p->state = p->snap->capped ? PROJECT_CAPPED : PROJECT_READY;
		if (p->cap != PROJECT_CAP_NONE) {
			snprintf(hint, sizeof(hint), "the kept index is "
			    "partial too, cut by the %s cap",
			    p->cap == PROJECT_CAP_FILES ? "files-per-project" :
			    "index-bytes");
			project_message_add(p, hint);
		}
	} else if (p->result != NULL) {
		/*
		 * Every directory is watched from now on: tokens from before
		 * (the walk may have watched a directory after a change in
		 * it) answer everything.
		 */
		project_log_lost(r, p);
		project_skips_take(p, true);
		index_snapshot_unref(p->snap);
		p->snap = p->result;
		p->result = NULL;
		p->cap = project_snap_cap(r, p->snap);
		p->state = p->snap->capped ? PROJECT_CAPPED : PROJECT_READY;
		if (p->cap != PROJECT_CAP_NONE) {
			c->rebuilds_capped++;
			project_cap_hint(r, p->cap, hint, sizeof(hint));
			snprintf(p->message, sizeof(p->message), "the walk "
			    "stopped at the %s cap after %zu files (%s%s)",
			    p->cap == PROJECT_CAP_FILES ? "files-per-project" :
			    "index-bytes (all projects)", p->snap->n, hint,
			    p->cap == PROJECT_CAP_BYTES && rebuild ?
			    "; a rebuild holds the old and the new index at "
			    "once" : "");
		}
		p->built_at = time(NULL);
		p->build_ms = project_ms_since(&p->walk_start);
		p->bstats = p->jstats;
		c->rebuilds++;
	} else {
		project_strv_free(p->skip_walk, p->nskip_walk);
		p->skip_walk = NULL;
		p->nskip_walk = 0;
		p->skip_walk_over = false;
		c->rebuilds_failed++;
		if (e == ENOENT || e == ENOTDIR || e == ELOOP) {
			/* Its files are gone too: keeping them would list ghosts. */
			project_gone(r, p, "");
		} else {
			/* Keep the last good index: it is still mostly right. */
			p->state = PROJECT_ERROR;
		}
		snprintf(p->message, sizeof(p->message), "%s", p->result_msg);
		return;
	}
	p->git_unsafe = p->wstats.gitignore_unsafe > 0;
	/* Rules not applied (a refused repository) change what is listed. */
	if (p->wstats.git_refused)
		c->walk_git_refused++;
	if (p->wstats.warning[0] != '\0') {
		log_warnx("%s: %s", p->root, p->wstats.warning);
		project_message_add(p, p->wstats.warning);
	}
}

/* The root is gone: so are its files (no ghosts) and its watches. */
static void
project_gone(struct project_registry *r, struct project *p, const char *why)
{
	loop_timer_stop(r->loop, &p->settle);
	loop_timer_stop(r->loop, &p->periodic);
	project_pending_drop(r, p);
	project_log_lost(r, p);
	if (p->watch != PROJECT_UNWATCHED)
		project_watch_forget(r, p);
	p->watch = PROJECT_UNWATCHED;
	index_snapshot_unref(p->snap);
	p->snap = NULL;
	p->cap = PROJECT_CAP_NONE;
	p->state = PROJECT_GONE;
	snprintf(p->message, sizeof(p->message), "%s", why);
}

/* A finished delta: its snapshot replaces the live one it was made from. */
static void
project_delta_apply(struct project_registry *r, struct project *p)
{
	struct project_counters *c = &r->count;

	p->done_gen = p->walk_gen;
	c->walk_unreadable += p->wstats.unreadable;
	c->walk_vanished += p->wstats.vanished;
	c->delta_paths += p->njob;
	p->delta_paths = p->njob;
	for (size_t i = 0; i < p->njob; i++)
		free(p->job[i]);
	free(p->job);
	p->job = NULL;
	p->njob = 0;
	if (p->result == NULL && (p->result_errno == ENOENT ||
	    p->result_errno == ENOTDIR || p->result_errno == ELOOP)) {
		project_gone(r, p, p->result_msg);
		return;
	}
	if (p->result == NULL) {
		/* Nothing is lost: the next rebuild reads the whole tree. */
		c->delta_failed++;
		log_warnx("%s: %s; walking it whole", p->root, p->result_msg);
		p->dirty = true;
		return;
	}
	project_skips_take(p, false);
	project_entered_log(r, p);
	p->dstats = p->jstats;
	/* Only a delta changes the index between walks: p->base is p->snap. */
	index_snapshot_unref(p->snap);
	p->snap = p->result;
	p->result = NULL;
	c->deltas++;
	if (p->snap->capped && p->cap == PROJECT_CAP_NONE) {
		char hint[96];

		p->cap = PROJECT_CAP_FILES;
		p->state = PROJECT_CAPPED;
		project_cap_hint(r, p->cap, hint, sizeof(hint));
		snprintf(p->message, sizeof(p->message), "a change passed the "
		    "files-per-project cap at %zu files (%s)", p->snap->n,
		    hint);
	}
}

/* Queues a delta of p's pending paths (p has an index, no job). */
static void
project_delta_start(struct project_registry *r, struct project *p)
{
	p->job = p->pending;
	p->njob = p->npending;
	r->npending -= p->npending;
	p->pending = NULL;
	p->npending = p->pcap = 0;
	p->base = index_snapshot_ref(p->snap);
	p->walking = true;
	p->delta = true;
	p->walk_gen = ++p->last_gen;
	project_job_queue(r, p);
}

/*
 * A change after this long without one is applied at once: a person
 * saving, a tool writing now and then. Only changes closer together than
 * this (a build, an untar) wait, and the wait grows while they keep
 * coming, so a burst becomes a few batches.
 */
#define PROJECT_QUIET_MS 20

/* Changes gathered in one wait that make it a burst (the wait grows). */
#define PROJECT_BURST_PATHS 8
#define PROJECT_SETTLE_MIN_MS 5

static void
project_settle_fire(struct loop *l, struct loop_timer *t)
{
	struct project *p = t->arg;

	(void)l;
	if (p->walking || p->npending == 0 || p->snap == NULL)
		return;
	/*
	 * A few changes in the wait were a trickle, not a burst: the next
	 * wait is shorter, or a steady trickle would be held to the bound.
	 */
	if (p->npending < PROJECT_BURST_PATHS)
		p->settle_ms /= 2;
	project_delta_start(p->reg, p);
}

/* Starts or schedules the delta of what p has pending. */
static void
project_schedule(struct project_registry *r, struct project *p, bool quiet)
{
	if (p->npending == 0 || p->walking || p->snap == NULL ||
	    loop_timer_armed(&p->settle))
		return;
	if (quiet) {
		p->settle_ms = 0;
		project_delta_start(r, p);
		return;
	}
	p->settle_ms = p->settle_ms == 0 ? PROJECT_SETTLE_MIN_MS :
	    p->settle_ms * 2;
	if (p->settle_ms > r->lim.settle_max_ms)
		p->settle_ms = r->lim.settle_max_ms;
	loop_timer_start(r->loop, &p->settle, p->settle_ms, 0,
	    project_settle_fire, p);
}

/* Remembers rel as changed; false when the pending bound was passed. */
static bool
project_pending_add(struct project_registry *r, struct project *p,
    const char *rel)
{
	char *s;

	/* The same path again (a file written in steps): once is enough. */
	if (p->npending > 0 && strcmp(p->pending[p->npending - 1], rel) == 0) {
		r->count.events_coalesced++;
		return true;
	}
	if (r->npending >= r->lim.max_pending)
		return false;
	if (p->npending == p->pcap) {
		size_t ncap = p->pcap ? p->pcap * 2 : 16;
		char **v = fidx_reallocarray(p->pending, ncap, sizeof(*v));

		if (v == NULL)
			return false;
		p->pending = v;
		p->pcap = ncap;
	}
	if ((s = fidx_strdup(rel)) == NULL)
		return false;
	p->pending[p->npending++] = s;
	if (p->npending > 1)
		r->count.events_coalesced++;
	if (++r->npending > r->pending_peak)
		r->pending_peak = r->npending;
	return true;
}

/* Lost events: p is walked whole. */
static void
project_overflow(struct project_registry *r, struct project *p)
{
	if (p->watch != PROJECT_WATCHING)
		return;
	project_log_lost(r, p);
	r->count.overflow_rebuilds++;
	project_pending_drop(r, p);
	project_reindex(r, p);
}

/*
 * What a change to rel asks to read again: rel itself, or, when it is a
 * .gitignore (or the root's .ignore), the directory whose listing its
 * rules decide, tree and all (in buf).
 */
static const char *
project_rules_dir(const char *rel, char *buf, size_t size)
{
	const char *slash = strrchr(rel, '/');
	const char *name = slash != NULL ? slash + 1 : rel;
	size_t len = slash != NULL ? (size_t)(slash - rel) : 0;

	if (strcmp(name, ".gitignore") != 0 && strcmp(rel, ".ignore") != 0)
		return rel;
	if (len >= size)
		return rel;
	memcpy(buf, rel, len);
	buf[len] = '\0';
	return buf;
}

/*
 * The directories the delta that ended entered, logged now that each is
 * watched: a change in one before its watch is named by it (too many
 * to keep: the log says everything instead).
 */
static void
project_entered_log(struct project_registry *r, struct project *p)
{
	if (p->entered_over)
		project_log_lost(r, p);
	else
		for (size_t i = 0; i < p->nentered; i++)
			project_log(r, p, p->entered[i], true);
	project_strv_free(p->entered, p->nentered);
	p->entered = NULL;
	p->nentered = 0;
	p->entered_over = false;
}

/*
 * Logs that rel changed (the change log, for git's monitor hook); git's
 * own files are not its business (git ignores what it is told of them).
 * The root itself ("") or a path the log cannot keep: everything.
 */
static void
project_log(struct project_registry *r, struct project *p, const char *rel,
    bool dir)
{
	if (r->log == NULL || !p->log_wanted)
		return;
	if (strncmp(rel, ".git", 4) == 0 && (rel[4] == '/' || rel[4] == '\0'))
		return;
	if (*rel == '\0' || changelog_add(r->log, p->id, rel, strlen(rel),
	    dir) == -1)
		project_log_lost(r, p);
}

void
project_watch_event(struct project_registry *r, const struct watch_event *ev)
{
	uint64_t now = loop_now_ms(r->loop);
	char dir[PATH_MAX];

	for (size_t i = 0; i < r->n; i++) {
		struct project *p = r->v[i];
		size_t rl = strlen(p->root);
		const char *rel;
		bool quiet;

		if (ev->kind == WATCH_OVERFLOW) {
			if (ev->project == 0 || ev->project == p->id)
				project_overflow(r, p);
			continue;
		}
		if (ev->kind == WATCH_CONTENT) {
			if ((ev->project == 0 || ev->project == p->id) &&
			    r->git_changed != NULL)
				r->git_changed(r->git_arg, p->root, false);
			continue;
		}
		if (ev->kind == WATCH_WRITTEN && ev->path == NULL) {
			/* Written paths lost: the log cannot say which. */
			if (ev->project == 0 || ev->project == p->id)
				project_log_lost(r, p);
			continue;
		}
		if (ev->kind == WATCH_NOSPACE) {
			if ((ev->project == p->id || ev->project == 0) &&
			    p->watch == PROJECT_WATCHING) {
				char why[160];

				snprintf(why, sizeof(why), ev->project == 0 ?
				    "inotify stopped: it could not be started "
				    "again (the log says why)" : "inotify "
				    "watches ran out (fs.inotify.max_user_"
				    "watches, or --max-watches; raise it)");
				project_degrade(r, p, why);
			}
			continue;
		}
		if (ev->path == NULL || strncmp(ev->path, p->root, rl) != 0 ||
		    (ev->path[rl] != '/' && ev->path[rl] != '\0'))
			continue;
		if (ev->kind == WATCH_ROOT_GONE) {
			if (ev->path[rl] != '\0' || ev->project != p->id)
				continue;
			r->count.roots_gone++;
			/* A job running finds it gone too, and says so. */
			if (!p->walking)
				project_gone(r, p, "the root was deleted or "
				    "moved away; reindex brings it back if it "
				    "returns");
			continue;
		}
		if (ev->kind == WATCH_WRITTEN) {
			if (p->watch == PROJECT_WATCHING && ev->path[rl] != '\0')
				project_log(r, p, ev->path + rl + 1, false);
			continue;
		}
		if (ev->kind == WATCH_RESCAN && ev->project == p->id &&
		    p->watch == PROJECT_WATCHING) {
			/* Read again as a change of it; the root, whole. */
			r->count.rescans++;
			rel = ev->path[rl] == '\0' ? "" : ev->path + rl + 1;
			project_log(r, p, rel, true);
			if (!project_pending_add(r, p, rel))
				project_overflow(r, p);
			else
				project_schedule(r, p, true);
			continue;
		}
		if (ev->kind != WATCH_PATH || p->watch != PROJECT_WATCHING ||
		    ev->path[rl] == '\0')
			continue;
		rel = ev->path + rl + 1;
		/* Git's own files are not listed: they are the git cache's. */
		if (strncmp(rel, ".git", 4) == 0 &&
		    (rel[4] == '/' || rel[4] == '\0')) {
			if (r->git_changed != NULL)
				r->git_changed(r->git_arg, p->root, true);
			continue;
		}
		if (r->git_changed != NULL)
			r->git_changed(r->git_arg, p->root, false);
		project_log(r, p, rel, ev->dir);
		rel = project_rules_dir(rel, dir, sizeof(dir));
		quiet = now - p->last_event_ms >= PROJECT_QUIET_MS;
		p->last_event_ms = now;
		if (!project_pending_add(r, p, rel)) {
			project_overflow(r, p);
			continue;
		}
		project_schedule(r, p, quiet);
	}
}

size_t
project_collect(struct project_registry *r)
{
	struct project *p, *next, *done;
	uint64_t v;
	size_t n = 0;

	pthread_mutex_lock(&r->mu);
	done = r->done;
	r->done = NULL;
	if (read(r->efd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_warn("eventfd");
	pthread_mutex_unlock(&r->mu);
	for (p = done; p != NULL; p = next) {
		next = p->next;
		p->next = NULL;
		n++;
		pthread_mutex_lock(&r->mu);
		r->running--;
		pthread_mutex_unlock(&r->mu);
		p->walking = false;
		/*
		 * A walk running when the project was removed, degraded or
		 * gone may have asked for watches after they were dropped.
		 * Only one that asked for any (a degraded project's periodic
		 * walks do not) can have taken a nested project's: else
		 * every such walk would walk that project again too.
		 */
		if ((p->removed || p->watch != PROJECT_WATCHING) &&
		    p->job_watches)
			project_watch_forget(r, p);
		if (p->removed) {
			project_free(p);
			continue;
		}
		index_snapshot_unref(p->base);
		p->base = NULL;
		if (p->delta)
			project_delta_apply(r, p);
		else
			project_apply(r, p);
		if (p->dirty)
			project_walk_start(r, p);
		else
			project_schedule(r, p, false);
	}
	return n;
}

size_t
project_walks(struct project_registry *r)
{
	return r->running;
}

uint64_t
project_reachable_gen(const struct project *p)
{
	/*
	 * Changes waiting become one delta after the job that runs, unless
	 * a walk comes next (dirty), which reads them anyway.
	 */
	if (p->walking)
		return p->dirty ? p->last_gen + 1 :
		    p->last_gen + (p->npending > 0);
	return p->done_gen + (p->npending > 0 && p->snap != NULL);
}
