/* Unit tests for policy/topic.c: topic filters and names, MQTT matching,
 * and filter overlap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/topic.h"

static bool filter_ok(const char *filter)
{
	const char *why = NULL;
	bool ok = tf_topic_filter_valid(filter, &why);

	if (!ok)
		assert_non_null(why);
	return ok;
}

static bool name_ok(const char *topic)
{
	const char *why = NULL;
	bool ok = tf_topic_name_valid(topic, &why);

	if (!ok)
		assert_non_null(why);
	return ok;
}

/* Builds "a/a/.../a" with n levels into buf (2 * n bytes). */
static void levels(char *buf, int n)
{
	for (int i = 0; i < n; i++) {
		buf[2 * i] = 'a';
		buf[2 * i + 1] = i + 1 < n ? '/' : '\0';
	}
}

static void filter_accepts_valid_filters(void **state)
{
	(void)state;
	assert_true(filter_ok("a"));
	assert_true(filter_ok("a/b/c"));
	assert_true(filter_ok("a/+/#"));
	assert_true(filter_ok("#"));
	assert_true(filter_ok("+"));
	assert_true(filter_ok("+/+"));
	assert_true(filter_ok("a//b"));
	assert_true(filter_ok("/a"));
	assert_true(filter_ok("a/"));
	assert_true(filter_ok("+/#"));
	assert_true(filter_ok("a$b"));
}

static void filter_rejects_empty(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_false(tf_topic_filter_valid("", &why));
	assert_non_null(why);
	assert_non_null(strstr(why, "empty"));
}

static void filter_length_limit_is_exact(void **state)
{
	char f[TF_TOPIC_MAX_LEN + 2];
	const char *why = NULL;

	(void)state;
	memset(f, 'x', sizeof(f));
	f[TF_TOPIC_MAX_LEN] = '\0';
	assert_true(filter_ok(f));
	assert_true(name_ok(f));
	f[TF_TOPIC_MAX_LEN] = 'x';
	f[TF_TOPIC_MAX_LEN + 1] = '\0';
	assert_false(tf_topic_filter_valid(f, &why));
	assert_non_null(why);
	assert_non_null(strstr(why, "1024"));
	assert_false(name_ok(f));
}

static void filter_level_limit_is_exact(void **state)
{
	char f[2 * (TF_TOPIC_MAX_LEVELS + 1)];
	const char *why = NULL;

	(void)state;
	levels(f, TF_TOPIC_MAX_LEVELS);
	assert_true(filter_ok(f));
	assert_true(name_ok(f));
	levels(f, TF_TOPIC_MAX_LEVELS + 1);
	assert_false(tf_topic_filter_valid(f, &why));
	assert_non_null(why);
	assert_non_null(strstr(why, "64 levels"));
	assert_false(name_ok(f));
	/* 64 levels ending with a wildcard are still fine, 65 are not. */
	levels(f, TF_TOPIC_MAX_LEVELS);
	f[2 * TF_TOPIC_MAX_LEVELS - 2] = '#';
	assert_true(filter_ok(f));
	/* 64 levels where the last is empty ("a/.../a/"). */
	levels(f, TF_TOPIC_MAX_LEVELS);
	f[2 * TF_TOPIC_MAX_LEVELS - 2] = '\0';
	assert_true(filter_ok(f));
	/* 65 levels where the last is empty. */
	levels(f, TF_TOPIC_MAX_LEVELS + 1);
	f[2 * TF_TOPIC_MAX_LEVELS] = '\0';
	assert_false(filter_ok(f));
}

static void filter_rejects_dollar_start(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_false(tf_topic_filter_valid("$SYS/#", &why));
	assert_non_null(why);
	assert_non_null(strstr(why, "$"));
	assert_false(filter_ok("$"));
	assert_false(filter_ok("$share/g/a"));
	assert_false(name_ok("$SYS/broker"));
}

static void filter_rejects_control_characters(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_false(tf_topic_filter_valid("a/\x01/b", &why));
	assert_string_equal(why, "must not contain control characters");
	assert_false(tf_topic_filter_valid("a\tb", &why));
	assert_false(tf_topic_filter_valid("a\x7f", &why));
	assert_false(tf_topic_name_valid("views/\x1f", &why));
	assert_true(tf_topic_filter_valid("caf\xc3\xa9/+", &why));
}

