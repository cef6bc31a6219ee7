/* Unit tests for policy/identities.c: the identities file of policy-v1
 * (organizations, clients, roles and purposes), its lookups, and every
 * validation error with the JSON path it names.
 *
 * Most fixtures are inline. The spec's example is also read from
 * tests/unit/data/identities.json, found under the source directory named
 * by the environment variable TF_SRCDIR (make check sets it; "." when
 * unset, so run the test from the top of the source tree). */
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

#include "policy/id.h"
#include "policy/identities.h"
#include "broker/stamp/provenance.h"
#include "policy/jsonfile.h"

#define FILE_NAME "identities.json"

/* The example of policy-v1.md, verbatim. */
static const char example[] =
	"{\n"
	"  \"trustflow_identities\": 1,\n"
	"  \"organizations\": {\n"
	"    \"city-waterworks\": { \"name\": \"City Waterworks Bureau\" },\n"
	"    \"maint-co\":        { \"name\": \"Maintenance Co.\" }\n"
	"  },\n"
	"  \"clients\": {\n"
	"    \"ww-sensor-01\": { \"org\": \"city-waterworks\", \"roles\": [\"sensor\"] },\n"
	"    \"maint-app\":    { \"org\": \"maint-co\", \"roles\": [\"operator\"], \"purposes\": [\"maintenance\"] },\n"
	"    \"ops-admin\":    { \"org\": \"city-waterworks\", \"roles\": [\"trustflow-admin\"] }\n"
	"  }\n"
	"}\n";

/* Prefix of a file with one organization "o", for the error cases. */
#define ORGS "{\"trustflow_identities\": 1, \"organizations\": {\"o\": {}}, "

/* Parses text as FILE_NAME and loads it. */
static int load(const char *text, struct tf_identities **out, struct tf_err *err)
{
	struct tf_jctx c;
	cJSON *root;
	int rc;

	memset(err, 0, sizeof(*err));
	*out = NULL;
	rc = tf_json_parse(text, strlen(text), FILE_NAME, &root, err);
	if (rc != TF_OK)
		return rc;
	tf_jctx_init(&c, FILE_NAME, err);
	rc = tf_identities_from_json(&c, root, out);
	cJSON_Delete(root);
	return rc;
}

static struct tf_identities *load_ok(const char *text)
{
	struct tf_identities *ids;
	struct tf_err err;

	if (load(text, &ids, &err) != TF_OK)
		fail_msg("does not load: %s", err.msg);
	assert_non_null(ids);
	return ids;
}

/* expected is the whole message or, ending in "...", its beginning. */
static void expect_invalid(const char *text, const char *expected)
{
	struct tf_identities *ids;
	struct tf_err err;
	size_t n = strlen(expected);

	assert_int_equal(load(text, &ids, &err), TF_ERR_INVALID);
	assert_null(ids);
	if (n > 3 && strcmp(expected + n - 3, "...") == 0) {
		if (strncmp(err.msg, expected, n - 3) != 0)
			fail_msg("\"%s\" does not begin with \"%.*s\"", err.msg, (int)(n - 3), expected);
	} else {
		assert_string_equal(err.msg, expected);
	}
}

static void data_path(char *buf, size_t len, const char *name)
{
	const char *dir = getenv("TF_SRCDIR");

	snprintf(buf, len, "%s/tests/unit/data/%s", dir != NULL && *dir ? dir : ".", name);
}

/* ---- loading and lookups ---- */

static void example_loads_with_orgs_and_clients(void **state)
{
	struct tf_identities *ids;
	uint32_t ww, mc;

	(void)state;
	ids = load_ok(example);
	assert_int_equal(tf_identities_org_count(ids), 2);
	assert_int_equal(tf_identities_client_count(ids), 3);
	ww = tf_identities_org(ids, "city-waterworks");
	mc = tf_identities_org(ids, "maint-co");
	assert_int_not_equal(ww, TF_NONE);
	assert_int_not_equal(mc, TF_NONE);
	assert_int_not_equal(ww, mc);
	assert_string_equal(tf_identities_org_id(ids, ww), "city-waterworks");
	assert_string_equal(tf_identities_org_id(ids, mc), "maint-co");
	assert_int_equal(tf_identities_org(ids, "research-lab"), TF_NONE);
	/* Org ids are case-sensitive. */
	assert_int_equal(tf_identities_org(ids, "Maint-co"), TF_NONE);
	assert_string_equal(tf_identities_org_id(ids, 99), "");
	/* sensor, operator, maintenance, trustflow-admin. */
	assert_int_equal(tf_identities_symbol_count(ids), 4);
	assert_true(tf_identities_bytes(ids) > 0);
	tf_identities_free(ids);
}

