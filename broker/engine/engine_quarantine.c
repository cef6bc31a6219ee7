/* Quarantine and reroute: holding a flow's messages in the trace store,
 * releasing or discarding them, delivering elsewhere
 * (broker/engine/engine_internal.h, broker/guard/quarantine.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/engine/engine_internal.h"
#include "broker/engine/metrics.h"
#include "broker/guard/held.h"
#include "broker/util/number.h"
#include "broker/guard/quarantine.h"
#include "broker/trace/trace_store.h"
#include "broker/trace/trace_writer.h"
#include "policy/decide.h"
#include "policy/govern.h"
#include "policy/id.h"
#include "policy/identities.h"

static int count_held(void *ctx, const char *flow, uint64_t seq, const void *record, size_t len)
{
	struct engine_ctx *c = ctx;
	struct tf_held m;
	char *scratch = malloc(TF_HELD_SCRATCH(len));
	long ts = 0;
	bool added;

	(void)seq;
	if (scratch == NULL || !tf_held_decode(record, len, &m, scratch, TF_HELD_SCRATCH(len))) {
		free(scratch);
		engine_log(c, TF_LOG_ERR, "trustflow: a held message of %s is unreadable; it stays in "
			"the store", flow);
		return 0;
	}
	/* The broker wrote a decimal ts; a damaged one leaves 0 (unknown). */
	(void)tf_parse_long(m.stamp.ts, 0, LONG_MAX, &ts);
	added = tf_quarantine_add(c->quarantine, flow, m.stamp.policy, m.stamp.client, ts);
	free(scratch);
	return added ? 0 : 1;
}

/* The flows held when the broker stopped, from the trace store. */
int engine_load_quarantine(struct engine_ctx *c, struct tf_err *err)
{
	struct tf_trace_store *s;
	int rc;

	if (c->trace == NULL)
		return TF_OK;
	s = tf_trace_writer_store(c->trace);
	if ((rc = tf_trace_read_begin(s, err)) != TF_OK)
		return rc;
	rc = tf_trace_scan_held(s, NULL, count_held, c);
	tf_trace_read_end(s);
	if (rc != 0)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory listing the quarantined flows");
	for (uint32_t i = 0; i < tf_quarantine_count(c->quarantine); i++) {
		const struct tf_held_flow *f = tf_quarantine_at(c->quarantine, i);

		engine_log(c, TF_LOG_NOTICE, "trustflow: flow %s is quarantined: %llu messages held",
			f->flow, (unsigned long long)f->held);
	}
	return TF_OK;
}

/* Held messages taken from the store for release or discard: a few at a
 * time, so that no read snapshot is open while the writer is waited for. */
#define HELD_BATCH 64

struct held_batch {
	struct tf_held items[HELD_BATCH];
	uint64_t seqs[HELD_BATCH];
	void *records[HELD_BATCH];
	char *scratch[HELD_BATCH];
	uint32_t n;
	uint64_t after;   /* seqs up to here are done */
	bool failed;
};

static int take_held(void *ctx, const char *flow, uint64_t seq, const void *record, size_t len)
{
	struct held_batch *b = ctx;
	uint32_t i = b->n;

	(void)flow;
	if (seq <= b->after)
		return 0;
	if (i == HELD_BATCH)
		return 1;
	b->records[i] = malloc(len);
	b->scratch[i] = malloc(TF_HELD_SCRATCH(len));
	if (b->records[i] == NULL || b->scratch[i] == NULL) {
		free(b->records[i]);
		free(b->scratch[i]);
		b->failed = true;
		return 1;
	}
	memcpy(b->records[i], record, len);
	if (!tf_held_decode(b->records[i], len, &b->items[i], b->scratch[i],
			TF_HELD_SCRATCH(len))) {
		free(b->records[i]);
		free(b->scratch[i]);
		b->failed = true;
		return 1;
	}
	b->seqs[i] = seq;
	b->n++;
	return 0;
}

static void batch_free(struct held_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++) {
		free(b->records[i]);
		free(b->scratch[i]);
	}
	b->n = 0;
}

/* What ending a flow's quarantine does with each held message. */
struct ending {
	bool publish;         /* release (else discard) */
	bool override;        /* release what breaks the rules in force too */
	struct tf_release_counts counts;
	uint64_t discarded;
	int64_t first_kept;   /* receive time of the first message kept back */
};

enum held_fate { HELD_RELEASE, HELD_EXPIRED, HELD_BREAKS };

/* The receive time of a held message: its stamp's ts, which the broker
 * wrote (TF_TIME_UNKNOWN when damaged). */
