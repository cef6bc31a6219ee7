/* Quarantine and reroute: holding a flow's messages in the trace store,
 * releasing or discarding them, delivering elsewhere
 * (broker/engine_internal.h, broker/quarantine.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/engine_internal.h"
#include "broker/held.h"
#include "broker/number.h"
#include "broker/quarantine.h"
#include "broker/trace_store.h"
#include "broker/trace_writer.h"

/* Scratch for decoding held records: their strings. */
#define HELD_SCRATCH 8192

static int count_held(void *ctx, const char *flow, uint64_t seq, const void *record, size_t len)
{
	struct tf_engine *e = ctx;
	struct tf_held m;
	char scratch[HELD_SCRATCH];
	long ts = 0;

	(void)seq;
	if (!tf_held_decode(record, len, &m, scratch, sizeof(scratch))) {
		engine_log(e, TF_LOG_ERR, "trustflow: a held message of %s is unreadable; it stays in "
			"the store", flow);
		return 0;
	}
	/* The broker wrote a decimal ts; a damaged one leaves 0 (unknown). */
	(void)tf_parse_long(m.stamp.ts, 0, LONG_MAX, &ts);
	if (!tf_quarantine_add(e->quarantine, flow, m.stamp.policy, m.stamp.client, ts))
		return 1;
	return 0;
}

