/* Alerts, and the anomaly guard's part in the engine's decisions:
 * bursts of refusals and leaks (broker/engine/engine_internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/guard/alerts.h"
#include "broker/util/fnv.h"
#include "broker/engine/engine_internal.h"
#include "broker/engine/metrics.h"
#include "broker/guard/guard.h"
#include "broker/trace/trace_query.h"
#include "broker/trace/trace_writer.h"

/* Records, publishes and keeps an alert that was admitted (its id made
 * here): see engine_raise_alert. */
static void emit_alert(struct engine_ctx *c, struct tf_alert *alert)
{
	char topic[200];
	cJSON *json;
	char *payload;

	if (tf_signer_make_id(c->signer, alert->ts_ms, alert->id, NULL) != TF_OK)
		return;
	tf_alerts_keep(c->alerts, alert);
	engine_log(c, TF_LOG_WARNING, "trustflow: alert %s under %s by %s: %s (action %s)",
		alert->kind, alert->policy[0] ? alert->policy : "-",
		alert->client[0] ? alert->client : "-", alert->detail, alert->action);
	if (c->trace != NULL) {
		struct tf_trace_input in = { .kind = TF_EVENT_ALERT, .ts_ms = alert->ts_ms,
		.values = { alert->id, alert->kind, alert->policy, alert->org,
			alert->client, alert->detail, alert->action } };

		tf_trace_writer_record(c->trace, &in);
	}
	if (c->hooks.publish_alert == NULL)
		return;
	json = tf_alert_json(alert);
	payload = json ? cJSON_PrintUnformatted(json) : NULL;
	cJSON_Delete(json);
	if (payload == NULL) {
		engine_log(c, TF_LOG_ERR, "trustflow: out of memory publishing a %s alert",
			alert->kind);
		return;
	}
	tf_alert_topic(alert, topic, sizeof(topic));
	c->hooks.publish_alert(c->hooks.ctx, topic, payload);
	free(payload);
}

/* Raises an alert (operations-v1): kept for listAlerts, recorded in the
 * trace, published on $trustflow/alerts/<policy id>. Repeats about one
 * flow are folded (broker/guard/alerts.h). policy: a label or "". */
void engine_raise_alert(struct engine_ctx *c, const char *kind, const char *policy,
		const char *org, const char *client, const char *detail, const char *action)
{
	struct tf_alert alert = { "", engine_now_ms(c), kind, policy, org, client, detail,
		action };
	char text[600];
	uint32_t folded;

	engine_count_alert(c, policy, kind);
	if (!tf_alerts_admit(c->alerts, &alert, &folded))
		return;
	if (folded > 0) {
		snprintf(text, sizeof(text), "%s (and %u more like it in the last second)", detail,
			folded);
		alert.detail = text;
	}
	emit_alert(c, &alert);
}

/* Raises the alert for alerts folded in a window that ended without a
 * new one to mention them (tf_alerts_flush): like the last one folded,
 * saying how many. */
static void raise_folded(void *ctx, const struct tf_alert *last, uint32_t folded)
{
	struct tf_alert alert = *last;
	char text[600];

	snprintf(text, sizeof(text), "%u more like it in the last second; the last: %s", folded,
		last->detail);
	alert.detail = text;
	emit_alert(ctx, &alert);
}

void engine_alerts_tick(struct engine_ctx *c)
{
	tf_alerts_flush(c->alerts, engine_now_ms(c), ENGINE_FOLDS_PER_TICK, raise_folded, c);
}

struct tf_guard *engine_new_guard(const struct tf_options *opts)
{
	struct tf_guard_config cfg = {
		.rate_factor = (uint32_t)engine_option_number(opts->guard_rate_factor),
		.rate_min = (uint32_t)engine_option_number(opts->guard_rate_min),
		.rate_warmup_s = (uint32_t)engine_option_number(opts->guard_rate_warmup_s),
		.size_factor = (uint32_t)engine_option_number(opts->guard_size_factor),
		.replay_window_ms = (uint32_t)engine_option_number(opts->guard_replay_window_s) * 1000,
		.denied_burst = (uint32_t)engine_option_number(opts->guard_denied_burst),
		.denied_window_ms = (uint32_t)engine_option_number(opts->guard_denied_window_s) * 1000,
		.block_ms = (uint32_t)engine_option_number(opts->guard_block_s) * 1000,
		.leak_window_ms = (uint32_t)engine_option_number(opts->guard_leak_window_s) * 1000,
	};

