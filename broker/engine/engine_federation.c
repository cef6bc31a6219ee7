/* Peer brokers (federation-v1): the peers a message goes to (egress,
 * decided when it is published, for mosquitto shows a plugin nothing of
 * what a bridge sends), and what a peer hands this broker: checked link
 * by link before anything is delivered, then stamped in format 2. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/engine/engine_internal.h"
#include "policy/identities.h"

const struct tf_peer *engine_peer_of_link(const struct engine_ctx *c, const char *username)
{
	return username != NULL ? tf_identities_peer_by_link(c->set->ids, username) : NULL;
}

/* A peer as a consumer: its organization, no roles, no purposes, no
 * client name of the identities (federation-v1, section 3). */
static struct tf_client peer_as_client(const struct tf_peer *peer)
{
	return (struct tf_client){ .username = peer->link, .index = TF_NONE, .org = peer->org };
}

static bool peer_may_have(const struct engine_ctx *c, const struct tf_peer *peer,
		const struct tf_policy *p, const char *topic, int64_t now)
{
	struct tf_client as_client = peer_as_client(peer);
	struct tf_decision d;

	tf_decide_receive(c->set, &as_client, topic, now, now, &d);
	return d.verdict == TF_ALLOW && d.policy == p && !d.view;
}

/* --- relaying -------------------------------------------------------------- */

#define RELAY_UNREADABLE   "its chain of stamps cannot be read"
#define RELAY_TOO_LONG     "its chain has no room for this broker's stamp"
#define RELAY_NOT_PEER     "its newest stamp is not the linked peer's"
#define RELAY_LOOP         "this broker's stamp is already in its chain"
#define RELAY_NOT_HELD     "its policy is not held here"
#define RELAY_OLDER        "its policy is held here only at a lower version"
#define RELAY_NOT_GOVERNED "its topic is not governed here by its policy"
#define RELAY_NO_FORWARD   "its policy denies forwarding"
#define RELAY_NOT_CONSUMER "its policy does not let the peer's organization have it"

/* The reason for a stamp check's failure as a static phrase of the trace. */
static const char *chain_reason(enum tf_stamp_check rc)
{
	switch (rc) {
	case TF_STAMP_MISSING:        return "its chain lacks a stamp or a field";
	case TF_STAMP_UNKNOWN_KEY:    return "its newest stamp is under a key the peer does not have";
	case TF_STAMP_HASH_MISMATCH:  return "its payload is not the one stamped";
	case TF_STAMP_BAD_SIGNATURE:  return "its newest stamp's signature does not hold";
	case TF_STAMP_TOPIC_MISMATCH: return "its newest stamp is for another topic";
	case TF_STAMP_BROKEN_CHAIN:   return "its chain is broken";
	case TF_STAMP_LOOP:           return "a broker stamped it twice";
	case TF_STAMP_CHAIN_TOO_LONG: return RELAY_TOO_LONG;
	default:                      return "its chain of stamps is malformed";
	}
}

/* The origin's policy as this broker holds it: NULL and why when not at
 * the origin's version or a higher one. */
static const struct tf_policy *origin_policy(const struct engine_ctx *c, const char *label,
		const char **why)
{
	size_t id_len = tf_policy_label_id_len(label);
	char id[512];
	const struct tf_policy *p;
	char *end;
	long long version;

	*why = RELAY_NOT_HELD;
	if (id_len >= sizeof(id) || label[id_len] != '@')
		return NULL;
	memcpy(id, label, id_len);
	id[id_len] = '\0';
	version = strtoll(label + id_len + 1, &end, 10);
	p = tf_policy_set_find(c->set, id);
	if (p == NULL || *end != '\0')
		return NULL;
	if (p->version < version) {
		*why = RELAY_OLDER;
		return NULL;
	}
	return p;
}

/* Why the chain does not check out, or NULL. */
static const char *relay_refusal(struct engine_ctx *c, const struct tf_peer *peer,
		const struct tf_message *m, int64_t now, const struct tf_policy **policy,
		char *detail, size_t cap)
{
	const struct tf_chain *chain = m->chain;
	const struct tf_stamp *newest;
	struct tf_governance g;
	enum tf_stamp_check rc;
	const char *why;
	uint32_t at = 0;

	if (chain == NULL || m->chain_read != TF_STAMP_VALID) {
		snprintf(detail, cap, "%s", tf_stamp_check_reason(m->chain_read));
		return m->chain_read == TF_STAMP_CHAIN_TOO_LONG ? RELAY_TOO_LONG : RELAY_UNREADABLE;
	}
	newest = &chain->stamps[chain->n - 1];
	rc = tf_chain_check_links(chain, m->topic, &at);
	if (rc != TF_STAMP_VALID) {
		snprintf(detail, cap, "stamp %" PRIu32 ": %s", at + 1, tf_stamp_check_reason(rc));
		return chain_reason(rc);
	}
	if (chain->n >= TF_CHAIN_MAX)
		return RELAY_TOO_LONG;
	if (strcmp(newest->broker, peer->broker_id) != 0) {
		snprintf(detail, cap, "stamped by %.100s, linked as %.100s", newest->broker,
			peer->broker_id);
		return RELAY_NOT_PEER;
	}
	rc = tf_stamp_check(peer->keys, newest, m->payload, m->payloadlen);
	if (rc != TF_STAMP_VALID)
		return chain_reason(rc);
	for (uint32_t i = 0; i < chain->n; i++)
		if (strcmp(chain->stamps[i].broker, c->broker_id) == 0)
			return RELAY_LOOP;
	*policy = origin_policy(c, chain->stamps[0].policy, &why);
	if (*policy == NULL) {
		snprintf(detail, cap, "policy %.200s", chain->stamps[0].policy);
		return why;
	}
	g = tf_govern_lookup(c->set->govern, m->topic);
	if (g.kind != TF_GOVERN_POLICY || &c->set->policies[g.policy] != *policy)
		return RELAY_NOT_GOVERNED;
	if ((*policy)->forwarding_deny)
		return RELAY_NO_FORWARD;
	if (!peer_may_have(c, peer, *policy, m->topic, now))
		return RELAY_NOT_CONSUMER;
	return NULL;
}

