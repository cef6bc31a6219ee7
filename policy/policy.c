#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/id.h"
#include "policy/policysig.h"
#include "policy/rfc3339.h"
#include "policy/topic.h"

static const char *const policy_members[] = {
	"trustflow_policy", "id", "version", "owner", "description", "topics", "publishers",
	"consumers", "owner_receives", "retention_seconds", "forwarding", "limits", "schema",
	"on_violation", "on_anomaly", NULL
};
static const char *const rule_members[] = {
	"orgs", "clients", "roles", "purposes", "not_before", "not_after", "fields", "view", NULL
};
static const char *const limits_members[] = {
	"max_messages_per_second", "max_payload_bytes", NULL
};
static const char *const violation_members[] = { "action", "reroute_to", "disconnect", NULL };

static const char *const action_names[] = {
	[TF_VIOLATION_DROP] = "drop",
	[TF_VIOLATION_QUARANTINE] = "quarantine",
	[TF_VIOLATION_REROUTE] = "reroute",
	[TF_VIOLATION_ALERT] = "alert",
};

size_t tf_policy_label_id_len(const char *label)
{
	const char *at = strrchr(label, '@');

	return at ? (size_t)(at - label) : strlen(label);
}

const char *tf_violation_action_name(enum tf_violation_action a)
{
	return action_names[a];
}

static int nomem(struct tf_jctx *c)
{
	return tf_err_set(c->err, TF_ERR_NOMEM, "%s: out of memory", c->file);
}

/* A member that is a list of distinct strings: topics, fields. */
struct string_list {
	const char *name;
	bool required;
	int max_items;
	const char *not_string;   /* the message for an item that is no string */
	const char *invalid;      /* what an item that fails check is not; NULL:
	                           * check's answer says it all */
	/* Why an item is not acceptable, or NULL when it is. */
	const char *(*check)(const char *item);
};

static const char *check_topic(const char *item)
{
	const char *why = NULL;

	return tf_topic_filter_valid(item, &why) ? NULL : why;
}

static const char *check_field(const char *item)
{
	if (item[0] == '\0')
		return "must be a non-empty string (a top-level member name)";
	if (strlen(item) > TF_POLICY_FIELD_MAX_LEN)
		return "longer than 256 bytes";
	return NULL;
}

static const struct string_list topics_list = {
	"topics", true, TF_POLICY_MAX_TOPICS, "must be a string", "not a valid topic filter",
	check_topic,
};
static const struct string_list fields_list = {
	"fields", false, TF_POLICY_MAX_FIELDS,
	"must be a non-empty string (a top-level member name)", NULL, check_field,
};

/* Reads the list kind->name of obj into arena; *items is NULL when the
 * member is absent and optional. */
static int load_strings(struct tf_jctx *c, const cJSON *obj, const struct string_list *kind,
		struct tf_arena *arena, const char *const **items, uint32_t *count)
{
	const cJSON *list, *item;
	const char **copies;
	int rc, index = 0;

	*items = NULL;
	*count = 0;
	rc = tf_jarray(c, obj, kind->name, kind->required, 1, kind->max_items, &list);
	if (rc != TF_OK || list == NULL)
		return rc;
	copies = tf_arena_alloc(arena, sizeof(*copies) * (size_t)cJSON_GetArraySize(list));
	if (copies == NULL)
		return nomem(c);
	cJSON_ArrayForEach(item, list) {
		size_t mark = tf_jctx_member(c, kind->name);
		const char *why;

		tf_jctx_index(c, index);
		if (!cJSON_IsString(item))
			rc = tf_jfail(c, "%s", kind->not_string);
		else if ((why = kind->check(item->valuestring)) != NULL && kind->invalid != NULL)
			rc = tf_jfail(c, "%s: %s", kind->invalid, why);
		else if (why != NULL)
			rc = tf_jfail(c, "%s", why);
		for (int j = 0; rc == TF_OK && j < index; j++)
			if (strcmp(copies[j], item->valuestring) == 0)
				rc = tf_jfail(c, "\"%s\" is listed twice", item->valuestring);
		if (rc == TF_OK && (copies[index] = tf_arena_strdup(arena, item->valuestring)) == NULL)
			rc = nomem(c);
		tf_jctx_pop(c, mark);
		if (rc != TF_OK)
			return rc;
		index++;
	}
	*items = copies;
	*count = (uint32_t)index;
	return TF_OK;
}

