/* Unit tests for policy/policy.c (with policy/selector.c): parsing and
 * validating one policy file of policy-v1. Every validation rule has a
 * test that checks the message names the file, the exact JSON path and the
 * problem ("policies/water.json: $.consumers[1].not_after: not an RFC 3339
 * time or date").
 *
 * Fixtures are inline: the spec's example policy, changed member by member
 * through cJSON, and an identities file that adds research-lab to the
 * spec's example. The same two documents are also read from
 * tests/unit/data/ (water-telemetry.json, identities-research.json), found
 * under the source directory named by the environment variable TF_SRCDIR
 * (make check sets it; "." when unset, so run the test from the top of the
 * source tree). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/util/arena.h"
#include "policy/identities.h"
#include "policy/jsonfile.h"
#include "policy/policy.h"
#include "policy/schema.h"
#include "policy/selector.h"

#define FILE_NAME "policies/water.json"

static const char identities_text[] =
	"{\n"
	"  \"trustflow_identities\": 1,\n"
	"  \"organizations\": {\n"
	"    \"city-waterworks\": { \"name\": \"City Waterworks Bureau\" },\n"
	"    \"maint-co\":        { \"name\": \"Maintenance Co.\" },\n"
	"    \"research-lab\":    { \"name\": \"University Research Lab\" }\n"
	"  },\n"
	"  \"clients\": {\n"
	"    \"ww-sensor-01\": { \"org\": \"city-waterworks\", \"roles\": [\"sensor\"] },\n"
	"    \"maint-app\":    { \"org\": \"maint-co\", \"roles\": [\"operator\"], \"purposes\": [\"maintenance\"] },\n"
	"    \"ops-admin\":    { \"org\": \"city-waterworks\", \"roles\": [\"trustflow-admin\"] },\n"
	"    \"lab-bot\":      { \"org\": \"research-lab\", \"roles\": [\"analyst\"], \"purposes\": [\"research\"] }\n"
	"  }\n"
	"}\n";

static const char *const all_clients[] = { "ww-sensor-01", "maint-app", "ops-admin", "lab-bot" };
#define N_CLIENTS (sizeof(all_clients) / sizeof(all_clients[0]))

/* The example of policy-v1.md, verbatim. */
static const char example[] =
	"{\n"
	"  \"trustflow_policy\": 1,\n"
	"  \"id\": \"water-telemetry\",\n"
	"  \"version\": 3,\n"
	"  \"owner\": \"city-waterworks\",\n"
	"  \"description\": \"Flow and pressure telemetry from district meters\",\n"
	"  \"topics\": [\"city/water/+/telemetry\"],\n"
	"  \"publishers\": { \"roles\": [\"sensor\"] },\n"
	"  \"consumers\": [\n"
	"    { \"orgs\": [\"maint-co\"], \"purposes\": [\"maintenance\"],\n"
	"      \"not_after\": \"2027-03-31T00:00:00Z\" },\n"
	"    { \"orgs\": [\"research-lab\"], \"fields\": [\"flow\"],\n"
	"      \"view\": \"views/research-lab\" }\n"
	"  ],\n"
	"  \"retention_seconds\": 86400,\n"
	"  \"forwarding\": \"deny\",\n"
	"  \"limits\": { \"max_messages_per_second\": 50, \"max_payload_bytes\": 4096 },\n"
	"  \"schema\": {\n"
	"    \"type\": \"object\",\n"
	"    \"required\": [\"flow\"],\n"
	"    \"properties\": {\n"
	"      \"flow\":     { \"type\": \"number\", \"minimum\": 0, \"maximum\": 1000 },\n"
	"      \"pressure\": { \"type\": \"number\" }\n"
	"    }\n"
	"  },\n"
	"  \"on_violation\": { \"action\": \"quarantine\" }\n"
	"}\n";

/* Only the required members. */
static const char minimal[] =
	"{\"trustflow_policy\": 1, \"id\": \"p\", \"version\": 1, \"owner\": \"city-waterworks\","
	" \"topics\": [\"a/b\"]}";

static struct tf_identities *ids;

static cJSON *json(const char *text)
{
	struct tf_err err;
	cJSON *root = NULL;

	if (tf_json_parse(text, strlen(text), FILE_NAME, &root, &err) != TF_OK)
		fail_msg("does not parse: %s", err.msg);
	return root;
}

static int group_setup(void **state)
{
	struct tf_err err;
	struct tf_jctx c;
	cJSON *root = NULL;
	int rc;

	(void)state;
	if (tf_json_parse(identities_text, strlen(identities_text), "identities.json", &root,
			&err) != TF_OK)
		return -1;
	tf_jctx_init(&c, "identities.json", &err);
	rc = tf_identities_from_json(&c, root, &ids);
	cJSON_Delete(root);
	return rc == TF_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	tf_identities_free(ids);
	ids = NULL;
	return 0;
}

static const struct tf_client *client(const char *username)
{
	const struct tf_client *c = tf_identities_client(ids, username);

	assert_non_null(c);
	return c;
}

/* Replaces (or adds) member name of obj with the JSON value_text; NULL
 * removes it. */
static void set(cJSON *obj, const char *name, const char *value_text)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, name);
	if (value_text != NULL)
		cJSON_AddItemToObject(obj, name, json(value_text));
}

static cJSON *member(cJSON *obj, const char *name)
{
	cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);

	assert_non_null(m);
	return m;
}

static cJSON *consumer(cJSON *root, int i)
{
	cJSON *r = cJSON_GetArrayItem(member(root, "consumers"), i);

	assert_non_null(r);
	return r;
}

static int load_tree(const cJSON *root, const struct tf_identities *with, struct tf_arena *a,
		struct tf_policy *p, struct tf_err *err)
{
	struct tf_jctx c;

	memset(err, 0, sizeof(*err));
	tf_jctx_init(&c, FILE_NAME, err);
	return tf_policy_from_json(&c, root, with, a, p);
}

/* Loads root (and deletes it); expected is the beginning of the error
 * message: "file: $.path: problem". */
static void expect_error_with(cJSON *root, const struct tf_identities *with, const char *expected)
{
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;

	assert_int_equal(load_tree(root, with, &a, &p, &err), TF_ERR_INVALID);
	if (strncmp(err.msg, expected, strlen(expected)) != 0)
		fail_msg("\"%s\" does not begin with \"%s\"", err.msg, expected);
	/* Nothing is left to release on failure. */
	assert_null(p.schema);
	tf_arena_free(&a);
	cJSON_Delete(root);
}

static void expect_error(cJSON *root, const char *expected)
{
	expect_error_with(root, ids, expected);
}

/* Loads root (and deletes it), which must be valid; p is released. */
static void expect_ok(cJSON *root)
{
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;

	if (load_tree(root, ids, &a, &p, &err) != TF_OK)
		fail_msg("does not load: %s", err.msg);
	tf_policy_release(&p);
	tf_arena_free(&a);
	cJSON_Delete(root);
}

