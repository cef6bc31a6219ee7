/* Unit tests for policy/id.c: the identifier syntax of policy-v1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/id.h"

static void accepts_valid_ids(void **state)
{
	(void)state;
	assert_true(tf_id_is_valid("a"));
	assert_true(tf_id_is_valid("city-waterworks"));
	assert_true(tf_id_is_valid("ww-sensor-01"));
	assert_true(tf_id_is_valid("0.9_x:y@z-"));
	assert_true(tf_id_is_valid("Z"));
}

static void rejects_bad_first_character(void **state)
{
	(void)state;
	assert_false(tf_id_is_valid(""));
	assert_false(tf_id_is_valid("-a"));
	assert_false(tf_id_is_valid(".a"));
	assert_false(tf_id_is_valid("@a"));
	assert_false(tf_id_is_valid("_a"));
}

static void rejects_characters_outside_the_set(void **state)
{
	(void)state;
	assert_false(tf_id_is_valid("a b"));
	assert_false(tf_id_is_valid("a/b"));
	assert_false(tf_id_is_valid("a+"));
	assert_false(tf_id_is_valid("a#"));
	assert_false(tf_id_is_valid("caf\xc3\xa9"));
}

static void enforces_the_length_limit_exactly(void **state)
{
	char id[TF_ID_MAX_LEN + 2];

	(void)state;
	memset(id, 'a', sizeof(id));
	id[TF_ID_MAX_LEN] = '\0';
	assert_true(tf_id_is_valid(id));
	id[TF_ID_MAX_LEN] = 'a';
	id[TF_ID_MAX_LEN + 1] = '\0';
	assert_false(tf_id_is_valid(id));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepts_valid_ids),
		cmocka_unit_test(rejects_bad_first_character),
		cmocka_unit_test(rejects_characters_outside_the_set),
		cmocka_unit_test(enforces_the_length_limit_exactly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