static void filter_rejects_wildcards_not_alone(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_false(tf_topic_filter_valid("a+", &why));
	assert_non_null(why);
	assert_non_null(strstr(why, "alone"));
	assert_false(filter_ok("a/b+"));
	assert_false(filter_ok("a/+b/c"));
	assert_false(filter_ok("a/#b"));
	assert_false(filter_ok("a#"));
	assert_false(filter_ok("++"));
	assert_false(filter_ok("##"));
	assert_false(filter_ok("+#"));
	assert_false(filter_ok("a/b#/c"));
}

static void filter_rejects_hash_not_last(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_false(tf_topic_filter_valid("#/a", &why));
	assert_non_null(why);
	assert_non_null(strstr(why, "last"));
	assert_false(filter_ok("a/#/b"));
	assert_false(filter_ok("a/#/"));
	assert_false(filter_ok("#/#"));
	assert_false(filter_ok("#/"));
}

static void name_accepts_plain_topics(void **state)
{
	(void)state;
	assert_true(name_ok("a"));
	assert_true(name_ok("city/waterworks/pump-1/telemetry"));
	assert_true(name_ok("a//b"));
	assert_true(name_ok("/a"));
}

static void name_rejects_wildcards(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_false(tf_topic_name_valid("a/+", &why));
	assert_non_null(why);
	assert_non_null(strstr(why, "wildcard"));
	assert_false(name_ok("a/#"));
	assert_false(name_ok("#"));
	assert_false(name_ok("+"));
	assert_false(name_ok("a+b"));
	assert_false(name_ok("a/b#"));
	assert_false(name_ok(""));
}

static void name_rejects_trailing_slash(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_false(tf_topic_name_valid("a/", &why));
	assert_non_null(why);
	assert_non_null(strstr(why, "/"));
	assert_false(name_ok("a/b/"));
	assert_false(name_ok("/"));
	assert_false(name_ok("a//"));
}

static void matches_literal_filters_exactly(void **state)
{
	(void)state;
	assert_true(tf_topic_matches("a", "a"));
	assert_true(tf_topic_matches("a/b/c", "a/b/c"));
	assert_false(tf_topic_matches("a/b", "a/c"));
	assert_false(tf_topic_matches("a/b", "a/bc"));
	assert_false(tf_topic_matches("a/bc", "a/b"));
	assert_false(tf_topic_matches("a/b", "a"));
	assert_false(tf_topic_matches("a", "a/b"));
	assert_false(tf_topic_matches("a", "A"));
	assert_true(tf_topic_matches("a//b", "a//b"));
	assert_false(tf_topic_matches("a//b", "a/b"));
}

static void plus_matches_exactly_one_level(void **state)
{
	(void)state;
	assert_true(tf_topic_matches("+", "a"));
	assert_true(tf_topic_matches("a/+", "a/b"));
	assert_true(tf_topic_matches("a/+/c", "a/b/c"));
	assert_true(tf_topic_matches("+/+", "a/b"));
	assert_false(tf_topic_matches("a/+", "a"));
	assert_false(tf_topic_matches("a/+", "a/b/c"));
	assert_false(tf_topic_matches("+", "a/b"));
	assert_false(tf_topic_matches("a/+/c", "a/b/d"));
	assert_false(tf_topic_matches("+/+", "a"));
}

static void plus_matches_an_empty_level(void **state)
{
	(void)state;
	assert_true(tf_topic_matches("a/+/b", "a//b"));
	assert_true(tf_topic_matches("+/a", "/a"));
	assert_true(tf_topic_matches("+/+", "/a"));
	assert_true(tf_topic_matches("a/+", "a/"));
	assert_false(tf_topic_matches("a/+/b", "a/b"));
}

static void hash_matches_the_rest_and_the_parent(void **state)
{
	(void)state;
	assert_true(tf_topic_matches("#", "a"));
	assert_true(tf_topic_matches("#", "a/b/c"));
	assert_true(tf_topic_matches("#", "/a"));
	assert_true(tf_topic_matches("a/#", "a"));
	assert_true(tf_topic_matches("a/#", "a/b"));
	assert_true(tf_topic_matches("a/#", "a/b/c/d"));
	assert_true(tf_topic_matches("a/#", "a//"));
	assert_true(tf_topic_matches("a/b/#", "a/b"));
	assert_true(tf_topic_matches("+/#", "a"));
	assert_true(tf_topic_matches("+/#", "x/y/z"));
	assert_true(tf_topic_matches("a/+/#", "a/b"));
	assert_true(tf_topic_matches("a/+/#", "a/b/c/d"));
	assert_false(tf_topic_matches("a/#", "b"));
	assert_false(tf_topic_matches("a/#", "ab"));
	assert_false(tf_topic_matches("a/#", "ab/c"));
	assert_false(tf_topic_matches("a/b/#", "a"));
	assert_false(tf_topic_matches("a/b/#", "a/c/b"));
	assert_false(tf_topic_matches("a/+/#", "a"));
}

