#include "broker/trace/trace_writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/trace/checkpoint.h"
#include "broker/stamp/provenance.h"
#include "broker/util/background.h"

/* The most queued bytes before the broker's thread waits for the writer
 * (backpressure: the broker slows to the rate the store takes), and how
 * long the writer may make no progress before the broker gives up (and
 * fails closed). A smaller queue hands over sooner; this one holds about
 * a quarter of a second of the writer's work. */
#define QUEUE_MAX (8u * 1024 * 1024)
#define QUEUE_WAIT_MS 1000
/* How often a failed batch is tried again, and how many events one
 * pruning step removes at most. */
#define RETRY_MS 1000
#define PRUNE_BATCH 20000
/* Group commit: a batch gathers for up to this long (at most half of
 * trace_sync_ms), or this many bytes, before the writer commits it. A
 * commit writes every page it touched (the end of each index list a
 * fan-out reaches, say) however few events it holds: a batch of a few ms
 * carries that cost over many messages. Nothing waits on it: the writer
 * syncs every trace_sync_ms less the gathering, so that trace_sync_ms
 * still bounds what a crash loses, and tf_trace_writer_flush
 * (trace_sync_ms 0, quarantine) commits at once. */
#define GATHER_MS 50
#define GATHER_BYTES (1024u * 1024)

/* A queued record: this header, then each part as a 4-byte length, the
 * bytes and a NUL. Parts: the kind's fields, then, as `parts` says,
 * find_topic and find_sha256, file_sha256, hold_flow and hold,
 * unhold_flow and unhold_seq (8 bytes), meta_name and meta_value. */
enum record_parts {
	PART_FIND = 1, PART_FILE = 2, PART_HOLD = 4, PART_UNHOLD = 8, PART_META = 16,
};
#define MAX_PARTS (TF_EVENT_MAX_FIELDS + 9)

struct record_head {
	uint32_t size;
	uint8_t kind;
	uint8_t n_parts;
	uint8_t parts;
	uint8_t n_values;   /* the values given; the rest are absent (NULL) */
	int64_t ts_ms;
};

struct queue {
	char *bytes;
	size_t len, cap;
	uint64_t count;
};

struct tf_trace_writer {
	struct tf_trace_store *store;
	struct tf_signer *signer;  /* borrowed: the broker's, pool and all */
	char *broker_id;
	uint32_t sync_ms, checkpoint_ms, prune_ms, retention_days;
	uint32_t gather_ms, sync_every_ms;   /* sync_ms split (GATHER_MS) */
	pthread_t thread;

	pthread_mutex_t lock;
	pthread_cond_t work;       /* the writer waits for records or requests */
	pthread_cond_t progress;   /* the broker waits for room or durability */
	struct queue front;        /* under lock: where records go */
	int64_t front_since;       /* under lock: when front's first record came */
	uint64_t queued;           /* under lock: records ever queued */
	uint64_t durable;          /* under lock: records on disk */
	uint64_t swaps;            /* under lock: batches the writer took */
	bool stopping, flush_wanted, failed;
	char *checkpoint_json;     /* under lock: not yet taken */
	char report[1024];         /* under lock: not yet taken, "" when none */
	bool report_failed;
	struct tf_trace_writer_stats stats;  /* under lock: for the metrics */

