/* The base of the engine: what its parts share, below all of them
 * (broker/engine/engine_internal.h says who may call whom): the log,
 * option numbers, the content rules a payload can break, stamps and the
 * note of a retained copy. It calls no other engine file. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/engine/engine_internal.h"
#include "broker/tracking/retained.h"
#include "broker/util/number.h"
#include "policy/schema.h"

void engine_log(struct engine_ctx *c, enum tf_log_level level, const char *fmt, ...)
{
	char line[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->hooks.log(c->hooks.ctx, level, line);
}

const cJSON *engine_canon_json(struct engine_canon *canon, const void *payload,
		uint32_t payloadlen)
{
	if (!canon->parsed && payloadlen <= TF_JSON_PAYLOAD_MAX)
		canon->json = cJSON_ParseWithLengthOpts(payload, payloadlen, NULL, false);
	canon->parsed = true;
	return canon->json;
}

void engine_canon_free(struct engine_canon *canon)
{
	cJSON_Delete(canon->json);
	canon->json = NULL;
}

long engine_option_number(const char *text)
{
	long n = 0;

	/* Checked against its range when the options were read. */
	tf_parse_long(text, 0, LONG_MAX, &n);
	return n;
}

bool engine_breaks_schema(const struct tf_policy *p, uint32_t payloadlen, const cJSON *json,
		char *why, size_t why_cap)
{
	if (p->schema == NULL)
		return false;
	if (payloadlen > TF_JSON_PAYLOAD_MAX)
		snprintf(why, why_cap, "payload too large to check");
	else if (json == NULL)
		snprintf(why, why_cap, "payload is not valid JSON");
	else if (tf_schema_validate(p->schema, json, why, why_cap))
		return false;
	return true;
}

/* The signed stamp of a message (or of a view copy) published by m's
 * client under policy p (NULL: ungoverned). Returns false when it cannot
 * be made (logged). */
/* The organization a stamp names for m's client: its own, or for a peer
 * broker's link its peer's; "" when unidentified. */
static const char *stamp_org(const struct engine_ctx *c, const struct tf_message *m)
{
	const struct tf_client *who = engine_identify(c, m->username);
	const struct tf_peer *peer = who == NULL && m->username != NULL
		? tf_identities_peer_by_link(c->set->ids, m->username) : NULL;

	if (who != NULL)
		return tf_identities_org_id(c->set->ids, who->org);
	return peer != NULL ? tf_identities_org_id(c->set->ids, peer->org) : "";
}

bool engine_stamp(struct engine_ctx *c, const struct tf_message *m, const struct tf_policy *p,
		const char *topic, const void *payload, size_t payloadlen, int64_t now,
		struct tf_stamp_buf *buf, struct tf_stamp *out)
{
	struct tf_stamp_request req = {
		.broker = c->broker_id,
		.org = stamp_org(c, m),
		.client = m->username ? m->username : m->client_id,
		.policy = p ? p->label : "",
		.topic = topic,
		.payload = payload,
		.payloadlen = payloadlen,
		.ts_ms = now,
		.seq = c->seq + 1,
	};
	struct tf_err err = { "" };

	if (tf_signer_stamp(c->signer, &req, buf, out, &err) != TF_OK) {
		engine_log(c, TF_LOG_ERR, "trustflow: %s cannot be stamped (%s); not delivered", topic,
			err.msg);
		return false;
	}
	c->seq++;
	return true;
}

bool engine_chain_records(const struct tf_chain *chain, char ***records, uint32_t *n)
{
	*records = calloc(chain->n ? chain->n : 1, sizeof(**records));
	*n = 0;
	if (*records == NULL)
		return false;
	for (uint32_t i = 0; i < chain->n; i++) {
		size_t len = tf_stamp_record_encode(&chain->stamps[i], NULL, 0);

		(*records)[i] = malloc(len + 1);
		if ((*records)[i] == NULL)
			return false;
		(*n)++;
		tf_stamp_record_encode(&chain->stamps[i], (*records)[i], len + 1);
	}
	return true;
}

/* The format-2 stamp of a message a peer relayed (its chain checked:
 * engine_relay_check), for topic: the hop records of its chain go into
 * res (owned), the stamp after them, under the origin's id and policy. */
static bool stamp_relayed(struct engine_ctx *c, const struct tf_message *m, const char *topic,
		int64_t now, struct tf_message_result *res)
{
	const struct tf_chain *chain = m->chain;
	const struct tf_stamp *origin = &chain->stamps[0];
	char prev[TF_PREV_B64_LEN + 1];   /* the stamp keeps its own copy */
	struct tf_stamp_request req = {
		.broker = c->broker_id,
		.org = stamp_org(c, m),
		.client = m->username,
		.policy = origin->policy,
		.topic = topic,
		.payload = m->payload,
		.payloadlen = m->payloadlen,
		.ts_ms = now,
		.seq = c->seq + 1,
		.id = origin->id,
		.prev = prev,
	};
	struct tf_err err = { "" };

	/* Every stamp it came with becomes a hop record, the peer's too. */
	if (!engine_chain_records(chain, &res->hops, &res->n_hops))
		goto nomem;
	tf_chain_link(res->hops[chain->n - 1], strlen(res->hops[chain->n - 1]), prev);
	if (tf_signer_stamp(c->signer, &req, &res->stamp_buf, &res->stamp, &err) != TF_OK) {
		engine_log(c, TF_LOG_ERR, "trustflow: %s relayed by %s cannot be stamped (%s); not "
			"delivered", topic, m->username, err.msg);
		return false;
	}
	c->seq++;
	return true;
nomem:
	engine_log(c, TF_LOG_ERR, "trustflow: out of memory relaying %s from %s; not delivered",
		topic, m->username);
	return false;
}

bool engine_stamp_message(struct engine_ctx *c, const struct tf_message *m,
		const struct tf_policy *p, const char *topic, int64_t now,
		struct tf_message_result *res)
{
	if (m->chain != NULL)
		return stamp_relayed(c, m, topic, now, res);
	return engine_stamp(c, m, p, topic, m->payload, m->payloadlen, now, &res->stamp_buf,
		&res->stamp);
}

void engine_note_retained(struct engine_ctx *c, const char *topic, uint32_t payloadlen,
		const struct tf_policy *p, int64_t received)
{
	if (p == NULL || payloadlen == 0) {
		tf_retained_forget(c->retained, topic);
		return;
	}
	if (tf_retained_note(c->retained, topic, p->label, p->retention_ms > 0
			? received + p->retention_ms : TF_RETAINED_KEEP) != 0)
		engine_log(c, TF_LOG_ERR, "trustflow: retained table full or out of memory: the "
			"retained copy on %s will not be removed when its retention passes or its "
			"policy changes", topic);
}
