/* watch.c - see watch.h. */
#include "watch.h"
#include "../common/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <inotifytools/inotify.h>
#include <inotifytools/inotifytools.h>

/*
 * libinotifytools forgets a watch only when inotify_rm_watch() succeeds,
 * and for a watch the kernel has already dropped (its directory deleted
 * or moved off the file system: IN_IGNORED) it fails with EINVAL; the
 * library then printed "Failed to remove watch" and kept its entry for
 * good, about 700 bytes per deleted directory (a soak deleting a few
 * directories a second grew the heap ~120 KiB a minute until the
 * library was started afresh). On the library's one inotify descriptor
 * EINVAL means only that the number names no watch, which is what
 * removing it was for: so this definition, to which the library's call
 * binds before libc's (the executable's symbols come first), says the
 * removal worked. The watcher's thread, through the library, is the
 * only caller in fidxd (its only inotify descriptor is the library's).
 */
int
inotify_rm_watch(int fd, int wd)
{
	long r = syscall(SYS_inotify_rm_watch, fd, wd);

	if (r == -1 && errno == EINVAL)
		return 0;
	return (int)r;
}

/*
 * What changes a listing: names made, gone or moved, and the root itself;
 * and a file written (a write, even one not closed yet) or its mode
 * changed, which changes no listing but git's status and what git's
 * file-system monitor hook must report.
 */
#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
    IN_DELETE_SELF | IN_MOVE_SELF | IN_CLOSE_WRITE | IN_MODIFY | \
    IN_ATTRIB | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
#define WATCH_WRITE (IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB)

/* Requests waiting for the thread; a walk thread past it waits. */
#define WATCH_RING 1024

/* Projects remembered as overflowed or out of watches until reported. */
#define WATCH_MARKS 64

/* What libinotifytools keeps per watch beside its path (an estimate). */
#define WATCH_LIB_OVERHEAD 128

struct watch_req {
	enum { WATCH_REQ_DIR, WATCH_REQ_FORGET } kind;
	uint32_t project;
	bool root;
	bool has_seen;
	char *path;			/* owned; with a trailing '/' */
	struct timespec seen;		/* mtime the walk saw, if has_seen */
};

/* One watched directory, in an open-addressing table keyed by wd. */
struct watch_ent {
	int wd;				/* 0: empty slot */
	uint32_t project;
	bool root;
	char *path;			/* owned; with a trailing '/' */
	size_t len;
};

struct watch_marks {
	uint32_t v[WATCH_MARKS];
	size_t n;
	bool all;			/* more than WATCH_MARKS, or no project */
};

struct watch {
	pthread_t tid;
	bool started;
	int efd;

	pthread_mutex_t mu;		/* everything up to `thread only` */
	pthread_cond_t cv;		/* ring space, requests done */
	struct watch_req ring[WATCH_RING];
	size_t rhead, rn;
	uint64_t seq_next, seq_done;	/* requests queued, and handled */
	bool stop;
	bool sleeping;			/* the thread waits for inotify */
	/*
	 * Both rings start over at slot 0 whenever they empty (watch_take),
	 * so the pages they have touched are those of their deepest backlog
	 * (st.queue_slots), not, slot after slot, of all max_events: 2 MiB
	 * each at the default, which bench/soak.sh saw grow RSS by 290
	 * KiB a minute as the head went round.
	 */
	struct watch_event *q;		/* max_events, a ring */
	size_t qcap, qhead, qn;
	struct watch_marks over;	/* overflowed, not yet reported */
	struct watch_marks content;	/* written to, not yet reported */
	/*
	 * Written paths, in their own ring (max_events long), so a storm of
	 * writes never overflows the queue of names made and gone (which
	 * would walk the project whole): past it they are lost, marked.
	 */
	struct watch_event *wq;
	size_t wqhead, wqn;
	struct watch_marks wlost;	/* written paths lost, not reported */
	struct watch_stats st;

	/* Thread only: */
	struct watch_ent *tab;
	size_t tcap, tn, path_bytes;
	struct watch_marks nospace;	/* projects refused a watch */
	int wake_wd;
	size_t max_watches;
	size_t stale;			/* dropped watches the library keeps */

	char wake_dir[PATH_MAX];	/* immutable after watch_new() */
	atomic_uint_least64_t cookie;
	atomic_uint_least64_t pokes;	/* names each wake file apart */
};

