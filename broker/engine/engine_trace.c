/* The trace events the engine records (operations-v1), and the trace
 * writer's start and reports (broker/engine/engine_internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/util/dirlist.h"
#include "broker/engine/engine_internal.h"
#include "broker/stamp/fields.h"
#include "broker/trace/trace_query.h"
#include "broker/trace/trace_writer.h"

/* The longest time between two trace checkpoints (operations-v1), and
 * how often events past trace_retention_days are pruned. */
#define CHECKPOINT_MS 10000
#define PRUNE_MS 60000

/* What a message event says (operations-v1). */
struct message_facts {
	const char *id, *topic, *org, *client, *policy, *sha256, *status, *reason;
	uint32_t size;
	const struct tf_stamp *stamp;   /* NULL: not stamped */
	const char *of;                 /* a view copy's original; NULL: none */
	bool by_content;                /* filed by content (tf_trace_input) */
	const struct engine_relayed *relayed;   /* NULL: not from a peer */
	/* A quarantined message's record, kept under its flow; NULL: none. */
	const char *hold_flow;
	const void *hold;
	uint32_t hold_len;
};

/* A relayed message's hop records as the JSON array its event keeps
 * (caller frees with cJSON_free); NULL when out of memory. */
static char *hops_json(const struct engine_relayed *r)
{
	cJSON *records = cJSON_CreateArray();
	char *json = NULL;
	bool ok = records != NULL;

	for (uint32_t i = 0; ok && i < r->n_hops; i++)
		ok = cJSON_AddItemToArray(records, cJSON_CreateString(r->hops[i]));
	if (ok)
		json = cJSON_PrintUnformatted(records);
	cJSON_Delete(records);
	return json;
}

static int record_message(struct engine_ctx *c, int64_t now, const struct message_facts *f)
{
	char size[11];
	char *hops = f->relayed ? hops_json(f->relayed) : NULL;
	struct tf_trace_input in = { .kind = TF_EVENT_MESSAGE, .ts_ms = now,
		.values = {
		f->id, f->topic, f->org, f->client, f->policy, f->sha256, size, f->status,
		f->reason ? f->reason : "", f->stamp ? f->stamp->seq : "",
		f->stamp ? f->stamp->kid : "", f->stamp ? f->stamp->sig : "", f->of ? f->of : "",
		/* Only a relayed message has these fields. */
		f->relayed ? f->relayed->peer : NULL, hops },
		.file_sha256 = f->by_content ? f->sha256 : NULL,
		.hold_flow = f->hold_flow, .hold = f->hold, .hold_len = f->hold_len };
	int rc;

	if (f->relayed != NULL && hops == NULL)
		return TF_ERR_NOMEM;
	size[tf_put_decimal(size, f->size)] = '\0';
	rc = tf_trace_writer_record(c->trace, &in);
	cJSON_free(hops);
	return rc;
}

/* The message event of a stamped message, or of a view copy of the
 * message whose id is of (else NULL). */
int engine_record_stamped(struct engine_ctx *c, int64_t now, const struct tf_stamp *st,
		uint32_t size, const char *of, bool by_content, const struct engine_relayed *relayed)
{
	struct message_facts f = { st->id, st->topic, st->org, st->client, st->policy, st->sha256,
		"delivered", NULL, size, st, of, by_content || of != NULL, relayed, NULL, NULL, 0 };

	return record_message(c, now, &f);
}

bool engine_record_forwarded(struct engine_ctx *c, int64_t now, const struct tf_stamp *st,
		const struct tf_peer *peer)
{
	struct tf_trace_input in = { .kind = TF_EVENT_DELIVERY, .ts_ms = now,
		.values = { st->id, st->policy, peer->broker_id,
			tf_identities_org_id(c->set->ids, peer->org), "forwarded", "", peer->link } };

	return tf_trace_writer_record(c->trace, &in) == TF_OK;
}

/* The message event of a stamped message that went elsewhere: held in
 * quarantine (with its record, under its flow) or rerouted. */
int engine_record_diverted(struct engine_ctx *c, int64_t now, const struct tf_stamp *st,
		uint32_t size, const char *status, const char *reason, const char *hold_flow,
		const void *hold, uint32_t hold_len, const struct engine_relayed *relayed)
{
	struct message_facts f = { st->id, st->topic, st->org, st->client, st->policy, st->sha256,
		status, reason, size, st, NULL, true, relayed, hold_flow, hold, hold_len };

	return record_message(c, now, &f);
}

