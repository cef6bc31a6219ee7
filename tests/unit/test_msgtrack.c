/* Unit tests for broker/tracking/msgtrack.c: the receive times of stored messages,
 * keyed by the stored topic's address, for policies with a retention. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/tracking/msgtrack.h"

/* Keys are addresses inside this pool; the tracker never reads them. */
static char pool[1u << 20];

static int setup(void **state)
{
	struct tf_msgtrack *t = tf_msgtrack_new();

	if (t == NULL)
		return -1;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	tf_msgtrack_free(*state);
	return 0;
}

static const char payload[] = "{\"flow\":12.5}";
#define PLEN ((uint32_t)(sizeof(payload) - 1))

/* The receive time recorded, or INT64_MIN when none. */
static int64_t received_at(const struct tf_msgtrack *t, const void *key, const void *p,
		uint32_t len)
{
	struct tf_msgtrack_hit hit;

	return tf_msgtrack_find(t, key, p, len, &hit) ? hit.received_ms : INT64_MIN;
}

static int put(struct tf_msgtrack *t, const void *key, int64_t received, int64_t forget)
{
	return tf_msgtrack_put(t, key, payload, PLEN, received, forget, NULL);
}

static int64_t get(const struct tf_msgtrack *t, const void *key)
{
	return received_at(t, key, payload, PLEN);
}

/* The home slot of key in a table of mask + 1 slots under the tracker's
 * pointer hash as written today, to build colliding probe runs. Should the
 * hash change, the tests that use it still check the same behaviour, only
 * with less crowded runs. */
static uint32_t home_of(const void *key, uint32_t mask)
{
	uint64_t x = (uint64_t)(uintptr_t)key;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return (uint32_t)x & mask;
}

/* Fills keys[0..n) with distinct pool addresses, not in used[], whose home
 * slot (of 1024) is home. */
static void keys_with_home(uint32_t home, const void **keys, uint32_t n, bool *used)
{
	uint32_t found = 0;

	for (size_t i = 0; i < sizeof(pool) && found < n; i++) {
		if (used[i] || home_of(&pool[i], 1023) != home)
			continue;
		used[i] = true;
		keys[found++] = &pool[i];
	}
	assert_int_equal(found, n);
}

/* Sweeps until everything due is gone. One call visits at most one pass
 * over the table, and a removal takes a visit of its own; a call that
 * removes nothing has visited every slot. */
static void sweep_all(struct tf_msgtrack *t, int64_t now)
{
	uint32_t before;
	int calls = 0;

	do {
		before = tf_msgtrack_count(t);
		tf_msgtrack_sweep(t, now, UINT32_MAX);
		calls++;
	} while (tf_msgtrack_count(t) != before && calls < 100);
	assert_true(calls < 100);
}

static void new_table_is_empty(void **state)
{
	struct tf_msgtrack *t = *state;

	assert_int_equal(tf_msgtrack_count(t), 0);
	assert_true(get(t, &pool[0]) == INT64_MIN);
}

static void put_then_get(void **state)
{
	struct tf_msgtrack *t = *state;

	assert_int_equal(put(t, &pool[0], 1000, 11000), 0);
	assert_int_equal(put(t, &pool[1], 2000, 12000), 0);
	assert_int_equal(put(t, &pool[64], -5, 100), 0);
	assert_int_equal(tf_msgtrack_count(t), 3);
	assert_true(get(t, &pool[0]) == 1000);
	assert_true(get(t, &pool[1]) == 2000);
	assert_true(get(t, &pool[64]) == -5);
}

static void payload_is_compared_by_content(void **state)
{
	struct tf_msgtrack *t = *state;
	char copy[sizeof(payload)];

	memcpy(copy, payload, sizeof(copy));
	assert_int_equal(put(t, &pool[0], 1000, 11000), 0);
	/* Another buffer with the same bytes is the same message. */
	assert_true(received_at(t, &pool[0], copy, PLEN) == 1000);
}

