/* Unit tests for broker/guard/guard.c: each detector on synthetic traffic, at
 * the edges of its thresholds, and no false alarm on steady traffic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "broker/guard/guard.h"

#define T0 1764158400000LL

static const struct tf_guard_config config = {
	.rate_factor = 10, .rate_min = 20, .rate_warmup_s = 30, .size_factor = 10,
	.replay_window_ms = 60000,
	.denied_burst = 20, .denied_window_ms = 10000, .block_ms = 60000,
	.leak_window_ms = 3600000,
};

/* A distinct payload hash for message n. */
static void sha_of(uint32_t n, unsigned char sha[32])
{
	memset(sha, 0, 32);
	memcpy(sha, &n, sizeof(n));
	sha[31] = 1;
}

/* The payload hash the guard gets for message n. */
static uint64_t key_of(const unsigned char sha[32])
{
	uint64_t k;

	memcpy(&k, sha, sizeof(k));
	return k + 1;
}

/* Sends per_s messages a second for seconds, from start; returns the
 * number of findings. */
static int steady(struct tf_guard *g, const char *flow, int64_t start, int seconds, int per_s,
		uint32_t size, uint32_t *n)
{
	unsigned char sha[32];
	char detail[200];
	int findings = 0;

	for (int s = 0; s < seconds; s++) {
		for (int i = 0; i < per_s; i++) {
			sha_of((*n)++, sha);
			findings += tf_guard_message(g, flow, size, key_of(sha),
				start + s * 1000LL + i * (1000 / per_s), detail, sizeof(detail)) != NULL;
		}
	}
	return findings;
}

static void steady_traffic_raises_nothing(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	uint32_t n = 0;

	(void)state;
	assert_int_equal(steady(g, "water-telemetry/s1", T0, 300, 10, 120, &n), 0);
	/* A flow that varies within its usual range neither. */
	for (int s = 0; s < 60; s++)
		assert_int_equal(steady(g, "water-telemetry/s2", T0 + s * 1000LL, 1, 5 + s % 7,
			100 + (uint32_t)(s % 40), &n), 0);
	tf_guard_free(g);
}

static void a_rate_far_above_the_learned_one_is_found_at_the_threshold(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	unsigned char sha[32];
	char detail[200];
	uint32_t n = 0;
	int64_t flood = T0 + 100000;

	(void)state;
	assert_int_equal(steady(g, "f", T0, 100, 5, 100, &n), 0);
	/* 10 x 5 a second = 50: the 51st message in one second is the first
	 * finding. */
	for (int i = 1; i <= 50; i++) {
		sha_of(n++, sha);
		assert_null(tf_guard_message(g, "f", 100, key_of(sha), flood + i, detail, sizeof(detail)));
	}
	sha_of(n++, sha);
	assert_string_equal(tf_guard_message(g, "f", 100, key_of(sha), flood + 51, detail,
		sizeof(detail)), "rate-anomaly");
	assert_non_null(strstr(detail, "51 messages in this second"));
	/* The flood did not become the norm: the next second at the old
	 * pace is fine, and another flood is found again. */
	assert_int_equal(steady(g, "f", flood + 1000, 1, 5, 100, &n), 0);
	for (int i = 0; i < 60; i++) {
		sha_of(n++, sha);
		if (i == 50)
			assert_non_null(tf_guard_message(g, "f", 100, key_of(sha), flood + 2000 + i, detail,
				sizeof(detail)));
		else
			tf_guard_message(g, "f", 100, key_of(sha), flood + 2000 + i, detail, sizeof(detail));
	}
	tf_guard_free(g);
}

static void a_pause_does_not_make_the_usual_pace_a_flood(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	uint32_t n = 0;

	(void)state;
	assert_int_equal(steady(g, "batch", T0, 40, 500, 100, &n), 0);
	/* An hour of silence, then the same pace again. */
	assert_int_equal(steady(g, "batch", T0 + 3600000, 10, 500, 100, &n), 0);
	tf_guard_free(g);
}

/* Sends n messages of flow at at_ms; returns how many came through
 * before the first finding (n when none). */
