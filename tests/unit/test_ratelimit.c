/* Unit tests for broker/guard/ratelimit.c: the token bucket per (policy, client)
 * behind limits.max_messages_per_second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/guard/ratelimit.h"

/* 2026-06-01T00:00:00Z: the time of every call unless said. */
#define NOW 1780272000000LL

static int setup(void **state)
{
	struct tf_ratelimit *r = tf_ratelimit_new();

	if (r == NULL)
		return -1;
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	tf_ratelimit_free(*state);
	return 0;
}

/* How many of n messages at now_ms are allowed. */
static uint32_t take_n(struct tf_ratelimit *r, uint32_t policy, const char *client,
		uint32_t per_second, int64_t now_ms, uint32_t n)
{
	uint32_t allowed = 0;

	for (uint32_t i = 0; i < n; i++)
		allowed += tf_ratelimit_take(r, policy, client, per_second, now_ms);
	return allowed;
}

static void fresh_bucket_allows_one_seconds_worth(void **state)
{
	struct tf_ratelimit *r = *state;

	for (uint32_t i = 0; i < 10; i++)
		assert_true(tf_ratelimit_take(r, 0, "ww-sensor-01", 10, NOW));
	assert_false(tf_ratelimit_take(r, 0, "ww-sensor-01", 10, NOW));
	assert_false(tf_ratelimit_take(r, 0, "ww-sensor-01", 10, NOW));
}

static void rate_of_one(void **state)
{
	struct tf_ratelimit *r = *state;

	assert_true(tf_ratelimit_take(r, 0, "c", 1, NOW));
	assert_false(tf_ratelimit_take(r, 0, "c", 1, NOW));
	assert_false(tf_ratelimit_take(r, 0, "c", 1, NOW + 999));
	assert_true(tf_ratelimit_take(r, 0, "c", 1, NOW + 1999));
	assert_false(tf_ratelimit_take(r, 0, "c", 1, NOW + 1999));
}

static void large_rate(void **state)
{
	struct tf_ratelimit *r = *state;

	assert_int_equal(take_n(r, 0, "c", 1000000, NOW, 1000001), 1000000);
}

static void refills_continuously(void **state)
{
	struct tf_ratelimit *r = *state;

	assert_int_equal(take_n(r, 0, "c", 10, NOW, 20), 10);
	/* 500 ms at 10/s: 5 more. */
	assert_int_equal(take_n(r, 0, "c", 10, NOW + 500, 20), 5);
	/* 100 ms: one more. */
	assert_int_equal(take_n(r, 0, "c", 10, NOW + 600, 20), 1);
	/* 50 ms: half a message, none yet; 50 ms more make it whole. */
	assert_false(tf_ratelimit_take(r, 0, "c", 10, NOW + 650));
	assert_true(tf_ratelimit_take(r, 0, "c", 10, NOW + 700));
	assert_false(tf_ratelimit_take(r, 0, "c", 10, NOW + 700));
}

static void steady_rate_is_allowed(void **state)
{
	struct tf_ratelimit *r = *state;

	assert_int_equal(take_n(r, 0, "c", 10, NOW, 10), 10);
	/* One message every 100 ms, for a minute: all within 10/s. */
	for (int64_t t = 100; t <= 60000; t += 100) {
		assert_true(tf_ratelimit_take(r, 0, "c", 10, NOW + t));
		assert_false(tf_ratelimit_take(r, 0, "c", 10, NOW + t));
	}
}

static void never_holds_more_than_one_second(void **state)
{
	struct tf_ratelimit *r = *state;

	assert_true(tf_ratelimit_take(r, 0, "c", 10, NOW));
	/* An hour idle: still only 10 at once. */
	assert_int_equal(take_n(r, 0, "c", 10, NOW + 3600000, 30), 10);
	/* Partly drained, then a long wait. */
	assert_int_equal(take_n(r, 0, "c", 10, NOW + 3601000, 3), 3);
	assert_int_equal(take_n(r, 0, "c", 10, NOW + 3700000, 30), 10);
}

static void clock_going_back_adds_nothing(void **state)
{
	struct tf_ratelimit *r = *state;

	assert_int_equal(take_n(r, 0, "c", 10, NOW, 10), 10);
	assert_false(tf_ratelimit_take(r, 0, "c", 10, NOW - 5000));
	/* And the bucket refills from NOW, not from the earlier time. */
	assert_int_equal(take_n(r, 0, "c", 10, NOW + 300, 10), 3);
}

