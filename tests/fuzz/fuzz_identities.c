/* Fuzz target for the identities file (policy/identities.c, on top of
 * policy/jsonfile.c): the input is the file's bytes. Besides crashes, leaks
 * and undefined behaviour, it checks what identities.h promises: a failure
 * leaves *out NULL and a message naming the file, and a success answers
 * every lookup the file's own text implies. */
#include <string.h>

#include "fuzz.h"
#include "policy/identities.h"
#include "policy/jsonfile.h"

#define FILE_NAME "fuzz"

const char tf_fuzz_target[] = "identities";

/* A failed call set "FILE_NAME: ...", NUL-terminated inside the buffer. */
static void check_failure_message(const struct tf_err *err)
{
	FUZZ_CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
	FUZZ_CHECK(strncmp(err->msg, FILE_NAME ": ", strlen(FILE_NAME ": ")) == 0);
}

/* list (n symbols) is the client's roles or purposes; names is the JSON
 * list they came from (NULL when absent). */
static void check_labels(const struct tf_identities *ids, const uint32_t *list, uint32_t n,
		const cJSON *names)
{
	const cJSON *name;
	uint32_t symbols = tf_identities_symbol_count(ids);

	if (names == NULL) {
		FUZZ_CHECK(n == 0);
		return;
	}
	FUZZ_CHECK(n <= (uint32_t)cJSON_GetArraySize(names));
	for (uint32_t i = 0; i < n; i++) {
		FUZZ_CHECK(list[i] < symbols);
		FUZZ_CHECK(i == 0 || list[i - 1] < list[i]);  /* ascending, no repeats */
	}
	cJSON_ArrayForEach(name, names) {
		uint32_t sym = tf_identities_symbol(ids, name->valuestring);

		FUZZ_CHECK(sym != TF_NONE);
		FUZZ_CHECK(tf_symbols_contain(list, n, sym));
	}
}

/* Every organization and client of the accepted file can be found again. */
static void check_loaded(const struct tf_identities *ids, const cJSON *root)
{
	const cJSON *orgs = cJSON_GetObjectItemCaseSensitive(root, "organizations");
	const cJSON *clients = cJSON_GetObjectItemCaseSensitive(root, "clients");
	const cJSON *entry;
	uint32_t n = 0;

	cJSON_ArrayForEach(entry, orgs) {
		uint32_t org = tf_identities_org(ids, entry->string);

		FUZZ_CHECK(org < tf_identities_org_count(ids));
		FUZZ_CHECK(strcmp(tf_identities_org_id(ids, org), entry->string) == 0);
		n++;
	}
	FUZZ_CHECK(n == tf_identities_org_count(ids));

	n = 0;
	cJSON_ArrayForEach(entry, clients) {
		const struct tf_client *client = tf_identities_client(ids, entry->string);
		const cJSON *org = cJSON_GetObjectItemCaseSensitive(entry, "org");

		FUZZ_CHECK(client != NULL);
		FUZZ_CHECK(strcmp(client->username, entry->string) == 0);
		FUZZ_CHECK(client->index < tf_identities_client_count(ids));
		FUZZ_CHECK(tf_identities_client_index(ids, entry->string) == client->index);
		FUZZ_CHECK(client->org == tf_identities_org(ids, org->valuestring));
		check_labels(ids, client->roles, client->n_roles,
			cJSON_GetObjectItemCaseSensitive(entry, "roles"));
		check_labels(ids, client->purposes, client->n_purposes,
			cJSON_GetObjectItemCaseSensitive(entry, "purposes"));
		n++;
	}
	FUZZ_CHECK(n == tf_identities_client_count(ids));
	FUZZ_CHECK(tf_identities_bytes(ids) > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tf_identities *ids = NULL;
	struct tf_jctx c;
	struct tf_err err;
	cJSON *root = NULL;
	int rc;

	memset(err.msg, 'x', sizeof(err.msg));  /* unterminated until a call sets it */
	rc = tf_json_parse((const char *)data, size, FILE_NAME, &root, &err);
	if (rc != TF_OK) {
		FUZZ_CHECK(root == NULL);
		FUZZ_CHECK(rc == TF_ERR_INVALID || rc == TF_ERR_NOMEM);
		check_failure_message(&err);
		return 0;
	}
	FUZZ_CHECK(root != NULL);

	tf_jctx_init(&c, FILE_NAME, &err);
	memset(err.msg, 'x', sizeof(err.msg));
	rc = tf_identities_from_json(&c, root, &ids);
	if (rc == TF_OK) {
		FUZZ_CHECK(ids != NULL);
		check_loaded(ids, root);
		FUZZ_CHECK(strcmp(c.path, "$") == 0);  /* every path step was undone */
	} else {
		FUZZ_CHECK(ids == NULL);
		FUZZ_CHECK(rc == TF_ERR_INVALID || rc == TF_ERR_NOMEM);
		check_failure_message(&err);
	}
	tf_identities_free(ids);
	cJSON_Delete(root);
	return 0;
}
