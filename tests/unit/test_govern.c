/* Unit tests for policy/govern.c: which policy governs a published topic.
 *
 * The spec's order: "A published topic is governed by the single policy
 * whose matching filter is the most specific: compare the filters level by
 * level, where a literal level beats `+`, `+` beats `#`, and a filter that
 * ends with the topic beats one that goes on with `#` (for `a/b`, `a/+`
 * beats `a/+/#`); the first difference decides."
 *
 * Every entry here carries the index of its filter as its policy, so that
 * a lookup says which filter won. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy/govern.h"
#include "policy/topic.h"

#define NONE (-1)

static int setup(void **state)
{
	struct tf_govern *g = tf_govern_new();

	if (g == NULL)
		return -1;
	*state = g;
	return 0;
}

static int teardown(void **state)
{
	tf_govern_free(*state);
	return 0;
}

/* Adds a policy filter whose entry has the given policy index. */
static void add(struct tf_govern *g, const char *filter, uint32_t policy)
{
	struct tf_governance e = { TF_GOVERN_POLICY, policy, 0, 0 };
	struct tf_governance existing = { TF_GOVERN_NONE, 0, 0, 0 };
	const char *why = NULL;

	assert_true(tf_topic_filter_valid(filter, &why));
	assert_int_equal(tf_govern_add(g, filter, e, &existing), 1);
}

/* The policy index that governs topic, or NONE. */
static long governing(const struct tf_govern *g, const char *topic)
{
	struct tf_governance e = tf_govern_lookup(g, topic);

	if (e.kind == TF_GOVERN_NONE)
		return NONE;
	assert_int_equal(e.kind, TF_GOVERN_POLICY);
	return (long)e.policy;
}

static long overlapping(const struct tf_govern *g, const char *filter)
{
	struct tf_governance e = tf_govern_overlap_any(g, filter);

	if (e.kind == TF_GOVERN_NONE)
		return NONE;
	assert_int_equal(e.kind, TF_GOVERN_POLICY);
	return (long)e.policy;
}

static void empty_governs_nothing(void **state)
{
	struct tf_govern *g = *state;

	assert_int_equal(governing(g, "a"), NONE);
	assert_int_equal(governing(g, "a/b/c"), NONE);
	assert_int_equal(overlapping(g, "#"), NONE);
	assert_true(tf_govern_bytes(g) > 0);
}

static void no_matching_entry_is_none(void **state)
{
	struct tf_govern *g = *state;
	struct tf_governance e;

	add(g, "a/b", 0);
	add(g, "x/+/z", 1);
	add(g, "m/#", 2);
	e = tf_govern_lookup(g, "a/c");
	assert_int_equal(e.kind, TF_GOVERN_NONE);
	assert_int_equal(governing(g, "a"), NONE);
	assert_int_equal(governing(g, "a/b/c"), NONE);
	assert_int_equal(governing(g, "x/y"), NONE);
	assert_int_equal(governing(g, "x/y/z/w"), NONE);
	assert_int_equal(governing(g, "mm"), NONE);
	assert_int_equal(governing(g, "b"), NONE);
	/* Sanity: the entries themselves do govern their topics. */
	assert_int_equal(governing(g, "a/b"), 0);
	assert_int_equal(governing(g, "x/y/z"), 1);
	assert_int_equal(governing(g, "m"), 2);
	assert_int_equal(governing(g, "m/n/o"), 2);
}

static void literal_beats_plus_at_the_first_difference(void **state)
{
	struct tf_govern *g = *state;

	/* For a/b/c, a/b/# beats a/+/c: level 2 decides (b beats +), even
	 * though level 3 of a/+/c (literal c) beats its #. */
	add(g, "a/+/c", 0);
	add(g, "a/b/#", 1);
	assert_int_equal(governing(g, "a/b/c"), 1);
	assert_int_equal(governing(g, "a/x/c"), 0);
	assert_int_equal(governing(g, "a/b"), 1);
	assert_int_equal(governing(g, "a/b/c/d"), 1);
	assert_int_equal(governing(g, "a/x/d"), NONE);
	/* A + at the first level loses to both. */
	add(g, "+/b/c", 2);
	assert_int_equal(governing(g, "a/b/c"), 1);
	assert_int_equal(governing(g, "a/x/c"), 0);
	assert_int_equal(governing(g, "z/b/c"), 2);
}