static int64_t held_received(const struct tf_held *m)
{
	long ts;

	return tf_parse_long(m->stamp.ts, 1, LONG_MAX, &ts) ? (int64_t)ts : TF_TIME_UNKNOWN;
}

/* Whether the payload of m breaks p's content rules, and why. */
static bool held_breaks_content(const struct tf_policy *p, const struct tf_held *m, char *why,
		size_t cap)
{
	struct engine_canon canon = { .parsed = false };
	const cJSON *json = NULL;
	char detail[200];
	bool broken;

	if (engine_too_large(p, m->payloadlen)) {
		snprintf(why, cap, "limit-exceeded under %s: %s", p->label, ENGINE_TOO_LARGE);
		return true;
	}
	if (p->schema != NULL)
		json = engine_canon_json(&canon, m->payload, m->payloadlen);
	broken = engine_breaks_schema(p, m->payloadlen, json, detail, sizeof(detail));
	engine_canon_free(&canon);
	if (broken)
		snprintf(why, cap, "schema-violation under %s: %s", p->label, detail);
	return broken;
}

/* Decides a held message again under the set in force (see
 * tf_engine_release_flow); why says why it is not simply released. */
static enum held_fate judge_held(struct engine_ctx *c, const struct tf_held *m, int64_t now,
		char *why, size_t cap)
{
	struct tf_governance g = tf_govern_lookup(c->set->govern, m->topic);
	int64_t received = held_received(m);
	const struct tf_policy *p;
	struct tf_decision d;

	if (g.kind != TF_GOVERN_POLICY) {
		snprintf(why, cap, "no policy governs %s any more", m->topic);
		return HELD_BREAKS;
	}
	p = &c->set->policies[g.policy];
	/* A retention is the owner's limit on delivery: no override lifts it. */
	if (p->retention_ms > 0 && (received == TF_TIME_UNKNOWN
			|| now - received > p->retention_ms)) {
		snprintf(why, cap, "past its retention (%s: retention_seconds %lld)", p->label,
			(long long)(p->retention_ms / 1000));
		return HELD_EXPIRED;
	}
	if (m->stamp.prev != NULL) {
		/* Relayed: its client is a peer's link, which must still be a
		 * peer whose organization the policy lets have the data. */
		const struct tf_peer *peer = tf_identities_peer_by_link(c->set->ids, m->stamp.client);

		if (peer == NULL || !engine_peer_may_have(c, peer, p, m->topic, now)) {
			snprintf(why, cap, "relayed by %s, which is no longer a peer that %s lets "
				"have it", m->stamp.client, p->label);
			return HELD_BREAKS;
		}
	} else {
		tf_decide_publish(c->set, engine_identify(c, m->stamp.client), m->topic, &d);
		if (d.verdict != TF_ALLOW) {
			snprintf(why, cap, "denied-publish under %s: %s", p->label,
				d.reason ? d.reason : "not allowed");
			return HELD_BREAKS;
		}
	}
	return held_breaks_content(p, m, why, cap) ? HELD_BREAKS : HELD_RELEASE;
}

/* The broker id of a hop record: its third field (broker ids hold no `|`
 * nor `%`, so it is the same escaped), into out; "" when malformed. */
static void hop_broker(const char *record, char out[TF_ID_MAX_LEN + 1])
{
	const char *start = strchr(record, '|'), *end;

	out[0] = '\0';
	if (start == NULL || (start = strchr(start + 1, '|')) == NULL)
		return;
	start++;
	end = strchr(start, '|');
	if (end != NULL && (size_t)(end - start) <= TF_ID_MAX_LEN) {
		memcpy(out, start, (size_t)(end - start));
		out[end - start] = '\0';
	}
}

/* Publishes a released message, and sends it on to the peers that may
 * have it now, as if it had just come. */
static void publish_released(struct engine_ctx *c, const struct tf_held *m, int64_t now)
{
	struct tf_governance g = tf_govern_lookup(c->set->govern, m->topic);
	char brokers[TF_CHAIN_MAX][TF_ID_MAX_LEN + 1];
	const char *chain[TF_CHAIN_MAX];
	struct tf_egress egress = { 0, NULL };

	for (uint32_t i = 0; i < m->n_hops && i < TF_CHAIN_MAX; i++) {
		hop_broker(m->hops[i], brokers[i]);
		chain[i] = brokers[i];
	}
	if (g.kind == TF_GOVERN_POLICY)
		engine_egress(c, &m->stamp, &c->set->policies[g.policy], chain, m->n_hops, now,
			&egress);
	c->hooks.publish_held(c->hooks.ctx, m, &egress);
	free(egress.peers);
}

