/* Unit tests for broker/tracking/clientids.c: which identity holds a client id,
 * when a binding goes, undoing a refused connection's binding, the bound
 * per identity, and the notes for the durable store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/tracking/clientids.h"

static int conn_a, conn_b, conn_c;

/* What the store was told, last. */
struct notes {
	int count;
	char client_id[64], username[64];
	bool bound, anonymous;
};

static void note(void *ctx, const char *client_id, const char *username, bool bound)
{
	struct notes *n = ctx;

	n->count++;
	snprintf(n->client_id, sizeof(n->client_id), "%s", client_id);
	snprintf(n->username, sizeof(n->username), "%s", username ? username : "");
	n->anonymous = username == NULL;
	n->bound = bound;
}

static const char *holder(const struct tf_clientids *t, const char *client_id)
{
	const char *username = "(unbound)";

	if (!tf_clientids_find(t, client_id, &username, NULL))
		return "(unbound)";
	return username ? username : "(anonymous)";
}

static void a_client_id_belongs_to_the_identity_that_holds_it(void **state)
{
	struct tf_clientids *t = tf_clientids_new();

	(void)state;
	assert_int_equal(tf_clientids_bind(t, "c1", "alice", &conn_a, false, false), TF_CLIENTID_OK);
	assert_int_equal(tf_clientids_bind(t, "c1", "bob", &conn_b, false, false),
		TF_CLIENTID_TAKEN);
	/* No username is an identity of its own, not "any". */
	assert_int_equal(tf_clientids_bind(t, "c1", NULL, &conn_b, false, false), TF_CLIENTID_TAKEN);
	assert_int_equal(tf_clientids_bind(t, "c2", NULL, &conn_b, false, false), TF_CLIENTID_OK);
	assert_int_equal(tf_clientids_bind(t, "c2", "alice", &conn_c, false, false),
		TF_CLIENTID_TAKEN);
	/* The same identity may come back on it. */
	assert_int_equal(tf_clientids_bind(t, "c1", "alice", &conn_c, false, false), TF_CLIENTID_OK);
	assert_string_equal(holder(t, "c1"), "alice");
	assert_string_equal(holder(t, "c2"), "(anonymous)");
	tf_clientids_free(t);
}

static void a_reserved_client_id_is_taken_from_its_holder(void **state)
{
	struct tf_clientids *t = tf_clientids_new();

	(void)state;
	assert_int_equal(tf_clientids_bind(t, "alice", NULL, &conn_a, true, false), TF_CLIENTID_OK);
	assert_int_equal(tf_clientids_bind(t, "alice", "alice", &conn_b, false, true),
		TF_CLIENTID_OK);
	assert_string_equal(holder(t, "alice"), "alice");
	tf_clientids_free(t);
}

static void a_binding_outlives_its_connection_only_when_durable(void **state)
{
	struct tf_clientids *t = tf_clientids_new();
	bool connected = true;
	const char *username;

	(void)state;
	tf_clientids_bind(t, "clean", "alice", &conn_a, false, false);
	tf_clientids_bind(t, "kept", "alice", &conn_b, true, false);
	tf_clientids_disconnected(t, "clean", &conn_a);
	tf_clientids_disconnected(t, "kept", &conn_b);
	assert_string_equal(holder(t, "clean"), "(unbound)");
	assert_true(tf_clientids_find(t, "kept", &username, &connected));
	assert_false(connected);
	assert_int_equal(tf_clientids_bind(t, "kept", "bob", &conn_c, false, false),
		TF_CLIENTID_TAKEN);
	assert_int_equal(tf_clientids_count(t), 1);
	tf_clientids_free(t);
}

static void an_older_connection_leaving_keeps_the_newer_ones_binding(void **state)
{
	struct tf_clientids *t = tf_clientids_new();
	bool connected = false;
	const char *username;

	(void)state;
	tf_clientids_bind(t, "c1", "alice", &conn_a, false, false);
	tf_clientids_bind(t, "c1", "alice", &conn_b, false, false);
	/* mosquitto disconnects the one that lost its client id. */
	tf_clientids_disconnected(t, "c1", &conn_a);
	assert_true(tf_clientids_find(t, "c1", &username, &connected));
	assert_true(connected);
	tf_clientids_free(t);
}