/* ---- the table (thread only) ---- */

static size_t
watch_slot(const struct watch *w, int wd)
{
	return ((size_t)wd * 0x9E3779B97F4A7C15ull) & (w->tcap - 1);
}

static struct watch_ent *
watch_find(struct watch *w, int wd)
{
	if (w->tcap == 0)
		return NULL;
	for (size_t i = watch_slot(w, wd);; i = (i + 1) & (w->tcap - 1)) {
		if (w->tab[i].wd == wd)
			return &w->tab[i];
		if (w->tab[i].wd == 0)
			return NULL;
	}
}

static int
watch_grow(struct watch *w)
{
	size_t ncap = w->tcap ? w->tcap * 2 : 1024;
	struct watch_ent *old = w->tab, *t;
	size_t ocap = w->tcap;

	if ((t = fidx_calloc(ncap, sizeof(*t))) == NULL)
		return -1;
	w->tab = t;
	w->tcap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].wd == 0)
			continue;
		size_t j = watch_slot(w, old[i].wd);

		while (w->tab[j].wd != 0)
			j = (j + 1) & (ncap - 1);
		w->tab[j] = old[i];
	}
	free(old);
	return 0;
}

/* Records wd; path is taken over. -1 when out of memory (path freed). */
static int
watch_put(struct watch *w, int wd, uint32_t project, bool root, char *path)
{
	struct watch_ent *e = watch_find(w, wd);

	if (e != NULL) {
		/* The same directory again (a rebuild), maybe renamed. */
		w->path_bytes -= e->len;
		free(e->path);
	} else {
		if ((w->tn + 1) * 2 > w->tcap && watch_grow(w) == -1) {
			free(path);
			return -1;
		}
		size_t i = watch_slot(w, wd);

		while (w->tab[i].wd != 0)
			i = (i + 1) & (w->tcap - 1);
		e = &w->tab[i];
		w->tn++;
	}
	e->wd = wd;
	e->project = project;
	e->root = root;
	e->path = path;
	e->len = strlen(path);
	w->path_bytes += e->len;
	return 0;
}

/*
 * Forgets wd here and in the library (linear probing: shift back). One
 * the kernel dropped (IN_IGNORED) the library forgets too, since our
 * inotify_rm_watch() above says yes; should the library still keep one
 * (a removal that failed otherwise), it is counted as stale, and
 * watch_restart() bounds those.
 */
static void
watch_del(struct watch *w, int wd)
{
	struct watch_ent *e = watch_find(w, wd);
	size_t i, j;

	if (e == NULL)
		return;

	if (!inotifytools_remove_watch_by_wd(wd))
		w->stale++;
	w->path_bytes -= e->len;
	free(e->path);
	e->path = NULL;
	w->tn--;
	i = (size_t)(e - w->tab);
	w->tab[i].wd = 0;
	for (j = (i + 1) & (w->tcap - 1); w->tab[j].wd != 0;
	    j = (j + 1) & (w->tcap - 1)) {
		size_t home = watch_slot(w, w->tab[j].wd);

		/* Move j back to i if its home is not in (i, j]. */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			w->tab[i] = w->tab[j];
			w->tab[j].wd = 0;
			i = j;
		}
	}
}

static void watch_event(struct watch *w, const struct inotify_event *ev);

/* Watches removed between two reads of what inotify has queued. */
#define WATCH_DEL_BATCH 1024

/* Handles every event inotify has queued now, without waiting. */
static void
watch_drain(struct watch *w)
{
	struct inotify_event *ev;
	size_t n = 0;

	for (ev = inotifytools_next_events(0, 1); ev != NULL;
	    ev = inotifytools_next_events(0, 1)) {
		watch_event(w, ev);
		n++;
	}
	pthread_mutex_lock(&w->mu);
	w->st.events += n;
	pthread_mutex_unlock(&w->mu);
}

