/* visits.c - see visits.h. */
#include "visits.h"
#include "../common/alloc.h"
#include "../common/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * Both hash tables (projects by root, a project's entries by path) are
 * open addressing with linear probing, at most half full, and delete by
 * shifting back the entries after the hole (no tombstones, so a table
 * that churns through evictions never fills with dead slots). Their items
 * start with a struct vnode, so one set of table routines serves both.
 */
struct vnode {
	uint64_t hash;
};

struct vtab {
	struct vnode **slots;		/* mask + 1 of them, or NULL */
	size_t mask;
	size_t n;
};

/* Slots of a table's first allocation. */
#define VTAB_MIN 8

struct visit {
	struct vnode node;		/* first: the project's table holds it */
	struct visits_project *proj;
	struct visit *older, *newer;	/* every entry, least recent first */
	struct visit *p_older, *p_newer;/* the project's entries, likewise */
	double w;			/* decayed visits at t_ref */
	int64_t t_ref;
	int64_t seen;			/* the last visit's time as given */
	size_t len;
	char path[];			/* len bytes, no NUL */
};

struct visits_project {
	struct vnode node;		/* first: the store's table holds it */
	struct vtab paths;
	struct visit *oldest, *newest;
	int64_t half_life_s;		/* a copy, so scoring needs no store */
	size_t root_len;
	char root[];			/* NUL-terminated */
};

struct visits {
	struct visits_limits lim;
	struct vtab projects;
	struct visit *oldest, *newest;
	size_t n;
	size_t bytes;
	uint64_t evicted, refused, load_errors, saves, save_errors;
	size_t loaded, bad_entries;	/* by the last load */
	bool dirty;
	bool aside_pending;		/* the loaded file goes to aside first */
	bool aside_done;		/* the last load's file is at aside now */
	char aside[PATH_MAX + 32];
};

static const char visits_header[] = "{\"fidx_visits\":1}\n";

/* jansson's default precision is 17 digits already: said, not assumed. */
#define VISITS_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(17))

/*
 * FNV-1a, then a 64-bit finalizer (MurmurHash3's): linear probing takes
 * the low bits, which FNV alone mixes poorly for paths sharing a prefix.
 */
static uint64_t
visits_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static size_t
vtab_bytes(const struct vtab *t)
{
	return t->slots == NULL ? 0 : (t->mask + 1) * sizeof(*t->slots);
}

/*
 * Makes room for n items at a load of at most 1/2. The table is
 * unchanged when the allocation fails, so callers can reserve first and
 * change nothing until every reservation has succeeded.
 */
static int
vtab_reserve(struct visits *v, struct vtab *t, size_t n)
{
	size_t cap = t->slots == NULL ? 0 : t->mask + 1;
	size_t ncap = cap == 0 ? VTAB_MIN : cap;
	struct vnode **ns;

	while (ncap / 2 < n)
		ncap *= 2;
	if (ncap == cap)
		return 0;
	if ((ns = fidx_calloc(ncap, sizeof(*ns))) == NULL)
		return -1;
	for (size_t i = 0; i < cap; i++) {
		size_t j;

		if (t->slots[i] == NULL)
			continue;
		for (j = t->slots[i]->hash & (ncap - 1); ns[j] != NULL;
		    j = (j + 1) & (ncap - 1))
			;
		ns[j] = t->slots[i];
	}
	v->bytes += (ncap - cap) * sizeof(*ns);
	free(t->slots);
	t->slots = ns;
	t->mask = ncap - 1;
	return 0;
}

/* Inserts x; vtab_reserve() made room. */
static void
vtab_put(struct vtab *t, struct vnode *x)
{
	size_t i;

	for (i = x->hash & t->mask; t->slots[i] != NULL; i = (i + 1) & t->mask)
		;
	t->slots[i] = x;
	t->n++;
}

