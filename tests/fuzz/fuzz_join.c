/* Fuzz target: the joined trace (broker/trace/trace_join.c), which reads
 * exports that whoever hands them over may have written: exports of up to
 * four brokers, split at lines "%%", joined for one message id with
 * RFC 8032's first three test keys bound to broker-a, broker-b and
 * broker-c. Promises checked: an answer comes back (or, for two exports
 * naming one broker, that error); its "ok" is the one returned; an answer
 * that is ok has a path, no gaps, and every part checked, each with a
 * checkpoint at or after every event of the part it lists. */
#include "tests/fuzz/fuzz.h"

#include <string.h>

#include "broker/trace/trace_join.h"

const char tf_fuzz_target[] = "join";

#define ID "019ac008e6005f1e2d3c4b5a69780123"

static const char *const keys[][2] = {
	{ "broker-a", "-----BEGIN PUBLIC KEY-----\n"
		"MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
		"-----END PUBLIC KEY-----\n" },
	{ "broker-b", "-----BEGIN PUBLIC KEY-----\n"
		"MCowBQYDK2VwAyEAPUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=\n"
		"-----END PUBLIC KEY-----\n" },
	{ "broker-c", "-----BEGIN PUBLIC KEY-----\n"
		"MCowBQYDK2VwAyEA/FHNjmIYoaONpH7QAjDwWAgW7RO6MwOsXeuRFUiQgCU=\n"
		"-----END PUBLIC KEY-----\n" },
};

static double seq_of(const cJSON *o)
{
	const cJSON *seq = cJSON_GetObjectItemCaseSensitive(o, "seq");

	FUZZ_CHECK(cJSON_IsNumber(seq));
	return seq->valuedouble;
}

/* Every event a part lists lies at or before covered. */
static void all_covered(const cJSON *list, double covered)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, list) {
		FUZZ_CHECK(seq_of(item) <= covered);
		all_covered(cJSON_GetObjectItemCaseSensitive(item, "recipients"), covered);
	}
}

static void check_answer(const cJSON *answer, bool ok)
{
	const cJSON *parts = cJSON_GetObjectItemCaseSensitive(answer, "brokers"), *p;

	FUZZ_CHECK(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(answer, "ok")));
	FUZZ_CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(answer, "ok")) == ok);
	FUZZ_CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(answer, "path"))
		== cJSON_GetArraySize(parts));
	cJSON_ArrayForEach(p, parts) {
		const cJSON *cp = cJSON_GetObjectItemCaseSensitive(p, "checkpoint");
		const cJSON *message = cJSON_GetObjectItemCaseSensitive(p, "message");

		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "ok"))) {
			FUZZ_CHECK(!ok);
			FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "reason")));
			continue;
		}
		FUZZ_CHECK(cJSON_IsObject(cp) && cJSON_IsObject(message));
		FUZZ_CHECK(seq_of(message) <= seq_of(cp));
		all_covered(cJSON_GetObjectItemCaseSensitive(p, "repeated"), seq_of(cp));
		all_covered(cJSON_GetObjectItemCaseSensitive(p, "recipients"), seq_of(cp));
		all_covered(cJSON_GetObjectItemCaseSensitive(p, "forwards"), seq_of(cp));
		all_covered(cJSON_GetObjectItemCaseSensitive(p, "views"), seq_of(cp));
	}
	if (ok) {
		FUZZ_CHECK(cJSON_GetArraySize(parts) > 0);
		FUZZ_CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(answer, "gaps")) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *end = text + size;
	static const char *const names[] = { "a", "b", "c", "d" };
	struct tf_join *j;
	struct tf_err err;
	int exports = 0;
	bool ok = true;
	cJSON *answer;

	FUZZ_CHECK(tf_join_new(ID, &j, &err) == TF_OK);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		FUZZ_CHECK(tf_join_bind_key(j, keys[i][0], keys[i][1], strlen(keys[i][1]), &err)
			== TF_OK);
	FUZZ_CHECK(tf_join_begin_export(j, names[exports++], &err) == TF_OK);
	while (text < end) {
		const char *nl = memchr(text, '\n', (size_t)(end - text));
		size_t len = nl ? (size_t)(nl - text) : (size_t)(end - text);

		if (len == 2 && memcmp(text, "%%", 2) == 0 && exports < 4) {
			tf_join_end_export(j);
			FUZZ_CHECK(tf_join_begin_export(j, names[exports++], &err) == TF_OK);
		} else {
			FUZZ_CHECK(tf_join_export_line(j, text, len, &err) == TF_OK);
		}
		text += len + (nl != NULL);
	}
	tf_join_end_export(j);
	answer = tf_join_result(j, &ok, &err);
	if (answer == NULL) {
		FUZZ_CHECK(!ok && strstr(err.msg, "are both exports of") != NULL);
	} else {
		check_answer(answer, ok);
		cJSON_Delete(answer);
	}
	tf_join_free(j);
	return 0;
}