	/* The thread's own. */
	struct queue back;
	struct tf_trace_input *inputs;
	size_t inputs_cap;
	uint64_t committed;        /* records committed, not necessarily synced */
	uint64_t checkpoint_seq;   /* last event a checkpoint covers */
	int64_t last_sync, last_checkpoint, last_prune, last_retry;
	bool unsynced, prune_more;
	uint64_t stamp_seq_at_open;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A monotonic clock in µs, for how long a commit takes. */
static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* Under lock: a report for the broker's thread to log, and whether
 * recording has failed from now on (w->failed to leave it as it is). */
static void post_report(struct tf_trace_writer *w, bool failed, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void post_report(struct tf_trace_writer *w, bool failed, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->report, sizeof(w->report), fmt, ap);
	va_end(ap);
	w->report_failed = failed;
	w->failed = failed;
}

/* --- the broker's side ------------------------------------------------------ */

int tf_trace_writer_record(struct tf_trace_writer *w, const struct tf_trace_input *in)
{
	struct record_head head = { 0, (uint8_t)in->kind, 0, 0, 0, in->ts_ms };
	const void *parts[MAX_PARTS];
	size_t lens[MAX_PARTS];
	unsigned char seq[8];
	size_t n, size = sizeof(head);
	char *p;

	tf_event_fields(in->kind, &n);
	/* An absent trailing field (tf_event_encode) stays absent. */
	while (n > 0 && in->values[n - 1] == NULL)
		n--;
	head.n_values = (uint8_t)n;
	for (size_t i = 0; i < n; i++) {
		parts[i] = in->values[i];
		lens[i] = strlen(in->values[i]);
	}
	if (in->find_topic != NULL) {
		head.parts |= PART_FIND;
		parts[n] = in->find_topic;
		lens[n++] = strlen(in->find_topic);
		parts[n] = in->find_sha256;
		lens[n++] = strlen(in->find_sha256);
	}
	if (in->file_sha256 != NULL) {
		head.parts |= PART_FILE;
		parts[n] = in->file_sha256;
		lens[n++] = strlen(in->file_sha256);
	}
	if (in->hold_flow != NULL) {
		head.parts |= PART_HOLD;
		parts[n] = in->hold_flow;
		lens[n++] = strlen(in->hold_flow);
		parts[n] = in->hold;
		lens[n++] = in->hold_len;
	}
	if (in->unhold_flow != NULL) {
		head.parts |= PART_UNHOLD;
		tf_trace_put_u64(seq, in->unhold_seq);
		parts[n] = in->unhold_flow;
		lens[n++] = strlen(in->unhold_flow);
		parts[n] = seq;
		lens[n++] = 8;
	}
	if (in->meta_name != NULL) {
		head.parts |= PART_META;
		parts[n] = in->meta_name;
		lens[n++] = strlen(in->meta_name);
		parts[n] = in->meta_value;
		lens[n++] = strlen(in->meta_value);
	}
	head.n_parts = (uint8_t)n;
	for (size_t i = 0; i < n; i++)
		size += 4 + lens[i] + 1;
	if (size > TF_EVENT_MAX_BYTES + 2 * 1024 * 1024)
		return TF_ERR_FULL;
	head.size = (uint32_t)size;

	pthread_mutex_lock(&w->lock);
	while (w->front.len + size > QUEUE_MAX && !w->failed) {
		struct timespec until;
		uint64_t swaps = w->swaps;

		/* Waits as long as the writer takes batches. */
		deadline_in(&until, QUEUE_WAIT_MS);
		while (w->front.len + size > QUEUE_MAX && !w->failed && w->swaps == swaps
				&& pthread_cond_timedwait(&w->progress, &w->lock, &until) != ETIMEDOUT)
			;
		if (w->swaps == swaps)
			break;
	}
	if (w->failed || w->front.len + size > QUEUE_MAX) {
		pthread_mutex_unlock(&w->lock);
		return TF_ERR_FULL;
	}
	if (w->front.len + size > w->front.cap) {
		size_t cap = w->front.cap ? w->front.cap : 64 * 1024;
		char *grown;

		while (cap < w->front.len + size)
			cap *= 2;
		grown = realloc(w->front.bytes, cap);
		if (grown == NULL) {
			pthread_mutex_unlock(&w->lock);
			return TF_ERR_FULL;
		}
		w->front.bytes = grown;
		w->front.cap = cap;
	}
	p = w->front.bytes + w->front.len;
	memcpy(p, &head, sizeof(head));
	p += sizeof(head);
	for (size_t i = 0; i < n; i++) {
		uint32_t len = (uint32_t)lens[i];

		memcpy(p, &len, 4);
		memcpy(p + 4, parts[i], len);
		p[4 + len] = '\0';
		p += 4 + len + 1;
	}
	w->front.len += size;
	w->front.count++;
	w->queued++;
	if (w->front.count == 1)
		w->front_since = mono_ms();
	if (w->front.count == 1 || (w->front.len >= GATHER_BYTES && w->front.len - size < GATHER_BYTES))
		pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
	return TF_OK;
}

int tf_trace_writer_flush(struct tf_trace_writer *w)
{
	uint64_t target;
	int rc;

	pthread_mutex_lock(&w->lock);
	target = w->queued;

	while (w->durable < target && !w->failed) {
		w->flush_wanted = true;
		pthread_cond_signal(&w->work);
		pthread_cond_wait(&w->progress, &w->lock);
	}
	rc = w->durable >= target ? TF_OK : TF_ERR_FULL;
	pthread_mutex_unlock(&w->lock);
	return rc;
}

struct tf_trace_store *tf_trace_writer_store(struct tf_trace_writer *w)
{
	return w->store;
}

uint64_t tf_trace_writer_stamp_seq(const struct tf_trace_writer *w)
{
	return w->stamp_seq_at_open;
}

char *tf_trace_writer_take_checkpoint(struct tf_trace_writer *w)
{
	char *json;

	pthread_mutex_lock(&w->lock);
	json = w->checkpoint_json;
	w->checkpoint_json = NULL;
	pthread_mutex_unlock(&w->lock);
	return json;
}

bool tf_trace_writer_take_report(struct tf_trace_writer *w, char *text, size_t cap,
		bool *failed)
{
	bool any;

	pthread_mutex_lock(&w->lock);
	any = w->report[0] != '\0';
	if (any) {
		snprintf(text, cap, "%s", w->report);
		*failed = w->report_failed;
		w->report[0] = '\0';
	}
	pthread_mutex_unlock(&w->lock);
	return any;
}

/* --- the writer's thread ----------------------------------------------------- */

/* The records of the back queue as inputs for the store. */
static bool parse_back(struct tf_trace_writer *w, size_t *n_out)
{
	size_t n = 0;

	if (w->back.count > w->inputs_cap) {
		struct tf_trace_input *grown = realloc(w->inputs, w->back.count * sizeof(*grown));

		if (grown == NULL)
			return false;
		w->inputs = grown;
		w->inputs_cap = w->back.count;
	}
	for (const char *p = w->back.bytes; p < w->back.bytes + w->back.len; n++) {
		struct tf_trace_input *in = &w->inputs[n];
		struct record_head head;
		const char *v, *parts[MAX_PARTS];
		uint32_t lens[MAX_PARTS];
		size_t fields, at;

		memcpy(&head, p, sizeof(head));
		memset(in, 0, sizeof(*in));
		in->kind = (enum tf_event_kind)head.kind;
		in->ts_ms = head.ts_ms;
		fields = head.n_values;
		v = p + sizeof(head);
		for (size_t i = 0; i < head.n_parts; i++) {
			memcpy(&lens[i], v, 4);
			parts[i] = v + 4;
			v += 4 + lens[i] + 1;
		}
		for (size_t i = 0; i < fields; i++)
			in->values[i] = parts[i];
		at = fields;
		if (head.parts & PART_FIND) {
			in->find_topic = parts[at++];
			in->find_sha256 = parts[at++];
		}
		if (head.parts & PART_FILE)
			in->file_sha256 = parts[at++];
		if (head.parts & PART_HOLD) {
			in->hold_flow = parts[at++];
			in->hold = parts[at];
			in->hold_len = lens[at++];
		}
		if (head.parts & PART_UNHOLD) {
			in->unhold_flow = parts[at++];
			in->unhold_seq = tf_trace_get_u64((const unsigned char *)parts[at++]);
		}
		if (head.parts & PART_META) {
			in->meta_name = parts[at++];
			in->meta_value = parts[at++];
		}
		p += head.size;
	}
	*n_out = n;
	return true;
}

static void make_checkpoint(struct tf_trace_writer *w)
{
	struct tf_checkpoint cp;
	struct tf_err err = { "" };
	uint64_t seq = tf_trace_last_seq(w->store);
	char *json;
	int rc;

	if (seq == 0 || seq == w->checkpoint_seq)
		return;
	rc = tf_checkpoint_sign(&cp, w->signer, w->broker_id, seq, tf_trace_last_hash(w->store),
		wall_ms(), &err);
	if (rc == TF_OK)
		rc = tf_trace_put_checkpoint(w->store, &cp, &err);
	json = rc == TF_OK ? tf_checkpoint_to_json(&cp) : NULL;
	pthread_mutex_lock(&w->lock);
	if (rc != TF_OK) {
		post_report(w, w->failed, "trustflow: trace checkpoint not made: %s", err.msg);
	} else if (json != NULL) {
		free(w->checkpoint_json);
		w->checkpoint_json = json;
	}
	pthread_mutex_unlock(&w->lock);
	if (rc == TF_OK) {
		w->checkpoint_seq = seq;
		w->unsynced = true;
	}
	w->last_checkpoint = mono_ms();
}

/* Appends the back queue. Returns whether it is written (and emptied). */
static bool write_back(struct tf_trace_writer *w)
{
	struct tf_err err = { "" };
	size_t n;
	int rc;
	int64_t began = mono_us();
	double took_ms;

	if (!parse_back(w, &n))
		rc = tf_err_set(&err, TF_ERR_NOMEM, "out of memory");
	else
		rc = tf_trace_append(w->store, w->inputs, n, &err);
	took_ms = (double)(mono_us() - began) / 1000.0;
	pthread_mutex_lock(&w->lock);
	if (rc == TF_OK) {
		w->stats.events += w->back.count;
		w->stats.commits++;
		w->stats.last_commit_ms = took_ms;
		if (took_ms > w->stats.max_commit_ms)
			w->stats.max_commit_ms = took_ms;
	}
	if (rc != TF_OK && !w->failed) {
		post_report(w, true, "trustflow: %s; governed messages are refused until "
			"events can be recorded again", err.msg);
		pthread_cond_broadcast(&w->progress);
	} else if (rc == TF_OK && w->failed) {
		post_report(w, false, "trustflow: the trace store records events again");
	}
	pthread_mutex_unlock(&w->lock);
	w->last_retry = mono_ms();
	if (rc != TF_OK)
		return false;
	w->committed += w->back.count;
	w->back.len = 0;
	w->back.count = 0;
	w->unsynced = true;
	return true;
}

static void sync_now(struct tf_trace_writer *w)
{
	struct tf_err err = { "" };

	if (tf_trace_sync(w->store, &err) != TF_OK) {
		pthread_mutex_lock(&w->lock);
		post_report(w, w->failed, "trustflow: %s", err.msg);
		pthread_mutex_unlock(&w->lock);
		return;
	}
	w->unsynced = false;
	w->last_sync = mono_ms();
	pthread_mutex_lock(&w->lock);
	w->durable = w->committed;
	pthread_cond_broadcast(&w->progress);
	pthread_mutex_unlock(&w->lock);
}

static void prune(struct tf_trace_writer *w)
{
	struct tf_err err = { "" };
	size_t removed = 0;
	int64_t before = wall_ms() - (int64_t)w->retention_days * 86400000;

	w->last_prune = mono_ms();
	if (tf_trace_prune(w->store, before, PRUNE_BATCH, &removed, &err) != TF_OK) {
		pthread_mutex_lock(&w->lock);
		post_report(w, w->failed, "trustflow: %s", err.msg);
		pthread_mutex_unlock(&w->lock);
	}
	w->prune_more = removed == PRUNE_BATCH;
	if (removed > 0)
		w->unsynced = true;
}

/* How long the thread may sleep before a timer is due (ms). */
static int64_t sleep_ms(const struct tf_trace_writer *w, int64_t now)
{
	int64_t next = now + w->prune_ms;

	if (w->unsynced && w->last_sync + w->sync_every_ms < next)
		next = w->last_sync + w->sync_every_ms;
	if (tf_trace_last_seq(w->store) != w->checkpoint_seq
			&& w->last_checkpoint + w->checkpoint_ms < next)
		next = w->last_checkpoint + w->checkpoint_ms;
	if (w->back.count > 0 && w->last_retry + RETRY_MS < next)
		next = w->last_retry + RETRY_MS;
	if (w->retention_days > 0 && (w->prune_more || w->last_prune + w->prune_ms < next))
		next = w->prune_more ? now : w->last_prune + w->prune_ms;
	return next > now ? next - now : 0;
}

static void *writer_main(void *arg)
{
	struct tf_trace_writer *w = arg;

	tf_background_thread("tf-trace");
	for (;;) {
		bool stopping, flush, failed, queued;
		int64_t now = mono_ms();

		pthread_mutex_lock(&w->lock);
		/* A batch that failed stays in back until it is written; the
		 * retry timer wakes the thread for it. */
		if (!w->stopping && !w->flush_wanted && (w->front.count == 0 || w->back.count > 0)) {
			struct timespec until;

			deadline_in(&until, sleep_ms(w, now));
			pthread_cond_timedwait(&w->work, &w->lock, &until);
		}
		while (!w->stopping && !w->flush_wanted && w->back.count == 0 && w->front.count > 0
				&& w->sync_ms > 0 && w->front.len < GATHER_BYTES) {
			int64_t left = w->front_since + w->gather_ms - mono_ms();
			struct timespec until;

			if (left <= 0)
				break;
			deadline_in(&until, left);
			pthread_cond_timedwait(&w->work, &w->lock, &until);
		}
		if (w->back.count == 0 && w->front.count > 0) {
			struct queue q = w->back;

			w->back = w->front;
			w->front = q;
			w->swaps++;
			pthread_cond_broadcast(&w->progress);
		}
		stopping = w->stopping;
		flush = w->flush_wanted;
		failed = w->failed;
		w->flush_wanted = false;
		pthread_mutex_unlock(&w->lock);

		now = mono_ms();
		if (w->back.count > 0 && (!failed || now - w->last_retry >= RETRY_MS || stopping))
			failed = !write_back(w);
		if (tf_trace_last_seq(w->store) != w->checkpoint_seq
				&& (stopping || now - w->last_checkpoint >= w->checkpoint_ms))
			make_checkpoint(w);
		if (w->retention_days > 0 && (w->prune_more || now - w->last_prune >= w->prune_ms))
			prune(w);
		if (w->unsynced && (flush || stopping || w->sync_ms == 0
				|| now - w->last_sync >= w->sync_every_ms))
			sync_now(w);
		if (stopping) {
			pthread_mutex_lock(&w->lock);
			queued = w->front.count > 0;
			pthread_mutex_unlock(&w->lock);
			/* A store that cannot take the last batch loses it, and
			 * what is queued behind it (which it could not take
			 * either: trying for ever would hang the stop): the broker
			 * is going down and can refuse nothing any more. */
			if (failed || (!queued && w->back.count == 0))
				break;
		}
	}
	return NULL;
}

/* --- life ------------------------------------------------------------------- */

static void writer_free(struct tf_trace_writer *w)
{
	tf_trace_close(w->store);
	free(w->broker_id);
	free(w->front.bytes);
	free(w->back.bytes);
	free(w->inputs);
	free(w->checkpoint_json);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->progress);
	free(w);
}