const char *engine_relay_check(struct engine_ctx *c, const struct tf_peer *peer,
		const struct tf_message *m, int64_t now, const struct tf_policy **policy)
{
	char detail[300] = "", text[700];
	const char *why;

	*policy = NULL;
	why = relay_refusal(c, peer, m, now, policy, detail, sizeof(detail));
	if (why == NULL)
		return NULL;
	snprintf(text, sizeof(text), "a message relayed by peer %s on %s refused: %s%s%s",
		peer->broker_id, m->topic, why, detail[0] ? "; " : "", detail);
	engine_raise_alert(c, "relay-refused", *policy ? (*policy)->label : "",
		tf_identities_org_id(c->set->ids, peer->org), peer->link, text, "drop");
	if (c->trace != NULL)
		engine_record_unstamped(c, now, m->client_id, m->username, m->topic, *policy,
			m->payload, m->payloadlen, "refused", why);
	return why;
}

bool engine_stamp_relayed(struct engine_ctx *c, const struct tf_peer *peer,
		const struct tf_message *m, int64_t now, struct tf_message_result *res)
{
	const struct tf_chain *chain = m->chain;
	const struct tf_stamp *origin = &chain->stamps[0];
	char prev[TF_PREV_B64_LEN + 1];   /* the stamp keeps its own copy */
	struct tf_stamp_request req = {
		.broker = c->broker_id,
		.org = tf_identities_org_id(c->set->ids, peer->org),
		.client = peer->link,
		.policy = origin->policy,
		.topic = m->topic,
		.payload = m->payload,
		.payloadlen = m->payloadlen,
		.ts_ms = now,
		.seq = c->seq + 1,
		.id = origin->id,
		.prev = prev,
	};
	struct tf_err err = { "" };

	/* Every stamp it came with becomes a hop record, the peer's too. */
	res->hops = calloc(chain->n, sizeof(*res->hops));
	if (res->hops == NULL)
		goto nomem;
	for (uint32_t i = 0; i < chain->n; i++) {
		size_t len = tf_stamp_record_encode(&chain->stamps[i], NULL, 0);

		res->hops[i] = malloc(len + 1);
		if (res->hops[i] == NULL)
			goto nomem;
		res->n_hops++;
		tf_stamp_record_encode(&chain->stamps[i], res->hops[i], len + 1);
	}
	tf_chain_link(res->hops[chain->n - 1], strlen(res->hops[chain->n - 1]), prev);
	if (tf_signer_stamp(c->signer, &req, &res->stamp_buf, &res->stamp, &err) != TF_OK) {
		engine_log(c, TF_LOG_ERR, "trustflow: %s relayed by %s cannot be stamped (%s); not "
			"delivered", m->topic, peer->broker_id, err.msg);
		return false;
	}
	c->seq++;
	return true;
nomem:
	engine_log(c, TF_LOG_ERR, "trustflow: out of memory relaying %s from %s; not delivered",
		m->topic, peer->broker_id);
	return false;
}

/* --- egress ---------------------------------------------------------------- */

/* Whether broker_id stamped the message already (it came through it). */
static bool in_chain(const struct tf_message *m, const char *broker_id)
{
	if (m->chain == NULL)
		return false;
	for (uint32_t i = 0; i < m->chain->n; i++)
		if (strcmp(m->chain->stamps[i].broker, broker_id) == 0)
			return true;
	return false;
}

void engine_egress(struct engine_ctx *c, const struct tf_message *m, const struct tf_policy *p,
		int64_t now, struct tf_message_result *res)
{
	uint32_t n_peers = tf_identities_peer_count(c->set->ids);

	if (n_peers == 0 || p->forwarding_deny)
		return;
	for (uint32_t i = 0; i < n_peers; i++) {
		const struct tf_peer *peer = tf_identities_peer_at(c->set->ids, i);

		if (in_chain(m, peer->broker_id) || !peer_may_have(c, peer, p, m->topic, now))
			continue;
		if (res->egress.peers == NULL) {
			res->egress.peers = calloc(n_peers, sizeof(*res->egress.peers));
			if (res->egress.peers == NULL) {
				engine_log(c, TF_LOG_ERR, "trustflow: out of memory: %s goes to no peer",
					m->topic);
				return;
			}
		}
		/* What cannot be recorded does not leave. */
		if (c->trace != NULL && !engine_record_forwarded(c, now, &res->stamp, peer))
			continue;
		res->egress.peers[res->egress.n++] = peer->broker_id;
	}
}