static void clients_have_org_roles_and_purposes(void **state)
{
	struct tf_identities *ids;
	const struct tf_client *sensor, *app, *admin;
	uint32_t s_sensor, s_operator, s_maint, s_admin;

	(void)state;
	ids = load_ok(example);
	sensor = tf_identities_client(ids, "ww-sensor-01");
	app = tf_identities_client(ids, "maint-app");
	admin = tf_identities_client(ids, "ops-admin");
	assert_non_null(sensor);
	assert_non_null(app);
	assert_non_null(admin);
	assert_string_equal(sensor->username, "ww-sensor-01");
	assert_string_equal(app->username, "maint-app");
	assert_int_equal(sensor->index, tf_identities_client_index(ids, "ww-sensor-01"));
	assert_int_equal(app->index, tf_identities_client_index(ids, "maint-app"));
	assert_int_not_equal(sensor->index, app->index);
	assert_int_equal(sensor->org, tf_identities_org(ids, "city-waterworks"));
	assert_int_equal(admin->org, tf_identities_org(ids, "city-waterworks"));
	assert_int_equal(app->org, tf_identities_org(ids, "maint-co"));

	s_sensor = tf_identities_symbol(ids, "sensor");
	s_operator = tf_identities_symbol(ids, "operator");
	s_maint = tf_identities_symbol(ids, "maintenance");
	s_admin = tf_identities_symbol(ids, "trustflow-admin");
	assert_int_not_equal(s_sensor, TF_NONE);
	assert_int_not_equal(s_operator, TF_NONE);
	assert_int_not_equal(s_maint, TF_NONE);
	assert_int_not_equal(s_admin, TF_NONE);
	assert_int_equal(tf_identities_symbol(ids, "data-steward"), TF_NONE);
	assert_int_equal(tf_identities_symbol(ids, "Sensor"), TF_NONE);

	assert_int_equal(sensor->n_roles, 1);
	assert_int_equal(sensor->n_purposes, 0);
	assert_true(tf_symbols_contain(sensor->roles, sensor->n_roles, s_sensor));
	assert_false(tf_symbols_contain(sensor->roles, sensor->n_roles, s_operator));

	assert_int_equal(app->n_roles, 1);
	assert_int_equal(app->n_purposes, 1);
	assert_true(tf_symbols_contain(app->roles, app->n_roles, s_operator));
	assert_false(tf_symbols_contain(app->roles, app->n_roles, s_maint));
	assert_true(tf_symbols_contain(app->purposes, app->n_purposes, s_maint));
	assert_false(tf_symbols_contain(app->purposes, app->n_purposes, s_operator));

	assert_true(tf_symbols_contain(admin->roles, admin->n_roles, s_admin));
	assert_false(tf_symbols_contain(admin->purposes, admin->n_purposes, s_maint));
	tf_identities_free(ids);
}

static void unknown_usernames_are_unidentified(void **state)
{
	struct tf_identities *ids;

	(void)state;
	ids = load_ok(example);
	assert_null(tf_identities_client(ids, "ww-sensor-02"));
	assert_null(tf_identities_client(ids, "MAINT-APP"));
	assert_null(tf_identities_client(ids, ""));
	assert_null(tf_identities_client(ids, NULL));
	assert_int_equal(tf_identities_client_index(ids, "nobody"), TF_NONE);
	assert_int_equal(tf_identities_client_index(ids, NULL), TF_NONE);
	/* An org id is not a username. */
	assert_null(tf_identities_client(ids, "maint-co"));
	tf_identities_free(ids);
}