static void literal_beats_plus_added_in_either_order(void **state)
{
	struct tf_govern *g = *state;

	add(g, "a/b/#", 0);
	add(g, "a/+/c", 1);
	add(g, "+/+/+", 2);
	assert_int_equal(governing(g, "a/b/c"), 0);
	assert_int_equal(governing(g, "a/q/c"), 1);
	assert_int_equal(governing(g, "q/b/c"), 2);
}

static void plus_beats_hash(void **state)
{
	struct tf_govern *g = *state;

	add(g, "a/#", 0);
	add(g, "a/+", 1);
	add(g, "+/b", 2);
	add(g, "#", 3);
	assert_int_equal(governing(g, "a/b"), 1);
	assert_int_equal(governing(g, "a/x"), 1);
	assert_int_equal(governing(g, "a/b/c"), 0);
	assert_int_equal(governing(g, "a"), 0);
	/* Level 1: + beats #. */
	assert_int_equal(governing(g, "x/b"), 2);
	assert_int_equal(governing(g, "x/c"), 3);
}

static void plus_then_hash_beats_hash(void **state)
{
	struct tf_govern *g = *state;

	/* For a/b: level 2 is + against #, so a/+/# wins. */
	add(g, "a/#", 0);
	add(g, "a/+/#", 1);
	assert_int_equal(governing(g, "a/b"), 1);
	assert_int_equal(governing(g, "a/b/c"), 1);
	assert_int_equal(governing(g, "a"), 0);
}

static void ending_filter_beats_one_going_on_with_hash(void **state)
{
	struct tf_govern *g = *state;

	add(g, "a/+/#", 0);
	add(g, "a/+", 1);
	assert_int_equal(governing(g, "a/b"), 1);
	assert_int_equal(governing(g, "a/b/c"), 0);
	assert_int_equal(governing(g, "a/b/c/d"), 0);
	assert_int_equal(governing(g, "a"), NONE);
}

static void hash_governs_its_parent_level(void **state)
{
	struct tf_govern *g = *state;

	add(g, "a/#", 0);
	add(g, "a/b/#", 1);
	assert_int_equal(governing(g, "a"), 0);
	assert_int_equal(governing(g, "a/x"), 0);
	assert_int_equal(governing(g, "a/b"), 1);
	assert_int_equal(governing(g, "a/b/c"), 1);
	assert_int_equal(governing(g, "ab"), NONE);
	assert_int_equal(governing(g, "b"), NONE);
}

static void exact_filter_beats_hash_for_the_parent(void **state)
{
	struct tf_govern *g = *state;

	add(g, "a/#", 0);
	add(g, "a", 1);
	assert_int_equal(governing(g, "a"), 1);
	assert_int_equal(governing(g, "a/b"), 0);
}

static void root_hash_governs_everything_else(void **state)
{
	struct tf_govern *g = *state;

	add(g, "#", 0);
	assert_int_equal(governing(g, "a"), 0);
	assert_int_equal(governing(g, "a/b/c"), 0);
	assert_int_equal(governing(g, "/"), 0);
	add(g, "a/b", 1);
	add(g, "x/+", 2);
	assert_int_equal(governing(g, "a/b"), 1);
	assert_int_equal(governing(g, "x/y"), 2);
	assert_int_equal(governing(g, "a"), 0);
	assert_int_equal(governing(g, "a/c"), 0);
	assert_int_equal(governing(g, "a/b/c"), 0);
	assert_int_equal(governing(g, "x"), 0);
	assert_int_equal(governing(g, "x/y/z"), 0);
	assert_int_equal(governing(g, "q/r/s/t"), 0);
}

static void lookup_backtracks_from_a_dead_literal_branch(void **state)
{
	struct tf_govern *g = *state;

	add(g, "a/b/c/d", 0);
	add(g, "a/+/c/+", 1);
	add(g, "a/#", 2);
	add(g, "+/b/c/e", 3);
	/* a/b/c/e: the literal path a/b/c has no e and no + or # below it, so
	 * the next candidate is a/+/c/+ (level 2: + beats #; level 1: a beats
	 * the + of +/b/c/e). */
	assert_int_equal(governing(g, "a/b/c/e"), 1);
	assert_int_equal(governing(g, "a/b/c/d"), 0);
	assert_int_equal(governing(g, "a/b/x"), 2);
	assert_int_equal(governing(g, "a/b/c/d/e"), 2);
	assert_int_equal(governing(g, "z/b/c/e"), 3);
}

