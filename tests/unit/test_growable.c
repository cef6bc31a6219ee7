/* Unit tests for broker/util/growable.c (arrays that double when full, up
 * to a bound). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/util/growable.h"

struct item {
	uint64_t a, b;
};

static void grows_from_empty_to_first(void **state)
{
	struct item *items = NULL;
	uint32_t cap = 0;

	(void)state;
	assert_true(tf_grow(&items, &cap, 0, 16, UINT32_MAX));
	assert_non_null(items);
	assert_int_equal(cap, 16);
	items[0] = (struct item){ 1, 2 };
	items[15] = (struct item){ 3, 4 };   /* all 16 are there (ASan checks) */
	free(items);
}

static void room_left_changes_nothing(void **state)
{
	struct item *items = NULL, *before;
	uint32_t cap = 0;

	(void)state;
	assert_true(tf_grow(&items, &cap, 0, 4, UINT32_MAX));
	before = items;
	for (uint32_t n = 1; n < 4; n++) {
		assert_true(tf_grow(&items, &cap, n, 4, UINT32_MAX));
		assert_ptr_equal(items, before);
		assert_int_equal(cap, 4);
	}
	free(items);
}

static void doubles_when_full_and_keeps_the_elements(void **state)
{
	uint32_t *values = NULL;
	uint32_t cap = 0, n;

	(void)state;
	for (n = 0; n < 1000; n++) {
		uint32_t was = cap;

		assert_true(tf_grow(&values, &cap, n, 8, UINT32_MAX));
		if (n == was)
			assert_int_equal(cap, was == 0 ? 8 : was * 2);
		else
			assert_int_equal(cap, was);
		values[n] = n * 7;
	}
	assert_int_equal(cap, 1024);
	for (n = 0; n < 1000; n++)
		assert_int_equal(values[n], n * 7);
	free(values);
}

static void stops_at_the_bound(void **state)
{
	uint32_t *values = NULL;
	uint32_t cap = 0, n;

	(void)state;
	/* Doubling would pass 100: the last step stops there. */
	for (n = 0; n < 100; n++) {
		assert_true(tf_grow(&values, &cap, n, 8, 100));
		values[n] = n;
	}
	assert_int_equal(cap, 100);
	assert_false(tf_grow(&values, &cap, 100, 8, 100));
	assert_int_equal(cap, 100);
	for (n = 0; n < 100; n++)
		assert_int_equal(values[n], n);
	free(values);
}

static void first_is_bounded_too(void **state)
{
	uint32_t *values = NULL;
	uint32_t cap = 0;

	(void)state;
	assert_true(tf_grow(&values, &cap, 0, 64, 3));
	assert_int_equal(cap, 3);
	free(values);
}

static void doubling_near_uint32_max_does_not_wrap(void **state)
{
	char *bytes = NULL;
	uint32_t cap = UINT32_MAX / 2 + 1;

	(void)state;
	/* A full array this big would double past UINT32_MAX: the helper must
	 * ask for max, not for the wrapped 0 (which realloc would grant). The
	 * allocation itself is too big to make here, so elements whose size
	 * times max overflows size_t stop it once the capacity is worked out,
	 * leaving everything as it was. */
	assert_false(tf_grow_array((void **)&bytes, &cap, cap, SIZE_MAX / 2, 1, UINT32_MAX));
	assert_null(bytes);
	assert_int_equal(cap, UINT32_MAX / 2 + 1);
}

static void count_times_size_overflow_is_refused(void **state)
{
	struct item *items = NULL;
	uint32_t cap = 0;

	(void)state;
	/* 4 elements of SIZE_MAX / 3 + 1 bytes do not fit a size_t. */
	assert_false(tf_grow_array((void **)&items, &cap, 0, SIZE_MAX / 3 + 1, 4, UINT32_MAX));
	assert_null(items);
	assert_int_equal(cap, 0);
}

static void overflow_leaves_a_full_array_as_it_was(void **state)
{
	unsigned char *bytes = NULL, *before;
	uint32_t cap = 0;

	(void)state;
	assert_true(tf_grow(&bytes, &cap, 0, 2, UINT32_MAX));
	bytes[0] = 'a';
	bytes[1] = 'b';
	before = bytes;
	/* The same array seen as elements so big that doubling overflows. */
	assert_false(tf_grow_array((void **)&bytes, &cap, 2, SIZE_MAX / 3, 1, UINT32_MAX));
	assert_ptr_equal(bytes, before);
	assert_int_equal(cap, 2);
	assert_memory_equal(bytes, "ab", 2);
	free(bytes);
}

static void caller_mistakes_are_refused(void **state)
{
	uint32_t *values = NULL;
	uint32_t cap = 0;

	(void)state;
	assert_false(tf_grow_array((void **)&values, &cap, 0, 0, 8, UINT32_MAX)); /* size 0 */
	assert_false(tf_grow(&values, &cap, 0, 0, UINT32_MAX));                   /* first 0 */
	assert_false(tf_grow(&values, &cap, 1, 8, UINT32_MAX));                   /* count > cap */
	assert_false(tf_grow(&values, &cap, 0, 8, 0));                            /* max 0 */
	assert_null(values);
	assert_int_equal(cap, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(grows_from_empty_to_first),
		cmocka_unit_test(room_left_changes_nothing),
		cmocka_unit_test(doubles_when_full_and_keeps_the_elements),
		cmocka_unit_test(stops_at_the_bound),
		cmocka_unit_test(first_is_bounded_too),
		cmocka_unit_test(doubling_near_uint32_max_does_not_wrap),
		cmocka_unit_test(count_times_size_overflow_is_refused),
		cmocka_unit_test(overflow_leaves_a_full_array_as_it_was),
		cmocka_unit_test(caller_mistakes_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