static void data_path(char *buf, size_t len, const char *name)
{
	const char *dir = getenv("TF_SRCDIR");

	snprintf(buf, len, "%s/tests/unit/data/%s", dir != NULL && *dir ? dir : ".", name);
}

/* ---- the example ---- */

static void check_example(const struct tf_policy *p, const struct tf_identities *with)
{
	const struct tf_consumer_rule *r;
	char why[128];
	cJSON *payload;

	assert_string_equal(p->id, "water-telemetry");
	assert_int_equal(p->version, 3);
	assert_string_equal(p->label, "water-telemetry@3");
	assert_string_equal(p->owner_id, "city-waterworks");
	assert_int_equal(p->owner, tf_identities_org(with, "city-waterworks"));
	assert_string_equal(p->description, "Flow and pressure telemetry from district meters");
	assert_int_equal(p->n_topics, 1);
	assert_string_equal(p->topics[0], "city/water/+/telemetry");

	assert_true(p->has_publishers);
	assert_false(p->publishers.orgs.present);
	assert_false(p->publishers.clients.present);
	assert_true(p->publishers.roles.present);
	assert_false(p->publishers.purposes.present);
	assert_int_equal(p->publishers.roles.n, 1);
	assert_int_equal(p->publishers.roles.items[0], tf_identities_symbol(with, "sensor"));

	assert_int_equal(p->n_consumers, 2);
	r = &p->consumers[0];
	assert_true(r->who.orgs.present);
	assert_int_equal(r->who.orgs.n, 1);
	assert_int_equal(r->who.orgs.items[0], tf_identities_org(with, "maint-co"));
	assert_true(r->who.purposes.present);
	assert_int_equal(r->who.purposes.n, 1);
	assert_int_equal(r->who.purposes.items[0], tf_identities_symbol(with, "maintenance"));
	assert_false(r->who.roles.present);
	assert_false(r->who.clients.present);
	assert_true(r->not_before == INT64_MIN);
	assert_true(r->not_after == 1806451200000LL);
	assert_null(r->fields);
	assert_int_equal(r->n_fields, 0);
	assert_null(r->view);

	r = &p->consumers[1];
	assert_true(r->who.orgs.present);
	assert_int_equal(r->who.orgs.items[0], tf_identities_org(with, "research-lab"));
	assert_false(r->who.purposes.present);
	assert_true(r->not_before == INT64_MIN);
	assert_true(r->not_after == INT64_MAX);
	assert_int_equal(r->n_fields, 1);
	assert_non_null(r->fields);
	assert_string_equal(r->fields[0], "flow");
	assert_string_equal(r->view, "views/research-lab");

	assert_int_equal(p->retention_ms, 86400000);
	assert_true(p->forwarding_deny);
	assert_int_equal(p->max_messages_per_second, 50);
	assert_int_equal(p->max_payload_bytes, 4096);
	assert_int_equal(p->on_violation.action, TF_VIOLATION_QUARANTINE);
	assert_string_equal(tf_violation_action_name(p->on_violation.action), "quarantine");
	assert_null(p->on_violation.reroute_to);
	assert_false(p->on_violation.disconnect);
	/* No on_anomaly: an anomaly is delivered and alerted. */
	assert_int_equal(p->on_anomaly.action, TF_VIOLATION_ALERT);
	assert_null(p->on_anomaly.reroute_to);
	assert_false(p->on_anomaly.disconnect);

	assert_non_null(p->schema);
	payload = json("{\"flow\": 12.5, \"pressure\": 3}");
	assert_true(tf_schema_validate(p->schema, payload, why, sizeof(why)));
	cJSON_Delete(payload);
	payload = json("{\"pressure\": 3}");
	assert_false(tf_schema_validate(p->schema, payload, why, sizeof(why)));
	cJSON_Delete(payload);
}

static void example_parses_with_every_field(void **state)
{
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;
	cJSON *root = json(example);

	(void)state;
	if (load_tree(root, ids, &a, &p, &err) != TF_OK)
		fail_msg("%s", err.msg);
	/* The policy keeps nothing borrowed from the tree. */
	cJSON_Delete(root);
	assert_string_equal(p.file, FILE_NAME);
	check_example(&p, ids);
	tf_policy_release(&p);
	assert_null(p.schema);
	tf_policy_release(&p);  /* twice is harmless */
	tf_arena_free(&a);
}

static void example_selectors_match_the_right_clients(void **state)
{
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;
	cJSON *root = json(example);

	(void)state;
	if (load_tree(root, ids, &a, &p, &err) != TF_OK)
		fail_msg("%s", err.msg);
	cJSON_Delete(root);
	/* publishers: roles sensor. */
	assert_true(tf_selector_matches(&p.publishers, client("ww-sensor-01")));
	assert_false(tf_selector_matches(&p.publishers, client("ops-admin")));
	assert_false(tf_selector_matches(&p.publishers, client("maint-app")));
	assert_false(tf_selector_matches(&p.publishers, NULL));
	/* orgs maint-co and purposes maintenance. */
	assert_true(tf_selector_matches(&p.consumers[0].who, client("maint-app")));
	assert_false(tf_selector_matches(&p.consumers[0].who, client("lab-bot")));
	assert_false(tf_selector_matches(&p.consumers[0].who, client("ww-sensor-01")));
	assert_false(tf_selector_matches(&p.consumers[0].who, NULL));
	/* orgs research-lab. */
	assert_true(tf_selector_matches(&p.consumers[1].who, client("lab-bot")));
	assert_false(tf_selector_matches(&p.consumers[1].who, client("maint-app")));
	tf_policy_release(&p);
	tf_arena_free(&a);
}

static void example_files_load(void **state)
{
	struct tf_identities *file_ids = NULL;
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;
	char path[4096];

	(void)state;
	data_path(path, sizeof(path), "identities-research.json");
	if (tf_identities_load(path, NULL, &file_ids, &err) != TF_OK)
		fail_msg("%s", err.msg);
	data_path(path, sizeof(path), "water-telemetry.json");
	if (tf_policy_load(path, "policies/water-telemetry.json", file_ids, false, &a, &p, &err) != TF_OK)
		fail_msg("%s", err.msg);
	assert_string_equal(p.file, "policies/water-telemetry.json");
	check_example(&p, file_ids);
	tf_policy_release(&p);
	tf_arena_free(&a);
	tf_identities_free(file_ids);
}

static void optional_members_have_defaults(void **state)
{
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;
	cJSON *root = json(minimal);

	(void)state;
	if (load_tree(root, ids, &a, &p, &err) != TF_OK)
		fail_msg("%s", err.msg);
	cJSON_Delete(root);
	assert_string_equal(p.label, "p@1");
	assert_null(p.description);
	assert_false(p.has_publishers);
	assert_int_equal(p.n_consumers, 0);
	assert_int_equal(p.retention_ms, 0);
	assert_false(p.forwarding_deny);
	assert_true(p.owner_receives);
	assert_int_equal(p.max_messages_per_second, 0);
	assert_int_equal(p.max_payload_bytes, 0);
	assert_null(p.schema);
	assert_int_equal(p.on_violation.action, TF_VIOLATION_DROP);
	assert_null(p.on_violation.reroute_to);
	assert_false(p.on_violation.disconnect);
	assert_int_equal(p.on_anomaly.action, TF_VIOLATION_ALERT);
	assert_null(p.on_anomaly.reroute_to);
	assert_false(p.on_anomaly.disconnect);
	tf_policy_release(&p);
	tf_arena_free(&a);
}

