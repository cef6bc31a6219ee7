/* What leaves this broker for its peers (federation-v1, section 3): a
 * peer broker is a consumer like any other, of its organization, so a
 * message goes to a peer only when its policy lets that organization
 * receive it, never under `forwarding: deny`. mosquitto shows a plugin
 * nothing of what a bridge sends, so this is decided when a message is
 * published (or released from quarantine), and a copy goes out on
 * TF_EGRESS_PREFIX<peer>/ for each peer that may have it. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/engine/engine_internal.h"
#include "broker/engine/metrics.h"
#include "policy/id.h"
#include "policy/identities.h"

/* A peer as a consumer: its organization, no roles, no purposes, no
 * client name of the identities. */
static struct tf_client peer_as_client(const struct tf_peer *peer)
{
	return (struct tf_client){ .username = peer->link, .index = TF_NONE, .org = peer->org };
}

bool engine_peer_may_have(const struct engine_ctx *c, const struct tf_peer *peer,
		const struct tf_policy *p, const char *topic, int64_t now)
{
	struct tf_client as_client = peer_as_client(peer);
	struct tf_decision d;

	tf_decide_receive(c->set, &as_client, topic, now, now, &d);
	return d.verdict == TF_ALLOW && d.policy == p && !d.view;
}

static bool stamped_by(const char *const *brokers, uint32_t n, const char *broker_id)
{
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(brokers[i], broker_id) == 0)
			return true;
	return false;
}

void engine_egress(struct engine_ctx *c, const struct tf_stamp *st, const struct tf_policy *p,
		const char *const *chain, uint32_t n_chain, int64_t now, struct tf_egress *out)
{
	uint32_t n_peers = tf_identities_peer_count(c->set->ids);

	if (n_peers == 0 || p->forwarding_deny)
		return;
	for (uint32_t i = 0; i < n_peers; i++) {
		const struct tf_peer *peer = tf_identities_peer_at(c->set->ids, i);

		/* A peer whose stamp it has came through it: a ring stops here. */
		if (stamped_by(chain, n_chain, peer->broker_id)
				|| !engine_peer_may_have(c, peer, p, st->topic, now))
			continue;
		if (out->peers == NULL && (out->peers = calloc(n_peers, sizeof(*out->peers))) == NULL) {
			engine_log(c, TF_LOG_ERR, "trustflow: out of memory: %s goes to no peer",
				st->topic);
			return;
		}
		/* What cannot be recorded does not leave. */
		if (c->trace != NULL && !engine_record_forwarded(c, now, st, peer))
			continue;
		tf_metrics_add(c->metrics, p->id, TF_METRIC_FORWARDED, 1, now);
		out->peers[out->n++] = peer->broker_id;
	}
}

bool engine_same_peers(const struct tf_policy_set *a, const struct tf_policy_set *b)
{
	uint32_t n = tf_identities_peer_count(a->ids);

	if (n != tf_identities_peer_count(b->ids))
		return false;
	for (uint32_t i = 0; i < n; i++) {
		const struct tf_peer *pa = tf_identities_peer_at(a->ids, i);
		const struct tf_peer *pb = tf_identities_peer(b->ids, pa->broker_id);

		if (pb == NULL || strcmp(tf_identities_org_id(a->ids, pa->org),
				tf_identities_org_id(b->ids, pb->org)) != 0)
			return false;
	}
	return true;
}

/* Whether peer's organization may receive data of p under any rule, at
 * any time of the rule's window: then it gets p itself (federation-v1,
 * section 2). */
static bool peer_receives_policy(const struct tf_peer *peer, const struct tf_policy *p)
{
	struct tf_client as_client = peer_as_client(peer);

	if (p->forwarding_deny)
		return false;
	if (tf_decide_receives_under(p, &as_client, TF_RULE_OWNER_ORG, TF_TIME_UNKNOWN))
		return true;
	for (uint32_t r = 0; r < p->n_consumers; r++)
		if (tf_decide_receives_under(p, &as_client, (int)r, TF_TIME_UNKNOWN))
			return true;
	return false;
}

void engine_policy_egress(struct engine_ctx *c, const struct tf_policy *p, const char *topic,
		const char *json)
{
	for (uint32_t i = 0; i < tf_identities_peer_count(c->set->ids); i++) {
		const struct tf_peer *peer = tf_identities_peer_at(c->set->ids, i);
		char egress[sizeof(TF_EGRESS_PREFIX) + TF_ID_MAX_LEN + 1 + 512];

		if (!peer_receives_policy(peer, p))
			continue;
		snprintf(egress, sizeof(egress), TF_EGRESS_PREFIX "%s/%s", peer->broker_id, topic);
		c->hooks.publish_policy(c->hooks.ctx, egress, json);
	}
}