static void separate_buckets_per_client(void **state)
{
	struct tf_ratelimit *r = *state;

	assert_int_equal(take_n(r, 0, "alice", 5, NOW, 10), 5);
	assert_int_equal(take_n(r, 0, "bob", 5, NOW, 10), 5);
	/* A prefix of a name, and a longer one, are other clients. */
	assert_int_equal(take_n(r, 0, "ali", 5, NOW, 10), 5);
	assert_int_equal(take_n(r, 0, "alice2", 5, NOW, 10), 5);
	assert_false(tf_ratelimit_take(r, 0, "alice", 5, NOW));
}

static void separate_buckets_per_policy(void **state)
{
	struct tf_ratelimit *r = *state;

	assert_int_equal(take_n(r, 0, "alice", 5, NOW, 10), 5);
	assert_int_equal(take_n(r, 1, "alice", 5, NOW, 10), 5);
	assert_int_equal(take_n(r, 256, "alice", 5, NOW, 10), 5);
	assert_int_equal(take_n(r, UINT32_MAX, "alice", 5, NOW, 10), 5);
	assert_false(tf_ratelimit_take(r, 0, "alice", 5, NOW));
	assert_false(tf_ratelimit_take(r, 1, "alice", 5, NOW));
}

/* The longest client ids (128 characters) are told apart by their last
 * character. */
static void long_client_ids(void **state)
{
	struct tf_ratelimit *r = *state;
	char a[129], b[129];

	memset(a, 'x', 128);
	a[128] = '\0';
	memcpy(b, a, sizeof(b));
	b[127] = 'y';
	assert_int_equal(take_n(r, 7, a, 3, NOW, 5), 3);
	assert_int_equal(take_n(r, 7, b, 3, NOW, 5), 3);
	assert_false(tf_ratelimit_take(r, 7, a, 3, NOW));
}

static void clear_resets_every_bucket(void **state)
{
	struct tf_ratelimit *r = *state;

	assert_int_equal(take_n(r, 0, "alice", 5, NOW, 10), 5);
	assert_int_equal(take_n(r, 1, "bob", 5, NOW, 10), 5);
	tf_ratelimit_clear(r);
	assert_int_equal(take_n(r, 0, "alice", 5, NOW, 10), 5);
	assert_int_equal(take_n(r, 1, "bob", 5, NOW, 10), 5);
	/* Clearing twice, and an empty limiter, are fine. */
	tf_ratelimit_clear(r);
	tf_ratelimit_clear(r);
	assert_int_equal(take_n(r, 0, "alice", 5, NOW, 10), 5);
}

#define CLIENTS 70000u

static void client_name(char *buf, size_t cap, uint32_t i)
{
	snprintf(buf, cap, "client-%u", (unsigned)i);
}

/* More clients than the table keeps before a rebuild. Busy ones (used
 * within the last second) keep their state across the rebuild; idle ones
 * are dropped and come back with a full bucket. */
static void rebuild_keeps_busy_buckets(void **state)
{
	struct tf_ratelimit *r = *state;
	char name[32];
	/* Busy clients, spread over the table's order. */
	static const uint32_t busy[] = { 0, 1, 777, 32768, 65000, 65534 };
	const size_t n_busy = sizeof(busy) / sizeof(busy[0]);

	/* 65,535 idle clients, each with one of two messages used. */
	for (uint32_t i = 0; i < 65535; i++) {
		client_name(name, sizeof(name), i);
		assert_true(tf_ratelimit_take(r, 0, name, 2, NOW));
	}
	/* Ten seconds later the busy ones drain their buckets. */
	for (size_t k = 0; k < n_busy; k++) {
		client_name(name, sizeof(name), busy[k]);
		assert_int_equal(take_n(r, 0, name, 2, NOW + 10000, 3), 2);
	}
	/* Some with a token left: 2 of 3 used. */
	assert_int_equal(take_n(r, 0, "half-busy", 3, NOW + 10000, 2), 2);
	/* The new clients go past 65,536 and rebuild the table. */
	for (uint32_t i = 65535; i < CLIENTS; i++) {
		client_name(name, sizeof(name), i);
		assert_true(tf_ratelimit_take(r, 0, name, 2, NOW + 10400));
	}
	/* 400 ms at 2/s: 0.8 of a message, so still refused. */
	for (size_t k = 0; k < n_busy; k++) {
		client_name(name, sizeof(name), busy[k]);
		assert_false(tf_ratelimit_take(r, 0, name, 2, NOW + 10400));
	}
	/* 1 + 0.4 * 3 = 2.2 tokens. */
	assert_int_equal(take_n(r, 0, "half-busy", 3, NOW + 10400, 5), 2);
	/* Idle ones are full. */
	for (uint32_t i = 2; i < 65535; i += 1001) {
		if (i == 777 || i == 32768 || i == 65000)
			continue;
		client_name(name, sizeof(name), i);
		assert_int_equal(take_n(r, 0, name, 2, NOW + 10400, 3), 2);
	}
	/* The new ones kept their own state: one of two used. */
	for (uint32_t i = 65535; i < CLIENTS; i += 97) {
		client_name(name, sizeof(name), i);
		assert_int_equal(take_n(r, 0, name, 2, NOW + 10400, 3), 1);
	}
}

