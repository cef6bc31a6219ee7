/* Unit tests for broker/engine/engine.c: the broker side of trustflow without
 * mosquitto. Each test runs an engine over a temporary directory (an
 * identities file, a policy directory and a signing key the engine
 * creates), with hooks that record what the engine asks of the broker and
 * a clock the test sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "broker/engine/engine.h"
#include "broker/util/error.h"
#include "broker/engine/options.h"
#include "broker/stamp/provenance.h"
#include "broker/trace/trace_query.h"
#include "broker/trace/trace_event.h"
#include "broker/trace/trace_store.h"
#include "policy/decide.h"
#include "policy/set.h"

/* 2026-06-01T00:00:00Z: the clock at the start of every test. */
#define NOW 1780272000000LL

static const char identities_text[] =
	"{\n"
	"  \"trustflow_identities\": 1,\n"
	"  \"organizations\": {\n"
	"    \"city-waterworks\": { \"name\": \"City Waterworks Bureau\" },\n"
	"    \"maint-co\":        { \"name\": \"Maintenance Co.\" },\n"
	"    \"research-lab\":    {},\n"
	"    \"other-co\":        {}\n"
	"  },\n"
	"  \"clients\": {\n"
	"    \"ww-sensor-01\": { \"org\": \"city-waterworks\", \"roles\": [\"sensor\"] },\n"
	"    \"maint-app\":    { \"org\": \"maint-co\", \"roles\": [\"operator\"],"
	" \"purposes\": [\"maintenance\"] },\n"
	"    \"lab-bot\":      { \"org\": \"research-lab\" },\n"
	"    \"outsider\":     { \"org\": \"other-co\" }\n"
	"  }\n"
	"}\n";

/* Retention 10 s, at most 5 messages a second and 256 bytes, a schema, a
 * view for research-lab; violations are dropped. */
static const char water_text[] =
	"{\n"
	"  \"trustflow_policy\": 1,\n"
	"  \"id\": \"water-telemetry\",\n"
	"  \"version\": 3,\n"
	"  \"owner\": \"city-waterworks\",\n"
	"  \"topics\": [\"city/water/+/telemetry\"],\n"
	"  \"publishers\": { \"roles\": [\"sensor\"] },\n"
	"  \"consumers\": [\n"
	"    { \"orgs\": [\"maint-co\"], \"purposes\": [\"maintenance\"] },\n"
	"    { \"orgs\": [\"research-lab\"], \"fields\": [\"flow\"],"
	" \"view\": \"views/research-lab\" }\n"
	"  ],\n"
	"  \"retention_seconds\": 10,\n"
	"  \"limits\": { \"max_messages_per_second\": 5, \"max_payload_bytes\": 256 },\n"
	"  \"schema\": {\n"
	"    \"type\": \"object\",\n"
	"    \"required\": [\"flow\"],\n"
	"    \"properties\": { \"flow\": { \"type\": \"number\" },"
	" \"pressure\": { \"type\": \"number\" } }\n"
	"  },\n"
	"  \"on_violation\": { \"action\": \"drop\" }\n"
	"}\n";
#define WATER "water-telemetry@3"
#define WATER_FILTER "city/water/+/telemetry"
#define VIEW_PREFIX "views/research-lab/"

/* Owned by maint-co, no publishers (the owner org publishes), a schema and
 * a payload limit but no view and no retention; violations only alert. */
static const char alerts_text[] =
	"{\"trustflow_policy\": 1, \"id\": \"maint-status\", \"version\": 1,"
	" \"owner\": \"maint-co\", \"topics\": [\"maint/+/status\"],"
	" \"limits\": { \"max_payload_bytes\": 64 },"
	" \"schema\": { \"type\": \"object\", \"required\": [\"ok\"],"
	" \"properties\": { \"ok\": { \"type\": \"boolean\" } } },"
	" \"on_violation\": { \"action\": \"alert\" }}";
#define ALERTS "maint-status@1"

static const char good_payload[] = "{\"flow\":12.5,\"pressure\":3.1}";
#define GOOD_LEN ((uint32_t)(sizeof(good_payload) - 1))

#define MAX_LINES 64
#define MAX_KEYS 8

struct fixture {
	char dir[64];
	char identities[128], policy_dir[128], key_path[128];
	struct tf_engine *e;
	int64_t now;
	/* The log: every line's level and text (the first MAX_LINES). */
	enum tf_log_level levels[MAX_LINES];
	char *lines[MAX_LINES];
	uint32_t n_lines;
	/* Topics clear_retained was called with. */
	char *cleared[MAX_LINES];
	uint32_t n_cleared;
	/* Kids publish_key was called with. */
	char *kids[MAX_KEYS];
	uint32_t n_kids;
	/* The topic the tests publish on: its address identifies the
	 * message, as mosquitto's stored topic does. */
	char topic[64];
	/* Alerts publish_alert was called with: topic and JSON. */
	char *alert_topics[MAX_LINES], *alerts[MAX_LINES];
	uint32_t n_alerts;
	/* Policies publish_policy was called with: topic and JSON. */
	char *policy_topics[MAX_LINES], *policies[MAX_LINES];
	uint32_t n_policies;
};

/* --- hooks --------------------------------------------------------------- */

static void record_log(void *ctx, enum tf_log_level level, const char *text)
{
	struct fixture *f = ctx;

	if (f->n_lines < MAX_LINES) {
		f->levels[f->n_lines] = level;
		f->lines[f->n_lines] = strdup(text);
		assert_non_null(f->lines[f->n_lines]);
	}
	f->n_lines++;
}

static int64_t fake_now(void *ctx)
{
	return ((struct fixture *)ctx)->now;
}

static void record_clear(void *ctx, const char *topic)
{
	struct fixture *f = ctx;

	assert_true(f->n_cleared < MAX_LINES);
	f->cleared[f->n_cleared] = strdup(topic);
	assert_non_null(f->cleared[f->n_cleared]);
	f->n_cleared++;
}

static void record_key(void *ctx, const char *kid, const char *pem)
{
	struct fixture *f = ctx;

	assert_non_null(strstr(pem, "BEGIN PUBLIC KEY"));
	assert_true(f->n_kids < MAX_KEYS);
	f->kids[f->n_kids] = strdup(kid);
	assert_non_null(f->kids[f->n_kids]);
	f->n_kids++;
}

static void record_alert(void *ctx, const char *topic, const char *json)
{
	struct fixture *f = ctx;

	assert_true(f->n_alerts < MAX_LINES);
	f->alert_topics[f->n_alerts] = strdup(topic);
	f->alerts[f->n_alerts] = strdup(json);
	f->n_alerts++;
}

static void record_policy(void *ctx, const char *topic, const char *json)
{
	struct fixture *f = ctx;

	assert_true(f->n_policies < MAX_LINES);
	f->policy_topics[f->n_policies] = strdup(topic);
	f->policies[f->n_policies] = strdup(json);
	f->n_policies++;
}

/* Log lines containing each of the given strings (NULL-terminated), at
 * level (or any level when level is -1). */
static uint32_t logged(const struct fixture *f, int level, ...)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < f->n_lines && i < MAX_LINES; i++) {
		bool all = level < 0 || (int)f->levels[i] == level;
		va_list ap;
		const char *s;

		va_start(ap, level);
		while (all && (s = va_arg(ap, const char *)) != NULL)
			all = strstr(f->lines[i], s) != NULL;
		va_end(ap);
		n += all;
	}
	return n;
}

static void forget_log(struct fixture *f)
{
	for (uint32_t i = 0; i < f->n_lines && i < MAX_LINES; i++)
		free(f->lines[i]);
	f->n_lines = 0;
}

/* --- files and engines ---------------------------------------------------- */

