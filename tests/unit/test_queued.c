/* Unit tests for broker/tracking/queued.c: which messages queued for an
 * offline session its return checked, which mosquitto dropped, and the
 * bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/tracking/queued.h"

struct dropped {
	char client_id[32];
	unsigned char first_byte;
	char label[32];
};

struct seen {
	struct dropped list[16];
	int n;
	bool connected;
};

static bool connected(void *ctx, const char *client_id)
{
	(void)client_id;
	return ((struct seen *)ctx)->connected;
}

static void note_dropped(void *ctx, const char *client_id, const unsigned char id[16],
		const char *label)
{
	struct seen *s = ctx;

	assert_true(s->n < 16);
	snprintf(s->list[s->n].client_id, sizeof(s->list[s->n].client_id), "%s", client_id);
	s->list[s->n].first_byte = id[0];
	snprintf(s->list[s->n].label, sizeof(s->list[s->n].label), "%s", label);
	s->n++;
}

static void id_of(unsigned char id[16], unsigned char first)
{
	memset(id, 0, 16);
	id[0] = first;
}

static void put(struct tf_queued *q, const char *client_id, unsigned char first,
		const char *payload)
{
	unsigned char id[16];

	id_of(id, first);
	assert_true(tf_queued_put(q, client_id, "user", id, tf_queued_fingerprint("a/b", payload,
		(uint32_t)strlen(payload)), "p@1", first));
}

static bool take(struct tf_queued *q, const char *client_id, const char *payload)
{
	return tf_queued_take(q, client_id, tf_queued_fingerprint("a/b", payload,
		(uint32_t)strlen(payload)));
}

static void fingerprint_depends_on_topic_and_payload(void **state)
{
	uint64_t f = tf_queued_fingerprint("a/b", "xy", 2);

	(void)state;
	assert_true(f == tf_queued_fingerprint("a/b", "xy", 2));
	assert_true(f != tf_queued_fingerprint("a/c", "xy", 2));
	assert_true(f != tf_queued_fingerprint("a/b", "xz", 2));
	assert_true(f != tf_queued_fingerprint("a/bx", "y", 1));
}

static void what_the_return_did_not_check_was_dropped(void **state)
{
	struct tf_queued *q = tf_queued_new();
	struct seen seen = { .connected = true };

	(void)state;
	put(q, "s1", 1, "one");
	put(q, "s1", 2, "two");
	put(q, "s1", 3, "three");
	put(q, "s2", 4, "four");
	assert_int_equal(tf_queued_count(q), 4);
	/* Before the session comes back, nothing is taken. */
	assert_false(take(q, "s1", "one"));
	assert_false(tf_queued_any_resumed(q));
	tf_queued_resume(q, "s1");
	assert_true(tf_queued_any_resumed(q));
	assert_true(take(q, "s1", "one"));
	assert_true(take(q, "s1", "three"));
	/* Once each, and only the session's own. */
	assert_false(take(q, "s1", "one"));
	assert_false(take(q, "s2", "four"));
	assert_false(take(q, "s1", "four"));
	tf_queued_settle(q, connected, note_dropped, &seen);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.list[0].client_id, "s1");
	assert_int_equal(seen.list[0].first_byte, 2);
	assert_string_equal(seen.list[0].label, "p@1");
	assert_false(tf_queued_any_resumed(q));
	/* s2 waits on. */
	assert_int_equal(tf_queued_count(q), 1);
	tf_queued_free(q);
}

static void a_message_queued_twice_is_checked_twice(void **state)
{
	struct tf_queued *q = tf_queued_new();
	struct seen seen = { .connected = true };

	(void)state;
	/* Two subscriptions that both match. */
	put(q, "s1", 1, "one");
	put(q, "s1", 1, "one");
	tf_queued_resume(q, "s1");
	assert_true(take(q, "s1", "one"));
	tf_queued_settle(q, connected, note_dropped, &seen);
	assert_int_equal(seen.n, 1);
	tf_queued_free(q);
}

static void a_return_refused_after_all_drops_nothing(void **state)
{
	struct tf_queued *q = tf_queued_new();
	struct seen seen = { .connected = false };

	(void)state;
	put(q, "s1", 1, "one");
	tf_queued_resume(q, "s1");
	tf_queued_settle(q, connected, note_dropped, &seen);
	assert_int_equal(seen.n, 0);
	assert_int_equal(tf_queued_count(q), 1);
	/* It comes back for real later. */
	seen.connected = true;
	tf_queued_resume(q, "s1");
	tf_queued_settle(q, connected, note_dropped, &seen);
	assert_int_equal(seen.n, 1);
	assert_int_equal(tf_queued_count(q), 0);
	tf_queued_free(q);
}

static void bounds_hold_per_session_and_in_all(void **state)
{
	struct tf_queued *q = tf_queued_new();
	unsigned char id[16] = { 0 };
	char client[32];

	(void)state;
	for (uint32_t i = 0; i < TF_QUEUED_PER_SESSION; i++)
		assert_true(tf_queued_put(q, "busy", "user", id, i, "p@1", 1));
	/* The queue keeps its oldest, as mosquitto does. */
	assert_false(tf_queued_put(q, "busy", "user", id, 99999, "p@1", 2));
	assert_int_equal(tf_queued_count(q), TF_QUEUED_PER_SESSION);
	/* Full sessions fill the table; the next message makes room by
	 * forgetting sessions of the identity with the most entries (here the
	 * only one), those whose newest message is oldest ("busy", at time 1,
	 * among them). */
	for (uint32_t c = 0; tf_queued_count(q) < TF_QUEUED_MAX; c++) {
		snprintf(client, sizeof(client), "c%u", c);
		for (uint32_t i = 0; i < TF_QUEUED_PER_SESSION; i++)
			assert_true(tf_queued_put(q, client, "user", id, i, "p@1", 10 + c));
	}
	assert_true(tf_queued_put(q, "one-more", "user", id, 1, "p@1", 1000000));
	assert_true(tf_queued_count(q) <= TF_QUEUED_MAX);
	assert_true(tf_queued_forgotten(q) >= 1);
	tf_queued_resume(q, "busy");
	assert_false(tf_queued_any_resumed(q));
	tf_queued_resume(q, "one-more");
	assert_true(tf_queued_any_resumed(q));
	tf_queued_free(q);
}