/* Forgets every watch whose path starts with prefix, or of project. */
static void
watch_del_where(struct watch *w, const char *prefix, uint32_t project)
{
	size_t plen = prefix != NULL ? strlen(prefix) : 0, n = 0;
	int *wds;

	if (w->tn == 0 || (wds = fidx_reallocarray(NULL, w->tn,
	    sizeof(*wds))) == NULL)
		return;
	for (size_t i = 0; i < w->tcap; i++) {
		const struct watch_ent *e = &w->tab[i];

		if (e->wd != 0 && (prefix != NULL ?
		    strncmp(e->path, prefix, plen) == 0 :
		    e->project == project))
			wds[n++] = e->wd;
	}
	for (size_t i = 0; i < n; i++) {
		watch_del(w, wds[i]);
		/*
		 * Each removed watch queues an IN_IGNORED: read them as we
		 * go, or removing a big tree's watches fills the kernel's
		 * queue (max_queued_events, 16,384 by default) and every
		 * project is walked again for an overflow of our own making.
		 */
		if (i % WATCH_DEL_BATCH == WATCH_DEL_BATCH - 1)
			watch_drain(w);
	}
	free(wds);
}

static bool
watch_marked(const struct watch_marks *m, uint32_t project)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i] == project)
			return true;
	return m->all;
}

static void
watch_mark(struct watch_marks *m, uint32_t project)
{
	if (project == 0 || m->n == WATCH_MARKS)
		m->all = true;
	else if (!watch_marked(m, project))
		m->v[m->n++] = project;
}

/* ---- the queue to the loop ---- */