static void other_valid_values_load(void **state)
{
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;
	cJSON *root = json(example);

	(void)state;
	set(root, "forwarding", "\"allow\"");
	set(root, "consumers", "[]");
	set(root, "topics", "[\"city/water/#\", \"city/water/+/telemetry\", \"x\"]");
	set(root, "on_violation", "{\"action\": \"reroute\", \"reroute_to\": \"quarantine/water\","
		" \"disconnect\": true}");
	set(root, "version", "2147483647");
	if (load_tree(root, ids, &a, &p, &err) != TF_OK)
		fail_msg("%s", err.msg);
	cJSON_Delete(root);
	assert_false(p.forwarding_deny);
	assert_int_equal(p.n_consumers, 0);
	assert_int_equal(p.n_topics, 3);
	assert_string_equal(p.topics[2], "x");
	assert_int_equal(p.on_violation.action, TF_VIOLATION_REROUTE);
	assert_string_equal(p.on_violation.reroute_to, "quarantine/water");
	assert_true(p.on_violation.disconnect);
	assert_int_equal(p.on_anomaly.action, TF_VIOLATION_ALERT);
	assert_string_equal(p.label, "water-telemetry@2147483647");
	tf_policy_release(&p);
	tf_arena_free(&a);

	root = json(example);
	set(member(root, "on_violation"), "action", "\"alert\"");
	set(consumer(root, 0), "not_before", "\"2026-01-01T00:00:00+01:00\"");
	if (load_tree(root, ids, &a, &p, &err) != TF_OK)
		fail_msg("%s", err.msg);
	cJSON_Delete(root);
	assert_int_equal(p.on_violation.action, TF_VIOLATION_ALERT);
	assert_true(p.consumers[0].not_before == 1767222000000LL);
	tf_policy_release(&p);
	tf_arena_free(&a);
}

/* ---- selectors ---- */

static void unknown_selector_names_are_not_errors_and_match_nobody(void **state)
{
	static const char *const keys[][2] = {
		{ "clients", "[\"ghost\"]" },
		{ "roles", "[\"ghost-role\"]" },
		{ "purposes", "[\"ghost-purpose\"]" },
	};
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;

	(void)state;
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		cJSON *root = json(example);

		set(consumer(root, 0), "orgs", NULL);
		set(consumer(root, 0), "purposes", NULL);
		set(consumer(root, 0), keys[k][0], keys[k][1]);
		set(member(root, "publishers"), "roles", NULL);
		set(member(root, "publishers"), keys[k][0], keys[k][1]);
		if (load_tree(root, ids, &a, &p, &err) != TF_OK)
			fail_msg("%s: %s", keys[k][0], err.msg);
		cJSON_Delete(root);
		for (size_t i = 0; i < N_CLIENTS; i++) {
			assert_false(tf_selector_matches(&p.consumers[0].who, client(all_clients[i])));
			assert_false(tf_selector_matches(&p.publishers, client(all_clients[i])));
		}
		tf_policy_release(&p);
		tf_arena_free(&a);
	}
}

static void unknown_names_beside_known_ones_are_ignored(void **state)
{
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;
	cJSON *root = json(example);

	(void)state;
	set(member(root, "publishers"), "roles", "[\"ghost-role\", \"sensor\", \"sensor\"]");
	set(member(root, "publishers"), "clients", "[\"ghost\", \"ww-sensor-01\", \"ops-admin\"]");
	if (load_tree(root, ids, &a, &p, &err) != TF_OK)
		fail_msg("%s", err.msg);
	cJSON_Delete(root);
	assert_int_equal(p.publishers.roles.n, 1);
	assert_int_equal(p.publishers.clients.n, 2);
	/* Every key present must match: ops-admin is listed but no sensor. */
	assert_true(tf_selector_matches(&p.publishers, client("ww-sensor-01")));
	assert_false(tf_selector_matches(&p.publishers, client("ops-admin")));
	assert_false(tf_selector_matches(&p.publishers, client("maint-app")));
	tf_policy_release(&p);
	tf_arena_free(&a);
}

static void empty_publishers_match_every_identified_client(void **state)
{
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;
	cJSON *root = json(example);

	(void)state;
	set(root, "publishers", "{}");
	set(consumer(root, 0), "orgs", NULL);
	set(consumer(root, 0), "purposes", NULL);
	set(consumer(root, 0), "not_after", NULL);
	if (load_tree(root, ids, &a, &p, &err) != TF_OK)
		fail_msg("%s", err.msg);
	cJSON_Delete(root);
	assert_true(p.has_publishers);
	for (size_t i = 0; i < N_CLIENTS; i++) {
		assert_true(tf_selector_matches(&p.publishers, client(all_clients[i])));
		assert_true(tf_selector_matches(&p.consumers[0].who, client(all_clients[i])));
	}
	assert_false(tf_selector_matches(&p.publishers, NULL));
	assert_false(tf_selector_matches(&p.consumers[0].who, NULL));
	tf_policy_release(&p);
	tf_arena_free(&a);
}

static void empty_key_matches_nobody(void **state)
{
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;
	cJSON *root = json(example);

	(void)state;
	set(root, "publishers", "{\"orgs\": []}");
	if (load_tree(root, ids, &a, &p, &err) != TF_OK)
		fail_msg("%s", err.msg);
	cJSON_Delete(root);
	assert_true(p.publishers.orgs.present);
	for (size_t i = 0; i < N_CLIENTS; i++)
		assert_false(tf_selector_matches(&p.publishers, client(all_clients[i])));
	tf_policy_release(&p);
	tf_arena_free(&a);
}

static void without_identities_only_syntax_is_checked(void **state)
{
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;
	cJSON *root = json(example);

	(void)state;
	set(root, "owner", "\"someone-else\"");
	set(consumer(root, 0), "orgs", "[\"anyone\"]");
	if (load_tree(root, NULL, &a, &p, &err) != TF_OK)
		fail_msg("%s", err.msg);
	cJSON_Delete(root);
	assert_string_equal(p.owner_id, "someone-else");
	assert_int_equal(p.owner, TF_NONE);
	assert_true(p.consumers[0].who.orgs.present);
	assert_int_equal(p.consumers[0].who.orgs.n, 0);
	tf_policy_release(&p);
	tf_arena_free(&a);

	/* Invalid ids and other syntax are still errors. */
	root = json(example);
	set(consumer(root, 0), "orgs", "[\"not an id\"]");
	expect_error_with(root, NULL, FILE_NAME ": $.consumers[0].orgs[0]: not a valid id");
	root = json(example);
	set(root, "owner", "\"no owner\"");
	expect_error_with(root, NULL, FILE_NAME ": $.owner: not a valid id");
	root = json(example);
	set(root, "forwarding", "\"maybe\"");
	expect_error_with(root, NULL, FILE_NAME ": $.forwarding: must be \"allow\" or \"deny\"");
}

