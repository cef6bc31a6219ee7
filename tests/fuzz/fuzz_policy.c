/* Fuzz target for policy files (policy/policy.c and what it calls:
 * jsonfile, selector, topic, rfc3339, schema): the input is the file's
 * bytes. Each input is loaded twice, as the broker does (against a small
 * identities set, built once) and as a syntax-only check (ids NULL).
 *
 * Besides crashes, leaks and undefined behaviour, it checks what policy.h
 * promises of an accepted policy (valid ids and topics, resolved owner,
 * sorted selector lists, consistent fields and views), and that the two
 * loads differ only in resolving organizations: a file accepted against
 * identities is accepted without them, and a file accepted without them is
 * refused with them only for an unknown organization. */
#include <string.h>

#include "broker/util/arena.h"
#include "fuzz.h"
#include "policy/id.h"
#include "policy/identities.h"
#include "policy/jsonfile.h"
#include "policy/policy.h"
#include "policy/topic.h"

#define FILE_NAME "fuzz"

const char tf_fuzz_target[] = "policy";

/* The shape of broker/conf/demo/identities.json: the orgs and roles the
 * seed policies name, so that accepted policies resolve something. */
static const char identities_json[] =
	"{\"trustflow_identities\": 1,"
	" \"organizations\": {"
	"  \"city-waterworks\": {\"name\": \"City Waterworks Bureau\"},"
	"  \"maint-co\": {\"name\": \"Maintenance Co.\"},"
	"  \"research-lab\": {\"name\": \"University Research Lab\"}},"
	" \"clients\": {"
	"  \"ww-sensor-01\": {\"org\": \"city-waterworks\", \"roles\": [\"sensor\"]},"
	"  \"ww-operator\": {\"org\": \"city-waterworks\", \"roles\": [\"operator\"]},"
	"  \"ops-admin\": {\"org\": \"city-waterworks\", \"roles\": [\"trustflow-admin\"]},"
	"  \"maint-app\": {\"org\": \"maint-co\", \"roles\": [\"operator\"],"
	"                  \"purposes\": [\"maintenance\"]},"
	"  \"lab-bot\": {\"org\": \"research-lab\", \"roles\": [\"analyst\"],"
	"                \"purposes\": [\"research\", \"maintenance\"]}}}";

/* The identities, built on first use, and their tree, kept to work out
 * independently whom a selector should match. Both live as long as the
 * process (still reachable, so LeakSanitizer does not count them). */
static const cJSON *ids_tree;

static const struct tf_identities *identities(void)
{
	static struct tf_identities *ids;
	struct tf_jctx c;
	struct tf_err err;
	cJSON *root;

	if (ids != NULL)
		return ids;
	if (tf_json_parse(identities_json, strlen(identities_json), "identities", &root, &err)
			!= TF_OK)
		tf_fuzz_fail(__FILE__, __LINE__, err.msg);
	tf_jctx_init(&c, "identities", &err);
	if (tf_identities_from_json(&c, root, &ids) != TF_OK)
		tf_fuzz_fail(__FILE__, __LINE__, err.msg);
	ids_tree = root;
	return ids;
}

/* Whether the JSON list holds the string s. */
static bool list_has(const cJSON *list, const char *s)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, list)
		if (cJSON_IsString(item) && strcmp(item->valuestring, s) == 0)
			return true;
	return false;
}

/* Whether two JSON lists of strings share an entry (absent: no). */
static bool lists_share(const cJSON *a, const cJSON *b)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, b)
		if (cJSON_IsString(item) && list_has(a, item->valuestring))
			return true;
	return false;
}

/* policy-v1's rule, read straight off the texts: a selector matches a
 * client when every key present matches. */
static bool should_match(const cJSON *sel, const cJSON *client)
{
	const cJSON *key;

	key = cJSON_GetObjectItemCaseSensitive(sel, "orgs");
	if (key != NULL && !list_has(key, cJSON_GetObjectItemCaseSensitive(client, "org")->valuestring))
		return false;
	key = cJSON_GetObjectItemCaseSensitive(sel, "clients");
	if (key != NULL && !list_has(key, client->string))
		return false;
	key = cJSON_GetObjectItemCaseSensitive(sel, "roles");
	if (key != NULL && !lists_share(key, cJSON_GetObjectItemCaseSensitive(client, "roles")))
		return false;
	key = cJSON_GetObjectItemCaseSensitive(sel, "purposes");
	if (key != NULL && !lists_share(key, cJSON_GetObjectItemCaseSensitive(client, "purposes")))
		return false;
	return true;
}

/* The resolved selector s (from the JSON object sel) matches exactly the
 * clients policy-v1 says it should, and never an unidentified one. */