static void example_file_loads(void **state)
{
	struct tf_identities *ids = NULL;
	struct tf_err err;
	char path[4096];

	(void)state;
	data_path(path, sizeof(path), "identities.json");
	if (tf_identities_load(path, "conf/identities.json", &ids, &err) != TF_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(tf_identities_client_count(ids), 3);
	assert_non_null(tf_identities_client(ids, "ops-admin"));
	tf_identities_free(ids);
}

static void missing_file_is_an_io_error(void **state)
{
	struct tf_identities *ids = (struct tf_identities *)state; /* must be reset */
	struct tf_err err;

	assert_int_equal(tf_identities_load("/nonexistent/identities.json", NULL, &ids, &err),
		TF_ERR_IO);
	assert_null(ids);
	assert_non_null(strstr(err.msg, "/nonexistent/identities.json: cannot open"));
}

static void optional_members_may_be_absent(void **state)
{
	struct tf_identities *ids;
	const struct tf_client *c;

	(void)state;
	ids = load_ok(ORGS "\"clients\": {\"bare\": {\"org\": \"o\"},"
		" \"empty\": {\"org\": \"o\", \"roles\": [], \"purposes\": []}}}");
	c = tf_identities_client(ids, "bare");
	assert_non_null(c);
	assert_int_equal(c->n_roles, 0);
	assert_int_equal(c->n_purposes, 0);
	c = tf_identities_client(ids, "empty");
	assert_non_null(c);
	assert_int_equal(c->n_roles, 0);
	assert_int_equal(c->n_purposes, 0);
	assert_int_equal(tf_identities_symbol_count(ids), 0);
	tf_identities_free(ids);

	ids = load_ok("{\"trustflow_identities\": 1, \"organizations\": {}, \"clients\": {}}");
	assert_int_equal(tf_identities_org_count(ids), 0);
	assert_int_equal(tf_identities_client_count(ids), 0);
	assert_null(tf_identities_client(ids, "x"));
	tf_identities_free(ids);
}

static void labels_are_sorted_unique_and_shared(void **state)
{
	struct tf_identities *ids;
	const struct tf_client *a, *b;
	uint32_t sx, sy, sz;

	(void)state;
	ids = load_ok(ORGS "\"clients\": {"
		"\"a\": {\"org\": \"o\", \"roles\": [\"z\", \"x\", \"z\", \"y\"], \"purposes\": [\"x\"]},"
		"\"b\": {\"org\": \"o\", \"roles\": [\"y\"]}}}");
	a = tf_identities_client(ids, "a");
	b = tf_identities_client(ids, "b");
	sx = tf_identities_symbol(ids, "x");
	sy = tf_identities_symbol(ids, "y");
	sz = tf_identities_symbol(ids, "z");
	/* One symbol per name, whether role or purpose. */
	assert_int_equal(tf_identities_symbol_count(ids), 3);
	assert_int_equal(a->n_roles, 3);
	for (uint32_t i = 1; i < a->n_roles; i++)
		assert_true(a->roles[i - 1] < a->roles[i]);
	assert_true(tf_symbols_contain(a->roles, a->n_roles, sx));
	assert_true(tf_symbols_contain(a->roles, a->n_roles, sy));
	assert_true(tf_symbols_contain(a->roles, a->n_roles, sz));
	assert_true(tf_symbols_contain(a->purposes, a->n_purposes, sx));
	assert_int_equal(b->n_roles, 1);
	assert_int_equal(b->roles[0], sy);
	/* Each symbol names itself (explanations of decisions show them). */
	assert_string_equal(tf_identities_symbol_name(ids, sx), "x");
	assert_string_equal(tf_identities_symbol_name(ids, sy), "y");
	assert_string_equal(tf_identities_symbol_name(ids, sz), "z");
	assert_string_equal(tf_identities_symbol_name(ids, 3), "");
	assert_string_equal(tf_identities_symbol_name(ids, TF_NONE), "");
	/* Clients by index, in the file's order. */
	assert_ptr_equal(tf_identities_client_at(ids, 0), a);
	assert_ptr_equal(tf_identities_client_at(ids, 1), b);
	assert_null(tf_identities_client_at(ids, 2));
	tf_identities_free(ids);
}

static void symbol_lists_sort_and_search(void **state)
{
	uint32_t list[] = { 9, 3, 3, 7, 1, 9, 0 };
	uint32_t n = 7;

	(void)state;
	tf_symbols_sort_unique(list, &n);
	assert_int_equal(n, 5);
	assert_int_equal(list[0], 0);
	assert_int_equal(list[1], 1);
	assert_int_equal(list[2], 3);
	assert_int_equal(list[3], 7);
	assert_int_equal(list[4], 9);
	for (uint32_t s = 0; s < 11; s++)
		assert_int_equal(tf_symbols_contain(list, n, s),
			s == 0 || s == 1 || s == 3 || s == 7 || s == 9);
	assert_false(tf_symbols_contain(list, 0, 0));
	assert_false(tf_symbols_contain(NULL, 0, 3));
	n = 0;
	tf_symbols_sort_unique(list, &n);
	assert_int_equal(n, 0);
}

/* ---- the top level ---- */

static void root_must_be_an_object(void **state)
{
	(void)state;
	expect_invalid("[]", FILE_NAME ": $: must be an object");
}

static void format_must_be_1(void **state)
{
	(void)state;
	expect_invalid("{\"organizations\": {}, \"clients\": {}}",
		FILE_NAME ": $.trustflow_identities: is required");
	expect_invalid("{\"trustflow_identities\": 2, \"organizations\": {}, \"clients\": {}}",
		FILE_NAME ": $.trustflow_identities: must be an integer from 1 to 1");
	expect_invalid("{\"trustflow_identities\": \"1\", \"organizations\": {}, \"clients\": {}}",
		FILE_NAME ": $.trustflow_identities: must be an integer from 1 to 1");
	expect_invalid("{\"trustflow_identities\": 1.5, \"organizations\": {}, \"clients\": {}}",
		FILE_NAME ": $.trustflow_identities: must be an integer from 1 to 1");
}

static void organizations_and_clients_are_required_maps(void **state)
{
	(void)state;
	expect_invalid("{\"trustflow_identities\": 1, \"clients\": {}}",
		FILE_NAME ": $.organizations: is required");
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": [], \"clients\": {}}",
		FILE_NAME ": $.organizations: must be an object");
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": \"o\", \"clients\": {}}",
		FILE_NAME ": $.organizations: must be an object");
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {}}",
		FILE_NAME ": $.clients: is required");
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {}, \"clients\": []}",
		FILE_NAME ": $.clients: must be an object");
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {}, \"clients\": null}",
		FILE_NAME ": $.clients: must be an object");
}