static void
watch_signal(struct watch *w)
{
	uint64_t one = 1;

	if (write(w->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_warn("watch: eventfd");
}

static char *
watch_join(const char *dir, size_t dlen, const char *name, bool slash)
{
	size_t nlen = strlen(name);
	char *p = fidx_malloc(dlen + nlen + 2);

	if (p == NULL)
		return NULL;
	memcpy(p, dir, dlen);
	memcpy(p + dlen, name, nlen);
	p[dlen + nlen] = slash ? '/' : '\0';
	p[dlen + nlen + slash] = '\0';
	return p;
}

/* Slot at (unwrapped) of a ring is about to be written: count it. */
static void
watch_touch(struct watch *w, size_t at)
{
	size_t slots = at >= w->qcap ? w->qcap : at + 1;

	if (slots > w->st.queue_slots)
		w->st.queue_slots = slots;
}

/*
 * Queues name in the watched directory dir (dlen bytes, its trailing '/'
 * included) as written, unless it is the newest queued already: a file
 * written in many calls costs one entry, and no allocation for the rest.
 */
static void
watch_push_written(struct watch *w, uint32_t project, const char *dir,
    size_t dlen, const char *name)
{
	bool was_empty;
	char *path;

	pthread_mutex_lock(&w->mu);
	if (w->wqn > 0) {
		const struct watch_event *last = &w->wq[(w->wqhead + w->wqn -
		    1) % w->qcap];

		if (last->project == project &&
		    strncmp(last->path, dir, dlen) == 0 &&
		    strcmp(last->path + dlen, name) == 0) {
			pthread_mutex_unlock(&w->mu);
			return;
		}
	}
	if ((path = watch_join(dir, dlen, name, false)) == NULL) {
		watch_mark(&w->wlost, project);
		w->st.written_lost++;
		pthread_mutex_unlock(&w->mu);
		watch_signal(w);
		return;
	}
	if (w->wqn == w->qcap) {
		watch_mark(&w->wlost, project);
		w->st.written_lost++;
		pthread_mutex_unlock(&w->mu);
		free(path);
		watch_signal(w);
		return;
	}
	was_empty = w->wqn == 0;
	watch_touch(w, w->wqhead + w->wqn);
	w->wq[(w->wqhead + w->wqn++) % w->qcap] = (struct watch_event){
		WATCH_WRITTEN, project, false, 0, path };
	w->st.written = w->wqn;
	if (w->wqn > w->st.written_peak)
		w->st.written_peak = w->wqn;
	pthread_mutex_unlock(&w->mu);
	if (was_empty)
		watch_signal(w);
}

/* Queues an event; path (or NULL) is taken over. */
static void
watch_push(struct watch *w, enum watch_kind kind, uint32_t project,
    char *path, bool dir, uint64_t cookie)
{
	bool was_empty;

	pthread_mutex_lock(&w->mu);
	if (w->qn == w->qcap) {
		/* Lost: the project is rebuilt whole (watch_take says so). */
		watch_mark(&w->over, kind == WATCH_SYNC ? 0 : project);
		w->st.overflows++;
		pthread_mutex_unlock(&w->mu);
		free(path);
		return;
	}
	was_empty = w->qn == 0;
	watch_touch(w, w->qhead + w->qn);
	w->q[(w->qhead + w->qn++) % w->qcap] = (struct watch_event){
		kind, project, dir, cookie, path };
	if (w->qn > w->st.queued_peak)
		w->st.queued_peak = w->qn;
	pthread_mutex_unlock(&w->mu);
	if (was_empty)
		watch_signal(w);
}

/* ---- the thread ---- */

/*
 * A directory the walk listed before its watch was in place: if it
 * changed in between (its mtime moved), it is read again. Only for a new
 * watch: one in place saw every change. (A directory that had changed
 * too recently for its mtime to tell a later change apart is not here:
 * the walk waits for its watch instead, project.c.)
 */
static void
watch_gap(struct watch *w, const struct watch_req *r)
{
	struct stat sb;
	char *path;

	if (!r->has_seen)
		return;
	if (stat(r->path, &sb) == 0 && sb.st_mtim.tv_sec == r->seen.tv_sec &&
	    sb.st_mtim.tv_nsec == r->seen.tv_nsec)
		return;
	if ((path = fidx_strndup(r->path, strlen(r->path) - 1)) != NULL)
		watch_push(w, WATCH_RESCAN, r->project, path, true, 0);
	else
		watch_push(w, WATCH_OVERFLOW, r->project, NULL, true, 0);
}

static void
watch_add(struct watch *w, struct watch_req *r)
{
	int wd;

	if (watch_marked(&w->nospace, r->project) && !w->nospace.all)
		goto out;
	/*
	 * Already watched (a rebuild walks every directory again): asking
	 * the library twice would orphan a copy of its entry. A name it
	 * still holds for a dropped watch (a directory deleted and made
	 * again) is moved aside, or the new watch would be found by the old
	 * one's number.
	 */
	if ((wd = inotifytools_wd_from_filename(r->path)) > 0) {
		struct watch_ent *e = watch_find(w, wd);
		char aside[64];

		if (e != NULL && strcmp(e->path, r->path) == 0) {
			e->project = r->project;
			e->root |= r->root;
			goto out;
		}
		snprintf(aside, sizeof(aside), "\x01stale/%d/", wd);
		inotifytools_set_filename_by_wd(wd, aside);
	}
	if (w->tn >= w->max_watches ||
	    inotifytools_watch_file(r->path, WATCH_MASK) == 0) {
		int e = w->tn >= w->max_watches ? ENOSPC :
		    inotifytools_error();

		if (e == ENOSPC) {
			/* Out of watches: the project is degraded, said once. */
			watch_mark(&w->nospace, r->project);
			pthread_mutex_lock(&w->mu);
			w->st.nospace++;
			pthread_mutex_unlock(&w->mu);
			watch_push(w, WATCH_NOSPACE, r->project, NULL, true, 0);
		} else if (e != ENOENT && e != ENOTDIR && e != EACCES) {
			log_warnx("watch %s: %s", r->path, strerror(e));
		}
		goto out;
	}
	if ((wd = inotifytools_wd_from_filename(r->path)) <= 0)
		goto out;
	watch_gap(w, r);
	if (watch_put(w, wd, r->project, r->root, r->path) == -1) {
		watch_push(w, WATCH_OVERFLOW, r->project, NULL, true, 0);
		r->path = NULL;
		return;
	}
	r->path = NULL;
	return;
out:
	free(r->path);
	r->path = NULL;
}

/* The table's share of stats (under mu). */
static void
watch_usage(struct watch *w)
{
	w->st.watches = w->tn;
	w->st.bytes = w->tcap * sizeof(*w->tab) + w->path_bytes +
	    (w->tn + w->stale) * WATCH_LIB_OVERHEAD +
	    2 * w->qcap * sizeof(*w->q);
}

/* Handles every request queued; true when asked to stop. */
static bool
watch_requests(struct watch *w)
{
	struct watch_req batch[64];
	size_t n;
	bool stop;

	for (;;) {
		pthread_mutex_lock(&w->mu);
		stop = w->stop;
		for (n = 0; n < 64 && w->rn > 0; n++) {
			batch[n] = w->ring[w->rhead];
			w->rhead = (w->rhead + 1) % WATCH_RING;
			w->rn--;
		}
		if (n > 0)
			pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		if (n == 0 || stop) {
			for (size_t i = 0; i < n; i++)
				free(batch[i].path);
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (batch[i].kind == WATCH_REQ_DIR) {
				watch_add(w, &batch[i]);
				continue;
			}
			watch_del_where(w, NULL, batch[i].project);
			for (size_t k = 0; k < w->nospace.n; k++)
				if (w->nospace.v[k] == batch[i].project)
					w->nospace.v[k] =
					    w->nospace.v[--w->nospace.n];
		}
		pthread_mutex_lock(&w->mu);
		w->seq_done += n;
		watch_usage(w);
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
	return stop;
}

static void
watch_event(struct watch *w, const struct inotify_event *ev)
{
	const struct watch_ent *e;
	const char *name = ev->len > 0 ? ev->name : "";
	bool dir = (ev->mask & IN_ISDIR) != 0;
	char *path;

	if (ev->mask & IN_Q_OVERFLOW) {
		/* The kernel's queue: anything may be lost, anywhere. */
		pthread_mutex_lock(&w->mu);
		watch_mark(&w->over, 0);
		w->st.overflows++;
		pthread_mutex_unlock(&w->mu);
		watch_signal(w);
		return;
	}
	if (ev->wd == w->wake_wd) {
		if ((ev->mask & IN_CREATE) && name[0] == 'c')
			watch_push(w, WATCH_SYNC, 0, NULL, false,
			    strtoull(name + 1, NULL, 10));
		return;
	}
	if ((e = watch_find(w, ev->wd)) == NULL)
		return;
	if (ev->mask & IN_IGNORED) {
		watch_del(w, ev->wd);
		return;
	}
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
		/* Any other directory's parent reports it by name. */
		if (e->root && (path = fidx_strndup(e->path, e->len - 1)) !=
		    NULL)
			watch_push(w, WATCH_ROOT_GONE, e->project, path, true,
			    0);
		return;
	}
	if (*name == '\0')
		return;
	uint32_t project = e->project;

	/*
	 * Only git's status cares, once per project (no queue, no path), and
	 * the change log, by path (its own ring). But ignore rules saved
	 * change what a directory lists: those go on. A directory's mode or
	 * times are nobody's business.
	 */
	if ((ev->mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM |
	    IN_MOVED_TO)) == 0 && (ev->mask & WATCH_WRITE) != 0 &&
	    ((ev->mask & IN_CLOSE_WRITE) == 0 ||
	    (strcmp(name, ".gitignore") != 0 && strcmp(name, ".ignore") != 0))) {
		bool was;

		if (dir)
			return;
		pthread_mutex_lock(&w->mu);
		was = w->content.n > 0 || w->content.all;
		watch_mark(&w->content, project);
		pthread_mutex_unlock(&w->mu);
		if (!was)
			watch_signal(w);
		watch_push_written(w, project, e->path, e->len, name);
		return;
	}

	/*
	 * A directory moved away keeps its watches, under a path that is no
	 * longer its own: they go, tree and all (one scan of the table). A
	 * deleted one's go by themselves, each with its IN_IGNORED: no scan,
	 * which for an `rm -r` of thousands of directories would be one per
	 * directory over every watch.
	 */
	if (dir && (ev->mask & IN_MOVED_FROM)) {
		if ((path = watch_join(e->path, e->len, name, true)) != NULL) {
			watch_del_where(w, path, 0);
			free(path);
		}
		/* e may have moved: the table changed. */
		if ((e = watch_find(w, ev->wd)) == NULL)
			return;
	}
	if ((path = watch_join(e->path, e->len, name, false)) == NULL) {
		watch_push(w, WATCH_OVERFLOW, project, NULL, false, 0);
		return;
	}
	watch_push(w, WATCH_PATH, project, path, dir, 0);
}

/*
 * Starts libinotifytools afresh once the watches it keeps for nothing
 * (stale) outnumber the live ones, so its table stays bounded by what is
 * watched: every watch goes, and every project is walked again (an
 * overflow), which watches its directories anew.
 * NEEDSWORK: the new inotify fd is the lowest free one, below 1024 only
 * while the daemon's clients leave one there (select(), watch.h).
 */
static int
watch_restart(struct watch *w)
{
	char slash[PATH_MAX + 2];

	if (w->stale < 4096 || w->stale < w->tn)
		return 0;
	log_warnx("watch: %zu watches dropped by the kernel are still held by "
	    "libinotifytools; starting it afresh (every project is walked "
	    "again)", w->stale);
	for (size_t i = 0; i < w->tcap; i++)
		free(w->tab[i].path);
	memset(w->tab, 0, w->tcap * sizeof(*w->tab));
	w->tn = w->path_bytes = w->stale = 0;
	w->nospace.n = 0;
	w->nospace.all = false;
	inotifytools_cleanup();
	snprintf(slash, sizeof(slash), "%s/", w->wake_dir);
	if (!inotifytools_initialize() ||
	    !inotifytools_watch_file(slash, IN_CREATE | IN_ONLYDIR) ||
	    (w->wake_wd = inotifytools_wd_from_filename(slash)) <= 0) {
		log_warnx("watch: inotify could not be started again: %s",
		    strerror(inotifytools_error()));
		return -1;
	}
	pthread_mutex_lock(&w->mu);
	watch_mark(&w->over, 0);
	w->st.restarts++;
	pthread_mutex_unlock(&w->mu);
	watch_signal(w);
	return 0;
}

/* How long the thread looks for more requests before it sleeps. */
#define WATCH_LINGER_US 2000

/*
 * The next inotify event, or NULL after a while with none. A walk sends
 * requests a few microseconds apart: the thread lingers (looking at
 * inotify without waiting, and at the ring) before it sleeps, since a
 * request to a sleeping thread costs a poke, a file made and removed.
 * Asleep only with no request waiting: one made after `sleeping` is set
 * sees it and pokes; one made before is found here.
 */
static struct inotify_event *
watch_wait(struct watch *w)
{
	struct inotify_event *ev;
	struct timespec pause = { 0, 100 * 1000 };
	bool sleep;

	for (int i = 0; i < WATCH_LINGER_US / 100; i++) {
		if ((ev = inotifytools_next_events(0, 1)) != NULL)
			return ev;
		pthread_mutex_lock(&w->mu);
		sleep = w->rn > 0 || w->stop;
		pthread_mutex_unlock(&w->mu);
		if (sleep)
			return NULL;	/* not to sleep: go and take them */
		nanosleep(&pause, NULL);
	}
	pthread_mutex_lock(&w->mu);
	w->sleeping = sleep = w->rn == 0 && !w->stop;
	pthread_mutex_unlock(&w->mu);
	/* Whole seconds; a request or a stop wakes it sooner. */
	ev = inotifytools_next_events(sleep ? 1 : 0, 1);
	pthread_mutex_lock(&w->mu);
	w->sleeping = false;
	pthread_mutex_unlock(&w->mu);
	return ev;
}

static void *
watch_main(void *arg)
{
	struct watch *w = arg;

	for (;;) {
		struct inotify_event *ev;
		size_t n = 0;

		if (watch_requests(w))
			break;
		ev = watch_wait(w);
		for (; ev != NULL; ev = inotifytools_next_events(0, 1)) {
			watch_event(w, ev);
			/* A walk waiting on its watch must not wait for a burst. */
			if (++n % 256 == 0 && watch_requests(w))
				return NULL;
		}
		pthread_mutex_lock(&w->mu);
		w->st.events += n;
		w->st.stale = w->stale;
		watch_usage(w);
		pthread_mutex_unlock(&w->mu);
		if (watch_restart(w) == -1) {
			/* Nothing is watched from here: every project says so. */
			watch_push(w, WATCH_NOSPACE, 0, NULL, false, 0);
			break;
		}
	}
	/*
	 * However it ends, nobody may wait on it any more: a walk waiting
	 * for a watch or for room in the ring is let go (watch_dir: -1).
	 */
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/*
 * Makes (and unlinks) a file in the wake directory: an event for the
 * thread. Each name once: two threads poking with one name at once would
 * have the second open() find the first's file, and make no event.
 */
static int
watch_poke(struct watch *w, const char *name)
{
	char p[PATH_MAX + 64];
	int fd;

	snprintf(p, sizeof(p), "%s/%s%llu", w->wake_dir, name,
	    (unsigned long long)atomic_fetch_add(&w->pokes, 1));
	if ((fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) == -1)
		return -1;
	close(fd);
	unlink(p);
	return 0;
}

/* ---- the API ---- */

struct watch *
watch_new(const struct watch_limits *lim, struct fidx_err *err)
{
	struct watch *w;
	const char *tmp = getenv("TMPDIR");
	char slash[PATH_MAX + 2];

	if ((w = fidx_calloc(1, sizeof(*w))) == NULL) {
		fidx_error(err, "out of memory");
		return NULL;
	}
	w->efd = -1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->qcap = lim->max_events > 0 ? lim->max_events : 1;
	w->st.max_events = w->qcap;
	w->max_watches = w->st.max_watches = lim->max_watches;
	if ((w->q = fidx_reallocarray(NULL, w->qcap, sizeof(*w->q))) == NULL ||
	    (w->wq = fidx_reallocarray(NULL, w->qcap, sizeof(*w->wq))) ==
	    NULL) {
		fidx_error(err, "out of memory");
		goto fail;
	}
	if ((w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		fidx_error(err, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (!inotifytools_initialize()) {
		fidx_error(err, "inotify: %s", strerror(inotifytools_error()));
		goto fail;
	}
	snprintf(w->wake_dir, sizeof(w->wake_dir), "%s/fidxd-watch.XXXXXX",
	    tmp != NULL && *tmp == '/' ? tmp : "/tmp");
	if (mkdtemp(w->wake_dir) == NULL) {
		fidx_error(err, "cannot make %s: %s", w->wake_dir,
		    strerror(errno));
		w->wake_dir[0] = '\0';
		goto fail_lib;
	}
	snprintf(slash, sizeof(slash), "%s/", w->wake_dir);
	if (!inotifytools_watch_file(slash, IN_CREATE | IN_ONLYDIR) ||
	    (w->wake_wd = inotifytools_wd_from_filename(slash)) <= 0) {
		fidx_error(err, "inotify on %s: %s", w->wake_dir,
		    strerror(inotifytools_error()));
		goto fail_lib;
	}
	if ((errno = pthread_create(&w->tid, NULL, watch_main, w)) != 0) {
		fidx_error(err, "cannot start the watcher: %s",
		    strerror(errno));
		goto fail_lib;
	}
	w->started = true;
	return w;
fail_lib:
	inotifytools_cleanup();
fail:
	watch_free(w);
	return NULL;
}

void
watch_free(struct watch *w)
{
	if (w == NULL)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		(void)watch_poke(w, "stop");
		pthread_join(w->tid, NULL);
		for (size_t i = 0; i < w->tcap; i++)
			free(w->tab[i].path);
		inotifytools_cleanup();
	}
	for (size_t i = 0; i < w->rn; i++)
		free(w->ring[(w->rhead + i) % WATCH_RING].path);
	for (size_t i = 0; i < w->qn; i++)
		free(w->q[(w->qhead + i) % w->qcap].path);
	for (size_t i = 0; i < w->wqn; i++)
		free(w->wq[(w->wqhead + i) % w->qcap].path);
	if (w->wake_dir[0] != '\0')
		rmdir(w->wake_dir);
	if (w->efd != -1)
		close(w->efd);
	free(w->tab);
	free(w->q);
	free(w->wq);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

int
watch_fd(const struct watch *w)
{
	return w->efd;
}

/* Queues r; waits while the ring is full. Returns its sequence, or 0. */
static uint64_t
watch_request(struct watch *w, const struct watch_req *r)
{
	bool poke;
	uint64_t seq;

	pthread_mutex_lock(&w->mu);
	while (!w->stop && w->rn == WATCH_RING)
		pthread_cond_wait(&w->cv, &w->mu);
	if (w->stop) {
		pthread_mutex_unlock(&w->mu);
		free(r->path);
		return 0;
	}
	w->ring[(w->rhead + w->rn++) % WATCH_RING] = *r;
	seq = ++w->seq_next;
	/*
	 * Asleep in select(), the thread needs an event to see this; awake,
	 * it finds it. One poke per sleep: a walk's thousands of requests
	 * would otherwise cost a file made and removed each.
	 */
	poke = w->sleeping;
	w->sleeping = false;
	pthread_mutex_unlock(&w->mu);
	if (poke)
		(void)watch_poke(w, "w");
	return seq;
}

int
watch_dir(struct watch *w, uint32_t project, const char *abs, bool root,
    bool wait, const struct timespec *seen)
{
	struct watch_req r = { WATCH_REQ_DIR, project, root, seen != NULL,
	    watch_join(abs, strlen(abs), "", true), { 0, 0 } };
	uint64_t seq;

	if (seen != NULL)
		r.seen = *seen;
	if (r.path == NULL)
		return -1;
	if ((seq = watch_request(w, &r)) == 0)
		return -1;
	if (!wait)
		return 0;
	pthread_mutex_lock(&w->mu);
	while (!w->stop && w->seq_done < seq)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

void
watch_forget(struct watch *w, uint32_t project)
{
	struct watch_req r = { WATCH_REQ_FORGET, project, false, false, NULL,
	    { 0, 0 } };

	(void)watch_request(w, &r);
}

uint64_t
watch_sync(struct watch *w)
{
	uint64_t c = atomic_fetch_add(&w->cookie, 1) + 1;
	char name[32];

	snprintf(name, sizeof(name), "c%llu.", (unsigned long long)c);
	return watch_poke(w, name) == 0 ? c : 0;
}

size_t
watch_take(struct watch *w, struct watch_event *out, size_t max)
{
	uint64_t v;
	size_t n = 0;

	if (read(w->efd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_warn("watch: eventfd");
	pthread_mutex_lock(&w->mu);
	/*
	 * Written paths first: each was read from inotify before anything
	 * queued after it, so a sync cookie never comes out ahead of one.
	 */
	while (n < max && w->wqn > 0) {
		out[n++] = w->wq[w->wqhead];
		w->wqhead = (w->wqhead + 1) % w->qcap;
		w->wqn--;
	}
	if (w->wqn == 0)
		w->wqhead = 0;
	w->st.written = w->wqn;
	if (w->wqn == 0) {
		if (w->wlost.all && n < max) {
			out[n++] = (struct watch_event){ WATCH_WRITTEN, 0,
			    false, 0, NULL };
			w->wlost.all = false;
			w->wlost.n = 0;
		}
		while (w->wlost.n > 0 && n < max)
			out[n++] = (struct watch_event){ WATCH_WRITTEN,
			    w->wlost.v[--w->wlost.n], false, 0, NULL };
	}
	while (n < max && w->qn > 0) {
		out[n++] = w->q[w->qhead];
		w->qhead = (w->qhead + 1) % w->qcap;
		w->qn--;
	}
	if (w->qn == 0)
		w->qhead = 0;
	/* Then what was lost, as one overflow per project, once room is made. */
	if (w->qn == 0) {
		if (w->over.all && n < max) {
			out[n++] = (struct watch_event){ WATCH_OVERFLOW, 0,
			    false, 0, NULL };
			w->over.all = false;
			w->over.n = 0;
		}
		while (w->over.n > 0 && n < max)
			out[n++] = (struct watch_event){ WATCH_OVERFLOW,
			    w->over.v[--w->over.n], false, 0, NULL };
	}
	/* Content marks may go any time: they carry no order. */
	if (w->content.all && n < max) {
		out[n++] = (struct watch_event){ WATCH_CONTENT, 0, false, 0,
		    NULL };
		w->content.all = false;
		w->content.n = 0;
	}
	while (w->content.n > 0 && n < max)
		out[n++] = (struct watch_event){ WATCH_CONTENT,
		    w->content.v[--w->content.n], false, 0, NULL };
	bool more = w->qn > 0 || w->over.n > 0 || w->over.all ||
	    w->content.n > 0 || w->content.all || w->wqn > 0 ||
	    w->wlost.n > 0 || w->wlost.all;

	pthread_mutex_unlock(&w->mu);
	if (more)
		watch_signal(w);
	return n;
}

void
watch_stats_get(struct watch *w, struct watch_stats *st)
{
	FILE *f;
	unsigned long long max = 0;

	pthread_mutex_lock(&w->mu);
	*st = w->st;
	st->queued = w->qn;
	pthread_mutex_unlock(&w->mu);
	if ((f = fopen("/proc/sys/fs/inotify/max_user_watches", "re")) !=
	    NULL) {
		if (fscanf(f, "%llu", &max) != 1)
			max = 0;
		fclose(f);
	}
	st->max_user_watches = (size_t)max;
}
