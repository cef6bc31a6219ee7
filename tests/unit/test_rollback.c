/* Unit tests for policy/rollback.c: the highest version accepted per
 * policy id, and the check that refuses a rollback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy/rollback.h"

static const unsigned char sha_a[32] = { 0xaa, 1, 2, 3 };
static const unsigned char sha_b[32] = { 0xbb, 1, 2, 3 };

/* A policy as loaded from a file, for the check. */
static struct tf_policy policy(const char *id, const char *owner, int64_t version,
		const unsigned char sha[32])
{
	struct tf_policy p = { .file = "water.json", .id = id, .owner_id = owner,
		.version = version };

	memcpy(p.sha256, sha, 32);
	return p;
}

static void an_entry_only_rises(void **state)
{
	struct tf_rollback *r = tf_rollback_new();
	const struct tf_rollback_entry *e;

	(void)state;
	assert_non_null(r);
	assert_null(tf_rollback_find(r, "water"));
	assert_int_equal(tf_rollback_note(r, "water", "city", 3, sha_a), TF_OK);
	assert_int_equal(tf_rollback_note(r, "water", "city", 2, sha_b), TF_OK);
	e = tf_rollback_find(r, "water");
	assert_non_null(e);
	assert_int_equal(e->version, 3);
	assert_memory_equal(e->sha256, sha_a, 32);
	assert_int_equal(tf_rollback_note(r, "water", "city", 4, sha_b), TF_OK);
	assert_int_equal(tf_rollback_find(r, "water")->version, 4);
	assert_int_equal(tf_rollback_count(r), 1);
	tf_rollback_free(r);
}

static void the_check_refuses_what_would_roll_back(void **state)
{
	struct tf_rollback *r = tf_rollback_new();
	struct tf_policy p;
	struct tf_err err = { "" };

	(void)state;
	assert_int_equal(tf_rollback_note(r, "water", "city", 3, sha_a), TF_OK);
	/* Without a table, or for an id never accepted: anything passes. */
	p = policy("water", "city", 1, sha_b);
	assert_int_equal(tf_rollback_check(NULL, &p, &err), TF_OK);
	p = policy("gas", "city", 1, sha_b);
	assert_int_equal(tf_rollback_check(r, &p, &err), TF_OK);
	/* The same file, or a higher version. */
	p = policy("water", "city", 3, sha_a);
	assert_int_equal(tf_rollback_check(r, &p, &err), TF_OK);
	assert_true(tf_rollback_holds(r, &p));
	p = policy("water", "city", 4, sha_b);
	assert_int_equal(tf_rollback_check(r, &p, &err), TF_OK);
	assert_false(tf_rollback_holds(r, &p));
	/* A lower version. */
	p = policy("water", "city", 2, sha_a);
	assert_int_equal(tf_rollback_check(r, &p, &err), TF_ERR_INVALID);
	assert_string_equal(err.msg, "water.json: rolled back: version 2 of water is older than "
		"version 3, which this broker has accepted");
	/* The same version, other bytes. */
	p = policy("water", "city", 3, sha_b);
	assert_int_equal(tf_rollback_check(r, &p, &err), TF_ERR_INVALID);
	assert_non_null(strstr(err.msg, "water.json: version 3 of water has other bytes"));
	assert_non_null(strstr(err.msg, "aa010203"));
	/* Another owner taking the id, even at a higher version. */
	p = policy("water", "operator-org", 9, sha_b);
	assert_int_equal(tf_rollback_check(r, &p, &err), TF_ERR_INVALID);
	assert_non_null(strstr(err.msg, "belongs to city"));
	tf_rollback_free(r);
}

static void a_copy_changes_apart(void **state)
{
	struct tf_rollback *r = tf_rollback_new(), *copy;

	(void)state;
	assert_int_equal(tf_rollback_note(r, "water", "city", 3, sha_a), TF_OK);
	copy = tf_rollback_copy(r);
	assert_non_null(copy);
	assert_int_equal(tf_rollback_note(r, "water", "city", 5, sha_b), TF_OK);
	assert_int_equal(tf_rollback_find(copy, "water")->version, 3);
	assert_int_equal(tf_rollback_note(copy, "gas", "city", 1, sha_b), TF_OK);
	assert_null(tf_rollback_find(r, "gas"));
	tf_rollback_free(copy);
	tf_rollback_free(r);
}

static void the_stored_text_reads_back_and_nothing_else_does(void **state)
{
	static const char *const bad[] = {
		"", "3", "3 city", "03 city aa", "0 city ", "-1 city ", "3  city ", "3 ci/ty ",
		"99999999999 city ",
	};
	char id[] = "water", city[] = "city";
	struct tf_rollback_entry e = { id, city, 42, { 0 } };
	char text[TF_ROLLBACK_TEXT_MAX + 1], owner[TF_ID_MAX_LEN + 1], line[400];
	unsigned char sha[32];
	int64_t version;

	(void)state;
	memcpy(e.sha256, sha_a, 32);
	tf_rollback_format(&e, text);
	assert_true(strncmp(text, "42 city aa010203", 16) == 0);
	assert_true(tf_rollback_parse(text, strlen(text), &version, owner, sha));
	assert_int_equal(version, 42);
	assert_string_equal(owner, "city");
	assert_memory_equal(sha, sha_a, 32);
	/* One hex digit short, or uppercase, or something after. */
	assert_false(tf_rollback_parse(text, strlen(text) - 1, &version, owner, sha));
	snprintf(line, sizeof(line), "%s0", text);
	assert_false(tf_rollback_parse(line, strlen(line), &version, owner, sha));
	snprintf(line, sizeof(line), "%s", text);
	line[8] = 'A';
	assert_false(tf_rollback_parse(line, strlen(line), &version, owner, sha));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "%s%s", bad[i], strlen(bad[i]) > 2 ? text + 8 : "");
		assert_false(tf_rollback_parse(line, strlen(line), &version, owner, sha));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_entry_only_rises),
		cmocka_unit_test(the_check_refuses_what_would_roll_back),
		cmocka_unit_test(a_copy_changes_apart),
		cmocka_unit_test(the_stored_text_reads_back_and_nothing_else_does),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
