/* Fuzz target: control API requests (operations-v1), which any
 * administrator or data steward sends as an MQTT payload. The engine is a
 * real one, over a small identities file and one policy, built once; each
 * input is handled for an administrator and for a data steward. Promises
 * checked: every request gets an answer that is a JSON object with a
 * "responses" array, one response per command of a well-formed request
 * (one for a malformed request), each with a string "command" and exactly
 * one of "data" and "error"; an answer is never longer than
 * TF_CONTROL_MAX_RESPONSE; a steward is never answered with data for a
 * command it may not use (reloadPolicies). */
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "broker/control/control.h"
#include "broker/engine/options.h"
#include "policy/jsonfile.h"

const char tf_fuzz_target[] = "control";

static const char identities[] =
	"{\"trustflow_identities\": 1, \"organizations\": {\"city-waterworks\": {},"
	" \"city-it\": {}}, \"clients\": {"
	"\"ww-sensor-01\": {\"org\": \"city-waterworks\", \"roles\": [\"sensor\"]},"
	"\"tf-admin\": {\"org\": \"city-it\", \"roles\": [\"trustflow-admin\"]},"
	"\"ww-steward\": {\"org\": \"city-waterworks\", \"roles\": [\"data-steward\"]}}}";
static const char policy[] =
	"{\"trustflow_policy\": 1, \"id\": \"water-telemetry\", \"version\": 3,"
	" \"owner\": \"city-waterworks\", \"topics\": [\"city/water/+/telemetry\"],"
	" \"publishers\": {\"roles\": [\"sensor\"]}}";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	FUZZ_CHECK(f != NULL);
	FUZZ_CHECK(fputs(text, f) >= 0);
	FUZZ_CHECK(fclose(f) == 0);
}

static void ignore_clear(void *ctx, const char *topic)
{
	(void)ctx;
	(void)topic;
}

static struct tf_engine *engine(void)
{
	static struct tf_engine *e;
	static char dir[] = "/tmp/tf-fuzz-control-XXXXXX";
	char path[128];
	struct tf_options opts;
	struct tf_engine_hooks hooks = { .clear_retained = ignore_clear };
	struct tf_err err;

	if (e != NULL)
		return e;
	FUZZ_CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/identities.json", dir);
	write_file(path, identities);
	snprintf(path, sizeof(path), "%s/policies", dir);
	FUZZ_CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/policies/water.json", dir);
	write_file(path, policy);
	FUZZ_CHECK(tf_options_init(&opts, &err) == TF_OK);
	snprintf(path, sizeof(path), "%s/identities.json", dir);
	FUZZ_CHECK(tf_options_set(&opts, "identities", path, &err) == TF_OK);
	snprintf(path, sizeof(path), "%s/policies", dir);
	FUZZ_CHECK(tf_options_set(&opts, "policy_dir", path, &err) == TF_OK);
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	FUZZ_CHECK(tf_options_set(&opts, "signing_key", path, &err) == TF_OK);
	FUZZ_CHECK(tf_options_set(&opts, "dev_key_autogen", "true", &err) == TF_OK);
	/* The engine lives as long as the process: no signing threads that
	 * would still run when it exits. */
	FUZZ_CHECK(tf_options_set(&opts, "signing", "deterministic", &err) == TF_OK);
	FUZZ_CHECK(tf_engine_new(&opts, &hooks, &e, &err) == TF_OK);
	tf_options_free(&opts);
	return e;
}

static void check_answer(const char *username, const uint8_t *data, size_t size)
{
	char *text = tf_control_handle(engine(), username, data, size);
	cJSON *answer, *request, *responses, *r;
	struct tf_err err;
	int expected = 1;

	FUZZ_CHECK(text != NULL);
	/* The answer is bounded whatever the request asks for. */
	FUZZ_CHECK(strlen(text) <= TF_CONTROL_MAX_RESPONSE);
	answer = cJSON_Parse(text);
	FUZZ_CHECK(cJSON_IsObject(answer));
	responses = cJSON_GetObjectItemCaseSensitive(answer, "responses");
	FUZZ_CHECK(cJSON_IsArray(responses));
	/* The control API parses as strictly as the policy loader. */
	if (size > TF_CONTROL_MAX_REQUEST
			|| tf_json_parse(size > 0 ? (const char *)data : "", size, "fuzz", &request,
				&err) != TF_OK)
		request = NULL;
	if (cJSON_IsObject(request)) {
		const cJSON *cmds = cJSON_GetObjectItemCaseSensitive(request, "commands");
		const cJSON *corr = cJSON_GetObjectItemCaseSensitive(request, "correlationData");

		if (cJSON_IsArray(cmds) && cJSON_GetArraySize(cmds) <= (int)TF_CONTROL_MAX_COMMANDS
				&& (corr == NULL || cJSON_IsString(corr)))
			expected = cJSON_GetArraySize(cmds);
	}
	FUZZ_CHECK(cJSON_GetArraySize(responses) == expected);
	cJSON_ArrayForEach(r, responses) {
		const cJSON *command = cJSON_GetObjectItemCaseSensitive(r, "command");
		bool has_data = cJSON_GetObjectItemCaseSensitive(r, "data") != NULL;
		bool has_error = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r, "error"));

		FUZZ_CHECK(cJSON_IsString(command));
		FUZZ_CHECK(has_data != has_error);
		if (strcmp(username, "ww-steward") == 0 && strcmp(command->valuestring,
				"reloadPolicies") == 0)
			FUZZ_CHECK(has_error);
	}
	cJSON_Delete(request);
	cJSON_Delete(answer);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_answer("tf-admin", data, size);
	check_answer("ww-steward", data, size);
	return 0;
}