static int burst(struct tf_guard *g, const char *flow, int64_t at_ms, int n, uint32_t *seq)
{
	unsigned char sha[32];
	char detail[200];

	for (int i = 0; i < n; i++) {
		sha_of((*seq)++, sha);
		if (tf_guard_message(g, flow, 100, key_of(sha), at_ms, detail, sizeof(detail)) != NULL) {
			assert_non_null(strstr(detail, "in this second"));
			return i;
		}
	}
	return n;
}

/* A meter of one reading a second, away for 59 seconds, sends what it
 * stored at once: judged by its rate over the time away (factor 10 x 1 a
 * second x 59 s over its usual threshold), none of it is a flood, and
 * one more is. */
static void a_backlog_after_a_silence_is_not_a_flood(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	uint32_t n = 0;

	(void)state;
	assert_int_equal(steady(g, "meter", T0, 40, 1, 100, &n), 0);
	/* Last sent in second 39; back in second 99. The first 19 are below
	 * rate_min; 590 more come from the backlog. */
	assert_int_equal(burst(g, "meter", T0 + 99000, 609, &n), 609);
	assert_int_equal(burst(g, "meter", T0 + 99000, 1, &n), 0);
	tf_guard_free(g);
}

/* Without a silence there is no backlog: a second right after the last
 * is judged as usual. */
static void no_silence_no_backlog(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	uint32_t n = 0;

	(void)state;
	assert_int_equal(steady(g, "meter", T0, 40, 1, 100, &n), 0);
	assert_int_equal(burst(g, "meter", T0 + 40000, 40, &n), 19);
	/* One silent second earns factor x rate x 1 = 10. */
	assert_int_equal(steady(g, "other", T0, 40, 1, 100, &n), 0);
	assert_int_equal(burst(g, "other", T0 + 41000, 40, &n), 29);
	tf_guard_free(g);
}

/* The backlog lasts while the flow catches up: what is left goes once a
 * second passes without drawing on it, and catching up teaches nothing,
 * so a flood after it is found at the usual threshold. */
static void the_backlog_ends_when_the_flow_has_caught_up(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	uint32_t n = 0;

	(void)state;
	assert_int_equal(steady(g, "meter", T0, 40, 1, 100, &n), 0);
	/* Catching up over two seconds keeps the backlog across them. */
	assert_int_equal(burst(g, "meter", T0 + 99000, 300, &n), 300);
	assert_int_equal(burst(g, "meter", T0 + 100000, 300, &n), 300);
	/* Then its usual pace, and a flood. */
	assert_int_equal(burst(g, "meter", T0 + 101000, 1, &n), 1);
	assert_int_equal(burst(g, "meter", T0 + 102000, 40, &n), 19);
	tf_guard_free(g);
}

/* A backlog sent near the end of the second the flow came back in spills
 * into the next one before the count reached the threshold: it is still
 * the backlog. */
static void a_backlog_that_spills_into_the_next_second_is_still_a_backlog(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	uint32_t n = 0;

	(void)state;
	assert_int_equal(steady(g, "meter", T0, 40, 1, 100, &n), 0);
	assert_int_equal(burst(g, "meter", T0 + 99900, 15, &n), 15);
	assert_int_equal(burst(g, "meter", T0 + 100000, 300, &n), 300);
	/* A second without drawing on it ends it; the backlog taught nothing
	 * (the usual threshold, 19 with rate_min 20, is unchanged). */
	assert_int_equal(burst(g, "meter", T0 + 101000, 1, &n), 1);
	assert_int_equal(burst(g, "meter", T0 + 102000, 40, &n), 19);
	tf_guard_free(g);
}

/* However long the silence, the backlog is at most a day's worth. */
static void the_backlog_is_at_most_a_day(void **state)
{
	struct tf_guard_config one = config;
	struct tf_guard *g;
	uint32_t n = 0;

	(void)state;
	one.rate_factor = 1;
	one.rate_min = 1;
	g = tf_guard_new(&one);
	assert_int_equal(steady(g, "meter", T0, 40, 1, 100, &n), 0);
	/* Three days away: 1 within the threshold, 86400 of backlog. */
	assert_int_equal(burst(g, "meter", T0 + 39000 + 3 * 86400000LL, 86401, &n), 86401);
	assert_int_equal(burst(g, "meter", T0 + 39000 + 3 * 86400000LL, 1, &n), 0);
	tf_guard_free(g);
}