/* not_before or not_after (ends_window) of a rule. A date alone means
 * the whole of that day in UTC: as a not_before the rule starts at its
 * first instant, as a not_after it holds through its last and ends at the
 * first instant of the next day, as owners who write "until 2026-06-30"
 * mean. A date-time is the instant it names, and the rule is in force
 * while not_before <= now < not_after. */
static int load_time(struct tf_jctx *c, const cJSON *rule, const char *name, bool ends_window,
		int64_t *out)
{
	char why[TF_RFC3339_WHY_MAX];
	const char *text;
	int rc = tf_jstring(c, rule, name, false, 64, &text);

	if (rc != TF_OK || text == NULL)
		return rc;
	switch (tf_rfc3339_parse_day_or_time(text, out, why)) {
	case TF_RFC3339_DATE_TIME:
		return TF_OK;
	case TF_RFC3339_DATE:
		if (ends_window)
			*out += TF_RFC3339_DAY_MS;
		return TF_OK;
	case TF_RFC3339_INVALID:
		break;
	}
	if (why[0] != '\0')
		return tf_jfail_at(c, name, "not an RFC 3339 time: %s", why);
	return tf_jfail_at(c, name, "not an RFC 3339 time or date, such as "
		"2026-06-30T12:00:00Z or 2026-06-30");
}

static int load_rule(struct tf_jctx *c, const cJSON *rule, const struct tf_identities *ids,
		struct tf_arena *arena, struct tf_consumer_rule *r)
{
	const char *view, *why;
	int rc;

	r->not_before = INT64_MIN;
	r->not_after = INT64_MAX;
	rc = tf_jcheck_object(c, rule, rule_members);
	if (rc == TF_OK)
		rc = tf_selector_load(c, rule, ids, arena, &r->who);
	if (rc == TF_OK)
		rc = load_time(c, rule, "not_before", false, &r->not_before);
	if (rc == TF_OK)
		rc = load_time(c, rule, "not_after", true, &r->not_after);
	if (rc == TF_OK && r->not_before >= r->not_after)
		rc = tf_jfail_at(c, "not_after", "must be later than not_before");
	if (rc == TF_OK)
		rc = load_strings(c, rule, &fields_list, arena, &r->fields, &r->n_fields);
	if (rc == TF_OK)
		rc = tf_jstring(c, rule, "view", false, TF_TOPIC_MAX_LEN, &view);
	if (rc != TF_OK)
		return rc;
	if (r->fields != NULL && view == NULL)
		return tf_jfail(c, "\"view\" is required with \"fields\"");
	if (r->fields == NULL && view != NULL)
		return tf_jfail_at(c, "view", "is only allowed with \"fields\"");
	if (view != NULL && !tf_topic_name_valid(view, &why))
		return tf_jfail_at(c, "view", "not a valid view prefix: %s", why);
	if (view != NULL && (r->view = tf_arena_strdup(arena, view)) == NULL)
		return nomem(c);
	return TF_OK;
}

static int load_consumers(struct tf_jctx *c, const cJSON *root, const struct tf_identities *ids,
		struct tf_arena *arena, struct tf_policy *p)
{
	const cJSON *list, *item;
	struct tf_consumer_rule *rules;
	int rc, index = 0;

	rc = tf_jarray(c, root, "consumers", false, 0, TF_POLICY_MAX_CONSUMERS, &list);
	if (rc != TF_OK || list == NULL)
		return rc;
	rules = tf_arena_alloc(arena, sizeof(*rules) * (size_t)(cJSON_GetArraySize(list) + 1));
	if (rules == NULL)
		return nomem(c);
	memset(rules, 0, sizeof(*rules) * (size_t)(cJSON_GetArraySize(list) + 1));
	cJSON_ArrayForEach(item, list) {
		size_t mark = tf_jctx_member(c, "consumers");
		int step;

		tf_jctx_index(c, index);
		step = load_rule(c, item, ids, arena, &rules[index]);
		tf_jctx_pop(c, mark);
		/* Each rule is checked apart: a check collecting problems
		 * finds those of every rule. */
		tf_jctx_keep(&rc, step);
		if (!tf_jctx_goes_on(c, rc))
			return rc;
		p->n_views += rules[index].view != NULL;
		index++;
	}
	if (rc != TF_OK)
		return rc;
	p->consumers = rules;
	p->n_consumers = (uint32_t)index;
	return TF_OK;
}

static int load_publishers(struct tf_jctx *c, const cJSON *root, const struct tf_identities *ids,
		struct tf_arena *arena, struct tf_policy *p)
{
	const cJSON *sel = cJSON_GetObjectItemCaseSensitive(root, "publishers");
	size_t mark;
	int rc;