/* ---- validation: unknown members ---- */

static void unknown_member_at_top_level(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(root, "topic", "[\"a\"]");
	expect_error(root, FILE_NAME ": $.topic: unknown member");
	root = json(example);
	set(root, "Owner", "\"x\"");
	expect_error(root, FILE_NAME ": $.Owner: unknown member");
}

static void unknown_member_in_consumer_rule(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(consumer(root, 1), "field", "[\"flow\"]");
	expect_error(root, FILE_NAME ": $.consumers[1].field: unknown member");
	root = json(example);
	set(consumer(root, 0), "not after", "\"2027-01-01T00:00:00Z\"");
	expect_error(root, FILE_NAME ": $.consumers[0][\"not after\"]: unknown member");
}

static void unknown_member_in_publishers(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(member(root, "publishers"), "role", "[\"sensor\"]");
	expect_error(root, FILE_NAME ": $.publishers.role: unknown member");
	/* Consumer-rule members are not selector members. */
	root = json(example);
	set(member(root, "publishers"), "not_after", "\"2027-01-01T00:00:00Z\"");
	expect_error(root, FILE_NAME ": $.publishers.not_after: unknown member");
	root = json(example);
	set(root, "publishers", "[\"sensor\"]");
	expect_error(root, FILE_NAME ": $.publishers: must be an object");
}

static void unknown_member_in_limits(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(member(root, "limits"), "max_bytes", "10");
	expect_error(root, FILE_NAME ": $.limits.max_bytes: unknown member");
	root = json(example);
	set(root, "limits", "50");
	expect_error(root, FILE_NAME ": $.limits: must be an object");
}

static void unknown_member_in_on_violation(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(member(root, "on_violation"), "alert", "true");
	expect_error(root, FILE_NAME ": $.on_violation.alert: unknown member");
	root = json(example);
	set(root, "on_violation", "\"drop\"");
	expect_error(root, FILE_NAME ": $.on_violation: must be an object");
}

/* ---- validation: header ---- */

static void format_must_be_1(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(root, "trustflow_policy", "2");
	expect_error(root, FILE_NAME ": $.trustflow_policy: must be an integer from 1 to 1");
	root = json(example);
	set(root, "trustflow_policy", NULL);
	expect_error(root, FILE_NAME ": $.trustflow_policy: is required");
	root = json("[]");
	expect_error(root, FILE_NAME ": $: must be an object");
}

static void id_must_be_valid(void **state)
{
	static const char *const bad[] = { "\"water telemetry\"", "\"\"", "\"-water\"", "42",
		"\"w/t\"" };
	cJSON *root;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		root = json(example);
		set(root, "id", bad[i]);
		expect_error(root, FILE_NAME ": $.id: not a valid id");
	}
	root = json(example);
	set(root, "id", NULL);
	expect_error(root, FILE_NAME ": $.id: is required");
}

static void version_must_be_a_positive_integer(void **state)
{
	static const char *const bad[] = { "0", "1.5", "\"3\"", "-1", "2147483648", "1e300",
		"null" };
	cJSON *root;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		root = json(example);
		set(root, "version", bad[i]);
		expect_error(root, FILE_NAME ": $.version: must be an integer from 1 to 2147483647");
	}
	root = json(example);
	set(root, "version", NULL);
	expect_error(root, FILE_NAME ": $.version: is required");
}

static void owner_must_be_a_known_org(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(root, "owner", "\"city-waterwork\"");
	expect_error(root, FILE_NAME ": $.owner: unknown organization \"city-waterwork\"");
	/* A username is not an org. */
	root = json(example);
	set(root, "owner", "\"ww-sensor-01\"");
	expect_error(root, FILE_NAME ": $.owner: unknown organization \"ww-sensor-01\"");
	root = json(example);
	set(root, "owner", NULL);
	expect_error(root, FILE_NAME ": $.owner: is required");
}

static void description_is_limited(void **state)
{
	char *text = malloc(TF_POLICY_DESCRIPTION_MAX + 8);
	cJSON *root;

	(void)state;
	assert_non_null(text);
	text[0] = '"';
	memset(text + 1, 'd', TF_POLICY_DESCRIPTION_MAX + 1);
	strcpy(text + TF_POLICY_DESCRIPTION_MAX + 2, "\"");
	root = json(example);
	set(root, "description", text);
	expect_error(root, FILE_NAME ": $.description: longer than 4096 bytes");
	/* 4096 bytes is fine. */
	strcpy(text + TF_POLICY_DESCRIPTION_MAX + 1, "\"");
	root = json(example);
	set(root, "description", text);
	expect_ok(root);
	free(text);
	root = json(example);
	set(root, "description", "[\"x\"]");
	expect_error(root, FILE_NAME ": $.description: must be a string");
}

/* ---- validation: topics ---- */

static void topics_must_be_a_non_empty_list(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(root, "topics", "[]");
	expect_error(root, FILE_NAME ": $.topics: must not be empty");
	root = json(example);
	set(root, "topics", "\"city/water/+/telemetry\"");
	expect_error(root, FILE_NAME ": $.topics: must be a list");
	root = json(example);
	set(root, "topics", NULL);
	expect_error(root, FILE_NAME ": $.topics: is required");
}

static void topics_must_be_valid_filters(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(root, "topics", "[\"a/b\", \"a/#/c\"]");
	expect_error(root, FILE_NAME ": $.topics[1]: not a valid topic filter: # must be the last level");
	root = json(example);
	set(root, "topics", "[\"a/b\", \"a+/b\"]");
	expect_error(root, FILE_NAME ": $.topics[1]: not a valid topic filter: + and # must stand alone");
	root = json(example);
	set(root, "topics", "[\"a/b\", \"\"]");
	expect_error(root, FILE_NAME ": $.topics[1]: not a valid topic filter: must not be empty");
	root = json(example);
	set(root, "topics", "[\"a/b\", 5]");
	expect_error(root, FILE_NAME ": $.topics[1]: must be a string");
}

static void dollar_topics_are_refused(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(root, "topics", "[\"$SYS/#\"]");
	expect_error(root, FILE_NAME ": $.topics[0]: not a valid topic filter: topics starting with $");
	root = json(example);
	set(root, "topics", "[\"a\", \"$trustflow/x\"]");
	expect_error(root, FILE_NAME ": $.topics[1]: not a valid topic filter: topics starting with $");
}

static void duplicate_topics_are_refused(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(root, "topics", "[\"a/b\", \"c\", \"a/b\"]");
	expect_error(root, FILE_NAME ": $.topics[2]: \"a/b\" is listed twice");
}

