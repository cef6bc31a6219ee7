#include "broker/engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <errno.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "broker/dirlist.h"
#include "broker/msgtrack.h"
#include "broker/ratelimit.h"
#include "broker/retained.h"
#include "policy/schema.h"
#include "policy/set.h"

/* Payloads larger than this are not parsed for a schema check or a view:
 * such a message under a policy with a schema is a violation. */
#define TF_JSON_PAYLOAD_MAX (1024u * 1024)
/* Retention entries visited per tick. */
#define SWEEP_BUDGET 256

struct tf_engine {
	struct tf_policy_set *set;
	struct tf_policy_set_options load;  /* what to load on reload */
	char *identities, *policy_dir;      /* owned copies behind load */
	struct tf_engine_hooks hooks;
	struct tf_msgtrack *track;
	struct tf_ratelimit *rates;
	struct tf_retained *retained;
	struct tf_signer *signer;
	struct tf_keyring *earlier_keys;    /* from key_dir */
	char *broker_id;
	bool stamp_all;
	uint64_t seq;                       /* of the last stamp */
};

static int64_t real_now_ms(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void no_log(void *ctx, enum tf_log_level level, const char *text)
{
	(void)ctx;
	(void)level;
	(void)text;
}

static void logf_(struct tf_engine *e, enum tf_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logf_(struct tf_engine *e, enum tf_log_level level, const char *fmt, ...)
{
	char line[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	e->hooks.log(e->hooks.ctx, level, line);
}

static int64_t now_ms(const struct tf_engine *e)
{
	return e->hooks.now_ms(e->hooks.ctx);
}

void tf_engine_free(struct tf_engine *e)
{
	if (e == NULL)
		return;
	tf_policy_set_free(e->set);
	tf_msgtrack_free(e->track);
	tf_ratelimit_free(e->rates);
	tf_retained_free(e->retained);
	tf_signer_free(e->signer);
	tf_keyring_free(e->earlier_keys);
	free(e->broker_id);
	free(e->identities);
	free(e->policy_dir);
	free(e);
}

static void log_loaded(struct tf_engine *e)
{
	logf_(e, TF_LOG_NOTICE, "trustflow: %u policies, %u organizations, %u clients loaded "
		"(default_access %s)", e->set->n_policies, tf_identities_org_count(e->set->ids),
		tf_identities_client_count(e->set->ids), e->load.default_allow ? "allow" : "deny");
}

/* Loads the signing key, or creates it when it does not exist and
 * dev_key_autogen allows. */
static int load_signer(struct tf_engine *e, const struct tf_options *opts, struct tf_err *err)
{
	int rc;

	if (access(opts->signing_key, F_OK) != 0 && errno == ENOENT
			&& strcmp(opts->dev_key_autogen, "true") == 0) {
		rc = tf_signer_generate(opts->signing_key, &e->signer, err);
		if (rc == TF_OK)
			logf_(e, TF_LOG_WARNING, "trustflow: created the development signing key %s "
				"(kid %s); use a key of your own in production",
				opts->signing_key, tf_signer_kid(e->signer));
		return rc;
	}
	rc = tf_signer_load(opts->signing_key, &e->signer, err);
	if (rc == TF_ERR_IO) {
		char why[sizeof(err->msg)];

		memcpy(why, err->msg, sizeof(why));
		return tf_err_set(err, rc, "%s (create one with `tfctl key generate --out %s`, "
			"or set plugin_opt_dev_key_autogen true for a demo)", why, opts->signing_key);
	}
	return rc;
}

/* The public keys of earlier signing keys (*.pem in key_dir), published so
 * that stamps they made still verify. */
static int load_earlier_keys(struct tf_engine *e, const char *dir, struct tf_err *err)
{
	char **names;
	uint32_t n;
	int rc;

	if (dir[0] == '\0')
		return TF_OK;
	rc = tf_dir_list(dir, ".pem", 1000, &names, &n, err);
	if (rc != TF_OK)
		return rc;
	for (uint32_t i = 0; rc == TF_OK && i < n; i++) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		rc = tf_keyring_add_file(e->earlier_keys, path, NULL, err);
	}
	tf_dir_list_free(names, n);
	return rc;
}

int tf_engine_new(const struct tf_options *opts, const struct tf_engine_hooks *hooks,
		struct tf_engine **out, struct tf_err *err)
{
	struct tf_engine *e;
	int rc;

	*out = NULL;
	if (hooks->clear_retained == NULL)
		return tf_err_set(err, TF_ERR_INVALID, "the engine needs a clear_retained hook");
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	e->hooks = *hooks;
	if (e->hooks.log == NULL)
		e->hooks.log = no_log;
	if (e->hooks.now_ms == NULL)
		e->hooks.now_ms = real_now_ms;
	e->identities = strdup(opts->identities);
	e->policy_dir = strdup(opts->policy_dir);
	e->track = tf_msgtrack_new();
	e->rates = tf_ratelimit_new();
	e->retained = tf_retained_new();
	e->earlier_keys = tf_keyring_new();
	e->broker_id = strdup(opts->broker_id);
	e->stamp_all = strcmp(opts->stamp_all, "true") == 0;
	if (e->identities == NULL || e->policy_dir == NULL || e->track == NULL || e->rates == NULL
			|| e->retained == NULL || e->earlier_keys == NULL || e->broker_id == NULL) {
		tf_engine_free(e);
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	}
	e->load.identities = e->identities;
	e->load.policy_dir = e->policy_dir;
	e->load.default_allow = strcmp(opts->default_access, "allow") == 0;
	rc = load_signer(e, opts, err);
	if (rc == TF_OK)
		rc = load_earlier_keys(e, opts->key_dir, err);
	if (rc == TF_OK)
		rc = tf_policy_set_load(&e->load, &e->set, err);
	if (rc != TF_OK) {
		tf_engine_free(e);
		return rc;
	}
	log_loaded(e);
	*out = e;
	return TF_OK;
}

int tf_engine_reload(struct tf_engine *e, struct tf_err *err)
{
	struct tf_policy_set *fresh;
	int rc = tf_policy_set_load(&e->load, &fresh, err);

	if (rc != TF_OK)
		return rc;
	tf_policy_set_free(e->set);
	e->set = fresh;
	/* Buckets are keyed by policy index, which the new set renumbers. */
	tf_ratelimit_clear(e->rates);
	log_loaded(e);
	return TF_OK;
}

const struct tf_policy_set *tf_engine_policies(const struct tf_engine *e)
{
	return e->set;
}

static const struct tf_client *identify(const struct tf_engine *e, const char *username)
{
	return username ? tf_identities_client(e->set->ids, username) : NULL;
}

enum tf_verdict tf_engine_may_publish(struct tf_engine *e, const char *username,
		const char *topic)
{
	struct tf_decision d;

	tf_decide_publish(e->set, identify(e, username), topic, &d);
	return d.verdict;
}

enum tf_verdict tf_engine_may_subscribe(struct tf_engine *e, const char *username,
		const char *filter)
{
	struct tf_decision d;

	tf_decide_subscribe(e->set, identify(e, username), filter, now_ms(e), &d);
	return d.verdict;
}

enum tf_verdict tf_engine_may_receive(struct tf_engine *e, const char *username,
		const char *topic, const void *payload, uint32_t payloadlen)
{
	struct tf_decision d;
	int64_t received = tf_msgtrack_get(e->track, topic, payload, payloadlen);

	tf_decide_receive(e->set, identify(e, username), topic, now_ms(e), received, &d);
	return d.verdict;
}

/* --- messages ------------------------------------------------------------ */

static void refuse(struct tf_message_result *res, const char *reason)
{
	res->deliver = false;
	res->reason = reason;
}

/* What a violation does until the guard can quarantine, reroute and
 * alert: drop (and so quarantine and reroute, which must not fail open)
 * refuses the message; alert delivers it. */
static void violation(struct tf_engine *e, const struct tf_policy *p, const struct tf_message *m,
		const char *kind, const char *detail, struct tf_message_result *res)
{
	logf_(e, TF_LOG_WARNING, "trustflow: %s on %s by %s under %s: %s (action %s)", kind,
		m->topic, m->username ? m->username : "(no username)", p->label, detail,
		tf_violation_action_name(p->on_violation));
	if (p->on_violation != TF_VIOLATION_ALERT)
		refuse(res, kind);
}

/* The reduced copy of an object payload for one view rule: only the
 * rule's fields, in the payload's order. */
static int make_view(const struct tf_consumer_rule *r, const struct tf_policy *p,
		const char *topic, const cJSON *payload, struct tf_copy *copy)
{
	cJSON *reduced = cJSON_CreateObject();
	const cJSON *member;
	size_t len;

	if (reduced == NULL)
		return -1;
	cJSON_ArrayForEach(member, payload) {
		bool wanted = false;

		for (uint32_t f = 0; f < r->n_fields && !wanted; f++)
			wanted = strcmp(r->fields[f], member->string) == 0;
		if (wanted && !cJSON_AddItemToObject(reduced, member->string,
				cJSON_Duplicate(member, true))) {
			cJSON_Delete(reduced);
			return -1;
		}
	}
	copy->payload = cJSON_PrintUnformatted(reduced);
	cJSON_Delete(reduced);
	len = strlen(r->view) + 1 + strlen(topic) + 1;
	copy->topic = malloc(len);
	if (copy->payload == NULL || copy->topic == NULL) {
		free(copy->payload);
		free(copy->topic);
		return -1;
	}
	snprintf(copy->topic, len, "%s/%s", r->view, topic);
	copy->payloadlen = (uint32_t)strlen(copy->payload);
	copy->expiry_s = (uint32_t)(p->retention_ms / 1000);
	return 0;
}

/* The signed stamp of a message (or of a view copy) published by m's
 * client under policy p (NULL: ungoverned). Returns false when it cannot
 * be made (logged). */
static bool stamp(struct tf_engine *e, const struct tf_message *m, const struct tf_policy *p,
		const char *topic, const void *payload, size_t payloadlen, int64_t now,
		struct tf_stamp_buf *buf, struct tf_stamp *out)
{
	const struct tf_client *who = identify(e, m->username);
	struct tf_stamp_request req = {
		.broker = e->broker_id,
		.org = who ? tf_identities_org_id(e->set->ids, who->org) : "",
		.client = m->username ? m->username : m->client_id,
		.policy = p ? p->label : "",
		.topic = topic,
		.payload = payload,
		.payloadlen = payloadlen,
		.ts_ms = now,
		.seq = e->seq + 1,
	};
	struct tf_err err = { "" };

	if (tf_signer_stamp(e->signer, &req, buf, out, &err) != TF_OK) {
		logf_(e, TF_LOG_ERR, "trustflow: %s cannot be stamped (%s); not delivered", topic,
			err.msg);
		return false;
	}
	e->seq++;
	return true;
}

static void make_views(struct tf_engine *e, const struct tf_policy *p, const struct tf_message *m,
		const cJSON *json, int64_t now, struct tf_message_result *res)
{
	if (!cJSON_IsObject(json) || p->n_views == 0)
		return;
	res->copies = calloc(p->n_views, sizeof(*res->copies));
	if (res->copies == NULL) {
		logf_(e, TF_LOG_ERR, "trustflow: out of memory making the views of %s", m->topic);
		return;
	}
	for (uint32_t i = 0; i < p->n_consumers; i++) {
		const struct tf_consumer_rule *r = &p->consumers[i];
		struct tf_copy *c = &res->copies[res->n_copies];

		if (r->fields == NULL)
			continue;
		if (make_view(r, p, m->topic, json, c) != 0) {
			logf_(e, TF_LOG_ERR, "trustflow: out of memory making the view %s of %s",
				r->view, m->topic);
			continue;
		}
		res->n_copies++;
		if (!stamp(e, m, p, c->topic, c->payload, c->payloadlen, now, &c->stamp_buf,
				&c->stamp)) {
			res->n_copies--;
			free(c->topic);
			free(c->payload);
		}
	}
}

/* A retained message replaces the topic's retained copy (an empty one
 * clears it): remember to remove it when its retention passes, or forget
 * the copy it replaced. */
static void note_retained(struct tf_engine *e, const struct tf_message *m,
		const struct tf_policy *p, int64_t now)
{
	if (p == NULL || p->retention_ms == 0 || m->payloadlen == 0) {
		tf_retained_forget(e->retained, m->topic);
		return;
	}
	if (tf_retained_note(e->retained, m->topic, now + p->retention_ms) != 0)
		logf_(e, TF_LOG_ERR, "trustflow: out of memory: the retained copy on %s will not "
			"be removed when its retention passes (it is withheld from subscribers)",
			m->topic);
}

void tf_engine_on_message(struct tf_engine *e, const struct tf_message *m,
		struct tf_message_result *res)
{
	struct tf_governance g;
	const struct tf_policy *p;
	cJSON *json = NULL;
	int64_t now = now_ms(e);

	/* Not memset: the stamp buffers are large and this runs per message. */
	res->deliver = true;
	res->reason = NULL;
	res->stamped = false;
	res->n_copies = 0;
	res->copies = NULL;
	if (m->topic[0] == '$')
		return;
	g = tf_govern_lookup(e->set->govern, m->topic);
	if (g.kind != TF_GOVERN_POLICY) {
		if (e->stamp_all && !stamp(e, m, NULL, m->topic, m->payload, m->payloadlen, now,
				&res->stamp_buf, &res->stamp)) {
			refuse(res, "cannot be stamped");
			return;
		}
		res->stamped = e->stamp_all;
		if (m->retain)
			note_retained(e, m, NULL, now);
		return;
	}
	p = &e->set->policies[g.policy];

	if (p->max_payload_bytes > 0 && m->payloadlen > p->max_payload_bytes) {
		violation(e, p, m, "limit-exceeded", "payload larger than max_payload_bytes", res);
	} else if (p->max_messages_per_second > 0 && (m->username == NULL
			|| !tf_ratelimit_take(e->rates, g.policy, m->username,
				p->max_messages_per_second, now))) {
		violation(e, p, m, "limit-exceeded", "more than max_messages_per_second", res);
	}
	if (res->deliver && (p->schema != NULL || p->n_views > 0) && m->payloadlen <= TF_JSON_PAYLOAD_MAX)
		json = cJSON_ParseWithLengthOpts(m->payload, m->payloadlen, NULL, false);
	if (res->deliver && p->schema != NULL) {
		char why[200];

		if (m->payloadlen > TF_JSON_PAYLOAD_MAX)
			violation(e, p, m, "schema-violation", "payload too large to check", res);
		else if (json == NULL)
			violation(e, p, m, "schema-violation", "payload is not valid JSON", res);
		else if (!tf_schema_validate(p->schema, json, why, sizeof(why)))
			violation(e, p, m, "schema-violation", why, res);
	}
	if (res->deliver && !stamp(e, m, p, m->topic, m->payload, m->payloadlen, now,
			&res->stamp_buf, &res->stamp))
		refuse(res, "cannot be stamped");
	if (res->deliver) {
		res->stamped = true;
		if (p->retention_ms > 0
				&& tf_msgtrack_put(e->track, m->topic, m->payload, m->payloadlen, now,
					now + p->retention_ms) != 0)
			logf_(e, TF_LOG_WARNING, "trustflow: retention table full; %s will be "
				"withheld as of unknown age", m->topic);
		make_views(e, p, m, json, now, res);
		if (m->retain)
			note_retained(e, m, p, now);
	}
	cJSON_Delete(json);
}

void tf_message_result_free(struct tf_message_result *res)
{
	for (uint32_t i = 0; i < res->n_copies; i++) {
		free(res->copies[i].topic);
		free(res->copies[i].payload);
	}
	free(res->copies);
	res->copies = NULL;
	res->n_copies = 0;
}

void tf_engine_publish_keys(struct tf_engine *e)
{
	if (e->hooks.publish_key == NULL)
		return;
	e->hooks.publish_key(e->hooks.ctx, tf_signer_kid(e->signer), tf_signer_public_pem(e->signer));
	for (int i = 0; i < tf_keyring_count(e->earlier_keys); i++) {
		const char *kid = tf_keyring_kid(e->earlier_keys, i);
		char *pem;

		if (strcmp(kid, tf_signer_kid(e->signer)) == 0)
			continue;
		pem = tf_keyring_public_pem(e->earlier_keys, kid);
		if (pem == NULL) {
			logf_(e, TF_LOG_ERR, "trustflow: out of memory publishing key %s", kid);
			continue;
		}
		e->hooks.publish_key(e->hooks.ctx, kid, pem);
		free(pem);
	}
}

void tf_engine_tick(struct tf_engine *e)
{
	int64_t now = now_ms(e);

	tf_retained_expire(e->retained, now, e->hooks.clear_retained, e->hooks.ctx);
	tf_msgtrack_sweep(e->track, now, SWEEP_BUDGET);
}