static int write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *out;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	out = fopen(path, "w");
	if (out == NULL)
		return -1;
	ok = fputs(text, out) >= 0;
	ok = fclose(out) == 0 && ok;
	return ok ? 0 : -1;
}

/* An engine with the given options (pairs of name and value, NULL-ended),
 * over the fixture's hooks. *out is left to tf_engine_new. */
static int engine_with(struct fixture *f, const char *const *kv, struct tf_engine **out,
		struct tf_err *err)
{
	struct tf_options opts;
	struct tf_engine_hooks hooks = {
		.log = record_log,
		.now_ms = fake_now,
		.clear_retained = record_clear,
		.publish_key = record_key,
		.publish_alert = record_alert,
		.publish_policy = record_policy,
		.ctx = f,
	};
	int rc;

	rc = tf_options_init(&opts, err);
	if (rc != TF_OK)
		return rc;
	for (int i = 0; rc == TF_OK && kv[i] != NULL; i += 2)
		rc = tf_options_set(&opts, kv[i], kv[i + 1], err);
	if (rc == TF_OK)
		rc = tf_options_finish(&opts, err);
	if (rc == TF_OK)
		rc = tf_engine_new(&opts, &hooks, out, err);
	tf_options_free(&opts);
	return rc;
}

/* The usual options, with stamp_all as given. */
static int standard_engine(struct fixture *f, const char *stamp_all, struct tf_engine **out,
		struct tf_err *err)
{
	const char *const kv[] = {
		"identities", f->identities,
		"policy_dir", f->policy_dir,
		"signing_key", f->key_path,
		"dev_key_autogen", "true",
		"stamp_all", stamp_all,
		NULL,
	};

	return engine_with(f, kv, out, err);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct tf_err err;

	if (f == NULL)
		return -1;
	*state = f;
	strcpy(f->dir, "/tmp/tf-engine-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->identities, sizeof(f->identities), "%s/identities.json", f->dir);
	snprintf(f->policy_dir, sizeof(f->policy_dir), "%s/policies", f->dir);
	snprintf(f->key_path, sizeof(f->key_path), "%s/key.pem", f->dir);
	strcpy(f->topic, "city/water/d1/telemetry");
	f->now = NOW;
	if (write_file(f->dir, "identities.json", identities_text) != 0
			|| mkdir(f->policy_dir, 0700) != 0
			|| write_file(f->policy_dir, "water.json", water_text) != 0)
		return -1;
	f->e = NULL;
	if (standard_engine(f, "true", &f->e, &err) != TF_OK) {
		print_error("engine: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	tf_engine_free(f->e);
	forget_log(f);
	for (uint32_t i = 0; i < f->n_cleared; i++)
		free(f->cleared[i]);
	for (uint32_t i = 0; i < f->n_kids; i++)
		free(f->kids[i]);
	for (uint32_t i = 0; i < f->n_alerts; i++) {
		free(f->alert_topics[i]);
		free(f->alerts[i]);
	}
	for (uint32_t i = 0; i < f->n_policies; i++) {
		free(f->policy_topics[i]);
		free(f->policies[i]);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* A keyring with the public half of the engine's signing key. */
static struct tf_keyring *ring_of(const struct fixture *f, char kid[TF_KID_LEN + 1])
{
	struct tf_keyring *ring = tf_keyring_new();
	struct tf_err err;

	assert_non_null(ring);
	assert_int_equal(tf_keyring_add_file(ring, f->key_path, kid, &err), TF_OK);
	return ring;
}

static struct tf_message message(const char *username, const char *topic, const char *payload,
		bool retain)
{
	struct tf_message m = {
		.client_id = "client-id-1",
		.username = username,
		.topic = topic,
		.payload = payload,
		.payloadlen = (uint32_t)strlen(payload),
		.retain = retain,
	};

	return m;
}

/* The sensor publishes payload on the fixture's topic. */
static void sensor_publishes(struct fixture *f, const char *payload, bool retain,
		struct tf_message_result *res)
{
	struct tf_message m = message("ww-sensor-01", f->topic, payload, retain);

	tf_engine_on_message(f->e, &m, res);
}

static uint64_t seq_of(const struct tf_stamp *st)
{
	char *end;
	unsigned long long v;

	assert_non_null(st->seq);
	v = strtoull(st->seq, &end, 10);
	assert_true(*end == '\0' && end != st->seq);
	return (uint64_t)v;
}

/* --- loading ------------------------------------------------------------- */

static void new_loads_and_logs(void **state)
{
	struct fixture *f = *state;
	const struct tf_policy_set *set = tf_engine_policies(f->e);

	if (set == NULL) {
		fail();
		return;
	}
	assert_int_equal(set->n_policies, 1);
	assert_non_null(tf_policy_set_find(set, "water-telemetry"));
	assert_int_equal(logged(f, TF_LOG_NOTICE, "1 policies", "4 organizations", "4 clients",
		"default_access deny", NULL), 1);
}

static void new_creates_the_signing_key(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	char kid[TF_KID_LEN + 1];
	struct tf_keyring *ring;

	assert_int_equal(stat(f->key_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	ring = ring_of(f, kid);
	assert_int_equal(logged(f, TF_LOG_WARNING, "created the development signing key",
		f->key_path, kid, NULL), 1);
	tf_keyring_free(ring);
}

static void existing_key_is_loaded_not_replaced(void **state)
{
	struct fixture *f = *state;
	struct tf_engine *again = NULL;
	struct tf_err err;
	char kid[TF_KID_LEN + 1];
	struct tf_keyring *ring = ring_of(f, kid);

	forget_log(f);
	assert_int_equal(standard_engine(f, "true", &again, &err), TF_OK);
	assert_int_equal(logged(f, -1, "created the development signing key", NULL), 0);
	tf_engine_publish_keys(again);
	assert_int_equal(f->n_kids, 1);
	assert_string_equal(f->kids[0], kid);
	tf_engine_free(again);
	tf_keyring_free(ring);
}

static void publish_keys_publishes_the_signing_key(void **state)
{
	struct fixture *f = *state;
	char kid[TF_KID_LEN + 1];
	struct tf_keyring *ring = ring_of(f, kid);

	assert_int_equal(f->n_kids, 0);
	tf_engine_publish_keys(f->e);
	assert_int_equal(f->n_kids, 1);
	assert_string_equal(f->kids[0], kid);
	assert_int_equal(strlen(kid), TF_KID_LEN);
	tf_keyring_free(ring);
}

static void missing_key_without_autogen_fails(void **state)
{
	struct fixture *f = *state;
	char absent[160];
	/* Not NULL: tf_engine_new must set it to NULL on error. */
	struct tf_engine *e = (struct tf_engine *)(void *)absent;
	struct tf_err err;
	const char *const kv[] = {
		"identities", f->identities,
		"policy_dir", f->policy_dir,
		"signing_key", absent,
		"dev_key_autogen", "false",
		NULL,
	};

	snprintf(absent, sizeof(absent), "%s/absent.pem", f->dir);
	assert_int_not_equal(engine_with(f, kv, &e, &err), TF_OK);
	assert_null(e);
	assert_non_null(strstr(err.msg, "tfctl key generate"));
	assert_non_null(strstr(err.msg, absent));
	/* And it was not created. */
	assert_int_not_equal(access(absent, F_OK), 0);
}

/* --- decisions ----------------------------------------------------------- */

/* A client without a username is never counted, blocked or named as a
 * user, whatever its client id: here one named like the sensor probes
 * until the guard blocks it (with the default guard_denied_burst). */
static void a_burst_without_username_does_not_block_the_user(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 30; i++)
		assert_int_equal(tf_engine_may_subscribe(f->e, "ww-sensor-01", NULL, "city/#"),
			TF_DENY);
	assert_int_equal(tf_engine_may_publish(f->e, "ww-sensor-01", NULL, "misc/x", "", 0),
		TF_DENY);
	assert_int_equal(tf_engine_may_publish(f->e, "test-client", "ww-sensor-01", f->topic, "", 0),
		TF_ALLOW);
}

/* A client id is its identity's: reserved by the identities file to the
 * user whose name it is; otherwise bound to whoever uses it first. */
static void client_ids_belong_to_one_identity(void **state)
{
	struct fixture *f = *state;
	int conn_a = 0, conn_b = 0;   /* only their addresses matter */

	assert_int_equal(tf_engine_may_connect(f->e, &conn_a, "ww-sensor-01", NULL, false), TF_DENY);
	assert_int_equal(tf_engine_may_connect(f->e, &conn_a, "ww-sensor-01", "maint-app", false),
		TF_DENY);
	assert_int_equal(tf_engine_may_connect(f->e, &conn_a, "ww-sensor-01", "ww-sensor-01", false),
		TF_DEFER);
	assert_int_equal(tf_engine_may_connect(f->e, &conn_a, "app-1", "maint-app", true), TF_DEFER);
	assert_int_equal(tf_engine_may_connect(f->e, &conn_b, "app-1", "outsider", true), TF_DENY);
	tf_engine_disconnected(f->e, &conn_a, "app-1");
	assert_int_equal(tf_engine_may_connect(f->e, &conn_b, "app-1", NULL, true), TF_DENY);
	/* A refused connection (its password, say) leaves nothing bound. */
	assert_int_equal(tf_engine_may_connect(f->e, &conn_b, "app-2", "outsider", false), TF_DEFER);
	tf_engine_disconnected(f->e, &conn_b, NULL);
	assert_int_equal(tf_engine_may_connect(f->e, &conn_a, "app-2", "maint-app", false),
		TF_DEFER);
	assert_non_null(strstr(f->alerts[f->n_alerts - 1], "client-id-refused"));
}

static void publish_verdicts(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_engine_may_publish(f->e, "test-client", "ww-sensor-01", f->topic, "", 0), TF_ALLOW);
	assert_int_equal(tf_engine_may_publish(f->e, "test-client", "maint-app", f->topic, "", 0), TF_DENY);
	assert_int_equal(tf_engine_may_publish(f->e, "test-client", "outsider", f->topic, "", 0), TF_DENY);
	assert_int_equal(tf_engine_may_publish(f->e, "test-client", NULL, f->topic, "", 0), TF_DENY);
	assert_int_equal(tf_engine_may_publish(f->e, "test-client", "nobody-known", f->topic, "", 0), TF_DENY);
	/* Only the broker publishes views. */
	assert_int_equal(tf_engine_may_publish(f->e, "test-client", "ww-sensor-01", VIEW_PREFIX "city/water/d1/telemetry", "", 0),
		TF_DENY);
	/* Ungoverned, under default_access deny. */
	assert_int_equal(tf_engine_may_publish(f->e, "test-client", "ww-sensor-01", "misc/x", "", 0), TF_DENY);
}

static void subscribe_verdicts(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tf_engine_may_subscribe(f->e, "test-client", "maint-app", WATER_FILTER), TF_ALLOW);
	assert_int_equal(tf_engine_may_subscribe(f->e, "test-client", "ww-sensor-01", WATER_FILTER), TF_ALLOW);
	assert_int_equal(tf_engine_may_subscribe(f->e, "test-client", "outsider", WATER_FILTER), TF_DENY);
	assert_int_equal(tf_engine_may_subscribe(f->e, "test-client", NULL, WATER_FILTER), TF_DENY);
	/* research-lab has the view only. */
	assert_int_equal(tf_engine_may_subscribe(f->e, "test-client", "lab-bot", WATER_FILTER), TF_DENY);
	assert_int_equal(tf_engine_may_subscribe(f->e, "test-client", "lab-bot", VIEW_PREFIX WATER_FILTER),
		TF_ALLOW);
	assert_int_equal(tf_engine_may_subscribe(f->e, "test-client", "maint-app", VIEW_PREFIX WATER_FILTER),
		TF_DENY);
	assert_int_equal(tf_engine_may_subscribe(f->e, "test-client", "outsider", "$SYS/#"), TF_DEFER);
}

static void receive_verdicts(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;

	sensor_publishes(f, good_payload, false, &res);
	assert_true(res.deliver);
	tf_message_result_free(&res);
	f->now += 1000;
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "ww-sensor-01", f->topic, good_payload,
		GOOD_LEN, false), TF_ALLOW);
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "maint-app", f->topic, good_payload,
		GOOD_LEN, false), TF_ALLOW);
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "lab-bot", f->topic, good_payload,
		GOOD_LEN, false), TF_DENY);
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "outsider", f->topic, good_payload,
		GOOD_LEN, false), TF_DENY);
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", NULL, f->topic, good_payload, GOOD_LEN, false),
		TF_DENY);
}