static void unknown_top_level_member_is_refused(void **state)
{
	(void)state;
	expect_invalid(ORGS "\"clients\": {}, \"client\": {}}", FILE_NAME ": $.client: unknown member");
	expect_invalid(ORGS "\"clients\": {}, \"trust flow\": 1}",
		FILE_NAME ": $[\"trust flow\"]: unknown member");
}

/* ---- organizations ---- */

static void unknown_member_in_org_is_refused(void **state)
{
	(void)state;
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {\"maint-co\":"
		" {\"name\": \"M\", \"title\": \"M\"}}, \"clients\": {}}",
		FILE_NAME ": $.organizations.maint-co.title: unknown member");
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {\"maint-co\": \"M\"},"
		" \"clients\": {}}",
		FILE_NAME ": $.organizations.maint-co: must be an object");
}

static void invalid_org_id_is_refused(void **state)
{
	char text[512];
	char long_id[TF_ID_MAX_LEN + 2];

	(void)state;
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {\"ok\": {}, \"city waterworks\": {}},"
		" \"clients\": {}}",
		FILE_NAME ": $.organizations[\"city waterworks\"]: not a valid organization id");
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {\"-co\": {}}, \"clients\": {}}",
		FILE_NAME ": $.organizations.-co: not a valid organization id");
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {\"\": {}}, \"clients\": {}}",
		FILE_NAME ": $.organizations[\"\"]: not a valid organization id");
	/* 129 characters is one too many; 128 is fine. */
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	snprintf(text, sizeof(text), "{\"trustflow_identities\": 1, \"organizations\": {\"%s\": {}},"
		" \"clients\": {}}", long_id);
	{
		char expected[512];

		snprintf(expected, sizeof(expected),
			FILE_NAME ": $.organizations.%s: not a valid organization id", long_id);
		expect_invalid(text, expected);
	}
	long_id[TF_ID_MAX_LEN] = '\0';
	snprintf(text, sizeof(text), "{\"trustflow_identities\": 1, \"organizations\": {\"%s\": {}},"
		" \"clients\": {}}", long_id);
	tf_identities_free(load_ok(text));
}

static void org_name_is_limited(void **state)
{
	char text[1024];
	char name[TF_ORG_NAME_MAX + 2];
	struct tf_identities *ids;

	(void)state;
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';  /* 257 bytes */
	snprintf(text, sizeof(text), "{\"trustflow_identities\": 1, \"organizations\":"
		" {\"o\": {\"name\": \"%s\"}}, \"clients\": {}}", name);
	expect_invalid(text, FILE_NAME ": $.organizations.o.name: longer than 256 bytes");
	name[TF_ORG_NAME_MAX] = '\0';  /* 256 bytes */
	snprintf(text, sizeof(text), "{\"trustflow_identities\": 1, \"organizations\":"
		" {\"o\": {\"name\": \"%s\"}}, \"clients\": {}}", name);
	ids = load_ok(text);
	assert_int_equal(tf_identities_org_count(ids), 1);
	tf_identities_free(ids);
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {\"o\": {\"name\": 5}},"
		" \"clients\": {}}", FILE_NAME ": $.organizations.o.name: must be a string");
}