static void check_matches(const struct tf_selector *s, const cJSON *sel,
		const struct tf_identities *ids)
{
	const cJSON *entry;

	FUZZ_CHECK(!tf_selector_matches(s, NULL));
	cJSON_ArrayForEach(entry, cJSON_GetObjectItemCaseSensitive(ids_tree, "clients")) {
		const struct tf_client *client = tf_identities_client(ids, entry->string);

		FUZZ_CHECK(tf_selector_matches(s, client) == should_match(sel, entry));
	}
}

static void check_failure_message(const struct tf_err *err)
{
	FUZZ_CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
	FUZZ_CHECK(strncmp(err->msg, FILE_NAME ": ", strlen(FILE_NAME ": ")) == 0);
}

/* A selector key: resolved items are sorted, distinct and in range; with
 * no identities nothing is resolved. */
static void check_key(const struct tf_selector_key *key, uint32_t limit)
{
	if (!key->present) {
		FUZZ_CHECK(key->n == 0);
		return;
	}
	FUZZ_CHECK(key->n <= TF_SELECTOR_MAX_ITEMS);
	for (uint32_t i = 0; i < key->n; i++) {
		FUZZ_CHECK(key->items[i] < limit);
		FUZZ_CHECK(i == 0 || key->items[i - 1] < key->items[i]);
	}
}

static void check_selector(const struct tf_selector *s, const struct tf_identities *ids)
{
	check_key(&s->orgs, ids ? tf_identities_org_count(ids) : 0);
	check_key(&s->clients, ids ? tf_identities_client_count(ids) : 0);
	check_key(&s->roles, ids ? tf_identities_symbol_count(ids) : 0);
	check_key(&s->purposes, ids ? tf_identities_symbol_count(ids) : 0);
}

static void check_rule(const struct tf_consumer_rule *r, const struct tf_identities *ids)
{
	const char *why;

	check_selector(&r->who, ids);
	FUZZ_CHECK(r->not_before < r->not_after);
	FUZZ_CHECK((r->fields == NULL) == (r->view == NULL));
	if (r->fields == NULL) {
		FUZZ_CHECK(r->n_fields == 0);
		return;
	}
	FUZZ_CHECK(r->n_fields >= 1 && r->n_fields <= TF_POLICY_MAX_FIELDS);
	FUZZ_CHECK(tf_topic_name_valid(r->view, &why));
	for (uint32_t i = 0; i < r->n_fields; i++) {
		FUZZ_CHECK(r->fields[i][0] != '\0');
		FUZZ_CHECK(strlen(r->fields[i]) <= TF_POLICY_FIELD_MAX_LEN);
		for (uint32_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(r->fields[i], r->fields[j]) != 0);
	}
}

/* What an accepted policy promises. root is its tree, still alive. */
/* An action (on_violation, on_anomaly) is whole: a known action, and a
 * valid reroute_to exactly with reroute. */
static void check_action(const struct tf_action *a)
{
	const char *why;

	FUZZ_CHECK(a->action <= TF_VIOLATION_ALERT);
	FUZZ_CHECK(tf_violation_action_name(a->action) != NULL);
	FUZZ_CHECK((a->reroute_to != NULL) == (a->action == TF_VIOLATION_REROUTE));
	FUZZ_CHECK(a->reroute_to == NULL || tf_topic_name_valid(a->reroute_to, &why));
}