static void a_quiet_flow_needs_rate_min_and_warmup(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	unsigned char sha[32];
	char detail[200];
	uint32_t n = 0;

	(void)state;
	/* Before rate_warmup_s seconds of history, nothing is found. */
	assert_int_equal(steady(g, "young", T0, 1, 100, 100, &n), 0);
	/* A flow of one message a second: 19 in a second is below rate_min. */
	assert_int_equal(steady(g, "quiet", T0, 60, 1, 100, &n), 0);
	for (int i = 1; i <= 19; i++) {
		sha_of(n++, sha);
		assert_null(tf_guard_message(g, "quiet", 100, key_of(sha), T0 + 60000 + i, detail,
			sizeof(detail)));
	}
	sha_of(n++, sha);
	assert_non_null(tf_guard_message(g, "quiet", 100, key_of(sha), T0 + 60020, detail, sizeof(detail)));
	tf_guard_free(g);
}

static void a_payload_far_outside_the_usual_size(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	unsigned char sha[32];
	char detail[200];
	uint32_t n = 0;

	(void)state;
	assert_int_equal(steady(g, "f", T0, 10, 6, 100, &n), 0);   /* 60 messages of 100 */
	sha_of(n++, sha);
	assert_null(tf_guard_message(g, "f", 1064, key_of(sha), T0 + 20000, detail, sizeof(detail)));
	sha_of(n++, sha);
	assert_string_equal(tf_guard_message(g, "f", 2000, key_of(sha), T0 + 20001, detail,
		sizeof(detail)), "size-anomaly");
	sha_of(n++, sha);
	assert_string_equal(tf_guard_message(g, "f", 1, key_of(sha), T0 + 20002, detail,
		sizeof(detail)), "size-anomaly");
	tf_guard_free(g);
}

static void the_same_payload_again_within_the_window_is_a_replay(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	unsigned char sha[32];
	char detail[200];

	(void)state;
	sha_of(7, sha);
	assert_null(tf_guard_message(g, "f", 100, key_of(sha), T0, detail, sizeof(detail)));
	assert_null(tf_guard_message(g, "other", 100, key_of(sha), T0 + 1, detail, sizeof(detail)));
	assert_string_equal(tf_guard_message(g, "f", 100, key_of(sha), T0 + 59999, detail, sizeof(detail)),
		"replay");
	assert_null(tf_guard_message(g, "f", 100, key_of(sha), T0 + 60000, detail, sizeof(detail)));
	tf_guard_free(g);
}

static void a_burst_of_refusals_blocks_the_client(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);

	(void)state;
	/* Refusals spread wider than the window do not. */
	for (int i = 0; i < 40; i++)
		assert_false(tf_guard_denied(g, "slow", T0 + i * 600LL));
	assert_false(tf_guard_blocked(g, "slow", T0 + 24000));
	for (int i = 1; i < 20; i++)
		assert_false(tf_guard_denied(g, "probe", T0 + i));
	assert_false(tf_guard_blocked(g, "probe", T0 + 19));
	assert_true(tf_guard_denied(g, "probe", T0 + 20));
	assert_true(tf_guard_blocked(g, "probe", T0 + 20));
	assert_true(tf_guard_blocked(g, "probe", T0 + 20 + 59999));
	assert_false(tf_guard_blocked(g, "probe", T0 + 20 + 60000));
	assert_false(tf_guard_blocked(g, "someone-else", T0 + 20));
	tf_guard_free(g);
}

/* Anonymous clients refused under ever new client ids fill the table of
 * clients; those whose refusals no longer matter make room, so a client
 * that comes after them is still blocked after its burst, and a blocked
 * one stays blocked. */