static void other_length_under_same_key_is_unknown(void **state)
{
	struct tf_msgtrack *t = *state;

	assert_int_equal(put(t, &pool[0], 1000, 11000), 0);
	assert_true(received_at(t, &pool[0], payload, PLEN - 1) == INT64_MIN);
	assert_true(received_at(t, &pool[0], payload, PLEN + 1) == INT64_MIN);
	assert_true(received_at(t, &pool[0], payload, 0) == INT64_MIN);
	assert_true(get(t, &pool[0]) == 1000);
}

static void other_first_bytes_under_same_key_are_unknown(void **state)
{
	struct tf_msgtrack *t = *state;
	char other[sizeof(payload)];

	assert_int_equal(put(t, &pool[0], 1000, 11000), 0);
	for (size_t i = 0; i < 4; i++) {
		memcpy(other, payload, sizeof(other));
		other[i] ^= 0x20;
		assert_true(received_at(t, &pool[0], other, PLEN) == INT64_MIN);
	}
	assert_true(get(t, &pool[0]) == 1000);
}

static void short_and_empty_payloads(void **state)
{
	struct tf_msgtrack *t = *state;

	assert_int_equal(tf_msgtrack_put(t, &pool[0], "ab", 2, 10, 100, NULL), 0);
	assert_int_equal(tf_msgtrack_put(t, &pool[1], "", 0, 20, 100, NULL), 0);
	assert_int_equal(tf_msgtrack_put(t, &pool[2], NULL, 0, 30, 100, NULL), 0);
	assert_true(received_at(t, &pool[0], "ab", 2) == 10);
	assert_true(received_at(t, &pool[0], "ac", 2) == INT64_MIN);
	assert_true(received_at(t, &pool[0], "a", 1) == INT64_MIN);
	assert_true(received_at(t, &pool[1], "", 0) == 20);
	assert_true(received_at(t, &pool[1], "x", 1) == INT64_MIN);
	assert_true(received_at(t, &pool[2], NULL, 0) == 30);
}

static void unknown_keys_are_unknown(void **state)
{
	struct tf_msgtrack *t = *state;

	assert_int_equal(put(t, &pool[10], 1000, 11000), 0);
	assert_true(get(t, &pool[9]) == INT64_MIN);
	assert_true(get(t, &pool[11]) == INT64_MIN);
	assert_true(get(t, &pool[100000]) == INT64_MIN);
	assert_true(get(t, payload) == INT64_MIN);
	assert_int_equal(tf_msgtrack_count(t), 1);
}

/* The same address again is a new message stored there: it replaces the
 * old entry. */
static void put_again_replaces(void **state)
{
	struct tf_msgtrack *t = *state;

	assert_int_equal(put(t, &pool[0], 1000, 11000), 0);
	assert_int_equal(tf_msgtrack_put(t, &pool[0], "other", 5, 5000, 15000, NULL), 0);
	assert_int_equal(tf_msgtrack_count(t), 1);
	assert_true(received_at(t, &pool[0], "other", 5) == 5000);
	assert_true(get(t, &pool[0]) == INT64_MIN);
	/* And the new forget time applies. */
	sweep_all(t, 11000);
	assert_true(received_at(t, &pool[0], "other", 5) == 5000);
	sweep_all(t, 15000);
	assert_true(received_at(t, &pool[0], "other", 5) == INT64_MIN);
	assert_int_equal(tf_msgtrack_count(t), 0);
}

#define MANY 100000u

static void grows_to_many_entries(void **state)
{
	struct tf_msgtrack *t = *state;

	for (uint32_t i = 0; i < MANY; i++) {
		assert_int_equal(put(t, &pool[i], (int64_t)i * 7, 1000000 + (int64_t)i), 0);
		assert_int_equal(tf_msgtrack_count(t), i + 1);
	}
	for (uint32_t i = 0; i < MANY; i++)
		assert_true(get(t, &pool[i]) == (int64_t)i * 7);
	assert_false(tf_msgtrack_full(t));
	for (uint32_t i = MANY; i < MANY + 1000; i++)
		assert_true(get(t, &pool[i]) == INT64_MIN);
	/* Forget the first half (forget time <= 1000000 + MANY / 2 - 1). */
	sweep_all(t, 1000000 + MANY / 2 - 1);
	assert_int_equal(tf_msgtrack_count(t), MANY / 2);
	for (uint32_t i = 0; i < MANY; i++)
		assert_true(get(t, &pool[i]) == (i < MANY / 2 ? INT64_MIN : (int64_t)i * 7));
}

