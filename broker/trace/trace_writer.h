/* The trace writer: a thread that owns the trace store's write side, so
 * that recording never waits for the disk on the broker's thread.
 *
 * The broker's thread hands each event over with tf_trace_writer_record
 * (a copy into a queue under a mutex); the thread appends whatever has
 * queued up in one transaction (group commit), syncs at least every
 * sync_ms, signs a checkpoint at least every checkpoint_ms while events
 * arrive, and prunes events older than the retention. It calls nothing
 * of the broker's: what the broker must act on (a checkpoint to publish,
 * a failure to log) waits in the writer until the broker's thread takes
 * it, in TICK. */
#ifndef TF_TRACE_WRITER_H
#define TF_TRACE_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/util/error.h"
#include "broker/stamp/provenance.h"
#include "broker/trace/trace_store.h"

struct tf_trace_writer_config {
	const char *dir;             /* the store's directory */
	const char *broker_id;       /* named in checkpoints */
	struct tf_signer *signer;    /* signs checkpoints, from the writer's thread
	                              * (tf_signer_sign); borrowed, valid until
	                              * tf_trace_writer_stop returns */
	uint32_t sync_ms;            /* 0: every record is synced before flush returns */
	uint32_t retention_days;     /* 0: keep everything */
	uint64_t max_bytes;          /* the store's size limit; 0: none */
	uint32_t checkpoint_ms;      /* at most this long between checkpoints */
	uint32_t prune_ms;           /* how often old events are pruned */
};

struct tf_trace_writer;

/* Opens the store and starts the thread. Errors: those of tf_trace_open,
 * TF_ERR_NOMEM, TF_ERR_IO (no thread). */
int tf_trace_writer_start(const struct tf_trace_writer_config *cfg,
		struct tf_trace_writer **out, struct tf_err *err);

/* Writes everything queued, a last checkpoint, syncs, and stops. */
void tf_trace_writer_stop(struct tf_trace_writer *w);

/* Queues one event (copied). When the queue is full it waits while the
 * writer makes progress (the broker slows to the store's pace). Returns
 * TF_OK, or TF_ERR_FULL when the store cannot take events (it failed, or
 * the writer took nothing for a second): the caller must then not pass on
 * what the event describes. */
int tf_trace_writer_record(struct tf_trace_writer *w, const struct tf_trace_input *in);

/* Waits until every event queued so far is on disk. Returns TF_OK or
 * TF_ERR_FULL as above. */
int tf_trace_writer_flush(struct tf_trace_writer *w);

/* The store, for reading in this process (tf_trace_read_begin ...
 * tf_trace_read_end, from one thread: the broker's). */
struct tf_trace_store *tf_trace_writer_store(struct tf_trace_writer *w);

/* The highest stamp sequence number recorded when the store was opened. */
uint64_t tf_trace_writer_stamp_seq(const struct tf_trace_writer *w);

/* The newest checkpoint not yet taken, as JSON (caller owns; free()), or
 * NULL. */
char *tf_trace_writer_take_checkpoint(struct tf_trace_writer *w);

/* A change of the writer's health to tell the operator: returns true and
 * fills text (failed or recovered, and why) once per change. *failed:
 * whether it is failing now. */
bool tf_trace_writer_take_report(struct tf_trace_writer *w, char *text, size_t cap,
		bool *failed);

/* What the writer did, for the metrics. */
struct tf_trace_writer_stats {
	uint64_t waiting;        /* events queued and not yet on disk */
	uint64_t events;         /* events written */
	uint64_t commits;        /* transactions committed */
	double last_commit_ms;   /* how long the latest commit took */
	double max_commit_ms;    /* the longest commit since the previous call */
	bool failing;            /* the store cannot take events now */
};

/* The writer's counters now; starts max_commit_ms again. Safe from any
 * thread. */
void tf_trace_writer_stats(struct tf_trace_writer *w, struct tf_trace_writer_stats *out);

#endif
