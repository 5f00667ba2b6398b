/*
 * ops_impl.h - what ops.c, ops_query.c and ops_git.c share; private to
 * them (ops.h is the module's face).
 *
 * Owns: nothing of its own: the request being handled (struct ops_req),
 * what is parked on a client (each kind starts with struct ops_parked),
 * and the helpers every op uses to read fields and answer.
 * Never touches: anything outside the ops module.
 *
 * ops.c: the op table, field readers, parking for an index, the small
 * ops; ops_query.c: the query op, run on the loop or on the worker,
 * supersede and cancel; ops_git.c: the git op and its cache.
 */
#ifndef FIDX_OPS_IMPL_H
#define FIDX_OPS_IMPL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/proto.h"
#include "../common/query.h"
#include "ops.h"

struct ops_gitwait;

/* Longest wait a request may ask for with "timeout_ms". */
#define OPS_WAIT_CEILING_MS 3600000


enum ops_id {
	OP_PING, OP_ADD, OP_REMOVE, OP_PROJECTS, OP_QUERY, OP_REINDEX,
	OP_STATS, OP_SHUTDOWN, OP_VISIT, OP_CANCEL, OP_GIT, OP_SYNC,
	OP_CHANGES,
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
	struct ops_narrow *narrows;	/* the sets clients hold (ops_query.c) */
	size_t narrow_bytes;		/* every set's, held by a client or a
					   query: against the total cap */
	size_t narrow_sets;
	uint64_t changes_answers;	/* the changes op's, and of them */
	uint64_t changes_all;		/* ... those that said everything */
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
	bool git;			/* each result's git status letters */
	bool boost_git;			/* "boost":"git" */
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
	uint64_t cookie;		/* OP_SYNC, OP_CHANGES: the watcher's,
					   until it arrives (then 0) */
	struct loop_timer deadline;
	struct ops_wait *prev, *next;
};

/* Why a parked request is looked at again. */
enum ops_why { OPS_CHECK, OPS_EXPIRED, OPS_STOPPING };


/* Answering (ops.c). */
void ops_send(struct ops_req *r, json_t *resp);
int ops_fail(struct ops_req *r, enum proto_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
json_t *ops_ok(struct ops_req *r);
json_t *ops_set(json_t *o, const char *key, json_t *v);
json_t *ops_set_in(json_t *o, const char *obj, const char *key, json_t *v);
json_t *ops_index_fields(json_t *o, const struct project *p);

/* Reading a request's fields: -1 after answering a bad one (ops.c). */
int ops_bool(struct ops_req *r, const char *key, bool def, bool *out);
int ops_int(struct ops_req *r, const char *key, json_int_t min,
    json_int_t max, json_int_t def, json_int_t *out);
int ops_string(struct ops_req *r, const char *key, bool required,
    const char **out, size_t *len);
int ops_root(struct ops_req *r, char *buf, struct project **p);
int ops_timeout(struct ops_req *r, json_int_t *ms);
bool ops_is_dir(const char *path);

/* Parking for an index (ops.c); q's text passes to the wait. */
void ops_park_one(struct ops_req *r, enum ops_id op, const struct project *p,
    uint64_t gen, unsigned flags, json_int_t ms, struct ops_query_args *q);

/* True if a line waiting behind a request cancels it (ops.c). */
bool ops_cancels(const char *line, size_t len, bool supersede, json_t *id);

/* The query op (ops_query.c). */
int op_query(struct ops_req *r);
void ops_query_answer(struct ops_req *r, const struct project *p,
    const struct ops_query_args *qa);
struct ops_job;
/* Frees the narrowing sets of indexes no longer live (ops_query.c). */
void ops_narrow_sweep(struct ops *o);
void ops_job_waiting(struct ops *o, struct ops_job *j, const char *line,
    size_t len);
void ops_job_gone(struct ops *o, struct ops_job *j);

/* The git op (ops_git.c). */
int op_git(struct ops_req *r);

/*
 * The changes op's answer for p (NULL: no project) since the token
 * since (NULL or "": none), from the change log (ops_git.c).
 */
void ops_changes_answer(struct ops_req *r, const struct project *p,
    const char *since);
json_t *ops_stats_changes(struct fidxd *d, json_t *o);

/*
 * Adds "git":"XY" (git status --porcelain's letters) to each result of
 * a query on root that git lists, from the cached status; a status not
 * cached is started in the background. Returns what the letters stand
 * on: "fresh", "stale" (the tree changed since: being computed again),
 * "pending" (computing, none yet) or "none" (not a git work tree).
 */
const char *ops_git_annotate(struct ops *o, const char *root,
    json_t *results, uint64_t *age_ms);

/*
 * "boost":"git": changed and untracked files rank a little higher at
 * equal match quality (OPS_GIT_BOOST, a quarter of one matched byte's
 * score). The set is copied from the cached status on the loop (NULL:
 * none cached, being computed now, or over OPS_GIT_BOOST_MAX files,
 * where nothing stands out) and read by any scoring thread.
 */
#define OPS_GIT_BOOST (MATCH_SCORE / 4)
#define OPS_GIT_BOOST_MAX 4096
struct ops_gitboost;
struct ops_gitboost *ops_git_boost_new(struct ops *o, const char *root);
bool ops_git_boost_has(const struct ops_gitboost *b, const char *path,
    size_t len);
void ops_git_boost_free(struct ops_gitboost *b);
json_t *ops_stats_git(struct fidxd *d, json_t *o);
void ops_git_gone(struct ops *o, struct ops_parked *k);
void ops_git_stop(struct ops *o);

#endif