/* After a burst, the table comes back to its small size once the entries
 * are forgotten, and keeps what is still due. */
static void a_table_emptied_by_sweeps_shrinks(void **state)
{
	struct tf_msgtrack *t = *state;
	size_t small = tf_msgtrack_bytes(t);

	for (uint32_t i = 0; i < MANY; i++)
		assert_int_equal(put(t, &pool[i], 5, i < 10 ? 900000 : 100), 0);
	assert_true(tf_msgtrack_bytes(t) >= 2 * MANY * 56);
	for (int round = 0; round < 40; round++)
		sweep_all(t, 1000);
	assert_int_equal(tf_msgtrack_count(t), 10);
	assert_int_equal(tf_msgtrack_bytes(t), small);
	for (uint32_t i = 0; i < MANY; i++)
		assert_true(get(t, &pool[i]) == (i < 10 ? 5 : INT64_MIN));
}

static void sweep_forgets_due_entries_only(void **state)
{
	struct tf_msgtrack *t = *state;

	for (uint32_t i = 0; i < 300; i++)
		assert_int_equal(put(t, &pool[i * 3], 0, i % 3 == 0 ? 100 : 200), 0);
	/* Nothing due yet. */
	sweep_all(t, 99);
	assert_int_equal(tf_msgtrack_count(t), 300);
	/* Due at exactly the forget time. */
	sweep_all(t, 100);
	assert_int_equal(tf_msgtrack_count(t), 200);
	for (uint32_t i = 0; i < 300; i++)
		assert_true(get(t, &pool[i * 3]) == (i % 3 == 0 ? INT64_MIN : 0));
	sweep_all(t, 1000);
	assert_int_equal(tf_msgtrack_count(t), 0);
	for (uint32_t i = 0; i < 300; i++)
		assert_true(get(t, &pool[i * 3]) == INT64_MIN);
}

/* Many keys in one probe run, which wraps around the end of the table:
 * removing some moves the others back, and every survivor must still be
 * found. */
static void sweep_keeps_moved_entries_findable(void **state)
{
	struct tf_msgtrack *t = *state;
	static bool used[sizeof(pool)];
	const void *keys[4][30];
	static const uint32_t homes[4] = { 1019, 1021, 1, 4 };
	uint32_t n = 0;

	memset(used, 0, sizeof(used));
	for (int h = 0; h < 4; h++)
		keys_with_home(homes[h], keys[h], 30, used);
	/* Interleaved, so that runs of different homes mix. */
	for (uint32_t k = 0; k < 30; k++) {
		for (int h = 0; h < 4; h++) {
			int64_t forget = (k + (uint32_t)h) % 2 == 0 ? 100 : 200;

			assert_int_equal(put(t, keys[h][k], (int64_t)k * 10 + h, forget), 0);
			n++;
		}
	}
	assert_int_equal(tf_msgtrack_count(t), n);
	sweep_all(t, 150);
	assert_int_equal(tf_msgtrack_count(t), n / 2);
	for (uint32_t k = 0; k < 30; k++) {
		for (int h = 0; h < 4; h++) {
			bool due = (k + (uint32_t)h) % 2 == 0;

			assert_true(get(t, keys[h][k]) == (due ? INT64_MIN : (int64_t)k * 10 + h));
		}
	}
	/* The survivors can still be replaced in place and forgotten. */
	assert_int_equal(put(t, keys[0][1], 42, 300), 0);
	assert_int_equal(tf_msgtrack_count(t), n / 2);
	assert_true(get(t, keys[0][1]) == 42);
	sweep_all(t, 250);
	assert_int_equal(tf_msgtrack_count(t), 1);
	assert_true(get(t, keys[0][1]) == 42);
	sweep_all(t, 300);
	assert_int_equal(tf_msgtrack_count(t), 0);
}

/* One run that starts in the last slot and wraps to the first ones: when
 * an entry goes, the ones after it, all from the same home, move back
 * across the end of the table. */
