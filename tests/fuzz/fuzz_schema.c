/* Fuzz target for payload schemas (policy/schema.c): compiling a schema as
 * the policy loader does, then validating a payload against it as the
 * broker does for every governed message.
 *
 * Input: <schema JSON> NUL <payload bytes>. The schema part goes through
 * tf_json_parse() like a policy file (which refuses NUL bytes, so the
 * first NUL always ends it); the payload part, which may hold anything
 * (NULs too), is parsed as broker/engine/engine.c parses payloads. Without a NUL
 * the whole input is the schema and the payload is absent, which the
 * validator must refuse ("not JSON").
 *
 * Besides crashes, leaks and undefined behaviour, it checks schema.h's
 * promises: the compiled schema borrows nothing from the tree (the tree is
 * deleted before validating, so ASan would see), the verdict does not
 * depend on the size of the reason buffer, and the reason is always
 * NUL-terminated within it, empty on success and a payload path first on
 * failure. */
#include <string.h>

#include "fuzz.h"
#include "policy/jsonfile.h"
#include "policy/schema.h"

#define FILE_NAME "fuzz"
#define PAYLOAD_MAX (1024u * 1024)  /* as TF_JSON_PAYLOAD_MAX in broker/engine/engine.c */

const char tf_fuzz_target[] = "schema";

static struct tf_schema *compile(const char *text, size_t len)
{
	struct tf_schema *s = NULL;
	struct tf_jctx c;
	struct tf_err err;
	cJSON *node;
	int rc;

	memset(err.msg, 'x', sizeof(err.msg));
	if (tf_json_parse(text, len, FILE_NAME, &node, &err) != TF_OK)
		return NULL;
	tf_jctx_init(&c, FILE_NAME, &err);
	tf_jctx_member(&c, "schema");
	rc = tf_schema_compile(&c, node, &s);
	if (rc == TF_OK) {
		FUZZ_CHECK(s != NULL);
		FUZZ_CHECK(strcmp(c.path, "$.schema") == 0);
	} else {
		FUZZ_CHECK(s == NULL);
		FUZZ_CHECK(rc == TF_ERR_INVALID || rc == TF_ERR_NOMEM);
		FUZZ_CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
		FUZZ_CHECK(strncmp(err.msg, FILE_NAME ": $.schema", strlen(FILE_NAME ": $.schema"))
			== 0);
	}
	cJSON_Delete(node);
	return s;
}

static void validate(const struct tf_schema *s, const cJSON *payload)
{
	char why[200], small[12];
	bool ok = tf_schema_validate(s, payload, why, sizeof(why));

	FUZZ_CHECK(memchr(why, '\0', sizeof(why)) != NULL);
	if (ok)
		FUZZ_CHECK(why[0] == '\0');
	else
		FUZZ_CHECK(why[0] == '$');  /* "$.flow: 1200 is above the maximum 1000" */

	memset(small, 'x', sizeof(small));
	FUZZ_CHECK(tf_schema_validate(s, payload, small, sizeof(small)) == ok);
	FUZZ_CHECK(memchr(small, '\0', sizeof(small)) != NULL);
	FUZZ_CHECK(strncmp(small, why, sizeof(small) - 1) == 0);

	FUZZ_CHECK(tf_schema_validate(s, payload, NULL, 0) == ok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	size_t schema_len = nul != NULL ? (size_t)(nul - text) : size;
	struct tf_schema *s = compile(text, schema_len);
	cJSON *payload = NULL;

	if (s == NULL)
		return 0;
	if (nul != NULL) {
		size_t len = size - schema_len - 1;

		if (len <= PAYLOAD_MAX)
			payload = cJSON_ParseWithLengthOpts(nul + 1, len, NULL, false);
	}
	validate(s, payload);
	if (payload == NULL)
		FUZZ_CHECK(!tf_schema_validate(s, NULL, NULL, 0));
	cJSON_Delete(payload);
	tf_schema_free(s);
	return 0;
}