/* Removes x (which the table holds), shifting its followers back. */
static void
vtab_del(struct vtab *t, const struct vnode *x)
{
	size_t i, j;

	for (i = x->hash & t->mask; t->slots[i] != x; i = (i + 1) & t->mask)
		;
	for (j = i;;) {
		size_t home;

		j = (j + 1) & t->mask;
		if (t->slots[j] == NULL)
			break;
		home = t->slots[j]->hash & t->mask;
		/* Stays if its home is cyclically in (i, j]: the hole is
		 * not on its probe path. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		t->slots[i] = t->slots[j];
		i = j;
	}
	t->slots[i] = NULL;
	t->n--;
}

static struct visits_project *
visits_find_project(const struct visits *v, const char *root, size_t len,
    uint64_t h)
{
	const struct vtab *t = &v->projects;

	if (t->slots == NULL)
		return NULL;
	for (size_t i = h & t->mask; t->slots[i] != NULL;
	    i = (i + 1) & t->mask) {
		struct visits_project *p =
		    (struct visits_project *)t->slots[i];

		if (p->node.hash == h && p->root_len == len &&
		    memcmp(p->root, root, len) == 0)
			return p;
	}
	return NULL;
}

static struct visit *
visits_find_path(const struct visits_project *p, const char *path,
    size_t len, uint64_t h)
{
	const struct vtab *t = &p->paths;

	for (size_t i = h & t->mask; t->slots[i] != NULL;
	    i = (i + 1) & t->mask) {
		struct visit *e = (struct visit *)t->slots[i];

		if (e->node.hash == h && e->len == len &&
		    memcmp(e->path, path, len) == 0)
			return e;
	}
	return NULL;
}

/* w at t_ref, seen from now; time running backwards counts as none. */
static double
visits_decay(double w, int64_t t_ref, int64_t now, int64_t half_life_s)
{
	if (now <= t_ref)
		return w;
	return w * exp2(-((double)now - (double)t_ref) / (double)half_life_s);
}

/* Puts e at the most recent end of both LRU lists. */
static void
visits_link(struct visits *v, struct visit *e)
{
	struct visits_project *p = e->proj;

	e->older = v->newest;
	e->newer = NULL;
	if (v->newest != NULL)
		v->newest->newer = e;
	else
		v->oldest = e;
	v->newest = e;
	e->p_older = p->newest;
	e->p_newer = NULL;
	if (p->newest != NULL)
		p->newest->p_newer = e;
	else
		p->oldest = e;
	p->newest = e;
}

static void
visits_unlink(struct visits *v, struct visit *e)
{
	struct visits_project *p = e->proj;

	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		v->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		v->newest = e->older;
	if (e->p_older != NULL)
		e->p_older->p_newer = e->p_newer;
	else
		p->oldest = e->p_newer;
	if (e->p_newer != NULL)
		e->p_newer->p_older = e->p_older;
	else
		p->newest = e->p_older;
}

static void
visits_drop_project(struct visits *v, struct visits_project *p)
{
	vtab_del(&v->projects, &p->node);
	v->bytes -= sizeof(*p) + p->root_len + 1 + vtab_bytes(&p->paths);
	free(p->paths.slots);
	free(p);
}

/*
 * Removes e for a bound, and its project when that was its last entry,
 * unless the project is keep (about to receive a new entry).
 */
static void
visits_evict(struct visits *v, struct visit *e,
    const struct visits_project *keep)
{
	struct visits_project *p = e->proj;

	visits_unlink(v, e);
	vtab_del(&p->paths, &e->node);
	v->n--;
	v->bytes -= sizeof(*e) + e->len;
	v->evicted++;
	free(e);
	if (p->paths.n == 0 && p != keep)
		visits_drop_project(v, p);
}

/*
 * Adds a new entry (the caller checked it is not there) to p, or to a new
 * project for root when p is NULL, making room by the LRU rule. Every
 * allocation comes first: on ENOMEM nothing has changed.
 */
static int
visits_insert(struct visits *v, struct visits_project *p, const char *root,
    size_t rlen, uint64_t rh, const char *path, size_t len, uint64_t ph,
    double w, int64_t t_ref, int64_t seen)
{
	struct visits_project *np = NULL;
	struct visit *e;
	bool full;

	if ((e = fidx_malloc(sizeof(*e) + len)) == NULL)
		return -1;
	if (p == NULL) {
		if ((np = fidx_calloc(1, sizeof(*np) + rlen + 1)) == NULL)
			goto fail;
		np->node.hash = rh;
		np->half_life_s = v->lim.half_life_s;
		np->root_len = rlen;
		memcpy(np->root, root, rlen);
		np->root[rlen] = '\0';
		if (vtab_reserve(v, &np->paths, 1) == -1 ||
		    vtab_reserve(v, &v->projects, v->projects.n + 1) == -1)
			goto fail;
		p = np;
	}
	full = p->paths.n >= v->lim.per_project;
	if (!full && vtab_reserve(v, &p->paths, p->paths.n + 1) == -1)
		goto fail;

	/* Nothing can fail from here on. */
	if (np != NULL) {
		vtab_put(&v->projects, &np->node);
		v->bytes += sizeof(*np) + rlen + 1;
	}
	if (full)
		visits_evict(v, p->oldest, p);
	else if (v->n >= v->lim.total)
		visits_evict(v, v->oldest, p);
	e->node.hash = ph;
	e->proj = p;
	e->w = w;
	e->t_ref = t_ref;
	e->seen = seen;
	e->len = len;
	memcpy(e->path, path, len);
	vtab_put(&p->paths, &e->node);
	visits_link(v, e);
	v->n++;
	v->bytes += sizeof(*e) + len;
	return 0;
fail:
	if (np != NULL) {
		v->bytes -= vtab_bytes(&np->paths);
		free(np->paths.slots);
		free(np);
	}
	free(e);
	errno = ENOMEM;
	return -1;
}

/* Frees every entry and project; the limits and counters stay. */
static void
visits_clear(struct visits *v)
{
	struct visit *e, *next;

	for (e = v->oldest; e != NULL; e = next) {
		next = e->newer;
		free(e);
	}
	for (size_t i = 0; v->projects.slots != NULL &&
	    i <= v->projects.mask; i++) {
		struct visits_project *p =
		    (struct visits_project *)v->projects.slots[i];

		if (p != NULL) {
			free(p->paths.slots);
			free(p);
		}
	}
	free(v->projects.slots);
	memset(&v->projects, 0, sizeof(v->projects));
	v->oldest = v->newest = NULL;
	v->n = 0;
	v->bytes = sizeof(*v);
}

/*
 * True when path is in the form visits_path_clean() gives: no empty, "."
 * or ".." component, no leading or trailing slash. The store holds only
 * such paths, so one file has one entry and none points outside its root.
 */
static bool
visits_path_canonical(const char *path, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return false;
	while (i <= len) {
		size_t j = i;

		while (j < len && path[j] != '/')
			j++;
		if (j == i || (j - i == 1 && path[i] == '.') ||
		    (j - i == 2 && path[i] == '.' && path[i + 1] == '.'))
			return false;
		i = j + 1;
	}
	return true;
}

static bool
visits_root_ok(const char *root, size_t len)
{
	/* Lexically clean too, as a realpath() is: "/a/../b" is no root. */
	return len > 0 && len <= VISITS_MAX_PATH && root[0] == '/' &&
	    (len == 1 || visits_path_canonical(root + 1, len - 1)) &&
	    proto_utf8_valid(root, len);
}

static bool
visits_path_ok(const char *path, size_t len)
{
	return len > 0 && len <= VISITS_MAX_PATH &&
	    memchr(path, '\0', len) == NULL &&
	    visits_path_canonical(path, len);
}

/*
 * Appends the components of path[0, len) to out[0, *n), each "." and
 * empty one dropped, each ".." taking back the one before it. A ".." with
 * nothing left to take back is -1, unless at_top (an absolute path,
 * where "/.." is "/", as for the kernel).
 */
static int
visits_path_fold(const char *path, size_t len, bool at_top, char *out,
    size_t *n)
{
	for (size_t i = 0; i < len;) {
		size_t j = i;

		while (j < len && path[j] != '/')
			j++;
		if (j == i || (j - i == 1 && path[i] == '.')) {
			/* "//" or "/./": nothing */
		} else if (j - i == 2 && path[i] == '.' && path[i + 1] == '.') {
			if (*n == 0 && !at_top)
				return -1;
			while (*n > 0 && out[*n - 1] != '/')
				(*n)--;
			if (*n > 0)
				(*n)--;
		} else {
			if (*n > 0)
				out[(*n)++] = '/';
			memmove(out + *n, path + i, j - i);
			*n += j - i;
		}
		i = j + 1;
	}
	return 0;
}

int
visits_path_clean(const char *root, const char *path, size_t len,
    char *out, size_t *outlen, struct fidx_err *err)
{
	size_t rlen = strlen(root), n = 0;

	errno = EINVAL;
	if (len == 0)
		return fidx_error(err, "the path is empty");
	if (memchr(path, '\0', len) != NULL)
		return fidx_error(err, "the path holds a NUL byte");
	if (path[0] != '/') {
		if (visits_path_fold(path, len, false, out, &n) == -1)
			return fidx_error(err, "%.*s leaves the root (too many "
			    "\"..\")", (int)len, path);
	} else {
		/* Cleaned whole first, so "/root/../etc" is not under root. */
		if (visits_path_fold(path, len, true, out, &n) == -1)
			return -1;
		while (rlen > 0 && root[rlen - 1] == '/')
			rlen--;
		/* out is path without its leading slash; so is root + 1. */
		if (rlen > 0 && (n < rlen - 1 ||
		    memcmp(out, root + 1, rlen - 1) != 0 ||
		    (n > rlen - 1 && out[rlen - 1] != '/')))
			return fidx_error(err, "%.*s is not under the root %s",
			    (int)len, path, root);
		if (rlen > 0 && n == rlen - 1) {
			n = 0;
		} else if (rlen > 0) {
			n -= rlen;
			memmove(out, out + rlen, n);
		}
	}
	if (n == 0)
		return fidx_error(err, "%.*s names the root itself, not a "
		    "file under it", (int)len, path);
	*outlen = n;
	return 0;
}

void
visits_limits_default(struct visits_limits *lim)
{
	lim->per_project = VISITS_PER_PROJECT_DEFAULT;
	lim->total = VISITS_TOTAL_DEFAULT;
	lim->half_life_s = VISITS_HALF_LIFE_DEFAULT;
	lim->max_file_bytes = VISITS_MAX_FILE_DEFAULT;
}

void
visits_limits(const struct visits *v, struct visits_limits *lim)
{
	*lim = v->lim;
}

struct visits *
visits_new(const struct visits_limits *lim)
{
	struct visits *v;

	if (lim->per_project == 0 ||
	    lim->per_project > VISITS_ENTRIES_CEILING || lim->total == 0 ||
	    lim->total > VISITS_ENTRIES_CEILING || lim->half_life_s <= 0 ||
	    lim->max_file_bytes < VISITS_MAX_FILE_MIN) {
		errno = EINVAL;
		return NULL;
	}
	if ((v = fidx_calloc(1, sizeof(*v))) == NULL)
		return NULL;
	v->lim = *lim;
	v->bytes = sizeof(*v);
	return v;
}

void
visits_free(struct visits *v)
{
	if (v == NULL)
		return;
	visits_clear(v);
	free(v);
}

int
visits_add(struct visits *v, const char *root, const char *path,
    size_t len, int64_t now)
{
	size_t rlen = strnlen(root, VISITS_MAX_PATH + 1);
	struct visits_project *p;
	struct visit *e;
	uint64_t rh, ph;

	if (!visits_root_ok(root, rlen) || !visits_path_ok(path, len)) {
		v->refused++;
		errno = EINVAL;
		return -1;
	}
	rh = visits_hash(root, rlen);
	ph = visits_hash(path, len);
	p = visits_find_project(v, root, rlen, rh);
	if (p != NULL && (e = visits_find_path(p, path, len, ph)) != NULL) {
		e->w = visits_decay(e->w, e->t_ref, now, v->lim.half_life_s) +
		    1;
		if (now > e->t_ref)
			e->t_ref = now;
		e->seen = now;
		visits_unlink(v, e);
		visits_link(v, e);
		v->dirty = true;
		return 0;
	}
	if (visits_insert(v, p, root, rlen, rh, path, len, ph, 1.0, now,
	    now) == -1)
		return -1;
	v->dirty = true;
	return 0;
}

const struct visits_project *
visits_project(const struct visits *v, const char *root)
{
	size_t rlen = strnlen(root, VISITS_MAX_PATH + 1);

	if (rlen > VISITS_MAX_PATH)
		return NULL;
	return visits_find_project(v, root, rlen, visits_hash(root, rlen));
}

double
visits_project_score(const struct visits_project *p, const char *path,
    size_t len, int64_t now)
{
	const struct visit *e;

	if (p == NULL ||
	    (e = visits_find_path(p, path, len, visits_hash(path, len))) ==
	    NULL)
		return 0;
	return visits_decay(e->w, e->t_ref, now, p->half_life_s);
}

struct visits_view_slot {
	uint64_t hash;
	const char *path;		/* in bytes, or NULL: an empty slot */
	size_t len;
	double score;
};

struct visits_view {
	size_t mask;
	struct visits_view_slot *slots;
	char *bytes;
};

struct visits_view *
visits_view_new(const struct visits_project *p, int64_t now)
{
	struct visits_view *v;
	const struct visit *e;
	size_t n = 0, nbytes = 0, cap = 8, off = 0;

	errno = 0;
	if (p == NULL)
		return NULL;
	for (e = p->oldest; e != NULL; e = e->p_newer) {
		n++;
		nbytes += e->len;
	}
	while (cap < 2 * n)		/* at most half full, as the store */
		cap *= 2;
	if ((v = fidx_calloc(1, sizeof(*v))) == NULL ||
	    (v->slots = fidx_calloc(cap, sizeof(*v->slots))) == NULL ||
	    (v->bytes = fidx_malloc(nbytes ? nbytes : 1)) == NULL) {
		visits_view_free(v);
		errno = ENOMEM;
		return NULL;
	}
	v->mask = cap - 1;
	for (e = p->oldest; e != NULL; e = e->p_newer) {
		size_t i = (size_t)e->node.hash & v->mask;

		while (v->slots[i].path != NULL)
			i = (i + 1) & v->mask;
		memcpy(v->bytes + off, e->path, e->len);
		v->slots[i] = (struct visits_view_slot){ e->node.hash,
		    v->bytes + off, e->len, visits_decay(e->w, e->t_ref, now,
		    p->half_life_s) };
		off += e->len;
	}
	return v;
}

double
visits_view_score(const struct visits_view *v, const char *path, size_t len)
{
	uint64_t h;
	size_t i;

	if (v == NULL)
		return 0;
	h = visits_hash(path, len);
	for (i = (size_t)h & v->mask; v->slots[i].path != NULL;
	    i = (i + 1) & v->mask)
		if (v->slots[i].hash == h && v->slots[i].len == len &&
		    memcmp(v->slots[i].path, path, len) == 0)
			return v->slots[i].score;
	return 0;
}

void
visits_view_free(struct visits_view *v)
{
	if (v == NULL)
		return;
	free(v->slots);
	free(v->bytes);
	free(v);
}

double
visits_score(const struct visits *v, const char *root, const char *path,
    size_t len, int64_t now)
{
	return visits_project_score(visits_project(v, root), path, len, now);
}

void
visits_counts(const struct visits *v, struct visits_counts *c)
{
	c->entries = v->n;
	c->projects = v->projects.n;
	c->bytes = v->bytes;
	c->evicted = v->evicted;
	c->refused = v->refused;
	c->load_errors = v->load_errors;
	c->saves = v->saves;
	c->save_errors = v->save_errors;
	c->loaded = v->loaded;
	c->bad_entries = v->bad_entries;
}

const char *
visits_aside(const struct visits *v, bool *done)
{
	*done = v->aside_done;
	return v->aside_pending || v->aside_done ? v->aside : NULL;
}

bool
visits_dirty(const struct visits *v)
{
	return v->dirty;
}

/* One entry as its line's object; NULL when out of memory. */
static json_t *
visits_entry_json(const struct visit *e)
{
	json_t *o;
	char *b64;
	size_t blen;
	int rc;

	if ((o = json_object()) == NULL)
		return NULL;
	/* The root was checked for UTF-8 when it came in. */
	if (json_object_set_new(o, "root", json_stringn_nocheck(e->proj->root,
	    e->proj->root_len)) == -1)
		goto fail;
	if (proto_utf8_valid(e->path, e->len)) {
		rc = json_object_set_new(o, "path",
		    json_stringn_nocheck(e->path, e->len));
	} else {
		if ((b64 = proto_base64_encode(e->path, e->len, &blen)) == NULL)
			goto fail;
		rc = json_object_set_new(o, "path_b64",
		    json_stringn_nocheck(b64, blen));
		free(b64);
	}
	if (rc == -1 ||
	    json_object_set_new(o, "w", json_real(e->w)) == -1 ||
	    json_object_set_new(o, "t", json_integer(e->t_ref)) == -1 ||
	    json_object_set_new(o, "seen", json_integer(e->seen)) == -1)
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* Bytes of e's line, newline included; 0 when out of memory. */
static size_t
visits_entry_size(const struct visit *e)
{
	json_t *o = visits_entry_json(e);
	size_t n;

	if (o == NULL)
		return 0;
	n = json_dumpb(o, NULL, 0, VISITS_JSON_FLAGS);
	json_decref(o);
	return n == 0 ? 0 : n + 1;
}

static int
visits_entry_write(const struct visit *e, FILE *f)
{
	json_t *o = visits_entry_json(e);
	int rc;

	if (o == NULL) {
		errno = ENOMEM;
		return -1;
	}
	rc = json_dumpf(o, f, VISITS_JSON_FLAGS);
	json_decref(o);
	if (rc == -1 || putc('\n', f) == EOF)
		return -1;
	return 0;
}

/* Makes file's directory's entries durable (the rename); best effort. */
static void
visits_sync_dir(const char *file)
{
	const char *slash = strrchr(file, '/');
	char dir[PATH_MAX];
	int fd;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if ((size_t)(slash - file) >= sizeof(dir))
		return;
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == file ? 1 :
		    (int)(slash - file), file);
	/* Some file systems refuse fsync on a directory: nothing to do. */
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	(void)fsync(fd);
	close(fd);
}

/*
 * Keeps the file the last load could not take whole under v->aside (a
 * free name: ".N" is added when it is taken) before a save replaces it.
 * A hard link, so a crash before the rename still leaves the file where
 * it was; a rename that never replaces where links are refused. A file
 * already gone has nothing to keep. Returns 0, or -1 with err: then the
 * save must not go on.
 */
static int
visits_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Makes room for one more kept copy of file: of "<file>.corrupt-*"
 * beside it, the oldest (their names sort by time) go until fewer than
 * VISITS_ASIDE_KEEP are left, so damaged files cannot fill the disk.
 * Best effort: what cannot be listed or removed stays.
 */
static void
visits_prune_aside(const char *file)
{
	char dir[PATH_MAX], prefix[NAME_MAX + 16], path[PATH_MAX];
	const char *slash = strrchr(file, '/');
	char *names[VISITS_ASIDE_SCAN];
	size_t n = 0, plen;
	struct dirent *e;
	DIR *d;

	if (slash == NULL || (size_t)(slash - file) >= sizeof(dir) ||
	    strlen(slash + 1) + 9 >= sizeof(prefix))
		return;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file), file);
	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s.corrupt-",
	    slash + 1);
	if ((d = opendir(dir[0] != '\0' ? dir : "/")) == NULL)
		return;
	while ((e = readdir(d)) != NULL && n < VISITS_ASIDE_SCAN)
		if (strncmp(e->d_name, prefix, plen) == 0 &&
		    (names[n] = fidx_strdup(e->d_name)) != NULL)
			n++;
	closedir(d);
	qsort(names, n, sizeof(names[0]), visits_name_cmp);
	for (size_t i = 0; i < n; i++) {
		if (n - i >= VISITS_ASIDE_KEEP &&
		    (size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    names[i]) < sizeof(path) && unlink(path) == -1)
			log_warn("cannot remove an old copy, %s", path);
		free(names[i]);
	}
}

