/* Unit tests for broker/tracking/qos2track.c: which QoS 2 message counts as sent
 * again, and when it stops counting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/tracking/qos2track.h"

static int conn_a, conn_b, stored_1, stored_2;

#define CLIENT_A 11
#define CLIENT_B 22

static struct tf_stamp stamp(const char *id, const char *seq)
{
	struct tf_stamp st = { "1", id, "broker-1", "21fe31dfa154a261", "1764158400000",
		"city-waterworks", "ww-sensor-01", "water-telemetry@3", "city/water/d7/telemetry",
		"fa9a08d761793b6ff6fe10b881cc97ad17d51c2e6c77adb8e841d854491cccf6", seq, "c2ln", NULL };

	return st;
}

static void key_depends_on_client_topic_and_payload(void **state)
{
	uint64_t k = tf_qos2_key("c1", "a/b", "xy", 2);

	(void)state;
	assert_true(k == tf_qos2_key("c1", "a/b", "xy", 2));
	assert_true(k != tf_qos2_key("c2", "a/b", "xy", 2));
	assert_true(k != tf_qos2_key("c1", "a/c", "xy", 2));
	assert_true(k != tf_qos2_key("c1", "a/b", "xz", 2));
	assert_true(k != tf_qos2_key("c1", "a/b", "xy", 1));
	/* The separators keep "c1"+"a/b" apart from "c1a"+"/b". */
	assert_true(k != tf_qos2_key("c1a", "/b", "xy", 2));
}

static void a_resend_over_another_connection_gets_the_first_stamp(void **state)
{
	struct tf_qos2track *t = tf_qos2track_new();
	struct tf_stamp first = stamp("019ac008e6005f1e2d3c4b5a69780123", "42");
	uint64_t k = tf_qos2_key("c1", "a/b", "xy", 2);
	const struct tf_qos2_pending *again;

	(void)state;
	assert_true(tf_qos2track_put(t, k, CLIENT_A, &conn_a, &stored_1, &first, false, NULL,
		1000));
	/* Over the same connection: a message of its own. */
	assert_null(tf_qos2track_retransmitted(t, k, &conn_a));
	/* Another key: no. */
	assert_null(tf_qos2track_retransmitted(t, k + 1, &conn_b));
	again = tf_qos2track_retransmitted(t, k, &conn_b);
	assert_non_null(again);
	assert_string_equal(again->stamp.id, first.id);
	assert_string_equal(again->stamp.seq, "42");
	assert_string_equal(again->stamp.sig, "c2ln");
	assert_string_equal(again->stamp.org, "city-waterworks");
	assert_string_equal(again->stamp.topic, "city/water/d7/telemetry");
	assert_string_equal(again->stamp.broker, "broker-1");
	assert_false(again->hold);
	assert_null(again->redirect);
	tf_qos2track_free(t);
}

static void a_released_message_is_not_resent(void **state)
{
	struct tf_qos2track *t = tf_qos2track_new();
	struct tf_stamp one = stamp("019ac008e6005f1e2d3c4b5a69780001", "1");
	struct tf_stamp two = stamp("019ac008e6005f1e2d3c4b5a69780002", "2");
	uint64_t k1 = tf_qos2_key("c1", "a/b", "1", 1), k2 = tf_qos2_key("c1", "a/b", "2", 1);
	const struct tf_qos2_pending *again;

	(void)state;
	assert_true(tf_qos2track_put(t, k1, CLIENT_A, &conn_a, &stored_1, &one, false, NULL, 1000));
	assert_true(tf_qos2track_put(t, k2, CLIENT_A, &conn_a, &stored_2, &two, true, "x/held",
		1000));
	tf_qos2track_release(t, &stored_1);
	assert_int_equal(tf_qos2track_count(t), 1);
	assert_null(tf_qos2track_retransmitted(t, k1, &conn_b));
	/* The entry that moved into the freed place still reads right. */
	again = tf_qos2track_retransmitted(t, k2, &conn_b);
	assert_non_null(again);
	assert_string_equal(again->stamp.id, two.id);
	assert_string_equal(again->stamp.seq, "2");
	assert_true(again->hold);
	assert_string_equal(again->redirect, "x/held");
	tf_qos2track_free(t);
}

