/*
 * test_oom.c - every allocation of a request failed in turn, in a real
 * daemon context (tests/fuzz/opsctx.c: fidxd_init in this process, its
 * loop driven by the test, requests on a real socket).
 *
 * For each request of the mix (every op, each query mode and option,
 * git, visit, a new project, a reindex, sync, stats), the request runs
 * once to count the fidx_* allocations it makes (jansson's and PCRE2's
 * included: proto_alloc_init, regex.c's context), then again for n = 1,
 * 2, 3, ... with alloc_fail_at(n), until a run makes no n-th allocation.
 * Each time:
 *   - every answer is well-formed (opsctx's sink checks it);
 *   - the request is answered ok (the failure was on a path with a
 *     fallback, or in a cache), or with no_memory, or its connection is
 *     dropped (the one request lost, as the README allows), never with
 *     another error code;
 *   - the next request, on a new connection with no failure armed, is
 *     answered ok: the daemon keeps serving;
 * and at exit LeakSanitizer checks that no failure leaked (make test runs
 * this under ASan). The counting is every thread's (alloc.h): a failure
 * may land in a walker or the git worker, which is as real.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/alloc.h"
#include "../common/log.h"
#include "../common/proto.h"
#include "fuzz/opsctx.h"

/* Past this many allocations a request is a test mistake. */
#define OOM_MAX_STEPS 5000
#define OOM_DEADLINE_MS 5000

struct oom_tally {
	size_t steps, ok, no_memory, dropped, other;
};

/* One request's walk over its allocations; returns how many it made. */
static void
oom_walk(const char *req, const char *want_ok_code)
{
	struct opsctx_result r;
	struct oom_tally t = { 0 };
	unsigned long before, made;

	(void)want_ok_code;
	/* Twice unarmed: the first may fill caches the second then finds. */
	assert_int_equal(opsctx_exchange(req, strlen(req), OOM_DEADLINE_MS,
	    &r), 0);
	before = alloc_calls_made();
	assert_int_equal(opsctx_exchange(req, strlen(req), OOM_DEADLINE_MS,
	    &r), 0);
	made = alloc_calls_made() - before;
	assert_true(r.marker);
	assert_int_equal(r.bad_lines, 0);
	for (unsigned long n = 1;; n++) {
		bool fired;

		assert_true(n < OOM_MAX_STEPS);
		alloc_fail_at(n);
		assert_int_equal(opsctx_exchange(req, strlen(req),
		    OOM_DEADLINE_MS, &r), 0);
		fired = alloc_failed();
		alloc_fail_at(0);
		if (r.bad_lines != 0 || !(r.marker || r.eof))
			fail_msg("%s: allocation %lu failed: bad_lines %zu, "
			    "marker %d, eof %d, timed out %d", req, n,
			    r.bad_lines, r.marker, r.eof, r.timed_out);
		t.steps++;
		if (r.no_memory > 0)
			t.no_memory++;
		else if (r.eof)
			t.dropped++;
		else
			t.ok++;
		/* The next client is served. */
		assert_int_equal(opsctx_exchange("{\"op\":\"ping\"}", 13,
		    OOM_DEADLINE_MS, &r), 0);
		if (!r.marker || r.bad_lines != 0 || r.no_memory != 0)
			fail_msg("%s: after allocation %lu failed, ping was "
			    "not served", req, n);
		if (!fired)
			break;
	}
	print_message("%-60.60s %lu allocations (%lu counted unarmed): %zu "
	    "ok, %zu no_memory, %zu dropped\n", req, (unsigned long)t.steps - 1,
	    made, t.ok, t.no_memory, t.dropped);
}

#define OOM_TEST(name, req)						\
	static void							\
	name(void **state)						\
	{								\
		(void)state;						\
		oom_walk(req, NULL);					\
	}

OOM_TEST(test_ping, "{\"op\":\"ping\",\"id\":7}")
OOM_TEST(test_bad_json, "{\"op\":\"query\",\"root\":[1,2,{\"a\":")
OOM_TEST(test_unknown_op, "{\"op\":\"nope\",\"id\":\"x\"}")
OOM_TEST(test_projects, "{\"op\":\"projects\"}")
OOM_TEST(test_stats, "{\"op\":\"stats\"}")
OOM_TEST(test_query_fuzzy, "{\"op\":\"query\",\"root\":\"%T\",\"q\":"
    "\"src main\",\"positions\":true,\"limit\":5}")
OOM_TEST(test_query_exact, "{\"op\":\"query\",\"root\":\"%T\",\"q\":"
    "\"str\",\"mode\":\"exact\",\"frecency\":true}")
OOM_TEST(test_query_regex, "{\"op\":\"query\",\"root\":\"%T\",\"q\":"
    "\"^src/.*\\\\.[ch]$\",\"mode\":\"regex\",\"positions\":true}")
OOM_TEST(test_query_typos, "{\"op\":\"query\",\"root\":\"%T\",\"q\":"
    "\"mian\",\"typos\":1}")
OOM_TEST(test_query_git, "{\"op\":\"query\",\"root\":\"%G\",\"q\":"
    "\"txt\",\"git\":true,\"boost\":\"git\"}")
OOM_TEST(test_git, "{\"op\":\"git\",\"root\":\"%G\",\"max_age_ms\":0}")
OOM_TEST(test_visit, "{\"op\":\"visit\",\"root\":\"%T\",\"path\":\"%F\"}")
OOM_TEST(test_sync, "{\"op\":\"sync\",\"root\":\"%T\"}")
OOM_TEST(test_changes, "{\"op\":\"changes\",\"root\":\"%T\",\"since\":\"\"}")
OOM_TEST(test_reindex, "{\"op\":\"reindex\",\"root\":\"%T\",\"wait\":true}")
OOM_TEST(test_add_exclude, "{\"op\":\"add\",\"root\":\"%T\",\"exclude\":"
    "\"\\\\.md$\",\"wait\":true}")
OOM_TEST(test_pipelined, "{\"op\":\"ping\",\"id\":1}\n{\"op\":\"query\","
    "\"root\":\"%T\",\"q\":\"a\",\"supersede\":true,\"id\":2}\n{\"op\":"
    "\"query\",\"root\":\"%T\",\"q\":\"ab\",\"supersede\":true,\"id\":3}")

static int
setup(void **state)
{
	(void)state;
	return opsctx_start();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_unknown_op),
		cmocka_unit_test(test_projects),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_query_fuzzy),
		cmocka_unit_test(test_query_exact),
		cmocka_unit_test(test_query_regex),
		cmocka_unit_test(test_query_typos),
		cmocka_unit_test(test_query_git),
		cmocka_unit_test(test_git),
		cmocka_unit_test(test_visit),
		cmocka_unit_test(test_sync),
		cmocka_unit_test(test_changes),
		cmocka_unit_test(test_reindex),
		cmocka_unit_test(test_add_exclude),
		cmocka_unit_test(test_pipelined),
	};
	int rc;

	proto_alloc_init();
	log_init("test_oom", 0);
	/* TEST_OOM_FILTER=test_ping (a glob) runs only what it names. */
	if (getenv("TEST_OOM_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TEST_OOM_FILTER"));
	rc = cmocka_run_group_tests(tests, setup, NULL);
	opsctx_stop();
	return rc;
}
