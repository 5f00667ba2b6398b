/*
 * fuzz_ops.c - the request dispatcher (indexer/ops.c, behind the server's
 * line framing), bytes to answers, in a real daemon context
 * (tests/fuzz/opsctx.c: fidxd_init over a small tree and a git
 * repository, with the watcher, the workers and the git cache running).
 *
 * Input: up to FUZZ_OPS_MAX bytes sent on one connection as they are
 * ("%T", "%G" and "%F" name the tree, the repository and a file in the
 * tree, so the corpus can reach real projects), then a marker ping.
 * Checks:
 *   - every answer line is a JSON object with a boolean "ok", and an
 *     error's "code" is one of the protocol's (proto.h);
 *   - the marker is answered: the connection stays usable whatever came
 *     before it, unless the input shut the daemon down, or the daemon
 *     closed it for a reason the README gives (a client over its output
 *     cap, a line too long), or a request is still parked at the
 *     deadline (a wait the input asked for);
 *   - after any of those, a new connection is served (the next request).
 * ASan and LSan (at exit) check the rest: every path of every op frees
 * what it took.
 */
#include "fuzz.h"

#include "opsctx.h"
#include "../../common/log.h"
#include "../../common/proto.h"

#define FUZZ_OPS_MAX 16384
#define FUZZ_OPS_DEADLINE_MS 1000
/* Two pings on a fresh connection: long, for a loaded machine. */
#define FUZZ_OPS_NEXT_MS 30000

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct opsctx_result r;

	if (!init) {
		proto_alloc_init();
		log_init("fuzz_ops", 0);
		init = 1;
	}
	if (size > FUZZ_OPS_MAX)
		return 0;
	if (opsctx_exchange((const char *)data, size, FUZZ_OPS_DEADLINE_MS,
	    &r) == -1) {
		/* Too long once the roots are in; the context must be up. */
		FUZZ_CHECK(opsctx_daemon() != NULL);
		return 0;
	}
	FUZZ_CHECK(r.bad_lines == 0);
	FUZZ_CHECK(r.marker || r.stopped || r.timed_out ||
	    (r.eof && r.dropped > 0));
	if (!r.marker) {
		/* Whatever happened, the next client is served. */
		FUZZ_CHECK(opsctx_exchange("", 0, FUZZ_OPS_NEXT_MS, &r) == 0);
		if (!r.marker)
			fprintf(stderr, "fuzz_ops: next client: answers %zu, "
			    "eof %d, timed out %d, stopped %d, dropped %llu\n",
			    r.answers, r.eof, r.timed_out, r.stopped,
			    (unsigned long long)r.dropped);
		FUZZ_CHECK(r.marker && r.bad_lines == 0);
	}
	return 0;
}