static void sweep_moves_entries_back_across_the_end(void **state)
{
	struct tf_msgtrack *t = *state;
	static bool used[sizeof(pool)];
	const void *keys[12];

	memset(used, 0, sizeof(used));
	keys_with_home(1023, keys, 12, used);
	for (uint32_t k = 0; k < 12; k++)
		assert_int_equal(put(t, keys[k], k, k == 0 || k == 5 ? 100 : 200), 0);
	sweep_all(t, 100);
	assert_int_equal(tf_msgtrack_count(t), 10);
	for (uint32_t k = 0; k < 12; k++)
		assert_true(get(t, keys[k]) == (k == 0 || k == 5 ? INT64_MIN : (int64_t)k));
	/* Again with every other one gone. */
	for (uint32_t k = 0; k < 12; k++)
		if (k != 0 && k != 5)
			assert_int_equal(put(t, keys[k], k, k % 2 ? 300 : 400), 0);
	sweep_all(t, 300);
	for (uint32_t k = 0; k < 12; k++) {
		int64_t want = k == 0 || k == 5 || k % 2 ? INT64_MIN : (int64_t)k;

		assert_true(get(t, keys[k]) == want);
	}
	assert_int_equal(tf_msgtrack_count(t), 5);
}

/* An entry in its own home slot inside another key's run must not move
 * back into a hole before it, within the table and across its end. */
static void entries_at_home_stay_put(void **state)
{
	struct tf_msgtrack *t = *state;
	static bool used[sizeof(pool)];
	const void *at_home[2], *before[2][2];
	static const uint32_t homes[2] = { 11, 0 };

	memset(used, 0, sizeof(used));
	for (int c = 0; c < 2; c++) {
		keys_with_home(homes[c], &at_home[c], 1, used);
		keys_with_home((homes[c] + 1023) & 1023, before[c], 2, used);
		/* at_home takes its home slot; the other two take the slot
		 * before it and the one after it. */
		assert_int_equal(put(t, at_home[c], 1, 200), 0);
		assert_int_equal(put(t, before[c][0], 2, 100), 0);
		assert_int_equal(put(t, before[c][1], 3, 200), 0);
	}
	sweep_all(t, 100);
	assert_int_equal(tf_msgtrack_count(t), 4);
	for (int c = 0; c < 2; c++) {
		assert_true(get(t, at_home[c]) == 1);
		assert_true(get(t, before[c][0]) == INT64_MIN);
		assert_true(get(t, before[c][1]) == 3);
	}
}

/* The same, swept one slot at a time from wherever the sweep stands: the
 * entries pulled back into an already visited slot are not lost. */
static void stepwise_sweep_keeps_moved_entries_findable(void **state)
{
	struct tf_msgtrack *t = *state;
	static bool used[sizeof(pool)];
	const void *keys[3][40];
	static const uint32_t homes[3] = { 1020, 1022, 2 };

	memset(used, 0, sizeof(used));
	for (int h = 0; h < 3; h++)
		keys_with_home(homes[h], keys[h], 40, used);
	for (uint32_t k = 0; k < 40; k++)
		for (int h = 0; h < 3; h++)
			assert_int_equal(put(t, keys[h][k], k, k % 4 == 0 ? 200 : 100), 0);
	for (uint32_t calls = 0; calls < 5000 && tf_msgtrack_count(t) > 30; calls++)
		tf_msgtrack_sweep(t, 150, 1);
	assert_int_equal(tf_msgtrack_count(t), 30);
	for (uint32_t k = 0; k < 40; k++)
		for (int h = 0; h < 3; h++)
			assert_true(get(t, keys[h][k]) == (k % 4 == 0 ? (int64_t)k : INT64_MIN));
}

/* Half the table's size in keys with random homes, every other one due. */
static void sweep_in_a_crowded_table(void **state)
{
	struct tf_msgtrack *t = *state;

	for (uint32_t i = 0; i < 500; i++)
		assert_int_equal(put(t, &pool[i * 8], i, i % 2 ? 100 : 200), 0);
	sweep_all(t, 100);
	assert_int_equal(tf_msgtrack_count(t), 250);
	for (uint32_t i = 0; i < 500; i++)
		assert_true(get(t, &pool[i * 8]) == (i % 2 ? INT64_MIN : (int64_t)i));
}