/* Releases, discards or keeps back one held message (seq in the store),
 * recording what was done. Returns TF_OK, or TF_ERR_FULL when the trace
 * store cannot record it (then nothing was done). */
static int end_one(struct engine_ctx *c, const char *flow, const char *by, uint64_t seq,
		const struct tf_held *m, struct ending *how)
{
	int64_t now = engine_now_ms(c);
	enum held_fate fate = HELD_EXPIRED;
	char why[300] = "", reason[320] = "";
	struct tf_trace_input in = { .kind = TF_EVENT_DISCARD, .ts_ms = now,
		.values = { m->stamp.id, flow, by, reason }, .unhold_flow = flow, .unhold_seq = seq };

	if (how->publish) {
		fate = judge_held(c, m, now, why, sizeof(why));
		if (fate == HELD_BREAKS && !how->override) {
			if (how->counts.kept++ == 0)
				how->first_kept = held_received(m);
			return TF_OK;
		}
		if (fate == HELD_EXPIRED)
			snprintf(reason, sizeof(reason), "%s", why);
		else
			in.kind = TF_EVENT_RELEASE;
		if (fate == HELD_BREAKS)
			snprintf(reason, sizeof(reason), "override: %s", why);
	}
	if (tf_trace_writer_record(c->trace, &in) != TF_OK)
		return TF_ERR_FULL;
	if (in.kind == TF_EVENT_DISCARD) {
		how->discarded++;
		how->counts.expired += how->publish;
		return TF_OK;
	}
	how->counts.released++;
	how->counts.overridden += fate == HELD_BREAKS;
	/* Its deliveries are decided as of when the broker received it. */
	tf_quarantine_note_release(c->quarantine, m->topic, m->payload, m->payloadlen, now,
		held_received(m));
	publish_released(c, m, now);
	if (m->retain) {
		struct tf_governance g = tf_govern_lookup(c->set->govern, m->topic);

		engine_note_retained(c, m->topic, m->payloadlen, g.kind == TF_GOVERN_POLICY
			? &c->set->policies[g.policy] : NULL, held_received(m));
	}
	return TF_OK;
}

/* Ends a flow's quarantine as how says: every held message, in the order
 * received, is released, discarded or kept back, and removed from the
 * store unless kept. */
static int end_quarantine(struct engine_ctx *c, const char *flow, const char *by,
		struct ending *how, struct tf_err *err)
{
	struct tf_trace_store *s;
	struct held_batch b = { .after = 0 };
	int rc = TF_OK;

	if (tf_quarantine_find(c->quarantine, flow) == NULL)
		return tf_err_set(err, TF_ERR_INVALID, "no such quarantined flow: %s", flow);
	s = tf_trace_writer_store(c->trace);
	for (;;) {
		b.n = 0;
		if ((rc = tf_trace_read_begin(s, err)) != TF_OK)
			break;
		tf_trace_scan_held(s, flow, take_held, &b);
		tf_trace_read_end(s);
		if (b.failed) {
			batch_free(&b);
			rc = tf_err_set(err, TF_ERR_INVALID, "a held message of %s is unreadable", flow);
			break;
		}
		if (b.n == 0)
			break;
		for (uint32_t i = 0; i < b.n && rc == TF_OK; i++) {
			if (end_one(c, flow, by, b.seqs[i], &b.items[i], how) != TF_OK) {
				rc = tf_err_set(err, TF_ERR_FULL, "the trace store cannot record it");
				break;
			}
			b.after = b.seqs[i];
		}
		batch_free(&b);
		if (rc != TF_OK)
			break;
	}
	if (rc == TF_OK && tf_trace_writer_flush(c->trace) != TF_OK)
		rc = tf_err_set(err, TF_ERR_FULL, "the trace store cannot record it");
	if (rc != TF_OK)
		return rc;
	if (how->counts.kept > 0)
		tf_quarantine_keep(c->quarantine, flow, how->counts.kept, how->first_kept);
	else
		tf_quarantine_remove(c->quarantine, flow);
	if (how->publish)
		engine_log(c, TF_LOG_NOTICE, "trustflow: flow %s released by %s%s: %llu released "
			"(%llu overriding the rules), %llu discarded past their retention, %llu kept "
			"held for breaking the rules", flow, by, how->override ? " with override" : "",
			(unsigned long long)how->counts.released,
			(unsigned long long)how->counts.overridden,
			(unsigned long long)how->counts.expired, (unsigned long long)how->counts.kept);
	else
		engine_log(c, TF_LOG_NOTICE, "trustflow: flow %s discarded by %s: %llu messages", flow,
			by, (unsigned long long)how->discarded);
	return TF_OK;
}