/* --- stamping ------------------------------------------------------------ */

static void governed_message_is_stamped(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	char kid[TF_KID_LEN + 1], ts[32];
	struct tf_keyring *ring = ring_of(f, kid);

	sensor_publishes(f, good_payload, false, &res);
	assert_true(res.deliver);
	assert_null(res.reason);
	assert_true(res.stamped);
	assert_string_equal(res.stamp.v, "1");
	assert_string_equal(res.stamp.broker, "trustflow");
	assert_string_equal(res.stamp.kid, kid);
	assert_string_equal(res.stamp.org, "city-waterworks");
	assert_string_equal(res.stamp.client, "ww-sensor-01");
	assert_string_equal(res.stamp.policy, WATER);
	assert_string_equal(res.stamp.topic, f->topic);
	snprintf(ts, sizeof(ts), "%lld", (long long)NOW);
	assert_string_equal(res.stamp.ts, ts);
	assert_int_equal(tf_stamp_check(ring, &res.stamp, good_payload, GOOD_LEN), TF_STAMP_VALID);
	/* The stamp covers the payload. */
	assert_int_equal(tf_stamp_check(ring, &res.stamp, "{\"flow\":13}", 11),
		TF_STAMP_HASH_MISMATCH);
	tf_message_result_free(&res);
	tf_keyring_free(ring);
}

static void seq_rises_by_one_per_stamp(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	struct tf_message other = message("ww-sensor-01", "misc/x", "hello", false);
	uint64_t first, view;

	sensor_publishes(f, good_payload, false, &res);
	first = seq_of(&res.stamp);
	/* The view copy is stamped too, right after its message. */
	assert_int_equal(res.n_copies, 1);
	if (res.copies == NULL) {
		fail();
		return;
	}
	view = seq_of(&res.copies[0].stamp);
	assert_true(view == first + 1);
	tf_message_result_free(&res);
	tf_engine_on_message(f->e, &other, &res);
	assert_true(res.stamped);
	assert_true(seq_of(&res.stamp) == first + 2);
	tf_message_result_free(&res);
	f->now += 10;
	sensor_publishes(f, good_payload, false, &res);
	assert_true(seq_of(&res.stamp) == first + 3);
	tf_message_result_free(&res);
	/* A refused message takes no number. */
	sensor_publishes(f, "{\"flow\":\"high\"}", false, &res);
	assert_false(res.deliver);
	assert_false(res.stamped);
	tf_message_result_free(&res);
	sensor_publishes(f, good_payload, false, &res);
	assert_true(seq_of(&res.stamp) == first + 5);
	tf_message_result_free(&res);
}