	return tf_guard_new(&cfg);
}

#define ENGINE_CLIENT_KEY_MAX 300

/* The key the guard counts and blocks a client under: usernames and
 * client ids in namespaces of their own ("u:", "c:"), so that a client
 * without a username can never be counted or blocked as a user. Written
 * into buf (cap >= 64); a name too long for it is keyed by its hash. */
static const char *client_key(const char *client_id, const char *username, char *buf,
		size_t cap)
{
	const char *name = username ? username : client_id ? client_id : "";
	size_t len = strlen(name);

	if (len + 3 <= cap)
		snprintf(buf, cap, "%c:%s", username ? 'u' : 'c', name);
	else
		snprintf(buf, cap, "%c#%016llx", username ? 'u' : 'c',
			(unsigned long long)tf_fnv1a(TF_FNV_OFFSET, name, len));
	return buf;
}

/* A refusal counts towards the client's burst; the one that completes it
 * blocks the client (broker/guard/guard.h) and raises an alert. */
void engine_count_refusal(struct engine_ctx *c, const char *client_id, const char *username,
		int64_t now)
{
	char key[ENGINE_CLIENT_KEY_MAX];

	if (tf_guard_denied(c->guard, client_key(client_id, username, key, sizeof(key)), now))
		engine_raise_alert(c, "denied-burst", "", engine_org_name(c, engine_identify(c, username)),
			engine_client_name(client_id, username),
			"a burst of refused publishes and subscriptions", "block");
}

bool engine_is_blocked(const struct engine_ctx *c, const char *client_id, const char *username,
		int64_t now)
{
	char key[ENGINE_CLIENT_KEY_MAX];

	if (!tf_guard_counts_refusals(c->guard))
		return false;
	return tf_guard_blocked(c->guard, client_key(client_id, username, key, sizeof(key)),
		now);
}

/* The canonical hash of m's payload, made on first use from the payload
 * parsed once (engine_canon_json). NULL when it cannot be made. */
static const unsigned char *canonical_sha(const struct tf_message *m,
		struct engine_canon *canon)
{
	if (!canon->made) {
		canon->ok = tf_guard_canonical_sha(engine_canon_json(canon, m->payload, m->payloadlen),
			m->payload, m->payloadlen, canon->sha);
		canon->made = true;
	}
	return canon->ok ? canon->sha : NULL;
}

/* Data under `forwarding: deny` is watched for being published again. */
void engine_note_private(struct engine_ctx *c, const struct tf_message *m,
		const struct tf_policy *p, struct engine_canon *canon, const struct tf_stamp *st,
		int64_t now)
{
	const unsigned char *sha = canonical_sha(m, canon);

	if (sha != NULL)
		tf_guard_note_private(c->guard, sha, st->id, p->label,
			tf_identities_org_id(c->set->ids, p->owner), st->client, now);
}

/* Data under `forwarding: deny` delivered to client outside its owner
 * org: client becomes a suspect if it publishes the data again. The
 * delivered message is found by its id (hit: the msgtrack entry, or NULL)
 * without parsing anything; a message without one (a retained copy, an
 * offline queue, one tracked no longer) by its canonical hash. */
void engine_note_recipient(struct engine_ctx *c, const struct tf_msgtrack_hit *hit,
		const char *client, const void *payload, uint32_t payloadlen, int64_t now)
{
	struct tf_message m = { .payload = payload, .payloadlen = payloadlen };
	struct engine_canon canon = { .made = false };
	const unsigned char *sha;
	char id[TF_MSGID_LEN + 1];

	if (hit != NULL && hit->has_id) {
		tf_hex(hit->id, 16, id);
		if (tf_guard_note_recipient(c->guard, id, client, now))
			return;
	}
	sha = canonical_sha(&m, &canon);
	if (sha != NULL)
		tf_guard_note_recipient_of(c->guard, sha, client, now);
	engine_canon_free(&canon);
}