static void refused_clients_of_long_ago_make_room(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	char name[32];

	(void)state;
	for (int i = 1; i <= 20; i++)
		(void)tf_guard_denied(g, "blocked", T0 + i);
	assert_true(tf_guard_blocked(g, "blocked", T0 + 21));
	for (int i = 0; i < TF_GUARD_MAX_CLIENTS; i++) {
		snprintf(name, sizeof(name), "c:anon-%d", i);
		assert_false(tf_guard_denied(g, name, T0 + 100));
	}
	/* Twenty seconds on: the table is full, the anonymous ones are idle. */
	for (int i = 1; i < 20; i++)
		assert_false(tf_guard_denied(g, "late", T0 + 20000 + i));
	assert_true(tf_guard_denied(g, "late", T0 + 20020));
	assert_true(tf_guard_blocked(g, "late", T0 + 20020));
	assert_true(tf_guard_blocked(g, "blocked", T0 + 20020));
	tf_guard_free(g);
}

static void canonical_json_hides_neither_whitespace_nor_key_order(void **state)
{
	const char *a = "{\"flow\": 12.5, \"meta\": {\"b\": 1, \"a\": [1, 2]}, \"p\": 3.1}";
	const char *b = "{\"p\":3.10,\"meta\":{\"a\":[1,2],\"b\":1},\"flow\":12.50}";
	const char *c = "{\"p\":3.1,\"meta\":{\"a\":[2,1],\"b\":1},\"flow\":12.5}";
	cJSON *ja = cJSON_Parse(a), *jb = cJSON_Parse(b), *jc = cJSON_Parse(c);
	unsigned char ha[32], hb[32], hc[32], raw[32];

	(void)state;
	assert_true(tf_guard_canonical_sha(ja, a, (uint32_t)strlen(a), ha));
	assert_true(tf_guard_canonical_sha(jb, b, (uint32_t)strlen(b), hb));
	assert_true(tf_guard_canonical_sha(jc, c, (uint32_t)strlen(c), hc));
	assert_memory_equal(ha, hb, 32);
	assert_memory_not_equal(ha, hc, 32);    /* array order is data */
	assert_true(tf_guard_canonical_sha(NULL, "not json", 8, raw));
	assert_memory_not_equal(ha, raw, 32);
	cJSON_Delete(ja);
	cJSON_Delete(jb);
	cJSON_Delete(jc);
}

static void private_data_is_remembered_for_the_window(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	unsigned char canon[32], other[32];
	const struct tf_guard_private *p;

	(void)state;
	sha_of(1, canon);
	sha_of(2, other);
	assert_false(tf_guard_watching_leaks(g));
	assert_null(tf_guard_find_private(g, canon, T0));
	tf_guard_note_private(g, canon, "019ac008e6005f1e2d3c4b5a69780123", "water-telemetry@3",
		"city-waterworks", "ww-sensor-01", T0);
	assert_true(tf_guard_watching_leaks(g));
	p = tf_guard_find_private(g, canon, T0 + 3599999);
	assert_non_null(p);
	assert_string_equal(p->id, "019ac008e6005f1e2d3c4b5a69780123");
	assert_string_equal(p->policy, "water-telemetry@3");
	assert_string_equal(p->owner, "city-waterworks");
	assert_string_equal(p->publisher, "ww-sensor-01");
	assert_null(tf_guard_find_private(g, canon, T0 + 3600000));
	assert_null(tf_guard_find_private(g, other, T0));
	tf_guard_free(g);
}

#define ID1 "019ac008e6005f1e2d3c4b5a69780123"
#define ID2 "019ac008e6005f1e2d3c4b5a69780456"

/* A leak is judged by the recipients: only a client the data was
 * delivered to is a suspect, found by the message's id or its data. */