static void qos2_resend_over_a_new_connection_keeps_its_stamp(void **state)
{
	struct fixture *f = *state;
	static int connection_a, connection_b;
	struct tf_message m = message("ww-sensor-01", f->topic, good_payload, false);
	struct tf_message_result res;
	char id[TF_MSGID_LEN + 1];
	uint64_t first;

	m.qos = 2;
	m.connection = &connection_a;
	tf_engine_on_message(f->e, &m, &res);
	assert_true(res.deliver && res.stamped);
	first = seq_of(&res.stamp);
	strcpy(id, res.stamp.id);
	assert_int_equal(res.n_copies, 1);
	tf_message_result_free(&res);

	/* The client reconnected and sends it again before PUBREL: the same
	 * stamp, no new number, no second view. */
	m.connection = &connection_b;
	tf_engine_on_message(f->e, &m, &res);
	assert_true(res.deliver && res.stamped);
	assert_string_equal(res.stamp.id, id);
	assert_true(seq_of(&res.stamp) == first);
	assert_int_equal(res.n_copies, 0);
	tf_message_result_free(&res);

	/* Once mosquitto delivers it, it is released: the same payload again
	 * is a new message. */
	assert_int_equal(tf_engine_may_receive(f->e, "c", "maint-app", f->topic, good_payload,
		(uint32_t)strlen(good_payload), false), TF_ALLOW);
	tf_engine_on_message(f->e, &m, &res);
	assert_string_not_equal(res.stamp.id, id);
	assert_true(seq_of(&res.stamp) == first + 2);
	tf_message_result_free(&res);

	/* Over the same connection, an identical QoS 2 message is a message
	 * of its own (MQTT 5 resends only after reconnecting). */
	tf_engine_on_message(f->e, &m, &res);
	assert_true(seq_of(&res.stamp) == first + 4);
	tf_message_result_free(&res);

	/* QoS 1 has no such thing: every PUBLISH is delivered and stamped. */
	m.qos = 1;
	m.connection = &connection_a;
	tf_engine_on_message(f->e, &m, &res);
	assert_true(seq_of(&res.stamp) == first + 6);
	tf_message_result_free(&res);
}

static void ungoverned_message_is_stamped_with_stamp_all(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	struct tf_message m = message("ww-sensor-01", "misc/x", "hello", false);
	struct tf_message anon = message(NULL, "misc/y", "hi", false);
	char kid[TF_KID_LEN + 1];
	struct tf_keyring *ring = ring_of(f, kid);

	tf_engine_on_message(f->e, &m, &res);
	assert_true(res.deliver);
	assert_true(res.stamped);
	assert_string_equal(res.stamp.policy, "");
	assert_string_equal(res.stamp.org, "city-waterworks");
	assert_string_equal(res.stamp.client, "ww-sensor-01");
	assert_string_equal(res.stamp.topic, "misc/x");
	assert_int_equal(res.n_copies, 0);
	assert_int_equal(tf_stamp_check(ring, &res.stamp, "hello", 5), TF_STAMP_VALID);
	tf_message_result_free(&res);
	/* Without a username: the client id, and no org. */
	tf_engine_on_message(f->e, &anon, &res);
	assert_true(res.deliver);
	assert_true(res.stamped);
	assert_string_equal(res.stamp.client, "client-id-1");
	assert_string_equal(res.stamp.org, "");
	assert_string_equal(res.stamp.policy, "");
	assert_int_equal(tf_stamp_check(ring, &res.stamp, "hi", 2), TF_STAMP_VALID);
	tf_message_result_free(&res);
	tf_keyring_free(ring);
}

static void ungoverned_message_is_not_stamped_without_stamp_all(void **state)
{
	struct fixture *f = *state;
	struct tf_engine *plain = NULL;
	struct tf_err err;
	struct tf_message_result res;
	struct tf_message m = message("ww-sensor-01", "misc/x", "hello", false);

	assert_int_equal(standard_engine(f, "false", &plain, &err), TF_OK);
	tf_engine_on_message(plain, &m, &res);
	assert_true(res.deliver);
	assert_false(res.stamped);
	assert_int_equal(res.n_copies, 0);
	tf_message_result_free(&res);
	/* Governed ones still are. */
	m.topic = f->topic;
	m.payload = good_payload;
	m.payloadlen = GOOD_LEN;
	tf_engine_on_message(plain, &m, &res);
	assert_true(res.deliver);
	assert_true(res.stamped);
	assert_string_equal(res.stamp.policy, WATER);
	tf_message_result_free(&res);
	tf_engine_free(plain);
}

static void dollar_topics_are_left_alone(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	struct tf_message m = message("ww-sensor-01", "$SYS/broker/x", "1", false);

	tf_engine_on_message(f->e, &m, &res);
	assert_true(res.deliver);
	assert_false(res.stamped);
	assert_int_equal(res.n_copies, 0);
	tf_message_result_free(&res);
}

/* --- limits and schemas -------------------------------------------------- */

static void oversized_payload_is_refused_and_logged(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	char big[300];

	/* Valid JSON of 257 bytes: only the size is wrong. */
	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"flow\":1}", 10);
	big[257] = '\0';
	sensor_publishes(f, big, false, &res);
	assert_false(res.deliver);
	assert_string_equal(res.reason, "limit-exceeded");
	assert_false(res.stamped);
	assert_int_equal(res.n_copies, 0);
	tf_message_result_free(&res);
	assert_int_equal(logged(f, TF_LOG_WARNING, "limit-exceeded", f->topic, "ww-sensor-01",
		WATER, "max_payload_bytes", "drop", NULL), 1);
	/* 256 bytes are fine. */
	big[256] = '\0';
	sensor_publishes(f, big, false, &res);
	assert_true(res.deliver);
	tf_message_result_free(&res);
}

static void too_many_messages_are_refused_and_logged(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;

	for (int i = 0; i < 5; i++) {
		sensor_publishes(f, good_payload, false, &res);
		assert_true(res.deliver);
		tf_message_result_free(&res);
	}
	assert_int_equal(logged(f, -1, "limit-exceeded", NULL), 0);
	sensor_publishes(f, good_payload, false, &res);
	assert_false(res.deliver);
	assert_string_equal(res.reason, "limit-exceeded");
	assert_false(res.stamped);
	tf_message_result_free(&res);
	assert_int_equal(logged(f, TF_LOG_WARNING, "limit-exceeded", f->topic,
		"max_messages_per_second", NULL), 1);
	/* 200 ms later, one more. */
	f->now += 200;
	sensor_publishes(f, good_payload, false, &res);
	assert_true(res.deliver);
	tf_message_result_free(&res);
	sensor_publishes(f, good_payload, false, &res);
	assert_false(res.deliver);
	tf_message_result_free(&res);
}

static void rate_limit_without_username_refuses(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	struct tf_message m = message(NULL, f->topic, good_payload, false);

	tf_engine_on_message(f->e, &m, &res);
	assert_false(res.deliver);
	assert_string_equal(res.reason, "limit-exceeded");
	tf_message_result_free(&res);
	/* Named by its client id, as its stamp would. */
	assert_int_equal(logged(f, TF_LOG_WARNING, "limit-exceeded", "client-id-1", NULL), 1);
}

static void schema_violations_are_refused_and_logged(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"{\"flow\":\"high\"}",     /* wrong type */
		"{\"pressure\":3.1}",      /* required member missing */
		"[1,2]",                   /* not an object */
		"{\"flow\":1",             /* not JSON */
		"",                        /* empty */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tf_message_result res;

		forget_log(f);
		sensor_publishes(f, bad[i], false, &res);
		assert_false(res.deliver);
		assert_string_equal(res.reason, "schema-violation");
		assert_false(res.stamped);
		assert_int_equal(res.n_copies, 0);
		tf_message_result_free(&res);
		assert_int_equal(logged(f, TF_LOG_WARNING, "schema-violation", f->topic, WATER,
			NULL), 1);
		f->now += 1000;  /* keep within the rate */
	}
}

