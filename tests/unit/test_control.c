/* Unit tests for broker/control/control.c on a real engine: the answer is bounded
 * whatever the request asks for, the long lists come in pages that hold
 * every item once, and requests are parsed strictly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "broker/guard/alerts.h"
#include "broker/control/control.h"
#include "broker/engine/engine.h"
#include "broker/engine/options.h"

#define TOPIC "city/water/d7/telemetry"

static const char identities_text[] =
	"{\"trustflow_identities\": 1, \"organizations\": {\"city-waterworks\": {},"
	" \"city-it\": {}}, \"clients\": {"
	"\"ww-sensor-01\": {\"org\": \"city-waterworks\", \"roles\": [\"sensor\"]},"
	"\"tf-admin\": {\"org\": \"city-it\", \"roles\": [\"trustflow-admin\"]}}}";
static const char water_text[] =
	"{\"trustflow_policy\": 1, \"id\": \"water-telemetry\", \"version\": 3,"
	" \"owner\": \"city-waterworks\", \"topics\": [\"city/water/+/telemetry\"],"
	" \"publishers\": {\"roles\": [\"sensor\"]}}";

struct fixture {
	char dir[64];
	struct tf_engine *e;
};

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[128];
	FILE *out;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	out = fopen(path, "w");
	assert_non_null(out);
	assert_true(fputs(text, out) >= 0);
	assert_int_equal(fclose(out), 0);
}

static void ignore_clear(void *ctx, const char *topic)
{
	(void)ctx;
	(void)topic;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct tf_engine_hooks hooks = { .clear_retained = ignore_clear };
	struct tf_options opts;
	struct tf_err err;
	char path[128];
	int rc;

	if (f == NULL)
		return -1;
	*state = f;
	strcpy(f->dir, "/tmp/tf-control-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	write_file(f->dir, "identities.json", identities_text);
	snprintf(path, sizeof(path), "%s/policies", f->dir);
	if (mkdir(path, 0700) != 0)
		return -1;
	write_file(path, "water.json", water_text);
	rc = tf_options_init(&opts, &err);
	snprintf(path, sizeof(path), "%s/identities.json", f->dir);
	rc = rc ? rc : tf_options_set(&opts, "identities", path, &err);
	snprintf(path, sizeof(path), "%s/policies", f->dir);
	rc = rc ? rc : tf_options_set(&opts, "policy_dir", path, &err);
	snprintf(path, sizeof(path), "%s/key.pem", f->dir);
	rc = rc ? rc : tf_options_set(&opts, "signing_key", path, &err);
	rc = rc ? rc : tf_options_set(&opts, "dev_key_autogen", "true", &err);
	rc = rc ? rc : tf_options_finish(&opts, &err);
	rc = rc ? rc : tf_engine_new(&opts, &hooks, &f->e, &err);
	tf_options_free(&opts);
	return rc == TF_OK ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	tf_engine_free(f->e);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* n alerts, each about a publisher of its own (so none is folded) whose
 * client id is long: an anonymous client refused on a governed topic. */
static void raise_alerts(struct tf_engine *e, int n)
{
	char client[400];

	for (int i = 0; i < n; i++) {
		snprintf(client, sizeof(client), "%04d-%0380d", i, 0);
		assert_int_equal(tf_engine_may_publish(e, client, NULL, TOPIC, "{}", 2), TF_DENY);
	}
}

/* The answer to request as a tree (caller owns); checks its size. */
static cJSON *ask(struct tf_engine *e, const char *request)
{
	char *text = tf_control_handle(e, "tf-admin", request, strlen(request));
	cJSON *answer;

	assert_non_null(text);
	assert_true(strlen(text) <= TF_CONTROL_MAX_RESPONSE);
	answer = cJSON_Parse(text);
	free(text);
	assert_non_null(answer);
	return answer;
}

static const cJSON *response(const cJSON *answer, int i)
{
	return cJSON_GetArrayItem(cJSON_GetObjectItem(answer, "responses"), i);
}