	if (sel == NULL)
		return TF_OK;
	p->has_publishers = true;
	mark = tf_jctx_member(c, "publishers");
	rc = tf_jcheck_object(c, sel, tf_selector_members);
	if (rc == TF_OK)
		rc = tf_selector_load(c, sel, ids, arena, &p->publishers);
	tf_jctx_pop(c, mark);
	return rc;
}

static int load_limits(struct tf_jctx *c, const cJSON *root, struct tf_policy *p)
{
	const cJSON *limits = cJSON_GetObjectItemCaseSensitive(root, "limits");
	int64_t rate = 0, size = 0;
	size_t mark;
	int rc;

	if (limits == NULL)
		return TF_OK;
	mark = tf_jctx_member(c, "limits");
	rc = tf_jcheck_object(c, limits, limits_members);
	if (rc == TF_OK)
		rc = tf_jint(c, limits, "max_messages_per_second", false, 1, TF_POLICY_MAX_RATE,
			&rate, NULL);
	if (rc == TF_OK)
		rc = tf_jint(c, limits, "max_payload_bytes", false, 1, TF_POLICY_MAX_PAYLOAD, &size,
			NULL);
	tf_jctx_pop(c, mark);
	p->max_messages_per_second = (uint32_t)rate;
	p->max_payload_bytes = (uint32_t)size;
	return rc;
}

/* An action member (on_violation, on_anomaly) into out; absent: the
 * action fallback. */
static int load_action(struct tf_jctx *c, const cJSON *root, const char *name,
		enum tf_violation_action fallback, struct tf_arena *arena, struct tf_action *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
	const char *action, *reroute, *why;
	size_t mark;
	int rc;

	out->action = fallback;
	out->reroute_to = NULL;
	out->disconnect = false;
	if (v == NULL)
		return TF_OK;
	mark = tf_jctx_member(c, name);
	rc = tf_jcheck_object(c, v, violation_members);
	if (rc == TF_OK)
		rc = tf_jstring(c, v, "action", true, 32, &action);
	if (rc == TF_OK) {
		size_t i;

		for (i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++)
			if (strcmp(action, action_names[i]) == 0)
				break;
		if (i == sizeof(action_names) / sizeof(action_names[0]))
			rc = tf_jfail_at(c, "action", "must be drop, quarantine, reroute or alert");
		else
			out->action = (enum tf_violation_action)i;
	}
	if (rc == TF_OK)
		rc = tf_jstring(c, v, "reroute_to", false, TF_TOPIC_MAX_LEN, &reroute);
	if (rc == TF_OK)
		rc = tf_jbool(c, v, "disconnect", false, &out->disconnect, NULL);
	if (rc == TF_OK && out->action == TF_VIOLATION_REROUTE && reroute == NULL)
		rc = tf_jfail(c, "\"reroute_to\" is required with action reroute");
	else if (rc == TF_OK && out->action != TF_VIOLATION_REROUTE && reroute != NULL)
		rc = tf_jfail_at(c, "reroute_to", "is only allowed with action reroute");
	else if (rc == TF_OK && reroute != NULL && !tf_topic_name_valid(reroute, &why))
		rc = tf_jfail_at(c, "reroute_to", "not a valid topic: %s", why);
	if (rc == TF_OK && reroute != NULL
			&& (out->reroute_to = tf_arena_strdup(arena, reroute)) == NULL)
		rc = nomem(c);
	tf_jctx_pop(c, mark);
	return rc;
}

static int load_schema(struct tf_jctx *c, const cJSON *root, struct tf_policy *p)
{
	const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
	size_t mark;
	int rc;

	if (schema == NULL)
		return TF_OK;
	mark = tf_jctx_member(c, "schema");
	rc = tf_schema_compile(c, schema, &p->schema);

	tf_jctx_pop(c, mark);
	return rc;
}

/* The members that identify the policy: format, id, version, owner,
 * description. */
static int load_header(struct tf_jctx *c, const cJSON *root, const struct tf_identities *ids,
		struct tf_arena *arena, struct tf_policy *p)
{
	const char *id, *owner, *description;
	char label[TF_ID_MAX_LEN + 16];
	int64_t format;
	int rc;