static void check_policy(const struct tf_policy *p, const struct tf_identities *ids,
		const cJSON *root)
{
	char label[TF_ID_MAX_LEN + 16];
	const char *why;

	FUZZ_CHECK(strcmp(p->file, FILE_NAME) == 0);
	FUZZ_CHECK(tf_id_is_valid(p->id) && tf_id_is_valid(p->owner_id));
	FUZZ_CHECK(p->version >= 1 && p->version <= TF_POLICY_MAX_VERSION);
	snprintf(label, sizeof(label), "%s@%lld", p->id, (long long)p->version);
	FUZZ_CHECK(strcmp(p->label, label) == 0);
	if (ids == NULL)
		FUZZ_CHECK(p->owner == TF_NONE);
	else
		FUZZ_CHECK(p->owner != TF_NONE && p->owner == tf_identities_org(ids, p->owner_id));
	FUZZ_CHECK(p->description == NULL || strlen(p->description) <= TF_POLICY_DESCRIPTION_MAX);

	FUZZ_CHECK(p->n_topics >= 1 && p->n_topics <= TF_POLICY_MAX_TOPICS);
	for (uint32_t i = 0; i < p->n_topics; i++) {
		FUZZ_CHECK(tf_topic_filter_valid(p->topics[i], &why));
		for (uint32_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(p->topics[i], p->topics[j]) != 0);
	}
	FUZZ_CHECK(p->has_publishers
		== (cJSON_GetObjectItemCaseSensitive(root, "publishers") != NULL));
	if (p->has_publishers) {
		check_selector(&p->publishers, ids);
		if (ids != NULL)
			check_matches(&p->publishers,
				cJSON_GetObjectItemCaseSensitive(root, "publishers"), ids);
	}
	FUZZ_CHECK(p->n_consumers <= TF_POLICY_MAX_CONSUMERS);
	FUZZ_CHECK(p->n_consumers == 0 || p->consumers != NULL);
	for (uint32_t i = 0; i < p->n_consumers; i++) {
		check_rule(&p->consumers[i], ids);
		if (ids != NULL)
			check_matches(&p->consumers[i].who, cJSON_GetArrayItem(
				cJSON_GetObjectItemCaseSensitive(root, "consumers"), (int)i), ids);
	}

	FUZZ_CHECK(p->retention_ms >= 0 && p->retention_ms <= TF_POLICY_MAX_RETENTION_S * 1000);
	FUZZ_CHECK(p->retention_ms % 1000 == 0);
	FUZZ_CHECK(p->max_messages_per_second <= TF_POLICY_MAX_RATE);
	FUZZ_CHECK(p->max_payload_bytes <= TF_POLICY_MAX_PAYLOAD);
	check_action(&p->on_violation);
	check_action(&p->on_anomaly);

	FUZZ_CHECK((p->schema != NULL) == (cJSON_GetObjectItemCaseSensitive(root, "schema") != NULL));
	if (p->schema != NULL) {
		/* Any JSON will do as a payload; the policy's own tree is at hand. */
		char reason[200];
		bool ok = tf_schema_validate(p->schema, root, reason, sizeof(reason));

		FUZZ_CHECK(memchr(reason, '\0', sizeof(reason)) != NULL);
		FUZZ_CHECK(ok == (reason[0] == '\0'));
	}
}

/* Loads root into *p from arena; returns the status and leaves err set. */
static int load(const cJSON *root, const struct tf_identities *ids, struct tf_arena *arena,
		struct tf_policy *p, struct tf_err *err)
{
	struct tf_jctx c;
	int rc;

	tf_jctx_init(&c, FILE_NAME, err);
	memset(err->msg, 'x', sizeof(err->msg));  /* unterminated until a call sets it */
	rc = tf_policy_from_json(&c, root, ids, arena, p);
	if (rc == TF_OK) {
		check_policy(p, ids, root);
		FUZZ_CHECK(strcmp(c.path, "$") == 0);  /* every path step was undone */
	} else {
		FUZZ_CHECK(rc == TF_ERR_INVALID || rc == TF_ERR_NOMEM);
		FUZZ_CHECK(p->schema == NULL);  /* "on error nothing needs releasing" */
		check_failure_message(err);
	}
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct tf_identities *ids = identities();
	struct tf_arena arena = { 0 };
	struct tf_policy with_ids, without_ids;
	struct tf_err err_with, err_without;
	cJSON *root = NULL;
	int rc_with, rc_without;

	if (size > TF_POLICY_MAX_BYTES)
		return 0;  /* tf_policy_load() refuses these before parsing */
	memset(err_with.msg, 'x', sizeof(err_with.msg));
	if (tf_json_parse((const char *)data, size, FILE_NAME, &root, &err_with) != TF_OK) {
		FUZZ_CHECK(root == NULL);
		check_failure_message(&err_with);
		return 0;
	}

	rc_with = load(root, ids, &arena, &with_ids, &err_with);
	rc_without = load(root, NULL, &arena, &without_ids, &err_without);
	if (rc_with == TF_OK)
		FUZZ_CHECK(rc_without == TF_OK);
	if (rc_without == TF_OK && rc_with == TF_ERR_INVALID)
		FUZZ_CHECK(strstr(err_with.msg, "unknown organization") != NULL);
	if (rc_with == TF_OK && rc_without == TF_OK) {
		FUZZ_CHECK(strcmp(with_ids.label, without_ids.label) == 0);
		FUZZ_CHECK(with_ids.n_topics == without_ids.n_topics);
		FUZZ_CHECK(with_ids.n_consumers == without_ids.n_consumers);
		FUZZ_CHECK(with_ids.retention_ms == without_ids.retention_ms);
		FUZZ_CHECK(with_ids.on_violation.action == without_ids.on_violation.action);
		FUZZ_CHECK(with_ids.on_anomaly.action == without_ids.on_anomaly.action);
	}

	tf_policy_release(&with_ids);
	tf_policy_release(&without_ids);
	tf_arena_free(&arena);
	cJSON_Delete(root);
	return 0;
}