static void pages_hold_every_alert_once(void **state)
{
	struct fixture *f = *state;
	char request[160];
	int64_t cursor = 0, seen = 0, short_pages = 0;

	raise_alerts(f->e, TF_ALERTS_KEPT);
	for (;;) {
		cJSON *answer;
		const cJSON *data, *alerts, *alert, *next;

		snprintf(request, sizeof(request), "{\"commands\": [{\"command\": \"listAlerts\", "
			"\"limit\": 500, \"cursor\": %lld}]}", (long long)cursor);
		answer = ask(f->e, request);
		data = cJSON_GetObjectItem(response(answer, 0), "data");
		alerts = cJSON_GetObjectItem(data, "alerts");
		assert_non_null(alerts);
		cJSON_ArrayForEach(alert, alerts) {
			char want[24];

			/* In the order raised, none twice, none left out. */
			snprintf(want, sizeof(want), "%04lld-", (long long)seen++);
			assert_memory_equal(cJSON_GetObjectItem(alert, "client")->valuestring, want, 5);
		}
		next = cJSON_GetObjectItem(data, "next");
		if (next != NULL && cJSON_GetArraySize(alerts) < 500)
			short_pages++;
		if (next != NULL)
			cursor = (int64_t)next->valuedouble;
		cJSON_Delete(answer);
		if (next == NULL)
			break;
	}
	assert_int_equal(seen, TF_ALERTS_KEPT);
	/* 500 alerts of 400 bytes do not fit: pages end where the answer is
	 * full. */
	assert_true(short_pages > 0);
}

static void many_lists_stay_under_the_cap(void **state)
{
	struct fixture *f = *state;
	char request[2048] = "{\"commands\": [";
	cJSON *answer;

	raise_alerts(f->e, TF_ALERTS_KEPT);
	for (int i = 0; i < TF_CONTROL_MAX_COMMANDS; i++)
		strcat(request, i ? ", {\"command\": \"listAlerts\", \"limit\": 500}"
			: "{\"command\": \"listAlerts\", \"limit\": 500}");
	strcat(request, "]}");
	answer = ask(f->e, request);   /* checks the size */
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(answer, "responses")),
		TF_CONTROL_MAX_COMMANDS);
	assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(response(answer, 0), "data"),
		"next"));
	assert_non_null(strstr(cJSON_GetObjectItem(response(answer, TF_CONTROL_MAX_COMMANDS - 1),
		"error")->valuestring, "response too large"));
	cJSON_Delete(answer);
	/* One more command, and the request is refused as a whole. */
	request[strlen(request) - 2] = '\0';
	strcat(request, ", {\"command\": \"listAlerts\"}]}");
	answer = ask(f->e, request);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(answer, "responses")), 1);
	assert_string_equal(cJSON_GetObjectItem(response(answer, 0), "error")->valuestring,
		"more than 16 commands in one request");
	cJSON_Delete(answer);
}

static void strings_and_numbers_are_checked(void **state)
{
	struct fixture *f = *state;
	cJSON *answer;

	raise_alerts(f->e, 1);
	answer = ask(f->e, "{\"commands\": [{\"command\": \"explain\\u0000x\", \"client\": \"a\","
		" \"topic\": \"" TOPIC "\", \"action\": \"publish\"}]}");
	assert_string_equal(cJSON_GetObjectItem(response(answer, 0), "command")->valuestring, "");
	assert_non_null(strstr(cJSON_GetObjectItem(response(answer, 0), "error")->valuestring,
		"(a NUL character) is not allowed"));
	cJSON_Delete(answer);
	answer = ask(f->e, "{\"commands\": [{\"command\": \"listAlerts\", \"since\": 1e30},"
		" {\"command\": \"listAlerts\", \"since\": -1e400},"
		" {\"command\": \"listAlerts\", \"limit\": 501},"
		" {\"command\": \"listAlerts\", \"since\": 0}]}");
	for (int i = 0; i < 3; i++)
		assert_non_null(cJSON_GetObjectItem(response(answer, i), "error"));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(
		response(answer, 3), "data"), "alerts")), 1);
	cJSON_Delete(answer);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(pages_hold_every_alert_once, setup, teardown),
		cmocka_unit_test_setup_teardown(many_lists_stay_under_the_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(strings_and_numbers_are_checked, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