/* ---- clients ---- */

static void unknown_member_in_client_is_refused(void **state)
{
	(void)state;
	expect_invalid(ORGS "\"clients\": {\"maint-app\": {\"org\": \"o\", \"purpose\": [\"x\"]}}}",
		FILE_NAME ": $.clients.maint-app.purpose: unknown member");
	expect_invalid(ORGS "\"clients\": {\"maint-app\": [\"o\"]}}",
		FILE_NAME ": $.clients.maint-app: must be an object");
}

static void client_org_must_be_known(void **state)
{
	(void)state;
	expect_invalid(ORGS "\"clients\": {\"x\": {\"org\": \"nope\"}}}",
		FILE_NAME ": $.clients.x.org: unknown organization \"nope\" (not in $.organizations)");
	expect_invalid(ORGS "\"clients\": {\"x\": {\"roles\": [\"r\"]}}}",
		FILE_NAME ": $.clients.x.org: is required");
	expect_invalid(ORGS "\"clients\": {\"x\": {\"org\": 1}}}",
		FILE_NAME ": $.clients.x.org: not a valid id...");
	expect_invalid(ORGS "\"clients\": {\"x\": {\"org\": \"no such\"}}}",
		FILE_NAME ": $.clients.x.org: not a valid id...");
}

static void invalid_username_is_refused(void **state)
{
	(void)state;
	expect_invalid(ORGS "\"clients\": {\"ok\": {\"org\": \"o\"}, \"bad user\": {\"org\": \"o\"}}}",
		FILE_NAME ": $.clients[\"bad user\"]: not a valid username...");
	expect_invalid(ORGS "\"clients\": {\"_x\": {\"org\": \"o\"}}}",
		FILE_NAME ": $.clients._x: not a valid username...");
	expect_invalid(ORGS "\"clients\": {\"caf\xc3\xa9\": {\"org\": \"o\"}}}",
		FILE_NAME ": $.clients[\"caf\xc3\xa9\"]: not a valid username...");
}

static void usernames_with_id_punctuation_are_valid(void **state)
{
	struct tf_identities *ids;
	const struct tf_client *c;

	(void)state;
	ids = load_ok(ORGS "\"clients\": {\"Sensor.01@city:ww_x-1\": {\"org\": \"o\"}}}");
	c = tf_identities_client(ids, "Sensor.01@city:ww_x-1");
	assert_non_null(c);
	assert_string_equal(c->username, "Sensor.01@city:ww_x-1");
	tf_identities_free(ids);
	/* Such names are bracketed in paths. */
	expect_invalid(ORGS "\"clients\": {\"a.b\": {\"org\": \"o\", \"x\": 1}}}",
		FILE_NAME ": $.clients[\"a.b\"].x: unknown member");
}

static void invalid_role_or_purpose_names_its_index(void **state)
{
	(void)state;
	expect_invalid(ORGS "\"clients\": {\"x\": {\"org\": \"o\", \"roles\": [\"ok\", \"bad role\"]}}}",
		FILE_NAME ": $.clients.x.roles[1]: not a valid id");
	expect_invalid(ORGS "\"clients\": {\"x\": {\"org\": \"o\", \"roles\": [7]}}}",
		FILE_NAME ": $.clients.x.roles[0]: not a valid id");
	expect_invalid(ORGS "\"clients\": {\"x\": {\"org\": \"o\", \"purposes\": [\"a\", \"b\", \"\"]}}}",
		FILE_NAME ": $.clients.x.purposes[2]: not a valid id");
}

static void client_ids_are_reserved_to_their_declarer(void **state)
{
	struct tf_identities *ids;

	(void)state;
	ids = load_ok(ORGS "\"clients\": {\"a\": {\"org\": \"o\", \"client_ids\": [\"a-1\", \"a-2\"]}, "
		"\"b\": {\"org\": \"o\"}}}");
	assert_string_equal(tf_identities_client_id_owner(ids, "a-2")->username, "a");
	assert_int_equal(tf_identities_client(ids, "a")->n_client_ids, 2);
	assert_int_equal(tf_identities_client(ids, "b")->n_client_ids, 0);
	/* A username is reserved to its client as a client id too. */
	assert_string_equal(tf_identities_client_id_owner(ids, "b")->username, "b");
	assert_null(tf_identities_client_id_owner(ids, "c"));
	assert_null(tf_identities_client_id_owner(ids, NULL));
	tf_identities_free(ids);
}

