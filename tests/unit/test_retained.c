/* Unit tests for broker/tracking/retained.c: which topics hold a retained copy under
 * a retention, and clearing them once it has passed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/tracking/retained.h"

/* 2026-06-01T00:00:00Z */
#define NOW 1780272000000LL

#define MAX_CLEARED 20000

/* The topics clear() was called with, in order. */
struct cleared {
	char *topics[MAX_CLEARED];
	uint32_t n;
};

struct fixture {
	struct tf_retained *r;
	struct cleared c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->r = tf_retained_new();
	if (f->r == NULL) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static void forget_cleared(struct cleared *c)
{
	for (uint32_t i = 0; i < c->n; i++)
		free(c->topics[i]);
	c->n = 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tf_retained_free(f->r);
	forget_cleared(&f->c);
	free(f);
	return 0;
}

static void record_clear(void *ctx, const char *topic)
{
	struct cleared *c = ctx;

	assert_true(c->n < MAX_CLEARED);
	c->topics[c->n] = strdup(topic);
	assert_non_null(c->topics[c->n]);
	c->n++;
}

static void expire(struct fixture *f, int64_t now)
{
	tf_retained_expire(f->r, now, record_clear, &f->c);
}

/* How many times topic was cleared. */
static uint32_t times_cleared(const struct cleared *c, const char *topic)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < c->n; i++)
		n += strcmp(c->topics[i], topic) == 0;
	return n;
}

static void new_table_is_empty(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_retained_count(f->r), 0);
	expire(f, NOW);
	expire(f, INT64_MAX - 1);
	assert_int_equal(f->c.n, 0);
}

static void due_topics_are_cleared_once(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_retained_note(f->r, "a/1", "p@1", NOW + 1000), 0);
	assert_int_equal(tf_retained_note(f->r, "a/2", "p@1", NOW + 2000), 0);
	assert_int_equal(tf_retained_note(f->r, "a/3", "p@1", NOW + 3000), 0);
	assert_int_equal(tf_retained_count(f->r), 3);
	/* Due at exactly its time. */
	expire(f, NOW + 2000);
	assert_int_equal(f->c.n, 2);
	assert_int_equal(times_cleared(&f->c, "a/1"), 1);
	assert_int_equal(times_cleared(&f->c, "a/2"), 1);
	assert_int_equal(tf_retained_count(f->r), 1);
	/* Not again. */
	expire(f, NOW + 2500);
	assert_int_equal(f->c.n, 2);
	expire(f, NOW + 3000);
	assert_int_equal(f->c.n, 3);
	assert_int_equal(times_cleared(&f->c, "a/3"), 1);
	assert_int_equal(tf_retained_count(f->r), 0);
	expire(f, NOW + 100000);
	assert_int_equal(f->c.n, 3);
}

static void expire_before_earliest_calls_nothing(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_retained_note(f->r, "b", "p@1", NOW + 5000), 0);
	assert_int_equal(tf_retained_note(f->r, "a", "p@1", NOW + 2000), 0);
	expire(f, NOW);
	expire(f, NOW + 1999);
	assert_int_equal(f->c.n, 0);
	assert_int_equal(tf_retained_count(f->r), 2);
	expire(f, NOW + 2000);
	assert_int_equal(f->c.n, 1);
	assert_string_equal(f->c.topics[0], "a");
	expire(f, NOW + 4999);
	assert_int_equal(f->c.n, 1);
	expire(f, NOW + 5000);
	assert_int_equal(f->c.n, 2);
	assert_string_equal(f->c.topics[1], "b");
}

static void later_note_moves_the_time(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_retained_note(f->r, "t", "p@1", NOW + 1000), 0);
	/* A new retained message on the topic: its own retention counts. */
	assert_int_equal(tf_retained_note(f->r, "t", "p@1", NOW + 5000), 0);
	assert_int_equal(tf_retained_count(f->r), 1);
	expire(f, NOW + 1000);
	expire(f, NOW + 4999);
	assert_int_equal(f->c.n, 0);
	expire(f, NOW + 5000);
	assert_int_equal(f->c.n, 1);
	assert_string_equal(f->c.topics[0], "t");
}