static void pending_messages_are_forgotten_after_a_while(void **state)
{
	struct tf_qos2track *t = tf_qos2track_new();
	struct tf_stamp one = stamp("019ac008e6005f1e2d3c4b5a69780001", "1");
	uint64_t k = tf_qos2_key("c1", "a/b", "1", 1);

	(void)state;
	assert_true(tf_qos2track_put(t, k, CLIENT_A, &conn_a, &stored_1, &one, false, NULL, 1000));
	tf_qos2track_expire(t, 1000 + TF_QOS2_KEEP_MS - 1);
	assert_int_equal(tf_qos2track_count(t), 1);
	tf_qos2track_expire(t, 1000 + TF_QOS2_KEEP_MS);
	assert_int_equal(tf_qos2track_count(t), 0);
	assert_null(tf_qos2track_retransmitted(t, k, &conn_b));
	tf_qos2track_free(t);
}

/* A connection keeps its newest TF_QOS2_PER_CONNECTION messages: its
 * oldest goes first, and other connections' stay. */
static void a_connection_keeps_its_newest_messages(void **state)
{
	static int conns[TF_QOS2_PER_CONNECTION];
	struct tf_qos2track *t = tf_qos2track_new();
	struct tf_stamp one = stamp("019ac008e6005f1e2d3c4b5a69780001", "1");

	(void)state;
	assert_true(tf_qos2track_put(t, 5000, CLIENT_B, &conn_b, &stored_2, &one, false, NULL, 0));
	for (uint64_t i = 0; i < TF_QOS2_PER_CONNECTION + 10; i++)
		assert_true(tf_qos2track_put(t, i, CLIENT_A, &conn_a, &stored_1, &one, false, NULL,
			1000 + (int64_t)i));
	assert_int_equal(tf_qos2track_count(t), TF_QOS2_PER_CONNECTION + 1);
	assert_int_equal(tf_qos2track_forgotten(t), 10);
	for (uint64_t i = 0; i < 10; i++)
		assert_null(tf_qos2track_retransmitted(t, i, &conns[0]));
	for (uint64_t i = 10; i < TF_QOS2_PER_CONNECTION + 10; i++)
		assert_non_null(tf_qos2track_retransmitted(t, i, &conns[0]));
	assert_non_null(tf_qos2track_retransmitted(t, 5000, &conns[0]));
	tf_qos2track_free(t);
}

/* A full table forgets its oldest message, whichever connection sent it. */
static void a_full_table_forgets_its_oldest(void **state)
{
	static int conns[TF_QOS2_MAX_PENDING / TF_QOS2_PER_CONNECTION + 1];
	struct tf_qos2track *t = tf_qos2track_new();
	struct tf_stamp one = stamp("019ac008e6005f1e2d3c4b5a69780001", "1");
	uint64_t next = 0;

	(void)state;
	/* Newest first, so the oldest is not simply the first put. */
	for (int c = 0; c < TF_QOS2_MAX_PENDING / TF_QOS2_PER_CONNECTION; c++)
		for (int i = 0; i < TF_QOS2_PER_CONNECTION; i++, next++)
			assert_true(tf_qos2track_put(t, next, CLIENT_A, &conns[c], &stored_1, &one,
				false, NULL, 100000 - (int64_t)next));
	assert_int_equal(tf_qos2track_count(t), TF_QOS2_MAX_PENDING);
	assert_true(tf_qos2track_put(t, next, CLIENT_B, &conn_b, &stored_2, &one, false, NULL,
		200000));
	assert_int_equal(tf_qos2track_count(t), TF_QOS2_MAX_PENDING);
	assert_int_equal(tf_qos2track_forgotten(t), 1);
	assert_null(tf_qos2track_retransmitted(t, next - 1, &conn_a));   /* the oldest */
	assert_non_null(tf_qos2track_retransmitted(t, 0, &conn_a));
	assert_non_null(tf_qos2track_retransmitted(t, next, &conn_a));
	tf_qos2track_free(t);
}

/* What a connection has unreleased within a time: what it sent then,
 * less what was released. */