/* Appends name to the suspects in out (len used of cap) unless listed. */
static size_t add_suspect(char *out, size_t len, size_t cap, const char *name)
{
	const char *at = out;
	size_t n = strlen(name);

	/* Each suspect once: the trace lists a delivery per subscription and
	 * per retained or queued copy. */
	while ((at = strstr(at, name)) != NULL) {
		if ((at == out || at[-1] == ' ') && (at[n] == ',' || at[n] == '\0'))
			return len;
		at += n;
	}
	if (len >= cap)
		return len;
	len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "", name);
	return len < cap ? len : cap;
}

/* Who may have leaked private data: the publisher (who received it), then
 * its other recipients outside the owner org, from the trace, each once. */
static void suspects(struct engine_ctx *c, const struct tf_guard_private *priv,
		const char *publisher, char *out, size_t cap)
{
	struct tf_trace_store *s = c->trace ? tf_trace_writer_store(c->trace) : NULL;
	const cJSON *d;
	size_t len;
	cJSON *msg = NULL;

	out[0] = '\0';
	len = add_suspect(out, 0, cap, publisher);
	if (s == NULL || tf_trace_read_begin(s, NULL) != TF_OK)
		return;
	msg = tf_query_message(s, priv->id, NULL);
	tf_trace_read_end(s);
	cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(msg, "deliveries")) {
		const cJSON *client = cJSON_GetObjectItemCaseSensitive(d, "client");
		const cJSON *org = cJSON_GetObjectItemCaseSensitive(d, "org");

		if (!cJSON_IsString(client) || !cJSON_IsString(org)
				|| strcmp(org->valuestring, priv->owner) == 0)
			continue;
		len = add_suspect(out, len, cap, client->valuestring);
	}
	cJSON_Delete(msg);
}

/* A message whose payload is private data of another org's policy,
 * published by a client outside that org that received it: a leak. Raises its alert and
 * applies the data's policy's action (anything but "alert" refuses the
 * message). Returns true when the message is refused. */
bool engine_leaked(struct engine_ctx *c, const struct tf_message *m, struct engine_canon *canon,
		int64_t now, struct tf_message_result *res)
{
	const char *publisher = engine_client_name(m->client_id, m->username);
	const char *org = engine_org_name(c, engine_identify(c, m->username));
	const struct tf_guard_private *priv;
	const struct tf_policy *p;
	const unsigned char *sha = canonical_sha(m, canon);
	char id[TF_TRACE_KEY_TEXT_MAX + 1], who[600], detail[900];
	enum tf_violation_action action;

	if (sha == NULL || (priv = tf_guard_find_leak(c->guard, sha, publisher, now)) == NULL
			|| strcmp(org, priv->owner) == 0 || strcmp(publisher, priv->publisher) == 0)
		return false;
	tf_trace_policy_id(priv->policy, id, sizeof(id));
	p = tf_policy_set_find(c->set, id);
	/* Forwarding is a rule the recipient broke: on_violation. */
	action = p ? p->on_violation.action : TF_VIOLATION_DROP;
	suspects(c, priv, publisher, who, sizeof(who));
	snprintf(detail, sizeof(detail), "data of message %s, under forwarding deny, published "
		"again on %s; suspects: %s", priv->id, m->topic, who);
	engine_raise_alert(c, "leak", priv->policy, org, publisher, detail,
		tf_violation_action_name(action));
	if (p != NULL && p->on_violation.disconnect)
		res->disconnect = true;
	if (action == TF_VIOLATION_ALERT)
		return false;
	engine_refuse(res, TF_REFUSED_LEAK, "leak");
	if (c->trace != NULL)
		engine_record_unstamped(c, now, m->client_id, m->username, m->topic, p, m->payload,
			m->payloadlen, "dropped", "leak");
	return true;
}