/* The message event of a message without a stamp: refused at publish,
 * dropped before it was stamped, or passed on unstamped (stamp_all
 * false; filed by content, for without a stamp it has no id to
 * remember). */
void engine_record_unstamped(struct engine_ctx *c, int64_t now, const char *client_id,
		const char *username, const char *topic, const struct tf_policy *p,
		const void *payload, uint32_t payloadlen, const char *status, const char *reason)
{
	char id[TF_MSGID_LEN + 1], sha[TF_SHA256_HEX + 1];
	struct message_facts f = { id, topic, engine_org_name(c, engine_identify(c, username)),
		engine_client_name(client_id, username), p ? p->label : "", sha, status, reason,
		payloadlen, NULL, NULL, strcmp(status, "delivered") == 0, NULL, NULL, NULL, 0 };

	if (tf_signer_make_id(c->signer, now, id, NULL) != TF_OK)
		return;
	tf_sha256_hex(payload, payloadlen, sha);
	/* A refused or dropped message goes nowhere, and an ungoverned one is
	 * not held back by the trace: a failure here is the writer's to
	 * report. */
	record_message(c, now, &f);
}

void engine_record_refused_relay(struct engine_ctx *c, int64_t now, const struct tf_message *m,
		const struct tf_peer *peer, const struct tf_policy *p, const char *why)
{
	char id[TF_MSGID_LEN + 1], sha[TF_SHA256_HEX + 1];
	struct engine_relayed came = { peer->broker_id, NULL, 0 };
	char **records = NULL;
	uint32_t n = 0;
	struct message_facts f = { id, m->topic, tf_identities_org_id(c->set->ids, peer->org),
		peer->link, p ? p->label : "", sha, "refused", why, m->payloadlen, NULL, NULL, false,
		&came, NULL, NULL, 0 };

	if (m->chain != NULL && m->chain_read == TF_STAMP_VALID
			&& engine_chain_records(m->chain, &records, &n)) {
		came.hops = records;
		came.n_hops = n;
	}
	if (tf_signer_make_id(c->signer, now, id, NULL) == TF_OK) {
		tf_sha256_hex(m->payload, m->payloadlen, sha);
		record_message(c, now, &f);
	}
	for (uint32_t i = 0; i < n; i++)
		free(records[i]);
	free(records);
}