	rc = tf_jint(c, root, "trustflow_policy", true, 1, 1, &format, NULL);
	if (rc == TF_OK)
		rc = tf_jid(c, root, "id", true, &id);
	if (rc == TF_OK)
		rc = tf_jint(c, root, "version", true, 1, TF_POLICY_MAX_VERSION, &p->version, NULL);
	if (rc == TF_OK)
		rc = tf_jid(c, root, "owner", true, &owner);
	if (rc == TF_OK)
		rc = tf_jstring(c, root, "description", false, TF_POLICY_DESCRIPTION_MAX, &description);
	if (rc != TF_OK)
		return rc;
	p->owner = TF_NONE;
	if (ids != NULL && (p->owner = tf_identities_org(ids, owner)) == TF_NONE)
		return tf_jfail_at(c, "owner", "unknown organization \"%s\" (not in the identities file)", owner);
	snprintf(label, sizeof(label), "%s@%lld", id, (long long)p->version);
	p->id = tf_arena_strdup(arena, id);
	p->owner_id = tf_arena_strdup(arena, owner);
	p->label = tf_arena_strdup(arena, label);
	p->file = tf_arena_strdup(arena, c->file);
	p->description = description ? tf_arena_strdup(arena, description) : NULL;
	if (p->id == NULL || p->owner_id == NULL || p->label == NULL || p->file == NULL
			|| (description != NULL && p->description == NULL))
		return nomem(c);
	return TF_OK;
}

static int load_forwarding(struct tf_jctx *c, const cJSON *root, struct tf_policy *p)
{
	const char *forwarding;
	int rc = tf_jstring(c, root, "forwarding", false, 16, &forwarding);

	if (rc != TF_OK || forwarding == NULL)
		return rc;
	if (strcmp(forwarding, "deny") == 0)
		p->forwarding_deny = true;
	else if (strcmp(forwarding, "allow") != 0)
		return tf_jfail_at(c, "forwarding", "must be \"allow\" or \"deny\"");
	return TF_OK;
}

int tf_policy_from_json(struct tf_jctx *c, const cJSON *root, const struct tf_identities *ids,
		struct tf_arena *arena, struct tf_policy *out)
{
	int64_t retention_s = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	/* The owner's own clients receive unless the owner narrows that too. */
	out->owner_receives = true;
	rc = tf_jcheck_object(c, root, policy_members);
	if (tf_jctx_goes_on(c, rc))
		tf_jctx_keep(&rc, load_header(c, root, ids, arena, out));
	/* The members after the header are checked apart from each other, so
	 * that a check collecting problems finds them all; all need the
	 * header. */
	if (out->label == NULL)
		goto out;
	if (tf_jctx_goes_on(c, rc))
		tf_jctx_keep(&rc, load_strings(c, root, &topics_list, arena, &out->topics,
			&out->n_topics));
	if (tf_jctx_goes_on(c, rc))
		tf_jctx_keep(&rc, load_publishers(c, root, ids, arena, out));
	if (tf_jctx_goes_on(c, rc))
		tf_jctx_keep(&rc, load_consumers(c, root, ids, arena, out));
	if (tf_jctx_goes_on(c, rc))
		tf_jctx_keep(&rc, tf_jbool(c, root, "owner_receives", false, &out->owner_receives,
			NULL));
	if (tf_jctx_goes_on(c, rc))
		tf_jctx_keep(&rc, tf_jint(c, root, "retention_seconds", false, 1,
			TF_POLICY_MAX_RETENTION_S, &retention_s, NULL));
	if (tf_jctx_goes_on(c, rc))
		tf_jctx_keep(&rc, load_forwarding(c, root, out));
	if (tf_jctx_goes_on(c, rc))
		tf_jctx_keep(&rc, load_limits(c, root, out));
	if (tf_jctx_goes_on(c, rc))
		tf_jctx_keep(&rc, load_action(c, root, "on_violation", TF_VIOLATION_DROP, arena,
			&out->on_violation));
	/* An anomaly is a suspicion, not a broken rule: by default nothing is
	 * lost (policy-v1). */
	if (tf_jctx_goes_on(c, rc))
		tf_jctx_keep(&rc, load_action(c, root, "on_anomaly", TF_VIOLATION_ALERT, arena,
			&out->on_anomaly));
	if (tf_jctx_goes_on(c, rc))
		tf_jctx_keep(&rc, load_schema(c, root, out));
out:
	if (rc != TF_OK) {
		tf_policy_release(out);
		return rc;
	}
	out->retention_ms = retention_s * 1000;
	return TF_OK;
}

/* The owner's signature of the file's bytes text[0..len), in path.sig,
 * when its owner has policy_keys or every policy must be signed. */