static void client_ids_are_checked(void **state)
{
	(void)state;
	expect_invalid(ORGS "\"clients\": {\"a\": {\"org\": \"o\", \"client_ids\": [\"x\", \"x\"]}}}",
		FILE_NAME ": $.clients.a.client_ids[1]: client id \"x\" is listed twice");
	expect_invalid(ORGS "\"clients\": {\"a\": {\"org\": \"o\", \"client_ids\": [\"x\"]}, "
		"\"b\": {\"org\": \"o\", \"client_ids\": [\"x\"]}}}",
		FILE_NAME ": $.clients.b.client_ids[0]: client id \"x\" is declared by \"a\" already");
	expect_invalid(ORGS "\"clients\": {\"a\": {\"org\": \"o\", \"client_ids\": [\"b\"]}, "
		"\"b\": {\"org\": \"o\"}}}",
		FILE_NAME ": $.clients.a.client_ids: client id \"b\" is the username of another client");
	expect_invalid(ORGS "\"clients\": {\"a\": {\"org\": \"o\", \"client_ids\": []}}}",
		FILE_NAME ": $.clients.a.client_ids: ...");
	expect_invalid(ORGS "\"clients\": {\"a\": {\"org\": \"o\", \"client_ids\": [\"a b\"]}}}",
		FILE_NAME ": $.clients.a.client_ids[0]: not a valid client id...");
}

static void roles_must_be_a_list(void **state)
{
	(void)state;
	expect_invalid(ORGS "\"clients\": {\"x\": {\"org\": \"o\", \"roles\": \"sensor\"}}}",
		FILE_NAME ": $.clients.x.roles: must be a list");
	expect_invalid(ORGS "\"clients\": {\"x\": {\"org\": \"o\", \"purposes\": {}}}}",
		FILE_NAME ": $.clients.x.purposes: must be a list");
}

/* A client x with n roles r0, r1, ... (or purposes). */
static char *many_labels(const char *member, int n)
{
	size_t cap = (size_t)n * 8 + 256;
	char *s = malloc(cap);
	size_t len;

	assert_non_null(s);
	len = (size_t)snprintf(s, cap, ORGS "\"clients\": {\"x\": {\"org\": \"o\", \"%s\": [", member);
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s\"r%d\"", i ? ", " : "", i);
	snprintf(s + len, cap - len, "]}}}");
	return s;
}

static void at_most_64_roles_and_purposes(void **state)
{
	struct tf_identities *ids;
	char *text;

	(void)state;
	text = many_labels("roles", TF_IDENTITIES_MAX_LABELS);
	ids = load_ok(text);
	assert_int_equal(tf_identities_client(ids, "x")->n_roles, 64);
	tf_identities_free(ids);
	free(text);

	text = many_labels("roles", TF_IDENTITIES_MAX_LABELS + 1);
	expect_invalid(text, FILE_NAME ": $.clients.x.roles: has 65 items, more than the 64 allowed");
	free(text);
	text = many_labels("purposes", TF_IDENTITIES_MAX_LABELS + 1);
	expect_invalid(text, FILE_NAME ": $.clients.x.purposes: has 65 items, more than the 64 allowed");
	free(text);
}

static void member_given_twice_is_refused(void **state)
{
	static const char twice[] =
		"{\"trustflow_identities\": 1,\n"
		" \"organizations\": {\"city-waterworks\": {}},\n"
		" \"clients\": {\n"
		"  \"ww-sensor-01\": {\"org\": \"city-waterworks\", \"roles\": [\"sensor\"]},\n"
		"  \"ww-sensor-01\": {\"org\": \"city-waterworks\", \"roles\": [\"trustflow-admin\"]}\n"
		" }}\n";
	struct tf_identities *ids = NULL;
	struct tf_err err;
	char path[] = "/tmp/tf-identities-XXXXXX";
	int fd;

	(void)state;
	expect_invalid(twice,
		FILE_NAME ": $.clients: member \"ww-sensor-01\" is given more than once");
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {\"o\": {}, \"o\": {}},"
		" \"clients\": {}}",
		FILE_NAME ": $.organizations: member \"o\" is given more than once");
	expect_invalid(ORGS "\"clients\": {\"x\": {\"org\": \"o\", \"roles\": [], \"roles\": [\"r\"]}}}",
		FILE_NAME ": $.clients.x: member \"roles\" is given more than once");

	/* The same through the file loader. */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, twice, sizeof(twice) - 1), (ssize_t)(sizeof(twice) - 1));
	assert_int_equal(close(fd), 0);
	assert_int_equal(tf_identities_load(path, "conf/identities.json", &ids, &err),
		TF_ERR_INVALID);
	assert_null(ids);
	assert_string_equal(err.msg,
		"conf/identities.json: $.clients: member \"ww-sensor-01\" is given more than once");
	unlink(path);
}