static void plus_governs_an_empty_level(void **state)
{
	struct tf_govern *g = *state;

	add(g, "a/+/b", 0);
	assert_int_equal(governing(g, "a//b"), 0);
	add(g, "a//b", 1);
	assert_int_equal(governing(g, "a//b"), 1);
	assert_int_equal(governing(g, "a/x/b"), 0);
}

static void identical_filter_is_refused_with_the_first_entry(void **state)
{
	struct tf_govern *g = *state;
	static const char *const filters[] = { "a/+", "a/#", "#", "a", "+", "a//b" };
	struct tf_governance existing;

	for (uint32_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
		add(g, filters[i], i);
	for (uint32_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
		struct tf_governance again = { TF_GOVERN_VIEW, 100 + i, 7, 0 };

		existing.kind = TF_GOVERN_NONE;
		existing.policy = 999;
		existing.rule = 999;
		assert_int_equal(tf_govern_add(g, filters[i], again, &existing), 0);
		assert_int_equal(existing.kind, TF_GOVERN_POLICY);
		assert_int_equal(existing.policy, i);
		assert_int_equal(existing.rule, 0);
	}
	/* The first entries still govern. */
	assert_int_equal(governing(g, "a/b"), 0);
	assert_int_equal(governing(g, "a/b/c"), 1);
	assert_int_equal(governing(g, "x/y"), 2);
	assert_int_equal(governing(g, "a"), 3);
	assert_int_equal(governing(g, "x"), 4);
	assert_int_equal(governing(g, "a//b"), 5);
}

static void view_entries_keep_kind_and_rule(void **state)
{
	struct tf_govern *g = *state;
	struct tf_governance view = { TF_GOVERN_VIEW, 4, 2, 0 };
	struct tf_governance existing;
	struct tf_governance e;

	add(g, "views/#", 0);
	assert_int_equal(tf_govern_add(g, "views/x/#", view, &existing), 1);
	e = tf_govern_lookup(g, "views/x/a/b");
	assert_int_equal(e.kind, TF_GOVERN_VIEW);
	assert_int_equal(e.policy, 4);
	assert_int_equal(e.rule, 2);
	e = tf_govern_lookup(g, "views/x");
	assert_int_equal(e.kind, TF_GOVERN_VIEW);
	assert_int_equal(governing(g, "views/y/a"), 0);
}

/* Whether overlap_any's answer for query is one of the expected policies
 * (a NONE-terminated list; just NONE when nothing may overlap). */
static void overlap_is_one_of(const struct tf_govern *g, const char *query, const long *expected)
{
	long got = overlapping(g, query);

	for (const long *e = expected; *e != NONE; e++)
		if (got == *e)
			return;
	if (got != NONE || expected[0] != NONE) {
		print_error("overlap_any(\"%s\") = %ld, not an expected policy\n", query, got);
		fail();
	}
}

#define OVERLAP(g, query, ...) overlap_is_one_of(g, query, (const long[]){ __VA_ARGS__, NONE })
#define NO_OVERLAP(g, query) overlap_is_one_of(g, query, (const long[]){ NONE })

static void overlap_any_finds_policies_under_a_view(void **state)
{
	struct tf_govern *g = *state;

	add(g, "views/x/a", 0);
	add(g, "city/+/telemetry", 1);
	add(g, "fleet/#", 2);
	OVERLAP(g, "views/x/#", 0);
	OVERLAP(g, "views/+/a", 0);
	OVERLAP(g, "views/x/a", 0);
	OVERLAP(g, "views/+/#", 0);
	OVERLAP(g, "+/x/+", 0, 2);   /* fleet/x/a matches fleet/# too */
	OVERLAP(g, "fleet/x/#", 2);
	NO_OVERLAP(g, "views/y/#");
	NO_OVERLAP(g, "views/x");
	NO_OVERLAP(g, "views/x/b");
	NO_OVERLAP(g, "views/x/a/b");
	OVERLAP(g, "views/x/+/#", 0); /* # matches the parent: views/x/a */
	NO_OVERLAP(g, "views/x/+/+");
	NO_OVERLAP(g, "views");
}

static void overlap_any_with_plus_in_the_query(void **state)
{
	struct tf_govern *g = *state;

	add(g, "city/+/telemetry", 0);
	add(g, "city/w/status", 1);
	add(g, "fleet/#", 2);
	OVERLAP(g, "city/w/+", 0, 1);
	OVERLAP(g, "city/+/status", 1);
	OVERLAP(g, "city/x/+", 0);
	OVERLAP(g, "+/w/telemetry", 0, 2);
	OVERLAP(g, "+/x/status", 2);
	OVERLAP(g, "+", 2);          /* fleet/# matches fleet */
	OVERLAP(g, "+/+/+/+", 2);
	OVERLAP(g, "#", 0, 1, 2);
	OVERLAP(g, "city/#", 0, 1);
	OVERLAP(g, "+/+/telemetry", 0, 2);
	NO_OVERLAP(g, "city/+");
	NO_OVERLAP(g, "city/+/+/+");
	NO_OVERLAP(g, "city/+/state");
	NO_OVERLAP(g, "town/+/#");
	NO_OVERLAP(g, "city");
}

static void overlap_any_against_view_entries(void **state)
{
	struct tf_govern *g = *state;
	struct tf_governance view = { TF_GOVERN_VIEW, 3, 1, 0 };
	struct tf_governance existing;
	struct tf_governance e;

	assert_int_equal(tf_govern_add(g, "views/x/#", view, &existing), 1);
	e = tf_govern_overlap_any(g, "views/+/a");
	assert_int_equal(e.kind, TF_GOVERN_VIEW);
	assert_int_equal(e.policy, 3);
	assert_int_equal(e.rule, 1);
	e = tf_govern_overlap_any(g, "views/x");
	assert_int_equal(e.kind, TF_GOVERN_VIEW);
	e = tf_govern_overlap_any(g, "views");
	assert_int_equal(e.kind, TF_GOVERN_NONE);
	e = tf_govern_overlap_any(g, "views/y/#");
	assert_int_equal(e.kind, TF_GOVERN_NONE);
}

/* overlap_other against every pair, on random filters over a small
 * alphabet: it finds an entry of another owner exactly when one overlaps
 * (tf_filters_overlap decides), and only such an entry. */
static void overlap_other_agrees_with_pairwise_overlap(void **state)
{
	static const char *const levels[] = { "a", "b", "+", "#" };
	char filters[200][16];
	uint32_t owners[200], n = 0;
	uint64_t rnd = 0x9E3779B97F4A7C15ULL;
	struct tf_govern *g = *state;

	while (n < 200) {
		struct tf_governance e = { TF_GOVERN_POLICY, n, 0, 0 }, existing;
		size_t len = 0;
		int depth;

		rnd ^= rnd << 13;
		rnd ^= rnd >> 7;
		rnd ^= rnd << 17;
		depth = 1 + (int)(rnd % 4);
		for (int d = 0; d < depth; d++) {
			const char *l = levels[(rnd >> (8 + 2 * d)) % 4];

			if (l[0] == '#' && d != depth - 1)
				l = "+";
			len += (size_t)snprintf(filters[n] + len, sizeof(filters[n]) - len, "%s%s",
				d ? "/" : "", l);
		}
		e.owner = owners[n] = (uint32_t)((rnd >> 40) % 3);
		if (tf_govern_add(g, filters[n], e, &existing) == 1)
			n++;
		if (rnd % 1000 == 0)
			break;
	}
	assert_true(n > 50);
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t owner = 0; owner < 4; owner++) {
			struct tf_governance e = tf_govern_overlap_other(g, filters[i], owner);
			bool any = false;

			for (uint32_t j = 0; j < n; j++)
				any |= owners[j] != owner
					&& tf_filters_overlap(filters[i], filters[j]);
			if (any != (e.kind != TF_GOVERN_NONE))
				fail_msg("%s, owner %u: overlap_other says %d", filters[i], owner,
					!any);
			if (any && (owners[e.policy] == owner
					|| !tf_filters_overlap(filters[i], filters[e.policy])))
				fail_msg("%s, owner %u: wrong entry %s", filters[i], owner,
					filters[e.policy]);
		}
	}
}