static void later_note_can_move_the_time_earlier(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_retained_note(f->r, "t", "p@1", NOW + 5000), 0);
	assert_int_equal(tf_retained_note(f->r, "u", "p@1", NOW + 9000), 0);
	/* After a scan that found nothing due. */
	expire(f, NOW + 4000);
	assert_int_equal(f->c.n, 0);
	assert_int_equal(tf_retained_note(f->r, "u", "p@1", NOW + 4500), 0);
	expire(f, NOW + 4500);
	assert_int_equal(f->c.n, 1);
	assert_string_equal(f->c.topics[0], "u");
	expire(f, NOW + 5000);
	assert_int_equal(f->c.n, 2);
	assert_string_equal(f->c.topics[1], "t");
}

static void note_after_clear_starts_again(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_retained_note(f->r, "t", "p@1", NOW + 1000), 0);
	expire(f, NOW + 1000);
	assert_int_equal(f->c.n, 1);
	assert_int_equal(tf_retained_count(f->r), 0);
	assert_int_equal(tf_retained_note(f->r, "t", "p@1", NOW + 3000), 0);
	assert_int_equal(tf_retained_count(f->r), 1);
	expire(f, NOW + 2999);
	assert_int_equal(f->c.n, 1);
	expire(f, NOW + 3000);
	assert_int_equal(f->c.n, 2);
	assert_int_equal(times_cleared(&f->c, "t"), 2);
}

static void forget_cancels(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_retained_note(f->r, "keep", "p@1", NOW + 1000), 0);
	assert_int_equal(tf_retained_note(f->r, "drop", "p@1", NOW + 1000), 0);
	tf_retained_forget(f->r, "drop");
	assert_int_equal(tf_retained_count(f->r), 1);
	/* Forgetting twice, or an unknown topic, changes nothing. */
	tf_retained_forget(f->r, "drop");
	tf_retained_forget(f->r, "never-noted");
	tf_retained_forget(f->r, "kee");
	assert_int_equal(tf_retained_count(f->r), 1);
	expire(f, NOW + 10000);
	assert_int_equal(f->c.n, 1);
	assert_string_equal(f->c.topics[0], "keep");
	assert_int_equal(tf_retained_count(f->r), 0);
}

static void note_after_forget_counts_again(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_retained_note(f->r, "t", "p@1", NOW + 1000), 0);
	tf_retained_forget(f->r, "t");
	assert_int_equal(tf_retained_count(f->r), 0);
	assert_int_equal(tf_retained_note(f->r, "t", "p@1", NOW + 2000), 0);
	assert_int_equal(tf_retained_count(f->r), 1);
	expire(f, NOW + 1000);
	assert_int_equal(f->c.n, 0);
	expire(f, NOW + 2000);
	assert_int_equal(f->c.n, 1);
	assert_int_equal(tf_retained_count(f->r), 0);
}

static void topics_are_copied(void **state)
{
	struct fixture *f = *state;
	char topic[32];

	strcpy(topic, "city/water/d1/telemetry");
	assert_int_equal(tf_retained_note(f->r, topic, "p@1", NOW + 1000), 0);
	memset(topic, 'z', sizeof(topic) - 1);
	topic[sizeof(topic) - 1] = '\0';
	expire(f, NOW + 1000);
	assert_int_equal(f->c.n, 1);
	assert_string_equal(f->c.topics[0], "city/water/d1/telemetry");
}

#define MANY 10000u

static void topic_name(char *buf, size_t cap, uint32_t i)
{
	snprintf(buf, cap, "city/water/d%u/telemetry", (unsigned)i);
}

/* Many topics; most forgotten, so that expiring compacts the table; the
 * rest still fire at their own time, and forget and note still find them. */