/* Sessions prefix-0 .. prefix-(count - 1) of identity, one message each
 * (fingerprint c, noted at first_ms + c). */
static void one_message_each(struct tf_queued *q, const char *prefix, const char *identity,
		uint32_t count, int64_t first_ms)
{
	unsigned char id[16] = { 0 };
	char client[32];

	for (uint32_t c = 0; c < count; c++) {
		snprintf(client, sizeof(client), "%s-%u", prefix, c);
		assert_true(tf_queued_put(q, client, identity, id, c, "p@1", first_ms + c));
	}
}

/* An identity that cycles through client ids, each session offline with
 * a full queue, fills the table: what it pushes out is its own, and the
 * sessions of others, older than all of its, are still noted. */
static void an_identity_filling_the_table_pushes_out_its_own(void **state)
{
	struct tf_queued *q = tf_queued_new();
	unsigned char id[16] = { 0 };
	char client[32];

	(void)state;
	for (uint32_t i = 0; i < 10; i++) {
		assert_true(tf_queued_put(q, "victim-1", "meter-app", id, i, "p@1", 1));
		assert_true(tf_queued_put(q, "victim-2", "lab-bot", id, i, "p@1", 2));
	}
	for (uint32_t c = 0; c < 2 * TF_QUEUED_MAX / TF_QUEUED_PER_SESSION; c++) {
		snprintf(client, sizeof(client), "cycle-%u", c);
		for (uint32_t i = 0; i < TF_QUEUED_PER_SESSION; i++)
			assert_true(tf_queued_put(q, client, "attacker", id, i, "p@1", 100 + c));
	}
	assert_true(tf_queued_count(q) <= TF_QUEUED_MAX);
	assert_true(tf_queued_forgotten(q) >= TF_QUEUED_MAX / TF_QUEUED_PER_SESSION);
	/* Each victim's ten messages are still matched at its return. */
	tf_queued_resume(q, "victim-1");
	tf_queued_resume(q, "victim-2");
	assert_true(tf_queued_any_resumed(q));
	for (uint32_t i = 0; i < 10; i++) {
		assert_true(tf_queued_take(q, "victim-1", i));
		assert_true(tf_queued_take(q, "victim-2", i));
	}
	/* The attacker's oldest session was forgotten, its newest kept. */
	tf_queued_resume(q, "cycle-0");
	snprintf(client, sizeof(client), "cycle-%u", 2 * TF_QUEUED_MAX / TF_QUEUED_PER_SESSION - 1);
	assert_false(tf_queued_take(q, "cycle-0", 0));
	tf_queued_resume(q, client);
	assert_true(tf_queued_take(q, client, 0));
	tf_queued_free(q);
}

/* Many sessions of one message each, from many identities: the victims',
 * older than the attacker's, survive the sessions' bound too. */
static void an_identity_opening_many_sessions_pushes_out_its_own(void **state)
{
	struct tf_queued *q = tf_queued_new();
	unsigned char id[16] = { 0 };
	char client[32];

	(void)state;
	for (uint32_t c = 0; c < 1000; c++) {
		snprintf(client, sizeof(client), "victim-%u", c);
		assert_true(tf_queued_put(q, client, c % 2 ? "meter-app" : "lab-bot", id, c, "p@1", c));
	}
	one_message_each(q, "cycle", "attacker", 200000, 1000);
	for (uint32_t c = 0; c < 1000; c++) {
		snprintf(client, sizeof(client), "victim-%u", c);
		tf_queued_resume(q, client);
		assert_true(tf_queued_take(q, client, c));
	}
	tf_queued_free(q);
}

static void many_sessions_stay_bounded(void **state)
{
	struct tf_queued *q = tf_queued_new();

	(void)state;
	/* Each with one message: the sessions' bound, not the entries', holds. */
	one_message_each(q, "c", "user", 200000, 0);
	assert_true(tf_queued_count(q) <= 65536);
	assert_true(tf_queued_forgotten(q) >= 200000 - 65536);
	/* The newest are kept. */
	tf_queued_resume(q, "c-199999");
	assert_true(tf_queued_any_resumed(q));
	tf_queued_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fingerprint_depends_on_topic_and_payload),
		cmocka_unit_test(what_the_return_did_not_check_was_dropped),
		cmocka_unit_test(a_message_queued_twice_is_checked_twice),
		cmocka_unit_test(a_return_refused_after_all_drops_nothing),
		cmocka_unit_test(bounds_hold_per_session_and_in_all),
		cmocka_unit_test(many_sessions_stay_bounded),
		cmocka_unit_test(an_identity_filling_the_table_pushes_out_its_own),
		cmocka_unit_test(an_identity_opening_many_sessions_pushes_out_its_own),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