/* ---- validation: consumers ---- */

static void consumers_must_be_a_list_of_objects(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(root, "consumers", "{\"orgs\": [\"maint-co\"]}");
	expect_error(root, FILE_NAME ": $.consumers: must be a list");
	root = json(example);
	set(root, "consumers", "[{}, \"maint-co\"]");
	expect_error(root, FILE_NAME ": $.consumers[1]: must be an object");
}

static void consumer_org_must_be_known(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(consumer(root, 0), "orgs", "[\"maint-company\"]");
	expect_error(root, FILE_NAME ": $.consumers[0].orgs[0]: unknown organization \"maint-company\"");
	root = json(example);
	set(consumer(root, 1), "orgs", "[\"research-lab\", \"lab\"]");
	expect_error(root, FILE_NAME ": $.consumers[1].orgs[1]: unknown organization \"lab\"");
	root = json(example);
	set(member(root, "publishers"), "orgs", "[\"nobody\"]");
	expect_error(root, FILE_NAME ": $.publishers.orgs[0]: unknown organization \"nobody\"");
}

static void selector_lists_hold_ids(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(consumer(root, 0), "purposes", "[\"maintenance\", \"bad purpose\"]");
	expect_error(root, FILE_NAME ": $.consumers[0].purposes[1]: not a valid id");
	root = json(example);
	set(consumer(root, 0), "clients", "\"maint-app\"");
	expect_error(root, FILE_NAME ": $.consumers[0].clients: must be a list");
	root = json(example);
	set(member(root, "publishers"), "roles", "[1]");
	expect_error(root, FILE_NAME ": $.publishers.roles[0]: not a valid id");
}

static void not_after_must_be_rfc3339(void **state)
{
	static const char *const bad[] = { "\"tomorrow\"", "\"31 March 2027\"", "\"\"",
		"\"2027-03-31Z\"", "\"20270331\"", "\"2027-03-31T00:00Z\"" };
	cJSON *root;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		root = json(example);
		set(consumer(root, 1), "not_after", bad[i]);
		expect_error(root, FILE_NAME ": $.consumers[1].not_after: not an RFC 3339 time or date, "
			"such as 2026-06-30T12:00:00Z or 2026-06-30");
	}
	root = json(example);
	set(consumer(root, 0), "not_before", "\"soon\"");
	expect_error(root, FILE_NAME ": $.consumers[0].not_before: not an RFC 3339 time or date");
	root = json(example);
	set(consumer(root, 0), "not_after", "1806451200");
	expect_error(root, FILE_NAME ": $.consumers[0].not_after: must be a string");
}

/* Dates that do not exist are named, with a date-time or alone. */
static void impossible_dates_are_refused(void **state)
{
	static const struct { const char *value, *message; } cases[] = {
		{ "\"2026-02-30\"", "not an RFC 3339 time: no such date: 2026-02 has no day 30" },
		{ "\"2026-02-29\"", "not an RFC 3339 time: no such date: 2026-02 has no day 29" },
		{ "\"2100-02-29\"", "not an RFC 3339 time: no such date: 2100-02 has no day 29" },
		{ "\"2027-02-30T00:00:00Z\"",
		  "not an RFC 3339 time: no such date: 2027-02 has no day 30" },
		{ "\"2026-04-31\"", "not an RFC 3339 time: no such date: 2026-04 has no day 31" },
		{ "\"2026-13-01\"", "not an RFC 3339 time: no such date: there is no month 13" },
		{ "\"2026-06-30T24:00:00Z\"", "not an RFC 3339 time: no such time of day" },
	};
	char expected[512];
	cJSON *root;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		root = json(example);
		set(consumer(root, 0), "not_after", cases[i].value);
		snprintf(expected, sizeof(expected), FILE_NAME ": $.consumers[0].not_after: %s",
			cases[i].message);
		expect_error(root, expected);
	}
	root = json(example);
	set(consumer(root, 0), "not_before", "\"2023-02-29\"");
	expect_error(root, FILE_NAME ": $.consumers[0].not_before: not an RFC 3339 time: no such "
		"date: 2023-02 has no day 29");
}

/* A date-time without an offset names another moment in every time zone:
 * refused, with advice that uses the author's date. */
static void date_times_without_an_offset_are_refused(void **state)
{
	static const char *const ambiguous[] = { "\"2026-06-30T12:00\"",
		"\"2026-06-30T12:00:00\"", "\"2026-06-30T00:00:00.000\"", "\"2026-06-30T12\"" };
	cJSON *root;

	(void)state;
	for (size_t i = 0; i < sizeof(ambiguous) / sizeof(ambiguous[0]); i++) {
		root = json(example);
		set(consumer(root, 0), "not_after", ambiguous[i]);
		expect_error(root, FILE_NAME ": $.consumers[0].not_after: not an RFC 3339 time: a "
			"date-time without an offset is ambiguous: end it with Z for UTC or an offset "
			"such as +02:00 (2026-06-30T12:00:00Z), or write the date alone (2026-06-30)");
	}
	root = json(example);
	set(consumer(root, 0), "not_before", "\"2026-06-01T08:00\"");
	expect_error(root, FILE_NAME ": $.consumers[0].not_before: not an RFC 3339 time: a "
		"date-time without an offset is ambiguous");
	root = json(example);
	set(consumer(root, 0), "not_before", "\"2026-06-01 08:00:00Z\"");
	expect_error(root, FILE_NAME ": $.consumers[0].not_before: not an RFC 3339 time: put a T "
		"between the date and the time (2026-06-01T12:00:00Z)");
}

/* Loads the example with consumer rule 0's window set to the JSON texts
 * from and until (NULL: absent), into *rule. */
static void load_window(const char *from, const char *until, struct tf_consumer_rule *rule)
{
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;
	cJSON *root = json(example);

	set(consumer(root, 0), "not_before", from);
	set(consumer(root, 0), "not_after", until);
	if (load_tree(root, ids, &a, &p, &err) != TF_OK)
		fail_msg("does not load: %s", err.msg);
	cJSON_Delete(root);
	*rule = p.consumers[0];
	rule->fields = NULL;
	rule->view = NULL;
	memset(&rule->who, 0, sizeof(rule->who));
	tf_policy_release(&p);
	tf_arena_free(&a);
}

#define MS(secs) ((secs) * 1000LL)
/* date -u -d ... +%s */
#define T_2026_06_01  MS(1780272000LL)
#define T_2026_06_30  MS(1782777600LL)
#define T_2026_07_01  MS(1782864000LL)
#define T_2024_02_29  MS(1709164800LL)
#define T_2024_03_01  MS(1709251200LL)
#define T_2026_06_30_1000_P0200  MS(1782806400LL)   /* 2026-06-30T10:00:00+02:00 */

/* A date alone as not_after: the rule holds through that whole day (UTC)
 * and ends at the first instant of the next; as not_before, it starts at
 * the first instant of the day. The rule is in force while
 * not_before <= now < not_after. */