static void topics_beyond_filter_limits_still_resolve(void **state)
{
	struct tf_govern *g = *state;
	char topic[2 * 200 + TF_TOPIC_MAX_LEN + 16];

	add(g, "a/+", 0);
	add(g, "a/#", 1);
	/* A level longer than any filter's can only match + or #. */
	memcpy(topic, "a/", 2);
	memset(topic + 2, 'x', TF_TOPIC_MAX_LEN + 8);
	topic[2 + TF_TOPIC_MAX_LEN + 8] = '\0';
	assert_int_equal(governing(g, topic), 0);
	/* More levels than a filter may have. */
	for (int i = 0; i < 200; i++) {
		topic[2 * i] = 'a';
		topic[2 * i + 1] = i + 1 < 200 ? '/' : '\0';
	}
	assert_int_equal(governing(g, topic), 1);
	topic[0] = 'b';
	assert_int_equal(governing(g, topic), NONE);
}

#define MANY 100000u

static void many_filters(void **state)
{
	struct tf_govern *g = *state;
	char buf[64];
	size_t bytes_before = tf_govern_bytes(g);

	for (uint32_t i = 0; i < MANY; i++) {
		snprintf(buf, sizeof(buf), "city/%u/+/telemetry", (unsigned)i);
		add(g, buf, i);
	}
	assert_true(tf_govern_bytes(g) > bytes_before);
	/* Every filter governs its own topics. */
	for (uint32_t i = 0; i < MANY; i++) {
		snprintf(buf, sizeof(buf), "city/%u/pump-%u/telemetry", (unsigned)i, (unsigned)(i % 7));
		assert_int_equal(governing(g, buf), i);
	}
	assert_int_equal(governing(g, "city/0/a/telemetry"), 0);
	assert_int_equal(governing(g, "city/99999/a/telemetry"), 99999);
	assert_int_equal(governing(g, "city/50000//telemetry"), 50000);
	assert_int_equal(governing(g, "city/100000/a/telemetry"), NONE);
	assert_int_equal(governing(g, "city/5/a/status"), NONE);
	assert_int_equal(governing(g, "city/5/a"), NONE);
	assert_int_equal(governing(g, "city/5/a/telemetry/x"), NONE);
	assert_int_equal(governing(g, "city/05/a/telemetry"), NONE);
	assert_int_equal(overlapping(g, "+/+/+/status"), NONE);
	assert_int_equal(overlapping(g, "city/777/#"), 777);
	assert_int_equal(overlapping(g, "city/100000/#"), NONE);
	{
		long p = overlapping(g, "city/+/x/telemetry");

		assert_true(p >= 0 && p < (long)MANY);
	}

	/* More specific and less specific filters among them. */
	add(g, "city/#", MANY);
	add(g, "city/42/valve/telemetry", MANY + 1);
	add(g, "city/+/valve/telemetry", MANY + 2);
	assert_int_equal(governing(g, "city/42/valve/telemetry"), MANY + 1);
	assert_int_equal(governing(g, "city/42/pump/telemetry"), 42);
	assert_int_equal(governing(g, "city/43/valve/telemetry"), 43);
	assert_int_equal(governing(g, "city/100000/valve/telemetry"), MANY + 2);
	assert_int_equal(governing(g, "city/100000/pump/telemetry"), MANY);
	assert_int_equal(governing(g, "city/5/a/status"), MANY);
	assert_int_equal(governing(g, "city"), MANY);
	assert_int_equal(governing(g, "town/5/a/telemetry"), NONE);
	assert_int_equal(overlapping(g, "+/+/+/status"), MANY);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(empty_governs_nothing),
		T(no_matching_entry_is_none),
		T(literal_beats_plus_at_the_first_difference),
		T(literal_beats_plus_added_in_either_order),
		T(plus_beats_hash),
		T(plus_then_hash_beats_hash),
		T(ending_filter_beats_one_going_on_with_hash),
		T(hash_governs_its_parent_level),
		T(exact_filter_beats_hash_for_the_parent),
		T(root_hash_governs_everything_else),
		T(lookup_backtracks_from_a_dead_literal_branch),
		T(plus_governs_an_empty_level),
		T(identical_filter_is_refused_with_the_first_entry),
		T(view_entries_keep_kind_and_rule),
		T(overlap_any_finds_policies_under_a_view),
		T(overlap_any_with_plus_in_the_query),
		T(overlap_any_against_view_entries),
		T(overlap_other_agrees_with_pairwise_overlap),
						T(topics_beyond_filter_limits_still_resolve),
		T(many_filters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