char *engine_policy_files_digest(const char *identities, const char *policy_dir)
{
	char **names = NULL, *text = NULL;
	uint32_t n = 0;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (out == NULL)
		return NULL;
	tf_dir_list(policy_dir, ".json", TF_POLICY_SET_MAX_FILES, &names, &n, NULL);
	for (int64_t i = -1; i < (int64_t)n; i++) {
		char path[4096], sha[TF_SHA256_HEX + 1] = "(unreadable)";
		char *bytes = NULL;
		size_t size = 0;
		FILE *f;

		if (i < 0)
			snprintf(path, sizeof(path), "%s", identities);
		else
			snprintf(path, sizeof(path), "%s/%s", policy_dir, names[i]);
		f = fopen(path, "rb");
		if (f != NULL) {
			FILE *copy = open_memstream(&bytes, &size);
			char chunk[8192];
			size_t got;

			while (copy != NULL && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
				fwrite(chunk, 1, got, copy);
			if (copy != NULL && fclose(copy) == 0 && !ferror(f))
				tf_sha256_hex(bytes, size, sha);
			free(bytes);
			fclose(f);
		}
		fprintf(out, "%s  %s\n", sha, path);
	}
	tf_dir_list_free(names, n);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

void engine_record_policy_set(struct engine_ctx *c, const char *result, const char *digest)
{
	char count[11];
	struct tf_trace_input in = { .kind = TF_EVENT_POLICY_SET, .ts_ms = engine_now_ms(c),
		.values = { result, count, digest ? digest : "" } };

	if (c->trace == NULL)
		return;
	count[tf_put_decimal(count, c->set->n_policies)] = '\0';
	tf_trace_writer_record(c->trace, &in);
}

int engine_start_trace(struct engine_ctx *c, const struct tf_options *opts, struct tf_err *err)
{
	struct tf_trace_writer_config cfg = {
		.dir = opts->trace_db,
		.broker_id = opts->broker_id,
		.signer = c->signer,
		.sync_ms = (uint32_t)engine_option_number(opts->trace_sync_ms),
		.retention_days = (uint32_t)engine_option_number(opts->trace_retention_days),
		.max_bytes = (uint64_t)engine_option_number(opts->trace_max_mb) * 1024 * 1024,
		.checkpoint_ms = CHECKPOINT_MS,
		.prune_ms = PRUNE_MS,
	};
	int rc;

	if (opts->trace_db[0] == '\0') {
		engine_log(c, TF_LOG_WARNING, "trustflow: no trace_db: deliveries are not recorded");
		return TF_OK;
	}
	rc = tf_trace_writer_start(&cfg, &c->trace, err);
	if (rc != TF_OK)
		return rc;
	c->trace_each = cfg.sync_ms == 0;
	/* Stamps go on numbering where the last run stopped. */
	c->seq = tf_trace_writer_stamp_seq(c->trace);
	engine_log(c, TF_LOG_NOTICE, "trustflow: recording to %s (sync every %u ms, stamps from seq %llu)",
		opts->trace_db, cfg.sync_ms, (unsigned long long)c->seq + 1);
	return TF_OK;
}

/* The delivery event of one decision: outcome "delivered" (handed to
 * mosquitto for a connected session), "queued" (for an offline one) or
 * "withheld". Returns false when it cannot be recorded. */
bool engine_record_delivery(struct engine_ctx *c, int64_t now, const struct tf_msgtrack_hit *hit,
		const char *client_id, const char *username, const struct tf_client *who,
		const char *topic, const void *payload, uint32_t payloadlen,
		const struct tf_decision *d, const char *outcome)
{
	char id[TF_MSGID_LEN + 1] = "", sha[TF_SHA256_HEX + 1];
	bool made = d->verdict == TF_ALLOW;
	struct tf_trace_input in = { .kind = TF_EVENT_DELIVERY, .ts_ms = now,
		.values = {
		id, d->policy ? d->policy->label : "", engine_client_name(client_id, username),
		engine_org_name(c, who), outcome, made ? "" : d->reason,
		client_id ? client_id : "" } };

	if (hit != NULL && hit->has_id) {
		tf_hex(hit->id, 16, id);
	} else {
		/* Not one the broker just received: the store finds its id. */
		tf_sha256_hex(payload, payloadlen, sha);
		in.find_topic = topic;
		in.find_sha256 = sha;
	}
	/* Its delivery when the session comes back will name it by content. */
	if (strcmp(outcome, "queued") == 0) {
		if (in.find_sha256 == NULL)
			tf_sha256_hex(payload, payloadlen, sha);
		in.file_sha256 = sha;
	}
	return tf_trace_writer_record(c->trace, &in) == TF_OK;
}

/* The delivery event of a message queued for an offline session that
 * mosquitto no longer held when the session came back. */
void engine_record_dropped(struct engine_ctx *c, int64_t now, const char *client_id,
		const char *username, const unsigned char id[16], const char *label)
{
	char hex[TF_MSGID_LEN + 1];
	struct tf_trace_input in = { .kind = TF_EVENT_DELIVERY, .ts_ms = now,
		.values = {
		hex, label, engine_client_name(client_id, username),
		engine_org_name(c, engine_identify(c, username)), "dropped", ENGINE_QUEUE_DROPPED,
		client_id } };

	tf_hex(id, 16, hex);
	tf_trace_writer_record(c->trace, &in);
}

/* What the trace writer left for the broker's thread: a checkpoint to
 * publish, a change of its health to log. */
void engine_trace_tick(struct engine_ctx *c)
{
	char *checkpoint, text[1024];
	bool failed;

	if (c->trace == NULL)
		return;
	checkpoint = tf_trace_writer_take_checkpoint(c->trace);
	if (checkpoint != NULL && c->hooks.publish_checkpoint != NULL)
		c->hooks.publish_checkpoint(c->hooks.ctx, checkpoint);
	free(checkpoint);
	if (tf_trace_writer_take_report(c->trace, text, sizeof(text), &failed))
		c->hooks.log(c->hooks.ctx, failed ? TF_LOG_ERR : TF_LOG_NOTICE, text);
}

int64_t engine_trace_received_at(struct engine_ctx *c, const char *topic, const void *payload,
		uint32_t payloadlen, char *label, size_t cap)
{
	struct tf_trace_store *s;
	int64_t ts;

	if (c->trace == NULL)
		return TF_TIME_UNKNOWN;
	s = tf_trace_writer_store(c->trace);
	if (tf_trace_read_begin(s, NULL) != TF_OK)
		return TF_TIME_UNKNOWN;
	ts = tf_query_received_at(s, topic, payload, payloadlen, label, cap);
	tf_trace_read_end(s);
	return ts == INT64_MIN ? TF_TIME_UNKNOWN : ts;
}