static void sweep_budget_is_honoured(void **state)
{
	struct tf_msgtrack *t = *state;
	uint32_t calls = 0;

	for (uint32_t i = 0; i < 300; i++)
		assert_int_equal(put(t, &pool[i * 5], 0, 100), 0);
	for (uint32_t i = 0; i < 20; i++)
		assert_int_equal(put(t, &pool[i * 5 + 1], 0, 5000), 0);
	tf_msgtrack_sweep(t, 1000, 0);
	assert_int_equal(tf_msgtrack_count(t), 320);
	/* One slot per call: at most one entry goes each time. */
	tf_msgtrack_sweep(t, 1000, 1);
	assert_true(tf_msgtrack_count(t) >= 319);
	calls = 1;
	while (tf_msgtrack_count(t) > 20 && calls < 100000) {
		uint32_t before = tf_msgtrack_count(t);

		tf_msgtrack_sweep(t, 1000, 1);
		calls++;
		assert_true(tf_msgtrack_count(t) + 1 >= before);
	}
	assert_int_equal(tf_msgtrack_count(t), 20);
	/* Part of the table per call: far more calls than entries removed. */
	assert_true(calls > 300);
	/* A slot visit or a removal per call: one pass over 1024 slots plus
	 * the removals. */
	assert_true(calls <= 300 + 1024);
	for (uint32_t i = 0; i < 300; i++)
		assert_true(get(t, &pool[i * 5]) == INT64_MIN);
	for (uint32_t i = 0; i < 20; i++)
		assert_true(get(t, &pool[i * 5 + 1]) == 0);
}

/* A budget of a few slots per call resumes where the previous call
 * stopped, so that due entries anywhere in the table go eventually. */
static void sweep_resumes_where_it_stopped(void **state)
{
	struct tf_msgtrack *t = *state;

	for (uint32_t i = 0; i < 200; i++)
		assert_int_equal(put(t, &pool[i * 11], 0, 100), 0);
	for (uint32_t call = 0; call < 1000; call++)
		tf_msgtrack_sweep(t, 1000, 16);
	assert_int_equal(tf_msgtrack_count(t), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

static void the_message_id_comes_back_with_the_time(void **state)
{
	struct tf_msgtrack *t = *state;
	static const unsigned char id[16] = { 0x01, 0x9a, 0xc0, 0x08, 0xe6, 0x00, 0x5f, 0x1e,
		0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x01, 0x23 };
	struct tf_msgtrack_hit hit;

	assert_int_equal(tf_msgtrack_put(t, &pool[0], payload, PLEN, 10, 100, id), 0);
	assert_int_equal(tf_msgtrack_put(t, &pool[1], payload, PLEN, 20, 100, NULL), 0);
	assert_true(tf_msgtrack_find(t, &pool[0], payload, PLEN, &hit));
	assert_true(hit.has_id);
	assert_memory_equal(hit.id, id, 16);
	assert_true(hit.received_ms == 10);
	assert_true(tf_msgtrack_find(t, &pool[1], payload, PLEN, &hit));
	assert_false(hit.has_id);
	/* The same length and first bytes but another ending: another message. */
	assert_false(tf_msgtrack_find(t, &pool[0], "{\"flow\":12.6}", PLEN, &hit));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(new_table_is_empty),
		T(put_then_get),
		T(payload_is_compared_by_content),
		T(other_length_under_same_key_is_unknown),
		T(other_first_bytes_under_same_key_are_unknown),
		T(short_and_empty_payloads),
		T(unknown_keys_are_unknown),
		T(put_again_replaces),
		T(grows_to_many_entries),
		T(a_table_emptied_by_sweeps_shrinks),
		T(sweep_forgets_due_entries_only),
		T(sweep_keeps_moved_entries_findable),
		T(sweep_moves_entries_back_across_the_end),
		T(entries_at_home_stay_put),
		T(stepwise_sweep_keeps_moved_entries_findable),
		T(sweep_in_a_crowded_table),
		T(sweep_budget_is_honoured),
		T(sweep_resumes_where_it_stopped),
		T(the_message_id_comes_back_with_the_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