/* A second policy whose violations only alert. */
static void add_alerts_policy(struct fixture *f)
{
	struct tf_err err;

	assert_int_equal(write_file(f->policy_dir, "alerts.json", alerts_text), 0);
	assert_int_equal(tf_engine_reload(f->e, &err), TF_OK);
	assert_int_equal(logged(f, TF_LOG_NOTICE, "2 policies", NULL), 1);
}

static void alert_delivers_and_logs(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	struct tf_message bad = message("maint-app", "maint/pump-1/status", "{\"ok\":\"yes\"}",
		false);
	struct tf_message big = message("maint-app", "maint/pump-2/status",
		"{\"ok\":true,\"note\":\"....................................................\"}",
		false);

	add_alerts_policy(f);
	assert_int_equal(tf_engine_may_publish(f->e, "test-client", "maint-app", bad.topic, "", 0), TF_ALLOW);
	tf_engine_on_message(f->e, &bad, &res);
	assert_true(res.deliver);
	assert_null(res.reason);
	assert_true(res.stamped);
	assert_string_equal(res.stamp.policy, ALERTS);
	assert_string_equal(res.stamp.org, "maint-co");
	tf_message_result_free(&res);
	assert_int_equal(logged(f, TF_LOG_WARNING, "schema-violation", bad.topic, "maint-app",
		ALERTS, "alert", NULL), 1);
	assert_true(big.payloadlen > 64);
	tf_engine_on_message(f->e, &big, &res);
	assert_true(res.deliver);
	assert_true(res.stamped);
	tf_message_result_free(&res);
	assert_int_equal(logged(f, TF_LOG_WARNING, "limit-exceeded", big.topic, "alert", NULL), 1);
}

static void a_client_belongs_to_its_own_org_only(void **state)
{
	struct fixture *f = *state;

	assert_true(tf_engine_client_in_org(f->e, "ww-sensor-01", "city-waterworks"));
	assert_false(tf_engine_client_in_org(f->e, "ww-sensor-01", "maint-co"));
	assert_false(tf_engine_client_in_org(f->e, "nobody-known", "city-waterworks"));
	assert_false(tf_engine_client_in_org(f->e, NULL, "city-waterworks"));
	assert_false(tf_engine_client_in_org(f->e, "ww-sensor-01", NULL));
}

static void violations_publish_alerts_and_fold_repeats(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	cJSON *alert;

	/* Not valid under the schema: dropped, and an alert for the owner. */
	sensor_publishes(f, "{\"flow\":\"high\"}", false, &res);
	assert_false(res.deliver);
	tf_message_result_free(&res);
	assert_int_equal(f->n_alerts, 1);
	assert_string_equal(f->alert_topics[0], "$trustflow/alerts/water-telemetry");
	alert = cJSON_Parse(f->alerts[0]);
	assert_non_null(alert);
	assert_string_equal(cJSON_GetObjectItem(alert, "kind")->valuestring, "schema-violation");
	assert_string_equal(cJSON_GetObjectItem(alert, "policy")->valuestring, WATER);
	assert_string_equal(cJSON_GetObjectItem(alert, "org")->valuestring, "city-waterworks");
	assert_string_equal(cJSON_GetObjectItem(alert, "client")->valuestring, "ww-sensor-01");
	assert_string_equal(cJSON_GetObjectItem(alert, "action")->valuestring, "drop");
	assert_true(cJSON_GetObjectItem(alert, "ts")->valuedouble == (double)f->now);
	assert_int_equal(strlen(cJSON_GetObjectItem(alert, "id")->valuestring), 32);
	cJSON_Delete(alert);
	/* The same again within a second is folded into it... */
	for (int i = 0; i < 5; i++) {
		f->now += 100;
		sensor_publishes(f, "{\"flow\":\"high\"}", false, &res);
		assert_false(res.deliver);
		tf_message_result_free(&res);
	}
	assert_int_equal(f->n_alerts, 1);
	/* ...and the next one says how many were. */
	f->now += 600;
	sensor_publishes(f, "{\"flow\":\"high\"}", false, &res);
	tf_message_result_free(&res);
	assert_int_equal(f->n_alerts, 2);
	assert_non_null(strstr(f->alerts[1], "and 5 more like it"));
	/* A refused publish on a governed topic alerts too; off policy, not. */
	assert_int_equal(tf_engine_may_publish(f->e, "c", "maint-app", f->topic, "x", 1), TF_DENY);
	assert_int_equal(f->n_alerts, 3);
	assert_non_null(strstr(f->alerts[2], "denied-publish"));
	assert_int_equal(tf_engine_may_publish(f->e, "c", "maint-app", "misc/x", "x", 1), TF_DENY);
	assert_int_equal(f->n_alerts, 3);
}

/* The result says "copies: NULL when none", also under a policy with a
 * schema (whose payload is parsed) but without views. */
static void message_without_views_has_no_copies(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	struct tf_message m = message("maint-app", "maint/pump-1/status", "{\"ok\":true}", false);

	add_alerts_policy(f);
	forget_log(f);
	tf_engine_on_message(f->e, &m, &res);
	assert_true(res.deliver);
	assert_true(res.stamped);
	assert_int_equal(res.n_copies, 0);
	assert_null(res.copies);
	tf_message_result_free(&res);
	assert_int_equal(logged(f, -1, "out of memory", NULL), 0);
}

/* --- views --------------------------------------------------------------- */

static void view_copy_has_only_the_rules_fields(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	const struct tf_copy *c;
	char kid[TF_KID_LEN + 1];
	struct tf_keyring *ring = ring_of(f, kid);

	sensor_publishes(f, good_payload, false, &res);
	assert_true(res.deliver);
	assert_int_equal(res.n_copies, 1);
	c = res.copies;
	if (c == NULL) {
		fail();
		return;
	}
	assert_string_equal(c->topic, VIEW_PREFIX "city/water/d1/telemetry");
	assert_string_equal(c->payload, "{\"flow\":12.5}");
	assert_int_equal(c->payloadlen, strlen("{\"flow\":12.5}"));
	assert_int_equal(c->expiry_s, 10);
	/* Its own stamp, for its own topic and payload. */
	assert_string_equal(c->stamp.topic, c->topic);
	assert_string_equal(c->stamp.policy, WATER);
	assert_string_equal(c->stamp.client, "ww-sensor-01");
	assert_string_equal(c->stamp.org, "city-waterworks");
	assert_string_not_equal(c->stamp.id, res.stamp.id);
	assert_string_not_equal(c->stamp.sha256, res.stamp.sha256);
	assert_int_equal(tf_stamp_check(ring, &c->stamp, c->payload, c->payloadlen),
		TF_STAMP_VALID);
	assert_int_not_equal(tf_stamp_check(ring, &c->stamp, good_payload, GOOD_LEN),
		TF_STAMP_VALID);
	/* The message's own stamp is untouched by the copy's. */
	assert_string_equal(res.stamp.topic, f->topic);
	assert_int_equal(tf_stamp_check(ring, &res.stamp, good_payload, GOOD_LEN), TF_STAMP_VALID);
	tf_message_result_free(&res);
	assert_null(res.copies);
	assert_int_equal(res.n_copies, 0);
	tf_keyring_free(ring);
}

static void view_of_a_payload_without_the_fields_is_empty(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;

	/* Only "pressure" besides the required flow, in another order. */
	sensor_publishes(f, "{\"pressure\":2,\"flow\":0}", false, &res);
	assert_true(res.deliver);
	assert_int_equal(res.n_copies, 1);
	if (res.copies == NULL) {
		fail();
		return;
	}
	assert_string_equal(res.copies[0].payload, "{\"flow\":0}");
	tf_message_result_free(&res);
}

/* --- retention ----------------------------------------------------------- */