static void leading_wildcards_skip_dollar_topics(void **state)
{
	(void)state;
	assert_false(tf_topic_matches("#", "$SYS/broker"));
	assert_false(tf_topic_matches("+/broker", "$SYS/broker"));
	assert_false(tf_topic_matches("+/#", "$SYS"));
	assert_true(tf_topic_matches("$SYS/#", "$SYS/broker"));
	assert_true(tf_topic_matches("$SYS/+", "$SYS/broker"));
	assert_true(tf_topic_matches("a/#", "a/$b"));
	assert_true(tf_topic_matches("+/+", "a/$b"));
}

static void overlap_is_symmetric(const char *a, const char *b, bool expected)
{
	assert_int_equal(tf_filters_overlap(a, b), expected);
	assert_int_equal(tf_filters_overlap(b, a), expected);
}

static void overlapping_filters(void **state)
{
	(void)state;
	overlap_is_symmetric("a/+", "+/b", true);
	overlap_is_symmetric("a/#", "a", true);
	overlap_is_symmetric("a/b", "a/b", true);
	overlap_is_symmetric("a/+/c", "a/b/#", true);
	overlap_is_symmetric("+", "a", true);
	overlap_is_symmetric("+/#", "a", true);
	overlap_is_symmetric("a/+", "a/#", true);
	overlap_is_symmetric("a/+/#", "a/b", true);
	overlap_is_symmetric("a//b", "a/+/b", true);
	overlap_is_symmetric("a/", "a/+", true);
}

static void hash_overlaps_everything(void **state)
{
	(void)state;
	overlap_is_symmetric("#", "#", true);
	overlap_is_symmetric("#", "a", true);
	overlap_is_symmetric("#", "a/b/c", true);
	overlap_is_symmetric("#", "+/+/+", true);
	overlap_is_symmetric("#", "a/#", true);
	overlap_is_symmetric("#", "/", true);
}

static void disjoint_filters(void **state)
{
	(void)state;
	overlap_is_symmetric("a/b", "a/c", false);
	overlap_is_symmetric("a", "a/b", false);
	overlap_is_symmetric("a", "b", false);
	overlap_is_symmetric("a/b/#", "a/c/#", false);
	overlap_is_symmetric("a/+", "b/+", false);
	overlap_is_symmetric("+/+", "a", false);
	overlap_is_symmetric("+", "a/b", false);
	overlap_is_symmetric("a/+/#", "a", false);
	overlap_is_symmetric("a/+/c", "a/b/d", false);
	overlap_is_symmetric("a/b/#", "a", false);
	overlap_is_symmetric("ab", "a/#", false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(filter_accepts_valid_filters),
		cmocka_unit_test(filter_rejects_empty),
		cmocka_unit_test(filter_length_limit_is_exact),
		cmocka_unit_test(filter_level_limit_is_exact),
		cmocka_unit_test(filter_rejects_dollar_start),
		cmocka_unit_test(filter_rejects_control_characters),
		cmocka_unit_test(filter_rejects_wildcards_not_alone),
		cmocka_unit_test(filter_rejects_hash_not_last),
		cmocka_unit_test(name_accepts_plain_topics),
		cmocka_unit_test(name_rejects_wildcards),
		cmocka_unit_test(name_rejects_trailing_slash),
		cmocka_unit_test(matches_literal_filters_exactly),
		cmocka_unit_test(plus_matches_exactly_one_level),
		cmocka_unit_test(plus_matches_an_empty_level),
		cmocka_unit_test(hash_matches_the_rest_and_the_parent),
		cmocka_unit_test(leading_wildcards_skip_dollar_topics),
		cmocka_unit_test(overlapping_filters),
		cmocka_unit_test(hash_overlaps_everything),
		cmocka_unit_test(disjoint_filters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