static void only_recipients_of_private_data_are_suspects(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	unsigned char canon[32];

	(void)state;
	sha_of(1, canon);
	assert_false(tf_guard_note_recipient(g, ID1, "maint-app", T0));
	tf_guard_note_private(g, canon, ID1, "water-telemetry@3", "city-waterworks",
		"ww-sensor-01", T0);
	assert_null(tf_guard_find_leak(g, canon, "maint-app", T0));
	assert_true(tf_guard_note_recipient(g, ID1, "maint-app", T0 + 5));
	assert_false(tf_guard_note_recipient(g, ID2, "lab-bot", T0 + 5));
	assert_non_null(tf_guard_find_leak(g, canon, "maint-app", T0 + 10));
	assert_string_equal(tf_guard_find_leak(g, canon, "maint-app", T0 + 10)->id, ID1);
	assert_null(tf_guard_find_leak(g, canon, "lab-bot", T0 + 10));
	assert_null(tf_guard_find_leak(g, canon, "maint-bot", T0 + 10));
	/* A delivery known by its data only (a retained copy, say). */
	tf_guard_note_recipient_of(g, canon, "lab-bot", T0 + 20);
	assert_non_null(tf_guard_find_leak(g, canon, "lab-bot", T0 + 20));
	/* Gone with the window. */
	assert_null(tf_guard_find_leak(g, canon, "maint-app", T0 + 3600000));
	tf_guard_free(g);
}

/* The same data published again keeps its recipients; other data that
 * takes its slot starts without any, and the old ids no longer find it. */
static void recipients_belong_to_their_data(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	unsigned char canon[32], other[32];

	(void)state;
	sha_of(1, canon);
	memcpy(other, canon, 32);
	other[31] = 2;          /* the same slot, other data */
	tf_guard_note_private(g, canon, ID1, "p@1", "city-waterworks", "ww-sensor-01", T0);
	assert_true(tf_guard_note_recipient(g, ID1, "maint-app", T0));
	tf_guard_note_private(g, canon, ID2, "p@1", "city-waterworks", "ww-sensor-01", T0 + 1);
	assert_non_null(tf_guard_find_leak(g, canon, "maint-app", T0 + 2));
	assert_true(tf_guard_note_recipient(g, ID1, "lab-bot", T0 + 2));
	assert_non_null(tf_guard_find_leak(g, canon, "lab-bot", T0 + 2));
	tf_guard_note_private(g, other, "019ac008e6005f1e2d3c4b5a69780789", "p@1",
		"city-waterworks", "ww-sensor-01", T0 + 3);
	assert_null(tf_guard_find_leak(g, other, "maint-app", T0 + 3));
	assert_null(tf_guard_find_leak(g, canon, "maint-app", T0 + 3));
	assert_false(tf_guard_note_recipient(g, ID1, "maint-app", T0 + 3));
	assert_null(tf_guard_find_leak(g, other, "maint-app", T0 + 3));
	tf_guard_free(g);
}

/* Recipients are bounded per piece of data; one more than can be kept
 * makes every client a suspect of that data (fail closed), and a client
 * counts once however often it receives. */
static void recipients_are_bounded_and_fail_closed(void **state)
{
	struct tf_guard *g = tf_guard_new(&config);
	unsigned char canon[32];
	char name[32];

	(void)state;
	sha_of(1, canon);
	tf_guard_note_private(g, canon, ID1, "p@1", "city-waterworks", "ww-sensor-01", T0);
	for (int i = 0; i < TF_GUARD_MAX_RECIPIENTS; i++) {
		snprintf(name, sizeof(name), "client-%d", i);
		assert_true(tf_guard_note_recipient(g, ID1, name, T0));
		assert_true(tf_guard_note_recipient(g, ID1, name, T0));
	}
	assert_non_null(tf_guard_find_leak(g, canon, "client-0", T0));
	assert_null(tf_guard_find_leak(g, canon, "stranger", T0));
	assert_true(tf_guard_note_recipient(g, ID1, "one-too-many", T0));
	assert_non_null(tf_guard_find_leak(g, canon, "stranger", T0));
	tf_guard_free(g);
}

/* The bound over all recipients counts data still watched: recipients of
 * data past the leak window are given back, so fresh data is judged by
 * its own recipients, and a stranger stays innocent. */