static void retention_withholds_old_messages(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	char copy[sizeof(good_payload)];

	sensor_publishes(f, good_payload, false, &res);
	assert_true(res.deliver);
	tf_message_result_free(&res);
	f->now = NOW + 5000;
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "maint-app", f->topic, good_payload,
		GOOD_LEN, false), TF_ALLOW);
	/* The payload is compared by content, not by address. */
	memcpy(copy, good_payload, sizeof(copy));
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "maint-app", f->topic, copy, GOOD_LEN, false),
		TF_ALLOW);
	f->now = NOW + 10000;
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "maint-app", f->topic, good_payload,
		GOOD_LEN, false), TF_ALLOW);
	f->now = NOW + 11000;
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "maint-app", f->topic, good_payload,
		GOOD_LEN, false), TF_DENY);
	/* Also for the owner org. */
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "ww-sensor-01", f->topic, good_payload,
		GOOD_LEN, false), TF_DENY);
}

static void unseen_message_is_withheld(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	char other_topic[sizeof(f->topic)];

	/* A topic string at another address: another stored message. */
	memcpy(other_topic, f->topic, sizeof(other_topic));
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "maint-app", other_topic, good_payload,
		GOOD_LEN, false), TF_DENY);
	sensor_publishes(f, good_payload, false, &res);
	tf_message_result_free(&res);
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "maint-app", other_topic, good_payload,
		GOOD_LEN, false), TF_DENY);
	/* The same address with another payload: a new message stored there. */
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "maint-app", f->topic, "{\"flow\":99}",
		11, false), TF_DENY);
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "maint-app", f->topic, good_payload,
		GOOD_LEN, false), TF_ALLOW);
}

/* The message object of id in the trace store in dir, read once the
 * engine has stopped (its writer committed everything). */
static cJSON *traced_message(const char *dir, const char *id)
{
	struct tf_trace_store *s;
	struct tf_err err;
	cJSON *o;

	assert_int_equal(tf_trace_open(dir, false, 0, &s, &err), TF_OK);
	assert_int_equal(tf_trace_read_begin(s, &err), TF_OK);
	o = tf_query_message(s, id, &err);
	tf_trace_read_end(s);
	tf_trace_close(s);
	assert_non_null(o);
	return o;
}

/* A QoS 0 message queued for an offline session that comes back long
 * after the engine forgot the message's id: the delivery names it by
 * topic and payload hash, which the trace finds because it filed the
 * message by content when it was queued, and gives its true age. */
static void a_late_return_finds_its_queued_message(void **state)
{
	struct fixture *f = *state;
	char trace[160], id[TF_MSGID_LEN + 1];
	const char *const kv[] = {
		"identities", f->identities, "policy_dir", f->policy_dir,
		"signing_key", f->key_path, "dev_key_autogen", "true", "trace_db", trace,
		"trace_sync_ms", "0", NULL,
	};
	struct tf_message_result res;
	const cJSON *withheld;
	struct tf_err err;
	int conn;
	cJSON *o;

	snprintf(trace, sizeof(trace), "%s/trace", f->dir);
	tf_engine_free(f->e);
	assert_int_equal(engine_with(f, kv, &f->e, &err), TF_OK);
	assert_int_equal(tf_engine_may_connect(f->e, &conn, "maint-van-3", "maint-app", true),
		TF_DEFER);
	tf_engine_disconnected(f->e, &conn, "maint-van-3");
	sensor_publishes(f, good_payload, false, &res);
	assert_true(res.deliver && res.stamped);
	snprintf(id, sizeof(id), "%s", res.stamp.id);
	tf_message_result_free(&res);
	assert_int_equal(tf_engine_may_receive(f->e, "maint-van-3", "maint-app", f->topic,
		good_payload, GOOD_LEN, false), TF_ALLOW);
	/* With trace_sync_ms 0 a message commits what came before it. */
	sensor_publishes(f, "{\"flow\":1}", false, &res);
	tf_message_result_free(&res);
	/* Long past the minute the engine keeps an id, and the retention. */
	f->now += 120000;
	for (int i = 0; i < 100; i++)
		tf_engine_tick(f->e);
	assert_int_equal(tf_engine_may_connect(f->e, &conn, "maint-van-3", "maint-app", true),
		TF_DEFER);
	assert_int_equal(tf_engine_may_receive(f->e, "maint-van-3", "maint-app", f->topic,
		good_payload, GOOD_LEN, false), TF_DENY);
	tf_engine_free(f->e);
	f->e = NULL;

	o = traced_message(trace, id);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "queued")), 0);
	withheld = cJSON_GetObjectItem(o, "withheld");
	assert_int_equal(cJSON_GetArraySize(withheld), 1);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
		cJSON_GetArrayItem(withheld, 0), "client_id")), "maint-van-3");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
		cJSON_GetArrayItem(withheld, 0), "reason")), "older than the policy's retention");
	cJSON_Delete(o);
}

static void refused_message_is_not_recorded(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	static const char bad[] = "{\"flow\":\"high\"}";

	sensor_publishes(f, bad, false, &res);
	assert_false(res.deliver);
	tf_message_result_free(&res);
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "maint-app", f->topic, bad,
		(uint32_t)strlen(bad), false), TF_DENY);
}

static void retained_copy_is_cleared_after_retention(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;

	sensor_publishes(f, good_payload, true, &res);
	assert_true(res.deliver);
	tf_message_result_free(&res);
	tf_engine_tick(f->e);
	f->now = NOW + 9999;
	tf_engine_tick(f->e);
	assert_int_equal(f->n_cleared, 0);
	f->now = NOW + 10001;
	tf_engine_tick(f->e);
	/* The original and its retained view copy. */
	assert_int_equal(f->n_cleared, 2);
	assert_string_equal(f->cleared[1], f->topic);
	assert_string_equal(f->cleared[0], "views/research-lab/city/water/d1/telemetry");
	/* Once. */
	f->now = NOW + 20000;
	tf_engine_tick(f->e);
	assert_int_equal(f->n_cleared, 2);
}

static void new_retained_message_moves_the_clearing(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;

	sensor_publishes(f, good_payload, true, &res);
	tf_message_result_free(&res);
	f->now = NOW + 6000;
	sensor_publishes(f, good_payload, true, &res);
	assert_true(res.deliver);
	tf_message_result_free(&res);
	f->now = NOW + 10001;
	tf_engine_tick(f->e);
	assert_int_equal(f->n_cleared, 0);
	f->now = NOW + 16001;
	tf_engine_tick(f->e);
	assert_int_equal(f->n_cleared, 2);
}

static void plain_messages_are_never_cleared(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	struct tf_message m = message("ww-sensor-01", "misc/x", "hello", true);

	sensor_publishes(f, good_payload, false, &res);
	tf_message_result_free(&res);
	/* Retained, but ungoverned: no retention. */
	tf_engine_on_message(f->e, &m, &res);
	tf_message_result_free(&res);
	f->now = NOW + 100000;
	tf_engine_tick(f->e);
	assert_int_equal(f->n_cleared, 0);
}

/* Ticks also forget receive times once the retention has passed, which
 * changes no decision. */
static void ticks_keep_decisions(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;

	sensor_publishes(f, good_payload, false, &res);
	tf_message_result_free(&res);
	for (int i = 1; i <= 50; i++) {
		f->now = NOW + i * 100;
		tf_engine_tick(f->e);
	}
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "maint-app", f->topic, good_payload,
		GOOD_LEN, false), TF_ALLOW);
	for (int i = 0; i < 100; i++) {
		f->now = NOW + 11000 + i * 100;
		tf_engine_tick(f->e);
	}
	assert_int_equal(tf_engine_may_receive(f->e, "test-client", "maint-app", f->topic, good_payload,
		GOOD_LEN, false), TF_DENY);
}

