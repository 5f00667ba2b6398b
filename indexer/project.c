/* project.c - see project.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "project.h"
#include "../common/alloc.h"

#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

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

static void
project_free(struct project *p)
{
	if (p == NULL)
		return;
	index_snapshot_unref(p->snap);
	index_snapshot_unref(p->result);
	pcre2_code_free(p->exclude);
	free(p->exclude_src);
	free(p->root);
	free(p);
}

/* Lets walk_run() stop at the next directory once the project is dropped. */
static int
project_walk_on_dir(void *arg, const char *rel, size_t len)
{
	struct project *p = arg;

	(void)rel;
	(void)len;
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

/* One walk, on a walker thread. Touches only the walk fields of p. */
static void
project_walk(struct project_registry *r, struct project *p)
{
	struct walk_opts o = {
		.hidden = p->hidden,
		.gitignore = true,
		.exclude = p->exclude,
		.on_dir = project_walk_on_dir,
		.arg = p,
		.threads = r->lim.walk_threads,
	};
	struct index_builder b;
	struct fidx_err err = { "" };

	p->result = NULL;
	p->result_errno = 0;
	p->result_msg[0] = '\0';
	index_builder_init(&b, r->lim.max_files, SIZE_MAX, &r->budget);
	if (walk_run(p->root, &o, &b, &p->wstats, &err) == -1) {
		p->result_errno = errno ? errno : EIO;
		snprintf(p->result_msg, sizeof(p->result_msg), "%s", err.msg);
		index_builder_release(&b);
		return;
	}
	if ((p->result = index_builder_finish(&b, p->walk_gen)) == NULL) {
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
    const struct project_limits *lim, struct fidx_err *err)
{
	memset(r, 0, sizeof(*r));
	r->lim = *lim;
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
static void
project_walk_start(struct project_registry *r, struct project *p)
{
	p->walking = true;
	p->dirty = false;
	p->walk_gen = ++p->last_gen;
	atomic_store(&p->cancel, false);
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
		    "remove one, or start fidxd with a larger --max-projects)",
		    r->lim.max_projects);
		return NULL;
	}
	if ((p = fidx_calloc(1, sizeof(*p))) == NULL ||
	    (p->root = fidx_strdup(root)) == NULL)
		goto nomem;
	p->hidden = opts->hidden;
	if (opts->exclude != NULL) {
		int code;
		PCRE2_SIZE off;

		p->exclude = pcre2_compile((PCRE2_SPTR)opts->exclude,
		    PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
		    &code, &off, NULL);
		if (p->exclude == NULL) {
			PCRE2_UCHAR msg[200];

			pcre2_get_error_message(code, msg, sizeof(msg));
			fidx_error(err, "bad exclude regex at offset %zu: %s",
			    (size_t)off, (char *)msg);
			project_free(p);
			errno = EINVAL;
			return NULL;
		}
		pcre2_jit_compile(p->exclude, PCRE2_JIT_COMPLETE);
		if ((p->exclude_src = fidx_strdup(opts->exclude)) == NULL)
			goto nomem;
	}
	atomic_init(&p->cancel, false);
	p->state = PROJECT_INDEXING;
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

void
project_remove(struct project_registry *r, struct project *p)
{
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

static void
project_apply(struct project_registry *r, struct project *p)
{
	struct project_counters *c = &r->count;
	int e = p->result_errno;

	p->done_gen = p->walk_gen;
	c->walk_unreadable += p->wstats.unreadable;
	c->walk_vanished += p->wstats.vanished;
	c->walk_symlinks_skipped += p->wstats.symlinks_skipped;
	c->walk_too_long += p->wstats.too_long;
	if (p->result != NULL) {
		index_snapshot_unref(p->snap);
		p->snap = p->result;
		p->result = NULL;
		p->state = p->snap->capped ? PROJECT_CAPPED : PROJECT_READY;
		p->message[0] = '\0';
		if (p->snap->capped) {
			c->rebuilds_capped++;
			snprintf(p->message, sizeof(p->message),
			    "the index stopped at a cap after %zu files "
			    "(--max-files %zu, --max-index-bytes %zu)",
			    p->snap->n, r->lim.max_files,
			    r->lim.max_index_bytes);
		}
		p->built_at = time(NULL);
		p->build_ms = project_ms_since(&p->walk_start);
		c->rebuilds++;
		return;
	}
	c->rebuilds_failed++;
	if (e == ENOENT || e == ENOTDIR || e == ELOOP) {
		/* Its files are gone too: keeping them would list ghosts. */
		index_snapshot_unref(p->snap);
		p->snap = NULL;
		p->state = PROJECT_GONE;
	} else {
		/* Keep the last good index: it is still mostly right. */
		p->state = PROJECT_ERROR;
	}
	snprintf(p->message, sizeof(p->message), "%s", p->result_msg);
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
		if (p->removed) {
			project_free(p);
			continue;
		}
		project_apply(r, p);
		if (p->dirty)
			project_walk_start(r, p);
	}
	return n;
}

size_t
project_walks(struct project_registry *r)
{
	return r->running;
}