static void recipients_of_expired_data_are_given_back(void **state)
{
	struct tf_guard_config small = config;
	struct tf_guard *g;
	unsigned char canon[32];
	char name[32], id[TF_MSGID_LEN + 1];

	(void)state;
	small.recipients_max = 40;
	g = tf_guard_new(&small);
	for (int k = 0; k < 4; k++) {
		sha_of(100 + (uint32_t)k, canon);
		snprintf(id, sizeof(id), "%032d", k);
		tf_guard_note_private(g, canon, id, "p@1", "city-waterworks", "ww-sensor-01", T0);
		for (int i = 0; i < 10; i++) {
			snprintf(name, sizeof(name), "client-%d", i);
			assert_true(tf_guard_note_recipient(g, id, name, T0));
		}
	}
	sha_of(1, canon);
	tf_guard_note_private(g, canon, ID1, "p@1", "city-waterworks", "ww-sensor-01",
		T0 + config.leak_window_ms);
	assert_true(tf_guard_note_recipient(g, ID1, "maint-app", T0 + config.leak_window_ms));
	assert_non_null(tf_guard_find_leak(g, canon, "maint-app", T0 + config.leak_window_ms));
	assert_null(tf_guard_find_leak(g, canon, "stranger", T0 + config.leak_window_ms));
	tf_guard_free(g);
}

static void the_replay_hash_costs_nothing_when_off(void **state)
{
	struct tf_guard_config off = config;
	struct tf_guard *on = tf_guard_new(&config), *g;

	(void)state;
	off.replay_window_ms = 0;
	g = tf_guard_new(&off);
	assert_true(tf_guard_hash(on, "abc", 3) != 0);
	assert_true(tf_guard_hash(on, "abc", 3) == tf_guard_hash(on, "abc", 3));
	assert_true(tf_guard_hash(on, "abc", 3) != tf_guard_hash(on, "abd", 3));
	assert_true(tf_guard_hash(g, "abc", 3) == 0);
	tf_guard_free(on);
	tf_guard_free(g);
}

static void detectors_switched_off_find_nothing(void **state)
{
	struct tf_guard_config off = { 0 };
	struct tf_guard *g = tf_guard_new(&off);
	unsigned char sha[32];
	char detail[200];
	uint32_t n = 0;

	(void)state;
	assert_int_equal(steady(g, "f", T0, 100, 5, 100, &n), 0);
	sha_of(3, sha);
	for (int i = 0; i < 500; i++)
		assert_null(tf_guard_message(g, "f", 100000, key_of(sha), T0 + 200000 + i, detail,
			sizeof(detail)));
	for (int i = 0; i < 100; i++)
		assert_false(tf_guard_denied(g, "c", T0 + i));
	tf_guard_note_private(g, sha, "x", "p@1", "o", "c", T0);
	assert_false(tf_guard_watching_leaks(g));
	tf_guard_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(steady_traffic_raises_nothing),
		cmocka_unit_test(a_rate_far_above_the_learned_one_is_found_at_the_threshold),
		cmocka_unit_test(a_pause_does_not_make_the_usual_pace_a_flood),
		cmocka_unit_test(a_quiet_flow_needs_rate_min_and_warmup),
		cmocka_unit_test(a_backlog_after_a_silence_is_not_a_flood),
		cmocka_unit_test(no_silence_no_backlog),
		cmocka_unit_test(the_backlog_ends_when_the_flow_has_caught_up),
		cmocka_unit_test(a_backlog_that_spills_into_the_next_second_is_still_a_backlog),
		cmocka_unit_test(the_backlog_is_at_most_a_day),
		cmocka_unit_test(a_payload_far_outside_the_usual_size),
		cmocka_unit_test(the_same_payload_again_within_the_window_is_a_replay),
		cmocka_unit_test(a_burst_of_refusals_blocks_the_client),
		cmocka_unit_test(refused_clients_of_long_ago_make_room),
		cmocka_unit_test(canonical_json_hides_neither_whitespace_nor_key_order),
		cmocka_unit_test(private_data_is_remembered_for_the_window),
		cmocka_unit_test(only_recipients_of_private_data_are_suspects),
		cmocka_unit_test(recipients_belong_to_their_data),
		cmocka_unit_test(recipients_are_bounded_and_fail_closed),
		cmocka_unit_test(recipients_of_expired_data_are_given_back),
		cmocka_unit_test(the_replay_hash_costs_nothing_when_off),
		cmocka_unit_test(detectors_switched_off_find_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