/* A bucket kept by one rebuild moves in the table; a second rebuild
 * while it is still busy must find it under its own name. */
static void state_survives_two_rebuilds(void **state)
{
	struct tf_ratelimit *r = *state;
	char name[32];
	int64_t t = NOW + 10000;

	for (uint32_t i = 0; i < 65535; i++) {
		client_name(name, sizeof(name), i);
		assert_true(tf_ratelimit_take(r, 0, name, 2, NOW));
	}
	assert_int_equal(take_n(r, 0, "busy", 2, t, 3), 2);
	/* The first rebuild keeps only "busy"; then enough busy newcomers
	 * for a second one, 300 ms after "busy" drained its bucket. */
	for (uint32_t i = 0; i < 65536; i++) {
		snprintf(name, sizeof(name), "new-%u", (unsigned)i);
		assert_true(tf_ratelimit_take(r, 0, name, 2, t + 100 + (i >= 10 ? 200 : 0)));
	}
	assert_false(tf_ratelimit_take(r, 0, "busy", 2, t + 300));
	/* The idle ones of the start came back full, on their own. */
	client_name(name, sizeof(name), 0);
	assert_int_equal(take_n(r, 0, name, 2, t + 300, 3), 2);
	assert_false(tf_ratelimit_take(r, 0, "busy", 2, t + 300));
	snprintf(name, sizeof(name), "new-%u", 5u);
	assert_int_equal(take_n(r, 0, name, 2, t + 300, 3), 1);
}

/* Every client busy: the rebuild drops nothing and the table grows on. */
static void rebuild_with_every_client_busy(void **state)
{
	struct tf_ratelimit *r = *state;
	char name[32];

	for (uint32_t i = 0; i < CLIENTS; i++) {
		client_name(name, sizeof(name), i);
		assert_true(tf_ratelimit_take(r, 0, name, 1, NOW + i / 1000));
	}
	for (uint32_t i = 0; i < CLIENTS; i++) {
		client_name(name, sizeof(name), i);
		assert_false(tf_ratelimit_take(r, 0, name, 1, NOW + 100));
	}
	/* A second later each has one again. */
	for (uint32_t i = 0; i < CLIENTS; i += 7) {
		client_name(name, sizeof(name), i);
		assert_true(tf_ratelimit_take(r, 0, name, 1, NOW + 1100));
		assert_false(tf_ratelimit_take(r, 0, name, 1, NOW + 1100));
	}
}

/* Rebuilds happen again as idle clients keep coming. */
static void repeated_rebuilds(void **state)
{
	struct tf_ratelimit *r = *state;
	char name[32];

	for (uint32_t round = 0; round < 4; round++) {
		int64_t t = NOW + (int64_t)round * 5000;

		for (uint32_t i = 0; i < 40000; i++) {
			client_name(name, sizeof(name), round * 40000 + i);
			assert_true(tf_ratelimit_take(r, 3, name, 1, t));
		}
		/* This round's clients are refused; the last round's are full. */
		for (uint32_t i = 0; i < 40000; i += 501) {
			client_name(name, sizeof(name), round * 40000 + i);
			assert_false(tf_ratelimit_take(r, 3, name, 1, t));
			if (round > 0) {
				client_name(name, sizeof(name), (round - 1) * 40000 + i);
				assert_true(tf_ratelimit_take(r, 3, name, 1, t));
			}
		}
	}
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(fresh_bucket_allows_one_seconds_worth),
		T(rate_of_one),
		T(large_rate),
		T(refills_continuously),
		T(steady_rate_is_allowed),
		T(never_holds_more_than_one_second),
		T(clock_going_back_adds_nothing),
		T(separate_buckets_per_client),
		T(separate_buckets_per_policy),
		T(long_client_ids),
		T(clear_resets_every_bucket),
		T(rebuild_keeps_busy_buckets),
		T(state_survives_two_rebuilds),
		T(rebuild_with_every_client_busy),
		T(repeated_rebuilds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