static void a_refused_connection_binds_nothing(void **state)
{
	struct tf_clientids *t = tf_clientids_new();
	struct notes n = { 0 };

	(void)state;
	tf_clientids_set_notify(t, note, &n);
	tf_clientids_bind(t, "c1", "mallory", &conn_a, true, false);
	assert_int_equal(n.count, 1);
	tf_clientids_undo(t, &conn_a);
	assert_string_equal(holder(t, "c1"), "(unbound)");
	assert_false(n.bound);
	/* A reconnection refused keeps the binding that was there. */
	tf_clientids_bind(t, "c2", "alice", &conn_a, true, false);
	tf_clientids_disconnected(t, "c2", &conn_a);
	tf_clientids_bind(t, "c2", "alice", &conn_b, false, false);
	tf_clientids_undo(t, &conn_b);
	assert_string_equal(holder(t, "c2"), "alice");
	assert_true(n.bound);
	/* A reserved takeover refused gives the client id back. */
	tf_clientids_bind(t, "c2", "carol", &conn_c, true, true);
	assert_string_equal(holder(t, "c2"), "carol");
	tf_clientids_undo(t, &conn_c);
	assert_string_equal(holder(t, "c2"), "alice");
	assert_string_equal(n.username, "alice");
	/* Only the last bind, and only for its own connection. */
	tf_clientids_undo(t, &conn_c);
	tf_clientids_bind(t, "c3", "dave", &conn_a, false, false);
	tf_clientids_undo(t, &conn_b);
	assert_string_equal(holder(t, "c3"), "dave");
	tf_clientids_free(t);
}

static void each_identity_keeps_a_bounded_number_of_old_sessions(void **state)
{
	struct tf_clientids *t = tf_clientids_new();
	char id[32];

	(void)state;
	tf_clientids_bind(t, "bob-1", "bob", &conn_b, true, false);
	tf_clientids_disconnected(t, "bob-1", &conn_b);
	for (uint32_t i = 0; i <= TF_CLIENTIDS_KEPT_PER_IDENTITY; i++) {
		snprintf(id, sizeof(id), "mallory-%u", i);
		assert_int_equal(tf_clientids_bind(t, id, "mallory", &conn_a, true, false),
			TF_CLIENTID_OK);
		tf_clientids_disconnected(t, id, &conn_a);
	}
	/* Its own oldest went; another identity's stays. */
	assert_string_equal(holder(t, "mallory-0"), "(unbound)");
	assert_string_equal(holder(t, "mallory-1"), "mallory");
	assert_string_equal(holder(t, "bob-1"), "bob");
	assert_int_equal(tf_clientids_count(t), TF_CLIENTIDS_KEPT_PER_IDENTITY + 1);
	tf_clientids_free(t);
}

static void durable_bindings_are_told_to_the_store(void **state)
{
	struct tf_clientids *t = tf_clientids_new();
	struct notes n = { 0 };

	(void)state;
	tf_clientids_set_notify(t, note, &n);
	tf_clientids_bind(t, "clean", "alice", &conn_a, false, false);
	tf_clientids_disconnected(t, "clean", &conn_a);
	assert_int_equal(n.count, 0);
	tf_clientids_bind(t, "kept", NULL, &conn_b, true, false);
	assert_int_equal(n.count, 1);
	assert_true(n.bound && n.anonymous);
	assert_string_equal(n.client_id, "kept");
	/* Coming back on it changes nothing to store. */
	tf_clientids_disconnected(t, "kept", &conn_b);
	tf_clientids_bind(t, "kept", NULL, &conn_c, true, false);
	assert_int_equal(n.count, 1);
	tf_clientids_forget(t, "kept");
	assert_int_equal(n.count, 2);
	assert_false(n.bound);
	tf_clientids_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_client_id_belongs_to_the_identity_that_holds_it),
		cmocka_unit_test(a_reserved_client_id_is_taken_from_its_holder),
		cmocka_unit_test(a_binding_outlives_its_connection_only_when_durable),
		cmocka_unit_test(an_older_connection_leaving_keeps_the_newer_ones_binding),
		cmocka_unit_test(a_refused_connection_binds_nothing),
		cmocka_unit_test(each_identity_keeps_a_bounded_number_of_old_sessions),
		cmocka_unit_test(durable_bindings_are_told_to_the_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