int tf_trace_writer_start(const struct tf_trace_writer_config *cfg,
		struct tf_trace_writer **out, struct tf_err *err)
{
	struct tf_trace_writer *w = calloc(1, sizeof(*w));
	pthread_condattr_t attr;
	int rc;

	*out = NULL;
	if (w == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->work, &attr);
	pthread_cond_init(&w->progress, &attr);
	pthread_condattr_destroy(&attr);
	w->sync_ms = cfg->sync_ms;
	w->gather_ms = cfg->sync_ms / 2 < GATHER_MS ? cfg->sync_ms / 2 : GATHER_MS;
	w->sync_every_ms = cfg->sync_ms - w->gather_ms;
	w->checkpoint_ms = cfg->checkpoint_ms;
	w->prune_ms = cfg->prune_ms;
	w->retention_days = cfg->retention_days;
	w->signer = cfg->signer;
	w->broker_id = strdup(cfg->broker_id);
	if (w->broker_id == NULL) {
		writer_free(w);
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	}
	rc = tf_trace_open(cfg->dir, true, cfg->max_bytes, &w->store, err);
	if (rc == TF_OK) {
		char name[4 + TF_KID_LEN + 1];

		snprintf(name, sizeof(name), "key:%s", tf_signer_kid(w->signer));
		rc = tf_trace_put_meta(w->store, name, tf_signer_public_pem(w->signer), err);
	}
	if (rc == TF_OK)
		rc = tf_trace_put_meta(w->store, "broker", cfg->broker_id, err);
	if (rc != TF_OK) {
		writer_free(w);
		return rc;
	}
	w->stamp_seq_at_open = tf_trace_last_stamp_seq(w->store);
	w->checkpoint_seq = tf_trace_last_seq(w->store);
	w->last_sync = w->last_checkpoint = mono_ms();
	/* Prune at the first chance: the broker may have been down a while. */
	w->last_prune = w->last_sync - w->prune_ms;
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		writer_free(w);
		return tf_err_set(err, TF_ERR_IO, "cannot start the trace writer thread");
	}
	*out = w;
	return TF_OK;
}

void tf_trace_writer_stop(struct tf_trace_writer *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	writer_free(w);
}

void tf_trace_writer_stats(struct tf_trace_writer *w, struct tf_trace_writer_stats *out)
{
	pthread_mutex_lock(&w->lock);
	*out = w->stats;
	out->waiting = w->queued - w->durable;
	out->failing = w->failed;
	w->stats.max_commit_ms = 0;
	pthread_mutex_unlock(&w->lock);
}