static void many_topics_with_compaction(void **state)
{
	struct fixture *f = *state;
	char topic[64];

	for (uint32_t i = 0; i < MANY; i++) {
		topic_name(topic, sizeof(topic), i);
		/* Topic i is due at NOW + 1000 + i. */
		assert_int_equal(tf_retained_note(f->r, topic, "p@1", NOW + 1000 + i), 0);
	}
	assert_int_equal(tf_retained_count(f->r), MANY);
	/* Keep every tenth. */
	for (uint32_t i = 0; i < MANY; i++) {
		if (i % 10 == 0)
			continue;
		topic_name(topic, sizeof(topic), i);
		tf_retained_forget(f->r, topic);
	}
	assert_int_equal(tf_retained_count(f->r), MANY / 10);
	/* Nothing is due yet. */
	expire(f, NOW + 999);
	assert_int_equal(f->c.n, 0);
	/* Those up to 4999 go now, and with them most of the table: it is
	 * compacted. */
	expire(f, NOW + 1000 + 4999);
	assert_int_equal(f->c.n, 500);
	for (uint32_t i = 0; i < 5000; i += 10) {
		topic_name(topic, sizeof(topic), i);
		assert_int_equal(times_cleared(&f->c, topic), 1);
	}
	assert_int_equal(tf_retained_count(f->r), 500);
	/* After compaction the index still finds the survivors: forget one,
	 * move one later, and note a forgotten topic afresh. */
	topic_name(topic, sizeof(topic), 5000);
	tf_retained_forget(f->r, topic);
	topic_name(topic, sizeof(topic), 5010);
	assert_int_equal(tf_retained_note(f->r, topic, "p@1", NOW + 100000), 0);
	topic_name(topic, sizeof(topic), 5001);
	assert_int_equal(tf_retained_note(f->r, topic, "p@1", NOW + 1000 + 5001), 0);
	assert_int_equal(tf_retained_count(f->r), 500);
	forget_cleared(&f->c);
	expire(f, NOW + 1000 + MANY);
	/* 5000 to 9990 by tens, less 5000 and 5010, plus 5001. */
	assert_int_equal(f->c.n, 500 - 2 + 1);
	for (uint32_t i = 5000; i < MANY; i++) {
		bool want = (i % 10 == 0 && i != 5000 && i != 5010) || i == 5001;

		topic_name(topic, sizeof(topic), i);
		assert_int_equal(times_cleared(&f->c, topic), want ? 1 : 0);
	}
	assert_int_equal(tf_retained_count(f->r), 1);
	forget_cleared(&f->c);
	expire(f, NOW + 100000);
	assert_int_equal(f->c.n, 1);
	topic_name(topic, sizeof(topic), 5010);
	assert_string_equal(f->c.topics[0], topic);
	assert_int_equal(tf_retained_count(f->r), 0);
}

/* Topics cleared by expiry (not forgotten) are compacted away too, and
 * can be noted again afterwards. */
static void many_topics_cleared_and_noted_again(void **state)
{
	struct fixture *f = *state;
	char topic[64];

	for (uint32_t i = 0; i < MANY; i++) {
		topic_name(topic, sizeof(topic), i);
		assert_int_equal(tf_retained_note(f->r, topic, "p@1", NOW + (i < MANY - 100 ? 10 : 20)), 0);
	}
	expire(f, NOW + 10);
	assert_int_equal(f->c.n, MANY - 100);
	assert_int_equal(tf_retained_count(f->r), 100);
	for (uint32_t i = 0; i < MANY; i += 2) {
		topic_name(topic, sizeof(topic), i);
		assert_int_equal(tf_retained_note(f->r, topic, "p@1", NOW + 30), 0);
	}
	/* The last 100 are all due at 20; even ones of them now at 30. */
	assert_int_equal(tf_retained_count(f->r), MANY / 2 + 50);
	forget_cleared(&f->c);
	expire(f, NOW + 20);
	assert_int_equal(f->c.n, 50);
	forget_cleared(&f->c);
	expire(f, NOW + 30);
	assert_int_equal(f->c.n, MANY / 2);
	for (uint32_t i = 0; i < MANY; i += 2) {
		topic_name(topic, sizeof(topic), i);
		assert_int_equal(times_cleared(&f->c, topic), 1);
	}
	assert_int_equal(tf_retained_count(f->r), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(new_table_is_empty),
		T(due_topics_are_cleared_once),
		T(expire_before_earliest_calls_nothing),
		T(later_note_moves_the_time),
		T(later_note_can_move_the_time_earlier),
		T(note_after_clear_starts_again),
		T(forget_cancels),
		T(note_after_forget_counts_again),
		T(topics_are_copied),
		T(many_topics_with_compaction),
		T(many_topics_cleared_and_noted_again),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