/* --- reload -------------------------------------------------------------- */

static void reload_with_broken_policy_keeps_the_old_set(void **state)
{
	struct fixture *f = *state;
	const struct tf_policy_set *before = tf_engine_policies(f->e);
	struct tf_err err;
	/* Would let maint-app publish on maint/#. */
	static const char fixed[] =
		"{\"trustflow_policy\": 1, \"id\": \"maint-data\", \"version\": 1,"
		" \"owner\": \"maint-co\", \"topics\": [\"maint/#\"]}";
	static const char broken[] =
		"{\"trustflow_policy\": 1, \"id\": \"maint-data\", \"version\": 1,"
		" \"owner\": \"maint-co\", \"topics\": [\"maint/#\"]";

	assert_int_equal(tf_engine_may_publish(f->e, "test-client", "maint-app", "maint/x", "", 0), TF_DENY);
	forget_log(f);
	assert_int_equal(write_file(f->policy_dir, "maint.json", broken), 0);
	assert_int_not_equal(tf_engine_reload(f->e, &err), TF_OK);
	assert_non_null(strstr(err.msg, "maint.json"));
	assert_ptr_equal(tf_engine_policies(f->e), before);
	assert_int_equal(tf_engine_may_publish(f->e, "test-client", "maint-app", "maint/x", "", 0), TF_DENY);
	assert_int_equal(tf_engine_may_publish(f->e, "test-client", "ww-sensor-01", f->topic, "", 0), TF_ALLOW);
	assert_int_equal(logged(f, -1, "clients loaded", NULL), 0);
	/* A refused reload raises an alert. */
	assert_int_equal(logged(f, TF_LOG_WARNING, "alert reload-failed", "maint.json", NULL), 1);
	/* A semantic error (unknown owner) is refused the same way. */
	assert_int_equal(write_file(f->policy_dir, "maint.json",
		"{\"trustflow_policy\": 1, \"id\": \"maint-data\", \"version\": 1,"
		" \"owner\": \"no-such-org\", \"topics\": [\"maint/#\"]}"), 0);
	assert_int_not_equal(tf_engine_reload(f->e, &err), TF_OK);
	assert_ptr_equal(tf_engine_policies(f->e), before);
	assert_int_equal(tf_engine_may_publish(f->e, "test-client", "maint-app", "maint/x", "", 0), TF_DENY);
	/* Fixed, it takes effect. */
	assert_int_equal(write_file(f->policy_dir, "maint.json", fixed), 0);
	assert_int_equal(tf_engine_reload(f->e, &err), TF_OK);
	assert_int_equal(tf_engine_policies(f->e)->n_policies, 2);
	assert_int_equal(tf_engine_may_publish(f->e, "test-client", "maint-app", "maint/x", "", 0), TF_ALLOW);
	assert_int_equal(tf_engine_may_publish(f->e, "test-client", "ww-sensor-01", f->topic, "", 0), TF_ALLOW);
	assert_int_equal(logged(f, TF_LOG_NOTICE, "2 policies", NULL), 1);
}

static void reload_resets_rate_limits(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	struct tf_err err;

	for (int i = 0; i < 5; i++) {
		sensor_publishes(f, good_payload, false, &res);
		tf_message_result_free(&res);
	}
	sensor_publishes(f, good_payload, false, &res);
	assert_false(res.deliver);
	tf_message_result_free(&res);
	assert_int_equal(tf_engine_reload(f->e, &err), TF_OK);
	sensor_publishes(f, good_payload, false, &res);
	assert_true(res.deliver);
	tf_message_result_free(&res);
}

/* A reload that leaves a policy as it was keeps its retained copies; one
 * that raises its version removes the original and its view copy, which
 * the new version did not make. */
static void reload_clears_retained_copies_of_a_changed_policy(void **state)
{
	struct fixture *f = *state;
	struct tf_message_result res;
	struct tf_err err;
	char *v4 = strdup(water_text);

	assert_non_null(v4);
	memcpy(strstr(v4, "\"version\": 3"), "\"version\": 4", 12);
	sensor_publishes(f, good_payload, true, &res);
	assert_true(res.deliver);
	assert_int_equal(res.n_copies, 1);
	tf_message_result_free(&res);
	assert_int_equal(tf_engine_reload(f->e, &err), TF_OK);
	assert_int_equal(f->n_cleared, 0);
	assert_int_equal(write_file(f->policy_dir, "water.json", v4), 0);
	free(v4);
	assert_int_equal(tf_engine_reload(f->e, &err), TF_OK);
	assert_int_equal(f->n_cleared, 2);
	assert_string_equal(f->cleared[1], f->topic);
	assert_string_equal(f->cleared[0], "views/research-lab/city/water/d1/telemetry");
	/* Forgotten: the retention does not clear them again. */
	f->now = NOW + 20000;
	tf_engine_tick(f->e);
	assert_int_equal(f->n_cleared, 2);
}

/* --- owners' policies: rollback, trace records, published copies --------- */

/* water.json at another version (one digit), with a line end added when
 * extra: the same version with other bytes. */
static void write_water(struct fixture *f, int version, bool extra)
{
	char *text = malloc(sizeof(water_text) + 1);

	assert_non_null(text);
	memcpy(text, water_text, sizeof(water_text));
	strstr(text, "\"version\": 3")[11] = (char)('0' + version);
	if (extra)
		strcat(text, "\n");
	assert_int_equal(write_file(f->policy_dir, "water.json", text), 0);
	free(text);
}

/* An engine over a trace store in the fixture's directory. */
static int traced_engine(struct fixture *f, struct tf_engine **out, struct tf_err *err)
{
	char trace[160];
	const char *const kv[] = {
		"identities", f->identities, "policy_dir", f->policy_dir,
		"signing_key", f->key_path, "dev_key_autogen", "true", "trace_db", trace,
		"trace_sync_ms", "0", NULL,
	};

	snprintf(trace, sizeof(trace), "%s/trace", f->dir);
	return engine_with(f, kv, out, err);
}

struct policy_events {
	uint32_t n;
	char labels[4][64], sha256[4][TF_SHA256_HEX + 1];
};

static int collect_policy(void *ctx, const struct tf_event *ev)
{
	struct policy_events *pe = ctx;

	if (ev->kind != TF_EVENT_POLICY)
		return 0;
	assert_true(pe->n < 4);
	snprintf(pe->labels[pe->n], sizeof(pe->labels[0]), "%s", ev->values[0]);
	snprintf(pe->sha256[pe->n], sizeof(pe->sha256[0]), "%s", ev->values[4]);
	assert_string_equal(ev->values[1], "city-waterworks");
	assert_string_equal(ev->values[2], "$trustflow/policies/city-waterworks/water-telemetry");
	assert_string_equal(ev->values[3], "water.json");
	assert_string_equal(ev->values[5], "");    /* its owner has no policy_keys */
	pe->n++;
	return 0;
}

/* The policy events of the store in the fixture's directory, and the
 * version it keeps for water-telemetry, read once the engine stopped. */
static void read_policy_trace(struct fixture *f, struct policy_events *pe, char *kept,
		size_t cap)
{
	struct tf_trace_store *s;
	struct tf_err err;
	char trace[160];

	snprintf(trace, sizeof(trace), "%s/trace", f->dir);
	memset(pe, 0, sizeof(*pe));
	assert_int_equal(tf_trace_open(trace, false, 0, &s, &err), TF_OK);
	assert_int_equal(tf_trace_read_begin(s, &err), TF_OK);
	tf_trace_scan_events(s, 0, collect_policy, pe);
	assert_true(tf_trace_meta(s, "policy:water-telemetry", kept, cap));
	tf_trace_read_end(s);
	tf_trace_close(s);
}

