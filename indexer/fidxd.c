/* fidxd.c - see fidxd.h. */
#include "fidxd.h"
#include "ops.h"
#include "search.h"
#include "work.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

static void
fidxd_visits_save(struct fidxd *d)
{
	struct fidx_err err = { "" };

	loop_timer_stop(d->loop, &d->visits_save);
	if (d->visits == NULL || d->visits_file[0] == '\0' ||
	    !visits_dirty(d->visits))
		return;
	if (visits_save(d->visits, d->visits_file, &err) == -1)
		log_warnx("%s", err.msg);
}

static void
fidxd_visits_due(struct loop *l, struct loop_timer *t)
{
	(void)l;
	fidxd_visits_save(t->arg);
}

void
fidxd_visits_touched(struct fidxd *d)
{
	/* The first unsaved visit sets the time; later ones ride along. */
	if (!loop_timer_armed(&d->visits_save))
		loop_timer_start(d->loop, &d->visits_save, FIDXD_VISITS_SAVE_MS,
		    0, fidxd_visits_due, d);
}

void
fidxd_stop(struct fidxd *d)
{
	d->stopping = true;
	if (d->server != NULL)
		server_refuse_new(d->server);
	loop_stop(d->loop);
}

static void
fidxd_signal(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct fidxd *d = io->arg;
	struct signalfd_siginfo si;

	(void)l;
	(void)events;
	while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
		log_info("signal %u: shutting down", si.ssi_signo);
		fidxd_stop(d);
	}
}

static void
fidxd_walks_done(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct fidxd *d = io->arg;

	(void)l;
	(void)events;
	/*
	 * No trim here: this turn did work, so the timer trims within
	 * FIDXD_TRIM_MS. One per collect (every watcher delta too) was
	 * ~8,000 in a 10-minute soak, 1 ms each on the loop.
	 */
	if (project_collect(&d->reg) == 0)
		return;
	ops_walks_done(d->ops);
}

static void
fidxd_git_changed(void *arg, const char *root, bool gitdir)
{
	struct fidxd *d = arg;

	ops_git_changed(d->ops, root, gitdir);
}

static void
fidxd_watch_events(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct fidxd *d = io->arg;
	struct watch_event ev[256];
	size_t n = watch_take(d->watch, ev, 256);

	(void)l;
	(void)events;
	for (size_t i = 0; i < n; i++) {
		if (ev[i].kind == WATCH_SYNC)
			ops_sync_arrived(d->ops, ev[i].cookie);
		else
			project_watch_event(&d->reg, &ev[i]);
		/*
		 * A sync's cookie may be among what was lost: every sync
		 * waits for the rebuilds the loss just started, which read
		 * the tree after it was asked.
		 */
		if (ev[i].kind == WATCH_OVERFLOW)
			ops_sync_arrived(d->ops, UINT64_MAX);
		free(ev[i].path);
	}
	/* A root gone, a sync's generation known: waits may be done. */
	ops_walks_done(d->ops);
}

/*
 * A name for this run, for change-log tokens: random, so a daemon
 * started again (whose sequence starts over) never honours a token of
 * one before it, and neither does another daemon on another socket.
 */
static void
fidxd_instance(char *buf, size_t size)
{
	uint64_t v = 0;
	struct timespec ts;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		v = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
		    ((uint64_t)getpid() << 16);
	}
	snprintf(buf, size, "%016llx", (unsigned long long)v);
}

static void
fidxd_lost(void *arg)
{
	fidxd_stop(arg);
}

/*
 * Gives malloc's free pages back to the kernel (FIDXD_TRIM_MS), timed
 * and counted for `stats`.
 */