/* RFC 8032's first test key as policy_keys hold it, and its key id. */
#define POLICY_KEY "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define POLICY_KID "21fe31dfa154a261"

static void policy_keys_are_each_organizations_keyring(void **state)
{
	struct tf_identities *ids = load_ok(
		"{\"trustflow_identities\": 1, \"organizations\": {\"grid-op\": {\"name\": \"Grid\","
		" \"policy_keys\": [\"" POLICY_KEY "\"]}, \"retail-a\": {}}, \"clients\": {}}");
	const struct tf_keyring *keys;

	(void)state;
	keys = tf_identities_policy_keys(ids, tf_identities_org(ids, "grid-op"));
	assert_non_null(keys);
	assert_int_equal(tf_keyring_count(keys), 1);
	assert_string_equal(tf_keyring_kid(keys, 0), POLICY_KID);
	assert_null(tf_identities_policy_keys(ids, tf_identities_org(ids, "retail-a")));
	assert_null(tf_identities_policy_keys(ids, TF_NONE));
	tf_identities_free(ids);
}

static void policy_keys_are_checked_where_they_stand(void **state)
{
	(void)state;
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {\"o\": {\"policy_keys\":"
		" [\"" POLICY_KEY "\", \"bm90IGEga2V5\"]}}, \"clients\": {}}",
		FILE_NAME ": $.organizations.o.policy_keys[1]: not an Ed25519 public key...");
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {\"o\": {\"policy_keys\":"
		" [\"-----BEGIN PUBLIC KEY-----\"]}}, \"clients\": {}}",
		FILE_NAME ": $.organizations.o.policy_keys[0]: not an Ed25519 public key...");
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {\"o\": {\"policy_keys\":"
		" [7]}}, \"clients\": {}}",
		FILE_NAME ": $.organizations.o.policy_keys[0]: must be a string");
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {\"o\": {\"policy_keys\":"
		" []}}, \"clients\": {}}",
		FILE_NAME ": $.organizations.o.policy_keys...");
	expect_invalid("{\"trustflow_identities\": 1, \"organizations\": {\"o\": {\"policy_keys\":"
		" \"" POLICY_KEY "\"}}, \"clients\": {}}",
		FILE_NAME ": $.organizations.o.policy_keys...");
}

/* An identities file with a peer broker entry: BROKERS is the value of
 * "brokers". */
#define WITH_BROKERS(BROKERS) \
	"{\"trustflow_identities\": 1, \"organizations\": {\"grid-op\": {}, \"retail-a\": {}}," \
	" \"clients\": {\"meter-1\": {\"org\": \"grid-op\"}}, \"brokers\": " BROKERS "}"

static void peers_are_found_by_broker_id_and_by_link(void **state)
{
	struct tf_identities *ids = load_ok(WITH_BROKERS(
		"{\"broker-b\": {\"org\": \"retail-a\", \"link\": \"bridge-from-b\","
		" \"keys\": [\"" POLICY_KEY "\"]}}"));
	const struct tf_peer *peer;

	(void)state;
	assert_int_equal(tf_identities_peer_count(ids), 1);
	peer = tf_identities_peer(ids, "broker-b");
	assert_non_null(peer);
	assert_ptr_equal(tf_identities_peer_by_link(ids, "bridge-from-b"), peer);
	assert_string_equal(peer->broker_id, "broker-b");
	assert_string_equal(peer->link, "bridge-from-b");
	assert_int_equal(peer->org, tf_identities_org(ids, "retail-a"));
	assert_int_equal(tf_keyring_count(peer->keys), 1);
	assert_string_equal(tf_keyring_kid(peer->keys, 0), POLICY_KID);
	/* A peer's link is not a client, and a client is not a peer. */
	assert_null(tf_identities_client(ids, "bridge-from-b"));
	assert_null(tf_identities_peer_by_link(ids, "meter-1"));
	assert_null(tf_identities_peer(ids, "broker-c"));
	tf_identities_free(ids);
	/* Without brokers: none. */
	ids = load_ok("{\"trustflow_identities\": 1, \"organizations\": {}, \"clients\": {}}");
	assert_int_equal(tf_identities_peer_count(ids), 0);
	assert_null(tf_identities_peer_by_link(ids, "bridge-from-b"));
	tf_identities_free(ids);
}

