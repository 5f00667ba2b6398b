/*
 * fuzz.h - what every fuzz target in tests/fuzz/ shares.
 *
 * Owns: the libFuzzer entry point's prototype and the check that turns a
 * broken invariant into a crash the fuzzer (or the replay) reports.
 * Never touches: the code under test (each target includes its module).
 *
 * Each target is built twice (Makefile): with clang's libFuzzer for
 * `make fuzz`, and with replay.c's main under gcc's ASan and UBSan for
 * `make test`, which runs it over tests/fuzz/corpus/<target>/.
 */
#ifndef FIDX_FUZZ_H
#define FIDX_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: abort, so the input is kept as a crash. */
#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: fuzz check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

#endif