static void
fidxd_trim(struct loop *l, struct loop_timer *t)
{
	struct fidxd *d = t->arg;
	struct timespec a, b;

	(void)l;
	clock_gettime(CLOCK_MONOTONIC, &a);
	malloc_trim(0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	d->trims++;
	d->trim_us += (uint64_t)(((int64_t)b.tv_sec - a.tv_sec) * 1000000 +
	    ((int64_t)b.tv_nsec - a.tv_nsec) / 1000);
	d->trim_ran = true;
}

/* The one step after every turn: dead clients go; a trim is planned. */
static void
fidxd_before_sleep(struct loop *l, void *arg)
{
	struct fidxd *d = arg;

	(void)l;
	server_reap(d->server);
	/*
	 * A turn did work: trim within FIDXD_TRIM_MS. Not after the trim's
	 * own turn, so an idle daemon sleeps.
	 */
	if (d->trim_ran)
		d->trim_ran = false;
	else if (!loop_timer_armed(&d->trim))
		loop_timer_start(d->loop, &d->trim, FIDXD_TRIM_MS, 0,
		    fidxd_trim, d);
}

int
fidxd_init(struct fidxd *d, const struct fidxd_config *cfg, int lfd,
    int sigfd, struct fidx_err *err)
{
	struct server_handler h = { ops_line, ops_waiting, ops_gone,
	    fidxd_lost, NULL, d, ops_closed };

	memset(d, 0, sizeof(*d));
	d->sigfd = sigfd;
	d->wait_ms = cfg->wait_ms;
	clock_gettime(CLOCK_MONOTONIC, &d->started);
	if ((d->loop = loop_new()) == NULL) {
		fidx_error(err, "epoll: %s", strerror(errno));
		goto fail;
	}
	/*
	 * First: libinotifytools select()s on its fd, which must be below
	 * 1024 (watch.h). Without inotify, projects are degraded, not lost.
	 */
	struct fidx_err werr = { "" };
	char why[sizeof(werr.msg) + 64];

	if ((d->watch = watch_new(&(struct watch_limits){
	    cfg->proj.max_pending, cfg->proj.max_watches }, &werr)) == NULL) {
		snprintf(why, sizeof(why), "not watched (%s)", werr.msg);
		log_warnx("%s", why);
	}
	if (project_registry_init(&d->reg, &cfg->proj, d->loop, d->watch,
	    d->watch == NULL ? why : NULL, err) == -1)
		goto fail;
	d->reg_ok = true;
	if ((d->changes = changelog_new(&cfg->changes)) == NULL) {
		fidx_error(err, "the change log: %s", strerror(errno));
		goto fail;
	}
	d->reg.log = d->changes;
	fidxd_instance(d->instance, sizeof(d->instance));
	if ((d->pool = search_pool_new(cfg->threads, cfg->worker_nice,
	    err)) == NULL ||
	    (d->loop_pool = search_pool_new(1, 0, err)) == NULL)
		goto fail;
	d->inline_max_files = cfg->inline_max_files;
	d->narrow_bytes = cfg->narrow_bytes;
	d->narrow_total_bytes = cfg->narrow_total_bytes;
	/*
	 * One worker: it drives every scoring thread, so a second would only
	 * split them. Its priority: see FIDXD_WORKER_NICE.
	 */
	if ((d->work = work_pool_new(d->loop, &(struct work_limits){ 1,
	    cfg->max_queued_queries, cfg->worker_nice }, err)) == NULL)
		goto fail;
	if ((d->gitwork = work_pool_new(d->loop, &(struct work_limits){
	    FIDXD_GIT_WORKERS, cfg->git.max_projects, cfg->worker_nice },
	    err)) == NULL)
		goto fail;
	if ((d->git = gitcache_new(&cfg->git, d->loop)) == NULL) {
		fidx_error(err, "the git cache: %s", strerror(errno));
		goto fail;
	}
	d->reg.git_changed = fidxd_git_changed;
	d->reg.git_arg = d;
	if ((d->visits = visits_new(&cfg->visits)) == NULL) {
		fidx_error(err, "the visit store: %s", strerror(errno));
		goto fail;
	}
	if ((d->ops = ops_new(d)) == NULL) {
		fidx_error(err, "out of memory");
		goto fail;
	}
	if (loop_io_start(d->loop, &d->sig_io, sigfd, LOOP_READ,
	    fidxd_signal, d) == -1 ||
	    loop_io_start(d->loop, &d->walk_io, project_registry_fd(&d->reg),
	    LOOP_READ, fidxd_walks_done, d) == -1 ||
	    (d->watch != NULL && loop_io_start(d->loop, &d->watch_io,
	    watch_fd(d->watch), LOOP_READ, fidxd_watch_events, d) == -1)) {
		fidx_error(err, "epoll_ctl: %s", strerror(errno));
		goto fail;
	}
	h.arg = d->ops;
	/* lfd is the server's from here, even if it fails. */
	d->server = server_new(d->loop, lfd, cfg->sock_path,
	    cfg->sock_make_dir, &cfg->srv, &h, err);
	lfd = -1;
	if (d->server == NULL)
		goto fail;
	loop_before_sleep(d->loop, fidxd_before_sleep, d);

	/* A store that will not load is reported and starts empty. */
	if (cfg->visits_file != NULL && cfg->visits_file[0] != '\0') {
		struct fidx_err lerr = { "" };
		int n;

		if (strlen(cfg->visits_file) >= sizeof(d->visits_file)) {
			fidx_error(err, "the visits file path is too long");
			goto fail;
		}
		strcpy(d->visits_file, cfg->visits_file);
		/* A minute: a save takes milliseconds, so nobody's is that old. */
		if ((n = visits_remove_temps(d->visits_file, time(NULL),
		    FIDXD_VISITS_TEMP_AGE_S)) > 0)
			log_warnx("removed %d temporary file%s left by a save "
			    "of %s that did not finish", n, n == 1 ? "" : "s",
			    d->visits_file);
		if (visits_load(d->visits, d->visits_file, time(NULL),
		    &lerr) == -1) {
			struct visits_counts vc;
			bool done;

			visits_counts(d->visits, &vc);
			log_warnx("%s; %zu visits loaded; the file will be kept "
			    "as %s before the next save", lerr.msg, vc.loaded,
			    visits_aside(d->visits, &done));
		}
	}
	return 0;
fail:
	if (lfd != -1)
		close(lfd);
	fidxd_release(d);
	return -1;
}

int
fidxd_run(struct fidxd *d)
{
	int rc = loop_run(d->loop);

	if (rc == -1)
		log_warn("epoll_wait");
	fidxd_visits_save(d);
	/* Parked requests hear why; everyone gets what fits in the socket. */
	ops_stop(d->ops);
	/* Running queries stop; their clients hear it (done() answers). */
	work_pool_free(d->work);
	d->work = NULL;
	work_pool_free(d->gitwork);
	d->gitwork = NULL;
	server_flush_all(d->server);
	return rc;
}

void
fidxd_release(struct fidxd *d)
{
	/* Clients first: their parked requests belong to ops. */
	server_free(d->server);
	d->server = NULL;
	/* Then the jobs, whose done() calls need ops and the snapshots. */
	work_pool_free(d->work);
	d->work = NULL;
	work_pool_free(d->gitwork);
	d->gitwork = NULL;
	ops_free(d->ops);
	d->ops = NULL;
	if (d->loop != NULL) {
		loop_timer_stop(d->loop, &d->visits_save);
		loop_timer_stop(d->loop, &d->trim);
		loop_io_stop(d->loop, &d->sig_io);
		loop_io_stop(d->loop, &d->walk_io);
		loop_io_stop(d->loop, &d->watch_io);
	}
	search_pool_free(d->pool);
	search_pool_free(d->loop_pool);
	d->pool = d->loop_pool = NULL;
	visits_free(d->visits);
	d->visits = NULL;
	gitcache_free(d->git);
	d->git = NULL;
	if (d->reg_ok)
		project_registry_release(&d->reg);
	d->reg_ok = false;
	changelog_free(d->changes);
	d->changes = NULL;
	/* After the walkers, which may wait on it (watch_dir). */
	watch_free(d->watch);
	d->watch = NULL;
	if (d->sigfd != -1)
		close(d->sigfd);
	d->sigfd = -1;
	loop_free(d->loop);
	d->loop = NULL;
}