static void a_date_alone_covers_the_whole_day(void **state)
{
	struct tf_consumer_rule r;

	(void)state;
	load_window("\"2026-06-01\"", "\"2026-06-30\"", &r);
	assert_true(r.not_before == T_2026_06_01);
	assert_true(r.not_after == T_2026_07_01);
	/* One day: from its first instant to the first instant of the next. */
	load_window("\"2026-06-30\"", "\"2026-06-30\"", &r);
	assert_true(r.not_before == T_2026_06_30);
	assert_true(r.not_after == T_2026_07_01);
	/* A leap day, and the last day of February in a leap year. */
	load_window("\"2024-02-29\"", "\"2024-02-29\"", &r);
	assert_true(r.not_before == T_2024_02_29);
	assert_true(r.not_after == T_2024_03_01);
	load_window(NULL, "\"2024-02-28\"", &r);
	assert_true(r.not_before == INT64_MIN);
	assert_true(r.not_after == T_2024_02_29);
	/* Dates and date-times mix. */
	load_window("\"2026-06-30T10:00:00+02:00\"", "\"2026-06-30\"", &r);
	assert_true(r.not_before == T_2026_06_30_1000_P0200);
	assert_true(r.not_after == T_2026_07_01);
	load_window("\"2026-06-01\"", "\"2026-06-30T10:00:00+02:00\"", &r);
	assert_true(r.not_before == T_2026_06_01);
	assert_true(r.not_after == T_2026_06_30_1000_P0200);
}

/* A full date-time keeps its meaning: the instant the rule ends. */
static void a_date_time_is_the_instant_it_names(void **state)
{
	struct tf_consumer_rule r;

	(void)state;
	load_window("\"2026-06-01T00:00:00Z\"", "\"2026-06-30T00:00:00Z\"", &r);
	assert_true(r.not_before == T_2026_06_01);
	assert_true(r.not_after == T_2026_06_30);
	load_window(NULL, "\"2026-06-30T23:59:59.999Z\"", &r);
	assert_true(r.not_after == T_2026_07_01 - 1);
	load_window(NULL, "\"2026-07-01T00:00:00+00:00\"", &r);
	assert_true(r.not_after == T_2026_07_01);
}

/* not_before must still be earlier than not_after, each read as above. */
static void date_windows_must_not_be_empty(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(consumer(root, 0), "not_before", "\"2026-07-01\"");
	set(consumer(root, 0), "not_after", "\"2026-06-30\"");
	expect_error(root, FILE_NAME ": $.consumers[0].not_after: must be later than not_before");
	/* The day ends at 2026-07-01T00:00:00Z: a rule from then on is empty. */
	root = json(example);
	set(consumer(root, 0), "not_before", "\"2026-07-01T00:00:00Z\"");
	set(consumer(root, 0), "not_after", "\"2026-06-30\"");
	expect_error(root, FILE_NAME ": $.consumers[0].not_after: must be later than not_before");
	root = json(example);
	set(consumer(root, 0), "not_before", "\"2026-06-30T23:59:59.999Z\"");
	set(consumer(root, 0), "not_after", "\"2026-06-30\"");
	expect_ok(root);
}

static void not_before_must_precede_not_after(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(consumer(root, 0), "not_before", "\"2027-04-01T00:00:00Z\"");
	expect_error(root, FILE_NAME ": $.consumers[0].not_after: must be later than not_before");
	root = json(example);
	set(consumer(root, 0), "not_before", "\"2027-03-31T00:00:00Z\"");
	expect_error(root, FILE_NAME ": $.consumers[0].not_after: must be later than not_before");
	root = json(example);
	set(consumer(root, 0), "not_before", "\"2027-03-30T23:59:59Z\"");
	expect_ok(root);
}

static void fields_need_a_view(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(consumer(root, 1), "view", NULL);
	expect_error(root, FILE_NAME ": $.consumers[1]: \"view\" is required with \"fields\"");
}

static void view_needs_fields(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(consumer(root, 1), "fields", NULL);
	expect_error(root, FILE_NAME ": $.consumers[1].view: is only allowed with \"fields\"");
}

static void view_must_not_have_wildcards(void **state)
{
	static const char *const bad[] = { "\"views/+\"", "\"views/#\"", "\"views/+/x\"" };
	cJSON *root;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		root = json(example);
		set(consumer(root, 1), "view", bad[i]);
		expect_error(root, FILE_NAME ": $.consumers[1].view: not a valid view prefix: "
			"must not contain the wildcards");
	}
	root = json(example);
	set(consumer(root, 1), "view", "\"$views/lab\"");
	expect_error(root, FILE_NAME ": $.consumers[1].view: not a valid view prefix: topics starting with $");
	root = json(example);
	set(consumer(root, 1), "view", "\"views/\"");
	expect_error(root, FILE_NAME ": $.consumers[1].view: not a valid view prefix: must not end with /");
	root = json(example);
	set(consumer(root, 1), "view", "\"\"");
	expect_error(root, FILE_NAME ": $.consumers[1].view: not a valid view prefix: must not be empty");
}

static void fields_must_be_a_non_empty_list_of_names(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(consumer(root, 1), "fields", "[]");
	expect_error(root, FILE_NAME ": $.consumers[1].fields: must not be empty");
	root = json(example);
	set(consumer(root, 1), "fields", "\"flow\"");
	expect_error(root, FILE_NAME ": $.consumers[1].fields: must be a list");
	root = json(example);
	set(consumer(root, 1), "fields", "[\"flow\", \"\"]");
	expect_error(root, FILE_NAME ": $.consumers[1].fields[1]: must be a non-empty string");
	root = json(example);
	set(consumer(root, 1), "fields", "[\"flow\", \"pressure\", \"flow\"]");
	expect_error(root, FILE_NAME ": $.consumers[1].fields[2]: \"flow\" is listed twice");
}

/* ---- validation: the other members ---- */

static void retention_must_be_positive(void **state)
{
	static const char *const bad[] = { "0", "-5", "1.5", "\"86400\"" };
	cJSON *root;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		root = json(example);
		set(root, "retention_seconds", bad[i]);
		expect_error(root, FILE_NAME ": $.retention_seconds: must be an integer from 1 to ");
	}
}

static void owner_receives_is_a_boolean(void **state)
{
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;
	cJSON *root = json(example);

	(void)state;
	set(root, "owner_receives", "false");
	if (load_tree(root, ids, &a, &p, &err) != TF_OK)
		fail_msg("%s", err.msg);
	cJSON_Delete(root);
	assert_false(p.owner_receives);
	tf_policy_release(&p);
	root = json(example);
	set(root, "owner_receives", "true");
	if (load_tree(root, ids, &a, &p, &err) != TF_OK)
		fail_msg("%s", err.msg);
	cJSON_Delete(root);
	assert_true(p.owner_receives);
	tf_policy_release(&p);
	tf_arena_free(&a);
	root = json(example);
	set(root, "owner_receives", "\"no\"");
	expect_error(root, FILE_NAME ": $.owner_receives: must be true or false");
	root = json(example);
	set(root, "owner_receives", "0");
	expect_error(root, FILE_NAME ": $.owner_receives: must be true or false");
}