static void peers_are_checked_where_they_stand(void **state)
{
	(void)state;
	/* A client's username as a link: the client would pass for the peer. */
	expect_invalid(WITH_BROKERS("{\"b\": {\"org\": \"retail-a\", \"link\": \"meter-1\","
		" \"keys\": [\"" POLICY_KEY "\"]}}"),
		FILE_NAME ": $.brokers.b.link: \"meter-1\" is a client's username: a peer's link must be "
		"a username of its own");
	expect_invalid(WITH_BROKERS("{\"b\": {\"org\": \"retail-a\", \"link\": \"l\","
		" \"keys\": [\"" POLICY_KEY "\"]}, \"c\": {\"org\": \"grid-op\", \"link\": \"l\","
		" \"keys\": [\"" POLICY_KEY "\"]}}"),
		FILE_NAME ": $.brokers.c.link: \"l\" is also the link of peer b");
	expect_invalid(WITH_BROKERS("{\"b\": {\"org\": \"nobody\", \"link\": \"l\","
		" \"keys\": [\"" POLICY_KEY "\"]}}"),
		FILE_NAME ": $.brokers.b.org: unknown organization \"nobody\"");
	expect_invalid(WITH_BROKERS("{\"b\": {\"org\": \"retail-a\", \"link\": \"l\","
		" \"keys\": [\"bm90IGEga2V5\"]}}"),
		FILE_NAME ": $.brokers.b.keys[0]: not an Ed25519 public key...");
	expect_invalid(WITH_BROKERS("{\"b\": {\"org\": \"retail-a\", \"link\": \"l\","
		" \"keys\": []}}"), FILE_NAME ": $.brokers.b.keys...");
	expect_invalid(WITH_BROKERS("{\"b\": {\"org\": \"retail-a\", \"link\": \"l\"}}"),
		FILE_NAME ": $.brokers.b.keys: is required");
	expect_invalid(WITH_BROKERS("{\"b\": {\"org\": \"retail-a\", \"link\": \"l\","
		" \"keys\": [\"" POLICY_KEY "\"], \"trusted\": true}}"),
		FILE_NAME ": $.brokers.b.trusted: unknown member");
	expect_invalid(WITH_BROKERS("{\"b c\": {\"org\": \"retail-a\", \"link\": \"l\","
		" \"keys\": [\"" POLICY_KEY "\"]}}"),
		FILE_NAME ": $.brokers[\"b c\"]: not a valid broker id");
	expect_invalid(WITH_BROKERS("[]"), FILE_NAME ": $.brokers: must be an object");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(example_loads_with_orgs_and_clients),
		cmocka_unit_test(policy_keys_are_each_organizations_keyring),
		cmocka_unit_test(policy_keys_are_checked_where_they_stand),
		cmocka_unit_test(peers_are_found_by_broker_id_and_by_link),
		cmocka_unit_test(peers_are_checked_where_they_stand),
		cmocka_unit_test(clients_have_org_roles_and_purposes),
		cmocka_unit_test(unknown_usernames_are_unidentified),
		cmocka_unit_test(example_file_loads),
		cmocka_unit_test(missing_file_is_an_io_error),
		cmocka_unit_test(optional_members_may_be_absent),
		cmocka_unit_test(labels_are_sorted_unique_and_shared),
		cmocka_unit_test(symbol_lists_sort_and_search),
		cmocka_unit_test(root_must_be_an_object),
		cmocka_unit_test(format_must_be_1),
		cmocka_unit_test(organizations_and_clients_are_required_maps),
		cmocka_unit_test(unknown_top_level_member_is_refused),
		cmocka_unit_test(unknown_member_in_org_is_refused),
		cmocka_unit_test(invalid_org_id_is_refused),
		cmocka_unit_test(org_name_is_limited),
		cmocka_unit_test(unknown_member_in_client_is_refused),
		cmocka_unit_test(client_org_must_be_known),
		cmocka_unit_test(invalid_username_is_refused),
		cmocka_unit_test(usernames_with_id_punctuation_are_valid),
		cmocka_unit_test(invalid_role_or_purpose_names_its_index),
		cmocka_unit_test(roles_must_be_a_list),
		cmocka_unit_test(at_most_64_roles_and_purposes),
		cmocka_unit_test(member_given_twice_is_refused),
		cmocka_unit_test(client_ids_are_reserved_to_their_declarer),
		cmocka_unit_test(client_ids_are_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
