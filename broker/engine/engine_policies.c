/* A policy set coming into force, as the owners' policies see it
 * (federation-v1, section 2): the highest version accepted per policy id
 * (rollback protection), a trace record of each policy the first time it
 * is accepted, and each policy published retained on
 * $trustflow/policies/<owner>/<id>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "broker/engine/engine_internal.h"
#include "broker/stamp/provenance.h"
#include "broker/trace/trace_query.h"
#include "broker/trace/trace_store.h"
#include "broker/trace/trace_writer.h"
#include "policy/rollback.h"


int engine_load_rollback(struct engine_ctx *c, struct tf_rollback **out, struct tf_err *err)
{
	struct tf_rollback *r = tf_rollback_new();
	struct tf_trace_store *s;
	int rc = TF_OK;

	*out = NULL;
	if (r == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	if (c->trace != NULL) {
		s = tf_trace_writer_store(c->trace);
		rc = tf_trace_read_begin(s, err);
		if (rc == TF_OK) {
			rc = tf_query_rollback(s, r);
			tf_trace_read_end(s);
			if (rc != TF_OK)
				tf_err_set(err, rc, "out of memory");
		}
	}
	if (rc != TF_OK) {
		tf_rollback_free(r);
		return rc;
	}
	*out = r;
	return TF_OK;
}

static void policy_topic(const char *owner, const char *id, char *out, size_t cap)
{
	snprintf(out, cap, ENGINE_POLICIES_PREFIX "%s/%s", owner, id);
}

/* Standard base64 of bytes[0..len), NUL-terminated; NULL when out of
 * memory. */
static char *base64(const unsigned char *bytes, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, bytes, (int)len);
	return out;
}

/* The trace record of p, accepted for the first time, and the entry it
 * makes the highest accepted, stored together. */
static void record_policy(struct engine_ctx *c, const struct tf_rollback *r,
		const struct tf_policy *p, const char *topic, const char *file_b64)
{
	char sha[TF_SHA256_HEX + 1], meta_name[sizeof(TF_ROLLBACK_META_PREFIX) + TF_ID_MAX_LEN];
	char meta_value[TF_ROLLBACK_TEXT_MAX + 1];
	const char *name = strrchr(p->file, '/');
	struct tf_trace_input in = { .kind = TF_EVENT_POLICY, .ts_ms = engine_now_ms(c),
		.values = { p->label, p->owner_id, topic, name ? name + 1 : p->file, sha,
			p->signed_by ? p->signed_by : "", p->sig ? p->sig : "", file_b64 },
		.meta_name = meta_name, .meta_value = meta_value };

	tf_hex(p->sha256, 32, sha);
	snprintf(meta_name, sizeof(meta_name), TF_ROLLBACK_META_PREFIX "%s", p->id);
	tf_rollback_format(tf_rollback_find(r, p->id), meta_value);
	if (tf_trace_writer_record(c->trace, &in) != TF_OK)
		engine_log(c, TF_LOG_ERR, "trustflow: the trace cannot record policy %s: it is in "
			"force, but its version is not kept against a rollback", p->label);
}

/* Publishes p retained, as federation-v1 says:
 * {"file": "<base64 of the file>", "sig": "<its .sig or empty>"}. */
static void publish_policy(struct engine_ctx *c, const struct tf_policy *p, const char *topic,
		const char *file_b64)
{
	cJSON *doc = cJSON_CreateObject();
	char *json = NULL;

	if (doc != NULL && cJSON_AddStringToObject(doc, "file", file_b64) != NULL
			&& cJSON_AddStringToObject(doc, "sig", p->sig ? p->sig : "") != NULL)
		json = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (json == NULL) {
		engine_log(c, TF_LOG_ERR, "trustflow: out of memory publishing policy %s", p->label);
		return;
	}
	c->hooks.publish_policy(c->hooks.ctx, topic, json);
	engine_policy_egress(c, p, topic, json);
	free(json);
}

/* Whether old holds p as it is (same version, same bytes). */
static bool unchanged(const struct tf_policy_set *old, const struct tf_policy *p)
{
	const struct tf_policy *was = old ? tf_policy_set_find(old, p->id) : NULL;

	return was != NULL && was->version == p->version
		&& memcmp(was->sha256, p->sha256, 32) == 0;
}

static void clear_policy(struct engine_ctx *c, const char *owner, const char *id)
{
	char topic[sizeof(ENGINE_POLICIES_PREFIX) + 2 * TF_ID_MAX_LEN + 2];

	policy_topic(owner, id, topic, sizeof(topic));
	c->hooks.clear_retained(c->hooks.ctx, topic);
}

/* Removes the published copies of policies no longer in force: those of
 * old (at start: any accepted before) that fresh does not have. */
static void clear_removed(struct engine_ctx *c, const struct tf_rollback *r,
		const struct tf_policy_set *old, const struct tf_policy_set *fresh)
{
	if (old != NULL) {
		for (uint32_t i = 0; i < old->n_policies; i++) {
			const struct tf_policy *p = &old->policies[i];

			if (tf_policy_set_find(fresh, p->id) == NULL)
				clear_policy(c, p->owner_id, p->id);
		}
		return;
	}
	for (size_t i = 0; i < tf_rollback_count(r); i++) {
		const struct tf_rollback_entry *e = tf_rollback_at(r, i);

		if (tf_policy_set_find(fresh, e->id) == NULL)
			clear_policy(c, e->owner, e->id);
	}
}

void engine_accept_policies(struct engine_ctx *c, struct tf_rollback *r,
		const struct tf_policy_set *old, const struct tf_policy_set *fresh)
{
	/* New peers get every policy they may have. */
	bool peers_changed = old == NULL || !engine_same_peers(old, fresh);

	if (old != NULL)
		engine_forget_gone_metrics(c, fresh);
	if (c->hooks.publish_policy != NULL)
		clear_removed(c, r, old, fresh);
	for (uint32_t i = 0; i < fresh->n_policies; i++) {
		const struct tf_policy *p = &fresh->policies[i];
		char topic[sizeof(ENGINE_POLICIES_PREFIX) + 2 * TF_ID_MAX_LEN + 2];
		bool first = !tf_rollback_holds(r, p);
		bool publish = c->hooks.publish_policy != NULL && (peers_changed || !unchanged(old, p));
		char *file_b64;

		if (!first && !publish)
			continue;
		if ((file_b64 = base64(p->bytes, p->n_bytes)) == NULL) {
			engine_log(c, TF_LOG_ERR, "trustflow: out of memory recording policy %s",
				p->label);
			continue;
		}
		policy_topic(p->owner_id, p->id, topic, sizeof(topic));
		if (first && tf_rollback_note(r, p->id, p->owner_id, p->version, p->sha256) == TF_OK
				&& c->trace != NULL)
			record_policy(c, r, p, topic, file_b64);
		if (publish)
			publish_policy(c, p, topic, file_b64);
		free(file_b64);
	}
}