static void forwarding_is_allow_or_deny(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(root, "forwarding", "\"maybe\"");
	expect_error(root, FILE_NAME ": $.forwarding: must be \"allow\" or \"deny\"");
	root = json(example);
	set(root, "forwarding", "\"Deny\"");
	expect_error(root, FILE_NAME ": $.forwarding: must be \"allow\" or \"deny\"");
	root = json(example);
	set(root, "forwarding", "false");
	expect_error(root, FILE_NAME ": $.forwarding: must be a string");
}

static void limits_must_be_positive(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(member(root, "limits"), "max_messages_per_second", "0");
	expect_error(root, FILE_NAME ": $.limits.max_messages_per_second: must be an integer from 1 to 1000000");
	root = json(example);
	set(member(root, "limits"), "max_payload_bytes", "-1");
	expect_error(root, FILE_NAME ": $.limits.max_payload_bytes: must be an integer from 1 to 268435455");
	root = json(example);
	set(member(root, "limits"), "max_payload_bytes", "268435456");
	expect_error(root, FILE_NAME ": $.limits.max_payload_bytes: must be an integer from 1 to 268435455");
}

static void action_must_be_known(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(member(root, "on_violation"), "action", "\"explode\"");
	expect_error(root, FILE_NAME ": $.on_violation.action: must be drop, quarantine, reroute or alert");
	root = json(example);
	set(member(root, "on_violation"), "action", NULL);
	expect_error(root, FILE_NAME ": $.on_violation.action: is required");
}

static void reroute_needs_reroute_to(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(member(root, "on_violation"), "action", "\"reroute\"");
	expect_error(root, FILE_NAME ": $.on_violation: \"reroute_to\" is required with action reroute");
}

static void reroute_to_needs_reroute(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(root, "on_violation", "{\"action\": \"drop\", \"reroute_to\": \"quarantine/water\"}");
	expect_error(root, FILE_NAME ": $.on_violation.reroute_to: is only allowed with action reroute");
}

static void reroute_to_must_not_have_wildcards(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(root, "on_violation", "{\"action\": \"reroute\", \"reroute_to\": \"quarantine/+\"}");
	expect_error(root, FILE_NAME ": $.on_violation.reroute_to: not a valid topic: "
		"must not contain the wildcards");
	root = json(example);
	set(root, "on_violation", "{\"action\": \"reroute\", \"reroute_to\": \"quarantine/#\"}");
	expect_error(root, FILE_NAME ": $.on_violation.reroute_to: not a valid topic: "
		"must not contain the wildcards");
}

static void disconnect_must_be_boolean(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(member(root, "on_violation"), "disconnect", "\"yes\"");
	expect_error(root, FILE_NAME ": $.on_violation.disconnect: must be true or false");
	root = json(example);
	set(member(root, "on_violation"), "disconnect", "1");
	expect_error(root, FILE_NAME ": $.on_violation.disconnect: must be true or false");
}

/* on_anomaly has on_violation's form, and its own value. */
static void on_anomaly_loads_apart_from_on_violation(void **state)
{
	const char *actions[] = { "drop", "quarantine", "alert" };
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;
	cJSON *root;

	(void)state;
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		char text[100];

		root = json(example);
		snprintf(text, sizeof(text), "{\"action\": \"%s\"}", actions[i]);
		set(root, "on_anomaly", text);
		if (load_tree(root, ids, &a, &p, &err) != TF_OK)
			fail_msg("%s", err.msg);
		cJSON_Delete(root);
		assert_string_equal(tf_violation_action_name(p.on_anomaly.action), actions[i]);
		assert_int_equal(p.on_violation.action, TF_VIOLATION_QUARANTINE);
		tf_policy_release(&p);
		tf_arena_free(&a);
	}
	root = json(example);
	set(root, "on_anomaly", "{\"action\": \"reroute\", \"reroute_to\": \"suspect/water\","
		" \"disconnect\": true}");
	if (load_tree(root, ids, &a, &p, &err) != TF_OK)
		fail_msg("%s", err.msg);
	cJSON_Delete(root);
	assert_int_equal(p.on_anomaly.action, TF_VIOLATION_REROUTE);
	assert_string_equal(p.on_anomaly.reroute_to, "suspect/water");
	assert_true(p.on_anomaly.disconnect);
	assert_null(p.on_violation.reroute_to);
	assert_false(p.on_violation.disconnect);
	tf_policy_release(&p);
	tf_arena_free(&a);
}

static void on_anomaly_errors_name_its_path(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(root, "on_anomaly", "{\"action\": \"alert\", \"notify\": true}");
	expect_error(root, FILE_NAME ": $.on_anomaly.notify: unknown member");
	root = json(example);
	set(root, "on_anomaly", "\"alert\"");
	expect_error(root, FILE_NAME ": $.on_anomaly: must be an object");
	root = json(example);
	set(root, "on_anomaly", "{\"disconnect\": true}");
	expect_error(root, FILE_NAME ": $.on_anomaly.action: is required");
	root = json(example);
	set(root, "on_anomaly", "{\"action\": \"ignore\"}");
	expect_error(root, FILE_NAME ": $.on_anomaly.action: must be drop, quarantine, reroute or "
		"alert");
	root = json(example);
	set(root, "on_anomaly", "{\"action\": \"reroute\"}");
	expect_error(root, FILE_NAME ": $.on_anomaly: \"reroute_to\" is required with action "
		"reroute");
	root = json(example);
	set(root, "on_anomaly", "{\"action\": \"alert\", \"reroute_to\": \"suspect/water\"}");
	expect_error(root, FILE_NAME ": $.on_anomaly.reroute_to: is only allowed with action "
		"reroute");
	root = json(example);
	set(root, "on_anomaly", "{\"action\": \"reroute\", \"reroute_to\": \"suspect/#\"}");
	expect_error(root, FILE_NAME ": $.on_anomaly.reroute_to: not a valid topic: "
		"must not contain the wildcards");
	root = json(example);
	set(root, "on_anomaly", "{\"action\": \"drop\", \"disconnect\": \"yes\"}");
	expect_error(root, FILE_NAME ": $.on_anomaly.disconnect: must be true or false");
}

static void schema_keywords_outside_the_subset_are_refused(void **state)
{
	cJSON *root = json(example);

	(void)state;
	set(member(root, "schema"), "format", "\"date-time\"");
	expect_error(root, FILE_NAME ": $.schema.format: unknown schema keyword");
	root = json(example);
	set(member(member(member(root, "schema"), "properties"), "flow"), "multipleOf", "2");
	expect_error(root, FILE_NAME ": $.schema.properties.flow.multipleOf: unknown schema keyword");
	root = json(example);
	set(root, "schema", "[]");
	expect_error(root, FILE_NAME ": $.schema: must be an object");
}

