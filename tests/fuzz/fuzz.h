/* The libFuzzer entry point, declared once for the fuzz targets and the
 * replay driver (tests/fuzz/replay.c), which links with any one of them.
 *
 * Each target returns 0 for every input, and aborts when the code under
 * test breaks one of its documented promises, so that libFuzzer and the
 * replay driver both report that as a crash. */
#ifndef TF_TESTS_FUZZ_H
#define TF_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The target's name ("policy"): the replay driver, run without arguments,
 * replays $TF_SRCDIR/tests/fuzz/corpus/<name>. */
extern const char tf_fuzz_target[];

static inline __attribute__((noreturn)) void tf_fuzz_fail(const char *file, int line,
		const char *what)
{
	fprintf(stderr, "%s:%d: broken promise: %s\n", file, line, what);
	fflush(stderr);
	abort();
}

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			tf_fuzz_fail(__FILE__, __LINE__, #cond); \
	} while (0)

#endif