static int
visits_set_aside(struct visits *v, const char *file, struct fidx_err *err)
{
	char name[sizeof(v->aside)];
	int rc = -1, n;

	visits_prune_aside(file);
	for (int i = 1; i <= 100; i++) {
		n = i == 1 ? snprintf(name, sizeof(name), "%s", v->aside) :
		    snprintf(name, sizeof(name), "%s.%d", v->aside, i);
		if (n < 0 || (size_t)n >= sizeof(name)) {
			errno = ENAMETOOLONG;
			break;
		}
		if ((rc = link(file, name)) == -1 && errno != EEXIST &&
		    errno != ENOENT)
			rc = renameat2(AT_FDCWD, file, AT_FDCWD, name,
			    RENAME_NOREPLACE);
		if (rc == 0 || errno != EEXIST)
			break;
	}
	if (rc == -1 && errno == ENOENT) {
		v->aside_pending = false;
		return 0;
	}
	if (rc == -1)
		return fidx_error(err, "cannot save visits to %s: the file "
		    "that did not load could not be kept as %s, so it is "
		    "left as it is: %s", file, v->aside, strerror(errno));
	memcpy(v->aside, name, (size_t)n + 1);
	v->aside_pending = false;
	v->aside_done = true;
	return 0;
}

/* True for NAME = BASE "." and mkostemp's six letters or digits. */
static bool
visits_is_temp(const char *name, const char *base, size_t blen)
{
	if (strncmp(name, base, blen) != 0 || name[blen] != '.' ||
	    strlen(name + blen + 1) != 6)
		return false;
	for (const char *p = name + blen + 1; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

int
visits_remove_temps(const char *file, time_t now, int min_age_s)
{
	char dir[PATH_MAX], path[PATH_MAX];
	const char *slash = strrchr(file, '/');
	const char *base = slash != NULL ? slash + 1 : file;
	size_t blen = strlen(base);
	struct dirent *de;
	struct stat st;
	int n = 0;
	DIR *dp;

	if (slash == NULL)
		strcpy(dir, ".");
	else if ((size_t)(slash - file) >= sizeof(dir))
		return 0;
	else {
		memcpy(dir, file, (size_t)(slash - file));
		dir[slash - file] = '\0';
		if (dir[0] == '\0')
			strcpy(dir, "/");
	}
	if ((dp = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(dp)) != NULL) {
		if (!visits_is_temp(de->d_name, base, blen) ||
		    snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(path) || lstat(path, &st) == -1 ||
		    !S_ISREG(st.st_mode) || st.st_mtime > now - min_age_s)
			continue;
		if (unlink(path) == 0)
			n++;
	}
	closedir(dp);
	return n;
}

int
visits_save(struct visits *v, const char *file, struct fidx_err *err)
{
	char tmp[PATH_MAX + 8];
	struct visit *first = NULL, *e;
	size_t bytes = sizeof(visits_header) - 1;
	FILE *f = NULL;
	int fd = -1, saved, n;
	bool made = false;

	n = snprintf(tmp, sizeof(tmp), "%s.XXXXXX", file);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		fidx_error(err, "cannot save visits: %s is too long a path",
		    file);
		goto fail;
	}
	/*
	 * The newest entries that fit max_file_bytes: measured newest
	 * first, written oldest first from there.
	 */
	for (e = v->newest; e != NULL; e = e->older) {
		size_t line = visits_entry_size(e);

		if (line == 0) {
			errno = ENOMEM;
			fidx_error(err, "cannot save visits to %s: out of "
			    "memory", file);
			goto fail;
		}
		if (line > v->lim.max_file_bytes - bytes)
			break;
		bytes += line;
		first = e;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		fidx_error(err, "cannot save visits to %s: cannot create a "
		    "temporary file beside it: %s", file, strerror(errno));
		goto fail;
	}
	made = true;
	if ((f = fdopen(fd, "w")) == NULL) {
		fidx_error(err, "cannot save visits to %s: %s", file,
		    strerror(errno));
		goto fail;
	}
	if (fputs(visits_header, f) == EOF)
		goto fail_write;
	for (e = first; e != NULL; e = e->newer)
		if (visits_entry_write(e, f) == -1)
			goto fail_write;
	if (fflush(f) == EOF)
		goto fail_write;
	if (fsync(fd) == -1) {
		fidx_error(err, "cannot save visits to %s: fsync: %s", file,
		    strerror(errno));
		goto fail;
	}
	n = fclose(f);
	f = NULL;
	fd = -1;
	if (n == EOF)
		goto fail_write;
	if (v->aside_pending && visits_set_aside(v, file, err) == -1)
		goto fail;
	if (rename(tmp, file) == -1) {
		fidx_error(err, "cannot save visits to %s: rename: %s", file,
		    strerror(errno));
		goto fail;
	}
	visits_sync_dir(file);
	/* What did not fit the file is gone from memory too. */
	while (v->oldest != first)
		visits_evict(v, v->oldest, NULL);
	v->saves++;
	v->dirty = false;
	return 0;
fail_write:
	fidx_error(err, "cannot save visits to %s: write: %s", file,
	    errno == ENOMEM ? "out of memory" : strerror(errno));
fail:
	saved = errno;
	if (f != NULL)
		fclose(f);
	else if (fd != -1)
		close(fd);
	if (made)
		unlink(tmp);
	v->save_errors++;
	errno = saved;
	return -1;
}

/* A load error: err says file, line and why; errno is e. */
#define LOAD_FAIL(e, ...) do {					\
	errno = (e);							\
	fidx_error(err, __VA_ARGS__);					\
	goto fail;							\
} while (0)