static void unreleased_messages_are_counted_by_connection_and_time(void **state)
{
	struct tf_qos2track *t = tf_qos2track_new();
	struct tf_stamp one = stamp("019ac008e6005f1e2d3c4b5a69780001", "1");

	(void)state;
	assert_true(tf_qos2track_put(t, 1, CLIENT_A, &conn_a, &stored_1, &one, false, NULL, 1000));
	assert_true(tf_qos2track_put(t, 2, CLIENT_A, &conn_a, &stored_2, &one, false, NULL, 2000));
	assert_true(tf_qos2track_put(t, 3, CLIENT_A, &conn_a, &conn_b, &one, false, NULL, 2500));
	assert_true(tf_qos2track_put(t, 4, CLIENT_B, &conn_b, &stored_1, &one, false, NULL, 2500));
	assert_int_equal(tf_qos2track_unreleased_since(t, &conn_a, 0), 3);
	assert_int_equal(tf_qos2track_unreleased_since(t, &conn_a, 2000), 2);
	assert_int_equal(tf_qos2track_unreleased_since(t, &conn_b, 0), 1);
	tf_qos2track_release(t, &stored_2);
	assert_int_equal(tf_qos2track_unreleased_since(t, &conn_a, 2000), 1);
	assert_int_equal(tf_qos2track_forgotten(t), 0);
	tf_qos2track_free(t);
}

/* A client that sends something new has no retransmissions left to
 * send: what its earlier connections sent is forgotten (its own
 * connection's, and other clients', are not). */
static void a_client_that_moved_on_resends_nothing_older(void **state)
{
	struct tf_qos2track *t = tf_qos2track_new();
	struct tf_stamp one = stamp("019ac008e6005f1e2d3c4b5a69780001", "1");
	uint64_t k = tf_qos2_key("c1", "a/b", "x", 1);

	(void)state;
	assert_true(tf_qos2track_put(t, k, CLIENT_A, &conn_a, &stored_1, &one, false, NULL, 1000));
	assert_true(tf_qos2track_put(t, 7, CLIENT_B, &conn_a, &stored_2, &one, false, NULL, 1000));
	tf_qos2track_moved_on(t, CLIENT_A, &conn_a);
	assert_int_equal(tf_qos2track_count(t), 2);
	tf_qos2track_moved_on(t, CLIENT_A, &conn_b);
	assert_null(tf_qos2track_retransmitted(t, k, &conn_b));
	assert_int_equal(tf_qos2track_count(t), 1);
	tf_qos2track_free(t);
}

/* A connection that lived on past a message had its PUBREC: when it
 * goes, only its latest messages may still come again. */
static void a_settled_message_is_forgotten_when_its_connection_goes(void **state)
{
	struct tf_qos2track *t = tf_qos2track_new();
	struct tf_stamp one = stamp("019ac008e6005f1e2d3c4b5a69780001", "1");
	uint64_t old = tf_qos2_key("c1", "a/b", "old", 3), late = tf_qos2_key("c1", "a/b", "new", 3);

	(void)state;
	assert_true(tf_qos2track_put(t, old, CLIENT_A, &conn_a, &stored_1, &one, false, NULL, 1000));
	assert_true(tf_qos2track_put(t, late, CLIENT_A, &conn_a, &stored_2, &one, false, NULL,
		1000 + TF_QOS2_SETTLED_MS));
	tf_qos2track_disconnected(t, &conn_b, 1000 + TF_QOS2_SETTLED_MS + 1);
	assert_int_equal(tf_qos2track_count(t), 2);
	tf_qos2track_disconnected(t, &conn_a, 1000 + TF_QOS2_SETTLED_MS + 1);
	assert_null(tf_qos2track_retransmitted(t, old, &conn_b));
	assert_non_null(tf_qos2track_retransmitted(t, late, &conn_b));
	tf_qos2track_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(key_depends_on_client_topic_and_payload),
		cmocka_unit_test(a_resend_over_another_connection_gets_the_first_stamp),
		cmocka_unit_test(a_released_message_is_not_resent),
		cmocka_unit_test(pending_messages_are_forgotten_after_a_while),
		cmocka_unit_test(a_connection_keeps_its_newest_messages),
		cmocka_unit_test(a_full_table_forgets_its_oldest),
		cmocka_unit_test(unreleased_messages_are_counted_by_connection_and_time),
		cmocka_unit_test(a_client_that_moved_on_resends_nothing_older),
		cmocka_unit_test(a_settled_message_is_forgotten_when_its_connection_goes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
