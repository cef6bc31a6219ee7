/* Unit tests for broker/tracking/copytrack.c: view copies known by their content,
 * with the policy version each was made under. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/tracking/copytrack.h"

#define VIEW "views/lab/city/water/d7/telemetry"

static void a_copy_is_known_with_its_version(void **state)
{
	struct tf_copytrack *t = tf_copytrack_new();
	bool same = false;

	(void)state;
	assert_false(tf_copytrack_find(t, VIEW, "{\"flow\":1}", 10, "water@3", &same));
	tf_copytrack_put(t, VIEW, "{\"flow\":1}", 10, "water@3");
	assert_true(tf_copytrack_find(t, VIEW, "{\"flow\":1}", 10, "water@3", &same));
	assert_true(same);
	assert_true(tf_copytrack_find(t, VIEW, "{\"flow\":1}", 10, "water@4", &same));
	assert_false(same);
	/* Another topic or payload is another copy. */
	assert_false(tf_copytrack_find(t, "views/lab/x", "{\"flow\":1}", 10, "water@3", &same));
	assert_false(tf_copytrack_find(t, VIEW, "{\"flow\":2}", 10, "water@3", &same));
	/* The same copy made again under a newer version is of that version. */
	tf_copytrack_put(t, VIEW, "{\"flow\":1}", 10, "water@4");
	assert_true(tf_copytrack_find(t, VIEW, "{\"flow\":1}", 10, "water@4", &same));
	assert_true(same);
	tf_copytrack_free(t);
}

/* Newer copies push older ones out: the table stays its size, and what
 * went out is not known (the engine then asks the trace). */
static void older_copies_are_pushed_out(void **state)
{
	struct tf_copytrack *t = tf_copytrack_new();
	char payload[32];
	bool same;
	uint32_t known = 0;

	(void)state;
	for (uint32_t i = 0; i < 2 * TF_COPYTRACK_SLOTS; i++) {
		int n = snprintf(payload, sizeof(payload), "{\"n\":%u}", (unsigned)i);

		tf_copytrack_put(t, VIEW, payload, (uint32_t)n, "water@3");
	}
	for (uint32_t i = 0; i < 2 * TF_COPYTRACK_SLOTS; i++) {
		int n = snprintf(payload, sizeof(payload), "{\"n\":%u}", (unsigned)i);

		known += tf_copytrack_find(t, VIEW, payload, (uint32_t)n, "water@3", &same);
	}
	assert_true(known <= TF_COPYTRACK_SLOTS);
	assert_true(known > TF_COPYTRACK_SLOTS / 2);
	tf_copytrack_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_copy_is_known_with_its_version),
		cmocka_unit_test(older_copies_are_pushed_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