static int
visits_load_header(const char *file, json_t *o, struct fidx_err *err)
{
	json_t *ver = json_object_get(o, "fidx_visits");

	if (!json_is_object(o) || !json_is_integer(ver))
		LOAD_FAIL(EINVAL, "%s line 1: not a fidx visits file (the "
		    "first line must be {\"fidx_visits\":1})", file);
	if (json_integer_value(ver) != 1)
		LOAD_FAIL(EINVAL, "%s line 1: fidx_visits version %lld, this "
		    "fidxd reads version 1", file, json_integer_value(ver));
	return 0;
fail:
	return -1;
}

static int
visits_load_entry(struct visits *v, const char *file, size_t line,
    json_t *o, struct fidx_err *err)
{
	json_t *jroot, *jpath, *jb64, *jw, *jt, *jseen;
	char buf[VISITS_MAX_PATH / 3 * 3 + 3], clean[VISITS_MAX_PATH];
	const char *root, *path;
	size_t rlen, len;
	struct fidx_err cerr;
	struct visits_project *p;
	uint64_t rh, ph;
	double w;

	if (!json_is_object(o))
		LOAD_FAIL(EINVAL, "%s line %zu: not a JSON object", file, line);
	jroot = json_object_get(o, "root");
	jpath = json_object_get(o, "path");
	jb64 = json_object_get(o, "path_b64");
	jw = json_object_get(o, "w");
	jt = json_object_get(o, "t");
	jseen = json_object_get(o, "seen");
	if (!json_is_string(jroot))
		LOAD_FAIL(EINVAL, "%s line %zu: \"root\" is missing or not a "
		    "string", file, line);
	root = json_string_value(jroot);
	rlen = json_string_length(jroot);
	/* jansson's strings are UTF-8 and, without JSON_ALLOW_NUL, NUL-free. */
	if (!visits_root_ok(root, rlen))
		LOAD_FAIL(EINVAL, "%s line %zu: \"root\" is not a clean "
		    "absolute path of 1 to %d bytes", file, line,
		    VISITS_MAX_PATH);
	if ((jpath != NULL) == (jb64 != NULL))
		LOAD_FAIL(EINVAL, "%s line %zu: want one of \"path\" and "
		    "\"path_b64\"", file, line);
	if (jpath != NULL) {
		if (!json_is_string(jpath))
			LOAD_FAIL(EINVAL, "%s line %zu: \"path\" is not a "
			    "string", file, line);
		path = json_string_value(jpath);
		len = json_string_length(jpath);
	} else {
		if (!json_is_string(jb64))
			LOAD_FAIL(EINVAL, "%s line %zu: \"path_b64\" is not a "
			    "string", file, line);
		if (json_string_length(jb64) > sizeof(buf) / 3 * 4 ||
		    proto_base64_decode(json_string_value(jb64),
		    json_string_length(jb64), buf, &len) == -1)
			LOAD_FAIL(EINVAL, "%s line %zu: \"path_b64\" is not "
			    "base64 of at most %d bytes", file, line,
			    VISITS_MAX_PATH);
		path = buf;
	}
	if (len == 0 || len > VISITS_MAX_PATH)
		LOAD_FAIL(EINVAL, "%s line %zu: the path is empty or longer "
		    "than %d bytes", file, line, VISITS_MAX_PATH);
	/* A hand-edited "../x" is held to the rule a visit op is. */
	if (visits_path_clean(root, path, len, clean, &len, &cerr) == -1)
		LOAD_FAIL(EINVAL, "%s line %zu: %s", file, line, cerr.msg);
	path = clean;
	if (!json_is_number(jw) || !((w = json_number_value(jw)) >= 0) ||
	    !isfinite(w))
		LOAD_FAIL(EINVAL, "%s line %zu: \"w\" is missing or not a "
		    "number >= 0", file, line);
	if (!json_is_integer(jt) || !json_is_integer(jseen))
		LOAD_FAIL(EINVAL, "%s line %zu: \"t\" and \"seen\" must be "
		    "integers (seconds)", file, line);
	rh = visits_hash(root, rlen);
	ph = visits_hash(path, len);
	p = visits_find_project(v, root, rlen, rh);
	if (p != NULL && visits_find_path(p, path, len, ph) != NULL)
		LOAD_FAIL(EINVAL, "%s line %zu: a second entry for the same "
		    "root and path", file, line);
	if (visits_insert(v, p, root, rlen, rh, path, len, ph, w,
	    json_integer_value(jt), json_integer_value(jseen)) == -1)
		LOAD_FAIL(ENOMEM, "%s line %zu: out of memory", file, line);
	return 0;
fail:
	return -1;
}