int engine_release_flow(struct engine_ctx *c, const char *flow, const char *by,
		bool override, struct tf_release_counts *counts, struct tf_err *err)
{
	struct ending how = { .publish = true, .override = override };
	int rc;

	memset(counts, 0, sizeof(*counts));
	if (c->hooks.publish_held == NULL)
		return tf_err_set(err, TF_ERR_INVALID, "this broker cannot publish held messages");
	rc = end_quarantine(c, flow, by, &how, err);
	*counts = how.counts;
	return rc;
}

int engine_discard_flow(struct engine_ctx *c, const char *flow, const char *by,
		uint64_t *count, struct tf_err *err)
{
	struct ending how = { .publish = false };
	int rc = end_quarantine(c, flow, by, &how, err);

	*count = how.discarded;
	return rc;
}

/* Holds a message of a quarantined flow: stamped, recorded with its
 * record in the trace store and synced to disk before the publisher is
 * acknowledged; mosquitto passes it to no one (the shim moves it to a
 * topic no client reads). A message that cannot be held is refused. */
void engine_hold(struct engine_ctx *c, const struct tf_message *m, const struct tf_policy *p,
		const char *flow, const char *why, int64_t now, struct tf_message_result *res)
{
	struct tf_held held = { m->topic, m->payload, m->payloadlen, m->qos, m->retain, { 0 },
		0, { NULL } };
	struct engine_relayed relayed;
	uint32_t len;
	void *record;

	if (c->trace == NULL) {
		engine_log(c, TF_LOG_ERR, "trustflow: %s cannot be quarantined without a trace store "
			"(plugin_opt_trace_db); refused", m->topic);
		engine_refuse(res, TF_REFUSED_UNHELD, "quarantine needs a trace store");
		return;
	}
	if (!engine_stamp_message(c, m, p, m->topic, now, res)) {
		engine_refuse(res, TF_REFUSED_UNSTAMPED, "cannot be stamped");
		return;
	}
	held.stamp = res->stamp;
	for (uint32_t i = 0; i < res->n_hops && i < TF_CHAIN_MAX; i++)
		held.hops[held.n_hops++] = res->hops[i];
	record = tf_held_encode(&held, &len);
	if (record == NULL || engine_record_diverted(c, now, &res->stamp, m->payloadlen, "quarantined",
			why, flow, record, len, engine_relayed_of(c, m, res, &relayed)) != TF_OK
			|| tf_trace_writer_flush(c->trace) != TF_OK) {
		free(record);
		engine_log(c, TF_LOG_ERR, "trustflow: %s cannot be quarantined (%s); refused", m->topic,
			record == NULL ? "too large to hold" : "the trace store cannot record it");
		engine_refuse(res, TF_REFUSED_UNHELD, "cannot be quarantined");
		return;
	}
	free(record);
	if (!tf_quarantine_add(c->quarantine, flow, p->label,
			engine_client_name(m->client_id, m->username), now))
		engine_log(c, TF_LOG_ERR, "trustflow: out of memory listing the quarantined flow %s", flow);
	res->hold = true;
}

/* Delivers a violating or anomalous message on to (its action's
 * reroute_to, borrowed from the policy set) instead, stamped for that
 * topic. */
void engine_reroute(struct engine_ctx *c, const struct tf_message *m, const struct tf_policy *p,
		const char *to, const char *why, int64_t now, struct tf_message_result *res)
{
	struct engine_relayed relayed;
	char reason[300];

	if (!engine_stamp_message(c, m, p, to, now, res)) {
		engine_refuse(res, TF_REFUSED_UNSTAMPED, "cannot be stamped");
		return;
	}
	snprintf(reason, sizeof(reason), "%s; from %s", why, m->topic);
	if (c->trace != NULL && engine_record_diverted(c, now, &res->stamp, m->payloadlen, "rerouted",
			reason, NULL, NULL, 0, engine_relayed_of(c, m, res, &relayed)) != TF_OK) {
		engine_refuse(res, TF_REFUSED_UNRECORDED, "the trace store cannot record it");
		return;
	}
	/* Its deliveries are decided as of now (broker/guard/quarantine.h). */
	tf_quarantine_note_release(c->quarantine, to, m->payload, m->payloadlen, now, now);
	/* Retained on its new topic, under the policy it was published under. */
	if (m->retain)
		engine_note_retained(c, to, m->payloadlen, p, now);
	res->stamped = true;
	res->redirect = to;
}