/* ---- files ---- */

/* Writes the example, padded with spaces to size bytes, to a new
 * temporary file; path must hold 32 bytes. */
static void padded_example_file(char *path, size_t size)
{
	char *text = malloc(size);
	size_t len = strlen(example);
	int fd;

	assert_non_null(text);
	assert_true(size >= len);
	memcpy(text, example, len);
	memset(text + len, ' ', size - len);
	strcpy(path, "/tmp/tf-policy-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, size), (ssize_t)size);
	assert_int_equal(close(fd), 0);
	free(text);
}

static void file_over_1_mib_is_refused(void **state)
{
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;
	char path[32];

	(void)state;
	padded_example_file(path, TF_POLICY_MAX_BYTES + 1);
	assert_int_equal(tf_policy_load(path, "policies/big.json", ids, false, &a, &p, &err),
		TF_ERR_INVALID);
	assert_string_equal(err.msg, "policies/big.json: file is 1048577 bytes, more than the "
		"1048576 allowed");
	assert_null(p.schema);
	tf_arena_free(&a);
	unlink(path);

	/* Exactly 1 MiB is allowed. */
	padded_example_file(path, TF_POLICY_MAX_BYTES);
	if (tf_policy_load(path, "policies/big.json", ids, false, &a, &p, &err) != TF_OK)
		fail_msg("%s", err.msg);
	assert_string_equal(p.label, "water-telemetry@3");
	tf_policy_release(&p);
	tf_arena_free(&a);
	unlink(path);
}

static void label_id_ends_at_the_last_at_sign(void **state)
{
	(void)state;
	assert_int_equal(tf_policy_label_id_len("water-telemetry@3"), strlen("water-telemetry"));
	assert_int_equal(tf_policy_label_id_len("ops@city@12"), strlen("ops@city"));
	assert_int_equal(tf_policy_label_id_len("water-telemetry"), strlen("water-telemetry"));
	assert_int_equal(tf_policy_label_id_len(""), 0);
}

static void file_errors_name_the_file(void **state)
{
	static const char twice[] = "{\"trustflow_policy\": 1, \"id\": \"p\", \"version\": 1,"
		" \"owner\": \"city-waterworks\", \"topics\": [\"a\"], \"consumers\": ["
		"{\"orgs\": [\"maint-co\"]}, {\"orgs\": [\"maint-co\"], \"orgs\": [\"research-lab\"]}]}";
	struct tf_arena a = { 0 };
	struct tf_policy p;
	struct tf_err err;
	char path[] = "/tmp/tf-policy-XXXXXX";
	int fd;

	(void)state;
	assert_int_equal(tf_policy_load("/nonexistent/p.json", "policies/p.json", ids, false, &a, &p, &err),
		TF_ERR_IO);
	assert_non_null(strstr(err.msg, "policies/p.json: cannot open"));

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, twice, sizeof(twice) - 1), (ssize_t)(sizeof(twice) - 1));
	assert_int_equal(close(fd), 0);
	assert_int_equal(tf_policy_load(path, "policies/water.json", ids, false, &a, &p, &err),
		TF_ERR_INVALID);
	assert_string_equal(err.msg,
		"policies/water.json: $.consumers[1]: member \"orgs\" is given more than once");
	/* Without a display name the path names the file in validation errors. */
	assert_int_equal(tf_policy_load(path, NULL, NULL, false, &a, &p, &err), TF_ERR_INVALID);
	assert_true(strncmp(err.msg, path, strlen(path)) == 0);
	unlink(path);
	tf_arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(example_parses_with_every_field),
		cmocka_unit_test(example_selectors_match_the_right_clients),
		cmocka_unit_test(example_files_load),
		cmocka_unit_test(optional_members_have_defaults),
		cmocka_unit_test(other_valid_values_load),
		cmocka_unit_test(unknown_selector_names_are_not_errors_and_match_nobody),
		cmocka_unit_test(unknown_names_beside_known_ones_are_ignored),
		cmocka_unit_test(empty_publishers_match_every_identified_client),
		cmocka_unit_test(empty_key_matches_nobody),
		cmocka_unit_test(without_identities_only_syntax_is_checked),
		cmocka_unit_test(unknown_member_at_top_level),
		cmocka_unit_test(unknown_member_in_consumer_rule),
		cmocka_unit_test(unknown_member_in_publishers),
		cmocka_unit_test(unknown_member_in_limits),
		cmocka_unit_test(unknown_member_in_on_violation),
		cmocka_unit_test(format_must_be_1),
		cmocka_unit_test(id_must_be_valid),
		cmocka_unit_test(version_must_be_a_positive_integer),
		cmocka_unit_test(owner_must_be_a_known_org),
		cmocka_unit_test(description_is_limited),
		cmocka_unit_test(topics_must_be_a_non_empty_list),
		cmocka_unit_test(topics_must_be_valid_filters),
		cmocka_unit_test(dollar_topics_are_refused),
		cmocka_unit_test(duplicate_topics_are_refused),
		cmocka_unit_test(consumers_must_be_a_list_of_objects),
		cmocka_unit_test(consumer_org_must_be_known),
		cmocka_unit_test(selector_lists_hold_ids),
		cmocka_unit_test(not_after_must_be_rfc3339),
		cmocka_unit_test(impossible_dates_are_refused),
		cmocka_unit_test(date_times_without_an_offset_are_refused),
		cmocka_unit_test(a_date_alone_covers_the_whole_day),
		cmocka_unit_test(a_date_time_is_the_instant_it_names),
		cmocka_unit_test(date_windows_must_not_be_empty),
		cmocka_unit_test(not_before_must_precede_not_after),
		cmocka_unit_test(fields_need_a_view),
		cmocka_unit_test(view_needs_fields),
		cmocka_unit_test(view_must_not_have_wildcards),
		cmocka_unit_test(fields_must_be_a_non_empty_list_of_names),
		cmocka_unit_test(retention_must_be_positive),
		cmocka_unit_test(owner_receives_is_a_boolean),
		cmocka_unit_test(forwarding_is_allow_or_deny),
		cmocka_unit_test(limits_must_be_positive),
		cmocka_unit_test(action_must_be_known),
		cmocka_unit_test(reroute_needs_reroute_to),
		cmocka_unit_test(reroute_to_needs_reroute),
		cmocka_unit_test(reroute_to_must_not_have_wildcards),
		cmocka_unit_test(disconnect_must_be_boolean),
		cmocka_unit_test(on_anomaly_loads_apart_from_on_violation),
		cmocka_unit_test(on_anomaly_errors_name_its_path),
		cmocka_unit_test(schema_keywords_outside_the_subset_are_refused),
		cmocka_unit_test(file_over_1_mib_is_refused),
		cmocka_unit_test(file_errors_name_the_file),
		cmocka_unit_test(label_id_ends_at_the_last_at_sign),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