static int check_signature(const char *path, const char *display_name, const char *text,
		size_t len, const struct tf_identities *ids, bool required, struct tf_arena *arena,
		struct tf_policy *out, struct tf_err *err)
{
	const struct tf_keyring *keys = tf_identities_policy_keys(ids, out->owner);
	char sig_path[4096], sig[TF_SIG_B64_LEN + 1], kid[TF_KID_LEN + 1];
	struct tf_err why = { "" };
	char *sig_text = NULL;
	size_t sig_len;
	int rc;

	if (keys == NULL && !required)
		return TF_OK;
	if (keys == NULL)
		return tf_err_set(err, TF_ERR_INVALID, "%s: its owner %s has no policy_keys, and every "
			"policy must be signed (require_signed_policies)", display_name, out->owner_id);
	if ((size_t)snprintf(sig_path, sizeof(sig_path), "%s.sig", path) >= sizeof(sig_path))
		return tf_err_set(err, TF_ERR_INVALID, "%s: path too long", display_name);
	rc = tf_file_read(sig_path, NULL, TF_POLICY_SIG_FILE_MAX, &sig_text, &sig_len, &why);
	if (rc == TF_ERR_NOMEM)
		return tf_err_set(err, rc, "%s: out of memory", display_name);
	if (rc != TF_OK)
		return tf_err_set(err, TF_ERR_INVALID, "%s: not signed: its owner %s signs its policies "
			"(policy_keys), and %s.sig cannot be read", display_name, out->owner_id,
			display_name);
	rc = tf_policy_sig_read(sig_text, sig_len, sig, &why);
	if (rc == TF_OK)
		rc = tf_policy_sig_check(keys, text, len, sig, kid, &why);
	free(sig_text);
	if (rc != TF_OK)
		return tf_err_set(err, rc, "%s.sig: %s", display_name, why.msg);
	if ((out->signed_by = tf_arena_strdup(arena, kid)) == NULL
			|| (out->sig = tf_arena_strdup(arena, sig)) == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "%s: out of memory", display_name);
	return TF_OK;
}

/* Keeps the file's bytes and their hash in out, for the trace and the
 * copy the broker publishes. */
static int keep_bytes(const char *display_name, const char *text, size_t len,
		struct tf_arena *arena, struct tf_policy *out, struct tf_err *err)
{
	unsigned char *bytes = tf_arena_alloc(arena, len ? len : 1);

	if (bytes == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "%s: out of memory", display_name);
	memcpy(bytes, text, len);
	out->bytes = bytes;
	out->n_bytes = len;
	tf_sha256(text, len, out->sha256);
	return TF_OK;
}

/* tf_policy_load, and with report every problem of the file. */
static int load_file(const char *path, const char *display_name, const struct tf_identities *ids,
		bool require_signed, void (*report)(void *ctx, const char *msg), void *report_ctx,
		struct tf_arena *arena, struct tf_policy *out, struct tf_err *err)
{
	struct tf_jctx c;
	cJSON *root;
	char *text;
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	if (display_name == NULL)
		display_name = path;
	rc = tf_file_read(path, display_name, TF_POLICY_MAX_BYTES, &text, &len, err);
	if (rc != TF_OK)
		return rc;
	rc = tf_json_parse(text, len, display_name, &root, err);
	if (rc == TF_OK) {
		tf_jctx_init(&c, display_name, err);
		if (report != NULL)
			tf_jctx_collect(&c, report, report_ctx);
		rc = tf_policy_from_json(&c, root, ids, arena, out);
		cJSON_Delete(root);
	}
	if (rc == TF_OK)
		rc = keep_bytes(display_name, text, len, arena, out, err);
	/* The bytes checked are the bytes parsed. */
	if (rc == TF_OK && ids != NULL)
		rc = check_signature(path, display_name, text, len, ids, require_signed, arena, out, err);
	if (rc != TF_OK)
		tf_policy_release(out);
	free(text);
	return rc;
}

int tf_policy_load(const char *path, const char *display_name, const struct tf_identities *ids,
		bool require_signed, struct tf_arena *arena, struct tf_policy *out, struct tf_err *err)
{
	return load_file(path, display_name, ids, require_signed, NULL, NULL, arena, out, err);
}

int tf_policy_check_file(const char *path, const struct tf_identities *ids,
		void (*report)(void *ctx, const char *msg), void *report_ctx, struct tf_arena *arena,
		struct tf_policy *out, struct tf_err *err)
{
	return load_file(path, NULL, ids, false, report, report_ctx, arena, out, err);
}

void tf_policy_release(struct tf_policy *p)
{
	tf_schema_free(p->schema);
	p->schema = NULL;
}