/* Reads all of fd (a regular file of size bytes) into *out. */
static int
visits_read(struct visits *v, const char *file, int fd, size_t size,
    char **out, size_t *outlen, struct fidx_err *err)
{
	char *buf;
	size_t got = 0;

	/* One byte more than fstat said, to see a file that grew. */
	if ((buf = fidx_malloc(size + 1)) == NULL)
		LOAD_FAIL(ENOMEM, "cannot load %s: out of memory", file);
	while (got < size + 1) {
		ssize_t r = read(fd, buf + got, size + 1 - got);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			fidx_error(err, "cannot read %s: %s", file,
			    strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (got > size) {
		if (got > v->lim.max_file_bytes)
			LOAD_FAIL(EFBIG, "%s is over the visits file limit of "
			    "%zu bytes; ignored", file, v->lim.max_file_bytes);
		LOAD_FAIL(EAGAIN, "%s changed while it was read", file);
	}
	*out = buf;
	*outlen = got;
	return 0;
fail:
	free(buf);
	return -1;
}

/*
 * Names where a file that did not load whole will be kept:
 * "<file>.corrupt-<UTC time of the load>", into v->aside.
 */
static void
visits_name_aside(struct visits *v, const char *file, int64_t now)
{
	time_t t = (time_t)now;
	char stamp[32] = "unknown";
	struct tm tm;

	if (gmtime_r(&t, &tm) != NULL)
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(v->aside, sizeof(v->aside), "%s.corrupt-%s", file, stamp);
	v->aside_pending = true;
	v->aside_done = false;
}

int
visits_load(struct visits *v, const char *file, int64_t now,
    struct fidx_err *err)
{
	char *buf = NULL, *s, *end;
	size_t len, line = 0;
	uint64_t evicted = v->evicted;
	struct fidx_err first = { "" };
	struct stat st;
	int fd, saved, first_errno = 0;

	visits_clear(v);
	v->dirty = false;
	v->loaded = v->bad_entries = 0;
	v->aside_pending = v->aside_done = false;
	v->aside[0] = '\0';
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		fidx_error(err, "cannot open %s: %s", file, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) == -1) {
		fidx_error(err, "cannot stat %s: %s", file, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode))
		LOAD_FAIL(EINVAL, "%s is not a regular file", file);
	if ((uintmax_t)st.st_size > v->lim.max_file_bytes)
		LOAD_FAIL(EFBIG, "%s is %jd bytes, over the visits file limit "
		    "of %zu; ignored", file, (intmax_t)st.st_size,
		    v->lim.max_file_bytes);
	if (visits_read(v, file, fd, (size_t)st.st_size, &buf, &len,
	    err) == -1)
		goto fail;
	for (s = buf, end = buf + len; s < end;) {
		char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl != NULL ? (size_t)(nl - s) : (size_t)(end - s);
		const char *ls = s;
		struct fidx_err lerr;
		json_error_t jerr;
		json_t *o;
		int rc, e;

		line++;
		s = nl != NULL ? nl + 1 : end;
		if ((o = json_loadb(ls, n, JSON_REJECT_DUPLICATES,
		    &jerr)) == NULL) {
			if (proto_json_oom(&jerr))
				LOAD_FAIL(ENOMEM, "%s line %zu: out of memory",
				    file, line);
			fidx_error(&lerr, "%s line %zu: bad JSON: %s", file,
			    line, jerr.text);
			rc = -1;
			e = EINVAL;
		} else {
			rc = line == 1 ? visits_load_header(file, o, &lerr) :
			    visits_load_entry(v, file, line, o, &lerr);
			e = errno;
			json_decref(o);
		}
		if (rc == 0)
			continue;
		/*
		 * A bad header: maybe not ours, maybe a later version's;
		 * nothing in it can be trusted. A bad entry is one line:
		 * the rest is kept (the format is a line per entry).
		 */
		if (e == ENOMEM || line == 1) {
			fidx_error(err, "%s", lerr.msg);
			errno = e;
			goto fail;
		}
		if (v->bad_entries++ == 0) {
			first = lerr;
			first_errno = e;
		}
	}
	if (line == 0)
		LOAD_FAIL(EINVAL, "%s line 1: empty file, not a fidx visits "
		    "file", file);
	free(buf);
	close(fd);
	v->loaded = v->n;
	/* Trimmed to the bounds: the file should be too. */
	v->dirty = v->evicted != evicted;
	if (v->bad_entries == 0)
		return 0;
	visits_name_aside(v, file, now);
	fidx_error(err, "%s; %zu bad line%s skipped", first.msg,
	    v->bad_entries, v->bad_entries == 1 ? "" : "s");
	v->load_errors++;
	errno = first_errno;
	return -1;
fail:
	saved = errno;
	free(buf);
	if (fd != -1)
		close(fd);
	visits_clear(v);
	v->dirty = false;
	v->loaded = v->bad_entries = 0;
	v->load_errors++;
	/* Whatever is there did not load: kept before a save replaces it. */
	visits_name_aside(v, file, now);
	errno = saved;
	return -1;
}

int
visits_default_file(char *buf, size_t size, struct fidx_err *err)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	const char *base, *sub;
	struct stat st;
	char *slash;
	int n;

	/* The XDG spec: a relative XDG_STATE_HOME is invalid, ignore it. */
	if (xdg != NULL && xdg[0] == '/') {
		base = xdg;
		sub = "fidx";
	} else if (home != NULL && home[0] == '/') {
		base = home;
		sub = ".local/state/fidx";
	} else {
		return fidx_error(err, "no place for the visits file: neither "
		    "XDG_STATE_HOME nor HOME is an absolute path");
	}
	n = snprintf(buf, size, "%s/%s/%s", base, sub, VISITS_FILE_NAME);
	if (n < 0 || (size_t)n >= size || (size_t)n >= PATH_MAX)
		return fidx_error(err, "the visits file path under %s is too "
		    "long", base);
	/*
	 * mkdir -p of the directory, 0700 as the XDG spec asks for the
	 * directories it creates; existing ones are left as they are.
	 */
	slash = strrchr(buf, '/');
	for (char *p = buf + 1; p <= slash; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) == -1 && errno != EEXIST) {
			fidx_error(err, "cannot create %s: %s", buf,
			    strerror(errno));
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	*slash = '\0';
	if (stat(buf, &st) == -1 || !S_ISDIR(st.st_mode)) {
		fidx_error(err, "%s is not a directory", buf);
		*slash = '/';
		return -1;
	}
	*slash = '/';
	return 0;
}
