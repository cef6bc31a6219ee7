#include "broker/engine.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <errno.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "broker/alerts.h"
#include "broker/dirlist.h"
#include "broker/fields.h"
#include "broker/guard.h"
#include "broker/held.h"
#include "broker/msgtrack.h"
#include "broker/number.h"
#include "broker/qos2track.h"
#include "broker/quarantine.h"
#include "broker/ratelimit.h"
#include "broker/retained.h"
#include "broker/trace_query.h"
#include "broker/trace_writer.h"
#include "policy/schema.h"
#include "policy/set.h"

/* Payloads larger than this are not parsed for a schema check or a view:
 * such a message under a policy with a schema is a violation. */
#define TF_JSON_PAYLOAD_MAX (1024u * 1024)
/* Retention entries visited per tick. */
#define SWEEP_BUDGET 256
/* How long a message's id is kept for tracing its deliveries. mosquitto
 * delivers most messages at once; the rare later delivery (an offline
 * queue, a retained copy) is traced by the message's topic and payload
 * hash instead. */
#define TRACE_ID_KEEP_MS 60000
/* The longest time between two trace checkpoints (operations-v1), and
 * how often events past trace_retention_days are pruned. */
#define CHECKPOINT_MS 10000
#define PRUNE_MS 60000

struct tf_engine {
	struct tf_policy_set *set;
	struct tf_policy_set_options load;  /* what to load on reload */
	char *identities, *policy_dir;      /* owned copies behind load */
	struct tf_engine_hooks hooks;
	struct tf_msgtrack *track;
	struct tf_qos2track *qos2;          /* QoS 2 messages not yet released */
	struct tf_alerts *alerts;           /* the recent ones, and folding */
	struct tf_quarantine *quarantine;   /* the flows held */
	struct tf_guard *guard;             /* anomaly detectors */
	struct tf_ratelimit *rates;
	struct tf_retained *retained;
	struct tf_signer *signer;
	struct tf_keyring *earlier_keys;    /* from key_dir */
	char *broker_id;
	bool stamp_all;
	uint64_t seq;                       /* of the last stamp */
	struct tf_trace_writer *trace;      /* NULL: nothing is recorded */
	bool trace_each;                    /* trace_sync_ms 0: sync every message */
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
	tf_trace_writer_stop(e->trace);
	tf_policy_set_free(e->set);
	tf_msgtrack_free(e->track);
	tf_qos2track_free(e->qos2);
	tf_alerts_free(e->alerts);
	tf_quarantine_free(e->quarantine);
	tf_guard_free(e->guard);
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

static const struct tf_client *identify(const struct tf_engine *e, const char *username)
{
	return username ? tf_identities_client(e->set->ids, username) : NULL;
}

/* --- the trace ------------------------------------------------------------- */

/* The identity a trace names for a client: its username, else its client
 * id (as tf-client does). */
static const char *client_name(const char *client_id, const char *username)
{
	return username ? username : client_id ? client_id : "";
}

static const char *org_name(const struct tf_engine *e, const struct tf_client *who)
{
	return who ? tf_identities_org_id(e->set->ids, who->org) : "";
}

static void hex16(const unsigned char in[16], char out[TF_MSGID_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 16; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[TF_MSGID_LEN] = '\0';
}

/* What a message event says (operations-v1). */
struct message_facts {
	const char *id, *topic, *org, *client, *policy, *sha256, *status, *reason;
	uint32_t size;
	const struct tf_stamp *stamp;   /* NULL: not stamped */
};

static int record_message(struct tf_engine *e, int64_t now, const struct message_facts *f)
{
	char size[11];
	struct tf_trace_input in = { .kind = TF_EVENT_MESSAGE, .ts_ms = now,
		.values = {
		f->id, f->topic, f->org, f->client, f->policy, f->sha256, size, f->status,
		f->reason ? f->reason : "", f->stamp ? f->stamp->seq : "",
		f->stamp ? f->stamp->kid : "", f->stamp ? f->stamp->sig : "" } };

	size[tf_put_decimal(size, f->size)] = '\0';
	return tf_trace_writer_record(e->trace, &in);
}

/* The message event of a stamped message or view copy. */
static int record_stamped(struct tf_engine *e, int64_t now, const struct tf_stamp *st,
		uint32_t size)
{
	struct message_facts f = { st->id, st->topic, st->org, st->client, st->policy, st->sha256,
		"delivered", NULL, size, st };

	return record_message(e, now, &f);
}

/* The message event of a stamped message that went elsewhere: held in
 * quarantine (with its record, under its flow) or rerouted. */
static int record_diverted(struct tf_engine *e, int64_t now, const struct tf_stamp *st,
		uint32_t size, const char *status, const char *reason, const char *hold_flow,
		const void *hold, uint32_t hold_len)
{
	char sz[11];
	struct tf_trace_input in = { .kind = TF_EVENT_MESSAGE, .ts_ms = now,
		.values = { st->id, st->topic, st->org, st->client, st->policy, st->sha256, sz,
			status, reason, st->seq, st->kid, st->sig },
		.hold_flow = hold_flow, .hold = hold, .hold_len = hold_len };

	sz[tf_put_decimal(sz, size)] = '\0';
	return tf_trace_writer_record(e->trace, &in);
}

/* The message event of a message without a stamp: refused at publish,
 * dropped before it was stamped, or passed on unstamped (stamp_all
 * false). */
static void record_unstamped(struct tf_engine *e, int64_t now, const char *client_id,
		const char *username, const char *topic, const struct tf_policy *p,
		const void *payload, uint32_t payloadlen, const char *status, const char *reason)
{
	char id[TF_MSGID_LEN + 1], sha[TF_SHA256_HEX + 1];
	struct message_facts f = { id, topic, org_name(e, identify(e, username)),
		client_name(client_id, username), p ? p->label : "", sha, status, reason,
		payloadlen, NULL };

	if (tf_signer_make_id(e->signer, now, id, NULL) != TF_OK)
		return;
	tf_sha256_hex(payload, payloadlen, sha);
	/* A refused or dropped message goes nowhere, and an ungoverned one is
	 * not held back by the trace: a failure here is the writer's to
	 * report. */
	record_message(e, now, &f);
}

/* The hash of every file the policy set was read from, one per line as
 * sha256sum prints them, so an auditor can match them. Caller owns. */
static char *policy_files_digest(const struct tf_engine *e)
{
	char **names = NULL, *text = NULL;
	uint32_t n = 0;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (out == NULL)
		return NULL;
	tf_dir_list(e->policy_dir, ".json", TF_POLICY_SET_MAX_FILES, &names, &n, NULL);
	for (int64_t i = -1; i < (int64_t)n; i++) {
		char path[4096], sha[TF_SHA256_HEX + 1] = "(unreadable)";
		char *bytes = NULL;
		size_t size = 0;
		FILE *f;

		if (i < 0)
			snprintf(path, sizeof(path), "%s", e->identities);
		else
			snprintf(path, sizeof(path), "%s/%s", e->policy_dir, names[i]);
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

/* The policy-set event of a load: result "loaded" or "refused: why". */
static void record_policy_set(struct tf_engine *e, const char *result)
{
	char count[11], *files;
	struct tf_trace_input in = { .kind = TF_EVENT_POLICY_SET, .ts_ms = now_ms(e),
		.values = { result, count, NULL } };

	if (e->trace == NULL)
		return;
	count[tf_put_decimal(count, e->set->n_policies)] = '\0';
	files = policy_files_digest(e);
	in.values[2] = files ? files : "";
	tf_trace_writer_record(e->trace, &in);
	free(files);
}

/* Raises an alert (operations-v1): kept for listAlerts, recorded in the
 * trace, published on $trustflow/alerts/<policy id>. Repeats about one
 * flow are folded (broker/alerts.h). policy: a label or "". */
static void raise_alert(struct tf_engine *e, const char *kind, const char *policy,
		const char *org, const char *client, const char *detail, const char *action)
{
	int64_t now = now_ms(e);
	struct tf_alert alert = { "", now, kind, policy, org, client, detail, action };
	char text[600], topic[200];
	uint32_t folded;
	cJSON *json;
	char *payload;

	if (!tf_alerts_admit(e->alerts, kind, policy, client, now, &folded)
			|| tf_signer_make_id(e->signer, now, alert.id, NULL) != TF_OK)
		return;
	if (folded > 0) {
		snprintf(text, sizeof(text), "%s (and %u more like it in the last second)", detail,
			folded);
		alert.detail = text;
	}
	tf_alerts_keep(e->alerts, &alert);
	logf_(e, TF_LOG_WARNING, "trustflow: alert %s under %s by %s: %s (action %s)", kind,
		policy[0] ? policy : "-", client[0] ? client : "-", alert.detail, action);
	if (e->trace != NULL) {
		struct tf_trace_input in = { .kind = TF_EVENT_ALERT, .ts_ms = now,
		.values = { alert.id, kind, policy, org,
			client, alert.detail, action } };

		tf_trace_writer_record(e->trace, &in);
	}
	if (e->hooks.publish_alert == NULL)
		return;
	json = tf_alert_json(&alert);
	payload = json ? cJSON_PrintUnformatted(json) : NULL;
	cJSON_Delete(json);
	if (payload == NULL) {
		logf_(e, TF_LOG_ERR, "trustflow: out of memory publishing a %s alert", kind);
		return;
	}
	tf_alert_topic(&alert, topic, sizeof(topic));
	e->hooks.publish_alert(e->hooks.ctx, topic, payload);
	free(payload);
}

static long option_number(const char *text)
{
	long n = 0;

	/* Checked against its range when the options were read. */
	tf_parse_long(text, 0, LONG_MAX, &n);
	return n;
}

static struct tf_guard *new_guard(const struct tf_options *opts)
{
	struct tf_guard_config cfg = {
		.rate_factor = (uint32_t)option_number(opts->guard_rate_factor),
		.rate_min = (uint32_t)option_number(opts->guard_rate_min),
		.rate_warmup_s = (uint32_t)option_number(opts->guard_rate_warmup_s),
		.size_factor = (uint32_t)option_number(opts->guard_size_factor),
		.replay_window_ms = (uint32_t)option_number(opts->guard_replay_window_s) * 1000,
		.denied_burst = (uint32_t)option_number(opts->guard_denied_burst),
		.denied_window_ms = (uint32_t)option_number(opts->guard_denied_window_s) * 1000,
		.block_ms = (uint32_t)option_number(opts->guard_block_s) * 1000,
		.leak_window_ms = (uint32_t)option_number(opts->guard_leak_window_s) * 1000,
	};

	return tf_guard_new(&cfg);
}

static int start_trace(struct tf_engine *e, const struct tf_options *opts, struct tf_err *err)
{
	struct tf_trace_writer_config cfg = {
		.dir = opts->trace_db,
		.broker_id = opts->broker_id,
		.signing_key = opts->signing_key,
		.sync_ms = (uint32_t)option_number(opts->trace_sync_ms),
		.retention_days = (uint32_t)option_number(opts->trace_retention_days),
		.max_bytes = (uint64_t)option_number(opts->trace_max_mb) * 1024 * 1024,
		.checkpoint_ms = CHECKPOINT_MS,
		.prune_ms = PRUNE_MS,
	};
	int rc;

	if (opts->trace_db[0] == '\0') {
		logf_(e, TF_LOG_WARNING, "trustflow: no trace_db: deliveries are not recorded");
		return TF_OK;
	}
	rc = tf_trace_writer_start(&cfg, &e->trace, err);
	if (rc != TF_OK)
		return rc;
	e->trace_each = cfg.sync_ms == 0;
	/* Stamps go on numbering where the last run stopped. */
	e->seq = tf_trace_writer_stamp_seq(e->trace);
	logf_(e, TF_LOG_NOTICE, "trustflow: recording to %s (sync every %u ms, stamps from seq %llu)",
		opts->trace_db, cfg.sync_ms, (unsigned long long)e->seq + 1);
	return TF_OK;
}

/* --- quarantine ------------------------------------------------------------ */

/* Scratch for decoding held records: their strings. */
#define HELD_SCRATCH 8192

static int count_held(void *ctx, const char *flow, uint64_t seq, const void *record, size_t len)
{
	struct tf_engine *e = ctx;
	struct tf_held m;
	char scratch[HELD_SCRATCH];
	int64_t ts = 0;

	(void)seq;
	if (!tf_held_decode(record, len, &m, scratch, sizeof(scratch))) {
		logf_(e, TF_LOG_ERR, "trustflow: a held message of %s is unreadable; it stays in "
			"the store", flow);
		return 0;
	}
	for (const char *p = m.stamp.ts; *p >= '0' && *p <= '9'; p++)
		ts = ts * 10 + (*p - '0');
	if (!tf_quarantine_add(e->quarantine, flow, m.stamp.policy, m.stamp.client, ts))
		return 1;
	return 0;
}

/* The flows held when the broker stopped, from the trace store. */
static int load_quarantine(struct tf_engine *e, struct tf_err *err)
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

		logf_(e, TF_LOG_NOTICE, "trustflow: flow %s is quarantined: %llu messages held",
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
			int64_t now = now_ms(e);
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
		logf_(e, TF_LOG_NOTICE, "trustflow: flow %s %s by %s: %llu messages", flow,
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
	e->qos2 = tf_qos2track_new();
	e->alerts = tf_alerts_new();
	e->quarantine = tf_quarantine_new();
	e->guard = new_guard(opts);
	e->rates = tf_ratelimit_new();
	e->retained = tf_retained_new();
	e->earlier_keys = tf_keyring_new();
	e->broker_id = strdup(opts->broker_id);
	e->stamp_all = strcmp(opts->stamp_all, "true") == 0;
	if (e->identities == NULL || e->policy_dir == NULL || e->track == NULL || e->qos2 == NULL
			|| e->alerts == NULL || e->quarantine == NULL || e->guard == NULL || e->rates == NULL
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
	if (rc == TF_OK)
		rc = start_trace(e, opts, err);
	if (rc == TF_OK)
		rc = load_quarantine(e, err);
	if (rc != TF_OK) {
		tf_engine_free(e);
		return rc;
	}
	log_loaded(e);
	record_policy_set(e, "loaded");
	*out = e;
	return TF_OK;
}

int tf_engine_reload(struct tf_engine *e, struct tf_err *err)
{
	struct tf_policy_set *fresh;
	int rc = tf_policy_set_load(&e->load, &fresh, err);

	if (rc != TF_OK) {
		char result[sizeof(err->msg) + 16];

		snprintf(result, sizeof(result), "refused: %s", err->msg);
		record_policy_set(e, result);
		raise_alert(e, "reload-failed", "", "", "", err->msg, "none");
		return rc;
	}
	tf_policy_set_free(e->set);
	e->set = fresh;
	/* Buckets are keyed by policy index, which the new set renumbers. */
	tf_ratelimit_clear(e->rates);
	log_loaded(e);
	record_policy_set(e, "loaded");
	return TF_OK;
}

const struct tf_policy_set *tf_engine_policies(const struct tf_engine *e)
{
	return e->set;
}

const struct tf_alerts *tf_engine_alerts(const struct tf_engine *e)
{
	return e->alerts;
}

struct tf_trace_store *tf_engine_trace_store(struct tf_engine *e)
{
	return e->trace ? tf_trace_writer_store(e->trace) : NULL;
}

int64_t tf_engine_now(const struct tf_engine *e)
{
	return now_ms(e);
}

bool tf_engine_client_in_org(const struct tf_engine *e, const char *username, const char *org_id)
{
	const struct tf_client *who = identify(e, username);

	return who != NULL && org_id != NULL && strcmp(org_name(e, who), org_id) == 0;
}

#define BLOCKED "blocked after a burst of refusals"

/* A refusal counts towards the client's burst; the one that completes it
 * blocks the client (broker/guard.h) and raises an alert. */
static void count_refusal(struct tf_engine *e, const char *client_id, const char *username,
		int64_t now)
{
	const char *name = client_name(client_id, username);

	if (tf_guard_denied(e->guard, name, now))
		raise_alert(e, "denied-burst", "", org_name(e, identify(e, username)), name,
			"a burst of refused publishes and subscriptions", "block");
}

static bool is_blocked(const struct tf_engine *e, const char *client_id, const char *username,
		int64_t now)
{
	return tf_guard_blocked(e->guard, client_name(client_id, username), now);
}

enum tf_verdict tf_engine_may_publish(struct tf_engine *e, const char *client_id,
		const char *username, const char *topic, const void *payload, uint32_t payloadlen)
{
	struct tf_decision d;
	int64_t now = now_ms(e);

	if (is_blocked(e, client_id, username, now))
		return TF_DENY;
	tf_decide_publish(e->set, identify(e, username), topic, &d);
	if (d.verdict != TF_DENY)
		return d.verdict;
	if (e->trace != NULL)
		record_unstamped(e, now, client_id, username, topic, d.policy, payload, payloadlen,
			"denied", d.reason);
	/* A refusal on a governed topic is the owner's business. */
	if (d.policy != NULL)
		raise_alert(e, "denied-publish", d.policy->label, org_name(e, identify(e, username)),
			client_name(client_id, username), d.reason, "drop");
	count_refusal(e, client_id, username, now);
	return d.verdict;
}

enum tf_verdict tf_engine_may_subscribe(struct tf_engine *e, const char *client_id,
		const char *username, const char *filter)
{
	struct tf_decision d;
	int64_t now = now_ms(e);

	if (is_blocked(e, client_id, username, now))
		return TF_DENY;
	tf_decide_subscribe(e->set, identify(e, username), filter, now, &d);
	if (d.verdict == TF_DENY)
		count_refusal(e, client_id, username, now);
	return d.verdict;
}

/* The delivery event of one decision. Returns false when it cannot be
 * recorded. */
static bool record_delivery(struct tf_engine *e, int64_t now, const struct tf_msgtrack_hit *hit,
		const char *client_id, const char *username, const struct tf_client *who,
		const char *topic, const void *payload, uint32_t payloadlen,
		const struct tf_decision *d)
{
	char id[TF_MSGID_LEN + 1] = "", sha[TF_SHA256_HEX + 1];
	bool made = d->verdict == TF_ALLOW;
	struct tf_trace_input in = { .kind = TF_EVENT_DELIVERY, .ts_ms = now,
		.values = {
		id, d->policy ? d->policy->label : "", client_name(client_id, username),
		org_name(e, who), made ? "delivered" : "withheld", made ? "" : d->reason } };

	if (hit != NULL && hit->has_id) {
		hex16(hit->id, id);
	} else {
		/* Not one the broker just received: the store finds its id. */
		tf_sha256_hex(payload, payloadlen, sha);
		in.find_topic = topic;
		in.find_sha256 = sha;
	}
	return tf_trace_writer_record(e->trace, &in) == TF_OK;
}

enum tf_verdict tf_engine_may_receive(struct tf_engine *e, const char *client_id,
		const char *username, const char *topic, const void *payload, uint32_t payloadlen)
{
	const struct tf_client *who = identify(e, username);
	struct tf_msgtrack_hit hit;
	struct tf_decision d;
	bool known = tf_msgtrack_find(e->track, topic, payload, payloadlen, &hit);
	int64_t now = now_ms(e);

	if (tf_qos2track_count(e->qos2) > 0)
		tf_qos2track_release(e->qos2, topic);
	tf_decide_receive(e->set, who, topic, now, known ? hit.received_ms
		: tf_quarantine_release_time(e->quarantine, topic, payload, payloadlen, now), &d);
	if (d.verdict == TF_ALLOW && is_blocked(e, client_id, username, now)) {
		d.verdict = TF_DENY;
		d.reason = BLOCKED;
	}
	if (e->trace == NULL || topic[0] == '$' || d.verdict == TF_DEFER)
		return d.verdict;
	/* A governed delivery that cannot be recorded is not made. */
	if (!record_delivery(e, now, known ? &hit : NULL, client_id, username, who, topic, payload,
			payloadlen, &d) && d.policy != NULL)
		return TF_DENY;
	return d.verdict;
}

/* --- messages ------------------------------------------------------------ */

static void refuse(struct tf_message_result *res, const char *reason)
{
	res->deliver = false;
	res->reason = reason;
}

/* A violation of p by m: raises its alert (every violation does); what
 * happens to the message is the caller's, by p->on_violation. */
static void violation(struct tf_engine *e, const struct tf_policy *p, const struct tf_message *m,
		const char *kind, const char *detail)
{
	char text[400];

	snprintf(text, sizeof(text), "%s on %s", detail, m->topic);
	raise_alert(e, kind, p->label, org_name(e, identify(e, m->username)),
		client_name(m->client_id, m->username), text,
		tf_violation_action_name(p->on_violation));
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
				&c->stamp) || (e->trace != NULL
				&& record_stamped(e, now, &c->stamp, c->payloadlen) != TF_OK)) {
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

/* Keeps what later deliveries of a passed-on message need: its receive
 * time under a retention, its id for the trace. */
static void track(struct tf_engine *e, const struct tf_message *m, const struct tf_policy *p,
		const struct tf_stamp *st, int64_t now)
{
	int64_t keep = p && p->retention_ms > 0 ? p->retention_ms : 0;
	unsigned char id[16];
	bool traced = e->trace != NULL && st != NULL && tf_trace_id_bytes(st->id, id);

	if (traced && keep < TRACE_ID_KEEP_MS)
		keep = TRACE_ID_KEEP_MS;
	if (keep == 0)
		return;
	if (tf_msgtrack_put(e->track, m->topic, m->payload, m->payloadlen, now, now + keep,
			traced ? id : NULL) != 0 && p && p->retention_ms > 0)
		logf_(e, TF_LOG_WARNING, "trustflow: retention table full; %s will be "
			"withheld as of unknown age", m->topic);
}

/* A QoS 2 message sent again over a new connection before the first was
 * released: it carries the first one's stamp, and was recorded and its
 * views published with the first. Returns whether m is such a resend. */
static bool resend_of(struct tf_engine *e, const struct tf_message *m, uint64_t key,
		struct tf_message_result *res)
{
	const struct tf_qos2_pending *first = tf_qos2track_retransmitted(e->qos2, key,
		m->connection);

	if (first == NULL)
		return false;
	/* It goes where the first went: mosquitto then sees the same message
	 * and drops it. */
	res->stamp = first->stamp;
	res->stamped = !first->hold;
	res->hold = first->hold;
	res->redirect = first->redirect;
	return true;
}

/* Remembers a stamped QoS 2 message until mosquitto releases it. */
static void pend_qos2(struct tf_engine *e, const struct tf_message *m, uint64_t key,
		const struct tf_message_result *res, int64_t now)
{
	if (!tf_qos2track_put(e->qos2, key, m->connection, m->topic, &res->stamp, res->hold,
			res->redirect, now))
		logf_(e, TF_LOG_WARNING, "trustflow: too many QoS 2 messages in flight; if %s is "
			"sent again it gets a stamp of its own", m->topic);
}

/* A message on a topic no policy governs: stamped with stamp_all,
 * recorded when there is a trace, passed on either way. */
static void on_ungoverned(struct tf_engine *e, const struct tf_message *m, int64_t now,
		struct tf_message_result *res)
{
	if (e->stamp_all) {
		if (!stamp(e, m, NULL, m->topic, m->payload, m->payloadlen, now, &res->stamp_buf,
				&res->stamp)) {
			refuse(res, "cannot be stamped");
			return;
		}
		res->stamped = true;
	}
	if (e->trace != NULL) {
		if (res->stamped)
			record_stamped(e, now, &res->stamp, m->payloadlen);
		else
			record_unstamped(e, now, m->client_id, m->username, m->topic, NULL, m->payload,
				m->payloadlen, "delivered", NULL);
	}
	track(e, m, NULL, res->stamped ? &res->stamp : NULL, now);
	if (m->retain)
		note_retained(e, m, NULL, now);
}

/* --- leaks ------------------------------------------------------------------ */

/* The canonical hash of m's payload (broker/guard.h); json: the payload
 * parsed already, or NULL to parse it here. */
static bool canonical_sha(const struct tf_message *m, const cJSON *json, unsigned char out[32])
{
	cJSON *parsed = NULL;
	bool ok;

	if (json == NULL && m->payloadlen <= TF_JSON_PAYLOAD_MAX)
		json = parsed = cJSON_ParseWithLengthOpts(m->payload, m->payloadlen, NULL, false);
	ok = tf_guard_canonical_sha(json, m->payload, m->payloadlen, out);
	cJSON_Delete(parsed);
	return ok;
}

/* Data under `forwarding: deny` is watched for being published again. */
static void note_private(struct tf_engine *e, const struct tf_message *m,
		const struct tf_policy *p, const cJSON *json, const struct tf_stamp *st, int64_t now)
{
	unsigned char canon[32];

	if (canonical_sha(m, json, canon))
		tf_guard_note_private(e->guard, canon, st->id, p->label,
			tf_identities_org_id(e->set->ids, p->owner), st->client, now);
}

/* Who may have leaked private data: its recipients outside the owner
 * org, from the trace, after the publisher itself. */
static void suspects(struct tf_engine *e, const struct tf_guard_private *priv,
		const char *publisher, char *out, size_t cap)
{
	struct tf_trace_store *s = e->trace ? tf_trace_writer_store(e->trace) : NULL;
	const cJSON *d;
	size_t len;
	cJSON *msg = NULL;

	len = (size_t)snprintf(out, cap, "%s", publisher);
	if (s == NULL || tf_trace_read_begin(s, NULL) != TF_OK)
		return;
	msg = tf_query_message(s, priv->id, NULL);
	tf_trace_read_end(s);
	cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(msg, "deliveries")) {
		const cJSON *client = cJSON_GetObjectItemCaseSensitive(d, "client");
		const cJSON *org = cJSON_GetObjectItemCaseSensitive(d, "org");

		if (!cJSON_IsString(client) || !cJSON_IsString(org)
				|| strcmp(org->valuestring, priv->owner) == 0
				|| strcmp(client->valuestring, publisher) == 0 || len >= cap)
			continue;
		len += (size_t)snprintf(out + len, cap - len, ", %s", client->valuestring);
	}
	cJSON_Delete(msg);
}

/* A message whose payload is private data of another org's policy,
 * published by a client outside that org: a leak. Raises its alert and
 * applies the data's policy's action (anything but "alert" refuses the
 * message). Returns true when the message is refused. */
static bool leaked(struct tf_engine *e, const struct tf_message *m, int64_t now,
		struct tf_message_result *res)
{
	const char *publisher = client_name(m->client_id, m->username);
	const char *org = org_name(e, identify(e, m->username));
	const struct tf_guard_private *priv;
	const struct tf_policy *p;
	unsigned char canon[32];
	char id[TF_TRACE_KEY_TEXT_MAX + 1], who[600], detail[900];
	enum tf_violation_action action;

	if (!canonical_sha(m, NULL, canon)
			|| (priv = tf_guard_find_private(e->guard, canon, now)) == NULL
			|| strcmp(org, priv->owner) == 0 || strcmp(publisher, priv->publisher) == 0)
		return false;
	tf_trace_policy_id(priv->policy, id, sizeof(id));
	p = tf_policy_set_find(e->set, id);
	action = p ? p->on_violation : TF_VIOLATION_DROP;
	suspects(e, priv, publisher, who, sizeof(who));
	snprintf(detail, sizeof(detail), "data of message %s, under forwarding deny, published "
		"again on %s; suspects: %s", priv->id, m->topic, who);
	raise_alert(e, "leak", priv->policy, org, publisher, detail,
		tf_violation_action_name(action));
	if (p != NULL && p->disconnect)
		res->disconnect = true;
	if (action == TF_VIOLATION_ALERT)
		return false;
	refuse(res, "leak");
	if (e->trace != NULL)
		record_unstamped(e, now, m->client_id, m->username, m->topic, p, m->payload,
			m->payloadlen, "dropped", "leak");
	return true;
}

/* A message passed on as published: stamped, recorded, tracked for its
 * deliveries, its views made. */
static void deliver(struct tf_engine *e, const struct tf_message *m, const struct tf_policy *p,
		const cJSON *json, int64_t now, struct tf_message_result *res)
{
	if (!stamp(e, m, p, m->topic, m->payload, m->payloadlen, now, &res->stamp_buf,
			&res->stamp)) {
		refuse(res, "cannot be stamped");
		return;
	}
	res->stamped = true;
	/* What cannot be recorded is not passed on. */
	if (e->trace != NULL && record_stamped(e, now, &res->stamp, m->payloadlen) != TF_OK) {
		refuse(res, "the trace store cannot record it");
		return;
	}
	track(e, m, p, &res->stamp, now);
	make_views(e, p, m, json, now, res);
	if (m->retain)
		note_retained(e, m, p, now);
	if (p->forwarding_deny)
		note_private(e, m, p, json, &res->stamp, now);
	if (e->trace_each && tf_trace_writer_flush(e->trace) != TF_OK)
		refuse(res, "the trace store cannot record it");
}

/* Holds a message of a quarantined flow: stamped, recorded with its
 * record in the trace store and synced to disk before the publisher is
 * acknowledged; mosquitto passes it to no one (the shim moves it to a
 * topic no client reads). A message that cannot be held is refused. */
static void hold(struct tf_engine *e, const struct tf_message *m, const struct tf_policy *p,
		const char *flow, const char *why, int64_t now, struct tf_message_result *res)
{
	struct tf_held held = { m->topic, m->payload, m->payloadlen, m->qos, m->retain, { 0 } };
	uint32_t len;
	void *record;

	if (e->trace == NULL) {
		logf_(e, TF_LOG_ERR, "trustflow: %s cannot be quarantined without a trace store "
			"(plugin_opt_trace_db); refused", m->topic);
		refuse(res, "quarantine needs a trace store");
		return;
	}
	if (!stamp(e, m, p, m->topic, m->payload, m->payloadlen, now, &res->stamp_buf,
			&res->stamp)) {
		refuse(res, "cannot be stamped");
		return;
	}
	held.stamp = res->stamp;
	record = tf_held_encode(&held, &len);
	if (record == NULL || record_diverted(e, now, &res->stamp, m->payloadlen, "quarantined",
			why, flow, record, len) != TF_OK || tf_trace_writer_flush(e->trace) != TF_OK) {
		free(record);
		logf_(e, TF_LOG_ERR, "trustflow: %s cannot be quarantined (%s); refused", m->topic,
			record == NULL ? "too large to hold" : "the trace store cannot record it");
		refuse(res, "cannot be quarantined");
		return;
	}
	free(record);
	if (!tf_quarantine_add(e->quarantine, flow, p->label,
			client_name(m->client_id, m->username), now))
		logf_(e, TF_LOG_ERR, "trustflow: out of memory listing the quarantined flow %s", flow);
	res->hold = true;
}

/* Delivers a violating message on the policy's reroute_to topic instead,
 * stamped for that topic. */
static void reroute(struct tf_engine *e, const struct tf_message *m, const struct tf_policy *p,
		const char *why, int64_t now, struct tf_message_result *res)
{
	char reason[300];

	if (!stamp(e, m, p, p->reroute_to, m->payload, m->payloadlen, now, &res->stamp_buf,
			&res->stamp)) {
		refuse(res, "cannot be stamped");
		return;
	}
	snprintf(reason, sizeof(reason), "%s; from %s", why, m->topic);
	if (e->trace != NULL && record_diverted(e, now, &res->stamp, m->payloadlen, "rerouted",
			reason, NULL, NULL, 0) != TF_OK) {
		refuse(res, "the trace store cannot record it");
		return;
	}
	/* Its deliveries are decided as of now (broker/quarantine.h). */
	tf_quarantine_note_release(e->quarantine, p->reroute_to, m->payload, m->payloadlen, now);
	res->stamped = true;
	res->redirect = p->reroute_to;
}

/* A message on a topic policy p governs: limits and schema, then what
 * the violation (if any) or the flow's quarantine says, else delivery
 * with stamp, record, views and retention. */
static void on_governed(struct tf_engine *e, const struct tf_message *m, const struct tf_policy *p,
		uint32_t policy_index, uint64_t qos2_key, int64_t now, struct tf_message_result *res)
{
	const char *violated = NULL;
	enum tf_violation_action action = TF_VIOLATION_ALERT;   /* deliver */
	char flow[512], why[200];
	cJSON *json = NULL;

	if (p->max_payload_bytes > 0 && m->payloadlen > p->max_payload_bytes) {
		violated = "limit-exceeded";
		violation(e, p, m, violated, "payload larger than max_payload_bytes");
	} else if (p->max_messages_per_second > 0 && (m->username == NULL
			|| !tf_ratelimit_take(e->rates, policy_index, m->username,
				p->max_messages_per_second, now))) {
		violated = "limit-exceeded";
		violation(e, p, m, violated, "more than max_messages_per_second");
	}
	if (violated == NULL && (p->schema != NULL || p->n_views > 0)
			&& m->payloadlen <= TF_JSON_PAYLOAD_MAX)
		json = cJSON_ParseWithLengthOpts(m->payload, m->payloadlen, NULL, false);
	if (violated == NULL && p->schema != NULL) {
		if (m->payloadlen > TF_JSON_PAYLOAD_MAX)
			snprintf(why, sizeof(why), "payload too large to check");
		else if (json == NULL)
			snprintf(why, sizeof(why), "payload is not valid JSON");
		else if (tf_schema_validate(p->schema, json, why, sizeof(why)))
			why[0] = '\0';
		if (why[0] != '\0') {
			violated = "schema-violation";
			violation(e, p, m, violated, why);
		}
	}
	tf_quarantine_flow_name(p->label, client_name(m->client_id, m->username), flow,
		sizeof(flow));
	if (violated == NULL) {
		violated = tf_guard_message(e->guard, flow, m->payloadlen,
			tf_guard_hash(e->guard, m->payload, m->payloadlen), now, why, sizeof(why));
		if (violated != NULL)
			violation(e, p, m, violated, why);
	}
	if (violated != NULL) {
		action = p->on_violation;
		res->disconnect = p->disconnect;
	}
	/* Once a flow is held, all of it is, violating or not. */
	if (tf_quarantine_find(e->quarantine, flow) != NULL)
		action = TF_VIOLATION_QUARANTINE;

	switch (action) {
	case TF_VIOLATION_DROP:
		refuse(res, violated);
		if (e->trace != NULL)
			record_unstamped(e, now, m->client_id, m->username, m->topic, p, m->payload,
				m->payloadlen, "dropped", violated);
		break;
	case TF_VIOLATION_QUARANTINE:
		hold(e, m, p, flow, violated ? violated : "its flow is quarantined", now, res);
		break;
	case TF_VIOLATION_REROUTE:
		reroute(e, m, p, violated, now, res);
		break;
	case TF_VIOLATION_ALERT:
		deliver(e, m, p, json, now, res);
		break;
	}
	if (m->qos == 2 && res->deliver && (res->stamped || res->hold))
		pend_qos2(e, m, qos2_key, res, now);
	cJSON_Delete(json);
	if (!res->deliver)
		tf_message_result_free(res);
}

void tf_engine_on_message(struct tf_engine *e, const struct tf_message *m,
		struct tf_message_result *res)
{
	struct tf_governance g;
	const struct tf_policy *p;
	int64_t now = now_ms(e);
	uint64_t qos2_key = 0;

	/* Not memset: the stamp buffers are large and this runs per message. */
	res->deliver = true;
	res->reason = NULL;
	res->stamped = false;
	res->hold = false;
	res->redirect = NULL;
	res->disconnect = false;
	res->n_copies = 0;
	res->copies = NULL;
	if (m->topic[0] == '$')
		return;
	if (m->qos == 2) {
		qos2_key = tf_qos2_key(m->client_id ? m->client_id : "", m->topic, m->payload,
			m->payloadlen);
		if (resend_of(e, m, qos2_key, res))
			return;
	}
	if (tf_guard_watching_leaks(e->guard) && leaked(e, m, now, res))
		return;
	g = tf_govern_lookup(e->set->govern, m->topic);
	if (g.kind != TF_GOVERN_POLICY) {
		on_ungoverned(e, m, now, res);
		if (m->qos == 2 && res->stamped)
			pend_qos2(e, m, qos2_key, res, now);
		if (e->trace_each)
			tf_trace_writer_flush(e->trace);
		return;
	}
	p = &e->set->policies[g.policy];
	on_governed(e, m, p, g.policy, qos2_key, now, res);
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

/* What the trace writer left for the broker's thread: a checkpoint to
 * publish, a change of its health to log. */
static void trace_tick(struct tf_engine *e)
{
	char *checkpoint, text[1024];
	bool failed;

	if (e->trace == NULL)
		return;
	checkpoint = tf_trace_writer_take_checkpoint(e->trace);
	if (checkpoint != NULL && e->hooks.publish_checkpoint != NULL)
		e->hooks.publish_checkpoint(e->hooks.ctx, checkpoint);
	free(checkpoint);
	if (tf_trace_writer_take_report(e->trace, text, sizeof(text), &failed))
		e->hooks.log(e->hooks.ctx, failed ? TF_LOG_ERR : TF_LOG_NOTICE, text);
}

void tf_engine_tick(struct tf_engine *e)
{
	int64_t now = now_ms(e);

	tf_retained_expire(e->retained, now, e->hooks.clear_retained, e->hooks.ctx);
	tf_msgtrack_sweep(e->track, now, SWEEP_BUDGET);
	tf_qos2track_expire(e->qos2, now);
	trace_tick(e);
}