static void sha256_of_file(const char *dir, const char *name, char out[TF_SHA256_HEX + 1])
{
	char path[256], text[4096];
	size_t n;
	FILE *in;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	in = fopen(path, "rb");
	assert_non_null(in);
	n = fread(text, 1, sizeof(text), in);
	fclose(in);
	tf_sha256_hex(text, n, out);
}

/* Each policy is recorded once, the first time it is accepted, with its
 * file's hash; it is published retained whenever it comes into force
 * anew (at every start, and when a reload changes it). */
static void a_policy_is_recorded_once_and_published(void **state)
{
	struct fixture *f = *state;
	struct policy_events pe;
	char kept[200], v3_sha[TF_SHA256_HEX + 1], v4_sha[TF_SHA256_HEX + 1], expect[200];
	unsigned char decoded[4096];
	const char *file;
	struct tf_err err;
	cJSON *doc;

	uint32_t before = f->n_policies;   /* the fixture's engine published too */

	tf_engine_free(f->e);
	sha256_of_file(f->policy_dir, "water.json", v3_sha);
	assert_int_equal(traced_engine(f, &f->e, &err), TF_OK);
	assert_int_equal(f->n_policies, before + 1);
	assert_string_equal(f->policy_topics[before],
		"$trustflow/policies/city-waterworks/water-telemetry");
	/* {"file": base64 of the file's bytes, "sig": ""}. */
	doc = cJSON_Parse(f->policies[before]);
	assert_non_null(doc);
	file = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "file"));
	assert_non_null(file);
	assert_true(strlen(file) < sizeof(decoded));
	assert_true(EVP_DecodeBlock(decoded, (const unsigned char *)file, (int)strlen(file))
		>= (int)strlen(water_text));
	assert_memory_equal(decoded, water_text, strlen(water_text));
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "sig")), "");
	cJSON_Delete(doc);
	/* Unchanged by a reload: neither published nor recorded again. */
	assert_int_equal(tf_engine_reload(f->e, &err), TF_OK);
	assert_int_equal(f->n_policies, before + 1);
	write_water(f, 4, false);
	sha256_of_file(f->policy_dir, "water.json", v4_sha);
	assert_int_equal(tf_engine_reload(f->e, &err), TF_OK);
	assert_int_equal(f->n_policies, before + 2);
	tf_engine_free(f->e);
	/* A restart publishes what is in force, and records nothing new. */
	assert_int_equal(traced_engine(f, &f->e, &err), TF_OK);
	assert_int_equal(f->n_policies, before + 3);
	tf_engine_free(f->e);
	f->e = NULL;

	read_policy_trace(f, &pe, kept, sizeof(kept));
	assert_int_equal(pe.n, 2);
	assert_string_equal(pe.labels[0], "water-telemetry@3");
	assert_string_equal(pe.sha256[0], v3_sha);
	assert_string_equal(pe.labels[1], "water-telemetry@4");
	assert_string_equal(pe.sha256[1], v4_sha);
	snprintf(expect, sizeof(expect), "4 city-waterworks %s", v4_sha);
	assert_string_equal(kept, expect);
}

/* A lower version, or the same version with other bytes, is refused at
 * reload and, the trace store keeping the version, after a restart. */
static void a_rolled_back_policy_is_refused_across_a_restart(void **state)
{
	struct fixture *f = *state;
	char cmd[300];
	struct tf_err err;

	tf_engine_free(f->e);
	write_water(f, 4, false);
	assert_int_equal(traced_engine(f, &f->e, &err), TF_OK);
	write_water(f, 3, false);
	assert_int_not_equal(tf_engine_reload(f->e, &err), TF_OK);
	assert_non_null(strstr(err.msg, "water.json: rolled back: version 3"));
	assert_int_equal(tf_engine_policies(f->e)->policies[0].version, 4);
	/* Its alert is about the policy: its owner's stewards read it. */
	assert_true(f->n_alerts > 0);
	assert_string_equal(f->alert_topics[f->n_alerts - 1], "$trustflow/alerts/water-telemetry");
	assert_non_null(strstr(f->alerts[f->n_alerts - 1], "\"policy\":\"water-telemetry@4\""));
	assert_non_null(strstr(f->alerts[f->n_alerts - 1], "reload-failed"));
	write_water(f, 4, true);
	assert_int_not_equal(tf_engine_reload(f->e, &err), TF_OK);
	assert_non_null(strstr(err.msg, "has other bytes"));
	/* In the background too. */
	write_water(f, 3, false);
	forget_log(f);
	tf_engine_reload_in_background(f->e);
	for (int i = 0; i < 5000 && logged(f, TF_LOG_ERR, "rolled back", NULL) == 0; i++) {
		const struct timespec ms = { 0, 1000000 };

		nanosleep(&ms, NULL);
		tf_engine_tick(f->e);
	}
	assert_int_equal(logged(f, TF_LOG_ERR, "reload rejected", "rolled back", NULL), 1);
	tf_engine_free(f->e);
	f->e = NULL;

	/* After a restart: the broker goes on with the last accepted set... */
	forget_log(f);
	assert_int_equal(traced_engine(f, &f->e, &err), TF_OK);
	assert_int_equal(logged(f, TF_LOG_ERR, "rolled back", "last accepted set", NULL), 1);
	assert_int_equal(tf_engine_policies(f->e)->policies[0].version, 4);
	tf_engine_free(f->e);
	f->e = NULL;
	/* ...and without that copy, it does not start on the old version. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/trace/accepted'", f->dir);
	assert_int_equal(system(cmd), 0);
	assert_int_not_equal(traced_engine(f, &f->e, &err), TF_OK);
	assert_non_null(strstr(err.msg, "rolled back"));
	/* The version it holds, or a higher one, starts. */
	write_water(f, 5, false);
	assert_int_equal(traced_engine(f, &f->e, &err), TF_OK);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(new_loads_and_logs),
		T(new_creates_the_signing_key),
		T(existing_key_is_loaded_not_replaced),
		T(publish_keys_publishes_the_signing_key),
		T(missing_key_without_autogen_fails),
		T(publish_verdicts),
		T(a_burst_without_username_does_not_block_the_user),
		T(client_ids_belong_to_one_identity),
		T(subscribe_verdicts),
		T(receive_verdicts),
		T(governed_message_is_stamped),
		T(seq_rises_by_one_per_stamp),
		T(qos2_resend_over_a_new_connection_keeps_its_stamp),
		T(violations_publish_alerts_and_fold_repeats),
		T(a_client_belongs_to_its_own_org_only),
		T(ungoverned_message_is_stamped_with_stamp_all),
		T(ungoverned_message_is_not_stamped_without_stamp_all),
		T(dollar_topics_are_left_alone),
		T(oversized_payload_is_refused_and_logged),
		T(too_many_messages_are_refused_and_logged),
		T(rate_limit_without_username_refuses),
		T(schema_violations_are_refused_and_logged),
		T(alert_delivers_and_logs),
		T(message_without_views_has_no_copies),
		T(view_copy_has_only_the_rules_fields),
		T(view_of_a_payload_without_the_fields_is_empty),
		T(retention_withholds_old_messages),
		T(unseen_message_is_withheld),
		T(a_late_return_finds_its_queued_message),
		T(refused_message_is_not_recorded),
		T(retained_copy_is_cleared_after_retention),
		T(new_retained_message_moves_the_clearing),
		T(plain_messages_are_never_cleared),
		T(ticks_keep_decisions),
		T(reload_with_broken_policy_keeps_the_old_set),
		T(reload_resets_rate_limits),
		T(reload_clears_retained_copies_of_a_changed_policy),
		T(a_policy_is_recorded_once_and_published),
		T(a_rolled_back_policy_is_refused_across_a_restart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