/* The flows held when the broker stopped, from the trace store. */
int engine_load_quarantine(struct tf_engine *e, struct tf_err *err)
{
	struct tf_trace_store *s;
	int rc;

	if (e->trace == NULL)
		return TF_OK;
	s = tf_trace_writer_store(e->trace);
	if ((rc = tf_trace_read_begin(s, err)) != TF_OK)
		return rc;
	rc = tf_trace_scan_held(s, NULL, count_held, e);
	tf_trace_read_end(s);
	if (rc != 0)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory listing the quarantined flows");
	for (uint32_t i = 0; i < tf_quarantine_count(e->quarantine); i++) {
		const struct tf_held_flow *f = tf_quarantine_at(e->quarantine, i);

		engine_log(e, TF_LOG_NOTICE, "trustflow: flow %s is quarantined: %llu messages held",
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
	b->scratch[i] = malloc(HELD_SCRATCH);
	if (b->records[i] == NULL || b->scratch[i] == NULL) {
		free(b->records[i]);
		free(b->scratch[i]);
		b->failed = true;
		return 1;
	}
	memcpy(b->records[i], record, len);
	if (!tf_held_decode(b->records[i], len, &b->items[i], b->scratch[i], HELD_SCRATCH)) {
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

/* Releases (publish) or discards every held message of flow, in the
 * order received, each recorded as such and removed from the store. */
static int end_quarantine(struct tf_engine *e, const char *flow, const char *by, bool publish,
		uint64_t *count, struct tf_err *err)
{
	struct tf_trace_store *s;
	struct held_batch b = { .after = 0 };
	int rc = TF_OK;

	*count = 0;
	if (tf_quarantine_find(e->quarantine, flow) == NULL)
		return tf_err_set(err, TF_ERR_INVALID, "no such quarantined flow: %s", flow);
	s = tf_trace_writer_store(e->trace);
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
			const struct tf_held *m = &b.items[i];
			int64_t now = engine_now_ms(e);
			struct tf_trace_input in = { .kind = publish ? TF_EVENT_RELEASE : TF_EVENT_DISCARD,
				.ts_ms = now, .values = { m->stamp.id, flow, by },
				.unhold_flow = flow, .unhold_seq = b.seqs[i] };

			if (tf_trace_writer_record(e->trace, &in) != TF_OK) {
				rc = tf_err_set(err, TF_ERR_FULL, "the trace store cannot record it");
				break;
			}
			if (publish) {
				tf_quarantine_note_release(e->quarantine, m->topic, m->payload,
					m->payloadlen, now);
				e->hooks.publish_held(e->hooks.ctx, m);
			}
			b.after = b.seqs[i];
			(*count)++;
		}
		batch_free(&b);
		if (rc != TF_OK)
			break;
	}
	if (rc == TF_OK && tf_trace_writer_flush(e->trace) != TF_OK)
		rc = tf_err_set(err, TF_ERR_FULL, "the trace store cannot record it");
	if (rc == TF_OK) {
		tf_quarantine_remove(e->quarantine, flow);
		engine_log(e, TF_LOG_NOTICE, "trustflow: flow %s %s by %s: %llu messages", flow,
			publish ? "released" : "discarded", by, (unsigned long long)*count);
	}
	return rc;
}

int tf_engine_release_flow(struct tf_engine *e, const char *flow, const char *by,
		uint64_t *count, struct tf_err *err)
{
	if (e->hooks.publish_held == NULL)
		return tf_err_set(err, TF_ERR_INVALID, "this broker cannot publish held messages");
	return end_quarantine(e, flow, by, true, count, err);
}

int tf_engine_discard_flow(struct tf_engine *e, const char *flow, const char *by,
		uint64_t *count, struct tf_err *err)
{
	return end_quarantine(e, flow, by, false, count, err);
}

const struct tf_quarantine *tf_engine_quarantine(const struct tf_engine *e)
{
	return e->quarantine;
}

/* Holds a message of a quarantined flow: stamped, recorded with its
 * record in the trace store and synced to disk before the publisher is
 * acknowledged; mosquitto passes it to no one (the shim moves it to a
 * topic no client reads). A message that cannot be held is refused. */
void engine_hold(struct tf_engine *e, const struct tf_message *m, const struct tf_policy *p,
		const char *flow, const char *why, int64_t now, struct tf_message_result *res)
{
	struct tf_held held = { m->topic, m->payload, m->payloadlen, m->qos, m->retain, { 0 } };
	uint32_t len;
	void *record;

	if (e->trace == NULL) {
		engine_log(e, TF_LOG_ERR, "trustflow: %s cannot be quarantined without a trace store "
			"(plugin_opt_trace_db); refused", m->topic);
		engine_refuse(res, "quarantine needs a trace store");
		return;
	}
	if (!engine_stamp(e, m, p, m->topic, m->payload, m->payloadlen, now, &res->stamp_buf,
			&res->stamp)) {
		engine_refuse(res, "cannot be stamped");
		return;
	}
	held.stamp = res->stamp;
	record = tf_held_encode(&held, &len);
	if (record == NULL || engine_record_diverted(e, now, &res->stamp, m->payloadlen, "quarantined",
			why, flow, record, len) != TF_OK || tf_trace_writer_flush(e->trace) != TF_OK) {
		free(record);
		engine_log(e, TF_LOG_ERR, "trustflow: %s cannot be quarantined (%s); refused", m->topic,
			record == NULL ? "too large to hold" : "the trace store cannot record it");
		engine_refuse(res, "cannot be quarantined");
		return;
	}
	free(record);
	if (!tf_quarantine_add(e->quarantine, flow, p->label,
			engine_client_name(m->client_id, m->username), now))
		engine_log(e, TF_LOG_ERR, "trustflow: out of memory listing the quarantined flow %s", flow);
	res->hold = true;
}

/* Delivers a violating or anomalous message on to (its action's
 * reroute_to, borrowed from the policy set) instead, stamped for that
 * topic. */
void engine_reroute(struct tf_engine *e, const struct tf_message *m, const struct tf_policy *p,
		const char *to, const char *why, int64_t now, struct tf_message_result *res)
{
	char reason[300];

	if (!engine_stamp(e, m, p, to, m->payload, m->payloadlen, now, &res->stamp_buf,
			&res->stamp)) {
		engine_refuse(res, "cannot be stamped");
		return;
	}
	snprintf(reason, sizeof(reason), "%s; from %s", why, m->topic);
	if (e->trace != NULL && engine_record_diverted(e, now, &res->stamp, m->payloadlen, "rerouted",
			reason, NULL, NULL, 0) != TF_OK) {
		engine_refuse(res, "the trace store cannot record it");
		return;
	}
	/* Its deliveries are decided as of now (broker/quarantine.h). */
	tf_quarantine_note_release(e->quarantine, to, m->payload, m->payloadlen, now);
	res->stamped = true;
	res->redirect = to;
}
